"""Adjacency construction (ST-GCN distance partition)."""
import numpy as np
import torch

from fastposegait.modeling.graph import hop_distance, spatial_adjacency


def test_hop_distance_on_a_chain():
    d = hop_distance(4, [(0, 1), (1, 2), (2, 3)], max_hop=2)
    assert d[0].tolist() == [0, 1, 2, np.inf]
    assert d[3].tolist() == [np.inf, 2, 1, 0]


def test_coco_adjacency_by_hand():
    A = spatial_adjacency("coco", max_hop=2)
    assert A.shape == (3, 17, 17) and A.dtype == torch.float32
    # column-normalised binary reach matrix: every column of sum_k A[k] sums to 1
    assert torch.allclose(A.sum(0).sum(0), torch.ones(17))
    # column 0 (nose) is reached from itself, 1, 2 (1 hop) and 3, 4 (2 hops): 5 joints
    assert torch.isclose(A[0, 0, 0], torch.tensor(1 / 5))
    assert torch.isclose(A[1, 1, 0], torch.tensor(1 / 5))
    assert torch.isclose(A[2, 3, 0], torch.tensor(1 / 5))
    assert A[:, 5, 0].sum() == 0 and A[0, 1, 0] == 0  # shoulder is 3 hops away
    # column 5 (left shoulder): itself; 1 hop 3, 6, 7, 11; 2 hops 1, 4, 8, 9, 12, 13 -> 11 joints
    assert torch.isclose(A[1, 7, 5], torch.tensor(1 / 11))
    assert torch.isclose(A[2, 13, 5], torch.tensor(1 / 11))
    # hop slices are disjoint
    assert ((A > 0).sum(0) <= 1).all()


def test_max_hop_three_has_four_slices_and_openpose_size():
    assert spatial_adjacency("coco", max_hop=3).shape == (4, 17, 17)
    assert spatial_adjacency("alphapose", max_hop=3).shape == (4, 18, 18)
    assert spatial_adjacency("coco-no-head", max_hop=2).shape == (3, 12, 12)
