"""Skeleton maps rendered with torch, many frames at once, on the CPU or a GPU.

:func:`render_canvas` turns canvas poses ``[F, V, 3]`` (COCO-17 joints already centred and
scaled into the 128x128 canvas: hip midpoint at (64, 64), joint extent 85 px) into maps
``[F, 2, 64, 64]`` (channel 0 limbs, channel 1 joints) on the 0..255 scale. It computes what
the offline generator computes, step by step (docs/process_dataset.md, "Skeleton maps for
SkeletonGait"):

1. **Gaussians** (:func:`gaussian_canvas`): every joint is a blob ``c * exp(-d^2 / (2 sigma^2))``
   and every limb a tube around its segment, peak ``min(c_start, c_end)``, each clipped to its
   window (``3 sigma`` around the joint or the limb's bounding box, ends truncated toward zero);
   elements whose peak is below ``1e-3`` are not drawn, a limb shorter than 1 px is drawn as a
   joint with the start's confidence; per channel the maximum over elements is kept, in float32.
2. **Grey levels** (``quantise=True``): ``GREY_LUT[min(floor(256 v), 255)]``, the colormap
   levels of the original.
3. **Crop and resize** (:func:`crop_and_resize`): per frame and channel, the rows between the
   first and last non-zero row (height h) and the h (h odd) or h + 1 columns centred on column
   64, resampled to 64x64 the way OpenCV's ``INTER_AREA`` does it, in float64 and in OpenCV's
   order of operations (the exact 2x case as ``(TL + TR + BL + BR) * 0.25``; other sizes as a
   horizontal then a vertical pass over float32 area weights), so that ``trunc(255 x mean)``
   gives the original's grey levels, including the cases where float rounding makes an
   integer mean come out one lower.

Vectorised over frames, in chunks of ``chunk_size`` frames (about 1 MiB of memory per frame): each of the 17
joints and 17 limbs is evaluated for all frames of the chunk at once, on the box covering its
windows in all of them (a plain slice of the canvases, so no per-pixel indexing); a joint blob,
clipped to its square window, is a product of a row factor and a column factor, so it costs one
outer product.

Precision: the Gaussians are computed in the canvas poses' dtype (pass float64 for the
original's arithmetic, as the ``SkeletonMap`` transform does; float32 is faster and moves a
few pixels in a million by one grey level), the canvas is float32 (as the original's) and the
crop-and-resize float64. The row-times-column blobs and the along/across segment distances
are rearrangements of the original's formulas that agree with them to float64 rounding, far
below the float32 canvas's resolution.

``quantise=False`` keeps every step in floating point: the canvas value becomes the level
``min(256 v, 255)`` instead of its rounded grey level, the same rows and columns are cropped
(a row counts as non-zero where ``256 v >= 1``, i.e. where the grey level would be non-zero)
and the final ``255 x mean`` is not truncated. The result equals the quantised map up to the
quantisation: every pixel within 3 grey levels (less than 2 before the resize; measured
bounds in docs/benchmarks.md, "Skeleton maps: on-the-fly rendering").
"""
from __future__ import annotations

import functools
import math
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from .exact import CANVAS_SIZE, LIMBS, MAP_SIZE, MIN_PEAK
from .grey import GREY_LUT

__all__ = [
    "CANVAS_SIZE",
    "MAP_SIZE",
    "LIMBS",
    "MIN_CONFIDENCE",
    "render_canvas",
    "gaussian_canvas",
    "grey_levels",
    "crop_and_resize",
]

#: the column the crop is centred on (the hip midpoint)
CENTRE_COLUMN = CANVAS_SIZE // 2
#: elements whose peak is below this are not drawn
MIN_CONFIDENCE = MIN_PEAK
#: number of COCO joints the renderer takes
NUM_JOINTS = 17
#: a coordinate this far off the canvas draws nothing; non-finite coordinates are moved here
_FAR_AWAY = -1.0e6
#: at most this many source pixels contribute to one output pixel along an axis
_TAPS = 3


#: frames rendered together by default: small enough on a CPU to keep a chunk's canvases in the
#: cache (measured fastest between 16 and 64), large on a GPU to fill it
DEFAULT_CHUNK = {"cpu": 32, "cuda": 1024}


