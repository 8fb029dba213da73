"""Every protocol end to end through the CLI on its synthetic dataset layout (GaitGraph2 configs,
shrunk to seconds): train with ``with_test`` (scalars to TensorBoard under upstream's names, one
JSON file per test run), then a standalone ``--phase test`` (GREW: the submission file)."""
import glob
import json

import pytest

from cli_helpers import REPO, TINY_GAITGRAPH2, run_cli, schedule_overrides

pytestmark = pytest.mark.slow

SHRINK = ["data_cfg.num_workers=0", *TINY_GAITGRAPH2, *schedule_overrides(2, 2), "trainer_cfg.with_test=true"]
PROTOCOLS = {
    # dataset: (synthetic layout, extra overrides, scalar names)
    "OUMVLP": ("oumvlp", ["data_cfg.synthetic.views=['000', '015', '030']"], {"NM@R1"}),
    "GREW": ("grew", [], {"Rank-1", "Rank-5"}),
    "Gait3D": ("gait3d", [], {"Rank-1", "Rank-5", "Rank-10", "mAP", "mINP"}),
}


def tensorboard_tags(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return set(events.Tags()["scalars"])


@pytest.mark.parametrize("dataset", sorted(PROTOCOLS))
def test_protocol_through_the_cli(dataset, tmp_path):
    layout, extra, names = PROTOCOLS[dataset]
    cfg = REPO / "configs" / "gaitgraph2" / f"gaitgraph2_{dataset}.yaml"
    data = [f"data_cfg.dataset_root={tmp_path / 'data'}", f"data_cfg.dataset_partition={tmp_path / 'partition.json'}",
            f"data_cfg.synthetic={{layout: {layout}, num_subjects: 12, frames: [20, 36]}}", *extra]
    proc = run_cli(["--cfgs", str(cfg), "--phase", "train", *data, *SHRINK], tmp_path)
    out = tmp_path / "output" / dataset / "GaitGraph2" / "GaitGraph2"
    report = json.loads((out / "checkpoints" / "GaitGraph2-00002-test.json").read_text())
    assert report["dataset"] == dataset and report["metric"] == "cos"
    scalars = {k.split("/", 2)[2]: v for k, v in report["results"].items() if k.startswith("scalar/test_accuracy/")}
    assert set(scalars) == names and all(0 <= v <= 100 for v in scalars.values())
    assert "test results written to" in proc.stderr
    assert {f"test_accuracy/{n}" for n in names} <= tensorboard_tags(out / "summary")
    if dataset == "GREW":
        proc = run_cli(["--cfgs", str(cfg), "--phase", "test", "--iter", "2", "evaluator_cfg.eval_func=GREW_submission",
                        *data, *SHRINK], tmp_path)
        (csv,) = glob.glob(str(out / "GREW_result" / "*.csv"))
        assert f"written to {csv[len(str(tmp_path)) + 1:]}" in proc.stderr  # the log line gives the path
        lines = open(csv).read().splitlines()
        probes = json.loads((tmp_path / "partition.json").read_text())["TEST_SET"]
        assert probes[-1] == "probe" and lines[0].startswith("videoId,rank1,")
        assert len(lines) > 1 and all(len(line.split(",")) == len(lines[0].split(",")) for line in lines)
        report = json.loads((out / "checkpoints" / "GaitGraph2-00002-test.json").read_text())
        assert report["eval_func"] == "GREW_submission" and report["results"]["table/submission_csv"] == csv[
            len(str(tmp_path)) + 1:]
