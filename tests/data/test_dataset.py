"""Sequence index: order, labels, filters, and errors on bad trees."""
import json
import logging

import numpy as np
import pytest

from fastposegait.data.dataset import DatasetError, PoseDataset, read_partition
from fastposegait.data.io import PoseFileError, save_pickle


def make_tree(root, layout, frames=5, partition=None):
    """layout: {subject: {type: [views]}}; each sequence's x holds its frame count."""
    for subject, types in layout.items():
        for type_, views in types.items():
            for view in views:
                arr = np.ones((frames, 17, 3), dtype=np.float32)
                save_pickle(root / subject / type_ / view / f"{view}.pkl", arr)
    part = root.parent / "partition.json"
    part.write_text(json.dumps(partition))
    return part


def test_index_order_labels_and_split(tmp_path):
    root = tmp_path / "ds"
    layout = {
        "002": {"nm-02": ["090", "000"], "nm-01": ["000"]},
        "001": {"nm-01": ["018"]},
        "003": {"bg-01": ["000"]},
    }
    part = make_tree(root, layout, partition={"TRAIN_SET": ["003"], "TEST_SET": ["002", "001"]})
    ds = PoseDataset(root, part, training=False, cache=True)
    # partition order of subjects, then sorted types, then sorted views
    assert [(r.subject, r.type, r.view) for r in ds.records] == [
        ("002", "nm-01", "000"), ("002", "nm-02", "000"), ("002", "nm-02", "090"), ("001", "nm-01", "018"),
    ]
    assert ds.label_set == ["001", "002"]
    assert ds.labels.tolist() == [1, 1, 1, 0]
    assert [i.tolist() for i in ds.indices_by_label] == [[3], [0, 1, 2]]
    assert ds.load(0)[0].shape == (5, 17, 3)
    train = PoseDataset(root, part, training=True, cache=False)
    assert [r.subject for r in train.records] == ["003"]
    assert train.load(0)[0].dtype == np.float32


def test_frame_threshold_drops_short_sequences(tmp_path):
    root = tmp_path / "ds"
    part = make_tree(root, {"001": {"nm-01": ["000"]}}, frames=5,
                     partition={"TRAIN_SET": ["001"], "TEST_SET": ["001"]})
    save_pickle(root / "001" / "nm-01" / "018" / "018.pkl", np.ones((9, 17, 3)))
    for cache in (True, False):
        ds = PoseDataset(root, part, training=True, cache=cache, frame_threshold=5)
        assert [r.view for r in ds.records] == ["018"]
    with pytest.raises(DatasetError, match="every TRAIN_SET sequence has <= 9 frames"):
        PoseDataset(root, part, training=True, frame_threshold=9)


def test_data_in_use_selects_modalities(tmp_path):
    root = tmp_path / "ds"
    view = root / "001" / "nm-01" / "000"
    save_pickle(view / "a.pkl", np.ones((4, 17, 3)))
    save_pickle(view / "b.pkl", np.zeros((4, 17, 3)))
    (view / "mapping.txt").write_text("ignored")
    part = tmp_path / "p.json"
    part.write_text(json.dumps({"TRAIN_SET": ["001"], "TEST_SET": []}))
    both = PoseDataset(root, part, training=True)
    assert [p.split("/")[-1] for p in both.records[0].paths] == ["a.pkl", "b.pkl"]
    only_b = PoseDataset(root, part, training=True, data_in_use=[False, True])
    assert [p.split("/")[-1] for p in only_b.records[0].paths] == ["b.pkl"]
    assert only_b.load(0)[0].sum() == 0


def test_modalities_of_different_length_are_an_error(tmp_path):
    root = tmp_path / "ds"
    view = root / "001" / "nm-01" / "000"
    save_pickle(view / "a.pkl", np.ones((4, 17, 3)))
    save_pickle(view / "b.pkl", np.ones((5, 17, 3)))
    part = tmp_path / "p.json"
    part.write_text(json.dumps({"TRAIN_SET": ["001"], "TEST_SET": []}))
    with pytest.raises(PoseFileError, match=r"different frame counts \[4, 5\]"):
        PoseDataset(root, part, training=True)


