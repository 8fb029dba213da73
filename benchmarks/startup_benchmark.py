"""Start-up time and memory of the dataset index and caches on an OU-MVLP-sized dataset.

One command::

    python benchmarks/startup_benchmark.py                 # 10,307 subjects, ~288k sequences
    python benchmarks/startup_benchmark.py --tiny          # CI: 4 subjects, a few seconds

It generates a synthetic OU-MVLP-like dataset (or reuses one generated earlier by this script
at ``--root``: a ``benchmark_dataset.json`` marker records how it was made), then builds the
TRAIN_SET and TEST_SET indexes, as a train-then-test run does, in fresh processes under four
settings, all in the same run:

* ``index_only`` — ``cache: false``, ``frame_threshold: 0``: the folder walk alone (what any
  start that lists the tree costs);
* ``packed_first_run`` — ``cache: packed`` with no cache on disk (``--slow-repeats`` runs,
  the cache deleted before each): walk, stat, unpickle every file, write the packed cache;
* ``packed_cached_run`` — ``cache: packed`` again (``--repeats`` runs): stat every folder of
  the last walk and every pickle, take the index from the cache, map the file;
* ``legacy_memory`` — ``cache: memory`` (``--slow-repeats`` runs): upstream's ``cache: true``,
  the walk plus unpickling every file into the main process at each start.

For each it records wall time, the main process's peak RSS, and (for the two cached settings)
what one forked DataLoader-like worker costs when it reads every sequence: the growth of its
RSS and of its private dirty pages (memory copied or allocated for it alone; pages of the
packed cache are file pages shared through the page cache and do not count there). Prints a
table and writes ``benchmarks/results/startup_benchmark.json`` (``--out``).

Timings are wall-clock on whatever else the machine is doing; the machine section of the JSON
records the CPU, the core count and the load average so figures can be judged.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import machine_info  # noqa: E402

DEFAULT_OUT = REPO / "benchmarks" / "results" / "startup_benchmark.json"
MARKER = "benchmark_dataset.json"
SPLITS = ("TRAIN_SET", "TEST_SET")


# ------------------------------------------------------------------------------------------
# measurements inside a fresh process


def _smaps_kb() -> Dict[str, int]:
    """This process's memory summary from ``/proc/self/smaps_rollup`` (kB); {} elsewhere."""
    out: Dict[str, int] = {}
    try:
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                    out[parts[0][:-1]] = int(parts[1])
    except OSError:
        pass
    return out


def _touch_in_forked_worker(datasets: List[Any]) -> Dict[str, Any]:
    """Fork a process (as a DataLoader worker is forked) that reads every byte of every
    sequence; return its memory growth and the time it took."""
    import numpy as np

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the "worker"
        os.close(read_fd)
        try:
            before = _smaps_kb()
            start = time.perf_counter()
            checksum = 0.0
            count = 0
            for ds in datasets:
                for i in range(len(ds)):
                    for arr in ds.load(i):
                        checksum += float(np.add.reduce(arr, axis=None, dtype=np.float64))
                        count += 1
            seconds = time.perf_counter() - start
            after = _smaps_kb()
            result = {
                "arrays_read": count,
                "seconds": seconds,
                "rss_growth_mb": (after.get("Rss", 0) - before.get("Rss", 0)) / 1024,
                "private_dirty_growth_mb": (after.get("Private_Dirty", 0) - before.get("Private_Dirty", 0)) / 1024,
                "anonymous_growth_mb": (after.get("Anonymous", 0) - before.get("Anonymous", 0)) / 1024,
                "checksum": checksum,
            }
        except BaseException as exc:  # report, never return into the parent's code
            result = {"error": repr(exc)}
        os.write(write_fd, json.dumps(result).encode())
        os._exit(0)
    os.close(write_fd)
    chunks = []
    while True:
        chunk = os.read(read_fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_fd)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks).decode())


def _child(spec: Dict[str, Any]) -> Dict[str, Any]:
    """One measured start: build both splits' datasets with ``spec['cache']``."""
    import logging

    logging.basicConfig(level=logging.WARNING)
    if spec.get("import_torch"):
        import torch  # noqa: F401  (a training run has it loaded; the progress bar of big splits imports it)
    from fastposegait.data.dataset import PoseDataset

    rss_start = _smaps_kb().get("Rss", 0) / 1024
    start = time.perf_counter()
    splits: Dict[str, Any] = {}
    datasets = []
    for split in SPLITS:
        t0 = time.perf_counter()
        ds = PoseDataset(spec["root"], spec["partition"], training=split == "TRAIN_SET",
                         cache=spec["cache"], frame_threshold=spec["frame_threshold"],
                         cache_dir=spec.get("cache_dir"))
        info = {"seconds": time.perf_counter() - t0, "sequences": len(ds), "cache_mode": ds.cache_mode}
        packed = getattr(ds, "_packed", None)
        if packed is not None:
            info["phases_s"] = dict(packed.timings)
            info["cache_file"] = str(packed.path)
            info["cache_file_bytes"] = os.path.getsize(packed.path)
            info["pickle_files"] = packed.num_files
            info["pickle_bytes"] = int(packed.file_size.sum())
        splits[split] = info
        datasets.append(ds)
    seconds = time.perf_counter() - start
    result = {
        "seconds": seconds,
        "splits": splits,
        "rss_at_start_mb": rss_start,
        "rss_after_mb": _smaps_kb().get("Rss", 0) / 1024,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # kB on Linux
    }
    if spec.get("touch"):
        result["worker"] = _touch_in_forked_worker(datasets)
    return result


