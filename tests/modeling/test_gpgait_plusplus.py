"""GPGait++ (fastposegait/modeling/models/gpgait_plusplus.py, layers/pagcn_plus.py).

References used here, all independent of the code under test:

* the original's state-dict listing (keys in order, shapes, parameter counts) for each of its
  six configs, measured by building the original code: tests/fixtures/upstream_model_keys.json.gz (its GPGait++ entries);
* per-block parameter counts measured on the original, and the closed-form count;
* a fixed-weight numeric fingerprint measured on the original (float64, eval mode): every
  parameter filled from an integer formula, a deterministic input, values printed to 6 decimals;
* a per-frame loop implementation of the graph convolution written from its description;
* for packed test batches: each walk run on its own.
"""
from __future__ import annotations

import gzip
import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fastposegait.config import load_config
from fastposegait.data.batch import Batch
from fastposegait.data.skeleton import get_joint_format
from fastposegait.engine.inference import embed_batch
from fastposegait.errors import ConfigError
from fastposegait.modeling import build_model, count_parameters
from fastposegait.modeling.graph import hop_distance, spatial_adjacency
from fastposegait.modeling.layers import pagcn_plus
from fastposegait.modeling.layers.pagcn import PARTITIONS
from fastposegait.modeling.layers.pagcn_plus import PAGCN_Plus, Part_AGCN_TCN, block_widths

REPO = Path(__file__).resolve().parents[2]
LISTING = REPO / "tests" / "fixtures" / "upstream_model_keys.json.gz"
CONFIGS = {  # config -> the original's parameter count
    "gpgait++/gpgait++.yaml": 5_227_539,
    "gpgait++/gpgait++_CCPG.yaml": 5_354_003,
    "gpgait++/gpgait++_GREW.yaml": 108_777_035,
    "gpgait++/gpgait++_Gait3D.yaml": 20_532_043,
    "gpgait++/gpgait++_OUMVLP.yaml": 36_561_227,
    "gpgait++/gpgait++_SUSTech1K.yaml": 6_083_603,
}
BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
CASIA_B_CFG = {"model": "GPGait_PlusPlus", "in_channels": [2, 64, 64, 128, 256], "num_class": 74, "share_num": 3}
TINY_CFG = {"model": "GPGait_PlusPlus", "in_channels": [2, 8, 8, 8, 16], "num_class": 6, "share_num": 3}


@lru_cache(maxsize=None)
def listing() -> Dict[str, dict]:
    """The GPGait++ entries, each state dict as ``[[key, shape], ...]`` in the original's order."""
    with gzip.open(LISTING, "rt") as f:
        configs = json.load(f)["configs"]
    return {name: dict(entry, state_dict=[[k, v] for k, v in entry["state_dict"].items()])
            for name, entry in configs.items() if name.startswith("gpgait++/")}


@lru_cache(maxsize=None)
def model_cfg(path: str) -> Dict:
    return load_config(REPO / "configs" / path)["model_cfg"]


# ------------------------------------------------------------------------------------------
# Parameter counts and state-dict keys


@pytest.mark.parametrize("path", sorted(CONFIGS))
def test_configs_build_the_original_state_dict(path):
    reference = listing()[path]
    model = build_model(model_cfg(path))
    assert count_parameters(model) == CONFIGS[path] == reference["params"]
    ours = [[key, list(value.shape)] for key, value in model.state_dict().items()]
    assert ours == reference["state_dict"]  # names, order and shapes


def test_listing_sizes():
    assert {k: len(v["state_dict"]) for k, v in listing().items()} == {
        "gpgait++/gpgait++.yaml": 1010, "gpgait++/gpgait++_CCPG.yaml": 1010, "gpgait++/gpgait++_SUSTech1K.yaml": 1010,
        "gpgait++/gpgait++_Gait3D.yaml": 1530, "gpgait++/gpgait++_OUMVLP.yaml": 2570, "gpgait++/gpgait++_GREW.yaml": 2570,
    }


