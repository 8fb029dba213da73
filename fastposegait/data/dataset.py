"""The sequence index of one split: which sequences exist, their labels, how to load them.

Layout ``<dataset_root>/<subject>/<type>/<view>/*.pkl`` plus a partition JSON
``{"TRAIN_SET": [...], "TEST_SET": [...]}``. The index order is upstream's (partition order
of subjects, then sorted types, then sorted views) because the evaluators and the published
numbers depend on it. Every problem with the tree is reported with the path and the fix.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .io import PoseFileError, load_pose

logger = logging.getLogger("fastposegait")


class DatasetError(ValueError):
    """The dataset root, partition or a sequence folder is unusable."""


@dataclass(frozen=True)
class SequenceRecord:
    """One sequence: its three folder names and its pickle files (one per modality)."""

    subject: str
    type: str
    view: str
    paths: Tuple[str, ...]


def read_partition(path: str | Path) -> Dict[str, List[str]]:
    """Read and check a partition JSON (TRAIN_SET, TEST_SET, optional PROBE_SET)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(
            f"partition file {str(path)!r} does not exist; set data_cfg.dataset_partition to the "
            "JSON listing TRAIN_SET and TEST_SET (datasets/ has tools that write it)"
        )
    try:
        with open(path, "r", encoding="utf-8") as f:
            partition = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(partition, dict):
        raise DatasetError(f"{path}: expected an object with TRAIN_SET and TEST_SET")
    for key in ("TRAIN_SET", "TEST_SET"):
        if key not in partition:
            raise DatasetError(f"{path}: missing {key}; a partition lists TRAIN_SET and TEST_SET subjects")
    for key, value in partition.items():
        if key in ("TRAIN_SET", "TEST_SET", "PROBE_SET") and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        ):
            raise DatasetError(f"{path}: {key} must be a list of strings (folder names such as \"001\")")
    return partition


def _sorted_dirs(path: str) -> List[str]:
    with os.scandir(path) as it:
        return sorted(e.name for e in it if e.is_dir())


def _sequence_files(view_dir: str, data_in_use: Optional[Sequence[bool]]) -> List[str]:
    entries = sorted(os.listdir(view_dir))
    if data_in_use is not None:
        # upstream: zip the flags with *all* entries, then keep the pickles
        entries = [e for e, use in zip(entries, data_in_use) if use]
    return [os.path.join(view_dir, e) for e in entries if e.endswith(".pkl")]


def build_index(
    root: str | Path,
    subjects: Sequence[str],
    data_in_use: Optional[Sequence[bool]] = None,
) -> List[SequenceRecord]:
    """Enumerate the sequences of ``subjects`` (in the given order) under ``root``."""
    records: List[SequenceRecord] = []
    root = str(root)
    for subject in subjects:
        subject_dir = os.path.join(root, subject)
        for type_ in _sorted_dirs(subject_dir):
            type_dir = os.path.join(subject_dir, type_)
            for view in _sorted_dirs(type_dir):
                view_dir = os.path.join(type_dir, view)
                if not os.listdir(view_dir):
                    logger.debug("empty sequence folder skipped: %s", view_dir)
                    continue
                paths = _sequence_files(view_dir, data_in_use)
                if not paths:
                    raise DatasetError(
                        f"{view_dir}: sequence folder holds no .pkl file"
                        + (" selected by data_cfg.data_in_use" if data_in_use is not None else "")
                        + "; remove the folder or add the sequence's pickle"
                    )
                records.append(SequenceRecord(subject, type_, view, tuple(paths)))
    return records


