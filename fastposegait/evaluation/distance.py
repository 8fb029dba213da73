"""Probe-to-gallery distances between part-based embeddings.

Embeddings are ``[N, C, P]``: ``C`` channels for each of ``P`` body parts (``P = 1`` for the
GaitGraph models, 19 for GPGait). The distance between two sequences is the mean over parts of
a per-part distance, the original's ``cuda_dist`` formulas computed in float32
(docs/upstream_differences.md, "Distance precision"):

* ``euc``: ``sqrt(relu(|x|² + |y|² − 2 x·y))``;
* ``cos``: ``1 − x̂·ŷ`` with every part vector scaled to unit L2 norm over ``C`` (norms below
  1e-12 are clamped to 1e-12, so a zero vector stays zero).

Each part is one matrix product of a probe chunk with the whole (prepared once) gallery; the
parts are accumulated in order into one ``[chunk, m]`` buffer (the sum over parts, then ``/ P``,
as in the formula). Probes
are processed in chunks, so whatever the set size the extra memory is about
``8 · chunk · m`` bytes (two float32 ``[chunk, m]`` buffers) plus the ``[n, m]`` result of
:func:`compute_distance`; :func:`iter_distance_chunks` avoids materialising that result, as the
protocols do for OUMVLP/GREW-sized sets (72k × 72k float32 would be 20 GB). Work is
``O(n · m · C · P)`` multiply-adds, all inside BLAS.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

ArrayLike = Union[np.ndarray, torch.Tensor]

METRICS = ("euc", "cos")

#: Probe-gallery pairs per chunk when the chunk size is chosen automatically: 2**24 pairs, i.e.
#: about 130 MB for the two float32 ``[chunk, m]`` work buffers. (Larger chunks make the matrix
#: products more efficient; smaller ones save memory.)
DEFAULT_CHUNK_ELEMENTS = 1 << 24


#: Run the elementwise passes of CPU blocks in NumPy (the torch path is what CUDA runs; tests
#: switch this off to exercise it on machines without a GPU).
NUMPY_ON_CPU = True


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


@dataclass
class PreparedFeatures:
    """Embeddings laid out for per-part matrix products.

    ``parts`` is ``[P, N, C]`` (unit-normalised per part for ``cos``); ``squared`` is the
    ``[P, N]`` squared norms for ``euc`` (``None`` for ``cos``).
    """

    parts: torch.Tensor
    squared: Optional[torch.Tensor]


def prepare_features(features: torch.Tensor, metric: str) -> PreparedFeatures:
    """``features [N, C, P]`` laid out once for :func:`distance_block` (probes or a gallery)."""
    by_part = features.permute(2, 0, 1)  # [P, N, C]
    if metric == "cos":
        return PreparedFeatures(F.normalize(by_part, p=2, dim=2, eps=1e-12).contiguous(), None)
    by_part = by_part.contiguous()
    return PreparedFeatures(by_part, by_part.pow(2).sum(2))


def distance_block(probe: PreparedFeatures, gallery_t: torch.Tensor, gallery: PreparedFeatures,
                   metric: str) -> torch.Tensor:
    """Distances ``[c, m]`` of a prepared probe chunk to the prepared gallery.

    ``gallery_t`` is ``gallery.parts`` transposed to ``[P, C, m]`` (contiguous), so each part is
    one matrix product (``addmm`` for ``euc``: ``(|x|² + |y|²) − 2·x·y`` in one BLAS call).
    Parts are summed in order into one buffer; for ``P = 1`` the division is skipped (it is
    exact). On the CPU the elementwise passes run in NumPy, in place on the same memory (several
    times faster than torch's there, and single-threaded, so they do not fight BLAS threads).
    """
    num_parts = probe.parts.shape[0]
    on_cpu = probe.parts.device.type == "cpu" and NUMPY_ON_CPU
    total: Optional[torch.Tensor] = None
    for p in range(num_parts):
        if metric == "cos":
            part = torch.mm(probe.parts[p], gallery_t[p])  # [c, m]
        else:
            assert probe.squared is not None and gallery.squared is not None
            if on_cpu:
                part = torch.from_numpy(np.add.outer(probe.squared[p].numpy(), gallery.squared[p].numpy()))
            else:
                part = probe.squared[p][:, None] + gallery.squared[p][None, :]
            part.addmm_(probe.parts[p], gallery_t[p], alpha=-2)
            if on_cpu:
                array = part.numpy()
                np.sqrt(np.maximum(array, 0, out=array), out=array)
            else:
                part.clamp_(min=0).sqrt_()
        if total is None:
            total = part
        elif on_cpu:
            np.add(total.numpy(), part.numpy(), out=total.numpy())
        else:
            total.add_(part)
    assert total is not None
    if metric == "euc" and num_parts == 1:
        return total
    if on_cpu:
        array = total.numpy()
        np.divide(array, np.float32(num_parts), out=array)
        if metric == "cos":
            np.subtract(np.float32(1), array, out=array)
        return total
    total.div_(num_parts)
    return total.neg_().add_(1) if metric == "cos" else total


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

    The gallery is prepared once (per-part layout, normalised or squared norms); each block is
    one ``mm`` per part. Blocks live on the probe tensor's device and are fresh tensors the caller
    may modify. ``chunk_size=None`` picks the largest chunk whose ``[c, m]`` buffers hold at most
    :data:`DEFAULT_CHUNK_ELEMENTS` pairs.
    """
    _check_metric(metric)
    x = as_feature_tensor(probe, dtype=dtype)
    y = as_feature_tensor(gallery, device=x.device, dtype=dtype or x.dtype)
    _check_pair(x, y)
    n, m = x.shape[0], y.shape[0]
    if chunk_size is None:
        chunk_size = auto_chunk_size(m)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    gallery = prepare_features(y, metric)
    gallery_t = gallery.parts.transpose(1, 2).contiguous()  # [P, C, m]
    for start in range(0, n, chunk_size):
        yield start, distance_block(prepare_features(x[start : start + chunk_size], metric), gallery_t, gallery, metric)


def compute_distance(
    probe: ArrayLike,
    gallery: ArrayLike,
    metric: str = "euc",
    chunk_size: Optional[int] = None,
    dtype: Optional[torch.dtype] = torch.float32,
) -> torch.Tensor:
    """Distance matrix ``D [n, m]`` between probes ``[n, C, P]`` and gallery ``[m, C, P]``.

    Args:
        probe: probe embeddings (ndarray or tensor; a tensor's device is used).
        gallery: gallery embeddings, moved to the probe's device.
        metric: ``'euc'`` (mean over parts of the Euclidean distance) or ``'cos'``
            (1 − mean over parts of the cosine similarity).
        chunk_size: probes per block; ``None`` = automatic (bounded memory). The result does not
            depend on it beyond float rounding of the matmul.
        dtype: computation dtype (float32 by default, what the protocols use); ``None`` keeps
            the input dtype.

    Example (C = 2 channels, P = 2 parts)::

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