def render_canvas(canvas: Tensor, sigma: float = 8.0, quantise: bool = True,
                  chunk_size: Optional[int] = None) -> Tensor:
    """Skeleton maps of canvas poses.

    Args:
        canvas: ``[F, 17, 3]`` (x, y, confidence) in canvas pixels (step C already applied),
            float32 or float64, on any device.
        sigma: Gaussian width in canvas pixels (windows reach ``3 sigma``).
        quantise: grey levels and truncation as the stored uint8 maps (True), or floating
            point throughout (False; see the module docstring).
        chunk_size: frames rendered together (bounds the memory, not the result); None:
            :data:`DEFAULT_CHUNK` for the device type (1024 on other devices).

    Returns:
        ``[F, 2, 64, 64]`` float32 on ``canvas.device``, values 0..255 (integers when
        quantised); channel 0 limbs, channel 1 joints.
    """
    _check_canvas(canvas)
    if chunk_size is None:
        chunk_size = DEFAULT_CHUNK.get(canvas.device.type, 1024)
    if not (isinstance(chunk_size, int) and chunk_size >= 1):
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    frames = canvas.shape[0]
    out = torch.empty((frames, 2, MAP_SIZE, MAP_SIZE), dtype=torch.float32, device=canvas.device)
    for first in range(0, frames, chunk_size):
        part = canvas[first:first + chunk_size]
        values = gaussian_canvas(part, sigma)
        out[first:first + chunk_size] = crop_and_resize(values, quantise)
    return out


# ---------------------------------------------------------------------------------------
# Step 1: Gaussians on the 128x128 canvas
# ---------------------------------------------------------------------------------------


def gaussian_canvas(canvas: Tensor, sigma: float = 8.0) -> Tensor:
    """The float32 canvas values ``[F, 2, 128, 128]`` before quantisation (channel 0 limbs,
    channel 1 joints), computed in ``canvas.dtype``."""
    _check_canvas(canvas)
    sigma = float(sigma)
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a finite number > 0, got {sigma!r}")
    frames = canvas.shape[0]
    channels = [torch.zeros((frames, CANVAS_SIZE, CANVAS_SIZE), dtype=canvas.dtype, device=canvas.device)
                for _ in range(2)]
    if frames == 0:
        return torch.stack(channels, dim=1).to(torch.float32)
    finite = torch.isfinite(canvas).all(dim=-1)  # [F, V]
    xy = torch.where(finite[..., None], canvas[..., :2], torch.full_like(canvas[..., :2], _FAR_AWAY))
    conf = torch.where(finite, canvas[..., 2], torch.zeros_like(canvas[..., 2]))
    x, y = xy[..., 0], xy[..., 1]
    reach = 3 * sigma

    limb_start = torch.tensor([a for a, _ in LIMBS], device=canvas.device)
    limb_end = torch.tensor([b for _, b in LIMBS], device=canvas.device)
    ax, ay, bx, by = x[:, limb_start], y[:, limb_start], x[:, limb_end], y[:, limb_end]  # [F, E]
    ca, cb = conf[:, limb_start], conf[:, limb_end]
    short = ((ax - bx) * (ax - bx) + (ay - by) * (ay - by)) < 1  # drawn as a joint at the start
    limb_peak = torch.where(short, ca, torch.minimum(ca, cb))
    limb_draw = torch.minimum(ca, cb) >= MIN_CONFIDENCE
    lo_x = torch.where(short, ax, torch.minimum(ax, bx))
    hi_x = torch.where(short, ax, torch.maximum(ax, bx))
    lo_y = torch.where(short, ay, torch.minimum(ay, by))
    hi_y = torch.where(short, ay, torch.maximum(ay, by))
    limbs = _Elements(ax, ay, bx, by, limb_peak, limb_draw, short, *_window(lo_x, hi_x, reach),
                      *_window(lo_y, hi_y, reach))
    joints = _Elements(x, y, x, y, conf, conf >= MIN_CONFIDENCE, torch.ones_like(finite),
                       *_window(x, x, reach), *_window(y, y, reach))
    _draw_limbs(channels[0], limbs, sigma)
    _draw_joints(channels[1], joints, sigma)
    return torch.stack(channels, dim=1).to(torch.float32)  # the max of the rounded = the rounded max


