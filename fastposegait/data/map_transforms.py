"""Transforms of map sequences (skeleton maps or silhouettes): cutting, flips, perspective, rotation.

A map sequence is an array ``[T, C, H, W]`` (T frames of C image channels, e.g. SkeletonGait's
``[T, 2, 64, 64]`` uint8 limb/joint maps) or ``[T, H, W]`` (one channel, e.g. silhouettes).
These are OpenGait's silhouette transforms under their config names, with OpenGait's
distributions and parameter names:

* ``BaseSilCuttingTransform(divsor=255.0, cutting=None)``: keep the central columns (``cutting``
  columns off each side, default ``(W // 64) * 10``: 64 -> 44) and divide by ``divsor``
  (OpenGait's spelling);
* ``RandomPerspective(prob=0.5)``: a random perspective warp of every frame;
* ``RandomHorizontalFlip(prob=0.5)``: mirror the width axis;
* ``RandomRotate(prob=0.5, degree=10)``: rotate every frame by a uniform angle about
  OpenGait's (swapped) centre ``(x = H // 2, y = W // 2)``.

One random draw per sequence serves all its frames and channels; a draw ``u`` applies a
transform when ``u < prob`` (so ``prob: 0`` never fires). Warps sample bilinearly, with zeros
outside the image, by inverse mapping each output pixel in float64; integer input is rounded
back to its dtype (as OpenCV does for uint8 images). OpenCV quantises the sampling positions to
1/32 pixel and uses fixed-point weights, so its results differ from these by small amounts
(docs/upstream_differences.md, "Map warps: float bilinear sampling").

Each transform also has a ``batched(x, generator)`` twin for ``trainer_cfg.transform_on:
device`` that works on ``[B, T, C, H, W]`` (or ``[B, T, H, W]``) tensors with one draw per
sequence of the batch; ``apply`` / ``apply_batched`` take the draws explicitly, so both paths
can be compared on the same draws.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from ..registry import TRANSFORMS
from .transforms import Transform

__all__ = [
    "MapTransform",
    "BaseSilCuttingTransform",
    "RandomPerspective",
    "RandomHorizontalFlip",
    "RandomRotate",
    "default_cutting",
    "perspective_cut",
    "perspective_source_to_target",
    "rotation_matrix",
    "warp_bilinear",
]

ArrayOrTensor = Union[np.ndarray, Tensor]


# ---------------------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------------------


def _number(value: Any) -> Optional[float]:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    return float(value)


def _probability(owner: str, prob: Any) -> float:
    number = _number(prob)
    if number is None or not 0.0 <= number <= 1.0:
        raise ValueError(f"{owner}: prob must be a number in [0, 1], got {prob!r}")
    return number


# ---------------------------------------------------------------------------------------
# Geometry (float64)
# ---------------------------------------------------------------------------------------


def default_cutting(width: int) -> int:
    """OpenGait's cut per side for a map of ``width`` columns: ``(width // 64) * 10``."""
    return int(width // 64) * 10


def perspective_cut(width: int) -> int:
    """The range of RandomPerspective's corner abscissae: ``(width // 44) * 10`` columns at each
    side (10 for widths 44 to 87, so 64 -> 10)."""
    return int(width // 44) * 10


def perspective_source_to_target(corners: Sequence[float], height: int, width: int) -> np.ndarray:
    """The 3x3 homography (float64) that maps the quadrilateral ``TL = (a, 0)``,
    ``TR = (b, 0)``, ``BR = (c, H)``, ``BL = (d, H)`` (``corners = (a, b, c, d)``) onto the
    image rectangle ``(0, 0), (W, 0), (W, H), (0, H)``, normalised so that ``M[2, 2] = 1``:
    the matrix OpenCV's ``getPerspectiveTransform`` returns for these points."""
    a, b, c, d = (float(v) for v in corners)
    source = [(a, 0.0), (b, 0.0), (c, float(height)), (d, float(height))]
    target = [(0.0, 0.0), (float(width), 0.0), (float(width), float(height)), (0.0, float(height))]
    return _homography(source, target)


def _homography(source: Sequence[Tuple[float, float]], target: Sequence[Tuple[float, float]]) -> np.ndarray:
    """Solve the 8x8 linear system for ``H`` with ``H [x, y, 1] ~ [u, v, 1]`` at four point pairs."""
    system = np.zeros((8, 8))
    rhs = np.zeros(8)
    for i, ((x, y), (u, v)) in enumerate(zip(source, target)):
        system[2 * i] = (x, y, 1.0, 0.0, 0.0, 0.0, -x * u, -y * u)
        system[2 * i + 1] = (0.0, 0.0, 0.0, x, y, 1.0, -x * v, -y * v)
        rhs[2 * i], rhs[2 * i + 1] = u, v
    try:
        h = np.linalg.solve(system, rhs)
    except np.linalg.LinAlgError:
        raise ValueError(f"RandomPerspective: corners {list(source)} are degenerate (three on a line)") from None
    return np.append(h, 1.0).reshape(3, 3)


def rotation_matrix(angle: float, height: int, width: int) -> np.ndarray:
    """The 2x3 affine matrix (float64) of RandomRotate by ``angle`` degrees (counter-clockwise
    on screen, scale 1) about OpenGait's centre ``(x = height // 2, y = width // 2)``: the image's
    height and width are swapped there, so the centre is not the image centre unless the map is
    square (kept: it defines the augmentation the published models were trained with). Equals
    OpenCV's ``getRotationMatrix2D``: ``[[c, s, (1 - c) cx - s cy], [-s, c, s cx + (1 - c) cy]]``."""
    cx, cy = float(height // 2), float(width // 2)
    radians = math.radians(float(angle))
    c, s = math.cos(radians), math.sin(radians)
    return np.array([[c, s, (1 - c) * cx - s * cy], [-s, c, s * cx + (1 - c) * cy]])


def _pixel_grid(height: int, width: int) -> Tuple[np.ndarray, np.ndarray]:
    ys, xs = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64), indexing="ij")
    return xs, ys


def _perspective_source(corners: Sequence[float], height: int, width: int) -> Tuple[np.ndarray, np.ndarray]:
    """Where each output pixel samples the input (inverse mapping), ``[H, W]`` each."""
    inverse = np.linalg.inv(perspective_source_to_target(corners, height, width))
    xs, ys = _pixel_grid(height, width)
    u = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    v = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    w = inverse[2, 0] * xs + inverse[2, 1] * ys + inverse[2, 2]
    return u / w, v / w


def _affine_source(matrix: np.ndarray, height: int, width: int) -> Tuple[np.ndarray, np.ndarray]:
    """Where each output pixel samples the input for the forward affine ``matrix`` [2, 3]."""
    inverse = np.linalg.inv(matrix[:, :2])
    xs, ys = _pixel_grid(height, width)
    dx, dy = xs - matrix[0, 2], ys - matrix[1, 2]
    return inverse[0, 0] * dx + inverse[0, 1] * dy, inverse[1, 0] * dx + inverse[1, 1] * dy


def warp_bilinear(images: np.ndarray, source_x: np.ndarray, source_y: np.ndarray) -> np.ndarray:
    """Sample ``images [..., H, W]`` at ``(source_x, source_y)`` ``[H, W]`` (pixel centres at
    integer coordinates), bilinearly, with zeros outside the image; float64 result.

    A neighbour outside the image contributes 0 with its weight, so an output pixel half a
    pixel past the border gets half the border value (OpenCV's constant border)."""
    height, width = images.shape[-2:]
    flat = np.asarray(images, dtype=np.float64).reshape(-1, height * width)
    x0 = np.floor(source_x)
    y0 = np.floor(source_y)
    fx, fy = source_x - x0, source_y - y0
    out = np.zeros((flat.shape[0], height * width))
    for dx, dy, weight in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                           (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = x0 + dx, y0 + dy
        inside = ((xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)).ravel()
        index = (np.clip(yi, 0, height - 1) * width + np.clip(xi, 0, width - 1)).astype(np.int64).ravel()
        out += np.where(inside, weight.ravel(), 0.0) * flat[:, index]
    return out.reshape(images.shape)


def _warp_bilinear_batched(x: Tensor, source_x: Tensor, source_y: Tensor) -> Tensor:
    """:func:`warp_bilinear` for ``x [B, ..., H, W]`` with one sampling grid per sample
    ``source_x, source_y [B, H, W]`` (float64 positions and weights); the sums run in float64
    for float64 input and in float32 otherwise (the training batches are float32)."""
    batch, height, width = x.shape[0], x.shape[-2], x.shape[-1]
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    flat = x.reshape(batch, -1, height * width).to(compute)
    x0 = torch.floor(source_x)
    y0 = torch.floor(source_y)
    fx, fy = source_x - x0, source_y - y0
    out = torch.zeros_like(flat)
    for dx, dy, weight in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                           (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = x0 + dx, y0 + dy
        inside = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
        index = (yi.clamp(0, height - 1) * width + xi.clamp(0, width - 1)).to(torch.long).reshape(batch, 1, -1)
        gathered = torch.gather(flat, 2, index.expand(-1, flat.shape[1], -1))
        weight = torch.where(inside, weight, torch.zeros_like(weight)).to(compute)
        out = out + weight.reshape(batch, 1, -1) * gathered
    return out.reshape(x.shape)


def _pixel_grid_batched(height: int, width: int, device: torch.device) -> Tuple[Tensor, Tensor]:
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float64, device=device),
                            torch.arange(width, dtype=torch.float64, device=device), indexing="ij")
    return xs, ys


def _perspective_source_batched(corners: Tensor, height: int, width: int) -> Tuple[Tensor, Tensor]:
    """:func:`_perspective_source` for ``corners [B, 4]`` on their device (float64, no host
    round trip): the image-to-quadrilateral homography is solved directly (the inverse of the
    worker path's matrix, up to scale), ``[B, H, W]`` each."""
    corners = corners.to(torch.float64)
    batch = corners.shape[0]
    a, b, c, d = corners.unbind(1)
    zero = torch.zeros_like(a)
    full = torch.full_like(a, float(height))
    source = [(a, zero), (b, zero), (c, full), (d, full)]  # what the image corners sample
    target = [(0.0, 0.0), (float(width), 0.0), (float(width), float(height)), (0.0, float(height))]
    system = torch.zeros((batch, 8, 8), dtype=torch.float64, device=corners.device)
    rhs = torch.zeros((batch, 8), dtype=torch.float64, device=corners.device)
    for i, ((u, v), (sx, sy)) in enumerate(zip(target, source)):
        system[:, 2 * i, 0], system[:, 2 * i, 1], system[:, 2 * i, 2] = u, v, 1.0
        system[:, 2 * i, 6], system[:, 2 * i, 7] = -u * sx, -v * sx
        system[:, 2 * i + 1, 3], system[:, 2 * i + 1, 4], system[:, 2 * i + 1, 5] = u, v, 1.0
        system[:, 2 * i + 1, 6], system[:, 2 * i + 1, 7] = -u * sy, -v * sy
        rhs[:, 2 * i], rhs[:, 2 * i + 1] = sx, sy
    h = torch.linalg.solve(system, rhs)
    g = torch.cat((h, torch.ones_like(h[:, :1])), dim=1).reshape(batch, 3, 3, 1, 1)
    xs, ys = _pixel_grid_batched(height, width, corners.device)
    u = g[:, 0, 0] * xs + g[:, 0, 1] * ys + g[:, 0, 2]
    v = g[:, 1, 0] * xs + g[:, 1, 1] * ys + g[:, 1, 2]
    w = g[:, 2, 0] * xs + g[:, 2, 1] * ys + g[:, 2, 2]
    return u / w, v / w


def _rotation_source_batched(angles: Tensor, height: int, width: int) -> Tuple[Tensor, Tensor]:
    """:func:`_affine_source` of :func:`rotation_matrix` for ``angles [B]`` degrees, on their
    device: the rotation's inverse is its transpose, ``p = R^T (q - t)``."""
    radians = torch.deg2rad(angles.to(torch.float64)).reshape(-1, 1, 1)
    c, s = torch.cos(radians), torch.sin(radians)
    cx, cy = float(height // 2), float(width // 2)
    tx, ty = (1 - c) * cx - s * cy, s * cx + (1 - c) * cy
    xs, ys = _pixel_grid_batched(height, width, angles.device)
    dx, dy = xs - tx, ys - ty
    return c * dx - s * dy, s * dx + c * dy


def _like_input(values: ArrayOrTensor, reference: ArrayOrTensor) -> ArrayOrTensor:
    """Float64 warp results in the input's dtype: floats cast, integers rounded to nearest and
    clipped to the dtype's range (as OpenCV returns uint8 images)."""
    if isinstance(reference, np.ndarray):
        if np.issubdtype(reference.dtype, np.integer):
            info = np.iinfo(reference.dtype)
            return np.clip(np.rint(values), info.min, info.max).astype(reference.dtype)
        if reference.dtype == np.bool_:
            return np.rint(values).astype(bool)
        return np.asarray(values, dtype=reference.dtype)
    if reference.dtype.is_floating_point:
        return values.to(reference.dtype)
    if reference.dtype == torch.bool:
        return torch.round(values).to(torch.bool)
    info = torch.iinfo(reference.dtype)
    return torch.round(values).clamp(info.min, info.max).to(reference.dtype)


# ---------------------------------------------------------------------------------------
# Transforms
# ---------------------------------------------------------------------------------------


class MapTransform(Transform):
    """Base of the map transforms: ``[T, C, H, W]`` or ``[T, H, W]`` sequences (axis 0 time).

    ``input_kind = "map"`` tells the dataset layout check (:mod:`fastposegait.data.layout`)
    that these transforms need map sequences, so a pose dataset fed to them directly (without
    a pose-to-map transform such as ``SkeletonMap`` before them) is reported at start."""

    #: what the transform reads: map sequences (see the class docstring)
    input_kind = "map"
    min_channels = 1  # declares nothing about pose channels

    def _check_map(self, seq: Any) -> np.ndarray:
        if not isinstance(seq, np.ndarray):
            raise TypeError(f"{self!r} expects a numpy array [T, C, H, W] or [T, H, W], got {type(seq).__name__}")
        if seq.ndim not in (3, 4) or 0 in seq.shape:
            raise ValueError(f"{self!r} expects a map sequence [T, C, H, W] or [T, H, W], got shape {seq.shape}")
        return seq

    def _check_batch(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() not in (4, 5) or 0 in x.shape:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{self!r} (on the device) expects a batch of map sequences [B, T, C, H, W] or "
                             f"[B, T, H, W], got {shape}")
        return x

    def _draw(self, generator: torch.Generator, x: Tensor) -> Tensor:
        """Which sequences of the batch the transform applies to: ``u < prob``, u float64."""
        u = torch.rand((x.shape[0],), generator=generator, device=x.device, dtype=torch.float64)
        return u < self.prob  # type: ignore[attr-defined]


def _per_sample(mask: Tensor, x: Tensor) -> Tensor:
    return mask.reshape(mask.shape + (1,) * (x.dim() - 1))


def _on_selected(x: Tensor, mask: Tensor, warp: Any) -> Tensor:
    """``x`` with ``warp(x[rows], rows)`` written into the sequences ``rows`` where ``mask``:
    only the selected sequences are warped (one host sync for their number)."""
    rows = torch.nonzero(mask).squeeze(1)
    if rows.numel() == 0:
        return x
    out = x.clone()
    out[rows] = warp(x[rows], rows)
    return out


@TRANSFORMS.register("BaseSilCuttingTransform")
class BaseSilCuttingTransform(MapTransform):
    """Keep the central columns and scale: ``seq[..., cut:W - cut] / divsor``.

    ``cutting`` None cuts ``(W // 64) * 10`` columns per side (64 -> 44, 128 -> 88); ``divsor``
    (OpenGait's spelling) maps 0..255 grey levels to 0..1. Integer input gives float64 output,
    float input keeps its dtype. A cut that leaves no column is an error; ``cutting: 0`` keeps
    every column (OpenGait's slice ``[0:-0]`` would keep none)."""

    def __init__(self, divsor: float = 255.0, cutting: Optional[int] = None) -> None:
        number = _number(divsor)
        if number is None or not math.isfinite(number) or number == 0:
            raise ValueError(f"BaseSilCuttingTransform: divsor must be a finite non-zero number, got {divsor!r}")
        if cutting is not None and (isinstance(cutting, bool) or not isinstance(cutting, (int, np.integer))
                                    or cutting < 0):
            raise ValueError(f"BaseSilCuttingTransform: cutting must be null or an integer >= 0, got {cutting!r}")
        self.divsor = divsor
        self.cutting = None if cutting is None else int(cutting)

    def cut(self, width: int) -> int:
        """Columns removed from each side of a map ``width`` wide."""
        cut = default_cutting(width) if self.cutting is None else self.cutting
        if 2 * cut >= width:
            raise ValueError(f"{self!r}: cutting {cut} columns from each side of a map {width} wide leaves none")
        return cut

    def __call__(self, seq: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        seq = self._check_map(seq)
        width = seq.shape[-1]
        cut = self.cut(width)
        return seq[..., cut:width - cut] / self.divsor

    def batched(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        x = self._check_batch(x)
        width = x.shape[-1]
        cut = self.cut(width)
        kept = x[..., cut:width - cut]
        if not kept.dtype.is_floating_point:
            kept = kept.to(torch.float64)
        return kept / self.divsor


@TRANSFORMS.register("RandomHorizontalFlip")
class RandomHorizontalFlip(MapTransform):
    """With probability ``prob`` (one draw per sequence) mirror the width axis of every frame
    and channel (SkeletonGait's maps have no left/right channels to swap)."""

    def __init__(self, prob: float = 0.5) -> None:
        self.prob = _probability("RandomHorizontalFlip", prob)

    def __call__(self, seq: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        seq = self._check_map(seq)
        if self._need_rng(rng).random() < self.prob:
            return np.ascontiguousarray(seq[..., ::-1])
        return seq

    def batched(self, x: Tensor, generator: torch.Generator) -> Tensor:
        x = self._check_batch(x)
        flip = self._draw(generator, x)
        return torch.where(_per_sample(flip, x), x.flip(-1), x)


def _warp_selected(x: Tensor, source_x: Tensor, source_y: Tensor, mask: Optional[Tensor]) -> Tensor:
    """``x`` sampled bilinearly at ``(source_x, source_y)`` in its own dtype, for the samples where
    ``mask [B]`` is true (all of them when it is None); the others unchanged."""
    warped = _like_input(_warp_bilinear_batched(x, source_x, source_y), x)
    return warped if mask is None else torch.where(_per_sample(mask, x), warped, x)


@TRANSFORMS.register("RandomPerspective")
class RandomPerspective(MapTransform):
    """With probability ``prob`` (one draw per sequence), warp every frame so that the
    quadrilateral ``TL = (a, 0)``, ``TR = (b, 0)``, ``BR = (c, H)``, ``BL = (d, H)`` fills the
    image (``(0, 0), (W, 0), (W, H), (0, H)``): a, d uniform in ``0 .. k-1`` and b, c in
    ``W-k .. W-1`` with ``k = (W // 44) * 10`` (10 for 64-wide maps). Bilinear, zero outside;
    integer maps are rounded back to their dtype. Maps narrower than 44 columns are an error
    (OpenGait would draw from an empty range)."""

    def __init__(self, prob: float = 0.5) -> None:
        self.prob = _probability("RandomPerspective", prob)

    def _cut(self, width: int) -> int:
        cut = perspective_cut(width)
        if cut == 0:
            raise ValueError(f"{self!r}: maps {width} columns wide are narrower than 44; the corners are drawn "
                             "from (W // 44) * 10 columns at each side, none here")
        return cut

    def draw_corners(self, rng: np.random.Generator, width: int) -> Tuple[int, int, int, int]:
        """``(a, b, c, d)``: the abscissae of TL, TR, BR, BL (drawn in that order)."""
        cut = self._cut(width)
        a, b, c, d = (int(v) for v in rng.integers((0, width - cut, width - cut, 0), (cut, width, width, cut)))
        return a, b, c, d

    def apply(self, seq: np.ndarray, corners: Sequence[float]) -> np.ndarray:
        """``seq`` warped with the given corners (no randomness)."""
        seq = self._check_map(seq)
        height, width = seq.shape[-2:]
        source_x, source_y = _perspective_source(corners, height, width)
        return _like_input(warp_bilinear(seq, source_x, source_y), seq)

    def __call__(self, seq: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        seq = self._check_map(seq)
        rng = self._need_rng(rng)
        if rng.random() < self.prob:
            return self.apply(seq, self.draw_corners(rng, seq.shape[-1]))
        return seq

    def apply_batched(self, x: Tensor, corners: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """``x [B, T, (C,) H, W]`` warped with ``corners [B, 4]`` per sample (where ``mask [B]``
        is true, all samples when it is None)."""
        x = self._check_batch(x)
        height, width = x.shape[-2:]
        return _warp_selected(x, *_perspective_source_batched(corners.to(x.device), height, width), mask)

    def batched(self, x: Tensor, generator: torch.Generator) -> Tensor:
        x = self._check_batch(x)
        apply = self._draw(generator, x)
        width = x.shape[-1]
        cut = self._cut(width)
        batch = x.shape[0]
        low = torch.randint(0, cut, (batch, 2), generator=generator, device=x.device)
        high = torch.randint(width - cut, width, (batch, 2), generator=generator, device=x.device)
        corners = torch.stack((low[:, 0], high[:, 0], high[:, 1], low[:, 1]), dim=1)  # a, b, c, d
        return _on_selected(x, apply, lambda picked, rows: self.apply_batched(picked, corners[rows]))


@TRANSFORMS.register("RandomRotate")
class RandomRotate(MapTransform):
    """With probability ``prob`` (one draw per sequence), rotate every frame by an angle
    uniform in ``[-degree, degree]`` degrees about ``(x = H // 2, y = W // 2)`` (OpenGait's
    swapped centre: for a 64-high, 44-wide map (32, 22), 10 px right of and 10 px above the
    image centre; kept, it defines the augmentation), scale 1, output the same size; bilinear,
    zero outside; integer maps are rounded back to their dtype. Matrix: :func:`rotation_matrix`."""

    def __init__(self, prob: float = 0.5, degree: float = 10) -> None:
        self.prob = _probability("RandomRotate", prob)
        number = _number(degree)
        if number is None or not (math.isfinite(number) and number >= 0):
            raise ValueError(f"RandomRotate: degree must be a finite number >= 0, got {degree!r}")
        self.degree = degree

    def apply(self, seq: np.ndarray, angle: float) -> np.ndarray:
        """``seq`` rotated by ``angle`` degrees (no randomness)."""
        seq = self._check_map(seq)
        height, width = seq.shape[-2:]
        source_x, source_y = _affine_source(rotation_matrix(angle, height, width), height, width)
        return _like_input(warp_bilinear(seq, source_x, source_y), seq)

    def __call__(self, seq: np.ndarray, rng: Optional[np.random.Generator] = None) -> np.ndarray:
        seq = self._check_map(seq)
        rng = self._need_rng(rng)
        if rng.random() < self.prob:
            return self.apply(seq, rng.uniform(-self.degree, self.degree))
        return seq

    def apply_batched(self, x: Tensor, angles: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """``x [B, T, (C,) H, W]`` rotated by ``angles [B]`` degrees per sample (where ``mask``)."""
        x = self._check_batch(x)
        height, width = x.shape[-2:]
        return _warp_selected(x, *_rotation_source_batched(angles.to(x.device), height, width), mask)

    def batched(self, x: Tensor, generator: torch.Generator) -> Tensor:
        x = self._check_batch(x)
        apply = self._draw(generator, x)
        u = torch.rand((x.shape[0],), generator=generator, device=x.device, dtype=torch.float64)
        degree = float(self.degree)
        angles = -degree + 2 * degree * u  # U(-degree, degree), as numpy's uniform
        return _on_selected(x, apply, lambda picked, rows: self.apply_batched(picked, angles[rows]))
