"""Test-phase feature extraction across ranks, and the call into the evaluator.

Every rank embeds its shard of the :class:`~fastposegait.data.sampler.InferenceSampler`
batches; after each batch the ranks' embeddings are all-gathered in rank order, which
rebuilds the global batch. At the end the padding is dropped, so row i is sequence i of the
index, as the evaluators expect.
"""
from __future__ import annotations

import contextlib
import inspect
import logging
from typing import Any, Callable, Dict, List, Mapping, Optional

import torch
from torch import nn

from ..distributed import all_gather_tensor, is_main_process

logger = logging.getLogger("fastposegait")

Batch = Any


def move_batch(batch: Batch, device: torch.device) -> tuple:
    """Put a collated batch's tensors on ``device`` (labels int64, seqL int32)."""
    inputs, labels, types, views, seq_lengths = batch
    non_blocking = device.type == "cuda"
    inputs = [x.to(device, non_blocking=non_blocking) for x in inputs]
    labels = labels.to(device, non_blocking=non_blocking)
    if seq_lengths is not None:
        seq_lengths = seq_lengths.to(device, non_blocking=non_blocking)
    return inputs, labels, types, views, seq_lengths


def _split_packed(inputs: tuple, time_axes: List[int]) -> List[tuple]:
    """Cut a packed batch (``seqL`` given) into one-sequence batches."""
    ipts, labels, types, views, seq_lengths = inputs
    lengths = seq_lengths[0].tolist()
    pieces = [x.split(lengths, dim=axis + 1) for x, axis in zip(ipts, time_axes)]
    out = []
    for i, length in enumerate(lengths):
        seq_len = seq_lengths.new_tensor([[length]])
        out.append(([p[i] for p in pieces], labels[i:i + 1], types[i:i + 1], views[i:i + 1], seq_len))
    return out


def embed_batch(model: nn.Module, inputs: tuple, time_axes: List[int]) -> torch.Tensor:
    """The ``inference_feat['embeddings']`` of one batch, ``[b, C, P]``.

    Models that ignore ``seqL`` (``accepts_packed_sequences`` false) see one sequence at a
    time, so a packed test batch never merges several walks into one feature (Q11).
    """
    if inputs[4] is not None and not getattr(model, "accepts_packed_sequences", False):
        return torch.cat([model(piece)["inference_feat"]["embeddings"] for piece in _split_packed(inputs, time_axes)])
    return model(inputs)["inference_feat"]["embeddings"]


@torch.no_grad()
def extract_embeddings(
    model: nn.Module,
    loader: Any,
    device: torch.device,
    num_sequences: int,
    time_axes: List[int],
    autocast: Optional[Callable[[], Any]] = None,
    progress: bool = True,
) -> torch.Tensor:
    """Embed every sequence of the test split; returns ``[N, C, P]`` on the CPU in index order."""
    was_training = model.training
    model.eval()
    chunks = []
    bar = None
    if progress and is_main_process():
        from tqdm import tqdm

        bar = tqdm(total=num_sequences, desc="Transforming", unit="seq", leave=False)
    try:
        for batch in loader:
            inputs = move_batch(batch, device)
            with (autocast() if autocast else contextlib.nullcontext()):
                embeddings = embed_batch(model, inputs, time_axes)
            gathered = all_gather_tensor(embeddings.float().contiguous())
            chunks.append(gathered.cpu())
            if bar is not None:
                bar.update(min(gathered.shape[0], num_sequences - bar.n))
    finally:
        if bar is not None:
            bar.close()
        model.train(was_training)
    return torch.cat(chunks)[:num_sequences]


def run_evaluator(
    evaluator: Callable[..., Dict[str, Any]],
    embeddings: torch.Tensor,
    labels: List[str],
    types: List[str],
    views: List[str],
    dataset_name: str,
    options: Mapping[str, Any],
) -> Dict[str, Any]:
    """Call ``evaluator(data, dataset_name, **kw)`` with the options its signature accepts."""
    data = {"embeddings": embeddings.numpy(), "labels": labels, "types": types, "views": views}
    params = inspect.signature(evaluator).parameters
    kwargs = {k: v for k, v in options.items() if k in params}
    return evaluator(data, dataset_name, **kwargs)