class _Elements:
    """Per-frame parameters of E Gaussian elements of one channel (tensors ``[F, E]``): the
    segment ``a -> b`` (a point where ``point``), the peak, whether it is drawn, and its window
    ``[x0, x1) x [y0, y1)`` (integer-valued, clipped to the canvas)."""

    def __init__(self, ax: Tensor, ay: Tensor, bx: Tensor, by: Tensor, peak: Tensor, draw: Tensor,
                 point: Tensor, x0: Tensor, x1: Tensor, y0: Tensor, y1: Tensor) -> None:
        self.ax, self.ay, self.bx, self.by = ax, ay, bx, by
        self.peak, self.point = peak, point
        empty = (x1 <= x0) | (y1 <= y0)
        self.draw = draw & ~empty
        self.x0, self.x1, self.y0, self.y1 = x0, x1, y0, y1


def _window(lo: Tensor, hi: Tensor, reach: float) -> Tuple[Tensor, Tensor]:
    """``[max(trunc(lo - reach), 0), min(trunc(hi + reach) + 1, 128))`` as float tensors."""
    start = torch.trunc(lo - reach).clamp(0, CANVAS_SIZE)
    end = (torch.trunc(hi + reach) + 1).clamp(0, CANVAS_SIZE)
    return start, end


def _union_boxes(elements: _Elements) -> list:
    """Per element, the box ``(x0, x1, y0, y1)`` covering its window in every frame that draws
    it (None when no frame does): one host synchronisation for all elements."""
    full = torch.full_like(elements.x0, CANVAS_SIZE)
    zero = torch.zeros_like(elements.x0)
    draw = elements.draw
    bounds = torch.stack((torch.where(draw, elements.x0, full).amin(dim=0),
                          torch.where(draw, elements.x1, zero).amax(dim=0),
                          torch.where(draw, elements.y0, full).amin(dim=0),
                          torch.where(draw, elements.y1, zero).amax(dim=0)))
    return [None if x1 <= x0 or y1 <= y0 else (x0, x1, y0, y1)
            for x0, x1, y0, y1 in bounds.to(torch.int64).t().tolist()]


def _draw_joints(target: Tensor, elements: _Elements, sigma: float) -> None:
    """Max-combine the joint blobs into ``target`` ``[F, 128, 128]`` (float64, modified).

    A blob clipped to its square window is a product of a row factor and a column factor,
    ``(exp(-dy^2 / 2 sigma^2) [row in window]) x (c exp(-dx^2 / 2 sigma^2) [column in window])``,
    so each joint costs one outer product over the box covering its windows in all frames of
    the chunk. (The original evaluates ``c exp(-(dx^2 + dy^2) / 2 sigma^2)``; the two agree to
    float64 rounding, far below the float32 canvas's resolution.)"""
    device, dtype = target.device, target.dtype
    pixels = torch.arange(CANVAS_SIZE, device=device, dtype=dtype)
    scale = -1.0 / (2.0 * sigma ** 2)
    dx = pixels - elements.ax[..., None]  # [F, E, 128]
    dy = pixels - elements.ay[..., None]
    columns = torch.where(_in_window(pixels, elements.x0, elements.x1) & elements.draw[..., None],
                          torch.exp(dx * dx * scale) * elements.peak[..., None], 0.0)
    rows = torch.where(_in_window(pixels, elements.y0, elements.y1), torch.exp(dy * dy * scale), 0.0)
    for e, box in enumerate(_union_boxes(elements)):
        if box is None:
            continue  # this joint is drawn in no frame
        x0, x1, y0, y1 = box
        region = target[:, y0:y1, x0:x1]
        torch.maximum(region, rows[:, e, y0:y1, None] * columns[:, e, None, x0:x1], out=region)


