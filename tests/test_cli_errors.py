"""How the command-line programs end when the user, not the code, is at fault.

* A closed output pipe (``... | head``) ends a program quietly with status 141, not with a
  BrokenPipeError traceback (every CLI goes through :func:`fastposegait.cli.run_cli`).
* ``--iter -5``, ``--device cuda`` without CUDA and a test set the evaluation protocol cannot
  evaluate are one line (``error: ...``), not a traceback.
* Every exception class the package defines is a :class:`~fastposegait.errors.FastPoseGaitError`
  (the programs print those as one line), unless it is private or internal.
"""
from __future__ import annotations

import importlib
import inspect
import json
import os
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Sequence

import numpy as np
import pytest
import torch

import fastposegait
from cli_helpers import DEMO_CFG, MAIN, REPO, TINY_GAITGRAPH2, synthetic_data_overrides
from fastposegait import errors
from fastposegait.errors import FastPoseGaitError, user_message

#: the documented statuses of fastposegait.cli (written out: the CLI tests also run on older trees)
EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_INPUT_ERROR = 141, 130, 1
GAIT3D_CFG = REPO / "configs" / "gaitgraph2" / "gaitgraph2_Gait3D.yaml"


def run_into_closed_pipe(args: Sequence[str], cwd: Path, stderr_too: bool = False,
                         timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``args`` with stdout (and stderr, with ``stderr_too``) writing into a pipe whose reader
    has already gone: ``| head`` after it read what it wanted, without any race on when.
    stderr is captured unless ``stderr_too``."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    try:
        return subprocess.run(list(args), cwd=cwd, env=env, stdout=write_end,
                              stderr=write_end if stderr_too else subprocess.PIPE,
                              text=True, timeout=timeout)
    finally:
        os.close(write_end)


def assert_quiet_broken_pipe(proc: subprocess.CompletedProcess) -> None:
    stderr = proc.stderr or ""
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    assert "Broken pipe" not in stderr, stderr  # no misleading "error: Broken pipe" either
    assert proc.returncode == EXIT_BROKEN_PIPE, (proc.returncode, stderr)


# ------------------------------------------------------------------ the helper, in process


def test_run_cli_exit_statuses(capsys):
    from fastposegait import cli
    from fastposegait.cli import run_cli

    assert (cli.EXIT_BROKEN_PIPE, cli.EXIT_INTERRUPTED, cli.EXIT_INPUT_ERROR) == (141, 130, 1)
    assert run_cli(lambda: 3) == 3
    assert run_cli(lambda: None) == 0
    assert run_cli(lambda: {"a report": 1}) == 0  # the benchmarks and the generator return objects
    assert run_cli(lambda x: x, 4) == 4

    def bad_input():
        raise errors.DatasetError("data/x: not a dataset root; pass --root")

    assert run_cli(bad_input) == EXIT_INPUT_ERROR
    assert capsys.readouterr().err == "error: data/x: not a dataset root; pass --root\n"

    def stopped_training():
        raise errors.RunInterrupted("training stopped by SIGTERM at iteration 3; resume with --iter 3", 15)

    assert run_cli(stopped_training) == 143  # the error's own exit_code: 128 + SIGTERM
    assert capsys.readouterr().err == "error: training stopped by SIGTERM at iteration 3; resume with --iter 3\n"

    def interrupted():
        raise KeyboardInterrupt

    assert run_cli(interrupted, interrupted="re-run to resume") == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "interrupted; re-run to resume\n"

    def usage():
        raise SystemExit(2)

    with pytest.raises(SystemExit) as info:
        run_cli(usage)
    assert info.value.code == 2


def test_run_cli_keeps_the_traceback_of_bugs():
    from fastposegait.cli import run_cli

    def bug():
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError):
        run_cli(bug)

    def other_pipe():  # a worker's pipe, not stdout's or stderr's: a bug as well
        raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(BrokenPipeError):
        run_cli(other_pipe)


