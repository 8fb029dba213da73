"""What the test phase leaves for people to look at: the results JSON's provenance, the
pictures next to it, TensorBoard scalars and images (also for --phase test); and the training
log line's learning rate, speed and ETA, timed with a fake clock."""
import io
import json
import logging
import re
from datetime import datetime, timezone

import numpy as np
import pytest
import torch
from PIL import Image

import fastposegait
import fastposegait.engine.runner as runner_mod
from cli_helpers import DEMO_CFG, tiny_overrides
from fastposegait.config import load_config
from fastposegait.distributed import DistEnv
from fastposegait.engine.checkpoint import save_checkpoint
from fastposegait.engine.progress import format_duration, training_log_line
from fastposegait.engine.runner import Runner
from fastposegait.visualization.curves import report_pictures

RUN = "output/Synthetic-CASIA-B/GaitGraph2/GaitGraph2-demo"


def make_runner(tmp_path, monkeypatch, *extra, phase="train"):
    monkeypatch.chdir(tmp_path)
    return Runner(load_config(DEMO_CFG, tiny_overrides(tmp_path) + list(extra)), phase, DistEnv(),
                  torch.device("cpu"))


def read_events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def decode(event):
    return np.asarray(Image.open(io.BytesIO(event.encoded_image_string)).convert("RGB"))


