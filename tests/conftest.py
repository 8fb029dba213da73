"""Two test lanes.

* **Fast lane** (the README's ``python -m pytest -q``; ``addopts = -m 'not slow'`` in
  pyproject.toml): unit and in-process tests, a couple of minutes on two cores.
* **Slow lane** (``python -m pytest -q -m slow``; a later ``-m`` replaces the one in addopts):
  every test that launches training or testing in a new process (``fastposegait/main.py``, the
  training-throughput and test-phase benchmarks), plus the in-process tests listed in
  :data:`SLOW_TESTS`. ``.ci/run`` runs the fast lane, then the slow lane.

A test is slow when it is marked ``@pytest.mark.slow`` (or listed below). The rule "a training
or testing subprocess belongs to the slow lane" is enforced: a fast-lane test that launches one
of :data:`TRAINING_ENTRY_POINTS` fails, saying to mark it slow. To run one slow test on its
own, select the lane too: ``python -m pytest -m slow tests/engine/test_end_to_end.py``.
"""
from __future__ import annotations

import os
import subprocess
import warnings
from pathlib import Path
from typing import Any, List

import pytest

#: slow in-process tests of files this lane split does not own (node id -> why)
SLOW_TESTS = {
    "tests/engine/test_train_step.py::test_compiled_step_matches_eager":
        "torch.compile of a training step: about a minute of compilation on a CPU",
}

#: programs that train or test a model; a fast-lane test may not run them in a subprocess
TRAINING_ENTRY_POINTS = ("fastposegait/main.py", "benchmarks/train_throughput.py", "benchmarks/test_phase.py",
                         "benchmarks/gpu_suite.py", "benchmarks/gpu_suite.sh")


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    collected = {item.nodeid: item for item in items}
    for nodeid, reason in SLOW_TESTS.items():
        item = collected.get(nodeid)
        if item is not None:
            item.add_marker(pytest.mark.slow(reason=reason))
            continue
        path, _, name = nodeid.partition("::")
        module = next((getattr(i, "module", None) for i in items if i.nodeid.startswith(path + "::")), None)
        if module is not None and not hasattr(module, name):
            warnings.warn(f"tests/conftest.py SLOW_TESTS names {nodeid}, which no longer exists: it is not "
                          "in the slow lane; update the list", pytest.PytestWarning, stacklevel=1)


def launches_training(args: Any) -> bool:
    """Whether a Popen argument list runs one of TRAINING_ENTRY_POINTS (or ``fastposegait``)."""
    argv = [args] if isinstance(args, (str, bytes, os.PathLike)) else list(args)
    words = [str(a) for a in argv]
    if isinstance(args, str):
        words = args.split()
    for i, word in enumerate(words):
        posix = word.replace(os.sep, "/")
        if any(posix == entry or posix.endswith("/" + entry) for entry in TRAINING_ENTRY_POINTS):
            return True
        if word == "-m" and i + 1 < len(words) and words[i + 1] in ("fastposegait.main", "fastposegait"):
            return True
    return bool(words) and Path(words[0]).name == "fastposegait"


@pytest.fixture(autouse=True)
def _fast_lane_launches_no_training(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """Fail a test outside the slow lane that starts a training or testing process."""
    if request.node.get_closest_marker("slow") is not None:
        yield
        return
    real_popen = subprocess.Popen
    nodeid = request.node.nodeid

    class FastLanePopen(real_popen):  # type: ignore[misc, valid-type]
        def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
            if launches_training(args):
                raise AssertionError(
                    f"{nodeid} launches a training/testing process ({args!r}) but is not marked "
                    "@pytest.mark.slow: such tests belong to the slow lane (tests/conftest.py)"
                )
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", FastLanePopen)
    yield
