"""Test-phase evaluation time (after features) on benchmark-sized sets, against an upstream-style baseline.

One command::

    python benchmarks/eval_benchmark.py            # real sizes (about 10 minutes on 2 shared CPU cores)
    python benchmarks/eval_benchmark.py --tiny     # CI: tiny sets, a few seconds

For every case it generates synthetic features with identity structure (see
:func:`make_features`), then times

* **ours**: the registered evaluator called exactly as ``Runner.run_test`` calls it
  (``run_evaluator(EVALUATORS.get(eval_func), embeddings, labels, types, views, dataset,
  options)``) — the median of ``--repeats`` runs (``--big-repeats`` for the OUMVLP-sized sets);
* **baseline**: ``benchmarks/upstream_eval.py``, an implementation with upstream's structure
  (per-part ``cuda_dist`` on the CPU, per-cell / per-probe Python loops, ``np.argsort``), run
  once.

and checks that both give the same numbers: every returned ``scalar/…`` (and the per-view
tables, or the GREW submission file line by line) within 1e-6. Where the baseline would take
too long at full size it runs on a random subsample of the probes (seeded; the whole gallery
is kept) and its time is extrapolated linearly in the number of probes — such rows say
"extrapolated" and give the subsample. The agreement check then compares baseline and ours on
that same subsample (ours is also timed on the full set, which is what the table reports).

Peak memory is the growth of the process's resident set during the call (Linux: the
``VmHWM`` high-water mark, reset before each call through ``/proc/self/clear_refs``; elsewhere
``ru_maxrss``, which cannot be reset and is reported as such).

Features are float32 **quantised to multiples of 1/16** (clipped to [-4, 4)): every product,
squared norm and squared distance is then exact in float32 whatever the summation order, so
ours and the baseline compute bit-identical distances and the agreement check tests the
protocol and ranking logic. With arbitrary floats, MKL sums a matrix product in an order that
depends on the matrix shapes (ours computes one probe × whole-gallery block, upstream one
matrix per cell), the last bit differs, and roughly one near-tied nearest-neighbour decision in
10^4 can flip — a legitimate difference of float rounding, not of the protocol. The metric is
``euc`` everywhere for the same reason (``cos`` costs the same: one matrix product per part).

Writes ``benchmarks/results/eval_benchmark.json`` (``--out``) and prints a table. Timings are
wall-clock on whatever else the machine is doing; the JSON records the CPU, the core count and
the load average before and after.
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import upstream_eval  # noqa: E402
from machine import machine_info  # noqa: E402
from fastposegait.engine.inference import run_evaluator  # noqa: E402
from fastposegait.evaluation import protocols  # noqa: E402,F401 - registers the evaluators
from fastposegait.registry import EVALUATORS  # noqa: E402

CASIA_TYPES = ["bg-01", "bg-02", "cl-01", "cl-02", "nm-01", "nm-02", "nm-03", "nm-04", "nm-05", "nm-06"]
CASIA_VIEWS = [f"{v:03d}" for v in range(0, 181, 18)]
OUMVLP_VIEWS = ["000", "015", "030", "045", "060", "075", "090", "180", "195", "210", "225", "240", "255", "270"]
QUANTUM = 1 / 16
TOLERANCE = 1e-6


# --------------------------------------------------------------------------------------------
# Synthetic evaluation sets
# --------------------------------------------------------------------------------------------


@dataclass
class EvalSet:
    """Evaluator input plus what the protocol needs besides it."""

    data: Dict[str, Any]  # embeddings (float32 [N, C, P]), labels, types, views (index order)
    dataset: str  # test_dataset_name
    partition: Optional[Dict[str, Any]] = None  # written to a file for Gait3D
    description: str = ""


def make_features(
    rng: np.random.Generator,
    subject: np.ndarray,
    view: np.ndarray,
    condition: np.ndarray,
    shape: Tuple[int, int],
    weights: Tuple[float, float, float, float, float],
) -> np.ndarray:
    """Features ``[N, C, P]`` with identity structure, quantised to multiples of 1/16.

    ``x = w_s·subject + w_v·view + w_sv·(subject, view) + w_c·(subject, condition) + w_n·noise``
    with every term standard normal, scaled to unit variance: sequences of one subject are
    close, a view change moves them (the subject-specific part of it makes cross-view harder),
    a condition (bag, coat) moves them too, and the noise makes accuracies neither 0 nor 100.
    """
    channels, parts = shape
    w_s, w_v, w_sv, w_c, w_n = weights
    norm = float(np.sqrt(w_s**2 + w_v**2 + w_sv**2 + w_c**2 + w_n**2))
    num_subjects, num_views, num_conditions = subject.max() + 1, view.max() + 1, condition.max() + 1

    def table(rows: int) -> np.ndarray:
        return rng.standard_normal((rows, channels, parts), dtype=np.float32)

    out = table(len(subject)) * np.float32(w_n)
    out += table(num_subjects)[subject] * np.float32(w_s)
    if w_v:
        out += table(num_views)[view] * np.float32(w_v)
    if w_sv:
        out += table(num_subjects * num_views)[subject * num_views + view] * np.float32(w_sv)
    if w_c and num_conditions > 1:
        effect = table(num_subjects * num_conditions)
        effect[::num_conditions] = 0  # condition 0 (normal walking) has no offset
        out += effect[subject * num_conditions + condition] * np.float32(w_c)
    out *= np.float32(1.5 / norm)
    np.clip(np.round(out / QUANTUM) * QUANTUM, -4, 4 - QUANTUM, out=out)
    return out


def casia_b_set(
    rng: np.random.Generator, num_subjects: int, views: Sequence[str], shape: Tuple[int, int], subject_weight: float
) -> EvalSet:
    """CASIA-B test split: subjects × 10 types × views, in index order (subject, type, view)."""
    s, t, v = (a.ravel() for a in np.meshgrid(np.arange(num_subjects), np.arange(len(CASIA_TYPES)),
                                                np.arange(len(views)), indexing="ij"))
    condition = np.asarray([{"bg": 1, "cl": 2}.get(CASIA_TYPES[i][:2], 0) for i in t])
    feats = make_features(rng, s, v, condition, shape, (subject_weight, 0.1, 0.2, 0.15, 0.9))
    data = {"embeddings": feats, "labels": [f"{75 + i:03d}" for i in s], "types": [CASIA_TYPES[i] for i in t],
            "views": [views[i] for i in v]}
    return EvalSet(data, "CASIA-B", description=f"{num_subjects} subjects x 10 types x {len(views)} views")


def oumvlp_set(
    rng: np.random.Generator, num_subjects: int, views: Sequence[str], shape: Tuple[int, int], subject_weight: float
) -> EvalSet:
    """OUMVLP test split: subjects × types 00/01 × views (even ids, 5 digits)."""
    s, t, v = (a.ravel() for a in np.meshgrid(np.arange(num_subjects), np.arange(2), np.arange(len(views)),
                                                indexing="ij"))
    feats = make_features(rng, s, v, np.zeros_like(s), shape, (subject_weight, 0.1, 0.2, 0.0, 0.9))
    data = {"embeddings": feats, "labels": [f"{2 * i + 2:05d}" for i in s], "types": [f"{i:02d}" for i in t],
            "views": [views[i] for i in v]}
    return EvalSet(data, "OUMVLP", description=f"{num_subjects} subjects x 2 types x {len(views)} views")


def grew_set(
    rng: np.random.Generator, num_subjects: int, num_probes: int, shape: Tuple[int, int], subject_weight: float
) -> EvalSet:
    """GREW test split: every subject's gallery sequences ``01`` and ``02``, then the ``probe``
    pseudo-subject's ``03`` sequences (each of a hidden random subject) under sorted video ids."""
    hidden = rng.integers(0, num_subjects, num_probes)
    subject = np.concatenate([np.repeat(np.arange(num_subjects), 2), hidden])
    sequence = np.arange(len(subject))  # in the wild every sequence has its own camera/scene
    feats = make_features(rng, subject, sequence, np.zeros_like(subject), shape, (subject_weight, 0.0, 0.0, 0.0, 1.0))
    video_ids = sorted({f"{x:08x}" for x in rng.choice(2**32, size=num_probes * 2, replace=False)})[:num_probes]
    labels = [f"{i + 1:05d}" for i in subject[: 2 * num_subjects]] + ["probe"] * num_probes
    types = ["01", "02"] * num_subjects + ["03"] * num_probes
    views = [f"{s:05d}{k}" for s in range(num_subjects) for k in ("a", "b")] + video_ids
    data = {"embeddings": feats, "labels": labels, "types": types, "views": views}
    return EvalSet(data, "GREW", description=f"{num_subjects} subjects x 2 gallery + {num_probes} probes")


