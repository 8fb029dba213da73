"""Frame sampling: which frames of a sequence go into the batch.

``sample_type`` is ``<fixed|unfixed|all>_<ordered|unordered>``: how many frames (``fixed`` n,
``unfixed`` n drawn per sequence in ``[frames_num_min, frames_num_max]``, ``all``) and whether
they form a (wrapped) window or are drawn independently. :class:`FrameSampler`'s fields are
also the frame keys of a config's ``sampler`` section (:mod:`fastposegait.config.sections`
reads and checks them against these annotations), so they are declared here only.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Tuple

import numpy as np


@dataclass(frozen=True)
class FrameSampler:
    """Chooses frame indices of one sequence.

    Args:
        sample_type: ``fixed|unfixed|all`` + ``_ordered|_unordered``.
        frames_num_fixed: n for ``fixed``.
        frames_num_min / frames_num_max: n is uniform in [min, max] per sequence (``unfixed``).
        frames_skip_num: s (None: 0); ordered sampling picks n sorted frames from a window of n + s.
        frames_all_limit: ``all`` keeps at most this many leading frames.
    """

    sample_type: str
    frames_num_fixed: Optional[int] = None
    frames_num_min: Optional[int] = None
    frames_num_max: Optional[int] = None
    frames_skip_num: Optional[int] = None
    frames_all_limit: Optional[int] = None

    def __post_init__(self) -> None:
        mode, _, order = self.sample_type.partition("_")
        if mode not in ("fixed", "unfixed", "all") or order not in ("ordered", "unordered"):
            raise ValueError(f"sample_type must be <fixed|unfixed|all>_<ordered|unordered>, got {self.sample_type!r}")
        if mode == "fixed" and not self.frames_num_fixed:
            raise ValueError(f"sample_type {self.sample_type} needs frames_num_fixed")
        if mode == "unfixed" and (self.frames_num_min is None or self.frames_num_max is None):
            raise ValueError(f"sample_type {self.sample_type} needs frames_num_min and frames_num_max")

    @property
    def mode(self) -> str:
        return self.sample_type.split("_")[0]

    @property
    def ordered(self) -> bool:
        return self.sample_type.endswith("_ordered")

    def __call__(self, length: int, rng: np.random.Generator) -> np.ndarray:
        """Frame indices (int64) to take from a sequence of ``length`` frames."""
        if self.mode == "all":
            n = length if self.frames_all_limit is None else min(length, self.frames_all_limit)
            return np.arange(n, dtype=np.int64)
        if self.mode == "fixed":
            n = int(self.frames_num_fixed)  # type: ignore[arg-type]
        else:
            n = int(rng.integers(self.frames_num_min, self.frames_num_max + 1))  # type: ignore[operator]
        if self.ordered:
            window = n + int(self.frames_skip_num or 0)
            positions = np.arange(length, dtype=np.int64)
            if length < window:
                positions = np.tile(positions, math.ceil(window / length))
            start = int(rng.integers(0, len(positions) - window + 1))
            chosen = np.sort(rng.choice(window, n, replace=False)) if window > n else np.arange(n)
            return positions[start + chosen]
        return rng.choice(length, n, replace=length < n).astype(np.int64)


#: The sampler-section keys that configure frame sampling (the others choose the batch).
FRAME_KEYS: Tuple[str, ...] = tuple(f.name for f in dataclasses.fields(FrameSampler))


def frame_sampler_from_cfg(sampler_cfg: Mapping[str, Any]) -> FrameSampler:
    """Build a :class:`FrameSampler` from a ``trainer_cfg.sampler``/``evaluator_cfg.sampler``
    mapping (keys it does not give are not set)."""
    return FrameSampler(**{key: sampler_cfg.get(key) for key in FRAME_KEYS})
