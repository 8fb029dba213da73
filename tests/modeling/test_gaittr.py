"""GaitTR: per-block parameter counts (docs/models.md, GaitTR), layer math against hand-written
references, shapes, packed-sequence handling, errors. The generic checks (determinism, batch
independence, one optimisation step, gradients, state dict) are in test_model_contract.py."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fastposegait.config import ConfigError, load_config
from fastposegait.data.transforms import build_transform
from fastposegait.engine.inference import embed_batch
from fastposegait.modeling import build_model, count_parameters
from fastposegait.modeling.layers.gaittr_layers import (Mish, SpatialSelfAttention, SpatialTransformer,
                                                        TCNSTBlock, TemporalUnit)

CASIA_B = {"model": "GaitTR", "in_channels": [10, 64, 64, 128, 256], "num_class": 128, "joint_format": "coco"}


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def features(n=4, t=60, v=17, seed=0, fmt="coco"):
    """``[N, 10, T, V, 1]`` batch built with the real transforms (GaitTR_MultiInput + SkeletonInput)."""
    rng = np.random.default_rng(seed)
    raw = rng.normal(size=(n, t, v, 3)) * [20, 40, 0.2] + [100, 200, 0.8]
    chain = build_transform({"type": "Compose", "trf_cfg": [{"type": "GaitTR_MultiInput", "joint_format": fmt},
                                                             {"type": "SkeletonInput"}]})
    return torch.from_numpy(np.stack([chain(r) for r in raw])).float()


def run(model, x, labels=None, seq_lengths=None):
    return model(([x], labels, None, None, seq_lengths))


def test_parameter_counts_match_reference_per_block():
    model = build_model(CASIA_B)
    assert count_parameters(model) == 512_010
    assert [n_params(b) for b in model.backbone] == [8_278, 49_760, 85_632, 335_104]
    assert n_params(model.data_bn) == 340
    assert n_params(model.fcn) == 32_896
    # inside the first block (10 -> 64): tcn 10*10*9+10 + BN 20; st: data BN 340, qkv 10*96+96,
    # projection 64*64+64, BN 128; residual_s 10*64+64 + 128; down 10*64+64 + 128
    first = model.backbone[0]
    assert n_params(first.tcn) == 930
    assert n_params(first.st) == 340 + 1_056 + 4_160 + 128
    assert n_params(first.residual_s) == n_params(first.down) == 832


@pytest.mark.parametrize("widths,num_class,fmt,expected", [
    ([10, 64, 64, 128, 256], 256, "coco", 544_906),
    ([10, 64, 64, 128, 256], 256, "alphapose", 545_458),
    ([10, 64, 64, 128, 128, 128, 128, 256], 256, "alphapose", 1_127_410),
    ([10, 64, 64, 128, 128, 128, 128, 128, 256], 256, "coco", 1_319_818),
])
def test_other_dataset_variants(widths, num_class, fmt, expected):
    model = build_model({"model": "GaitTR", "in_channels": widths, "num_class": num_class, "joint_format": fmt})
    assert count_parameters(model) == expected
    assert len(model.backbone) == len(widths) - 1


def test_casia_b_config_builds_the_reference_model():
    cfg = load_config("configs/gaittr/gaittr.yaml")
    assert cfg["model_cfg"] == CASIA_B
    loss = cfg["loss_cfg"][0]
    assert (loss["type"], loss["log_prefix"], loss["margin"], loss["is_hard_loss"]) == ("TripletLoss", "triplet", 0.3, True)
    assert count_parameters(build_model(cfg["model_cfg"])) == 512_010


def test_mish_is_x_tanh_softplus():
    x = torch.linspace(-6, 6, 101)
    assert torch.allclose(Mish()(x), x * torch.tanh(torch.log1p(torch.exp(x))), atol=1e-6)


def test_temporal_unit_math_and_construction_init():
    torch.manual_seed(0)
    unit = TemporalUnit(4, 6).eval()
    # construction-time init: N(0, sqrt(2 / (out * 9))), zero bias (then overwritten inside a model)
    big = TemporalUnit(64, 64)
    assert big.conv.weight.std().item() == pytest.approx(math.sqrt(2 / (64 * 9)), rel=0.05)
    assert (big.conv.bias == 0).all()
    x = torch.randn(2, 4, 11, 5)
    with torch.no_grad():
        unit.bn.running_mean.uniform_(-1, 1)
        unit.bn.running_var.uniform_(0.5, 2)
        y = unit(x)
        conv = F.conv2d(x, unit.conv.weight, unit.conv.bias, padding=(4, 0))  # 9-frame window, same length
        act = conv * torch.tanh(F.softplus(conv))  # Mish after the conv, BN last
        ref = (act - unit.bn.running_mean[:, None, None]) / torch.sqrt(unit.bn.running_var[:, None, None] + 1e-5)
    assert y.shape == (2, 6, 11, 5)
    assert torch.allclose(y, ref, atol=1e-5)
    assert unit.drop.p == 0.1
    assert TemporalUnit(4, 6, kernel_size=1, dropout=0.0).conv.kernel_size == (1, 1)


def attention_reference(layer, x):
    """Per frame and per head with explicit loops: softmax over key joints of q.k, q scaled
    by (dk / heads) ** -0.5, weighted sum of values, heads concatenated, then the projection."""
    B, _, _, V = x.shape
    qkv = F.conv2d(x, layer.qkv_conv.weight, layer.qkv_conv.bias)[:, :, 0]  # [B, 2dk+dv, V]
    dk, dv, h = layer.dk, layer.dv, layer.heads
    q, k, v = qkv[:, :dk], qkv[:, dk:2 * dk], qkv[:, 2 * dk:]
    out = torch.zeros(B, dv, V)
    for b in range(B):
        for head in range(h):
            qs = q[b, head * dk // h:(head + 1) * dk // h] * (dk / h) ** -0.5
            ks = k[b, head * dk // h:(head + 1) * dk // h]
            vs = v[b, head * dv // h:(head + 1) * dv // h]
            for i in range(V):
                weights = torch.softmax(torch.stack([qs[:, i] @ ks[:, j] for j in range(V)]), 0)
                out[b, head * dv // h:(head + 1) * dv // h, i] = sum(weights[j] * vs[:, j] for j in range(V))
    return F.conv2d(out[:, :, None], layer.attn_out.weight, layer.attn_out.bias)


def test_spatial_attention_matches_loop_reference():
    torch.manual_seed(1)
    layer = SpatialSelfAttention(6, dk=16, dv=24, heads=8)
    x = torch.randn(3, 6, 1, 5)
    with torch.no_grad():
        assert torch.allclose(layer(x), attention_reference(layer, x), atol=1e-5)


def test_spatial_transformer_treats_frames_independently_and_normalises_per_joint_channel():
    torch.manual_seed(2)
    st = SpatialTransformer(6, 32, num_joints=5).eval()
    with torch.no_grad():
        st.data_bn.running_mean.uniform_(-1, 1)
        st.data_bn.running_var.uniform_(0.5, 2)
        x = torch.randn(2, 6, 4, 5)
        y = st(x)
        # data BN channel index = c * V + v
        mean = st.data_bn.running_mean.view(6, 5)[None, :, None, :]
        var = st.data_bn.running_var.view(6, 5)[None, :, None, :]
        normed = (x - mean) / torch.sqrt(var + 1e-5)
        for t in range(4):
            frame = st.attention_conv(normed[:, :, t:t + 1])
            ref = st.bn(F.mish(frame))
            assert torch.allclose(y[:, :, t:t + 1], ref, atol=1e-5)
    assert y.shape == (2, 32, 4, 5)


def test_block_residual_wiring():
    torch.manual_seed(3)
    for in_c, out_c in ((32, 32), (16, 32)):
        block = TCNSTBlock(in_c, out_c, num_joints=5).eval()
        x = torch.randn(2, in_c, 6, 5)
        with torch.no_grad():
            x0 = block.tcn(x) + x
            expected = block.st(x0) + (x0 if in_c == out_c else block.residual_s(x0))
            expected = expected + (x if in_c == out_c else block.down(x))
            assert torch.allclose(block(x), expected, atol=1e-5)
    assert isinstance(TCNSTBlock(32, 32, 5).residual_s, torch.nn.Identity)
    down = TCNSTBlock(16, 32, 5).down
    assert down.conv.kernel_size == (1, 1) and down.drop.p == 0.0


def test_shapes_train_and_eval_and_summary():
    torch.manual_seed(0)
    model = build_model(CASIA_B)
    x = features(4, 60)
    labels = torch.tensor([0, 0, 1, 1])
    out = run(model, x, labels)
    assert out["training_feat"]["triplet"]["embeddings"].shape == (4, 128, 1)
    assert out["training_feat"]["triplet"]["labels"] is labels
    assert out["inference_feat"]["embeddings"].shape == (4, 128, 1)
    assert torch.equal(out["visual_summary"]["image/pose"][2, 5], x[2, :2, 5, :, 0].t())  # x, y of frame 5
    model.eval()
    with torch.no_grad():
        assert run(model, x)["inference_feat"]["embeddings"].shape == (4, 128, 1)


def test_head_pools_joints_persons_and_frames_then_projects():
    torch.manual_seed(0)
    model = build_model(CASIA_B).eval()
    x = features(2, 20, seed=4)
    with torch.no_grad():
        N, C, T, V, M = x.shape
        h = model.data_bn(x.permute(0, 4, 3, 1, 2).reshape(N, M * V * C, T))  # (M, V, C) channel order
        h = h.reshape(N, M, V, C, T).permute(0, 1, 3, 4, 2).reshape(N * M, C, T, V)
        for block in model.backbone:
            h = block(h)
        pooled = h.mean(dim=(2, 3))
        expected = pooled @ model.fcn.weight[:, :, 0].t() + model.fcn.bias
        assert torch.allclose(run(model, x)["inference_feat"]["embeddings"][..., 0], expected, rtol=1e-5, atol=1e-3)


def test_data_bn_channel_order_is_person_joint_channel():
    model = build_model(CASIA_B).eval()
    x = features(1, 12, seed=5)
    with torch.no_grad():
        model.data_bn.running_mean.zero_()
        model.data_bn.running_mean[3 * 10 + 4] = 1000.0  # joint 3, channel 4
        shifted = x.clone()
        shifted[:, 4, :, 3] += 1000.0
        model.data_bn.running_var.fill_(1.0)
        a = model.embed(shifted)
        model.data_bn.running_mean.zero_()
        b = model.embed(x)
        assert torch.allclose(a, b, atol=1e-3)
        assert not torch.allclose(model.embed(shifted), b, atol=1e-3)


def _randomise_batchnorm(model, seed):
    """Non-trivial BatchNorm statistics and affine terms, so that padded frames would leak
    into the result unless they are masked (fresh BN maps zeros to zeros)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g))
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g))


