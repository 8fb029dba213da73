"""Frame sampling and batch assembly, run inside DataLoader workers.

``sample_type`` is ``<fixed|unfixed|all>_<ordered|unordered>``: how many frames (``fixed`` n,
``unfixed`` n drawn per sequence in ``[frames_num_min, frames_num_max]``, ``all``) and whether
they form a (wrapped) window or are drawn independently (docs/configs.md, ``sampler``).
Transforms are applied to each sequence *before* packing (upstream applies them to the
concatenation of a rank's sequences for ``unfixed``/``all``, so velocities and flips leak
across sequence boundaries; docs/upstream_differences.md, "Packed batches: transforms per
sequence"). The result is a :class:`~fastposegait.data.batch.Batch`, upstream's
``[inputs, labels, types, views, seqL]`` as tensors:

* ``fixed``: each input is stacked, ``[b, ...]``; ``seqL`` is None.
* ``unfixed``/``all``: the b sequences are concatenated along their time axis, ``[1, ...]``;
  ``seqL`` is an int32 tensor ``[1, b]`` of their lengths.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, List, Mapping, Optional, Sequence

import numpy as np
import torch

from ..config.sections import SamplerSection
from .batch import Batch
from .transforms import Transform, time_axis_of

FRAME_KEYS = SamplerSection.FRAME_KEYS


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


class BatchCollator:
    """Turns loaded sequences into one model batch: frame sampling, transforms, packing.

    Args:
        frame_sampler: chooses the frames of each sequence.
        transforms: one callable per modality, ``f(seq, rng) -> array``.
    """

    def __init__(self, frame_sampler: FrameSampler, transforms: Sequence[Callable[..., Any]]) -> None:
        self.frame_sampler = frame_sampler
        self.transforms = list(transforms)
        self.time_axes = [time_axis_of(t) for t in self.transforms]

    def __call__(
        self,
        sequences: Sequence[Sequence[np.ndarray]],
        labels: Sequence[int],
        types: Sequence[str],
        views: Sequence[str],
        rngs: Sequence[np.random.Generator],
    ) -> Batch:
        """Sample frames of and transform each sequence with its own generator, then pack."""
        n_mod = len(sequences[0])
        if n_mod != len(self.transforms):
            raise ValueError(
                f"the data has {n_mod} modalities per sequence but the transform list has "
                f"{len(self.transforms)} entries; give one transform entry per modality"
            )
        outputs: List[List[np.ndarray]] = [[] for _ in range(n_mod)]
        lengths = []
        for arrays, rng in zip(sequences, rngs):
            frames = self.frame_sampler(arrays[0].shape[0], rng)
            lengths.append(len(frames))
            for m, (array, transform) in enumerate(zip(arrays, self.transforms)):
                outputs[m].append(_apply(transform, array[frames], rng))
        if self.frame_sampler.mode == "fixed":
            inputs = [torch.from_numpy(np.stack(o).astype(np.float32, copy=False)) for o in outputs]
            seq_lengths = None
        else:
            inputs = [
                torch.from_numpy(np.concatenate(o, axis=axis).astype(np.float32, copy=False)).unsqueeze(0)
                for o, axis in zip(outputs, self.time_axes)
            ]
            seq_lengths = torch.tensor([lengths], dtype=torch.int32)
        return Batch(inputs, torch.as_tensor(np.asarray(labels), dtype=torch.int64), list(types), list(views),
                     seq_lengths)


def _apply(transform: Callable[..., Any], array: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if isinstance(transform, Transform):
        return np.asarray(transform(array, rng))
    return np.asarray(transform(array))  # a user's plain function: f(seq)


def frame_sampler_from_cfg(sampler_cfg: Mapping[str, Any]) -> FrameSampler:
    """Build a :class:`FrameSampler` from a ``trainer_cfg.sampler``/``evaluator_cfg.sampler``
    mapping (keys it does not give are not set)."""
    return FrameSampler(**{key: sampler_cfg.get(key) for key in FRAME_KEYS})
