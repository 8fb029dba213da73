"""The dataset checker (every problem the loader would trip on, all at once) and CASIA-B's check."""
import json
import os
import pickle
import shutil

import numpy as np
import pytest
from raw_trees import REPO

from fastposegait.data.dataset import DatasetError, PoseDataset
from fastposegait.data.io import PoseFileError, save_pickle
from fastposegait.converters import cli
from fastposegait.converters.validate import validate_root


def _seq(rng, t=12, v=17):
    arr = rng.uniform(0, 300, size=(t, v, 3))
    arr[..., 2] = rng.uniform(0.1, 1.0, size=(t, v))
    return arr


def _tree(root, subjects, rng, views=("000", "090"), types=("nm-01",)):
    for s in subjects:
        for t in types:
            for v in views:
                save_pickle(root / s / t / v / f"{v}.pkl", _seq(rng))
                (root / s / t / v / "mapping.txt").write_text("0 0\n")  # CASIA-B release: ignored


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.fixture()
def broken(tmp_path):
    """A small CASIA-B-like root with one instance of each problem, and where each one is."""
    rng = np.random.default_rng(0)
    root = tmp_path / "CASIA-B-pose"
    _tree(root, [f"{i:03d}" for i in range(1, 5)], rng)
    bad = {}

    def put(name, subject, obj, view="000"):
        path = root / subject / "nm-01" / view / f"{view}.pkl"
        with open(path, "wb") as f:
            pickle.dump(obj, f)
        bad[name] = path

    nan = _seq(rng)
    nan[3, 4, 0] = np.nan
    put("nan", "001", nan)
    put("shape", "001", rng.uniform(size=(12, 51)), view="090")
    put("empty", "002", np.zeros((0, 17, 3)))
    put("one_frame", "002", _seq(rng, t=1), view="090")
    put("unsafe", "003", _Evil())
    put("not_array", "003", "hello", view="090")
    no_pkl = root / "004" / "nm-02" / "018"
    no_pkl.mkdir(parents=True)
    (no_pkl / "mapping.txt").write_text("0 0\n")
    bad["no_pkl"] = no_pkl
    (root / "004" / "nm-02" / "036").mkdir()  # empty: skipped by the loader
    temp = root / "004" / "nm-01" / "000" / ".000.pkl.zz.tmp"
    temp.write_bytes(b"half")
    bad["temp"] = temp
    (root / "004" / "stray.txt").write_text("x")
    return root, bad


def test_validator_lists_every_problem_with_its_path(broken):
    root, bad = broken
    report = validate_root(root)
    errors = {i.path: i.message for i in report.errors}
    assert errors[str(bad["nan"])].startswith("non-finite value (NaN/inf) at frame 3, joint 4")
    assert "expected shape [T, V, 3]" in errors[str(bad["shape"])]
    assert errors[str(bad["empty"])].startswith("empty sequence (0 frames)")
    assert errors[str(bad["one_frame"])].startswith("one-frame sequence")
    assert "refusing to load global" in errors[str(bad["unsafe"])] and "system" in errors[str(bad["unsafe"])]
    assert "expected a numpy array" in errors[str(bad["not_array"])]
    assert "holds no .pkl file (only mapping.txt)" in errors[str(bad["no_pkl"])]
    assert len(report.errors) == 7
    warnings = {i.path: i.message for i in report.warnings}
    assert "leftover temp file" in warnings[str(bad["temp"])]
    assert "empty sequence folder" in warnings[str(root / "004" / "nm-02" / "036")]
    assert "ignored by the loader" in warnings[str(root / "004" / "stray.txt")]
    assert not report.ok and "NOT OK" in report.format()


