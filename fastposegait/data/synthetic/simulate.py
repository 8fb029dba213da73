"""One detected pose sequence from a subject, a condition and a camera: the 3-D walk
(:func:`~.kinematics.walk_3d`), what the camera sees (:func:`~.visibility.observe`) and the
detector (:func:`~.detector.apply_detector`), chained."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .body import SequenceVariation, SubjectParams, sample_variation
from .camera import Camera
from .conditions import Condition
from .detector import DetectorParams, apply_detector
from .joints import check_joint_format, select_joints
from .kinematics import walk_3d
from .visibility import observe

# Video frame rate of CASIA-B and OU-MVLP (25 fps); used for every layout.
DEFAULT_FPS = 25.0


def simulate_walk(
    subject: SubjectParams,
    condition: Condition,
    camera: Camera,
    num_frames: int,
    rng: np.random.Generator,
    joint_format: str = "coco",
    *,
    variation: Optional[SequenceVariation] = None,
    detector: Optional[DetectorParams] = None,
    fps: float = DEFAULT_FPS,
    time_offset_s: float = 0.0,
    appearance_bias: Optional[np.ndarray] = None,
) -> np.ndarray:
    """One detected pose sequence ``[T, V, 3]`` float32 (V = 17 COCO or 18 OpenPose).

    The walk is centred on time ``time_offset_s`` (the middle frame); ``variation`` defaults to
    a fresh lab-style draw from ``rng``; ``appearance_bias`` (from
    :func:`~.detector.sample_appearance_bias`) defaults to none.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    joint_format = check_joint_format(joint_format)
    if variation is None:
        variation = sample_variation(rng)
    times = (np.arange(num_frames) - (num_frames - 1) / 2.0) / fps + time_offset_s
    points = walk_3d(subject, condition, variation, times)
    return detect(points, subject, condition, camera, rng, detector, joint_format, appearance_bias)


def detect(
    points: np.ndarray,
    subject: SubjectParams,
    condition: Condition,
    camera: Camera,
    rng: np.random.Generator,
    detector: Optional[DetectorParams],
    joint_format: str,
    appearance_bias: Optional[np.ndarray],
) -> np.ndarray:
    """Detector output ``[T, V, 3]`` float32 in ``joint_format`` for a 3-D walk ``points``
    ``[T, 18, 3]`` seen by ``camera``."""
    view = observe(points, camera, subject.height_m)
    detected = apply_detector(view, condition, rng, detector, appearance_bias)
    return np.ascontiguousarray(select_joints(detected, joint_format), dtype=np.float32)
