"""SUSTech1K: the single-view-gallery protocol with conditions matched by substring.

Reached through ``evaluate_indoor_dataset(data, 'SUSTech1K')`` (and through
``evaluate_CCPG(data, 'SUSTech1K')``, which the original GPGait++ SUSTech1K config selects).
SUSTech1K types are ``<sequence number>-<covariate codes>`` (``00-nm``, ``01-bg``, …); a type
belongs to a condition when it *contains* one of the condition's patterns, so a type can
belong to several (``01-nm`` is Normal and Overall). The gallery is every ``00-nm`` type.

For every condition, probe view v₁ and gallery view v₂ (all pairs, the diagonal included):
rank-1…5 accuracy of the condition's v₁ probes against the v₂ gallery, each cell rounded to 2
decimals; per probe view the identical view is excluded, ``(row sum − diagonal)/(V − 1)``;
``<cond>@R1`` = the mean of that vector over probe views. Ranks 2-5 are logged only.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import numpy as np

from ..errors import EvaluationError
from .common import PREFIX, _as_list, _fmt_types, _log_table, _single_view_codes, _TestSet
from .view_pairs import exclude_identical_views, view_pair_table

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubstringCondition:
    """A condition: the types containing any of ``patterns``."""

    name: str
    patterns: Tuple[str, ...]

    def matches(self, types: np.ndarray) -> np.ndarray:
        """Bool mask of the types that contain one of the patterns."""
        mask = np.zeros(len(types), dtype=bool)
        for pattern in self.patterns:
            mask |= np.char.find(types.astype(str), pattern) >= 0
        return mask


#: Conditions in the original's order and spelling (``Umberalla`` sic, kept for its result key;
#: ``Umbrella`` is returned too).
SUSTECH1K_CONDITIONS: Tuple[SubstringCondition, ...] = (
    SubstringCondition("Normal", ("01-nm",)),
    SubstringCondition("Bag", ("bg",)),
    SubstringCondition("Clothing", ("cl",)),
    SubstringCondition("Carrying", ("cr",)),
    SubstringCondition("Umberalla", ("ub",)),
    SubstringCondition("Uniform", ("uf",)),
    SubstringCondition("Occlusion", ("oc",)),
    SubstringCondition("Night", ("nt",)),
    SubstringCondition("Overall", ("01", "02", "03", "04")),
)
SUSTECH1K_GALLERY = SubstringCondition("gallery", ("00-nm",))
#: Result names returned under a second, correctly spelled key as well.
SUSTECH1K_ALIASES = {"Umberalla": "Umbrella"}
SUSTECH1K_RANKS = 5


def sustech1k_single_view(test: _TestSet, metric: str, chunk_size: Optional[int] = None,
                          where: str = "evaluate_indoor_dataset(SUSTech1K)") -> Dict[str, Any]:
    """The SUSTech1K protocol on an unpacked test set (see the module doc).

    Returns ``scalar/test_accuracy/<cond>@R1`` for the 9 conditions (plus ``Umbrella@R1``, the
    same value as ``Umberalla@R1``) and ``table/`` entries: the views, per-view vectors
    ``<cond>@R<k>`` for k = 1…5 and the rank-1 matrix ``<cond>-matrix``.

    A condition without any probe is left out with a warning naming it (the original returns
    NaN for it); a condition missing from some probe views, a gallery view without ``00-nm``
    sequences, or fewer than 2 views is an :class:`EvaluationError` naming the cell.
    """
    views, view_code, label_code = _single_view_codes(test, where)
    num_views = len(views)
    gallery_rows = np.flatnonzero(SUSTECH1K_GALLERY.matches(test.types))
    gallery_counts = np.bincount(view_code[gallery_rows], minlength=num_views)
    for v, count in enumerate(gallery_counts):
        if count == 0:
            raise EvaluationError(f"{where}: no gallery sequences (types containing 00-nm) with view {views[v]}")
    small = [f"{views[v]} ({count})" for v, count in enumerate(gallery_counts) if count < SUSTECH1K_RANKS]
    if small:
        logger.warning("%s: fewer than %d gallery sequences in view(s) %s; Rank-k beyond a view's gallery size is "
                       "the accuracy over its whole list", where, SUSTECH1K_RANKS, ", ".join(small))

    per_view: Dict[str, np.ndarray] = {}   # condition -> [R, V] vectors excluding identical views
    matrices: Dict[str, np.ndarray] = {}
    for condition in SUSTECH1K_CONDITIONS:
        probe_rows = np.flatnonzero(condition.matches(test.types))
        if len(probe_rows) == 0:
            logger.warning("%s: no probe sequences of condition %s (types containing %s); it is left out of the "
                           "results", where, condition.name, " or ".join(condition.patterns))
            continue
        table = view_pair_table(test.features, label_code, view_code, num_views, probe_rows, gallery_rows, metric,
                                SUSTECH1K_RANKS, chunk_size)
        empty = [views[v] for v, count in enumerate(table.probe_counts) if count == 0]
        if empty:
            raise EvaluationError(
                f"{where}: no probe sequences of condition {condition.name} (types containing "
                f"{' or '.join(condition.patterns)}) with view {', '.join(empty)}"
            )
        per_view[condition.name] = np.stack(
            [exclude_identical_views(table.accuracy[:, :, r]) for r in range(SUSTECH1K_RANKS)])
        matrices[condition.name] = table.accuracy[:, :, 0]

    if not per_view:
        raise EvaluationError(f"{where}: no test sequence belongs to any SUSTech1K condition "
                              f"({_fmt_types([c.name for c in SUSTECH1K_CONDITIONS])})")
    results: Dict[str, Any] = {}
    tables: Dict[str, Any] = {"table/views": list(views)}
    for name, vectors in per_view.items():
        for key in (name, SUSTECH1K_ALIASES.get(name)):
            if key is not None:
                results[f"{PREFIX}{key}@R1"] = float(np.mean(vectors[0]))
        for r in range(SUSTECH1K_RANKS):
            tables[f"table/{name}@R{r + 1}"] = _as_list(vectors[r])
        tables[f"table/{name}-matrix"] = matrices[name].tolist()
    _log_table(f"Rank-1 (Exclude identical-view cases) [SUSTech1K, gallery per view, {metric}]", views,
               [(name, vectors[0]) for name, vectors in per_view.items()], "mean")
    for r in range(SUSTECH1K_RANKS):
        logger.info("\t".join(f"{name}@R{r + 1}: {float(np.mean(vectors[r])):.2f}%"
                              for name, vectors in per_view.items()))
    results.update(tables)
    return results
