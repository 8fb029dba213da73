"""The runner's training step: float32, bfloat16 autocast on CPU, float16 fallback, compile."""
import logging

import pytest
import torch

from cli_helpers import DEMO_CFG, tiny_overrides
from fastposegait.config import load_config
from fastposegait.distributed import DistEnv
from fastposegait.engine.runner import Runner


def make_runner(tmp_path, monkeypatch, *extra):
    monkeypatch.chdir(tmp_path)
    cfg = load_config(DEMO_CFG, tiny_overrides(tmp_path) + list(extra))
    return Runner(cfg, "train", DistEnv(), torch.device("cpu"))


def first_batch(parts):
    return next(iter(parts.loader))


def params_of(runner):
    return {k: v.detach().clone() for k, v in runner.model.state_dict().items()}


def test_float32_step_updates_weights_and_counts(tmp_path, monkeypatch):
    runner = make_runner(tmp_path, monkeypatch)
    parts = runner.build_training()
    assert parts.autocast is None and not parts.scaler.is_enabled()
    before = params_of(runner)
    lr_before = parts.optimizer.param_groups[0]["lr"]
    loss, info, output = runner.train_step(parts, first_batch(parts))
    assert torch.isfinite(loss) and "scalar/SupConLoss/loss" in info
    after = params_of(runner)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert parts.optimizer.param_groups[0]["lr"] != lr_before  # the scheduler stepped


def test_bfloat16_autocast_runs_on_cpu(tmp_path, monkeypatch):
    runner = make_runner(tmp_path, monkeypatch, "trainer_cfg.enable_bfloat16=true")
    parts = runner.build_training()
    assert parts.autocast is not None and not parts.scaler.is_enabled()
    batch = first_batch(parts)
    loss, _, output = runner.train_step(parts, batch)
    assert torch.isfinite(loss)
    assert output["training_feat"]["SupConLoss"]["features"].dtype == torch.bfloat16  # ran under autocast
    assert all(p.dtype == torch.float32 for p in runner.model.parameters())  # master weights stay fp32


def test_float16_on_cpu_falls_back_to_float32_with_a_note(tmp_path, monkeypatch, caplog):
    runner = make_runner(tmp_path, monkeypatch, "trainer_cfg.enable_float16=true")
    with caplog.at_level(logging.INFO, logger="fastposegait"):
        logging.getLogger("fastposegait").propagate = True  # the runner set up its own handler
        parts = runner.build_training()
    assert parts.autocast is None and not parts.scaler.is_enabled()
    assert "float16 autocast needs CUDA; running in float32" in caplog.text
    _, _, output = runner.train_step(parts, first_batch(parts))
    assert output["training_feat"]["SupConLoss"]["features"].dtype == torch.float32


def test_compiled_step_matches_eager(tmp_path, monkeypatch):
    eager = make_runner(tmp_path, monkeypatch, "trainer_cfg.fix_BN=true")
    parts_e = eager.build_training()
    batch = first_batch(parts_e)
    compiled = make_runner(tmp_path, monkeypatch, "trainer_cfg.fix_BN=true", "trainer_cfg.compile=true")
    compiled.model.load_state_dict(eager.model.state_dict())
    parts_c = compiled.build_training()
    try:
        loss_c, _, _ = compiled.train_step(parts_c, batch)
    except Exception as exc:  # no working compiler toolchain on this machine
        pytest.skip(f"torch.compile cannot run here: {type(exc).__name__}: {str(exc)[:200]}")
    loss_e, _, _ = eager.train_step(parts_e, batch)
    assert loss_c.item() == pytest.approx(loss_e.item(), rel=1e-4, abs=1e-5)
    for k, v in eager.model.state_dict().items():
        assert torch.allclose(v.float(), compiled.model.state_dict()[k].float(), atol=1e-4), k
    assert set(compiled.model.state_dict()) == set(eager.model.state_dict())  # no _orig_mod prefixes


def test_channels_last_step_matches_default_layout(tmp_path, monkeypatch):
    plain = make_runner(tmp_path, monkeypatch, "trainer_cfg.fix_BN=true")
    parts_p = plain.build_training()
    batch = first_batch(parts_p)
    nhwc = make_runner(tmp_path, monkeypatch, "trainer_cfg.fix_BN=true", "trainer_cfg.channels_last=true")
    nhwc.model.load_state_dict(plain.model.state_dict())
    parts_n = nhwc.build_training()
    convs = [m.weight for m in nhwc.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert not all(w.is_contiguous() for w in convs)  # really re-laid out, not a no-op
    loss_n, _, _ = nhwc.train_step(parts_n, batch)
    loss_p, _, _ = plain.train_step(parts_p, batch)
    assert loss_n.item() == pytest.approx(loss_p.item(), rel=1e-5, abs=1e-6)
    for k, v in plain.model.state_dict().items():
        assert torch.allclose(v, nhwc.model.state_dict()[k], atol=1e-5), k


def test_fused_optimizer_kwarg_reaches_the_solver(tmp_path, monkeypatch):
    runner = make_runner(tmp_path, monkeypatch, "optimizer_cfg.fused=true")
    parts = runner.build_training()
    assert parts.optimizer.defaults["fused"] is True
    before = params_of(runner)
    loss, _, _ = runner.train_step(parts, first_batch(parts))
    assert torch.isfinite(loss)
    assert any(not torch.equal(before[k], v) for k, v in params_of(runner).items())