# ------------------------------------------------------------------ closed pipes, every CLI


@pytest.fixture(scope="module")
def casia_root(tmp_path_factory) -> Path:
    from fastposegait.data.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("casia")
    generate_dataset("casia-b", root / "data", num_subjects=3, views=["000", "090"], frames=(5, 8),
                     partition_path=root / "partition.json")
    return root


@pytest.mark.parametrize("module", ["fastposegait.converters", "fastposegait.datasets"])
def test_converters_validate_into_a_closed_pipe(module, casia_root, tmp_path):
    proc = run_into_closed_pipe([sys.executable, "-m", module, "validate", "-i", str(casia_root / "data"),
                                 "--partition", str(casia_root / "partition.json")], tmp_path)
    assert_quiet_broken_pipe(proc)


def test_converters_help_into_a_closed_pipe(tmp_path):
    proc = run_into_closed_pipe([sys.executable, "-m", "fastposegait.converters", "--help"], tmp_path)
    assert "Traceback" not in proc.stderr and proc.returncode == 0  # argparse ignores the closed pipe


def test_synthetic_generator_into_a_closed_pipe(tmp_path):
    proc = run_into_closed_pipe([sys.executable, "-m", "fastposegait.data.synthetic", "casia-b", "--root",
                                 str(tmp_path / "data"), "--subjects", "3", "--views", "000,090",
                                 "--frames", "5", "8", "--partition", str(tmp_path / "p.json")], tmp_path)
    assert_quiet_broken_pipe(proc)
    assert (tmp_path / "p.json").is_file()  # the dataset was written before the summary was printed


def test_view_condition_difficulty_into_a_closed_pipe(tmp_path):
    matrix = np.arange(25, dtype=float).reshape(5, 5).tolist()
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"results": {f"table/{c}@R1-matrix": matrix for c in ("NM", "BG", "CL")}}))
    proc = run_into_closed_pipe([sys.executable, str(REPO / "benchmarks" / "view_condition_difficulty.py"),
                                 str(report)], tmp_path)
    assert_quiet_broken_pipe(proc)


def test_render_synthetic_into_a_closed_pipe(tmp_path):
    script = tmp_path / "render_synthetic.py"  # a copy: it writes its figure next to itself
    shutil.copy(REPO / "resources" / "render_synthetic.py", script)
    proc = run_into_closed_pipe([sys.executable, str(script)], tmp_path)
    assert_quiet_broken_pipe(proc)
    assert (tmp_path / "synthetic_walks.png").is_file()


BENCHMARKS = ["batch_preparation", "conversion", "eval_benchmark", "startup_benchmark",
              pytest.param("test_phase", marks=pytest.mark.slow),  # conftest: training entry points
              pytest.param("train_throughput", marks=pytest.mark.slow)]


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_entry_points_go_through_run_cli(name, tmp_path):
    """Each benchmark script starts through run_cli (its --help reaches it) and, like every
    argparse help, ignores a closed pipe."""
    script = REPO / "benchmarks" / f"{name}.py"
    assert "raise SystemExit(run_cli(main))" in script.read_text()
    proc = run_into_closed_pipe([sys.executable, str(script), "--help"], tmp_path)
    assert "Traceback" not in proc.stderr and proc.returncode == 0, proc.stderr


def main_commands() -> List[pytest.param]:
    commands = [pytest.param([sys.executable, str(MAIN)], id="main.py")]
    console = Path(sys.executable).with_name("fastposegait")  # the console script of pip install -e .
    if console.is_file():
        commands.append(pytest.param([str(console)], id="console-script"))
    return commands


@pytest.mark.slow
@pytest.mark.parametrize("command", main_commands())
def test_main_test_phase_into_a_closed_pipe(command, tmp_path):
    """``main.py ... --phase test 2>&1 | head -3``: the log and the progress bar go to a reader
    that is gone. The program stops quietly (141); before, the progress bar's BrokenPipeError
    was a traceback (status 1)."""
    over = synthetic_data_overrides(tmp_path) + TINY_GAITGRAPH2
    proc = run_into_closed_pipe([*command, "--cfgs", str(DEMO_CFG), "--phase", "test", "--iter", "0", *over],
                                tmp_path, stderr_too=True)
    assert proc.returncode == EXIT_BROKEN_PIPE


