"""GREW: train / gallery / probe trees of _2d_pose.txt files -> the rearranged pickle layout."""
import json
import shutil

import numpy as np
import pytest
from raw_trees import REPO, load_tree, pose_line, synthetic, write_text

from fastposegait.converters import cli
from fastposegait.converters.validate import validate_root

EMPTY_VID = "00000000"   # sorts before every generated video id: an empty gallery sequence


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """Raw GREW tree from a synthetic GREW-like set (5 train, 3 test subjects, 1 probe each)."""
    base = tmp_path_factory.mktemp("grew")
    src = synthetic("grew", base / "syn", num_subjects=8, num_train=5, train_sequences=(1, 2),
                    probes_per_subject=1, frames=(16, 24), seed=5)
    root = base / "GREW"
    truth = {}
    malformed = {}
    for (s, t, v), arr in src.items():
        if s.endswith("train"):
            seq_dir = root / "train" / s[: -len("train")] / v
        elif s == "probe":
            seq_dir = root / "test" / "probe" / v
        else:
            seq_dir = root / "test" / "gallery" / s / v
        keep = np.ones(len(arr), bool)
        for i, frame in enumerate(arr):
            stem = f"{i + 1:05d}"
            line = pose_line(frame, (1080.0, 1920.0))
            write_text(seq_dir / f"{stem}_2d_pose.txt", line)
            write_text(seq_dir / f"{stem}_3d_pose.txt", "not used")
            (seq_dir / f"{stem}.png").write_bytes(b"")
        (seq_dir.parent / f"{v}_gei.png").write_bytes(b"\x89PNG")  # beside the folders: the original script tripped on them
        truth[(s, t, v)] = arr.astype(np.float64)[keep]
    # malformed files in one train sequence and one probe: wrong column count, NaN
    train_key = sorted(k for k in src if k[0].endswith("train"))[0]
    probe_key = sorted(k for k in src if k[0] == "probe")[0]
    t_dir = root / "train" / train_key[0][:-5] / train_key[2]
    (t_dir / "00002_2d_pose.txt").write_text(",".join(["1.0"] * 50))
    p_dir = root / "test" / "probe" / probe_key[2]
    line = (p_dir / "00004_2d_pose.txt").read_text().split(",")
    line[10] = "nan"
    (p_dir / "00004_2d_pose.txt").write_text(",".join(line))
    for key, idx in ((train_key, 1), (probe_key, 3)):
        truth[key] = np.delete(truth[key], idx, axis=0)
        malformed[key] = idx
    # a gallery sequence with no pose file sorts first: the written ones are still 01 and 02
    (root / "test" / "gallery" / "00002" / EMPTY_VID).mkdir()
    (root / "test" / "gallery" / "00002" / EMPTY_VID / "00001.png").write_bytes(b"")
    (root / "distractor").mkdir()
    return {"root": root, "truth": truth, "syn": base / "syn", "train_key": train_key, "probe_key": probe_key,
            "t_dir": t_dir, "p_dir": p_dir}


@pytest.fixture(scope="module")
def converted(raw, tmp_path_factory):
    out = tmp_path_factory.mktemp("grew_out") / "GREW-pose"
    report = out.parent / "report.json"
    assert cli.main(["grew", "-i", str(raw["root"]), "-o", str(out), "--report", str(report), "--no-progress"]) == 0
    return {"out": out, "report": json.loads(report.read_text())}


def test_rearranged_layout_and_values(raw, converted):
    out = load_tree(converted["out"])
    assert set(out) == set(raw["truth"])  # <id>train/00, <id>/01|02 in sorted order, probe/03
    for key, arr in out.items():
        assert arr.dtype == np.float64 and arr.shape[1:] == (17, 3)
        np.testing.assert_array_equal(arr, raw["truth"][key])
    assert all(t == "00" for s, t, v in out if s.endswith("train"))
    assert {t for s, t, v in out if s == "probe"} == {"03"}
    assert not (converted["out"] / "03").exists()  # the original script wrote OUT/03
    assert not list(converted["out"].glob("*/*/*_gei.png"))


def test_gallery_numbering_counts_written_sequences(raw, converted):
    report = converted["report"]
    empty = [s for s in report["sequences"] if s["status"] == "empty"]
    assert [s["name"] for s in empty] == [f"00002/??/{EMPTY_VID}"]
    assert "no *_2d_pose.txt files" in empty[0]["problems"][0]
    types = sorted(p.parent.parent.name for p in (converted["out"] / "00002").glob("*/*/*.pkl"))
    assert types == ["01", "02"]


