"""Ranking a gallery for every probe: rank-k hits, CMC, AP and INP without sorting the gallery.

Everything here is vectorised over probes. The gallery order is the **stable** order of
``(distance, gallery index)``: equal distances keep the lower gallery index first (the
original's quicksort/``topk`` leave that order undefined: docs/upstream_differences.md, "Ties
in rankings"). The metrics only need, for every probe, the
1-based positions of its same-subject gallery entries ("matches") in that order, and the
position of a match is one plus the number of candidates that precede it. ``torch.sort`` on the
CPU manages only a few million elements per second (a 72k × 72k OUMVLP matrix would take half an
hour), so a block of probes is ranked by:

1. looking up each probe's matches in a per-subject index of the gallery (:class:`GalleryIndex`,
   built once) and removing excluded entries (same subject *and* same view, when views are
   given) by setting their distance to ``+inf`` — ``O(K)`` per probe, ``K`` = the largest number
   of gallery entries of one subject;
2. sorting only the matches (``[c, K]``);
3. one comparison pass marking the candidates not farther than the probe's last match; then
   either (few of them, useful features) extracting those and counting, for each match, the
   ones that precede it — ``O(#extracted · log K)`` — or (many, e.g. an untrained model)
   sorting the block's ``(distance, index)`` keys packed into int64 with NumPy's vectorised
   sort and looking each match's key up — ``O(c · m log m)`` at a few ns per element.

Both paths give exactly the positions of a stable sort (ties included); memory is bounded by
the block size.

:class:`ProbeRanking` holds the per-probe numbers (:func:`rank_features` computes it from
embeddings); the protocols reduce it with masks to rank-k accuracy, CMC, mAP and mINP.
:func:`nearest_in_slices` answers the single-view-gallery question (nearest entry within each
gallery view, the gallery laid out view by view) and :func:`smallest_k_stable` gives the first
k entries of the stable order (GREW submission), both without a full sort.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence

import numpy as np
import torch

from .distance import ArrayLike, as_feature_tensor, auto_chunk_size, iter_distance_chunks

#: Probe-gallery pairs ranked per block when the chunk size is automatic (the distance block
#: of :func:`~fastposegait.evaluation.distance.iter_distance_chunks`, 2**24 pairs). The sparse
#: path needs a 1-byte mask plus about 40 bytes per extracted candidate (at most
#: ``SPARSE_FRACTION`` of the block); the sorted path sorts int64 keys in sub-blocks of
#: ``SORT_BLOCK_ELEMENTS`` pairs (32 MB).
RANK_CHUNK_ELEMENTS = 1 << 24
SORT_BLOCK_ELEMENTS = 1 << 22

#: Largest fraction of a block's pairs that may precede the probes' last matches for the
#: extract-and-count path; above it the block's keys are sorted instead (see :func:`rank_indexed`).
SPARSE_FRACTION = 0.05

#: Rank CPU blocks with NumPy (faster there); the torch path is what CUDA runs, and tests switch
#: this off to exercise it on machines without a GPU.
NUMPY_ON_CPU = True



@dataclass
class ProbeRanking:
    """Per-probe outcome of ranking the gallery by distance.

    Positions are 1-based and counted among the probe's candidates (gallery entries that were not
    excluded). All fields are 1-D tensors of length ``n`` on the same device.

    Attributes:
        first_match: position of the first same-subject candidate; 0 when there is none.
        last_match: position of the last same-subject candidate (``k_R``); 0 when there is none.
        num_matches: number of same-subject candidates ``R``.
        num_candidates: number of candidates (gallery size after exclusion).
        average_precision: AP as float64; 0 when there is no match.
    """

    first_match: torch.Tensor
    last_match: torch.Tensor
    num_matches: torch.Tensor
    num_candidates: torch.Tensor
    average_precision: torch.Tensor

    def __len__(self) -> int:
        return int(self.first_match.shape[0])

    @property
    def has_match(self) -> torch.Tensor:
        """Bool mask of probes with at least one same-subject candidate."""
        return self.num_matches > 0

    def hits_at(self, k: int) -> torch.Tensor:
        """Bool mask: a same-subject candidate is among the first ``k`` (k beyond the list = whole list)."""
        return self.has_match & (self.first_match <= k)

    @property
    def inverse_negative_penalty(self) -> torch.Tensor:
        """INP = R / k_R per probe (float64; 0 when there is no match)."""
        return self.num_matches.double() / self.last_match.clamp(min=1).double()

    def cmc_counts(self, max_rank: int, mask: Optional[torch.Tensor] = None) -> np.ndarray:
        """``counts[r-1]`` = number of (masked) probes with a hit at rank r, r = 1…max_rank (int64)."""
        first = self.first_match[self.has_match if mask is None else (self.has_match & mask)]
        first = first[first <= max_rank]
        counts = torch.bincount(first, minlength=max_rank + 1)[1:].cumsum(0)
        return counts.cpu().numpy()

    @staticmethod
    def concatenate(parts: Sequence["ProbeRanking"]) -> "ProbeRanking":
        """Join rankings of consecutive probe blocks."""
        if not parts:
            raise ValueError("no probe blocks to concatenate")
        return ProbeRanking(
            *(torch.cat([getattr(p, name) for p in parts]) for name in ProbeRanking.__dataclass_fields__)
        )

    def cpu(self) -> "ProbeRanking":
        return ProbeRanking(*(getattr(self, name).cpu() for name in ProbeRanking.__dataclass_fields__))


def encode(*columns: Iterable) -> List[np.ndarray]:
    """Integer codes for several label columns with one shared vocabulary (equal labels, equal codes).

    Codes follow the sorted order of the unique values, so view codes are also indices into the
    sorted view list.
    """
    arrays = [np.asarray(list(column) if not isinstance(column, np.ndarray) else column) for column in columns]
    lengths = [len(a) for a in arrays]
    if sum(lengths) == 0:
        return [np.zeros(0, dtype=np.int64) for _ in arrays]
    _, codes = np.unique(np.concatenate([a.reshape(-1) for a in arrays]), return_inverse=True)
    codes = codes.reshape(-1).astype(np.int64)
    return list(np.split(codes, np.cumsum(lengths)[:-1]))


@dataclass
class GalleryIndex:
    """The gallery grouped by subject, for looking up a probe's matches in ``O(K)``.

    Attributes:
        members: ``[L + 1, K]`` long; row ``code`` lists the gallery positions with that label
            code in ascending order, padded with ``size``; row ``L`` is empty (for probe labels
            that the gallery lacks).
        views: ``[size]`` view codes of the gallery (or ``None`` when views are not used).
        size: number of gallery entries ``m``.
    """

    members: torch.Tensor
    views: Optional[torch.Tensor]
    size: int

    @staticmethod
    def build(
        gallery_labels: np.ndarray,
        num_labels: int,
        gallery_views: Optional[np.ndarray] = None,
        device: Optional[torch.device] = None,
    ) -> "GalleryIndex":
        """Index integer label codes in ``0 … num_labels-1`` (and optional view codes)."""
        labels = np.asarray(gallery_labels, dtype=np.int64).reshape(-1)
        m = len(labels)
        if m and (labels.min() < 0 or labels.max() >= num_labels):
            raise ValueError(f"gallery label codes must lie in [0, {num_labels}), got [{labels.min()}, {labels.max()}]")
        counts = np.bincount(labels, minlength=num_labels)
        width = max(1, int(counts.max()) if m else 1)
        members = np.full((num_labels + 1, width), m, dtype=np.int64)
        order = np.argsort(labels, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        sorted_labels = labels[order]
        members[sorted_labels, np.arange(m) - starts[sorted_labels]] = order
        views = None
        if gallery_views is not None:
            views = torch.as_tensor(np.asarray(gallery_views, dtype=np.int64).reshape(-1), device=device)
            if len(views) != m:
                raise ValueError(f"{len(views)} gallery views for {m} gallery entries")
        return GalleryIndex(torch.as_tensor(members, device=device), views, m)

    def to(self, device: torch.device) -> "GalleryIndex":
        views = None if self.views is None else self.views.to(device)
        return GalleryIndex(self.members.to(device), views, self.size)


def _empty_ranking(c: int, m: int, device: torch.device) -> ProbeRanking:
    zeros = torch.zeros(c, dtype=torch.long, device=device)
    return ProbeRanking(zeros, zeros.clone(), zeros.clone(), torch.full((c,), m, dtype=torch.long, device=device),
                        torch.zeros(c, dtype=torch.float64, device=device))


def rank_indexed(
    distances: torch.Tensor,
    probe_labels: torch.Tensor,
    gallery: GalleryIndex,
    probe_views: Optional[torch.Tensor] = None,
    inplace: bool = False,
) -> ProbeRanking:
    """Rank one block of distance rows ``[c, m]`` against an indexed gallery (see the module doc).

    Args:
        distances: finite distances ``[c, m]``.
        probe_labels: ``[c]`` label codes; a code ``>= L`` (or ``L``) means "not in the gallery".
        gallery: the :class:`GalleryIndex` of the ``m`` gallery entries.
        probe_views: ``[c]`` view codes; with ``gallery.views`` it removes each probe's
            same-subject same-view gallery entries (they stop being candidates).
        inplace: allow overwriting excluded entries of ``distances`` with ``+inf`` (saves a copy
            when the caller owns the block).
    """
    c, m = distances.shape
    device = distances.device
    if m == 0 or c == 0:
        return _empty_ranking(c, m, device)
    members = gallery.members.to(device)
    codes = probe_labels.to(device).clamp(max=members.shape[0] - 1)
    index = members[codes]  # [c, K] ascending gallery positions, padded with m
    in_gallery = index < m
    safe = index.clamp(max=m - 1)
    if probe_views is not None and gallery.views is not None:
        excluded = in_gallery & (gallery.views.to(device)[safe] == probe_views.to(device)[:, None])
        match = in_gallery & ~excluded
        if bool(excluded.any()):
            if not inplace:
                distances = distances.clone()
            rows = torch.arange(c, device=device)[:, None].expand_as(index)
            distances[rows[excluded], index[excluded]] = float("inf")
        num_candidates = m - excluded.sum(1)
    else:
        match = in_gallery
        num_candidates = torch.full((c,), m, dtype=torch.long, device=device)
    match_dist = torch.where(match, distances.gather(1, safe), float("inf"))
    if not bool(torch.isfinite(match_dist[match]).all()):
        raise ValueError("distances contain NaN or inf")
    # Matches in (distance, gallery index) order: index is ascending per row, so a stable sort.
    order = torch.sort(match_dist, dim=1, stable=True).indices
    match_dist = match_dist.gather(1, order)
    match_index = index.gather(1, order)
    num_matches = match.sum(1)
    slots = int(num_matches.max())
    if slots == 0:
        empty = _empty_ranking(c, m, device)
        empty.num_candidates = num_candidates
        return empty
    match_dist, match_index = match_dist[:, :slots], match_index[:, :slots]
    valid_slot = torch.arange(slots, device=device)[None, :] < num_matches[:, None]
    last_slot = (num_matches - 1).clamp(min=0)[:, None]
    threshold = torch.where(num_matches > 0, match_dist.gather(1, last_slot).squeeze(1), float("-inf"))

    # Candidates not farther than the probe's last match are the only ones that can precede a
    # match. When they are few (useful features) they are extracted and counted; otherwise the
    # block's (distance, index) keys are sorted and each match's key is looked up. Both pack a
    # float32 into 32 bits; other dtypes (e.g. float64 matrices) take a plain stable sort.
    if distances.dtype != torch.float32:
        positions = _positions_stable_sort(distances, match_index)
    elif distances.device.type == "cpu" and NUMPY_ON_CPU:
        positions = torch.from_numpy(_positions_numpy(
            distances.numpy(), threshold.numpy(), match_dist.numpy(), match_index.numpy(), valid_slot.numpy(),
            num_matches.numpy()))
    else:
        relevant = distances <= threshold[:, None]
        if int(torch.count_nonzero(relevant)) <= SPARSE_FRACTION * c * m:
            positions = _positions_sparse(distances, relevant, match_dist, match_index, valid_slot, num_matches)
        else:
            del relevant
            positions = _positions_sorted(distances, match_dist, match_index)
    has = num_matches > 0
    first = torch.where(has, positions[:, 0], 0)
    last = torch.where(has, positions.gather(1, last_slot).squeeze(1), 0)
    rank_among_matches = torch.arange(1, slots + 1, device=device, dtype=torch.float64)[None, :]
    precision = torch.where(valid_slot, rank_among_matches / positions.double(), 0.0)
    average_precision = precision.sum(1) / num_matches.clamp(min=1).double()
    return ProbeRanking(first, last, num_matches, num_candidates, average_precision)


def _monotone_bits(values: torch.Tensor) -> torch.Tensor:
    """int64 codes of float32 values with the same order (``-0.0`` and ``0.0`` get the same code).

    Non-negative floats order like their bit patterns; negative ones have their magnitude bits
    flipped so that they come first, largest magnitude first.
    """
    bits = (values.float() + 0.0).view(torch.int32).long()
    return torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)


def _row_keys(rows: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """int64 keys ordered like ``(row, value)``: the row in the high bits, the value's code below."""
    return (rows << 32) | (_monotone_bits(values) + (1 << 31))


