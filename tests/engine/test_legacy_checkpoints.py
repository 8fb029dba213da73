"""Checkpoints from elsewhere load: this project's files from before the models took upstream's
key names (weights renamed, optimizer state reordered, one log line), and upstream's own files
(only model, optimizer, scheduler and iteration: a resume continues at the iteration with its
optimizer and scheduler states on the right parameters, and says it is not bit-exact).

The legacy fixtures in ``tests/fixtures/legacy/`` were written by the code at commit d73c20a
(see ``make_legacy_fixtures.py`` there): a tiny checkpoint of each graph model after two Adam
steps, and the eval embeddings that code gave for a fixed input.
"""
from __future__ import annotations

import gzip
import logging
import shutil
from pathlib import Path

import pytest
import torch

from cli_helpers import REPO, TINY, schedule_overrides, synthetic_data_overrides
from fastposegait.config import load_config
from fastposegait.distributed import DistEnv
from fastposegait.engine.checkpoint import load_checkpoint, load_model_state
from fastposegait.engine.restore import restore_optimizer
from fastposegait.engine.runner import Runner
from fastposegait.modeling import build_model
from fastposegait.modeling.legacy_keys import is_legacy_state, to_legacy_key, translate_legacy_key

FIXTURES = REPO / "tests" / "fixtures" / "legacy"
MODELS = ["GaitGraph1", "GaitGraph2", "GaitTR", "GPGait"]
BN_BUFFERS = (".running_mean", ".running_var", ".num_batches_tracked")  # the old files' only buffers
DEMOS = {"GaitGraph1": "gaitgraph1_demo", "GaitGraph2": "gaitgraph2_demo", "GaitTR": "gaittr_demo",
         "GPGait": "gpgait_demo"}


@pytest.fixture(autouse=True)
def _propagate():
    logging.getLogger("fastposegait").propagate = True


