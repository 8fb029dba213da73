"""What every layout writer shares: argument checks, the dataset root, running the subject
tasks (in worker processes if asked), the partition file and the summary.

A writer calls :func:`start_run` first (it checks the common arguments before anything is
written), plans its subjects into :class:`~.worker.SubjectTask` s with :meth:`LayoutRun.task`,
calls :meth:`LayoutRun.prepare` once it knows the subject folders, and ends with
:meth:`LayoutRun.finish`.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from fastposegait.data.io import MAX_SEQUENCE_FRAMES, atomic_write

from .detector import WILD_DETECTOR, DetectorParams
from .joints import check_joint_format
from .seeding import LAYOUT_TAG, PLAN_KEY, rng_from
from .simulate import DEFAULT_FPS
from .worker import SeqSpec, SubjectTask, generate_subject

# Logged under the package's name (``fastposegait.data.synthetic``), as before the split.
logger = logging.getLogger(__name__.rsplit(".", 1)[0])

PathLike = Union[str, "os.PathLike[str]"]

# Layouts filmed in the wild: every walk has its own camera and a random condition.
_WILD_LAYOUTS = ("grew", "gait3d")


@dataclass
class GenerationSummary:
    """What a generator wrote.

    ``probe_truth`` (GREW only) maps each probe video id to the test subject who walks in it;
    it is also written to ``probe_truth_path``.
    """

    layout: str
    root: Path
    partition_path: Path
    joint_format: str
    seed: int
    num_subjects: int
    num_train: int
    num_test: int
    num_sequences: int
    num_frames: int
    workers: int
    seconds: float
    probe_truth_path: Optional[Path] = None
    probe_truth: Optional[Dict[str, str]] = field(default=None, repr=False)

    def __str__(self) -> str:
        lines = [
            f"layout:      {self.layout}",
            f"root:        {self.root}",
            f"partition:   {self.partition_path}",
            f"subjects:    {self.num_subjects} ({self.num_train} train / {self.num_test} test)",
            f"sequences:   {self.num_sequences} ({self.num_frames} frames, "
            f"{self.num_frames / max(self.num_sequences, 1):.1f} per sequence)",
            f"joints:      {self.joint_format}",
            f"seed:        {self.seed}",
            f"time:        {self.seconds:.2f} s with {self.workers} worker(s)",
        ]
        if self.probe_truth_path is not None:
            lines.append(f"probe truth: {self.probe_truth_path}")
        return "\n".join(lines)


@dataclass(frozen=True)
class LayoutRun:
    """The checked arguments of one layout writer's call, and the steps it shares."""

    layout: str
    root: Path
    partition_path: Path
    joint_format: str
    seed: int
    frames: Tuple[int, int]
    workers: int
    overwrite: bool
    detector: DetectorParams
    start: float

    @property
    def tag(self) -> int:
        """The layout's key in every seed."""
        return LAYOUT_TAG[self.layout]

    def plan_rng(self, *keys: int) -> np.random.Generator:
        """Generator for planning the layout (split, video ids, cameras), apart from any
        subject's streams."""
        return rng_from(self.seed, self.tag, PLAN_KEY, *keys)

    def task(self, subject_index: int, specs: Sequence[SeqSpec]) -> SubjectTask:
        """The worker task writing ``specs``, the sequences of subject ``subject_index``."""
        return SubjectTask(str(self.root), self.seed, self.tag, subject_index, tuple(specs), self.frames,
                           DEFAULT_FPS, self.joint_format, self.layout in _WILD_LAYOUTS, self.detector)

    def prepare(self, subject_dirs: Sequence[str], extra_files: Sequence[Path] = ()) -> None:
        """Create the root and its marker; see :func:`_prepare_root` (the partition file is
        always among the files that must not be overwritten by accident)."""
        _prepare_root(self.root, [self.partition_path, *extra_files], subject_dirs, self.overwrite, self.layout)

    def finish(
        self,
        tasks: List[SubjectTask],
        partition: Dict[str, List[str]],
        num_train: int,
        num_test: int,
        probe_truth: Optional[Dict[str, str]] = None,
        probe_truth_path: Optional[Path] = None,
    ) -> GenerationSummary:
        """Run the tasks, write the partition (and GREW's probe truth) and summarise."""
        num_sequences, num_frames = _run_tasks(tasks, self.workers)
        # The partition is written last: a dataset with a partition file is complete.
        if probe_truth is not None and probe_truth_path is not None:
            _write_json(probe_truth_path, probe_truth)
        _write_json(self.partition_path, partition)
        summary = GenerationSummary(
            layout=self.layout,
            root=self.root,
            partition_path=self.partition_path,
            joint_format=self.joint_format,
            seed=self.seed,
            num_subjects=num_train + num_test,
            num_train=num_train,
            num_test=num_test,
            num_sequences=num_sequences,
            num_frames=num_frames,
            workers=self.workers,
            seconds=time.perf_counter() - self.start,
            probe_truth_path=probe_truth_path,
            probe_truth=probe_truth,
        )
        logger.info("generated %s dataset: %d sequences in %.2f s", self.layout, num_sequences, summary.seconds)
        return summary


