"""Training with ``trainer_cfg.transform_on: device``, in process, for every trainable demo:
the workers deliver raw ``[B, T, V, C]`` clips, the batched chain on the device turns them
into the model input the worker path would have built (same shape and dtype), training steps
give finite losses and move the weights, and a resumed run ends where an uninterrupted one
does (4 straight == 2 + resume + 2), so the device draws are keyed by the batch."""
import pytest
import torch

from fastposegait.engine.inference import move_batch
from test_resume import TRAINABLE, assert_same, runner_for, straight_and_resumed

ON_DEVICE = "trainer_cfg.transform_on=device"


@pytest.mark.parametrize("demo", TRAINABLE)
def test_training_steps_with_device_transforms(tmp_path, monkeypatch, demo):
    (tmp_path / "worker").mkdir()
    (tmp_path / "device").mkdir()
    on_worker = runner_for(tmp_path / "worker", monkeypatch, demo)
    expected = next(iter(on_worker.build_training().loader))
    runner = runner_for(tmp_path / "device", monkeypatch, demo, ON_DEVICE)
    parts = runner.build_training()
    assert parts.device_transforms is not None
    raw = next(iter(parts.loader))
    assert raw.inputs[0].dim() == 4 and raw.inputs[0].shape[-1] == 3  # [B, T, V, C]: no transform in the workers
    model_input = parts.device_transforms(move_batch(raw, runner.device), 1)
    assert [x.shape for x in model_input.inputs] == [x.shape for x in expected.inputs]
    assert [x.dtype for x in model_input.inputs] == [x.dtype for x in expected.inputs]
    assert torch.equal(model_input.labels, expected.labels)  # same sampler, same batch
    before = {k: v.clone() for k, v in runner.model.state_dict().items() if v.is_floating_point()}
    runner.net.train()
    stream = iter(parts.loader)
    for _ in range(2):
        runner.batches_seen += 1
        loss, _, _ = runner.train_step(parts, next(stream))
        assert torch.isfinite(loss)
    after = runner.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("demo", TRAINABLE)
def test_resume_is_exact_with_device_transforms(tmp_path, monkeypatch, demo):
    (tmp_path / "straight").mkdir()
    (tmp_path / "resumed").mkdir()
    a, b = straight_and_resumed(tmp_path, monkeypatch, demo, ON_DEVICE)
    assert_same(a, b)


def test_device_draws_change_from_batch_to_batch(tmp_path, monkeypatch):
    """The key is the batch number: the same raw batch gets new augmentations at the next step
    (a constant key would make the resume test above pass trivially)."""
    runner = runner_for(tmp_path, monkeypatch, "gaitgraph2_demo", ON_DEVICE)
    parts = runner.build_training()
    raw = move_batch(next(iter(parts.loader)), runner.device)
    first, again, second = (parts.device_transforms(raw, k).inputs[0] for k in (1, 1, 2))
    assert torch.equal(first, again) and not torch.equal(first, second)


def test_the_runner_keys_the_device_draws_by_batches_seen(tmp_path, monkeypatch):
    runner = runner_for(tmp_path, monkeypatch, "gaitgraph2_demo", ON_DEVICE, "trainer_cfg.total_iter=3")
    build = runner.build_training
    keys = []

    def recording_build():
        parts = build()
        chains = parts.device_transforms

        def record(batch, key):
            keys.append(key)
            return chains(batch, key)

        parts.device_transforms = record
        return parts

    monkeypatch.setattr(runner, "build_training", recording_build)
    runner.train()
    assert keys == [1, 2, 3]