def gunzip(name: str, folder: Path) -> Path:
    target = folder / name[: -len(".gz")]
    with gzip.open(FIXTURES / name, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return target


def legacy_messages(caplog) -> list:
    return [r for r in caplog.records if "pre-upstream state-dict key names" in r.getMessage()]


def embed(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(([x], torch.zeros(x.shape[0], dtype=torch.long), None, None, None))["inference_feat"]["embeddings"]


@pytest.mark.parametrize("name", MODELS)
def test_a_checkpoint_written_before_the_rename_loads_and_embeds_as_it_did(name, tmp_path, caplog):
    path = gunzip(f"{name}-00002.pt.gz", tmp_path)
    expected = torch.load(gunzip(f"{name}-expected.pt.gz", tmp_path), weights_only=True)
    raw = torch.load(path, weights_only=True)
    assert is_legacy_state(raw["model"])
    model = build_model(expected["model_cfg"])
    with caplog.at_level(logging.INFO, logger="fastposegait"):
        ckpt = load_checkpoint(path, model)
        assert load_model_state(model, ckpt["model"], strict=True, path=path) == []
    assert len(legacy_messages(caplog)) == 1
    assert str(path) in legacy_messages(caplog)[0].getMessage()
    # every old tensor is in the model under its new name
    own = model.state_dict()
    for old_key, value in raw["model"].items():
        assert torch.equal(own[translate_legacy_key(old_key)], value), old_key
    torch.testing.assert_close(embed(model, expected["input"]), expected["embeddings"], rtol=1e-5, atol=1e-6)

    # the Adam state: old position i belonged to the i-th parameter of the old file's key order
    old_params = [translate_legacy_key(k) for k in raw["model"] if not k.endswith(BN_BUFFERS)]
    new_params = [n for n, _ in model.named_parameters()]
    assert sorted(old_params) == sorted(new_params)
    if name in ("GaitTR", "GPGait"):  # their parameter order changed with the rename
        assert old_params != new_params
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    restore_optimizer(optimizer, ckpt["optimizer"], path)
    raw_state = raw["optimizer"]["state"]
    for (param_name, param) in model.named_parameters():
        state = optimizer.state[param]
        old = raw_state[old_params.index(param_name)]
        assert state["exp_avg"].shape == param.shape, param_name
        assert torch.equal(state["exp_avg"], old["exp_avg"]) and torch.equal(state["exp_avg_sq"], old["exp_avg_sq"])


@pytest.mark.parametrize("name", MODELS)
def test_a_legacy_named_state_of_a_demo_model_loads_with_one_log_line(name, tmp_path, caplog):
    """Old-named files made from today's model through the inverse mapping (demo widths)."""
    cfg = load_config(REPO / "configs" / "demo" / f"{DEMOS[name]}.yaml")["model_cfg"]
    torch.manual_seed(0)
    source = build_model(cfg)
    with torch.no_grad():
        for key, value in source.state_dict().items():
            if value.is_floating_point() and not key.endswith(".A"):  # the graph is a constant
                value.add_(0.05 * torch.rand_like(value))
    old = {to_legacy_key(k): v for k, v in source.state_dict().items() if not k.endswith(".A")}
    assert is_legacy_state(old) and not is_legacy_state(source.state_dict())
    path = tmp_path / "old.pt"
    torch.save({"model": old, "iteration": 7}, path)
    target = build_model(cfg)
    with caplog.at_level(logging.INFO, logger="fastposegait"):
        ckpt = load_checkpoint(path)  # the test phase: no model handed to load_checkpoint
        assert load_model_state(target, ckpt["model"], strict=True, path=path) == []
    assert len(legacy_messages(caplog)) == 1
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key
    x = torch.randn(*input_shape(name), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(embed(target, x), embed(source, x))


def input_shape(name: str) -> tuple:
    return {"GaitGraph1": (2, 3, 16, 17, 1), "GaitGraph2": (2, 16, 17, 3, 5), "GaitTR": (2, 10, 16, 17, 1),
            "GPGait": (2, 6, 16, 17, 1)}[name]


def test_an_old_file_of_another_model_is_still_the_usual_error(tmp_path):
    source = build_model(load_config(REPO / "configs" / "demo" / "gaittr_demo.yaml")["model_cfg"])
    old = {to_legacy_key(k): v for k, v in source.state_dict().items()}
    target = build_model(load_config(REPO / "configs" / "demo" / "gaitgraph2_demo.yaml")["model_cfg"])
    from fastposegait.errors import CheckpointError
    with pytest.raises(CheckpointError, match="does not fit model GaitGraph2"):
        load_model_state(target, old, strict=True, path=tmp_path / "x.pt")


# ------------------------------------------------------------------ upstream's own checkpoint files

def gaittr_config(folder: Path, *extra) -> dict:
    """The GaitTR demo, narrowed to seconds: 4 iterations, checkpoints at 2 and 4."""
    over = synthetic_data_overrides(folder) + schedule_overrides(4, 2) + TINY["GaitTR"]["overrides"] + list(extra)
    return load_config(REPO / "configs" / "demo" / "gaittr_demo.yaml", over)


def gaittr_runner(folder: Path, monkeypatch, *extra) -> Runner:
    monkeypatch.chdir(folder)
    return Runner(gaittr_config(folder, *extra), "train", DistEnv(), torch.device("cpu"))


def test_resuming_from_an_upstream_checkpoint_puts_adam_and_the_schedule_on_the_right_parameters(
        tmp_path, monkeypatch, caplog):
    runner = gaittr_runner(tmp_path, monkeypatch)
    # an upstream-style file: a model of the same architecture with other weights, Adam after a
    # step with a different gradient per parameter, OneCycleLR after 2 steps; nothing else
    upstream = build_model(gaittr_config(tmp_path)["model_cfg"])
    names = [n for n, _ in upstream.named_parameters()]
    optimizer = torch.optim.Adam(upstream.parameters(), lr=0.001, weight_decay=2e-5)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.001, total_steps=4, pct_start=0.5,
                                                    div_factor=100, three_phase=True)
    for step in range(2):
        for i, p in enumerate(upstream.parameters()):
            p.grad = torch.full_like(p, float(i + 1)) * (step + 1)
        optimizer.step()
        scheduler.step()
    expected = {n: optimizer.state[p]["exp_avg"].clone() for n, p in upstream.named_parameters()}
    runner.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    torch.save({"model": upstream.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "iteration": 2},
               runner.checkpoint_dir / f"{runner.save_name}-00002.pt")

    resumed = gaittr_runner(tmp_path, monkeypatch, "trainer_cfg.restore_hint=2")
    logging.getLogger("fastposegait").propagate = True  # the runner's logging set-up turns it off
    with caplog.at_level(logging.INFO, logger="fastposegait"):
        parts = resumed.build_training()
    assert resumed.iteration == 2 and resumed.batches_seen == 2
    assert parts.scheduler.last_epoch == 2
    assert parts.optimizer.param_groups[0]["lr"] == pytest.approx(scheduler.get_last_lr()[0])
    model_params = dict(resumed.model.named_parameters())
    assert list(model_params) == names
    for name, param in model_params.items():
        state = parts.optimizer.state[param]
        assert state["exp_avg"].shape == param.shape
        assert torch.equal(state["exp_avg"], expected[name]), name
        assert torch.equal(param.detach(), upstream.state_dict()[name]), name
    lines = [r.getMessage() for r in caplog.records if "not bit-exact" in r.getMessage()]
    assert len(lines) == 1 and "no random states and no sampler position" in lines[0]
    assert not legacy_messages(caplog)
    resumed.train()  # and it trains on to the end
    final = torch.load(resumed.checkpoint_dir / f"{resumed.save_name}-00004.pt", weights_only=True)
    assert final["iteration"] == 4


def test_our_checkpoints_hold_the_entries_upstreams_loader_reads(tmp_path, monkeypatch):
    runner = gaittr_runner(tmp_path, monkeypatch, "trainer_cfg.total_iter=2")
    runner.train()
    ckpt = torch.load(runner.checkpoint_dir / f"{runner.save_name}-00002.pt", weights_only=True)
    assert {"model", "optimizer", "scheduler", "iteration"} <= set(ckpt)
    assert ckpt["iteration"] == 2 and isinstance(ckpt["optimizer"]["state"], dict)
    assert set(ckpt["scheduler"]) == set(runner_scheduler_fields(tmp_path))
    # upstream's load is model.load_state_dict(ckpt['model'], strict=True) on a model whose keys
    # are today's (test_upstream_keys.py checks those against upstream's listing)
    model = build_model(gaittr_config(tmp_path)["model_cfg"])
    model.load_state_dict(ckpt["model"], strict=True)
    assert list(ckpt["model"]) == list(model.state_dict())


def runner_scheduler_fields(folder: Path) -> list:
    params = [torch.nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.Adam(params)
    return list(torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.001, total_steps=4).state_dict())


def test_a_onecyclelr_state_of_an_older_torch_resumes_the_same_schedule(tmp_path):
    """Older torch versions save OneCycleLR with ``anneal_func`` (the method itself) and
    ``verbose``, and without ``_is_initial`` / ``_anneal_func_type``; such a state (upstream's
    checkpoints) restores the same schedule."""
    from fastposegait.engine.restore import restore_scheduler

    def make(strategy="cos"):
        optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))], lr=0.001)
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.001, total_steps=10,
                                                   anneal_strategy=strategy, three_phase=True)

    for strategy in ("cos", "linear"):
        reference = make(strategy)
        for _ in range(4):
            reference.optimizer.step()
            reference.step()
        old = {k: v for k, v in reference.state_dict().items() if k not in ("_is_initial", "_anneal_func_type")}
        old["verbose"] = False
        old["anneal_func"] = f"_annealing_{strategy}"  # what a stub for the old bound method gives
        resumed = make("cos" if strategy == "linear" else "linear")  # the other strategy: it must be replaced
        restore_scheduler(resumed, old, tmp_path / "old.pt", steps_ahead=6)
        assert resumed.last_epoch == 4
        for _ in range(6):
            reference.optimizer.step()
            reference.step()
            resumed.optimizer.step()
            resumed.step()
            assert resumed.get_last_lr() == pytest.approx(reference.get_last_lr())
