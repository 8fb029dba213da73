"""The benchmark protocols: which sequences are probes and gallery, what is reported.

Each evaluator is registered in :data:`~fastposegait.registry.EVALUATORS` under the original
FastPoseGait's function name and is called as ``fn(data, dataset, **kw)`` where ``data = {'embeddings': [N, C, P],
'labels': [...], 'types': [...], 'views': [...]}`` (index order) and ``kw`` holds the
``evaluator_cfg`` keys among ``metric``, ``cross_view_gallery``, ``output_dir`` and
``dataset_partition``. Each returns ``{'scalar/test_accuracy/<name>': float, ...}`` with
the original's scalar names, plus JSON-ready ``table/...`` entries (per-view vectors, CMC
curves).

The probe/gallery splits are frozen tables below (data, not ``if`` branches). Every protocol
computes one distance matrix block by block and reduces it with masks; degenerate sets (an empty
probe or gallery cell, too few views) raise an :class:`~fastposegait.errors.EvaluationError` (a
``ValueError``) naming the protocol, condition, view and types instead of producing NaN or
crashing deep inside (docs/upstream_differences.md, "Degenerate probe or gallery sets"). The
deliberate differences from the original protocols are listed under "Evaluation" in
docs/upstream_differences.md.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Dict, Mapping, Optional, Sequence, Set, Tuple, Union

import numpy as np
import torch

from ..data.io import atomic_write
from ..errors import EvaluationError, MissingFileError
from ..registry import EVALUATORS, UnknownNameError
from .common import PREFIX, _as_list, _fmt_types, _log_table, _round2, _single_view_codes, _TestSet, _unpack
from .distance import auto_chunk_size, iter_distance_chunks
from .ranking import encode, rank_features, smallest_k_stable
from .sustech1k import sustech1k_single_view
from .view_pairs import first_match_in_slices

#: ranks of the CMC curve of the single-view-gallery protocol (``table/<condition>-cmc``: the
#: mean over probe views and the other gallery views, as rank-1 is averaged; its first value is
#: the condition's rank-1)
SINGLE_VIEW_CMC_RANKS = 5

logger = logging.getLogger(__name__)



# --------------------------------------------------------------------------------------------
# Protocol tables
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """A named probe condition (e.g. ``BG``) and the sequence types that make it up."""

    name: str
    probe_types: Tuple[str, ...]


@dataclass(frozen=True)
class IndoorProtocol:
    """Probe conditions and gallery types of one indoor benchmark variant."""

    conditions: Tuple[Condition, ...]
    gallery_types: Tuple[str, ...]


#: Single-view gallery: every (condition, probe view, gallery view) cell is its own test.
INDOOR_SINGLE_VIEW: Mapping[str, IndoorProtocol] = MappingProxyType(
    {
        "CASIA-B": IndoorProtocol(
            conditions=(
                Condition("NM", ("nm-05", "nm-06")),
                Condition("BG", ("bg-01", "bg-02")),
                Condition("CL", ("cl-01", "cl-02")),
            ),
            gallery_types=("nm-01", "nm-02", "nm-03", "nm-04"),
        ),
        "OUMVLP": IndoorProtocol(conditions=(Condition("NM", ("00",)),), gallery_types=("01",)),
    }
)

#: Cross-view gallery: one gallery over all views, same-subject-same-view entries excluded.
INDOOR_CROSS_VIEW: Mapping[str, IndoorProtocol] = MappingProxyType(
    {
        "CASIA-B": IndoorProtocol(
            conditions=(
                Condition("NM", ("nm-01",)),
                Condition("BG", ("bg-01",)),
                Condition("CL", ("cl-01",)),
            ),
            gallery_types=("nm-02", "bg-02", "cl-02"),
        ),
        "OUMVLP": IndoorProtocol(conditions=(Condition("NM", ("00",)),), gallery_types=("01",)),
    }
)

SUSTECH1K = "SUSTech1K"

#: Where to send datasets that have a protocol of their own.
OTHER_PROTOCOLS: Mapping[str, str] = MappingProxyType(
    {"GREW": "evaluate_real_scene (or GREW_submission)", "Gait3D": "evaluate_Gait3D", "CCPG": "evaluate_CCPG"}
)


@dataclass(frozen=True)
class RetrievalProtocol:
    """Probe types vs gallery types, the ranks reported and the ranks returned as scalars."""

    probe_types: Tuple[str, ...]
    gallery_types: Tuple[str, ...]
    logged_ranks: Tuple[int, ...]
    returned_ranks: Tuple[int, ...]


GREW_LOCAL = RetrievalProtocol(
    probe_types=("02",), gallery_types=("01",), logged_ranks=(1, 5, 10, 20), returned_ranks=(1, 5)
)
GREW_SUBMISSION = RetrievalProtocol(
    probe_types=("03",), gallery_types=("01", "02"), logged_ranks=(), returned_ranks=()
)
GREW_SUBMISSION_TOP_K = 20
GAIT3D_RANKS = (1, 5, 10)


# --------------------------------------------------------------------------------------------
# Indoor (CASIA-B, OUMVLP)
# --------------------------------------------------------------------------------------------


def _indoor_protocol(dataset: str, cross_view_gallery: bool) -> IndoorProtocol:
    table = INDOOR_CROSS_VIEW if cross_view_gallery else INDOOR_SINGLE_VIEW
    if dataset in table:
        return table[dataset]
    supported = list(table) if cross_view_gallery else [*table, SUSTECH1K]
    hint = f" Use {OTHER_PROTOCOLS[dataset]} for {dataset}." if dataset in OTHER_PROTOCOLS else ""
    if dataset == SUSTECH1K:
        hint = " SUSTech1K has the single-view-gallery protocol only: set evaluator_cfg.cross_view_gallery to false."
    raise UnknownNameError(
        f"evaluate_indoor_dataset: unsupported dataset {dataset!r} (test_dataset_name)"
        f"{' with cross_view_gallery' if cross_view_gallery else ''}; supported: {', '.join(supported)}.{hint}"
    )


def _probe_rows(test: _TestSet, protocol: IndoorProtocol) -> Tuple[np.ndarray, np.ndarray]:
    """Probe row indices (condition by condition, index order inside) and their condition number."""
    rows, conditions = [], []
    for number, condition in enumerate(protocol.conditions):
        idx = np.flatnonzero(np.isin(test.types, condition.probe_types))
        rows.append(idx)
        conditions.append(np.full(len(idx), number, dtype=np.int64))
    return np.concatenate(rows), np.concatenate(conditions)


def _check_cells(
    where: str,
    protocol: IndoorProtocol,
    views: Sequence[str],
    probe_cells: np.ndarray,
    gallery_views: Optional[np.ndarray],
) -> None:
    """Raise a clear error for an empty probe cell (condition × view) or gallery view (the original
    returns NaN or crashes: docs/upstream_differences.md, "Degenerate probe or gallery sets")."""
    if gallery_views is not None:
        present = np.bincount(gallery_views, minlength=len(views))
        for v, count in enumerate(present):
            if count == 0:
                raise EvaluationError(
                    f"{where}: no gallery sequences of types {_fmt_types(protocol.gallery_types)} with view {views[v]}"
                )
    counts = np.bincount(probe_cells, minlength=len(protocol.conditions) * len(views))
    for cell, count in enumerate(counts):
        if count == 0:
            condition = protocol.conditions[cell // len(views)]
            raise EvaluationError(
                f"{where}: no probe sequences of condition {condition.name} "
                f"(types {_fmt_types(condition.probe_types)}) with view {views[cell % len(views)]}"
            )


def _single_view_gallery(
    test: _TestSet, dataset: str, protocol: IndoorProtocol, metric: str, chunk_size: Optional[int]
) -> Dict[str, Any]:
    where = f"evaluate_indoor_dataset({dataset})"
    views, view_code, label_code = _single_view_codes(test, where)
    num_views = len(views)
    probe_rows, probe_condition = _probe_rows(test, protocol)
    gallery_rows = np.flatnonzero(np.isin(test.types, protocol.gallery_types))
    probe_cells = probe_condition * num_views + view_code[probe_rows]
    if len(gallery_rows) == 0:
        raise EvaluationError(f"{where}: no gallery sequences of types {_fmt_types(protocol.gallery_types)}")
    _check_cells(where, protocol, views, probe_cells, view_code[gallery_rows])

    # One distance pass: for each probe and every gallery view, the position of its first
    # same-subject entry in that view's stable (distance, index) order. The gallery is laid out
    # view by view (stable, so ties still rank the lowest index of the original order first);
    # position 1 is a rank-1 hit (the view's nearest entry, lowest index among ties, is a match).
    device = test.features.device
    by_view = gallery_rows[np.argsort(view_code[gallery_rows], kind="stable")]
    bounds = np.searchsorted(view_code[by_view], np.arange(num_views + 1))
    gallery_label = torch.as_tensor(label_code[by_view], device=device)
    probe_label = torch.as_tensor(label_code[probe_rows], device=device)
    features = test.features
    positions = torch.empty(len(probe_rows), num_views, dtype=torch.long, device=device)
    chunk = chunk_size or auto_chunk_size(len(by_view))
    for start, dist in iter_distance_chunks(features[probe_rows], features[by_view], metric, chunk):
        stop = start + dist.shape[0]
        positions[start:stop] = first_match_in_slices(dist, probe_label[start:stop], gallery_label, bounds)

    # acc[rank, condition, probe view, gallery view] = round(100 * hits within rank / probes, 2)
    num_cells = len(protocol.conditions) * num_views
    cells = torch.as_tensor(probe_cells, device=device)
    probe_counts = np.bincount(probe_cells, minlength=num_cells).astype(np.float64)
    acc = np.empty((SINGLE_VIEW_CMC_RANKS, len(protocol.conditions), num_views, num_views))
    for r in range(SINGLE_VIEW_CMC_RANKS):
        hits = (positions > 0) & (positions <= r + 1)
        hit_counts = torch.zeros(num_cells, num_views, dtype=torch.long, device=device).index_add_(0, cells, hits.long())
        hit_counts = hit_counts.cpu().numpy().astype(np.float64)
        acc[r] = _round2(hit_counts * 100 / probe_counts[:, None]).reshape(len(protocol.conditions), num_views,
                                                                           num_views)

    # Exclude identical-view cells: zero the diagonal, then sum each row, as the original does
    # (docs/upstream_differences.md, "Single-view rounding and view exclusion (kept)"); e.g.
    # [33.33, 100] gives exactly 100.0, not 133.33 - 33.33 = 99.99999999999999.
    off_diagonal = acc * (1 - np.eye(num_views))
    per_view_ranks = off_diagonal.sum(3) / (num_views - 1)  # [rank, condition, probe view]
    per_view = per_view_ranks[0]
    results: Dict[str, Any] = {}
    tables: Dict[str, Any] = {"table/views": list(views)}
    for number, condition in enumerate(protocol.conditions):
        name = f"{condition.name}@R1"
        results[PREFIX + name] = float(np.mean(per_view[number]))
        tables[f"table/{name}"] = _as_list(per_view[number])
        tables[f"table/{name}-matrix"] = acc[0, number].tolist()
        tables[f"table/{condition.name}-cmc"] = [float(np.mean(per_view_ranks[r, number]))
                                                 for r in range(SINGLE_VIEW_CMC_RANKS)]
    _log_table(
        f"Rank-1 (Exclude identical-view cases) [{dataset}, gallery per view, {metric}]",
        views,
        [(c.name, per_view[i]) for i, c in enumerate(protocol.conditions)],
        "mean",
    )
    logger.info(
        "\t".join(f"{c.name}@R1: {results[PREFIX + c.name + '@R1']:.2f}%" for c in protocol.conditions)
    )
    results.update(tables)
    return results


def _cross_view_gallery(
    test: _TestSet, dataset: str, protocol: IndoorProtocol, metric: str, chunk_size: Optional[int]
) -> Dict[str, Any]:
    where = f"evaluate_indoor_dataset({dataset}, cross_view_gallery)"
    views = sorted(set(test.views.tolist()))
    num_views = len(views)
    view_code = encode(test.views)[0]
    label_code = encode(test.labels)[0]
    probe_rows, probe_condition = _probe_rows(test, protocol)
    gallery_rows = np.flatnonzero(np.isin(test.types, protocol.gallery_types))
    if len(gallery_rows) == 0:
        raise EvaluationError(f"{where}: no gallery sequences of types {_fmt_types(protocol.gallery_types)}")
    probe_cells = probe_condition * num_views + view_code[probe_rows]
    _check_cells(where, protocol, views, probe_cells, None)

    ranking = rank_features(
        test.features[probe_rows],
        test.features[gallery_rows],
        label_code[probe_rows],
        label_code[gallery_rows],
        view_code[probe_rows],
        view_code[gallery_rows],
        metric=metric,
        chunk_size=chunk_size,
    ).cpu()
    no_candidates = (ranking.num_candidates == 0).numpy()
    if no_candidates.any():
        i = int(np.flatnonzero(no_candidates)[0])
        row = probe_rows[i]
        raise EvaluationError(
            f"{where}: probe {test.labels[row]}/{test.types[row]}/{test.views[row]} "
            f"(condition {protocol.conditions[probe_condition[i]].name}, view {test.views[row]}) has no gallery "
            f"sequence left after removing its own subject's view-{test.views[row]} sequences "
            f"(gallery types {_fmt_types(protocol.gallery_types)})"
        )

    num_cells = len(protocol.conditions) * num_views
    hits = ranking.hits_at(1).numpy().astype(np.float64)
    has_match = ranking.has_match.numpy()
    ap = ranking.average_precision.numpy()
    probe_counts = np.bincount(probe_cells, minlength=num_cells)
    accuracy = np.bincount(probe_cells, weights=hits, minlength=num_cells) / probe_counts
    valid_counts = np.bincount(probe_cells, weights=has_match.astype(np.float64), minlength=num_cells)
    ap_sums = np.bincount(probe_cells, weights=np.where(has_match, ap, 0.0), minlength=num_cells)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_ap = np.where(valid_counts > 0, ap_sums / np.maximum(valid_counts, 1), np.nan)
    for cell in np.flatnonzero(valid_counts == 0):
        condition = protocol.conditions[cell // num_views]
        logger.warning(
            "%s: no probe of condition %s with view %s has a same-subject gallery sequence; its mAP is NaN",
            where,
            condition.name,
            views[cell % num_views],
        )
    rank1 = _round2(accuracy * 100).reshape(len(protocol.conditions), num_views)
    mean_ap = _round2(mean_ap * 100).reshape(len(protocol.conditions), num_views)

    results: Dict[str, Any] = {}
    tables: Dict[str, Any] = {"table/views": list(views)}
    for number, condition in enumerate(protocol.conditions):
        for suffix, values in (("Rank@1", rank1[number]), ("mAP", mean_ap[number])):
            name = f"{condition.name}-{suffix}"
            results[PREFIX + name] = float(np.mean(values))
            tables[f"table/{name}"] = _as_list(values)
    for title, values in (("Rank-1", rank1), ("mAP", mean_ap)):
        _log_table(
            f"{title} (cross-view gallery, same-view same-subject excluded) [{dataset}, {metric}]",
            views,
            [(c.name, values[i]) for i, c in enumerate(protocol.conditions)],
            "mean",
        )
    logger.info(
        "\t".join(
            f"{c.name}-Rank@1: {results[PREFIX + c.name + '-Rank@1']:.2f}%\t"
            f"{c.name}-mAP: {results[PREFIX + c.name + '-mAP']:.2f}%"
            for c in protocol.conditions
        )
    )
    results.update(tables)
    return results


@EVALUATORS.register("evaluate_indoor_dataset")
def evaluate_indoor_dataset(
    data: Mapping[str, Any],
    dataset: str,
    metric: str = "euc",
    cross_view_gallery: bool = False,
    device: Optional[Union[str, torch.device]] = None,
    chunk_size: Optional[int] = None,
) -> Dict[str, Any]:
    """CASIA-B / OUMVLP (and SUSTech1K) protocols.

    *Single-view gallery* (default): for every condition, probe view v₁ and gallery view v₂,
    ``acc[v₁, v₂]`` = rank-1 accuracy of the condition's v₁ probes against the v₂ gallery,
    rounded to 2 decimals; per probe view the identical view is excluded,
    ``(Σ_v₂ acc − acc[v₁, v₁]) / (V − 1)``; returns ``<COND>@R1`` = mean over probe views.
    All V × V cells come from one blockwise distance pass and a per-view nearest-neighbour
    reduction (no sort): ``O(n·m·C·P)`` time, memory bounded by the probe chunk. Probes whose
    subject has no gallery sequence in v₂ count as misses.

    *Cross-view gallery*: per condition and probe view, rank-1 and mAP against one gallery over
    all views with the probe's own subject-and-view entries removed, each ×100 rounded to 2
    decimals; returns ``<COND>-Rank@1`` and ``<COND>-mAP`` = unrounded means over views.

    Args:
        data: ``{'embeddings': [N, C, P], 'labels', 'types', 'views'}`` in index order.
        dataset: ``CASIA-B``, ``OUMVLP`` or ``SUSTech1K`` (single-view gallery only; its
            substring-matched conditions and rank-1…5 tables are in
            :mod:`fastposegait.evaluation.sustech1k`); anything else is a ``KeyError`` listing these.
        metric: ``euc`` or ``cos``.
        cross_view_gallery: use the cross-view-gallery variant.
        device: where to compute (default: the embeddings' device, or CUDA if available for NumPy).
        chunk_size: probes per distance block (default automatic).

    Raises:
        EvaluationError: (a ``ValueError``) an empty probe cell or gallery view, fewer than 2
            views (single-view), or a probe left without any gallery sequence (cross-view).
    """
    if dataset == SUSTECH1K and not cross_view_gallery:
        return sustech1k_single_view(_unpack(data, f"evaluate_indoor_dataset({dataset})", device), metric, chunk_size)
    protocol = _indoor_protocol(dataset, cross_view_gallery)
    test = _unpack(data, f"evaluate_indoor_dataset({dataset})", device)
    if cross_view_gallery:
        return _cross_view_gallery(test, dataset, protocol, metric, chunk_size)
    return _single_view_gallery(test, dataset, protocol, metric, chunk_size)


# --------------------------------------------------------------------------------------------
# GREW
# --------------------------------------------------------------------------------------------


def _split_rows(test: _TestSet, where: str, protocol: RetrievalProtocol) -> Tuple[np.ndarray, np.ndarray]:
    probe_rows = np.flatnonzero(np.isin(test.types, protocol.probe_types))
    gallery_rows = np.flatnonzero(np.isin(test.types, protocol.gallery_types))
    if len(probe_rows) == 0:
        raise EvaluationError(f"{where}: no probe sequences of types {_fmt_types(protocol.probe_types)}")
    if len(gallery_rows) == 0:
        raise EvaluationError(f"{where}: no gallery sequences of types {_fmt_types(protocol.gallery_types)}")
    return probe_rows, gallery_rows


def _rank_probes(test: _TestSet, probe_rows: np.ndarray, gallery_rows: np.ndarray, max_rank: int, where: str,
                 metric: str, chunk_size: Optional[int]):
    """Rank the gallery rows for every probe row (retrieval protocols), warning when the
    gallery is smaller than the highest rank the protocol reports."""
    if len(gallery_rows) < max_rank:
        logger.warning(
            "%s: only %d gallery sequences (< %d); Rank-k for k > %d is the accuracy over the whole gallery",
            where, len(gallery_rows), max_rank, len(gallery_rows),
        )
    labels = encode(test.labels)[0]
    return rank_features(test.features[probe_rows], test.features[gallery_rows], labels[probe_rows],
                         labels[gallery_rows], metric=metric, chunk_size=chunk_size)


@EVALUATORS.register("evaluate_real_scene")
def evaluate_real_scene(
    data: Mapping[str, Any],
    dataset: str,
    metric: str = "euc",
    device: Optional[Union[str, torch.device]] = None,
    chunk_size: Optional[int] = None,
) -> Dict[str, Any]:
    """GREW local protocol: probes of type ``02`` against the gallery of type ``01``.

    ``acc[k] = round(100 · #probes with a same-subject entry among their k nearest / #probes, 2)``
    for k = 1…20 (a probe whose subject has no gallery entry is a miss). Logs Rank-1/5/10/20;
    returns ``Rank-1`` and ``Rank-5`` (the original's scalars) and the whole curve under
    ``table/Rank-k``. The original needs ≥ 20 gallery sequences (IndexError otherwise); here a
    smaller gallery is accepted with a warning and Rank-k for k beyond the gallery size equals
    the accuracy over the whole list (docs/upstream_differences.md, "Small galleries in GREW
    and Gait3D"). ``O(n · m log m)`` time, bounded memory.
    """
    where = f"evaluate_real_scene({dataset})"
    test = _unpack(data, where, device)
    protocol = GREW_LOCAL
    probe_rows, gallery_rows = _split_rows(test, where, protocol)
    max_rank = max(protocol.logged_ranks)
    ranking = _rank_probes(test, probe_rows, gallery_rows, max_rank, where, metric, chunk_size)
    counts = ranking.cmc_counts(max_rank).astype(np.float64)
    acc = _round2(counts * 100 / len(probe_rows))
    logger.info(
        "==Rank-%s==\n%s",
        "/".join(str(k) for k in protocol.logged_ranks),
        "\t".join(f"Rank-{k}: {acc[k - 1]:.3f}" for k in protocol.logged_ranks),
    )
    results: Dict[str, Any] = {PREFIX + f"Rank-{k}": float(acc[k - 1]) for k in protocol.returned_ranks}
    results["table/Rank-k"] = _as_list(acc)
    return results


def _subject_id(label: str) -> str:
    """Competition subject id: the integer value of the label (``00042`` → ``42``)."""
    return str(int(label)) if label.strip().lstrip("+-").isdigit() else label


@EVALUATORS.register("GREW_submission")
def GREW_submission(  # noqa: N802 - the original's name, used in configs
    data: Mapping[str, Any],
    dataset: str,
    metric: str = "euc",
    output_dir: Optional[str] = None,
    device: Optional[Union[str, torch.device]] = None,
    chunk_size: Optional[int] = None,
) -> Dict[str, Any]:
    """Write the GREW competition CSV: the subjects of each probe's 20 nearest gallery sequences.

    Gallery = types ``01`` and ``02``; probes = type ``03``, identified by their view (the video
    id), in index order. Row ``videoId,s1,…,s20``: subjects in rank order (stable for equal
    distances), duplicates kept, as integers. The file is
    ``<output_dir>/GREW_result/<%Y-%m%d-%H%M%S>.csv`` (the original writes it under the working
    directory and returns ``None``: docs/upstream_differences.md, "GREW submission file").
    Returns no scalars, only ``table/submission_csv``. With fewer than 20 gallery sequences the
    header and the rows are shorter (a warning is logged; the original crashes).
    """
    where = f"GREW_submission({dataset})"
    if output_dir is None:
        raise EvaluationError(f"{where}: needs output_dir (the run's output folder) to write the submission CSV")
    test = _unpack(data, where, device)
    probe_rows, gallery_rows = _split_rows(test, where, GREW_SUBMISSION)
    top_k = min(GREW_SUBMISSION_TOP_K, len(gallery_rows))
    if top_k < GREW_SUBMISSION_TOP_K:
        logger.warning("%s: only %d gallery sequences; rows list %d subjects instead of 20", where, top_k, top_k)
    gallery = test.features[gallery_rows]
    chunk = chunk_size or auto_chunk_size(gallery.shape[0])
    nearest = []
    for _, dist in iter_distance_chunks(test.features[probe_rows], gallery, metric, chunk):
        nearest.append(smallest_k_stable(dist, top_k).cpu())
    nearest_rows = gallery_rows[torch.cat(nearest).numpy()]
    subjects = np.asarray([_subject_id(label) for label in test.labels], dtype=object)

    folder = os.path.join(output_dir, "GREW_result")
    os.makedirs(folder, exist_ok=True)
    stamp = time.strftime("%Y-%m%d-%H%M%S", time.localtime())
    path = os.path.join(folder, f"{stamp}.csv")
    suffix = 1
    while os.path.exists(path):
        path = os.path.join(folder, f"{stamp}-{suffix}.csv")
        suffix += 1
    lines = ["videoId," + ",".join(f"rank{k}" for k in range(1, top_k + 1))]
    for probe, row in zip(probe_rows, nearest_rows):
        lines.append(",".join([str(test.views[probe]), *subjects[row].tolist()]))
    text = "\n".join(lines) + "\n"
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
    logger.info("GREW submission (%d probes) written to %s", len(probe_rows), path)
    return {"table/submission_csv": path}


# --------------------------------------------------------------------------------------------
# Gait3D
# --------------------------------------------------------------------------------------------


def _read_probe_set(dataset_partition: Optional[str], where: str) -> Set[str]:
    if dataset_partition is None:
        raise EvaluationError(f"{where}: needs dataset_partition (data_cfg.dataset_partition) to read PROBE_SET")
    try:
        with open(dataset_partition, encoding="utf-8") as f:
            partition = json.load(f)
    except FileNotFoundError:
        raise MissingFileError(f"{where}: partition file {dataset_partition} does not exist") from None
    except json.JSONDecodeError as err:
        raise EvaluationError(f"{where}: partition file {dataset_partition} is not valid JSON: {err}") from None
    if not isinstance(partition, dict) or "PROBE_SET" not in partition:
        raise EvaluationError(
            f"{where}: partition file {dataset_partition} has no PROBE_SET "
            "(a list of '<subject>-<type>-<view>' probe sequences)"
        )
    return {str(entry) for entry in partition["PROBE_SET"]}


@EVALUATORS.register("evaluate_Gait3D")
def evaluate_Gait3D(  # noqa: N802 - the original's name, used in configs
    data: Mapping[str, Any],
    dataset: str,
    metric: str = "euc",
    dataset_partition: Optional[str] = None,
    device: Optional[Union[str, torch.device]] = None,
    chunk_size: Optional[int] = None,
) -> Dict[str, Any]:
    """Gait3D protocol: PROBE_SET sequences against every other test sequence.

    Probes are the sequences whose ``<subject>-<type>-<view>`` is in the partition file's
    PROBE_SET, read from ``dataset_partition`` (the original reads a fixed path:
    docs/upstream_differences.md, "Gait3D probe set"). Probes without any same-subject gallery
    sequence are skipped. Returns ``Rank-1``, ``Rank-5``, ``Rank-10`` (CMC over valid probes,
    float32 like the original, ×100), ``mAP`` and ``mINP`` (means ×100), plus the CMC curve as
    ``table/cmc``. The original needs ≥ 10 gallery sequences; here Rank-k for k beyond a smaller
    gallery is the accuracy over the whole list (warning logged).
    """
    where = f"evaluate_Gait3D({dataset})"
    probe_set = _read_probe_set(dataset_partition, where)
    test = _unpack(data, where, device)
    keys = np.asarray([f"{s}-{t}-{v}" for s, t, v in zip(test.labels, test.types, test.views)])
    is_probe = np.isin(keys, list(probe_set))
    probe_rows, gallery_rows = np.flatnonzero(is_probe), np.flatnonzero(~is_probe)
    if len(probe_rows) == 0:
        raise EvaluationError(f"{where}: no test sequence is in the PROBE_SET of {dataset_partition}")
    if len(gallery_rows) == 0:
        raise EvaluationError(f"{where}: every test sequence is a probe; the gallery is empty")
    max_rank = max(GAIT3D_RANKS)
    ranking = _rank_probes(test, probe_rows, gallery_rows, max_rank, where, metric, chunk_size).cpu()
    valid = ranking.has_match
    num_valid = int(valid.sum())
    if num_valid == 0:
        raise EvaluationError(f"{where}: no probe has a same-subject gallery sequence; nothing to evaluate")
    if num_valid < len(probe_rows):
        skipped = len(probe_rows) - num_valid
        logger.info("%s: %d of %d probes have no gallery match and are skipped", where, skipped, len(probe_rows))
    cmc = ranking.cmc_counts(max_rank).astype(np.float32) / np.float32(num_valid)
    results: Dict[str, Any] = {PREFIX + f"Rank-{k}": float(cmc[k - 1] * np.float32(100)) for k in GAIT3D_RANKS}
    results[PREFIX + "mAP"] = float(ranking.average_precision[valid].double().mean()) * 100
    results[PREFIX + "mINP"] = float(ranking.inverse_negative_penalty[valid].double().mean()) * 100
    logger.info("\n".join(["==Gait3D==", *(f"{k[len(PREFIX):]}: {v:.2f}" for k, v in results.items())]))
    results["table/cmc"] = _as_list(cmc)
    return results