def test_one_frame_sequence_is_an_error_naming_the_fix(tmp_path):
    root = tmp_path / "ds"
    part = make_tree(root, {"001": {"nm-01": ["000"]}}, frames=1, partition={"TRAIN_SET": ["001"], "TEST_SET": []})
    with pytest.raises(PoseFileError, match="one-frame sequence.*frame_threshold: 1"):
        PoseDataset(root, part, training=True)
    assert len(PoseDataset(root, part, training=True, frame_threshold=0, cache=False)) == 1
    ds = PoseDataset(root, part, training=True, cache=False)
    with pytest.raises(PoseFileError, match="one-frame"):
        ds.load(0)


def test_folder_without_pickle_is_an_error(tmp_path):
    root = tmp_path / "ds"
    part = make_tree(root, {"001": {"nm-01": ["000"]}}, partition={"TRAIN_SET": ["001"], "TEST_SET": []})
    (root / "001" / "nm-01" / "018").mkdir()
    (root / "001" / "nm-01" / "018" / "notes.txt").write_text("x")
    (root / "001" / "nm-01" / "036").mkdir()  # completely empty: skipped silently
    with pytest.raises(DatasetError, match=r"nm-01/018: sequence folder holds no .pkl file"):
        PoseDataset(root, part, training=True)


def test_missing_root_and_partition_errors(tmp_path):
    with pytest.raises(DatasetError, match="dataset_root .* does not exist"):
        PoseDataset(tmp_path / "nope", tmp_path / "p.json", training=True)
    (tmp_path / "ds").mkdir()
    with pytest.raises(DatasetError, match="partition file .* does not exist"):
        PoseDataset(tmp_path / "ds", tmp_path / "p.json", training=True)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DatasetError, match="bad.json: not valid JSON"):
        read_partition(bad)
    bad.write_text(json.dumps({"TRAIN_SET": ["1"]}))
    with pytest.raises(DatasetError, match="missing TEST_SET"):
        read_partition(bad)
    bad.write_text(json.dumps({"TRAIN_SET": [1], "TEST_SET": []}))
    with pytest.raises(DatasetError, match="TRAIN_SET must be a list of strings"):
        read_partition(bad)


def test_partition_subjects_missing_on_disk(tmp_path, caplog):
    root = tmp_path / "ds"
    part = make_tree(root, {"001": {"nm-01": ["000"]}}, partition={"TRAIN_SET": ["001", "077"], "TEST_SET": ["999"]})
    with caplog.at_level(logging.WARNING, logger="fastposegait"):
        ds = PoseDataset(root, part, training=True)
    assert len(ds) == 1
    assert "1 TRAIN_SET subject(s) are not in" in caplog.text and "077" in caplog.text
    with pytest.raises(DatasetError, match="none of the 1 TEST_SET subjects exist"):
        PoseDataset(root, part, training=False)


def test_bad_pickle_named_at_load(tmp_path):
    root = tmp_path / "ds"
    part = make_tree(root, {"001": {"nm-01": ["000"]}}, partition={"TRAIN_SET": ["001"], "TEST_SET": []})
    save_pickle(root / "001" / "nm-01" / "000" / "000.pkl", np.ones((4, 17)))
    with pytest.raises(PoseFileError, match=r"001/nm-01/000/000.pkl: expected shape \[T, V, 3\]"):
        PoseDataset(root, part, training=True)


def test_subjects_in_both_splits_are_a_warning_naming_them(tmp_path, caplog):
    # 19ba7d2 built both splits without a word
    root = tmp_path / "ds"
    part = make_tree(root, {s: {"nm-01": ["000"]} for s in ("001", "002", "003", "004")},
                     partition={"TRAIN_SET": ["001", "002", "003"], "TEST_SET": ["003", "004", "002"]})
    for training in (True, False):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="fastposegait"):
            PoseDataset(root, part, training=training)
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, warnings
        assert "2 subject(s) are in both TRAIN_SET and TEST_SET: 003, 002; the test then measures" in warnings[0]
    caplog.clear()
    disjoint = make_tree(root, {}, partition={"TRAIN_SET": ["001", "002"], "TEST_SET": ["003", "004"]})
    with caplog.at_level(logging.WARNING, logger="fastposegait"):
        PoseDataset(root, disjoint, training=True)
    assert "both TRAIN_SET and TEST_SET" not in caplog.text