def gait3d_set(
    rng: np.random.Generator, num_subjects: int, mean_gallery: float, shape: Tuple[int, int], subject_weight: float
) -> EvalSet:
    """Gait3D test split: per subject one PROBE_SET sequence and a Poisson number of others
    (some subjects have none: their probe is skipped, as in Gait3D)."""
    labels, types, views, subject, probe_set = [], [], [], [], []
    for s in range(num_subjects):
        count = 1 + int(rng.poisson(mean_gallery))
        for k in range(count):
            labels.append(f"{3000 + s:04d}")
            types.append(f"camid{rng.integers(1, 12)}_videoid{k + 1}")
            views.append(f"seq{k}")
            subject.append(s)
        probe_set.append(f"{labels[-count]}-{types[-count]}-{views[-count]}")
    subject_a = np.asarray(subject)
    feats = make_features(rng, subject_a, np.arange(len(subject_a)), np.zeros_like(subject_a), shape,
                          (subject_weight, 0.0, 0.0, 0.0, 1.0))
    data = {"embeddings": feats, "labels": labels, "types": types, "views": views}
    partition = {"TRAIN_SET": [], "TEST_SET": sorted(set(labels)), "PROBE_SET": probe_set}
    return EvalSet(data, "Gait3D", partition,
                   description=f"{num_subjects} subjects, {num_subjects} probes vs {len(labels) - num_subjects} gallery")


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------


