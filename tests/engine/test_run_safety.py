"""A training run owns its output folder, stops cleanly on SIGINT/SIGTERM with a checkpoint,
and an output folder it cannot write is one clear line."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from cli_helpers import DEMO_CFG, MAIN, tiny_overrides
from fastposegait.config import load_config
from fastposegait.distributed import DistEnv
from fastposegait.engine.run_lock import RunLock
from fastposegait.engine.runner import Runner
from fastposegait.errors import OutputDirError, RunInterrupted, user_message


def make_runner(tmp_path, monkeypatch, *extra):
    monkeypatch.chdir(tmp_path)
    return Runner(load_config(DEMO_CFG, tiny_overrides(tmp_path) + list(extra)), "train", DistEnv(),
                  torch.device("cpu"))


def test_a_second_training_run_on_the_same_folder_is_refused_and_writes_nothing(tmp_path, monkeypatch):
    runner = make_runner(tmp_path, monkeypatch)
    runner.output_dir.mkdir(parents=True, exist_ok=True)
    config = runner.output_dir / "config_train.yaml"
    config.write_text("the first run's config\n")
    held = RunLock(runner.output_dir).acquire()  # the first run, still training
    try:
        with pytest.raises(OutputDirError) as info:
            runner.train()
    finally:
        held.release()
    message = user_message(info.value)
    assert "another training run is writing this output folder (pid " in message
    assert "give this run another trainer_cfg.save_name" in message
    assert config.read_text() == "the first run's config\n"
    assert not runner.checkpoint_dir.exists()
    runner.train()  # once the first run is gone, the folder is free
    assert sorted(p.name for p in runner.checkpoint_dir.glob("*.pt")) == ["GaitGraph2-demo-00002.pt",
                                                                        "GaitGraph2-demo-00004.pt"]


def test_a_killed_run_leaves_no_stale_lock_even_while_its_workers_live_on(tmp_path):
    # the run forks a child, as a DataLoader worker is forked, which outlives the killed run
    code = ("import os, sys, time; from pathlib import Path; from fastposegait.engine.run_lock import RunLock;"
            "lock = RunLock(Path(sys.argv[1])).acquire(); child = os.fork();\n"
            "if child == 0: time.sleep(60); os._exit(0)\n"
            "print('locked', child, flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    child = None
    try:
        word, child = proc.stdout.readline().split()
        child = int(child)
        assert word == "locked"
        with pytest.raises(OutputDirError, match=f"pid {proc.pid} on "):
            RunLock(tmp_path).acquire()
        proc.kill()
        proc.wait()
        os.kill(child, 0)  # the child is still alive ...
        lock = RunLock(tmp_path).acquire()  # ... and the dead run's lock is gone all the same
        assert lock.held
        with pytest.raises(OutputDirError, match="this process"):  # a second runner of this process
            RunLock(tmp_path).acquire()
        lock.release()
        RunLock(tmp_path).acquire().release()
    finally:
        proc.kill()
        if child:
            os.kill(child, signal.SIGKILL)


def test_sigint_finishes_the_step_saves_a_checkpoint_and_says_how_to_resume(tmp_path, monkeypatch):
    runner = make_runner(tmp_path, monkeypatch, "trainer_cfg.total_iter=10", "trainer_cfg.save_iter=100",
                         "scheduler_cfg.total_steps=10")
    forward = runner.model.forward
    steps = []

    def interrupting(inputs):
        steps.append(1)
        if len(steps) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # arrives during the third step
        return forward(inputs)

    monkeypatch.setattr(runner.model, "forward", interrupting)
    previous = signal.getsignal(signal.SIGINT)
    with pytest.raises(RunInterrupted) as info:
        runner.train()
    assert signal.getsignal(signal.SIGINT) is previous  # handlers restored
    assert len(steps) == 3  # the step in progress finished, no further step started
    saved = sorted(p.name for p in runner.checkpoint_dir.glob("*.pt"))
    assert saved == ["GaitGraph2-demo-00003.pt"]
    assert torch.load(runner.checkpoint_dir / saved[0], weights_only=True)["iteration"] == 3
    message = user_message(info.value)
    assert message.startswith("training stopped by SIGINT at iteration 3; checkpoint ")
    assert message.endswith("Resume with the same command plus --iter 3")
    assert info.value.exit_code == 130
    assert not runner._lock.held  # the lock is released


def test_an_output_folder_that_cannot_be_created_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "output").write_text("a file where the output folder should be")
    with pytest.raises(OutputDirError) as info:
        make_runner(tmp_path, monkeypatch)
    message = user_message(info.value)
    assert message.startswith("output/Synthetic-CASIA-B/GaitGraph2/GaitGraph2-demo: cannot create the run's "
                              "output folder") and "\n" not in message


@pytest.mark.slow
def test_sigterm_through_the_cli_checkpoints_exits_143_and_the_run_resumes(tmp_path):
    over = tiny_overrides(tmp_path) + ["trainer_cfg.total_iter=400", "scheduler_cfg.total_steps=400",
                                      "trainer_cfg.save_iter=1000", "trainer_cfg.log_iter=1",
                                      "data_cfg.num_workers=1"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, str(MAIN), "--cfgs", str(DEMO_CFG), "--phase", "train", *over],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    lines = []
    while time.time() < deadline:  # wait until training steps are being logged
        line = proc.stderr.readline()
        lines.append(line)
        if "Iteration 00002" in line or not line:
            break
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=240)
    stderr = "".join(lines) + rest
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr and "exited unexpectedly" not in stderr
    done = sorted((tmp_path / "output").rglob("*.pt"))
    assert len(done) == 1
    stopped_at = int(done[0].stem.split("-")[-1])
    assert f"training stopped by SIGTERM at iteration {stopped_at};" in stderr
    assert f"--iter {stopped_at}" in stderr
    resumed = subprocess.run([sys.executable, str(MAIN), "--cfgs", str(DEMO_CFG), "--phase", "train",
                              "--iter", str(stopped_at), *over[:-4], "trainer_cfg.total_iter=" + str(stopped_at + 2),
                              "scheduler_cfg.total_steps=400", "trainer_cfg.save_iter=1000", "data_cfg.num_workers=1"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    assert (done[0].parent / f"GaitGraph2-demo-{stopped_at + 2:05d}.pt").exists()


def _children(pid):
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return found + [g for c in found for g in _children(c)]


def _rank_of(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
    except OSError:
        return None
    return int(env[b"RANK"]) if b"RANK" in env else None


@pytest.mark.slow
def test_a_frozen_rank_is_reported_and_ends_the_run_after_collective_timeout(tmp_path):
    from cli_helpers import free_port

    over = tiny_overrides(tmp_path) + ["trainer_cfg.total_iter=400", "scheduler_cfg.total_steps=400",
                                      "trainer_cfg.save_iter=1000", "trainer_cfg.log_iter=1",
                                      "trainer_cfg.collective_timeout=20"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
           str(MAIN), "--cfgs", str(DEMO_CFG), "--phase", "train", *over]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines, frozen = [], None
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            if "Iteration 00002" in line or not line:
                break
        frozen = next(p for p in _children(proc.pid) if _rank_of(p) == 1)
        os.kill(frozen, signal.SIGSTOP)  # rank 1 freezes; rank 0 waits for it in a collective
        stopped_at = time.time()
        _, rest = proc.communicate(timeout=240)
        waited = time.time() - stopped_at
    finally:
        if frozen is not None:
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.kill(frozen, sig)
                except ProcessLookupError:
                    pass
        proc.kill()
    stderr = "".join(lines) + rest
    assert proc.returncode != 0
    assert "collective_timeout=20s" in stderr
    assert "rank 0: no progress for" in stderr and "while waiting for iteration" in stderr
    assert "error: rank 0: the other ranks did not answer while this one waited for iteration" in stderr
    assert waited < 20 + 90, waited  # ended by the timeout, not by the test's own limit


def test_a_program_that_ends_while_a_loader_iterates_exits_instead_of_waiting_for_its_workers(tmp_path):
    """Workers ignore SIGTERM (a preemption signal is the main process's to handle), and the
    interpreter's exit stops daemonic children with SIGTERM and then joins them: without the
    loader's own exit handler, a program ending on an error while a loader iterates (its
    iterator still referenced) waited for its workers forever."""
    code = (
        "import sys\n"
        "from fastposegait.config import load_config\n"
        "from fastposegait.data.autogen import ensure_dataset\n"
        "from fastposegait.data.dataset import dataset_from_cfg\n"
        "from fastposegait.data.loader import build_loader\n"
        "cfg = load_config(sys.argv[1], sys.argv[2:])\n"
        "ensure_dataset(cfg['data_cfg'])\n"
        "ds = dataset_from_cfg(cfg['data_cfg'], training=True)\n"
        "t = cfg['trainer_cfg']\n"
        "loader = build_loader(ds, t['sampler'], t['transform'], training=True, seed=0, num_workers=1)\n"
        "KEEP = iter(loader)\n"
        "next(KEEP)\n"
        "print('iterating', flush=True)\n"
        "raise SystemExit(1)  # ends while KEEP still holds its worker\n"
    )
    over = tiny_overrides(tmp_path)
    proc = subprocess.run([sys.executable, "-c", code, str(DEMO_CFG), *over], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.stdout.strip() == "iterating" and proc.returncode == 1, proc.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["train", "test"])
def test_an_error_inside_a_loader_worker_ends_the_run_instead_of_hanging(tmp_path, monkeypatch, phase):
    import json

    import numpy as np

    from fastposegait.data.autogen import ensure_dataset
    from fastposegait.data.io import load_pose, save_pickle

    monkeypatch.chdir(tmp_path)
    over = tiny_overrides(tmp_path) + ["data_cfg.cache=false", "data_cfg.num_workers=1",
                                      "trainer_cfg.total_iter=40", "scheduler_cfg.total_steps=40",
                                      "trainer_cfg.save_iter=40"]
    ensure_dataset(load_config(DEMO_CFG, over)["data_cfg"])
    split = "TRAIN_SET" if phase == "train" else "TEST_SET"
    subject = json.loads((tmp_path / "partition.json").read_text())[split][-1]
    bad = sorted((tmp_path / "data" / subject).rglob("*.pkl"))[-1]  # not among those read at start
    seq = np.array(load_pose(bad))
    seq[3, 2, 0] = np.inf
    save_pickle(bad, seq)
    args = ["--cfgs", str(DEMO_CFG), "--phase", phase, *over] + (["--iter", "0"] if phase == "test" else [])
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(MAIN), *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=180)  # hung forever before: the workers ignored SIGTERM at exit
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and f"{bad}: non-finite value (NaN/inf) at frame 3, joint 2" in errors[0]


def test_a_new_run_never_overwrites_an_earlier_runs_checkpoints(tmp_path, monkeypatch, caplog):
    import logging

    first = make_runner(tmp_path, monkeypatch)
    first.train()
    done = sorted(first.checkpoint_dir.glob("*.pt"))
    before = {p.name: p.read_bytes() for p in done}
    again = make_runner(tmp_path, monkeypatch, "optimizer_cfg.lr=0.001")  # the same command, forgotten --iter
    with pytest.raises(OutputDirError) as info:
        again.train()
    message = user_message(info.value)
    assert message.endswith("holds 2 checkpoint(s) of an earlier run (the latest at iteration 4), which a new run "
                            "would overwrite. Resume it with --iter 4, or give this run another "
                            "trainer_cfg.save_name, or delete those files")
    assert {p.name: p.read_bytes() for p in first.checkpoint_dir.glob("*.pt")} == before
    # resuming from an earlier iteration is allowed, and says which files it will replace
    resumed = make_runner(tmp_path, monkeypatch, "trainer_cfg.restore_hint=2")
    logging.getLogger("fastposegait").propagate = True
    with caplog.at_level(logging.WARNING, logger="fastposegait"):
        resumed.train()
    assert "the checkpoints of iterations 4 in" in caplog.text


def test_overrides_may_sit_between_the_options(tmp_path, monkeypatch, capsys):
    from fastposegait.main import main

    monkeypatch.chdir(tmp_path)
    status = main(["--cfgs", "x.yaml", "trainer_cfg.total_iter=3", "--iter", "4", "data_cfg.num_workers=0",
                   "--device", "cpu"])
    err = capsys.readouterr().err
    assert status == 2 and "unrecognized arguments" not in err  # argparse used to refuse this order
    assert "config file 'x.yaml' does not exist" in err  # it got as far as reading the config


def test_a_file_where_the_summary_folder_goes_is_one_line(tmp_path, monkeypatch):
    runner = make_runner(tmp_path, monkeypatch)
    runner.output_dir.mkdir(parents=True, exist_ok=True)
    (runner.output_dir / "summary").write_text("in the way")
    with pytest.raises(OutputDirError, match="summary: cannot write TensorBoard summaries there"):
        runner.train()
