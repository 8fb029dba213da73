"""Test-phase feature extraction across ranks, and the call into the evaluator.

Every rank embeds its shard of the :class:`~fastposegait.data.sampler.InferenceSampler`
batches; after each batch the ranks' embeddings are all-gathered in rank order, which
rebuilds the global batch. At the end the padding is dropped, so row i is sequence i of the
index, as the evaluators expect.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import torch
from torch import nn

from ..data.batch import Batch, as_batch
from ..distributed import all_gather_tensor, is_main_process
from ..kwargs import match_kwargs

logger = logging.getLogger(__name__)


def move_batch(batch: Sequence[Any], device: torch.device) -> Batch:
    """Put a collated batch's tensors on ``device`` (labels int64, seqL int32)."""
    return as_batch(batch).to(device)


#: Sequences per model call at test time on a CPU when the config does not say
#: (``evaluator_cfg.max_sequences_per_call``). Measured on a 2-core CPU: 4-8 sequences per
#: call embed 2-4x more sequences per second than 64-256 (activations that fit in the caches);
#: see docs/benchmarks.md. On a GPU the whole test batch goes in one call.
CPU_SEQUENCES_PER_CALL = 8


def split_batch(inputs: Sequence[Any], time_axes: List[int], size: int) -> List[Batch]:
    """Cut a collated batch into consecutive batches of at most ``size`` sequences.

    Stacked batches are sliced on the batch axis; packed batches (``seqL``) are cut along each
    modality's time axis at sequence boundaries, each piece with its own ``seqL``.
    """
    inputs = as_batch(inputs)
    ipts, labels, types, views, seq_lengths = inputs
    starts = range(0, inputs.num_sequences, size)
    if seq_lengths is None:
        return [Batch([x[i:i + size] for x in ipts], labels[i:i + size], types[i:i + size], views[i:i + size], None)
                for i in starts]
    lengths = seq_lengths[0].tolist()
    frames = [sum(lengths[i:i + size]) for i in starts]
    pieces = [x.split(frames, dim=axis + 1) for x, axis in zip(ipts, time_axes)]
    return [Batch([p[k] for p in pieces], labels[i:i + size], types[i:i + size], views[i:i + size],
                  seq_lengths[:, i:i + size]) for k, i in enumerate(starts)]


def embed_batch(model: nn.Module, inputs: Sequence[Any], time_axes: List[int],
                max_sequences: Optional[int] = None) -> torch.Tensor:
    """The ``inference_feat['embeddings']`` of one batch, ``[b, C, P]``.

    The model is called on at most ``max_sequences`` sequences at a time (None: the whole
    batch). Models that ignore ``seqL`` (``accepts_packed_sequences`` false) see one sequence
    at a time, so a packed test batch never merges several walks into one feature
    (docs/upstream_differences.md, "Any test batch size").
    In evaluation mode the result does not depend on how the batch is cut.
    """
    inputs = as_batch(inputs)
    size = max_sequences
    if inputs.packed and not getattr(model, "accepts_packed_sequences", False):
        size = 1
    if size is None or inputs.num_sequences <= size:
        return model(inputs)["inference_feat"]["embeddings"]
    return torch.cat([model(piece)["inference_feat"]["embeddings"] for piece in split_batch(inputs, time_axes, size)])


@torch.no_grad()
def extract_embeddings(
    model: nn.Module,
    loader: Any,
    device: torch.device,
    num_sequences: int,
    time_axes: List[int],
    autocast: Optional[Callable[[], Any]] = None,
    progress: bool = True,
    max_sequences: Optional[int] = None,
) -> torch.Tensor:
    """Embed every sequence of the test split; returns ``[N, C, P]`` on the CPU in index order.
    ``max_sequences`` bounds the sequences per model call (see :func:`embed_batch`)."""
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
                embeddings = embed_batch(model, inputs, time_axes, max_sequences)
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
    return evaluator(data, dataset_name, **match_kwargs(evaluator, options).accepted)
