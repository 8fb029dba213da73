"""Partition JSON files by each benchmark's rule, written atomically.

* CASIA-B: the first 74 subjects (``001``-``074``) train, the rest test;
* OUMVLP: odd ids train, even ids test, except ``10307`` (odd) which is a test subject. The
  rule itself lives in :func:`fastposegait.data.partitions.oumvlp_official_partition` (one
  implementation for the generator and the real dataset); here it is restricted to the
  subjects present on disk;
* GREW: derived from the converted folders (:func:`fastposegait.converters.grew.partition_from_tree`);
* Gait3D: the official split (:func:`fastposegait.converters.gait3d.read_split_file`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, List, Optional

from ..data.partitions import oumvlp_official_partition
from ..errors import ConversionError
from .tasks import iter_dirs, require_dir, write_json

CASIA_B_TRAIN_SUBJECTS = 74


def write_partition(path: str | Path, partition: Dict[str, List[str]]) -> Path:
    """Write ``partition`` as JSON (the layout of ``datasets/CASIA-B/CASIA-B.json``)."""
    path = Path(path).expanduser()
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
