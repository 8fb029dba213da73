"""The embedding-throughput benchmark runs at its tiny size and writes its JSON (timings are
not checked: they depend on the machine; the structure and the speed-up's definition are)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_tiny_embedding_throughput_benchmark_writes_its_json(tmp_path):
    out = tmp_path / "et.json"
    proc = subprocess.run([sys.executable, "benchmarks/embedding_throughput.py", "--tiny", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["benchmark"] == "embedding_throughput" and report["tiny"] is True
    (row,) = report["rows"]
    assert row["model"] == "GaitGraph2" and row["sequences"] == 4
    assert row["embedding_shape"] == [384, 1]  # 128 channels x (sequence, reversed, flipped)
    assert row["batched_seq_per_s"] == pytest.approx(4 / row["batched_s"][0])
    assert row["speedup"] == pytest.approx(row["batched_seq_per_s"] / row["one_by_one_seq_per_s"])
    assert "GaitGraph2 batched" in proc.stdout
