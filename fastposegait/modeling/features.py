"""Batched tensor versions of the input-feature builders.

Same math as the per-sample numpy transforms ``GaitGraph_MultiInput``, ``GaitTR_MultiInput``
and ``HOD_MultiInput`` in :mod:`fastposegait.data.transforms` (whose constant tables they
share), but on a whole batch ``[N, T, V, C]`` at once, on any device and in the input's
floating dtype. GaitGraph2 uses :func:`gaitgraph_multi_input` to rebuild its features for
test-time augmentation (the original loops per sample and per joint:
docs/upstream_differences.md, "GaitGraph2 TTA, batched").

Any number of leading axes is accepted: the last three are always ``T, V, C``.
"""
from __future__ import annotations

import math
from typing import Union

import torch
from torch import Tensor

from ..data.skeleton import JointFormat
from ..data.transforms import GAITGRAPH_ANGLE_EPS, as_joint_format, hod_angle_index

__all__ = ["gaitgraph_multi_input", "gaittr_multi_input", "hod_multi_input"]

JointFormatLike = Union[str, JointFormat]


def _prepare(x: Tensor, fmt: JointFormat, min_channels: int, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} expects a tensor [N, T, V, C], got {type(x).__name__}")
    if x.dim() < 3 or x.shape[-1] < min_channels or x.shape[-2] != fmt.num_joints:
        raise ValueError(
            f"{name} expects [N, T, V={fmt.num_joints}, C>={min_channels}] ({fmt.name} format), "
            f"got shape {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    return x


def _index(array, device: torch.device) -> Tensor:
    return torch.tensor(array, dtype=torch.long, device=device)  # copies: the tables are read-only


def _velocities(xy: Tensor) -> tuple[Tensor, Tensor]:
    """``xy(t+1) - xy(t)`` and ``xy(t+2) - xy(t)`` on axis -3, zero on the last two frames."""
    frames = xy.shape[-3]
    step1 = torch.zeros_like(xy)
    step2 = torch.zeros_like(xy)
    if frames >= 3:
        step1[..., : frames - 2, :, :] = xy[..., 1 : frames - 1, :, :] - xy[..., : frames - 2, :, :]
        step2[..., : frames - 2, :, :] = xy[..., 2:, :, :] - xy[..., : frames - 2, :, :]
    return step1, step2


def gaittr_multi_input(x: Tensor, joint_format: JointFormatLike = "coco") -> Tensor:
    """GaitTR's 10 channels ``[N, T, V, 10]`` from ``x [N, T, V, C>=2]`` (x, y used):
    position, position relative to the centre joint, two velocities (zero on the last two
    frames), bone vector."""
    fmt = as_joint_format(joint_format)
    x = _prepare(x, fmt, 2, "gaittr_multi_input")
    xy = x[..., :2]
    parents = _index(fmt.parents_array(), xy.device)
    relative = xy - xy[..., fmt.center : fmt.center + 1, :]
    step1, step2 = _velocities(xy)
    bones = xy - xy[..., parents, :]
    return torch.cat((xy, relative, step1, step2, bones), dim=-1)


def gaitgraph_multi_input(x: Tensor, joint_format: JointFormatLike = "coco") -> Tensor:
    """GaitGraph2's branches ``[N, T, V, 3, 5]`` from ``x [N, T, V, 3]`` (x, y, confidence).

    Branch 0 ``x, y, c, x - x_ctr, y - y_ctr``; branch 1 ``vx1, vy1, 0, c, vy2``; branch 2
    ``bx, by, 0, c, arccos(by / (|b| + 1e-4))``. Channel 3 of branches 1 and 2 is the
    confidence, as in the original (docs/upstream_differences.md, "GaitGraph_MultiInput
    confidence channel (kept)").
    """
    fmt = as_joint_format(joint_format)
    x = _prepare(x, fmt, 3, "gaitgraph_multi_input")
    xy = x[..., :2]
    conf = x[..., 2]
    zeros = torch.zeros_like(conf)
    parents = _index(fmt.parents_array(), xy.device)
    relative = xy - xy[..., fmt.center : fmt.center + 1, :]
    step1, step2 = _velocities(xy)
    bones = xy - xy[..., parents, :]
    angle = _bone_angle(bones[..., 0], bones[..., 1])
    branches = (
        (xy[..., 0], xy[..., 1], conf, relative[..., 0], relative[..., 1]),
        (step1[..., 0], step1[..., 1], zeros, conf, step2[..., 1]),
        (bones[..., 0], bones[..., 1], zeros, conf, angle),
    )
    return torch.stack([torch.stack(channels, dim=-1) for channels in branches], dim=-2)


def _bone_angle(bx: Tensor, by: Tensor) -> Tensor:
    """``arccos(by / (|b| + 1e-4))`` in the cancellation-free form of the numpy transform."""
    length = torch.sqrt(bx * bx + by * by)
    below = torch.where(by > 0, bx * bx / (length + by), length - by) + GAITGRAPH_ANGLE_EPS
    above = torch.where(by < 0, bx * bx / (length - by), length + by) + GAITGRAPH_ANGLE_EPS
    return 2 * torch.atan2(torch.sqrt(below), torch.sqrt(above))


def _vertex_angle(joint: Tensor, first: Tensor, second: Tensor) -> Tensor:
    """HOD's ``pi - angle(first, joint, second)`` via ``atan2(|u x w|, u . w)``; ``pi`` when a
    side at the vertex is 0 (same formula as the numpy transform)."""
    u = first - joint
    w = second - joint
    cross = u[..., 0] * w[..., 1] - u[..., 1] * w[..., 0]
    dot = u[..., 0] * w[..., 0] + u[..., 1] * w[..., 1]
    degenerate = torch.hypot(u[..., 0], u[..., 1]) * torch.hypot(w[..., 0], w[..., 1]) == 0
    return torch.where(degenerate, torch.full_like(dot, math.pi), math.pi - torch.atan2(cross.abs(), dot))


def hod_multi_input(x: Tensor, joint_format: JointFormatLike = "coco") -> Tensor:
    """GPGait's HOD input ``[N, T, V, 6]`` from ``x [N, T, V, C>=2]``: ``x, y, bx, by,
    angle, 0`` with the angle tuples of ``HOD_ANGLE_TUPLES`` (the original's OpenPose slot
    order is kept: docs/upstream_differences.md, "HOD_MultiInput OpenPose angle slots (kept)");
    all-(0, 0) frames give zeros; NaN -> 0, +-inf -> +-max of the dtype."""
    fmt = as_joint_format(joint_format)
    x = _prepare(x, fmt, 2, "hod_multi_input")
    index = hod_angle_index(fmt)
    xy = x[..., :2]
    device = xy.device
    bones = xy - xy[..., _index(fmt.parents_array(), device), :]
    joint = xy[..., _index(index.joint, device), :]
    first = xy[..., _index(index.first, device), :]
    auxiliary = torch.stack((joint[..., 0], first[..., 1]), dim=-1)  # (x_joint, y_first)
    is_edge = torch.tensor(index.is_edge, device=device)[:, None]
    second = torch.where(is_edge, auxiliary, xy[..., _index(index.second, device), :])
    angles = _vertex_angle(joint, first, second)
    padding = xy.new_zeros(*angles.shape[:-1], fmt.num_joints - index.num_slots)
    angles = torch.cat((angles, padding), dim=-1)
    out = torch.cat((xy, bones, angles[..., None], torch.zeros_like(angles)[..., None]), dim=-1)
    empty_frame = (xy == 0).all(dim=-1).all(dim=-1)
    out = out.masked_fill(empty_frame[..., None, None], 0)
    return torch.nan_to_num(out)
