"""Embedding throughput of the inference API: sequences per second per model, batched vs one
sequence per call.

Each demo config's model (the published architectures; untrained weights embed at the same
speed as trained ones) embeds walks of 60-100 frames of 17 COCO joints (random poses around a
standing figure; the time does not depend on the values) through
:meth:`fastposegait.GaitRecognizer.embed`: once as one list (the test sampler's batch size,
cut into the test phase's model calls) and once one sequence per ``embed`` call, as a service
answering single requests would. Medians of ``--repeats`` passes.

    python benchmarks/embedding_throughput.py      # writes benchmarks/results/embedding_throughput.json
    python benchmarks/embedding_throughput.py --tiny
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastposegait.recognition.recognizer import GaitRecognizer  # noqa: E402
from machine import write_report  # noqa: E402

MODELS = {
    "GaitGraph1": "configs/demo/gaitgraph1_demo.yaml",
    "GaitGraph2": "configs/demo/gaitgraph2_demo.yaml",
    "GaitTR": "configs/demo/gaittr_demo.yaml",
    "GPGait": "configs/demo/gpgait_demo.yaml",
    "GPGait++": "configs/demo/gpgait++_demo.yaml",
}


def walks(count: int, seed: int = 0) -> List[np.ndarray]:
    """``count`` pose sequences ``[T, 17, 3]`` with T in [60, 100]."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(50, 200, size=(1, 17, 2))
    out = []
    for _ in range(count):
        t = int(rng.integers(60, 101))
        xy = base + rng.normal(0, 5, size=(t, 17, 2))
        conf = rng.uniform(0.5, 1.0, size=(t, 17, 1))
        out.append(np.concatenate([xy, conf], axis=2).astype(np.float32))
    return out


def seconds(run: Any, repeats: int) -> List[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def measure(name: str, config: str, count: int, repeats: int) -> Dict[str, Any]:
    rec = GaitRecognizer.from_config(REPO / config, iteration=0, device="cpu")
    sequences = walks(count)
    rec.embed(sequences[:2])  # warm-up
    batched = seconds(lambda: rec.embed(sequences), repeats)
    single = seconds(lambda: [rec.embed(s) for s in sequences], repeats)
    row = {"model": name, "config": config, "sequences": count, "batch_size": rec.batch_size,
           "embedding_shape": rec.embedding_shape, "batched_s": batched, "one_by_one_s": single,
           "batched_seq_per_s": count / statistics.median(batched),
           "one_by_one_seq_per_s": count / statistics.median(single)}
    row["speedup"] = row["batched_seq_per_s"] / row["one_by_one_seq_per_s"]
    return row


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequences", type=int, default=64, help="sequences per pass")
    parser.add_argument("--repeats", type=int, default=3, help="passes (median reported)")
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--tiny", action="store_true", help="4 sequences, 1 pass, GaitGraph2 only")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "embedding_throughput.json"))
    args = parser.parse_args(argv)
    if args.tiny:
        args.sequences, args.repeats, args.models = 4, 1, ["GaitGraph2"]
    rows = []
    for name in args.models:
        row = measure(name, MODELS[name], args.sequences, args.repeats)
        rows.append(row)
        print(f"{name:10s} batched {row['batched_seq_per_s']:7.1f} seq/s, one by one "
              f"{row['one_by_one_seq_per_s']:7.1f} seq/s ({row['speedup']:.1f}x)", flush=True)
    return write_report(Path(args.out).resolve(), "embedding_throughput", argv, sequences=args.sequences,
                        repeats=args.repeats, tiny=args.tiny, torch_threads=torch.get_num_threads(), rows=rows)


if __name__ == "__main__":
    from fastposegait.cli import run_cli  # quiet on a closed pipe (| head), one line on Ctrl-C

    raise SystemExit(run_cli(main))
