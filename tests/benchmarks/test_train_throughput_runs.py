"""The training-throughput benchmark runs end to end at its tiny size and writes its JSON.

Timings are not checked (they depend on the machine); the structure and the batch shapes are."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # trains or tests models in a subprocess
def test_tiny_train_throughput_writes_its_json(tmp_path):
    out = tmp_path / "tt.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "benchmarks/train_throughput.py", "--tiny", "--models", "gaitgraph2,gaittr",
                           "--variants", "fp32,bf16", "--data", str(tmp_path / "data"), "--out", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["benchmark"] == "train_throughput" and report["tiny"] is True
    assert report["command"].startswith("python benchmarks/train_throughput.py --tiny --models gaitgraph2,gaittr")
    assert report["machine"]["logical_cpus"] >= 1 and report["device"] == "cpu"
    rows = {(r["model"], r["variant"]): r for r in report["rows"]}
    assert set(rows) == {("gaitgraph2", "fp32"), ("gaitgraph2", "bf16"), ("gaittr", "fp32"), ("gaittr", "bf16")}
    assert rows["gaitgraph2", "fp32"]["input_shape"] == [8, 12, 17, 3, 5]  # GaitGraph_MultiInput batch
    assert rows["gaittr", "fp32"]["input_shape"] == [8, 10, 12, 17, 1]  # GaitTR_MultiInput + SkeletonInput
    for row in rows.values():
        assert row["batch"] == 8
        assert row["model_only_seq_per_s"] > 0 and row["pipeline_seq_per_s"] > 0
        assert row["efficiency"] == pytest.approx(row["pipeline_seq_per_s"] / row["model_only_seq_per_s"])
        assert "efficiency" in proc.stdout
