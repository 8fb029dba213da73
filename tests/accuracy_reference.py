"""Recompute a CLI test run's accuracy independently, to check the numbers it reported.

:func:`embed_test_split` rebuilds what ``--phase test`` evaluated: the resolved config the run
wrote (``<output>/config_test.yaml``), the model with the checkpoint's weights, the test split
through the package's loader and :func:`~fastposegait.engine.inference.extract_embeddings`.

The protocol functions below then score those embeddings with plain Python loops over the
probes and NumPy float64 distances, sharing no code with ``fastposegait/evaluation`` (the
protocols are written out from its docstrings: probe and gallery types, identical views
excluded, per-cell rounding to 2 decimals).

The CLI evaluates float32 distances; when embeddings are nearly collapsed (a model trained for
4 iterations) float32 rounding can decide which of two almost equally distant gallery entries is
nearest. For each probe, :func:`float32_rounding` measures how far a float32 evaluation of the
distances strays from the exact ones, and gallery entries within that slack of the nearest
same-subject entry are near ties. Each function returns bounds ``(low, high)``: ``low`` counts
near-tie probes as misses, ``high`` as hits. Without near ties (the usual case) ``low == high``
is the exact value and :func:`assert_reported` requires the reported number to equal it (to
1e-6, or float32 rounding where the protocol computes in float32); :func:`check_run` also
requires the bounds to stay narrow (and some exact), so the check cannot become vacuous.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import yaml

#: relative distance gap below which a probe always counts as a near tie
NEAR_TIE = 1e-9

Bounds = Tuple[float, float]


@dataclass
class EmbeddedSplit:
    embeddings: np.ndarray  # [N, C, P] float64
    subjects: List[str]
    types: List[str]
    views: List[str]
    cfg: dict


@contextlib.contextmanager
def _inside(folder: Path, threads: int) -> Iterator[None]:
    """Run in ``folder`` (relative config paths resolve as in the CLI run) with ``threads``
    intra-op threads (the CLI tests run with OMP_NUM_THREADS=1)."""
    cwd, old_threads = os.getcwd(), torch.get_num_threads()
    os.chdir(folder)
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        os.chdir(cwd)


def embed_test_split(run_dir: Path, output_dir: Path, checkpoint: Optional[Path]) -> EmbeddedSplit:
    """The test split embedded in this process as the CLI run in ``run_dir`` did.

    Args:
        run_dir: the working directory of the CLI run.
        output_dir: its ``output/<dataset>/<model>/<save_name>`` folder (holds config_test.yaml).
        checkpoint: the checkpoint file the test run restored, or None for an untrained run (the
            model is then built after seeding as the runner does).
    """
    from fastposegait.data.dataset import dataset_from_cfg
    from fastposegait.data.loader import build_loader
    from fastposegait.engine.inference import extract_embeddings
    from fastposegait.modeling import build_model

    run_dir, output_dir = Path(run_dir), Path(output_dir)
    cfg = yaml.safe_load((run_dir / output_dir / "config_test.yaml").read_text())
    ev = cfg["evaluator_cfg"]
    seed = int(ev.get("seed", 0))
    with _inside(run_dir, threads=1):
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        model = build_model(cfg["model_cfg"])
        if checkpoint is not None:
            state = torch.load(run_dir / checkpoint, map_location="cpu", weights_only=True)
            model.load_state_dict(state["model"], strict=True)
        dataset = dataset_from_cfg(cfg["data_cfg"], training=False)
        loader = build_loader(dataset, ev["sampler"], ev.get("transform"), training=False, seed=seed,
                              num_workers=0)
        embeddings = extract_embeddings(model, loader, torch.device("cpu"), len(dataset),
                                        loader.dataset.collator.time_axes, progress=False)
    records = dataset.records
    return EmbeddedSplit(embeddings.double().numpy(), [r.subject for r in records], [r.type for r in records],
                     [r.view for r in records], cfg)


# ------------------------------------------------------------------------------------------
# Distances and one probe's outcome, by loops
# ------------------------------------------------------------------------------------------


def distances(probe: np.ndarray, gallery: np.ndarray, metric: str) -> np.ndarray:
    """One probe ``[C, P]`` against a gallery ``[M, C, P]`` in float64: the mean over parts of
    the part distance (Euclidean, or 1 - cosine similarity)."""
    if metric == "euc":
        per_part = np.sqrt(((gallery - probe[None]) ** 2).sum(axis=1))  # [M, P]
        return per_part.mean(axis=1)
    if metric == "cos":
        return 1.0 - (_unit(gallery) * _unit(probe)[None]).sum(axis=1).mean(axis=1)
    raise ValueError(f"unknown metric {metric!r}")


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-2, keepdims=True), 1e-12)


def float32_rounding(probe: np.ndarray, gallery: np.ndarray, metric: str, exact: np.ndarray) -> float:
    """How far float32 arithmetic can put these distances from the exact ones: the largest
    deviation of a float32 evaluation of the documented formulas (euc: ``sqrt(|x|^2 + |y|^2 -
    2 x.y)`` per part, the form that loses most when distances are small next to the norms; cos:
    ``1 - x.y`` of unit vectors), times 4 for other summation orders."""
    x = torch.from_numpy(probe).float().T  # [P, C]
    y = torch.from_numpy(gallery).float().permute(2, 0, 1)  # [P, M, C]
    if metric == "cos":
        x, y = torch.nn.functional.normalize(x, dim=-1), torch.nn.functional.normalize(y, dim=-1)
        approx = 1 - torch.einsum("pc,pmc->pm", x, y).mean(0)
    else:
        squared = (x * x).sum(-1)[:, None] + (y * y).sum(-1) - 2 * torch.einsum("pc,pmc->pm", x, y)
        approx = squared.clamp(min=0).sqrt().mean(0)
    return 4.0 * float(np.abs(approx.double().numpy() - exact).max())


def first_match_rank(dist: np.ndarray, match: np.ndarray, slack: float = 0.0) -> Tuple[float, float]:
    """Bounds on the 1-based rank of the first same-subject entry (inf when there is none):
    other-subject entries closer by more than ``slack`` count in both bounds, those within
    ``slack`` of it (near ties) only in the upper one."""
    if not match.any():
        return float("inf"), float("inf")
    best = dist[match].min()
    others = dist[~match]
    gap = max(slack, NEAR_TIE * max(1e-3, abs(best)))
    return 1.0 + float((others < best - gap).sum()), 1.0 + float((others <= best + gap).sum())


def hit_bounds(probe: np.ndarray, gallery: np.ndarray, match: np.ndarray, metric: str, k: int) -> Tuple[int, int]:
    """(surely a hit at rank k, possibly a hit at rank k) as 0/1, for one probe."""
    dist = distances(probe, gallery, metric)
    slack = float32_rounding(probe, gallery, metric, dist)
    best_rank, worst_rank = first_match_rank(dist, match, slack)
    return int(worst_rank <= k), int(best_rank <= k)


def hits_over_probes(emb: np.ndarray, subjects: Sequence[str], probes: Sequence[int], gallery: Sequence[int],
                     metric: str, k: int) -> Tuple[int, int]:
    """How many ``probes`` have a same-subject entry among their ``k`` nearest ``gallery``
    entries: the (lowest, highest) count over the orders that near ties allow."""
    lo = hi = 0
    for i in probes:
        match = np.array([subjects[j] == subjects[i] for j in gallery])
        a, b = hit_bounds(emb[i], emb[list(gallery)], match, metric, k)
        lo, hi = lo + a, hi + b
    return lo, hi


# ------------------------------------------------------------------------------------------
# Protocols
# ------------------------------------------------------------------------------------------

#: single-view gallery protocols: condition -> probe types, and the gallery types
INDOOR = {
    "CASIA-B": ({"NM": ("nm-05", "nm-06"), "BG": ("bg-01", "bg-02"), "CL": ("cl-01", "cl-02")},
                ("nm-01", "nm-02", "nm-03", "nm-04")),
    "OUMVLP": ({"NM": ("00",)}, ("01",)),
}


def indoor_single_view(split: EmbeddedSplit, dataset: str, metric: str) -> Dict[str, Bounds]:
    """``<COND>@R1``: for each probe view, the mean over the other gallery views of the cell's
    rank-1 accuracy (x100, rounded to 2 decimals); then the mean over probe views."""
    conditions, gallery_types = INDOOR[dataset]
    emb, subjects, types, views = split.embeddings, split.subjects, split.types, split.views
    all_views = sorted(set(views))
    out = {}
    for name, probe_types in conditions.items():
        per_probe_view_lo, per_probe_view_hi = [], []
        for v1 in all_views:
            probes = [i for i in range(len(types)) if types[i] in probe_types and views[i] == v1]
            assert probes, f"no {name} probe in view {v1}"
            cells_lo, cells_hi = [], []
            for v2 in all_views:
                if v2 == v1:
                    continue
                gallery = [j for j in range(len(types)) if types[j] in gallery_types and views[j] == v2]
                hits_lo = hits_hi = 0
                for i in probes:
                    match = np.array([subjects[j] == subjects[i] for j in gallery])
                    lo, hi = hit_bounds(emb[i], emb[gallery], match, metric, 1)
                    hits_lo, hits_hi = hits_lo + lo, hits_hi + hi
                cells_lo.append(round(100.0 * hits_lo / len(probes), 2))
                cells_hi.append(round(100.0 * hits_hi / len(probes), 2))
            per_probe_view_lo.append(sum(cells_lo) / len(cells_lo))
            per_probe_view_hi.append(sum(cells_hi) / len(cells_hi))
        out[f"{name}@R1"] = (float(np.mean(per_probe_view_lo)), float(np.mean(per_probe_view_hi)))
    return out


def grew_local(split: EmbeddedSplit, metric: str, ranks: Sequence[int] = (1, 5)) -> Dict[str, Bounds]:
    """``Rank-k``: probes of type 02 against the type 01 gallery; x100, rounded to 2 decimals."""
    emb, subjects, types = split.embeddings, split.subjects, split.types
    probes = [i for i, t in enumerate(types) if t == "02"]
    gallery = [j for j, t in enumerate(types) if t == "01"]
    assert probes and gallery
    out = {}
    for k in ranks:
        lo, hi = hits_over_probes(emb, subjects, probes, gallery, metric, k)
        out[f"Rank-{k}"] = (round(100.0 * lo / len(probes), 2), round(100.0 * hi / len(probes), 2))
    return out


def gait3d(split: EmbeddedSplit, metric: str, partition: Path, ranks: Sequence[int] = (1, 5, 10)) -> Dict[str, Bounds]:
    """``Rank-k``: the PROBE_SET sequences against every other test sequence; probes without a
    same-subject gallery entry are left out; x100, not rounded. ``mAP`` (mean over probes of the
    mean over matches of precision at the match) and ``mINP`` (matches / position of the last
    match), x100, only when no probe has a near tie between a match and a non-match (either
    ordering would change them)."""
    probe_set = set(json.loads(Path(partition).read_text())["PROBE_SET"])
    emb, subjects = split.embeddings, split.subjects
    keys = [f"{s}-{t}-{v}" for s, t, v in zip(subjects, split.types, split.views)]
    probes = [i for i, key in enumerate(keys) if key in probe_set]
    gallery = [j for j, key in enumerate(keys) if key not in probe_set]
    valid = [i for i in probes if any(subjects[j] == subjects[i] for j in gallery)]
    assert valid, "no Gait3D probe has a gallery match"
    out = {}
    for k in ranks:
        lo, hi = hits_over_probes(emb, subjects, valid, gallery, metric, k)
        out[f"Rank-{k}"] = (100.0 * lo / len(valid), 100.0 * hi / len(valid))
    aps, inps = [], []
    for i in valid:
        dist = distances(emb[i], emb[gallery], metric)
        slack = float32_rounding(emb[i], emb[gallery], metric, dist)
        match = [subjects[j] == subjects[i] for j in gallery]
        if any(abs(dist[a] - dist[b]) <= slack for a in range(len(gallery)) if match[a]
               for b in range(len(gallery)) if not match[b]):
            return out  # the order of matches and non-matches is not determined: no mAP / mINP
        order = sorted(range(len(gallery)), key=lambda j: (dist[j], j))
        positions = [rank + 1 for rank, j in enumerate(order) if match[j]]
        aps.append(sum((n + 1) / pos for n, pos in enumerate(positions)) / len(positions))
        inps.append(len(positions) / positions[-1])
    out["mAP"] = (100.0 * float(np.mean(aps)),) * 2
    out["mINP"] = (100.0 * float(np.mean(inps)),) * 2
    return out


def reference_accuracy(split: EmbeddedSplit, eval_func: str, partition: Optional[Path] = None) -> Dict[str, Bounds]:
    """The bounds of every rank-k scalar the run's protocol reports, keyed as in its JSON."""
    dataset = split.cfg["data_cfg"]["test_dataset_name"] or split.cfg["data_cfg"]["dataset_name"]
    metric = split.cfg["evaluator_cfg"].get("metric", "euc")
    assert not split.cfg["evaluator_cfg"].get("cross_view_gallery", False), "cross-view gallery: not written out here"
    if eval_func == "evaluate_indoor_dataset":
        values = indoor_single_view(split, dataset, metric)
    elif eval_func == "evaluate_real_scene":
        values = grew_local(split, metric)
    elif eval_func == "evaluate_Gait3D":
        values = gait3d(split, metric, partition or Path(split.cfg["data_cfg"]["dataset_partition"]))
    else:
        raise ValueError(f"no reference for {eval_func}")
    return {f"scalar/test_accuracy/{k}": v for k, v in values.items()}


