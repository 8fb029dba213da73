"""Cutting test batches into model calls: the pieces are right, and in evaluation mode the
embeddings do not depend on the cut (float64, so equality is tight)."""
import pytest
import torch

from fastposegait.engine.inference import embed_batch, split_batch
from fastposegait.modeling import build_model


def stacked(n=7):
    x = torch.arange(n * 2 * 3, dtype=torch.float64).reshape(n, 2, 3)
    return ([x], torch.arange(n), [f"t{i}" for i in range(n)], [f"v{i}" for i in range(n)], None)


def packed(lengths=(3, 1, 4, 2, 5)):
    total = sum(lengths)
    x = torch.arange(total, dtype=torch.float64).reshape(1, 1, total, 1)  # time on axis 2 (time_axis 1)
    n = len(lengths)
    return ([x], torch.arange(n), list("abcde")[:n], list("VWXYZ")[:n], torch.tensor([list(lengths)]))


def test_split_stacked_batch():
    pieces = split_batch(stacked(), time_axes=[0], size=3)
    assert [p.num_sequences for p in pieces] == [3, 3, 1]
    assert torch.equal(torch.cat([p[0][0] for p in pieces]), stacked()[0][0])
    assert pieces[2][1].tolist() == [6] and pieces[2][2] == ["t6"] and pieces[1][3] == ["v3", "v4", "v5"]
    assert all(p[4] is None for p in pieces)


def test_split_packed_batch_at_sequence_boundaries():
    pieces = split_batch(packed(), time_axes=[1], size=2)
    assert [p[4].tolist() for p in pieces] == [[[3, 1]], [[4, 2]], [[5]]]
    frames = [p[0][0][0, 0, :, 0].tolist() for p in pieces]
    assert frames == [[0, 1, 2, 3], [4, 5, 6, 7, 8, 9], [10, 11, 12, 13, 14]]
    assert [p[2] for p in pieces] == [["a", "b"], ["c", "d"], ["e"]]


GG2 = {"model": "GaitGraph2", "joint_format": "coco", "input_num": 3, "reduction": 8, "block": "Bottleneck",
       "input_branch": [5, 16, 8], "main_stream": [8, 32, 64], "num_class": 16, "tta": True}
GPGAIT = {"model": "gpgait", "in_channels": [2, 8, 8, 16, 16], "num_class": 4, "share_num": 3}


@pytest.mark.parametrize("size", [1, 2, 3, 100])
def test_stacked_embeddings_do_not_depend_on_the_cut(size):
    torch.manual_seed(0)
    model = build_model(GG2).double().eval()
    x = torch.randn(5, 12, 17, 3, 5, dtype=torch.float64)
    inputs = ([x], torch.arange(5), ["nm-01"] * 5, ["000"] * 5, None)
    with torch.no_grad():
        whole = embed_batch(model, inputs, time_axes=[0])
        cut = embed_batch(model, inputs, time_axes=[0], max_sequences=size)
    assert whole.shape == (5, 48, 1)
    assert torch.allclose(whole, cut, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("size", [1, 2, 4])
def test_packed_embeddings_do_not_depend_on_the_cut(size):
    torch.manual_seed(0)
    model = build_model(GPGAIT).double().eval()
    lengths = [6, 9, 5, 7]
    x = torch.randn(1, 6, sum(lengths), 17, 1, dtype=torch.float64)
    inputs = ([x], torch.arange(4), ["nm-01"] * 4, ["000"] * 4, torch.tensor([lengths]))
    with torch.no_grad():
        whole = embed_batch(model, inputs, time_axes=[1])
        cut = embed_batch(model, inputs, time_axes=[1], max_sequences=size)
    assert whole.shape == (4, 16, 19)
    assert torch.allclose(whole, cut, rtol=1e-10, atol=1e-12)
