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

**Whole-sequence hook.** A transform that must see every frame of a sequence, not only the
sampled ones, defines ``prepare_sequence(array) -> array``; the collator calls it on the whole
loaded sequence before taking ``array[frames]`` and applying the transform chain to the sampled
frames. ``SkeletonMap`` uses it to impute missing joints from all frames, as the offline map
generator does before any frame is sampled. The hook of a chain is that of its first member
(recursively into a ``Compose``); a hook on any later member is a
:class:`~fastposegait.errors.ConfigError` (it would see poses the earlier members have not
transformed). The hook runs in the DataLoader worker in both ``transform_on`` modes.
"""
from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence

import numpy as np
import torch

from ..errors import ConfigError
from .batch import Batch
from .frames import FrameSampler, frame_sampler_from_cfg
from .transforms import Compose, Transform, time_axis_of

__all__ = ["BatchCollator", "FrameSampler", "frame_sampler_from_cfg", "sequence_preparer"]

#: ``prepare(array) -> array``: run on a whole sequence before its frames are sampled
Preparer = Callable[[np.ndarray], np.ndarray]


def sequence_preparer(transform: Any, where: str = "transform") -> Optional[Preparer]:
    """The whole-sequence hook of a transform chain: the ``prepare_sequence`` method of
    ``transform``, or of the first member of a ``Compose`` (recursively); None without one.

    Raises:
        ConfigError: a member after the first defines the hook (``where`` names the chain).
    """
    hook = getattr(transform, "prepare_sequence", None)
    if callable(hook):
        return hook
    if isinstance(transform, Compose):
        for i, member in enumerate(transform.transforms[1:], start=1):
            if sequence_preparer(member, where) is not None:
                raise ConfigError(
                    f"{where}: {type(member).__name__} (entry {i} of the chain) prepares whole sequences before "
                    "frame sampling, so it must be the first transform of its chain; move it to the front")
        return sequence_preparer(transform.transforms[0], where) if transform.transforms else None
    return None


class BatchCollator:
    """Turns loaded sequences into one model batch: frame sampling, transforms, packing.

    Args:
        frame_sampler: chooses the frames of each sequence.
        transforms: one callable per modality, ``f(seq, rng) -> array``.
        preparers: one whole-sequence hook (or None) per modality, run before frame sampling;
            default: each transform's own (:func:`sequence_preparer`). The loader passes the
            configured chain's hooks when the transforms themselves run on the device.
    """

    def __init__(self, frame_sampler: FrameSampler, transforms: Sequence[Callable[..., Any]],
                 preparers: Optional[Sequence[Optional[Preparer]]] = None) -> None:
        self.frame_sampler = frame_sampler
        self.transforms = list(transforms)
        self.time_axes = [time_axis_of(t) for t in self.transforms]
        if preparers is None:
            preparers = [sequence_preparer(t, f"transform[{m}]") for m, t in enumerate(self.transforms)]
        self.preparers = list(preparers)
        if len(self.preparers) != len(self.transforms):
            raise ValueError(f"got {len(self.preparers)} sequence preparers for {len(self.transforms)} transforms; "
                             "give one (or None) per modality")

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
            for m, (array, transform, prepare) in enumerate(zip(arrays, self.transforms, self.preparers)):
                if prepare is not None:
                    array = prepare(array)  # the whole sequence, before frame sampling
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
