"""model_cfg values are checked against the type hints of the model's ``_build`` signature."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import pytest

from fastposegait.errors import ConfigError
from fastposegait.modeling import BaseModel, build_model


@pytest.mark.parametrize("model, bad, message", [
    # 19ba7d2: TypeError from torch.empty deep inside ResGCN
    ("GaitGraph2", {"input_branch": "abc"},
     "model_cfg.input_branch: must be a list of integers, got 'abc' (str) (an argument of model GaitGraph2)"),
    # 19ba7d2: TypeError "unsupported operand type(s) for //"
    ("GaitGraph2", {"reduction": "8"}, "model_cfg.reduction: must be an integer, got '8' (str); the value is quoted"),
    # 19ba7d2: built, with the string 'no' taken as true
    ("GaitGraph2", {"tta": "no"}, "model_cfg.tta: must be true or false, got 'no' (str)"),
    ("GaitGraph2", {"main_stream": [32, 64.5]}, "model_cfg.main_stream: must be a list of integers"),
    ("GaitTR", {"joint_format": 17}, "model_cfg.joint_format: must be a string, got 17 (int)"),
    ("gpgait", {"in_channels": [2, 8, 8, 8, 8], "num_class": 4, "share_num": 2.0},
     "model_cfg.share_num: must be an integer, got 2.0 (float)"),
])
def test_model_cfg_values_of_the_wrong_type_are_config_errors(model, bad, message):
    with pytest.raises(ConfigError) as info:
        build_model({"model": model, **bad})
    assert message in str(info.value)


class _Hinted(BaseModel):
    input_channels_key = "widths"

    def build_network(self, model_cfg: Dict[str, Any]) -> None:
        self.args = self.cfg_args(self._build, model_cfg)

    def _build(self, widths: Sequence[int] = (3, 8), scale: float = 1.0, depth: Optional[int] = None,
               name: str = "x", ratios: List[float] = (0.5,), anything: Any = None, flag: bool = False) -> None:
        pass

    def forward(self, inputs):  # pragma: no cover - not run
        raise NotImplementedError


def test_accepted_values_optional_and_unchecked_hints():
    model = _Hinted({"model": "_Hinted", "widths": (2, 4), "scale": 2, "depth": None, "name": "y",
                     "ratios": [1, 0.5], "anything": object(), "flag": True})
    assert model.args["scale"] == 2 and model.args["depth"] is None
    _Hinted({"model": "_Hinted", "depth": 3})
    with pytest.raises(ConfigError, match=r"model_cfg.depth: must be an integer or null, got 'deep'"):
        _Hinted({"model": "_Hinted", "depth": "deep"})
    with pytest.raises(ConfigError, match=r"model_cfg.scale: must be a number, got '1e-3' \(str\); "
                                          r"YAML reads 1e-3 as text, write 1.0e-3"):
        _Hinted({"model": "_Hinted", "scale": "1e-3"})
    with pytest.raises(ConfigError, match=r"model_cfg.ratios: must be a list of numbers"):
        _Hinted({"model": "_Hinted", "ratios": [True]})


def test_input_channels_declared_by_a_model():
    assert _Hinted.input_channels({"widths": [2, 16]}) == 2
    assert _Hinted.input_channels({}) == 3  # the _build default
    assert BaseModel.input_channels({"in_channels": 3}) is None  # not declared
