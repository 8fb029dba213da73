"""The batch a model's ``forward`` receives."""
from __future__ import annotations

from typing import List, NamedTuple, Optional

import torch


class Batch(NamedTuple):
    """One collated batch, in upstream's order, so ``ipts, labs, typs, vies, seqL = batch``
    keeps working in models written for the original FastPoseGait or OpenGait.

    Attributes:
        inputs: one tensor per modality: ``[b, ...]`` stacked, or ``[1, ...]`` with the ``b``
            sequences concatenated along their time axis (packed).
        labels: ``[b]`` int64 subject indices (positions in the split's sorted subject list).
        types: ``b`` type folder names (``nm-01``, ...).
        views: ``b`` view folder names (``090``, ...).
        seq_lengths: ``None`` when stacked; when packed, ``[1, b]`` int32 frame counts of the
            sequences in order (upstream's ``seqL``).
    """

    inputs: List[torch.Tensor]
    labels: torch.Tensor
    types: List[str]
    views: List[str]
    seq_lengths: Optional[torch.Tensor]

    @property
    def num_sequences(self) -> int:
        """How many sequences the batch holds (packed or stacked)."""
        if self.seq_lengths is not None:
            return int(self.seq_lengths.shape[1])
        return int(self.inputs[0].shape[0])

    @property
    def packed(self) -> bool:
        """Whether the sequences are concatenated along time (``seq_lengths`` given)."""
        return self.seq_lengths is not None

    def to(self, device: torch.device) -> "Batch":
        """The batch with its tensors on ``device`` (asynchronous copies from pinned memory)."""
        non_blocking = device.type == "cuda"
        seq_lengths = self.seq_lengths
        if seq_lengths is not None:
            seq_lengths = seq_lengths.to(device, non_blocking=non_blocking)
        return Batch([x.to(device, non_blocking=non_blocking) for x in self.inputs],
                     self.labels.to(device, non_blocking=non_blocking), self.types, self.views, seq_lengths)


def as_batch(inputs: object) -> Batch:
    """``inputs`` as a :class:`Batch` (it may be an upstream-style 5-tuple or list)."""
    if isinstance(inputs, Batch):
        return inputs
    return Batch(*inputs)  # type: ignore[misc]
