"""The exact skeleton-map benchmark runs at its tiny size and writes its JSON (timings are not
checked; sizes are: a map frame is 2 x 64 x 64 bytes plus a share of the pickle header)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_tiny_skeleton_maps_benchmark_writes_its_json(tmp_path):
    out = tmp_path / "sm.json"
    proc = subprocess.run([sys.executable, "benchmarks/skeleton_maps_exact.py", "--tiny", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["benchmark"] == "skeleton_maps_exact" and report["tiny"] is True
    assert report["sequences"] == 2 and report["frames"] > 0 and report["frames_per_second"] > 0
    assert 8192 <= report["map_bytes_per_frame"] < 8192 + 200
    pose_frame = report["joints"] * 3 * (4 if report["pose_dtype"] == "float32" else 8)
    assert pose_frame <= report["pose_bytes_per_frame"] < pose_frame + 200
    assert report["size_ratio_map_to_pose"] == pytest.approx(
        report["map_bytes_per_frame"] / report["pose_bytes_per_frame"])
    assert "frames/s on one thread" in proc.stdout
