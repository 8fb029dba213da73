"""Every demo config (``configs/demo/*.yaml``, globbed: a new demo is covered automatically)
through ``fastposegait/main.py``: train -> checkpoint -> test, shrunk to seconds (a tiny
synthetic dataset, narrow widths from :data:`TINY`, short clips, 4 iterations with checkpoints
at 2 and 4).

Checked on files and values: the checkpoints' names, iterations and contents, the
config_train.yaml that describes them, the training log, and each test run's JSON, whose
rank-1 accuracies are recomputed in this process from the checkpoint (embedding the test split
again and scoring it with brute-force loops, tests/accuracy_reference.py). Models that honour
``seqL`` (packed ``all_*`` test batches) report the same accuracy with one sequence per batch.
A parameter-free model (nothing to train) is tested untrained only.
"""
import json
import re

import pytest
import torch
import yaml

from accuracy_reference import check_run
from cli_helpers import REPO, TINY, run_cli, schedule_overrides, synthetic_data_overrides
from fastposegait.modeling import build_model, count_parameters

pytestmark = pytest.mark.slow

# Demos on the CASIA-B-like layout (the overrides and the accuracy reference assume it); the
# CCPG and SUSTech1K demos are run by tests/evaluation/test_ccpg_sustech1k_cli.py.
DEMOS = [p for p in sorted((REPO / "configs" / "demo").glob("*.yaml"))
         if yaml.safe_load(p.read_text())["data_cfg"].get("synthetic", {}).get("layout", "casia-b") == "casia-b"]

def load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def test_every_demo_config_is_covered():
    assert len(DEMOS) >= 5
    models = {yaml.safe_load(p.read_text())["model_cfg"]["model"] for p in DEMOS}
    assert models <= set(TINY), f"add a TINY entry for {sorted(models - set(TINY))}"


@pytest.mark.parametrize("config", DEMOS, ids=[p.stem for p in DEMOS])
def test_demo_trains_checkpoints_and_tests(tmp_path, config):
    raw = yaml.safe_load(config.read_text())
    model_name = raw["model_cfg"]["model"]
    tiny = TINY[model_name]
    over = synthetic_data_overrides(tmp_path) + schedule_overrides(4, 2) + tiny["overrides"]
    cfg = str(config)
    save_name = raw["evaluator_cfg"]["save_name"]
    out = tmp_path / "output" / raw["data_cfg"]["dataset_name"] / model_name / save_name
    ckpt_dir = out / "checkpoints"
    trainable = count_parameters(build_model(raw["model_cfg"])) > 0

    if trainable:
        assert raw["trainer_cfg"]["save_name"] == save_name
        proc = run_cli(["--cfgs", cfg, "--phase", "train", *over], tmp_path)
        partition = json.loads((tmp_path / "partition.json").read_text())
        assert (len(partition["TRAIN_SET"]), len(partition["TEST_SET"])) == (4, 2)
        assert sorted(p.name for p in ckpt_dir.glob("*.pt")) == [f"{save_name}-00002.pt", f"{save_name}-00004.pt"]
        first, last = load(ckpt_dir / f"{save_name}-00002.pt"), load(ckpt_dir / f"{save_name}-00004.pt")
        assert (first["iteration"], last["iteration"]) == (2, 4)
        assert {"model", "optimizer", "scheduler", "rng"} <= set(last)
        assert "Iteration 00004" in proc.stderr
        for logged in tiny["logged"]:
            assert logged in proc.stderr, logged
        for key in tiny["trained_keys"]:
            assert not torch.equal(first["model"][key], last["model"][key]), key  # it trained
        floating = [k for k, v in last["model"].items() if v.is_floating_point()]
        changed = [k for k in floating if not torch.equal(last["model"][k], first["model"][k])]
        assert len(changed) >= 0.9 * len(floating), sorted(set(floating) - set(changed))
        # config_train.yaml is the resolved config, and it describes the checkpoints exactly
        saved = yaml.safe_load((out / "config_train.yaml").read_text())
        assert saved["trainer_cfg"]["total_iter"] == 4 and saved["trainer_cfg"]["save_iter"] == 2
        assert saved["data_cfg"]["dataset_root"] == str(tmp_path / "data")
        rebuilt = build_model(saved["model_cfg"])
        assert set(last["model"]) == set(rebuilt.state_dict())
        # constants stay out, except the adjacency the original saves per GaitGraph input branch
        assert not any("mask" in key or (key.endswith(".A") and not re.fullmatch(r"ResGCN\.head\.\d+\.A", key))
                       for key in last["model"])
        rebuilt.load_state_dict(last["model"], strict=True)
        runs = [("00004", "4", ckpt_dir / f"{save_name}-00004.pt"), ("untrained", "0", None)]
    else:
        assert not (tmp_path / "output").exists()
        runs = [("untrained", "0", None)]

    C, P = tiny["embedding"]
    packed = raw["evaluator_cfg"]["sampler"].get("sample_type", "").startswith("all")
    for tag, iteration, checkpoint in runs:
        report_path = ckpt_dir / f"{save_name}-{tag}-test.json"
        proc = run_cli(["--cfgs", cfg, "--phase", "test", "--iter", iteration, *over], tmp_path)
        report = json.loads(report_path.read_text())
        assert report["eval_func"] == "evaluate_indoor_dataset" and report["dataset"] == "CASIA-B"
        assert report["num_sequences"] == 2 * 10 * 2  # 2 test subjects x 10 walks x 2 views
        assert "embedded 40 test sequences" in proc.stderr and f"[40, {C}, {P}]" in proc.stderr
        assert "NM@R1:" in proc.stderr
        assert (out / "config_test.yaml").is_file()
        reference = check_run(tmp_path, out.relative_to(tmp_path), checkpoint, report_path.relative_to(tmp_path))
        assert set(reference) == {f"scalar/test_accuracy/{c}@R1" for c in ("NM", "BG", "CL")}
        if packed:  # one sequence per batch: the same accuracies (packed batches honour seqL)
            run_cli(["--cfgs", cfg, "--phase", "test", "--iter", iteration, *over,
                     "evaluator_cfg.sampler.batch_size=1"], tmp_path)
            single = json.loads(report_path.read_text())
            scalars = {k: v for k, v in report["results"].items() if k.startswith("scalar/")}
            assert {k: v for k, v in single["results"].items() if k.startswith("scalar/")} == pytest.approx(
                scalars, abs=1e-9)
