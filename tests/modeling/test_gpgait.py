"""GPGait: parameter counts (docs/models.md, GPGait), partitions, PAGCN math, pooling, heads, packed
sequences, shapes and initialisation. The generic checks (building from the config alone,
determinism, batch independence, losses, gradients, one optimisation step, state dict) are in
test_model_contract.py."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fastposegait.config import ConfigError
from fastposegait.data.transforms import build_transform
from fastposegait.modeling import build_model, count_parameters
from fastposegait.modeling.graph import spatial_adjacency
from fastposegait.modeling.layers.heads import SeparateBNNecks, SeparateFCs
from fastposegait.modeling.layers.pagcn import (
    PAGCN, PARTITIONS, SemanticPyramidPooling, make_segments, part_mask, set_max_pool,
)
from fastposegait.registry import MODELS

CASIA_B = {"model": "gpgait", "in_channels": [2, 64, 64, 128, 256], "num_class": 74, "share_num": 3}
SMALL = {"model": "GPGait", "in_channels": [2, 16, 16, 32, 32], "num_class": 6, "share_num": 3}


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def features(n=4, t=30, seed=0):
    """``[n, 6, t, 17, 1]`` GPGait inputs built by the real transforms from random walks."""
    rng = np.random.default_rng(seed)
    raw = rng.normal(size=(n, t, 17, 3)) * [15, 40, 0.2] + [100, 200, 0.8]
    chain = build_transform({"type": "Compose", "trf_cfg": [
        {"type": "RescaleCenter", "center": "neck", "scale": 225},
        {"type": "HOD_MultiInput", "joint_format": "coco"},
        {"type": "SkeletonInput"},
    ]})
    return torch.from_numpy(np.stack([chain(r) for r in raw])).float()


def run(model, x, labels=None, seq_lengths=None):
    return model(([x], labels, None, None, seq_lengths))


# ------------------------------------------------------------------------------------------
# Building and parameter counts
# ------------------------------------------------------------------------------------------


def test_parameter_counts_match_reference():
    model = build_model(CASIA_B)
    assert count_parameters(model) == 3_654_810
    assert [n_params(b) for b in (model.pose, model.bone, model.angle)] == [803_193, 803_193, 433_576]
    assert n_params(model.head) == 1_245_184
    assert n_params(model.BNNecks) == 369_664
    for branch in (model.pose, model.bone):
        assert n_params(branch.data_bn) == 68
        assert n_params(branch.layer_share) == 69_033
        assert branch.path_names == ("part_2", "part_2_2", "part_3_1", "backbone")  # output order
        assert [n_params(branch.path_blocks(p)) for p in branch.path_names] == [183_523] * 4
    assert model.angle.path_names == ("part_2", "backbone")
    # registered (initialised, saved, optimised) in upstream's order: bone, pose, angle; inside a
    # branch the whole-graph path first
    assert [name for name, _ in model.named_children()] == ["bone", "pose", "angle", "head", "BNNecks"]
    assert [name for name, _ in model.pose.named_children()][:6] == \
        ["data_bn", "layer_share", "backbone", "part_2", "part_2_2", "part_3_1"]


def test_registered_under_both_names_and_accepts_packed_batches():
    assert MODELS.get("gpgait") is MODELS.get("GPGait")
    assert MODELS.canonical("GPGait") == "gpgait"
    assert build_model(SMALL).accepts_packed_sequences


@pytest.mark.parametrize("change,message", [
    ({"num_classes": 3}, "unknown key\\(s\\) num_classes for model GPGait"),
    ({"in_channels": [2, 64]}, "model_cfg.in_channels must be a list of at least 3 positive integers"),
    ({"share_num": 4}, "model_cfg.share_num must be an integer in \\[0, 3\\]"),
    ({"num_class": 0}, "model_cfg.num_class must be a positive integer"),
])
def test_bad_model_cfg_is_a_clear_error(change, message):
    with pytest.raises(ConfigError, match=message):
        build_model(dict(CASIA_B, **change))


def test_initialisation():
    torch.manual_seed(0)
    model = build_model(CASIA_B)
    for name, m in model.named_modules():
        if isinstance(m, PAGCN):
            assert torch.all(m.PA == 1e-6), name
        if isinstance(m, torch.nn.Conv2d):
            assert (m.bias == 0).all(), name
            fan_in, fan_out = m.weight.shape[1], m.weight.shape[0]
            assert m.weight.abs().max() <= (6 / (fan_in + fan_out)) ** 0.5 + 1e-6, name
        if isinstance(m, torch.nn.BatchNorm2d):
            assert (m.weight == 1).all() and (m.bias == 0).all(), name
    # part matrices: torch's fans of a [P, in, out] tensor, fan_in = in*out, fan_out = P*out
    fc = model.head.fc_bin
    assert fc.shape == (19, 256, 256)
    bound = (6 / (256 * 256 + 19 * 256)) ** 0.5
    assert fc.abs().max() <= bound and fc.abs().max() > 0.9 * bound
    assert model.BNNecks.fc_bin.shape == (19, 256, 74)


# ------------------------------------------------------------------------------------------
# Partitions, masks and buffers
# ------------------------------------------------------------------------------------------

SPEC_PARTITIONS = {  # docs/models.md (GPGait, Partitions), written out
    "coco": [
        [list(range(17))],
        [[5, 7, 9], [6, 8, 10], [11, 13, 15], [12, 14, 16], [0, 1, 2, 3, 4]],
        [[5, 7, 9, 6, 8, 10, 0, 1, 2, 3, 4], [11, 13, 15, 12, 14, 16]],
        [[5, 7, 9, 6, 8, 10], [11, 13, 15, 12, 14, 16, 0, 1, 2, 3, 4]],
        [[5, 7, 9, 6, 8, 10], [11, 13, 15, 12, 14, 16], [0, 1, 2, 3, 4]],
        [[5, 7, 9, 12, 14, 16], [6, 8, 10, 11, 13, 15], [0, 1, 2, 3, 4]],
    ],
    "coco-no-head": [
        [list(range(12))],
        [[0, 2, 4], [1, 3, 5], [6, 8, 10], [7, 9, 11]],
        [[0, 2, 4, 1, 3, 5], [6, 8, 10, 7, 9, 11]],
        [[0, 2, 4, 7, 9, 11], [1, 3, 5, 6, 8, 10]],
    ],
}


def test_partitions_are_the_spec_lists():
    for fmt, parts in SPEC_PARTITIONS.items():
        assert [[sorted(p) for p in partition] for partition in PARTITIONS[fmt]] == \
               [[sorted(p) for p in partition] for partition in parts]
        for partition in PARTITIONS[fmt]:  # every joint in exactly one part
            joints = sorted(j for part in partition for j in part)
            assert joints == list(range(17 if fmt == "coco" else 12))


def brute_force_mask(partition, v):
    mask = torch.zeros(v, v)
    for i in range(v):
        for j in range(v):
            mask[i, j] = float(any(i in part and j in part for part in partition))
    return mask


def test_part_masks_are_built_once_as_buffers_of_the_right_partitions():
    model = build_model(SMALL)
    buffers = dict(model.named_buffers())
    state = model.state_dict()
    for name, fmt, shared, paths in (("pose", "coco", 1, {"part_2": 2, "part_2_2": 3, "part_3_1": 4}),
                                     ("angle", "coco-no-head", 1, {"part_2": 2})):
        branch = getattr(model, name)
        v = 17 if fmt == "coco" else 12
        assert torch.equal(branch.share_mask, brute_force_mask(SPEC_PARTITIONS[fmt][shared], v))
        assert f"{name}.share_mask" in buffers and f"{name}.A" in buffers
        assert f"{name}.share_mask" not in state  # constants, not checkpoint content
        for path, index in paths.items():
            assert torch.equal(branch.path_mask(path), brute_force_mask(SPEC_PARTITIONS[fmt][index], v))
            assert f"{name}.{path}_mask" in buffers and f"{name}.{path}_mask" not in state
        assert branch.path_mask("backbone") is None
        assert torch.equal(branch.A, spatial_adjacency(fmt, max_hop=2))
        assert branch.A.shape == (3, v, v)
    # the part-wise head is the only thing that changes between coco paths
    assert torch.equal(part_mask(PARTITIONS["coco"][4], 17), brute_force_mask(SPEC_PARTITIONS["coco"][4], 17))


def test_buffers_follow_the_module_and_are_not_rebuilt():
    model = build_model(SMALL).double()
    assert model.pose.A.dtype == torch.float64 and model.pose.share_mask.dtype == torch.float64
    ids = {name: b.data_ptr() for name, b in model.named_buffers() if b is not None}
    run(model.eval(), features(2, 8).double())
    assert ids == {name: b.data_ptr() for name, b in model.named_buffers() if b is not None}


# ------------------------------------------------------------------------------------------
# PAGCN against a literal, loop-based reading of its definition (docs/models.md, "GPGait")
# ------------------------------------------------------------------------------------------


def pagcn_reference(gcn, x, A, mask=None):
    """PAGCN as docs/models.md (GPGait) writes it, one sample and one subset at a time."""
    n_samples, c, t, v = x.shape
    out = []
    for n in range(n_samples):
        xn = x[n:n + 1]
        y = 0
        for i in range(3):
            q = gcn.conv_a[i](xn)[0].permute(2, 0, 1).reshape(v, gcn.inter * t)  # [V, inter*T]
            k = gcn.conv_b[i](xn)[0].reshape(gcn.inter * t, v)  # [inter*T, V]
            attention = torch.softmax(q @ k / (gcn.inter * t), dim=0)  # dim -2 of [V, V]
            adj = attention + (A + gcn.PA)[i]
            if mask is not None:
                adj = adj * mask
            y = y + gcn.conv_d[i]((xn[0].reshape(c * t, v) @ adj).reshape(1, c, t, v))
        out.append(y)
    return F.mish(gcn.bn(torch.cat(out)))


def randomised_pagcn(in_c, out_c, v, seed=0):
    torch.manual_seed(seed)
    gcn = PAGCN(in_c, out_c, v).double()
    with torch.no_grad():
        gcn.PA.normal_(0, 0.1)
        for conv in [*gcn.conv_a, *gcn.conv_b, *gcn.conv_d]:
            conv.bias.normal_(0, 0.5)
        gcn.bn.running_mean.normal_(0, 0.3)
        gcn.bn.running_var.uniform_(0.5, 2)
        gcn.bn.weight.normal_(1, 0.2)
        gcn.bn.bias.normal_(0, 0.2)
    return gcn.eval()


@pytest.mark.parametrize("masked", [False, True])
def test_pagcn_matches_the_literal_formula(masked):
    gcn = randomised_pagcn(6, 8, 17)
    A = spatial_adjacency("coco").double()
    mask = part_mask(PARTITIONS["coco"][1], 17).double() if masked else None
    x = torch.randn(3, 6, 5, 17, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(gcn(x, A, mask), pagcn_reference(gcn, x, A, mask), atol=1e-10)


def test_pagcn_packed_sequences_use_their_own_attention():
    gcn = randomised_pagcn(4, 8, 12, seed=1)
    A = spatial_adjacency("coco-no-head").double()
    mask = part_mask(PARTITIONS["coco-no-head"][2], 12).double()
    pieces = [torch.randn(1, 4, t, 12, dtype=torch.float64) for t in (3, 7, 1)]
    packed = torch.cat(pieces, dim=2)
    segments = make_segments(torch.tensor([[3, 7, 1]]), packed)
    with torch.no_grad():
        got = gcn(packed, A, mask, segments)
        expected = torch.cat([pagcn_reference(gcn, p, A, mask) for p in pieces], dim=2)
        # and it is not what one attention over the whole concatenation gives (upstream)
        merged = pagcn_reference(gcn, packed, A, mask)
    assert torch.allclose(got, expected, atol=1e-10)
    assert not torch.allclose(got, merged, atol=1e-3)


def test_make_segments():
    x = torch.zeros(1, 2, 10, 17)
    assert make_segments(None, x) is None
    assert make_segments(torch.tensor([[10]]), x) is None  # one sequence: plain batch
    seg = make_segments(torch.tensor([[4, 6]], dtype=torch.int32), x)
    assert seg.lengths == [4, 6]
    assert seg.index.tolist() == [0] * 4 + [1] * 6
    assert seg.sizes.tolist() == [4.0, 6.0]
    with pytest.raises(ValueError, match=r"seqL \[4, 5\] does not describe a packed batch"):
        make_segments(torch.tensor([[4, 5]]), x)
    with pytest.raises(ValueError, match="batch size 1"):
        make_segments(torch.tensor([[5, 5]]), torch.zeros(2, 2, 10, 17))


# ------------------------------------------------------------------------------------------
# Pooling and heads by hand
# ------------------------------------------------------------------------------------------


def test_semantic_pyramid_pooling_by_hand():
    x = torch.stack([torch.arange(17.0), -torch.arange(17.0)])[None]  # [1, 2, 17]
    spp = SemanticPyramidPooling(PARTITIONS["coco"][4])  # arms, legs, head
    # arms {5..10}: mean 7.5 + max 10; legs {11..16}: 13.5 + 16; head {0..4}: 2 + 4
    # negated: arms -7.5 + -5; legs -13.5 + -11; head -2 + 0
    expected = torch.tensor([[[17.5, 29.5, 6.0], [-12.5, -24.5, -2.0]]])
    assert torch.equal(spp(x), expected)
    whole = SemanticPyramidPooling(PARTITIONS["coco"][0])
    assert torch.equal(whole(x), torch.tensor([[[8.0 + 16.0], [-8.0 + 0.0]]]))
    uneven = SemanticPyramidPooling(((3,), (0, 1, 2, 4)))  # padding must not leak into mean/max
    y = torch.tensor([[[1.0, 2.0, 3.0, -4.0, 10.0]]])
    assert torch.equal(uneven(y), torch.tensor([[[-8.0, 4.0 + 10.0]]]))


def test_set_max_pool_by_hand():
    x = torch.tensor([1.0, 5.0, 2.0, 7.0, 3.0, 4.0]).view(1, 1, 6, 1)
    assert set_max_pool(x).tolist() == [[[7.0]]]
    seg = make_segments(torch.tensor([[2, 1, 3]]), x)
    assert set_max_pool(x, seg).flatten().tolist() == [5.0, 2.0, 7.0]


def test_separate_fcs_and_bnnecks_by_loops():
    torch.manual_seed(0)
    fcs = SeparateFCs(3, 4, 5)
    necks = SeparateBNNecks(3, 5, 7).eval()
    with torch.no_grad():
        necks.bn1d.running_mean.normal_()
        necks.bn1d.running_var.uniform_(0.5, 2)
        necks.bn1d.weight.normal_(1, 0.2)
        necks.bn1d.bias.normal_(0, 0.2)
    x = torch.randn(2, 4, 3)
    with torch.no_grad():
        y = fcs(x)
        feat, logits = necks(y)
    bn = necks.bn1d
    for n in range(2):
        for p in range(3):
            assert torch.allclose(y[n, :, p], x[n, :, p] @ fcs.fc_bin[p], atol=1e-6)
            # BN channel of (c, p) is c * P + p
            z = torch.stack([(y[n, c, p] - bn.running_mean[c * 3 + p]) / (bn.running_var[c * 3 + p] + bn.eps).sqrt()
                             * bn.weight[c * 3 + p] + bn.bias[c * 3 + p] for c in range(5)])
            z = z / z.norm()
            assert torch.allclose(feat[n, :, p], z, atol=1e-6)
            for k in range(7):
                w = necks.fc_bin[p, :, k]
                assert torch.allclose(logits[n, k, p], z @ w / w.norm(), atol=1e-6)
    with pytest.raises(ValueError, match=r"SeparateFCs expects part features \[N, 4, 3\]"):
        fcs(torch.zeros(2, 4, 2))


# ------------------------------------------------------------------------------------------
# The whole model
# ------------------------------------------------------------------------------------------


def test_shapes_train_and_eval():
    model = build_model(CASIA_B)
    x = features(4, 60)
    labels = torch.tensor([0, 0, 1, 1])
    out = run(model, x, labels)
    assert out["training_feat"]["triplet"]["embeddings"].shape == (4, 256, 19)
    assert out["training_feat"]["softmax"]["logits"].shape == (4, 74, 19)
    assert out["training_feat"]["triplet"]["labels"] is labels
    assert out["training_feat"]["softmax"]["labels"] is labels
    assert out["inference_feat"]["embeddings"].shape == (4, 256, 19)
    assert out["visual_summary"]["image/pose"].shape == (4, 60, 17, 2)
    model.eval()
    with torch.no_grad():
        out = run(model, x)
    emb = out["inference_feat"]["embeddings"]
    assert emb.shape == (4, 256, 19)
    # test embeddings are the BNNeck's L2-normalised features, per part
    assert torch.allclose(emb.norm(dim=1), torch.ones(4, 19), atol=1e-5)
    assert out["training_feat"]["softmax"]["logits"].abs().max() <= 1 + 1e-5  # cosine logits


def test_branches_see_their_channels_and_joints():
    """pose reads channels 0-1, bone 2-3, angle channel 4 of joints 5..16; channel 5 is unused."""
    torch.manual_seed(0)
    model = build_model(SMALL).eval()
    x = features(2, 10)
    with torch.no_grad():
        base = run(model, x)["inference_feat"]["embeddings"]
        parts = {}
        for name, (chan, joints) in {"pose": (0, slice(None)), "bone": (3, slice(None)),
                                     "angle_head": (4, slice(0, 5)), "angle": (4, slice(5, 17)),
                                     "unused": (5, slice(None))}.items():
            y = x.clone()
            y[:, chan, :, joints] += 1.0
            parts[name] = (run(model, y)["inference_feat"]["embeddings"] - base).abs().amax(dim=(0, 1))
    # part columns: pose 0..7, bone 8..15, angle 16..18; the BNNeck BN is per (channel, part)
    assert (parts["pose"][:8] > 1e-4).all() and (parts["pose"][8:] < 1e-6).all()
    assert (parts["bone"][8:16] > 1e-4).all() and (parts["bone"][:8] < 1e-6).all() and (parts["bone"][16:] < 1e-6).all()
    assert (parts["angle"][16:] > 1e-4).all() and (parts["angle"][:16] < 1e-6).all()
    assert (parts["angle_head"] < 1e-6).all() and (parts["unused"] < 1e-6).all()


def test_packed_batch_equals_sequences_run_separately():
    torch.manual_seed(0)
    model = build_model(SMALL).eval()
    a, b = features(1, 13, seed=1), features(1, 21, seed=2)
    with torch.no_grad():
        ea = run(model, a)["inference_feat"]["embeddings"]
        eb = run(model, b)["inference_feat"]["embeddings"]
        packed = run(model, torch.cat([a, b], dim=2), torch.tensor([3, 5]),
                     torch.tensor([[13, 21]], dtype=torch.int32))
    assert packed["inference_feat"]["embeddings"].shape == (2, 32, 19)
    assert torch.allclose(packed["inference_feat"]["embeddings"], torch.cat([ea, eb]), atol=1e-5)
    assert packed["training_feat"]["softmax"]["logits"].shape == (2, 6, 19)


def test_packed_batch_trains_like_a_stacked_batch():
    """In training mode too (BatchNorm statistics over the same frames)."""
    torch.manual_seed(0)
    model = build_model(SMALL).train()
    x = features(3, 9, seed=4)
    stacked = run(model, x)["training_feat"]["triplet"]["embeddings"]
    packed_x = torch.cat(list(x.split(1)), dim=2)
    packed = run(model, packed_x, None, torch.tensor([[9, 9, 9]]))["training_feat"]["triplet"]["embeddings"]
    assert torch.allclose(stacked, packed, atol=1e-5)


def test_bad_input_is_a_clear_error():
    model = build_model(SMALL)
    with pytest.raises(ValueError, match=r"GPGait expects HOD_MultiInput \+ SkeletonInput features \[N, 6, T, 17, 1\]"):
        run(model, torch.zeros(2, 3, 10, 17, 1))
    with pytest.raises(ValueError, match=r"seqL \[4, 4\] does not describe a packed batch"):
        run(model, torch.zeros(1, 6, 10, 17, 1), None, torch.tensor([[4, 4]]))
