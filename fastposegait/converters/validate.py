"""Check a dataset root before training: everything the loader would trip on, all at once.

The loader (:mod:`fastposegait.data.dataset`) stops at the first problem; this walks the whole
tree and lists every one, using the loader's own checks where they exist:

* each pickle goes through :func:`fastposegait.data.io.load_pose` (restricted unpickler, numeric
  dtype, ``[T, V, 3]`` shape, empty time axis, NaN/inf), so a file it accepts, the loader
  accepts;
* the partition goes through :func:`fastposegait.data.partitions.read_partition`, and at the end
  :func:`fastposegait.data.dataset.build_index` must index every split without error;
* plus what only shows up later in training: one-frame sequences (rejected when loaded),
  modalities of different lengths, folders with files but no pickle, pickles whose joint count
  differs from the others' (or from the expected joint format), pickles without exactly the
  three channels x, y, confidence, sequences a ``frame_threshold`` would drop, leftover temp
  files of an interrupted write, stray files the loader ignores, partition subjects missing on
  disk or on disk but unlisted.

Hidden folders at the root (names starting with ``.``, such as the loader's own
``.fastposegait_cache/``) are not subjects: they are skipped, and the report says so.
"""
from __future__ import annotations

import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ..data.dataset import build_index
from ..data.io import load_pose
from ..data.packed_cache import CACHE_DIR_NAME
from ..data.partitions import read_partition
from ..errors import ConversionError, DatasetError, PoseFileError
from .tasks import require_dir, worker_pool

ERROR, WARNING = "error", "warning"
# Joint count of each keypoint format a dataset may use (``validate --joint-format``).
JOINT_FORMATS = {"coco": 17, "openpose": 18, "alphapose": 18}
CHANNELS = 3  # x, y, confidence
_TO_COCO17 = "convert 18-joint sequences with `python -m fastposegait.converters oumvlp17`"


@dataclass(frozen=True)
class Issue:
    """One problem: its level (``error`` makes training fail, ``warning`` is worth a look)."""

    level: str
    path: str
    message: str

    def __str__(self) -> str:
        """``LEVEL path: message``, one line."""
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
    channels: Counter = field(default_factory=Counter)
    dtypes: Counter = field(default_factory=Counter)
    hidden: List[str] = field(default_factory=list)
    min_length: Optional[int] = None
    max_length: Optional[int] = None

    @property
    def errors(self) -> List[Issue]:
        """The issues that make training fail."""
        return [i for i in self.issues if i.level == ERROR]

    @property
    def warnings(self) -> List[Issue]:
        """The issues worth a look that do not stop training."""
        return [i for i in self.issues if i.level == WARNING]

    @property
    def ok(self) -> bool:
        """True when the loader will accept the dataset (no error)."""
        return not self.errors

    def add(self, level: str, path: str | Path, message: str) -> None:
        """Record one issue."""
        self.issues.append(Issue(level, str(path), message))

    def format(self, limit: int = 50) -> str:
        """The errors, then the warnings (at most ``limit`` of each), the hidden folders skipped,
        the totals and the verdict."""
        lines = []
        for kind in (self.errors, self.warnings):
            lines.extend(str(i) for i in kind[:limit])
            if len(kind) > limit:
                lines.append(f"... {len(kind) - limit} more {kind[0].level}s (see --report)")
        if self.hidden:
            names = ", ".join(n + (" (the loader's packed cache)" if n == CACHE_DIR_NAME else "")
                              for n in self.hidden)
            lines.append(f"skipped {len(self.hidden)} hidden folder{'s' if len(self.hidden) != 1 else ''} "
                         f"at the root, not subjects: {names}")
        lines.append(self._totals_line())
        lines.append("OK: the loader will accept this dataset" if self.ok else
                     "NOT OK: fix the errors above before training")
        return "\n".join(lines)

    def _totals_line(self) -> str:
        """Sequences, pickles, frames, the length range, joint and channel counts, dtypes and
        issue counts."""
        joints = ", ".join(f"V={v}: {n}" for v, n in sorted(self.joints.items())) or "none"
        channels = ", ".join(f"C={c}: {n}" for c, n in sorted(self.channels.items())) or "none"
        dtypes = ", ".join(f"{d}: {n}" for d, n in sorted(self.dtypes.items())) or "none"
        lengths = f"{self.min_length}..{self.max_length}" if self.min_length is not None else "-"
        return (f"{self.root}: {self.sequences} sequences, {self.pickles} pickles, {self.frames} frames "
                f"(T {lengths}; joints {joints}; channels {channels}; dtype {dtypes}): {len(self.errors)} "
                f"errors, {len(self.warnings)} warnings")


