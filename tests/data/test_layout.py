"""The dataset layout check: same joints and channels everywhere, and what the config needs.

On 19ba7d2 there was no such check: a split with one 18-joint sequence among 17-joint ones,
or 2-channel pickles under GaitGraph_MultiInput, started and died in a DataLoader worker a
few iterations in, with a transform's message that named no file.
"""
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from fastposegait.data import dataset as dataset_module
from fastposegait.data.dataset import PoseDataset
from fastposegait.data.io import save_pickle
from fastposegait.data.layout import PoseLayout, check_pose_layout
from fastposegait.errors import DatasetError, PoseFileError

REPO = Path(__file__).resolve().parents[2]
SUBJECTS = ["001", "002", "003"]
VIEWS = ["000", "018", "036", "054"]


def make_dataset(tmp_path, joints=17, channels=3, odd=None):
    """3 subjects x 4 views; ``odd``: {(subject, view): (joints, channels)} for exceptions."""
    root = tmp_path / "ds"
    rng = np.random.default_rng(0)
    for s in SUBJECTS:
        for v in VIEWS:
            v_, c_ = (odd or {}).get((s, v), (joints, channels))
            save_pickle(root / s / "nm-01" / v / f"{v}.pkl", rng.random((40, v_, c_)).astype(np.float32))
    part = tmp_path / "partition.json"
    part.write_text(json.dumps({"TRAIN_SET": SUBJECTS, "TEST_SET": SUBJECTS}))
    return root, part


def demo(name):
    return yaml.safe_load((REPO / "configs" / "demo" / f"{name}.yaml").read_text())


@pytest.mark.parametrize("cache", [True, "memory"])
def test_one_sequence_with_other_joints_is_named_at_start(tmp_path, cache, monkeypatch):
    root, part = make_dataset(tmp_path, odd={("002", "036"): (18, 3)})
    ds = PoseDataset(root, part, training=True, cache=cache)
    monkeypatch.setattr(dataset_module, "load_sequence", _no_read)  # the shapes come from the cache
    with pytest.raises(PoseFileError) as info:
        check_pose_layout(ds, {"model": "GaitTR"}, [{"type": "SkeletonInput"}])
    msg = str(info.value)
    assert msg.startswith(str(root / "002" / "nm-01" / "036" / "036.pkl") + ": 18 joints where the others have 17")
    assert "1 of the 12 TRAIN_SET sequences differ" in msg


def test_mixed_channels_are_named_at_start(tmp_path):
    root, part = make_dataset(tmp_path, odd={("003", "000"): (17, 2), ("003", "054"): (17, 2)})
    ds = PoseDataset(root, part, training=True)
    with pytest.raises(PoseFileError, match=r"003/nm-01/000/000.pkl: 2 channels where the others have 3; "
                                            r"2 of the 12 TRAIN_SET sequences differ"):
        check_pose_layout(ds)


def test_named_joint_format_must_match_the_data(tmp_path):
    root, part = make_dataset(tmp_path, joints=18)
    ds = PoseDataset(root, part, training=False)
    cfg = demo("gaittr_demo")
    with pytest.raises(DatasetError) as info:
        check_pose_layout(ds, cfg["model_cfg"], cfg["evaluator_cfg"]["transform"], "evaluator_cfg.transform")
    msg = str(info.value)
    assert msg.startswith("model_cfg.joint_format is 'coco' (17 joints) but all 12 TEST_SET sequences have 18 joints")
    assert "(openpose)" in msg
    # a transform's joint_format counts too
    transform = [{"type": "InversePosesPre", "joint_format": "coco"}, {"type": "SkeletonInput"}]
    with pytest.raises(DatasetError, match=r"trainer_cfg.transform.0.0.joint_format is 'coco'"):
        check_pose_layout(ds, {"model": "GaitTR"}, [transform])
    # and formats of different joint counts in one config are an error of their own
    with pytest.raises(DatasetError, match=r"joint formats of different joint counts: model_cfg.joint_format: openpose"):
        check_pose_layout(ds, {"model": "GaitTR", "joint_format": "openpose"}, [transform])
    assert check_pose_layout(ds, {"model": "GaitTR", "joint_format": "alphapose"}, None) == [PoseLayout(18, 3)]


def test_mixed_joints_against_a_named_format(tmp_path):
    root, part = make_dataset(tmp_path, odd={("001", "018"): (18, 3)})
    ds = PoseDataset(root, part, training=True)
    with pytest.raises(PoseFileError, match=r"001/nm-01/018/018.pkl: 18 joints where model_cfg.joint_format: coco "
                                            r"has 17; 1 of the 12"):
        check_pose_layout(ds, {"model": "GaitGraph2", "joint_format": "coco"}, None)


def test_internal_format_is_named_as_such(tmp_path):
    root, part = make_dataset(tmp_path)
    ds = PoseDataset(root, part, training=True)
    with pytest.raises(DatasetError, match=r"'coco-no-head' is an internal format"):
        check_pose_layout(ds, {"model": "RawJointsNN", "joint_format": "coco-no-head"}, None)


# ------------------------------------------------------------------ channels the config needs


