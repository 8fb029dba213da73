"""The GPU suite (benchmarks/gpu_suite.py) in its CPU dry run, so it does not rot between the
rare runs on a GPU machine: every step runs or is skipped for a stated reason, and the JSON and
markdown reports hold what each step measured. Timings are not checked; values that can be
recomputed from others are.

The helpers the suite's CUDA path depends on (process count, pytest report parsing, the
throughput plan, the markdown) are checked in the fast lane."""
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import gpu_suite  # noqa: E402

STEP_ORDER = ["machine", "pytest", "distributed", "data", "throughput", "test_phase"]


def test_the_real_run_launches_every_casia_b_demo_and_the_dry_run_a_subset():
    every = gpu_suite._casia_b_demos()
    assert gpu_suite.distributed_demos(dry_run=False) == every
    dry = gpu_suite.distributed_demos(dry_run=True)
    assert [p.stem for p in dry] == sorted(gpu_suite.DRY_RUN_DEMOS) and set(dry) < set(every)


def test_processes_split_the_tiny_batches_evenly():
    assert [gpu_suite.distributed_processes(n) for n in (0, 1, 2, 3, 4, 5, 8)] == [1, 1, 2, 2, 4, 4, 4]


def test_parse_junit_counts_and_reasons(tmp_path):
    xml = tmp_path / "r.xml"
    xml.write_text(
        '<testsuites><testsuite name="pytest" tests="4">'
        '<testcase classname="tests.a" name="test_ok"/>'
        '<testcase classname="tests.a" name="test_bad"><failure message="x"/></testcase>'
        '<testcase classname="tests.b" name="test_cuda[1]"><skipped message="needs CUDA"/></testcase>'
        '<testcase classname="tests.b" name="test_cuda[2]"><skipped message="needs CUDA"/></testcase>'
        '</testsuite></testsuites>')
    got = gpu_suite.parse_junit(xml)
    assert got == {"tests": 4, "failed": 1, "errors": 0, "skipped": 2, "passed": 1,
                   "failed_ids": ["tests.a::test_bad"], "skip_reasons": {"needs CUDA": 2}}


def test_throughput_plan_covers_the_issue():
    real = gpu_suite.throughput_plan(dry_run=False, device=True)
    graph = [r for r in real if "skeletongait" not in r.models]
    assert all(r.models == "gaitgraph2,gaitgraph1,gaittr,gpgait" for r in graph)
    assert {v for r in graph for v in r.variants.split(",")} == {"fp32", "fp16", "bf16", "compile"}
    assert {r.workers for r in graph} == {4, 8, None}  # None: the recipes' own num_workers, which is 1
    assert real[-1].variants == "compile"  # last: it takes what time is left
    assert any(gpu_suite.DEVICE_TRANSFORMS in r.overrides for r in graph)
    assert not any(r.overrides for r in gpu_suite.throughput_plan(dry_run=False, device=False))
    # SkeletonGait: float32 and float16 rendered by the workers, float16 rendered on the device
    skeleton = {(v, gpu_suite.DEVICE_TRANSFORMS in r.overrides) for r in real if r.models == "skeletongait"
                for v in r.variants.split(",")}
    assert skeleton == {("fp32", False), ("fp16", False), ("fp16", True)}
    assert all(r.seconds for r in real if r.models == "skeletongait")  # a bounded share
    assert not any(r.seconds for r in graph)
    dry = gpu_suite.throughput_plan(dry_run=True, device=False)
    assert {v for r in dry for v in r.variants.split(",")} == {"fp32", "bf16"} and {r.workers for r in dry} == {0, 1}
    assert all("skeletongait" in r.models.split(",") for r in dry)  # no extra process start-up in CI


def test_throughput_shares_fit_the_step():
    """Fixed shares are kept for the SkeletonGait runs; the others split what is left after them
    equally; compile, last, takes the rest; nothing is planned past the step's limit."""
    plan = gpu_suite.throughput_plan(dry_run=False, device=True)
    limit = gpu_suite.REAL_LIMITS["throughput"]
    fixed = sum(r.seconds for r in plan if r.seconds)
    free = [r for r in plan if not r.seconds]
    assert gpu_suite.run_share(plan, 0, limit) == pytest.approx((limit - fixed) / len(free))
    # every run takes its whole share: the shares add up to the limit exactly
    left, shares = float(limit), []
    for i in range(len(plan)):
        shares.append(gpu_suite.run_share(plan, i, left))
        left -= shares[-1]
    assert sum(shares) == pytest.approx(limit) and left == pytest.approx(0.0)
    assert [s for s, r in zip(shares, plan) if r.seconds] == [r.seconds for r in plan if r.seconds]
    # the graph runs finish early (10 s each): compile gets all that is left
    left = float(limit)
    for i, r in enumerate(plan[:-1]):
        left -= r.seconds if r.seconds else 10.0
    assert gpu_suite.run_share(plan, len(plan) - 1, left) == pytest.approx(limit - fixed - 10.0 * (len(free) - 1))
    # short of time: a fixed share is capped by what is left
    i = next(i for i, r in enumerate(plan) if r.seconds)
    assert gpu_suite.run_share(plan, i, 5.0) == 5.0
    # the suite's step limits fit its default CUDA budget
    assert sum(v for k, v in gpu_suite.REAL_LIMITS.items() if k != "data") <= 470  # data: in the background


def test_cuda_test_files_hold_the_cuda_only_tests():
    files = gpu_suite.cuda_test_files()
    assert "tests/gpu/test_cuda_equality.py" in files
    assert "tests/evaluation/test_distance.py" in files
    assert "tests/benchmarks/test_gpu_suite_dry_run.py" not in files


