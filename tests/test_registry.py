import subprocess
import sys

import pytest

from fastposegait.registry import Registry, UnknownNameError


def test_register_get_and_alias():
    reg = Registry("widget")

    @reg.register("Spinner", aliases=("spinner_v1",))
    class Spinner:
        pass

    assert reg.get("Spinner") is Spinner
    assert reg.get("spinner_v1") is Spinner
    assert reg.canonical("spinner_v1") == "Spinner"
    assert reg.names() == ["Spinner", "spinner_v1"]
    assert "Spinner" in reg and "Other" not in reg


def test_duplicate_name_is_an_error():
    reg = Registry("widget")
    reg.add(object(), "a")
    with pytest.raises(ValueError, match="widget name 'a' is already registered"):
        reg.add(object(), "a")
    with pytest.raises(ValueError, match="already registered"):
        reg.add(object(), "b", aliases=("a",))


def test_unknown_name_lists_valid_names_and_closest_match():
    reg = Registry("model")
    for name in ("GaitGraph2", "GaitTR"):
        reg.add(object(), name)
    with pytest.raises(UnknownNameError) as info:
        reg.get("GaitGrahp2", where="cfg.yaml: model_cfg.model")
    msg = str(info.value)
    assert msg.startswith("cfg.yaml: model_cfg.model: unknown model 'GaitGrahp2'")
    assert "did you mean 'GaitGraph2'?" in msg
    assert msg.endswith("Valid model names: GaitGraph2, GaitTR")


def test_builtin_registries_hold_upstream_names():
    from fastposegait.registry import EVALUATORS, LOSSES, MODELS, SAMPLERS, TRANSFORMS

    assert "GaitGraph2" in MODELS
    assert {"SupConLoss_Lp", "TripletLoss"} <= set(LOSSES.names())
    assert {"TripletSampler", "CommonSampler", "InferenceSampler"} <= set(SAMPLERS.names())
    assert "evaluate_indoor_dataset" in EVALUATORS
    for name in ("NormalizeEmpty", "FlipSequence", "InversePosesPre", "JointNoise", "PointNoise",
                 "RandomMove", "GaitGraph_MultiInput", "SkeletonInput", "Compose"):
        assert name in TRANSFORMS, name


def test_first_lookup_imports_the_builtins_and_nothing_before(tmp_path):
    # a fresh interpreter: importing the registry loads no component; a lookup loads its kind
    code = (
        "import sys\n"
        "from fastposegait.registry import MODELS, TRANSFORMS\n"
        "before = sorted(m for m in sys.modules if m.startswith('fastposegait.modeling'))\n"
        "found = 'GaitGraph2' in MODELS\n"
        "after = 'fastposegait.modeling.models.gaitgraph2' in sys.modules\n"
        "print(before, found, after)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] True True"
