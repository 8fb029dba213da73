"""What the safe pose loader costs per pickle, against an unrestricted ``pickle.loads``.

Dataset pickles are unpickled by a restricted loader (``fastposegait.data.io``) that checks
every global, call and state a file asks for; that needs the pure-Python unpickler. This
measures it on OU-MVLP-sized sequences (30 frames x 18 joints x 3, float32; the mean of the
synthetic OU-MVLP set) in the forms pose pickles come in: one array (protocol 4 and 2) and a
list of frame arrays. The bytes are in memory, so only the decoding is timed. The loader runs
once per pickle when the packed cache is built (its later starts read no pickle), at each start
with ``cache: memory``, and at each access with ``cache: false``.

    python benchmarks/pickle_loading.py          # writes benchmarks/results/pickle_loading.json
    python benchmarks/pickle_loading.py --tiny
"""
from __future__ import annotations

import argparse
import pickle
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastposegait.data.io import load_pose_bytes  # noqa: E402
from machine import write_report  # noqa: E402

FORMS = {
    "array, protocol 4": lambda seq: pickle.dumps(seq, protocol=4),
    "array, protocol 2": lambda seq: pickle.dumps(seq, protocol=2),
    "list of frames, protocol 4": lambda seq: pickle.dumps(list(seq), protocol=4),
}


def per_pickle_us(load: Callable[[bytes], Any], blobs: List[bytes], repeats: int) -> List[float]:
    """Microseconds per pickle of ``repeats`` passes over ``blobs``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for blob in blobs:
            load(blob)
        times.append(1e6 * (time.perf_counter() - start) / len(blobs))
    return times


def measure(form: str, count: int, repeats: int) -> Dict[str, Any]:
    rng = np.random.default_rng(0)
    blobs = [FORMS[form](rng.random((30, 18, 3), dtype=np.float32)) for _ in range(count)]
    safe = per_pickle_us(lambda b: load_pose_bytes(b, "bench.pkl"), blobs, repeats)
    plain = per_pickle_us(pickle.loads, blobs, repeats)
    return {"form": form, "pickles": count, "bytes_each": len(blobs[0]), "safe_us": safe, "plain_us": plain,
            "median_safe_us": statistics.median(safe), "median_plain_us": statistics.median(plain),
            "ratio": statistics.median(safe) / statistics.median(plain)}


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pickles", type=int, default=2000, help="pickles per pass")
    parser.add_argument("--repeats", type=int, default=5, help="passes (median reported)")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "pickle_loading.json"))
    args = parser.parse_args(argv)
    if args.tiny:
        args.pickles, args.repeats = 20, 1
    rows = [measure(form, args.pickles, args.repeats) for form in FORMS]
    for row in rows:
        print(f"{row['form']:28s} safe {row['median_safe_us']:7.1f} us, plain pickle.loads "
              f"{row['median_plain_us']:6.1f} us per pickle ({row['ratio']:.1f}x)", flush=True)
    return write_report(Path(args.out).resolve(), "pickle_loading", argv, pickles=args.pickles,
                        repeats=args.repeats, tiny=args.tiny, rows=rows)


if __name__ == "__main__":
    from fastposegait.cli import run_cli  # quiet on a closed pipe (| head), one line on Ctrl-C

    raise SystemExit(run_cli(main))
