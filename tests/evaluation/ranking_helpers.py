"""Ranking helpers with the original FastPoseGait's metric signatures, used only by the tests.

They sit on the package's ranking engine (:func:`fastposegait.evaluation.ranking.rank_indexed`)
and mirror the original's metric functions, so the tests can check that engine against the
brute-force loops of ``eval_reference.py`` and against worked examples:

* :func:`rank_accuracy_and_map` - the original ``compute_ACC_mAP`` (rank-k accuracy and mAP);
* :func:`cmc_map_minp` - the original ``evaluate_rank`` (Gait3D: CMC, AP, INP);
* :func:`cmc_map_minp_cross_camera` - the original ``evaluate_many`` (CCPG), with the CMC
  rows padded to a common length (docs/upstream_differences.md, "CCPG protocol and ragged CMC");
* :func:`rank_distances` / :func:`rank_block` - a given distance matrix ranked in row blocks.

The protocols in ``fastposegait/evaluation/protocols.py`` do not use them: they rank features
block by block with :func:`~fastposegait.evaluation.ranking.rank_features`.
"""
from __future__ import annotations

import logging
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from fastposegait.evaluation.distance import ArrayLike, auto_chunk_size
from fastposegait.evaluation.ranking import (
    RANK_CHUNK_ELEMENTS,
    GalleryIndex,
    ProbeRanking,
    encode,
    rank_indexed,
)

logger = logging.getLogger("fastposegait.evaluation")


def _codes_tensor(codes: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(codes, dtype=torch.long, device=device)


def rank_block(
    distances: torch.Tensor,
    probe_labels: torch.Tensor,
    gallery_labels: torch.Tensor,
    probe_views: Optional[torch.Tensor] = None,
    gallery_views: Optional[torch.Tensor] = None,
) -> ProbeRanking:
    """Rank one block of distance rows ``[c, m]`` (labels/views are integer-code tensors).

    With views, gallery entries with the probe's subject *and* view are excluded (they are not
    candidates); entries of other subjects in the same view stay. Builds a :class:`GalleryIndex`
    per call; loops over blocks should build it once and call :func:`rank_indexed`.
    """
    pl = probe_labels.cpu().numpy()
    gl = gallery_labels.cpu().numpy()
    num_labels = int(max(pl.max(initial=-1), gl.max(initial=-1))) + 1
    use_views = probe_views is not None and gallery_views is not None
    index = GalleryIndex.build(gl, num_labels, gallery_views.cpu().numpy() if use_views else None,
                               device=distances.device)
    return rank_indexed(distances, probe_labels, index, probe_views if use_views else None)


def rank_distances(
    distances: ArrayLike,
    probe_labels: Sequence,
    gallery_labels: Sequence,
    probe_views: Optional[Sequence] = None,
    gallery_views: Optional[Sequence] = None,
    chunk_size: Optional[int] = None,
) -> ProbeRanking:
    """:func:`rank_indexed` over a given distance matrix, in bounded-memory row blocks.

    Labels and views may be any sequences of comparable values (strings, ints). The matrix is
    not modified.
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
    num_labels = int(max(pl.max(initial=-1), gl.max(initial=-1))) + 1
    pl_t = _codes_tensor(pl, dist.device)
    pv_t = None
    gv = None
    if probe_views is not None and gallery_views is not None:
        if len(probe_views) != n or len(gallery_views) != m:
            raise ValueError("probe/gallery views must have one entry per distance row/column")
        pv, gv = encode(probe_views, gallery_views)
        pv_t = _codes_tensor(pv, dist.device)
    index = GalleryIndex.build(gl, num_labels, gv, device=dist.device)
    chunk = chunk_size or auto_chunk_size(m, budget=RANK_CHUNK_ELEMENTS)
    blocks = [
        rank_indexed(dist[s : s + chunk], pl_t[s : s + chunk], index, None if pv_t is None else pv_t[s : s + chunk])
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
    of each probe's remaining length and crashes when those differ (docs/upstream_differences.md,
    "CCPG protocol and ragged CMC"); here the CMC has the
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
