"""Brute-force reference implementations of the distances, metrics and protocols, for the tests.

Deliberately naive: plain Python loops over probes, views and parts, float64 NumPy, and a
stable per-probe sort (ties: lower gallery index first). Shares no code with the package.
"""
import math

import numpy as np


def distance(x, y, metric):
    """D[i, j] (docs/upstream_differences.md, "Distance precision") with explicit loops over probes,
    gallery entries and parts."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, _, parts = x.shape
    m = y.shape[0]
    out = np.zeros((n, m))
    for i in range(n):
        for j in range(m):
            total = 0.0
            for p in range(parts):
                a, b = x[i, :, p], y[j, :, p]
                if metric == "euc":
                    total += math.sqrt(max(0.0, float(a @ a + b @ b - 2 * a @ b)))
                else:
                    a = a / max(np.linalg.norm(a), 1e-12)
                    b = b / max(np.linalg.norm(b), 1e-12)
                    total += float(a @ b)
            out[i, j] = total / parts if metric == "euc" else 1 - total / parts
    return out


def rank_probe(row, probe_label, gallery_labels, probe_view=None, gallery_views=None):
    """Walk one probe's stably sorted gallery list; returns positions of matches and list size."""
    keep = [
        j
        for j in range(len(gallery_labels))
        if probe_view is None or not (gallery_labels[j] == probe_label and gallery_views[j] == probe_view)
    ]
    order = sorted(keep, key=lambda j: (row[j], j))
    positions = [k + 1 for k, j in enumerate(order) if gallery_labels[j] == probe_label]
    ap = sum((i + 1) / k for i, k in enumerate(positions)) / len(positions) if positions else None
    inp = len(positions) / positions[-1] if positions else None
    return {"positions": positions, "size": len(order), "ap": ap, "inp": inp, "order": order}


def acc_map(dist, pl, gl, pv=None, gv=None, rank=1):
    hits, aps = [], []
    for i in range(len(pl)):
        r = rank_probe(dist[i], pl[i], gl, None if pv is None else pv[i], gv)
        assert r["size"] > 0
        hits.append(1.0 if r["positions"] and r["positions"][0] <= rank else 0.0)
        if r["positions"]:
            aps.append(r["ap"])
    return float(np.mean(hits)), (float(np.mean(aps)) if aps else float("nan"))


def cmc_ap_inp(dist, pl, gl, max_rank=50, pv=None, gv=None):
    """evaluate_rank (no views) / evaluate_many (views = cameras) with padded rows
    (docs/upstream_differences.md, "CCPG protocol and ragged CMC")."""
    max_rank = min(max_rank, len(gl))
    rows, aps, inps, sizes = [], [], [], []
    for i in range(len(pl)):
        r = rank_probe(dist[i], pl[i], gl, None if pv is None else pv[i], gv)
        if not r["positions"]:
            continue
        sizes.append(r["size"])
        rows.append(r["positions"][0])
        aps.append(r["ap"])
        inps.append(r["inp"])
    if pv is not None:
        max_rank = min(max_rank, max(sizes))
    cmc = np.array([[1.0 if first <= k else 0.0 for k in range(1, max_rank + 1)] for first in rows])
    return cmc.astype(np.float32).sum(0) / np.float32(len(rows)), aps, inps


def indoor_single(feats, labels, types, views, conditions, gallery_types, metric, rank=1):
    """Per condition: the V x V rank-``rank`` accuracy table and the per-view exclusion vector,
    loop by loop (rank 1: the nearest entry, the first minimum; rank r: a match among the first
    r of the stably sorted (distance, index) list)."""
    vs = sorted(set(views))
    out = {}
    for name, ptypes in conditions:
        acc = np.zeros((len(vs), len(vs)))
        for a, v1 in enumerate(vs):
            probes = [i for i in range(len(labels)) if types[i] in ptypes and views[i] == v1]
            for b, v2 in enumerate(vs):
                gallery = [j for j in range(len(labels)) if types[j] in gallery_types and views[j] == v2]
                d = distance(feats[probes], feats[gallery], metric)
                hits = 0
                for k, i in enumerate(probes):
                    if rank == 1:
                        nearest = gallery[int(np.argmin(d[k]))]  # argmin = first minimum
                        hits += labels[nearest] == labels[i]
                    else:
                        order = sorted(range(len(gallery)), key=lambda j: (d[k][j], j))[:rank]
                        hits += any(labels[gallery[j]] == labels[i] for j in order)
                acc[a, b] = np.round(hits * 100 / len(probes), 2)
        out[name] = (acc, (acc.sum(1) - np.diag(acc)) / (len(vs) - 1))
    return out


def indoor_cross(feats, labels, types, views, conditions, gallery_types, metric):
    vs = sorted(set(views))
    gallery = [j for j in range(len(labels)) if types[j] in gallery_types]
    gl = [labels[j] for j in gallery]
    gv = [views[j] for j in gallery]
    out = {}
    for name, ptypes in conditions:
        r1, maps = [], []
        for v in vs:
            probes = [i for i in range(len(labels)) if types[i] in ptypes and views[i] == v]
            d = distance(feats[probes], feats[gallery], metric)
            acc, mean_ap = acc_map(d, [labels[i] for i in probes], gl, [v] * len(probes), gv)
            r1.append(np.round(acc * 100, 2))
            maps.append(np.round(mean_ap * 100, 2))
        out[name] = (np.array(r1), np.array(maps))
    return out


def frac(x):
    return x - math.floor(x)


def worked_example(subjects, types, views, offset):
    """The worked examples' test set: ``subjects x types x views`` in listing order with
    i = 1, 2, ...: x0 = 2.5 s + 2 frac(sqrt(18 i + 0.5)) + offset[type], x1 = 1 + 2 frac(sqrt(31 i + 0.5))
    (s the subject's position), as float32 ``[N, 2, 1]``."""
    rows, labels, type_list, view_list = [], [], [], []
    i = 0
    for s, subject in enumerate(subjects):
        for t in types:
            for v in views:
                i += 1
                rows.append([2.5 * s + 2 * frac(math.sqrt(18 * i + 0.5)) + offset[t],
                             1 + 2 * frac(math.sqrt(31 * i + 0.5))])
                labels.append(subject)
                type_list.append(t)
                view_list.append(v)
    emb = np.asarray(rows, dtype=np.float64).astype(np.float32)[:, :, None]
    return {"embeddings": emb, "labels": labels, "types": type_list, "views": view_list}


def subset(data, keep):
    """The sequences of a test set ``data`` where the bool mask ``keep`` is true."""
    keep = np.asarray(keep)
    return {"embeddings": data["embeddings"][keep], **{k: [data[k][i] for i in np.flatnonzero(keep)]
                                                        for k in ("labels", "types", "views")}}
