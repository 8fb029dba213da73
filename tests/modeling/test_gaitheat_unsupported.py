"""GaitHeat is not supported: a config that asks for it (or for its heatmap transforms
``Sequence_level``, ``RotationMat``, ``AffineMat``) stops with one line that says so and why,
not with "unknown model 'GaitHeat' (did you mean 'GaitTR'?)"."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fastposegait.config import ConfigError, load_typed_config
from fastposegait.data.transforms import build_transforms
from fastposegait.errors import UnknownNameError
from fastposegait.main import main
from fastposegait.modeling import build_model
from fastposegait.registry import MODELS, TRANSFORMS, Registry

REPO = Path(__file__).resolve().parents[2]

# The original's GaitHeat recipe, written out (model, losses, solver, samplers, transforms).
GAITHEAT_CFG = {
    "data_cfg": {
        "dataset_name": "CASIA-B",
        "dataset_root": "your_path",
        "dataset_partition": "./datasets/CASIA-B/CASIA-B.json",
        "data_in_use": [True, True, False, False],
        "num_workers": 1,
        "test_dataset_name": "CASIA-B",
    },
    "evaluator_cfg": {
        "enable_float16": True,
        "restore_ckpt_strict": True,
        "restore_hint": 60000,
        "save_name": "GaitHeat",
        "sampler": {"batch_size": 16, "sample_type": "all_ordered", "frames_all_limit": 720,
                    "type": "InferenceSampler"},
        "transform": [{"type": "Sequence_level"}, {"type": "RotationMat"}],
        "metric": "euc",
    },
    "loss_cfg": [
        {"loss_term_weight": 1.0, "margin": 0.2, "type": "TripletLoss", "log_prefix": "fusion_triplet"},
        {"loss_term_weight": 1.0, "scale": 16, "type": "CrossEntropyLoss", "log_prefix": "fusion_softmax",
         "log_accuracy": True},
    ],
    "model_cfg": {
        "model": "GaitHeat",
        "backbone_cfg": {"type": "ResNet9", "block": "BasicBlock", "channels": [64, 128, 256, 512],
                         "layers": [1, 1, 1, 1], "strides": [1, 2, 2, 1], "maxpool": False},
        "SeparateFCs": {"in_channels": 512, "out_channels": 256, "parts_num": 16},
        "SeparateBNNecks": {"class_num": 74, "in_channels": 256, "parts_num": 16},
        "bin_num": [16],
    },
    "optimizer_cfg": {"lr": 0.1, "momentum": 0.9, "solver": "SGD", "weight_decay": 0.0005},
    "scheduler_cfg": {"gamma": 0.1, "milestones": [20000, 40000, 50000], "scheduler": "MultiStepLR"},
    "trainer_cfg": {
        "enable_float16": True,
        "fix_BN": False,
        "with_test": True,
        "log_iter": 100,
        "restore_ckpt_strict": True,
        "restore_hint": 0,
        "save_iter": 10000,
        "save_name": "GaitHeat",
        "sync_BN": True,
        "total_iter": 60000,
        "sampler": {"batch_shuffle": True, "batch_size": [8, 8], "frames_num_fixed": 30,
                    "sample_type": "fixed_unordered", "type": "TripletSampler"},
        "transform": [{"type": "Sequence_level"}, {"type": "RotationMat"}],
    },
}


def assert_says_not_supported(text: str, name: str) -> None:
    assert "\n" not in text.strip(), text
    assert f"{name!r} is not supported" in text, text
    assert "heatmaps" in text and "RGB" in text, text  # the reason
    assert "docs/models.md" in text, text
    assert "did you mean" not in text, text


def write_cfg(tmp_path: Path, cfg: dict) -> Path:
    path = tmp_path / "gaitheat.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_config_naming_gaitheat_fails_at_load_with_one_line(tmp_path):
    path = write_cfg(tmp_path, GAITHEAT_CFG)
    with pytest.raises(ConfigError) as info:
        load_typed_config(path)
    text = str(info.value)
    assert_says_not_supported(text, "GaitHeat")
    assert text.startswith(f"{path}: model_cfg.model: model 'GaitHeat'")


def test_command_line_prints_one_line_and_exits_2(tmp_path, capsys):
    path = write_cfg(tmp_path, GAITHEAT_CFG)
    assert main(["--cfgs", str(path), "--phase", "train"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("config error: "), err
    assert_says_not_supported(err[0], "GaitHeat")


@pytest.mark.parametrize("name", ["Sequence_level", "RotationMat", "AffineMat"])
def test_gaitheat_transforms_say_why_in_a_config_of_a_supported_model(tmp_path, name):
    cfg = yaml.safe_load((REPO / "configs" / "gaitgraph2" / "gaitgraph2.yaml").read_text())
    cfg["trainer_cfg"]["transform"] = [{"type": name}]
    path = write_cfg(tmp_path, cfg)
    with pytest.raises(ConfigError) as info:
        load_typed_config(path)
    assert_says_not_supported(str(info.value), name)
    assert "trainer_cfg.transform.0.type" in str(info.value)


def test_building_directly_gives_the_same_reason():
    with pytest.raises(UnknownNameError) as info:
        build_model(GAITHEAT_CFG["model_cfg"])
    assert_says_not_supported(str(info.value), "GaitHeat")
    with pytest.raises(UnknownNameError) as info:
        build_transforms(GAITHEAT_CFG["trainer_cfg"]["transform"], "trainer_cfg.transform")
    assert_says_not_supported(str(info.value), "Sequence_level")
    assert "GaitHeat" not in MODELS and "RotationMat" not in TRANSFORMS


def test_a_registered_name_wins_over_the_not_supported_note():
    """A user who registers their own GaitHeat (custom_imports) gets it, not the note."""
    registry = Registry("model", unsupported={"GaitHeat": "a reason"})
    with pytest.raises(UnknownNameError, match="'GaitHeat' is not supported: a reason"):
        registry.get("GaitHeat")

    class GaitHeat:
        pass

    registry.add(GaitHeat, "GaitHeat")
    assert registry.get("GaitHeat") is GaitHeat
    # other unknown names keep the usual message with a suggestion
    with pytest.raises(UnknownNameError, match="unknown model 'GaitHeet' \\(did you mean 'GaitHeat'\\?\\)"):
        registry.get("GaitHeet")
