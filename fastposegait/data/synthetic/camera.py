"""Cameras: pinhole projection, the lab rigs (a camera at each view azimuth) and the
surveillance cameras of the in-the-wild layouts."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

from .body import SequenceVariation, SubjectParams


@dataclass(frozen=True)
class Camera:
    """A pinhole camera. ``rotation`` rows are the camera x (image right), y (image down) and
    z (optical axis) axes in world coordinates."""

    position: Tuple[float, float, float]
    rotation: Tuple[Tuple[float, float, float], ...]
    focal_px: float
    width: int
    height: int

    @classmethod
    def look_at(
        cls,
        position: Sequence[float],
        target: Sequence[float],
        focal_px: float,
        image_size: Tuple[int, int],
    ) -> "Camera":
        """Camera at ``position`` aimed at ``target`` with a level horizon; ``image_size`` is
        ``(width, height)`` in pixels, the principal point is the image centre."""
        pos = np.asarray(position, dtype=np.float64)
        forward = np.asarray(target, dtype=np.float64) - pos
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, (0.0, 0.0, 1.0))
        norm = np.linalg.norm(right)
        if norm < 1e-9:
            raise ValueError("camera must not look straight up or down")
        right /= norm
        down = np.cross(forward, right)
        rot = tuple(tuple(float(v) for v in axis) for axis in (right, down, forward))
        return cls(tuple(float(v) for v in pos), rot, float(focal_px), int(image_size[0]), int(image_size[1]))


def project(points: np.ndarray, camera: Camera) -> Tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates ``[..., 2]`` (x right, y down) and depth along the optical axis
    ``[...]`` (m; <= 0 behind the camera) of world points ``[..., 3]``."""
    rot = np.asarray(camera.rotation)
    cam = (points - np.asarray(camera.position)) @ rot.T
    depth = cam[..., 2]
    safe = np.where(depth > 1e-6, depth, 1e-6)
    uv = camera.focal_px * cam[..., :2] / safe[..., None]
    uv[..., 0] += camera.width / 2.0
    uv[..., 1] += camera.height / 2.0
    return uv, depth


def camera_at_azimuth(
    azimuth_deg: float,
    distance_m: float,
    height_m: float,
    focal_px: float,
    image_size: Tuple[int, int],
    target_height_m: float = 0.95,
) -> Camera:
    """Camera on a circle around the middle of a walk along +X, aimed at the walk's middle.

    Azimuth 0 faces the walker (they walk towards the camera), 90 sees their left side, 180
    their back, 270 their right side (CASIA-B / OU-MVLP view names read as azimuths).
    """
    a = np.deg2rad(azimuth_deg)
    pos = (distance_m * np.cos(a), distance_m * np.sin(a), height_m)
    return Camera.look_at(pos, (0.0, 0.0, target_height_m), focal_px, image_size)


@dataclass(frozen=True)
class CameraRig:
    """A lab's cameras: all at ``distance_m`` from the middle of the walk and ``height_m`` high,
    with the same focal length and image size; only the azimuth differs."""

    distance_m: float
    height_m: float
    focal_px: float
    image_size: Tuple[int, int]

    def camera(self, azimuth_deg: float) -> Camera:
        """The rig's camera at ``azimuth_deg`` (see :func:`camera_at_azimuth`)."""
        return camera_at_azimuth(azimuth_deg, self.distance_m, self.height_m, self.focal_px, self.image_size)


# CASIA-B: 320x240 video; cameras 6.5 m from the middle of the walk, 1.0 m high; focal 330 px
# gives a walker ~85 px tall side-on and keeps a 110-frame walk (~5.7 m at 1.3 m/s) inside the
# 320-px frame.
CASIA_B_RIG = CameraRig(distance_m=6.5, height_m=1.0, focal_px=330.0, image_size=(320, 240))
# OU-MVLP: 1280x980 video; 4.5 m and 1100 px give a walker ~400 px tall, 40 frames (~2 m)
# stay in frame.
OUMVLP_RIG = CameraRig(distance_m=4.5, height_m=1.0, focal_px=1100.0, image_size=(1280, 980))


def views_as_azimuths(views: Sequence[str]) -> List[float]:
    """Lab view names (``'000'``, ``'090'``, ...) read as camera azimuths in degrees."""
    out = []
    for v in views:
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            raise ValueError(f"view {v!r} is not an azimuth in degrees (e.g. '000', '090')") from None
    if len(set(views)) != len(views):
        raise ValueError(f"views contain duplicates: {list(views)}")
    return out


@dataclass(frozen=True)
class WildCamera:
    """Camera drawn per sequence: placed ``distance`` (range, m) beyond the end of the walk
    path, at ``height_m`` (range), looking at the path's middle."""

    focal_px: Tuple[float, float]
    height_m: Tuple[float, float]
    distance_m: Tuple[float, float]
    image_size: Tuple[int, int]


# Street cameras of the GREW-like layout, one drawn per walk: full-HD frames, mounted 2.5-5 m
# high, 4-12 m beyond the end of the walk. The Gait3D-like layout has a fixed set of cameras
# instead (:func:`gait3d_cameras`).
GREW_CAMERA = WildCamera(focal_px=(1000.0, 1700.0), height_m=(2.5, 5.0), distance_m=(4.0, 12.0),
                         image_size=(1920, 1080))
GAIT3D_NUM_CAMERAS = 39


def gait3d_cameras(rng: np.random.Generator, num_cameras: int) -> List[WildCamera]:
    """The fixed cameras of a Gait3D-like site (a supermarket's ceiling): full-HD frames, each
    camera with its own focal length (1000-1500 px) and mounting height (2.5-3.5 m), seeing walks
    that end 3-11 m away (a 3-m range per camera)."""
    return [
        WildCamera(focal_px=(f, f), height_m=(h, h), distance_m=(d, d + 3.0), image_size=(1920, 1080))
        for f, h, d in zip(rng.uniform(1000.0, 1500.0, num_cameras),
                           rng.uniform(2.5, 3.5, num_cameras),
                           rng.uniform(3.0, 8.0, num_cameras))
    ]


def sample_wild_camera(
    spec: WildCamera,
    subject: SubjectParams,
    variation: SequenceVariation,
    num_frames: int,
    fps: float,
    rng: np.random.Generator,
) -> Camera:
    """Camera for an in-the-wild walk: beyond the end of the path (so the walker never reaches
    it), at a random height and focal length within ``spec``, aimed at the path's middle."""
    speed = subject.stride_m * variation.stride_scale * subject.cadence_spm / 120.0 * variation.cadence_scale
    half_path = 0.5 * speed * num_frames / fps + 0.2
    return Camera.look_at(
        (half_path + rng.uniform(*spec.distance_m), 0.0, rng.uniform(*spec.height_m)),
        (0.0, 0.0, 0.9),
        rng.uniform(*spec.focal_px),
        spec.image_size,
    )
