"""Speed of the exact (NumPy) skeleton-map renderer, and what the maps cost on disk.

Generates a synthetic CASIA-B-like pose set (seeded), renders every sequence with
``fastposegait.data.skeleton_maps.exact.render_sequence`` in this process on one thread
(frames per second, median of the passes), then writes each map sequence the way the
``skeleton-maps`` converter does (a pickled uint8 [T, 2, 64, 64] array) and compares the bytes
per frame with the pose pickles they came from.

    OMP_NUM_THREADS=1 python benchmarks/skeleton_maps_exact.py   # -> benchmarks/results/skeleton_maps_exact.json
    python benchmarks/skeleton_maps_exact.py --tiny
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread, before NumPy starts its BLAS

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Dict, Optional, Sequence  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastposegait.data.io import load_pickle, save_pickle  # noqa: E402
from fastposegait.data.skeleton_maps.exact import render_sequence  # noqa: E402
from fastposegait.data.synthetic import generate_dataset  # noqa: E402
from machine import write_report  # noqa: E402


def measure(work: Path, subjects: int, views: Sequence[str], types: Sequence[str], repeats: int,
            seed: int) -> Dict[str, Any]:
    """Render the generated set ``repeats`` times; sizes of the pose and map pickles."""
    root = work / "poses"
    generate_dataset("casia-b", root, num_subjects=subjects, views=list(views), types=list(types), seed=seed)
    paths = sorted(root.rglob("*.pkl"))
    sequences = [load_pickle(p) for p in paths]
    frames = sum(len(s) for s in sequences)
    passes = []
    for _ in range(repeats):
        start = time.perf_counter()
        maps = [render_sequence(s) for s in sequences]
        passes.append(frames / (time.perf_counter() - start))
    pose_bytes = sum(p.stat().st_size for p in paths)
    map_bytes = 0
    for i, m in enumerate(maps):
        out = work / "maps" / f"{i}.pkl"
        save_pickle(out, m, fsync=False)
        map_bytes += out.stat().st_size
    return {"sequences": len(sequences), "frames": frames, "pose_dtype": str(sequences[0].dtype),
            "joints": int(sequences[0].shape[1]), "frames_per_second_passes": passes,
            "frames_per_second": statistics.median(passes),
            "pose_bytes_per_frame": pose_bytes / frames, "map_bytes_per_frame": map_bytes / frames,
            "size_ratio_map_to_pose": map_bytes / pose_bytes}


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--views", nargs="+", default=["000", "036", "090", "144", "180"])
    parser.add_argument("--types", nargs="+", default=["nm-01", "bg-01", "cl-01"])
    parser.add_argument("--repeats", type=int, default=3, help="passes over the set (median reported)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "skeleton_maps_exact.json"))
    args = parser.parse_args(argv)
    if args.tiny:
        args.subjects, args.views, args.types, args.repeats = 2, ["090"], ["nm-01"], 1
    with tempfile.TemporaryDirectory(prefix="skeleton_maps_bench_") as tmp:
        row = measure(Path(tmp), args.subjects, args.views, args.types, args.repeats, args.seed)
    print(f"exact renderer: {row['frames_per_second']:.0f} frames/s on one thread "
          f"({row['sequences']} sequences, {row['frames']} frames); pose {row['pose_bytes_per_frame']:.0f} B/frame "
          f"({row['pose_dtype']}), maps {row['map_bytes_per_frame']:.0f} B/frame "
          f"({row['size_ratio_map_to_pose']:.1f}x)", flush=True)
    return write_report(Path(args.out).resolve(), "skeleton_maps_exact", argv, tiny=args.tiny,
                        omp_num_threads=os.environ.get("OMP_NUM_THREADS"), subjects=args.subjects,
                        views=args.views, types=args.types, repeats=args.repeats, seed=args.seed, **row)


if __name__ == "__main__":
    from fastposegait.cli import run_cli  # quiet on a closed pipe (| head), one line on Ctrl-C

    raise SystemExit(run_cli(main))
