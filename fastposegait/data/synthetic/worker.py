"""The per-subject worker: simulate and write every sequence of one subject.

A layout writer turns its plan into one :class:`SubjectTask` per subject (picklable, so tasks
run in worker processes); :func:`generate_subject` needs nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from fastposegait.data.io import save_pickle

from .body import SequenceVariation, SubjectParams, sample_subject, sample_variation
from .camera import Camera, WildCamera, project, sample_wild_camera
from .conditions import WILD_CONDITION_PROBS, WILD_CONDITIONS, Condition, sample_condition
from .detector import MIN_DEPTH_M, DetectorParams, sample_appearance_bias
from .joints import L_HIP, R_HIP
from .kinematics import walk_3d
from .seeding import STREAM_APPEARANCE, STREAM_SEQUENCE, STREAM_SUBJECT, STREAM_WALK, crc, rng_from
from .simulate import detect

# Largest shift (frames) between the windows that two cameras of one walk record.
_WINDOW_SHIFT = 5


@dataclass(frozen=True)
class SeqSpec:
    """One sequence to write: ``<root>/<subject_dir>/<type_name>/<view_name>/<view_name>.pkl``,
    seen by ``camera`` (lab layouts) or by a camera drawn from ``wild_camera``."""

    subject_dir: str
    type_name: str
    view_name: str
    condition: str                 # nm / bg / cl / wild (drawn from the in-the-wild mix)
    walk_key: str                  # specs with the same key share one 3-D walk
    appearance_key: str            # ... and with the same key and clothes, one appearance bias
    camera: Optional[Camera] = None
    wild_camera: Optional[WildCamera] = None


@dataclass(frozen=True)
class SubjectTask:
    """Everything the worker needs to write one subject's sequences."""

    root: str
    seed: int
    layout_tag: int
    subject_index: int
    specs: Tuple[SeqSpec, ...]
    frames: Tuple[int, int]
    fps: float
    joint_format: str
    wild: bool
    detector: DetectorParams

    def rng(self, stream: int, *keys: int) -> np.random.Generator:
        """Generator of one random stream of this subject."""
        return rng_from(self.seed, self.layout_tag, self.subject_index, stream, *keys)


@dataclass(frozen=True)
class _Walk:
    """One 3-D walk on a frame grid, from which each camera records a window."""

    variation: SequenceVariation
    condition: Condition
    points: np.ndarray   # [frames, 18, 3] joints on the grid
    pelvis: np.ndarray   # [frames, 3]
    grid_start: int      # frame index (0 = middle of the walk) of the grid's first frame


def generate_subject(task: SubjectTask) -> Tuple[int, int]:
    """Simulate and write every sequence of one subject; returns (sequences, frames).

    Sequences sharing a ``walk_key`` are cameras watching the same walk: the 3-D walk is
    computed once on a frame grid, and each camera records its own window of it (own length,
    start shifted by up to ±5 frames) through its own detector draw. A window is moved (and if
    need be shortened, not below the minimum length) to where the walker's pelvis is inside
    the image, as a recording starts when the person is in view; limbs may still leave the
    frame at the ends. Frames in which the detector finds no joint at all are not written,
    like the upstream converters skip frames without a person.
    """
    subject = sample_subject(task.rng(STREAM_SUBJECT))
    groups: Dict[str, List[SeqSpec]] = {}
    for spec in task.specs:
        groups.setdefault(spec.walk_key, []).append(spec)
    total_frames = 0
    for walk_key, specs in groups.items():
        walk = _simulate_walk_3d(task, subject, walk_key, specs[0].condition)
        total_frames += sum(_record(task, subject, walk, spec) for spec in specs)
    return len(task.specs), total_frames


