"""The start-up benchmark runs end to end at its tiny size and writes the documented JSON.

Timings are not checked (they depend on the machine); the structure and the counts are."""
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SETTINGS = ("index_only", "packed_first_run", "packed_cached_run", "legacy_memory")


def test_tiny_startup_benchmark_writes_its_json(tmp_path):
    out = tmp_path / "startup.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "benchmarks/startup_benchmark.py", "--tiny", "--out", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "packed, cached run" in proc.stdout and "legacy (cache: memory)" in proc.stdout
    report = json.loads(out.read_text())
    assert report["benchmark"] == "startup" and "--tiny" in report["command"]
    assert report["machine"]["cpu_model"] and report["machine"]["logical_cpus"] >= 1
    dataset = report["dataset"]
    assert dataset["layout"] == "oumvlp" and dataset["num_subjects"] == 4
    assert dataset["pickle_files"] == dataset["sequences"] == 4 * 14 * 2
    assert dataset["sequences_per_split"] == {"TRAIN_SET": 56, "TEST_SET": 56}
    assert dataset["packed_cache_bytes"] > 0 and dataset["pickle_bytes"] > 0
    assert not Path(dataset["root"]).exists()  # --tiny cleans up after itself
    results = report["results"]
    assert set(results) == set(SETTINGS)
    modes = {k: results[k]["cache_mode"] for k in SETTINGS}
    assert modes == {"index_only": "none", "packed_first_run": "packed", "packed_cached_run": "packed",
                     "legacy_memory": "memory"}
    for key in SETTINGS:
        r = results[key]
        assert r["sequences"] == {"TRAIN_SET": 56, "TEST_SET": 56}  # frame_threshold 17 keeps all 20-40 frame walks
        assert len(r["runs_s"]) >= 1 and r["median_s"] > 0 and r["peak_rss_mb"] > 0
    assert len(results["packed_cached_run"]["runs_s"]) == 2
    assert results["packed_first_run"]["phases_median_s"]["build_s"] > 0
    assert results["packed_cached_run"]["phases_median_s"]["build_s"] == 0  # reused, not rebuilt
    for key in ("packed_cached_run", "legacy_memory"):
        worker = results[key]["worker"]
        assert worker["arrays_read"] == 112 and "private_dirty_growth_mb" in worker
    # both caches hand the worker the same data
    assert results["packed_cached_run"]["worker"]["checksum"] == results["legacy_memory"]["worker"]["checksum"]
    assert report["speedup_cached_vs_legacy"] > 0
