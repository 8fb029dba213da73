"""What a tester attacking the converters found, one test each: a deeply nested JSON file
(RecursionError traceback), an output inside its input (converted files mixed into the raw
tree), a directory given as --partition (refused only after converting, naming a temp file),
a conversion that wrote nothing exiting 0, a hand-written partition silently replaced, FIFOs
and folders named like raw files (``open`` on a FIFO blocks forever)."""
import json
import os
import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pytest
from raw_trees import numbers, openpose_frame, pose_line, write_text

from fastposegait.converters import cli
from fastposegait.converters.parsing import read_json, read_text
from fastposegait.converters.validate import validate_root
from fastposegait.data.io import load_pose, save_pickle
from fastposegait.errors import RawFileError

KINDS = ("oumvlp", "oumvlp17", "grew", "gait3d", "custom")
WITH_PARTITION = ("oumvlp", "grew", "gait3d", "custom")
NESTED = "[" * 100000 + "]" * 100000


def _keypoints(rng: np.random.Generator, joints: int) -> np.ndarray:
    kp = rng.uniform(10.0, 300.0, size=(joints, 3))
    kp[:, 2] = rng.uniform(0.2, 1.0, size=joints)
    return kp


def _raw(kind: str, base: Path, broken: bool = False, frames: int = 3) -> Tuple[Path, List[str], Path]:
    """A tiny raw tree of ``kind`` with two subjects (every file malformed when ``broken``):
    ``(input folder, extra command-line arguments, one sequence folder)``."""
    rng = np.random.default_rng(0)
    root = base / f"raw-{kind}"
    extra: List[str] = []
    bad = "garbage\n"
    if kind == "oumvlp":
        for s in ("00001", "00002"):
            for i in range(frames):
                text = bad if broken else openpose_frame([_keypoints(rng, 18)])
                write_text(root / s / "000_00" / f"{i + 1:04d}_keypoints.json", text)
        seq = root / "00001" / "000_00"
    elif kind == "oumvlp17":
        for s in ("00001", "00002"):
            path = root / s / "00" / "000" / "000.pkl"
            if broken:
                write_text(path, bad)
            else:
                save_pickle(path, np.stack([_keypoints(rng, 18) for _ in range(frames)]).astype(np.float32))
        seq = root / "00001" / "00" / "000"
    elif kind == "grew":
        for s in ("00001", "00002"):
            for i in range(frames):
                text = bad if broken else pose_line(_keypoints(rng, 17))
                write_text(root / "train" / s / f"seq{s}" / f"{i + 1:05d}_2d_pose.txt", text)
        seq = root / "train" / "00001" / "seq00001"
    elif kind == "gait3d":
        for s in ("0001", "0002"):
            for i in range(frames):
                text = bad if broken else pose_line(_keypoints(rng, 17))
                write_text(root / s / "camid0_videoid1" / "seq0" / f"human_crop_f{i + 1}.txt", text)
        split = base / "Gait3D.json"
        split.write_text(json.dumps({"TRAIN_SET": ["0001"], "TEST_SET": ["0002"],
                                     "PROBE_SET": ["0002-camid0_videoid1-seq0"]}))
        extra = ["--split-file", str(split)]
        seq = root / "0001" / "camid0_videoid1" / "seq0"
    elif kind == "custom":
        for s in ("s1", "s2"):
            anns = [{"image_id": i, "keypoints": numbers(_keypoints(rng, 17))} for i in range(frames)]
            write_text(root / s / "walk.json", bad if broken else json.dumps(anns))
        seq = root / "s1"
    elif kind == "custom-frame":
        for s in ("s1", "s2"):
            for i in range(frames):
                text = bad if broken else json.dumps([{"keypoints": numbers(_keypoints(rng, 17))}])
                write_text(root / s / "walk" / f"{i + 1:04d}.json", text)
        extra = ["--layout", "frame"]
        seq = root / "s1" / "walk"
    else:
        raise ValueError(kind)
    return root, extra, seq


def _convert(kind: str, inp: Path, out: Path, *args: str) -> int:
    command = "custom" if kind.startswith("custom") else kind
    return cli.main([command, "-i", str(inp), "-o", str(out), "--no-progress", *map(str, args)])


def _listing(root: Path) -> Dict[str, int]:
    """Every file under ``root`` with its size."""
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*")) if p.is_file()}


