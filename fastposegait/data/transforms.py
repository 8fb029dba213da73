"""Per-sample pose transforms: augmentations and input-feature builders, by config name.

A transform is a small callable ``transform(seq, rng) -> ndarray`` that takes one pose
sequence ``seq`` of shape ``[T, V, C]`` (T frames, V joints, channels ``x, y, confidence``)
and returns a new array. They run inside the DataLoader workers (one chain per modality,
built from ``trainer_cfg.transform`` / ``evaluator_cfg.transform`` by :func:`build_transforms`).

Contract shared by every transform here:

* **Randomness comes only from ``rng``**, a :class:`numpy.random.Generator` that the loader
  keys by ``(seed, phase, batch, sample)`` for each sequence (:mod:`fastposegait.data.loader`),
  so a sequence's augmentation does not depend on the worker, the number of workers or
  processes, or a resume. Nothing reads numpy's global state or :mod:`random`. The
  distributions are upstream's (one uniform draw per sequence for flips, one per frame for
  left/right swaps, ...), the streams are not (upstream seeds the global generators with the
  rank number).
* **The input is never modified.** Upstream modifies its input in place in six transforms,
  which makes ``TwoView``'s second view start from the first view's output
  (docs/upstream_differences.md, "TwoView: independent views"). Here every transform returns
  a new array (or a read-only-safe view), so inputs may be read-only arrays from a shared
  cache.
* **Vectorised** over frames and joints; the feature builders share their index tables with
  the batched torch versions in :mod:`fastposegait.modeling.features`.

Kept on purpose (the published models were trained with them): GaitGraph_MultiInput's
channel 3 of branches 1 and 2 holds the confidence, and HOD_MultiInput writes the OpenPose
angle tuples in COCO slot order with a wrong elbow tuple; NormalizeEmpty's sequential fill;
RescaleCenter's height over all joints, zeros included.

Fixed: Affine rotates correctly by default (``legacy=True`` gives upstream's formula);
RescaleCenter maps a zero-height frame to zeros instead of NaN/inf; RandomSelectSequence /
SelectSequenceCenter raise a clear error for short sequences. Each of these has its entry in
docs/upstream_differences.md ("Data and transforms").
"""
from __future__ import annotations

import functools
import inspect
import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import ConfigError, FastPoseGaitError
from ..kwargs import filter_kwargs
from ..registry import TRANSFORMS
from .skeleton import COCO, JointFormat, get_joint_format

logger = logging.getLogger(__name__)

__all__ = [
    "Transform",
    "FunctionTransform",
    "Compose",
    "TwoView",
    "NoOperation",
    "NormalizeEmpty",
    "FlipSequence",
    "MirrorPoses",
    "InversePosesPre",
    "JointNoise",
    "PointNoise",
    "RandomMove",
    "RandomSelectSequence",
    "SelectSequenceCenter",
    "RescaleCenter",
    "Affine",
    "SkeletonInput",
    "GaitTRMultiInput",
    "GaitGraphMultiInput",
    "HODMultiInput",
    "HOD_ANGLE_TUPLES",
    "AngleIndex",
    "hod_angle_index",
    "as_joint_format",
    "build_transform",
    "build_transforms",
    "time_axis_of",
]

TransformConfig = Union[None, Mapping[str, Any], Sequence[Any], Callable[..., Any]]


# ---------------------------------------------------------------------------------------
# Constant tables shared with fastposegait.modeling.features
# ---------------------------------------------------------------------------------------

# HOD angle tuples per joint format, written to slots 0, 1, 2, ... in this order.
# (j, a, b): angle at j between a and b.  (j, a): angle at j between a and the auxiliary
# point (x_j, y_a), i.e. the limb's angle to the vertical.
# OpenPose: the 17 tuples follow the COCO slot order (slot 17 stays 0), and tuple 7 is
# (6, 3, 8) where (6, 5, 7) was meant (kept: the published models were trained on it;
# docs/upstream_differences.md, "HOD_MultiInput OpenPose angle slots (kept)").
HOD_ANGLE_TUPLES: Dict[str, Tuple[Tuple[int, ...], ...]] = {
    "coco": (
        (0, 1, 2), (1, 0, 3), (2, 4, 0), (3, 1), (4, 2), (5, 7, 11), (6, 8, 12), (7, 5, 9),
        (8, 10, 6), (9, 7), (10, 8), (11, 5, 13), (12, 6, 14), (13, 11, 15), (14, 12, 16),
        (15, 13), (16, 14),
    ),
    "openpose": (
        (0, 15, 14), (15, 0, 17), (14, 16, 0), (17, 15), (16, 14), (5, 6, 11), (2, 3, 8),
        (6, 3, 8), (3, 4, 2), (7, 6), (4, 3), (11, 5, 12), (8, 2, 9), (12, 11, 13),
        (9, 8, 10), (13, 12), (10, 9),
    ),
}

