"""Every shipped config builds a model with exactly the upstream parameter count.

REFERENCE_PARAMS is the full table of reference parameter counts (39 upstream FastPoseGait
configs and the 5 SkeletonGait configs of OpenGait, counts measured by building the original
code). Rows are checked for the model
families listed in FAMILIES; a family joins the check by adding its folder name there, once
its model is registered and its configs exist. A listed row whose config is missing fails
(it is never skipped).
"""
from pathlib import Path

import pytest

from fastposegait.config import load_config
from fastposegait.modeling import build_model, count_parameters

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

#: config folders whose rows are checked
FAMILIES = ("gaitgraph1", "gaitgraph2", "gaittr", "gpgait", "gpgait++", "skeletongait")

#: config path (relative to configs/) -> reference parameter count
REFERENCE_PARAMS = {
    "gaitgraph1/gaitgraph1_phase1.yaml": 319_530,
    "gaitgraph1/gaitgraph1_phase1_GREW.yaml": 352_426,
    "gaitgraph1/gaitgraph1_phase1_GREW_plus.yaml": 352_426,
    "gaitgraph1/gaitgraph1_phase1_Gait3D.yaml": 319_530,
    "gaitgraph1/gaitgraph1_phase1_Gait3D_plus.yaml": 319_530,
    "gaitgraph1/gaitgraph1_phase1_OUMVLP.yaml": 353_406,
    "gaitgraph1/gaitgraph1_phase1_OUMVLP17.yaml": 352_426,
    "gaitgraph1/gaitgraph1_phase1_OUMVLP_plus.yaml": 353_406,
    "gaitgraph1/gaitgraph1_phase1_plus.yaml": 319_530,
    "gaitgraph2/gaitgraph2.yaml": 350_822,
    "gaitgraph2/gaitgraph2_GREW.yaml": 763_178,
    "gaitgraph2/gaitgraph2_GREW_plus.yaml": 763_178,
    "gaitgraph2/gaitgraph2_Gait3D.yaml": 350_822,
    "gaitgraph2/gaitgraph2_Gait3D_plus.yaml": 350_822,
    "gaitgraph2/gaitgraph2_OUMVLP.yaml": 765_278,
    "gaitgraph2/gaitgraph2_OUMVLP17.yaml": 763_178,
    "gaitgraph2/gaitgraph2_OUMVLP_plus.yaml": 765_278,
    "gaitgraph2/gaitgraph2_plus.yaml": 350_822,
    "gaittr/gaittr.yaml": 512_010,
    "gaittr/gaittr_GREW.yaml": 544_906,
    "gaittr/gaittr_GREW_plus.yaml": 1_319_818,
    "gaittr/gaittr_Gait3D.yaml": 512_010,
    "gaittr/gaittr_Gait3D_plus.yaml": 512_010,
    "gaittr/gaittr_OUMVLP.yaml": 545_458,
    "gaittr/gaittr_OUMVLP17.yaml": 544_906,
    "gaittr/gaittr_OUMVLP_plus.yaml": 1_127_410,
    "gaittr/gaittr_plus.yaml": 512_010,
    "gpgait/gpgait.yaml": 3_654_810,
    "gpgait/gpgait_CCPG.yaml": 3_781_274,
    "gpgait/gpgait_GREW.yaml": 105_222_370,
    "gpgait/gpgait_Gait3D.yaml": 18_640_274,
    "gpgait/gpgait_OUMVLP.yaml": 32_479_008,
    "gpgait/gpgait_SUSTech1K.yaml": 4_510_874,
    "gpgait++/gpgait++.yaml": 5_227_539,
    "gpgait++/gpgait++_CCPG.yaml": 5_354_003,
    "gpgait++/gpgait++_GREW.yaml": 108_777_035,
    "gpgait++/gpgait++_Gait3D.yaml": 20_532_043,
    "gpgait++/gpgait++_OUMVLP.yaml": 36_561_227,  # share_num 4 in the config, 3 built (as the original)
    "gpgait++/gpgait++_SUSTech1K.yaml": 6_083_603,
    # DeepGaitV2 (p3d): 8,036,864 ([1, 1, 1, 1] blocks) or 13,204,736 ([1, 4, 4, 1]) + 4,096 * class_num
    "skeletongait/skeletongait_CCPG.yaml": 8_446_464,
    "skeletongait/skeletongait_GREW.yaml": 95_124_736,
    "skeletongait/skeletongait_Gait3D.yaml": 25_492_736,
    "skeletongait/skeletongait_OUMVLP.yaml": 29_143_552,
    "skeletongait/skeletongait_SUSTech1K.yaml": 9_060_864,
}

#: demo config -> the CASIA-B config whose architecture it must keep
DEMO_ARCHITECTURE = {
    "demo/gaitgraph1_demo.yaml": "gaitgraph1/gaitgraph1_phase1.yaml",
    "demo/gaitgraph2_demo.yaml": "gaitgraph2/gaitgraph2.yaml",
    "demo/gaittr_demo.yaml": "gaittr/gaittr.yaml",
}


def _family(path: str) -> str:
    return path.split("/", 1)[0]


CHECKED = sorted(p for p in REFERENCE_PARAMS if _family(p) in FAMILIES)


def test_table_is_the_full_reference():
    assert len(REFERENCE_PARAMS) == 44
    assert {_family(p) for p in REFERENCE_PARAMS} == {"gaitgraph1", "gaitgraph2", "gaittr", "gpgait", "gpgait++",
                                                      "skeletongait"}
    assert set(FAMILIES) <= {_family(p) for p in REFERENCE_PARAMS}


@pytest.mark.parametrize("path", CHECKED)
def test_config_builds_model_with_reference_parameter_count(path):
    cfg = load_config(CONFIGS / path)
    model = build_model(cfg["model_cfg"])
    assert count_parameters(model) == REFERENCE_PARAMS[path]


def test_every_shipped_config_is_in_the_table():
    shipped = sorted(
        p.relative_to(CONFIGS).as_posix()
        for p in CONFIGS.rglob("*.yaml")
        if p.name != "default.yaml" and p.relative_to(CONFIGS).parts[0] != "demo"
    )
    assert shipped, "no configs found"
    missing = [p for p in shipped if p not in REFERENCE_PARAMS]
    assert not missing, f"configs without a reference parameter count: {missing}"


@pytest.mark.parametrize("demo,reference", sorted(DEMO_ARCHITECTURE.items()))
def test_demo_keeps_the_casia_b_architecture(demo, reference):
    demo_cfg = load_config(CONFIGS / demo)["model_cfg"]
    assert demo_cfg == load_config(CONFIGS / reference)["model_cfg"]
    assert count_parameters(build_model(demo_cfg)) == REFERENCE_PARAMS[reference]
