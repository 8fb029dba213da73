"""How long the data pipeline needs to prepare one training batch, per model recipe, on one core.

Loads, samples frames and applies the training transforms of each model's CASIA-B recipe
(its real batch size) in the main process (``num_workers: 0``), as one DataLoader worker
does, on a synthetic CASIA-B-like dataset. Compare with the model step in
``benchmarks/results/train_throughput.json``: the worker must prepare a batch faster than the
model consumes it for the pipeline to cost nothing.

    python benchmarks/batch_preparation.py            # writes benchmarks/results/batch_preparation.json
    python benchmarks/batch_preparation.py --tiny
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastposegait.config import load_config  # noqa: E402
from fastposegait.data.autogen import ensure_dataset  # noqa: E402
from fastposegait.data.dataset import dataset_from_cfg  # noqa: E402
from fastposegait.data.loader import build_loader  # noqa: E402
from fastposegait.engine.log import setup_logging  # noqa: E402
from machine import write_report  # noqa: E402
from train_throughput import CONFIGS, dataset_overrides  # noqa: E402


def measure(model: str, overrides: Sequence[str], batches: int) -> Dict[str, Any]:
    cfg = load_config(REPO / CONFIGS[model], list(overrides) + ["data_cfg.num_workers=0"])
    ensure_dataset(cfg["data_cfg"])
    dataset = dataset_from_cfg(cfg["data_cfg"], training=True)
    trainer = cfg["trainer_cfg"]
    loader = build_loader(dataset, trainer["sampler"], trainer["transform"], training=True, seed=0, num_workers=0)
    stream = iter(loader)
    batch = next(stream)  # warm-up
    times = []
    for _ in range(batches):
        start = time.perf_counter()
        batch = next(stream)
        times.append(time.perf_counter() - start)
    size = batch.num_sequences
    median = statistics.median(times)
    return {"model": model, "batch": size, "input_shape": list(batch.inputs[0].shape), "s_per_batch": times,
            "median_s_per_batch": median, "ms_per_sequence": 1000 * median / size}


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(CONFIGS))
    parser.add_argument("--batches", type=int, default=5, help="timed batches per model (median reported)")
    parser.add_argument("--data", default=None, help="folder for the synthetic dataset (default: a temp dir)")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "batch_preparation.json"))
    args = parser.parse_args(argv)
    setup_logging(rank=1)
    out = Path(args.out).resolve()
    root = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="fpg-prep-"))
    overrides = dataset_overrides(root, 6 if args.tiny else 40, (20, 36) if args.tiny else (60, 110))
    if args.tiny:
        overrides += ["trainer_cfg.sampler.frames_num_fixed=12", "trainer_cfg.sampler.batch_size=[2, 4]"]
        args.batches = 1
    rows = []
    for model in (m for m in args.models.split(",") if m):
        extra = []
        if args.tiny and model in ("gaitgraph1", "gaitgraph2"):
            extra = ["trainer_cfg.sampler.batch_size=8"]
            if model == "gaitgraph1":
                extra.append("trainer_cfg.transform.0.trf_cfg.2.sequence_length=8")
        row = measure(model, overrides + extra, args.batches)
        rows.append(row)
        print(f"{model:11s} batch {row['batch']:4d}: {row['median_s_per_batch']:.3f} s per batch "
              f"({row['ms_per_sequence']:.2f} ms per sequence)", flush=True)
    report = write_report(out, "batch_preparation", argv, batches=args.batches, tiny=args.tiny, rows=rows)
    print(f"written {out}")
    return report


if __name__ == "__main__":
    from fastposegait.cli import run_cli  # quiet on a closed pipe (| head), one line on Ctrl-C

    raise SystemExit(run_cli(main))
