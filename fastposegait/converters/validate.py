"""Check a dataset root before training: everything the loader would trip on, all at once.

The loader (:mod:`fastposegait.data.dataset`) stops at the first problem; this walks the whole
tree and lists every one, using the loader's own checks where they exist:

* each pickle goes through :func:`fastposegait.data.io.load_pose` (restricted unpickler, numeric
  dtype, ``[T, V, 3]`` shape, empty time axis, NaN/inf), so a file it accepts, the loader
  accepts;
* the partition goes through :func:`fastposegait.data.partitions.read_partition`, and at the end
  :func:`fastposegait.data.dataset.build_index` must index every split without error;
* plus what only shows up later in training: one-frame sequences (rejected when loaded),
  modalities of different lengths, folders with files but no pickle, mixed joint counts,
  sequences a ``frame_threshold`` would drop, leftover temp files of an interrupted write,
  stray files the loader ignores, partition subjects missing on disk or on disk but unlisted.
"""
from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ..data.dataset import build_index
from ..data.partitions import read_partition
from ..data.io import load_pose
from ..errors import DatasetError, PoseFileError
from ..data.packed_cache import CACHE_DIR_NAME
from .tasks import ConversionError

ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class Issue:
    """One problem: its level (``error`` makes training fail, ``warning`` is worth a look)."""

    level: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.level.upper()} {self.path}: {self.message}"


@dataclass
class ValidationReport:
    """The result of :func:`validate_root`."""

    root: str
    issues: List[Issue] = field(default_factory=list)
    sequences: int = 0
    pickles: int = 0
    frames: int = 0
    joints: Counter = field(default_factory=Counter)
    dtypes: Counter = field(default_factory=Counter)
    min_length: Optional[int] = None
    max_length: Optional[int] = None

    @property
    def errors(self) -> List[Issue]:
        return [i for i in self.issues if i.level == ERROR]

    @property
    def warnings(self) -> List[Issue]:
        return [i for i in self.issues if i.level == WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, level: str, path: str | Path, message: str) -> None:
        self.issues.append(Issue(level, str(path), message))

    def format(self, limit: int = 50) -> str:
        lines = []
        for kind in (self.errors, self.warnings):
            lines.extend(str(i) for i in kind[:limit])
            if len(kind) > limit:
                lines.append(f"... {len(kind) - limit} more {kind[0].level}s (see --report)")
        joints = ", ".join(f"V={v}: {n}" for v, n in sorted(self.joints.items())) or "none"
        dtypes = ", ".join(f"{d}: {n}" for d, n in sorted(self.dtypes.items())) or "none"
        lengths = f"{self.min_length}..{self.max_length}" if self.min_length is not None else "-"
        lines.append(
            f"{self.root}: {self.sequences} sequences, {self.pickles} pickles, {self.frames} frames "
            f"(T {lengths}; joints {joints}; dtype {dtypes}): {len(self.errors)} errors, {len(self.warnings)} warnings"
        )
        lines.append("OK: the loader will accept this dataset" if self.ok else
                     "NOT OK: fix the errors above before training")
        return "\n".join(lines)


def _check_pickle(path: str) -> Tuple[str, Optional[Tuple[int, int, int, str]], Optional[str]]:
    try:
        array = load_pose(path)
    except PoseFileError as exc:
        return path, None, str(exc)
    except OSError as exc:
        return path, None, f"{path}: cannot read ({exc})"
    return path, (int(array.shape[0]), int(array.shape[1]), int(array.shape[2]), str(array.dtype)), None