PickleMeta = Tuple[int, int, int, str]  # frames, joints, channels, dtype


def _check_pickle(path: str) -> Tuple[str, Optional[PickleMeta], Optional[str]]:
    """Load one pickle as the loader does: ``(path, (T, V, C, dtype), None)``, or
    ``(path, None, message)`` when it is refused or unreadable (run in worker processes)."""
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
    """A hidden ``.tmp`` file: what an interrupted atomic write leaves behind."""
    return name.startswith(".") and name.endswith(".tmp")


def _walk(root: Path, report: ValidationReport) -> Dict[str, List[List[str]]]:
    """Walk ``root`` like the loader; returns subject -> list of sequences (their pkl paths).
    Hidden folders (the loader's packed cache among them) are not subjects: they are recorded
    in ``report.hidden`` and not entered."""
    sequences: Dict[str, List[List[str]]] = {}
    for entry in _sorted_entries(root):
        if not entry.is_dir():
            if _is_temp(entry.name):
                report.add(WARNING, entry.path, "leftover temp file of an interrupted write; delete it")
            continue  # partition.json and the like: ignored by the loader
        if entry.name.startswith("."):
            report.hidden.append(entry.name)
            continue
        sequences[entry.name] = _walk_subject(entry.path, report)
    return sequences


def _sorted_entries(path: str | Path) -> List[os.DirEntry]:
    """The entries of ``path`` by name, so that issues come out in a stable order."""
    return sorted(os.scandir(path), key=lambda e: e.name)


def _walk_subject(path: str, report: ValidationReport) -> List[List[str]]:
    """The sequences (pkl paths) of one subject folder; files among its type folders are
    reported, because the loader silently ignores them."""
    sequences: List[List[str]] = []
    for t in _sorted_entries(path):
        if not t.is_dir():
            report.add(WARNING, t.path, "file at the type level is ignored by the loader (expected only "
                                        "<type>/ folders here); move or delete it")
            continue
        sequences.extend(_walk_type(t.path, report))
    return sequences


def _walk_type(path: str, report: ValidationReport) -> List[List[str]]:
    """The sequences (pkl paths) of one type folder, reporting stray files and a folder
    without any view."""
    views = _sorted_entries(path)
    if not any(v.is_dir() for v in views):
        report.add(WARNING, path, "type folder holds no view folders; nothing to load")
    sequences: List[List[str]] = []
    for v in views:
        if not v.is_dir():
            report.add(WARNING, v.path, "file at the view level is ignored by the loader (expected only "
                                        "<view>/ folders here); move or delete it")
            continue
        pkls = _sequence_pickles(v.path, report)
        if pkls:
            sequences.append(pkls)
    return sequences


def _sequence_pickles(path: str, report: ValidationReport) -> List[str]:
    """The pickles of one view folder (the sequence's modalities). An empty folder is skipped
    by the loader (a warning); a folder with files but no pickle is rejected (an error), and so
    is an entry named ``*.pkl`` that is not a regular file (a FIFO, which would block the
    reader forever, or a folder): the loader would take it for a modality."""
    entries = _sorted_entries(path)
    names = [e.name for e in entries]
    for n in names:
        if _is_temp(n):
            report.add(WARNING, os.path.join(path, n), "leftover temp file of an interrupted write; delete it")
    if not names:
        report.add(WARNING, path, "empty sequence folder; the loader skips it")
        return []
    pkls = []
    for e in (e for e in entries if e.name.endswith(".pkl")):
        if e.is_file():
            pkls.append(e.path)
        else:
            report.add(ERROR, e.path, f"not a regular file ({_kind(e.path)}) although named like a pickle; the loader "
                                      "would read it as one of the sequence's modalities — remove or rename it")
    if not pkls and any(n.endswith(".pkl") for n in names):
        return []  # already reported
    if not pkls:
        shown = ", ".join(n for n in names[:3])
        report.add(ERROR, path, f"sequence folder holds no .pkl file (only {shown}); the loader "
                                "rejects it — remove the folder or add the sequence's pickle")
    return pkls


