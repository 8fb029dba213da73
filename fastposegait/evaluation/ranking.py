"""Ranking a gallery for every probe: rank-k hits, CMC, AP and INP from one stable sort.

Everything here is vectorised over probes (spec §5.3). For a block of probes the distance rows
are sorted once with a **stable** sort (equal distances keep the lower gallery index first;
upstream's quicksort/``topk`` leave that order undefined), the same-subject mask is gathered into
sorted order, and cumulative sums give, per probe and in one pass:

* the 1-based position of every match among the probe's *candidates* (gallery entries left after
  the optional same-subject-same-view exclusion),
* the first and last match positions (rank-k hit ⇔ first ≤ k; INP = R / k_R),
* AP = mean over the matches of (i / kᵢ).

:class:`ProbeRanking` holds those per-probe numbers; the upstream-compatible functions
(:func:`rank_accuracy_and_map` ≙ ``compute_ACC_mAP``, :func:`cmc_map_minp` ≙ ``evaluate_rank``,
:func:`cmc_map_minp_cross_camera` ≙ ``evaluate_many``) and the protocols reduce it with masks.
:func:`nearest_per_group` answers the single-view-gallery question (nearest entry within each
gallery view) without sorting at all, in ``O(n · m)``.

Cost: ``O(n · m log m)`` time for the sort; memory bounded by processing ``chunk`` probes at a
time (about 40 bytes per probe-gallery pair of a chunk, see :data:`RANK_CHUNK_ELEMENTS`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .distance import ArrayLike, as_feature_tensor, auto_chunk_size, iter_distance_chunks

logger = logging.getLogger("fastposegait.evaluation")

#: Probe-gallery pairs ranked per block when the chunk size is automatic (2**22 pairs ≈ 170 MB
#: of int64/float64 work arrays).
RANK_CHUNK_ELEMENTS = 1 << 22


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


def rank_block(
    distances: torch.Tensor,
    probe_labels: torch.Tensor,
    gallery_labels: torch.Tensor,
    probe_views: Optional[torch.Tensor] = None,
    gallery_views: Optional[torch.Tensor] = None,
) -> ProbeRanking:
    """Rank one block of distance rows ``[c, m]`` (labels/views are integer-code tensors on its device).

    With views, gallery entries with the probe's subject *and* view are excluded (they are not
    candidates); entries of other subjects in the same view stay.
    """
    c, m = distances.shape
    device = distances.device
    order = torch.sort(distances, dim=1, stable=True).indices
    match = (probe_labels[:, None] == gallery_labels[None, :]).gather(1, order)
    if probe_views is not None and gallery_views is not None:
        excluded = match & (probe_views[:, None] == gallery_views[None, :].expand(c, m).gather(1, order))
        candidate = ~excluded
        match &= candidate
        position = candidate.cumsum(1)
        num_candidates = candidate.sum(1)
    else:
        position = torch.arange(1, m + 1, device=device).expand(c, m)
        num_candidates = torch.full((c,), m, dtype=torch.long, device=device)
    num_matches = match.sum(1)
    first = torch.where(match, position, m + 1).amin(1) if m else torch.zeros(c, dtype=torch.long, device=device)
    first = torch.where(num_matches > 0, first, 0)
    last = torch.where(match, position, 0).amax(1) if m else torch.zeros(c, dtype=torch.long, device=device)
    precision = torch.where(match, match.cumsum(1).double() / position.clamp(min=1).double(), 0.0)
    average_precision = precision.sum(1) / num_matches.clamp(min=1).double()
    return ProbeRanking(first, last, num_matches, num_candidates, average_precision)


def nearest_per_group(distances: torch.Tensor, gallery_groups: torch.Tensor, num_groups: int) -> torch.Tensor:
    """Index of the nearest gallery entry within each gallery group, per probe: ``[c, G]``.

    ``gallery_groups`` ``[m]`` holds group codes in ``0…G-1`` (e.g. the gallery view). Ties pick
    the lowest gallery index; an empty group yields index ``m``. Two scatter-min passes, no sort:
    ``O(c · m)``.
    """
    c, m = distances.shape
    groups = gallery_groups[None, :].expand(c, m)
    inf = torch.full((c, num_groups), float("inf"), dtype=distances.dtype, device=distances.device)
    group_min = inf.scatter_reduce(1, groups, distances, reduce="amin", include_self=True)
    is_min = distances == group_min.gather(1, groups)
    index = torch.arange(m, device=distances.device).expand(c, m)
    candidate = torch.where(is_min, index, m)
    none = torch.full((c, num_groups), m, dtype=torch.long, device=distances.device)
    return none.scatter_reduce(1, groups, candidate, reduce="amin", include_self=True)


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
    m, parts = y.shape[0], y.shape[2]
    if chunk_size is None:
        chunk_size = min(auto_chunk_size(m, parts), auto_chunk_size(m, budget=RANK_CHUNK_ELEMENTS))
    pl, gl = _codes_tensor(probe_labels, x.device), _codes_tensor(gallery_labels, x.device)
    pv = gv = None
    if probe_views is not None and gallery_views is not None:
        pv, gv = _codes_tensor(probe_views, x.device), _codes_tensor(gallery_views, x.device)
    blocks = []
    for start, block in iter_distance_chunks(x, y, metric, chunk_size):
        stop = start + block.shape[0]
        blocks.append(rank_block(block, pl[start:stop], gl, None if pv is None else pv[start:stop], gv))
    if not blocks:
        empty = torch.zeros(0, dtype=torch.long, device=x.device)
        return ProbeRanking(empty, empty, empty, empty, empty.double())
    return ProbeRanking.concatenate(blocks)


def rank_distances(
    distances: ArrayLike,
    probe_labels: Sequence,
    gallery_labels: Sequence,
    probe_views: Optional[Sequence] = None,
    gallery_views: Optional[Sequence] = None,
    chunk_size: Optional[int] = None,
) -> ProbeRanking:
    """:func:`rank_block` over a given distance matrix, in bounded-memory row blocks.

    Labels and views may be any sequences of comparable values (strings, ints).
    """
    dist = distances.detach() if isinstance(distances, torch.Tensor) else torch.as_tensor(np.asarray(distances))
    if dist.dim() != 2:
        raise ValueError(f"distances must be [n_probe, n_gallery], got shape {tuple(dist.shape)}")
    n, m = dist.shape
    if len(probe_labels) != n or len(gallery_labels) != m:
        raise ValueError(
            f"distances are {n} x {m} but there are {len(probe_labels)} probe and {len(gallery_labels)} gallery labels"
        )
    if not bool(torch.isfinite(dist).all()):
        raise ValueError("distances contain NaN or inf")
    pl, gl = encode(probe_labels, gallery_labels)
    pl_t, gl_t = _codes_tensor(pl, dist.device), _codes_tensor(gl, dist.device)
    pv_t = gv_t = None
    if probe_views is not None and gallery_views is not None:
        if len(probe_views) != n or len(gallery_views) != m:
            raise ValueError("probe/gallery views must have one entry per distance row/column")
        pv, gv = encode(probe_views, gallery_views)
        pv_t, gv_t = _codes_tensor(pv, dist.device), _codes_tensor(gv, dist.device)
    chunk = chunk_size or auto_chunk_size(m, budget=RANK_CHUNK_ELEMENTS)
    blocks = [
        rank_block(
            dist[s : s + chunk],
            pl_t[s : s + chunk],
            gl_t,
            None if pv_t is None else pv_t[s : s + chunk],
            gv_t,
        )
        for s in range(0, n, chunk)
    ]
    if not blocks:
        raise ValueError("no probes to rank (the distance matrix has 0 rows)")
    return ProbeRanking.concatenate(blocks).cpu()


def rank_accuracy_and_map(
    distances: ArrayLike,
    probe_labels: Sequence,
    gallery_labels: Sequence,
    probe_views: Optional[Sequence] = None,
    gallery_views: Optional[Sequence] = None,
    rank: int = 1,
) -> Tuple[float, float]:
    """Rank-``rank`` accuracy and mAP as fractions (upstream ``compute_ACC_mAP``).

    With views, each probe's same-subject-same-view gallery entries are removed first. The
    accuracy averages over **all** probes (a probe without any match is a miss); mAP averages AP
    over probes with at least one match (NaN if none has). A probe left with no gallery entry at
    all raises ``ValueError`` (upstream: assertion).
    """
    ranking = rank_distances(distances, probe_labels, gallery_labels, probe_views, gallery_views)
    empty = ranking.num_candidates == 0
    if bool(empty.any()):
        i = int(torch.nonzero(empty)[0])
        raise ValueError(
            f"probe {i} (label {probe_labels[i]!r}) has no gallery entry left after removing "
            "same-subject same-view entries"
        )
    accuracy = float(ranking.hits_at(rank).double().mean())
    valid = ranking.has_match
    mean_ap = float(ranking.average_precision[valid].mean()) if bool(valid.any()) else float("nan")
    return accuracy, mean_ap


def _cmc_over_valid(ranking: ProbeRanking, max_rank: int) -> np.ndarray:
    """CMC averaged over probes with a match, float32 like upstream (``sum / num_valid``)."""
    num_valid = int(ranking.has_match.sum())
    return ranking.cmc_counts(max_rank).astype(np.float32) / np.float32(num_valid)


def cmc_map_minp(
    distances: ArrayLike, probe_labels: Sequence, gallery_labels: Sequence, max_rank: int = 50
) -> Tuple[np.ndarray, List[float], List[float]]:
    """CMC, per-probe AP and per-probe INP (upstream ``evaluate_rank``, Gait3D).

    ``max_rank`` is lowered to the gallery size. Probes without any same-subject gallery entry
    are skipped. Returns ``(cmc float32 [max_rank], AP list, INP list)`` over the valid probes in
    probe order; ``ValueError`` if no probe is valid.
    """
    ranking = rank_distances(distances, probe_labels, gallery_labels)
    num_gallery = len(gallery_labels)
    if num_gallery < max_rank:
        logger.info("Note: number of gallery samples is quite small, got %d", num_gallery)
        max_rank = num_gallery
    valid = ranking.has_match
    if not bool(valid.any()):
        raise ValueError("no probe has a same-subject gallery entry; CMC/mAP/mINP are undefined")
    return (
        _cmc_over_valid(ranking, max_rank),
        ranking.average_precision[valid].tolist(),
        ranking.inverse_negative_penalty[valid].tolist(),
    )


def cmc_map_minp_cross_camera(
    distances: ArrayLike,
    probe_labels: Sequence,
    gallery_labels: Sequence,
    probe_cameras: Sequence,
    gallery_cameras: Sequence,
    max_rank: int = 50,
) -> Tuple[np.ndarray, float, float]:
    """CMC, mAP and mINP with same-subject-same-camera entries removed per probe (upstream ``evaluate_many``, CCPG).

    Like :func:`cmc_map_minp` (``max_rank`` lowered to the gallery size, probes without a
    remaining match skipped, ``ValueError`` if none is valid). Upstream stacks per-probe CMC rows
    of each probe's remaining length and crashes when those differ (Q23); here the CMC has the
    common length ``min(max_rank, largest remaining gallery)`` and shorter rows are extended
    with their final value (a found match stays found). Returns ``(cmc float32, mAP, mINP)`` as
    fractions.
    """
    ranking = rank_distances(distances, probe_labels, gallery_labels, probe_cameras, gallery_cameras)
    max_rank = min(max_rank, len(gallery_labels))
    valid = ranking.has_match
    if not bool(valid.any()):
        raise ValueError(
            "no probe has a same-subject gallery entry from another camera; CMC/mAP/mINP are undefined"
        )
    max_rank = min(max_rank, int(ranking.num_candidates[valid].max()))
    return (
        _cmc_over_valid(ranking, max_rank),
        float(ranking.average_precision[valid].mean()),
        float(ranking.inverse_negative_penalty[valid].mean()),
    )