class PeakMemory:
    """Growth of the resident set during a block, in MB (Linux VmHWM reset per block)."""

    def __init__(self) -> None:
        self.resettable = self._reset()
        self.mb = float("nan")

    @staticmethod
    def _status(field_name: str) -> Optional[int]:
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith(field_name + ":"):
                        return int(line.split()[1])  # kB
        except OSError:
            return None
        return None

    @staticmethod
    def _reset() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    def __enter__(self) -> "PeakMemory":
        gc.collect()
        self.resettable = self._reset()
        self.start_kb = self._status("VmRSS") if self.resettable else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.resettable:
            peak = self._status("VmHWM")
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.mb = max(0.0, ((peak or 0) - (self.start_kb or 0)) / 1024)


@dataclass
class Timed:
    seconds: List[float] = field(default_factory=list)
    peak_mb: List[float] = field(default_factory=list)
    result: Any = None


def timed(fn: Callable[[], Any], repeats: int) -> Timed:
    out = Timed()
    for _ in range(repeats):
        with PeakMemory() as memory:
            start = time.perf_counter()
            result = fn()
            out.seconds.append(time.perf_counter() - start)
        out.peak_mb.append(memory.mb)
        out.result = result
        del result
    return out


def subsample(evalset: EvalSet, probe_rows: np.ndarray, keep: np.ndarray) -> EvalSet:
    """The set with only ``keep`` of its ``probe_rows`` (all other rows kept, order preserved)."""
    drop = np.setdiff1d(probe_rows, keep)
    mask = np.ones(len(evalset.data["labels"]), dtype=bool)
    mask[drop] = False
    data = {"embeddings": evalset.data["embeddings"][mask],
            **{k: [x for x, m in zip(evalset.data[k], mask) if m] for k in ("labels", "types", "views")}}
    partition = evalset.partition
    return EvalSet(data, evalset.dataset, partition, evalset.description)


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    protocol: str  # what the table calls it
    make: Callable[[np.random.Generator], EvalSet]
    eval_func: str
    options: Dict[str, Any]
    baseline: Callable[..., Any]
    probe_types: Tuple[str, ...]  # rows that are probes (for subsampling / counting)
    baseline_probes: Optional[int] = None  # subsample size for the baseline; None = all
    big: bool = False  # use --big-repeats
    compare_tables: Tuple[str, ...] = ()