def _kind(path: str) -> str:
    """What a path that is not a regular file is, in words (``stat`` does not open it)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "a broken link"
    return "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a plain file"


def _check_partition(
    partition_path: Path, root: Path, sequences: Dict[str, List[List[str]]], report: ValidationReport
) -> Optional[Dict[str, List[str]]]:
    """Read the partition with the loader's reader and compare it with the subjects on disk;
    returns it, or None when it cannot be read (an error in ``report``)."""
    try:
        partition = read_partition(partition_path)
    except DatasetError as exc:
        report.add(ERROR, partition_path, _without_path(str(exc), partition_path))
        return None
    on_disk = set(sequences)
    for key in ("TRAIN_SET", "TEST_SET"):
        _check_split_subjects(partition_path, root, key, partition[key], on_disk, report)
    _check_overlap_and_unlisted(partition_path, root, partition, on_disk, report)
    if "PROBE_SET" in partition:
        _check_probes(partition_path, root, partition, sequences, report)
    return partition


def _shown(names: Sequence[str]) -> str:
    """The first five names, and `` ...`` when there are more."""
    return f"{', '.join(names[:5])}{' ...' if len(names) > 5 else ''}"


def _check_split_subjects(
    partition_path: Path, root: Path, key: str, listed: List[str], on_disk: set, report: ValidationReport
) -> None:
    """One split's subjects against the disk: all missing is an error (wrong root or
    partition), some missing a warning (the loader skips them), duplicates a warning."""
    missing = [s for s in listed if s not in on_disk]
    if listed and len(missing) == len(listed):
        report.add(ERROR, partition_path, f"none of the {len(listed)} {key} subjects exist under {root} "
                                          f"(e.g. {listed[:3]}); wrong dataset_root or partition?")
    elif missing:
        report.add(WARNING, partition_path, f"{len(missing)} {key} subjects are not under {root} and will be "
                                            f"skipped: {_shown(missing)}")
    duplicates = [s for s, n in Counter(listed).items() if n > 1]
    if duplicates:
        report.add(WARNING, partition_path, f"{key} lists subjects twice: {duplicates[:5]}")


def _check_overlap_and_unlisted(
    partition_path: Path, root: Path, partition: Dict[str, List[str]], on_disk: set, report: ValidationReport
) -> None:
    """Warn about subjects in both splits (test subjects seen in training inflate results)
    and subjects on disk in neither split (never used)."""
    overlap = sorted(set(partition["TRAIN_SET"]) & set(partition["TEST_SET"]))
    if overlap:
        report.add(WARNING, partition_path, f"{len(overlap)} subjects are in both TRAIN_SET and TEST_SET "
                                            f"(e.g. {overlap[:3]}); training on test subjects inflates results")
    unlisted = sorted(on_disk - set(partition["TRAIN_SET"]) - set(partition["TEST_SET"]))
    if unlisted:
        report.add(WARNING, root, f"{len(unlisted)} subjects on disk are in neither TRAIN_SET nor TEST_SET and "
                                  f"are never used: {_shown(unlisted)}")


def _check_probes(
    partition_path: Path, root: Path, partition: Dict[str, List[str]], sequences: Dict[str, List[List[str]]],
    report: ValidationReport,
) -> None:
    """PROBE_SET entries (``<subject>-<type>-<view>``) must be test sequences on disk: none
    found is an error (the Gait3D evaluation would have no probe), some missing a warning."""
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


def validate_root(
    root: str | Path,
    partition: Optional[str | Path] = None,
    workers: int = 1,
    frame_threshold: int = 0,
    expected_joints: Optional[Sequence[int]] = None,
    joint_format: Optional[str] = None,
) -> ValidationReport:
    """Check a dataset root (and optionally its partition) and return every issue found.

    Args:
        root: ``<root>/<subject>/<type>/<view>/*.pkl``.
        partition: the partition JSON the configs will use.
        workers: processes reading pickles.
        frame_threshold: report sequences that ``data_cfg.frame_threshold`` would drop.
        expected_joints: allowed joint counts (e.g. ``(17,)`` for a COCO dataset).
        joint_format: ``coco`` (17 joints), ``openpose`` or ``alphapose`` (18): the same as
            ``expected_joints`` with that count, named in the messages.

    Without an expected joint count, the pickles whose joint count differs from the most common
    one are errors; pickles without exactly 3 channels (x, y, confidence) are errors too. Each
    such pickle is named, and one line at the root gives the counts.
    """
    root = require_dir(root, "dataset root")
    expected = _expected_joints(expected_joints, joint_format)
    report = ValidationReport(root=str(root))
    sequences = _walk(root, report)
    if not sequences:
        report.add(ERROR, root, "no subject folders; a dataset root holds <subject>/<type>/<view>/*.pkl")
    info = _check_pickles(sequences, workers, report)
    checked: Dict[str, PickleMeta] = {}  # the pickles of the sequences whose pickles all loaded
    for pkls in (pkls for seqs in sequences.values() for pkls in seqs):
        report.sequences += 1
        _check_sequence(pkls, info, report, frame_threshold)
        if all(p in info for p in pkls):
            checked.update((p, info[p]) for p in pkls)
    _check_joint_counts(root, report, checked, expected, joint_format)
    _check_channels(root, report, checked)
    if partition is not None:
        _check_partition_and_index(Path(partition), root, sequences, report)
    return report


def _read_pickles(paths: List[str], workers: int) -> List[Tuple[str, Optional[PickleMeta], Optional[str]]]:
    """:func:`_check_pickle` of every path, in ``workers`` processes when there is more than one."""
    if workers > 1 and len(paths) > 1:
        with worker_pool(workers) as pool:
            return list(pool.map(_check_pickle, paths, chunksize=max(1, len(paths) // (workers * 8))))
    return [_check_pickle(p) for p in paths]


def _check_pickles(
    sequences: Dict[str, List[List[str]]], workers: int, report: ValidationReport
) -> Dict[str, PickleMeta]:
    """Load every pickle with the loader's reader; report the ones it refuses and return the
    shape and dtype of the others (path -> ``(T, V, C, dtype)``)."""
    paths = [p for seqs in sequences.values() for pkls in seqs for p in pkls]
    info: Dict[str, PickleMeta] = {}
    for path, meta, error in _read_pickles(paths, workers):
        if error is not None:
            report.add(ERROR, path, _without_path(error, path))
        else:
            info[path] = meta
    report.pickles = len(paths)
    return info


def _expected_joints(
    expected_joints: Optional[Sequence[int]], joint_format: Optional[str]
) -> Optional[Tuple[int, ...]]:
    """The allowed joint counts: ``expected_joints``, or the count of ``joint_format``."""
    if joint_format is None:
        return tuple(expected_joints) if expected_joints else None
    if joint_format not in JOINT_FORMATS:
        raise ConversionError(f"unknown joint format {joint_format!r}; one of {sorted(JOINT_FORMATS)}")
    count = JOINT_FORMATS[joint_format]
    if expected_joints and count not in expected_joints:
        raise ConversionError(f"joint format {joint_format} has {count} joints, not {list(expected_joints)}; "
                              "give one of the two")
    return (count,)


def _check_sequence(
    pkls: List[str], info: Dict[str, PickleMeta], report: ValidationReport, frame_threshold: int,
) -> None:
    """Checks on one sequence whose pickles all loaded (a refused pickle was reported already):
    modality lengths and length (one frame, ``frame_threshold``); and its counts in the
    report's statistics."""
    metas = [info[p] for p in pkls if p in info]
    if len(metas) != len(pkls):
        return
    if len({m[0] for m in metas}) > 1:
        report.add(ERROR, Path(pkls[0]).parent, f"modalities have different frame counts "
                                                f"{[m[0] for m in metas]}; every pickle of a sequence "
                                                "must have the same length")
    t = _count_sequence(metas, report)
    _check_length(pkls[0], t, frame_threshold, report)


def _count_sequence(metas: List[PickleMeta], report: ValidationReport) -> int:
    """Add one sequence (its first modality's length) to the report's statistics; returns the length."""
    t = metas[0][0]
    report.frames += t
    report.min_length = t if report.min_length is None else min(report.min_length, t)
    report.max_length = t if report.max_length is None else max(report.max_length, t)
    for m in metas:
        report.joints[m[1]] += 1
        report.channels[m[2]] += 1
        report.dtypes[m[3]] += 1
    return t


def _check_length(path: str, t: int, frame_threshold: int, report: ValidationReport) -> None:
    """A one-frame sequence is an error (the loader refuses it: gait needs motion); one that
    ``data_cfg.frame_threshold`` would drop is a warning."""
    if t < 2:
        report.add(ERROR, path, "one-frame sequence; gait needs motion — remove it or set "
                                "data_cfg.frame_threshold: 1 to drop such sequences")
    elif frame_threshold and t <= frame_threshold:
        report.add(WARNING, path, f"{t} frames <= data_cfg.frame_threshold {frame_threshold}: "
                                  "dropped from the index")


def _check_joint_counts(
    root: Path, report: ValidationReport, pickles: Dict[str, PickleMeta], expected: Optional[Tuple[int, ...]],
    joint_format: Optional[str],
) -> None:
    """One model takes one joint format. With an expected count, every pickle without it is an
    error; without, every pickle whose count differs from the most common one (the dataset's
    format, as far as the data tells). Each is named, and one line at the root gives the counts."""
    counts = Counter(m[1] for m in pickles.values())
    if expected:
        wanted = " or ".join(map(str, expected)) + (f" ({joint_format})" if joint_format else "")
        odd = {p: m[1] for p, m in pickles.items() if m[1] not in expected}
        for p, v in odd.items():
            report.add(ERROR, p, f"{v} joints, expected {wanted}")
        if odd:
            report.add(ERROR, root, f"{len(odd)} of {len(pickles)} pickles do not have {wanted} joints "
                                    f"({_counts(counts, 'V')})")
        return
    if len(counts) < 2:
        return
    (major, n_major), = counts.most_common(1)
    for p, m in pickles.items():
        if m[1] != major:
            report.add(ERROR, p, f"{m[1]} joints, while {n_major} of {len(pickles)} pickles have {major}; "
                                 "one dataset uses one joint format")
    report.add(ERROR, root, f"mixed joint counts ({_counts(counts, 'V')}): {len(pickles) - n_major} of {len(pickles)} "
                            f"pickles differ from the most common {major}; one dataset uses one joint format "
                            f"({_TO_COCO17})")


def _check_channels(root: Path, report: ValidationReport, pickles: Dict[str, PickleMeta]) -> None:
    """The models read x, y and confidence: a pickle with another number of channels is an
    error (named), and one line at the root gives the counts."""
    odd = {p: m[2] for p, m in pickles.items() if m[2] != CHANNELS}
    for p, c in odd.items():
        report.add(ERROR, p, f"{c} channels per joint; the models take {CHANNELS} (x, y, confidence) — "
                             "re-convert it with the detector's confidence")
    if odd:
        counts = Counter(m[2] for m in pickles.values())
        report.add(ERROR, root, f"{len(odd)} of {len(pickles)} pickles do not have {CHANNELS} channels "
                                f"({_counts(counts, 'C')})")


def _counts(counter: Counter, name: str) -> str:
    """``V=17: 7, V=18: 1``: each value of ``name`` and how many pickles have it, by value."""
    return ", ".join(f"{name}={k}: {n}" for k, n in sorted(counter.items()))


def _check_partition_and_index(
    partition_path: Path, root: Path, sequences: Dict[str, List[List[str]]], report: ValidationReport
) -> None:
    """Check the partition; if nothing is wrong so far, index each split with the loader's own
    :func:`build_index`, so that a disagreement between this walk and the loader shows up here."""
    part = _check_partition(partition_path, root, sequences, report)
    if part is None or report.errors:
        return
    for key in ("TRAIN_SET", "TEST_SET"):
        try:
            build_index(root, [s for s in part[key] if s in sequences])
        except DatasetError as exc:
            report.add(ERROR, root, str(exc))