def _count_tied_earlier_matches(before, tied, table, table_cols, keys, cols) -> None:
    """Move each candidate's insertion point ``before`` (into the sorted match ``table``) past
    the matches whose key equals its own and whose gallery index is lower: at equal distance
    the lower gallery index ranks first. ``tied`` holds the candidates whose key equals the
    table entry at ``before``. Works in place on torch tensors and numpy arrays alike."""
    tied_at = before[tied]
    while len(tied):
        inside = tied_at < len(table)
        tied, tied_at = tied[inside], tied_at[inside]
        same = table[tied_at] == keys[tied]
        tied, tied_at = tied[same], tied_at[same]
        earlier = table_cols[tied_at] < cols[tied]
        tied, tied_at = tied[earlier], tied_at[earlier] + 1
        before[tied] += 1


def _positions_sparse(
    distances: torch.Tensor,
    relevant: torch.Tensor,
    match_dist: torch.Tensor,
    match_index: torch.Tensor,
    valid_slot: torch.Tensor,
    num_matches: torch.Tensor,
) -> torch.Tensor:
    """1-based positions ``[c, slots]`` of the sorted matches, from the extracted candidates.

    ``relevant`` marks the candidates not farther than each probe's last match. One sorted table
    holds every ``(row, distance)`` match threshold of the block; a candidate's insertion point
    minus its row's start is the number of its row's matches that precede it, and a histogram
    of those numbers, accumulated over the slots, counts the candidates before each match.
    """
    c, slots = match_dist.shape
    device = distances.device
    rows_of_slots = torch.arange(c, device=device)[:, None].expand(c, slots)
    relevant[rows_of_slots[valid_slot], match_index[valid_slot]] = False  # matches counted apart
    rows, cols = torch.nonzero(relevant, as_tuple=True)
    keys = _row_keys(rows, distances[relevant])  # row-major, like nonzero
    table = _row_keys(rows_of_slots[valid_slot], match_dist[valid_slot])
    table_cols = match_index[valid_slot]
    row_start = torch.cumsum(num_matches, 0) - num_matches
    before = torch.searchsorted(table, keys, side="left")
    # Equal distances: a match with a lower gallery index also precedes the candidate.
    padded = torch.cat([table, table.new_full((1,), -1)])  # keys are >= 0: -1 never equals one
    _count_tied_earlier_matches(before, torch.nonzero(padded[before] == keys).squeeze(1), table, table_cols, keys, cols)
    slot_of = before - row_start[rows]  # the candidate precedes match slots slot_of, slot_of + 1, ...
    counts = torch.bincount(rows * (slots + 1) + slot_of, minlength=c * (slots + 1)).view(c, slots + 1)
    return counts[:, :slots].cumsum(1) + torch.arange(1, slots + 1, device=device)[None, :]


