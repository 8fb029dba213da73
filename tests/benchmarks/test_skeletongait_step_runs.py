"""The SkeletonGait step benchmark runs (in process, on a tiny batch) and reports what it ran.

Timings are not checked (they depend on the machine); the structure is, and the step must
train the real model: the parameter count is the CCPG config's."""
import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def load_benchmark():
    spec = importlib.util.spec_from_file_location("skeletongait_step", REPO / "benchmarks" / "skeletongait_step.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_step_benchmark_writes_its_json(tmp_path, capsys):
    out = tmp_path / "step.json"
    result = load_benchmark().main(["--batch", "2", "--frames", "3", "--iters", "1", "--test-frames", "4",
                                    "--device", "cpu", "--out", str(out)])
    assert json.loads(out.read_text()) == result
    assert result["parameters"] == 8_446_464
    assert result["batch"] == [2, 3, 2, 64, 44] and result["device"] == "cpu" and result["amp"] is False
    assert len(result["step_s"]) == 2 and result["median_step_s"] == result["step_s"][1] > 0
    assert result["test_forward_s"] > 0
    assert "8,446,464 parameters" in capsys.readouterr().out