def _without_path(message: str, path: str | Path) -> str:
    """A loader message without its leading ``<path>: `` (the issue prints the path itself)."""
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def _is_temp(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


def _walk(root: Path, report: ValidationReport) -> Dict[str, List[List[str]]]:
    """Walk ``root`` like the loader; returns subject -> list of sequences (their pkl paths)."""
    sequences: Dict[str, List[List[str]]] = {}
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if not entry.is_dir():
            if _is_temp(entry.name):
                report.add(WARNING, entry.path, "leftover temp file of an interrupted write; delete it")
            continue  # partition.json and the like: ignored by the loader
        if entry.name == CACHE_DIR_NAME:
            continue  # the loader's packed cache, not a subject
        subject = entry.name
        sequences[subject] = []
        for t in sorted(os.scandir(entry.path), key=lambda e: e.name):
            if not t.is_dir():
                report.add(WARNING, t.path, "file at the type level is ignored by the loader (expected only "
                                            "<type>/ folders here); move or delete it")
                continue
            views = sorted(os.scandir(t.path), key=lambda e: e.name)
            if not any(v.is_dir() for v in views):
                report.add(WARNING, t.path, "type folder holds no view folders; nothing to load")
            for v in views:
                if not v.is_dir():
                    report.add(WARNING, v.path, "file at the view level is ignored by the loader (expected only "
                                                "<view>/ folders here); move or delete it")
                    continue
                names = sorted(os.listdir(v.path))
                temps = [n for n in names if _is_temp(n)]
                for n in temps:
                    report.add(WARNING, os.path.join(v.path, n), "leftover temp file of an interrupted write; delete it")
                if not names:
                    report.add(WARNING, v.path, "empty sequence folder; the loader skips it")
                    continue
                pkls = [os.path.join(v.path, n) for n in names if n.endswith(".pkl")]
                if not pkls:
                    shown = ", ".join(n for n in names[:3])
                    report.add(ERROR, v.path, f"sequence folder holds no .pkl file (only {shown}); the loader "
                                              "rejects it — remove the folder or add the sequence's pickle")
                    continue
                sequences[subject].append(pkls)
    return sequences


def _check_partition(
    partition_path: Path, root: Path, sequences: Dict[str, List[List[str]]], report: ValidationReport
) -> Optional[Dict[str, List[str]]]:
    try:
        partition = read_partition(partition_path)
    except DatasetError as exc:
        report.add(ERROR, partition_path, _without_path(str(exc), partition_path))
        return None
    on_disk = set(sequences)
    for key in ("TRAIN_SET", "TEST_SET"):
        listed = partition[key]
        missing = [s for s in listed if s not in on_disk]
        if listed and len(missing) == len(listed):
            report.add(ERROR, partition_path, f"none of the {len(listed)} {key} subjects exist under {root} "
                                              f"(e.g. {listed[:3]}); wrong dataset_root or partition?")
        elif missing:
            report.add(WARNING, partition_path, f"{len(missing)} {key} subjects are not under {root} and will be "
                                                f"skipped: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
        duplicates = [s for s, n in Counter(listed).items() if n > 1]
        if duplicates:
            report.add(WARNING, partition_path, f"{key} lists subjects twice: {duplicates[:5]}")
    overlap = sorted(set(partition["TRAIN_SET"]) & set(partition["TEST_SET"]))
    if overlap:
        report.add(WARNING, partition_path, f"{len(overlap)} subjects are in both TRAIN_SET and TEST_SET "
                                            f"(e.g. {overlap[:3]}); training on test subjects inflates results")
    unlisted = sorted(on_disk - set(partition["TRAIN_SET"]) - set(partition["TEST_SET"]))
    if unlisted:
        report.add(WARNING, root, f"{len(unlisted)} subjects on disk are in neither TRAIN_SET nor TEST_SET and "
                                  f"are never used: {', '.join(unlisted[:5])}{' ...' if len(unlisted) > 5 else ''}")
    if "PROBE_SET" in partition:
        keys = {
            "-".join(Path(pkls[0]).parent.relative_to(root).parts)
            for subject in partition["TEST_SET"] for pkls in sequences.get(subject, [])
        }
        absent = [p for p in partition["PROBE_SET"] if p not in keys]
        if partition["PROBE_SET"] and len(absent) == len(partition["PROBE_SET"]):
            report.add(ERROR, partition_path, "no PROBE_SET entry is a test sequence on disk "
                                              f"(e.g. {absent[:3]}); the Gait3D evaluation would find no probe")
        elif absent:
            report.add(WARNING, partition_path, f"{len(absent)} PROBE_SET entries are not test sequences on disk "
                                                f"(e.g. {absent[:3]})")
    return partition


def validate_root(
    root: str | Path,
    partition: Optional[str | Path] = None,
    workers: int = 1,
    frame_threshold: int = 0,
    expected_joints: Optional[Sequence[int]] = None,
) -> ValidationReport:
    """Check a dataset root (and optionally its partition) and return every issue found.

    Args:
        root: ``<root>/<subject>/<type>/<view>/*.pkl``.
        partition: the partition JSON the configs will use.
        workers: processes reading pickles.
        frame_threshold: report sequences that ``data_cfg.frame_threshold`` would drop.
        expected_joints: allowed joint counts (e.g. ``(17,)`` for a COCO dataset).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ConversionError(f"dataset root {str(root)!r} does not exist or is not a folder")
    report = ValidationReport(root=str(root))
    sequences = _walk(root, report)
    if not sequences:
        report.add(ERROR, root, "no subject folders; a dataset root holds <subject>/<type>/<view>/*.pkl")
    paths = [p for seqs in sequences.values() for pkls in seqs for p in pkls]
    if workers > 1 and len(paths) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            checked = list(pool.map(_check_pickle, paths, chunksize=max(1, len(paths) // (workers * 8))))
    else:
        checked = [_check_pickle(p) for p in paths]
    info = {}
    for path, meta, error in checked:
        if error is not None:
            report.add(ERROR, path, _without_path(error, path))
        else:
            info[path] = meta
    report.pickles = len(paths)
    lengths = []
    for subject, seqs in sequences.items():
        for pkls in seqs:
            report.sequences += 1
            metas = [info[p] for p in pkls if p in info]
            if len(metas) != len(pkls):
                continue
            frames = {m[0] for m in metas}
            if len(frames) > 1:
                report.add(ERROR, Path(pkls[0]).parent, f"modalities have different frame counts "
                                                        f"{[m[0] for m in metas]}; every pickle of a sequence "
                                                        "must have the same length")
            t = metas[0][0]
            lengths.append(t)
            report.frames += t
            for m in metas:
                report.joints[m[1]] += 1
                report.dtypes[m[3]] += 1
            if t < 2:
                report.add(ERROR, pkls[0], "one-frame sequence; gait needs motion — remove it or set "
                                           "data_cfg.frame_threshold: 1 to drop such sequences")
            elif frame_threshold and t <= frame_threshold:
                report.add(WARNING, pkls[0], f"{t} frames <= data_cfg.frame_threshold {frame_threshold}: "
                                             "dropped from the index")
            for m, p in zip(metas, pkls):
                if expected_joints and m[1] not in expected_joints:
                    report.add(ERROR, p, f"{m[1]} joints, expected {' or '.join(map(str, expected_joints))}")
                if m[2] != 3:
                    report.add(WARNING, p, f"{m[2]} channels; the models expect x, y, confidence (3)")
    if lengths:
        report.min_length, report.max_length = min(lengths), max(lengths)
    if len(report.joints) > 1 and not expected_joints:
        report.add(ERROR, root, f"mixed joint counts {dict(report.joints)}; one dataset uses one joint format "
                                "(convert 18-joint sequences with `python -m fastposegait.converters oumvlp17`)")
    if partition is not None:
        part = _check_partition(Path(partition), root, sequences, report)
        if part is not None and not report.errors:
            for key in ("TRAIN_SET", "TEST_SET"):
                try:
                    build_index(root, [s for s in part[key] if s in sequences])
                except DatasetError as exc:  # the loader disagrees with the walk above: report it
                    report.add(ERROR, root, str(exc))
    return report
