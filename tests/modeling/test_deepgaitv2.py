"""DeepGaitV2 (p3d) = SkeletonGait: parameter counts and state-dict keys of the original, layer
shapes, the pseudo-3-D block against hand-computed and brute-force references, packed test
batches, BNNeck embeddings, initialisation, config errors, the five configs' recipes and their
losses. The generic checks (building from the config alone, determinism, batch independence,
gradients, one optimisation step, state-dict round trip) are in test_model_contract.py."""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from fastposegait.errors import ConfigError
from fastposegait.modeling import build_model, count_parameters
from fastposegait.modeling.layers.p3d import BasicBlockP3D, horizontal_pooling, p3d_downsample, temporal_max
from fastposegait.modeling.losses import LossAggregator
from fastposegait.registry import MODELS

REPO = Path(__file__).resolve().parents[2]
CHANNELS = [64, 128, 256, 512]


def cfg(layers=(1, 1, 1, 1), class_num=100, channels=CHANNELS, use_emb2=None, in_channels=2, **backbone):
    out = {"model": "DeepGaitV2",
           "Backbone": {"in_channels": in_channels, "mode": "p3d", "channels": list(channels), "layers": list(layers),
                        **backbone},
           "SeparateBNNecks": {"class_num": class_num}}
    if use_emb2 is not None:
        out["use_emb2"] = use_emb2
    return out


SMALL = dict(channels=(8, 8, 16, 16), class_num=6)


def run(model, x, labels=None, seq_lengths=None):
    return model(([x], labels, None, None, seq_lengths))


def randomise_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BatchNorm scales, shifts and running statistics, so that eval mode is not
    close to an identity and a wrong statistic would show."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model


# ------------------------------------------------------------------------------------------
# Parameter counts (the original's, measured by building its classes)
# ------------------------------------------------------------------------------------------

#: config -> (layers, class_num, use_emb2, parameters)
TABLE = {
    "CCPG": ([1, 1, 1, 1], 100, True, 8_446_464),
    "SUSTech1K": ([1, 1, 1, 1], 250, False, 9_060_864),
    "OUMVLP": ([1, 1, 1, 1], 5_153, False, 29_143_552),
    "Gait3D": ([1, 4, 4, 1], 3_000, False, 25_492_736),
    "GREW": ([1, 4, 4, 1], 20_000, False, 95_124_736),
}
#: the per-module split: [1, 1, 1, 1] and [1, 4, 4, 1]
SPLIT = {
    (1, 1, 1, 1): {"layer0": 1_280, "layer1": 73_984, "layer2": 279_552, "layer3": 1_116_160, "layer4": 4_460_544,
                   "FCs": 2_097_152},
    (1, 4, 4, 1): {"layer0": 1_280, "layer1": 73_984, "layer2": 1_314_048, "layer3": 5_249_536,
                   "layer4": 4_460_544, "FCs": 2_097_152},
}


def block_params(in_c: int, out_c: int, downsample: bool) -> int:
    """One BasicBlockP3D by the formula: two 3x3 convs, the 3x1x1 temporal conv, the 1x1x1
    shortcut, and two parameters per channel for each BatchNorm."""
    if downsample:
        return 9 * in_c * out_c + 9 * out_c ** 2 + 3 * out_c ** 2 + in_c * out_c + 4 * 2 * out_c
    return 21 * out_c ** 2 + 3 * 2 * out_c


@pytest.mark.parametrize("name", sorted(TABLE))
def test_parameter_counts_and_split_equal_the_original(name):
    layers, class_num, use_emb2, total = TABLE[name]
    model = build_model(cfg(layers, class_num, use_emb2=use_emb2))
    assert count_parameters(model) == total
    split = {child: sum(p.numel() for p in module.parameters()) for child, module in model.named_children()}
    assert split == {**SPLIT[tuple(layers)], "BNNecks": 8_192 + 4_096 * class_num}
    # the same split from the block formula
    assert split["layer2"] == block_params(64, 128, True) + (layers[1] - 1) * block_params(128, 128, False)
    assert split["layer3"] == block_params(128, 256, True) + (layers[2] - 1) * block_params(256, 256, False)
    assert split["layer4"] == block_params(256, 512, True)


