"""Checkpoints that do not fit, writes that fail, and temp files that kills leave behind:
each is one clear line, nothing earlier is lost, nothing is loaded silently."""
import errno
import logging

import pytest
import torch

from fastposegait.engine import checkpoint as ckpt_mod
from fastposegait.engine.checkpoint import load_model_state, remove_stale_temps, save_checkpoint
from fastposegait.errors import CheckpointError, user_message
from fastposegait.modeling import build_model

GG2 = {"model": "GaitGraph2", "joint_format": "coco", "input_num": 3, "reduction": 8, "block": "Bottleneck",
       "input_branch": [5, 16, 8], "main_stream": [8, 32, 64], "num_class": 16, "tta": True}
WIDER = {**GG2, "main_stream": [8, 32, 128]}
GAITTR = {"model": "GaitTR", "in_channels": [10, 32, 32], "num_class": 16, "joint_format": "coco"}


def test_a_checkpoint_of_other_widths_is_one_line_with_the_differences(tmp_path):
    model = build_model(GG2)
    state = build_model(WIDER).state_dict()
    with pytest.raises(CheckpointError) as info:
        load_model_state(model, state, strict=True, path=tmp_path / "x.pt")
    message = user_message(info.value)
    assert "\n" not in message and message.startswith(f"{tmp_path / 'x.pt'} does not fit model GaitGraph2")
    assert "of another shape (e.g. ResGCN.backbone.1." in message and "checkpoint [" in message
    assert "restore_ckpt_strict: false" in message