def cases(tiny: bool) -> List[Case]:
    if tiny:
        casia = dict(num_subjects=4, views=CASIA_VIEWS[:3])
        oumvlp = dict(num_subjects=8, views=OUMVLP_VIEWS[:4])
        grew = dict(num_subjects=30, num_probes=40)
        gait3d = dict(num_subjects=25, mean_gallery=3.0)
        sub = dict(casia=None, ou_single=10, ou_cross=10, grew_local=None, grew_sub=16, gait3d=None)
    else:
        casia = dict(num_subjects=50, views=CASIA_VIEWS)
        oumvlp = dict(num_subjects=5154, views=OUMVLP_VIEWS)
        grew = dict(num_subjects=6000, num_probes=24000)
        gait3d = dict(num_subjects=1000, mean_gallery=5.0)
        sub = dict(casia=None, ou_single=3600, ou_cross=1000, grew_local=None, grew_sub=3000, gait3d=None)
    casia_single = [f"table/{c}@R1" for c in ("NM", "BG", "CL")]
    casia_cross = [f"table/{c}-{m}" for c in ("NM", "BG", "CL") for m in ("Rank@1", "mAP")]
    indoor = upstream_eval.evaluate_indoor_dataset
    out: List[Case] = []
    for label, shape, weight in (("GaitGraph2-like [N,384,1]", (384, 1), 0.35), ("GPGait-like [N,256,19]", (256, 19), 0.17)):
        tag = "gg2" if shape[1] == 1 else "gpgait"
        out.append(Case(f"casia_b_single_{tag}", f"CASIA-B single-view, {label}",
                        lambda rng, s=shape, w=weight: casia_b_set(rng, shape=s, subject_weight=w, **casia),
                        "evaluate_indoor_dataset", {"metric": "euc", "cross_view_gallery": False}, indoor,
                        ("nm-05", "nm-06", "bg-01", "bg-02", "cl-01", "cl-02"), sub["casia"],
                        compare_tables=tuple(casia_single)))
        out.append(Case(f"casia_b_cross_{tag}", f"CASIA-B cross-view, {label}",
                        lambda rng, s=shape, w=weight: casia_b_set(rng, shape=s, subject_weight=w, **casia),
                        "evaluate_indoor_dataset", {"metric": "euc", "cross_view_gallery": True}, indoor, ("nm-01", "bg-01", "cl-01"),
                        sub["casia"], compare_tables=tuple(casia_cross)))
    out.append(Case("oumvlp_single", "OUMVLP single-view, [N,256,1]",
                    lambda rng: oumvlp_set(rng, shape=(256, 1), subject_weight=0.55, **oumvlp), "evaluate_indoor_dataset",
                    {"metric": "euc", "cross_view_gallery": False}, indoor, ("00",), sub["ou_single"], big=True,
                    compare_tables=("table/NM@R1",)))
    out.append(Case("oumvlp_cross", "OUMVLP cross-view, [N,256,1]",
                    lambda rng: oumvlp_set(rng, shape=(256, 1), subject_weight=0.55, **oumvlp), "evaluate_indoor_dataset",
                    {"metric": "euc", "cross_view_gallery": True}, indoor, ("00",), sub["ou_cross"], big=True,
                    compare_tables=("table/NM-Rank@1", "table/NM-mAP")))
    out.append(Case("grew_local", "GREW local (02 vs 01), [N,256,1]",
                    lambda rng: grew_set(rng, shape=(256, 1), subject_weight=0.6, **grew), "evaluate_real_scene", {"metric": "euc"},
                    upstream_eval.evaluate_real_scene, ("02",), sub["grew_local"], compare_tables=("table/Rank-k",)))
    out.append(Case("grew_submission", "GREW submission (03 vs 01+02, top-20), [N,256,1]",
                    lambda rng: grew_set(rng, shape=(256, 1), subject_weight=0.6, **grew), "GREW_submission", {"metric": "euc"},
                    upstream_eval.grew_submission_rows, ("03",), sub["grew_sub"]))
    out.append(Case("gait3d", "Gait3D, [N,256,1]",
                    lambda rng: gait3d_set(rng, shape=(256, 1), subject_weight=0.5, **gait3d), "evaluate_Gait3D", {"metric": "euc"},
                    upstream_eval.evaluate_gait3d, (), sub["gait3d"]))
    return out


