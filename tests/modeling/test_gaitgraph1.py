"""GaitGraph1: parameter counts (docs/models.md, GaitGraph1), two-view training output, reversal TTA,
config errors. The generic checks (determinism, batch independence, one optimisation step,
gradients, state dict) are in test_model_contract.py."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fastposegait.config import ConfigError, load_config
from fastposegait.data.transforms import build_transform
from fastposegait.engine.runner import set_batchnorm_eval
from fastposegait.modeling import build_model, count_parameters

CASIA_B = {"model": "GaitGraph1", "joint_format": "coco", "input_num": 1, "reduction": 8, "block": "Bottleneck",
           "input_branch": [3, 64, 64, 32], "main_stream": [32, 128, 128, 256, 256], "num_class": 128, "tta": True}


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def poses(n=4, t=60, v=17, seed=0):
    """Raw pose batch ``[N, 3, T, V, 1]`` as SkeletonInput produces it (pixel x, y, confidence)."""
    rng = np.random.default_rng(seed)
    raw = rng.normal(size=(n, t, v, 3)) * [20, 40, 0.2] + [100, 200, 0.8]
    skeleton = build_transform({"type": "SkeletonInput"})
    return torch.from_numpy(np.stack([skeleton(r) for r in raw])).float()


def run(model, x, labels=None):
    return model(([x], labels, None, None, None))


def test_parameter_counts_match_reference_per_submodule():
    model = build_model(CASIA_B)
    assert count_parameters(model) == 319_530
    bb = model.ResGCN  # upstream's names: head = input branches, backbone = main stream
    assert len(bb.head) == 1
    branch = bb.head[0]
    assert n_params(branch) == 47_962
    assert n_params(branch.bn) == 6
    assert [n_params(m) for m in branch.layers] == [39_108, 4_468, 4_380]
    assert [n_params(m) for m in bb.backbone] == [33_124, 13_412, 143_940, 48_196]
    assert n_params(bb.fcn) == 32_896
    # every module carries its learnable edge importance 4 x V x V
    assert all(m.edge.shape == (4, 17, 17) for m in [*branch.layers, *bb.backbone])


def test_casia_b_config_builds_the_reference_model():
    cfg = load_config("configs/gaitgraph1/gaitgraph1_phase1.yaml")
    assert cfg["model_cfg"] == CASIA_B
    assert cfg["loss_cfg"][0]["type"] == "SupConLoss_Re" and cfg["loss_cfg"][0]["log_prefix"] == "SupConLoss"
    assert cfg["data_cfg"]["frame_threshold"] == 60
    assert count_parameters(build_model(cfg["model_cfg"])) == 319_530


def test_initialisation_zeroes_bottleneck_last_bn():
    model = build_model(CASIA_B)
    bn_up = [m for name, m in model.named_modules() if name.endswith("bn_up")]
    assert len(bn_up) == 2 * 6  # spatial + temporal of the 2 Bottleneck branch modules and 4 main-stream ones
    assert all((m.weight == 0).all() for m in bn_up)
    assert model.ResGCN.fcn.weight.std().item() == pytest.approx(0.001, rel=0.1)
    assert (model.ResGCN.fcn.bias == 0).all()


def test_train_output_is_two_normalised_views_of_each_time_half():
    torch.manual_seed(0)
    model = build_model(CASIA_B)
    set_batchnorm_eval(model)  # batch-independent BN, so halves can be embedded separately
    x = poses(4, 120)  # TwoView: two 60-frame views stacked on time
    labels = torch.tensor([0, 0, 1, 1])
    out = run(model, x, labels)
    feats = out["training_feat"]["SupConLoss"]["features"]
    assert feats.shape == (4, 2, 128)
    assert out["training_feat"]["SupConLoss"]["labels"] is labels
    assert torch.allclose(feats.norm(dim=-1), torch.ones(4, 2), atol=1e-5)
    assert out["inference_feat"]["embeddings"].shape == (4, 128, 1)
    assert out["visual_summary"]["image/pose"].shape == (4, 120, 17, 3)
    assert torch.equal(out["visual_summary"]["image/pose"][1, 7], x[1, :, 7, :, 0].t())  # [V, C] of frame 7
    with torch.no_grad():
        first = F.normalize(model.ResGCN(x[:, :, :60].permute(0, 4, 1, 2, 3)), dim=1)
        second = F.normalize(model.ResGCN(x[:, :, 60:].permute(0, 4, 1, 2, 3)), dim=1)
    assert torch.allclose(feats[:, 0], first, atol=1e-5)
    assert torch.allclose(feats[:, 1], second, atol=1e-5)


def test_eval_shapes_and_tta_is_mean_of_sequence_and_reversal():
    torch.manual_seed(0)
    model = build_model(CASIA_B).eval()
    x = poses(4, 60, seed=1)
    with torch.no_grad():
        emb = run(model, x)["inference_feat"]["embeddings"]
        forward = model.embed(x.permute(0, 2, 3, 4, 1))
        backward = model.embed(x.flip(2).permute(0, 2, 3, 4, 1))
        # reference: embed each sequence on its own, reversal built with numpy
        reversed_np = torch.from_numpy(np.ascontiguousarray(x.numpy()[:, :, ::-1]))
        single = torch.stack([
            (F.normalize(model.ResGCN(x[i:i + 1].permute(0, 4, 1, 2, 3)), dim=1)
             + F.normalize(model.ResGCN(reversed_np[i:i + 1].permute(0, 4, 1, 2, 3)), dim=1))[0] / 2
            for i in range(4)])
    assert emb.shape == (4, 128, 1)
    assert torch.allclose(emb[..., 0], (forward + backward) / 2, atol=1e-6)
    assert torch.allclose(emb[..., 0], single, atol=1e-5)
    assert not torch.allclose(forward, backward, atol=1e-3)  # the reversal is a different input
    model.tta = False
    with torch.no_grad():
        plain = run(model, x)["inference_feat"]["embeddings"]
    assert plain.shape == (4, 128, 1)
    assert torch.allclose(plain[..., 0], forward, atol=1e-6)






def test_openpose_layout_and_wider_embedding():
    model = build_model(dict(CASIA_B, joint_format="alphapose", num_class=256)).eval()
    assert count_parameters(model) == 353_406
    with torch.no_grad():
        assert run(model, poses(2, 30, v=18))["inference_feat"]["embeddings"].shape == (2, 256, 1)


def test_bad_config_and_inputs_are_clear_errors():
    with pytest.raises(ConfigError, match="unknown key\\(s\\) num_classes for model GaitGraph1"):
        build_model(dict(CASIA_B, num_classes=3))
    with pytest.raises(ConfigError, match="model_cfg.block of GaitGraph1"):
        build_model(dict(CASIA_B, block="Bottle"))
    with pytest.raises(ConfigError, match="model_cfg.main_stream of GaitGraph1"):
        build_model(dict(CASIA_B, main_stream=[32]))
    model = build_model(CASIA_B)
    with pytest.raises(ValueError, match="T must be even; got T=59"):
        run(model, poses(2, 59))
    with pytest.raises(ValueError, match="input channels .* C=2"):
        run(model, poses(2, 60)[:, :2])
    with pytest.raises(ValueError, match=r"expects a batch \[N, C, T, V, M\]"):
        run(model, poses(2, 60)[..., 0])


def test_buffers_follow_the_module():
    model = build_model(CASIA_B)
    names = dict(model.named_buffers())
    assert "ResGCN.A" in names and names["ResGCN.A"].shape == (4, 17, 17)
    assert "ResGCN.A" not in model.state_dict()  # the main stream's copy: a constant, rebuilt from the config
    # the input branch saves its copy, as upstream's checkpoints do
    assert torch.equal(model.state_dict()["ResGCN.head.0.A"], names["ResGCN.A"])
    model.double()
    assert model.ResGCN.A.dtype == torch.float64 and model.ResGCN.head[0].A.dtype == torch.float64
