"""An "upstream-style" evaluation, the baseline of ``eval_benchmark.py``.

Written for this benchmark from a description of upstream's evaluator (distances, ranking
and protocols; no upstream code was copied). It keeps upstream's *structure*, which is what
makes it slow, and nothing else:

* distances as ``cuda_dist`` computes them, here on the CPU: a loop over the P parts, each part
  one matrix product ``(|x|² + |y|²) − 2·x·y`` (or ``x̂·ŷ`` for ``cos``), summed and divided by P;
* the single-view-gallery protocol loops over every (condition, probe view, gallery view) cell,
  computes that cell's distance matrix and takes each probe's nearest gallery entry (``topk`` 1);
* the cross-view-gallery protocol calls a ``compute_ACC_mAP`` per probe view, which loops over
  the probes in Python, masks the gallery and ``np.argsort``-s the probe's row;
* the GREW protocols ``np.argsort`` the whole probe × gallery matrix (materialised: for the
  submission 24,000 × 12,000 distances plus their int64 order, about 3.5 GB);
* Gait3D's ``evaluate_rank`` argsorts the matrix and loops over probes for CMC, AP and INP.

One deliberate difference: every sort is ``kind="stable"`` (and the nearest-entry pick takes the
lowest index), because FastPoseGait defines the order of equal distances that way (upstream
leaves it undefined; docs/upstream_differences.md, "Ties in rankings"). Without it the two implementations could legitimately disagree
on exact ties and the agreement check of the benchmark would mean nothing.

The functions take the evaluator's input ``data = {'embeddings': [N, C, P], 'labels', 'types',
'views'}`` and return upstream's scalar names, like FastPoseGait's evaluators.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

PREFIX = "scalar/test_accuracy/"

#: Probe conditions and gallery types of the CASIA-B and OUMVLP protocols.
SINGLE_VIEW = {
    "CASIA-B": ([("NM", ("nm-05", "nm-06")), ("BG", ("bg-01", "bg-02")), ("CL", ("cl-01", "cl-02"))],
                ("nm-01", "nm-02", "nm-03", "nm-04")),
    "OUMVLP": ([("NM", ("00",))], ("01",)),
}
CROSS_VIEW = {
    "CASIA-B": ([("NM", ("nm-01",)), ("BG", ("bg-01",)), ("CL", ("cl-01",))], ("nm-02", "bg-02", "cl-02")),
    "OUMVLP": ([("NM", ("00",))], ("01",)),
}


def cuda_dist(x: np.ndarray, y: np.ndarray, metric: str = "euc") -> torch.Tensor:
    """Probe × gallery distances ``[n, m]``, part by part, averaged over the P parts."""
    xt = torch.from_numpy(np.ascontiguousarray(x)).float()
    yt = torch.from_numpy(np.ascontiguousarray(y)).float()
    if metric == "cos":
        xt = F.normalize(xt, p=2, dim=1)
        yt = F.normalize(yt, p=2, dim=1)
    num_parts = xt.shape[2]
    dist = torch.zeros(xt.shape[0], yt.shape[0])
    for p in range(num_parts):
        xp, yp = xt[:, :, p], yt[:, :, p]
        if metric == "cos":
            dist += torch.matmul(xp, yp.t())
        else:
            squared = (xp**2).sum(1)[:, None] + (yp**2).sum(1)[None, :] - 2 * torch.matmul(xp, yp.t())
            dist += torch.sqrt(F.relu(squared))
    return 1 - dist / num_parts if metric == "cos" else dist / num_parts


def compute_acc_map(
    dist: np.ndarray,
    q_ids: np.ndarray,
    g_ids: np.ndarray,
    q_views: Optional[np.ndarray] = None,
    g_views: Optional[np.ndarray] = None,
    rank: int = 1,
) -> Tuple[float, float]:
    """Rank-``rank`` accuracy over all probes and mAP over probes with a match, one probe at a time."""
    hits, aps = [], []
    for i in range(len(q_ids)):
        row, ids = dist[i], g_ids
        if q_views is not None:
            keep = (g_ids != q_ids[i]) | (g_views != q_views[i])
            row, ids = row[keep], g_ids[keep]
        assert len(row) > 0, "a probe has no gallery entry left"
        order = np.argsort(row, kind="stable")
        good = ids[order] == q_ids[i]
        hits.append(1.0 if good[:rank].any() else 0.0)
        if good.any():
            positions = np.flatnonzero(good) + 1
            aps.append(np.mean(np.arange(1, len(positions) + 1) / positions))
    return float(np.mean(hits)), float(np.mean(aps)) if aps else float("nan")


def evaluate_rank(
    dist: np.ndarray, p_ids: np.ndarray, g_ids: np.ndarray, max_rank: int = 50
) -> Tuple[np.ndarray, List[float], List[float]]:
    """CMC over probes with a match (float32), per-probe AP and INP; probes without match skipped."""
    num_p, num_g = dist.shape
    max_rank = min(max_rank, num_g)
    order = np.argsort(dist, axis=1, kind="stable")
    matches = (g_ids[order] == p_ids[:, None]).astype(np.int32)
    cmcs, aps, inps = [], [], []
    for i in range(num_p):
        raw = matches[i]
        if not raw.any():
            continue
        cmc = raw.cumsum()
        inps.append(raw.sum() / (np.max(np.where(raw == 1)) + 1.0))
        cmc[cmc > 1] = 1
        cmcs.append(cmc[:max_rank])
        precision = raw.cumsum() / (np.arange(num_g) + 1.0)
        aps.append(float((precision * raw).sum() / raw.sum()))
    assert cmcs, "no probe has a gallery match"
    return np.asarray(cmcs).astype(np.float32).sum(0) / len(cmcs), aps, inps


def _columns(data: Mapping[str, Any]) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return (np.asarray(data["embeddings"]), np.asarray(data["labels"]), np.asarray(data["types"]),
            np.asarray(data["views"]))


def evaluate_indoor_dataset(
    data: Mapping[str, Any], dataset: str, metric: str = "euc", cross_view_gallery: bool = False
) -> Dict[str, Any]:
    """CASIA-B / OUMVLP, single-view gallery (per-cell loops) or cross-view gallery (per-probe loops)."""
    feats, labels, types, views = _columns(data)
    view_list = sorted(set(views.tolist()))
    num_views = len(view_list)
    results: Dict[str, Any] = {}
    if not cross_view_gallery:
        conditions, gallery_types = SINGLE_VIEW[dataset]
        for name, probe_types in conditions:
            acc = np.zeros((num_views, num_views))
            for a, v1 in enumerate(view_list):
                probe = np.isin(types, probe_types) & (views == v1)
                for b, v2 in enumerate(view_list):
                    gallery = np.isin(types, gallery_types) & (views == v2)
                    dist = cuda_dist(feats[probe], feats[gallery], metric)
                    # upstream takes topk(1); argmin is the same pick with the lowest index on ties
                    nearest = dist.argmin(1).numpy()
                    hits = np.sum(labels[gallery][nearest] == labels[probe])
                    acc[a, b] = np.round(hits * 100 / probe.sum(), 2)
            # identical views excluded: the diagonal subtracted cell by cell, then the row summed
            # (so [33.33, 100] gives exactly 100.0, as the original's evaluator does; worked example
            # E3 in tests/evaluation/test_protocols.py)
            per_view = np.sum(acc - np.diag(np.diag(acc)), 1) / (num_views - 1)
            results[PREFIX + f"{name}@R1"] = float(np.mean(per_view))
            results[f"table/{name}@R1"] = per_view.tolist()
        return results
    conditions, gallery_types = CROSS_VIEW[dataset]
    gallery = np.isin(types, gallery_types)
    for name, probe_types in conditions:
        rank1, maps = [], []
        for v in view_list:
            probe = np.isin(types, probe_types) & (views == v)
            dist = cuda_dist(feats[probe], feats[gallery], metric).numpy()
            acc, mean_ap = compute_acc_map(dist, labels[probe], labels[gallery], views[probe], views[gallery])
            rank1.append(np.round(acc * 100, 2))
            maps.append(np.round(mean_ap * 100, 2))
        results[PREFIX + f"{name}-Rank@1"] = float(np.mean(rank1))
        results[PREFIX + f"{name}-mAP"] = float(np.mean(maps))
        results[f"table/{name}-Rank@1"] = [float(v) for v in rank1]
        results[f"table/{name}-mAP"] = [float(v) for v in maps]
    return results


def evaluate_real_scene(data: Mapping[str, Any], dataset: str, metric: str = "euc") -> Dict[str, Any]:
    """GREW local protocol: probes ``02`` vs gallery ``01``, Rank-1…20 from a full sort."""
    feats, labels, types, _ = _columns(data)
    probe, gallery = types == "02", types == "01"
    dist = cuda_dist(feats[probe], feats[gallery], metric).numpy()
    order = np.argsort(dist, axis=1, kind="stable")[:, :20]
    found = np.cumsum(labels[gallery][order] == labels[probe][:, None], 1) > 0
    acc = np.round(found.sum(0) * 100 / probe.sum(), 2)
    return {PREFIX + "Rank-1": float(acc[0]), PREFIX + "Rank-5": float(acc[4]), "table/Rank-k": acc.tolist()}


def grew_submission_rows(data: Mapping[str, Any], dataset: str, metric: str = "euc") -> List[str]:
    """GREW submission CSV lines (header + one per probe): probes ``03`` vs gallery ``01``+``02``."""
    feats, labels, types, views = _columns(data)
    probe, gallery = types == "03", np.isin(types, ("01", "02"))
    dist = cuda_dist(feats[probe], feats[gallery], metric).numpy()
    order = np.argsort(dist, axis=1, kind="stable")[:, :20]
    subjects = labels[gallery][order]
    lines = ["videoId," + ",".join(f"rank{k}" for k in range(1, 21))]
    for video, row in zip(views[probe], subjects):
        lines.append(",".join([str(video), *(str(int(s)) for s in row)]))
    return lines


def evaluate_gait3d(
    data: Mapping[str, Any], dataset: str, metric: str = "euc", dataset_partition: Optional[str] = None
) -> Dict[str, Any]:
    """Gait3D: PROBE_SET sequences vs every other test sequence; Rank-1/5/10, mAP, mINP."""
    feats, labels, types, views = _columns(data)
    with open(dataset_partition, encoding="utf-8") as f:
        probe_set = set(json.load(f)["PROBE_SET"])
    probe = np.asarray([f"{s}-{t}-{v}" in probe_set for s, t, v in zip(labels, types, views)])
    dist = cuda_dist(feats[probe], feats[~probe], metric).numpy()
    cmc, aps, inps = evaluate_rank(dist, labels[probe], labels[~probe])
    results: Dict[str, Any] = {PREFIX + f"Rank-{k}": float(cmc[k - 1] * np.float32(100)) for k in (1, 5, 10)}
    results[PREFIX + "mAP"] = float(np.mean(aps)) * 100
    results[PREFIX + "mINP"] = float(np.mean(inps)) * 100
    return results


def scalars(results: Mapping[str, Any]) -> Dict[str, float]:
    """The ``scalar/…`` entries of an evaluator's result."""
    return {k: float(v) for k, v in results.items() if k.startswith("scalar/")}


def per_view_tables(results: Mapping[str, Any], names: Sequence[str]) -> Dict[str, List[float]]:
    return {n: list(results[n]) for n in names if n in results}
