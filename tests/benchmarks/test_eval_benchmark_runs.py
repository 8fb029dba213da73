"""The evaluation benchmark runs end to end at its tiny size, writes the documented JSON, and its
agreement check between our evaluators and the upstream-style baseline is real.

Timings are not checked (they depend on the machine); the structure, the counts and the
agreement are."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CASES = {
    # name: (eval_func, sequences, probes) of the tiny sets
    "casia_b_single_gg2": ("evaluate_indoor_dataset", 120, 72),
    "casia_b_cross_gg2": ("evaluate_indoor_dataset", 120, 36),
    "casia_b_single_gpgait": ("evaluate_indoor_dataset", 120, 72),
    "casia_b_cross_gpgait": ("evaluate_indoor_dataset", 120, 36),
    "oumvlp_single": ("evaluate_indoor_dataset", 64, 32),
    "oumvlp_cross": ("evaluate_indoor_dataset", 64, 32),
    "grew_local": ("evaluate_real_scene", 100, 30),
    "grew_submission": ("GREW_submission", 100, 40),
    "gait3d": ("evaluate_Gait3D", None, 25),
}
SCALARS = {
    "casia_b_single_gg2": {"NM@R1", "BG@R1", "CL@R1"},
    "casia_b_cross_gg2": {f"{c}-{m}" for c in ("NM", "BG", "CL") for m in ("Rank@1", "mAP")},
    "oumvlp_single": {"NM@R1"},
    "oumvlp_cross": {"NM-Rank@1", "NM-mAP"},
    "grew_local": {"Rank-1", "Rank-5"},
    "grew_submission": set(),
    "gait3d": {"Rank-1", "Rank-5", "Rank-10", "mAP", "mINP"},
}


def test_tiny_eval_benchmark_writes_its_json(tmp_path):
    out = tmp_path / "eval.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "benchmarks/eval_benchmark.py", "--tiny", "--out", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "GREW submission" in proc.stdout and "extrapolated linearly" in proc.stdout
    report = json.loads(out.read_text())
    assert report["benchmark"] == "eval_benchmark" and report["scale"] == "tiny" and "--tiny" in report["command"]
    assert report["machine"]["cpu_model"] and report["machine"]["logical_cpus"] >= 1
    assert report["tolerance"] == 1e-6 and report["all_agree"] is True
    rows = {r["case"]: r for r in report["cases"]}
    assert set(rows) == set(CASES)
    for name, (eval_func, sequences, probes) in CASES.items():
        r = rows[name]
        assert r["eval_func"] == eval_func and r["metric"] == "euc"
        assert r["num_probes"] == probes
        if sequences is not None:
            assert r["num_sequences"] == sequences
        assert r["agree"] is True and r["max_abs_diff"] <= 1e-6
        assert len(r["ours_runs_s"]) == 1 and r["ours_s"] > 0 and r["baseline_s"] > 0
        assert r["ratio"] == pytest.approx(r["baseline_s"] / r["ours_s"])
        assert r["ours_peak_rss_mb"] >= 0
        if name in SCALARS:
            assert set(k.split("/")[-1] for k in r["results"]) == SCALARS[name]
    # the big protocols time the baseline on a subsample and say so
    for name in ("oumvlp_single", "oumvlp_cross", "grew_submission"):
        r = rows[name]
        assert r["baseline_mode"] == "extrapolated" and r["baseline_probes"] < r["num_probes"]
        assert r["baseline_s"] == pytest.approx(r["baseline_measured_s"] * r["num_probes"] / r["baseline_probes"])
        assert r["agreement_checked_on"].startswith(f"subsample of {r['baseline_probes']} of {r['num_probes']}")
    grew = rows["grew_submission"]
    assert grew["compared"] == f"{grew['baseline_probes']} CSV rows, exact"
    for name in ("casia_b_single_gg2", "grew_local", "gait3d"):
        assert rows[name]["baseline_mode"] == "measured" and rows[name]["agreement_checked_on"] == "full set"
    assert rows["casia_b_single_gpgait"]["feature_shape"] == [256, 19]
    assert rows["casia_b_single_gg2"]["feature_shape"] == [384, 1]


def test_a_disagreeing_baseline_fails_the_benchmark(tmp_path, monkeypatch):
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import eval_benchmark
        import upstream_eval
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    honest = upstream_eval.evaluate_gait3d

    def off_by_one_percent(*args, **kwargs):
        results = honest(*args, **kwargs)
        results["scalar/test_accuracy/mAP"] += 0.01
        return results

    monkeypatch.setattr(upstream_eval, "evaluate_gait3d", off_by_one_percent)
    out = tmp_path / "eval.json"
    assert eval_benchmark.main(["--tiny", "--only", "gait3d", "--out", str(out)]) == 1
    report = json.loads(out.read_text())
    assert report["all_agree"] is False
    (row,) = report["cases"]
    assert row["agree"] is False and row["max_abs_diff"] == pytest.approx(0.01)
