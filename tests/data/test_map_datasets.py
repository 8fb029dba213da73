"""Map datasets: OpenGait-style skeleton-map pickles (uint8 ``[T, 2, 64, 64]``) loaded, checked,
sampled and cut into model batches ``[n, s, 2, 64, 44]``; odd and hostile map pickles get one
clear error naming the file; pose datasets keep their checks and errors.

References: the arrays written to disk by the test itself (every batch frame must be one of the
sequence's frames, columns 10..53, divided by 255), and the pose loader's own error messages.
"""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from fastposegait.data import io as data_io
from fastposegait.data import layout as layout_module
from fastposegait.data.dataset import PoseDataset
from fastposegait.data.device_transforms import DeviceTransforms
from fastposegait.data.layout import MapLayout, PoseLayout, check_pose_layout
from fastposegait.data.loader import build_loader
from fastposegait.errors import DatasetError, PoseFileError

SUBJECTS = ("001", "002", "003", "004")
TYPES = ("nm-01", "bg-01")
VIEWS = ("000", "090")
CUT = [{"type": "BaseSilCuttingTransform"}]
SAMPLER = {"type": "TripletSampler", "batch_size": [2, 2], "sample_type": "fixed_ordered", "frames_num_fixed": 6,
           "frames_skip_num": 2}


def write(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=4)
    return path