@pytest.mark.parametrize("iteration", [0, 7])
def test_phase_test_writes_provenance_pictures_and_tensorboard(tmp_path, monkeypatch, iteration):
    if iteration:  # a checkpoint of the (untrained) model, as training at iteration 7 would name it
        runner = make_runner(tmp_path, monkeypatch)
        save_checkpoint(tmp_path / RUN / "checkpoints" / f"GaitGraph2-demo-{iteration:05d}.pt",
                        {"model": runner.model.state_dict(), "iteration": iteration})
        runner.close()
    before = datetime.now(timezone.utc).replace(microsecond=0)
    runner = make_runner(tmp_path, monkeypatch, f"evaluator_cfg.restore_hint={iteration}", phase="test")
    results = runner.test()
    tag = f"{iteration:05d}" if iteration else "untrained"
    out = tmp_path / RUN / "checkpoints" / f"GaitGraph2-demo-{tag}-test.json"
    report = json.loads(out.read_text())
    # the keys upstream readers know are kept; the provenance is added
    assert [k for k in report if k in ("eval_func", "dataset", "metric", "num_sequences", "results")] == [
        "eval_func", "dataset", "metric", "num_sequences", "results"]
    assert report["checkpoint"] == (f"{RUN}/checkpoints/GaitGraph2-demo-{iteration:05d}.pt" if iteration
                                    else "untrained")
    assert report["iteration"] == iteration
    assert report["config"] == {"path": f"{RUN}/config_test.yaml", "dataset_name": "Synthetic-CASIA-B",
                                "model": "GaitGraph2", "save_name": "GaitGraph2-demo"}
    assert (tmp_path / report["config"]["path"]).is_file()
    stamp = datetime.strptime(report["time_utc"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert before <= stamp <= datetime.now(timezone.utc)
    assert report["versions"] == {"fastposegait": fastposegait.__version__, "torch": torch.__version__}

    # the pictures, next to the JSON: what `fastposegait plot` draws from that JSON
    pictures = report_pictures(report)
    assert [p.name for p in pictures] == ["cmc-NM", "cmc-BG", "cmc-CL", "rank1-NM", "rank1-BG", "rank1-CL",
                                          "rank1-per-view"]
    for picture in pictures:
        png = out.with_name(f"{out.stem}-{picture.name}.png")
        assert np.array_equal(np.asarray(Image.open(png).convert("RGB")), picture.rgb)

    # TensorBoard: the scalars and the images at the checkpoint's iteration
    acc = read_events(tmp_path / RUN / "summary")
    for cond in ("NM", "BG", "CL"):
        (event,) = acc.Scalars(f"test_accuracy/{cond}@R1")
        assert (event.step, event.value) == (iteration, pytest.approx(results[f"scalar/test_accuracy/{cond}@R1"]))
    assert sorted(acc.Tags()["images"]) == sorted(p.tag for p in pictures)
    for picture in pictures:
        (event,) = acc.Images(picture.tag)
        assert event.step == iteration and np.array_equal(decode(event), picture.rgb)


def test_pictures_that_cannot_be_written_are_a_warning(tmp_path, monkeypatch, caplog):
    runner = make_runner(tmp_path, monkeypatch, "evaluator_cfg.restore_hint=0", phase="test")
    import fastposegait.visualization.curves as curves

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(curves, "write_pngs", full_disk)
    with caplog.at_level(logging.WARNING, logger="fastposegait"):
        logging.getLogger("fastposegait").propagate = True  # the runner set up its own handler
        runner.test()
    assert "cannot write the test pictures (No space left on device); the results JSON is complete" in caplog.text
    assert (tmp_path / RUN / "checkpoints" / "GaitGraph2-demo-untrained-test.json").is_file()
    assert read_events(tmp_path / RUN / "summary").Tags()["images"]  # TensorBoard still has them


# ------------------------------------------------------------------ the log line


def test_format_duration():
    assert format_duration(0) == "0:00:00"
    assert format_duration(754.4) == "0:12:34"
    assert format_duration(26 * 3600 + 61) == "26:01:01"  # no wrap at a day
    assert format_duration(float("inf")) == "?" and format_duration(-5) == "0:00:00"


def test_log_line_text():
    line = training_log_line(100, 12.3449, 1e-3, 0.1234, 6000, {"scalar/triplet/loss": 0.5, "scalar/acc": 1.0})
    assert line == "Iteration 00100, Cost 12.34s, lr 1.00e-03, 0.123 s/it, ETA 0:12:20, triplet_loss=0.5000, acc=1.0000"
    assert training_log_line(5, 1.0, 0.5, 0.2, 0, {}) == "Iteration 00005, Cost 1.00s, lr 5.00e-01, 0.200 s/it, ETA 0:00:00"


class FakeClock:
    def __init__(self, now):
        self.now = now

    def time(self):
        return self.now


def test_log_window_with_a_fake_clock_and_a_test_left_out(tmp_path, monkeypatch, caplog):
    runner = make_runner(tmp_path, monkeypatch, "trainer_cfg.with_test=true")
    parts = runner.build_training()
    clock = FakeClock(1000.0)
    monkeypatch.setattr(runner_mod, "time", clock)
    runner._timer, runner._window_start, runner.iteration = 1000.0, 0, 10
    lr = parts.optimizer.param_groups[0]["lr"]
    window = {"scalar/SupConLoss/loss": [torch.tensor(1.0), torch.tensor(2.0)]}
    clock.now = 1002.5
    with caplog.at_level(logging.INFO, logger="fastposegait"):
        logging.getLogger("fastposegait").propagate = True
        runner._log_window(window, torch.tensor(1.5), parts, None, total_iter=90)
        # 2.5 s for 10 iterations: 0.25 s/it; 80 left: 20 s
        assert f"Iteration 00010, Cost 2.50s, lr {lr:.2e}, 0.250 s/it, ETA 0:00:20, SupConLoss_loss=1.5000" \
            in caplog.text
        caplog.clear()

        # 4 iterations of 1 s, a checkpoint whose test takes 60 s, 1 more iteration of 1 s
        def slow_test(tag, checkpoint=None, step=None):
            clock.now += 60.0
            return {}

        monkeypatch.setattr(runner, "run_test", slow_test)
        runner.iteration, clock.now = 14, clock.now + 4.0
        runner._checkpoint(parts, {})
        runner.iteration, clock.now = 15, clock.now + 1.0
        runner._log_window({"scalar/SupConLoss/loss": [0.25]}, torch.tensor(0.25), parts, None, total_iter=90)
    lr = parts.optimizer.param_groups[0]["lr"]
    assert f"Iteration 00015, Cost 5.00s, lr {lr:.2e}, 1.000 s/it, ETA 0:01:15, SupConLoss_loss=0.2500" in caplog.text


def test_training_log_lines_parse(tmp_path, monkeypatch, caplog):
    runner = make_runner(tmp_path, monkeypatch)
    with caplog.at_level(logging.INFO, logger="fastposegait"):
        logging.getLogger("fastposegait").propagate = True
        runner.train()
    pattern = re.compile(r"Iteration (\d{5}), Cost ([0-9.]+)s, lr ([0-9.]+e[-+]\d\d), ([0-9.]+) s/it, "
                         r"ETA (\d+):(\d\d):(\d\d), SupConLoss_loss=([0-9.]+)")
    lines = [pattern.search(r.getMessage()) for r in caplog.records if r.getMessage().startswith("Iteration")]
    assert [int(m.group(1)) for m in lines] == [1, 2, 3, 4]  # log_iter 1, total_iter 4
    for m in lines:
        cost, per_iter = float(m.group(2)), float(m.group(4))
        assert per_iter == pytest.approx(cost, abs=0.006)  # one iteration per window (Cost has 2 decimals)
        eta = int(m.group(5)) * 3600 + int(m.group(6)) * 60 + int(m.group(7))
        assert eta == pytest.approx((4 - int(m.group(1))) * per_iter, abs=1)
    assert lines[-1].group(5, 6, 7) == ("0", "00", "00")
    # the scheduler's learning rate of that iteration, as TensorBoard gets it
    acc = read_events(tmp_path / RUN / "summary")
    logged = [float(m.group(3)) for m in lines]
    assert logged == [pytest.approx(e.value, rel=6e-3) for e in acc.Scalars("learning_rate")]
