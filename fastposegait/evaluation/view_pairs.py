"""Rank-k accuracy for every (probe view, gallery view) pair: the tables of CCPG and SUSTech1K.

For a set of probes and a gallery, both spread over ``V`` views, cell ``[v₁, v₂, r]`` is the
percentage of the probes seen from view ``v₁`` whose ``r + 1`` nearest entries of the gallery
restricted to view ``v₂`` contain a sequence of their own subject, rounded to 2 decimals (the
original protocols' cells). The diagonal ``v₁ = v₂`` is computed too; protocols exclude it
when averaging (:func:`exclude_identical_views`).

One blockwise distance pass serves all ``V`` gallery views: the gallery is laid out view by
view and, inside each view's columns, the position of a probe's first same-subject entry in
the stable ``(distance, gallery index)`` order is one plus the number of entries that precede
it — one comparison pass, no sort. A gallery view with fewer entries than a rank asks for
(the original takes ``topk(5)`` and crashes below 5: docs/upstream_differences.md,
"CCPG and SUSTech1K small galleries") counts its whole list at the higher ranks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from .common import _round2
from .distance import auto_chunk_size, iter_distance_chunks


@dataclass
class ViewPairTable:
    """Rank-k accuracies of one probe set against one gallery, per view pair.

    Attributes:
        accuracy: ``[V, V, max_rank]`` percentages (rows: probe view, columns: gallery view),
            each cell rounded to 2 decimals.
        probe_counts: ``[V]`` probes per view.
        gallery_counts: ``[V]`` gallery entries per view.
    """

    accuracy: np.ndarray
    probe_counts: np.ndarray
    gallery_counts: np.ndarray


def first_match_in_slices(
    distances: torch.Tensor,
    probe_labels: torch.Tensor,
    gallery_labels: torch.Tensor,
    bounds: Sequence[int],
) -> torch.Tensor:
    """Per probe and slice ``[bounds[g], bounds[g+1])`` of the columns, the 1-based position of
    the first same-subject entry in the slice's stable ``(distance, column)`` order; 0 when the
    slice holds none. Returns ``[c, G]`` long.

    Position = 1 + #entries strictly nearer than the nearest match + #entries at the same
    distance with a lower column (ties keep the lower gallery index first).
    """
    c = distances.shape[0]
    out = torch.zeros(c, len(bounds) - 1, dtype=torch.long, device=distances.device)
    for g in range(len(bounds) - 1):
        lo, hi = int(bounds[g]), int(bounds[g + 1])
        if hi <= lo:
            continue
        block = distances[:, lo:hi]
        same = gallery_labels[lo:hi][None, :] == probe_labels[:, None]
        if not bool(same.any()):
            continue
        match_dist = torch.where(same, block, torch.full_like(block, float("inf")))
        nearest = match_dist.argmin(1)  # first minimum: the lowest column among tied matches
        best = match_dist.gather(1, nearest[:, None])
        columns = torch.arange(hi - lo, device=distances.device)[None, :]
        before = (block < best).sum(1) + ((block == best) & (columns < nearest[:, None])).sum(1)
        out[:, g] = torch.where(same.any(1), before + 1, torch.zeros_like(before))
    return out


def view_pair_table(
    features: torch.Tensor,
    label_codes: np.ndarray,
    view_codes: np.ndarray,
    num_views: int,
    probe_rows: np.ndarray,
    gallery_rows: np.ndarray,
    metric: str,
    max_rank: int = 5,
    chunk_size: Optional[int] = None,
) -> ViewPairTable:
    """The ``[V, V, max_rank]`` table of ``probe_rows`` against ``gallery_rows`` (see the module
    doc). Labels and views are integer codes of the whole test set; views are ``0 … V-1``.
    ``O(n·m·C·P)`` time, memory bounded by the probe chunk. Empty cells give NaN; callers check
    ``probe_counts`` / ``gallery_counts`` first and name the empty cell.
    """
    device = features.device
    probe_rows = np.asarray(probe_rows, dtype=np.int64)
    gallery_rows = np.asarray(gallery_rows, dtype=np.int64)
    by_view = gallery_rows[np.argsort(view_codes[gallery_rows], kind="stable")]
    bounds = np.searchsorted(view_codes[by_view], np.arange(num_views + 1))
    gallery_label = torch.as_tensor(label_codes[by_view], device=device)
    probe_label = torch.as_tensor(label_codes[probe_rows], device=device)
    positions = torch.zeros(len(probe_rows), num_views, dtype=torch.long, device=device)
    if len(probe_rows) and len(by_view):
        chunk = chunk_size or auto_chunk_size(len(by_view))
        for start, dist in iter_distance_chunks(features[probe_rows], features[by_view], metric, chunk):
            stop = start + dist.shape[0]
            positions[start:stop] = first_match_in_slices(dist, probe_label[start:stop], gallery_label, bounds)
    positions = positions.cpu().numpy()
    probe_views = view_codes[probe_rows]
    probe_counts = np.bincount(probe_views, minlength=num_views)
    gallery_counts = np.diff(bounds)
    # hits[v₁, v₂, r] = probes of view v₁ whose first v₂ match is at position <= r + 1
    hits = np.zeros((num_views, num_views, max_rank), dtype=np.float64)
    for r in range(max_rank):
        hit = (positions > 0) & (positions <= r + 1)  # [n, V]
        np.add.at(hits[:, :, r], probe_views, hit.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = _round2(hits * 100 / probe_counts[:, None, None])
    return ViewPairTable(accuracy, probe_counts, gallery_counts)


def exclude_identical_views(table: np.ndarray) -> np.ndarray:
    """Per probe view, the mean over the *other* gallery views of a ``[V, V]`` table:
    ``(row sum − diagonal) / (V − 1)``, computed as the original does (diagonal zeroed, then
    the row summed), so that e.g. ``[33.33, 100]`` gives exactly 100.0."""
    num_views = table.shape[0]
    return (table * (1 - np.eye(num_views))).sum(1) / (num_views - 1)