def test_packed_test_batch_equals_each_sequence_alone():
    """A packed batch (seqL) is embedded per walk, in one padded and masked call (upstream
    merged the walks into one feature)."""
    torch.manual_seed(0)
    model = build_model(CASIA_B).eval().double()  # float64: equality up to rounding is tight
    _randomise_batchnorm(model, 3)
    assert model.accepts_packed_sequences is True
    a, b, c = (features(1, t, seed=s).double() for t, s in ((25, 6), (40, 7), (9, 8)))
    packed = torch.cat([a, b, c], dim=2)
    inputs = ([packed], torch.tensor([0, 1, 2]), ["nm-01", "nm-02", "bg-01"], ["000", "018", "036"],
              torch.tensor([[25, 40, 9]], dtype=torch.int32))
    with torch.no_grad():
        emb = embed_batch(model, inputs, time_axes=[1])
        expected = torch.cat([run(model, s)["inference_feat"]["embeddings"] for s in (a, b, c)])
        merged = run(model, packed)["inference_feat"]["embeddings"]
    assert emb.shape == (3, 128, 1)
    assert torch.allclose(emb, expected, atol=1e-9, rtol=1e-9)
    assert not torch.allclose(emb[0], merged[0], atol=1e-4)
    # without the frame mask the padded frames change the shorter walks' embeddings
    with torch.no_grad():
        x = torch.nn.utils.rnn.pad_sequence([s[0].transpose(0, 1) for s in (a, b, c)], batch_first=True)
        unmasked = model.embed(x.transpose(1, 2))
    assert not torch.allclose(unmasked[2], expected[2, :, 0], atol=1e-3)