def test_alias_skeletongait_builds_the_same_model():
    assert MODELS.canonical("SkeletonGait") == "DeepGaitV2"
    torch.manual_seed(0)
    a = build_model({**cfg(**SMALL), "model": "SkeletonGait"})
    torch.manual_seed(0)
    b = build_model(cfg(**SMALL))
    assert type(a) is type(b)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


# ------------------------------------------------------------------------------------------
# State-dict keys and shapes, in the original's order
# ------------------------------------------------------------------------------------------


def bn_keys(prefix: str, c: int) -> List[Tuple[str, List[int]]]:
    return [(f"{prefix}.weight", [c]), (f"{prefix}.bias", [c]), (f"{prefix}.running_mean", [c]),
            (f"{prefix}.running_var", [c]), (f"{prefix}.num_batches_tracked", [])]


def expected_state(layers, class_num, in_channels=2) -> List[Tuple[str, List[int]]]:
    """The original's keys, written from its module layout: stem, per-frame 2-D blocks, P3D
    stages, the part-wise FC and the BNNeck (a module's own parameters precede its children's)."""
    c0, c1, c2, c3 = CHANNELS
    keys = [("layer0.forward_block.0.weight", [c0, in_channels, 3, 3]), *bn_keys("layer0.forward_block.1", c0)]
    for b in range(layers[0]):
        p = f"layer1.forward_block.{b}"
        keys += [(f"{p}.conv1.weight", [c0, c0, 3, 3]), *bn_keys(f"{p}.bn1", c0),
                 (f"{p}.conv2.weight", [c0, c0, 3, 3]), *bn_keys(f"{p}.bn2", c0)]
    for stage, (cin, cout, blocks) in enumerate([(c0, c1, layers[1]), (c1, c2, layers[2]), (c2, c3, layers[3])], 2):
        for b in range(blocks):
            p = f"layer{stage}.{b}"
            first_in = cin if b == 0 else cout
            keys += [(f"{p}.conv1.forward_block.0.weight", [cout, first_in, 3, 3]),
                     *bn_keys(f"{p}.conv1.forward_block.1", cout),
                     (f"{p}.conv2.forward_block.0.weight", [cout, cout, 3, 3]),
                     *bn_keys(f"{p}.conv2.forward_block.1", cout),
                     (f"{p}.shortcut3d.weight", [cout, cout, 3, 1, 1]), *bn_keys(f"{p}.sbn", cout)]
            if b == 0:
                keys += [(f"{p}.downsample.0.weight", [cout, cin, 1, 1, 1]), *bn_keys(f"{p}.downsample.1", cout)]
    keys += [("FCs.fc_bin", [16, c3, c2]), ("BNNecks.fc_bin", [16, c2, class_num]), *bn_keys("BNNecks.bn1d", 16 * c2)]
    return keys


@pytest.mark.parametrize("layers, class_num", [([1, 1, 1, 1], 100), ([1, 4, 4, 1], 3)])
def test_state_dict_keys_order_and_shapes_are_the_originals(layers, class_num):
    model = build_model(cfg(layers, class_num))
    ours = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    assert ours == expected_state(layers, class_num)
    buffers = (".running_mean", ".running_var", ".num_batches_tracked")
    assert [n for n, _ in model.named_parameters()] == [k for k, _ in expected_state(layers, class_num)
                                                        if not k.endswith(buffers)]


# ------------------------------------------------------------------------------------------
# Forward: shapes, packed batches, embeddings
# ------------------------------------------------------------------------------------------


