"""Measure conversion speed (sequences/s) on generated raw trees, with 1 and 2 workers.

Writes a raw OUMVLP-Pose tree (per-frame OpenPose JSON, a bystander in every 4th frame) and a
raw GREW tree (per-frame ``_2d_pose.txt``) from the synthetic gait model, then times
``python -m fastposegait.converters oumvlp`` / ``grew`` into fresh output folders::

    python benchmarks/conversion.py --work /tmp/conv-bench --subjects 20 --workers 1 2

Numbers go to docs/process_dataset.md with the machine and the date.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from fastposegait.data.io import load_pose
from fastposegait.data.synthetic import generate_dataset


def _numbers(a: np.ndarray) -> list:
    return [float(x) for x in a.ravel()]


def write_oumvlp_raw(work: Path, subjects: int) -> int:
    syn = work / "syn-oumvlp"
    generate_dataset("oumvlp", syn, num_subjects=subjects, seed=0)
    raw = work / "raw-oumvlp"
    count = 0
    for pkl in sorted(syn.glob("*/*/*/*.pkl")):
        s, t, v = pkl.relative_to(syn).parts[:3]
        walk = load_pose(pkl)
        folder = raw / s / f"{v}_{t}"
        folder.mkdir(parents=True)
        for i, frame in enumerate(walk):
            people = [frame]
            if i % 4 == 0:  # a bystander, listed first: the walker must be chosen
                other = frame.copy()
                other[:, 0] += 200.0
                people = [other, frame]
            doc = {"version": 1.3, "people": [{"pose_keypoints_2d": _numbers(p)} for p in people]}
            (folder / f"{i + 1:04d}_keypoints.json").write_text(json.dumps(doc))
        count += 1
    return count


def write_grew_raw(work: Path, subjects: int) -> int:
    syn = work / "syn-grew"
    generate_dataset("grew", syn, num_subjects=subjects, seed=0)
    raw = work / "raw-grew"
    count = 0
    for pkl in sorted(syn.glob("*/*/*/*.pkl")):
        s, t, v = pkl.relative_to(syn).parts[:3]
        if s.endswith("train"):
            folder = raw / "train" / s[:-5] / v
        elif s == "probe":
            folder = raw / "test" / "probe" / v
        else:
            folder = raw / "test" / "gallery" / s / v
        folder.mkdir(parents=True)
        for i, frame in enumerate(load_pose(pkl)):
            line = ",".join(repr(x) for x in [1080.0, 1920.0, *_numbers(frame)])
            (folder / f"{i + 1:05d}_2d_pose.txt").write_text(line)
        count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", required=True, help="scratch folder (emptied)")
    parser.add_argument("--subjects", type=int, default=20, help="OUMVLP subjects (x 28 sequences)")
    parser.add_argument("--grew-subjects", type=int, default=120)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--fsync", action="store_true", help="also time --fsync (one flush per file)")
    parser.add_argument("--reuse", action="store_true", help="reuse the raw trees of an earlier run in --work")
    args = parser.parse_args()
    work = Path(args.work)
    if args.reuse and (work / "raw-oumvlp").is_dir() and (work / "raw-grew").is_dir():
        sizes = {"oumvlp": len(list((work / "raw-oumvlp").glob("*/*"))),
                 "grew": len([p for p in (work / "raw-grew").rglob("*") if p.is_dir() and any(p.glob("*.txt"))])}
    else:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        sizes = {"oumvlp": write_oumvlp_raw(work, args.subjects), "grew": write_grew_raw(work, args.grew_subjects)}
    for name, n in sizes.items():
        frames = sum(1 for _ in (work / f"raw-{name}").rglob("*_*.*"))
        print(f"{name}: {n} raw sequences, {frames} frame files")
    for name in sizes:
        for extra in ([], ["--fsync"]) if args.fsync else ([],):
            for workers in args.workers:
                for rep in range(args.repeats):
                    out = work / f"out-{name}-{workers}-{rep}{'-fsync' if extra else ''}"
                    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                    start = time.perf_counter()
                    proc = subprocess.run([sys.executable, "-m", "fastposegait.converters", name, "-i",
                                           str(work / f"raw-{name}"), "-o", str(out), "-j", str(workers),
                                           "--no-progress", *extra], capture_output=True, text=True, check=True)
                    wall = time.perf_counter() - start
                    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
                    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("time:")][0]
                    print(f"{name}{' --fsync' if extra else ''} workers={workers} run {rep + 1}: "
                          f"{sizes[name] / wall:.1f} sequences/s end to end ({wall:.2f} s incl. start-up, "
                          f"{1000 * cpu / sizes[name]:.1f} CPU-ms/sequence); converter {line}; "
                          f"load average {os.getloadavg()[0]:.1f}")
                    shutil.rmtree(out)


if __name__ == "__main__":
    main()