GG_MULTI = "GaitGraph_MultiInput reads 3 channels (x, y, confidence) but the 12 sequences have 2"
GG1_MODEL = "model_cfg.input_branch: the model takes 3 channels per joint"


@pytest.mark.parametrize("config, phase, fails", [
    ("gaitgraph2_demo", "trainer_cfg", GG_MULTI),     # GaitGraph_MultiInput reads the confidence
    ("gaitgraph2_demo", "evaluator_cfg", GG_MULTI),
    ("gaittr_demo", "trainer_cfg", None),             # GaitTR_MultiInput: x, y only
    ("gpgait_demo", "trainer_cfg", None),             # HOD_MultiInput: x, y only
    ("raw_joints_nn", "evaluator_cfg", None),
    ("gaitgraph1_demo", "trainer_cfg", GG1_MODEL),    # raw poses into input_branch[0] = 3 channels
])
def test_two_channel_data_against_each_demo(tmp_path, config, phase, fails):
    root, part = make_dataset(tmp_path, channels=2)
    ds = PoseDataset(root, part, training=phase == "trainer_cfg")
    cfg = demo(config)
    key = f"{phase}.transform"
    if fails is None:
        assert check_pose_layout(ds, cfg["model_cfg"], cfg[phase]["transform"], key) == [PoseLayout(17, 2)]
        assert ds.layout == ((17, 2),)
        return
    with pytest.raises(DatasetError) as info:
        check_pose_layout(ds, cfg["model_cfg"], cfg[phase]["transform"], key)
    assert fails in str(info.value)
    if fails == GG_MULTI:
        assert str(info.value).startswith(f"{key}.0.trf_cfg.")


def test_a_model_that_declares_its_input_channels(tmp_path):
    from fastposegait.modeling.models.gaitgraph1 import GaitGraph1

    assert GaitGraph1.input_channels_key == "input_branch"
    root, part = make_dataset(tmp_path, channels=2)
    ds = PoseDataset(root, part, training=True)
    cfg = demo("gaitgraph1_demo")
    with pytest.raises(DatasetError, match=r"model_cfg.input_branch: the model takes 3 channels per joint, and the "
                                           r"transforms pass the pose's own channels through, but the 12 sequences "
                                           r"have 2"):
        check_pose_layout(ds, cfg["model_cfg"], cfg["trainer_cfg"]["transform"])
    cfg["model_cfg"]["input_branch"] = [2, 64, 64, 32]
    assert check_pose_layout(ds, cfg["model_cfg"], cfg["trainer_cfg"]["transform"]) == [PoseLayout(17, 2)]
    # a feature builder in the chain decides the model's channels: not compared with the data
    chain = [{"type": "GaitTR_MultiInput"}, {"type": "SkeletonInput"}]
    assert check_pose_layout(ds, {"model": "GaitGraph1", "input_branch": [10, 8]}, [chain])


# ------------------------------------------------------------------ without a cache


def test_without_a_cache_a_few_sequences_are_read_and_load_names_the_odd_file(tmp_path):
    odd_path = "002/nm-01/018/018.pkl"  # not among the first, middle and last sequences
    root, part = make_dataset(tmp_path, odd={("002", "018"): (18, 3)})
    ds = PoseDataset(root, part, training=True, cache=False)
    reads = []
    original = dataset_module.load_sequence
    dataset_module.load_sequence = lambda p: reads.append(p) or original(p)
    try:
        assert check_pose_layout(ds) == [PoseLayout(17, 3)]
    finally:
        dataset_module.load_sequence = original
    assert len(reads) == 3
    for i, record in enumerate(ds.records):
        if record.paths[0].endswith(odd_path):
            with pytest.raises(PoseFileError, match=rf"{odd_path}: 18 joints and 3 channels \(shape \[40, 18, 3\]\), "
                                                    r"but the other sequences of this dataset have 17 joints"):
                ds.load(i)
        else:
            assert ds.load(i)[0].shape == (40, 17, 3)


def test_without_a_cache_an_odd_sequence_among_those_read_fails_at_start(tmp_path):
    root, part = make_dataset(tmp_path, odd={("003", "054"): (17, 2)})  # the last sequence
    ds = PoseDataset(root, part, training=True, cache=False)
    with pytest.raises(PoseFileError, match=r"003/nm-01/054/054.pkl: 2 channels where the others have 3; 1 of the 3 "
                                            r"TRAIN_SET sequences read at start \(data_cfg.cache: false\) differ"):
        check_pose_layout(ds)


def test_a_uniform_dataset_passes_and_load_is_unchanged(tmp_path):
    root, part = make_dataset(tmp_path)
    for cache in (True, "memory", False):
        ds = PoseDataset(root, part, training=True, cache=cache)
        cfg = demo("gaitgraph2_demo")
        assert check_pose_layout(ds, cfg["model_cfg"], cfg["trainer_cfg"]["transform"]) == [PoseLayout(17, 3)]
        assert all(ds.load(i)[0].shape == (40, 17, 3) for i in range(len(ds)))


def _no_read(path):
    raise AssertionError(f"read {path}")
