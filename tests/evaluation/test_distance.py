import numpy as np
import pytest
import torch

import eval_reference as ref
from fastposegait.evaluation import compute_distance, iter_distance_chunks

# Worked distance example: C = 2, P = 2, feature[i, c, p]
X = torch.tensor([[[3.0, 0.0], [4.0, 1.0]], [[1.0, 1.0], [0.0, 1.0]]])
Y = torch.tensor([[[0.0, 2.0], [0.0, 0.0]], [[3.0, 1.0], [0.0, 0.0]]])


pytestmark = pytest.mark.usefixtures("rank_path")


@pytest.mark.parametrize(
    "metric, expected",
    [("euc", [[3.618034, 2.707107], [1.207107, 1.5]]), ("cos", [[1.0, 0.7], [0.646447, 0.146447]])],
)
def test_worked_example(metric, expected):
    d = compute_distance(X, Y, metric)
    assert d.dtype == torch.float32 and d.shape == (2, 2)
    np.testing.assert_allclose(d.numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("metric", ["euc", "cos"])
@pytest.mark.parametrize("parts", [1, 4])
def test_matches_brute_force_loops(metric, parts):
    rng = np.random.default_rng(parts)
    x = rng.normal(size=(9, 5, parts)).astype(np.float32)
    y = rng.normal(size=(7, 5, parts)).astype(np.float32)
    x[0] = 0  # a zero vector: norm clamped at 1e-12 for cos, stays zero
    ours = compute_distance(torch.from_numpy(x), torch.from_numpy(y), metric).numpy()
    np.testing.assert_allclose(ours, ref.distance(x, y, metric), atol=1e-5)


@pytest.mark.parametrize("metric", ["euc", "cos"])
@pytest.mark.parametrize("chunk_size", [1, 3, 7, 1000])
def test_chunked_equals_unchunked(metric, chunk_size):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(23, 16, 3, generator=g), torch.randn(11, 16, 3, generator=g)
    whole = compute_distance(x, y, metric, chunk_size=10**6)
    chunked = compute_distance(x, y, metric, chunk_size=chunk_size)
    np.testing.assert_allclose(chunked.numpy(), whole.numpy(), rtol=1e-6, atol=1e-6)
    blocks = list(iter_distance_chunks(x, y, metric, chunk_size=chunk_size))
    assert [s for s, _ in blocks] == list(range(0, 23, chunk_size))[: len(blocks)]
    np.testing.assert_allclose(torch.cat([b for _, b in blocks]).numpy(), whole.numpy(), rtol=1e-6, atol=1e-6)


def test_numpy_2d_and_half_inputs():
    x = X.numpy()
    d = compute_distance(x.astype(np.float16), Y.numpy(), "euc").cpu()
    assert d.dtype == torch.float32
    np.testing.assert_allclose(d.numpy(), [[3.618034, 2.707107], [1.207107, 1.5]], atol=1e-6)
    # [N, C] is one part
    np.testing.assert_allclose(compute_distance(X[:, :, 0], Y[:, :, 0]).cpu().numpy(), [[5, 4], [1, 2]], atol=1e-6)


def test_bad_inputs():
    with pytest.raises(ValueError, match="unknown distance metric 'l1'"):
        compute_distance(X, Y, "l1")
    with pytest.raises(ValueError, match=r"differ in \[C, P\]"):
        compute_distance(X, Y[:, :1], "euc")
    with pytest.raises(ValueError, match=r"must be \[N, C, P\]"):
        compute_distance(X[0, 0], Y)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("metric", ["euc", "cos"])
def test_cuda_equals_cpu(metric):
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(50, 32, 5, generator=g), torch.randn(40, 32, 5, generator=g)
    cpu = compute_distance(x, y, metric, chunk_size=7)
    cuda = compute_distance(x.cuda(), y.cuda(), metric, chunk_size=7)
    assert cuda.device.type == "cuda"
    np.testing.assert_allclose(cuda.cpu().numpy(), cpu.numpy(), rtol=1e-5, atol=1e-5)
