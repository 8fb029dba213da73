"""SkeletonGait end to end through the command line, both ways a user gets maps to it:

* on the fly: the demo config trains and tests straight from the pose pickles (the
  ``SkeletonMap`` transform renders in the loader);
* converted: ``python -m fastposegait.converters skeleton-maps`` writes the map dataset in the
  original's layout, and a config written the original's way (map pickles as ``dataset_root``,
  no ``SkeletonMap``, the evaluator's transform a bare list) trains and tests on it.

The converted maps are the on-the-fly maps grey level for grey level, so testing the same
weights (the seeded initial ones; the demo's training through the CLI is
tests/engine/test_models_cli.py's) both ways must give the same numbers."""
import json
import subprocess
import sys

import pytest
import yaml

from cli_helpers import REPO, TINY, run_cli, schedule_overrides, synthetic_data_overrides

pytestmark = pytest.mark.slow

DEMO = REPO / "configs" / "demo" / "skeletongait_demo.yaml"
TINY_SG = TINY["DeepGaitV2"]["overrides"]


def _scalars(report_path):
    report = json.loads(report_path.read_text())
    return {k: v for k, v in report["results"].items() if k.startswith("scalar/test_accuracy/")}


def _upstream_style_config(demo: dict, maps_root, partition) -> dict:
    """The demo as the original writes a SkeletonGait config: pre-rendered maps as the dataset,
    no SkeletonMap, the evaluator's transform a bare one-entry list."""
    cfg = json.loads(json.dumps(demo))
    cfg["data_cfg"].update(dataset_root=str(maps_root), dataset_partition=str(partition), num_workers=0,
                           data_in_use=[True], cache=False)
    cfg["data_cfg"].pop("synthetic")
    cfg["evaluator_cfg"]["transform"] = [{"type": "BaseSilCuttingTransform"}]
    cfg["trainer_cfg"]["transform"] = [{"type": "Compose", "trf_cfg": [
        {"type": "RandomPerspective", "prob": 0.2},
        {"type": "BaseSilCuttingTransform"},
        {"type": "RandomHorizontalFlip", "prob": 0.2},
        {"type": "RandomRotate", "prob": 0.2},
    ]}]
    cfg["trainer_cfg"]["save_name"] = cfg["evaluator_cfg"]["save_name"] = "SkeletonGait-maps"
    return cfg


def test_on_the_fly_and_converted_maps_give_the_same_results(tmp_path):
    # the demo's model at initialisation (seeded: the same weights in every run), tested on the fly
    data = synthetic_data_overrides(tmp_path)
    run_cli(["--cfgs", str(DEMO), "--phase", "test", "--iter", "0", *data, *TINY_SG], tmp_path)
    out = tmp_path / "output" / "Synthetic-CASIA-B" / "DeepGaitV2" / "SkeletonGait-demo" / "checkpoints"
    (report,) = out.glob("*-test.json")
    on_the_fly = _scalars(report)
    assert {"scalar/test_accuracy/NM@R1", "scalar/test_accuracy/BG@R1", "scalar/test_accuracy/CL@R1"} <= set(on_the_fly)

    proc = subprocess.run(
        [sys.executable, "-m", "fastposegait.converters", "skeleton-maps", "--input", str(tmp_path / "data"),
         "--output", str(tmp_path / "maps"), "--dataset", "Synthetic", "--no-progress"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    maps_root = tmp_path / "maps" / "Synthetic_sigma_8.0_" / "pkl"
    poses = sorted(p.relative_to(tmp_path / "data") for p in (tmp_path / "data").glob("*/*/*/*.pkl"))
    assert poses and sorted(p.relative_to(maps_root) for p in maps_root.glob("*/*/*/*.pkl")) == poses

    cfg = _upstream_style_config(yaml.safe_load(DEMO.read_text()), maps_root, tmp_path / "partition.json")
    cfg_path = tmp_path / "skeletongait_maps.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    # the original's way of training works on the converted tree: 2 iterations, then its test
    # phase on the same initial weights (--iter 0) gives the on-the-fly numbers
    run_cli(["--cfgs", str(cfg_path), "--phase", "train", *TINY_SG, *schedule_overrides(2, 2)], tmp_path)
    maps_out = tmp_path / "output" / "Synthetic-CASIA-B" / "DeepGaitV2" / "SkeletonGait-maps" / "checkpoints"
    assert (maps_out / "SkeletonGait-maps-00002.pt").is_file()
    proc = run_cli(["--cfgs", str(cfg_path), "--phase", "test", "--iter", "0", *TINY_SG], tmp_path)
    (report,) = maps_out.glob("*-test.json")
    assert _scalars(report) == on_the_fly, proc.stderr  # same maps, same weights: the same numbers