def test_malformed_files_are_named_and_their_frames_dropped(raw, converted):
    problems = [p for s in converted["report"]["sequences"] for p in s["problems"] if "empty" not in p]
    problems = [p for p in problems if "no *_2d_pose" not in p]
    assert len(problems) == 2
    assert any(p.startswith(f"{raw['t_dir'] / '00002_2d_pose.txt'}: 50 values, expected 53") for p in problems)
    assert any(p.startswith(f"{raw['p_dir'] / '00004_2d_pose.txt'}: NaN/inf value (joint 2)") for p in problems)
    assert converted["report"]["dropped"] == {"malformed file": 2}


def test_partition_is_derived_from_the_folders(raw, converted):
    part = json.loads((converted["out"] / "partition.json").read_text())
    expected = json.loads((raw["syn"] / "partition.json").read_text())  # the generator's GREW partition
    assert part == expected
    assert part["TEST_SET"][-1] == "probe" and all(s.endswith("train") for s in part["TRAIN_SET"])
    report = validate_root(converted["out"], converted["out"] / "partition.json", expected_joints=(17,))
    assert report.ok, report.format()


def test_hidden_folders_are_not_subjects(converted, tmp_path):
    """The loader's .fastposegait_cache/ (or any hidden folder) in the converted root is no
    subject of the derived partition."""
    out = tmp_path / "out"
    shutil.copytree(converted["out"], out)
    (out / ".fastposegait_cache").mkdir()
    (out / ".ipynb_checkpoints" / "x").mkdir(parents=True)
    assert cli.main(["grew-partition", "-i", str(out), "-o", str(tmp_path / "p.json")]) == 0
    expected = json.loads((converted["out"] / "partition.json").read_text())
    assert json.loads((tmp_path / "p.json").read_text()) == expected


def test_one_split_with_trailing_slash_and_explicit_split(raw, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["grew", "-i", str(raw["root"] / "train") + "/", "-o", str(out), "--no-progress"]) == 0
    assert {p.name for p in out.iterdir() if p.is_dir()} == {k[0] for k in raw["truth"] if k[0].endswith("train")}
    # a probe folder under another name, split given explicitly; the _gei.png files are skipped
    renamed = tmp_path / "my_probes"
    shutil.copytree(raw["root"] / "test" / "probe", renamed)
    assert cli.main(["grew", "-i", str(renamed), "-o", str(out), "--split", "probe", "--no-progress"]) == 0
    probes = {k for k in load_tree(out) if k[0] == "probe"}
    assert probes == {k for k in raw["truth"] if k[0] == "probe"}
    part = json.loads((out / "partition.json").read_text())
    assert part["TEST_SET"] == ["probe"]
    capsys.readouterr()
    assert cli.main(["grew", "-i", str(renamed), "-o", str(out)]) == 2
    assert "cannot tell which GREW split" in capsys.readouterr().err


def test_gallery_resume_keeps_numbering(raw, converted, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(converted["out"], out)
    second = sorted((out / "00002" / "02").iterdir())[0]
    shutil.rmtree(second)  # as if the run was killed before writing 00002's second sequence
    assert cli.main(["grew", "-i", str(raw["root"] / "test" / "gallery"), "-o", str(out), "--no-progress"]) == 0
    summary = capsys.readouterr().out
    assert "1 written" in summary and "1 without any usable frame" in summary
    assert sorted(p.parent.parent.name for p in (out / "00002").glob("*/*/*.pkl")) == ["01", "02"]
    assert (out / "00002" / "02" / second.name / f"{second.name}.pkl").is_file()


def test_stop_on_error_names_the_file(raw, tmp_path, capsys):
    code = cli.main(["grew", "-i", str(raw["root"]), "-o", str(tmp_path / "o"), "--on-error", "stop",
                     "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    assert str(raw["t_dir"] / "00002_2d_pose.txt") in err and "expected 53" in err


def test_grew_partition_rule(tmp_path):
    assert cli.main(["grew-partition", "-o", str(tmp_path / "GREW.json")]) == 0
    part = json.loads((tmp_path / "GREW.json").read_text())
    assert len(part["TRAIN_SET"]) == 20000 and part["TRAIN_SET"][0] == "00001train"
    assert len(part["TEST_SET"]) == 6001 and part["TEST_SET"][-2:] == ["06000", "probe"]
    assert part == json.loads((REPO / "datasets" / "GREW" / "GREW.json").read_text())
