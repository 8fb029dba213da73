"""The same-view / cross-view summary of a CASIA-B-protocol test report, by hand."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from view_condition_difficulty import difficulty, main  # noqa: E402


def test_difficulty_by_hand(tmp_path, capsys):
    m = np.arange(25, dtype=float).reshape(5, 5)  # views 0..4
    report = {"results": {"scalar/test_accuracy/NM@R1": 1.0, "table/NM@R1-matrix": m.tolist(),
                          "table/BG@R1-matrix": (100 - m).tolist()}}
    out = difficulty(report)
    assert out["NM"]["same_view"] == pytest.approx(np.mean([0, 6, 12, 18, 24]))
    assert out["NM"]["cross_view"] == pytest.approx((m.sum() - 60) / 20)
    assert out["NM"]["adjacent_view"] == pytest.approx(np.mean([1, 7, 13, 19, 5, 11, 17, 23]))
    assert out["NM"]["far_view"] == pytest.approx(np.mean([4, 20]))  # only views 0 and 4 are 4 steps apart
    assert out["BG"]["same_view"] == pytest.approx(100 - 12)
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report))
    main([str(path)])
    assert "NM" in capsys.readouterr().out


def test_report_without_tables_is_a_clear_error():
    with pytest.raises(SystemExit, match="needs the single-view gallery protocol"):
        difficulty({"results": {"scalar/test_accuracy/Rank-1": 3.0}})
