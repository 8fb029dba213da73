"""Raw OUMVLP-Pose JSON -> COCO-17 pickles -> validate -> train and test through the CLI."""
import json

import numpy as np
import pytest
from accuracy_reference import check_run
from cli_helpers import DEMO_CFG, TINY_GAITGRAPH2, run_cli, schedule_overrides
from raw_trees import bystander, openpose_frame, run_datasets_cli, synthetic, write_text

pytestmark = pytest.mark.slow


def test_raw_oumvlp_to_trained_and_tested_model(tmp_path):
    src = synthetic("oumvlp", tmp_path / "syn", num_subjects=6, views=["000", "090"], frames=(30, 40), seed=9)
    raw = tmp_path / "OUMVLP-Pose-raw"
    for (s, t, v), walk in src.items():
        other = bystander(walk, src[("00001", "00", "000")] if s != "00001" else src[("00002", "00", "000")])
        for i, frame in enumerate(walk):
            people = [other[i], frame] if i % 4 == 0 else [frame]   # crowded frames
            people = [] if i == 5 else people                        # a frame without anyone
            write_text(raw / s / f"{v}_{t}" / f"{i + 1:04d}_keypoints.json", openpose_frame(people))
    root = tmp_path / "OUMVLP-pose17"
    proc = run_datasets_cli(["oumvlp", "-i", raw, "-o", root, "--coco17", "-j", "2"])
    assert "24 written" in proc.stdout and "24 no person detected" in proc.stdout
    proc = run_datasets_cli(["validate", "-i", root, "--partition", root / "partition.json", "--joints", "17"])
    assert "OK: the loader will accept this dataset" in proc.stdout
    part = json.loads((root / "partition.json").read_text())
    assert part == {"TRAIN_SET": ["00001", "00003", "00005"], "TEST_SET": ["00002", "00004", "00006"]}

    over = [
        f"data_cfg.dataset_root={root}",
        f"data_cfg.dataset_partition={root / 'partition.json'}",
        "data_cfg.dataset_name=OUMVLP-converted",
        "data_cfg.test_dataset_name=OUMVLP",
        "data_cfg.num_workers=0",
        *TINY_GAITGRAPH2,
        *schedule_overrides(3, 3),
    ]
    proc = run_cli(["--cfgs", str(DEMO_CFG), "--phase", "train", *over], tmp_path)
    assert "Iteration 00003" in proc.stderr
    run_cli(["--cfgs", str(DEMO_CFG), "--phase", "test", "--iter", "3", *over], tmp_path)
    out = tmp_path / "output" / "OUMVLP-converted" / "GaitGraph2" / "GaitGraph2-demo" / "checkpoints"
    report = json.loads((out / "GaitGraph2-demo-00003-test.json").read_text())
    assert report["num_sequences"] == 3 * 2 * 2  # 3 test subjects x 2 types x 2 views
    acc = report["results"]["scalar/test_accuracy/NM@R1"]
    assert np.isfinite(acc) and 0.0 <= acc <= 100.0
    # recomputed from the checkpoint by brute force, on the converted pickles
    run = out.parent.relative_to(tmp_path)
    reference = check_run(tmp_path, run, run / "checkpoints" / "GaitGraph2-demo-00003.pt",
                          run / "checkpoints" / "GaitGraph2-demo-00003-test.json")
    assert set(reference) == {"scalar/test_accuracy/NM@R1"}
