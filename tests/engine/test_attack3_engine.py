"""Training and checkpoint failures of the third attack round, each one clear line: a full disk
while a checkpoint or the test results are written, an unwritable logs folder, a loss that
stops being finite, checkpoints with broken RNG or counter entries, a changed schedule on
resume, and a test batch size far beyond the test set."""
import errno
import logging

import pytest
import torch

import fastposegait.engine.checkpoint as ckpt_mod
from cli_helpers import DEMO_CFG, tiny_overrides
from fastposegait.config import load_config
from fastposegait.distributed import DistEnv
from fastposegait.engine.checkpoint import save_checkpoint
from fastposegait.engine.runner import Runner
from fastposegait.errors import CheckpointError, OutputDirError, user_message

#: what torch's zip writer raises when the disk fills up during torch.save
SHORT_WRITE = "[enforce fail at inline_container.cc:672] . unexpected pos 347712 vs 347604"


def make_runner(tmp_path, monkeypatch, *extra, phase="train", log_to_file=False):
    monkeypatch.chdir(tmp_path)
    return Runner(load_config(DEMO_CFG, tiny_overrides(tmp_path) + list(extra)), phase, DistEnv(),
                  torch.device("cpu"), log_to_file=log_to_file)


def test_a_full_disk_inside_torch_save_is_one_checkpoint_error_and_keeps_the_earlier_one(tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    first = folder / "run-00002.pt"
    save_checkpoint(first, {"model": {"w": torch.ones(3)}, "iteration": 2})
    real_save = torch.save

    def full_disk(obj, f):
        real_save(obj, f)
        raise RuntimeError(SHORT_WRITE)

    monkeypatch.setattr(ckpt_mod.torch, "save", full_disk)
    second = folder / "run-00004.pt"
    with pytest.raises(CheckpointError) as info:
        save_checkpoint(second, {"model": {"w": torch.zeros(3)}, "iteration": 4})
    message = user_message(info.value)
    assert message.startswith(f"{second}: cannot write the checkpoint (the write stopped short: the disk or "
                              "quota is probably full); the earlier checkpoints are intact (latest: run-00002.pt)")
    assert "\n" not in message
    assert sorted(p.name for p in folder.iterdir()) == ["run-00002.pt"]  # no temp file
    assert torch.equal(torch.load(first, weights_only=True)["model"]["w"], torch.ones(3))


def test_another_runtime_error_of_torch_save_is_a_bug_and_keeps_its_traceback(tmp_path, monkeypatch):
    def broken(obj, f):
        raise RuntimeError("something else")

    monkeypatch.setattr(ckpt_mod.torch, "save", broken)
    with pytest.raises(RuntimeError, match="something else"):
        save_checkpoint(tmp_path / "run-00002.pt", {"model": {}})
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_for_the_test_results_is_one_line_naming_the_file(tmp_path, monkeypatch):
    import fastposegait.engine.runner as runner_mod

    run = make_runner(tmp_path, monkeypatch, phase="test")

    def full_disk(path, write, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(runner_mod, "atomic_write", full_disk)
    with pytest.raises(OutputDirError) as info:
        run._write_results("00004", 40, {"scalar/test_accuracy/NM": 0.5})
    out = run.checkpoint_dir / "GaitGraph2-demo-00004-test.json"
    assert user_message(info.value) == (
        f"{out}: cannot write the test results (No space left on device); they were logged above. Free space "
        f"or make {run.checkpoint_dir} writable, then test again")


def test_log_to_file_with_a_read_only_logs_folder_is_one_line_naming_the_folder(tmp_path, monkeypatch):
    import fastposegait.engine.log as log_mod

    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(log_mod.logging, "FileHandler", read_only)
    with pytest.raises(OutputDirError) as info:
        make_runner(tmp_path, monkeypatch, log_to_file=True)
    logs = tmp_path / "output" / "Synthetic-CASIA-B" / "GaitGraph2" / "GaitGraph2-demo" / "logs"
    assert user_message(info.value) == (
        f"{logs.relative_to(tmp_path)}: --log_to_file cannot write the log there (Read-only file system); make "
        "the folder writable, or run without --log_to_file (the log still goes to the terminal)")


def poison_weights_at_step(run, step):
    """From training step ``step`` on, the model's first weight is NaN (as after a diverged update)."""
    forward = run.model.forward
    calls = []

    def poisoned(*args, **kwargs):
        calls.append(1)
        if len(calls) == step:
            with torch.no_grad():
                next(run.model.parameters()).fill_(float("nan"))
        return forward(*args, **kwargs)

    run.model.forward = poisoned


@pytest.mark.parametrize("log_iter", [1, 100])  # found at the log line, or only before the checkpoint
def test_a_nan_loss_stops_training_with_one_line_and_writes_no_nan_checkpoint(tmp_path, monkeypatch, log_iter):
    from fastposegait.errors import TrainingError

    run = make_runner(tmp_path, monkeypatch, f"trainer_cfg.log_iter={log_iter}")
    poison_weights_at_step(run, 3)
    with pytest.raises(TrainingError) as info:
        run.train()
    message = user_message(info.value)
    first_ckpt = run.checkpoint_dir / "GaitGraph2-demo-00002.pt"
    stopped_at = 3 if log_iter == 1 else 4
    assert message.startswith(f"training stopped at iteration {stopped_at}: the loss is nan since iteration 3 "
                              "(losses now: ")
    assert (f"no checkpoint was written after it, the last checkpoint with finite weights is {first_ckpt} "
            "(--iter 2). Check the data (non-finite or huge keypoints) and the learning rate") in message
    assert "\n" not in message
    assert sorted(p.name for p in run.checkpoint_dir.iterdir()) == ["GaitGraph2-demo-00002.pt"]
    state = torch.load(first_ckpt, weights_only=True)["model"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def test_a_checkpoint_with_nan_weights_is_refused_before_training(tmp_path, monkeypatch):
    run = make_runner(tmp_path, monkeypatch)
    run.train()
    path = (run.checkpoint_dir / "GaitGraph2-demo-00002.pt").resolve()
    ckpt = torch.load(path, weights_only=True)
    first = next(iter(ckpt["model"]))
    ckpt["model"][first] = torch.full_like(ckpt["model"][first], float("nan"))
    bad = tmp_path / "nan_weights.pt"
    torch.save(ckpt, bad)
    other = tmp_path / "other"
    other.mkdir()
    fine_tune = make_runner(other, monkeypatch, f"trainer_cfg.restore_hint={bad}", "trainer_cfg.scheduler_reset=true")
    with pytest.raises(CheckpointError) as info:
        fine_tune.build_training()
    assert user_message(info.value) == (
        f"{bad}: 1 of the model's tensors hold NaN or inf after loading it: its run diverged, and training from "
        "it gives a NaN loss at once. Restore an earlier checkpoint of that run")


FINE_TUNE = "estore it by path (trainer_cfg.restore_hint=<file>) to fine-tune from its weights"


@pytest.mark.parametrize("entry, value, problem", [
    ("rng", [{"torch": torch.zeros(3, dtype=torch.uint8)}],
     "'torch' is a torch.uint8 tensor of shape [3], not the 5056-byte generator state"),
    ("rng", "xyz", "it is a str, not a list with one state per process"),
    ("rng", ["xyz"], "the entry is a str, not a mapping of RNG states"),
    ("iteration", 10 ** 12, None),
    ("batches_seen", 10 ** 15, None),
    ("batches_seen", 1, None),
])
def test_a_resumed_checkpoint_with_broken_rng_or_counters_is_one_line(tmp_path, monkeypatch, entry, value, problem):
    first = make_runner(tmp_path, monkeypatch)
    first.train()
    path = first.checkpoint_dir / "GaitGraph2-demo-00002.pt"
    ckpt = torch.load(path, weights_only=True)
    ckpt[entry] = value
    torch.save(ckpt, path)
    resumed = make_runner(tmp_path, monkeypatch, "trainer_cfg.restore_hint=2")
    with pytest.raises(CheckpointError) as info:
        resumed.build_training()
    message = user_message(info.value)
    if entry == "rng":
        assert message.startswith(f"{path}: its saved random state ('rng' entry) is unusable: {problem}. ")
        assert FINE_TUNE in message
    elif entry == "iteration":
        assert message.startswith(f"{path}: its name says iteration 2 but it holds iteration 1000000000000: ")
    else:
        assert message.startswith(f"{path}: its batches_seen is {value} at iteration 2, expected 2 (a run without "
                                  "float16 skips no step): ")
        assert FINE_TUNE in message


def test_restoring_by_path_ignores_the_counters_as_before(tmp_path, monkeypatch):
    first = make_runner(tmp_path, monkeypatch)
    first.train()
    path = (first.checkpoint_dir / "GaitGraph2-demo-00002.pt").resolve()
    ckpt = torch.load(path, weights_only=True)
    ckpt["iteration"] = 10 ** 12
    ckpt["rng"] = "xyz"
    torch.save(ckpt, tmp_path / "moved.pt")
    other = tmp_path / "other"
    other.mkdir()
    fine_tune = make_runner(other, monkeypatch, f"trainer_cfg.restore_hint={tmp_path / 'moved.pt'}",
                            "trainer_cfg.scheduler_reset=true")
    fine_tune.build_training()
    assert fine_tune.iteration == 0 and fine_tune.batches_seen == 0


@pytest.mark.parametrize("extra, named", [
    (["scheduler_cfg.max_lr=0.5"], "scheduler_cfg.max_lr (config 0.5, checkpoint 0.005)"),
    (["optimizer_cfg.weight_decay=0.1"], "optimizer_cfg.weight_decay (config 0.1, checkpoint 1e-05)"),
])
def test_resuming_with_a_changed_schedule_warns_and_names_the_keys(tmp_path, monkeypatch, caplog, extra, named):
    make_runner(tmp_path, monkeypatch).train()
    resumed = make_runner(tmp_path, monkeypatch, "trainer_cfg.restore_hint=2", *extra)
    monkeypatch.setattr(logging.getLogger("fastposegait"), "propagate", True)
    with caplog.at_level(logging.WARNING, logger="fastposegait"):
        resumed.build_training()
    lines = [r.getMessage() for r in caplog.records if "the config differs" in r.getMessage()]
    assert len(lines) == 1
    assert f"the config differs from the optimizer/scheduler state restored from it in {named}; the checkpoint's " \
           "values are used. To apply the config's instead, set trainer_cfg.optimizer_reset: true" in lines[0]


def test_resuming_with_the_same_config_does_not_warn(tmp_path, monkeypatch, caplog):
    make_runner(tmp_path, monkeypatch).train()
    resumed = make_runner(tmp_path, monkeypatch, "trainer_cfg.restore_hint=2")
    monkeypatch.setattr(logging.getLogger("fastposegait"), "propagate", True)
    with caplog.at_level(logging.WARNING, logger="fastposegait"):
        resumed.build_training()
    assert "the config differs" not in caplog.text


@pytest.mark.parametrize("world_size, expected", [
    (1, [[[0, 1, 2, 3, 4]]]),
    (2, [[[0, 1, 2]], [[3, 4, 0]]]),  # one global batch of 6, padded with the first sequence
])
def test_a_test_batch_far_beyond_the_test_set_is_one_batch_of_it_without_a_huge_padding(world_size, expected):
    from fastposegait.data.sampler import InferenceSampler

    huge = [InferenceSampler(list(range(5)), 10 ** 9, rank=r, world_size=world_size) for r in range(world_size)]
    assert [[request.indices for request in sampler] for sampler in huge] == expected
