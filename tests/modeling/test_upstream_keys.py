"""Every model config's state dict is upstream FastPoseGait's, key for key, in upstream's order,
with upstream's shapes, so upstream checkpoints load strictly and ours load into upstream's code.

The reference is ``tests/fixtures/upstream_model_keys.json.gz``: the keys and shapes of the
``model`` entry of upstream's checkpoints (upstream BNU-IVC/FastPoseGait at 94da9c8), measured
by building each of its configs on CPU. The order matters beyond the names: an optimizer state
indexes parameters by their position in ``model.parameters()`` (the state-dict order without
the buffers), so an upstream optimizer state resumes on the right tensors only if the order is
upstream's. Every config of the listing whose file exists under ``configs/`` is covered.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Dict, List

import pytest
import torch

from fastposegait.config import load_config
from fastposegait.engine.checkpoint import load_checkpoint, load_model_state, resolve_restore_hint
from fastposegait.modeling import build_model

REPO = Path(__file__).resolve().parents[2]
LISTING = json.loads(gzip.open(REPO / "tests" / "fixtures" / "upstream_model_keys.json.gz", "rt").read())["configs"]
#: buffers among the listed keys (the rest are parameters, in optimizer order)
BUFFER_SUFFIXES = (".running_mean", ".running_var", ".num_batches_tracked", ".A")
#: configs whose random checkpoint is large (> 10M parameters: 40+ MB each) load in the slow lane
LARGE = 10_000_000


def _config_params() -> List:
    params = []
    for name, entry in LISTING.items():
        marks = [pytest.mark.skipif(not (REPO / "configs" / name).is_file(),
                                    reason=f"configs/{name} is not in this checkout")]
        params.append(pytest.param(name, marks=marks, id=name))
    return params


def _large_marked(params: List) -> List:
    return [pytest.param(*p.values, marks=[*p.marks, *([pytest.mark.slow] if LISTING[p.values[0]]["params"] > LARGE
                                                        else [])], id=p.id) for p in params]


CONFIGS = _config_params()


def build(name: str) -> torch.nn.Module:
    return build_model(load_config(REPO / "configs" / name)["model_cfg"])


def upstream_state(name: str, like: Dict[str, torch.Tensor], seed: int) -> Dict[str, torch.Tensor]:
    """A state dict with exactly upstream's keys and shapes (in upstream's order), random
    values (positive variances, integer counters)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in LISTING[name]["state_dict"].items():
        dtype = like[key].dtype if key in like else torch.float32
        if dtype.is_floating_point:
            value = torch.rand(shape, generator=g, dtype=dtype) + (0.5 if key.endswith("running_var") else -0.5)
        else:
            value = torch.randint(0, 1000, shape, generator=g, dtype=dtype)
        state[key] = value
    return state


def test_the_listing_covers_the_four_graph_models_and_gpgait_plusplus():
    models = {entry["model"] for entry in LISTING.values()}
    assert models == {"GaitGraph1", "GaitGraph2", "GaitTR", "gpgait", "GPGait_PlusPlus"}
    assert len(LISTING) == 39
    present = [name for name in LISTING if (REPO / "configs" / name).is_file()]
    # the 33 configs of the four graph models are in the repository
    assert len([n for n in present if not n.startswith("gpgait++/")]) == 33


@pytest.mark.parametrize("name", CONFIGS)
def test_state_dict_has_upstreams_keys_order_and_shapes(name):
    model = build(name)
    ours = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    upstream = [(k, v) for k, v in LISTING[name]["state_dict"].items()]
    assert [k for k, _ in ours] == [k for k, _ in upstream]
    assert ours == upstream
    # the parameters (optimizer order) are upstream's keys without the buffers, in order
    assert [n for n, _ in model.named_parameters()] == [k for k, _ in upstream if not k.endswith(BUFFER_SUFFIXES)]
    assert sum(p.numel() for p in model.parameters()) == LISTING[name]["params"]


@pytest.mark.parametrize("name", _large_marked(CONFIGS))
def test_an_upstream_checkpoint_loads_strictly_by_path_and_by_iteration(name, tmp_path):
    model = build(name)
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    # what upstream's save_ckpt writes: these four entries and nothing else
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.001, total_steps=40000)
    own = model.state_dict()
    for seed, hint in ((1, 40000), (2, str(tmp_path / "elsewhere.pt"))):  # --iter N, then a file path
        state = upstream_state(name, own, seed=seed + len(name))
        path = folder / "Upstream-40000.pt" if isinstance(hint, int) else Path(hint)
        torch.save({"model": state, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "iteration": 40000}, path)
        found = resolve_restore_hint(hint, folder, "Upstream")
        assert found == path
        ckpt = load_checkpoint(found, model)
        assert load_model_state(model, ckpt["model"], strict=True, path=found) == []
        loaded = model.state_dict()
        assert list(loaded) == list(state)
        for key, value in state.items():
            assert torch.equal(loaded[key], value), key
    # and what we write back is what upstream reads: same keys, same order, same values
    torch.save({"model": model.state_dict()}, tmp_path / "ours.pt")
    again = torch.load(tmp_path / "ours.pt", weights_only=True)["model"]
    assert list(again) == list(state) and all(torch.equal(again[k], state[k]) for k in state)