def _simulate_walk_3d(task: SubjectTask, subject: SubjectParams, walk_key: str, kind: str) -> _Walk:
    """The walk ``walk_key`` of ``subject`` in condition ``kind`` on a frame grid wide enough
    to slide any window."""
    rng_walk = task.rng(STREAM_WALK, crc(walk_key))
    variation = sample_variation(rng_walk, wild=task.wild)
    if kind == "wild":
        kind = str(rng_walk.choice(WILD_CONDITIONS, p=WILD_CONDITION_PROBS))
    condition = sample_condition(kind, subject, rng_walk)
    hi = task.frames[1]
    grid_start = -hi - _WINDOW_SHIFT
    points = walk_3d(subject, condition, variation, np.arange(grid_start, hi + _WINDOW_SHIFT + 1) / task.fps)
    pelvis = 0.5 * (points[:, L_HIP] + points[:, R_HIP])
    return _Walk(variation, condition, points, pelvis, grid_start)


def _record(task: SubjectTask, subject: SubjectParams, walk: _Walk, spec: SeqSpec) -> int:
    """Detect and write the sequence ``spec`` of ``walk``; returns its number of frames."""
    lo, hi = task.frames
    rng_seq = task.rng(STREAM_SEQUENCE, crc(spec.subject_dir), crc(spec.type_name), crc(spec.view_name))
    num_frames = int(rng_seq.integers(lo, hi + 1))
    first = -(num_frames // 2) + int(rng_seq.integers(-_WINDOW_SHIFT, _WINDOW_SHIFT + 1)) - walk.grid_start
    camera = spec.camera
    if camera is None:
        assert spec.wild_camera is not None
        camera = sample_wild_camera(spec.wild_camera, subject, walk.variation, num_frames, task.fps, rng_seq)
    first, num_frames = _fit_window(_pelvis_in_view(walk.pelvis, camera, subject.height_m), first, num_frames, lo)
    clothes = "coat" if walk.condition.name == "cl" else "plain"
    appearance = sample_appearance_bias(
        task.rng(STREAM_APPEARANCE, crc(clothes), crc(spec.appearance_key)), task.detector
    )
    seq = detect(walk.points[first:first + num_frames], subject, walk.condition, camera, rng_seq,
                 task.detector, task.joint_format, appearance)
    seen = seq[..., 2].any(axis=1)
    if not seen.all():
        seq = np.ascontiguousarray(seq[seen])
    path = Path(task.root) / spec.subject_dir / spec.type_name / spec.view_name / f"{spec.view_name}.pkl"
    # Atomic (an interrupted run leaves no partial file under the final name; temp names end
    # in .tmp, which the loader ignores) but not fsynced: the guarantee is against interruption
    # of the process, not against power loss, and syncing 10^4 small files would dominate the
    # run time.
    save_pickle(path, seq, fsync=False)
    return len(seq)


def _pelvis_in_view(pelvis: np.ndarray, camera: Camera, height_m: float) -> np.ndarray:
    """Frames whose pelvis projects inside the image, at least a tenth of a body height from
    the left/right borders."""
    uv, depth = project(pelvis, camera)
    margin = 0.1 * camera.focal_px * height_m / np.maximum(depth, 1e-6)
    return ((depth > MIN_DEPTH_M) & (uv[:, 0] >= margin) & (uv[:, 0] < camera.width - margin)
            & (uv[:, 1] >= 0) & (uv[:, 1] < camera.height))


def _fit_window(inside: np.ndarray, first: int, length: int, min_length: int) -> Tuple[int, int]:
    """Move the window ``[first, first + length)`` of a frame grid into the run of ``inside``
    frames it overlaps most, shortening it (not below ``min_length``) if the run is shorter."""
    if inside[first:first + length].all() or not inside.any():
        return first, length
    idx = np.flatnonzero(inside)
    breaks = np.flatnonzero(np.diff(idx) > 1)
    run_starts = np.concatenate([idx[:1], idx[breaks + 1]])
    run_ends = np.concatenate([idx[breaks], idx[-1:]]) + 1
    overlap = np.minimum(run_ends, first + length) - np.maximum(run_starts, first)
    r = int(np.argmax(overlap))
    run_start, run_end = int(run_starts[r]), int(run_ends[r])
    length = min(length, max(run_end - run_start, min_length))
    first = min(max(first, run_start), max(run_start, run_end - length))
    first = min(first, len(inside) - length)
    return first, length