def _positions_sorted(distances: torch.Tensor, match_dist: torch.Tensor, match_index: torch.Tensor) -> torch.Tensor:
    """1-based positions ``[c, slots]`` of the matches, by sorting the block's int64 keys.

    Key = value code in the high 32 bits, gallery index in the low 32 bits: all keys differ, so
    any sort gives the stable ``(distance, index)`` order, and a match's position is one plus
    the number of keys below its own (excluded entries are ``+inf`` and sort last). On the CPU
    NumPy's vectorised sort is used (about 20x faster than ``torch.sort`` there).
    """
    c, m = distances.shape
    columns = torch.arange(m, device=distances.device)
    keys = (_monotone_bits(distances) << 32) | columns
    if keys.device.type == "cpu":
        array = keys.numpy()
        array.sort(axis=1)
    else:
        keys = torch.sort(keys, dim=1).values
    own = (_monotone_bits(match_dist) << 32) | match_index
    return torch.searchsorted(keys, own.contiguous(), side="left") + 1


def _positions_stable_sort(distances: torch.Tensor, match_index: torch.Tensor) -> torch.Tensor:
    """1-based positions ``[c, slots]`` of the matches from a full stable sort (any dtype; slow on CPU)."""
    c, m = distances.shape
    order = torch.sort(distances, dim=1, stable=True).indices
    position = torch.empty_like(order).scatter_(1, order, torch.arange(m, device=order.device).expand(c, m))
    return position.gather(1, match_index.clamp(max=m - 1)) + 1