def test_a_checkpoint_of_another_model_loads_nothing_and_says_so(tmp_path):
    model = build_model(GG2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = build_model(GAITTR).state_dict()
    for strict in (True, False):
        with pytest.raises(CheckpointError, match="does not fit model GaitGraph2|none of its .* tensors fits"):
            load_model_state(model, state, strict=strict, path=tmp_path / "tr.pt")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_non_strict_loading_names_every_tensor_it_leaves_and_loads_the_rest(tmp_path, caplog):
    model = build_model(GG2)
    source = build_model(WIDER)
    state = source.state_dict()
    caplog.set_level(logging.WARNING, logger="fastposegait")
    logging.getLogger("fastposegait").propagate = True
    left = load_model_state(model, state, strict=False, path=tmp_path / "w.pt")
    own = model.state_dict()
    reshaped = [k for k in own if tuple(own[k].shape) != tuple(state[k].shape)]
    assert left == reshaped and left
    assert f"{len(left)} of the model's {len(own)} tensors" in caplog.text and left[0] in caplog.text
    assert all(torch.equal(own[k], state[k]) for k in own if k not in left)


def test_a_failed_checkpoint_write_names_the_path_and_keeps_the_earlier_one(tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    first = folder / "run-00002.pt"
    save_checkpoint(first, {"model": {"w": torch.ones(3)}, "iteration": 2})
    real_save = torch.save

    def full_disk(obj, f):
        real_save(obj, f)  # some bytes reach the temp file, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt_mod.torch, "save", full_disk)
    second = folder / "run-00004.pt"
    with pytest.raises(CheckpointError) as info:
        save_checkpoint(second, {"model": {"w": torch.zeros(3)}, "iteration": 4})
    message = user_message(info.value)
    assert message.startswith(f"{second}: cannot write the checkpoint (No space left on device)")
    assert "the earlier checkpoints are intact (latest: run-00002.pt)" in message
    assert sorted(p.name for p in folder.iterdir()) == ["run-00002.pt"]  # no partial file, no temp file
    assert torch.equal(torch.load(first, weights_only=True)["model"]["w"], torch.ones(3))


def test_stale_temp_files_of_killed_writes_are_removed(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / "run-00002.pt").write_bytes(b"kept")
    for name in (".run-00004.pt.a1b2.tmp", ".run-00006.pt.zz.tmp"):
        (folder / name).write_bytes(b"partial")
    (folder / ".notes.txt").write_text("not ours")
    assert remove_stale_temps(folder) == 2
    assert sorted(p.name for p in folder.iterdir()) == [".notes.txt", "run-00002.pt"]
    assert remove_stale_temps(tmp_path / "missing") == 0


# ------------------------------------------------------------------ states that do not fit the run

import os  # noqa: E402

from cli_helpers import DEMO_CFG, tiny_overrides  # noqa: E402
from fastposegait.config import load_config  # noqa: E402
from fastposegait.distributed import DistEnv  # noqa: E402
from fastposegait.engine.runner import Runner  # noqa: E402


def runner(tmp_path, *extra):
    os.chdir(tmp_path)
    return Runner(load_config(DEMO_CFG, tiny_overrides(tmp_path) + list(extra)), "train", DistEnv(),
                  torch.device("cpu"))


@pytest.fixture
def trained(tmp_path, monkeypatch):
    """A finished 4-iteration AdamW + OneCycleLR run (checkpoints at 2 and 4)."""
    monkeypatch.chdir(tmp_path)
    first = runner(tmp_path)
    first.train()
    return first.checkpoint_dir.resolve()


@pytest.mark.parametrize("extra, message", [
    (["optimizer_cfg.solver=SGD", "trainer_cfg.restore_hint=2"],
     "its optimizer state lacks dampening, momentum, which SGD needs: it was written by another solver; "
     "set trainer_cfg.optimizer_reset: true"),
    (["scheduler_cfg.scheduler=MultiStepLR", "scheduler_cfg.milestones=[3]", "trainer_cfg.restore_hint=2"],
     "its scheduler state was written by another scheduler than MultiStepLR (other fields); set "
     "trainer_cfg.scheduler_reset: true"),
    (["trainer_cfg.restore_hint=CKPT4"],  # fine-tuning from a finished schedule of 4 steps
     "its OneCycleLR state has 0 of its 4 steps left, but this run trains 4 more iterations"),
])
def test_optimizer_and_scheduler_states_that_do_not_fit_are_one_error_before_training(trained, tmp_path, extra,
                                                                                      message):
    extra = [e.replace("CKPT4", str(trained / "GaitGraph2-demo-00004.pt")) for e in extra]
    other = tmp_path / "other"
    other.mkdir()
    if "trainer_cfg.restore_hint=2" in extra:  # resume in the trained folder
        other = tmp_path
    run = runner(other, *extra)
    with pytest.raises(CheckpointError) as info:
        run.build_training()
    assert message in user_message(info.value)


def test_fine_tuning_other_widths_non_strict_skips_the_optimizer_state_and_trains(trained, tmp_path, caplog):
    other = tmp_path / "wider"
    other.mkdir()
    run = runner(other, "model_cfg.main_stream=[8, 32, 128]", "trainer_cfg.restore_ckpt_strict=false",
                 "trainer_cfg.scheduler_reset=true", f"trainer_cfg.restore_hint={trained / 'GaitGraph2-demo-00004.pt'}")
    logging.getLogger("fastposegait").propagate = True
    with caplog.at_level(logging.WARNING, logger="fastposegait"):
        run.train()
    assert "optimizer state not restored (the model was loaded only in part)" in caplog.text
    assert (run.checkpoint_dir / "GaitGraph2-demo-00004.pt").exists()


@pytest.mark.parametrize("payload, message", [
    ({"model": {"w": 3}}, "its 'model' entry is not a state dict of named tensors"),
    ({"model": {}, "iteration": "four"}, "its 'iteration' entry is not an iteration count"),
])
def test_hand_made_checkpoints_are_refused_at_load(tmp_path, payload, message):
    path = tmp_path / "odd.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=message):
        ckpt_mod.load_checkpoint(path)


def test_junk_optimizer_and_scheduler_states_are_one_error(trained, tmp_path):
    state = torch.load(trained / "GaitGraph2-demo-00002.pt", weights_only=True)
    for entry, junk, message in (("optimizer", {"state": {}, "param_groups": [{"lr": 1}]}, "for other parameters"),
                                 ("scheduler", {"nonsense": 1}, "written by another scheduler")):
        bad = dict(state, **{entry: junk})
        path = tmp_path / f"junk-{entry}.pt"
        torch.save(bad, path)
        other = tmp_path / entry
        other.mkdir()
        with pytest.raises(CheckpointError, match=message):
            runner(other, f"trainer_cfg.restore_hint={path}").build_training()


def test_a_hostile_or_foreign_file_given_as_checkpoint_is_one_line(tmp_path):
    class RunsCode:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "PWNED"),))

    hostile = tmp_path / "hostile.pt"
    torch.save({"model": {}, "x": RunsCode()}, hostile)
    with pytest.raises(CheckpointError) as info:
        ckpt_mod.load_checkpoint(hostile)
    message = user_message(info.value)
    assert "refused: the file asks for posix.system" in message or "refused: the file asks for os.system" in message
    assert "\n" not in message and "weights_only set to False" not in message
    assert not (tmp_path / "PWNED").exists()
    text = tmp_path / "notes.pt"
    text.write_text("hello world\n")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        ckpt_mod.load_checkpoint(text)
    with pytest.raises(CheckpointError, match="is a folder, not a checkpoint file"):
        ckpt_mod.load_checkpoint(tmp_path)
