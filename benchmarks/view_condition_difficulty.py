"""How much harder cross-view and bag/coat probes are, from a CASIA-B-protocol test result.

Reads the ``<save_name>-<tag>-test.json`` that ``--phase test`` writes (single-view gallery
protocol) and prints, per probe condition, the mean rank-1 of the same-view cells (the
diagonal that the protocol excludes), of all cross-view cells, of adjacent views (18 degrees
apart) and of views at least 72 degrees apart. Used to check that the synthetic data makes
view and walking condition matter, as real gait data does.

    python benchmarks/view_condition_difficulty.py output/Synthetic-CASIA-B/GaitGraph2/GaitGraph2-demo/checkpoints/GaitGraph2-demo-00400-test.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np


def difficulty(report: Dict) -> Dict[str, Dict[str, float]]:
    """Per condition: same-view, cross-view, adjacent-view and far-view (>= 4 steps) rank-1."""
    results = report["results"]
    out = {}
    for key, matrix in results.items():
        if not key.endswith("@R1-matrix"):
            continue
        m = np.asarray(matrix, dtype=np.float64)
        steps = np.abs(np.subtract.outer(np.arange(len(m)), np.arange(len(m))))
        out[key[len("table/"):-len("@R1-matrix")]] = {
            "same_view": float(m[steps == 0].mean()),
            "cross_view": float(m[steps > 0].mean()),
            "adjacent_view": float(m[steps == 1].mean()),
            "far_view": float(m[steps >= 4].mean()),
        }
    if not out:
        raise SystemExit("no '<COND>@R1-matrix' tables in this report: it needs the single-view gallery protocol")
    return out


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", type=Path, help="a <save_name>-<tag>-test.json written by --phase test")
    args = parser.parse_args(argv)
    table = difficulty(json.loads(args.report.read_text()))
    print(f"{'condition':10s} {'same view':>10s} {'cross view':>11s} {'adjacent':>9s} {'>=72 deg':>9s}")
    for cond, row in table.items():
        print(f"{cond:10s} {row['same_view']:10.2f} {row['cross_view']:11.2f} {row['adjacent_view']:9.2f} "
              f"{row['far_view']:9.2f}")
    return table


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fastposegait.cli import run_cli  # quiet on a closed pipe (| head), one line on Ctrl-C

    raise SystemExit(run_cli(main))
