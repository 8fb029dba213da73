"""CASIA-B pose release: nothing to convert, so check it and write its partition.

The release already holds ``<id>/<type>/<view>/<view>.pkl`` ``[T, 17, 3]`` (COCO order) plus a
``mapping.txt`` per sequence, which the loader ignores. :func:`check` validates the root with
:func:`fastposegait.converters.validate.validate_root` (17 joints expected) and writes the
rule-based partition: the first 74 subjects (``001``-``074``) train, the other 50 test.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

from .partitions import CASIA_B_TRAIN_SUBJECTS, casia_b_partition, subjects_on_disk, write_partition
from .validate import ValidationReport, validate_root

CASIA_B_SUBJECTS = tuple(f"{i:03d}" for i in range(1, 125))


def check(
    root: str | Path,
    partition_out: Optional[str | Path] = None,
    num_train: int = CASIA_B_TRAIN_SUBJECTS,
    workers: int = 1,
    frame_threshold: int = 0,
    overwrite: bool = False,
) -> Tuple[ValidationReport, Optional[Path]]:
    """Validate a CASIA-B root and write its rule partition to ``partition_out`` (if given;
    an existing file holding another partition is replaced only with ``overwrite``).

    The partition is written even when some pickles are broken (it depends only on the subject
    folders); the report says whether the data is fit to train on.
    """
    subjects = subjects_on_disk(root)
    partition = casia_b_partition(subjects, num_train)
    written = write_partition(partition_out, partition, overwrite) if partition_out is not None else None
    report = validate_root(root, partition=written, workers=workers, frame_threshold=frame_threshold,
                           expected_joints=(17,))
    unexpected = sorted(set(subjects) - set(CASIA_B_SUBJECTS))
    if unexpected:
        report.add("warning", root, f"{len(unexpected)} subject folders are not CASIA-B ids 001..124 "
                                    f"(e.g. {unexpected[:3]}); the rule split them by sorted order")
    return report, written