# ------------------------------------------------------------------ main.py: --iter, --device


def run_main(argv: Sequence[str], cwd: Path, monkeypatch) -> int:
    from fastposegait.main import main

    monkeypatch.chdir(cwd)
    return main([str(a) for a in argv])


def test_negative_iter_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    code = run_main(["--cfgs", DEMO_CFG, "--phase", "test", "--iter", "-5", *synthetic_data_overrides(tmp_path)],
                    tmp_path, monkeypatch)
    err = capsys.readouterr().err
    assert code == 2
    assert err == "error: --iter must be an iteration >= 0 (0: no restore), got -5\n"
    assert not (tmp_path / "data").exists()  # stopped before doing anything


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_cuda_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    code = run_main(["--cfgs", DEMO_CFG, "--phase", "test", "--device", "cuda", *synthetic_data_overrides(tmp_path)],
                    tmp_path, monkeypatch)
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: --device cuda was requested but CUDA is not available")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_local_rank_without_gpu_is_a_device_error(monkeypatch):
    from fastposegait.distributed import DistEnv, select_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(errors.DeviceError, match="local rank 1 has no GPU: only 1 visible") as info:
        select_device(DistEnv(rank=1, world_size=2, local_rank=1, local_world_size=2, launcher="torchrun"), "auto")
    assert isinstance(info.value, FastPoseGaitError) and isinstance(info.value, RuntimeError)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(errors.DeviceError, match="CUDA is not available"):
        select_device(DistEnv(), "cuda")


# ------------------------------------------------------------------ evaluation protocols


def gait3d_without_matches(tmp_path: Path) -> dict:
    """Evaluator input where the only probe subject has no gallery sequence."""
    rng = np.random.default_rng(0)
    labels = ["001", "001", "002", "002", "003"]
    types = ["camid1_videoid1"] * 5
    views = ["seq0", "seq1", "seq0", "seq1", "seq0"]
    partition = tmp_path / "partition.json"
    partition.write_text(json.dumps({"TRAIN_SET": [], "TEST_SET": ["001", "002", "003"],
                                     "PROBE_SET": ["001-camid1_videoid1-seq0", "001-camid1_videoid1-seq1"]}))
    data = {"embeddings": rng.normal(size=(5, 4, 1)).astype(np.float32), "labels": labels, "types": types,
            "views": views}
    return {"data": data, "partition": str(partition)}


def test_evaluation_input_errors_are_fastposegait_errors(tmp_path):
    from fastposegait.evaluation import evaluate_Gait3D, evaluate_indoor_dataset

    case = gait3d_without_matches(tmp_path)
    with pytest.raises(errors.EvaluationError, match="no probe has a same-subject gallery sequence") as info:
        evaluate_Gait3D(case["data"], "Gait3D", dataset_partition=case["partition"])
    assert isinstance(info.value, FastPoseGaitError) and isinstance(info.value, ValueError)
    assert user_message(info.value).startswith("evaluate_Gait3D(Gait3D): no probe")
    with pytest.raises(errors.EvaluationError, match="needs dataset_partition"):
        evaluate_Gait3D(case["data"], "Gait3D")
    with pytest.raises(errors.MissingFileError, match="does not exist") as missing:
        evaluate_Gait3D(case["data"], "Gait3D", dataset_partition=str(tmp_path / "nope.json"))
    assert isinstance(missing.value, FileNotFoundError)
    nan = dict(case["data"], embeddings=np.full((5, 4, 1), np.nan, dtype=np.float32))
    with pytest.raises(errors.EvaluationError, match="NaN or inf"):
        evaluate_Gait3D(nan, "Gait3D", dataset_partition=case["partition"])
    one_view = dict(case["data"], types=["nm-01"] * 5, views=["000"] * 5)
    with pytest.raises(errors.EvaluationError, match="at least 2 views"):
        evaluate_indoor_dataset(one_view, "CASIA-B")


