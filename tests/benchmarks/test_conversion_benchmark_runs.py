"""The conversion benchmark runs end to end at a tiny size and writes its JSON and markdown.

Timings are not checked (they depend on the machine); the structure, the counts (every raw
sequence converted, none skipped or empty) and the positivity of the rates are."""
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RATES = ("converter_sequences_per_s", "end_to_end_sequences_per_s", "cpu_ms_per_sequence")


def _raw_sequences(work: Path) -> dict:
    """Sequences of the raw trees the benchmark generated, counted on disk."""
    oumvlp = [p for p in (work / "raw-oumvlp").glob("*/*") if any(p.glob("*_keypoints.json"))]
    grew = [p for p in (work / "raw-grew").rglob("*") if p.is_dir() and any(p.glob("*_2d_pose.txt"))]
    return {"oumvlp": len(oumvlp), "grew": len(grew)}


def test_tiny_conversion_benchmark_writes_its_reports(tmp_path):
    out, md, work = tmp_path / "conversion.json", tmp_path / "conversion.md", tmp_path / "work"
    args = ["--work", str(work), "--subjects", "2", "--grew-subjects", "2", "--workers", "1", "--repeats", "1",
            "--out", str(out), "--markdown", str(md)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "benchmarks/conversion.py", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["benchmark"] == "conversion" and report["repeats"] == 1
    assert report["command"] == " ".join(["python", "benchmarks/conversion.py", *args])
    assert report["machine"]["logical_cpus"] >= 1

    on_disk = _raw_sequences(work)
    assert on_disk["oumvlp"] > 0 and on_disk["grew"] > 0
    assert {name: raw["sequences"] for name, raw in report["raw"].items()} == on_disk
    assert report["raw"]["oumvlp"]["frame_files"] == len(list((work / "raw-oumvlp").rglob("*_keypoints.json")))
    assert report["raw"]["grew"]["frame_files"] == len(list((work / "raw-grew").rglob("*_2d_pose.txt")))

    runs = report["runs"]
    assert [(r["dataset"], r["workers"], r["fsync"], r["run"]) for r in runs] == [("oumvlp", 1, False, 1),
                                                                              ("grew", 1, False, 1)]
    for r in runs:
        assert r["sequences"] == r["written"] == on_disk[r["dataset"]]  # every raw sequence converted
        assert r["exists"] == 0 and r["empty"] == 0
        assert r["converter_s"] > 0 and r["wall_s"] > r["converter_s"]
        assert all(r[key] > 0 for key in RATES)
    assert not list(work.glob("out-*")) and not list(work.glob("report-*"))  # each run's output removed

    summary = report["summary"]
    assert [(s["dataset"], s["runs"], s["sequences"]) for s in summary] == [("oumvlp", 1, on_disk["oumvlp"]),
                                                                           ("grew", 1, on_disk["grew"])]
    for s, r in zip(summary, runs):
        assert all(s[key] == [r[key], r[key]] for key in RATES)  # one run: min == max == that run

    table = md.read_text().splitlines()
    assert table[0].startswith("| raw tree | `--workers` | mode | runs |") and len(table) == 4
    assert table[2].startswith(f"| oumvlp, {on_disk['oumvlp']} sequences | 1 | default | 1 | ")
    assert table[3].startswith(f"| grew, {on_disk['grew']} sequences | 1 | default | 1 | ")
    assert f"converter: {on_disk['oumvlp']} written" in proc.stdout
