"""Gait3D: 2D_Poses/<id>/<camvid>/<seq>/human_crop_f<frame>.txt -> pickles, split file -> partition."""
import json

import numpy as np
import pytest
from raw_trees import load_tree, pose_line, synthetic, write_text

from fastposegait.data.dataset import PoseDataset
from fastposegait.converters import cli
from fastposegait.converters.validate import validate_root


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """Raw Gait3D poses from a synthetic Gait3D-like set; one sequence's frame numbers cross
    9999 -> 10000, where name order and frame order disagree."""
    base = tmp_path_factory.mktemp("gait3d")
    src = synthetic("gait3d", base / "syn", num_subjects=8, frames=(14, 20), seed=7)
    poses = base / "Gait3D" / "2D_Poses"
    truth = {}
    keys = sorted(src)
    crossing = keys[0]
    for n, key in enumerate(keys):
        s, t, v = key
        start = 9993 if key == crossing else 100 * n + 1
        for i, frame in enumerate(src[key]):
            write_text(poses / s / t / v / f"human_crop_f{start + i}.txt", pose_line(frame, (120.0, 250.0)))
        truth[key] = src[key].astype(np.float64)
    bad_key = keys[1]
    bad_dir = poses / bad_key[0] / bad_key[1] / bad_key[2]
    bad_file = sorted(bad_dir.iterdir(), key=lambda p: int(p.stem.split("_f")[1]))[2]
    bad_file.write_text(",".join(bad_file.read_text().split(",")[:-3]))  # one joint short
    truth[bad_key] = np.delete(truth[bad_key], 2, axis=0)
    (bad_dir / "notes.txt").write_text("hello")  # not a frame file
    empty = poses / keys[2][0] / keys[2][1] / "seq9"
    empty.mkdir()
    return {"poses": poses, "truth": truth, "split": base / "syn" / "partition.json", "crossing": crossing,
            "bad_file": bad_file, "bad_key": bad_key, "base": base}


@pytest.fixture(scope="module")
def converted(raw, tmp_path_factory):
    out = tmp_path_factory.mktemp("gait3d_out") / "Gait3D-pose"
    report = out.parent / "report.json"
    # --input may be the release folder holding 2D_Poses
    assert cli.main(["gait3d", "-i", str(raw["poses"].parent), "-o", str(out), "--split-file", str(raw["split"]),
                     "--report", str(report), "--no-progress"]) == 0
    return {"out": out, "report": json.loads(report.read_text())}


def test_frames_in_numeric_order_and_values(raw, converted):
    out = load_tree(converted["out"])
    assert set(out) == set(raw["truth"])
    for key, arr in out.items():
        assert arr.dtype == np.float64 and arr.shape[1:] == (17, 3)
        np.testing.assert_array_equal(arr, raw["truth"][key])
    # f9999 comes before f10000 (lexical order would have put f10000..f10006 first)
    names = sorted(p.name for p in (raw["poses"].joinpath(*raw["crossing"])).iterdir())
    assert names[0] == "human_crop_f10000.txt"
    np.testing.assert_array_equal(out[raw["crossing"]][6], raw["truth"][raw["crossing"]][6])


def test_malformed_and_stray_files_are_reported(raw, converted):
    seq = next(s for s in converted["report"]["sequences"] if s["name"] == "/".join(raw["bad_key"]))
    assert seq["dropped"] == {"malformed file": 1, "file name without a frame number": 1}
    assert any(p.startswith(f"{raw['bad_file']}: 50 values, expected 53") for p in seq["problems"])
    empty = [s for s in converted["report"]["sequences"] if s["status"] == "empty"]
    assert len(empty) == 1 and empty[0]["name"].endswith("/seq9")


def test_partition_is_the_official_split(raw, converted):
    part = json.loads((converted["out"] / "partition.json").read_text())
    assert part == json.loads(raw["split"].read_text())  # order kept, PROBE_SET kept
    assert validate_root(converted["out"], converted["out"] / "partition.json").ok
    test = PoseDataset(converted["out"], converted["out"] / "partition.json", training=False)
    keys = {f"{s}-{t}-{v}" for s, t, v in zip(test.subjects, test.types, test.views)}
    assert set(part["PROBE_SET"]) <= keys


def test_split_file_variants(raw, converted, tmp_path):
    official = json.loads(raw["split"].read_text())
    variant = {
        "train": [int(s) for s in official["TRAIN_SET"]],
        "Test_Set": official["TEST_SET"],
        "probe": [p.split("-") if i % 2 else p.replace("-", "/") for i, p in enumerate(official["PROBE_SET"])],
    }
    split = tmp_path / "split.json"
    split.write_text(json.dumps(variant))
    out = tmp_path / "out"
    assert cli.main(["gait3d", "-i", str(raw["poses"]), "-o", str(out), "--split-file", str(split),
                     "--no-progress"]) == 0
    assert json.loads((out / "partition.json").read_text()) == official


def test_unusable_split_files_fail_before_converting(raw, tmp_path, capsys):
    official = json.loads(raw["split"].read_text())
    no_probe = tmp_path / "no_probe.json"
    no_probe.write_text(json.dumps({"TRAIN_SET": official["TRAIN_SET"], "TEST_SET": official["TEST_SET"]}))
    out = tmp_path / "out"
    assert cli.main(["gait3d", "-i", str(raw["poses"]), "-o", str(out), "--split-file", str(no_probe)]) == 2
    assert "missing PROBE_SET" in capsys.readouterr().err
    assert not out.exists()
    wrong = tmp_path / "wrong.json"
    train_probe = official["TRAIN_SET"][0] + "-camid0_videoid0-seq0"
    wrong.write_text(json.dumps(dict(official, PROBE_SET=[train_probe])))
    assert cli.main(["gait3d", "-i", str(raw["poses"]), "-o", str(out), "--split-file", str(wrong),
                     "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"subject '{official['TRAIN_SET'][0]}' is not in TEST_SET" in err
    assert not out.exists()


def test_stop_on_error(raw, tmp_path, capsys):
    assert cli.main(["gait3d", "-i", str(raw["poses"]), "-o", str(tmp_path / "o"), "--split-file",
                     str(raw["split"]), "--on-error", "stop", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert f"error: {raw['bad_file']}: 50 values, expected 53" in err