def assert_reported(report: dict, reference: Dict[str, Bounds], tolerance: float = 1e-6) -> None:
    """Every referenced scalar of a test-run JSON lies within its bounds (equals the value
    when there is no near tie)."""
    results = report["results"]
    assert set(reference) <= set(results), (sorted(reference), sorted(results))
    for key, (low, high) in reference.items():
        value = results[key]
        assert low - tolerance <= value <= high + tolerance, f"{key}: reported {value}, recomputed [{low}, {high}]"


def check_run(run_dir: Path, output_dir: Path, checkpoint: Optional[Path], report_path: Path) -> Dict[str, Bounds]:
    """Embed, recompute and compare with the JSON a test run wrote; returns the bounds."""
    report = json.loads((Path(run_dir) / report_path).read_text())
    split = embed_test_split(run_dir, output_dir, checkpoint)
    assert report["num_sequences"] == len(split.subjects) == split.embeddings.shape[0]
    reference = reference_accuracy(split, report["eval_func"])
    # float32 CMC (Gait3D) carries float32 rounding
    assert_reported(report, reference, tolerance=1e-4 if report["eval_func"] == "evaluate_Gait3D" else 1e-6)
    # not vacuous: near ties leave each value within half the scale, and some values are exact
    assert all(high - low <= 50.0 for low, high in reference.values()), f"too many near ties: {reference}"
    assert any(low == high for low, high in reference.values()), f"too many near ties: {reference}"
    return reference
