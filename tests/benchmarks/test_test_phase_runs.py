"""The test-phase benchmark runs end to end at its tiny size: the three ways of cutting test
batches into model calls give the same features, and the JSON has its fields. Timings are not
checked."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # trains or tests models in a subprocess
def test_tiny_test_phase_benchmark(tmp_path):
    out = tmp_path / "tp.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "benchmarks/test_phase.py", "--tiny", "--models", "gaitgraph2,gaittr",
                           "--data", str(tmp_path / "data"), "--out", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["benchmark"] == "test_phase" and report["tiny"] is True
    assert report["command"].startswith("python benchmarks/test_phase.py --tiny --models gaitgraph2,gaittr")
    rows = {r["model"]: r for r in report["rows"]}
    assert set(rows) == {"gaitgraph2", "gaittr"}
    assert rows["gaitgraph2"]["feature_shape"] == [384, 1]  # three-way TTA
    assert rows["gaittr"]["feature_shape"] == [128, 1]
    for row in rows.values():
        assert row["sequences"] == 2 * 10 * 11  # 2 test subjects x 10 walks x 11 views
        assert row["max_relative_feature_difference"] <= 1e-3
        assert 0.0 <= row["nm_rank1"] <= 100.0
        assert row["sequences_per_call"] == {"whole_batch": None, "default": 8, "one_per_call": 1}
        assert set(row["seq_per_s"]) == {"whole_batch", "default", "one_per_call"}
        assert all(v > 0 for v in row["seq_per_s"].values())