def _draw_limbs(target: Tensor, elements: _Elements, sigma: float) -> None:
    """Max-combine the limb tubes into ``target`` ``[F, 128, 128]`` (float64, modified).

    Each limb is evaluated, for all frames of the chunk at once, on the box covering its
    windows in all of them; pixels outside a frame's own window get 0 there (row and column
    masks), which leaves the canvas unchanged."""
    device, dtype = target.device, target.dtype
    pixels = torch.arange(CANVAS_SIZE, device=device, dtype=dtype)
    scale = -1.0 / (2.0 * sigma ** 2)
    column_peaks = torch.where(_in_window(pixels, elements.x0, elements.x1) & elements.draw[..., None],
                               elements.peak[..., None], 0.0)  # [F, E, 128]
    row_masks = _in_window(pixels, elements.y0, elements.y1).to(dtype)
    dxa = pixels - elements.ax[..., None]
    dya = pixels - elements.ay[..., None]
    for e, box in enumerate(_union_boxes(elements)):
        if box is None:
            continue  # this limb is drawn in no frame
        x0, x1, y0, y1 = box
        d2 = _segment_distance(dxa[:, e, x0:x1], dya[:, e, y0:y1], elements, e)
        patch = torch.exp(d2 * scale) * column_peaks[:, e, None, x0:x1] * row_masks[:, e, y0:y1, None]
        region = target[:, y0:y1, x0:x1]
        torch.maximum(region, patch, out=region)


def _segment_distance(dxa: Tensor, dya: Tensor, elements: _Elements, e: int) -> Tensor:
    """Squared distance ``[F, H, W]`` from the pixel centres (offsets ``dxa [F, W]`` and
    ``dya [F, H]`` from the start ``a``) to element ``e``'s segment ``a -> b``: to ``a`` where
    the pixel projects before ``a``, to ``b`` where it projects past ``b``, to the line in
    between; a limb shorter than 1 px (``point``) uses the distance to ``a``.

    The original computes the projection parameter and the projected point and picks one of
    three distances; here ``across^2 + overshoot^2``, with the offsets along and across the
    unit direction (sums of a row term and a column term) and ``overshoot`` = how far ``along``
    lies outside ``[0, length]``, which is the same distance (to float64 rounding) in fewer
    passes over the pixels."""
    ux = elements.bx[:, e] - elements.ax[:, e]
    uy = elements.by[:, e] - elements.ay[:, e]
    point = elements.point[:, e]
    length = torch.where(point, torch.ones_like(ux), torch.sqrt(ux * ux + uy * uy))
    ux, uy = ux / length, uy / length
    along = (dya * uy[:, None])[:, :, None] + (dxa * ux[:, None])[:, None, :]
    across = (dya * ux[:, None])[:, :, None] - (dxa * uy[:, None])[:, None, :]
    overshoot = along - torch.minimum(torch.clamp(along, min=0), length[:, None, None])
    d2 = across * across + overshoot * overshoot
    if bool(point.any()):
        d2a = (dya * dya)[:, :, None] + (dxa * dxa)[:, None, :]
        d2 = torch.where(point[:, None, None], d2a, d2)
    return d2


def _in_window(pixels: Tensor, start: Tensor, end: Tensor) -> Tensor:
    """``start <= pixels < end`` with ``start``, ``end`` ``[...]`` and ``pixels`` ``[N]`` or
    ``[..., N]``: ``[..., N]``."""
    return (pixels >= start[..., None]) & (pixels < end[..., None])


# ---------------------------------------------------------------------------------------
# Step 2: grey levels
# ---------------------------------------------------------------------------------------


def grey_levels(values: Tensor) -> Tensor:
    """Grey levels (float64, integers 0..255) of float32 canvas values: ``GREY_LUT[i]`` with
    ``i = floor(256 v)`` clipped to 0..255 (``256 v`` is exact in float32)."""
    index = torch.floor(values * 256).clamp(0, 255).to(torch.int64)
    return _lut(values.device).index_select(0, index.reshape(-1)).view(values.shape)  # faster than lut[index]


@functools.lru_cache(maxsize=None)
def _lut_cached(device: str) -> Tensor:
    return torch.tensor(np.array(GREY_LUT), dtype=torch.float64).to(device)


def _lut(device: torch.device) -> Tensor:
    return _lut_cached(str(device))


