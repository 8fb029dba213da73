"""Partition files: which subjects train and which test, and the benchmarks' fixed rules.

A partition is a JSON object ``{"TRAIN_SET": [...], "TEST_SET": [...]}`` of subject folder
names (Gait3D adds ``PROBE_SET``, the probe sequences of its test subjects). The rules here
are shared by the real-data converters and the synthetic generator, so a synthetic
OUMVLP-like dataset is split exactly as the real one.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List

from ..errors import DatasetError

#: Subjects in OU-MVLP (ids ``00001`` ... ``10307``).
OUMVLP_SUBJECTS = 10307


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
    except RecursionError:
        raise DatasetError(f"{path}: JSON nested too deeply to parse; the file is corrupt — write it again") from None
    except MemoryError:
        raise DatasetError(f"{path}: JSON too large to parse in memory; the file is corrupt — write it again") from None
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


def shared_subjects(partition: Dict[str, List[str]]) -> List[str]:
    """The subjects listed in both TRAIN_SET and TEST_SET, in TEST_SET order."""
    train = set(partition["TRAIN_SET"])
    return [s for s in dict.fromkeys(partition["TEST_SET"]) if s in train]


def oumvlp_official_partition(num_subjects: int = OUMVLP_SUBJECTS) -> Dict[str, List[str]]:
    """OU-MVLP's rule for subjects ``00001``...: odd ids train, even ids test; with the full
    10,307 subjects the last id (odd) is in TEST_SET, as in the official partition."""
    names = [f"{i:05d}" for i in range(1, num_subjects + 1)]
    train = [n for n in names if int(n) % 2 == 1]
    test = [n for n in names if int(n) % 2 == 0]
    if num_subjects == OUMVLP_SUBJECTS:
        train.remove(names[-1])
        test.append(names[-1])
    return {"TRAIN_SET": train, "TEST_SET": test}