def test_validator_agrees_with_the_loader(broken, tmp_path):
    """Each error the validator reports is one the loader raises; a clean tree loads."""
    root, bad = broken
    part = tmp_path / "p.json"
    part.write_text(json.dumps({"TRAIN_SET": ["001", "002", "003", "004"], "TEST_SET": []}))
    with pytest.raises((DatasetError, PoseFileError)):
        PoseDataset(root, part, training=True)
    file_problems = ("nan", "shape", "empty", "one_frame", "unsafe", "not_array")
    for name in file_problems:  # a copy of the tree with only this problem left
        base = tmp_path / "single"
        shutil.copytree(root, base)
        for other in file_problems:
            if other != name:
                save_pickle(base / bad[other].relative_to(root), _seq(np.random.default_rng(1)))
        shutil.rmtree(base / "004" / "nm-02" / "018")
        report = validate_root(base)
        assert [os.path.relpath(i.path, base) for i in report.errors] == [str(bad[name].relative_to(root))]
        with pytest.raises((DatasetError, PoseFileError), match=str(bad[name].relative_to(root))):
            PoseDataset(base, part, training=True)
        shutil.rmtree(base)
    clean = tmp_path / "clean"
    _tree(clean, ["001", "002"], np.random.default_rng(2))
    part2 = tmp_path / "p2.json"
    part2.write_text(json.dumps({"TRAIN_SET": ["001"], "TEST_SET": ["002"]}))
    assert validate_root(clean, part2).ok
    assert len(PoseDataset(clean, part2, training=True)) == 2


def test_partition_checks(tmp_path):
    root = tmp_path / "d"
    _tree(root, ["001", "002", "003"], np.random.default_rng(3))
    part = tmp_path / "p.json"
    part.write_text(json.dumps({"TRAIN_SET": ["001", "009"], "TEST_SET": ["001"], "PROBE_SET": ["001-nm-01-999"]}))
    report = validate_root(root, part)
    text = report.format()
    assert "1 TRAIN_SET subjects are not under" in text and "009" in text
    assert "in both TRAIN_SET and TEST_SET" in text
    assert "in neither TRAIN_SET nor TEST_SET" in text and "002, 003" in text
    assert "no PROBE_SET entry is a test sequence on disk" in text
    part.write_text("{not json")
    assert "not valid JSON" in validate_root(root, part).format()
    part.write_text(json.dumps({"TRAIN_SET": ["777"], "TEST_SET": ["001"]}))
    assert "none of the 1 TRAIN_SET subjects exist" in validate_root(root, part).format()


def test_mixed_joint_counts_and_frame_threshold(tmp_path):
    root = tmp_path / "d"
    _tree(root, ["001"], np.random.default_rng(4))
    save_pickle(root / "002" / "nm-01" / "000" / "000.pkl", _seq(np.random.default_rng(5), t=5, v=18))
    report = validate_root(root, frame_threshold=6)
    text = report.format()
    assert "mixed joint counts" in text
    assert "5 frames <= data_cfg.frame_threshold 6" in text


def test_casia_b_check_writes_the_rule_partition(tmp_path, capsys):
    root = tmp_path / "CASIA-B-pose"
    _tree(root, [f"{i:03d}" for i in range(1, 125)], np.random.default_rng(6), views=("090",))
    out = tmp_path / "CASIA-B.json"
    assert cli.main(["casia-b-check", "-i", str(root), "--partition", str(out), "-j", "2"]) == 0
    text = capsys.readouterr().out
    assert "OK: the loader will accept this dataset" in text and "0 errors" in text
    part = json.loads(out.read_text())
    assert part["TRAIN_SET"] == [f"{i:03d}" for i in range(1, 75)]
    assert part["TEST_SET"] == [f"{i:03d}" for i in range(75, 125)]
    # the same as the partition file shipped in the repository
    assert part == json.loads((REPO / "datasets" / "CASIA-B" / "CASIA-B.json").read_text())


