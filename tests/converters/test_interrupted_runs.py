"""A conversion killed or interrupted midway: its workers die with it, nothing is written after
it, and re-running the same command resumes to exactly what an uninterrupted run writes."""
import glob
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Optional, Set, Tuple

import numpy as np
import pytest
from raw_trees import REPO, load_tree, pose_line

from fastposegait.converters import cli

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads processes from /proc (Linux)")

SUBJECTS, SEQUENCES, FRAMES = 40, 10, 20   # 400 sequences, 8000 frame files: about a second with 2 workers


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """A raw GREW train split and the array each sequence must convert to."""
    root = tmp_path_factory.mktemp("interrupted") / "GREW" / "train"
    rng = np.random.default_rng(11)
    poses = rng.uniform(0, 300, size=(97, 17, 3)).astype(np.float32)
    poses[..., 2] = rng.uniform(0.1, 1.0, size=(97, 17))
    lines = [pose_line(p) for p in poses]
    truth = {}
    for s in range(1, SUBJECTS + 1):
        for q in range(SEQUENCES):
            seq = f"{s:05d}{q:03d}"
            folder = root / f"{s:05d}" / seq
            folder.mkdir(parents=True)
            frames = [(s * 31 + q * 7 + i) % len(poses) for i in range(FRAMES)]
            for i, j in enumerate(frames):
                (folder / f"{i + 1:05d}_2d_pose.txt").write_text(lines[j])
            truth[(f"{s:05d}train", "00", seq)] = poses[frames].astype(np.float64)
    return root, truth


# ----------------------------------------------------------------------------------------------
# Processes, from /proc
# ----------------------------------------------------------------------------------------------
def _stat(pid: int) -> Optional[Tuple[str, int, int]]:
    """``(state, parent pid, start time)`` of a process, or None when it no longer exists."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1]), int(fields[19])


def _children(pid: int) -> Set[int]:
    """The processes whose parent is ``pid`` (``/proc/<pid>/task/*/children`` where the kernel
    has it, else every ``/proc/<n>/stat``)."""
    found: Set[int] = set()
    for path in glob.glob(f"/proc/{pid}/task/*/children"):
        with open(path) as f:
            found.update(int(n) for n in f.read().split())
    if not found:
        for name in os.listdir("/proc"):
            if name.isdigit():
                stat = _stat(int(name))
                if stat is not None and stat[1] == pid:
                    found.add(int(name))
    return found


def _alive(pid: int, started: int) -> bool:
    """Whether the process ``pid`` that started at ``started`` still runs (a zombie does not)."""
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z" and stat[2] == started


def _survivors(workers: Dict[int, int], seconds: float) -> Set[int]:
    """The ``workers`` (pid -> start time) still running after waiting up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        alive = {pid for pid, started in workers.items() if _alive(pid, started)}
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def _snapshot(root: Path) -> Dict[str, int]:
    """Every file under ``root`` (temp files included) and its size."""
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def _pickles(out: Path) -> int:
    return len(list(out.glob("*/00/*/*.pkl")))


def _start_converting(raw_root: Path, out: Path, new_session: bool = False):
    """Start ``grew --workers 2`` and return it with its workers (pid -> start time) once both
    run and the first pickles are written."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "fastposegait.converters", "grew", "-i", str(raw_root), "-o", str(out),
           "--workers", "2", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=new_session)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"finished before it could be interrupted (exit {proc.returncode}): "
                                 f"{proc.communicate()}")
        workers = _children(proc.pid)
        if len(workers) >= 2 and next(out.glob("*/00/*/*.pkl"), None) is not None:
            started = {pid: _stat(pid) for pid in workers}
            return proc, {pid: s[2] for pid, s in started.items() if s is not None}
        time.sleep(0.005)
    proc.kill()
    raise AssertionError("the conversion wrote nothing within 60 s")


def _kill_all(proc: subprocess.Popen, workers: Dict[int, int]) -> Tuple[str, str]:
    """Clean-up whatever the test's outcome: no process of it is left running (workers first:
    a worker left behind holds the output pipes open). Returns what the conversion printed."""
    for pid, started in workers.items():
        if _alive(pid, started):
            os.kill(pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.kill()
    return proc.communicate(timeout=30)


# ----------------------------------------------------------------------------------------------
def test_sigkill_leaves_no_worker_behind_and_a_rerun_resumes_exactly(raw, tmp_path, capsys):
    raw_root, truth = raw
    out = tmp_path / "GREW-pose"
    proc, workers = _start_converting(raw_root, out)
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert len(workers) >= 2
        assert not _survivors(workers, 5.0), "workers outlived the killed conversion"
        before = _snapshot(out)
        time.sleep(0.5)
        assert _snapshot(out) == before, "files were written after the conversion was killed"
        assert _pickles(out) < len(truth)  # it was killed midway
    finally:
        _kill_all(proc, workers)
    # the same command again: resumes, and ends with what an uninterrupted run writes
    done = _pickles(out)
    assert cli.main(["grew", "-i", str(raw_root), "-o", str(out), "--workers", "2", "--no-progress"]) == 0
    summary = capsys.readouterr().out
    assert f"{done} already converted (skipped)" in summary
    converted = load_tree(out)
    assert set(converted) == set(truth)
    for key, arr in converted.items():
        assert arr.dtype == np.float64
        np.testing.assert_array_equal(arr, truth[key])
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.parametrize("signum, group", [(signal.SIGTERM, False), (signal.SIGINT, True)],
                         ids=["SIGTERM-to-the-main-process", "Ctrl-C-to-the-process-group"])
def test_sigterm_and_ctrl_c_stop_the_workers_with_one_line(raw, tmp_path, signum, group):
    raw_root, truth = raw
    out = tmp_path / "GREW-pose"
    proc, workers = _start_converting(raw_root, out, new_session=group)
    try:
        if group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        proc.wait(timeout=30)
        survivors = _survivors(workers, 5.0)
    finally:
        stdout, stderr = _kill_all(proc, workers)
    assert not survivors, "workers outlived the interrupted conversion"
    assert proc.returncode == 128 + signum, f"died of the signal instead of stopping ({proc.returncode})"
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert f"interrupted by {signal.Signals(signum).name}" in lines[0]
    assert "re-run the same command to resume" in lines[0]
    assert 0 < _pickles(out) < len(truth)