def test_branch_and_head_counts_of_the_casia_b_config():
    model = build_model(CASIA_B_CFG)

    def count(module: nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    assert (count(model.pose), count(model.bone), count(model.angle)) == (1_420_867, 1_420_867, 770_957)
    assert (count(model.head), count(model.BNNecks)) == (19 * 256 * 256, 19 * 256 * 74 + 2 * 4864)
    assert count(model.pose.data_bn) == 68 and count(model.angle.data_bn) == 24
    assert [count(b) for b in model.pose.layer_share] == [15_773, 27_987, 82_051]
    assert [count(getattr(model.pose, p)) for p in ("backbone", "part_2", "part_2_2", "part_3_1")] == [323_747] * 4
    assert [count(b) for b in model.angle.layer_share] == [15_141, 27_552, 81_616]
    assert [count(getattr(model.angle, p)) for p in ("backbone", "part_2")] == [323_312] * 2
    assert not hasattr(model.angle, "part_2_2")


def block_formula(c_in: int, c_out: int, v: int) -> int:
    a = c_out // 2
    i = a // 4
    r, t, s = c_out - a, c_out // 3 + 1, c_out // 3
    d = c_out - s - t
    return (3 * v * v + 3 * (2 * (c_in * i + i) + c_in * a + a) + 2 * a + (9 * c_out * t + 3 * t)
            + (c_in * r + 3 * r) + (c_out * s + 3 * s) + (c_in * d + 3 * d))


@pytest.mark.parametrize("c_in, c_out, coco, no_head", [
    (2, 64, 15_773, None), (1, 64, None, 15_141), (64, 64, 27_987, 27_552), (64, 128, 82_051, 81_616),
    (128, 128, 107_331, 106_896), (128, 256, 323_747, 323_312), (256, 256, 424_739, 424_304),
])
def test_block_parameter_counts(c_in, c_out, coco, no_head):
    for fmt, expected in (("coco", coco), ("coco-no-head", no_head)):
        if expected is None:
            continue
        block = Part_AGCN_TCN(c_in, c_out, fmt)
        v = get_joint_format(fmt).num_joints
        assert sum(p.numel() for p in block.parameters()) == expected == block_formula(c_in, c_out, v)


@pytest.mark.parametrize("c_out, split", [
    (64, dict(asg=32, residual=32, tcn=22, residual_s=21, down=21)),
    (128, dict(asg=64, residual=64, tcn=43, residual_s=42, down=43)),
    (256, dict(asg=128, residual=128, tcn=86, residual_s=85, down=85)),
])
def test_block_channel_split(c_out, split):
    assert block_widths(c_out) == split
    block = Part_AGCN_TCN(64, c_out, "coco")
    assert block.asg.inter == split["asg"] // 4
    assert block.tcn.conv.weight.shape == (split["tcn"], c_out, 9, 1)
    assert block.residual_s[0].weight.shape == (split["residual_s"], c_out, 1, 1)
    assert block.down.conv.weight.shape == (split["down"], 64, 1, 1)
    y = block.eval()(torch.randn(2, 64, 5, 17), spatial_adjacency("coco"), 1)
    assert y.shape == (2, c_out, 5, 17)


def test_share_num_other_than_3_is_ignored_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        four = build_model(model_cfg("gpgait++/gpgait++_OUMVLP.yaml"))
    assert model_cfg("gpgait++/gpgait++_OUMVLP.yaml")["share_num"] == 4
    assert len(four.pose.layer_share) == 3 and len(four.pose.backbone) == 4
    assert any("share_num is 4" in r.getMessage() and "using 3" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        build_model(CASIA_B_CFG)
    assert not [r for r in caplog.records if "share_num" in r.getMessage()]


def test_four_widths_give_empty_paths_that_pool_the_shared_output():
    model = build_model({**TINY_CFG, "in_channels": [2, 8, 8, 16]}).eval()
    assert len(model.pose.backbone) == 0 and len(model.pose.layer_share) == 3
    with torch.no_grad():
        out = model(([torch.randn(2, 6, 7, 17, 1)], None, None, None, None))
    assert out["inference_feat"]["embeddings"].shape == (2, 16, 19)


@pytest.mark.parametrize("change, message", [
    ({"in_channels": [2, 64, 64]}, "model_cfg.in_channels must be a list of at least 4 positive integers"),
    ({"in_channels": [2, 64, 4, 128]}, "every block width (entries after the first) must be at least 8"),
    ({"num_class": 0}, "model_cfg.num_class must be a positive integer"),
    ({"mask": "yes"}, "model_cfg.mask: must be true or false"),
    ({"share": 3}, "unknown key(s) share for model GPGaitPlusPlus"),
])
def test_bad_model_cfg_is_one_config_error(change, message):
    with pytest.raises(ConfigError) as info:
        build_model({**TINY_CFG, **change})
    assert message in str(info.value)


# ------------------------------------------------------------------------------------------
# Initialisation


def test_initialisation():
    torch.manual_seed(0)
    model = build_model(CASIA_B_CFG)
    pas = [p for name, p in model.named_parameters() if name.endswith(".PA")]
    assert len(pas) == 19  # 7 + 7 + 5 blocks
    assert all(torch.all(p == 1e-6) for p in pas)
    # independent tensors: no two PA share memory, and changing one leaves the others alone
    assert len({p.data_ptr() for p in pas}) == 19
    with torch.no_grad():
        pas[0].add_(1.0)
    assert all(torch.all(p == 1e-6) for p in pas[1:])
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.weight.shape[1] * m.weight[0, 0].numel()
            fan_out = m.weight.shape[0] * m.weight[0, 0].numel()
            bound = (6.0 / (fan_in + fan_out)) ** 0.5  # Xavier, also for the temporal convs
            assert m.weight.abs().max() <= bound, name
            assert torch.all(m.bias == 0), name
        elif isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0), name
    # the temporal convs were re-drawn by the Xavier pass: their spread is Xavier's, not the
    # construction-time normal(0, sqrt(2 / (out * 9))) (std 0.1 for 22 output channels)
    tcn = model.pose.layer_share[0].tcn.conv.weight
    assert tcn.std().item() == pytest.approx((2.0 / (64 * 9 + 22 * 9)) ** 0.5, rel=0.1)


def test_adjacency_and_masks_are_not_in_the_state_dict():
    keys = build_model(TINY_CFG).state_dict()
    assert not [k for k in keys if k.endswith(".A") or "mask" in k or "pools" in k]


# ------------------------------------------------------------------------------------------
# Layer maths against a per-frame loop


def reference_pagcn_plus(layer: PAGCN_Plus, x: torch.Tensor, A: torch.Tensor, part: Optional[int]) -> torch.Tensor:
    """The graph convolution computed frame by frame, subset by subset, from its description."""
    n, c, t, v = x.shape
    graph = A + layer.PA
    y = 0
    for i in range(3):
        q, k = layer.conv_a[i](x), layer.conv_b[i](x)
        z = torch.zeros(n, c, t, v, dtype=x.dtype)
        for b in range(n):
            for f in range(t):
                scores = q[b, :, f].t() @ k[b, :, f] / layer.inter  # [V, V]
                att = torch.softmax(scores, dim=0)  # each column sums to 1
                a1 = att + graph[i]
                if part:
                    a1 = a1 * mask_of(part, v)
                z[b, :, f] = x[b, :, f] @ a1
        y = y + layer.conv_d[i](z)
    y = layer.bn(y)
    return y * torch.tanh(F.softplus(y))


def mask_of(part: int, v: int) -> torch.Tensor:
    partition = PARTITIONS["coco" if v == 17 else "coco-no-head"][part]
    m = torch.zeros(v, v, dtype=torch.float64)
    for joints in partition:
        for a in joints:
            for b in joints:
                m[a, b] = 1
    return m


@pytest.mark.parametrize("fmt, part", [("coco", None), ("coco", 1), ("coco", 4), ("coco-no-head", 2)])
def test_pagcn_plus_matches_a_per_frame_loop(fmt, part):
    torch.manual_seed(1)
    layer = PAGCN_Plus(5, 16, fmt).double().eval()
    with torch.no_grad():
        layer.PA.normal_(0, 0.1)
        layer.bn.running_mean.normal_()
        layer.bn.running_var.uniform_(0.5, 2)
    v = get_joint_format(fmt).num_joints
    x = torch.randn(2, 5, 4, v, dtype=torch.float64)
    A = spatial_adjacency(fmt).double()
    with torch.no_grad():
        assert torch.allclose(layer(x, A, part), reference_pagcn_plus(layer, x, A, part), atol=1e-12)
        att = layer.attention(x)
    assert torch.allclose(att.sum(dim=-2), torch.ones(2, 3, 4, v, dtype=torch.float64))


def test_unmasked_block_ignores_the_part():
    torch.manual_seed(2)
    x, A = torch.randn(2, 4, 6, 17), spatial_adjacency("coco")
    masked, plain = Part_AGCN_TCN(4, 16, "coco", mask=True).eval(), Part_AGCN_TCN(4, 16, "coco", mask=False).eval()
    plain.load_state_dict(masked.state_dict())
    with torch.no_grad():
        assert torch.equal(plain(x, A, 1), plain(x, A, None))
        assert torch.equal(plain(x, A, None), masked(x, A, None))
        assert not torch.allclose(masked(x, A, 1), masked(x, A, None))


def test_temporal_conv_spans_nine_frames():
    torch.manual_seed(3)
    block = Part_AGCN_TCN(2, 8, "coco").eval()
    x = torch.randn(1, 2, 20, 17)
    poked = x.clone()
    poked[:, :, 10] += 1.0
    with torch.no_grad():
        diff = (block(poked, spatial_adjacency("coco"), 1) - block(x, spatial_adjacency("coco"), 1)).abs().amax(dim=(0, 1, 3))
    assert torch.nonzero(diff > 0).flatten().tolist() == list(range(6, 15))  # frames 10 +- 4


# ------------------------------------------------------------------------------------------
# Fixed-weight fingerprint measured on the original


def fingerprint_parameter(shape: Tuple[int, ...], k: int) -> torch.Tensor:
    j = np.arange(int(np.prod(shape)), dtype=np.int64)
    return torch.from_numpy(((31 * j * j + 7919 * j + 104729 * k) % 10007) / 10007 - 0.5).reshape(shape)


def fingerprint_input(shape: Tuple[int, ...]) -> torch.Tensor:
    f = np.arange(int(np.prod(shape)), dtype=np.int64)
    return torch.from_numpy(2 * (((17 * f * f + 331 * f) % 1009) / 1009 - 0.5)).reshape(shape)


def fill(module: nn.Module, order: List[str]) -> None:
    params = dict(module.named_parameters())
    assert sorted(order) == sorted(params)
    with torch.no_grad():
        for k, name in enumerate(order):
            params[name].copy_(fingerprint_parameter(tuple(params[name].shape), k))


def float64_adjacency(fmt: str) -> torch.Tensor:
    """The coco adjacency computed in float64 and not rounded to float32."""
    f = get_joint_format(fmt)
    dist = hop_distance(f.num_joints, f.edges, 2)
    binary = (dist <= 2).astype(np.float64)
    norm = binary / binary.sum(axis=0)[None]
    return torch.from_numpy(np.stack([np.where(dist == hop, norm, 0.0) for hop in range(3)]))


def test_fingerprint_input():
    x = fingerprint_input((2, 2, 6, 17))
    assert x.sum().item() == pytest.approx(-24.325074, abs=1e-6)
    assert x[0, 0, 0, :4].tolist() == pytest.approx([-1.0, -0.310208, 0.446977, -0.728444], abs=1e-6)


BLOCK_ORDER = ["asg.PA", *[f"asg.conv_{c}.{i}.{w}" for c in "abd" for i in range(3) for w in ("weight", "bias")],
               "asg.bn.weight", "asg.bn.bias", "tcn.conv.weight", "tcn.conv.bias", "tcn.bn.weight", "tcn.bn.bias",
               "residual.0.weight", "residual.0.bias", "residual.1.weight", "residual.1.bias",
               "residual_s.0.weight", "residual_s.0.bias", "residual_s.1.weight", "residual_s.1.bias",
               "down.conv.weight", "down.conv.bias", "down.bn.weight", "down.bn.bias"]


@pytest.mark.parametrize("part, asg_sum, asg_head, y_sum, y_sq, y_head, y_a, y_b", [
    (None, 34.062312, [-0.125647, -0.085672, -0.233110], 735.401130, 1724.050777,
     [-0.267359, -0.248806, -0.266144], -0.553689, 0.293066),
    (1, 26.799334, [-0.116865, -0.046770, -0.198985], 730.284259, 1710.105726,
     [-0.244990, -0.276888, -0.271668], -0.575192, 0.293066),
])
def test_block_fingerprint(part, asg_sum, asg_head, y_sum, y_sq, y_head, y_a, y_b):
    block = Part_AGCN_TCN(2, 64, "coco").double().eval()
    fill(block, BLOCK_ORDER)
    x, A = fingerprint_input((2, 2, 6, 17)), float64_adjacency("coco")
    with torch.no_grad():
        a, y = block.asg(x, A, part), block(x, A, part)
    assert a.sum().item() == pytest.approx(asg_sum, rel=1e-5)
    assert a[0, 0, 0, :3].tolist() == pytest.approx(asg_head, abs=2e-6)
    assert y.sum().item() == pytest.approx(y_sum, rel=1e-5)
    assert (y ** 2).sum().item() == pytest.approx(y_sq, rel=1e-5)
    assert y[0, 0, 0, :3].tolist() == pytest.approx(y_head, abs=2e-6)
    assert y[0, 40, 2, 5].item() == pytest.approx(y_a, abs=2e-6)
    assert y[1, 63, 5, 16].item() == pytest.approx(y_b, abs=2e-6)


@pytest.mark.parametrize("mask, e1_sum, e1_head, emb_head, emb_last, logit_sum, logit_head", [
    (True, -6765.991546, [-2.139047, -2.668062, -3.569718], [0.022085, 0.033332, -0.003124], -0.050778,
     -2.618761, [0.123969, -0.003687, 0.061905]),
    (False, -20553.764871, [1.380382, -20.514155, 8.996816], [-0.004365, -0.037464, 0.004830], -0.013251,
     1.307078, [0.158055, -0.000024, 0.063052]),
])
def test_model_fingerprint(mask, e1_sum, e1_head, emb_head, emb_last, logit_sum, logit_head):
    model = build_model({**CASIA_B_CFG, "mask": mask}).double().eval()
    order = [k for k, _ in listing()["gpgait++/gpgait++.yaml"]["state_dict"] if not k.endswith(BUFFERS)]
    fill(model, order)  # the original's parameter order
    with torch.no_grad():
        out = model(([fingerprint_input((2, 6, 8, 17, 1))], None, None, None, None))
    e1 = out["training_feat"]["triplet"]["embeddings"]
    emb = out["inference_feat"]["embeddings"]
    logits = out["training_feat"]["softmax"]["logits"]
    assert e1.shape == emb.shape == (2, 256, 19) and logits.shape == (2, 74, 19)
    assert e1.sum().item() == pytest.approx(e1_sum, rel=1e-5)
    assert e1[0, 0, :3].tolist() == pytest.approx(e1_head, rel=1e-5, abs=2e-6)
    assert emb[0, :3, 0].tolist() == pytest.approx(emb_head, abs=2e-6)
    assert emb[1, 255, 18].item() == pytest.approx(emb_last, abs=2e-6)
    assert logits.sum().item() == pytest.approx(logit_sum, rel=1e-5)
    assert logits[0, :3, 0].tolist() == pytest.approx(logit_head, abs=2e-6)


# ------------------------------------------------------------------------------------------
# Outputs


def test_outputs():
    torch.manual_seed(4)
    model = build_model(TINY_CFG)
    labels = torch.tensor([0, 1, 2])
    out = model(([torch.randn(3, 6, 10, 17, 1)], labels, None, None, None))
    assert out["training_feat"]["triplet"]["embeddings"].shape == (3, 16, 19)
    assert out["training_feat"]["softmax"]["logits"].shape == (3, 6, 19)
    assert out["training_feat"]["triplet"]["labels"] is labels
    emb = out["inference_feat"]["embeddings"]
    assert torch.allclose(emb.norm(dim=1), torch.ones(3, 19))  # unit norm per part
    assert set(out["visual_summary"]) == {"image/pose"}  # real poses: [n, T, V, (x, y)]
    assert out["visual_summary"]["image/pose"].shape == (3, 10, 17, 2)
    with pytest.raises(ValueError, match=r"GPGait_PlusPlus expects .* \[N, 6, T, 17, 1\]"):
        model(([torch.randn(3, 6, 10, 18, 1)], labels, None, None, None))


# ------------------------------------------------------------------------------------------
# Packed test batches: one embedding per walk


LENGTHS = [12, 18, 3, 9]  # 3 frames: shorter than the temporal kernel's reach


def trained_looking_model() -> nn.Module:
    """A small model whose BatchNorms have non-trivial statistics, in eval mode."""
    torch.manual_seed(5)
    model = build_model(TINY_CFG)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(([torch.randn(4, 6, 16, 17, 1)], None, None, None, None))
    return model.eval()


def walks() -> List[torch.Tensor]:
    g = torch.Generator().manual_seed(6)
    return [torch.randn(1, 6, t, 17, 1, generator=g) for t in LENGTHS]


def packed_inputs(pieces: List[torch.Tensor]):
    return [torch.cat(pieces, dim=2)], None, None, None, torch.tensor([[p.shape[2] for p in pieces]], dtype=torch.int32)


def test_packed_walks_get_their_own_embeddings():
    model = trained_looking_model()
    pieces = walks()
    with torch.no_grad():
        alone = torch.cat([model(([p], None, None, None, None))["inference_feat"]["embeddings"] for p in pieces])
        packed = model(packed_inputs(pieces))["inference_feat"]["embeddings"]
    assert packed.shape == (len(LENGTHS), 16, 19)
    assert torch.allclose(packed, alone, atol=1e-6)


def test_naive_packing_would_mix_neighbouring_walks(monkeypatch):
    """Reading across the boundaries (the original's behaviour) changes the embeddings: the
    per-sequence temporal convolution is what makes the packed run equal the runs alone."""
    model = trained_looking_model()
    pieces = walks()
    with torch.no_grad():
        fixed = model(packed_inputs(pieces))["inference_feat"]["embeddings"]
        monkeypatch.setattr(pagcn_plus, "_conv_per_sequence", lambda conv, x, segments: conv(x))
        naive = model(packed_inputs(pieces))["inference_feat"]["embeddings"]
    assert (naive - fixed).abs().max() > 1e-3


@pytest.mark.parametrize("max_sequences", [None, 1, 2, 3])
def test_test_phase_embeddings_do_not_depend_on_the_batch_size(max_sequences):
    model = trained_looking_model()
    pieces = walks()
    with torch.no_grad():
        alone = torch.cat([model(([p], None, None, None, None))["inference_feat"]["embeddings"] for p in pieces])
        ipts, _, _, _, seq_lengths = packed_inputs(pieces)
        n = len(pieces)
        batch = Batch(ipts, torch.arange(n), ["nm-01"] * n, ["000"] * n, seq_lengths)
        got = embed_batch(model, batch, time_axes=[1], max_sequences=max_sequences)
    assert torch.allclose(got, alone, atol=1e-6)