def test_training_forward_shapes_layer_by_layer():
    torch.manual_seed(0)
    model = build_model(cfg(class_num=100))
    shapes: Dict[str, Tuple[int, ...]] = {}
    for name in ("layer0", "layer1", "layer2", "layer3", "layer4"):
        module = getattr(model, name)
        module = module[-1] if isinstance(module, nn.Sequential) else module  # a stage's blocks are run one by one
        module.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape)))
    x = torch.rand(2, 30, 2, 64, 44)
    labels = torch.tensor([3, 7])
    out = run(model, x, labels)
    assert shapes == {"layer0": (2, 64, 30, 64, 44), "layer1": (2, 64, 30, 64, 44), "layer2": (2, 128, 30, 32, 22),
                      "layer3": (2, 256, 30, 16, 11), "layer4": (2, 512, 30, 16, 11)}
    triplet, softmax = out["training_feat"]["triplet"], out["training_feat"]["softmax"]
    assert tuple(triplet["embeddings"].shape) == (2, 256, 16) and triplet["labels"] is labels
    assert tuple(softmax["logits"].shape) == (2, 100, 16) and softmax["labels"] is labels
    assert softmax["logits"].abs().max() <= 1 + 1e-6  # cosine logits
    assert out["inference_feat"]["embeddings"] is triplet["embeddings"]  # use_emb2 off
    (summary,) = out["visual_summary"].items()
    assert summary[0] == "image/maps" and tuple(summary[1].shape) == (4, 1, 64, 88)
    assert torch.equal(summary[1][1, 0, :, :44], x[0, 1, 0]) and torch.equal(summary[1][1, 0, :, 44:], x[0, 1, 1])


def test_packed_test_batch_equals_the_sequences_run_separately():
    torch.manual_seed(1)
    model = randomise_bn(build_model(cfg(**SMALL)), seed=1).eval()
    a, b = torch.rand(1, 7, 2, 64, 44), torch.rand(1, 5, 2, 64, 44)
    with torch.no_grad():
        alone = torch.cat([run(model, a)["inference_feat"]["embeddings"],
                           run(model, b)["inference_feat"]["embeddings"]])
        packed = run(model, torch.cat([a, b], dim=1), seq_lengths=torch.tensor([[7, 5]], dtype=torch.int32))
        merged = run(model, torch.cat([a, b], dim=1))["inference_feat"]["embeddings"]
        single = run(model, a, seq_lengths=torch.tensor([[7]]))["inference_feat"]["embeddings"]
    emb = packed["inference_feat"]["embeddings"]
    assert tuple(emb.shape) == (2, 16, 16)
    torch.testing.assert_close(emb, alone, rtol=0, atol=1e-6)
    torch.testing.assert_close(single, alone[:1], rtol=0, atol=1e-6)
    # the check can fail: one 12-frame walk (shared temporal padding and pooling) is different
    assert (merged - alone[:1]).abs().max() > 1e-3


def test_a_packed_batch_that_does_not_add_up_is_refused():
    model = build_model(cfg(**SMALL)).eval()
    with pytest.raises(ValueError, match=r"seqL \[3, 3\] does not describe a packed batch"):
        run(model, torch.rand(1, 7, 2, 64, 44), seq_lengths=torch.tensor([[3, 3]]))


