"""Partition JSON files by each benchmark's rule, written atomically.

* CASIA-B: the first 74 subjects (``001``-``074``) train, the rest test;
* OUMVLP: odd ids train, even ids test, except ``10307`` (odd) which is a test subject. The
  rule itself lives in :func:`fastposegait.data.partitions.oumvlp_official_partition` (one
  implementation for the generator and the real dataset); here it is restricted to the
  subjects present on disk;
* GREW: derived from the converted folders (:func:`fastposegait.converters.grew.partition_from_tree`);
* Gait3D: the official split (:func:`fastposegait.converters.gait3d.read_split_file`).

An existing partition file is replaced only when it holds the same partition, when asked
(``overwrite``), or when a conversion into the same output root wrote it and it is unchanged
since (:func:`remember_partition`, :func:`is_remembered`; GREW's splits converted one after
the other grow its partition): it may be a hand-written or official one.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

from ..data.partitions import oumvlp_official_partition
from ..errors import ConversionError, RawFileError
from .parsing import read_json
from .tasks import iter_dirs, real_path, require_dir, write_json

CASIA_B_TRAIN_SUBJECTS = 74
# A hidden file in a conversion's output root (the loader and the checks ignore files there):
# real path of each partition file a conversion into this root wrote -> SHA-256 of its bytes.
RECORD_NAME = ".fastposegait_partitions.json"


class PartitionExistsError(ConversionError):
    """The partition file to write exists and holds another partition (a hand-written one,
    an official one, or an earlier conversion's); it is replaced only when asked to."""


def check_partition_target(path: str | Path, partition: Dict[str, List[str]], overwrite: bool = False) -> None:
    """Refuse to replace an existing file at ``path`` that holds anything but ``partition``
    (the same content is fine), unless ``overwrite``; a folder there is always refused.

    Raises:
        ConversionError: ``path`` is a folder or not a regular file.
        PartitionExistsError: ``path`` holds another partition (or another file) and not ``overwrite``.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise ConversionError(f"partition {str(path)!r} is a folder; give the partition a file name, e.g. "
                              f"{str(path / 'partition.json')!r}")
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_file():
        raise ConversionError(f"partition {str(path)!r} exists and is not a regular file; remove it or write the "
                              "partition to another file")
    if overwrite:
        return
    try:
        existing: Any = read_json(path)
    except RawFileError:
        existing = None
    if existing == json.loads(json.dumps(partition)):
        return
    raise PartitionExistsError(
        f"{path} already exists with other content ({_describe(existing)}; this one: {_describe(partition)}); it "
        "was not replaced — pass --overwrite to replace it, or write the partition to another file"
    )


def _describe(partition: Any) -> str:
    """``a partition of N train / M test[ / P probe] entries``, or what else a file holds."""
    lists = isinstance(partition, dict) and all(isinstance(partition.get(k), list) for k in ("TRAIN_SET", "TEST_SET"))
    if not lists:
        return "something other than a partition" if partition is not None else "no valid JSON"
    probe = f" / {len(partition['PROBE_SET'])} probe" if isinstance(partition.get("PROBE_SET"), list) else ""
    return f"a partition of {len(partition['TRAIN_SET'])} train / {len(partition['TEST_SET'])} test{probe} entries"


def _digest(path: Path) -> Optional[str]:
    """SHA-256 of the file's bytes, or None when it cannot be read."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _record(output_root: str | Path) -> Dict[str, Any]:
    """The output root's record of written partitions (empty when missing or unreadable)."""
    path = Path(output_root).expanduser() / RECORD_NAME
    if not path.is_file():
        return {}
    try:
        record = read_json(path)
    except RawFileError:
        return {}
    return record if isinstance(record, dict) else {}


def is_remembered(path: str | Path, output_root: str | Path) -> bool:
    """True when a conversion into ``output_root`` wrote the partition file ``path`` and the file
    is unchanged since (so a later conversion may replace it)."""
    path = Path(path).expanduser()
    known = _record(output_root).get(str(real_path(path)))
    return known is not None and path.is_file() and known == _digest(path)


def remember_partition(path: str | Path, output_root: str | Path) -> None:
    """Record in ``output_root`` that a conversion into it wrote the partition file ``path``."""
    path = Path(path).expanduser()
    record = _record(output_root)
    record[str(real_path(path))] = _digest(path)
    # not flushed to disk: a record lost in a crash only makes a later run ask for --overwrite
    write_json(Path(output_root).expanduser() / RECORD_NAME, record, indent=1, fsync=False)


def write_partition(path: str | Path, partition: Dict[str, List[str]], overwrite: bool = False) -> Path:
    """Write ``partition`` as JSON (the layout of ``datasets/CASIA-B/CASIA-B.json``); an
    existing file with other content is replaced only with ``overwrite``
    (:func:`check_partition_target`)."""
    path = Path(path).expanduser()
    check_partition_target(path, partition, overwrite)
    write_json(path, partition, indent=1)
    return path


def casia_b_partition(subjects: Iterable[str], num_train: int = CASIA_B_TRAIN_SUBJECTS) -> Dict[str, List[str]]:
    """The first ``num_train`` subjects in sorted order train, the others test."""
    names = sorted(subjects)
    if not 0 < num_train < len(names):
        raise ConversionError(
            f"CASIA-B rule: {num_train} training subjects but {len(names)} subjects on disk; "
            "the rule needs some of each (use --num-train for a subset)"
        )
    return {"TRAIN_SET": names[:num_train], "TEST_SET": names[num_train:]}


def oumvlp_partition(subjects: Optional[Iterable[str]] = None) -> Dict[str, List[str]]:
    """OUMVLP's official partition, or its restriction to ``subjects`` (order kept: ascending).

    Raises:
        ConversionError: a subject name that is not an OUMVLP id (``00001``…``10307``).
    """
    full = oumvlp_official_partition()
    if subjects is None:
        return full
    present = set(subjects)
    known = set(full["TRAIN_SET"]) | set(full["TEST_SET"])
    unknown = sorted(present - known)
    if unknown:
        raise ConversionError(
            f"{len(unknown)} subject folders are not OUMVLP ids 00001..10307 (e.g. {unknown[:3]}); "
            "remove them or write the partition yourself"
        )
    return {key: [s for s in names if s in present] for key, names in full.items()}


def subjects_on_disk(root: str | Path) -> List[str]:
    """Sorted subject folders of a dataset root."""
    return iter_dirs(require_dir(root, "dataset root"))