def _probe_rows(case: Case, evalset: EvalSet) -> np.ndarray:
    if case.eval_func == "evaluate_Gait3D":
        probes = set(evalset.partition["PROBE_SET"])
        keys = [f"{s}-{t}-{v}" for s, t, v in zip(*(evalset.data[k] for k in ("labels", "types", "views")))]
        return np.flatnonzero([k in probes for k in keys])
    return np.flatnonzero(np.isin(evalset.data["types"], case.probe_types))


def run_ours(case: Case, evalset: EvalSet, workdir: Path) -> Callable[[], Any]:
    """The evaluator call of ``Runner.run_test`` for this set."""
    evaluator = EVALUATORS.get(case.eval_func)
    options = dict(case.options, output_dir=str(workdir / "output"), dataset_partition=str(workdir / "partition.json"))
    embeddings = torch.from_numpy(evalset.data["embeddings"])
    args = (evaluator, embeddings, evalset.data["labels"], evalset.data["types"], evalset.data["views"],
            evalset.dataset, options)
    return lambda: run_evaluator(*args)


def run_baseline(case: Case, evalset: EvalSet, workdir: Path) -> Callable[[], Any]:
    kwargs = dict(case.options)
    if case.eval_func == "evaluate_Gait3D":
        kwargs["dataset_partition"] = str(workdir / "partition.json")
    return lambda: case.baseline(evalset.data, evalset.dataset, **kwargs)


def compare(case: Case, ours: Any, baseline: Any) -> Tuple[bool, float, str]:
    """(agree, largest absolute difference, what was compared)."""
    if case.eval_func == "GREW_submission":
        with open(ours["table/submission_csv"], encoding="utf-8") as f:
            lines = f.read().splitlines()
        same = lines == baseline
        return same, 0.0 if same else float("inf"), f"{len(baseline) - 1} CSV rows, exact"
    ours_s, base_s = upstream_eval.scalars(ours), upstream_eval.scalars(baseline)
    if set(ours_s) != set(base_s):
        return False, float("inf"), f"scalar names differ: {sorted(ours_s)} vs {sorted(base_s)}"
    diffs = [abs(ours_s[k] - base_s[k]) for k in ours_s]
    for name in case.compare_tables:
        diffs.extend(np.abs(np.asarray(ours[name], dtype=float) - np.asarray(baseline[name], dtype=float)).tolist())
    worst = max(diffs) if diffs else 0.0
    what = f"{len(ours_s)} scalars" + (f" + {', '.join(case.compare_tables)}" if case.compare_tables else "")
    return bool(worst <= TOLERANCE), float(worst), what


