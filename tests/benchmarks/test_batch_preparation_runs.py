"""The batch-preparation benchmark runs end to end at its tiny size and writes its JSON.

Timings are not checked (they depend on the machine); the structure and the batch shapes are."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_tiny_batch_preparation_writes_its_json(tmp_path):
    out = tmp_path / "bp.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    args = ["--tiny", "--models", "gaitgraph2,gpgait", "--data", str(tmp_path / "data"), "--out", str(out)]
    proc = subprocess.run([sys.executable, "benchmarks/batch_preparation.py", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["benchmark"] == "batch_preparation" and report["tiny"] is True and report["batches"] == 1
    assert report["command"] == " ".join(["python", "benchmarks/batch_preparation.py", *args])
    assert report["machine"]["logical_cpus"] >= 1
    rows = {r["model"]: r for r in report["rows"]}
    assert set(rows) == {"gaitgraph2", "gpgait"}
    assert rows["gaitgraph2"]["input_shape"] == [8, 12, 17, 3, 5]  # GaitGraph_MultiInput, tiny batch of 8
    assert rows["gpgait"]["batch"] == 8 and rows["gpgait"]["input_shape"][0] == 8  # [P, K] = [2, 4]
    for row in rows.values():
        assert len(row["s_per_batch"]) == 1 and row["median_s_per_batch"] == row["s_per_batch"][0] > 0
        assert row["ms_per_sequence"] == pytest.approx(1000 * row["median_s_per_batch"] / row["batch"])
    assert "per sequence" in proc.stdout
