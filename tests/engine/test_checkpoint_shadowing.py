"""A checkpoint whose mappings were given attributes by pickle's BUILD (allowed by torch's
weights-only loader on OrderedDict) is refused with one line: an ``items`` attribute would
shadow the method the loader calls (a TypeError traceback before)."""
from collections import OrderedDict

import pytest
import torch

from fastposegait.engine.checkpoint import load_checkpoint
from fastposegait.errors import CheckpointError


def _save(tmp_path, model_state, rename=None):
    """Save; ``rename`` = (placeholder, name) renames an attribute in the pickle bytes (pickling
    itself calls ``items()``, so that attribute cannot be set before saving). The legacy
    (non-zip) format has no checksum to update."""
    path = tmp_path / "ckpt.pt"
    torch.save({"model": model_state, "iteration": 4}, path, _use_new_zipfile_serialization=False)
    if rename:
        data = path.read_bytes()
        assert data.count(rename[0].encode()) == 1
        path.write_bytes(data.replace(rename[0].encode(), rename[1].encode()))
    return path


@pytest.mark.parametrize("attribute", ["items", "keys", "values"])
def test_a_state_dict_with_a_shadowing_attribute_is_refused(tmp_path, attribute):
    state = OrderedDict(weight=torch.ones(2))
    placeholder = "zz" + attribute[2:]  # same length
    setattr(state, placeholder, "gotcha")
    path = _save(tmp_path, state, rename=(placeholder, attribute))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"{path}: refused: a mapping in the file carries attributes ({attribute})")
    assert "\n" not in message


def test_a_nested_mapping_with_attributes_is_refused(tmp_path):
    inner = OrderedDict(lr=0.1)
    inner.get = "gotcha"
    path = tmp_path / "ckpt.pt"
    torch.save({"model": OrderedDict(weight=torch.ones(2)), "optimizer": {"param_groups": [inner]}}, path)
    with pytest.raises(CheckpointError, match=r"carries attributes \(get\)"):
        load_checkpoint(path)


def test_a_real_state_dict_with_its_metadata_loads(tmp_path):
    model = torch.nn.Linear(2, 3)
    path = _save(tmp_path, model.state_dict())  # state_dict() attaches _metadata
    ckpt = load_checkpoint(path)
    assert torch.equal(ckpt["model"]["weight"], model.weight.detach())
