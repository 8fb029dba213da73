"""What a camera sees of a 3-D walk before the detector: projected joints, depth, how far the
walker faces the camera, and a self-occlusion score per joint."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

from .camera import Camera, project
from .joints import (L_ANK, L_EAR, L_ELB, L_EYE, L_HIP, L_KNE, L_SHO, L_WRI, NOSE,
                     R_ANK, R_EAR, R_ELB, R_EYE, R_HIP, R_KNE, R_SHO, R_WRI)

# Self-occlusion model weights (chosen): how much of a far-side joint a side view hides when
# it does not overlap the body (first number) and when it does (first + second).
_OCC_ARM = (0.35, 0.65)
_OCC_LEG = (0.3, 0.7)
_OCC_TRUNK = 0.5     # far shoulder/hip in a pure side view
# Overlap widths in units of stature in pixels: trunk half-width, limb width.
_TRUNK_HALF_WIDTH = 0.12
_LIMB_WIDTH = 0.06
_ARM_JOINTS = np.array([L_ELB, L_WRI, R_ELB, R_WRI])


@dataclass
class ProjectedWalk:
    """A 3-D walk seen by a camera, before the detector.

    Attributes:
        uv: ``[T, J, 2]`` pixel coordinates (x right, y down).
        depth: ``[T, J]`` distance along the optical axis (m); <= 0 means behind the camera.
        occlusion: ``[T, J]`` self-occlusion in [0, 1] (1 = fully hidden).
        facing: ``[T]`` cosine between the walker's front and the direction to the camera.
        scale_px: ``[T]`` the walker's stature in pixels at the pelvis depth.
        image_size: ``(width, height)``.
    """

    uv: np.ndarray
    depth: np.ndarray
    occlusion: np.ndarray
    facing: np.ndarray
    scale_px: np.ndarray
    image_size: Tuple[int, int]


def observe(points: np.ndarray, camera: Camera, height_m: float) -> ProjectedWalk:
    """Project a 3-D walk ``[T, 18, 3]`` and score self-occlusion per joint.

    Occlusion: joints on the side turned away from the camera (far side, from the trunk's left
    axis) are hidden in proportion to how side-on the view is, more when they overlap the trunk
    (arms) or the near leg (legs) in the image; the nose and eyes are hidden when the walker
    faces away, the far ear and eye in side views.
    """
    uv, depth = project(points, camera)
    side, facing = _orientation(points, camera)
    pelvis_depth = 0.5 * (depth[:, L_HIP] + depth[:, R_HIP])
    scale_px = camera.focal_px * height_m / np.maximum(pelvis_depth, 1e-6)
    occ = _self_occlusion(uv, scale_px, side, facing)
    return ProjectedWalk(uv, depth, occ, facing, scale_px, (camera.width, camera.height))


def _orientation(points: np.ndarray, camera: Camera) -> Tuple[np.ndarray, np.ndarray]:
    """Per frame, the cosines between the direction to the camera and the walker's left
    (``side`` > 0: camera on the left) and front (``facing`` > 0: walker faces the camera)."""
    left = (points[:, L_HIP] - points[:, R_HIP]) + (points[:, L_SHO] - points[:, R_SHO])
    left[:, 2] = 0.0
    left /= np.maximum(np.sqrt(np.sum(left ** 2, axis=-1, keepdims=True)), 1e-9)
    forward = np.stack([left[:, 1], -left[:, 0], np.zeros(len(left))], -1)  # left x up
    to_cam = np.asarray(camera.position) - 0.5 * (points[:, L_HIP] + points[:, R_HIP])
    to_cam /= np.maximum(np.sqrt(np.sum(to_cam ** 2, axis=-1, keepdims=True)), 1e-9)
    return np.sum(left * to_cam, axis=-1), np.sum(forward * to_cam, axis=-1)


def _self_occlusion(uv: np.ndarray, scale_px: np.ndarray, side: np.ndarray, facing: np.ndarray) -> np.ndarray:
    """Occlusion ``[T, J]`` in [0, 1] from the image positions and the walker's orientation."""
    far_left = np.clip(-side, 0.0, 1.0)[:, None]
    far_right = np.clip(side, 0.0, 1.0)[:, None]
    away = np.clip(-facing, 0.0, 1.0)
    occ = np.zeros(uv.shape[:2], dtype=np.float64)
    # Arms: distance to the trunk axis (shoulder centre -> hip centre) in the image.
    top = 0.5 * (uv[:, L_SHO] + uv[:, R_SHO])
    axis = 0.5 * (uv[:, L_HIP] + uv[:, R_HIP]) - top
    axis_len2 = np.maximum(np.sum(axis ** 2, axis=-1), 1e-9)
    rel = uv[:, _ARM_JOINTS] - top[:, None]
    u = np.clip(np.sum(rel * axis[:, None], axis=-1) / axis_len2[:, None], 0.0, 1.0)
    d2 = np.sum((rel - u[..., None] * axis[:, None]) ** 2, axis=-1)
    overlap = np.exp(-d2 / (_TRUNK_HALF_WIDTH * scale_px[:, None]) ** 2)
    far_arm = np.concatenate([np.repeat(far_left, 2, 1), np.repeat(far_right, 2, 1)], axis=1)
    occ[:, _ARM_JOINTS] = far_arm * (_OCC_ARM[0] + _OCC_ARM[1] * overlap)
    # Legs: overlap of a far knee/ankle with the near one.
    d2 = np.sum((uv[:, [L_KNE, L_ANK]] - uv[:, [R_KNE, R_ANK]]) ** 2, axis=-1)
    overlap = _OCC_LEG[0] + _OCC_LEG[1] * np.exp(-d2 / (_LIMB_WIDTH * scale_px[:, None]) ** 2)
    occ[:, [L_KNE, L_ANK]] = far_left * overlap
    occ[:, [R_KNE, R_ANK]] = far_right * overlap
    occ[:, [L_SHO, L_HIP]] = _OCC_TRUNK * far_left
    occ[:, [R_SHO, R_HIP]] = _OCC_TRUNK * far_right
    occ[:, L_EAR], occ[:, R_EAR] = far_left[:, 0], far_right[:, 0]
    occ[:, L_EYE] = away + 0.5 * far_left[:, 0]
    occ[:, R_EYE] = away + 0.5 * far_right[:, 0]
    occ[:, NOSE] = away
    np.clip(occ, 0.0, 1.0, out=occ)
    return occ
