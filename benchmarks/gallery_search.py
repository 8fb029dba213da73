"""Gallery search latency per probe and memory at 10k, 100k and 1M entries (exact search).

One command::

    python benchmarks/gallery_search.py                 # 10k / 100k / 1M, 1 and 2 threads
    python benchmarks/gallery_search.py --tiny          # CI: tiny galleries, a few seconds

Two embedding sizes: GaitGraph2-sized ``[128, 1]`` and GPGait-sized ``[256, 19]`` (the
CASIA-B config's 256 channels on 19 parts). Each gallery holds ``N`` random float32 entries of
``N / 10`` identities (10 walks each) and is searched with :meth:`Gallery.search` (``cos``,
what the demo configs use; ``euc`` costs the same):

* **layout**: the first search lays the gallery out by identity in the kernel's per-part
  transposed form (once per gallery; every later search reuses it);
* **one probe**: the median latency of a search for a single probe, top 5 (what an
  interactive identify costs);
* **batched**: the time per probe of a search for a batch of ``--batch`` probes at once
  (throughput when probes come in bulk).

Memory: the embeddings' bytes, the layout's bytes, and the resident-set growth while the
layout is built and while a batch is searched (Linux ``VmHWM``, reset before each
measurement). A size whose gallery and layout would not fit in the machine's memory (with
room to spare) is skipped and its needs are printed; the per-probe cost of exact search grows
linearly with ``N · C · P``, which is what the docs extrapolate from.

Threads: ``--threads 1,2`` runs everything once per torch thread count (BLAS threads).
Writes ``benchmarks/results/gallery_search.json`` (``--out``) and prints a table.
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from eval_benchmark import PeakMemory  # noqa: E402
from machine import write_report  # noqa: E402
from fastposegait.recognition.gallery import Gallery  # noqa: E402

SHAPES = {"gaitgraph2": (128, 1), "gpgait": (256, 19)}
SIZES = (10_000, 100_000, 1_000_000)
TINY_SIZES = (200, 1_000)
ENTRIES_PER_IDENTITY = 10


def available_bytes() -> int:
    """``MemAvailable`` of /proc/meminfo (else a generous guess)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 << 30


def make_gallery(n: int, shape: Sequence[int], seed: int = 0) -> Gallery:
    """``n`` random entries, ``n / 10`` identities (``"id<k>"``, 10 consecutive entries each)."""
    rng = np.random.default_rng(seed)
    gallery = Gallery(metric="cos")
    step = 100_000  # enroll in pieces, as a growing gallery would be
    for start in range(0, n, step):
        count = min(step, n - start)
        embeddings = rng.standard_normal((count, *shape), dtype=np.float32)
        identities = [f"id{(start + i) // ENTRIES_PER_IDENTITY}" for i in range(count)]
        gallery.enroll(embeddings, identities)
    return gallery


def measure(n: int, model: str, threads: int, batch: int, repeats: int) -> Dict[str, Any]:
    """One row: latencies and memory of a gallery of ``n`` entries of ``model``'s shape."""
    shape = SHAPES[model]
    torch.set_num_threads(threads)
    gallery = make_gallery(n, shape)
    embeddings_mb = gallery.embeddings.nbytes / 2**20
    probes = np.random.default_rng(1).standard_normal((batch, *shape), dtype=np.float32)
    with PeakMemory() as layout_memory:
        start = time.perf_counter()
        gallery.search(probes[:1], k=5)  # builds the layout
        layout_s = time.perf_counter() - start
    layout = gallery._search_layout()
    layout_mb = (layout.gallery_t.numel() * 4 + (0 if layout.squared is None else layout.squared.numel() * 4)
                 + layout.entries.nbytes + layout.starts.nbytes) / 2**20
    single = []
    for i in range(repeats):
        start = time.perf_counter()
        gallery.search(probes[i % batch: i % batch + 1], k=5)
        single.append(time.perf_counter() - start)
    with PeakMemory() as search_memory:
        start = time.perf_counter()
        results = gallery.search(probes, k=5)
        batch_s = time.perf_counter() - start
    assert len(results) == batch and len(results[0].candidates) == 5
    row = {"model": model, "embedding_shape": list(shape), "entries": n, "identities": len(gallery.identity_names),
           "threads": threads, "embeddings_mb": round(embeddings_mb, 1), "layout_mb": round(layout_mb, 1),
           "layout_s": round(layout_s, 3), "layout_peak_rss_growth_mb": round(layout_memory.mb, 1),
           "one_probe_ms": round(1000 * statistics.median(single), 3), "one_probe_runs": repeats,
           "batch": batch, "batch_s": round(batch_s, 3), "batched_ms_per_probe": round(1000 * batch_s / batch, 3),
           "batch_peak_rss_growth_mb": round(search_memory.mb, 1)}
    del gallery, layout
    gc.collect()
    return row


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny galleries (CI)")
    parser.add_argument("--sizes", help="comma-separated gallery sizes (default 10k, 100k, 1M)")
    parser.add_argument("--models", default="gaitgraph2,gpgait", help="embedding sizes: gaitgraph2, gpgait")
    parser.add_argument("--threads", default="1,2", help="torch thread counts to run (comma-separated)")
    parser.add_argument("--batch", type=int, default=None, help="probes of the batched search (default 256)")
    parser.add_argument("--repeats", type=int, default=None, help="single-probe searches timed (default 9)")
    parser.add_argument("--memory-fraction", type=float, default=0.8,
                        help="skip a size whose gallery + layout exceed this fraction of the available memory")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "gallery_search.json"))
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else list(TINY_SIZES if args.tiny else SIZES)
    models = [m.strip() for m in args.models.split(",")]
    unknown = [m for m in models if m not in SHAPES]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {sorted(SHAPES)}")
    threads = [int(t) for t in args.threads.split(",")]
    batch = args.batch or (8 if args.tiny else 256)
    repeats = args.repeats or (3 if args.tiny else 9)
    rows: List[Dict[str, Any]] = []
    skipped: List[Dict[str, Any]] = []
    print(f"{'model':<11}{'entries':>10}{'thr':>4}{'emb MB':>9}{'layout MB':>10}{'layout s':>9}"
          f"{'1 probe ms':>11}{'batch ms/probe':>15}{'batch RSS+ MB':>14}", flush=True)
    for model in models:
        c, p = SHAPES[model]
        for n in sizes:
            need = 2 * n * c * p * 4 + (64 << 20)  # embeddings + layout + the block buffers
            if need > args.memory_fraction * available_bytes():
                skipped.append({"model": model, "entries": n, "needs_gb": round(need / 2**30, 1),
                                "available_gb": round(available_bytes() / 2**30, 1)})
                print(f"{model:<11}{n:>10}  skipped: needs about {need / 2**30:.1f} GB (embeddings + layout), "
                      f"{available_bytes() / 2**30:.1f} GB available", flush=True)
                continue
            for t in threads:
                row = measure(n, model, t, batch, repeats)
                rows.append(row)
                print(f"{model:<11}{n:>10}{t:>4}{row['embeddings_mb']:>9.0f}{row['layout_mb']:>10.0f}"
                      f"{row['layout_s']:>9.2f}{row['one_probe_ms']:>11.2f}{row['batched_ms_per_probe']:>15.3f}"
                      f"{row['batch_peak_rss_growth_mb']:>14.0f}", flush=True)
    write_report(Path(args.out), "gallery_search", argv, tiny=args.tiny, metric="cos", k=5,
                 entries_per_identity=ENTRIES_PER_IDENTITY, rows=rows, skipped=skipped,
                 omp_num_threads=os.environ.get("OMP_NUM_THREADS"))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
