"""The example extension in examples/custom_model/ (documented in docs/implement_new_models.md)
works as the docs say: its transform, loss and model behave correctly, and a config that
imports them trains and tests through the command line."""
import json

import numpy as np
import pytest
import torch

from cli_helpers import REPO, run_cli
from fastposegait.config import load_config
from fastposegait.modeling import build_model, count_parameters
from fastposegait.modeling.losses import LossAggregator
from fastposegait.registry import LOSSES, MODELS, TRANSFORMS

EXAMPLE_CFG = REPO / "examples" / "custom_model" / "tiny_gcn.yaml"


@pytest.fixture(scope="module")
def cfg():
    # custom_imports runs from the repository root, as the docs' commands do
    import os

    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        return load_config(EXAMPLE_CFG)
    finally:
        os.chdir(cwd)


def test_config_registers_the_user_components(cfg):
    assert {"TinyGCN"} <= set(MODELS.names())
    assert "CenterOnHips" in TRANSFORMS and "CenterLoss" in LOSSES
    assert cfg["model_cfg"]["model"] == "TinyGCN"


def test_center_on_hips_by_hand(cfg):
    t = TRANSFORMS.get("CenterOnHips")()
    seq = np.zeros((2, 17, 3))
    # frame 0: shoulders at (0,0),(2,0), hips at (0,4),(2,4): mid-hip (1,4), torso length 4
    seq[0, 5, :2], seq[0, 6, :2], seq[0, 11, :2], seq[0, 12, :2] = (0, 0), (2, 0), (0, 4), (2, 4)
    # frame 1: everything shifted by (10, 10) and torso length 2
    seq[1, 5, :2], seq[1, 6, :2], seq[1, 11, :2], seq[1, 12, :2] = (10, 10), (12, 10), (10, 12), (12, 12)
    seq[..., 2] = 0.5
    seq[0, 0] = (1, -2, 0.9)  # nose
    before = seq.copy()
    out = t(seq)
    np.testing.assert_array_equal(seq, before)  # input untouched
    scale = 3.0  # mean torso length over the two frames
    np.testing.assert_allclose(out[0, 11, :2], [-1 / scale, 0])
    np.testing.assert_allclose(out[1, 5, :2], [-1 / scale, -2 / scale])
    np.testing.assert_allclose(out[0, 0], [0, -6 / scale, 0.9])
    np.testing.assert_array_equal(out[..., 2][:, 5], [0.5, 0.5])


def test_center_loss_matches_a_loop():
    loss_fn = LOSSES.get("CenterLoss")()
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(7, 5, generator=g, requires_grad=True)
    labels = torch.tensor([3, 1, 3, 3, 1, 9, 1])
    loss, info = loss_fn(feats, labels)
    expected = 0.0
    for i in range(7):
        same = [j for j in range(7) if labels[j] == labels[i]]
        centre = sum(feats[j] for j in same) / len(same)
        expected += float(((feats[i] - centre) ** 2).sum().detach())
    assert loss.item() == pytest.approx(expected / 7, rel=1e-6)
    assert info["loss"].item() == pytest.approx(loss.item())
    loss.backward()
    assert feats.grad is not None and feats.grad[5].abs().sum() == 0  # a lone sample is its own centre


def test_model_shapes_parameters_and_one_step(cfg):
    model = build_model(cfg["model_cfg"])
    C, V, h, d = 3, 17, 32, 64
    expected = (2 * C * V) \
        + (C * h * 2 + h * 2) + (h * h * 9 + h) + 2 * h \
        + (h * d * 2 + d * 2) + (d * d * 9 + d) + 2 * d \
        + (d * d + d)
    assert count_parameters(model) == expected
    assert not any(name == "A" for name, _ in model.state_dict().items())  # non-persistent buffer
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 3, 20, 17, 1, generator=g)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    out = model(([x], labels, None, None, None))
    assert out["inference_feat"]["embeddings"].shape == (8, 64, 1)
    assert out["training_feat"]["center"]["features"].shape == (8, 64)
    assert out["visual_summary"]["image/pose"].shape == (4, 20, 17, 3)
    losses = LossAggregator(cfg["loss_cfg"])
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    first, _ = losses(model(([x], labels, None, None, None))["training_feat"])
    opt.zero_grad()
    first.backward()
    opt.step()  # one small gradient step on a fixed batch must lower the loss
    after, _ = losses(model(([x], labels, None, None, None))["training_feat"])
    assert after.item() < first.item()


@pytest.mark.slow
def test_example_trains_and_tests_through_the_cli(tmp_path):
    over = [
        f"custom_imports=['{REPO / 'examples' / 'custom_model' / 'tiny_gcn.py'}']",
        f"data_cfg.dataset_root={tmp_path / 'data'}",
        f"data_cfg.dataset_partition={tmp_path / 'partition.json'}",
        "data_cfg.synthetic.num_subjects=6",
        "data_cfg.synthetic.views=['000', '090']",
        "data_cfg.synthetic.frames=[20, 36]",
        "data_cfg.num_workers=0",
        "trainer_cfg.total_iter=4", "trainer_cfg.save_iter=4", "trainer_cfg.log_iter=2",
        "trainer_cfg.sampler.batch_size=[2, 4]", "evaluator_cfg.restore_hint=4",
    ]
    proc = run_cli(["--cfgs", str(EXAMPLE_CFG), "--phase", "train", *over], tmp_path)
    assert "triplet_hard_loss=" in proc.stderr or "triplet_loss=" in proc.stderr
    assert "center_loss=" in proc.stderr
    out = tmp_path / "output" / "Synthetic-CASIA-B" / "TinyGCN" / "TinyGCN"
    assert (out / "checkpoints" / "TinyGCN-00004.pt").is_file()
    run_cli(["--cfgs", str(EXAMPLE_CFG), "--phase", "test", *over], tmp_path)
    report = json.loads((out / "checkpoints" / "TinyGCN-00004-test.json").read_text())
    assert report["num_sequences"] == 2 * 10 * 2  # 2 test subjects x 10 types x 2 views
    assert set(report["results"]) >= {"scalar/test_accuracy/NM@R1", "scalar/test_accuracy/CL@R1"}
