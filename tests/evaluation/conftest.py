"""Fixtures shared by the evaluation tests."""
import pytest

from fastposegait.evaluation import distance, ranking

# (elementwise backend on CPU blocks, ranking path): NumPy is what CPU runs, torch what CUDA runs;
# "sparse" extracts the candidates before the last match, "sorted" sorts packed int64 keys.
PATHS = [("numpy", "auto"), ("numpy", "sparse"), ("numpy", "sorted"), ("torch", "sparse"), ("torch", "sorted")]


@pytest.fixture(params=PATHS, ids=["-".join(p) for p in PATHS])
def rank_path(request, monkeypatch):
    """Run a test once per implementation path, so each is checked against the references."""
    backend, path = request.param
    monkeypatch.setattr(distance, "NUMPY_ON_CPU", backend == "numpy")
    monkeypatch.setattr(ranking, "NUMPY_ON_CPU", backend == "numpy")
    if path != "auto":
        monkeypatch.setattr(ranking, "SPARSE_FRACTION", 1.0 if path == "sparse" else -1.0)
    return request.param