def test_casia_b_check_fails_on_bad_data(broken, tmp_path, capsys):
    root, bad = broken
    code = cli.main(["casia-b-check", "-i", str(root), "--num-train", "2",
                     "--report", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert code == 1 and "NOT OK" in out
    assert f"ERROR {bad['nan']}: non-finite value" in out
    assert json.loads((root / "partition.json").read_text()) == {"TRAIN_SET": ["001", "002"],
                                                                "TEST_SET": ["003", "004"]}
    issues = json.loads((tmp_path / "r.json").read_text())["issues"]
    assert sum(i["level"] == "error" for i in issues) == 7


def test_validate_cli_exit_codes(tmp_path, capsys):
    root = tmp_path / "d"
    _tree(root, ["001", "002"], np.random.default_rng(7))
    assert cli.main(["validate", "-i", str(root), "--joints", "17"]) == 0
    assert cli.main(["validate", "-i", str(root), "--joints", "18"]) == 1
    assert "17 joints, expected 18" in capsys.readouterr().out
    assert cli.main(["validate", "-i", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_validator_skips_the_loaders_packed_cache(tmp_path):
    root = tmp_path / "d"
    _tree(root, ["001", "002"], np.random.default_rng(6))
    partition = tmp_path / "p.json"
    partition.write_text(json.dumps({"TRAIN_SET": ["001"], "TEST_SET": ["002"]}))
    PoseDataset(str(root), str(partition), training=True, cache=True)  # builds <root>/.fastposegait_cache/
    assert (root / ".fastposegait_cache").is_dir()
    (root / ".ipynb_checkpoints").mkdir()
    with_cache = validate_root(root).format().splitlines()
    skipped = "skipped 2 hidden folders at the root, not subjects: .fastposegait_cache (the loader's packed cache), " \
              ".ipynb_checkpoints"
    assert skipped in with_cache
    shutil.rmtree(root / ".fastposegait_cache")
    (root / ".ipynb_checkpoints").rmdir()
    without = validate_root(root).format().splitlines()
    assert [line for line in with_cache if line != skipped] == without  # the hidden folders change nothing else
    assert not any("hidden" in line for line in without)


def test_casia_b_check_does_not_take_the_loaders_cache_for_a_subject(tmp_path, capsys):
    """Training once builds <root>/.fastposegait_cache/; casia-b-check afterwards still finds the
    124 subjects 001..124 (the cache sorted first and became a training subject)."""
    root = tmp_path / "CASIA-B-pose"
    _tree(root, [f"{i:03d}" for i in range(1, 125)], np.random.default_rng(8), views=("090",))
    shipped = REPO / "datasets" / "CASIA-B" / "CASIA-B.json"
    PoseDataset(root, shipped, training=True)  # the loader's packed cache, as a training run leaves it
    assert (root / ".fastposegait_cache").is_dir()
    out = tmp_path / "CASIA-B.json"
    assert cli.main(["casia-b-check", "-i", str(root), "--partition", str(out)]) == 0
    text = capsys.readouterr().out
    part = json.loads(out.read_text())
    assert part["TRAIN_SET"] == [f"{i:03d}" for i in range(1, 75)]
    assert part["TEST_SET"] == [f"{i:03d}" for i in range(75, 125)]
    assert part == json.loads(shipped.read_text())
    assert "skipped 1 hidden folder at the root, not subjects: .fastposegait_cache" in text
    assert "OK: the loader will accept this dataset" in text and "0 errors, 0 warnings" in text


def _variant_tree(root, odd_key, odd):
    """Four subjects x two views of [12, 17, 3] pickles, except ``odd`` at ``odd_key``."""
    rng = np.random.default_rng(9)
    for s in ("001", "002", "003", "004"):
        for v in ("000", "090"):
            save_pickle(root / s / "nm-01" / v / f"{v}.pkl", odd if (s, v) == odd_key else _seq(rng))
    return root / odd_key[0] / "nm-01" / odd_key[1] / f"{odd_key[1]}.pkl"


def test_one_sequence_with_another_joint_count_is_named(tmp_path, capsys):
    root = tmp_path / "d"
    odd = _variant_tree(root, ("003", "090"), _seq(np.random.default_rng(10), v=18))
    report = validate_root(root)
    errors = {i.path: i.message for i in report.errors}
    assert errors[str(odd)].startswith("18 joints, while 7 of 8 pickles have 17")
    assert "mixed joint counts (V=17: 7, V=18: 1): 1 of 8 pickles differ" in errors[str(root)]
    assert len(report.errors) == 2 and not report.ok
    # the expected format, from the command line: coco is 17 joints, openpose / alphapose 18
    assert cli.main(["validate", "-i", str(root), "--joint-format", "coco"]) == 1
    out = capsys.readouterr().out
    assert f"ERROR {odd}: 18 joints, expected 17 (coco)" in out
    assert "1 of 8 pickles do not have 17 (coco) joints (V=17: 7, V=18: 1)" in out and "NOT OK" in out
    assert cli.main(["validate", "-i", str(root), "--joint-format", "openpose"]) == 1
    assert capsys.readouterr().out.count("joints, expected 18 (openpose)") == 7
    save_pickle(odd, _seq(np.random.default_rng(10)))
    assert cli.main(["validate", "-i", str(root), "--joint-format", "coco"]) == 0
    assert cli.main(["validate", "-i", str(root), "--joint-format", "alphapose"]) == 1


@pytest.mark.parametrize("everywhere", [False, True], ids=["one-pickle", "every-pickle"])
def test_pickles_without_the_confidence_channel_are_errors(tmp_path, capsys, everywhere):
    """[T, V, 2] passes the loader's shape check, but the models read x, y and confidence."""
    root = tmp_path / "d"
    odd = _variant_tree(root, ("002", "000"), _seq(np.random.default_rng(11))[..., :2])
    if everywhere:
        for p in root.rglob("*.pkl"):
            save_pickle(p, _seq(np.random.default_rng(12))[..., :2])
    report = validate_root(root)
    errors = {i.path: i.message for i in report.errors}
    assert errors[str(odd)].startswith("2 channels per joint; the models take 3 (x, y, confidence)")
    counts = "8 of 8 pickles do not have 3 channels (C=2: 8)" if everywhere else \
        "1 of 8 pickles do not have 3 channels (C=2: 1, C=3: 7)"
    assert errors[str(root)] == counts
    assert len(report.errors) == (9 if everywhere else 2)
    assert cli.main(["validate", "-i", str(root)]) == 1
    out = capsys.readouterr().out
    assert f"ERROR {odd}: 2 channels per joint" in out and "NOT OK" in out and "channels C=2:" in out


def test_a_subject_in_both_splits_is_a_warning(tmp_path, capsys):
    root = tmp_path / "d"
    _tree(root, ["001", "002", "003"], np.random.default_rng(13))
    part = tmp_path / "p.json"
    part.write_text(json.dumps({"TRAIN_SET": ["001", "002"], "TEST_SET": ["002", "003"]}))
    report = validate_root(root, part)
    assert [(i.path, i.message) for i in report.warnings] == [
        (str(part), "1 subjects are in both TRAIN_SET and TEST_SET (e.g. ['002']); training on test subjects "
                    "inflates results")]
    assert report.ok  # the loader takes it: a warning, not an error
    assert cli.main(["validate", "-i", str(root), "--partition", str(part)]) == 0
    assert f"WARNING {part}: 1 subjects are in both TRAIN_SET and TEST_SET" in capsys.readouterr().out


def test_any_input_error_is_one_line_not_a_traceback(tmp_path, monkeypatch, capsys):
    """Every FastPoseGaitError (not only ConversionError) ends the CLI with exit 2 and its one-line message."""
    from fastposegait.converters import casiab

    def fail(*args, **kwargs):
        raise PoseFileError(f"{tmp_path}/001/nm-01/000/000.pkl: not a pose array; re-convert it")

    monkeypatch.setattr(casiab, "check", fail)
    assert cli.main(["casia-b-check", "-i", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path}/001/nm-01/000/000.pkl: not a pose array; re-convert it\n"
