"""Resuming is exact: for every demo model (dropout included) and for a loss with learnable
parameters, 4 iterations straight end with the same weights, optimizer state and loss
parameters as 2 iterations, a fresh process-like runner restored from the checkpoint at 2,
and 2 more. Runners are built in this process (no subprocess), like main.py builds them."""
import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from cli_helpers import REPO, TINY, schedule_overrides, synthetic_data_overrides
from fastposegait.config import load_config
from fastposegait.distributed import DistEnv
from fastposegait.engine.runner import Runner
from fastposegait.modeling.losses.base import BaseLoss
from fastposegait.registry import LOSSES

# Demos on the CASIA-B-like layout (the overrides below shrink that layout); the CCPG and
# SUSTech1K demos are run by tests/evaluation/test_ccpg_sustech1k_cli.py.
DEMOS = {p.stem: p for p in sorted((REPO / "configs" / "demo").glob("*.yaml"))
         if yaml.safe_load(p.read_text())["data_cfg"].get("synthetic", {}).get("layout", "casia-b") == "casia-b"}
TRAINABLE = [name for name, p in DEMOS.items() if yaml.safe_load(p.read_text())["model_cfg"]["model"] != "RawJointsNN"]


class CosFaceForTests(BaseLoss):
    """A CosFace-style loss: a learnable class matrix, scaled cosine logits with a margin."""

    def __init__(self, num_classes: int = 8, dim: int = 32, scale: float = 16.0, margin: float = 0.2,
                 loss_term_weight: float = 1.0) -> None:
        super().__init__(loss_term_weight)
        self.weight = nn.Parameter(torch.randn(num_classes, dim) * 0.1)
        self.scale, self.margin = scale, margin

    def forward(self, features, labels):
        cos = F.normalize(features.float(), dim=1) @ F.normalize(self.weight, dim=1).t()
        cos = cos - self.margin * F.one_hot(labels, cos.shape[1])
        loss = F.cross_entropy(self.scale * cos, labels)
        return loss, {"loss": loss.detach()}


if "CosFaceForTests" not in LOSSES:
    LOSSES.add(CosFaceForTests, "CosFaceForTests")


def runner_for(tmp_path, monkeypatch, demo, *extra):
    monkeypatch.chdir(tmp_path)
    config = DEMOS[demo]
    model = yaml.safe_load(config.read_text())["model_cfg"]["model"]
    over = synthetic_data_overrides(tmp_path) + schedule_overrides(4, 2) + TINY[model]["overrides"] + list(extra)
    return Runner(load_config(config, over), "train", DistEnv(), torch.device("cpu"))


def checkpoint(runner, iteration):
    path = runner.checkpoint_dir / f"{runner.save_name}-{iteration:05d}.pt"
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same(a, b):
    assert a["iteration"] == b["iteration"]
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        for k in sa:
            assert torch.equal(torch.as_tensor(sa[k]), torch.as_tensor(sb[k])), k
    assert set(a.get("loss", {})) == set(b.get("loss", {}))
    for key in a.get("loss", {}):
        assert torch.equal(a["loss"][key], b["loss"][key]), key


def straight_and_resumed(tmp_path, monkeypatch, demo, *extra):
    straight = runner_for(tmp_path / "straight", monkeypatch, demo, *extra)
    straight.train()
    a = checkpoint(straight, 4)
    first = runner_for(tmp_path / "resumed", monkeypatch, demo, *extra, "trainer_cfg.total_iter=2")
    first.train()
    resumed = runner_for(tmp_path / "resumed", monkeypatch, demo, *extra, "trainer_cfg.restore_hint=2")
    resumed.train()
    return a, checkpoint(resumed, 4)


@pytest.mark.parametrize("demo", TRAINABLE)
def test_resume_is_exact_for_every_demo_model(tmp_path, monkeypatch, demo):
    (tmp_path / "straight").mkdir()
    (tmp_path / "resumed").mkdir()
    a, b = straight_and_resumed(tmp_path, monkeypatch, demo)
    assert_same(a, b)


def test_learnable_loss_parameters_are_checkpointed_and_resumed(tmp_path, monkeypatch):
    (tmp_path / "straight").mkdir()
    (tmp_path / "resumed").mkdir()
    loss = ["loss_cfg={type: CosFaceForTests, log_prefix: SupConLoss, num_classes: 4, dim: 32}"]
    a, b = straight_and_resumed(tmp_path, monkeypatch, "gaitgraph2_demo", *loss)
    assert set(a["loss"]) == {"losses.SupConLoss.weight"}
    assert not torch.equal(a["loss"]["losses.SupConLoss.weight"], checkpoint_at_start(tmp_path, monkeypatch, loss))
    assert_same(a, b)


def checkpoint_at_start(tmp_path, monkeypatch, loss):
    """The loss matrix a fresh run starts from (it must have moved by iteration 4)."""
    (tmp_path / "fresh").mkdir()
    runner = runner_for(tmp_path / "fresh", monkeypatch, "gaitgraph2_demo", *loss)
    parts = runner.build_training()
    return parts.losses.state_dict()["losses.SupConLoss.weight"].clone()


def test_training_ends_with_a_checkpoint_when_total_iter_is_not_a_multiple_of_save_iter(tmp_path, monkeypatch):
    runner = runner_for(tmp_path, monkeypatch, "gaitgraph2_demo", "trainer_cfg.total_iter=3",
                        "trainer_cfg.save_iter=10")
    runner.train()
    assert sorted(p.name for p in runner.checkpoint_dir.glob("*.pt")) == [f"{runner.save_name}-00003.pt"]
    assert checkpoint(runner, 3)["iteration"] == 3


def test_a_models_scalar_summaries_are_logged_and_written_to_tensorboard(tmp_path, monkeypatch, caplog):
    import logging

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runner = runner_for(tmp_path, monkeypatch, "gaitgraph2_demo", "trainer_cfg.total_iter=2")
    forward = runner.model.forward
    calls = []

    def with_a_scalar(inputs):
        out = forward(inputs)
        calls.append(float(len(calls) + 1))
        out["visual_summary"]["scalar/probe/value"] = torch.tensor(calls[-1])
        return out

    monkeypatch.setattr(runner.model, "forward", with_a_scalar)
    logging.getLogger("fastposegait").propagate = True
    with caplog.at_level(logging.INFO, logger="fastposegait"):
        runner.train()
    assert "probe_value=1.0000" in caplog.text and "probe_value=2.0000" in caplog.text
    events = EventAccumulator(str(runner.output_dir / "summary"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("probe/value")] == [(1, 1.0), (2, 2.0)]
