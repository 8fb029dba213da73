"""RawJointsNN, the parameter-free nearest-neighbour baseline: its features by hand."""
import numpy as np
import pytest
import torch

from fastposegait.modeling import build_model, count_parameters


def test_features_by_hand():
    model = build_model({"model": "RawJointsNN", "joint_format": "coco"}).eval()
    assert count_parameters(model) == 0
    seq = np.zeros((2, 17, 3))
    # frame 0: shoulders (0,0),(2,0), hips (0,4),(2,4) -> mid-hip (1,4), torso 4
    seq[0, [5, 6, 11, 12], :2] = [(0, 0), (2, 0), (0, 4), (2, 4)]
    # frame 1: shifted by (10, 0), torso 2 -> mean torso over the sequence 3
    seq[1, [5, 6, 11, 12], :2] = [(10, 2), (12, 2), (10, 4), (12, 4)]
    seq[0, 0, :2], seq[1, 0, :2] = (1, -2), (11, 0)  # nose
    x = torch.from_numpy(seq).permute(2, 0, 1).unsqueeze(0).unsqueeze(-1).float()  # [1, 3, T, V, 1]
    emb = model(([x], torch.tensor([0]), None, None, None))["inference_feat"]["embeddings"]
    assert emb.shape == (1, 17 * 4, 1)
    feats = emb[0, :, 0].reshape(17, 4).double()
    # nose relative to the mid-hip: frame 0 (0, -6), frame 1 (0, -4); divided by 3
    assert feats[0].tolist() == pytest.approx([0.0, -5 / 3, 0.0, 1 / 3], abs=1e-6)
    # left shoulder: frame 0 (-1, -4), frame 1 (-1, -2) -> mean (-1, -3)/3, std (0, 1)/3
    assert feats[5].tolist() == pytest.approx([-1 / 3, -1.0, 0.0, 1 / 3], abs=1e-6)


def test_same_walk_elsewhere_in_the_image_gets_the_same_embedding():
    model = build_model({"model": "RawJointsNN", "joint_format": "openpose"}).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 20, 18, 1, generator=g) * 100
    moved = x.clone()
    moved[:, :2] = moved[:, :2] * 2.5 + 40  # farther from the camera is smaller: same walk, other scale
    a = model(([x], None, None, None, None))["inference_feat"]["embeddings"]
    b = model(([moved], None, None, None, None))["inference_feat"]["embeddings"]
    assert torch.allclose(a, b, atol=1e-5)
    with pytest.raises(ValueError, match="RawJointsNN expects"):
        model(([x[:, :, :, :17]], None, None, None, None))
