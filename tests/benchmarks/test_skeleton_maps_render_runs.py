"""The batched skeleton-map benchmark runs at its tiny size and writes its JSON (timings are not
checked; the agreement is: quantised float64 maps equal the exact renderer's, float32 ones are
within one grey level, unquantised ones within three)."""
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_tiny_skeleton_maps_render_benchmark_writes_its_json(tmp_path):
    out = tmp_path / "render.json"
    proc = subprocess.run([sys.executable, "benchmarks/skeleton_maps_render.py", "--tiny", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["benchmark"] == "skeleton_maps_render" and report["tiny"] is True
    assert report["sequences"] == 2 and report["frames"] > 0
    run = report["runs"]["threads_1"]
    assert set(run) == {"exact", "transform", "transform_float", "batched_float64", "batched_float64_float",
                        "batched_float32", "batched_float32_float"}
    assert all(case["frames_per_second"] > 0 for case in run.values())
    agreement = report["agreement"]
    assert agreement["batched_float64_vs_exact"]["max_abs"] == 0
    assert agreement["batched_float32_vs_exact"]["max_abs"] <= 1
    assert 0 < agreement["unquantised_vs_exact"]["max_abs"] < 3
