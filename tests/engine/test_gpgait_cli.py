"""GPGait demo config through ``fastposegait/main.py``: train -> checkpoint -> test, shrunk to
seconds (tiny synthetic dataset, narrow widths, short clips, 4 iterations); packed test
batches give the same results as one sequence per batch."""
import json

import pytest
import torch

from cli_helpers import REPO, run_cli

pytestmark = pytest.mark.slow

CFG = str(REPO / "configs" / "demo" / "gpgait_demo.yaml")
OUT = "output/Synthetic-CASIA-B/gpgait/GPGait-demo"


def overrides(root):
    return [
        f"data_cfg.dataset_root={root / 'data'}",
        f"data_cfg.dataset_partition={root / 'partition.json'}",
        "data_cfg.synthetic.num_subjects=6",  # 4 train / 2 test subjects
        "data_cfg.synthetic.views=['000', '090']",
        "data_cfg.synthetic.frames=[20, 36]",
        "data_cfg.num_workers=0",
        "model_cfg.in_channels=[2, 8, 8, 8, 16]",
        "model_cfg.num_class=4",
        "trainer_cfg.sampler.batch_size=[2, 2]",
        "trainer_cfg.sampler.frames_num_fixed=12",
        "trainer_cfg.total_iter=4",
        "trainer_cfg.save_iter=2",
        "trainer_cfg.log_iter=1",
        "scheduler_cfg.total_steps=4",
        "evaluator_cfg.sampler.batch_size=8",
    ]


def report(root, tag):
    return json.loads((root / OUT / "checkpoints" / f"GPGait-demo-{tag}-test.json").read_text())


def test_gpgait_demo_trains_checkpoints_and_tests(tmp_path):
    over = overrides(tmp_path)
    proc = run_cli(["--cfgs", CFG, "--phase", "train", *over], tmp_path)
    partition = json.loads((tmp_path / "partition.json").read_text())
    assert len(partition["TRAIN_SET"]) == 4  # = model_cfg.num_class above
    assert "Iteration 00004" in proc.stderr
    for logged in ("triplet_hard_loss=", "softmax_loss=", "softmax_accuracy="):
        assert logged in proc.stderr
    ckpt_dir = tmp_path / OUT / "checkpoints"
    assert sorted(p.name for p in ckpt_dir.glob("*.pt")) == ["GPGait-demo-00002.pt", "GPGait-demo-00004.pt"]
    first = torch.load(ckpt_dir / "GPGait-demo-00002.pt", map_location="cpu", weights_only=True)
    last = torch.load(ckpt_dir / "GPGait-demo-00004.pt", map_location="cpu", weights_only=True)
    assert last["iteration"] == 4
    for key in ("pose.paths.part_2.blocks.0.gcn.PA", "angle.layer_share.0.gcn.conv_d.0.weight", "bnnecks.fc_bin"):
        assert not torch.equal(first["model"][key], last["model"][key]), key  # it trained
    assert not any("mask" in key or key.endswith(".A") for key in last["model"])  # constants stay out

    results = {}
    for batch in (8, 1):
        proc = run_cli(["--cfgs", CFG, "--phase", "test", "--iter", "4", *over,
                        f"evaluator_cfg.sampler.batch_size={batch}"], tmp_path)
        rep = report(tmp_path, "00004")
        assert rep["eval_func"] == "evaluate_indoor_dataset" and rep["num_sequences"] == 2 * 10 * 2
        assert "embedded 40 test sequences" in proc.stderr and "[40, 16, 19]" in proc.stderr
        assert "NM@R1:" in proc.stderr
        scalars = {k: v for k, v in rep["results"].items() if k.startswith("scalar/")}
        for cond in ("NM", "BG", "CL"):
            assert 0.0 <= scalars[f"scalar/test_accuracy/{cond}@R1"] <= 100.0
        results[batch] = scalars
    # packed batches of 8 sequences (seqL honoured) == one sequence per batch
    assert results[8] == pytest.approx(results[1], abs=1e-9)
