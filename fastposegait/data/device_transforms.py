"""Batched twins of the training transforms, run on the model's device after the transfer.

With ``trainer_cfg.transform_on: device`` the DataLoader workers only load sequences and
sample their frames (a stacked ``[B, T, V, C]`` float32 batch); the transforms of
``trainer_cfg.transform`` then run here, on the whole batch at once, right after the batch
reaches the device (:meth:`fastposegait.engine.runner.Runner.train_step`). On a fast GPU the
model step takes milliseconds and a few worker processes cannot prepare large batches that
quickly; on the device the same work is a handful of tensor operations.

Each twin does what its per-sample transform in :mod:`fastposegait.data.transforms` does to
every sequence of the batch (the per-sample axis ``a`` is the batch axis ``a + 1``):

* deterministic transforms (``NormalizeEmpty``, ``RescaleCenter``, ``Affine``,
  ``SelectSequenceCenter``, ``SkeletonInput``, the feature builders of
  :mod:`fastposegait.modeling.features`) compute the same formula, so in float64 they give the
  worker path's values up to rounding;
* random transforms draw from the same distributions (one draw per sequence for flips,
  mirrors and moves, one per frame for left/right swaps, ``V x 2`` normals per sequence for
  ``JointNoise``, ...), but from a :class:`torch.Generator` on the batch's device instead of
  each sequence's numpy generator, so the draws differ from the worker path's. The generator
  is seeded from ``(trainer_cfg.seed, rank, batch number)``: a resumed run draws the same
  augmentations as an uninterrupted one.

The computation runs in the batch's dtype (float32 as collated), where the worker path
computes most transforms in float64 and casts the result to float32. Random probabilities
are compared in float64, as numpy does, so ``probability: 0`` never fires.

Only stacked batches are supported: packed sampling (``all``/``unfixed``, sequences of
different lengths concatenated along time) and transforms without a twin (a user's plain
function, a registered class without a ``batched`` method) are a
:class:`~fastposegait.errors.ConfigError` that says to use ``transform_on: worker``. A user's
:class:`~fastposegait.data.transforms.Transform` subclass gets a twin by defining
``batched(self, x, generator) -> Tensor`` on ``[B, ...]`` tensors.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError
from ..modeling import features
from ..registry import TRANSFORMS
from . import transforms as T
from .batch import Batch

__all__ = [
    "TRANSFORM_PLACES",
    "DeviceChain",
    "DeviceTransforms",
    "build_device_chain",
    "build_device_transforms",
    "check_frame_sampling",
    "device_generator",
    "unsupported_device_transform",
]

#: where transforms may run: in the DataLoader workers (per sequence) or on the model's device
TRANSFORM_PLACES = ("worker", "device")

#: sets the device stream apart from every other seeded stream of a run
_DEVICE_STREAM = 2

#: ``f(x [B, ...], generator) -> Tensor``: one batched transform
DeviceChain = Callable[[Tensor, torch.Generator], Tensor]


def device_generator(seed: int, rank: int, key: int, device: torch.device) -> torch.Generator:
    """A generator on ``device`` for batch ``key`` of ``rank``, seeded from ``(seed, rank, key)``.

    The 64-bit seed comes from numpy's ``SeedSequence`` (well mixed: neighbouring batches get
    unrelated streams), so the same three numbers give the same generator in every run."""
    state = np.random.SeedSequence([int(seed), _DEVICE_STREAM, int(rank), int(key)]).generate_state(1, np.uint64)
    generator = torch.Generator(device=device)
    generator.manual_seed(int(state[0]) & 0x7FFF_FFFF_FFFF_FFFF)
    return generator


# ---------------------------------------------------------------------------------------
# Random draws (float64 uniforms, as numpy's Generator.random)
# ---------------------------------------------------------------------------------------


def _uniform(shape: Tuple[int, ...], generator: torch.Generator, device: torch.device) -> Tensor:
    return torch.rand(shape, generator=generator, device=device, dtype=torch.float64)


def _per_sample(mask: Tensor, x: Tensor) -> Tensor:
    """``mask [B]`` broadcast against ``x [B, ...]``."""
    return mask.reshape(mask.shape + (1,) * (x.dim() - 1))


def _check_pose(x: Tensor, name: str, min_channels: int = 2) -> None:
    if x.dim() != 4 or x.shape[-1] < min_channels:
        raise ValueError(f"{name} (on the device) expects a batch [B, T, V, C] with C >= {min_channels}, "
                         f"got shape {tuple(x.shape)}")


def _check_joints(x: Tensor, fmt: Any, name: str) -> None:
    if x.shape[2] != fmt.num_joints:
        raise ValueError(f"{name} (on the device) expects {fmt.num_joints} joints ({fmt.name} format), got a "
                         f"batch of shape {tuple(x.shape)}; set joint_format to match the data")


# ---------------------------------------------------------------------------------------
# Twins, one per per-sample transform class: twin(transform) -> DeviceChain
# ---------------------------------------------------------------------------------------


def _identity(transform: T.Transform) -> DeviceChain:
    return lambda x, generator: x


def _compose(transform: T.Compose) -> DeviceChain:
    chains = [_twin(t) for t in transform.transforms]

    def run(x: Tensor, generator: torch.Generator) -> Tensor:
        for chain in chains:
            x = chain(x, generator)
        return x

    return run


def _two_view(transform: T.TwoView) -> DeviceChain:
    inner = _compose(transform)

    def run(x: Tensor, generator: torch.Generator) -> Tensor:
        views = [inner(x, generator), inner(x, generator)]
        if views[0].dim() < 3:
            raise ValueError(f"TwoView needs results with at least 2 axes per sample, got {tuple(views[0].shape)}")
        return torch.cat(views, dim=2)  # per-sample axis 1

    return run


def _normalize_empty(transform: T.NormalizeEmpty) -> DeviceChain:
    def run(x: Tensor, generator: torch.Generator) -> Tensor:
        _check_pose(x, "NormalizeEmpty")
        xy = x[..., :2]
        joints = x.shape[2]
        missing = xy[..., 0] == 0  # [B, T, V]
        growth = 1.0 + 1.0 / joints
        rank = missing.cumsum(dim=-1).to(x.dtype)  # k of each missing joint (1-based)
        visited = torch.where(missing, torch.pow(growth, -rank), torch.zeros_like(rank))[..., None] * xy
        before = visited.cumsum(dim=-2) - visited
        frame_sum = xy.sum(dim=-2, keepdim=True)
        fill = torch.pow(growth, rank[..., None] - 1.0) * (frame_sum - before) / joints
        parts = [torch.where(missing[..., None], fill, xy)]
        if x.shape[-1] > 2:
            parts.append(x[..., 2:3].masked_fill(missing[..., None], 0))
            parts.append(x[..., 3:])
        return torch.cat(parts, dim=-1)

    return run


def _flip_sequence(transform: T.FlipSequence) -> DeviceChain:
    probability = transform.probability

    def run(x: Tensor, generator: torch.Generator) -> Tensor:
        flip = _uniform((x.shape[0],), generator, x.device) <= probability
        return torch.where(_per_sample(flip, x), x.flip(1), x)

    return run


def _mirror_poses(transform: T.MirrorPoses) -> DeviceChain:
    probability = transform.probability

    def run(x: Tensor, generator: torch.Generator) -> Tensor:
        _check_pose(x, "MirrorPoses")
        mirror = _uniform((x.shape[0],), generator, x.device) <= probability
        px = x[..., 0]
        mirrored = 2 * px.mean(dim=-1, keepdim=True) - px
        new_x = torch.where(mirror[:, None, None], mirrored, px)
        return torch.cat((new_x[..., None], x[..., 1:]), dim=-1)

    return run


def _inverse_poses(transform: T.InversePosesPre) -> DeviceChain:
    probability = transform.probability
    fmt = transform._format
    flip_index = torch.as_tensor(np.array(transform._flip), dtype=torch.long)

    def run(x: Tensor, generator: torch.Generator) -> Tensor:
        _check_pose(x, "InversePosesPre", min_channels=1)
        _check_joints(x, fmt, "InversePosesPre")
        swap = _uniform(tuple(x.shape[:2]), generator, x.device) <= probability  # one draw per frame
        swapped = x[:, :, flip_index.to(x.device)]
        return torch.where(swap[..., None, None], swapped, x)

    return run


def _joint_noise(transform: T.JointNoise) -> DeviceChain:
    std = transform.std

    def run(x: Tensor, generator: torch.Generator) -> Tensor:
        _check_pose(x, "JointNoise")
        noise = torch.randn((x.shape[0], 1, x.shape[2], 2), generator=generator, device=x.device, dtype=x.dtype)
        return torch.cat((x[..., :2] + std * noise, x[..., 2:]), dim=-1)  # the same offset in every frame

    return run


def _point_noise(transform: T.PointNoise) -> DeviceChain:
    std = transform.std

    def run(x: Tensor, generator: torch.Generator) -> Tensor:
        return x + std * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)

    return run


def _random_move(transform: T.RandomMove) -> DeviceChain:
    rx, ry = transform.random_r

    def run(x: Tensor, generator: torch.Generator) -> Tensor:
        _check_pose(x, "RandomMove")
        u = _uniform((x.shape[0], 2), generator, x.device)
        low = torch.tensor([-rx, -ry], dtype=torch.float64, device=x.device)
        shift = (low + (-2 * low) * u).to(x.dtype)  # U(-rx, rx), U(-ry, ry), as numpy's uniform
        return torch.cat((x[..., :2] + shift[:, None, None, :], x[..., 2:]), dim=-1)

    return run


def _random_select(transform: T.RandomSelectSequence) -> DeviceChain:
    length = transform.sequence_length

    def run(x: Tensor, generator: torch.Generator) -> Tensor:
        frames = x.shape[1]
        if frames <= length:
            raise ValueError(f"{transform!r} (on the device): the batch has {frames} frames per sequence but needs "
                             f"more than {length}; sample longer clips or lower sequence_length")
        start = torch.randint(0, frames - length, (x.shape[0],), generator=generator, device=x.device)
        index = start[:, None] + torch.arange(length, device=x.device)
        return x[torch.arange(x.shape[0], device=x.device)[:, None], index]

    return run


def _select_center(transform: T.SelectSequenceCenter) -> DeviceChain:
    length = transform.sequence_length

    def run(x: Tensor, generator: torch.Generator) -> Tensor:
        frames = x.shape[1]
        if frames < length:
            raise ValueError(f"{transform!r} (on the device): the batch has {frames} frames per sequence, fewer "
                             f"than {length}; sample longer clips or lower sequence_length")
        start = int(frames / 2 - length / 2)
        return x[:, start:start + length]

    return run


def _rescale_center(transform: T.RescaleCenter) -> DeviceChain:
    if transform.center is None or transform.center == "None":
        return _identity(transform)
    centre = list(T.RESCALE_CENTERS[transform.center])
    scale = transform.scale

    def run(x: Tensor, generator: torch.Generator) -> Tensor:
        _check_pose(x, "RescaleCenter")
        if x.shape[2] <= max(centre):
            raise ValueError(f"{transform!r} needs COCO joints {centre}, got a batch of shape {tuple(x.shape)}")
        xy = x[..., :2]
        y = xy[..., 1]
        height = y.amax(dim=-1) - y.amin(dim=-1)  # [B, T], zeros included
        flat = height == 0
        scaled = xy * scale / torch.where(flat, torch.ones_like(height), height)[..., None, None]
        scaled = scaled.masked_fill(flat[..., None, None], 0)
        moved = scaled - scaled[:, :, centre].mean(dim=2, keepdim=True)
        return torch.cat((moved, x[..., 2:]), dim=-1)

    return run


def _affine(transform: T.Affine) -> DeviceChain:
    legacy = transform.legacy
    neck_joints, hip_joints = list(T.NECK_JOINTS), list(T.HIP_JOINTS)

    def run(x: Tensor, generator: torch.Generator) -> Tensor:
        _check_pose(x, "Affine")
        if x.shape[2] <= max(hip_joints):
            raise ValueError(f"{transform!r} needs COCO joints 5, 6, 11, 12, got a batch of shape {tuple(x.shape)}")
        xy = x[..., :2]
        neck = xy[:, :, neck_joints].mean(dim=2)  # [B, T, 2]
        spine = xy[:, :, hip_joints].mean(dim=2) - neck
        upright = spine[..., 1] == 0
        ratio = torch.where(upright, torch.zeros_like(spine[..., 0]),
                            spine[..., 0] / torch.where(upright, torch.ones_like(spine[..., 1]), spine[..., 1]))
        theta = torch.atan(ratio)
        cos = torch.cos(theta)[..., None]
        sin = torch.sin(theta)[..., None]
        qx = xy[..., 0] - neck[..., :1]
        qy = xy[..., 1] - neck[..., 1:]
        new_x = neck[..., :1] + cos * qx - sin * qy
        if legacy:  # the original's formula: y from the rotated x
            new_y = neck[..., 1:] + sin * (new_x - neck[..., :1]) + cos * qy
        else:
            new_y = neck[..., 1:] + sin * qx + cos * qy
        return torch.cat((new_x[..., None], new_y[..., None], x[..., 2:]), dim=-1)

    return run


def _skeleton_input(transform: T.SkeletonInput) -> DeviceChain:
    def run(x: Tensor, generator: torch.Generator) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"SkeletonInput (on the device) expects [B, T, V, C], got shape {tuple(x.shape)}")
        return x.permute(0, 3, 1, 2).unsqueeze(-1)  # [B, C, T, V, 1]

    return run


def _feature(builder: Callable[..., Tensor]) -> Callable[[Any], DeviceChain]:
    def twin(transform: Any) -> DeviceChain:
        joint_format = transform._format
        return lambda x, generator: builder(x, joint_format)

    return twin


def _user_batched(transform: T.Transform) -> DeviceChain:
    return lambda x, generator: transform.batched(x, generator)  # type: ignore[attr-defined]


#: per-sample transform class -> the function that makes its batched twin
_TWINS: Dict[type, Callable[[Any], DeviceChain]] = {
    T.NoOperation: _identity,
    T.TwoView: _two_view,
    T.Compose: _compose,
    T.NormalizeEmpty: _normalize_empty,
    T.FlipSequence: _flip_sequence,
    T.MirrorPoses: _mirror_poses,
    T.InversePosesPre: _inverse_poses,
    T.JointNoise: _joint_noise,
    T.PointNoise: _point_noise,
    T.RandomMove: _random_move,
    T.RandomSelectSequence: _random_select,
    T.SelectSequenceCenter: _select_center,
    T.RescaleCenter: _rescale_center,
    T.Affine: _affine,
    T.SkeletonInput: _skeleton_input,
    T.GaitTRMultiInput: _feature(features.gaittr_multi_input),
    T.GaitGraphMultiInput: _feature(features.gaitgraph_multi_input),
    T.HODMultiInput: _feature(features.hod_multi_input),
}


def _twin_maker(target: Any) -> Optional[Callable[[Any], DeviceChain]]:
    """The twin maker of a registered transform target (exact class first: a user's subclass
    of a built-in changes its behaviour, so it needs its own ``batched``)."""
    if not isinstance(target, type):
        return None
    if callable(getattr(target, "batched", None)):
        return _user_batched
    return _TWINS.get(target)


def _twin(transform: T.Transform) -> DeviceChain:
    maker = _twin_maker(type(transform))
    if maker is None:
        raise _no_twin(type(transform).__name__, "trainer_cfg.transform")
    return maker(transform)


def _no_twin(name: str, key: str) -> ConfigError:
    return ConfigError(
        f"{key}: transform {name!r} has no batched version to run on the device "
        "(trainer_cfg.transform_on: device); set trainer_cfg.transform_on: worker to run it in the DataLoader "
        "workers, or give the class a batched(x, generator) method")


def unsupported_device_transform(cfg: Any, key: str = "trainer_cfg.transform") -> Optional[Tuple[str, str]]:
    """The first ``(key, type name)`` in a transform config without a batched twin, or None.

    Walks the raw config (lists, ``{type: ...}`` entries, nested ``trf_cfg``) by registered
    name, without building anything, so the config check can report it with the file name."""
    if cfg is None:
        return None
    if isinstance(cfg, (list, tuple)):
        for i, entry in enumerate(cfg):
            found = unsupported_device_transform(entry, f"{key}.{i}")
            if found:
                return found
        return None
    if not isinstance(cfg, Mapping) or "type" not in cfg:
        return key, type(cfg).__name__
    name = cfg["type"]
    if name not in TRANSFORMS or _twin_maker(TRANSFORMS.get(name)) is None:
        return f"{key}.type", str(name)
    nested = cfg.get("trf_cfg")
    return unsupported_device_transform(nested, f"{key}.trf_cfg") if nested is not None else None


def build_device_chain(cfg: Any, where: str = "trainer_cfg.transform") -> DeviceChain:
    """The batched twin of one modality's transform entry (built and checked as the worker
    path builds it: :func:`fastposegait.data.transforms.build_transform`)."""
    found = unsupported_device_transform(cfg, where)
    if found is not None:
        raise _no_twin(found[1], found[0])
    return _twin(T.build_transform(cfg, where))


class DeviceTransforms:
    """The batched transform chains of every modality, applied to a batch on its device.

    Args:
        cfg_list: ``trainer_cfg.transform`` (one entry per modality).
        seed: ``trainer_cfg.seed``.
        rank: this process's rank: each rank draws its own augmentations.
    """

    def __init__(self, cfg_list: Any, seed: int, rank: int = 0) -> None:
        entries = [cfg_list] if cfg_list is None or isinstance(cfg_list, Mapping) else list(cfg_list)
        self.chains: List[DeviceChain] = [build_device_chain(e, f"trainer_cfg.transform.{i}")
                                          for i, e in enumerate(entries)]
        self.seed = int(seed)
        self.rank = int(rank)

    def __call__(self, batch: Batch, key: int) -> Batch:
        """``batch`` with each modality transformed; ``key`` numbers the batch (the runner's
        ``batches_seen``), so a resumed run repeats the draws of an uninterrupted one."""
        if batch.seq_lengths is not None:
            raise ConfigError("trainer_cfg.transform_on: device needs stacked batches (fixed_* sampling), got a "
                              "packed one; set trainer_cfg.transform_on: worker")
        if len(batch.inputs) != len(self.chains):
            raise ValueError(f"the batch has {len(batch.inputs)} modalities but trainer_cfg.transform has "
                             f"{len(self.chains)} entries; give one transform entry per modality")
        generator = device_generator(self.seed, self.rank, key, batch.inputs[0].device)
        inputs = [chain(x, generator).contiguous() for chain, x in zip(self.chains, batch.inputs)]
        return batch._replace(inputs=inputs)

    def __len__(self) -> int:
        return len(self.chains)


def build_device_transforms(cfg_list: Any, seed: int, rank: int = 0) -> DeviceTransforms:
    """:class:`DeviceTransforms` for ``trainer_cfg.transform`` (a :class:`ConfigError` names the
    first transform without a batched twin)."""
    return DeviceTransforms(cfg_list, seed, rank)


def check_frame_sampling(sample_type: str, key: str = "trainer_cfg.sampler.sample_type") -> None:
    """Device transforms need stacked batches: ``fixed_*`` sampling."""
    if not str(sample_type).startswith("fixed_"):
        raise ConfigError(f"{key}: {sample_type!r} packs sequences of different lengths into one batch, which the "
                          "device transforms cannot take; use fixed_ordered/fixed_unordered sampling or set "
                          "trainer_cfg.transform_on: worker")

