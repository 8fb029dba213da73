"""CCPG (Cloth-Changing Person Gait): four clothing-change groups, Re-ID metrics and view tables.

CCPG types are clothing statuses ``U<k>_D<k>`` (upper / lower garment) with ``_BG`` for a
bag; views are ``<camera>_<suffix>`` and only the camera (the part before the first ``_``)
matters. Each group pairs probe types with gallery types (:data:`CCPG_GROUPS`):

* **Re-ID metrics**: all probes of the group against all its gallery sequences; per probe the
  gallery entries of its own subject *and* camera are removed (other subjects' entries of that
  camera stay); probes left without a match are skipped; rank-1 (CMC[0]), mAP and mINP.
* **View-pair table**: for every probe camera v₁ and gallery camera v₂ (diagonal included),
  rank-1 of the v₁ probes against the v₂ gallery (no removal), cells rounded to 2 decimals;
  its mean with identical cameras included, and per probe camera the mean excluding them.

The deliberate differences from the original ``evaluate_CCPG`` (it cuts the caller's view
strings, accepts only ``CCPG``, crashes on small galleries and ragged CMC rows, and returns
V×V arrays under scalar keys) are listed in docs/upstream_differences.md, "CCPG protocol".
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch

from ..errors import EvaluationError
from ..registry import EVALUATORS
from .common import PREFIX, _as_list, _fmt_types, _TestSet, _unpack
from .ranking import encode, rank_features
from .sustech1k import sustech1k_single_view
from .view_pairs import exclude_identical_views, view_pair_table

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CCPGGroup:
    """One CCPG test: probes of ``probe_types`` against a gallery of ``gallery_types``."""

    name: str
    probe_types: Tuple[str, ...]
    gallery_types: Tuple[str, ...]


#: The four groups in the original's order: full outfit change, upper garment changed, lower
#: garment changed, bag.
CCPG_GROUPS: Tuple[CCPGGroup, ...] = (
    CCPGGroup("CL", ("U0_D0_BG", "U0_D0"), ("U1_D1", "U2_D2", "U3_D3")),
    CCPGGroup("UP", ("U3_D3",), ("U0_D3",)),
    CCPGGroup("DN", ("U1_D0",), ("U1_D1",)),
    CCPGGroup("BG", ("U0_D0_BG",), ("U0_D0",)),
)
#: The 7 clothing statuses the groups use.
CCPG_TYPES: Tuple[str, ...] = ("U0_D0", "U0_D0_BG", "U0_D3", "U1_D0", "U1_D1", "U2_D2", "U3_D3")
#: Largest rank of the Re-ID CMC curve (lowered to the gallery size on small sets).
CCPG_MAX_RANK = 50
#: Datasets ``evaluate_CCPG`` evaluates with another protocol (the original GPGait++ SUSTech1K
#: config selects ``evaluate_CCPG``).
REDIRECTED = MappingProxyType({"SUSTech1K": "the SUSTech1K single-view-gallery protocol"})


def camera_of(view: str) -> str:
    """CCPG camera id of a view folder name: the part before the first ``_`` (``01_2`` -> ``01``)."""
    return view.split("_", 1)[0]


def _reid_metrics(test: _TestSet, group: CCPGGroup, probe_rows: np.ndarray, gallery_rows: np.ndarray,
                  cameras: np.ndarray, metric: str, chunk_size: Optional[int], where: str) -> Dict[str, Any]:
    """Rank-1, mAP, mINP and the CMC curve (×100) of one group, same-subject-same-camera
    gallery entries removed per probe."""
    label_code, camera_code = encode(test.labels)[0], encode(cameras)[0]
    ranking = rank_features(
        test.features[probe_rows], test.features[gallery_rows], label_code[probe_rows], label_code[gallery_rows],
        camera_code[probe_rows], camera_code[gallery_rows], metric=metric, chunk_size=chunk_size,
    ).cpu()
    valid = ranking.has_match
    num_valid = int(valid.sum())
    if num_valid == 0:
        raise EvaluationError(
            f"{where}: group {group.name}: no probe (types {_fmt_types(group.probe_types)}) has a same-subject gallery "
            f"sequence (types {_fmt_types(group.gallery_types)}) from another camera; rank-1/mAP/mINP are undefined"
        )
    if num_valid < len(probe_rows):
        logger.info("%s: group %s: %d of %d probes have no same-subject gallery sequence from another camera and "
                    "are skipped", where, group.name, len(probe_rows) - num_valid, len(probe_rows))
    max_rank = min(CCPG_MAX_RANK, len(gallery_rows))
    if len(gallery_rows) < CCPG_MAX_RANK:
        logger.info("%s: group %s: %d gallery sequences (< %d); the CMC curve stops there", where, group.name,
                    len(gallery_rows), CCPG_MAX_RANK)
    # A probe's list is shorter by its own removed entries; rows are the same length whatever it
    # is (a probe found at position k counts at every rank >= k: docs/upstream_differences.md).
    max_rank = min(max_rank, int(ranking.num_candidates[valid].max()))
    # float32 CMC like the original (and Gait3D here), then ×100 in float32
    cmc = ranking.cmc_counts(max_rank).astype(np.float32) / np.float32(num_valid) * np.float32(100)
    return {
        "rank1": float(cmc[0]),
        "mAP": 100 * float(ranking.average_precision[valid].double().mean()),
        "mINP": 100 * float(ranking.inverse_negative_penalty[valid].double().mean()),
        "cmc": cmc,
    }


def _check_cells(where: str, group: CCPGGroup, cameras: List[str], probe_counts: np.ndarray,
                 gallery_counts: np.ndarray) -> None:
    for kind, counts, types in (("probe", probe_counts, group.probe_types),
                                ("gallery", gallery_counts, group.gallery_types)):
        empty = [cameras[v] for v, count in enumerate(counts) if count == 0]
        if empty:
            raise EvaluationError(
                f"{where}: group {group.name}: no {kind} sequences of types {_fmt_types(types)} from camera "
                f"{', '.join(empty)} (cameras = view names up to the first '_')"
            )


def ccpg_protocol(test: _TestSet, metric: str, chunk_size: Optional[int] = None,
                  where: str = "evaluate_CCPG(CCPG)") -> Dict[str, Any]:
    """The CCPG protocol on an unpacked test set; see :func:`evaluate_CCPG` for what it returns."""
    cameras = np.asarray([camera_of(v) for v in test.views.tolist()], dtype=str)
    camera_list = sorted(set(cameras.tolist()))
    num_cameras = len(camera_list)
    if num_cameras < 2:
        raise EvaluationError(
            f"{where}: CCPG excludes same-camera matches and needs at least 2 cameras; the test set has only "
            f"{camera_list} (cameras = view names up to the first '_')"
        )
    label_code, camera_code = encode(test.labels)[0], encode(cameras)[0]

    groups: Dict[str, Dict[str, Any]] = {}
    for group in CCPG_GROUPS:
        probe_rows = np.flatnonzero(np.isin(test.types, group.probe_types))
        gallery_rows = np.flatnonzero(np.isin(test.types, group.gallery_types))
        table = view_pair_table(test.features, label_code, camera_code, num_cameras, probe_rows, gallery_rows,
                                metric, max_rank=1, chunk_size=chunk_size)
        _check_cells(where, group, camera_list, table.probe_counts, table.gallery_counts)
        logger.info("%s: gallery %d sequences (%s), probe %d sequences (%s)", group.name, len(gallery_rows),
                    _fmt_types(group.gallery_types), len(probe_rows), _fmt_types(group.probe_types))
        matrix = table.accuracy[:, :, 0]
        groups[group.name] = {
            **_reid_metrics(test, group, probe_rows, gallery_rows, cameras, metric, chunk_size, where),
            "matrix": matrix,
            "per_camera": exclude_identical_views(matrix),
        }

    def line(values: Mapping[str, float]) -> str:
        return ",\t".join(f"{name}: {value:.3f}" for name, value in values.items())

    reid = "(Exclude identical-view cases for Person Re-Identification)"
    logger.info("\n".join([
        f"===Rank-1 {reid}===", line({g: r["rank1"] for g, r in groups.items()}),
        f"===mAP {reid}===", line({g: r["mAP"] for g, r in groups.items()}),
        f"===mINP {reid}===", line({g: r["mINP"] for g, r in groups.items()}),
        "===Rank-1 (Include identical-view cases)===",
        line({g: float(r["matrix"].mean()) for g, r in groups.items()}),
        "===Rank-1 (Exclude identical-view cases)===",
        line({g: float(r["per_camera"].mean()) for g, r in groups.items()}),
        f"===Rank-1 of each angle (Exclude identical-view cases) [cameras {', '.join(camera_list)}]===",
        *(f"{g}: [{' '.join(f'{v:.2f}' for v in r['per_camera'])}]" for g, r in groups.items()),
    ]))

    results: Dict[str, Any] = {}
    tables: Dict[str, Any] = {"table/cameras": camera_list}
    for name, r in groups.items():
        results[PREFIX + name] = float(r["matrix"].mean())
        results[PREFIX + f"{name}@R1"] = float(r["per_camera"].mean())
        results[PREFIX + f"{name}-Rank@1"] = r["rank1"]
        results[PREFIX + f"{name}-mAP"] = r["mAP"]
        results[PREFIX + f"{name}-mINP"] = r["mINP"]
        tables[f"table/{name}-matrix"] = r["matrix"].tolist()
        tables[f"table/{name}@R1"] = _as_list(r["per_camera"])
        tables[f"table/{name}-cmc"] = _as_list(r["cmc"])
    results.update(tables)
    return results


@EVALUATORS.register("evaluate_CCPG")
def evaluate_CCPG(  # noqa: N802 - the original's name, used in configs
    data: Mapping[str, Any],
    dataset: str,
    metric: str = "euc",
    device: Optional[Union[str, torch.device]] = None,
    chunk_size: Optional[int] = None,
) -> Dict[str, Any]:
    """The CCPG protocol (see the module doc); ``SUSTech1K`` is evaluated with its own protocol.

    Returns, for each group ``G`` in CL, UP, DN, BG (``scalar/test_accuracy/`` + name):

    * ``G`` — mean of the camera-pair rank-1 table, identical cameras included: the value the
      original writes to TensorBoard under this tag (it returns the whole table there);
    * ``G@R1`` — mean over probe cameras of the rank-1 excluding identical cameras;
    * ``G-Rank@1``, ``G-mAP``, ``G-mINP`` — the Re-ID metrics (×100), which the original only logs;

    and ``table/`` entries: ``cameras``, ``G-matrix`` (the table, rows = probe camera),
    ``G@R1`` (the per-camera vector) and ``G-cmc`` (the Re-ID CMC curve, ×100).

    The caller's ``data['views']`` is not modified. A dataset other than ``CCPG`` or
    ``SUSTech1K``, fewer than 2 cameras, an empty (group, camera) probe or gallery cell, or a
    group without any probe that has a match from another camera is an :class:`EvaluationError`.
    """
    where = f"evaluate_CCPG({dataset})"
    if dataset in REDIRECTED:
        logger.info("%s: test_dataset_name %s is evaluated with %s", where, dataset, REDIRECTED[dataset])
        return sustech1k_single_view(_unpack(data, where, device), metric, chunk_size, where=where)
    if dataset != "CCPG":
        raise EvaluationError(
            f"{where}: evaluate_CCPG evaluates test_dataset_name CCPG (or SUSTech1K), got {dataset!r}; set "
            "data_cfg.test_dataset_name to CCPG or choose another evaluator_cfg.eval_func"
        )
    return ccpg_protocol(_unpack(data, where, device), metric, chunk_size, where)
