"""OUMVLP-Pose: raw per-frame OpenPose JSON -> pickles, person choice, 18 -> 17, errors, resume."""
import json
import os
import pickle
import shutil

import numpy as np
import pytest
from raw_trees import REPO, bystander, load_tree, openpose_frame, run_datasets_cli, synthetic, write_text

from fastposegait.data.dataset import PoseDataset
from fastposegait.data.skeleton import OPENPOSE_TO_COCO
from fastposegait.converters import cli
from fastposegait.converters.tasks import remove_stale_temps

VIEWS = ["000", "090"]
CROWDED_SEQ = ("00001", "00", "000")     # a bystander listed first in its early and late frames
EMPTY_FRAMES_SEQ = ("00002", "01", "090")  # frames 3 and 4: nobody detected
BROKEN_SEQ = ("00003", "00", "090")        # one truncated file, one NaN file, one short list


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """A raw OUMVLP-Pose tree (4 subjects x 2 types x 2 views) plus the truth per sequence."""
    base = tmp_path_factory.mktemp("oumvlp")
    src18 = synthetic("oumvlp", base / "syn18", num_subjects=4, views=VIEWS, frames=(24, 32), seed=3)
    src17 = synthetic("oumvlp", base / "syn17", num_subjects=4, views=VIEWS, frames=(24, 32), seed=3,
                      joint_format="coco")
    root = base / "raw"
    truth = {}     # key -> expected [T, 18, 3] float64 with the walker
    other = {}     # key -> the bystander frames (crowded sequence)
    crowded = []
    for key, walk in src18.items():
        s, t, v = key
        folder = root / s / f"{v}_{t}"
        frames = walk.astype(np.float64)
        keep = np.ones(len(frames), bool)
        by = bystander(frames, src18[("00004", "00", "090")]) if key == CROWDED_SEQ else None
        for i, f in enumerate(frames):
            people = [f]
            if by is not None and (i < 6 or 15 <= i < 19):
                people = [by[i], f]  # listed first, more confident
                crowded.append(i)
            if key == EMPTY_FRAMES_SEQ and i in (3, 4):
                people, keep[i] = [], False
            name = f"{i + 21:04d}_keypoints.json"
            text = openpose_frame(people)
            if key == BROKEN_SEQ and i == 2:
                text, keep[i] = text[: len(text) // 2], False  # truncated
            if key == BROKEN_SEQ and i == 5:
                text, keep[i] = text.replace(repr(float(f[3, 0])), "NaN", 1), False
            if key == BROKEN_SEQ and i == 7:
                short = json.loads(text)
                short["people"][0]["pose_keypoints_2d"] = short["people"][0]["pose_keypoints_2d"][:51]
                text, keep[i] = json.dumps(short), False
            write_text(folder / name, text)
        truth[key] = frames[keep]
        if by is not None:
            other[key] = by
    (root / "00004" / "090_01").mkdir(parents=True, exist_ok=True)
    for f in (root / "00004" / "090_01").iterdir():
        f.unlink()  # an empty sequence folder: nothing to write
    (root / "00004" / "README").mkdir()  # not a <view>_<type> folder
    return {"root": root, "truth": truth, "bystander": other, "crowded": sorted(set(crowded)), "src17": src17,
            "base": base}


@pytest.fixture(scope="module")
def converted(raw, tmp_path_factory):
    out = tmp_path_factory.mktemp("oumvlp_out") / "OUMVLP"
    report = out.parent / "report.json"
    code = cli.main(["oumvlp", "-i", str(raw["root"]), "-o", str(out), "--report", str(report), "--no-progress"])
    assert code == 0
    return {"out": out, "report": json.loads(report.read_text())}


def _seq(report, name):
    return next(s for s in report["sequences"] if s["name"] == name)


def test_output_tree_shapes_and_values(raw, converted):
    out = load_tree(converted["out"])
    expected = set(raw["truth"]) - {("00004", "01", "090")}  # the empty folder writes nothing
    assert set(out) == expected
    umask = os.umask(0)
    os.umask(umask)
    for key in expected:
        path = converted["out"] / key[0] / key[1] / key[2] / f"{key[2]}.pkl"
        assert path.is_file()
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # readable like any new file, not 0o600
        arr = out[key]
        assert arr.dtype == np.float64 and arr.ndim == 3 and arr.shape[1:] == (18, 3)
        np.testing.assert_array_equal(arr, raw["truth"][key])  # type/view swapped, frames in order


def test_tracking_picks_the_walker_not_the_first_or_most_confident(raw, converted):
    walker = raw["truth"][CROWDED_SEQ]
    by = raw["bystander"][CROWDED_SEQ]
    crowded = raw["crowded"]
    assert by[crowded, :, 2].mean() > walker[crowded, :, 2].mean()  # the bystander is more confident
    out = load_tree(converted["out"])[CROWDED_SEQ]
    np.testing.assert_array_equal(out, walker)
    seq = _seq(converted["report"], "00001/00/000")
    assert seq["choices"] == len(crowded) == 10 and seq["selection"] == "tracking"


def test_first_person_selection_reproduces_upstream_bug(raw, tmp_path):
    out = tmp_path / "first"
    assert cli.main(["oumvlp", "-i", str(raw["root"]), "-o", str(out), "--selection", "first", "--no-progress"]) == 0
    arr = load_tree(out)[CROWDED_SEQ]
    crowded = raw["crowded"]
    np.testing.assert_array_equal(arr[crowded], raw["bystander"][CROWDED_SEQ][crowded])


def test_dropped_frames_and_malformed_files_are_reported(raw, converted, capsys):
    report = converted["report"]
    assert report["dropped"] == {"no person detected": 2, "malformed file": 3}
    broken = _seq(report, "00003/00/090")
    assert broken["dropped"] == {"malformed file": 3}
    assert len(broken["problems"]) == 3
    folder = raw["root"] / "00003" / "090_00"
    joined = "\n".join(broken["problems"])
    assert f"{folder / '0023_keypoints.json'}: invalid JSON" in joined
    assert f"{folder / '0026_keypoints.json'}: NaN/inf value (person 0, joint 3)" in joined
    assert f"{folder / '0028_keypoints.json'}: pose_keypoints_2d (person 0) holds 51 values, expected 54" in joined
    assert _seq(report, "00002/01/090")["dropped"] == {"no person detected": 2}
    empty = _seq(report, "00004/01/090")
    assert empty["status"] == "empty" and empty["frames_read"] == 0
    assert any("not a <view>_<type> folder" in n and "README" in n for n in report["notes"])


def test_partition_follows_the_rule(converted):
    part = json.loads((converted["out"] / "partition.json").read_text())
    assert part == {"TRAIN_SET": ["00001", "00003"], "TEST_SET": ["00002", "00004"]}


def test_coco17_flag_and_separate_step_map_the_right_joints(raw, converted, tmp_path):
    out17 = tmp_path / "flag17"
    assert cli.main(["oumvlp", "-i", str(raw["root"]), "-o", str(out17), "--coco17", "--no-progress"]) == 0
    step17 = tmp_path / "step17"
    assert cli.main(["oumvlp17", "-i", str(converted["out"]), "-o", str(step17), "--no-progress"]) == 0
    flag, step, src18 = load_tree(out17), load_tree(step17), load_tree(converted["out"])
    assert set(flag) == set(step) == set(src18)
    for key, a18 in src18.items():
        assert flag[key].shape == (a18.shape[0], 17, 3)
        np.testing.assert_array_equal(flag[key], step[key])
        # named joints: COCO left shoulder = OpenPose 5, right shoulder = 2, left eye = 15, right ankle = 10
        for coco, op in ((0, 0), (1, 15), (2, 14), (5, 5), (6, 2), (11, 11), (12, 8), (16, 10)):
            np.testing.assert_array_equal(flag[key][:, coco], a18[:, op])
    # the generator's COCO output is its OpenPose output mapped the same way (same random draws)
    key = ("00004", "00", "000")
    np.testing.assert_array_equal(flag[key], raw["src17"][key].astype(np.float64))
    assert list(OPENPOSE_TO_COCO) == [0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10]


def test_selection_index_tree_is_followed(raw, tmp_path):
    index_root = tmp_path / "index"
    seq_dir = index_root / "00001" / "00" / "000"
    seq_dir.mkdir(parents=True)
    # frame numbers start at 21; pick the bystander (person 0) in frames 21 and 22 only
    with open(seq_dir / "pose_selection_idx.pkl", "wb") as f:
        pickle.dump({"0021": 0, "0022": 0, "0023": 1, "0024": 1}, f)
    out = tmp_path / "out"
    assert cli.main(["oumvlp", "-i", str(raw["root"]), "-o", str(out), "--selection-index", str(index_root),
                     "--no-progress", "--report", str(tmp_path / "r.json")]) == 0
    arr = load_tree(out)[CROWDED_SEQ]
    by, walker = raw["bystander"][CROWDED_SEQ], raw["truth"][CROWDED_SEQ]
    np.testing.assert_array_equal(arr[:2], by[:2])
    np.testing.assert_array_equal(arr[2:4], walker[2:4])
    np.testing.assert_array_equal(arr[4:6], by[4:6])  # crowded, no entry: person 0 as OpenGait
    report = json.loads((tmp_path / "r.json").read_text())
    assert _seq(report, "00001/00/000")["selection"] == "index"


@pytest.mark.parametrize("target", ["walker", "bystander"])
def test_silhouettes_decide_crowded_frames(raw, tmp_path, target):
    from PIL import Image

    person = raw["truth"][CROWDED_SEQ] if target == "walker" else raw["bystander"][CROWDED_SEQ]
    sil = tmp_path / "sil" / "Silhouette_000-00" / "00001"  # OU-MVLP's release layout
    sil.mkdir(parents=True)
    for i in raw["crowded"]:
        img = np.zeros((980, 1280), np.uint8)
        for x, y, _ in person[i]:
            img[max(int(y) - 6, 0):int(y) + 7, max(int(x) - 6, 0):int(x) + 7] = 255
        Image.fromarray(img).save(sil / f"{i + 21:04d}.png")
    out = tmp_path / "out"
    assert cli.main(["oumvlp", "-i", str(raw["root"]), "-o", str(out), "--silhouettes", str(tmp_path / "sil"),
                     "--no-progress"]) == 0
    arr = load_tree(out)[CROWDED_SEQ]
    np.testing.assert_array_equal(arr[raw["crowded"]], person[raw["crowded"]])


def test_stop_on_error_then_resume(raw, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.main(["oumvlp", "-i", str(raw["root"]), "-o", str(out), "--on-error", "stop", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1
    bad = raw["root"] / "00003" / "090_00" / "0023_keypoints.json"
    assert f"error: {bad}: invalid JSON" in captured.err
    assert "Traceback" not in captured.err
    written = load_tree(out)
    assert ("00003", "00", "090") not in written and len(written) > 0
    assert not list(out.rglob("*.tmp"))  # nothing half-written
    for key, arr in written.items():  # what was written before the stop is complete
        np.testing.assert_array_equal(arr, raw["truth"][key])
    before = {k: os.stat(out / k[0] / k[1] / k[2] / f"{k[2]}.pkl").st_mtime_ns for k in written}
    # resume with skip: the finished sequences are not redone, the rest are written
    assert cli.main(["oumvlp", "-i", str(raw["root"]), "-o", str(out), "--no-progress"]) == 0
    summary = capsys.readouterr().out
    assert f"{len(written)} already converted (skipped)" in summary
    after = load_tree(out)
    assert len(after) == 15
    for key in written:
        assert os.stat(out / key[0] / key[1] / key[2] / f"{key[2]}.pkl").st_mtime_ns == before[key]


def test_resume_skips_finished_and_ignores_leftover_temp_files(raw, converted, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["oumvlp", "-i", str(raw["root"]), "-o", str(out), "--no-progress", "-j", "2"]) == 0
    capsys.readouterr()
    # simulate a run killed while writing one sequence: its pickle is missing, a temp file is left
    victim = out / "00002" / "00" / "000" / "000.pkl"
    victim.unlink()
    stale = victim.parent / ".000.pkl.k1ll3d.tmp"
    stale.write_bytes(b"partial")
    assert cli.main(["oumvlp", "-i", str(raw["root"]), "-o", str(out), "--no-progress"]) == 0
    summary = capsys.readouterr().out
    assert "16 sequences: 1 written, 14 already converted (skipped), 1 without any usable frame" in summary
    assert not stale.exists() and victim.is_file()
    np.testing.assert_array_equal(load_tree(out)[("00002", "00", "000")], raw["truth"][("00002", "00", "000")])
    # two workers wrote exactly what one worker wrote
    for key, arr in load_tree(converted["out"]).items():
        np.testing.assert_array_equal(load_tree(out)[key], arr)
    # and the loader takes the result
    ds = PoseDataset(out, out / "partition.json", training=True, cache=True)
    assert sorted(set(ds.subjects)) == ["00001", "00003"]


def test_rerun_removes_leftover_temp_files_in_the_whole_output_tree(raw, converted, tmp_path, capsys):
    """Temp files of interrupted writes go on the next run wherever they are: beside a finished
    pickle (a killed --overwrite run), in a folder of their own (a killed first write, also of a
    sequence that is never written), at the root (the partition); the outputs stay as they were."""
    out = tmp_path / "out"
    shutil.copytree(converted["out"], out)
    pickles = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*.pkl")}
    planted = [
        out / "00001" / "00" / "000" / ".000.pkl.k1ll3d.tmp",    # beside an existing pickle
        out / "00004" / "01" / "090" / ".090.pkl.q1w2e3r4.tmp",  # the sequence without usable frames
        out / "00009" / "00" / "000" / ".000.pkl.a_b9x2q7.tmp",  # a folder holding nothing else
        out / ".partition.json.zz8y7x6w.tmp",
    ]
    kept = [
        out / "00001" / "00" / "000" / "notes.tmp",              # not a temp file of ours
        out / ".fastposegait_cache" / ".train.pack.p0o9i8u7.tmp",  # the loader's cache: not entered
    ]
    for path in planted + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half written")
    assert cli.main(["oumvlp", "-i", str(raw["root"]), "-o", str(out), "--no-progress"]) == 0
    summary = capsys.readouterr().out
    assert [p for p in planted if p.exists()] == []
    assert all(p.exists() for p in kept)
    assert "0 written, 15 already converted (skipped)" in summary
    assert f"removed 4 leftover temp files of an interrupted run under {out}" in summary
    assert "partition not written" not in summary  # the hidden cache folder is no subject
    # the folders only the interrupted writes had created are gone (the loader rejects a folder
    # with files but no pickle); the outputs are untouched
    assert not (out / "00004" / "01" / "090").exists() and not (out / "00009").exists()
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.rglob("*.pkl")} == pickles
    (out / "00001" / "00" / "000" / "notes.tmp").unlink()
    assert cli.main(["validate", "-i", str(out), "--partition", str(out / "partition.json")]) == 0
    assert "temp file" not in capsys.readouterr().out
    # nothing left: nothing said
    assert cli.main(["oumvlp", "-i", str(raw["root"]), "-o", str(out), "--no-progress"]) == 0
    assert "leftover temp" not in capsys.readouterr().out


def test_remove_stale_temps_only_touches_this_files_temps(tmp_path):
    target = tmp_path / "000.pkl"
    for name in (".000.pkl.a.tmp", ".000.pkl.b.tmp", ".090.pkl.c.tmp", "000.pkl.tmp"):
        (tmp_path / name).write_bytes(b"x")
    assert remove_stale_temps(target) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [".090.pkl.c.tmp", "000.pkl.tmp"]


def test_bad_input_folder_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli.main(["oumvlp", "-i", str(tmp_path / "nope"), "-o", str(tmp_path / "o")]) == 2
    assert "error: OUMVLP-Pose input folder" in capsys.readouterr().err
    assert cli.main(["oumvlp", "-i", str(tmp_path / "empty"), "-o", str(tmp_path / "o")]) == 2
    assert "no <subject>/<view>_<type>/ folders found" in capsys.readouterr().err


def test_module_entry_point_runs(raw, tmp_path):
    proc = run_datasets_cli(["oumvlp", "-i", raw["root"], "-o", tmp_path / "o", "-j", "2"])
    assert "15 written" in proc.stdout and "2 workers" in proc.stdout
    proc = run_datasets_cli(["oumvlp-partition", "-o", tmp_path / "OUMVLP.json"])
    part = json.loads((tmp_path / "OUMVLP.json").read_text())
    assert len(part["TRAIN_SET"]) == 5153 and len(part["TEST_SET"]) == 5154
    assert part["TEST_SET"][-1] == "10307" and "10305" in part["TRAIN_SET"]
    # the partition shipped for the configs is exactly the rule's output
    assert part == json.loads((REPO / "datasets" / "OUMVLP" / "OUMVLP.json").read_text())


def test_empty_output_is_redone_and_fsync_is_optional(raw, tmp_path, monkeypatch, capsys):
    import fastposegait.data.io as io_module

    calls = []
    real_fsync = os.fsync
    monkeypatch.setattr(io_module.os, "fsync", lambda fd: (calls.append(fd), real_fsync(fd)))
    out = tmp_path / "out"
    assert cli.main(["oumvlp", "-i", str(raw["root"]), "-o", str(out), "--no-progress"]) == 0
    assert len(calls) == 1  # only the partition JSON: no fsync per sequence by default
    calls.clear()
    # a machine crash without fsync can leave an empty file under the final name: not "done"
    victim = out / "00003" / "01" / "000" / "000.pkl"
    victim.write_bytes(b"")
    capsys.readouterr()
    assert cli.main(["oumvlp", "-i", str(raw["root"]), "-o", str(out), "--no-progress", "--fsync"]) == 0
    assert "1 written, 14 already converted" in capsys.readouterr().out
    assert len(calls) == 2  # the redone sequence was flushed to disk, then the partition
    np.testing.assert_array_equal(load_tree(out)[("00003", "01", "000")], raw["truth"][("00003", "01", "000")])