def _monotone_bits_np(values: np.ndarray) -> np.ndarray:
    """NumPy twin of :func:`_monotone_bits`."""
    bits = (values.astype(np.float32, copy=False) + np.float32(0)).view(np.int32).astype(np.int64)
    negative = bits < 0
    if negative.any():
        bits[negative] ^= 0x7FFFFFFF
    return bits


def _positions_numpy(
    distances: np.ndarray,
    threshold: np.ndarray,
    match_dist: np.ndarray,
    match_index: np.ndarray,
    valid_slot: np.ndarray,
    num_matches: np.ndarray,
) -> np.ndarray:
    """The CPU version of :func:`_positions_sparse` / :func:`_positions_sorted`, in NumPy.

    Same algorithm and result; NumPy's comparisons, ``flatnonzero``, ``take`` and sort are
    several times faster than torch's on the CPU.
    """
    c, m = distances.shape
    slots = match_dist.shape[1]
    relevant = distances <= threshold[:, None]
    if np.count_nonzero(relevant) > SPARSE_FRACTION * c * m:
        del relevant
        own = torch.from_numpy((_monotone_bits_np(match_dist) << 32) | match_index)
        positions = np.empty((c, slots), dtype=np.int64)
        step = max(1, SORT_BLOCK_ELEMENTS // max(1, m))  # bounds the int64 key buffer
        for start in range(0, c, step):
            keys = _monotone_bits_np(distances[start : start + step])
            keys <<= 32
            keys |= np.arange(m, dtype=np.int64)
            keys.sort(axis=1)
            found = torch.searchsorted(torch.from_numpy(keys), own[start : start + step].contiguous())
            positions[start : start + step] = found.numpy() + 1
        return positions
    slot_rows, slot_cols = np.nonzero(valid_slot)
    relevant[slot_rows, match_index[slot_rows, slot_cols]] = False  # matches are counted apart
    flat = np.flatnonzero(relevant)
    del relevant
    rows, cols = np.divmod(flat, m)
    keys = _monotone_bits_np(distances.ravel()[flat])
    keys += 1 << 31
    keys |= rows << 32
    table = ((slot_rows.astype(np.int64) << 32)
             | (_monotone_bits_np(match_dist[slot_rows, slot_cols]) + (1 << 31)))
    table_cols = match_index[slot_rows, slot_cols]
    before = np.searchsorted(table, keys, side="left")
    padded = np.append(table, -1)
    _count_tied_earlier_matches(before, np.flatnonzero(padded[before] == keys), table, table_cols, keys, cols)
    row_start = np.cumsum(num_matches) - num_matches
    slot_of = before - row_start[rows]
    counts = np.bincount(rows * (slots + 1) + slot_of, minlength=c * (slots + 1)).reshape(c, slots + 1)
    return counts[:, :slots].cumsum(1) + np.arange(1, slots + 1)[None, :]


def nearest_in_slices(distances: torch.Tensor, bounds: Sequence[int]) -> torch.Tensor:
    """Per probe, the column of the nearest entry within each slice ``[bounds[g], bounds[g+1])``.

    Returns ``[c, G]`` column indices (the first minimum, i.e. the lowest column, on ties; ``m``
    for an empty slice). With the gallery laid out group by group (stable sort by group), this
    is the nearest entry of each group with ties on the lowest original index, at the cost of
    one ``argmin`` pass and no sort.
    """
    c, m = distances.shape
    out = torch.full((c, len(bounds) - 1), m, dtype=torch.long, device=distances.device)
    # On the CPU NumPy's argmin over a strided column slice is ~10x faster than torch's.
    rows = distances.numpy() if distances.device.type == "cpu" else distances
    for g in range(len(bounds) - 1):
        lo, hi = int(bounds[g]), int(bounds[g + 1])
        if hi > lo:
            out[:, g] = torch.as_tensor(rows[:, lo:hi].argmin(1), device=distances.device) + lo
    return out


def smallest_k_stable(distances: torch.Tensor, k: int) -> torch.Tensor:
    """Column indices of the ``k`` smallest entries per row, in (distance, column) order: ``[c, k]``.

    Equal to ``torch.sort(distances, stable=True).indices[:, :k]`` but ``O(m)`` per row: a
    ``topk`` of ``2k + 8`` is put in (distance, column) order by sorting packed int64 keys, and a
    row whose ``k``-th value equals the largest retrieved one (so a tied entry with a lower
    column might be missing) falls back to the full stable sort.
    """
    c, m = distances.shape
    k = min(k, m)
    if k == 0 or c == 0:
        return torch.zeros(c, k, dtype=torch.long, device=distances.device)
    wide = min(m, 2 * k + 8)
    values, columns = torch.topk(distances, wide, dim=1, largest=False, sorted=False)
    # (value code, column) packed into int64: all different, so a plain sort is the stable order
    if distances.device.type == "cpu" and NUMPY_ON_CPU:
        packed = _monotone_bits_np(values.numpy())
        packed <<= 32
        packed |= columns.numpy()
        packed.sort(axis=1)
        keys = torch.from_numpy(packed)
    else:
        keys = torch.sort((_monotone_bits(values) << 32) | columns, dim=1).values
    top = keys[:, :k] & 0xFFFFFFFF
    if wide < m:
        # complete unless the k-th value also ends the retrieved set (tied entries may be missing)
        complete = (keys[:, wide - 1] >> 32) > (keys[:, k - 1] >> 32)
        redo = torch.nonzero(~complete).squeeze(1)
        if len(redo):
            top[redo] = torch.sort(distances[redo], dim=1, stable=True).indices[:, :k]
    return top


def _codes_tensor(codes: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(codes, dtype=torch.long, device=device)


def rank_features(
    probe: ArrayLike,
    gallery: ArrayLike,
    probe_labels: np.ndarray,
    gallery_labels: np.ndarray,
    probe_views: Optional[np.ndarray] = None,
    gallery_views: Optional[np.ndarray] = None,
    metric: str = "euc",
    chunk_size: Optional[int] = None,
) -> ProbeRanking:
    """Distances and ranking for every probe, block by block (never the full ``[n, m]`` matrix).

    Labels/views are integer codes (see :func:`encode`). Memory is bounded by ``chunk_size``
    probes at a time (automatic by default), so OUMVLP/GREW-sized sets fit.
    """
    x = as_feature_tensor(probe)
    y = as_feature_tensor(gallery, device=x.device)
    m = y.shape[0]
    if chunk_size is None:
        chunk_size = auto_chunk_size(m, budget=RANK_CHUNK_ELEMENTS)
    pl = _codes_tensor(probe_labels, x.device)
    num_labels = int(max(np.max(probe_labels, initial=-1), np.max(gallery_labels, initial=-1))) + 1
    use_views = probe_views is not None and gallery_views is not None
    index = GalleryIndex.build(gallery_labels, num_labels, gallery_views if use_views else None, device=x.device)
    pv = _codes_tensor(probe_views, x.device) if use_views else None
    blocks = []
    for start, block in iter_distance_chunks(x, y, metric, chunk_size):
        stop = start + block.shape[0]
        blocks.append(rank_indexed(block, pl[start:stop], index, None if pv is None else pv[start:stop], inplace=True))
    if not blocks:
        empty = torch.zeros(0, dtype=torch.long, device=x.device)
        return ProbeRanking(empty, empty, empty, empty, empty.double())
    return ProbeRanking.concatenate(blocks)
