"""``python -m fastposegait.converters skeleton-maps``: pose tree -> SkeletonGait map tree."""
from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

from fastposegait.converters import cli
from fastposegait.converters.skeleton_maps import map_folder_name, pose_sequence
from fastposegait.data.io import load_pickle
from fastposegait.data.skeleton import OPENPOSE_TO_COCO
from fastposegait.data.skeleton_maps.exact import render_sequence
from fastposegait.data.synthetic import generate_dataset
from fastposegait.errors import PoseFileError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data" / "skeleton_maps"))
from worked_example import worked_example_poses  # noqa: E402


def _dump(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def _convert(*args: str) -> int:
    return cli.main(["skeleton-maps", "--no-progress", *args])


@pytest.fixture(scope="module")
def pose_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("poses") / "casia"
    generate_dataset("casia-b", root, num_subjects=2, views=["000", "090"], types=["nm-01", "bg-01"],
                     frames=(12, 16), seed=3)
    return root


def _pickles(root: Path):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.pkl"))


def test_tree_layout_shapes_and_equality_with_the_renderer(pose_root, tmp_path):
    out = tmp_path / "maps"
    assert _convert("-i", str(pose_root), "-o", str(out), "--dataset", "CASIA-B") == 0
    pkl = out / "CASIA-B_sigma_8.0_" / "pkl"
    assert _pickles(pkl) == _pickles(pose_root) and len(_pickles(pkl)) == 8
    for rel in _pickles(pose_root):
        poses = load_pickle(pose_root / rel)
        maps = load_pickle(pkl / rel)
        assert type(maps) is np.ndarray and maps.dtype == np.uint8
        assert maps.shape == (len(poses), 2, 64, 64)
        assert np.array_equal(maps, render_sequence(poses))
        assert maps.any()
    with open(pkl / _pickles(pose_root)[0], "rb") as f:  # a plain pickled array, readable without us
        assert pickle.load(f).shape[1:] == (2, 64, 64)


def test_workers_give_the_same_bytes_and_existing_files_are_skipped(pose_root, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert _convert("-i", str(pose_root), "-o", str(one), "--dataset", "d", "--sigma", "6", "--ext-name", "x") == 0
    assert _convert("-i", str(pose_root), "-o", str(two), "--dataset", "d", "--sigma", "6", "--ext-name", "x",
                    "--workers", "2") == 0
    a, b = one / "d_sigma_6.0_x" / "pkl", two / "d_sigma_6.0_x" / "pkl"
    for rel in _pickles(a):
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    target = a / _pickles(a)[0]
    target.write_bytes(b"kept")          # an existing output is not redone without --overwrite
    assert _convert("-i", str(pose_root), "-o", str(one), "--dataset", "d", "--sigma", "6", "--ext-name", "x") == 0
    assert target.read_bytes() == b"kept"
    assert _convert("-i", str(pose_root), "-o", str(one), "--dataset", "d", "--sigma", "6", "--ext-name", "x",
                    "--overwrite") == 0
    assert target.read_bytes() == (b / _pickles(a)[0]).read_bytes()
    assert not [p for p in a.rglob(".*")]  # no temp files left behind


def test_sigma_changes_the_maps(tmp_path):
    _dump(tmp_path / "in" / "s" / "t" / "v" / "seq.pkl", worked_example_poses())
    _convert("-i", str(tmp_path / "in"), "-o", str(tmp_path / "o"), "--dataset", "x", "--sigma", "4")
    maps = load_pickle(tmp_path / "o" / "x_sigma_4.0_" / "pkl" / "s" / "t" / "v" / "seq.pkl")
    assert np.array_equal(maps, render_sequence(worked_example_poses(), sigma=4.0))
    assert not np.array_equal(maps, render_sequence(worked_example_poses()))


def test_eighteen_joints_equal_their_coco17_conversion(tmp_path):
    coco = worked_example_poses()
    openpose = np.zeros((4, 18, 3))
    openpose[:, OPENPOSE_TO_COCO] = coco
    openpose[:, 1] = (coco[:, 5] + coco[:, 6]) / 2
    _dump(tmp_path / "in18" / "001" / "nm-01" / "090" / "090.pkl", openpose.astype(np.float32))
    _dump(tmp_path / "in17" / "001" / "nm-01" / "090" / "090.pkl", coco.astype(np.float32))
    for name in ("in18", "in17"):
        assert _convert("-i", str(tmp_path / name), "-o", str(tmp_path / f"out_{name}"), "--dataset", "OUMVLP") == 0
    rel = Path("OUMVLP_sigma_8.0_") / "pkl" / "001" / "nm-01" / "090" / "090.pkl"
    a, b = load_pickle(tmp_path / "out_in18" / rel), load_pickle(tmp_path / "out_in17" / rel)
    assert np.array_equal(a, b) and a.shape == (4, 2, 64, 64)


def test_grew_rows_of_53_and_plain_layout(tmp_path):
    poses = worked_example_poses()
    rows = np.concatenate([np.arange(4)[:, None], np.full((4, 1), 7.0), poses.reshape(4, 51)], axis=1)
    assert rows.shape == (4, 53)
    _dump(tmp_path / "in" / "00001train" / "00" / "a" / "a.pkl", rows)
    _dump(tmp_path / "in" / "00001train" / "00" / "b" / "b.pkl", poses)
    assert _convert("-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--dataset", "GREW") == 0
    pkl = tmp_path / "out" / "GREW_sigma_8.0_" / "pkl" / "00001train" / "00"
    expected = render_sequence(poses)
    assert np.array_equal(load_pickle(pkl / "a" / "a.pkl"), expected)
    assert np.array_equal(load_pickle(pkl / "b" / "b.pkl"), expected)
    # outside GREW a [T, 53] array is not a pose sequence; inside, 52 columns are refused
    with pytest.raises(PoseFileError, match=r"x\.pkl: expected shape \[T, V, 3\]"):
        pose_sequence(rows, "x.pkl", grew=False)
    with pytest.raises(PoseFileError, match=r"x\.pkl: GREW rows must hold 53"):
        pose_sequence(rows[:, 1:], "x.pkl", grew=True)


def test_sustech1k_takes_only_the_03_pose_files(tmp_path):
    poses = worked_example_poses()
    view = tmp_path / "in" / "0001" / "00-nm" / "000"
    _dump(view / "03-000-Camera-Pose.pkl", poses)
    _dump(view / "00-000-LiDAR-PCDs.pkl", np.zeros((4, 5, 3)))
    _dump(view / "01-000-Camera-Sils.pkl", np.zeros((4, 64, 64), np.uint8))
    _dump(view / "13-000-Other-Pose.pkl", poses)   # a valid pose file, but not the 03 modality
    assert _convert("-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--dataset", "SUSTech1K") == 0
    pkl = tmp_path / "out" / "SUSTech1K_sigma_8.0_" / "pkl"
    assert _pickles(pkl) == ["0001/00-nm/000/03-000-Camera-Pose.pkl"]


def test_bad_file_skip_and_stop(tmp_path, capsys):
    _dump(tmp_path / "in" / "s" / "t" / "v" / "good.pkl", worked_example_poses())
    bad = tmp_path / "in" / "s" / "t" / "w" / "bad.pkl"
    _dump(bad, np.zeros((4, 25, 3)))
    out = tmp_path / "out"
    assert _convert("-i", str(tmp_path / "in"), "-o", str(out), "--dataset", "x") == 0   # skip: reported
    assert f"{bad}: 25 joints" in capsys.readouterr().out
    assert _pickles(out / "x_sigma_8.0_" / "pkl") == ["s/t/v/good.pkl"]
    assert _convert("-i", str(tmp_path / "in"), "-o", str(tmp_path / "out2"), "--dataset", "x",
                    "--on-error", "stop") == 1
    err = capsys.readouterr().err
    assert f"error: {bad}: 25 joints" in err and "Traceback" not in err


def test_two_channel_poses_and_unreadable_pickle(tmp_path, capsys):
    _dump(tmp_path / "in" / "s" / "t" / "v" / "xy.pkl", worked_example_poses()[..., :2])
    (tmp_path / "in" / "s" / "t" / "w").mkdir(parents=True)
    (tmp_path / "in" / "s" / "t" / "w" / "junk.pkl").write_bytes(b"not a pickle")
    assert _convert("-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--dataset", "x") == 1
    out = capsys.readouterr()
    assert "xy.pkl: skeleton maps need (x, y, confidence)" in out.out
    assert "junk.pkl: not a readable pickle" in out.out
    assert "nothing was written" in out.err


@pytest.mark.parametrize("args, message", [
    (["--dataset", "a/b"], "--dataset 'a/b' must be a plain folder name"),
    (["--dataset", "x", "--ext-name", ".."], "--ext-name '..' must be empty or a plain name"),
    (["--dataset", "x", "--sigma", "0"], "--sigma 0.0 must be a positive number"),
])
def test_bad_options(tmp_path, capsys, args, message):
    _dump(tmp_path / "in" / "s" / "t" / "v" / "seq.pkl", worked_example_poses())
    assert _convert("-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), *args) == 2
    assert message in capsys.readouterr().err


def test_empty_input_and_output_inside_input(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    assert _convert("-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--dataset", "x") == 2
    assert "no <subject>/<type>/<view>/*.pkl pose pickles found" in capsys.readouterr().err
    assert _convert("-i", str(tmp_path / "in"), "-o", str(tmp_path / "in" / "maps"), "--dataset", "x") == 2
    assert "inside the --input folder" in capsys.readouterr().err


def test_folder_name():
    assert map_folder_name("Gait3D", 8.0) == "Gait3D_sigma_8.0_"
    assert map_folder_name("GREW", 8, "v2") == "GREW_sigma_8.0_v2"
