"""``fastposegait plot <results.json> [-o folder]``: redraw the pictures of a test results JSON.

The same code as the test phase draws them (:mod:`fastposegait.visualization.curves`): a CMC
curve per condition where the results hold rank-k data, a probe-view x gallery-view rank-1
heatmap per condition where they hold view-pair matrices, and rank-1 per probe view. The PNGs
go next to the JSON (or into ``-o``), named ``<results stem>-<picture>.png``; their paths are
printed, one a line. Results without such data (a GREW submission) draw nothing: a note says so.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..errors import MissingFileError, OutputDirError, ResultsFileError

#: largest results file read (a CASIA-B test JSON is a few kB; SUSTech1K's under 100 kB)
MAX_RESULTS_BYTES = 64 * 1024 * 1024


def read_results(path: Path) -> Dict[str, Any]:
    """Read a test results JSON written by the test phase; one clear error for anything else."""
    if not path.exists():
        raise MissingFileError(f"{path}: no such file; give the <save_name>-<tag>-test.json that the test phase "
                               "wrote under output/<dataset>/<model>/<save_name>/checkpoints/")
    if not path.is_file():
        raise ResultsFileError(f"{path}: not a regular file; give a test results JSON (<save_name>-<tag>-test.json)")
    if path.stat().st_size > MAX_RESULTS_BYTES:
        raise ResultsFileError(f"{path}: {path.stat().st_size:,} bytes, far larger than any test results JSON; "
                               "give the <save_name>-<tag>-test.json of a test run")
    try:
        report = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ResultsFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ResultsFileError(f"{path}: not valid JSON ({str(exc)[:120]}); give the <save_name>-<tag>-test.json "
                               "that the test phase wrote") from None
    if not isinstance(report, dict) or not isinstance(report.get("results"), dict):
        raise ResultsFileError(f"{path}: not a test results file (no 'results' mapping); give the "
                               "<save_name>-<tag>-test.json that the test phase wrote")
    return report


def plot_results(path: Path, out_dir: Optional[Path] = None) -> List[Path]:
    """Draw the pictures of results file ``path`` into ``out_dir`` (default: its folder)."""
    from ..visualization.curves import report_pictures, write_pngs

    report = read_results(path)
    pictures = report_pictures(report)
    folder = out_dir if out_dir is not None else path.parent
    try:
        return write_pngs(pictures, folder, path.stem)
    except OSError as exc:
        raise OutputDirError(f"{exc.filename or folder}: cannot write the pictures ({exc.strerror or exc}); "
                             "give a writable folder with -o") from None


def main(argv: List[str]) -> Optional[int]:
    parser = argparse.ArgumentParser(
        prog="fastposegait plot",
        description="Redraw the CMC curves, rank-1 view-pair heatmaps and rank-1 per view of a test results JSON "
                    "(<save_name>-<tag>-test.json) as PNG files.")
    parser.add_argument("results", type=Path, help="the test results JSON")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="folder for the PNGs (default: the JSON's folder)")
    args = parser.parse_args(argv)
    paths = plot_results(args.results, args.output)
    if not paths:
        print(f"{args.results}: no CMC, view-pair or per-view data in these results; nothing drawn", file=sys.stderr)
    for path in paths:
        print(path)
    return 0
