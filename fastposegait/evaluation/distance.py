"""Probe-to-gallery distances between part-based embeddings.

Embeddings are ``[N, C, P]``: ``C`` channels for each of ``P`` body parts (``P = 1`` for the
GaitGraph models, 19 for GPGait). The distance between two sequences is the mean over parts of
a per-part distance (spec §5.2, upstream ``cuda_dist``):

* ``euc``: ``sqrt(relu(|x|² + |y|² − 2 x·y))``;
* ``cos``: ``1 − x̂·ŷ`` with every part vector scaled to unit L2 norm over ``C`` (norms below
  1e-12 are clamped to 1e-12, so a zero vector stays zero).

All parts go through one batched matmul (``torch.bmm`` over the part axis); probes are processed
in chunks so that the ``[P, chunk, m]`` intermediate stays bounded whatever the set size. Work is
``O(n · m · C · P)``; peak extra memory is about ``4 · P · chunk · m`` bytes plus the
``[n, m]`` result of :func:`compute_distance` (use :func:`iter_distance_chunks` to avoid
materialising that, as the protocols do for OUMVLP/GREW-sized sets: 72k × 72k float32 would
be 20 GB).
"""
from __future__ import annotations

from typing import Iterator, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

ArrayLike = Union[np.ndarray, torch.Tensor]

METRICS = ("euc", "cos")

#: Elements of the largest per-chunk intermediate (``P · chunk · m``) when the chunk size is
#: chosen automatically: 2**25 float32 values = 128 MiB.
DEFAULT_CHUNK_ELEMENTS = 1 << 25


def default_device() -> torch.device:
    """Device used for NumPy inputs: the current CUDA device if there is one, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def as_feature_tensor(
    features: ArrayLike,
    device: Optional[Union[str, torch.device]] = None,
    dtype: Optional[torch.dtype] = torch.float32,
) -> torch.Tensor:
    """Return ``features`` as a ``[N, C, P]`` tensor.

    A 2-D ``[N, C]`` input is read as one part (``P = 1``). ``device=None`` keeps a tensor where
    it is and puts a NumPy array on :func:`default_device`. ``dtype=None`` keeps the input dtype;
    the default float32 also upcasts float16 features written under autocast.
    """
    if isinstance(features, torch.Tensor):
        tensor = features.detach()
    else:
        tensor = torch.as_tensor(np.asarray(features))
        if device is None:
            device = default_device()
    if tensor.dim() == 2:
        tensor = tensor.unsqueeze(-1)
    if tensor.dim() != 3:
        raise ValueError(f"embeddings must be [N, C, P] (or [N, C]), got shape {tuple(tensor.shape)}")
    if not (tensor.is_floating_point() or dtype is not None):
        raise TypeError(f"embeddings must be floating point, got {tensor.dtype}")
    return tensor.to(device=device if device is not None else tensor.device, dtype=dtype or tensor.dtype)


def auto_chunk_size(num_gallery: int, elements_per_pair: int = 1, budget: int = DEFAULT_CHUNK_ELEMENTS) -> int:
    """Number of probes per chunk so that ``chunk · num_gallery · elements_per_pair ≤ budget``."""
    return max(1, budget // max(1, num_gallery * elements_per_pair))


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"unknown distance metric {metric!r}; expected one of {', '.join(METRICS)}")


def _prepare_gallery(gallery: torch.Tensor, metric: str) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Gallery as ``[P, C, m]`` (unit-normalised for ``cos``) and, for ``euc``, its ``[P, 1, m]`` squared norms."""
    by_part = gallery.permute(2, 1, 0)  # [P, C, m]
    if metric == "cos":
        return F.normalize(by_part, p=2, dim=1, eps=1e-12), None
    return by_part, by_part.pow(2).sum(1, keepdim=True)


