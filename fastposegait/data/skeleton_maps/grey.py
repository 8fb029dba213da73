"""8-bit grey levels of skeleton maps, as the original generator quantises them.

The original offline generator turns a float canvas value ``v`` (0..1) into a grey level by
looking it up in matplotlib's ``gray`` colormap (256 entries) and truncating ``255 * colour``
to uint8. That colormap stores 24 of its entries a hair below ``i / 255``, so those 24 levels
come out one lower than ``i``. We keep the resulting table here instead of depending on
matplotlib: ``GREY_LUT[i] = i`` except ``GREY_LUT[i] = i - 1`` for the indices in
:data:`LOWERED_LEVELS` (see docs/upstream_differences.md, "Skeleton maps").
"""
from __future__ import annotations

import numpy as np

#: The 24 colormap indices whose grey level is one below the index.
LOWERED_LEVELS = (33, 37, 41, 45, 49, 53, 57, 61, 66, 74, 82, 90, 98, 106, 114, 122,
                  132, 148, 164, 180, 196, 212, 228, 244)


def _build_lut() -> np.ndarray:
    lut = np.arange(256, dtype=np.int64)
    lut[list(LOWERED_LEVELS)] -= 1
    lut.setflags(write=False)
    return lut


#: Grey level of each colormap index 0..255 (read-only int64 array).
GREY_LUT: np.ndarray = _build_lut()


def quantise(values: np.ndarray) -> np.ndarray:
    """Grey levels of canvas values: ``i = floor(256 v)`` clipped to 0..255, then ``GREY_LUT[i]``.

    ``values`` is any float array (float32 canvases are multiplied by 256 exactly); the result
    has the same shape, dtype float64, holding integers 0..255 (v < 1/256 gives 0, v >= 1 gives
    255). Float64 is what the original keeps before dividing by 255 for the crop-and-resize step.
    """
    v = np.asarray(values)
    index = np.floor(v * np.asarray(256, dtype=v.dtype if v.dtype.kind == "f" else np.float64))
    index = np.clip(np.nan_to_num(index, nan=0.0, posinf=255.0, neginf=0.0), 0, 255).astype(np.int64)
    return GREY_LUT[index].astype(np.float64)