def test_every_cuda_only_test_is_selected_by_the_suite():
    """The suite selects CUDA-only tests by ``-k cuda`` in the files that mention CUDA: a test
    skipped with "needs CUDA" must have ``cuda`` in its name (else the suite would miss it)."""
    selected = set(gpu_suite.cuda_test_files())
    found = 0
    for path in sorted((REPO / "tests").rglob("test_*.py")):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.lstrip().startswith("@pytest.mark.skipif") and "needs CUDA" in line:
                name = next(m.group(1) for m in (re.match(r"\s*def (test_\w+)", x) for x in lines[i:]) if m)
                assert "cuda" in name.lower(), f"{path.relative_to(REPO)}::{name} needs CUDA but -k cuda misses it"
                assert str(path.relative_to(REPO)) in selected
                found += 1
    assert found >= 5


@pytest.mark.slow  # launches training and testing processes
def test_dry_run_runs_every_step(tmp_path):
    out = tmp_path / "suite"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "benchmarks/gpu_suite.py", "--dry-run", "--out", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "gpu_suite.json").read_text())
    assert report["suite"] == "gpu_suite" and report["dry_run"] is True
    steps = {s["name"]: s for s in report["steps"]}
    assert [s["name"] for s in report["steps"]] == STEP_ORDER
    for s in report["steps"]:
        assert s["status"] in ("passed", "skipped"), (s["name"], s["status"], s["reason"])
        assert s["status"] == "passed" or s["reason"], s["name"]  # a skip says why
        assert s["duration_s"] >= 0
    assert all(s["status"] == "passed" for s in report["steps"])  # nothing in the dry run needs CUDA

    machine = steps["machine"]["figures"]
    assert machine["torch"] and machine["gpus"] == [] and machine["machine"]["logical_cpus"] >= 1

    tests = steps["pytest"]["figures"]
    assert tests["failed"] == tests["errors"] == 0
    assert tests["skip_reasons"].get("needs CUDA", 0) >= 18  # the CUDA-only tests, skipped here
    assert tests["passed"] + tests["skipped"] == tests["tests"]

    dist = steps["distributed"]["figures"]
    assert dist["backend"] == "gloo" and dist["processes"] == 2
    configs = {r["config"] for r in dist["runs"]}
    assert configs == {f"configs/demo/{name}.yaml" for name in gpu_suite.DRY_RUN_DEMOS}
    for run in dist["runs"]:
        assert run["status"] == "ran" and run["test_exit"] == 0
        if "train_exit" in run:
            assert run["train_exit"] == 0 and run["backend"] == "gloo"
        assert set(run["rank1"]) == {"NM@R1", "BG@R1", "CL@R1"}
        assert all(0.0 <= v <= 100.0 for v in run["rank1"].values())
    eq = dist["weight_equality"]
    assert eq["status"] == "passed" and 0.0 <= eq["max_abs_difference"] <= eq["tolerance"]["atol"] + 1e-3
    assert "needs CUDA" in dist["sync_bn"]

    data = steps["data"]["figures"]
    assert data["subjects"] == {"TRAIN_SET": 4, "TEST_SET": 2}

    rows = steps["throughput"]["figures"]["rows"]
    seen = {(r["model"], r["variant"], r["num_workers"], r["device_transforms"]) for r in rows}
    for model in ("gaitgraph2", "gaitgraph1", "gaittr", "gpgait", "skeletongait"):
        assert {(model, "fp32", 0, False), (model, "bf16", 0, False), (model, "fp32", 1, False)} <= seen
    for r in rows:  # the derived figures agree with the timings they come from
        assert r["efficiency"] == pytest.approx(r["pipeline_seq_per_s"] / r["model_only_seq_per_s"], rel=1e-9)
        assert r["batch"] > 0
        for key in ("model_only_seq_per_s", "pipeline_seq_per_s", "efficiency"):
            assert math.isfinite(r[key]) and r[key] > 0, (r["model"], r["variant"], key)
        assert r["transform_on"] == ("device" if r["device_transforms"] else "worker")
    available = steps["throughput"]["figures"]["device_transforms"]
    assert available == "measured" or available.startswith("not available: ")
    assert any(r["device_transforms"] for r in rows) == (available == "measured")
    skeleton = [r for r in rows if r["model"] == "skeletongait"]
    # tiny recipe: [2, 2] x 6 frames of the two-channel maps, cut to 44 columns (stacked; on the
    # device the workers hand over the poses, [4, 6, 17, 3]); classes: the 4 training subjects,
    # not the CCPG recipe's 100
    for r in skeleton:
        assert r["batch"] == 4 and r["class_num"] == data["subjects"]["TRAIN_SET"] == 4
        assert r["input_shape"] == ([4, 6, 17, 3] if r["device_transforms"] else [4, 6, 2, 64, 44])
    assert any(r["device_transforms"] for r in skeleton) == (available == "measured")

    phase = {r["model"]: r for r in steps["test_phase"]["figures"]["rows"]}
    assert set(phase) == {"gaitgraph2", "gaitgraph1", "gaittr", "gpgait"}
    for r in phase.values():
        assert r["sequences"] == 2 * 10 * 2  # 2 test subjects x 10 walks x 2 views
        assert set(r["seq_per_s"]) == {"whole_batch", "default", "one_per_call"}
        assert r["max_relative_feature_difference"] <= 1e-2

    md = (out / "gpu_suite.md").read_text()
    for name in STEP_ORDER:
        assert f"| {name} | passed |" in md
    assert "## torchrun (gloo, 2 processes)" in md and "## Training throughput" in md and "## Test phase" in md
    assert (out / "logs" / "pytest.txt").is_file() and (out / "logs" / "test_phase.txt").is_file()
