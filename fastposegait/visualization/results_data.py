"""Find the curve and matrix data in a test results dict, whatever evaluator wrote it.

The evaluators return ``scalar/...`` numbers plus JSON-ready ``table/...`` entries whose
shapes differ by protocol. This adapter reads only those returned entries (never the
evaluator's code) and recognises:

* **view labels**: ``table/views`` or ``table/cameras`` (a list of names);
* **rank-1 view-pair matrices** (heatmaps): ``table/<name>-matrix``, a square list of lists,
  rows = probe view, columns = gallery view, in percent; the condition is ``<name>`` without a
  trailing ``@R1`` (CASIA-B/OUMVLP single-view gallery, SUSTech1K, CCPG);
* **CMC curves**, accuracy in percent at ranks 1..K:
  ``table/<name>-cmc`` (percent; CCPG), ``table/Rank-k`` (percent; GREW), ``table/cmc``
  (a fraction, turned into percent: Gait3D; if a ``Rank-1`` scalar says the curve is already
  in percent it is kept), and per-view rank-k vectors ``table/<name>@R1`` ... ``@R<K>`` with
  K >= 2, averaged over the views (SUSTech1K);
* **per-view rank-1 vectors**: ``table/<name>@R1`` or ``table/<name>-Rank@1`` with one value
  per view (single-view and cross-view galleries, CCPG, SUSTech1K).

Whole-test-set curves (GREW, Gait3D) get the condition name ``all``. Entries of any other
shape are ignored: an evaluator that returns no curve data gives an empty
:class:`ResultFigures`, not an error. Values the results JSON stored as ``null`` (NaN) stay NaN.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

TABLE = "table/"
SCALAR = "scalar/test_accuracy/"
#: Condition name of a curve that covers the whole test set (GREW, Gait3D).
WHOLE_SET = "all"


@dataclass
class CMCCurve:
    """Accuracy (percent) at ranks ``1..len(accuracy)`` for one condition."""

    condition: str
    accuracy: np.ndarray  # [K] float64, percent

    @property
    def ranks(self) -> np.ndarray:
        return np.arange(1, len(self.accuracy) + 1)


@dataclass
class ViewMatrix:
    """Rank-1 accuracy (percent) per probe view (rows) and gallery view (columns)."""

    condition: str
    matrix: np.ndarray  # [V, V] float64
    views: List[str]


@dataclass
class PerViewAccuracy:
    """Rank-1 accuracy (percent) per probe view for each condition, one shared view list."""

    views: List[str]
    conditions: Dict[str, np.ndarray] = field(default_factory=dict)  # condition -> [V]


@dataclass
class ResultFigures:
    """The figure data found in one results dict."""

    cmc: List[CMCCurve] = field(default_factory=list)
    matrices: List[ViewMatrix] = field(default_factory=list)
    per_view: Optional[PerViewAccuracy] = None

    def __bool__(self) -> bool:
        return bool(self.cmc or self.matrices or (self.per_view and self.per_view.conditions))


def _numbers(value: Any) -> Optional[np.ndarray]:
    """A flat list of numbers (``None`` = NaN) as float64, or None if it is anything else."""
    if not isinstance(value, (list, tuple)) or not value:
        return None
    out = []
    for v in value:
        if v is None:
            out.append(math.nan)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(float(v))
        elif isinstance(v, np.generic) and np.issubdtype(type(v), np.number):
            out.append(float(v))
        else:
            return None
    return np.asarray(out, dtype=np.float64)


def _square(value: Any) -> Optional[np.ndarray]:
    """A square list of lists of numbers as ``[V, V]`` float64, or None."""
    if not isinstance(value, (list, tuple)) or not value:
        return None
    rows = [_numbers(row) for row in value]
    if any(row is None or len(row) != len(value) for row in rows):
        return None
    return np.stack(rows)


def _labels(results: Mapping[str, Any]) -> Optional[List[str]]:
    for key in (TABLE + "views", TABLE + "cameras"):
        value = results.get(key)
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, (str, int)) for v in value):
            return [str(v) for v in value]
    return None


def _views_for(labels: Optional[List[str]], size: int) -> List[str]:
    return labels if labels is not None and len(labels) == size else [str(i) for i in range(size)]


def _strip_rank1(name: str) -> str:
    return name[: -len("@R1")] if name.endswith("@R1") else name


def _whole_set_cmc(results: Mapping[str, Any]) -> List[CMCCurve]:
    curves = []
    percent = _numbers(results.get(TABLE + "Rank-k"))
    if percent is not None:
        curves.append(CMCCurve(WHOLE_SET, percent))
    fraction = _numbers(results.get(TABLE + "cmc"))
    if fraction is not None:
        rank1 = results.get(SCALAR + "Rank-1")
        if isinstance(rank1, (int, float)) and not isinstance(rank1, bool) and math.isfinite(rank1) \
                and math.isfinite(fraction[0]):
            in_percent = abs(rank1 - fraction[0]) < abs(rank1 - 100 * fraction[0])
        else:
            in_percent = bool(np.any(fraction > 1.0))
        curves.append(CMCCurve(WHOLE_SET, fraction if in_percent else 100 * fraction))
    return curves


def _rank_k_vectors(results: Mapping[str, Any]) -> Dict[str, Dict[int, np.ndarray]]:
    """``table/<name>@R<k>`` per-view vectors grouped by name: name -> {k: vector}."""
    found: Dict[str, Dict[int, np.ndarray]] = {}
    for key, value in results.items():
        match = re.fullmatch(re.escape(TABLE) + r"(.+)@R(\d+)", str(key))
        if not match:
            continue
        vector = _numbers(value)
        if vector is not None:
            found.setdefault(match.group(1), {})[int(match.group(2))] = vector
    return found


def find_figures(results: Mapping[str, Any]) -> ResultFigures:
    """Everything :mod:`fastposegait.visualization.curves` can draw from ``results`` (the
    ``results`` mapping of a test results JSON, or what an evaluator returned)."""
    figures = ResultFigures()
    if not isinstance(results, Mapping):
        return figures
    labels = _labels(results)
    rank_k = _rank_k_vectors(results)
    per_view: Dict[str, np.ndarray] = {}
    for key, value in results.items():
        key = str(key)
        if not key.startswith(TABLE):
            continue
        name = key[len(TABLE):]
        if name.endswith("-matrix"):
            matrix = _square(value)
            if matrix is not None:
                condition = _strip_rank1(name[: -len("-matrix")])
                figures.matrices.append(ViewMatrix(condition, matrix, _views_for(labels, len(matrix))))
        elif name.endswith("-cmc"):
            curve = _numbers(value)
            if curve is not None:
                figures.cmc.append(CMCCurve(name[: -len("-cmc")], curve))
        elif name.endswith("@R1") or name.endswith("-Rank@1"):
            vector = _numbers(value)
            condition = name[: -len("@R1")] if name.endswith("@R1") else name[: -len("-Rank@1")]
            if vector is not None and labels is not None and len(vector) == len(labels):
                per_view[condition] = vector
            ranks = rank_k.get(condition, {}) if name.endswith("@R1") else {}
            if len(ranks) >= 2 and sorted(ranks) == list(range(1, len(ranks) + 1)) \
                    and len({len(v) for v in ranks.values()}) == 1:
                with np.errstate(invalid="ignore"):
                    stacked = np.stack([ranks[k] for k in sorted(ranks)])
                    curve = np.array([np.nan if np.isnan(r).all() else np.nanmean(r) for r in stacked])
                figures.cmc.append(CMCCurve(condition, curve))
    figures.cmc.extend(_whole_set_cmc(results))
    if per_view and labels is not None:
        figures.per_view = PerViewAccuracy(labels, per_view)
    return figures


def file_safe(name: str) -> str:
    """``name`` with every character outside ``[A-Za-z0-9_.+-]`` replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9_.+\-]", "_", name) or "_"


__all__ = ["CMCCurve", "ViewMatrix", "PerViewAccuracy", "ResultFigures", "find_figures", "file_safe", "WHOLE_SET"]
