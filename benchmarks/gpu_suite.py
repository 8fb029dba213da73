"""The GPU suite: one command that proves and measures every CUDA path, in minutes.

GPU time comes in short windows, so everything is prepared here and runs in one go. Steps, each
with its own time limit inside a global budget (a step that fails, times out or has no time left
is recorded, and the suite goes on):

1. ``pytest``: the CUDA-only tests (every test whose id says ``cuda``, in the files that touch
   CUDA) and ``tests/gpu/test_cuda_equality.py`` (forward + backward of every demo model on
   the CPU vs CUDA, float32);
2. ``distributed``: ``torchrun --nproc_per_node=<all GPUs, at most 4>`` train + test of each demo config
   (CASIA-B layout) for 4 iterations at the tiny widths of ``tests/cli_helpers.py`` (NCCL on
   CUDA; gloo with 2 processes and the demos of ``DRY_RUN_DEMOS`` in the dry run; 1, 2 or 4
   processes, as the tiny batches must split evenly over the ranks); with 2+ processes also that SyncBatchNorm was
   switched on (CUDA only), and the single-vs-multi-process weight equality of GaitGraph2;
3. ``throughput``: ``benchmarks/train_throughput.py`` on the four CASIA-B recipes at their real
   batch sizes: fp32, fp16 (+GradScaler), bf16 and ``torch.compile``, model-only vs fed by the
   DataLoader (pipeline efficiency) with 1, 4 and 8 workers, and with
   ``trainer_cfg.transform_on=device`` when the config accepts it; then SkeletonGait (the CCPG
   recipe's DeepGaitV2, skeleton maps rendered on the GPU, float16; then rendered by 4 workers,
   float16 and float32) in a fixed share of the step's time;
4. ``test_phase``: ``benchmarks/test_phase.py`` on a CASIA-B-sized test set (5,500 sequences);
5. ``machine``: CPU, memory, torch, CUDA, cuDNN and NCCL versions, the GPUs and ``nvidia-smi``.

Data: by default a synthetic CASIA-B-like dataset of 124 subjects (74 train, 50 test: 5,500
test sequences), generated into ``--out`` by ``python -m fastposegait.data.synthetic``; never
the network. ``--root``/``--partition`` use any CASIA-B-layout dataset instead.

``--dry-run`` (automatic without CUDA) runs everything that does not need CUDA at tiny sizes on
the CPU, in a few minutes on 2 cores; CI runs it (tests/benchmarks/test_gpu_suite_dry_run.py).

    python benchmarks/gpu_suite.py --out /tmp/suite                 # on a GPU machine
    python benchmarks/gpu_suite.py --dry-run --out /tmp/suite       # anywhere

Writes ``gpu_suite.json`` and ``gpu_suite.md`` to ``--out``, plus each step's logs under
``--out/logs``; exit status 1 when a step failed or timed out.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "tests"))

from cli_helpers import MAIN, TINY, free_port, schedule_overrides, synthetic_data_overrides  # noqa: E402
from machine import gpu_info, machine_info  # noqa: E402

#: seconds per step on a GPU machine (upper bounds; the whole run is also capped by --budget)
REAL_LIMITS = {"data": 60, "pytest": 90, "distributed": 120, "throughput": 175, "test_phase": 75}
#: the same for the dry run on a 2-core CPU
DRY_LIMITS = {"data": 60, "pytest": 120, "distributed": 240, "throughput": 150, "test_phase": 150}
STEPS = ("machine", "pytest", "distributed", "throughput", "test_phase")
DEVICE_TRANSFORMS = "trainer_cfg.transform_on=device"
GRAPH_MODELS = "gaitgraph2,gaitgraph1,gaittr,gpgait"
#: SkeletonGait's timed windows: 1 warm-up step, then one window of 4 steps. Its pipeline with 4
#: workers rendering maps is bound by them: the first 4 batches come together, the next ones one
#: worker's batch time later, so a window of 4 steps after the warm-up spans that batch time.
SKELETONGAIT_WINDOWS = ["--warmup", "1", "--steps", "4", "--repeats", "1"]
#: end time of background processes, by pid
FINISHED: Dict[int, float] = {}
#: weight tolerance of single- vs multi-process training (as tests/engine/test_end_to_end.py)
WEIGHT_ATOL, WEIGHT_RTOL = 2.5e-4, 1e-4


class Suite:
    """Runs the steps in order against one deadline and collects their records."""

    def __init__(self, out: Path, dry_run: bool, budget_s: float, world: int) -> None:
        self.out = out
        self.dry_run = dry_run
        self.limits = DRY_LIMITS if dry_run else REAL_LIMITS
        self.deadline = time.monotonic() + budget_s
        self.world = world
        self.logs = out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ, PYTHONUNBUFFERED="1")
        if dry_run:
            self.env["CUDA_VISIBLE_DEVICES"] = ""  # CPU only, even on a machine with a GPU
            self.env["OMP_NUM_THREADS"] = self.env.get("OMP_NUM_THREADS", "1")

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    def run(self, name: str, cmd: Sequence[str], timeout: float, cwd: Path = REPO,
            env_extra: Optional[Dict[str, str]] = None) -> Tuple[Optional[int], str]:
        """Run ``cmd``, its output to ``logs/<name>.txt``; ``(exit code or None on timeout, output)``."""
        log = self.logs / f"{name}.txt"
        env = dict(self.env, **(env_extra or {}))
        timeout = max(1.0, min(timeout, self.time_left()))
        with open(log, "w") as f:
            f.write("$ " + " ".join(shlex.quote(str(c)) for c in cmd) + "\n")
            f.flush()
            try:
                proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT,
                                      timeout=timeout)
                code: Optional[int] = proc.returncode
            except subprocess.TimeoutExpired:
                code = None
        return code, log.read_text(errors="replace")


def _record(name: str, status: str, start: float, reason: str = "", **figures: Any) -> Dict[str, Any]:
    return {"name": name, "status": status, "reason": reason, "duration_s": round(time.monotonic() - start, 2),
            "figures": figures}


# ----------------------------------------------------------------------------------- steps


def step_machine(suite: Suite) -> Dict[str, Any]:
    start = time.monotonic()
    info = machine_info()
    gpu = gpu_info()
    import torch

    figures = {"torch": torch.__version__, "torch_cuda": gpu["torch_cuda"], "cudnn": gpu["cudnn"],
               "nccl": gpu["nccl"], "gpus": gpu["gpus"], "nvidia_smi": gpu["nvidia_smi"], "machine": info}
    return _record("machine", "passed", start, **figures)


def cuda_test_files() -> List[str]:
    """Test files that mention CUDA (their CUDA-only tests have ``cuda`` in their ids)."""
    files = []
    for path in sorted((REPO / "tests").rglob("test_*.py")):
        if path.name == "test_gpu_suite_dry_run.py":
            continue
        if "cuda" in path.read_text(errors="replace"):
            files.append(str(path.relative_to(REPO)))
    return files


def parse_junit(path: Path) -> Dict[str, Any]:
    """Counts, failed test ids and skip reasons of a pytest ``--junitxml`` report."""
    root = ElementTree.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {"tests": 0, "failed": 0, "errors": 0, "skipped": 0}
    failed: List[str] = []
    skipped: Dict[str, int] = {}
    for s in suites:
        for case in s.iter("testcase"):
            counts["tests"] += 1
            test_id = f"{case.get('classname')}::{case.get('name')}"
            if case.find("failure") is not None:
                counts["failed"] += 1
                failed.append(test_id)
            elif case.find("error") is not None:
                counts["errors"] += 1
                failed.append(test_id)
            elif case.find("skipped") is not None:
                counts["skipped"] += 1
                reason = case.find("skipped").get("message", "")
                skipped[reason] = skipped.get(reason, 0) + 1
    counts["passed"] = counts["tests"] - counts["failed"] - counts["errors"] - counts["skipped"]
    return {**counts, "failed_ids": failed, "skip_reasons": skipped}


def step_pytest(suite: Suite) -> Dict[str, Any]:
    start = time.monotonic()
    xml = suite.out / "pytest.xml"
    files = cuda_test_files()
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-m", "slow or not slow",
           "-k", "cuda", f"--junitxml={xml}", *files]
    code, output = suite.run("pytest", cmd, suite.limits["pytest"])
    if code is None:
        return _record("pytest", "timeout", start, f"over {suite.limits['pytest']} s", files=files)
    if not xml.exists():
        return _record("pytest", "failed", start, f"pytest exit {code}, no report: {output[-300:]}", files=files)
    counts = parse_junit(xml)
    ok = code == 0 and counts["failed"] == 0 and counts["errors"] == 0
    reason = "" if ok else f"pytest exit {code}: {', '.join(counts['failed_ids'][:10])}"
    if ok and counts["passed"] == 0:
        reason = "every selected test was skipped (no CUDA)"
    return _record("pytest", "passed" if ok else "failed", start, reason, files=files, **counts)


def _casia_b_demos() -> List[Path]:
    import yaml

    return [p for p in sorted((REPO / "configs" / "demo").glob("*.yaml"))
            if yaml.safe_load(p.read_text())["data_cfg"].get("synthetic", {}).get("layout", "casia-b") == "casia-b"]


#: the demos the CPU dry run launches with torchrun: the weight-equality model (GaitGraph2), one
#: without training, and SkeletonGait (maps rendered in the workers); every demo runs through the
#: CLI in the slow lane anyway (tests/engine/test_models_cli.py), and the real run launches them all
DRY_RUN_DEMOS = ("gaitgraph2_demo", "raw_joints_nn", "skeletongait_demo")


def distributed_demos(dry_run: bool) -> List[Path]:
    """The CASIA-B-layout demos the distributed step launches (a subset in the dry run, to keep
    the CPU-only CI short)."""
    demos = _casia_b_demos()
    return [p for p in demos if p.stem in DRY_RUN_DEMOS] if dry_run else demos


def distributed_processes(gpus: int) -> int:
    """Processes for the torchrun step: all GPUs, up to 4 and a power of two, because the tiny
    demo batches (4 sequences for GPGait, 8 for the others) must split evenly over the ranks."""
    return max(p for p in (1, 2, 4) if p <= max(1, gpus))


def _torchrun(nproc: int) -> List[str]:
    return ["-m", "torch.distributed.run", f"--nproc_per_node={nproc}", f"--master_port={free_port()}"]


def step_distributed(suite: Suite) -> Dict[str, Any]:
    """torchrun train + test of each CASIA-B-layout demo; SyncBatchNorm and weight equality."""
    import torch
    import yaml

    start = time.monotonic()
    step_end = time.monotonic() + suite.limits["distributed"]
    nproc = suite.world
    expected_backend = "gloo" if suite.dry_run else "nccl"
    runs: List[Dict[str, Any]] = []
    problems: List[str] = []
    work = suite.out / "work" / "distributed"

    def launch(tag: str, folder: Path, args: List[str], procs: int) -> Tuple[Optional[int], str]:
        launcher = _torchrun(procs) if procs > 1 or not suite.dry_run else []
        cmd = [sys.executable, *launcher, str(MAIN), *args]
        return suite.run(f"distributed-{tag}", cmd, step_end - time.monotonic(), cwd=folder,
                         env_extra={"OMP_NUM_THREADS": "1"})

    for config in distributed_demos(suite.dry_run):
        raw = yaml.safe_load(config.read_text())
        model = raw["model_cfg"]["model"]
        folder = work / config.stem
        folder.mkdir(parents=True, exist_ok=True)
        over = synthetic_data_overrides(folder) + schedule_overrides(4, 2) + TINY[model]["overrides"]
        row: Dict[str, Any] = {"config": str(config.relative_to(REPO)), "model": model, "processes": nproc}
        if time.monotonic() >= step_end or suite.time_left() <= 0:
            row["status"] = "skipped: out of time"
            runs.append(row)
            continue
        trainable = bool(TINY[model]["trained_keys"])
        t0 = time.monotonic()
        if trainable:
            code, out = launch(f"{config.stem}-train", folder, ["--cfgs", str(config), "--phase", "train", *over], nproc)
            row["train_s"] = round(time.monotonic() - t0, 2)
            row["train_exit"] = code
            backend = re.search(r"process group: backend=(\w+) world_size=(\d+)", out)
            row["backend"] = backend.group(1) if backend else None
            row["sync_bn"] = "converted to SyncBatchNorm" in out
            if code != 0:
                problems.append(f"{config.stem} train exit {code}")
            elif nproc > 1 and row["backend"] != expected_backend:
                problems.append(f"{config.stem}: backend {row['backend']}, expected {expected_backend}")
            elif nproc > 1 and not suite.dry_run and not row["sync_bn"] and raw["trainer_cfg"].get("sync_BN", True):
                problems.append(f"{config.stem}: sync_BN did not convert BatchNorm with {nproc} GPUs")
        t0 = time.monotonic()
        code, out = launch(f"{config.stem}-test", folder,
                           ["--cfgs", str(config), "--phase", "test", "--iter", "4" if trainable else "0", *over], nproc)
        row["test_s"] = round(time.monotonic() - t0, 2)
        row["test_exit"] = code
        found = sorted(folder.glob("output/**/checkpoints/*-test.json"))
        if code == 0 and found:
            results = json.loads(found[-1].read_text())["results"]
            row["rank1"] = {k.split("/")[-1]: round(v, 2) for k, v in results.items()
                            if k.startswith("scalar/test_accuracy/")}
        elif code != 0:
            problems.append(f"{config.stem} test exit {code}")
        else:
            problems.append(f"{config.stem}: no test JSON written")
        row["status"] = "ran"
        runs.append(row)

    equality = _weight_equality(suite, work / "equality", step_end, nproc)
    if equality.get("status") == "failed":
        problems.append(f"weight equality: {equality.get('reason')}")
    timed_out = any(r.get("train_exit", 0) is None or r.get("test_exit", 0) is None for r in runs)
    skipped_runs = [r["config"] for r in runs if r["status"] != "ran"]
    status = "timeout" if timed_out else "failed" if problems else "passed"
    reason = "; ".join(problems + ([f"not run (out of time): {', '.join(skipped_runs)}"] if skipped_runs else []))
    if not problems and not timed_out and skipped_runs:
        status = "timeout"
    sync_note = ("SyncBatchNorm needs CUDA and 2+ processes: not checked" if suite.dry_run or nproc < 2
                 else "SyncBatchNorm checked in the 2+ process runs")
    return _record("distributed", status, start, reason, backend=expected_backend, processes=nproc, runs=runs,
                   sync_bn=sync_note, weight_equality=equality, cuda=torch.cuda.is_available() and not suite.dry_run)


def _weight_equality(suite: Suite, folder: Path, step_end: float, nproc: int) -> Dict[str, Any]:
    """GaitGraph2 demo with fix_BN: single-process vs ``nproc``-process weights after 4 steps."""
    import torch

    if nproc < 2:
        return {"status": "skipped", "reason": "needs 2+ processes (1 GPU visible)"}
    if time.monotonic() >= step_end:
        return {"status": "skipped", "reason": "out of time"}
    config = REPO / "configs" / "demo" / "gaitgraph2_demo.yaml"
    over = synthetic_data_overrides(folder) + schedule_overrides(4, 4) + TINY["GaitGraph2"]["overrides"] + [
        "trainer_cfg.fix_BN=true"]
    states = {}
    for tag, procs in (("single", 1), ("multi", nproc)):
        sub = folder / tag
        sub.mkdir(parents=True, exist_ok=True)
        launcher = _torchrun(procs) if procs > 1 else []
        cmd = [sys.executable, *launcher, str(MAIN), "--cfgs", str(config), "--phase", "train", *over]
        code, _ = suite.run(f"distributed-equality-{tag}", cmd, step_end - time.monotonic(), cwd=sub,
                            env_extra={"OMP_NUM_THREADS": "1"})
        if code != 0:
            return {"status": "failed" if code is not None else "timeout", "reason": f"{tag} run exit {code}"}
        ckpt = next(iter(sorted(sub.glob("output/**/checkpoints/*-00004.pt"))), None)
        if ckpt is None:
            return {"status": "failed", "reason": f"{tag} run wrote no checkpoint 4"}
        states[tag] = torch.load(ckpt, map_location="cpu", weights_only=True)["model"]
    worst, worst_key = 0.0, ""
    bad = []
    for key, a in states["single"].items():
        b = states["multi"][key]
        if not a.is_floating_point():
            continue
        diff = float((a.double() - b.double()).abs().max())
        if diff > worst:
            worst, worst_key = diff, key
        if not torch.allclose(a.float(), b.float(), atol=WEIGHT_ATOL, rtol=WEIGHT_RTOL):
            bad.append(key)
    return {"status": "failed" if bad else "passed", "reason": f"differ: {', '.join(bad[:5])}" if bad else "",
            "processes": nproc, "max_abs_difference": worst, "worst_tensor": worst_key,
            "tolerance": {"atol": WEIGHT_ATOL, "rtol": WEIGHT_RTOL}}


def device_transforms_available() -> Tuple[bool, str]:
    """Whether the config accepts ``trainer_cfg.transform_on=device`` (and why not)."""
    from fastposegait.config import load_config

    try:
        load_config(REPO / "configs" / "gaitgraph2" / "gaitgraph2.yaml", [DEVICE_TRANSFORMS])
    except Exception as err:  # ConfigError today; anything else is just as unavailable
        return False, str(err).splitlines()[0][:200]
    return True, ""


def data_overrides(root: Path, partition: Path) -> List[str]:
    """Point a recipe at an existing CASIA-B-layout dataset (no synthetic generation)."""
    return ["--override", f"data_cfg.dataset_root={root}", "--override", f"data_cfg.dataset_partition={partition}",
            "--override", "data_cfg.synthetic=null"]


class Run(NamedTuple):
    """One ``benchmarks/train_throughput.py`` invocation of the throughput step."""

    tag: str
    models: str  # comma-separated train_throughput model names
    variants: str  # comma-separated train_throughput variants
    workers: Optional[int]  # --num-workers; None: the recipe's own
    overrides: List[str]  # extra --override KEY=VALUE (device transforms)
    seconds: Optional[float] = None  # a fixed share; None: an equal part of the rest
    args: Tuple[str, ...] = ()  # extra command-line arguments


def throughput_plan(dry_run: bool, device: bool) -> List[Run]:
    """The throughput step's invocations, in order. A run with ``seconds`` (SkeletonGait) gets
    that much, capped by what is left; the others share equally what is left after the fixed
    shares still to come (time saved rolls on to ``torch.compile``, last). A run cut short keeps
    its rows (the benchmark writes its JSON after every row).

    Dry run: SkeletonGait (tiny) rides in the graph models' invocations, so that it adds no
    process start-up to the CI run."""
    if dry_run:
        plan = [Run("fp32-bf16-w0", GRAPH_MODELS + ",skeletongait", "fp32,bf16", 0, []),
                Run("fp32-w1", GRAPH_MODELS + ",skeletongait", "fp32", 1, [])]
        if device:
            plan.append(Run("device-fp32-w0", GRAPH_MODELS + ",skeletongait", "fp32", 0, [DEVICE_TRANSFORMS]))
        return plan
    # the graph recipes' own num_workers is 1: "default workers" is the 1-worker row
    plan = [Run("amp-w4", GRAPH_MODELS, "fp32,fp16,bf16", 4, []), Run("fp32-default-workers", GRAPH_MODELS, "fp32", None, []),
            Run("fp32-w8", GRAPH_MODELS, "fp32", 8, [])]
    if device:
        plan += [Run("device-fp32-default-workers", GRAPH_MODELS, "fp32", None, [DEVICE_TRANSFORMS]),
                 Run("device-fp32-w4", GRAPH_MODELS, "fp32", 4, [DEVICE_TRANSFORMS]),
                 Run("skeletongait-device-fp16-w4", "skeletongait", "fp16", 4, [DEVICE_TRANSFORMS], 20.0,
                     tuple(SKELETONGAIT_WINDOWS))]
    plan.append(Run("skeletongait-w4", "skeletongait", "fp16,fp32", 4, [], 45.0 if device else 65.0,
                    tuple(SKELETONGAIT_WINDOWS)))
    plan.append(Run("compile-w4", GRAPH_MODELS, "compile", 4, []))  # last: compilation takes what time is left
    return plan


def run_share(plan: Sequence[Run], i: int, left: float) -> float:
    """Seconds for ``plan[i]`` when ``left`` seconds of the step remain."""
    if plan[i].seconds is not None:
        return min(plan[i].seconds, left)
    later = plan[i:]
    reserved = sum(r.seconds for r in later if r.seconds is not None)
    return max(0.0, left - reserved) / sum(1 for r in later if r.seconds is None)


def step_throughput(suite: Suite, root: Path, partition: Path) -> Dict[str, Any]:
    start = time.monotonic()
    device, why_not = device_transforms_available()
    plan = throughput_plan(suite.dry_run, device)
    step_end = time.monotonic() + suite.limits["throughput"]
    rows: List[Dict[str, Any]] = []
    problems, not_run = [], []
    for i, run in enumerate(plan):
        left = min(step_end - time.monotonic(), suite.time_left())
        share = run_share(plan, i, left)
        if share <= 1:
            not_run.append(run.tag)
            continue
        out = suite.out / "work" / f"throughput-{run.tag}.json"
        cmd = [sys.executable, "benchmarks/train_throughput.py", "--models", run.models, "--variants", run.variants,
               "--device", "cpu" if suite.dry_run else "cuda", "--data", str(suite.out / "work" / "throughput"),
               "--out", str(out), *data_overrides(root, partition), *run.args]
        cmd += [a for o in run.overrides for a in ("--override", o)]
        if run.workers is not None:
            cmd += ["--num-workers", str(run.workers)]
        if suite.dry_run:
            cmd.append("--tiny")
        code, output = suite.run(f"throughput-{run.tag}", cmd, share)
        if out.exists():
            for row in json.loads(out.read_text())["rows"]:
                on_device = row.get("transform_on", "device" if run.overrides else "worker") == "device"
                rows.append({"run": run.tag, "device_transforms": on_device, **row})
        if code is None:
            problems.append(f"{run.tag}: timed out after {share:.0f} s (rows kept)")
        elif code != 0:
            problems.append(f"{run.tag}: exit {code}: {output.strip().splitlines()[-1][:200] if output.strip() else ''}")
    figures: Dict[str, Any] = {"rows": rows, "plan": [r.tag for r in plan], "not_run": not_run,
                               "device_transforms": "measured" if device else f"not available: {why_not}"}
    status = "failed" if any("exit" in p for p in problems) else "timeout" if problems or not_run else "passed"
    reason = "; ".join(problems + ([f"not run (out of time): {', '.join(not_run)}"] if not_run else []))
    return _record("throughput", status, start, reason, **figures)


def step_test_phase(suite: Suite, root: Path, partition: Path) -> Dict[str, Any]:
    start = time.monotonic()
    out = suite.out / "work" / "test_phase.json"
    cmd = [sys.executable, "benchmarks/test_phase.py", "--device", "cpu" if suite.dry_run else "cuda",
           "--data", str(suite.out / "work" / "test_phase"), "--out", str(out), *data_overrides(root, partition)]
    cmd += ["--tiny"] if suite.dry_run else ["--modes", "whole_batch,default", "--repeats", "1"]
    code, output = suite.run("test_phase", cmd, suite.limits["test_phase"])
    rows = json.loads(out.read_text())["rows"] if out.exists() else []
    if code is None:
        return _record("test_phase", "timeout", start, f"over {suite.limits['test_phase']} s (rows kept)", rows=rows)
    if code != 0:
        last = output.strip().splitlines()[-1][:300] if output.strip() else ""
        return _record("test_phase", "failed", start, f"exit {code}: {last}", rows=rows)
    return _record("test_phase", "passed", start, rows=rows)


# ------------------------------------------------------------------------------------ data


def start_data(suite: Suite, subjects: int) -> Tuple[Path, Path, Optional[subprocess.Popen], float]:
    """Start generating the synthetic CASIA-B-like dataset in the background (the pytest step
    runs meanwhile); returns its root, partition, process and start time."""
    root = suite.out / "data" / "synthetic-casia-b"
    partition = suite.out / "data" / "synthetic-casia-b.json"
    if root.is_dir() and partition.is_file():
        return root, partition, None, time.monotonic()
    cmd = [sys.executable, "-m", "fastposegait.data.synthetic", "casia-b", "--root", str(root),
           "--partition", str(partition), "--subjects", str(subjects), "--seed", "0",
           "--workers", str(max(1, min(8, (os.cpu_count() or 2) // 2)))]
    cmd += ["--frames", "20", "36", "--views", "000,090"] if suite.dry_run else ["--frames", "60", "110"]
    log = open(suite.logs / "data.txt", "w")
    log.write("$ " + " ".join(cmd) + "\n")
    log.flush()
    proc = subprocess.Popen(cmd, cwd=REPO, env=suite.env, stdout=log, stderr=subprocess.STDOUT)
    started = time.monotonic()
    # the moment it finishes, for its own duration (the suite waits for it only before step 3)
    threading.Thread(target=lambda: (proc.wait(), FINISHED.__setitem__(proc.pid, time.monotonic())),
                     daemon=True).start()
    return root, partition, proc, started


def finish_data(suite: Suite, proc: Optional[subprocess.Popen], started: float, root: Path, partition: Path,
                user_given: bool) -> Dict[str, Any]:
    if proc is None:
        return _record("data", "passed", started, "given with --root/--partition" if user_given else "already there",
                       root=str(root), partition=str(partition))
    try:
        code = proc.wait(timeout=max(1.0, started + suite.limits["data"] - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return _record("data", "timeout", started, f"generation over {suite.limits['data']} s")
    if code != 0:
        return _record("data", "failed", started, f"generator exit {code} (logs/data.txt)")
    counts = {k: len(v) for k, v in json.loads(partition.read_text()).items()}
    record = _record("data", "passed", started, "generated in the background during the earlier steps",
                     root=str(root), partition=str(partition), subjects=counts)
    time.sleep(0.05)  # let the watcher thread record the end
    record["duration_s"] = round(FINISHED.get(proc.pid, time.monotonic()) - started, 2)
    return record


# ---------------------------------------------------------------------------------- report


def markdown(report: Dict[str, Any]) -> str:
    """The report as markdown: one line per step, then the measured tables."""
    lines = [f"# GPU suite ({'dry run, CPU' if report['dry_run'] else 'CUDA'}), {report['date']}", "",
             f"Command: `{report['command']}`  ", f"Device: {report['device']}; total {report['total_s']:.0f} s", "",
             "| step | status | seconds | note |", "|---|---|---:|---|"]
    for s in report["steps"]:
        lines.append(f"| {s['name']} | {s['status']} | {s['duration_s']:.1f} | {s['reason'].replace('|', '/')} |")
    steps = {s["name"]: s for s in report["steps"]}
    m = steps.get("machine", {}).get("figures", {})
    if m:
        gpus = ", ".join(g["name"] for g in m.get("gpus", [])) or "none"
        lines += ["", f"torch {m.get('torch')}, CUDA {m.get('torch_cuda')}, cuDNN {m.get('cudnn')}, "
                      f"NCCL {m.get('nccl')}; GPUs: {gpus}; CPU: {m.get('machine', {}).get('cpu_model')}"]
    p = steps.get("pytest", {}).get("figures", {})
    if "tests" in p:
        lines += ["", f"pytest: {p['passed']} passed, {p['failed']} failed, {p['errors']} errors, "
                      f"{p['skipped']} skipped of {p['tests']}"]
    d = steps.get("distributed", {}).get("figures", {})
    if d.get("runs"):
        lines += ["", f"## torchrun ({d['backend']}, {d['processes']} processes)", "",
                  "| config | train s | test s | rank-1 |", "|---|---:|---:|---|"]
        for r in d["runs"]:
            rank1 = ", ".join(f"{k} {v}" for k, v in r.get("rank1", {}).items())
            lines.append(f"| {r['config']} | {r.get('train_s', '-')} | {r.get('test_s', '-')} | "
                         f"{rank1 or r['status']} |")
        eq = d.get("weight_equality", {})
        lines += ["", f"Weight equality single vs multi-process: {eq.get('status')} {eq.get('reason', '')}"
                      + (f" (max abs difference {eq['max_abs_difference']:.2e})" if "max_abs_difference" in eq else ""),
                  f"SyncBatchNorm: {d.get('sync_bn')}"]
    t = steps.get("throughput", {}).get("figures", {})
    if t.get("rows"):
        lines += ["", "## Training throughput", "", f"Device-side transforms: {t.get('device_transforms')}", "",
                  "| model | variant | device transforms | workers | batch | model-only seq/s | pipeline seq/s | "
                  "efficiency |", "|---|---|---|---:|---:|---:|---:|---:|"]
        for r in t["rows"]:
            lines.append(f"| {r['model']} | {r['variant']} | {'yes' if r['device_transforms'] else 'no'} | "
                         f"{r['num_workers']} | {r['batch']} | {r['model_only_seq_per_s']:.1f} | "
                         f"{r['pipeline_seq_per_s']:.1f} | {r['efficiency']:.3f} |")
    tp = steps.get("test_phase", {}).get("figures", {})
    if tp.get("rows"):
        lines += ["", "## Test phase", "", "| model | sequences | seq/s per mode | evaluate s |", "|---|---:|---|---:|"]
        for r in tp["rows"]:
            rates = ", ".join(f"{k} {v:.1f}" for k, v in r["seq_per_s"].items())
            lines.append(f"| {r['model']} | {r['sequences']} | {rates} | {r['evaluate_s']:.2f} |")
    return "\n".join(lines) + "\n"


def write(out: Path, report: Dict[str, Any]) -> None:
    (out / "gpu_suite.json").write_text(json.dumps(report, indent=2, default=str))
    (out / "gpu_suite.md").write_text(markdown(report))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=None, help="a CASIA-B-layout dataset root (default: a synthetic one)")
    parser.add_argument("--partition", default=None, help="its partition JSON (with --root)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "gpu_suite"),
                        help="folder for gpu_suite.json, gpu_suite.md, logs and working files")
    parser.add_argument("--dry-run", action="store_true", help="CPU only, tiny sizes (automatic without CUDA)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for the whole run (default: 470 on a GPU, 900 in the dry run)")
    parser.add_argument("--steps", default=",".join(STEPS), help="comma-separated subset of " + ", ".join(STEPS))
    args = parser.parse_args(argv)
    if (args.root is None) != (args.partition is None):
        parser.error("--root and --partition go together")
    import torch

    dry_run = args.dry_run or not torch.cuda.is_available()
    wanted = [s for s in args.steps.split(",") if s]
    if set(wanted) - set(STEPS):
        parser.error(f"--steps: unknown {sorted(set(wanted) - set(STEPS))}; choose from {', '.join(STEPS)}")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    world = 2 if dry_run else distributed_processes(torch.cuda.device_count())
    suite = Suite(out, dry_run, args.budget or (900.0 if dry_run else 470.0), world)
    begin = time.monotonic()
    report: Dict[str, Any] = {
        "suite": "gpu_suite", "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join(["python", "benchmarks/gpu_suite.py", *(sys.argv[1:] if argv is None else argv)]),
        "dry_run": dry_run,
        "device": "cpu (dry run)" if dry_run else f"cuda x{torch.cuda.device_count()}", "steps": [], "total_s": 0.0,
    }
    needs_data = {"throughput", "test_phase"} & set(wanted)
    if args.root:
        root, partition, proc, data_start = Path(args.root).resolve(), Path(args.partition).resolve(), None, time.monotonic()
    elif needs_data:
        root, partition, proc, data_start = start_data(suite, 6 if dry_run else 124)
    steps: Dict[str, Callable[[], Dict[str, Any]]] = {
        "machine": lambda: step_machine(suite),
        "pytest": lambda: step_pytest(suite),
        "distributed": lambda: step_distributed(suite),
        "throughput": lambda: step_throughput(suite, root, partition),
        "test_phase": lambda: step_test_phase(suite, root, partition),
    }
    data_ok = True
    for name in STEPS:
        if name not in wanted:
            report["steps"].append({"name": name, "status": "skipped", "reason": "not in --steps", "duration_s": 0.0,
                                    "figures": {}})
            continue
        if name in needs_data and not any(s["name"] == "data" for s in report["steps"]):
            record = finish_data(suite, proc, data_start, root, partition, args.root is not None)
            report["steps"].append(record)
            data_ok = record["status"] == "passed"
        t0 = time.monotonic()
        if suite.time_left() <= 0:
            record = _record(name, "skipped", t0, "out of time (the suite's budget is spent)")
        elif name in needs_data and not data_ok:
            record = _record(name, "skipped", t0, "no dataset (see the data step)")
        else:
            try:
                record = steps[name]()
            except Exception as err:  # record it and go on: later steps still run
                record = _record(name, "failed", t0, f"{type(err).__name__}: {err}"[:300])
        report["steps"].append(record)
        report["total_s"] = round(time.monotonic() - begin, 1)
        write(out, report)
        print(f"{name:12s} {record['status']:8s} {record['duration_s']:7.1f} s  {record['reason']}", flush=True)
    report["total_s"] = round(time.monotonic() - begin, 1)
    write(out, report)
    print(f"written {out / 'gpu_suite.json'} and {out / 'gpu_suite.md'} ({report['total_s']:.0f} s)")
    return 1 if any(s["status"] in ("failed", "timeout") for s in report["steps"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
