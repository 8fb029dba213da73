"""Registered ``SkeletonMap`` transform: pose sequences rendered into skeleton maps on the fly.

``SkeletonMap`` turns a pose sequence ``[T, V, 3]`` (x, y, confidence in image pixels; V = 17
COCO joints, or 18 OpenPose/AlphaPose joints re-indexed to COCO-17) into the two-channel maps
SkeletonGait trains on, float32 ``[T, 2, 64, 64]`` on the 0..255 scale of the stored uint8 maps
(channel 0 limbs, channel 1 joints), so that the map transforms of upstream's recipes follow it
unchanged (``RandomPerspective`` on 64x64, ``BaseSilCuttingTransform`` keeping columns 10..53
and dividing by 255, ``RandomHorizontalFlip``, ``RandomRotate``). No map dataset is written.

The original renders the maps offline, one whole sequence at a time, and imputes missing joints
from *all* frames of the sequence. To see the same frames, the transform does that step in its
whole-sequence hook :meth:`SkeletonMap.prepare_sequence`, which the collator calls on the
loaded sequence before sampling frames (:func:`fastposegait.data.collate.sequence_preparer`);
so ``SkeletonMap`` must be the first transform of its chain. The per-frame part (centre and
scale, Gaussians, grey levels, crop and resize) then runs on the sampled frames only: on the
CPU in the DataLoader worker (:meth:`SkeletonMap.__call__`), or batched on the model's device
with ``trainer_cfg.transform_on: device`` (:meth:`SkeletonMap.batched`).

Example config (the first three map transforms of upstream's CCPG recipe)::

    transform:
      - type: Compose
        trf_cfg:
          - type: SkeletonMap
          - type: RandomPerspective
            prob: 0.2
          - type: BaseSilCuttingTransform
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from ...errors import ConfigError, PoseFileError
from ...registry import TRANSFORMS
from ..skeleton import OPENPOSE_TO_COCO
from ..transforms import Transform
from .batched import render_canvas
from .exact import BODY_HEIGHT, CANVAS_SIZE, HIP_JOINTS, as_coco17, to_canvas
from .impute import fill_missing_joints

__all__ = ["SkeletonMap", "canvas_poses"]

#: joint formats the transform takes: 17 COCO joints, or 18 OpenPose-order joints (re-indexed)
JOINT_FORMATS = {"coco": 17, "openpose": 18, "alphapose": 18}


@TRANSFORMS.register("SkeletonMap")
class SkeletonMap(Transform):
    """Render a pose sequence ``[T, V, 3]`` into skeleton maps float32 ``[T, 2, 64, 64]`` (0..255).

    Args:
        sigma: Gaussian width on the 128x128 canvas (the original's 8.0).
        quantise: the grey levels and truncations of the stored uint8 maps (True, equal to
            the offline maps), or floating point throughout (False: within a few grey levels
            of them, without their rounding steps).
        joint_format: the data's joint layout, ``coco`` (17 joints) or ``openpose`` /
            ``alphapose`` (18 joints, re-indexed to COCO-17 as the original's
            ``transfer_to_coco17``); the maps are always drawn from COCO-17.
    """

    min_channels = 3  # the confidences are the Gaussians' peaks
    output_channels = 2  # limb and joint maps, not pose channels

    def __init__(self, sigma: float = 8.0, quantise: bool = True, joint_format: str = "coco") -> None:
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not (math.isfinite(sigma) and sigma > 0):
            raise ConfigError(f"SkeletonMap: sigma must be a finite number > 0, got {sigma!r}")
        if not isinstance(quantise, bool):
            raise ConfigError(f"SkeletonMap: quantise must be true or false, got {quantise!r}")
        if joint_format not in JOINT_FORMATS:
            raise ConfigError(f"SkeletonMap: joint_format must be one of {', '.join(JOINT_FORMATS)}, got "
                              f"{joint_format!r}")
        self.sigma = float(sigma)
        self.quantise = quantise
        self.joint_format = joint_format

    def prepare_sequence(self, seq: np.ndarray) -> np.ndarray:
        """The whole sequence as COCO-17 float64 ``[T, 17, 3]`` with missing coordinates (exactly
        0.0) imputed from the other frames (:func:`~.impute.fill_missing_joints`), as the
        original does before anything else. Called by the collator before frame sampling."""
        return fill_missing_joints(self._coco(seq))

    def __call__(self, seq: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        """Maps of already prepared frames (see :meth:`prepare_sequence`); an 18-joint input is
        re-indexed here too. Rendered on the CPU in this process."""
        canvas = to_canvas(self._coco(seq))
        maps = render_canvas(torch.from_numpy(canvas), self.sigma, self.quantise)
        return maps.numpy()

    def batched(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """Device twin: prepared poses ``[B, T, V, 3]`` -> maps ``[B, T, 2, 64, 64]`` float32 on
        ``x.device``, computed in float64 like the worker path (equal to it when the poses are
        float32-exact; an imputed coordinate rounded to float32 by the collator can move a few
        pixels by one grey level)."""
        if x.dim() != 4 or x.shape[-1] != 3 or x.shape[2] not in (17, 18):
            raise PoseFileError(f"SkeletonMap (on the device) expects a batch of pose sequences [B, T, V, 3] with "
                                f"V = 17 (COCO) or 18 (OpenPose order), got shape {tuple(x.shape)}")
        if x.shape[2] == 18:
            x = x[:, :, torch.as_tensor(OPENPOSE_TO_COCO, device=x.device)]
        batch, frames = x.shape[:2]
        canvas = canvas_poses(x.reshape(batch * frames, 17, 3).to(torch.float64))
        maps = render_canvas(canvas, self.sigma, self.quantise)
        return maps.reshape(batch, frames, *maps.shape[1:])

    def _coco(self, seq: np.ndarray) -> np.ndarray:
        return as_coco17(seq)  # a PoseFileError names a wrong shape, dtype or non-finite value


def canvas_poses(poses: Tensor) -> Tensor:
    """Torch twin of :func:`~.exact.to_canvas`: ``[F, 17, 3]`` -> canvas coordinates (hip
    midpoint at (64, 64), joints spanning 85 px vertically), confidences unchanged, with the
    same float operations (a frame whose joints all lie at one height gets non-finite
    coordinates, which draw nothing)."""
    xy = poses[..., :2]
    hip = (xy[:, HIP_JOINTS[0]] + xy[:, HIP_JOINTS[1]]) / 2
    y = xy[..., 1]
    extent = y.amax(dim=1) - y.amin(dim=1)
    scale = BODY_HEIGHT / extent
    moved = (xy - hip[:, None, :]) * scale[:, None, None] + CANVAS_SIZE / 2
    return torch.cat((moved, poses[..., 2:]), dim=-1)