# Joints averaged for RescaleCenter's centres and Affine's neck/hip: COCO indices, used
# whatever the joint format (as upstream does).
RESCALE_CENTERS: Dict[str, Tuple[int, int]] = {
    name: (COCO.index(f"left_{joint}"), COCO.index(f"right_{joint}"))
    for name, joint in (("neck", "shoulder"), ("head", "eye"), ("hip", "hip"))
}
NECK_JOINTS = RESCALE_CENTERS["neck"]
HIP_JOINTS = RESCALE_CENTERS["hip"]

# GaitGraph_MultiInput's bone-angle denominator offset.
GAITGRAPH_ANGLE_EPS = 1e-4


@dataclass(frozen=True)
class AngleIndex:
    """HOD angle tuples of one joint format as index arrays (one entry per filled slot).

    Slot ``k`` (``k < num_slots``) holds the angle at ``joint[k]`` between ``first[k]`` and
    ``second[k]``; where ``is_edge[k]`` the second point is the auxiliary point
    ``(x_joint, y_first)`` and ``second[k]`` is just ``joint[k]`` (a valid placeholder).
    Slots ``num_slots .. V-1`` are zero.
    """

    joint: np.ndarray
    first: np.ndarray
    second: np.ndarray
    is_edge: np.ndarray

    @property
    def num_slots(self) -> int:
        return int(self.joint.shape[0])


@functools.lru_cache(maxsize=None)
def _angle_index(canonical_name: str) -> AngleIndex:
    tuples = HOD_ANGLE_TUPLES[canonical_name]
    index = AngleIndex(
        joint=np.array([t[0] for t in tuples], dtype=np.int64),
        first=np.array([t[1] for t in tuples], dtype=np.int64),
        second=np.array([t[2] if len(t) == 3 else t[0] for t in tuples], dtype=np.int64),
        is_edge=np.array([len(t) == 2 for t in tuples], dtype=bool),
    )
    for array in (index.joint, index.first, index.second, index.is_edge):
        array.flags.writeable = False  # cached and shared: make accidental edits fail
    return index


def as_joint_format(joint_format: Union[str, JointFormat]) -> JointFormat:
    """Accept a format name (``coco``, ``openpose``, ...) or a :class:`JointFormat`."""
    if isinstance(joint_format, JointFormat):
        return joint_format
    return get_joint_format(joint_format)


def hod_angle_index(joint_format: Union[str, JointFormat]) -> AngleIndex:
    """The HOD angle tables of ``joint_format`` (``coco`` or ``alphapose``/``openpose``)."""
    fmt = as_joint_format(joint_format)
    if fmt.name not in HOD_ANGLE_TUPLES:
        raise ValueError(
            f"HOD_MultiInput has no angle tuples for joint format {fmt.name!r}; "
            f"supported: {', '.join(sorted(HOD_ANGLE_TUPLES))} (alphapose = openpose)"
        )
    return _angle_index(fmt.name)


# ---------------------------------------------------------------------------------------
# Base classes and helpers
# ---------------------------------------------------------------------------------------


class Transform:
    """Base class: ``transform(seq, rng) -> new array``; never modifies ``seq``.

    Subclasses store each constructor argument under its own name so that ``repr`` shows
    the configuration (``FlipSequence(probability=0.5)``). Deterministic transforms accept
    ``rng=None``; random ones raise a clear error without a generator.

    Two class attributes describe what a transform needs and makes; the dataset layout check
    (:func:`fastposegait.data.layout.check_pose_layout`) reads them before training starts:
    ``min_channels``, the channels C of ``[T, V, C]`` it needs (3: it reads the confidence),
    and ``output_channels``, the C of its output when it builds new features (None: the input's
    channels pass through).
    """

    #: channels of the input pose ``[T, V, C]`` this transform needs (2: x, y; 3: confidence too)
    min_channels: int = 2
    #: channels of the output when the transform builds features from x, y (and c); None when
    #: the input's channels pass through unchanged
    output_channels: Optional[int] = None

    def __call__(self, seq: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        raise NotImplementedError

    def _config(self) -> Dict[str, Any]:
        params = inspect.signature(type(self).__init__).parameters
        return {
            name: getattr(self, name)
            for name, p in params.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and hasattr(self, name)
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self._config().items())
        return f"{type(self).__name__}({args})"

    def time_axis(self, input_axis: int = 0) -> int:
        """The axis of the output that indexes frames, given that of the input (the
        collator packs ``all``/``unfixed`` batches along it). Most transforms keep it."""
        return input_axis

    def _need_rng(self, rng: Optional[np.random.Generator]) -> np.random.Generator:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"{self!r} is random and needs a numpy Generator: call it as "
                f"transform(seq, rng) with rng = np.random.default_rng(seed), got {type(rng).__name__}"
            )
        return rng

    def _check_pose(self, seq: np.ndarray, min_channels: int = 2) -> None:
        if not isinstance(seq, np.ndarray):
            raise TypeError(f"{self!r} expects a numpy array [T, V, C], got {type(seq).__name__}")
        if seq.ndim != 3 or seq.shape[2] < min_channels:
            raise ValueError(
                f"{self!r} expects a pose sequence [T, V, C] with C >= {min_channels}, "
                f"got shape {seq.shape}"
            )

    def _check_joints(self, seq: np.ndarray, fmt: JointFormat) -> None:
        if seq.shape[1] != fmt.num_joints:
            raise ValueError(
                f"{self!r} expects {fmt.num_joints} joints ({fmt.name} format), got a sequence "
                f"of shape {seq.shape}; set joint_format to match the data"
            )


