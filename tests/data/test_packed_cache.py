"""Packed cache: identical arrays to the pkl loader, invalidation, crash safety, location,
filters, read-only views and sharing with DataLoader workers."""
import json
import logging
import os
import pickle
import threading
import time

import numpy as np
import pytest
import torch

from fastposegait.data import io as pose_io
from fastposegait.data import packed_cache
from fastposegait.data.dataset import PoseDataset
from fastposegait.data.io import PoseFileError, save_pickle
from fastposegait.data.loader import build_loader
from fastposegait.data.packed_cache import (
    CACHE_DIR_NAME,
    CacheConfigError,
    resolve_cache_mode,
    stat_files,
)


def _seq(rng, frames, joints=17, dtype=np.float32):
    return (rng.normal(size=(frames, joints, 3)) * 100).astype(dtype)


def make_dataset(tmp_path, subjects=("001", "002", "003"), views=("000", "090"), seed=0, modalities=1):
    """Subjects x types nm-01/nm-02 x views, frame counts 3..12.

    ``modalities=1``: one pickle per sequence, plus exotic pickles (big-endian, Fortran order, a
    list of frames, two channels) in subject 2's ``bg-01``. ``modalities=3``: every sequence
    folder holds three pickles of different dtypes/shapes (``a_pose`` float64, ``b_other``
    float16 with 18 joints, ``c_ints`` int32) and a non-pkl entry ``b_notes.txt``, plus a
    six-frame sequence in ``<subject 1>/nm-01/180``. (Every sequence of a split must have the
    same number of pickles.)"""
    rng = np.random.default_rng(seed)
    root = tmp_path / "ds"

    def sequence(folder, frames):
        if modalities == 1:
            save_pickle(folder / f"{folder.name}.pkl", _seq(rng, frames))
            return
        save_pickle(folder / "a_pose.pkl", _seq(rng, frames, dtype=np.float64))
        save_pickle(folder / "b_other.pkl", _seq(rng, frames, joints=18, dtype=np.float16))
        save_pickle(folder / "c_ints.pkl", _seq(rng, frames).astype(np.int32))
        (folder / "b_notes.txt").write_text("not a pickle")

    for s in subjects:
        for t in ("nm-01", "nm-02"):
            for v in views:
                sequence(root / s / t / v, int(rng.integers(3, 13)))
    if modalities == 1:
        odd = root / subjects[1] / "bg-01"
        save_pickle(odd / "000" / "000.pkl", _seq(rng, 7, dtype=np.float64).astype(">f8"))
        save_pickle(odd / "018" / "018.pkl", np.asfortranarray(_seq(rng, 8)))
        save_pickle(odd / "036" / "036.pkl", [f for f in _seq(rng, 9)])
        save_pickle(odd / "054" / "054.pkl", _seq(rng, 5)[..., :2].copy())
    else:
        sequence(root / subjects[0] / "nm-01" / "180", 6)
    part = tmp_path / "partition.json"
    part.write_text(json.dumps({"TRAIN_SET": list(subjects), "TEST_SET": list(subjects[:1])}))
    return root, part


def cache_files(folder):
    return sorted(p.name for p in folder.glob("*.fpgpack")) if folder.is_dir() else []


def assert_same_as_pkl_loader(ds, reference):
    assert [(r.subject, r.type, r.view, r.paths) for r in ds.records] == \
        [(r.subject, r.type, r.view, r.paths) for r in reference.records]
    assert ds.labels.tolist() == reference.labels.tolist()
    for i in range(len(reference)):
        got, want = ds.load(i), reference.load(i)
        assert len(got) == len(want)
        for a, b in zip(got, want):
            assert a.dtype == b.dtype and a.dtype.str == b.dtype.str  # byte order too
            assert a.shape == b.shape
            assert a.tobytes() == b.tobytes()
            np.testing.assert_array_equal(a, b)