def test_a_training_split_of_one_subject_is_a_warning(tmp_path, caplog):
    # 19ba7d2 trained at loss 0.0000 without a word (no negatives for the metric losses)
    root = tmp_path / "ds"
    part = make_tree(root, {"001": {"nm-01": ["000", "018"]}, "002": {"nm-01": ["000"]}},
                     partition={"TRAIN_SET": ["001"], "TEST_SET": ["002"]})
    with caplog.at_level(logging.WARNING, logger="fastposegait"):
        PoseDataset(root, part, training=True)
    assert "the TRAIN_SET holds 1 subject (001)" in caplog.text
    assert "triplet and contrastive losses have no negatives" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fastposegait"):
        PoseDataset(root, part, training=False)  # a one-subject test split is fine
    assert caplog.text == ""


@pytest.mark.parametrize("cache", [True, False])
def test_hidden_folders_are_not_types_or_views(tmp_path, cache):
    root = tmp_path / "ds"
    part = make_tree(root, {"001": {"nm-01": ["000"], ".ipynb_checkpoints": ["000"]},
                            "002": {"nm-01": ["000", ".trash"]}},
                     partition={"TRAIN_SET": ["001", "002"], "TEST_SET": ["001"]})
    ds = PoseDataset(root, part, training=True, cache=cache)
    assert [(r.subject, r.type, r.view) for r in ds.records] == [("001", "nm-01", "000"), ("002", "nm-01", "000")]


# ----------------------------------------------------------------- entries that are not pickles


def _one_sequence_tree(tmp_path):
    """Train subjects 000, 001 and test subjects 100, 101: three sequences of one pickle each."""
    root = tmp_path / "ds"
    part = make_tree(root, {"000": {"nm-01": ["000", "090"]}, "001": {"nm-01": ["000"]},
                            "100": {"nm-01": ["000", "090"]}, "101": {"nm-01": ["000"]}},
                     partition={"TRAIN_SET": ["000", "001"], "TEST_SET": ["100", "101"]})
    return root, part


@pytest.mark.parametrize("cache", [True, "memory", False])
def test_a_folder_named_pkl_is_not_a_pickle(tmp_path, cache, caplog):
    # before: IsADirectoryError (cache true/memory), IndexError in layout._expected (cache false)
    from fastposegait.data.layout import check_pose_layout

    root, part = _one_sequence_tree(tmp_path)
    (root / "000" / "nm-01" / "000" / "zzz.pkl").mkdir()  # next to a real pickle
    (root / "000" / "nm-01" / "000" / ".hidden.pkl").mkdir()  # hidden: skipped without a word
    with caplog.at_level(logging.WARNING, logger="fastposegait"):
        ds = PoseDataset(root, part, training=True, cache=cache)
    assert [len(r.paths) for r in ds.records] == [1, 1, 1]
    check_pose_layout(ds, {"joint_format": "coco"})
    assert all(ds.load(i)[0].shape == (5, 17, 3) for i in range(len(ds)))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "000/nm-01/000/zzz.pkl" in warnings[0] and "folder" in warnings[0]
    assert ".hidden.pkl" not in warnings[0]
    # a view folder whose only .pkl entry is a folder holds no pickle
    view = root / "001" / "nm-01" / "180"
    (view / "180.pkl").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"001/nm-01/180: sequence folder holds no .pkl file.*180.pkl is a folder"):
        PoseDataset(root, part, training=True, cache=cache)


@pytest.mark.parametrize("cache", [True, False])
def test_a_fifo_named_pkl_is_not_opened(tmp_path, cache):
    # before: open() blocked forever on the FIFO (cache true at start, cache false at load)
    import os
    import signal

    root, part = _one_sequence_tree(tmp_path)
    os.mkfifo(root / "000" / "nm-01" / "090" / "zz.pkl")
    os.mkfifo(root / "001" / "nm-01" / "000" / "000b.pkl")

    def timeout(signum, frame):
        raise TimeoutError("blocked on a FIFO")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.setitimer(signal.ITIMER_REAL, 10)
    try:
        ds = PoseDataset(root, part, training=True, cache=cache)
        assert [len(r.paths) for r in ds.records] == [1, 1, 1]
        assert [ds.load(i)[0].shape for i in range(len(ds))] == [(5, 17, 3)] * 3
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_not_regular_entries_keep_data_in_use_positions(tmp_path):
    # data_in_use is zipped with *all* sorted entries of a folder (upstream), folders included
    root = tmp_path / "ds"
    view = root / "001" / "nm-01" / "000"
    save_pickle(view / "a.pkl", np.ones((4, 17, 3)))
    (view / "b.pkl").mkdir()
    save_pickle(view / "c.pkl", np.zeros((4, 17, 3)))
    part = tmp_path / "p.json"
    part.write_text(json.dumps({"TRAIN_SET": ["001"], "TEST_SET": []}))
    only_c = PoseDataset(root, part, training=True, data_in_use=[False, True, True])
    assert [p.split("/")[-1] for p in only_c.records[0].paths] == ["c.pkl"]
    assert [p.split("/")[-1] for p in PoseDataset(root, part, training=True).records[0].paths] == ["a.pkl", "c.pkl"]


