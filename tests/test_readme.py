"""The README opens with the two commands a new user runs; they must stay runnable.

The main command is executed here exactly as written (minus the install step, already done),
shortened with config overrides and run in a temporary folder. The test command must be the
one .ci/run executes.
"""
import json
import re
import shlex

import pytest

from cli_helpers import REPO, run_cli, tiny_overrides

README = (REPO / "README.md").read_text()


def code_blocks():
    return re.findall(r"```bash\n(.*?)```", README, flags=re.S)


def test_readme_opens_with_exactly_the_two_commands():
    head = README.split("---", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", head, flags=re.S)
    assert len(blocks) == 2
    main, tests = (b.strip() for b in blocks)
    assert "\n" not in main and "\n" not in tests  # one copy-pasteable line each
    assert main.startswith("pip install -e . && ")
    assert tests == "pip install -e '.[test]' && python -m pytest -q"
    ci = (REPO / ".ci" / "run").read_text()
    assert tests in ci


@pytest.mark.slow
def test_readme_main_command_trains_then_tests(tmp_path):
    main = code_blocks()[0].strip()
    steps = [shlex.split(part) for part in main.split("&&")]
    assert steps[0][:2] == ["pip", "install"]
    runs = steps[1:]
    assert [r[:2] for r in runs] == [["python", "fastposegait/main.py"]] * 2
    assert [r[r.index("--phase") + 1] for r in runs] == ["train", "test"]
    over = tiny_overrides(tmp_path) + ["evaluator_cfg.restore_hint=4"]
    for args in runs:
        args = [str(REPO / a) if a.startswith(("configs/", "fastposegait/")) else a for a in args[2:]]
        proc = run_cli(args + over, tmp_path)
    assert "NM@R1:" in proc.stderr and "Rank-1 (Exclude identical-view cases)" in proc.stderr
    out = tmp_path / "output" / "Synthetic-CASIA-B" / "GaitGraph2" / "GaitGraph2-demo" / "checkpoints"
    report = json.loads((out / "GaitGraph2-demo-00004-test.json").read_text())
    assert report["dataset"] == "CASIA-B"
    assert {"scalar/test_accuracy/NM@R1", "scalar/test_accuracy/BG@R1", "scalar/test_accuracy/CL@R1"} <= set(report["results"])