@pytest.fixture
def user_cache(tmp_path, monkeypatch):
    """Point the user-level fallback folder into the test's tmp dir."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "fastposegait"


def test_cache_modes_and_bad_value():
    assert resolve_cache_mode(True) == resolve_cache_mode("packed") == "packed"
    assert resolve_cache_mode("memory") == "memory"
    assert resolve_cache_mode(False) == "none"
    with pytest.raises(CacheConfigError, match="'yes' is not a cache mode; use true or packed"):
        resolve_cache_mode("yes")


@pytest.mark.parametrize("modalities", [1, 3])
def test_byte_identical_to_pkl_loader_first_and_cached_start(tmp_path, monkeypatch, user_cache, modalities):
    root, part = make_dataset(tmp_path, modalities=modalities)
    reference = PoseDataset(root, part, training=True, cache=False)
    first = PoseDataset(root, part, training=True, cache=True)
    assert first.cache_mode == "packed"
    assert len(cache_files(root / CACHE_DIR_NAME)) == 1
    assert_same_as_pkl_loader(first, reference)
    if modalities == 3:
        # three pickles per folder in sorted order, the .txt ignored
        multi = [i for i, r in enumerate(first.records) if r.view == "180"][0]
        assert [a.dtype.str for a in first.load(multi)] == ["<f8", "<f2", "<i4"]
        assert [a.shape for a in first.load(multi)] == [(6, 17, 3), (6, 18, 3), (6, 17, 3)]

    # a cached start reads no pickle at all, frame_threshold included
    def no_reads(*args, **kwargs):
        raise AssertionError("a pickle was read on a cached start")

    monkeypatch.setattr(packed_cache, "load_sequence_bytes", no_reads)
    monkeypatch.setattr("fastposegait.data.dataset.load_sequence", no_reads)
    again = PoseDataset(root, part, training=True, cache="packed", frame_threshold=6)
    cached = PoseDataset(root, part, training=True, cache=True)
    monkeypatch.undo()
    assert again.cache_mode == cached.cache_mode == "packed"
    assert again._packed.build_id == cached._packed.build_id == first._packed.build_id
    assert_same_as_pkl_loader(cached, reference)
    assert_same_as_pkl_loader(again, PoseDataset(root, part, training=True, cache=False, frame_threshold=6))
    assert not list((root / CACHE_DIR_NAME).glob("*.tmp"))
    assert not user_cache.exists()


def test_memory_mode_is_upstream_loading(tmp_path, user_cache):
    root, part = make_dataset(tmp_path)
    ds = PoseDataset(root, part, training=True, cache="memory")
    assert ds.cache_mode == "memory" and not (root / CACHE_DIR_NAME).exists()
    assert_same_as_pkl_loader(ds, PoseDataset(root, part, training=True, cache=False))


def _rewrite_same_size(path):
    """New values, same shape and dtype (so the same file size), old mtime restored."""
    st = os.stat(path)
    arr = pose_io.load_pose(path)
    save_pickle(path, (arr + 1).astype(arr.dtype))
    assert os.stat(path).st_size == st.st_size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    return (arr + 1).astype(arr.dtype)


@pytest.mark.parametrize("racy_window", ["default", "off"])
@pytest.mark.parametrize("change", ["same_size_content", "mtime_only", "file_added", "modality_added",
                                    "file_removed", "non_pkl_entry_shifts_data_in_use"])
def test_rebuilds_when_a_source_file_changes(tmp_path, monkeypatch, caplog, user_cache, change, racy_window):
    if racy_window == "off":
        # every file counts as old: only (paths, size, mtime, ctime) can catch the change
        monkeypatch.setattr(packed_cache, "RACY_WINDOW_NS", -(10 ** 18))
    multi = change == "non_pkl_entry_shifts_data_in_use"
    root, part = make_dataset(tmp_path, modalities=3 if multi else 1)
    data_in_use = [True, True, False, True] if multi else None
    first = PoseDataset(root, part, training=True, data_in_use=data_in_use)
    assert first._packed.meta["racy_files"] == (0 if racy_window == "off" else first._packed.num_files)
    time.sleep(0.05)  # past the file-system clock tick, so ctime moves
    target = root / "002" / "nm-01" / "000" / "000.pkl"
    if change == "same_size_content":
        _rewrite_same_size(target)
    elif change == "mtime_only":
        os.utime(target, ns=(os.stat(target).st_atime_ns, os.stat(target).st_mtime_ns + 1_000_000))
    elif change == "file_added":
        save_pickle(root / "003" / "nm-02" / "270" / "270.pkl", np.ones((4, 17, 3), np.float32))
    elif change == "modality_added":  # to every sequence (in one folder only, it is an error)
        for record in first.records:
            frames = len(pose_io.load_pose(record.paths[0]))
            save_pickle(os.path.join(os.path.dirname(record.paths[0]), "zz_extra.pkl"),
                        np.ones((frames, 17, 3), np.float32))
    elif change == "file_removed":
        os.unlink(root / "003" / "nm-02" / "090" / "090.pkl")
    elif change == "non_pkl_entry_shifts_data_in_use":
        # data_in_use zips with *all* sorted entries: a new first entry changes which pkls are used
        # (a_pose, c_ints before; a_pose, b_other after)
        (root / "001" / "nm-01" / "180" / "a_0.txt").write_text("x")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="fastposegait"):
        again = PoseDataset(root, part, training=True, data_in_use=data_in_use)
    assert "out of date" in caplog.text and "building it" in caplog.text
    assert again._packed.build_id != first._packed.build_id
    assert_same_as_pkl_loader(again, PoseDataset(root, part, training=True, cache=False, data_in_use=data_in_use))
    assert len(cache_files(root / CACHE_DIR_NAME)) == 1  # replaced, not accumulated


def test_racy_file_content_change_is_caught_even_with_equal_timestamps(tmp_path, user_cache):
    root, part = make_dataset(tmp_path)
    ds = PoseDataset(root, part, training=True)
    cache = ds._packed
    paths = [p for r in ds.records for p in r.paths]
    recorded = packed_cache.FileStats(cache.file_size.copy(), cache.file_mtime_ns.copy(),
                                      cache.file_ctime_ns.copy(), 0)
    assert cache.mismatch(str(root), paths, recorded) is None
    target = str(root / "002" / "nm-01" / "090" / "090.pkl")
    _rewrite_same_size(target)
    # pretend the timestamps did not move (a change within one clock tick of the build)
    why = cache.mismatch(str(root), paths, recorded)
    assert why == f"{target} changed (same size and time stamps, different content)"


def test_partition_and_data_in_use_get_their_own_cache_file(tmp_path, user_cache):
    root, part = make_dataset(tmp_path)
    train = PoseDataset(root, part, training=True)
    test = PoseDataset(root, part, training=False)
    assert {r.subject for r in test.records} == {"001"}
    part2 = tmp_path / "partition2.json"
    part2.write_text(json.dumps({"TRAIN_SET": ["003", "002"], "TEST_SET": ["001"]}))
    reordered = PoseDataset(root, part2, training=True)
    assert [r.subject for r in reordered.records][0] == "003"
    assert_same_as_pkl_loader(reordered, PoseDataset(root, part2, training=True, cache=False))
    modal = PoseDataset(root, part, training=True, data_in_use=[True, True, False])
    assert_same_as_pkl_loader(modal, PoseDataset(root, part, training=True, cache=False,
                                                 data_in_use=[True, True, False]))
    names = cache_files(root / CACHE_DIR_NAME)
    assert len(names) == 4
    assert sum(n.startswith("TRAIN_SET-") for n in names) == 3 and sum(n.startswith("TEST_SET-") for n in names) == 1
    assert len(train) == len(PoseDataset(root, part, training=True, cache=False))


@pytest.mark.parametrize("modalities", [1, 3])
@pytest.mark.parametrize("threshold", [0, 1, 5, 8, 11])
def test_frame_threshold_and_data_in_use_filter_like_the_uncached_index(tmp_path, user_cache, threshold, modalities):
    root, part = make_dataset(tmp_path, modalities=modalities)
    for diu in (None, [True, False, True, True], [True, False, False, True]):
        packed = PoseDataset(root, part, training=True, frame_threshold=threshold, data_in_use=diu)
        assert packed.cache_mode == "packed"
        uncached = PoseDataset(root, part, training=True, cache=False, frame_threshold=threshold, data_in_use=diu)
        memory = PoseDataset(root, part, training=True, cache="memory", frame_threshold=threshold, data_in_use=diu)
        assert_same_as_pkl_loader(packed, uncached)
        assert_same_as_pkl_loader(memory, uncached)
        assert all(packed.load(i)[0].shape[0] > threshold for i in range(len(packed)))


def test_one_frame_and_unequal_modalities_are_errors(tmp_path, user_cache):
    root, part = make_dataset(tmp_path)
    save_pickle(root / "002" / "nm-02" / "000" / "000.pkl", np.ones((1, 17, 3), np.float32))
    with pytest.raises(PoseFileError, match=r"002/nm-02/000/000.pkl: one-frame sequence"):
        PoseDataset(root, part, training=True)
    assert len(PoseDataset(root, part, training=True, frame_threshold=1)) == \
        len(PoseDataset(root, part, training=True, cache=False, frame_threshold=1))
    assert not list((root / CACHE_DIR_NAME).glob("*.tmp"))
    root, part = make_dataset(tmp_path / "multi", modalities=3)
    save_pickle(root / "001" / "nm-01" / "180" / "c_ints.pkl", np.ones((5, 17, 3), np.int32))
    with pytest.raises(PoseFileError, match=r"001/nm-01/180: modalities have different frame counts \[6, 6, 5\]"):
        PoseDataset(root, part, training=True)
    assert not list((root / CACHE_DIR_NAME).glob("*.tmp"))


def test_bad_pickle_during_build_names_it_and_leaves_the_old_cache(tmp_path, user_cache):
    root, part = make_dataset(tmp_path)
    PoseDataset(root, part, training=True)
    before = cache_files(root / CACHE_DIR_NAME)
    bad = root / "003" / "nm-01" / "000" / "000.pkl"
    bad.write_bytes(b"\x80\x04garbage")
    with pytest.raises(PoseFileError, match=r"003/nm-01/000/000.pkl: not a readable pickle"):
        PoseDataset(root, part, training=True)
    assert cache_files(root / CACHE_DIR_NAME) == before
    assert not list((root / CACHE_DIR_NAME).glob("*.tmp"))


def test_leftover_temp_of_a_killed_build_is_ignored_and_removed(tmp_path, user_cache):
    root, part = make_dataset(tmp_path)
    ds = PoseDataset(root, part, training=True)
    path = ds._packed.path
    complete = path.read_bytes()
    # a build killed halfway (e.g. SIGKILL) leaves its temp file; the final name is absent
    path.unlink()
    leftover = path.with_name(f".{path.name}.k1ll3d.tmp")
    leftover.write_bytes(complete[: len(complete) // 2])
    ds2 = PoseDataset(root, part, training=True)
    assert ds2._packed.path == path and ds2._packed.build_id != ds._packed.build_id
    assert not leftover.exists()
    assert_same_as_pkl_loader(ds2, PoseDataset(root, part, training=True, cache=False))


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "bad_version", "bad_index"])
def test_corrupt_cache_file_is_rebuilt_with_a_log_line(tmp_path, caplog, user_cache, damage):
    root, part = make_dataset(tmp_path)
    path = PoseDataset(root, part, training=True)._packed.path
    raw = bytearray(path.read_bytes())
    if damage == "garbage":
        raw = bytearray(b"x" * len(raw))
    elif damage == "truncated":
        raw = raw[: len(raw) - 10]
    elif damage == "empty":
        raw = bytearray()
    elif damage == "bad_version":
        raw[8:12] = (99).to_bytes(4, "little")
    elif damage == "bad_index":
        raw[-20:] = b"?" * 20  # the JSON index at the end of the file
    path.write_bytes(bytes(raw))
    with caplog.at_level(logging.INFO, logger="fastposegait"):
        ds = PoseDataset(root, part, training=True)
    assert f"packed cache {path} is unreadable" in caplog.text and "building it" in caplog.text
    assert_same_as_pkl_loader(ds, PoseDataset(root, part, training=True, cache=False))


def test_read_only_root_falls_back_to_the_user_cache(tmp_path, monkeypatch, user_cache):
    root, part = make_dataset(tmp_path)
    real = packed_cache._is_writable
    monkeypatch.setattr(packed_cache, "_is_writable",
                        lambda folder: False if str(folder).startswith(str(root)) else real(folder))
    ds = PoseDataset(root, part, training=True)
    assert ds.cache_mode == "packed"
    assert not (root / CACHE_DIR_NAME).exists()
    assert ds._packed.path.parent.parent == user_cache
    assert_same_as_pkl_loader(ds, PoseDataset(root, part, training=True, cache=False))


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permission bits")
def test_read_only_root_by_permissions(tmp_path, user_cache):
    root, part = make_dataset(tmp_path)
    for folder, _, _ in os.walk(root):
        os.chmod(folder, 0o555)
    try:
        ds = PoseDataset(root, part, training=True)
        assert ds.cache_mode == "packed" and ds._packed.path.parent.parent == user_cache
    finally:
        for folder, _, _ in os.walk(root):
            os.chmod(folder, 0o755)


def test_prebuilt_cache_in_a_read_only_root_is_used(tmp_path, monkeypatch, user_cache):
    root, part = make_dataset(tmp_path)
    built = PoseDataset(root, part, training=True)._packed
    monkeypatch.setattr(packed_cache, "_is_writable", lambda folder: False)
    ds = PoseDataset(root, part, training=True)
    assert ds._packed.path == built.path and ds._packed.build_id == built.build_id
    assert not user_cache.exists()


def test_configured_cache_dir(tmp_path, monkeypatch, user_cache):
    root, part = make_dataset(tmp_path)
    ds = PoseDataset(root, part, training=True, cache_dir=tmp_path / "mycache")
    assert ds._packed.path.parent.parent == tmp_path / "mycache"
    assert ds._packed.path.parent.name.startswith("ds-")  # one sub-folder per dataset root
    assert not (root / CACHE_DIR_NAME).exists() and not user_cache.exists()
    monkeypatch.setattr(packed_cache, "_is_writable", lambda folder: False)
    with pytest.raises(CacheConfigError, match=r"data_cfg.cache_dir: cannot create files in .*nowhere"):
        PoseDataset(root, part, training=True, cache_dir=tmp_path / "nowhere")


def test_nothing_writable_falls_back_to_memory_with_a_warning(tmp_path, monkeypatch, caplog, user_cache):
    root, part = make_dataset(tmp_path)
    monkeypatch.setattr(packed_cache, "_is_writable", lambda folder: False)
    with caplog.at_level(logging.WARNING, logger="fastposegait"):
        ds = PoseDataset(root, part, training=True)
    assert ds.cache_mode == "memory"
    assert "loading the split into memory instead" in caplog.text and "data_cfg.cache_dir" in caplog.text
    assert_same_as_pkl_loader(ds, PoseDataset(root, part, training=True, cache=False))


def test_arrays_are_read_only_views(tmp_path, user_cache):
    root, part = make_dataset(tmp_path)
    ds = PoseDataset(root, part, training=True)
    arr = ds.load(0)[0]
    before = arr.copy()
    assert not arr.flags.writeable

    def careless_transform(seq, rng):
        seq[..., :2] -= seq[:, :1, :2]  # in place: what the transform contract forbids
        return seq

    with pytest.raises(ValueError, match="read-only"):
        careless_transform(arr, None)
    with pytest.raises(ValueError, match="cannot set WRITEABLE flag"):  # not even on purpose
        arr.flags.writeable = True
    np.testing.assert_array_equal(ds.load(0)[0], before)
    np.testing.assert_array_equal(PoseDataset(root, part, training=True).load(0)[0], before)


def test_pickled_dataset_carries_the_path_not_the_data(tmp_path, user_cache):
    root, part = make_dataset(tmp_path)
    ds = PoseDataset(root, part, training=True)
    blob = pickle.dumps(ds._packed)
    assert len(blob) < 1000
    clone = pickle.loads(pickle.dumps(ds))  # what a spawn-started worker receives
    assert_same_as_pkl_loader(clone, PoseDataset(root, part, training=True, cache=False))
    # the file was rebuilt meanwhile: a clear error rather than silently different data
    os.utime(ds.records[0].paths[0], ns=(0, 0))
    PoseDataset(root, part, training=True)
    with pytest.raises(PoseFileError, match="rebuilt by another run"):
        pickle.loads(blob)


def test_concurrent_starts_build_once(tmp_path, monkeypatch, user_cache):
    root, part = make_dataset(tmp_path)
    builds = []
    real_build = packed_cache.build_packed_cache

    def slow_build(*args, **kwargs):
        builds.append(1)
        time.sleep(0.3)
        real_build(*args, **kwargs)

    monkeypatch.setattr(packed_cache, "build_packed_cache", slow_build)
    results, errors = [], []

    def start():
        try:
            results.append(PoseDataset(root, part, training=True))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 3
    assert len(builds) == 1
    assert len({r._packed.build_id for r in results}) == 1


def test_dataloader_workers_share_the_cache_and_match_in_process_batches(tmp_path, user_cache):
    root, part = make_dataset(tmp_path, subjects=("001", "002", "003", "004"))
    ds = PoseDataset(root, part, training=True, frame_threshold=3, data_in_use=[True])
    assert ds.cache_mode == "packed"
    sampler_cfg = {"type": "TripletSampler", "batch_size": [2, 2], "sample_type": "fixed_unordered",
                   "frames_num_fixed": 4}
    transform_cfg = [{"type": "Compose", "trf_cfg": [
        {"type": "NormalizeEmpty"}, {"type": "FlipSequence", "probability": 0.5},
        {"type": "JointNoise", "std": 0.25}, {"type": "GaitGraph_MultiInput", "joint_format": "coco"}]}]

    def batches(num_workers):
        loader = build_loader(ds, sampler_cfg, transform_cfg, training=True, seed=3, num_workers=num_workers)
        out = []
        for i, batch in enumerate(loader):
            out.append(batch)
            if i == 5:
                break
        return out

    in_process, workers = batches(0), batches(2)
    for a, b in zip(in_process, workers):
        inputs_a, labels_a, types_a, views_a, _ = a
        inputs_b, labels_b, types_b, views_b, _ = b
        assert torch.equal(labels_a, labels_b) and types_a == types_b and views_a == views_b
        for x, y in zip(inputs_a, inputs_b):
            assert torch.equal(x, y)
    # and the same batches as the pkl loader gives
    reference = PoseDataset(root, part, training=True, cache=False, frame_threshold=3, data_in_use=[True])
    loader = build_loader(reference, sampler_cfg, transform_cfg, training=True, seed=3, num_workers=0)
    for i, batch in enumerate(loader):
        for x, y in zip(batch[0], in_process[i][0]):
            assert torch.equal(x, y)
        if i == 5:
            break


def test_stat_files_records_size_and_time_stamps(tmp_path):
    p = tmp_path / "a.pkl"
    p.write_bytes(b"12345")
    os.utime(p, ns=(0, 1_234_567_890_123))
    stats = stat_files([str(p)])
    assert stats.size.tolist() == [5] and stats.mtime_ns.tolist() == [1_234_567_890_123]
    assert stats.ctime_ns[0] > 0


def _sidecar_scan_start(ds):
    with np.load(str(ds._packed.path) + ".dirs.npz") as z:
        return int(z["scan_start_ns"][0])


def test_cached_start_lists_no_folder_when_none_changed(tmp_path, monkeypatch, user_cache):
    root, part = make_dataset(tmp_path)
    reference = PoseDataset(root, part, training=True, cache=False, frame_threshold=4)
    first = PoseDataset(root, part, training=True, frame_threshold=4)
    signed = _sidecar_scan_start(first)
    # just written: folders are racy, so the next start walks them (and refreshes the signature)
    second = PoseDataset(root, part, training=True, frame_threshold=4)
    assert second._packed.timings["fast_path"] == 0.0 and second._packed.build_id == first._packed.build_id
    assert _sidecar_scan_start(second) > signed
    # once the folders are older than the racy window, no folder is listed at all
    monkeypatch.setattr(packed_cache, "RACY_WINDOW_NS", -(10 ** 18))

    def no_walk(*args, **kwargs):
        raise AssertionError("the tree was walked on a cached start")

    monkeypatch.setattr("fastposegait.data.dataset.build_index", no_walk)
    monkeypatch.setattr(os, "listdir", no_walk)
    fast = PoseDataset(root, part, training=True, frame_threshold=4)
    monkeypatch.undo()
    assert fast._packed.timings["fast_path"] == 1.0 and fast._packed.build_id == first._packed.build_id
    assert_same_as_pkl_loader(fast, reference)


def test_partition_subject_appearing_on_disk_is_noticed(tmp_path, monkeypatch, user_cache):
    monkeypatch.setattr(packed_cache, "RACY_WINDOW_NS", -(10 ** 18))
    root, part = make_dataset(tmp_path)
    part.write_text(json.dumps({"TRAIN_SET": ["001", "009", "002"], "TEST_SET": ["003"]}))
    before = PoseDataset(root, part, training=True)
    assert {r.subject for r in before.records} == {"001", "002"}
    time.sleep(0.05)
    save_pickle(root / "009" / "nm-01" / "000" / "000.pkl", np.ones((4, 17, 3), np.float32))
    after = PoseDataset(root, part, training=True)
    assert [r.subject for r in after.records if r.subject == "009"] == ["009"]
    assert after._packed.build_id != before._packed.build_id
    assert_same_as_pkl_loader(after, PoseDataset(root, part, training=True, cache=False))


def test_index_pointing_outside_the_data_is_rebuilt(tmp_path, caplog, user_cache):
    root, part = make_dataset(tmp_path)
    cache = PoseDataset(root, part, training=True)._packed
    path, offset = cache.path, cache.meta["arrays"]["file_offset"][2]
    cache.close()
    raw = bytearray(path.read_bytes())
    raw[offset:offset + 8] = (10 ** 12).to_bytes(8, "little")  # first array's offset: far past the end
    path.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING, logger="fastposegait"):
        ds = PoseDataset(root, part, training=True)
    assert "an array lies outside the data section" in caplog.text
    assert_same_as_pkl_loader(ds, PoseDataset(root, part, training=True, cache=False))


def test_writability_probe_is_safe_from_threads(tmp_path):
    # threads share a pid: a probe file named after the pid made one thread's unlink fail
    # while another still used the name, and the folder looked read-only (a second build)
    folder = tmp_path / "cache"
    results = []

    def probe():
        results.extend(packed_cache._is_writable(folder) for _ in range(200))

    threads = [threading.Thread(target=probe) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 1200 and all(results)
    assert list(folder.iterdir()) == []


def _flip_bytes_of(ds, index, keep_mtime):
    """Flip 40 bytes inside the cached array of sequence ``index`` (same file size); with
    ``keep_mtime`` the cache file's time stamp is put back, as bit rot would leave it."""
    cache = ds._packed
    j = int(cache.record_first_file[ds._packed_rows[index]])
    offset, path = int(cache._file_offset[j]), cache.path
    st = os.stat(path)
    raw = bytearray(path.read_bytes())
    raw[offset + 8:offset + 48] = bytes(b ^ 0xFF for b in raw[offset + 8:offset + 48])
    with open(path, "r+b") as f:  # in place: same inode, same size
        f.write(raw)
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(path).st_size == st.st_size
    return ds.records[index].paths[0]


