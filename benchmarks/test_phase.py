"""Test-phase speed per model: feature extraction for three ways of cutting the config's test
batches into model calls, then the evaluator.

For each model's CASIA-B config (its test sampler and batch, transforms and TTA), on the test
split of a synthetic CASIA-B-like dataset, in one process, the runner's feature extraction
with the model called on

* **whole batch**: every test batch in one call (what a GPU wants);
* **default**: the runner's default, ``evaluator_cfg.max_sequences_per_call`` or 8 sequences
  per call on a CPU;
* **one per call**: one sequence per call, which is what upstream had to do for GaitTR (the
  test batch pinned to the GPU count; docs/upstream_differences.md, "Any test batch size");

then the registered evaluator on the features. All three must give the same features (1e-2
relative: float32 rounding); the figures are medians over ``--repeats`` passes.

    python benchmarks/test_phase.py
    python benchmarks/test_phase.py --tiny      # seconds; what CI runs
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastposegait.config import load_config  # noqa: E402
from fastposegait.data.autogen import ensure_dataset  # noqa: E402
from fastposegait.distributed import DistEnv  # noqa: E402
from fastposegait.engine.inference import extract_embeddings, run_evaluator  # noqa: E402
from fastposegait.engine.log import setup_logging  # noqa: E402
from fastposegait.engine.runner import Runner  # noqa: E402
from fastposegait.registry import EVALUATORS  # noqa: E402
from machine import write_report  # noqa: E402
from train_throughput import CONFIGS, dataset_overrides  # noqa: E402


def _extract(runner: Runner, max_sequences: Optional[int]) -> torch.Tensor:
    dataset, loader = runner._test_loader()
    return extract_embeddings(runner.model, loader, runner.device, len(dataset),
                              loader.dataset.collator.time_axes, progress=False, max_sequences=max_sequences)


MODES = ("whole_batch", "default", "one_per_call")


def measure(model: str, overrides: List[str], device: torch.device, repeats: int,
            modes_wanted: Sequence[str] = MODES) -> Dict[str, Any]:
    """Seconds per pass over the test split for each way of cutting the test batches into
    model calls (``modes_wanted``, a subset of :data:`MODES`), then the evaluator."""
    cfg = load_config(REPO / CONFIGS[model], overrides)
    ensure_dataset(cfg["data_cfg"])
    torch.manual_seed(0)
    runner = Runner(cfg, "test", DistEnv(), device)
    setup_logging(rank=1)
    runner.model.eval()
    modes = {"whole_batch": None, "default": runner.sequences_per_call(), "one_per_call": 1}
    modes = {mode: per_call for mode, per_call in modes.items() if mode in modes_wanted}
    times: Dict[str, List[float]] = {}
    features: Dict[str, torch.Tensor] = {}
    for mode, per_call in modes.items():
        _extract(runner, per_call)  # warm-up pass (workers, caches, lazy init)
        times[mode] = []
        for _ in range(repeats):
            start = time.perf_counter()
            features[mode] = _extract(runner, per_call)
            times[mode].append(time.perf_counter() - start)
    dataset, _ = runner._test_loader()
    evaluator = EVALUATORS.get(cfg["evaluator_cfg"]["eval_func"])
    options = {"metric": cfg["evaluator_cfg"].get("metric", "euc"), "output_dir": str(runner.output_dir),
               "dataset_partition": cfg["data_cfg"]["dataset_partition"]}
    start = time.perf_counter()
    results = run_evaluator(evaluator, next(iter(features.values())), dataset.subjects, dataset.types, dataset.views,
                            cfg["data_cfg"]["test_dataset_name"], options)
    eval_s = time.perf_counter() - start
    reference = features["one_per_call"] if "one_per_call" in features else next(iter(features.values()))
    max_rel = max(float((f - reference).abs().max() / reference.abs().max().clamp(min=1e-12))
                  for f in features.values())
    # float32 rounding differs between call sizes (other convolution algorithms); the untrained
    # models amplify it, GPGait's angle features most (up to 7.6e-3 of the batch's largest
    # value measured here, against 1e-11 in float64). In float64 the features are equal
    # (tests/engine/test_inference.py).
    if max_rel > 1e-2:
        raise SystemExit(f"{model}: features depend on the call size (max relative difference {max_rel:.2e})")
    n = len(dataset)
    per_s = {mode: n / statistics.median(t) for mode, t in times.items()}
    return {
        "model": model, "sequences": n, "test_batch": cfg["evaluator_cfg"]["sampler"]["batch_size"],
        "sequences_per_call": modes, "feature_shape": list(reference.shape[1:]), "seconds": times,
        "seq_per_s": per_s,
        "speedup_default_vs_whole_batch": (per_s["default"] / per_s["whole_batch"]
                                           if {"default", "whole_batch"} <= set(per_s) else None),
        "evaluate_s": eval_s, "max_relative_feature_difference": max_rel,
        "nm_rank1": results.get("scalar/test_accuracy/NM@R1"),
    }


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(CONFIGS), help="comma-separated: " + ", ".join(CONFIGS))
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--subjects", type=int, default=10, help="synthetic dataset size (40% are test subjects)")
    parser.add_argument("--data", default=None, help="folder for the synthetic dataset (default: a temp dir)")
    parser.add_argument("--tiny", action="store_true", help="a tiny dataset and short walks: proves the script works")
    parser.add_argument("--modes", default=",".join(MODES),
                        help="comma-separated ways of cutting test batches into model calls: " + ", ".join(MODES))
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="extra config override for every model, e.g. data_cfg.dataset_root=/data/casia-b")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "test_phase.json"))
    args = parser.parse_args(argv)
    setup_logging(rank=1)
    device = torch.device("cuda" if args.device != "cpu" and torch.cuda.is_available() else "cpu")
    models = [m for m in args.models.split(",") if m]
    for name in models:
        if name not in CONFIGS:
            parser.error(f"unknown model {name!r}")
    modes = [m for m in args.modes.split(",") if m]
    if not modes or set(modes) - set(MODES):
        parser.error(f"--modes {args.modes!r}: choose from {', '.join(MODES)}")
    out = Path(args.out).resolve()
    root = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="fpg-test-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    overrides = dataset_overrides(root, 6 if args.tiny else args.subjects, (20, 36) if args.tiny else (60, 110))
    overrides += ["data_cfg.num_workers=1"]
    if args.tiny:
        overrides += ["evaluator_cfg.sampler.frames_num_fixed=12"]
        args.repeats = 1
    overrides += args.override
    rows = []
    cwd = os.getcwd()
    os.chdir(root)
    try:
        for model in models:
            row = measure(model, overrides, device, args.repeats, modes)
            rows.append(row)
            write_report(out, "test_phase", argv, device=str(device), repeats=args.repeats, tiny=args.tiny,
                         rows=rows)  # after every row: a run cut short keeps what it measured
            rates = ", ".join(f"{mode} ({row['sequences_per_call'][mode]} per call) {rate:7.1f} seq/s"
                              for mode, rate in row["seq_per_s"].items())
            print(f"{model:11s} {row['sequences']:5d} seqs, test batch {row['test_batch']:4d}: {rates}; "
                  f"evaluate {row['evaluate_s']:.2f} s", flush=True)
    finally:
        os.chdir(cwd)
    report = write_report(out, "test_phase", argv, device=str(device), repeats=args.repeats, tiny=args.tiny,
                          rows=rows)
    print(f"written {out}")
    return report


if __name__ == "__main__":
    from fastposegait.cli import run_cli  # quiet on a closed pipe (| head), one line on Ctrl-C

    raise SystemExit(run_cli(main))