def test_packed_training_batch_runs_each_walk_alone():
    torch.manual_seed(0)
    model = build_model(CASIA_B).train()
    a, b = features(1, 20, seed=9), features(1, 30, seed=10)
    packed = torch.cat([a, b], dim=2)
    out = model(([packed], torch.tensor([0, 1]), None, None, torch.tensor([[20, 30]])))
    emb = out["training_feat"]["triplet"]["embeddings"]
    assert emb.shape == (2, 128, 1)
    torch.manual_seed(0)
    twin = build_model(CASIA_B).train()
    alone = twin(([b], torch.tensor([1]), None, None, None))["training_feat"]["triplet"]["embeddings"]
    assert torch.allclose(emb[1], alone[0], atol=1e-5)  # batch statistics of walk b alone






def test_buffers_and_dtype_follow_the_module():
    model = build_model(CASIA_B)
    assert model.A.shape == (4, 17, 17)  # max_hop 3
    assert "A" not in model.state_dict()
    model.double()
    assert model.A.dtype == torch.float64
    with torch.no_grad():
        assert run(model.eval(), features(1, 10).double())["inference_feat"]["embeddings"].dtype == torch.float64


def test_bad_config_and_inputs_are_clear_errors():
    with pytest.raises(ConfigError, match="unknown key\\(s\\) in_channel for model GaitTR"):
        build_model({"model": "GaitTR", "in_channel": [10, 64]})
    with pytest.raises(ConfigError, match="model_cfg.in_channels of GaitTR must be a list"):
        build_model(dict(CASIA_B, in_channels=[10]))
    with pytest.raises(ConfigError, match="block width 60 does not split into 8 attention heads"):
        build_model(dict(CASIA_B, in_channels=[10, 60]))
    with pytest.raises(ConfigError, match="model_cfg.num_class of GaitTR"):
        build_model(dict(CASIA_B, num_class=0))
    model = build_model(CASIA_B)
    with pytest.raises(ValueError, match=r"built for C=10 channels .* V=17 joints"):
        run(model, features(1, 10, v=18, fmt="openpose"))
    with pytest.raises(ValueError, match=r"expects a batch \[N, C, T, V, M\]"):
        run(model, features(1, 10)[..., 0])