class PoseDataset:
    """The sequences of one split (``TRAIN_SET`` for training, ``TEST_SET`` for testing).

    Args:
        dataset_root: folder with ``<subject>/<type>/<view>/*.pkl``.
        dataset_partition: partition JSON path.
        training: which split to index.
        cache: load every sequence into memory now (before DataLoader workers fork).
        frame_threshold: drop sequences whose first pickle has ``T <= frame_threshold``.
        data_in_use: modality flags zipped with each sequence folder's sorted entries.
    """

    def __init__(
        self,
        dataset_root: str | Path,
        dataset_partition: str | Path,
        training: bool,
        cache: bool = True,
        frame_threshold: int = 0,
        data_in_use: Optional[Sequence[bool]] = None,
    ) -> None:
        root = Path(dataset_root)
        if not root.is_dir():
            raise DatasetError(
                f"dataset_root {str(root)!r} does not exist or is not a folder; set data_cfg.dataset_root "
                "to the folder holding <subject>/<type>/<view>/*.pkl (or generate one: "
                "python -m fastposegait.data.synthetic casia-b --root DIR)"
            )
        self.root = root
        self.partition_path = Path(dataset_partition)
        self.partition = read_partition(self.partition_path)
        self.training = training
        split_key = "TRAIN_SET" if training else "TEST_SET"
        wanted = self.partition[split_key]
        on_disk = {e.name for e in os.scandir(root) if e.is_dir()}
        subjects = [s for s in wanted if s in on_disk]
        missing = [s for s in wanted if s not in on_disk]
        if not subjects:
            raise DatasetError(
                f"{self.partition_path}: none of the {len(wanted)} {split_key} subjects exist under {root} "
                f"(e.g. {wanted[:3]}); check data_cfg.dataset_root and data_cfg.dataset_partition"
            )
        if missing:
            logger.warning(
                "%s: %d %s subject(s) are not in %s and are skipped: %s%s",
                self.partition_path, len(missing), split_key, root,
                ", ".join(missing[:10]), " ..." if len(missing) > 10 else "",
            )
        records = build_index(root, subjects, data_in_use)
        if not records:
            raise DatasetError(f"{root}: the {split_key} subjects hold no sequences")
        self._cache: Optional[List[List[np.ndarray]]] = None
        if cache:
            self._cache = [self._read(r) for r in _progress(records, "Loading sequences")]
        if frame_threshold > 0:
            keep = [
                i for i, r in enumerate(records)
                if self._length(i, r) > frame_threshold
            ]
            records = [records[i] for i in keep]
            if self._cache is not None:
                self._cache = [self._cache[i] for i in keep]
            if not records:
                raise DatasetError(f"{root}: every {split_key} sequence has <= {frame_threshold} frames "
                                   "(data_cfg.frame_threshold); lower the threshold")
        for i, rec in enumerate(records):
            if self._cache is not None:
                self._check_length(self._cache[i], rec)
        self.records: List[SequenceRecord] = records
        self.label_set: List[str] = sorted({r.subject for r in records})
        label_of = {s: i for i, s in enumerate(self.label_set)}
        self.labels = np.array([label_of[r.subject] for r in records], dtype=np.int64)
        self.indices_by_label: List[np.ndarray] = [
            np.flatnonzero(self.labels == i) for i in range(len(self.label_set))
        ]
        logger.info("%s split: %d subjects, %d sequences%s", "train" if training else "test",
                    len(self.label_set), len(records), " (cached)" if cache else "")

    def __len__(self) -> int:
        return len(self.records)

    @property
    def subjects(self) -> List[str]:
        return [r.subject for r in self.records]

    @property
    def types(self) -> List[str]:
        return [r.type for r in self.records]

    @property
    def views(self) -> List[str]:
        return [r.view for r in self.records]

    def load(self, index: int) -> List[np.ndarray]:
        """The arrays (one per modality) of sequence ``index``."""
        if self._cache is not None:
            return self._cache[index]
        record = self.records[index]
        arrays = self._read(record)
        self._check_length(arrays, record)
        return arrays

    def _read(self, record: SequenceRecord) -> List[np.ndarray]:
        arrays = [load_pose(p) for p in record.paths]
        lengths = {a.shape[0] for a in arrays}
        if len(lengths) > 1:
            raise PoseFileError(
                f"{os.path.dirname(record.paths[0])}: modalities have different frame counts "
                f"{[a.shape[0] for a in arrays]}; every pickle of a sequence must have the same length"
            )
        return arrays

    def _length(self, index: int, record: SequenceRecord) -> int:
        if self._cache is not None:
            return self._cache[index][0].shape[0]
        return load_pose(record.paths[0]).shape[0]

    @staticmethod
    def _check_length(arrays: List[np.ndarray], record: SequenceRecord) -> None:
        if arrays[0].shape[0] < 2:
            raise PoseFileError(
                f"{record.paths[0]}: one-frame sequence; gait needs motion — remove it or set "
                "data_cfg.frame_threshold: 1 to drop such sequences"
            )


def dataset_from_cfg(data_cfg: Mapping[str, Any], training: bool) -> PoseDataset:
    """Build the split's :class:`PoseDataset` from a ``data_cfg`` section."""
    return PoseDataset(
        dataset_root=data_cfg["dataset_root"],
        dataset_partition=data_cfg["dataset_partition"],
        training=training,
        cache=bool(data_cfg.get("cache", True)),
        frame_threshold=int(data_cfg.get("frame_threshold", 0) or 0),
        data_in_use=data_cfg.get("data_in_use"),
    )


def _progress(items: Sequence[Any], desc: str):
    from ..distributed import is_main_process

    if len(items) < 2000 or not is_main_process():
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="seq", leave=False)