def _distance_block(
    probe: torch.Tensor, gallery_by_part: torch.Tensor, gallery_sq: Optional[torch.Tensor], metric: str
) -> torch.Tensor:
    """Distances of a probe chunk ``[c, C, P]`` to the prepared gallery: ``[c, m]``."""
    parts = probe.shape[2]
    by_part = probe.permute(2, 0, 1)  # [P, c, C]
    if metric == "cos":
        by_part = F.normalize(by_part, p=2, dim=2, eps=1e-12)
        return 1 - torch.bmm(by_part, gallery_by_part).sum(0) / parts
    assert gallery_sq is not None
    probe_sq = by_part.pow(2).sum(2, keepdim=True)  # [P, c, 1]
    squared = probe_sq + gallery_sq - 2 * torch.bmm(by_part, gallery_by_part)  # [P, c, m]
    return torch.sqrt(torch.relu(squared)).sum(0) / parts


def _check_pair(probe: torch.Tensor, gallery: torch.Tensor) -> None:
    if probe.shape[1:] != gallery.shape[1:]:
        raise ValueError(
            f"probe and gallery embeddings differ in [C, P]: {tuple(probe.shape[1:])} vs {tuple(gallery.shape[1:])}"
        )


def iter_distance_chunks(
    probe: ArrayLike,
    gallery: ArrayLike,
    metric: str = "euc",
    chunk_size: Optional[int] = None,
    dtype: Optional[torch.dtype] = torch.float32,
) -> Iterator[Tuple[int, torch.Tensor]]:
    """Yield ``(start, D[start:start + c])`` row blocks of the probe × gallery distance matrix.

    The gallery is prepared once (transposed, normalised or squared norms); each block is one
    ``bmm`` over all parts. Blocks live on the probe tensor's device. ``chunk_size=None`` picks
    the largest chunk whose ``[P, c, m]`` intermediate fits :data:`DEFAULT_CHUNK_ELEMENTS`.
    """
    _check_metric(metric)
    x = as_feature_tensor(probe, dtype=dtype)
    y = as_feature_tensor(gallery, device=x.device, dtype=dtype or x.dtype)
    _check_pair(x, y)
    n, m, parts = x.shape[0], y.shape[0], x.shape[2]
    if chunk_size is None:
        chunk_size = auto_chunk_size(m, parts)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    gallery_by_part, gallery_sq = _prepare_gallery(y, metric)
    for start in range(0, n, chunk_size):
        yield start, _distance_block(x[start : start + chunk_size], gallery_by_part, gallery_sq, metric)


def compute_distance(
    probe: ArrayLike,
    gallery: ArrayLike,
    metric: str = "euc",
    chunk_size: Optional[int] = None,
    dtype: Optional[torch.dtype] = torch.float32,
) -> torch.Tensor:
    """Distance matrix ``D [n, m]`` between probes ``[n, C, P]`` and gallery ``[m, C, P]`` (spec §5.2).

    Args:
        probe: probe embeddings (ndarray or tensor; a tensor's device is used).
        gallery: gallery embeddings, moved to the probe's device.
        metric: ``'euc'`` (mean over parts of the Euclidean distance) or ``'cos'``
            (1 − mean over parts of the cosine similarity).
        chunk_size: probes per block; ``None`` = automatic (bounded memory). The result does not
            depend on it beyond float rounding of the matmul.
        dtype: computation dtype (float32 by default, like the spec's compatibility checklist);
            ``None`` keeps the input dtype.

    Example (spec §5.2)::

        >>> x = torch.tensor([[[3., 0.], [4., 1.]], [[1., 1.], [0., 1.]]])   # [2, C=2, P=2]
        >>> y = torch.tensor([[[0., 2.], [0., 0.]], [[3., 1.], [0., 0.]]])
        >>> compute_distance(x, y, 'euc')
        tensor([[3.6180, 2.7071],
                [1.2071, 1.5000]])
    """
    x = as_feature_tensor(probe, dtype=dtype)
    y = as_feature_tensor(gallery, device=x.device, dtype=dtype or x.dtype)
    _check_metric(metric)
    _check_pair(x, y)
    out = torch.empty(x.shape[0], y.shape[0], dtype=x.dtype, device=x.device)
    for start, block in iter_distance_chunks(x, y, metric, chunk_size, dtype=None):
        out[start : start + block.shape[0]] = block
    return out
