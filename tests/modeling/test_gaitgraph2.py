"""GaitGraph2: parameter counts (docs/models.md, GaitGraph2), shapes, TTA, init. The generic checks (building
from the config alone, determinism, batch independence, one optimisation step, gradients,
state dict) are in test_model_contract.py."""
import numpy as np
import pytest
import torch

from fastposegait.data.transforms import build_transform
from fastposegait.modeling import build_model, count_parameters

CASIA_B = {"model": "GaitGraph2", "joint_format": "coco", "input_num": 3, "reduction": 8, "block": "Bottleneck",
           "input_branch": [5, 64, 32], "main_stream": [32, 128, 256], "num_class": 128, "tta": True}
WIDE = dict(CASIA_B, reduction=4, input_branch=[5, 64, 64, 32], main_stream=[32, 128, 128, 128, 256, 256, 256])


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_match_reference():
    model = build_model(CASIA_B)
    assert count_parameters(model) == 350_822
    bb = model.ResGCN  # upstream's names: head = input branches, backbone = main stream
    assert [n_params(b) for b in bb.head] == [43_882] * 3
    assert [n_params(b.bn) for b in bb.head] == [10] * 3
    assert [n_params(m) for m in bb.head[0].layers] == [39_492, 4_380]
    assert [n_params(m) for m in bb.backbone] == [42_340, 143_940]
    assert n_params(bb.fcn) == 32_896
    assert count_parameters(build_model(WIDE)) == 763_178
    assert count_parameters(build_model(dict(WIDE, joint_format="alphapose"))) == 765_278




def test_unknown_model_key_is_a_clear_error():
    from fastposegait.config import ConfigError

    with pytest.raises(ConfigError, match="unknown key\\(s\\) num_classes for model GaitGraph2; accepted keys: joint_format"):
        build_model(dict(CASIA_B, num_classes=3))


def test_initialisation():
    model = build_model(CASIA_B)
    for name, m in model.named_modules():
        if name.endswith("bn_up"):
            assert (m.weight == 0).all(), name
        elif isinstance(m, torch.nn.Conv2d):
            assert (m.bias == 0).all()
            bound = (6 / (m.weight[0].numel() + m.weight.shape[0] * m.weight[0, 0].numel())) ** 0.5
            assert m.weight.abs().max() <= bound + 1e-6
    assert model.ResGCN.fcn.weight.std().item() == pytest.approx(0.001, rel=0.1)


def batch(n=4, t=60, seed=0):
    rng = np.random.default_rng(seed)
    raw = rng.normal(size=(n, t, 17, 3)) * [20, 40, 0.2] + [100, 200, 0.8]
    feat = build_transform({"type": "GaitGraph_MultiInput", "joint_format": "coco"})
    x = torch.from_numpy(np.stack([feat(r) for r in raw])).float()
    return raw, x


def test_shapes_train_and_eval():
    model = build_model(CASIA_B)
    _, x = batch()
    labels = torch.tensor([0, 0, 1, 1])
    out = model(([x], labels, None, None, None))
    assert out["training_feat"]["SupConLoss"]["features"].shape == (4, 128)
    assert out["training_feat"]["SupConLoss"]["labels"] is labels
    assert out["inference_feat"]["embeddings"].shape == (4, 128, 1)
    assert out["visual_summary"]["image/pose"].shape == (4, 60, 17, 3)
    model.eval()
    with torch.no_grad():
        assert model(([x], labels, None, None, None))["inference_feat"]["embeddings"].shape == (4, 384, 1)
        model.tta = False
        assert model(([x], labels, None, None, None))["inference_feat"]["embeddings"].shape == (4, 128, 1)


def test_tta_equals_reversed_and_flipped_inputs_built_per_sample():
    torch.manual_seed(0)
    model = build_model(CASIA_B).eval()
    raw, x = batch(3, 20, seed=1)
    feat = build_transform({"type": "GaitGraph_MultiInput", "joint_format": "coco"})
    flip = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
    # the model works from the float32 input, as the per-sample reference must
    raw32 = x[..., 0, :3].double().numpy()
    rev = torch.from_numpy(np.stack([feat(r[::-1].copy()) for r in raw32])).float()
    flp = torch.from_numpy(np.stack([feat(r[:, flip]) for r in raw32])).float()
    with torch.no_grad():
        emb = model(([x], torch.zeros(3), None, None, None))["inference_feat"]["embeddings"][..., 0]
        expected = torch.cat([model.embed(x), model.embed(rev), model.embed(flp)], dim=1)
    assert torch.allclose(emb, expected, atol=1e-5)