def test_a_cache_file_changed_after_its_build_is_checked_and_rebuilt_at_start(tmp_path, caplog, user_cache):
    # before: "up to date", and sequence 5 served bytes different from its pickle
    root, part = make_dataset(tmp_path)
    first = PoseDataset(root, part, training=True)
    assert first._packed.meta["format"] == packed_cache.FORMAT_VERSION == 2
    _flip_bytes_of(first, 5, keep_mtime=False)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="fastposegait"):
        again = PoseDataset(root, part, training=True)
    assert "up to date" not in caplog.text
    relpath = os.path.relpath(first.records[5].paths[0], root)
    assert f"damaged: the cached bytes of {relpath} do not match their checksum" in caplog.text
    assert "building it" in caplog.text and again._packed.build_id != first._packed.build_id
    assert_same_as_pkl_loader(again, PoseDataset(root, part, training=True, cache=False))
    # an intact cache whose time stamp moved (touch, a copy) is checked once, then trusted
    path = again._packed.path
    os.utime(path)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="fastposegait"):
        third = PoseDataset(root, part, training=True)
    assert third._packed.build_id == again._packed.build_id and "up to date" in caplog.text
    assert os.stat(path).st_mtime_ns == third._packed.meta["stamp_ns"]


def test_damage_found_at_access_is_one_error_and_the_next_start_rebuilds(tmp_path, user_cache):
    # before: the damaged bytes were served silently
    root, part = make_dataset(tmp_path)
    first = PoseDataset(root, part, training=True)
    pickle_path = _flip_bytes_of(first, 5, keep_mtime=True)  # bit rot: nothing to see at start
    ds = PoseDataset(root, part, training=True)
    assert ds._packed.build_id == first._packed.build_id
    ds.load(4)  # undamaged sequences are served
    with pytest.raises(PoseFileError) as info:
        ds.load(5)
    message = str(info.value)
    assert message.startswith(f"{ds._packed.path}: packed cache damaged")
    assert os.path.relpath(pickle_path, root) in message
    assert "run again: it is rebuilt" in message and str(ds._packed.path.parent) in message
    rebuilt = PoseDataset(root, part, training=True)
    assert rebuilt._packed.build_id != first._packed.build_id
    assert_same_as_pkl_loader(rebuilt, PoseDataset(root, part, training=True, cache=False))


def test_a_cache_of_another_format_version_is_removed_when_the_current_one_is_built(tmp_path, user_cache):
    root, part = make_dataset(tmp_path)
    folder = root / packed_cache.CACHE_DIR_NAME
    folder.mkdir()
    old = folder / f"TRAIN_SET-00000000deadbeef{packed_cache.SUFFIX}"
    header = packed_cache._HEADER.pack(packed_cache._MAGIC, packed_cache.FORMAT_VERSION - 1, 0, 0, 0, 0)
    old.write_bytes(header + b"\0" * 64)
    packed_cache._sidecar(old).write_bytes(b"old signature")
    unrelated = folder / f"notes{packed_cache.SUFFIX}"
    unrelated.write_bytes(b"not a cache at all")
    PoseDataset(root, part, training=True)
    assert not old.exists() and not packed_cache._sidecar(old).exists()
    assert unrelated.exists()
    assert len(list(folder.glob(f"TRAIN_SET-*{packed_cache.SUFFIX}"))) == 1
