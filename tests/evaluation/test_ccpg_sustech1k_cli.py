"""The CCPG and SUSTech1K demos end to end through the CLI on their synthetic layouts (shrunk to
seconds): train with ``with_test`` (the protocol's lines in the log, its scalars in the test JSON
and in TensorBoard), then a standalone ``--phase test``; and GPGait++ on both synthetic
layouts with the original's eval_func for them."""
import json

import pytest

from cli_helpers import REPO, run_cli, schedule_overrides

pytestmark = pytest.mark.slow

TINY_GPGAIT = [
    "model_cfg.in_channels=[2, 8, 8, 8, 16]",
    "model_cfg.num_class=3",  # 3 training subjects of the 6
    "trainer_cfg.sampler.batch_size=[2, 2]",
    "trainer_cfg.sampler.frames_num_fixed=12",
    "evaluator_cfg.sampler.batch_size=8",
    "data_cfg.num_workers=0",
    *schedule_overrides(4, 4),
]
CCPG_DATA = "data_cfg.synthetic={layout: ccpg, num_subjects: 6, views: ['01_1', '03_1'], frames: [20, 36]}"
SUSTECH_DATA = ("data_cfg.synthetic={layout: sustech1k, num_subjects: 6, num_train: 3, views: ['000', '090'], "
                "frames: [20, 36]}")
CCPG_SCALARS = {g + s for g in ("CL", "UP", "DN", "BG") for s in ("", "@R1", "-Rank@1", "-mAP", "-mINP")}
SUSTECH_SCALARS = {f"{c}@R1" for c in ("Normal", "Bag", "Clothing", "Carrying", "Umberalla", "Umbrella", "Uniform",
                                       "Occlusion", "Night", "Overall")}
CASES = {
    # demo: (data override, output dataset folder, save name, scalar names, logged lines)
    "gpgait_ccpg_demo": (CCPG_DATA, "Synthetic-CCPG", "GPGait-ccpg-demo", CCPG_SCALARS, [
        "===Rank-1 (Exclude identical-view cases for Person Re-Identification)===",
        "===mINP (Exclude identical-view cases for Person Re-Identification)===",
        "===Rank-1 (Include identical-view cases)===",
        "===Rank-1 of each angle (Exclude identical-view cases) [cameras 01, 03]===",
        "CL: gallery 18 sequences (U1_D1, U2_D2, U3_D3), probe 12 sequences (U0_D0_BG, U0_D0)",
    ]),
    "gpgait_sustech1k_demo": (SUSTECH_DATA, "Synthetic-SUSTech1K", "GPGait-sustech1k-demo", SUSTECH_SCALARS, [
        "===Rank-1 (Exclude identical-view cases) [SUSTech1K, gallery per view, euc]===",
        "Normal@R1: ", "Overall@R5: ",
        "fewer than 5 gallery sequences in view(s) 000 (3), 090 (3)",
    ]),
}


def tensorboard_tags(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return set(events.Tags()["scalars"])


def _scalars(report):
    return {k.split("/", 2)[2]: v for k, v in report["results"].items() if k.startswith("scalar/test_accuracy/")}


@pytest.mark.parametrize("demo", sorted(CASES))
def test_demo_trains_and_tests(demo, tmp_path):
    synthetic, dataset, save_name, names, lines = CASES[demo]
    cfg = REPO / "configs" / "demo" / f"{demo}.yaml"
    data = [f"data_cfg.dataset_root={tmp_path / 'data'}", f"data_cfg.dataset_partition={tmp_path / 'part.json'}",
            synthetic]
    proc = run_cli(["--cfgs", str(cfg), "--phase", "train", *data, *TINY_GPGAIT, "trainer_cfg.with_test=true"],
                   tmp_path)
    for line in lines:
        assert line in proc.stderr, line
    out = tmp_path / "output" / dataset / "gpgait" / save_name
    report = json.loads((out / "checkpoints" / f"{save_name}-00004-test.json").read_text())
    scalars = _scalars(report)
    assert set(scalars) == names and all(0 <= v <= 100 for v in scalars.values())
    assert {f"test_accuracy/{n}" for n in names} <= tensorboard_tags(out / "summary")
    proc = run_cli(["--cfgs", str(cfg), "--phase", "test", "--iter", "4", *data, *TINY_GPGAIT], tmp_path)
    assert all(line in proc.stderr for line in lines)
    again = json.loads((out / "checkpoints" / f"{save_name}-00004-test.json").read_text())
    assert _scalars(again) == pytest.approx(scalars)  # the same checkpoint gives the same numbers


@pytest.mark.parametrize("layout", ["CCPG", "SUSTech1K"])
def test_gpgait_plusplus_on_synthetic_layouts(layout, tmp_path):
    """GPGait++ with the original's eval_func for both datasets: evaluate_CCPG (which runs the
    SUSTech1K protocol when test_dataset_name is SUSTech1K, as the original's GPGait++ SUSTech1K
    config asks)."""
    data, scalars = (CCPG_DATA, CCPG_SCALARS) if layout == "CCPG" else (SUSTECH_DATA, SUSTECH_SCALARS)
    cfg = REPO / "configs" / "demo" / "gpgait++_demo.yaml"
    args = ["--cfgs", str(cfg), "--phase", "train", f"data_cfg.dataset_root={tmp_path / 'data'}",
            f"data_cfg.dataset_partition={tmp_path / 'part.json'}", data, f"data_cfg.dataset_name=Synthetic-{layout}",
            f"data_cfg.test_dataset_name={layout}", "evaluator_cfg.eval_func=evaluate_CCPG", *TINY_GPGAIT,
            "trainer_cfg.with_test=true"]
    proc = run_cli(args, tmp_path)
    header = ("===Rank-1 (Exclude identical-view cases for Person Re-Identification)===" if layout == "CCPG" else
              "===Rank-1 (Exclude identical-view cases) [SUSTech1K, gallery per view, euc]===")
    assert header in proc.stderr
    (report_path,) = (tmp_path / "output" / f"Synthetic-{layout}" / "GPGait_PlusPlus").glob(
        "*/checkpoints/*-00004-test.json")
    report = json.loads(report_path.read_text())
    assert report["eval_func"] == "evaluate_CCPG" and set(_scalars(report)) == scalars
