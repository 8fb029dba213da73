"""Exact NumPy skeleton-map renderer: one pose sequence -> uint8 [T, 2, 64, 64] maps.

Reproduces the original offline generator of SkeletonGait maps grey level for grey level
(docs/process_dataset.md, "Skeleton maps for SkeletonGait", has the steps and a worked example):

A. 18-joint OpenPose/AlphaPose order -> COCO-17 (chosen from the joint count);
B. missing coordinates (exactly 0.0) imputed across frames (:mod:`.impute`);
C. per frame: hip midpoint to (64, 64), joints scaled to span 85 px vertically (:func:`to_canvas`);
D. Gaussian limbs (channel 0) and joints (channel 1) on a 128x128 float32 canvas, sigma 8,
   peaks = detector confidence, each element drawn inside a +-3 sigma window;
E. 8-bit grey levels through the original's grey lookup table (:mod:`.grey`);
F. per channel, crop the rows holding anything and a square centred on column 64, resize to
   64x64 with area averaging (OpenCV INTER_AREA, written here in NumPy) and truncate to uint8.

The arithmetic follows the original's order of float64 operations, so the output is bit-exact
for float64 input. The training pipeline renders the same maps batched on the device instead
(:mod:`.batched`); this module is for converting datasets and for checking that one.
"""
from __future__ import annotations

from functools import lru_cache
from typing import List, Tuple

import numpy as np

from ...errors import ConfigError, PoseFileError
from ..skeleton import OPENPOSE_TO_COCO
from .grey import quantise
from .impute import fill_missing_joints

CANVAS_SIZE = 128
MAP_SIZE = 64
#: Joint extent after scaling: the original's ``128 // 1.5``.
BODY_HEIGHT = CANVAS_SIZE // 1.5
#: Elements whose peak (confidence) is below this are not drawn.
MIN_PEAK = 1e-3
HIP_JOINTS = (11, 12)
#: Limbs of channel 0, in drawing order (no shoulder-shoulder limb; the nose joins both shoulders).
LIMBS: Tuple[Tuple[int, int], ...] = (
    (0, 1), (0, 2), (1, 3), (2, 4), (0, 5), (5, 7), (7, 9), (0, 6), (6, 8), (8, 10),
    (5, 11), (11, 13), (13, 15), (6, 12), (12, 14), (14, 16), (11, 12),
)