def run_case(case: Case, seed: int, repeats: int, workdir: Path) -> Dict[str, Any]:
    rng = np.random.default_rng(seed)
    evalset = case.make(rng)
    if evalset.partition is not None:
        (workdir / "partition.json").write_text(json.dumps(evalset.partition))
    probe_rows = _probe_rows(case, evalset)
    embeddings = evalset.data["embeddings"]
    row: Dict[str, Any] = {
        "case": case.name,
        "protocol": case.protocol,
        "eval_func": case.eval_func,
        "dataset": evalset.dataset,
        "set": evalset.description,
        "num_sequences": int(embeddings.shape[0]),
        "num_probes": int(len(probe_rows)),
        "feature_shape": list(embeddings.shape[1:]),
        "metric": case.options["metric"],
    }
    print(f"[{case.name}] {evalset.description}: {embeddings.shape[0]} sequences, {len(probe_rows)} probes",
          flush=True)
    ours = timed(run_ours(case, evalset, workdir), repeats)
    row.update(ours_runs_s=[round(s, 4) for s in ours.seconds], ours_s=statistics.median(ours.seconds),
               ours_peak_rss_mb=round(max(ours.peak_mb), 1))
    row["results"] = upstream_eval.scalars(ours.result) if isinstance(ours.result, dict) else {}
    print(f"  ours: median {row['ours_s']:.3f}s of {ours.seconds}", flush=True)

    if case.baseline_probes is not None and case.baseline_probes < len(probe_rows):
        keep = np.sort(np.random.default_rng(seed + 1).choice(probe_rows, case.baseline_probes, replace=False))
        small = subsample(evalset, probe_rows, keep)
        base = timed(run_baseline(case, small, workdir), 1)
        ours_small = timed(run_ours(case, small, workdir), 1)
        scale = len(probe_rows) / len(keep)
        row.update(baseline_mode="extrapolated", baseline_probes=int(len(keep)),
                   baseline_measured_s=base.seconds[0], baseline_s=base.seconds[0] * scale,
                   baseline_peak_rss_mb_measured=round(base.peak_mb[0], 1),
                   agreement_checked_on=f"subsample of {len(keep)} of {len(probe_rows)} probes (seed {seed + 1})")
        agree, worst, what = compare(case, ours_small.result, base.result)
    else:
        base = timed(run_baseline(case, evalset, workdir), 1)
        row.update(baseline_mode="measured", baseline_probes=int(len(probe_rows)), baseline_measured_s=base.seconds[0],
                   baseline_s=base.seconds[0], baseline_peak_rss_mb_measured=round(base.peak_mb[0], 1),
                   agreement_checked_on="full set")
        agree, worst, what = compare(case, ours.result, base.result)
    row.update(ratio=row["baseline_s"] / row["ours_s"], agree=agree, max_abs_diff=worst, compared=what)
    print(f"  baseline: {row['baseline_mode']} {row['baseline_s']:.3f}s (measured {row['baseline_measured_s']:.3f}s "
          f"on {row['baseline_probes']} probes); agree={agree} (max diff {worst:.2e}, {what})", flush=True)
    del evalset, ours, base
    gc.collect()
    return row


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def table(rows: Sequence[Dict[str, Any]]) -> str:
    head = f"{'case':<46} {'seqs':>7} {'probes':>7} {'ours s':>9} {'baseline s':>11} {'ratio':>7} {'ours MB':>8}  agree"
    lines = [head, "-" * len(head)]
    for r in rows:
        base = f"{r['baseline_s']:.2f}" + ("*" if r["baseline_mode"] == "extrapolated" else "")
        lines.append(f"{r['protocol']:<46} {r['num_sequences']:>7} {r['num_probes']:>7} {r['ours_s']:>9.3f} "
                     f"{base:>11} {r['ratio']:>6.1f}x {r['ours_peak_rss_mb']:>8.0f}  {'yes' if r['agree'] else 'NO'}")
    lines.append("* extrapolated linearly from a random subsample of the probes (see baseline_probes in the JSON)")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny sets (CI: a few seconds)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="runs of ours per case, median reported (default 3; 1 with --tiny)")
    parser.add_argument("--big-repeats", type=int, default=3,
                        help="runs of ours for the OUMVLP-sized cases (each takes about a minute on 2 cores)")
    parser.add_argument("--only", nargs="*", default=None, help="case names to run (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "eval_benchmark.json")
    args = parser.parse_args(argv)

    selected = [c for c in cases(args.tiny) if args.only is None or c.name in args.only]
    unknown = set(args.only or ()) - {c.name for c in cases(args.tiny)}
    if unknown:
        parser.error(f"unknown case(s) {sorted(unknown)}; choose from {[c.name for c in cases(args.tiny)]}")
    if args.repeats is None:
        args.repeats = 1 if args.tiny else 3
    started = time.time()
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    rows = []
    with tempfile.TemporaryDirectory(prefix="eval_benchmark_") as tmp:
        for case in selected:
            repeats = args.big_repeats if case.big and not args.tiny else args.repeats
            rows.append(run_case(case, args.seed, repeats, Path(tmp)))
    report = {
        "benchmark": "eval_benchmark",
        "command": "python benchmarks/eval_benchmark.py" + (" --tiny" if args.tiny else "")
        + ("" if args.only is None else " --only " + " ".join(args.only)),
        "scale": "tiny" if args.tiny else "full",
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "wall_s": round(time.time() - started, 1),
        "machine": machine_info(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "tolerance": TOLERANCE,
        "feature_quantum": QUANTUM,
        "peak_memory": "growth of VmRSS high-water mark during the call (MB)" if PeakMemory().resettable
        else "ru_maxrss growth (cannot be reset; later cases may read 0)",
        "all_agree": all(r["agree"] for r in rows),
        "cases": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(table(rows))
    print(f"\nwritten to {args.out} ({report['wall_s']} s)")
    return 0 if report["all_agree"] else 1


if __name__ == "__main__":
    from fastposegait.cli import run_cli  # quiet on a closed pipe (| head), one line on Ctrl-C

    raise SystemExit(run_cli(main))
