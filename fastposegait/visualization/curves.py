"""Draw the test results: CMC curves, rank-1 view-pair heatmaps and rank-1 per probe view.

The figures are drawn with matplotlib's object API on an Agg canvas (no pyplot, no global
state, no display needed) into RGB arrays, which go both to PNG files and to TensorBoard.
The data comes from :func:`~fastposegait.visualization.results_data.find_figures`, so the
test phase and ``fastposegait plot`` draw exactly the same pictures from the same dict.

File names, next to ``<stem>.json`` (``<stem>`` = the results file name without ``.json``):
``<stem>-cmc-<condition>.png``, ``<stem>-rank1-<condition>.png`` (probe view x gallery view)
and ``<stem>-rank1-per-view.png``. TensorBoard tags: ``test_cmc/<condition>``,
``test_rank1_views/<condition>`` and ``test_rank1_per_view``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .results_data import CMCCurve, PerViewAccuracy, ResultFigures, ViewMatrix, file_safe, find_figures

logger = logging.getLogger(__name__)

DPI = 100
#: colour map of the heatmaps: 0 % is its first colour, 100 % its last
HEATMAP_CMAP = "viridis"
#: view-pair tables larger than this are drawn without the number in each cell
MAX_ANNOTATED_VIEWS = 14


@dataclass
class Picture:
    """One drawn figure.

    Attributes:
        name: what the file name and TensorBoard tag are built from (e.g. ``cmc-NM``).
        tag: the TensorBoard tag.
        rgb: ``[H, W, 3]`` uint8 pixels.
        to_pixel: maps data coordinates of the main axes ``(x, y)`` to pixel ``(column, row)``
            of ``rgb`` (row 0 at the top); for a heatmap, ``(gallery index, probe index)`` is a
            cell centre.
    """

    name: str
    tag: str
    rgb: np.ndarray
    to_pixel: Callable[[float, float], Tuple[float, float]]


def _render(fig: Figure, ax: Any) -> Tuple[np.ndarray, Callable[[float, float], Tuple[float, float]]]:
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    height = rgb.shape[0]
    transform = ax.transData

    def to_pixel(x: float, y: float) -> Tuple[float, float]:
        px, py = transform.transform((x, y))
        return float(px), float(height - py)

    return rgb, to_pixel


def _title(context: str, text: str) -> str:
    return f"{text}\n{context}" if context else text


def _rank_ticks(max_rank: int) -> List[int]:
    """Rank 1 and multiples of a round step (1, 2, 5, 10, 20, 50, ...), at most about 10."""
    step = 1
    while max_rank / step > 10:
        step = step * 5 // 2 if str(step)[0] == "2" else step * 2
    return [1] + [r for r in range(step, max_rank + 1, step) if r > 1]


def draw_cmc(curve: CMCCurve, context: str = "") -> Picture:
    """The CMC curve of one condition: accuracy (%) against rank, rank-1 written on the plot."""
    fig = Figure(figsize=(6.0, 4.0), dpi=DPI)
    ax = fig.add_subplot()
    ranks = curve.ranks
    ax.plot(ranks, curve.accuracy, marker="o", markersize=4 if len(ranks) <= 20 else 2.5, color="tab:blue",
            linewidth=1.5)
    ax.set_xlim(0.5, max(len(ranks), 2) + 0.5)
    ax.set_ylim(0, 102)
    ax.set_xlabel("rank")
    ax.set_ylabel("identification rate (%)")
    ax.grid(True, alpha=0.3)
    ax.set_xticks(_rank_ticks(len(ranks)))
    first = curve.accuracy[0]
    if np.isfinite(first):
        ax.text(0.98, 0.04, f"rank-1 {first:.2f}%", transform=ax.transAxes, ha="right", va="bottom", fontsize=9)
    ax.set_title(_title(context, f"CMC, {curve.condition}"), fontsize=10)
    fig.tight_layout()
    rgb, to_pixel = _render(fig, ax)
    return Picture(f"cmc-{file_safe(curve.condition)}", f"test_cmc/{curve.condition}", rgb, to_pixel)


def draw_view_matrix(table: ViewMatrix, context: str = "", annotate: Optional[bool] = None) -> Picture:
    """A probe-view x gallery-view heatmap of rank-1 accuracy, 0-100 % on a fixed colour scale
    (so pictures of different runs compare); each cell shows its value when the table is small."""
    views = table.views
    size = len(views)
    side = min(4.0 + 0.35 * size, 12.0)
    fig = Figure(figsize=(side + 1.2, side), dpi=DPI)
    ax = fig.add_subplot()
    masked = np.ma.masked_invalid(table.matrix)
    image = ax.imshow(masked, cmap=HEATMAP_CMAP, vmin=0.0, vmax=100.0, origin="upper", aspect="equal",
                      interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="rank-1 (%)")
    ax.set_xticks(range(size))
    ax.set_yticks(range(size))
    ax.set_xticklabels(views, rotation=90 if size > 6 else 0, fontsize=8)
    ax.set_yticklabels(views, fontsize=8)
    ax.set_xlabel("gallery view")
    ax.set_ylabel("probe view")
    if annotate is None:
        annotate = size <= MAX_ANNOTATED_VIEWS
    if annotate:
        for i in range(size):
            for j in range(size):
                value = table.matrix[i, j]
                if np.isfinite(value):
                    ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=7,
                            color="black" if value > 60 else "white")
    ax.set_title(_title(context, f"rank-1 per view pair, {table.condition}"), fontsize=10)
    fig.tight_layout()
    rgb, to_pixel = _render(fig, ax)
    return Picture(f"rank1-{file_safe(table.condition)}", f"test_rank1_views/{table.condition}", rgb, to_pixel)


def draw_per_view(per_view: PerViewAccuracy, context: str = "") -> Picture:
    """Rank-1 accuracy against probe view, one line per condition."""
    fig = Figure(figsize=(6.4, 4.0), dpi=DPI)
    ax = fig.add_subplot()
    x = np.arange(len(per_view.views))
    for condition, values in per_view.conditions.items():
        ax.plot(x, values, marker="o", markersize=4, linewidth=1.5, label=condition)
    ax.set_xticks(x)
    ax.set_xticklabels(per_view.views, rotation=90 if len(x) > 12 else 0, fontsize=8)
    ax.set_xlim(-0.5, len(x) - 0.5)
    ax.set_ylim(0, 102)
    ax.set_xlabel("probe view")
    ax.set_ylabel("rank-1 (%)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncol=min(len(per_view.conditions), 5), loc="best")
    ax.set_title(_title(context, "rank-1 per probe view"), fontsize=10)
    fig.tight_layout()
    rgb, to_pixel = _render(fig, ax)
    return Picture("rank1-per-view", "test_rank1_per_view", rgb, to_pixel)


def _unique(pictures: List[Picture]) -> List[Picture]:
    """Give repeated names (two curves of one condition) a numbered suffix."""
    seen: Dict[str, int] = {}
    for picture in pictures:
        count = seen.get(picture.name, 0)
        seen[picture.name] = count + 1
        if count:
            picture.name = f"{picture.name}-{count + 1}"
            picture.tag = f"{picture.tag}-{count + 1}"
    return pictures


def draw_figures(figures: ResultFigures, context: str = "") -> List[Picture]:
    """Every picture of ``figures``: the CMC curves, the heatmaps, then the per-view chart."""
    pictures = [draw_cmc(curve, context) for curve in figures.cmc]
    pictures += [draw_view_matrix(table, context) for table in figures.matrices]
    if figures.per_view is not None and figures.per_view.conditions:
        pictures.append(draw_per_view(figures.per_view, context))
    return _unique(pictures)


def report_context(report: Mapping[str, Any]) -> str:
    """A one-line subtitle from a results report: dataset, protocol, metric, checkpoint."""
    parts = [str(report[key]) for key in ("dataset", "eval_func", "metric") if isinstance(report.get(key), str)]
    checkpoint = report.get("checkpoint")
    if isinstance(checkpoint, str):
        parts.append(Path(checkpoint).name)
    return ", ".join(parts)


def report_pictures(report: Mapping[str, Any]) -> List[Picture]:
    """The pictures of a whole results report (``{"results": {...}, "dataset": ..., ...}``)."""
    results = report.get("results")
    if not isinstance(results, Mapping):
        return []
    return draw_figures(find_figures(results), report_context(report))


def write_pngs(pictures: List[Picture], folder: Path, stem: str) -> List[Path]:
    """Write each picture as ``<folder>/<stem>-<name>.png``; returns the paths."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for picture in pictures:
        path = folder / f"{stem}-{picture.name}.png"
        tmp = path.with_name(f".{path.name}.tmp")
        Image.fromarray(picture.rgb).save(tmp, format="PNG", optimize=True)
        tmp.replace(path)
        paths.append(path)
    return paths


__all__ = ["Picture", "draw_cmc", "draw_view_matrix", "draw_per_view", "draw_figures", "report_context",
           "report_pictures", "write_pngs"]