def as_coco17(poses: np.ndarray) -> np.ndarray:
    """Check a [T, V, 3] pose sequence and return it as float64 COCO-17 (18 joints are re-indexed)."""
    arr = np.asarray(poses)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0:
        raise PoseFileError(f"a skeleton map needs a pose sequence [T, V, 3] of (x, y, confidence) with T >= 1, "
                            f"got shape {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise PoseFileError(f"pose sequence must be numeric, got dtype {arr.dtype}")
    if arr.shape[1] == 18:
        arr = arr[:, OPENPOSE_TO_COCO]
    elif arr.shape[1] != 17:
        raise PoseFileError(f"skeleton maps are drawn from 17 COCO joints (or 18 OpenPose/AlphaPose joints, "
                            f"converted), got {arr.shape[1]} joints")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise PoseFileError("pose sequence holds NaN or inf values; store missing joints as 0 instead")
    return arr


def to_canvas(poses: np.ndarray) -> np.ndarray:
    """Step C: centre each frame on its hip midpoint and scale its joints to 85 px of height.

    Every joint counts (imputed, low-confidence and zero ones too). ``x' = (x - hip_x) * k + 64``,
    same for y, with ``k = 85 / (max y - min y)`` per frame. A frame whose joints all lie at one
    height gets non-finite coordinates (as in the original); the renderer draws nothing there.

    Returns:
        float64 [T, V, 3] with canvas coordinates and the confidences unchanged.
    """
    poses = np.asarray(poses, dtype=np.float64)
    out = poses.copy()
    hip = (poses[:, HIP_JOINTS[0], :2] + poses[:, HIP_JOINTS[1], :2]) / 2
    extent = poses[:, :, 1].max(axis=1) - poses[:, :, 1].min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = BODY_HEIGHT / extent
        out[:, :, :2] = (poses[:, :, :2] - hip[:, None, :]) * scale[:, None, None] + CANVAS_SIZE / 2
    return out


def _window(low: float, high: float, radius: float) -> Tuple[int, int]:
    """Pixel range [start, stop) covered by an element spanning [low, high] plus ``radius``."""
    return max(int(low - radius), 0), min(int(high + radius) + 1, CANVAS_SIZE)


def _draw_joint(canvas: np.ndarray, centre: np.ndarray, peak: float, sigma: float) -> None:
    """Max-combine ``peak * exp(-d^2 / (2 sigma^2))`` around ``centre`` into ``canvas`` (in place)."""
    if peak < MIN_PEAK or not np.isfinite(centre).all():
        return
    radius = 3 * sigma
    x0, x1 = _window(centre[0], centre[0], radius)
    y0, y1 = _window(centre[1], centre[1], radius)
    if x0 >= x1 or y0 >= y1:
        return
    x = np.arange(x0, x1, dtype=np.float64)[None, :]
    y = np.arange(y0, y1, dtype=np.float64)[:, None]
    d2 = (x - centre[0]) ** 2 + (y - centre[1]) ** 2
    patch = np.exp(-d2 / 2 / sigma ** 2) * peak
    canvas[y0:y1, x0:x1] = np.maximum(canvas[y0:y1, x0:x1], patch)


def _draw_limb(canvas: np.ndarray, start: np.ndarray, end: np.ndarray, start_peak: float, end_peak: float,
               sigma: float) -> None:
    """Max-combine a Gaussian tube around the segment start-end (peak = the lower confidence)."""
    peak = min(start_peak, end_peak)
    if peak < MIN_PEAK or not (np.isfinite(start).all() and np.isfinite(end).all()):
        return
    radius = 3 * sigma
    x0, x1 = _window(min(start[0], end[0]), max(start[0], end[0]), radius)
    y0, y1 = _window(min(start[1], end[1]), max(start[1], end[1]), radius)
    if x0 >= x1 or y0 >= y1:
        return
    length2 = (start[0] - end[0]) ** 2 + (start[1] - end[1]) ** 2
    if length2 < 1:  # a segment shorter than a pixel is drawn as its start joint
        _draw_joint(canvas, start, start_peak, sigma)
        return
    x = np.arange(x0, x1, dtype=np.float64)[None, :]
    y = np.arange(y0, y1, dtype=np.float64)[:, None]
    d2_start = (x - start[0]) ** 2 + (y - start[1]) ** 2
    d2_end = (x - end[0]) ** 2 + (y - end[1]) ** 2
    t = (d2_start - d2_end + length2) / 2. / length2
    d2_line = (x - (start[0] + t * (end[0] - start[0]))) ** 2 + (y - (start[1] + t * (end[1] - start[1]))) ** 2
    d2 = np.where(t <= 0, d2_start, np.where(t >= 1, d2_end, d2_line))
    patch = np.exp(-d2 / 2. / sigma ** 2) * peak
    canvas[y0:y1, x0:x1] = np.maximum(canvas[y0:y1, x0:x1], patch)


def render_frame_canvases(frame: np.ndarray, sigma: float = 8.0) -> np.ndarray:
    """Step D for one frame of canvas coordinates [17, 3]: float32 [2, 128, 128] (limbs, joints)."""
    canvases = np.zeros((2, CANVAS_SIZE, CANVAS_SIZE), dtype=np.float32)
    xy, conf = frame[:, :2], frame[:, 2]
    for a, b in LIMBS:
        _draw_limb(canvases[0], xy[a], xy[b], conf[a], conf[b], sigma)
    for j in range(frame.shape[0]):
        _draw_joint(canvases[1], xy[j], conf[j], sigma)
    return canvases


# ------------------------------------------------------------------ step F: crop and area resize

def _area_tables(src: int, dst: int) -> List[Tuple[int, int, float]]:
    """OpenCV's area-resize table for one axis: (output index, source index, float32 weight)."""
    scale = 1.0 / (dst / src)
    table = []
    for d in range(dst):
        f1 = d * scale
        f2 = f1 + scale
        cell = min(scale, src - f1)
        s1, s2 = int(np.ceil(f1)), int(np.floor(f2))
        s2 = min(s2, src - 1)
        s1 = min(s1, s2)
        if s1 - f1 > 1e-3:
            table.append((d, s1 - 1, float(np.float32((s1 - f1) / cell))))
        for s in range(s1, s2):
            table.append((d, s, float(np.float32(1.0 / cell))))
        if f2 - s2 > 1e-3:
            table.append((d, s2, float(np.float32(min(min(f2 - s2, 1.0), cell) / cell))))
    return table


@lru_cache(maxsize=None)
def _slots(src: int, dst: int) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`_area_tables` as [dst, slots] source indices and weights, in table order (padded with
    weight 0, which adds an exact +0.0), cached per size (crops are at most 128 wide)."""
    table = _area_tables(src, dst)
    per_out: List[List[Tuple[int, float]]] = [[] for _ in range(dst)]
    for d, s, w in table:
        per_out[d].append((s, w))
    width = max(len(p) for p in per_out)
    index = np.zeros((dst, width), dtype=np.int64)
    weight = np.zeros((dst, width), dtype=np.float64)
    for d, entries in enumerate(per_out):
        for k, (s, w) in enumerate(entries):
            index[d, k], weight[d, k] = s, w
    index.setflags(write=False)
    weight.setflags(write=False)
    return index, weight


def _resize_area_general(img: np.ndarray, size: int) -> np.ndarray:
    """Area downscale by non-integer factors: per source row a weighted sum over columns, then rows
    accumulated in table order (the float64 order of OpenCV's generic area resize)."""
    h, w = img.shape
    x_index, x_weight = _slots(w, size)
    buf = np.zeros((h, size), dtype=np.float64)
    for k in range(x_index.shape[1]):
        buf = buf + img[:, x_index[:, k]] * x_weight[:, k]
    y_index, y_weight = _slots(h, size)
    out = y_weight[:, :1] * buf[y_index[:, 0]]
    for k in range(1, y_index.shape[1]):
        out = out + y_weight[:, k:k + 1] * buf[y_index[:, k]]
    return out


def _resize_area_integer(img: np.ndarray, fy: int, fx: int) -> np.ndarray:
    """Area downscale by integer factors: cell sum (row-major, in groups of four) times 1/area."""
    h, w = img.shape
    cells = img[:h // fy * fy, :w // fx * fx].reshape(h // fy, fy, w // fx, fx).transpose(0, 2, 1, 3)
    cells = cells.reshape(h // fy, w // fx, fy * fx)
    area = fy * fx
    total = np.zeros(cells.shape[:2], dtype=np.float64)
    k = 0
    while k <= area - 4:
        total = total + (((cells[..., k] + cells[..., k + 1]) + cells[..., k + 2]) + cells[..., k + 3])
        k += 4
    while k < area:
        total = total + cells[..., k]
        k += 1
    return total * float(np.float32(1.0 / area))


def _linear_taps(src: int, dst: int) -> Tuple[np.ndarray, np.ndarray]:
    """Upscaling taps of OpenCV's INTER_AREA (a bilinear variant): first source index, float32 weight."""
    inv = dst / src
    scale = 1.0 / inv
    first = np.empty(dst, dtype=np.int64)
    frac = np.empty(dst, dtype=np.float32)
    for d in range(dst):
        s = int(np.floor(d * scale))
        f = np.float32((d + 1) - (s + 1) * inv)
        f = np.float32(0) if f <= 0 else np.float32(f - np.float32(np.floor(f)))
        if s >= src - 1:
            f, s = np.float32(0), src - 1
        first[d], frac[d] = s, f
    return first, frac


def _resize_area_up(img: np.ndarray, size: int) -> np.ndarray:
    """INTER_AREA when the crop is smaller than the map: OpenCV falls back to a bilinear variant."""
    h, w = img.shape
    xs, fx = _linear_taps(w, size)
    ys, fy = _linear_taps(h, size)
    x_next = np.minimum(xs + 1, w - 1)
    a0, a1 = (np.float32(1) - fx).astype(np.float64), fx.astype(np.float64)
    rows = img[:, xs] * a0 + img[:, x_next] * a1
    edge = xs >= w - 1
    rows[:, edge] = img[:, xs[edge]] * 1.0
    b0, b1 = (np.float32(1) - fy).astype(np.float64), fy.astype(np.float64)
    y_next = np.minimum(ys + 1, h - 1)
    return rows[ys] * b0[:, None] + rows[y_next] * b1[:, None]


def resize_area(img: np.ndarray, size: int = MAP_SIZE) -> np.ndarray:
    """Resize a float64 image to ``size`` x ``size`` like OpenCV's ``cv2.resize(..., INTER_AREA)``."""
    h, w = img.shape
    if (h, w) == (size, size):
        return img.copy()
    scale_x, scale_y = 1.0 / (size / w), 1.0 / (size / h)
    if scale_x >= 1 and scale_y >= 1:
        if abs(scale_x - round(scale_x)) < np.finfo(np.float64).eps and \
                abs(scale_y - round(scale_y)) < np.finfo(np.float64).eps:
            return _resize_area_integer(img, int(round(scale_y)), int(round(scale_x)))
        return _resize_area_general(img, size)
    if scale_x < 1 and scale_y < 1:
        return _resize_area_up(img, size)
    raise ValueError(f"crop {h}x{w} mixes up- and downscaling; the skeleton-map crop never does")


def crop_and_resize(grey: np.ndarray) -> np.ndarray:
    """Step F for one channel's grey levels [128, 128] (float64 integers): uint8 [64, 64]."""
    image = grey / 255
    rows = np.flatnonzero(image.any(axis=1))
    top, bottom = (int(rows[0]), int(rows[-1])) if rows.size else (0, 0)
    height = bottom - top + 1
    centre = CANVAS_SIZE // 2
    left, right = max(centre - height // 2, 0), min(centre + height // 2, CANVAS_SIZE - 1)
    resized = resize_area(image[top:bottom + 1, left:right + 1])
    return (resized * 255).astype(np.uint8)


def render_sequence(poses: np.ndarray, sigma: float = 8.0, joint_format: str = "coco") -> np.ndarray:
    """Render a pose sequence [T, V, 3] (image pixels; V = 17 COCO or 18 OpenPose order) into
    skeleton maps uint8 [T, 2, 64, 64]: channel 0 limbs, channel 1 joints. Every frame is kept;
    a frame with nothing drawable gives all-zero maps.

    Raises:
        PoseFileError: the array is not [T, 17 or 18, 3], not numeric, or holds NaN/inf.
        ConfigError: ``joint_format`` is not ``coco`` or ``sigma`` is not positive.
    """
    if joint_format != "coco":
        raise ConfigError(f"skeleton maps are drawn in the COCO-17 layout: joint_format must be 'coco' "
                          f"(18-joint input is converted automatically), got {joint_format!r}")
    if not sigma > 0:
        raise ConfigError(f"skeleton-map sigma must be positive, got {sigma!r}")
    canvas = to_canvas(fill_missing_joints(as_coco17(poses)))
    maps = np.empty((canvas.shape[0], 2, MAP_SIZE, MAP_SIZE), dtype=np.uint8)
    for t, frame in enumerate(canvas):
        grey = quantise(render_frame_canvases(frame, sigma))
        for c in range(2):
            maps[t, c] = crop_and_resize(grey[c])
    return maps
