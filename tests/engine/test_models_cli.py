"""GaitGraph1 and GaitTR demo configs: train -> checkpoint -> test through the CLI, shrunk to
seconds (tiny synthetic dataset, narrow widths, short clips, 4 iterations)."""
import json

import pytest
import torch

from cli_helpers import REPO, run_cli, schedule_overrides, synthetic_data_overrides

pytestmark = pytest.mark.slow


def dataset_overrides(root):
    return synthetic_data_overrides(root) + schedule_overrides(4, 2)


MODELS = {
    "gaitgraph1": {
        "config": REPO / "configs" / "demo" / "gaitgraph1_demo.yaml",
        "out": "output/Synthetic-CASIA-B/GaitGraph1/GaitGraph1-demo",
        "save_name": "GaitGraph1-demo",
        "overrides": [
            "model_cfg.input_branch=[3, 16, 8]",
            "model_cfg.main_stream=[8, 32, 32, 64, 64]",
            "model_cfg.num_class=32",
            "trainer_cfg.sampler.batch_size=8",
            "trainer_cfg.sampler.frames_num_fixed=16",
            "trainer_cfg.transform.0.trf_cfg.2.sequence_length=10",  # RandomSelectSequence
            "evaluator_cfg.sampler.batch_size=16",
            "evaluator_cfg.sampler.frames_num_fixed=12",
        ],
        "loss_log": "SupConLoss_loss=",
        # two 10-frame views stacked on time in training; TTA mean at test
        "probe_key": "backbone.main_stream.3.edge",
    },
    "gaittr": {
        "config": REPO / "configs" / "demo" / "gaittr_demo.yaml",
        "out": "output/Synthetic-CASIA-B/GaitTR/GaitTR-demo",
        "save_name": "GaitTR-demo",
        "overrides": [
            "model_cfg.in_channels=[10, 32, 32]",
            "model_cfg.num_class=32",
            "trainer_cfg.sampler.batch_size=[4, 2]",
            "trainer_cfg.sampler.frames_num_fixed=12",
            "evaluator_cfg.sampler.batch_size=8",
        ],
        "loss_log": "triplet_hard_loss=",
        "probe_key": "backbone.1.st.attention.qkv.weight",
    },
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_demo_trains_checkpoints_and_tests(tmp_path, name):
    spec = MODELS[name]
    over = dataset_overrides(tmp_path) + spec["overrides"]
    cfg = str(spec["config"])
    proc = run_cli(["--cfgs", cfg, "--phase", "train", *over], tmp_path)
    out = tmp_path / spec["out"]
    ckpts = sorted(p.name for p in (out / "checkpoints").glob("*.pt"))
    assert ckpts == [f"{spec['save_name']}-00002.pt", f"{spec['save_name']}-00004.pt"]
    assert "Iteration 00004" in proc.stderr and spec["loss_log"] in proc.stderr
    state = torch.load(out / "checkpoints" / f"{spec['save_name']}-00004.pt", map_location="cpu", weights_only=True)
    first = torch.load(out / "checkpoints" / f"{spec['save_name']}-00002.pt", map_location="cpu", weights_only=True)
    assert state["iteration"] == 4
    assert not torch.equal(state["model"][spec["probe_key"]], first["model"][spec["probe_key"]])  # it trained

    for tag, iteration in (("00004", "4"), ("untrained", "0")):
        proc = run_cli(["--cfgs", cfg, "--phase", "test", "--iter", iteration, *over], tmp_path)
        report = json.loads((out / "checkpoints" / f"{spec['save_name']}-{tag}-test.json").read_text())
        assert report["eval_func"] == "evaluate_indoor_dataset" and report["num_sequences"] == 2 * 10 * 2
        assert "embedded 40 test sequences" in proc.stderr and "[40, 32, 1]" in proc.stderr
        for cond in ("NM", "BG", "CL"):
            assert 0.0 <= report["results"][f"scalar/test_accuracy/{cond}@R1"] <= 100.0
        assert "NM@R1:" in proc.stderr
