"""Measure conversion speed (sequences/s) on generated raw trees, with 1 and 2 workers.

Writes a raw OUMVLP-Pose tree (per-frame OpenPose JSON, a bystander in every 4th frame) and a
raw GREW tree (per-frame ``_2d_pose.txt``) from the synthetic gait model, then times
``python -m fastposegait.converters oumvlp`` / ``grew`` into fresh output folders::

    python benchmarks/conversion.py --work /tmp/conv-bench --subjects 20 --grew-subjects 120 --repeats 3 --fsync

Writes ``benchmarks/results/conversion.json`` (``--out``): the common header of every benchmark
report (:mod:`machine`), the raw trees' sizes, one row per timed run (the converter's own
counts and time from its ``--report``, wall and CPU time of the whole command) and the
per-setting ranges; ``--markdown FILE`` also writes those ranges as the table of
``docs/process_dataset.md`` (section "Speed").
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
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastposegait.data.io import load_pose  # noqa: E402
from fastposegait.data.synthetic import generate_dataset  # noqa: E402
from machine import write_report  # noqa: E402

DATASETS = ("oumvlp", "grew")


def _numbers(a: np.ndarray) -> list:
    """An array as a flat list of Python floats (what a JSON or text pose file holds)."""
    return [float(x) for x in a.ravel()]


def _synthetic_walks(work: Path, layout: str, subjects: int) -> List[Tuple[Tuple[str, ...], np.ndarray]]:
    """``((subject, type, view), [T, V, 3])`` of every sequence of a generated synthetic dataset."""
    syn = work / f"syn-{layout}"
    generate_dataset(layout, syn, num_subjects=subjects, seed=0)
    return [(pkl.relative_to(syn).parts[:3], load_pose(pkl)) for pkl in sorted(syn.glob("*/*/*/*.pkl"))]


def _write_openpose_frames(folder: Path, walk: np.ndarray) -> None:
    """One OpenPose JSON per frame; every 4th frame lists a bystander first (200 px to the
    right), so that the converter has to choose the walker."""
    folder.mkdir(parents=True)
    for i, frame in enumerate(walk):
        people = [frame]
        if i % 4 == 0:
            other = frame.copy()
            other[:, 0] += 200.0
            people = [other, frame]
        doc = {"version": 1.3, "people": [{"pose_keypoints_2d": _numbers(p)} for p in people]}
        (folder / f"{i + 1:04d}_keypoints.json").write_text(json.dumps(doc))


def write_oumvlp_raw(work: Path, subjects: int) -> int:
    """A raw OUMVLP-Pose tree ``raw-oumvlp/<id>/<view>_<type>/`` in ``work``; returns its sequences."""
    walks = _synthetic_walks(work, "oumvlp", subjects)
    for (s, t, v), walk in walks:
        _write_openpose_frames(work / "raw-oumvlp" / s / f"{v}_{t}", walk)
    return len(walks)


def _grew_folder(raw: Path, subject: str, seq: str) -> Path:
    """Where a converted GREW sequence comes from in the raw release: ``<id>train`` subjects
    from ``train/<id>/``, ``probe`` from ``test/probe/``, the others from ``test/gallery/<id>/``."""
    if subject.endswith("train"):
        return raw / "train" / subject[:-5] / seq
    if subject == "probe":
        return raw / "test" / "probe" / seq
    return raw / "test" / "gallery" / subject / seq


def write_grew_raw(work: Path, subjects: int) -> int:
    """A raw GREW tree ``raw-grew/{train,test/gallery,test/probe}`` in ``work`` (one
    comma-separated ``_2d_pose.txt`` line per frame); returns its sequences."""
    walks = _synthetic_walks(work, "grew", subjects)
    for (s, _, v), walk in walks:
        folder = _grew_folder(work / "raw-grew", s, v)
        folder.mkdir(parents=True)
        for i, frame in enumerate(walk):
            line = ",".join(repr(x) for x in [1080.0, 1920.0, *_numbers(frame)])
            (folder / f"{i + 1:05d}_2d_pose.txt").write_text(line)
    return len(walks)


def _reused_sizes(work: Path) -> Dict[str, int]:
    """Sequences of the raw trees an earlier run left in ``work``."""
    grew_dirs = [p for p in (work / "raw-grew").rglob("*") if p.is_dir() and any(p.glob("*.txt"))]
    return {"oumvlp": len(list((work / "raw-oumvlp").glob("*/*"))), "grew": len(grew_dirs)}


def prepare_raw(work: Path, subjects: int, grew_subjects: int, reuse: bool) -> Dict[str, Dict[str, int]]:
    """Generate the raw trees in an emptied ``work`` (or reuse them); returns, per dataset, its
    sequences and frame files."""
    if reuse and (work / "raw-oumvlp").is_dir() and (work / "raw-grew").is_dir():
        sizes = _reused_sizes(work)
    else:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        sizes = {"oumvlp": write_oumvlp_raw(work, subjects), "grew": write_grew_raw(work, grew_subjects)}
    frames = {name: sum(1 for _ in (work / f"raw-{name}").rglob("*_*.*")) for name in DATASETS}
    return {name: {"sequences": sizes[name], "frame_files": frames[name]} for name in DATASETS}


def _converter_env() -> Dict[str, str]:
    """The environment of the converter process: this checkout first on the import path, so the
    benchmark times the code next to it even without an installed package."""
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=str(REPO) + (os.pathsep + path if path else ""))


def _rate(count: int, seconds: float) -> float:
    """``count`` per second (0 for a time too short to measure)."""
    return count / seconds if seconds > 0 else 0.0


def time_conversion(work: Path, name: str, sequences: int, workers: int, rep: int, fsync: bool) -> Dict[str, Any]:
    """Run one conversion command into a fresh folder and return its row: the converter's own
    counts and time (from its ``--report``), the command's wall and CPU time (start-up included)."""
    tag = f"{name}-{workers}-{rep}{'-fsync' if fsync else ''}"
    out, report = work / f"out-{tag}", work / f"report-{tag}.json"
    cmd = [sys.executable, "-m", "fastposegait.converters", name, "-i", str(work / f"raw-{name}"), "-o", str(out),
           "-j", str(workers), "--no-progress", "--report", str(report), *(["--fsync"] if fsync else [])]
    cpu0, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(cmd, capture_output=True, text=True, check=True, env=_converter_env())
    wall = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    summary = json.loads(report.read_text())
    shutil.rmtree(out)
    report.unlink()
    return {"dataset": name, "workers": workers, "fsync": fsync, "run": rep + 1, "sequences": sequences,
            "written": summary["written"], "exists": summary["exists"], "empty": summary["empty"],
            "converter_s": summary["seconds"],
            "converter_sequences_per_s": _rate(summary["written"], summary["seconds"]),
            "wall_s": wall, "end_to_end_sequences_per_s": _rate(sequences, wall),
            "cpu_ms_per_sequence": 1000 * cpu / sequences, "load_average": os.getloadavg()[0]}