# ---------------------------------------------------------------------------------------
# Step 3: crop to the support, resize to 64x64
# ---------------------------------------------------------------------------------------


def crop_and_resize(values: Tensor, quantise: bool = True) -> Tensor:
    """Maps ``[F, C, 64, 64]`` float32 (0..255) from canvas values ``[F, C, 128, 128]``.

    Per frame and channel: rows ``top..bottom`` = first..last row with a non-zero grey level
    (``256 v >= 1``; an empty image keeps row 0 only), ``h = bottom - top + 1``, columns
    ``64 - h // 2 .. min(64 + h // 2, 127)``; that crop is resampled to 64x64 like OpenCV's
    ``INTER_AREA`` (area averaging; a crop under 64 px, which only a frame with one or two
    drawn joints has, is enlarged with the linear weights OpenCV uses in that case).
    ``quantise``: grey levels in, ``trunc(255 x mean)`` out; otherwise floats throughout."""
    if values.dim() != 4 or values.shape[-2:] != (CANVAS_SIZE, CANVAS_SIZE):
        raise ValueError(f"crop_and_resize expects canvas values [F, C, 128, 128], got {tuple(values.shape)}")
    support = values * 256 >= 1  # [F, C, 128, 128]: where the grey level is non-zero
    if quantise:
        levels = grey_levels(values)
    else:
        levels = (values.to(torch.float64) * 256).clamp(max=255)
    image = levels / 255  # float64, the original's 0..1 image
    rows = support.any(dim=-1)  # [F, C, 128]
    row_numbers = torch.arange(CANVAS_SIZE, device=values.device)
    top = torch.where(rows, row_numbers, CANVAS_SIZE).amin(dim=-1)
    bottom = torch.where(rows, row_numbers, -1).amax(dim=-1)
    empty = ~rows.any(dim=-1)
    top = torch.where(empty, torch.zeros_like(top), top)
    bottom = torch.where(empty, torch.zeros_like(bottom), bottom)
    height = bottom - top + 1  # [F, C]
    left = CENTRE_COLUMN - height // 2
    width = torch.clamp(CENTRE_COLUMN + height // 2, max=CANVAS_SIZE - 1) - left + 1
    frames, channels = values.shape[:2]
    flat = image.reshape(frames * channels, CANVAS_SIZE, CANVAS_SIZE)
    halves = flat.unflatten(-2, (MAP_SIZE, 2)).unflatten(-1, (MAP_SIZE, 2))  # [N, 64, 2, 64, 2]
    resized = (((halves[:, :, 0, :, 0] + halves[:, :, 0, :, 1]) + halves[:, :, 1, :, 0])
               + halves[:, :, 1, :, 1]) * 0.25  # a 128x128 crop: OpenCV's exact 2x path, in its order
    partial = torch.nonzero((height != CANVAS_SIZE).reshape(-1)).squeeze(1)  # smaller crops (few)
    if partial.numel():
        sizes = [t.reshape(-1)[partial] for t in (top, height, left, width)]
        resized.index_copy_(0, partial, _resample(flat.index_select(0, partial), *sizes))
    resized = resized.reshape(frames, channels, MAP_SIZE, MAP_SIZE)
    scaled = resized * 255
    if quantise:
        scaled = torch.trunc(scaled)
    return scaled.to(torch.float32)


def _resample(image: Tensor, top: Tensor, height: Tensor, left: Tensor, width: Tensor) -> Tensor:
    """Resample rows ``top .. top + height`` and columns ``left .. left + width`` of each image
    ``[N, 128, 128]`` to 64x64: a horizontal pass then a vertical pass, each summing its (up to
    three) weighted source pixels left to right, as OpenCV does."""
    tap_index, tap_weight = _taps(image.device)
    row_index, row_weight = tap_index[height] + top[:, None, None], tap_weight[height]  # [N, 64, K]
    col_index, col_weight = tap_index[width] + left[:, None, None], tap_weight[width]
    count = image.shape[0]
    horizontal = None
    for k in range(_TAPS):
        index = col_index[:, None, :, k].expand(count, CANVAS_SIZE, MAP_SIZE)
        term = image.gather(-1, index) * col_weight[:, None, :, k]
        horizontal = term if horizontal is None else horizontal + term  # [N, 128, 64]
    vertical = None
    for k in range(_TAPS):
        index = row_index[:, :, k, None].expand(count, MAP_SIZE, MAP_SIZE)
        term = row_weight[:, :, k, None] * horizontal.gather(-2, index)
        vertical = term if vertical is None else vertical + term
    return vertical


@functools.lru_cache(maxsize=None)
def _taps_cached(device: str) -> Tuple[Tensor, Tensor]:
    index = np.zeros((CANVAS_SIZE + 1, MAP_SIZE, _TAPS), dtype=np.int64)
    weight = np.zeros((CANVAS_SIZE + 1, MAP_SIZE, _TAPS), dtype=np.float64)
    for size in range(1, CANVAS_SIZE + 1):
        table = _area_taps(size) if size >= MAP_SIZE else _upscale_taps(size)
        for d, taps in table.items():
            for k, (source, w) in enumerate(taps):
                index[size, d, k], weight[size, d, k] = source, w
            for k in range(len(taps), _TAPS):  # padding: the last source again, weight 0
                index[size, d, k] = taps[-1][0]
    return torch.from_numpy(index).to(device), torch.from_numpy(weight).to(device)


def _taps(device: torch.device) -> Tuple[Tensor, Tensor]:
    """``(index, weight)`` ``[129, 64, 3]``: for a source of n pixels (row n), the source pixels
    and float32-rounded weights of each of the 64 output pixels."""
    return _taps_cached(str(device))


def _area_taps(size: int) -> Dict[int, list]:
    """Area weights for ``size >= 64`` source pixels: output d covers ``[d s, (d + 1) s)``,
    s = size / 64, and each source pixel weighs its overlap / s (float32), overlaps under
    1e-3 px dropped, as OpenCV's area tables."""
    scale = 1.0 / (MAP_SIZE / size)
    table: Dict[int, list] = {}
    for d in range(MAP_SIZE):
        lo = d * scale
        hi = lo + scale
        cell = min(scale, size - lo)
        first, last = math.ceil(lo), math.floor(hi)
        last = min(last, size - 1)
        first = min(first, last)
        taps = []
        if first - lo > 1e-3:
            taps.append((first - 1, float(np.float32((first - lo) / cell))))
        taps.extend((s, float(np.float32(1.0 / cell))) for s in range(first, last))
        if hi - last > 1e-3:
            taps.append((last, float(np.float32(min(min(hi - last, 1.0), cell) / cell))))
        table[d] = taps
    return table


def _upscale_taps(size: int) -> Dict[int, list]:
    """Weights for ``size < 64`` source pixels (OpenCV's ``INTER_AREA`` when enlarging): the
    two neighbours ``s = floor(d size / 64)`` and ``s + 1`` (clamped to the last pixel) with
    weights ``1 - f, f``, ``f`` the fractional part of ``(d + 1) - (s + 1) 64 / size`` (0 when
    negative), in float32."""
    inverse = MAP_SIZE / size
    scale = 1.0 / inverse
    table: Dict[int, list] = {}
    for d in range(MAP_SIZE):
        s = math.floor(d * scale)
        f = np.float32((d + 1) - (s + 1) * inverse)
        f = np.float32(0.0) if f <= 0 else np.float32(f - np.floor(f))
        if s >= size - 1:  # past the last pixel: that pixel alone
            table[d] = [(size - 1, 1.0)]
        else:
            table[d] = [(s, float(np.float32(1.0) - f)), (s + 1, float(f))]
    return table


def _check_canvas(canvas: Tensor) -> None:
    if not isinstance(canvas, Tensor):
        raise TypeError(f"expected a torch.Tensor [F, 17, 3] of canvas poses, got {type(canvas).__name__}")
    if canvas.dim() != 3 or canvas.shape[1] != NUM_JOINTS or canvas.shape[2] != 3:
        raise ValueError(f"expected canvas poses [F, 17, 3] (COCO-17 x, y, confidence), got shape "
                         f"{tuple(canvas.shape)}")
    if not canvas.is_floating_point():
        raise TypeError(f"expected floating-point canvas poses, got {canvas.dtype}")