def start_run(
    layout: str,
    root: PathLike,
    num_subjects: int,
    *,
    frames: Tuple[int, int],
    joint_format: str,
    seed: int,
    partition_path: Optional[PathLike],
    workers: int,
    overwrite: bool,
    detector: Optional[DetectorParams],
) -> LayoutRun:
    """Check the arguments every layout writer takes and start timing. Writes nothing.

    ``partition_path`` defaults to ``<root>/partition.json``; ``detector`` defaults to a lab
    detector, or a noisier one for the in-the-wild layouts."""
    start = time.perf_counter()
    _check_subjects(num_subjects)
    root_path, fmt = _check_common(root, seed, frames, workers, joint_format)
    if detector is None:
        detector = WILD_DETECTOR if layout in _WILD_LAYOUTS else DetectorParams()
    return LayoutRun(
        layout=layout,
        root=root_path,
        partition_path=Path(partition_path) if partition_path is not None else root_path / "partition.json",
        joint_format=fmt,
        seed=int(seed),
        frames=tuple(frames),
        workers=workers,
        overwrite=overwrite,
        detector=detector,
        start=start,
    )


def resolve_num_train(num_subjects: int, num_train: Optional[int], train_fraction: float) -> int:
    """``num_train`` checked, or by default ``train_fraction`` of the subjects (the benchmark's
    split, scaled), keeping at least one subject on each side."""
    if num_train is None:
        return int(min(max(round(num_subjects * train_fraction), 1), num_subjects - 1))
    if not isinstance(num_train, (int, np.integer)) or not 0 <= num_train <= num_subjects:
        raise ValueError(f"num_train must be an integer in [0, {num_subjects}], got {num_train!r}")
    return int(num_train)


def _check_common(
    root: PathLike, seed: int, frames: Tuple[int, int], workers: int, joint_format: str
) -> Tuple[Path, str]:
    """The dataset root as a path and the canonical joint format, after checking the seed,
    frame range and worker count."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if (len(frames) != 2 or not all(isinstance(f, (int, np.integer)) for f in frames)
            or frames[0] < 2 or frames[0] > frames[1]):
        raise ValueError(
            f"frames must be (min, max) integers with 2 <= min <= max (a one-frame sequence is not "
            f"a walk), got {frames!r}"
        )
    if frames[1] > MAX_SEQUENCE_FRAMES:
        raise ValueError(f"frames: a maximum of {int(frames[1]):,} frames is more than the {MAX_SEQUENCE_FRAMES:,} "
                         "a sequence file may hold (the loader refuses longer ones); lower the maximum")
    if not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    return Path(root), check_joint_format(joint_format)


def _check_subjects(num_subjects: int, minimum: int = 2) -> None:
    if not isinstance(num_subjects, (int, np.integer)) or num_subjects < minimum:
        raise ValueError(f"num_subjects must be an integer >= {minimum}, got {num_subjects!r}")


# The file a root the generator wrote holds (the name :mod:`fastposegait.data.autogen` uses
# too, which adds the generator arguments it compares to ``arguments``): ``overwrite`` replaces
# subject folders only in a root that has it, never in a real dataset's root.
MARKER_NAME = ".fastposegait_synthetic.json"
GENERATOR = "fastposegait.data.synthetic"


def _prepare_root(root: Path, extra_files: Sequence[Path], subject_dirs: Sequence[str], overwrite: bool,
                  layout: str = "") -> None:
    """Refuse to write into a non-empty root (or over an existing partition file) unless
    ``overwrite``, and with ``overwrite`` a non-empty root this generator did not write (no
    marker file); then create the root and its marker, and with ``overwrite`` clear the
    subject folders about to be written so no stale sequence survives (other entries of the
    root are left alone)."""
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"dataset root {root} exists and is not a directory")
    existing = [f for f in extra_files if f.exists()]
    non_empty = root.is_dir() and any(root.iterdir())
    if not overwrite:
        if non_empty:
            raise FileExistsError(
                f"dataset root {root} is not empty; choose an empty or new folder, or pass "
                "overwrite=True (--overwrite) to replace the generated subjects in it"
            )
        if existing:
            raise FileExistsError(
                f"{existing[0]} already exists; pass overwrite=True (--overwrite) to replace it"
            )
    elif non_empty and not (root / MARKER_NAME).is_file():
        raise FileExistsError(
            f"dataset root {root} is not empty and was not written by the synthetic generator (it has no "
            f"{MARKER_NAME}), so overwrite=True (--overwrite) would replace the subject folders of other "
            "data; choose an empty or new folder"
        )
    root.mkdir(parents=True, exist_ok=True)
    _write_marker(root, layout)
    if overwrite:
        for name in subject_dirs:
            target = root / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()


def _write_marker(root: Path, layout: str) -> None:
    """Mark ``root`` as written by this generator, before any subject (an interrupted
    generation can be overwritten too). Its content does not depend on the seed, the worker
    count or the paths, so two generations stay byte-comparable."""
    _write_json(root / MARKER_NAME, {"generator": GENERATOR, "layout": layout})


def _run_tasks(tasks: List[SubjectTask], workers: int) -> Tuple[int, int]:
    """Run every task, in ``workers`` processes if more than one; (sequences, frames) written."""
    if workers == 1 or len(tasks) <= 1:
        results = [generate_subject(t) for t in tasks]
    else:
        chunk = max(1, len(tasks) // (workers * 8))
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(generate_subject, tasks, chunksize=chunk))
    return sum(r[0] for r in results), sum(r[1] for r in results)


def _write_json(path: Path, obj: object) -> None:
    """Atomically write ``obj`` as indented JSON (not fsynced, like the sequences)."""
    payload = (json.dumps(obj, indent=1) + "\n").encode("utf-8")
    atomic_write(path, lambda f: f.write(payload), fsync=False)
