"""What every protocol shares: the evaluator input as arrays, rounding and the logged tables.

The protocols (:mod:`.protocols`, :mod:`.ccpg`, :mod:`.sustech1k`) receive
``data = {'embeddings': [N, C, P], 'labels', 'types', 'views'}`` in index order;
:func:`_unpack` checks it once (missing keys, lengths, NaN/inf embeddings) and returns a
:class:`_TestSet`. Names keep their leading underscore: they are the package's internals,
not API.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..errors import EvaluationError
from .distance import as_feature_tensor
from .ranking import encode

logger = logging.getLogger(__name__)

#: Prefix of every returned scalar (the original's TensorBoard tag, ``test_accuracy/<name>``).
PREFIX = "scalar/test_accuracy/"


@dataclass
class _TestSet:
    features: torch.Tensor  # [N, C, P]
    labels: np.ndarray  # str [N]
    types: np.ndarray
    views: np.ndarray


def _unpack(data: Mapping[str, Any], where: str, device: Optional[Union[str, torch.device]]) -> _TestSet:
    """Validate the evaluator input and return it as a tensor plus string arrays."""
    missing = [key for key in ("embeddings", "labels", "types", "views") if key not in data]
    if missing:
        raise KeyError(f"{where}: evaluation data lacks {', '.join(missing)} (has {', '.join(map(str, data))})")
    features = as_feature_tensor(data["embeddings"], device=device)
    n = features.shape[0]
    columns = {}
    for key in ("labels", "types", "views"):
        column = np.asarray([str(v) for v in data[key]], dtype=str)
        if len(column) != n:
            raise ValueError(f"{where}: {n} embeddings but {len(column)} {key}")
        columns[key] = column
    finite = torch.isfinite(features).flatten(1).all(1)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        first = int(torch.nonzero(~finite)[0])
        raise EvaluationError(
            f"{where}: {bad} embeddings contain NaN or inf (first: "
            f"{columns['labels'][first]}/{columns['types'][first]}/{columns['views'][first]})"
        )
    return _TestSet(features, columns["labels"], columns["types"], columns["views"])


def _single_view_codes(test: _TestSet, where: str) -> Tuple[List[str], np.ndarray, np.ndarray]:
    """The sorted view names of a single-view-gallery test set, and each sequence's view and
    label codes. Such protocols exclude the identical view, so fewer than 2 views is an
    :class:`EvaluationError` (``where`` starts it)."""
    views = sorted(set(test.views.tolist()))
    if len(views) < 2:
        raise EvaluationError(
            f"{where}: the single-view-gallery protocol excludes identical views and needs at least 2 views; "
            f"the test set has only {views}"
        )
    return views, encode(test.views)[0], encode(test.labels)[0]


def _fmt_types(types: Sequence[str]) -> str:
    return ", ".join(types)


def _round2(values: np.ndarray) -> np.ndarray:
    return np.round(values, 2)


def _as_list(values: np.ndarray) -> List[Any]:
    return np.asarray(values, dtype=np.float64).tolist()


def _format_vector(values: Sequence[float], width: int = 7) -> str:
    return " ".join(f"{v:{width}.2f}" for v in values)


def _log_table(title: str, views: Sequence[str], rows: Sequence[Tuple[str, np.ndarray]], mean_name: str) -> None:
    """Log a per-view table: header with the views, one line per condition with its mean."""
    name_width = max([4] + [len(name) for name, _ in rows])
    lines = [f"==={title}===", f"{'':{name_width}}  " + " ".join(f"{v:>7}" for v in views) + f"  {mean_name:>7}"]
    for name, values in rows:
        lines.append(f"{name:{name_width}}  {_format_vector(values)}  {float(np.mean(values)):7.2f}")
    logger.info("\n".join(lines))
