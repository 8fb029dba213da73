"""The gallery-search benchmark runs end to end at its tiny size and writes its JSON.

Timings are not checked (they depend on the machine); the structure and the sizes are."""
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_tiny_gallery_search_writes_its_json(tmp_path):
    out = tmp_path / "gs.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    args = ["--tiny", "--threads", "1", "--out", str(out)]
    proc = subprocess.run([sys.executable, "benchmarks/gallery_search.py", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["benchmark"] == "gallery_search" and report["tiny"] is True
    assert report["command"] == " ".join(["python", "benchmarks/gallery_search.py", *args])
    rows = report["rows"]
    assert [(r["model"], r["entries"]) for r in rows] == [
        ("gaitgraph2", 200), ("gaitgraph2", 1000), ("gpgait", 200), ("gpgait", 1000)]
    for row in rows:
        c, p = row["embedding_shape"]
        assert row["identities"] == row["entries"] // 10 and row["threads"] == 1
        # the reported sizes are the arrays' (float32): embeddings and an equally large layout
        assert abs(row["embeddings_mb"] - row["entries"] * c * p * 4 / 2**20) <= 0.05
        assert row["layout_mb"] >= row["embeddings_mb"]
        assert row["one_probe_ms"] > 0 and row["batched_ms_per_probe"] > 0 and row["batch"] == 8
    assert "wrote" in proc.stdout
