"""The device-transforms benchmark runs end to end at its tiny size and writes its JSON.

Timings are not checked (they depend on the machine); the structure and the shapes are: the
worker delivers raw ``[B, T, V, C]`` clips in device mode, and the chain turns them into each
recipe's model input."""
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_tiny_device_transforms_benchmark_writes_its_json(tmp_path):
    out = tmp_path / "dt.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    args = ["--tiny", "--models", "gaitgraph2,gaitgraph1", "--device", "cpu", "--data", str(tmp_path / "data"),
            "--out", str(out)]
    proc = subprocess.run([sys.executable, "benchmarks/device_transforms.py", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["benchmark"] == "device_transforms" and report["tiny"] is True and report["device"] == "cpu"
    rows = {r["model"]: r for r in report["rows"]}
    assert rows["gaitgraph2"]["raw_shape"] == [8, 12, 17, 3]
    assert rows["gaitgraph2"]["input_shape"] == [8, 12, 17, 3, 5]  # GaitGraph_MultiInput
    assert rows["gaitgraph1"]["input_shape"] == [8, 3, 16, 17, 1]  # TwoView of two 8-frame windows
    for row in rows.values():
        for key in ("worker_mode_worker_s", "device_mode_worker_s", "device_chain_s"):
            assert len(row[key]) == 1 and row[f"median_{key}"] == row[key][0] > 0
    assert "chain on cpu" in proc.stdout
