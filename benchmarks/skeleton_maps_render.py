"""Speed and agreement of the batched (torch) skeleton-map renderer against the exact (NumPy) one.

Generates the same synthetic CASIA-B-like pose set as ``benchmarks/skeleton_maps_exact.py``
(seeded) and, for each torch thread count asked for, measures in this process (frames per
second, median of the passes):

* ``exact``: ``exact.render_sequence`` per sequence (imputation, canvas, Gaussians, grey levels,
  crop and resize; NumPy, one thread whatever the torch setting);
* ``transform`` / ``transform_float``: the ``SkeletonMap`` transform per sequence as a DataLoader
  worker runs it (``prepare_sequence`` then the call), quantised and not;
* ``batched_*``: ``render_canvas`` on all canvas frames of the set at once (steps D-F only; the
  device twin's work), quantised or not, float64 or float32 poses.

It also records how far the batched maps are from the exact ones (max |difference| and the
fraction of pixels that differ), and, with CUDA available, ``render_canvas`` on the GPU.

    python benchmarks/skeleton_maps_render.py   # -> benchmarks/results/skeleton_maps_render.json
    python benchmarks/skeleton_maps_render.py --tiny
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # NumPy's BLAS on one thread; torch threads are set per run

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable, Dict, List, Optional, Sequence  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastposegait.data.io import load_pickle  # noqa: E402
from fastposegait.data.skeleton_maps.batched import render_canvas  # noqa: E402
from fastposegait.data.skeleton_maps.exact import as_coco17, render_sequence, to_canvas  # noqa: E402
from fastposegait.data.skeleton_maps.impute import fill_missing_joints  # noqa: E402
from fastposegait.data.skeleton_maps.transform import SkeletonMap  # noqa: E402
from fastposegait.data.synthetic import generate_dataset  # noqa: E402
from machine import gpu_info, write_report  # noqa: E402


def _rate(frames: int, work: Callable[[], Any], repeats: int,
          synchronize: Callable[[], None] = lambda: None) -> List[float]:
    passes = []
    for _ in range(repeats):
        synchronize()
        start = time.perf_counter()
        work()
        synchronize()
        passes.append(frames / (time.perf_counter() - start))
    return passes


def _difference(got: np.ndarray, expected: np.ndarray) -> Dict[str, float]:
    diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    return {"max_abs": float(diff.max()), "mean_abs": float(diff.mean()),
            "fraction_differing": float((diff > 0).mean())}


def measure(sequences: List[np.ndarray], threads: Sequence[int], repeats: int) -> Dict[str, Any]:
    frames = sum(len(s) for s in sequences)
    canvas64 = torch.from_numpy(np.concatenate([to_canvas(fill_missing_joints(as_coco17(s))) for s in sequences]))
    canvas32 = canvas64.float()
    quantised, floats = SkeletonMap(), SkeletonMap(quantise=False)
    runs: Dict[str, Dict[str, Any]] = {}
    for count in threads:
        torch.set_num_threads(count)
        cases = {
            "exact": lambda: [render_sequence(s) for s in sequences],
            "transform": lambda: [quantised(quantised.prepare_sequence(s)) for s in sequences],
            "transform_float": lambda: [floats(floats.prepare_sequence(s)) for s in sequences],
            "batched_float64": lambda: render_canvas(canvas64),
            "batched_float64_float": lambda: render_canvas(canvas64, quantise=False),
            "batched_float32": lambda: render_canvas(canvas32),
            "batched_float32_float": lambda: render_canvas(canvas32, quantise=False),
        }
        row = {}
        for name, work in cases.items():
            passes = _rate(frames, work, repeats)
            row[name] = {"frames_per_second": statistics.median(passes), "passes": passes}
            print(f"{count} thread(s) {name:24s} {row[name]['frames_per_second']:8.0f} frames/s", flush=True)
        runs[f"threads_{count}"] = row
    torch.set_num_threads(1)
    exact = np.concatenate([render_sequence(s) for s in sequences])
    agreement = {
        "batched_float64_vs_exact": _difference(render_canvas(canvas64).numpy(), exact),
        "batched_float32_vs_exact": _difference(render_canvas(canvas32).numpy(), exact),
        "unquantised_vs_exact": _difference(render_canvas(canvas64, quantise=False).numpy(), exact),
    }
    for name, stats in agreement.items():
        print(f"{name}: max |diff| {stats['max_abs']:.3f}, mean {stats['mean_abs']:.4f}, "
              f"differing pixels {stats['fraction_differing']:.2e}", flush=True)
    result: Dict[str, Any] = {"sequences": len(sequences), "frames": frames, "runs": runs, "agreement": agreement}
    if torch.cuda.is_available():
        result["cuda"] = measure_cuda(canvas64, exact, repeats)
    return result


def measure_cuda(canvas64: torch.Tensor, exact: np.ndarray, repeats: int) -> Dict[str, Any]:
    device = torch.device("cuda")
    frames = canvas64.shape[0]
    row: Dict[str, Any] = {"gpu": gpu_info()}
    for dtype in (torch.float64, torch.float32):
        canvas = canvas64.to(device, dtype)
        for quantise in (True, False):
            render_canvas(canvas, quantise=quantise)  # warm-up (kernels, tables)
            passes = _rate(frames, lambda: render_canvas(canvas, quantise=quantise), repeats, torch.cuda.synchronize)
            name = f"batched_{str(dtype).split('.')[-1]}{'' if quantise else '_float'}"
            row[name] = {"frames_per_second": statistics.median(passes), "passes": passes}
            print(f"cuda {name:24s} {row[name]['frames_per_second']:10.0f} frames/s", flush=True)
        row[f"{str(dtype).split('.')[-1]}_vs_exact"] = _difference(render_canvas(canvas).cpu().numpy(), exact)
    return row


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--views", nargs="+", default=["000", "036", "090", "144", "180"])
    parser.add_argument("--types", nargs="+", default=["nm-01", "bg-01", "cl-01"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="torch thread counts")
    parser.add_argument("--repeats", type=int, default=3, help="passes over the set (median reported)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "skeleton_maps_render.json"))
    args = parser.parse_args(argv)
    if args.tiny:
        args.subjects, args.views, args.types, args.repeats, args.threads = 2, ["090"], ["nm-01"], 1, [1]
    with tempfile.TemporaryDirectory(prefix="skeleton_maps_render_") as tmp:
        root = Path(tmp) / "poses"
        generate_dataset("casia-b", root, num_subjects=args.subjects, views=list(args.views), types=list(args.types),
                         seed=args.seed)
        sequences = [load_pickle(p) for p in sorted(root.rglob("*.pkl"))]
    row = measure(sequences, args.threads, args.repeats)
    return write_report(Path(args.out).resolve(), "skeleton_maps_render", argv, tiny=args.tiny,
                        omp_num_threads=os.environ.get("OMP_NUM_THREADS"), subjects=args.subjects,
                        views=args.views, types=args.types, threads=args.threads, repeats=args.repeats,
                        seed=args.seed, **row)


if __name__ == "__main__":
    from fastposegait.cli import run_cli  # quiet on a closed pipe (| head), one line on Ctrl-C

    raise SystemExit(run_cli(main))
