"""Hostile dataset trees: a link loop, a partition nested too deep and a cache folder on a full
disk each give one clear line (a warning or a DatasetError), never an OS/parser traceback."""
import json
import logging
import os

import numpy as np
import pytest

from fastposegait.data.dataset import DatasetError, PoseDataset, read_partition
from fastposegait.data.io import save_pickle


def make_tree(root, subjects, partition):
    for subject in subjects:
        save_pickle(root / subject / "nm-01" / "000" / "000.pkl", np.ones((5, 17, 3), dtype=np.float32))
    part = root.parent / "partition.json"
    part.write_text(json.dumps(partition))
    return part


@pytest.mark.parametrize("cache", [True, False])
def test_a_subject_that_is_a_link_loop_is_skipped_with_a_warning(tmp_path, caplog, cache):
    root = tmp_path / "ds"
    part = make_tree(root, ["001", "002"], {"TRAIN_SET": ["001", "002", "007"], "TEST_SET": ["001"]})
    os.symlink("007", root / "007")  # 007 -> 007: ELOOP on stat
    with caplog.at_level(logging.WARNING, logger="fastposegait"):
        ds = PoseDataset(root, part, training=True, cache=cache)
    assert [r.subject for r in ds.records] == ["001", "002"]
    assert f"{root / '007'}: Too many levels of symbolic links; skipped" in caplog.text


def test_a_type_folder_that_is_a_link_loop_is_skipped_with_a_warning(tmp_path, caplog):
    root = tmp_path / "ds"
    part = make_tree(root, ["001", "002"], {"TRAIN_SET": ["001", "002"], "TEST_SET": ["001"]})
    os.symlink("loop", root / "001" / "loop")
    with caplog.at_level(logging.WARNING, logger="fastposegait"):
        ds = PoseDataset(root, part, training=True, cache=False)
    assert [(r.subject, r.type) for r in ds.records] == [("001", "nm-01"), ("002", "nm-01")]
    assert f"{root / '001' / 'loop'}: Too many levels of symbolic links; skipped" in caplog.text


def test_a_partition_nested_too_deeply_is_one_dataset_error(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text('{"TRAIN_SET": ' + "[" * 100000 + "]" * 100000 + "}")
    with pytest.raises(DatasetError) as info:
        read_partition(path)
    assert str(info.value) == f"{path}: JSON nested too deeply to parse; the file is corrupt — write it again"