@pytest.fixture
def gait3d_root_without_matches(tmp_path) -> Path:
    """A synthetic Gait3D-layout dataset whose PROBE_SET is every sequence of one test subject:
    no probe has a gallery sequence of its subject."""
    from fastposegait.data.synthetic import generate_gait3d

    root = tmp_path / "gait3d"
    generate_gait3d(root / "data", num_subjects=6, num_train=2, frames=(20, 30), seed=0,
                    partition_path=root / "partition.json")
    partition = json.loads((root / "partition.json").read_text())
    subject = partition["TEST_SET"][0]
    folder = root / "data" / subject
    partition["PROBE_SET"] = [f"{subject}-{t.name}-{v.name}" for t in sorted(folder.iterdir()) if t.is_dir()
                              for v in sorted(t.iterdir()) if v.is_dir()]
    (root / "partition.json").write_text(json.dumps(partition))
    return root


@pytest.mark.slow
def test_gait3d_without_gallery_match_is_one_line_through_the_cli(gait3d_root_without_matches, tmp_path):
    root = gait3d_root_without_matches
    over = [f"data_cfg.dataset_root={root / 'data'}", f"data_cfg.dataset_partition={root / 'partition.json'}",
            "data_cfg.num_workers=0", *TINY_GAITGRAPH2]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(MAIN), "--cfgs", str(GAIT3D_CFG), "--phase", "test", "--iter", "0",
                           *over], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last == "error: evaluate_Gait3D(Gait3D): no probe has a same-subject gallery sequence; nothing to evaluate"


# ------------------------------------------------------------------ every error class


#: exception classes of the package that never reach a user (qualified name -> why)
INTERNAL = {
    "fastposegait.data.io.UnsafePickleError":
        "raised by the restricted unpickler and always re-raised as PoseFileError by load_pickle_bytes",
}


def package_modules() -> List[str]:
    names = [fastposegait.__name__]
    for info in pkgutil.walk_packages(fastposegait.__path__, prefix="fastposegait."):
        if info.name.rsplit(".", 1)[-1] != "__main__":  # importing one runs the program
            names.append(info.name)
    return names


def defined_exceptions() -> List[type]:
    found = []
    for name in package_modules():
        module = importlib.import_module(name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if obj.__module__ == name and issubclass(obj, BaseException):
                found.append(obj)
    return found


def is_internal(cls: type) -> bool:
    doc = (cls.__doc__ or "").lower()
    return cls.__name__.startswith("_") or "internal" in doc or f"{cls.__module__}.{cls.__qualname__}" in INTERNAL


def test_every_error_class_of_the_package_is_a_fastposegait_error():
    classes = defined_exceptions()
    assert errors.FastPoseGaitError in classes and errors.EvaluationError in classes  # the walk sees them
    offenders = [f"{c.__module__}.{c.__qualname__}" for c in classes
                 if not issubclass(c, FastPoseGaitError) and not is_internal(c)]
    assert offenders == [], (
        f"{offenders}: user-facing errors must subclass fastposegait.errors.FastPoseGaitError (define them in "
        "fastposegait/errors.py), or be private (_Name) / documented as internal")
    stale = [name for name in INTERNAL
             if name not in {f"{c.__module__}.{c.__qualname__}" for c in classes}]
    assert stale == [], f"INTERNAL names classes that no longer exist: {stale}"


def test_the_internal_unsafe_pickle_error_reaches_users_as_a_pose_file_error(tmp_path):
    import pickle

    from fastposegait.data.io import load_pickle

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(Path("x")))  # a global outside the allowed numpy/containers set
    with pytest.raises(errors.PoseFileError, match="refusing"):
        load_pickle(path)