def _print_row(row: Dict[str, Any]) -> None:
    """One line per timed run, as it finishes."""
    print(f"{row['dataset']}{' --fsync' if row['fsync'] else ''} workers={row['workers']} run {row['run']}: "
          f"{row['end_to_end_sequences_per_s']:.1f} sequences/s end to end ({row['wall_s']:.2f} s incl. start-up, "
          f"{row['cpu_ms_per_sequence']:.1f} CPU-ms/sequence); converter: {row['written']} written in "
          f"{row['converter_s']:.2f} s ({row['converter_sequences_per_s']:.1f} sequences/s); "
          f"load average {row['load_average']:.1f}", flush=True)


_RANGED = ("converter_sequences_per_s", "end_to_end_sequences_per_s", "cpu_ms_per_sequence")


def summarise(rows: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Per dataset, worker count and mode (in run order): the runs and the min/max of each rate."""
    groups: Dict[Tuple[str, int, bool], List[Dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["workers"], row["fsync"]), []).append(row)
    return [{"dataset": d, "workers": w, "fsync": f, "runs": len(rs), "sequences": rs[0]["sequences"],
             **{key: [min(r[key] for r in rs), max(r[key] for r in rs)] for key in _RANGED}}
            for (d, w, f), rs in groups.items()]


def markdown_table(summary: Sequence[Dict[str, Any]]) -> str:
    """The per-setting ranges as a markdown table (the form of docs/process_dataset.md's "Speed")."""
    lines = ["| raw tree | `--workers` | mode | runs | sequences/s converted | sequences/s end to end "
             "| CPU ms/sequence |",
             "|---|---|---|---|---|---|---|"]
    for s in summary:
        ranges = [f"{s[key][0]:.1f}–{s[key][1]:.1f}" for key in _RANGED]
        lines.append(f"| {s['dataset']}, {s['sequences']} sequences | {s['workers']} | "
                     f"{'`--fsync`' if s['fsync'] else 'default'} | {s['runs']} | " + " | ".join(ranges) + " |")
    return "\n".join(lines) + "\n"


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", required=True, help="scratch folder (emptied)")
    parser.add_argument("--subjects", type=int, default=20, help="OUMVLP subjects (x 28 sequences)")
    parser.add_argument("--grew-subjects", type=int, default=120)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--fsync", action="store_true", help="also time --fsync (one flush per file)")
    parser.add_argument("--reuse", action="store_true", help="reuse the raw trees of an earlier run in --work")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "conversion.json"),
                        help="JSON report (default: benchmarks/results/conversion.json)")
    parser.add_argument("--markdown", metavar="FILE", help="also write the per-setting ranges as a markdown table")
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Generate (or reuse) the raw trees, time every setting, write the report(s); returns the report."""
    args = parse_args(argv)
    work = Path(args.work).resolve()
    raw = prepare_raw(work, args.subjects, args.grew_subjects, args.reuse)
    for name, size in raw.items():
        print(f"{name}: {size['sequences']} raw sequences, {size['frame_files']} frame files")
    rows = []
    for name in DATASETS:
        for fsync in (False, True) if args.fsync else (False,):
            for workers in args.workers:
                for rep in range(args.repeats):
                    rows.append(time_conversion(work, name, raw[name]["sequences"], workers, rep, fsync))
                    _print_row(rows[-1])
    summary = summarise(rows)
    out = Path(args.out).resolve()
    report = write_report(out, "conversion", argv, raw=raw, repeats=args.repeats, runs=rows, summary=summary)
    if args.markdown:
        Path(args.markdown).write_text(markdown_table(summary))
    print(f"written {out}")
    return report


if __name__ == "__main__":
    from fastposegait.cli import run_cli  # quiet on a closed pipe (| head), one line on Ctrl-C

    raise SystemExit(run_cli(main))