def _run_child(spec: Dict[str, Any]) -> Dict[str, Any]:
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--_child", json.dumps(spec)],
                          capture_output=True, text=True, cwd=str(REPO))
    if proc.returncode != 0:
        raise SystemExit(f"measurement {spec['name']} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------
# dataset and machine


def _ensure_dataset(root: Path, num_subjects: int, seed: int, workers: int) -> Dict[str, Any]:
    """Reuse the dataset at ``root`` if this script generated it with the same arguments,
    else generate it (refusing to overwrite a folder it did not make)."""
    wanted = {"layout": "oumvlp", "num_subjects": num_subjects, "seed": seed}
    marker = root / MARKER
    if marker.is_file():
        made = json.loads(marker.read_text())
        if all(made.get(k) == v for k, v in wanted.items()):
            return dict(made, generated_in_this_run=False)
        raise SystemExit(f"{root} holds a benchmark dataset made with {made}, not {wanted}; "
                         "pass another --root or delete that folder")
    if root.exists() and any(root.iterdir()):
        raise SystemExit(f"{root} exists and was not generated by this benchmark; pass another --root")
    from fastposegait.data.synthetic import generate_dataset

    print(f"generating an OU-MVLP-like dataset of {num_subjects} subjects in {root} "
          f"with {workers} worker(s) (once; later runs reuse it)...", flush=True)
    start = time.perf_counter()
    summary = generate_dataset("oumvlp", root, num_subjects=num_subjects, seed=seed, workers=workers)
    made = dict(wanted, sequences=summary.num_sequences, frames=summary.num_frames,
                generation_seconds=time.perf_counter() - start, workers=workers)
    marker.write_text(json.dumps(made))
    return dict(made, generated_in_this_run=True)


# ------------------------------------------------------------------------------------------
# report


def _median(values: List[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _summarise(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    out = {
        "runs_s": [r["seconds"] for r in runs],
        "median_s": _median([r["seconds"] for r in runs]),
        "min_s": min(r["seconds"] for r in runs),
        "per_split_median_s": {s: _median([r["splits"][s]["seconds"] for r in runs]) for s in SPLITS},
        "sequences": {s: runs[0]["splits"][s]["sequences"] for s in SPLITS},
        "cache_mode": runs[0]["splits"]["TRAIN_SET"]["cache_mode"],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "peak_rss_above_start_mb": max(r["peak_rss_mb"] - r["rss_at_start_mb"] for r in runs),
        "rss_at_start_mb": runs[0]["rss_at_start_mb"],
        "rss_after_mb": _median([r["rss_after_mb"] for r in runs]),
    }
    phases = [r["splits"][s].get("phases_s") for r in runs for s in SPLITS]
    if all(phases):
        out["phases_median_s"] = {k: _median([sum(r["splits"][s]["phases_s"][k] for s in SPLITS) for r in runs])
                                  for k in phases[0]}
    workers = [r["worker"] for r in runs if "worker" in r]
    if workers:
        out["worker"] = workers[0]
    return out


def _table(results: Dict[str, Dict[str, Any]]) -> str:
    rows = [("setting", "median s", "min s", "runs", "peak RSS MB (above start)", "worker: RSS +MB",
             "worker: private dirty +MB")]
    labels = {
        "index_only": "index only (cache: false)",
        "packed_first_run": "packed, first run (builds)",
        "packed_cached_run": "packed, cached run",
        "legacy_memory": "legacy (cache: memory)",
    }
    for key, label in labels.items():
        r = results.get(key)
        if r is None:
            continue
        w = r.get("worker", {})
        rows.append((label, f"{r['median_s']:.2f}", f"{r['min_s']:.2f}", str(len(r["runs_s"])),
                     f"{r['peak_rss_mb']:.0f} ({r['peak_rss_above_start_mb']:.0f})",
                     f"{w['rss_growth_mb']:.0f}" if "rss_growth_mb" in w else "-",
                     f"{w['private_dirty_growth_mb']:.0f}" if "private_dirty_growth_mb" in w else "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=10307, help="OU-MVLP subjects (default: the full 10,307)")
    parser.add_argument("--root", type=Path, default=None,
                        help="dataset folder (default /tmp/fastposegait-startup/oumvlp-<subjects>); reused "
                             "when this script generated it with the same arguments")
    parser.add_argument("--repeats", type=int, default=5, help="runs of the fast settings (the median is reported)")
    parser.add_argument("--slow-repeats", type=int, default=2,
                        help="runs of the first (building) run and of the legacy setting")
    parser.add_argument("--frame-threshold", type=int, default=17, help="data_cfg.frame_threshold (OU-MVLP configs: 17)")
    parser.add_argument("--gen-workers", type=int, default=2, help="processes generating the dataset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-legacy", action="store_true", help="leave out the cache: memory setting")
    parser.add_argument("--tiny", action="store_true", help="4 subjects in a temp folder (CI: proves it runs)")
    parser.add_argument("--keep-cache", action="store_true", help="leave the packed cache files on disk")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"JSON output (default {DEFAULT_OUT.relative_to(REPO)}; --tiny: none unless given)")
    parser.add_argument("--_child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child:
        print(json.dumps(_child(json.loads(args._child))))
        return {}

    tmp: Optional[tempfile.TemporaryDirectory] = None
    if args.tiny:
        args.subjects, args.repeats, args.slow_repeats, args.gen_workers = 4, 2, 1, 1
        tmp = tempfile.TemporaryDirectory(prefix="fpg-startup-tiny-")
        args.root = Path(tmp.name) / "oumvlp-4"
    elif args.root is None:
        args.root = Path(tempfile.gettempdir()) / "fastposegait-startup" / f"oumvlp-{args.subjects}"
    out_path = args.out if args.out is not None else (None if args.tiny else DEFAULT_OUT)
    try:
        report = _benchmark(args)
        if out_path is not None:
            out_path.parent.mkdir(parents=True, exist_ok=True)
            out_path.write_text(json.dumps(report, indent=2) + "\n")
            print(f"wrote {out_path}")
        return report
    finally:
        if tmp is not None:
            tmp.cleanup()


def _benchmark(args: argparse.Namespace) -> Dict[str, Any]:
    machine = machine_info(with_torch=False)
    root: Path = args.root
    dataset = _ensure_dataset(root, args.subjects, args.seed, args.gen_workers)
    partition = root / "partition.json"
    cache_dir = root / ".fastposegait_cache"  # the default location, removed for a cold build
    base = {"root": str(root), "partition": str(partition), "frame_threshold": args.frame_threshold,
            "import_torch": not args.tiny}
    results: Dict[str, Dict[str, Any]] = {}
    raw: Dict[str, List[Dict[str, Any]]] = {}

    def measure(name: str, runs: int, touch: bool = False, cold_cache: bool = False, **spec: Any) -> None:
        print(f"measuring {name} ({runs} run(s))...", flush=True)
        raw[name] = []
        for i in range(runs):
            if cold_cache:
                shutil.rmtree(cache_dir, ignore_errors=True)
            # only the first run forks the reading worker, so the other runs time the start alone
            raw[name].append(_run_child(dict(base, name=name, touch=touch and i == 0, **spec)))
        results[name] = _summarise(raw[name])

    measure("index_only", args.repeats, cache=False, frame_threshold=0)
    measure("packed_first_run", args.slow_repeats, cold_cache=True, cache="packed")
    measure("packed_cached_run", args.repeats, cache="packed", touch=True)
    if not args.skip_legacy:
        measure("legacy_memory", args.slow_repeats, cache="memory", touch=True)
    splits = raw["packed_first_run"][0]["splits"]
    cache_bytes = sum(s["cache_file_bytes"] for s in splits.values())
    dataset.update({
        "root": str(root),
        "frame_threshold": args.frame_threshold,
        "pickle_files": sum(s["pickle_files"] for s in splits.values()),
        "pickle_bytes": sum(s["pickle_bytes"] for s in splits.values()),
        "sequences_per_split": {k: s["sequences"] for k, s in splits.items()},
        "packed_cache_bytes": cache_bytes,
    })
    if not args.keep_cache:
        shutil.rmtree(cache_dir, ignore_errors=True)
    report = {
        "benchmark": "startup",
        "command": "python benchmarks/startup_benchmark.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine,
        "dataset": dataset,
        "results": results,
        "speedup_cached_vs_legacy": (results["legacy_memory"]["median_s"] / results["packed_cached_run"]["median_s"]
                                     if "legacy_memory" in results else None),
    }
    print()
    print(f"dataset: {dataset['pickle_files']} pickles ({dataset['pickle_bytes'] / 2**20:.0f} MB) in "
          f"{sum(dataset['sequences_per_split'].values())} sequences, both splits; packed cache "
          f"{cache_bytes / 2**20:.0f} MB; machine: {machine['cpu_model']}, {machine['usable_cpus']} CPU(s), "
          f"load {machine['load_average_at_start']}")
    print(_table(results))
    phases = results["packed_cached_run"].get("phases_median_s")
    if phases:
        print("packed, cached run (medians, both splits): stat every folder %.2f s, stat every pickle %.2f s, "
              "index from the cache %.2f s; walk-free start in %d of %d split openings"
              % (phases["folders_s"], phases["stat_s"], phases["records_s"],
                 sum(r["splits"][s]["phases_s"]["fast_path"] for r in raw["packed_cached_run"] for s in SPLITS),
                 len(raw["packed_cached_run"]) * len(SPLITS)))
    return report


if __name__ == "__main__":
    from fastposegait.cli import run_cli  # quiet on a closed pipe (| head), one line on Ctrl-C

    raise SystemExit(run_cli(main))
