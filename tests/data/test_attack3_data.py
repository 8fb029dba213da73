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


def test_a_full_disk_while_writing_the_packed_cache_falls_back_to_memory(tmp_path, caplog, monkeypatch):
    import errno

    from fastposegait.data import packed_cache
    root = tmp_path / "ds"
    part = make_tree(root, ["001", "002"], {"TRAIN_SET": ["001", "002"], "TEST_SET": ["001"]})
    cache_dir = tmp_path / "cache"
    real_atomic_write = packed_cache.atomic_write

    def full_disk(path, write, mode=None):
        def partial(f):
            f.write(b"\0" * 4096)  # some bytes reach the temp file, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_atomic_write(path, partial, mode=mode)

    monkeypatch.setattr(packed_cache, "atomic_write", full_disk)
    with caplog.at_level(logging.WARNING, logger="fastposegait"):
        ds = PoseDataset(root, part, training=True, cache=True, cache_dir=cache_dir)
    assert ds.cache_mode == "memory"
    assert [r.subject for r in ds.records] == ["001", "002"]
    np.testing.assert_array_equal(ds.load(1)[0], np.ones((5, 17, 3), dtype=np.float32))
    assert "packed cache: cannot write it in" in caplog.text and "No space left on device" in caplog.text
    assert str(cache_dir) in caplog.text
    left = [p.name for p in cache_dir.rglob("*") if p.is_file() and not p.name.endswith(".lock")]
    assert left == []  # no partial cache or temp file stays behind


def test_an_unreadable_pickle_while_building_the_cache_is_still_an_error(tmp_path, monkeypatch):
    from fastposegait.data import packed_cache
    root = tmp_path / "ds"
    part = make_tree(root, ["001", "002"], {"TRAIN_SET": ["001", "002"], "TEST_SET": ["001"]})
    bad = str(root / "002" / "nm-01" / "000" / "000.pkl")
    real_open = open

    def failing_open(path, *args, **kwargs):
        if str(path) == bad:
            raise PermissionError(13, "Permission denied", bad)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", failing_open)
    with pytest.raises(PermissionError, match="Permission denied"):
        PoseDataset(root, part, training=True, cache=True, cache_dir=tmp_path / "cache")


def test_synthetic_frame_ranges_beyond_what_the_loader_reads_are_refused(tmp_path, capsys):
    from fastposegait.data.io import MAX_SEQUENCE_FRAMES
    from fastposegait.data.synthetic import generate_dataset
    from fastposegait.data.synthetic.cli import main
    with pytest.raises(ValueError, match=f"a maximum of {MAX_SEQUENCE_FRAMES + 1:,} frames is more than the "
                                         f"{MAX_SEQUENCE_FRAMES:,} a sequence file may hold"):
        generate_dataset("casia-b", tmp_path / "api", num_subjects=2, frames=(2, MAX_SEQUENCE_FRAMES + 1))
    with pytest.raises(SystemExit) as info:
        main(["casia-b", "--root", str(tmp_path / "g"), "--subjects", "2", "--views", "000",
              "--frames", "2", "1000000000"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err == ("error: frames: a maximum of 1,000,000,000 frames is more than the 1,000,000 a sequence file "
                   "may hold (the loader refuses longer ones); lower the maximum\n")
    assert not (tmp_path / "g").exists() and not (tmp_path / "api").exists()