def _pickles(root: Path) -> List[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.pkl")) if root.is_dir() else []


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


class Blocked(BaseException):
    """Not an OSError (a reader would take it for an unreadable file and go on)."""


@contextmanager
def _deadline(seconds: float):
    """Fail instead of hanging: SIGALRM raises :class:`Blocked` in the main thread."""
    def expired(signum, frame):
        raise Blocked(f"still running after {seconds} s (blocked on a FIFO?)")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ----------------------------------------------------------------------------------------------
# 1. Deeply nested JSON
# ----------------------------------------------------------------------------------------------
def test_read_json_turns_recursion_and_memory_errors_into_a_raw_file_error(tmp_path, monkeypatch):
    path = tmp_path / "0012_keypoints.json"
    path.write_text(NESTED)
    with pytest.raises(RawFileError, match=r"0012_keypoints\.json: .*nested too deeply"):
        read_json(path)
    import fastposegait.converters.parsing as parsing

    def no_memory(text):
        raise MemoryError

    monkeypatch.setattr(parsing.json, "loads", no_memory)
    path.write_text("[1]")
    with pytest.raises(RawFileError, match=r"0012_keypoints\.json: .*too large"):
        read_json(path)


def test_deeply_nested_frame_file_through_the_workers_is_a_malformed_file(tmp_path, capsys):
    inp, _, seq = _raw("oumvlp", tmp_path)
    bad = seq / "0012_keypoints.json"
    bad.write_text(NESTED)
    out = tmp_path / "out"
    assert _convert("oumvlp", inp, out, "--workers", "2") == 0
    captured = capsys.readouterr()
    assert "2 written" in captured.out and f"{bad}: " in captured.out and "Traceback" not in captured.err
    assert load_pose(out / "00001" / "00" / "000" / "000.pkl").shape == (3, 18, 3)  # the good frames
    assert _convert("oumvlp", inp, tmp_path / "stop", "--workers", "2", "--on-error", "stop") == 1
    assert f"error: {bad}: " in capsys.readouterr().err


def test_deeply_nested_split_mapping_and_partition_files_are_one_line(tmp_path, capsys):
    inp, extra, _ = _raw("gait3d", tmp_path)
    split = tmp_path / "nested.json"
    split.write_text(NESTED)
    assert _convert("gait3d", inp, tmp_path / "o", "--split-file", split) == 2
    assert str(split) in _one_error_line(capsys.readouterr().err)
    inp, _, _ = _raw("custom", tmp_path)
    assert _convert("custom", inp, tmp_path / "o2", "--mapping", split) == 2
    assert str(split) in _one_error_line(capsys.readouterr().err)
    root = tmp_path / "d"
    save_pickle(root / "001" / "nm-01" / "000" / "000.pkl", np.ones((4, 17, 3)))
    report = validate_root(root, split)
    assert [i.path for i in report.errors] == [str(split)] and "nested too deeply" in report.errors[0].message


# ----------------------------------------------------------------------------------------------
# 2. Output and input must not overlap
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("where", ["same", "inside", "around"])
def test_output_equal_to_inside_or_around_the_input_is_refused(kind, where, tmp_path, capsys):
    inp, extra, _ = _raw(kind, tmp_path)
    out = {"same": inp, "inside": inp / "converted", "around": tmp_path}[where]
    before = _listing(tmp_path)
    assert _convert(kind, inp, out, *extra) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(inp) in line and "--output" in line
    assert _listing(tmp_path) == before  # nothing written anywhere
    assert not (inp / "converted").exists()


# ----------------------------------------------------------------------------------------------
# 3. --partition / --report checked before converting
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind, option", [(k, "--partition") for k in WITH_PARTITION] + [(k, "--report") for k in KINDS])
@pytest.mark.parametrize("target", ["a folder", "inside the input", "below a file"])
def test_unusable_partition_or_report_path_is_refused_before_converting(kind, option, target, tmp_path, capsys):
    inp, extra, _ = _raw(kind, tmp_path)
    folder = tmp_path / "somewhere"
    folder.mkdir()
    (tmp_path / "a-file").write_text("x")
    path = {"a folder": folder, "inside the input": inp / "p.json",
            "below a file": tmp_path / "a-file" / "p.json"}[target]
    out = tmp_path / "out"
    assert _convert(kind, inp, out, *extra, option, path) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(path if target != "below a file" else tmp_path / "a-file") in line and option in line
    assert ".tmp" not in line
    assert not out.exists()  # refused before converting anything
    assert not (inp / "p.json").exists()


def test_partition_and_report_cannot_be_one_file_or_an_input_file(tmp_path, capsys):
    inp, extra, _ = _raw("gait3d", tmp_path)
    same = tmp_path / "same.json"
    assert _convert("gait3d", inp, tmp_path / "out", *extra, "--partition", same, "--report", same) == 2
    assert "same file" in _one_error_line(capsys.readouterr().err)
    assert _convert("gait3d", inp, tmp_path / "out", *extra, "--report", extra[1]) == 2
    assert "--split-file" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------------
# 4. A conversion that writes nothing fails
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_nothing_written_is_an_error_with_the_counts(kind, tmp_path, capsys):
    inp, extra, _ = _raw(kind, tmp_path, broken=True)
    out = tmp_path / "out"
    report = tmp_path / "r.json"
    assert _convert(kind, inp, out, *extra, "--report", report) == 1
    captured = capsys.readouterr()
    line = _one_error_line(captured.err)
    assert line.startswith("error: nothing was written: 0 of 2 sequences written, 2 without any usable frame")
    assert "malformed" in line or "unreadable" in line  # why, from the summary's drop counts
    assert "0 written" in captured.out  # the summary (with the malformed files) is printed first
    assert json.loads(report.read_text())["written"] == 0
    assert not (out / "partition.json").exists() and _pickles(out) == []


_SECOND_SUBJECT = {"oumvlp": "00002", "oumvlp17": "00002", "grew": "00002", "gait3d": "0002", "custom": "s2"}


@pytest.mark.parametrize("kind", KINDS)
def test_one_sequence_written_or_everything_already_converted_exits_0(kind, tmp_path, capsys):
    inp, extra, _ = _raw(kind, tmp_path)
    for path in [p for p in inp.rglob("*") if p.is_file() and _SECOND_SUBJECT[kind] in p.parts]:
        path.write_text("garbage\n")  # the second subject has no usable frame
    if kind == "custom":  # a random split needs two converted subjects: give the split
        split = tmp_path / "split.json"
        split.write_text(json.dumps({"TRAIN_SET": ["s1"], "TEST_SET": ["s2"]}))
        extra = ["--split-file", str(split)]
    out = tmp_path / "out"
    assert _convert(kind, inp, out, *extra) == 0
    assert "1 written" in capsys.readouterr().out
    assert _convert(kind, inp, out, *extra) == 0  # resumed: the written one is already converted
    assert "0 written, 1 already converted (skipped), 1 without any usable frame" in capsys.readouterr().out


def test_oumvlp17_with_every_pickle_unreadable_fails_but_one_written_is_fine(tmp_path, capsys):
    inp, _, _ = _raw("oumvlp17", tmp_path)
    (inp / "00002" / "00" / "000" / "000.pkl").write_text("garbage")
    assert _convert("oumvlp17", inp, tmp_path / "o") == 0
    assert "1 written" in capsys.readouterr().out
    assert _convert("oumvlp17", inp, tmp_path / "o") == 0  # resumed: 1 already converted
    (inp / "00001" / "00" / "000" / "000.pkl").write_text("garbage")
    assert _convert("oumvlp17", inp, tmp_path / "o2") == 1
    assert "nothing was written" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# 5. An existing partition with other content is not replaced without --overwrite
# ----------------------------------------------------------------------------------------------
HAND_WRITTEN = '{"TRAIN_SET": ["mine"], "TEST_SET": ["hand-written"]}\n'


@pytest.mark.parametrize("command", ["oumvlp-partition", "grew-partition"])
def test_partition_commands_keep_a_different_existing_partition(command, tmp_path, capsys):
    path = tmp_path / "existing.json"
    path.write_text(HAND_WRITTEN)
    assert cli.main([command, "--output", str(path)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(path) in line and "--overwrite" in line
    assert path.read_text() == HAND_WRITTEN
    assert cli.main([command, "--output", str(path), "--overwrite"]) == 0
    written = path.read_text()
    assert written != HAND_WRITTEN and json.loads(written)["TRAIN_SET"]
    assert cli.main([command, "--output", str(path)]) == 0  # the same content: fine
    assert path.read_text() == written


def test_casia_b_check_keeps_a_different_existing_partition(tmp_path, capsys):
    root = tmp_path / "CASIA-B-pose"
    for s in ("001", "002", "003"):
        save_pickle(root / s / "nm-01" / "000" / "000.pkl", np.ones((4, 17, 3)))
    path = tmp_path / "CASIA-B.json"
    path.write_text(HAND_WRITTEN)
    args = ["casia-b-check", "-i", str(root), "--num-train", "2", "--partition", str(path)]
    assert cli.main(args) == 2
    assert str(path) in _one_error_line(capsys.readouterr().err)
    assert path.read_text() == HAND_WRITTEN
    assert cli.main(args + ["--overwrite"]) == 0
    assert json.loads(path.read_text()) == {"TRAIN_SET": ["001", "002"], "TEST_SET": ["003"]}
    assert cli.main(args) == 0


@pytest.mark.parametrize("kind", WITH_PARTITION)
def test_a_conversion_keeps_a_different_existing_partition(kind, tmp_path, capsys):
    inp, extra, _ = _raw(kind, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "partition.json").write_text(HAND_WRITTEN)
    code = _convert(kind, inp, out, *extra)
    captured = capsys.readouterr()
    assert code == 2
    line = _one_error_line(captured.err)
    assert str(out / "partition.json") in line and "--overwrite" in line
    assert (out / "partition.json").read_text() == HAND_WRITTEN
    if kind == "gait3d":  # the split is known before converting: refused up front
        assert _pickles(out) == []
    else:  # the sequences are converted; a re-run with --partition elsewhere only writes it
        assert len(_pickles(out)) == 2 and "2 written" in captured.out
        assert _convert(kind, inp, out, *extra, "--partition", tmp_path / "p.json") == 0
        assert "2 already converted" in capsys.readouterr().out and (tmp_path / "p.json").is_file()
    assert _convert(kind, inp, out, *extra, "--overwrite") == 0
    assert (out / "partition.json").read_text() != HAND_WRITTEN
    assert _convert(kind, inp, out, *extra) == 0  # the partition it wrote itself: the same again


def test_the_partition_a_conversion_wrote_grows_but_an_edited_one_is_kept(tmp_path, capsys):
    """Converting more of a dataset into the same output (GREW's splits one after the other)
    replaces the partition the earlier conversion wrote; once edited by hand it is kept."""
    inp, _, _ = _raw("oumvlp", tmp_path)
    later = tmp_path / "later"
    (inp / "00002").rename(later)
    out = tmp_path / "out"
    assert _convert("oumvlp", inp, out) == 0
    assert json.loads((out / "partition.json").read_text()) == {"TRAIN_SET": ["00001"], "TEST_SET": []}
    later.rename(inp / "00002")
    assert _convert("oumvlp", inp, out) == 0  # one more subject: the partition grows
    grown = {"TRAIN_SET": ["00001"], "TEST_SET": ["00002"]}
    assert json.loads((out / "partition.json").read_text()) == grown
    edited = json.dumps({"TRAIN_SET": ["00001", "00002"], "TEST_SET": []})
    (out / "partition.json").write_text(edited)
    capsys.readouterr()
    assert _convert("oumvlp", inp, out) == 2
    assert "already exists" in _one_error_line(capsys.readouterr().err)
    assert (out / "partition.json").read_text() == edited


# ----------------------------------------------------------------------------------------------
# 7. FIFOs and folders named like raw files
# ----------------------------------------------------------------------------------------------
_RAW_NAMES = {"oumvlp": ("0009_keypoints.json", "0010_keypoints.json"), "oumvlp17": ("009.pkl", "010.pkl"),
              "grew": ("00009_2d_pose.txt", "00010_2d_pose.txt"),
              "gait3d": ("human_crop_f9.txt", "human_crop_f10.txt"), "custom": ("fifo.json", "folder.json"),
              "custom-frame": ("0009.json", "0010.json")}


@pytest.mark.parametrize("kind", KINDS + ("custom-frame",))
def test_fifos_and_folders_named_like_raw_files_never_block(kind, tmp_path, capsys):
    inp, extra, seq = _raw(kind, tmp_path)
    fifo, folder = _RAW_NAMES[kind]
    os.mkfifo(seq / fifo)
    (seq / folder).mkdir()
    out = tmp_path / "out"
    with _deadline(10):
        assert _convert(kind, inp, out, *extra) == 0
    assert "2 written" in capsys.readouterr().out
    for pkl in _pickles(out):
        assert load_pose(out / pkl).shape[0] == 3  # every real frame, nothing from the odd entries


def test_readers_refuse_what_is_not_a_regular_file(tmp_path):
    fifo = tmp_path / "f.json"
    os.mkfifo(fifo)
    (tmp_path / "d.json").mkdir()
    with _deadline(10):
        for path in (fifo, tmp_path / "d.json"):
            with pytest.raises(RawFileError, match="not a regular file"):
                read_text(path)


def test_validate_reports_fifos_and_folders_named_like_pickles(tmp_path):
    root = tmp_path / "d"
    view = root / "001" / "nm-01" / "000"
    save_pickle(view / "000.pkl", np.ones((4, 17, 3)))
    save_pickle(root / "002" / "nm-01" / "000" / "000.pkl", np.ones((4, 17, 3)))
    os.mkfifo(view / "fifo.pkl")
    (view / "folder.pkl").mkdir()
    with _deadline(10):
        report = validate_root(root)
        errors = {i.path: i.message for i in report.errors}
        assert set(errors) == {str(view / "fifo.pkl"), str(view / "folder.pkl")}
        assert all("not a regular file" in m for m in errors.values())
        assert validate_root(root, workers=2).format() == report.format()