def _float_copy(seq: np.ndarray) -> np.ndarray:
    """A writable copy in the input's float dtype (float64 for integer input)."""
    dtype = seq.dtype if np.issubdtype(seq.dtype, np.floating) else np.float64
    return np.array(seq, dtype=dtype, copy=True)


def _as_number(value: Any) -> Optional[float]:
    """``value`` as a float when it is a real number (not a bool, a string or None), else None."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    return float(value)


def _check_probability(owner: str, probability: float) -> float:
    number = _as_number(probability)
    if number is None or not 0.0 <= number <= 1.0:
        raise ValueError(f"{owner}: probability must be a number in [0, 1], got {probability!r}")
    return number


def _check_non_negative(owner: str, name: str, value: float) -> float:
    number = _as_number(value)
    if number is None or not (math.isfinite(number) and number >= 0.0):
        raise ValueError(f"{owner}: {name} must be a finite number >= 0, got {value!r}")
    return number


def _check_positive(owner: str, name: str, value: float) -> float:
    number = _as_number(value)
    if number is None or not (math.isfinite(number) and number > 0.0):
        raise ValueError(f"{owner}: {name} must be a finite number > 0, got {value!r}")
    return number


def _check_length(owner: str, sequence_length: int) -> int:
    try:
        valid = not isinstance(sequence_length, bool) and int(sequence_length) == sequence_length >= 1
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"{owner}: sequence_length must be a positive integer, got {sequence_length!r}")
    return int(sequence_length)


class FunctionTransform(Transform):
    """Adapter for a plain callable ``function(seq) -> array`` (e.g. a user's function
    registered in ``TRANSFORMS``): called with the sequence only, ``rng`` is not passed."""

    def __init__(self, function: Callable[[np.ndarray], Any]) -> None:
        if not callable(function):
            raise TypeError(f"FunctionTransform needs a callable, got {function!r}")
        self.function = function

    def __call__(self, seq: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        return self.function(seq)

    def __repr__(self) -> str:
        return f"FunctionTransform({self.function!r})"


def _as_transform(entry: Any) -> Transform:
    if isinstance(entry, Transform):
        return entry
    return build_transform(entry)


@TRANSFORMS.register("Compose")
class Compose(Transform):
    """Apply transforms left to right.

    Args:
        trf_cfg: list of transform configs (``{type: Name, ...}``) or already built
            transforms / plain one-argument callables. ``None`` or ``[]`` is the identity.
    """

    def __init__(self, trf_cfg: Union[None, Sequence[Any], Mapping[str, Any]] = None) -> None:
        if trf_cfg is None:
            entries: List[Any] = []
        elif isinstance(trf_cfg, Mapping) or callable(trf_cfg):
            entries = [trf_cfg]
        else:
            entries = list(trf_cfg)
        self.transforms: List[Transform] = [_as_transform(entry) for entry in entries]

    def __call__(self, seq: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        for transform in self.transforms:
            seq = transform(seq, rng)
        return seq

    def time_axis(self, input_axis: int = 0) -> int:
        for transform in self.transforms:
            input_axis = transform.time_axis(input_axis)
        return input_axis

    def __repr__(self) -> str:
        if not self.transforms:
            return f"{type(self).__name__}([])"
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"{type(self).__name__}([{inner}\n])"


@TRANSFORMS.register("TwoView")
class TwoView(Compose):
    """Run the chain twice and concatenate the two results along axis 1 (time for a
    ``[C, T, V, 1]`` result, giving ``[C, 2T, V, 1]``), as GaitGraph1 trains.

    Each view starts from its own copy of the unmodified input and draws its own random
    numbers from ``rng``, so the views are independent. Upstream feeds the first view's
    in-place modified input to the second view; that is not reproduced
    (docs/upstream_differences.md, "TwoView: independent views").
    """

    def __call__(self, seq: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        views = [super(TwoView, self).__call__(np.array(seq, copy=True), rng) for _ in range(2)]
        if np.ndim(views[0]) < 2:
            raise ValueError(f"TwoView needs results with at least 2 axes to concatenate, got shape {np.shape(views[0])}")
        return np.concatenate(views, axis=1)


# ---------------------------------------------------------------------------------------
# Augmentations and normalisations
# ---------------------------------------------------------------------------------------


@TRANSFORMS.register("NoOperation")
class NoOperation(Transform):
    """Identity (returns the input object itself)."""

    min_channels = 1

    def __call__(self, seq: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        return seq


@TRANSFORMS.register("NormalizeEmpty")
class NormalizeEmpty(Transform):
    """Fill missing joints (``x == 0``; y is not checked) with the frame's mean position.

    Upstream visits the joints of each frame in order and gives each missing one ``x, y`` =
    the mean over *all* V joints of the frame's current values (zeros and joints filled
    before it included) and confidence 0, so every fill changes the mean seen by the next
    missing joint. Example frame ``(0,0,0) (2,4,1) (0,5,.5) (4,8,1)`` becomes
    ``(1.5,4.25,0) (2,4,1) (1.875,5.3125,0) (4,8,1)``; an all-zero frame stays zero.

    Closed form of that sequential fill (vectorised over frames and joints): with ``S`` the
    frame's sum, ``a = 1 + 1/V`` and ``z_i`` the original value of the i-th missing joint,
    filling joint k sets it to ``S_k / V`` and makes ``S_{k+1} = a S_k - z_k``, so
    ``S_k = a^(k-1) (S_1 - sum_{i<k} a^(-i) z_i)``. Computed in float64, equal to the
    sequential loop up to rounding (~1e-15 relative).
    """

    def __call__(self, seq: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        self._check_pose(seq)
        out = _float_copy(seq)
        xy = np.asarray(seq[:, :, :2], dtype=np.float64)
        missing = xy[:, :, 0] == 0  # [T, V]
        if not missing.any():
            return out
        growth = 1.0 + 1.0 / xy.shape[1]
        rank = np.cumsum(missing, axis=1)  # k of each missing joint (1-based), per frame
        visited = np.where(missing, growth ** -rank.astype(np.float64), 0.0)[..., None] * xy
        before = np.cumsum(visited, axis=1) - visited  # sum over earlier missing joints
        frame_sum = xy.sum(axis=1, keepdims=True)
        fill = growth ** (rank[..., None] - 1.0) * (frame_sum - before) / xy.shape[1]
        out[:, :, :2] = np.where(missing[..., None], fill, xy)
        if out.shape[2] > 2:
            out[:, :, 2][missing] = 0
        return out


@TRANSFORMS.register("FlipSequence")
class FlipSequence(Transform):
    """Reverse the time axis with probability ``probability`` (one uniform draw u, flip if
    ``u <= probability``). Returns a contiguous copy when flipped."""

    min_channels = 1

    def __init__(self, probability: float = 0.5) -> None:
        self.probability = _check_probability("FlipSequence", probability)

    def __call__(self, seq: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        if self._need_rng(rng).random() <= self.probability:
            return np.ascontiguousarray(seq[::-1])
        return seq


@TRANSFORMS.register("MirrorPoses")
class MirrorPoses(Transform):
    """With probability ``probability`` (one draw), mirror every frame horizontally about
    its mean x over all joints (zeros included): ``x <- 2 * mean_x - x``; y, c unchanged."""

    def __init__(self, probability: float = 0.5) -> None:
        self.probability = _check_probability("MirrorPoses", probability)

    def __call__(self, seq: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        self._check_pose(seq)
        if self._need_rng(rng).random() > self.probability:
            return seq
        out = _float_copy(seq)
        x = out[:, :, 0]
        out[:, :, 0] = 2 * x.mean(axis=1, keepdims=True) - x
        return out


@TRANSFORMS.register("InversePosesPre")
class InversePosesPre(Transform):
    """Swap left and right joints (the format's flip permutation) in each frame
    independently with probability ``probability`` (one uniform draw per frame, swap if
    ``u <= probability``). Formats without a flip are rejected at construction."""

    min_channels = 1

    def __init__(self, probability: float = 0.5, joint_format: str = "coco") -> None:
        self.probability = _check_probability("InversePosesPre", probability)
        self.joint_format = joint_format
        self._format = as_joint_format(joint_format)
        if self._format.flip is None:
            raise ValueError(
                f"InversePosesPre: joint format {self._format.name!r} has no left/right flip "
                f"permutation; use coco or alphapose/openpose"
            )
        self._flip = self._format.flip_array()

    def __call__(self, seq: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        self._check_pose(seq, min_channels=1)
        self._check_joints(seq, self._format)
        swap = self._need_rng(rng).random(seq.shape[0]) <= self.probability
        if not swap.any():
            return seq
        out = np.array(seq, copy=True)
        out[swap] = seq[swap][:, self._flip]
        return out


@TRANSFORMS.register("JointNoise")
class JointNoise(Transform):
    """Add one ``N(0, std)`` offset per joint to x and to y (V x 2 draws), the same in every
    frame; confidence untouched; dtype kept."""

    def __init__(self, std: float = 0.25) -> None:
        self.std = _check_non_negative("JointNoise", "std", std)

    def __call__(self, seq: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        self._check_pose(seq)
        noise = self._need_rng(rng).normal(0.0, self.std, size=(seq.shape[1], 2))
        out = _float_copy(seq)
        out[:, :, :2] += noise
        return out


@TRANSFORMS.register("PointNoise")
class PointNoise(Transform):
    """Add independent ``N(0, std)`` noise to every value, confidence included; dtype kept."""

    min_channels = 1

    def __init__(self, std: float = 0.01) -> None:
        self.std = _check_non_negative("PointNoise", "std", std)

    def __call__(self, seq: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        self._check_pose(seq, min_channels=1)
        noise = self._need_rng(rng).normal(0.0, self.std, size=seq.shape)
        out = _float_copy(seq)
        out += noise
        return out


@TRANSFORMS.register("RandomMove")
class RandomMove(Transform):
    """Shift the whole sequence by ``U(-r0, r0)`` in x and ``U(-r1, r1)`` in y (two draws,
    x first), ``random_r = [r0, r1]``."""

    def __init__(self, random_r: Sequence[float] = (4, 1)) -> None:
        values = list(random_r) if isinstance(random_r, (list, tuple, np.ndarray)) else None
        if values is None or len(values) != 2:
            raise ValueError(f"RandomMove: random_r must be two numbers [rx, ry], got {random_r!r}")
        self.random_r = [_check_non_negative("RandomMove", "random_r", r) for r in values]

    def __call__(self, seq: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        self._check_pose(seq)
        rng = self._need_rng(rng)
        rx, ry = self.random_r
        dx = rng.uniform(-rx, rx)
        dy = rng.uniform(-ry, ry)
        out = _float_copy(seq)
        out[:, :, 0] += dx
        out[:, :, 1] += dy
        return out


@TRANSFORMS.register("RandomSelectSequence")
class RandomSelectSequence(Transform):
    """Random window of ``sequence_length`` frames (a view). The start is uniform in
    ``[0, T - sequence_length - 1]`` as upstream (the last window is never chosen;
    docs/upstream_differences.md, "RandomSelectSequence window (kept)");
    sequences with ``T <= sequence_length`` raise a ValueError naming both lengths."""

    min_channels = 1

    def __init__(self, sequence_length: int = 10) -> None:
        self.sequence_length = _check_length("RandomSelectSequence", sequence_length)

    def __call__(self, seq: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        length = self.sequence_length
        frames = len(seq)
        if frames <= length:
            raise ValueError(
                f"{self!r}: the sequence has {frames} frames but needs more than {length} "
                f"(shape {np.shape(seq)}); sample longer sequences or lower sequence_length"
            )
        start = int(self._need_rng(rng).integers(0, frames - length))
        return seq[start:start + length]


@TRANSFORMS.register("SelectSequenceCenter")
class SelectSequenceCenter(Transform):
    """The centred window of ``sequence_length`` frames (a view), start
    ``int(T/2 - sequence_length/2)``. ``T < sequence_length`` raises a ValueError (upstream
    silently returns a short, wrong window)."""

    min_channels = 1

    def __init__(self, sequence_length: int = 10) -> None:
        self.sequence_length = _check_length("SelectSequenceCenter", sequence_length)

    def __call__(self, seq: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        length = self.sequence_length
        frames = len(seq)
        if frames < length:
            raise ValueError(
                f"{self!r}: the sequence has {frames} frames, fewer than {length} "
                f"(shape {np.shape(seq)}); sample longer sequences or lower sequence_length"
            )
        start = int(frames / 2 - length / 2)
        return seq[start:start + length]


@TRANSFORMS.register("RescaleCenter")
class RescaleCenter(Transform):
    """Scale each frame to height ``scale`` and move a centre point to the origin.

    Per frame: ``h = max_v y - min_v y`` over all joints (zeros included, as upstream);
    ``x, y <- x * scale / h, y * scale / h``; then subtract the centre, the mean of COCO
    joints 5, 6 (``neck``), 1, 2 (``head``) or 11, 12 (``hip``) whatever the joint format.
    Confidence unchanged. ``center`` None or ``'None'`` returns the input unchanged.
    A frame with ``h == 0`` (e.g. all joints missing) becomes x = y = 0 instead of
    upstream's NaN/inf.
    """

    def __init__(self, center: Optional[str] = "neck", scale: float = 225) -> None:
        if center is not None and (not isinstance(center, str) or (center != "None" and center not in RESCALE_CENTERS)):
            raise ValueError(
                f"RescaleCenter: unknown center {center!r}; valid: "
                f"{', '.join(sorted(RESCALE_CENTERS))}, or None for no change"
            )
        self.center = center
        self.scale = _check_positive("RescaleCenter", "scale", scale)

    def __call__(self, seq: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        if self.center is None or self.center == "None":
            return seq
        self._check_pose(seq)
        centre_joints = list(RESCALE_CENTERS[self.center])
        if seq.shape[1] <= max(centre_joints):
            raise ValueError(f"{self!r} needs COCO joints {centre_joints}, got shape {seq.shape}")
        out = _float_copy(seq)
        xy = out[:, :, :2]
        y = xy[:, :, 1]
        height = y.max(axis=1) - y.min(axis=1)
        flat = height == 0
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = xy * self.scale / height[:, None, None]
        scaled[flat] = 0
        out[:, :, :2] = scaled - scaled[:, centre_joints].mean(axis=1, keepdims=True)
        return out


@TRANSFORMS.register("Affine")
class Affine(Transform):
    """Rotate each frame about the neck so that the neck->hip segment is vertical.

    Neck n = mean of COCO joints 5, 6; hip = mean of 11, 12; ``d = hip - n``;
    ``theta = arctan(d_x / d_y)`` (0 when ``d_y == 0``). Every joint p, with
    ``q = p - n``, becomes ``x' = n_x + cos(theta) q_x - sin(theta) q_y``,
    ``y' = n_y + sin(theta) q_x + cos(theta) q_y``.

    The default is this intended rotation, **not upstream's formula**: upstream computes y'
    from the already rotated x', i.e. ``y' = n_y + sin*cos q_x + (cos - sin^2) q_y`` (docs/upstream_differences.md, "Affine rotation"),
    which shears tilted frames. Pass ``legacy=True`` to reproduce it for checkpoints
    trained with it. ``fi`` is accepted for config compatibility and unused (as upstream).
    """

    def __init__(self, fi: float = 0, legacy: bool = False) -> None:
        if not isinstance(legacy, (bool, np.bool_)):
            raise ValueError(f"Affine: legacy must be true or false, got {legacy!r}")
        self.fi = fi
        self.legacy = bool(legacy)

    def __call__(self, seq: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        self._check_pose(seq)
        if seq.shape[1] <= max(HIP_JOINTS):
            raise ValueError(f"{self!r} needs COCO joints 5, 6, 11, 12, got shape {seq.shape}")
        xy = np.asarray(seq[:, :, :2], dtype=np.float64)
        neck = xy[:, list(NECK_JOINTS)].mean(axis=1)  # [T, 2]
        spine = xy[:, list(HIP_JOINTS)].mean(axis=1) - neck
        ratio = np.divide(spine[:, 0], spine[:, 1], out=np.zeros(len(xy)), where=spine[:, 1] != 0)
        theta = np.arctan(ratio)
        cos = np.cos(theta)[:, None]
        sin = np.sin(theta)[:, None]
        qx = xy[:, :, 0] - neck[:, :1]
        qy = xy[:, :, 1] - neck[:, 1:]
        new_x = neck[:, :1] + cos * qx - sin * qy
        if self.legacy:  # upstream: y from the rotated x
            new_y = neck[:, 1:] + sin * (new_x - neck[:, :1]) + cos * qy
        else:
            new_y = neck[:, 1:] + sin * qx + cos * qy
        out = _float_copy(seq)
        out[:, :, 0] = new_x
        out[:, :, 1] = new_y
        return out


@TRANSFORMS.register("SkeletonInput")
class SkeletonInput(Transform):
    """``[T, V, C] -> [C, T, V, 1]`` (a view), the layout the graph models take."""

    min_channels = 1

    def __call__(self, seq: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        if np.ndim(seq) != 3:
            raise ValueError(f"SkeletonInput expects [T, V, C], got shape {np.shape(seq)}")
        return np.transpose(seq, (2, 0, 1))[..., None]

    def time_axis(self, input_axis: int = 0) -> int:
        return (1, 2, 0)[input_axis]  # [T, V, C] -> [C, T, V, 1]


# ---------------------------------------------------------------------------------------
# Input-feature builders (float64 output, as upstream)
# ---------------------------------------------------------------------------------------


def _velocities(xy: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``xy(t+1) - xy(t)`` and ``xy(t+2) - xy(t)`` on axis -3, zero on the last two frames
    (all frames when T < 3)."""
    frames = xy.shape[-3]
    step1 = np.zeros_like(xy)
    step2 = np.zeros_like(xy)
    if frames >= 3:
        step1[..., : frames - 2, :, :] = xy[..., 1 : frames - 1, :, :] - xy[..., : frames - 2, :, :]
        step2[..., : frames - 2, :, :] = xy[..., 2:, :, :] - xy[..., : frames - 2, :, :]
    return step1, step2


class _FormatTransform(Transform):
    def __init__(self, joint_format: str = "coco") -> None:
        self.joint_format = joint_format
        self._format = as_joint_format(joint_format)
        self._parents = self._format.parents_array()


@TRANSFORMS.register("GaitTR_MultiInput", aliases=("GaitTRMultiInput",))
class GaitTRMultiInput(_FormatTransform):
    """GaitTR's 10 input channels ``[T, V, 10]`` (float64) from x, y:
    ``x, y`` | ``x - x_centre, y - y_centre`` | ``xy(t+1) - xy(t)`` | ``xy(t+2) - xy(t)`` |
    ``xy - xy_parent``. Both velocities are 0 on the last two frames (all frames if T < 3)."""

    output_channels = 10

    def __call__(self, seq: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        self._check_pose(seq)
        self._check_joints(seq, self._format)
        xy = np.asarray(seq[:, :, :2], dtype=np.float64)
        centre = self._format.center
        relative = xy - xy[:, centre : centre + 1]
        step1, step2 = _velocities(xy)
        bones = xy - xy[:, self._parents]
        return np.concatenate((xy, relative, step1, step2, bones), axis=-1)


@TRANSFORMS.register("GaitGraph_MultiInput", aliases=("GaitGraphMultiInput",))
class GaitGraphMultiInput(_FormatTransform):
    """GaitGraph2's three input branches ``[T, V, 3, 5]`` (float64; axis 2 = branch):

    * branch 0: ``x, y, c, x - x_centre, y - y_centre``;
    * branch 1: ``vx1, vy1, 0, c, vy2`` (``v1 = xy(t+1) - xy(t)``, ``vy2 = y(t+2) - y(t)``,
      zero on the last two frames except c);
    * branch 2: ``bx, by, 0, c, arccos(by / (sqrt(bx^2 + by^2) + 1e-4))``, b = joint - parent.

    Channel 3 of branches 1 and 2 holds the confidence where vx2 and the x-angle were meant
    kept exactly, the published models were trained on it. The arccos is evaluated in
    a cancellation-free form (same value; see ``_bone_angle``).
    """

    min_channels = 3  # reads the confidence
    output_channels = 5  # per branch: [T, V, 3, 5]

    def __call__(self, seq: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        self._check_pose(seq, min_channels=3)
        self._check_joints(seq, self._format)
        pose = np.asarray(seq[:, :, :3], dtype=np.float64)
        xy = pose[..., :2]
        conf = pose[..., 2]
        zeros = np.zeros_like(conf)
        centre = self._format.center
        relative = xy - xy[:, centre : centre + 1]
        step1, step2 = _velocities(xy)
        bones = xy - xy[:, self._parents]
        angle = _bone_angle(bones[..., 0], bones[..., 1])
        branches = (
            (xy[..., 0], xy[..., 1], conf, relative[..., 0], relative[..., 1]),
            (step1[..., 0], step1[..., 1], zeros, conf, step2[..., 1]),
            (bones[..., 0], bones[..., 1], zeros, conf, angle),
        )
        return np.stack([np.stack(channels, axis=-1) for channels in branches], axis=-2)


def _bone_angle(bx: np.ndarray, by: np.ndarray) -> np.ndarray:
    """``arccos(by / (|b| + 1e-4))`` (GaitGraph's bone angle), evaluated as
    ``2 atan2(sqrt(|b| + eps - by), sqrt(|b| + eps + by))`` with ``|b| -+ by`` rewritten as
    ``bx^2 / (|b| +- by)`` where it would cancel: the same value, but accurate for nearly
    vertical bones, where ``arccos`` of a rounded ratio near +-1 loses half the digits."""
    length = np.sqrt(bx * bx + by * by)
    with np.errstate(divide="ignore", invalid="ignore"):
        below = np.where(by > 0, bx * bx / (length + by), length - by) + GAITGRAPH_ANGLE_EPS
        above = np.where(by < 0, bx * bx / (length - by), length + by) + GAITGRAPH_ANGLE_EPS
    return 2 * np.arctan2(np.sqrt(below), np.sqrt(above))


def _vertex_angle(joint: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """HOD's ``pi - angle(first, joint, second)`` for points ``[..., 2]``; ``pi`` when a side
    at the vertex has length 0.

    Upstream takes ``arccos`` of the law-of-cosines cosine; ``atan2(|u x w|, u . w)`` with
    ``u = first - joint``, ``w = second - joint`` is the same angle in exact arithmetic and
    stays accurate for straight or folded limbs, where the ``arccos`` form is off by up to
    ~1e-8 in float64 and ~5e-4 in float32 (e.g. two missing joints at the same point)."""
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf inputs end up as 0 / max
        u = first - joint
        w = second - joint
        cross = u[..., 0] * w[..., 1] - u[..., 1] * w[..., 0]
        dot = u[..., 0] * w[..., 0] + u[..., 1] * w[..., 1]
        degenerate = np.hypot(u[..., 0], u[..., 1]) * np.hypot(w[..., 0], w[..., 1]) == 0
        return np.where(degenerate, math.pi, math.pi - np.arctan2(np.abs(cross), dot))


@TRANSFORMS.register("HOD_MultiInput", aliases=("HODMultiInput",))
class HODMultiInput(_FormatTransform):
    """GPGait's HOD input ``[T, V, 6]`` (float64) from x, y: ``x, y, bx, by, angle, 0``.

    Bones b = joint - parent. The angle of slot k comes from the format's k-th tuple of
    :data:`HOD_ANGLE_TUPLES` (``pi - inner angle``: straight limb 0, folded pi; pi when a
    side at the vertex is 0). OpenPose tuples are written in COCO slot order with one wrong
    tuple (kept). At the end NaN -> 0 and +-inf -> +-max float, as upstream. A frame
    whose joints are all at (0, 0) gives all zeros (what upstream gets for such frames
    through RescaleCenter's NaN).
    """

    output_channels = 6

    def __init__(self, joint_format: str = "coco") -> None:
        super().__init__(joint_format)
        self._angles = hod_angle_index(self._format)

    def __call__(self, seq: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        self._check_pose(seq)
        self._check_joints(seq, self._format)
        xy = np.asarray(seq[:, :, :2], dtype=np.float64)
        index = self._angles
        bones = xy - xy[:, self._parents]
        joint = xy[:, index.joint]
        first = xy[:, index.first]
        auxiliary = np.stack((joint[..., 0], first[..., 1]), axis=-1)  # (x_joint, y_first)
        second = np.where(index.is_edge[:, None], auxiliary, xy[:, index.second])
        angles = np.zeros(xy.shape[:2])
        angles[:, : index.num_slots] = _vertex_angle(joint, first, second)
        out = np.concatenate((xy, bones, angles[..., None], np.zeros_like(angles)[..., None]), axis=-1)
        out[np.all(xy == 0, axis=(1, 2))] = 0
        return np.nan_to_num(out)


# ---------------------------------------------------------------------------------------
# Building from configs
# ---------------------------------------------------------------------------------------


def build_transform(cfg: TransformConfig, where: str = "transform") -> Transform:
    """Build one transform chain from a config entry.

    Args:
        cfg: ``None`` (identity), a mapping ``{type: Name, **arguments}``, a list of entries
            (applied in order, like ``Compose``), or an already built transform/callable.
        where: where the entry comes from (e.g. ``"trainer_cfg.transform[0]"``), used in
            errors and warnings.

    Unknown argument names are logged as warnings and dropped; an unknown ``type`` raises
    :class:`~fastposegait.registry.UnknownNameError` listing the valid names; a bad argument
    value (any ``TypeError`` or ``ValueError`` of a transform's constructor) raises a
    :class:`~fastposegait.errors.ConfigError` naming ``where``, the transform and the problem.
    A registered plain function is called with the sequence only (keyword arguments from the
    config are bound to it).

    Example::

        chain = build_transform([{"type": "NormalizeEmpty"},
                                 {"type": "FlipSequence", "probability": 0.5},
                                 {"type": "GaitGraph_MultiInput", "joint_format": "coco"}])
        features = chain(seq, np.random.default_rng(0))
    """
    if cfg is None:
        return NoOperation()
    if isinstance(cfg, Transform):
        return cfg
    if isinstance(cfg, Mapping):
        return _build_entry(cfg, where)
    if isinstance(cfg, (list, tuple)):
        return Compose([build_transform(entry, f"{where}[{i}]") for i, entry in enumerate(cfg)])
    if callable(cfg):
        return FunctionTransform(cfg)
    raise TypeError(
        f"{where}: a transform config must be null, a mapping with a 'type' key or a list of "
        f"them, got {type(cfg).__name__}: {cfg!r}"
    )


def _build_entry(cfg: Mapping[str, Any], where: str) -> Transform:
    if "type" not in cfg:
        raise ConfigError(f"{where}: transform entry {dict(cfg)!r} has no 'type' key")
    kwargs = {key: value for key, value in cfg.items() if key != "type"}
    name = cfg["type"]
    target = TRANSFORMS.get(name, where=f"{where}.type")
    if isinstance(target, type):
        kwargs = filter_kwargs(target, kwargs, f"{where}: transform {name}")
        if issubclass(target, Compose) and "trf_cfg" in kwargs:
            nested = kwargs["trf_cfg"]
            if isinstance(nested, Mapping):
                nested = [nested]
            if isinstance(nested, (list, tuple)):
                kwargs["trf_cfg"] = [build_transform(e, f"{where}.trf_cfg[{i}]") for i, e in enumerate(nested)]
        try:
            built = target(**kwargs)
        except (TypeError, ValueError) as err:
            if isinstance(err, FastPoseGaitError) and str(err).startswith(f"{where}."):
                raise  # a nested entry, reported with its own place
            raise ConfigError(f"{where}: cannot build transform {name!r} from {dict(cfg)!r}: {err}") from err
        return built if isinstance(built, Transform) else FunctionTransform(built)
    if callable(target):
        kwargs = filter_kwargs(target, kwargs, f"{where}: transform {name}", skip_first=True)
        return FunctionTransform(functools.partial(target, **kwargs) if kwargs else target)
    raise TypeError(f"{where}: transform {name!r} is registered as a non-callable {target!r}")


def time_axis_of(transform: Callable[..., Any], input_axis: int = 0) -> int:
    """The frame axis of ``transform``'s output for input frames on ``input_axis`` (0 for
    ``[T, V, C]``): 1 after ``SkeletonInput``, unchanged otherwise. Callables that are not
    :class:`Transform` are assumed to keep the layout."""
    if isinstance(transform, Transform):
        return transform.time_axis(input_axis)
    return input_axis


def build_transforms(cfg_list: Union[None, Mapping[str, Any], Sequence[Any]],
                     where: str = "transform") -> List[Transform]:
    """Build the per-modality transform list of ``trainer_cfg.transform`` /
    ``evaluator_cfg.transform``: one entry per input modality (a single mapping or ``None``
    counts as one modality). Each entry is built with :func:`build_transform`, so an entry
    that is itself a list becomes a ``Compose``."""
    if cfg_list is None or isinstance(cfg_list, Mapping):
        return [build_transform(cfg_list, f"{where}[0]")]
    if not isinstance(cfg_list, (list, tuple)):
        raise TypeError(
            f"{where}: expected a list with one transform entry per modality, got "
            f"{type(cfg_list).__name__}: {cfg_list!r}"
        )
    return [build_transform(entry, f"{where}[{i}]") for i, entry in enumerate(cfg_list)]