def test_use_emb2_gives_unit_norm_bnneck_features():
    torch.manual_seed(2)
    model = randomise_bn(build_model(cfg(use_emb2=True, **SMALL)), seed=2).eval()
    with torch.no_grad():
        out = run(model, torch.rand(3, 6, 2, 64, 44))
    emb, embed_1 = out["inference_feat"]["embeddings"], out["training_feat"]["triplet"]["embeddings"]
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3, 16))
    # and it is the BNNeck's feature: BN1d over channel-major c * 16 features, then L2 per part
    bn = model.BNNecks.bn1d
    flat = (embed_1.reshape(3, -1) - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    torch.testing.assert_close(emb, F.normalize(flat.view(3, 16, 16), dim=1), rtol=1e-5, atol=1e-6)
    assert (embed_1.norm(dim=1) - 1).abs().max() > 0.1


def test_height_pooling_and_temporal_max_by_hand():
    x = torch.arange(2 * 3 * 4 * 2, dtype=torch.float32).reshape(1, 2, 3, 4, 2)  # [n, c, s, h, w]
    pooled = temporal_max(x)  # frame 2 is the largest everywhere
    assert torch.equal(pooled, x[:, :, 2])
    packed = temporal_max(x, [2, 1])
    assert torch.equal(packed, torch.cat([x[:, :, 1], x[:, :, 2]]))
    strips = horizontal_pooling(pooled, bins=2)  # 2 strips of 2 rows x 2 columns
    block = pooled[0, 0, 0:2].flatten()  # channel 0, rows 0-1
    assert strips.shape == (1, 2, 2)
    assert strips[0, 0, 0] == block.mean() + block.max()


@pytest.mark.parametrize("width", [43, 64])
def test_input_width_other_than_44_or_88_is_refused(width):
    model = build_model(cfg(**SMALL)).eval()
    with pytest.raises(ValueError, match=rf"44 or 88 pixels wide .* got 64 x {width}: cut the 64 x 64 maps"):
        run(model, torch.rand(1, 4, 2, 64, width))
    with pytest.raises(ValueError, match=r"expects maps \[n, s, 2, H, W\]"):
        run(model, torch.rand(1, 4, 3, 64, 44))


def test_silhouettes_with_one_channel():
    model = build_model(cfg(in_channels=1, **SMALL)).eval()
    with torch.no_grad():
        a = run(model, torch.rand(2, 4, 64, 44))["inference_feat"]["embeddings"]
    assert tuple(a.shape) == (2, 16, 16)


@pytest.mark.parametrize("bad, message", [
    ({"Backbone": {"in_channels": 2, "mode": "3d", "channels": CHANNELS, "layers": [1, 1, 1, 1]}},
     "model_cfg.Backbone.mode: '3d' is not supported; only 'p3d'"),
    ({"Backbone": {"in_channels": 2, "mode": "p3d", "channels": CHANNELS}}, "model_cfg.Backbone needs key(s) layers"),
    ({"Backbone": {"in_channels": 2, "mode": "p3d", "channels": CHANNELS, "layers": [1, 1, 1, 1], "blocks": 2}},
     "model_cfg.Backbone: unknown key(s) blocks"),
    ({"Backbone": {"in_channels": 2, "mode": "p3d", "channels": [64, 128, 256], "layers": [1, 1, 1, 1]}},
     "model_cfg.Backbone.channels must be 4 positive integers"),
    ({"Backbone": {"in_channels": 0, "mode": "p3d", "channels": CHANNELS, "layers": [1, 1, 1, 1]}},
     "model_cfg.Backbone.in_channels must be a positive integer"),
    ({"SeparateBNNecks": {"class_num": "100"}}, "model_cfg.SeparateBNNecks.class_num must be a positive integer"),
    ({"SeparateBNNecks": {"num_class": 100}}, "model_cfg.SeparateBNNecks must be a mapping with the one key class_num"),
    ({"use_emb2": "yes"}, "model_cfg.use_emb2: must be true or false"),
    ({"num_class": 10}, "model_cfg: unknown key(s) num_class for model DeepGaitV2"),
])
def test_bad_model_cfg_is_one_config_error(bad, message):
    with pytest.raises(ConfigError) as info:
        build_model({**cfg(), **bad})
    assert message in str(info.value)


# ------------------------------------------------------------------------------------------
# The pseudo-3-D block
# ------------------------------------------------------------------------------------------


def test_p3d_block_by_hand():
    """One channel, 1 x 1 images, 3 frames x = (1, 2, 3), identity BatchNorms: conv1 (centre
    weight 2) gives a = (2, 4, 6); the temporal kernel (1, 0.5, -1) over (t-1, t, t+1) with zero
    padding gives (-3, -2, 7); ReLU(a + that) = (0, 2, 13); conv2 (centre 0.5) gives (0, 1, 6.5);
    plus x and ReLU: (1, 3, 9.5)."""
    block = BasicBlockP3D(1, 1).eval()
    with torch.no_grad():
        for m in block.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.fill_(1.0)
                m.bias.fill_(0.0)
                m.running_mean.fill_(0.0)
                m.running_var.fill_(1.0 - m.eps)
        block.conv1.forward_block[0].weight.zero_()[0, 0, 1, 1] = 2.0
        block.conv2.forward_block[0].weight.zero_()[0, 0, 1, 1] = 0.5
        block.shortcut3d.weight.copy_(torch.tensor([1.0, 0.5, -1.0]).view(1, 1, 3, 1, 1))
        out = block(torch.tensor([1.0, 2.0, 3.0]).view(1, 1, 3, 1, 1))
    torch.testing.assert_close(out.flatten(), torch.tensor([1.0, 3.0, 9.5]))


def reference_bn(x: torch.Tensor, bn: nn.modules.batchnorm._BatchNorm, training: bool) -> torch.Tensor:
    """BatchNorm over every axis but the channel axis (1): batch statistics (biased variance)
    in training mode, running statistics in eval mode."""
    shape = [1, -1] + [1] * (x.dim() - 2)
    if training:
        dims = [d for d in range(x.dim()) if d != 1]
        mean, var = x.mean(dims), x.var(dims, unbiased=False)
    else:
        mean, var = bn.running_mean, bn.running_var
    return (x - mean.view(shape)) / torch.sqrt(var.view(shape) + bn.eps) * bn.weight.view(shape) + bn.bias.view(shape)


def reference_p3d(block: BasicBlockP3D, x: torch.Tensor, training: bool, lengths=None) -> torch.Tensor:
    """The block written out frame by frame with functional ops and an explicit loop for the
    temporal convolution (zero outside each sequence)."""
    n, c, s, h, w = x.shape
    conv1, bn1 = block.conv1.forward_block[0], block.conv1.forward_block[1]
    conv2, bn2 = block.conv2.forward_block[0], block.conv2.forward_block[1]

    def per_frame(conv, t):
        return torch.stack([F.conv2d(t[:, :, f], conv.weight, stride=conv.stride, padding=1)
                            for f in range(t.shape[2])], dim=2)

    a = F.relu(reference_bn(per_frame(conv1, x), bn1, training))
    kernel = block.shortcut3d.weight[:, :, :, 0, 0]  # [out, out, 3]
    bounds = [0]
    for length in (lengths or [s]):
        bounds.append(bounds[-1] + length)
    temporal = torch.zeros_like(a)
    for start, end in zip(bounds[:-1], bounds[1:]):
        for t in range(start, end):
            for k, offset in enumerate((-1, 0, 1)):
                if start <= t + offset < end:
                    temporal[:, :, t] += torch.einsum("oc,nchw->nohw", kernel[:, :, k], a[:, :, t + offset])
    a = F.relu(a + reference_bn(temporal, block.sbn, training))
    a = reference_bn(per_frame(conv2, a), bn2, training)
    if block.downsample is None:
        shortcut = x
    else:
        conv, bn = block.downsample[0], block.downsample[1]
        sh, sw = conv.stride[1:]
        shortcut = reference_bn(torch.einsum("oc,ncshw->noshw", conv.weight[:, :, 0, 0, 0], x[:, :, :, ::sh, ::sw]),
                                bn, training)
    return F.relu(a + shortcut)


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("stride, in_c, out_c", [(2, 2, 3), (1, 3, 3)])
def test_p3d_block_equals_a_brute_force_reference(training, stride, in_c, out_c):
    torch.manual_seed(3)
    down = p3d_downsample(in_c, out_c, stride) if stride > 1 or in_c != out_c else None
    block = randomise_bn(BasicBlockP3D(in_c, out_c, stride, down), seed=4).train(training)
    x = torch.randn(2, in_c, 5, 6, 4, dtype=torch.float64)
    block = block.double()
    expected = reference_p3d(block, x, training)
    torch.testing.assert_close(block(x), expected, rtol=1e-10, atol=1e-10)
    assert expected.shape == (2, out_c, 5, 6 // stride, 4 // stride)
    if not training:  # packed: two walks of 3 and 2 frames in one item
        packed = x[:1]
        torch.testing.assert_close(block(packed, [3, 2]), reference_p3d(block, packed, False, [3, 2]),
                                   rtol=1e-10, atol=1e-10)
        assert not torch.allclose(block(packed, [3, 2]), block(packed))


# ------------------------------------------------------------------------------------------
# Initialisation
# ------------------------------------------------------------------------------------------


def test_initialisation_statistics():
    torch.manual_seed(4)
    model = build_model(cfg(class_num=100))
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert {type(m) for m in bns} == {nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d}
    weights = torch.cat([m.weight.detach() for m in bns])
    assert abs(weights.mean().item() - 1.0) < 0.003 and 0.018 < weights.std().item() < 0.022
    for m in bns:  # every BN, the BNNeck's BatchNorm1d included
        assert torch.equal(m.bias, torch.zeros_like(m.bias))
        assert 0.9 < m.weight.min() and m.weight.max() < 1.1
    # Xavier-uniform convolutions: bound sqrt(6 / (fan_in + fan_out)), fan = channels x kernel volume
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            volume = math.prod(m.kernel_size)
            bound = math.sqrt(6 / ((m.in_channels + m.out_channels) * volume))
            assert m.weight.abs().max() <= bound, name
            if m.weight.numel() > 10_000:
                assert abs(m.weight.std().item() - bound / math.sqrt(3)) < 0.03 * bound, name
    # the part-wise matrices: torch's fans of a [16, a, b] tensor, fan_in = a * b, fan_out = 16 * b
    for weight, (a, b) in ((model.FCs.fc_bin, (512, 256)), (model.BNNecks.fc_bin, (256, 100))):
        bound = math.sqrt(6 / (a * b + 16 * b))
        assert weight.abs().max() <= bound
        assert abs(weight.std().item() - bound / math.sqrt(3)) < 0.01 * bound
    assert math.isclose(math.sqrt(6 / (512 * 256 + 16 * 256)), 0.0066625, rel_tol=1e-4)


# ------------------------------------------------------------------------------------------
# Configs
# ------------------------------------------------------------------------------------------

#: dataset -> (P, K, frames, sample_type, skip, total, milestones, save_iter, with_test, workers, eval_func)
RECIPES = {
    "CCPG": (8, 16, 30, "fixed_ordered", 4, 60_000, [20_000, 30_000, 40_000], 10_000, False, 1, "evaluate_CCPG"),
    "GREW": (32, 4, 30, "fixed_ordered", 4, 180_000, [80_000, 120_000, 150_000], 30_000, False, 1,
             "GREW_submission"),
    "Gait3D": (32, 4, 30, "fixed_ordered", 4, 60_000, [20_000, 30_000, 40_000], 10_000, False, 1, "evaluate_Gait3D"),
    "OUMVLP": (32, 8, 30, "fixed_ordered", 4, 120_000, [60_000, 80_000, 100_000], 20_000, False, 1,
               "evaluate_indoor_dataset"),
    "SUSTech1K": (8, 8, 10, "fixed_unordered", None, 50_000, [20_000, 30_000, 40_000], 10_000, True, 4,
                  "evaluate_indoor_dataset"),
}
FULL_AUGMENTATION = [{"type": "SkeletonMap"}, {"type": "RandomPerspective", "prob": 0.2},
                     {"type": "BaseSilCuttingTransform"}, {"type": "RandomHorizontalFlip", "prob": 0.2},
                     {"type": "RandomRotate", "prob": 0.2}]
OUMVLP_AUGMENTATION = [{"type": "SkeletonMap"}, {"type": "BaseSilCuttingTransform"},
                       {"type": "RandomHorizontalFlip", "prob": 0.5}]


def raw_config(name: str) -> dict:
    return yaml.safe_load((REPO / "configs" / "skeletongait" / f"skeletongait_{name}.yaml").read_text())


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_config_has_the_originals_model_and_recipe(name):
    raw = raw_config(name)
    layers, class_num, use_emb2, _ = TABLE[name]
    assert raw["model_cfg"] == cfg(layers, class_num, use_emb2=True if use_emb2 else None)
    p, k, frames, sample_type, skip, total, milestones, save_iter, with_test, workers, eval_func = RECIPES[name]
    assert raw["optimizer_cfg"] == {"solver": "SGD", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0005}
    assert raw["scheduler_cfg"] == {"scheduler": "MultiStepLR", "gamma": 0.1, "milestones": milestones}
    trainer, evaluator = raw["trainer_cfg"], raw["evaluator_cfg"]
    assert (trainer["total_iter"], trainer["save_iter"], trainer["restore_hint"], trainer["with_test"]) == (
        total, save_iter, 0, with_test)  # GREW: 0, not the original's 90000 (a fresh run)
    assert trainer["enable_float16"] and trainer["sync_BN"] and not trainer["fix_BN"]
    sampler = trainer["sampler"]
    assert (sampler["type"], sampler["batch_size"], sampler["frames_num_fixed"], sampler["sample_type"],
            sampler.get("frames_skip_num"), sampler["batch_shuffle"]) == (
        "TripletSampler", [p, k], frames, sample_type, skip, True)
    (compose,) = trainer["transform"]
    assert compose["trf_cfg"] == (OUMVLP_AUGMENTATION if name == "OUMVLP" else FULL_AUGMENTATION)
    assert (evaluator["restore_hint"], evaluator["eval_func"], evaluator["metric"]) == (total, eval_func, "euc")
    assert evaluator["enable_float16"] and evaluator["save_name"] == trainer["save_name"] == "SkeletonGait"
    assert evaluator["sampler"]["sample_type"] == "all_ordered" and evaluator["sampler"]["frames_all_limit"] == 720
    (compose,) = evaluator["transform"]
    assert compose["trf_cfg"] == [{"type": "SkeletonMap"}, {"type": "BaseSilCuttingTransform"}]
    assert raw["data_cfg"]["num_workers"] == workers and raw["data_cfg"]["test_dataset_name"] == name
    assert raw["loss_cfg"] == [
        {"loss_term_weight": 1.0, "margin": 0.2, "type": "TripletLoss", "log_prefix": "triplet"},
        {"loss_term_weight": 1.0, "scale": 16, "type": "CrossEntropyLoss", "label_smooth": True, "eps": 0.1,
         "log_accuracy": True, "log_prefix": "softmax"},
    ]


def brute_force_triplet(emb: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """The original's triplet term, loop by loop: per part, every (anchor, positive incl. the
    anchor itself, negative), ReLU(d_ap - d_an + margin); mean over the non-zero terms; mean
    over parts."""
    n, _, parts = emb.shape
    per_part = []
    for p in range(parts):
        x = emb[:, :, p].double()
        terms = []
        for a in range(n):
            for q in range(n):
                for r in range(n):
                    if labels[q] == labels[a] and labels[r] != labels[a]:
                        terms.append(max(0.0, float((x[a] - x[q]).norm() - (x[a] - x[r]).norm()) + margin))
        nonzero = [t for t in terms if t > 0]
        per_part.append(sum(nonzero) / len(nonzero) if nonzero else 0.0)
    return torch.tensor(sum(per_part) / parts, dtype=torch.float64)


def test_config_losses_equal_the_originals_definitions():
    losses = LossAggregator(raw_config("CCPG")["loss_cfg"])
    g = torch.Generator().manual_seed(5)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    embeddings = torch.randn(6, 8, 3, generator=g) * 0.2
    logits = torch.rand(6, 5, 3, generator=g) * 2 - 1
    total, info = losses({"triplet": {"embeddings": embeddings, "labels": labels},
                          "softmax": {"logits": logits, "labels": labels}})
    triplet = brute_force_triplet(embeddings, labels, 0.2)
    # cross-entropy of 16 x logits with label smoothing 0.1, one prediction per part
    flat = (16 * logits).permute(0, 2, 1).reshape(-1, 5)
    ce = F.cross_entropy(flat.double(), labels.repeat_interleave(3), label_smoothing=0.1)
    assert math.isclose(total.item(), triplet.item() + ce.item(), rel_tol=1e-5)
    assert math.isclose(info["scalar/softmax/loss"].mean().item(), ce.item(), rel_tol=1e-5)


def test_plural_loss_term_weights_is_ignored_with_a_warning(caplog):
    """The original's configs spell the weight ``loss_term_weights``; it ignores that key, so
    the weight stays 1.0. We do the same and say so in the log."""
    entry = {"type": "TripletLoss", "margin": 0.2, "log_prefix": "triplet", "loss_term_weights": 0.5}
    with caplog.at_level(logging.WARNING):
        losses = LossAggregator([entry])
    assert losses.losses["triplet"].loss_term_weight == 1.0
    assert "ignoring unknown key(s) 'loss_term_weights'" in caplog.text
    assert "loss_term_weight" in caplog.text.split("accepted:")[1]
