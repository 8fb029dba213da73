"""The README opens with the two commands a new user runs; they must stay runnable.

The main command is executed here exactly as written (minus the install step, already done),
shortened with config overrides and run in a temporary folder. The test command must be the
one .ci/run executes; CI then runs the slow lane.
"""
import json
import os
import re
import shlex
import subprocess
import sys

import pytest

from accuracy_reference import check_run
from cli_helpers import MAIN, REPO, run_cli, tiny_overrides

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


def test_ci_runs_the_readme_command_then_the_slow_lane():
    """The README's command is the fast lane (pyproject's addopts deselect the slow tests);
    .ci/run runs it, then the slow lane, so CI runs every test."""
    tests = code_blocks()[1].strip()
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.strip().startswith("#")]
    assert tests in ci and "python -m pytest -q -m slow" in ci
    assert ci.index(tests) < ci.index("python -m pytest -q -m slow")
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(r"""^addopts = "-ra -m 'not slow'"$""", pyproject, flags=re.M)


def test_a_fast_lane_test_cannot_launch_training():
    with pytest.raises(AssertionError, match="not marked @pytest.mark.slow"):
        subprocess.run([sys.executable, str(MAIN), "--help"], capture_output=True)
    with pytest.raises(AssertionError, match="launches a training/testing process"):
        subprocess.run([sys.executable, "benchmarks/test_phase.py", "--help"], cwd=REPO, capture_output=True)
    ok = subprocess.run([sys.executable, "-c", "print(6 * 7)"], capture_output=True, text=True, check=True)
    assert ok.stdout == "42\n"  # other processes are fine


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
    run = out.parent.relative_to(tmp_path)  # the reported values, recomputed from the checkpoint
    check_run(tmp_path, run, run / "checkpoints" / "GaitGraph2-demo-00004.pt",
              run / "checkpoints" / "GaitGraph2-demo-00004-test.json")


def inference_block():
    """The README's embed -> enroll -> identify commands (the block that starts with
    ``fastposegait embed``), one list of arguments per command."""
    (block,) = [b for b in code_blocks() if b.startswith("fastposegait embed")]
    return [shlex.split(line) for line in block.replace("\\\n", " ").strip().splitlines()]


@pytest.mark.slow
def test_readme_inference_commands_identify_the_test_walkers(tmp_path):
    """The README's inference block, run as written through ``python -m fastposegait`` on a
    tiny trained demo (data paths pointed at its dataset): the embeddings file holds the test
    split, the gallery the nm-01..04 walks, and identify's answers are the brute-force nearest
    identities of the file's embeddings."""
    from fastposegait.evaluation.distance import compute_distance
    from fastposegait.recognition.embedding_file import load_embeddings
    from fastposegait.recognition.gallery import Gallery

    over = tiny_overrides(tmp_path)
    run_cli(["--cfgs", str(REPO / "configs/demo/gaitgraph2_demo.yaml"), "--phase", "train", *over], tmp_path)
    commands = inference_block()
    assert [c[:2] for c in commands] == [["fastposegait", "embed"], ["fastposegait", "enroll"],
                                        ["fastposegait", "identify"]]
    paths = {"data/synthetic-casia-b.json": str(tmp_path / "partition.json"),
             "data/synthetic-casia-b": str(tmp_path / "data")}
    outputs = []
    for command in commands:
        args = [paths.get(a, a) for a in command[1:]]
        proc = subprocess.run([sys.executable, "-m", "fastposegait", *args, "--no-progress"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert proc.returncode == 0, proc.stderr[-3000:]
        outputs.append(proc.stdout)
    embeddings, entries, _ = load_embeddings(tmp_path / "test_embeddings.npz")
    test_split = json.loads((tmp_path / "partition.json").read_text())["TEST_SET"]
    assert len(entries) == 40 and sorted({e["subject"] for e in entries}) == sorted(test_split)
    gallery = Gallery.load(tmp_path / "gallery.npz")
    enrolled = [i for i, e in enumerate(entries) if e["type"] in ("nm-01", "nm-02", "nm-03", "nm-04")]
    assert len(gallery) == len(enrolled) and gallery.identities == [entries[i]["subject"] for i in enrolled]
    answers = json.loads((tmp_path / "answers.json").read_text())
    probes = [i for i, e in enumerate(entries) if e["type"] in ("nm-05", "nm-06")]
    assert [p["name"] for p in answers["probes"]] == [entries[i]["name"] for i in probes]
    dist = compute_distance(embeddings[probes], embeddings[enrolled], gallery.metric).cpu().numpy()
    nearest = [gallery.identities[int(j)] for j in dist.argmin(1)]
    assert [p["decision"] for p in answers["probes"]] == nearest
    hits = sum(n == entries[i]["subject"] for n, i in zip(nearest, probes))
    assert f"rank-1: {hits}/{len(probes)} probes whose subject is enrolled" in outputs[2]