def map_tree(root: Path, seed: int = 0, linked: bool = False, shape=(2, 64, 64)) -> dict:
    """A small map dataset; returns ``{(subject, type, view): array}``. ``linked``: OpenGait's
    linked tree (``0_heatmap.pkl`` -> the map, ``1_sil.pkl`` -> a 3-D silhouette pickle)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for s in SUBJECTS:
        for t in TYPES:
            for v in VIEWS:
                frames = int(rng.integers(8, 20))
                array = rng.integers(0, 256, size=(frames, *shape)).astype(np.uint8)
                arrays[s, t, v] = array
                if linked:
                    store = write(root.parent / "store" / s / t / v / "maps.pkl", array)
                    sil = write(root.parent / "store" / s / t / v / "sils.pkl",
                                rng.integers(0, 256, size=(frames, 64, 44)).astype(np.uint8))
                    folder = root / s / t / v
                    folder.mkdir(parents=True)
                    os.symlink(store, folder / "0_heatmap.pkl")
                    os.symlink(sil, folder / "1_sil.pkl")
                else:
                    write(root / s / t / v / f"{s}-{t}-{v}.pkl", array)
    return arrays


def partition(tmp_path: Path) -> Path:
    part = tmp_path / "partition.json"
    part.write_text(json.dumps({"TRAIN_SET": list(SUBJECTS[:3]), "TEST_SET": [SUBJECTS[3]]}))
    return part


def first_batches(ds: PoseDataset, transform=CUT, count: int = 3, transform_on: str = "worker"):
    loader = build_loader(ds, SAMPLER, transform, training=True, seed=5, transform_on=transform_on)
    out = []
    for batch in loader:
        out.append(batch)
        if len(out) == count:
            break
    return out


@pytest.mark.parametrize("cache", [False, "memory", True])
def test_a_map_tree_loads_samples_and_cuts_into_model_batches(tmp_path, cache):
    arrays = map_tree(tmp_path / "maps")
    ds = PoseDataset(tmp_path / "maps", partition(tmp_path), training=True, cache=cache)
    assert ds.cache_mode == {False: "none", "memory": "memory", True: "packed"}[cache]
    assert check_pose_layout(ds, {"model": "DeepGaitV2"}, CUT) == [MapLayout(2, 64, 64)]
    assert ds.layout == ((2, 64, 64),)
    for i, record in enumerate(ds.records):
        (loaded,) = ds.load(i)
        expected = arrays[record.subject, record.type, record.view]
        assert loaded.dtype == np.uint8 and np.array_equal(loaded, expected)
    for batch in first_batches(ds):
        x = batch.inputs[0]
        assert x.dtype == torch.float32 and tuple(x.shape) == (4, 6, 2, 64, 44)
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
        for n in range(4):
            source = arrays[ds.label_set[int(batch.labels[n])], batch.types[n], batch.views[n]]
            cut = (source[..., 10:54] / 255.0).astype(np.float32)
            positions = []
            for frame in x[n].numpy():
                match = [t for t in range(len(cut)) if np.array_equal(cut[t], frame)]
                assert len(match) == 1  # random uint8 frames are all different
                positions.append(match[0])
            assert len(set(positions)) == 6  # six distinct frames of that sequence


def test_packed_cache_batches_equal_the_pickle_loader_batches(tmp_path):
    map_tree(tmp_path / "maps")
    part = partition(tmp_path)
    packed = first_batches(PoseDataset(tmp_path / "maps", part, training=True, cache=True))
    plain = first_batches(PoseDataset(tmp_path / "maps", part, training=True, cache=False))
    for a, b in zip(packed, plain):
        assert torch.equal(a.inputs[0], b.inputs[0]) and torch.equal(a.labels, b.labels)
    again = PoseDataset(tmp_path / "maps", part, training=True, cache=True)  # the walk-free reopen
    assert again._packed is not None and not again.load(0)[0].flags.writeable
    assert again.cached_shapes(0, width=4)[0].tolist()[1:] == [2, 64, 64]


def test_linked_tree_with_data_in_use_keeps_the_heatmap_and_never_reads_the_silhouette(tmp_path):
    arrays = map_tree(tmp_path / "linked", linked=True)
    ds = PoseDataset(tmp_path / "linked", partition(tmp_path), training=True, cache=False,
                     data_in_use=[True, False])
    assert all(len(r.paths) == 1 and r.paths[0].endswith("0_heatmap.pkl") for r in ds.records)
    assert check_pose_layout(ds, None, CUT) == [MapLayout(2, 64, 64)]
    record = ds.records[3]
    assert np.array_equal(ds.load(3)[0], arrays[record.subject, record.type, record.view])
    # the silhouette is [T, 64, 44]: as a pose it would be refused, which data_in_use avoids
    with pytest.raises(PoseFileError, match=r"1_sil\.pkl: expected shape \[T, V, 3\]"):
        data_io.load_sequence(Path(record.paths[0]).with_name("1_sil.pkl"))


def test_device_transforms_on_map_batches_equal_the_worker_path(tmp_path):
    map_tree(tmp_path / "maps")
    ds = PoseDataset(tmp_path / "maps", partition(tmp_path), training=True, cache=True)
    worker = first_batches(ds, count=2)
    raw = first_batches(ds, count=2, transform_on="device")
    device = DeviceTransforms(CUT, seed=5)
    for i, (w, r) in enumerate(zip(worker, raw)):
        assert tuple(r.inputs[0].shape) == (4, 6, 2, 64, 64)
        out = device(r, key=i)
        assert torch.allclose(out.inputs[0].float(), w.inputs[0], rtol=0, atol=1e-7)


# ----------------------------------------------------------------------------- bad files


def one_line(exc: BaseException, path: Path) -> str:
    message = str(exc)
    assert str(path) in message and "\n" not in message
    return message


@pytest.mark.parametrize("obj,pattern", [
    (np.zeros((0, 2, 64, 64), np.uint8), r"empty sequence \(0 frames\)"),
    (np.zeros((5, 2, 0, 64), np.uint8), r"empty axis"),
    (np.full((3, 2, 4, 4), np.nan, np.float32), r"non-finite value \(NaN/inf\) at frame 0, channel 0"),
    (np.zeros((3, 2, 4, 4), np.complex64), r"expected a numeric map array"),
    (np.zeros((3, 1, 2, 4, 4), np.uint8), r"expected shape \[T, V, 3\]"),  # 5-D: the pose error, as before
    ([np.zeros((2, 64, 64), np.uint8), np.zeros((2, 64, 60), np.uint8)], r"frames of different shapes"),
    ([np.zeros((2, 64, 64), np.uint8)] * 2100, r"would stack into 17,203,200 numbers"),
])
def test_odd_map_pickles_get_one_clear_error_naming_the_file(tmp_path, obj, pattern):
    path = write(tmp_path / "odd.pkl", obj)
    with pytest.raises(PoseFileError) as info:
        data_io.load_sequence(path)
    assert __import__("re").search(pattern, one_line(info.value, path)), str(info.value)


def test_hostile_map_pickles_are_refused_by_the_restricted_unpickler(tmp_path):
    objects = np.empty((2, 2, 2, 2), dtype=object)
    path = write(tmp_path / "objects.pkl", objects)
    with pytest.raises(PoseFileError, match="refusing"):
        data_io.load_sequence(path)
    path = tmp_path / "evil.pkl"
    path.write_bytes(b"cos\nsystem\n(S'echo hacked'\ntR.")
    with pytest.raises(PoseFileError, match="refusing to load global os.system"):
        data_io.load_sequence(path)
    good = np.arange(2 * 2 * 3 * 3, dtype=np.uint8).reshape(2, 2, 3, 3)
    data = pickle.dumps(good, protocol=5)
    with pytest.raises(PoseFileError, match="not a readable pickle"):
        data_io.load_sequence_bytes(data[:-20], tmp_path / "cut.pkl")
    assert np.array_equal(data_io.load_sequence_bytes(data, tmp_path / "ok.pkl"), good)


@pytest.mark.parametrize("obj", [np.zeros((4, 17, 5)), np.zeros((4, 51)), np.zeros((0, 17, 3)),
                                 np.full((3, 17, 3), np.inf), np.zeros((3, 0, 3))])
def test_pose_pickles_keep_the_pose_errors(tmp_path, obj):
    path = write(tmp_path / "pose.pkl", obj)
    with pytest.raises(PoseFileError) as via_sequence:
        data_io.load_sequence(path)
    with pytest.raises(PoseFileError) as via_pose:
        data_io.load_pose(path)
    assert str(via_sequence.value) == str(via_pose.value)


@pytest.mark.parametrize("cache", [False, True])
def test_a_map_of_another_size_is_named(tmp_path, cache):
    map_tree(tmp_path / "maps")
    odd = tmp_path / "maps" / "002" / "bg-01" / "000" / "002-bg-01-000.pkl"
    write(odd, np.zeros((9, 2, 64, 60), np.uint8))
    ds = PoseDataset(tmp_path / "maps", partition(tmp_path), training=True, cache=cache)
    if cache:  # every shape is known from the cache's index
        with pytest.raises(PoseFileError, match=r"002-bg-01-000\.pkl: map frames of C x H x W = 2 x 64 x 60"):
            check_pose_layout(ds, None, CUT)
    else:  # three sequences are read at start; the others are checked when loaded
        check_pose_layout(ds, None, CUT)
        index = next(i for i, r in enumerate(ds.records) if r.paths[0] == str(odd))
        with pytest.raises(PoseFileError, match=r"002-bg-01-000\.pkl: shape \[9, 2, 64, 60\].*2 x 64 x 64"):
            ds.load(index)


def test_a_pose_pickle_among_maps_is_named(tmp_path):
    map_tree(tmp_path / "maps")
    odd = tmp_path / "maps" / "003" / "nm-01" / "090" / "003-nm-01-090.pkl"
    write(odd, np.zeros((9, 17, 3), np.float32))
    ds = PoseDataset(tmp_path / "maps", partition(tmp_path), training=True, cache=True)
    with pytest.raises(PoseFileError, match=r"003-nm-01-090\.pkl: a pose sequence \[T, V, C\] where 11 of the 12"):
        check_pose_layout(ds, None, CUT)


# ----------------------------------------------------------------------------- config vs data


def test_pose_transforms_on_maps_and_map_transforms_on_poses_are_dataset_errors(tmp_path):
    map_tree(tmp_path / "maps")
    ds = PoseDataset(tmp_path / "maps", partition(tmp_path), training=True, cache=True)
    with pytest.raises(DatasetError, match=r"trainer_cfg.transform.0.1.type: GaitGraph_MultiInput works on pose"):
        check_pose_layout(ds, None, [[{"type": "BaseSilCuttingTransform"},
                                      {"type": "GaitGraph_MultiInput", "joint_format": "coco"}]])
    poses = tmp_path / "poses"
    for s in SUBJECTS:
        write(poses / s / "nm-01" / "000" / "p.pkl", np.random.default_rng(0).uniform(1, 9, (12, 17, 3)))
    pose_ds = PoseDataset(poses, partition(tmp_path), training=True, cache=True)
    with pytest.raises(DatasetError, match=r"RandomPerspective works on map sequences .* SkeletonMap"):
        check_pose_layout(pose_ds, None, [{"type": "RandomPerspective", "prob": 0.2}] + CUT)
    assert check_pose_layout(pose_ds, None, [{"type": "NoOperation"}]) == [PoseLayout(17, 3)]


def test_a_pose_to_map_transform_lets_map_transforms_follow(tmp_path, monkeypatch):
    poses = tmp_path / "poses"
    for s in SUBJECTS:
        write(poses / s / "nm-01" / "000" / "p.pkl", np.random.default_rng(0).uniform(1, 9, (12, 17, 3)))
    pose_ds = PoseDataset(poses, partition(tmp_path), training=True, cache=True)
    monkeypatch.setattr(layout_module, "POSE_TO_MAP_TRANSFORMS", ("NoOperation",))  # stands in for a renderer
    assert check_pose_layout(pose_ds, None, [{"type": "NoOperation"}] + CUT) == [PoseLayout(17, 3)]


def test_the_models_input_channels_must_match_the_maps(tmp_path, monkeypatch):
    map_tree(tmp_path / "maps", shape=(3, 64, 64))

    class TwoChannelModel:
        input_channels_key = "in_channels"

        @staticmethod
        def input_channels(model_cfg):
            return model_cfg["in_channels"]

    monkeypatch.setattr(layout_module, "_model_class", lambda name: TwoChannelModel)
    ds = PoseDataset(tmp_path / "maps", partition(tmp_path), training=True, cache=True)
    with pytest.raises(DatasetError, match=r"model_cfg.in_channels: the model takes 2 input channels.* have 3"):
        check_pose_layout(ds, {"model": "Fake", "in_channels": 2}, CUT)
    assert check_pose_layout(ds, {"model": "Fake", "in_channels": 3}, CUT) == [MapLayout(3, 64, 64)]