# ------------------------------------------------------------- the same modalities everywhere


@pytest.mark.parametrize("cache", [True, "memory", False])
@pytest.mark.parametrize("training", [True, False])
def test_a_stray_extra_pickle_in_one_folder_is_an_error_at_start(tmp_path, cache, training):
    # before: IndexError at start (cache false), a collate error after 40 iterations (cache
    # true), silently ignored in the test split (the collator zips with the first sequence)
    import shutil

    root, part = _one_sequence_tree(tmp_path)
    view = root / ("000" if training else "100") / "nm-01" / "090"
    shutil.copy(view / "090.pkl", view / "090_backup.pkl")
    with pytest.raises(DatasetError) as info:
        PoseDataset(root, part, training=training, cache=cache)
    message = str(info.value)
    assert message.startswith(f"{view}: 2 pickles (090.pkl, 090_backup.pkl)")
    assert "2 of the split's 3 sequences hold 1" in message
    assert "remove the extra file" in message and "data_cfg.data_in_use" in message
    # selecting the first entry of each folder is the other fix
    assert len(PoseDataset(root, part, training=training, cache=cache, data_in_use=[True, False])) == 3


def test_a_missing_modality_is_named(tmp_path):
    root = tmp_path / "ds"
    for s in ("001", "002", "003"):
        save_pickle(root / s / "nm-01" / "000" / "a.pkl", np.ones((4, 17, 3)))
        if s != "002":
            save_pickle(root / s / "nm-01" / "000" / "b.pkl", np.ones((4, 17, 3)))
    part = tmp_path / "p.json"
    part.write_text(json.dumps({"TRAIN_SET": ["001", "002", "003"], "TEST_SET": []}))
    with pytest.raises(DatasetError, match=r"002/nm-01/000: 1 pickle \(a.pkl\) where 2 of the split's 3 sequences hold 2.*"
                                           r"add the missing pickle"):
        PoseDataset(root, part, training=True)


# ----------------------------------------------------------------------- data_in_use flags


@pytest.mark.parametrize("cache", [True, False])
def test_more_data_in_use_flags_than_entries_is_one_warning(tmp_path, caplog, cache, monkeypatch):
    from fastposegait.data import packed_cache

    monkeypatch.setattr(packed_cache, "RACY_WINDOW_NS", -(10 ** 18))  # let the third start skip the walk
    root, part = _one_sequence_tree(tmp_path)
    for attempt in range(3):  # the cached starts repeat it, the walk-free one included
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="fastposegait"):
            ds = PoseDataset(root, part, training=True, cache=cache, data_in_use=[True, False])
        assert len(ds) == 3  # behaviour kept: the extra flag selects nothing
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, warnings
        assert "data_cfg.data_in_use has 2 flags" in warnings[0] and "3 sequence folders" in warnings[0]
        assert "000/nm-01/000 holds 1 entry" in warnings[0]
    if cache:
        assert ds._packed.timings["fast_path"] == 1.0
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fastposegait"):
        PoseDataset(root, part, training=True, cache=cache, data_in_use=[True])
    assert caplog.text == ""


def test_hidden_files_next_to_a_sequence_are_not_pickles(tmp_path):
    # a copy from macOS leaves ._<name> resource forks: not pose pickles, and not a second modality
    root = tmp_path / "ds"
    part = make_tree(root, {"001": {"nm-01": ["000", "090"]}}, partition={"TRAIN_SET": ["001"], "TEST_SET": ["001"]})
    (root / "001" / "nm-01" / "000" / "._000.pkl").write_bytes(b"\x00\x05\x16\x07 not a pickle")
    ds = PoseDataset(root, part, training=True, cache=False)
    assert [r.paths for r in ds.records][0] == (str(root / "001" / "nm-01" / "000" / "000.pkl"),)
