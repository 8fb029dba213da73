"""The pickle-loading benchmark runs at its tiny size and writes its JSON (timings are not
checked: they depend on the machine; the structure and the ratios' definition are)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_tiny_pickle_loading_benchmark_writes_its_json(tmp_path):
    out = tmp_path / "pl.json"
    proc = subprocess.run([sys.executable, "benchmarks/pickle_loading.py", "--tiny", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["benchmark"] == "pickle_loading" and report["tiny"] is True
    assert report["command"] == "python benchmarks/pickle_loading.py --tiny --out " + str(out)
    rows = {r["form"]: r for r in report["rows"]}
    assert set(rows) == {"array, protocol 4", "array, protocol 2", "list of frames, protocol 4"}
    for row in rows.values():
        assert row["pickles"] == 20 and len(row["safe_us"]) == len(row["plain_us"]) == 1
        assert row["median_safe_us"] > 0 and row["median_plain_us"] > 0
        assert row["ratio"] == pytest.approx(row["median_safe_us"] / row["median_plain_us"])
    assert rows["array, protocol 4"]["bytes_each"] > 30 * 18 * 3 * 4  # the float32 data is in the pickle
    assert proc.stdout.count("per pickle") == 3
