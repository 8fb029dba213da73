"""Checkpoints written by torch before 2.2 (upstream FastPoseGait's model zoo) load safely.

Old torch pickled ``OneCycleLR.state_dict()`` with ``anneal_func``, the bound method
``self._annealing_cos``: ``builtins.getattr(<the OneCycleLR object>, '_annealing_cos')`` with the
object's whole ``__dict__`` (the Adam object, a ``defaultdict`` of its state) and a POP opcode
for the self-reference. The files here are built with today's torch to hold exactly that object
graph (a bound method of a real OneCycleLR whose ``__dict__`` has the old fields), and
``test_the_files_here_hold_what_old_torch_wrote`` checks the graph.
"""
from __future__ import annotations

import logging
import pickle
import pickletools
import re
import struct
import types
import zipfile
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Any, List

import pytest
import torch

from cli_helpers import REPO, TINY, schedule_overrides, synthetic_data_overrides
from fastposegait.config import load_config
from fastposegait.distributed import DistEnv
from fastposegait.engine import old_torch_pickle
from fastposegait.engine.checkpoint import capture_rng_state, load_checkpoint
from fastposegait.engine.restore import restore_scheduler
from fastposegait.engine.runner import Runner
from fastposegait.engine.setup import build_optimizer, build_scheduler
from fastposegait.errors import CheckpointError, user_message
from fastposegait.modeling import build_model

OLD_TORCH_LINE = "written by an older torch"


@pytest.fixture(autouse=True)
def _propagate():
    logging.getLogger("fastposegait").propagate = True


def older_torch_lines(caplog) -> List[str]:
    return [r.getMessage() for r in caplog.records if OLD_TORCH_LINE in r.getMessage()]


# ------------------------------------------------------------------ what old torch wrote

def _method_named(name: str):
    def method(self, start, end, pct):  # never called: only its name is pickled
        raise AssertionError("an annealing method of a checkpoint was called")
    method.__name__ = name
    return method


def old_onecycle_state(scheduler: Any, bound: bool = True) -> dict:
    """Turn a OneCycleLR into what torch before 2.2 had, and return what its ``state_dict()``
    gave: the ``__dict__`` without the optimizer, ``anneal_func`` the bound method (pickled as
    ``getattr(<scheduler>, name)``; ``bound=False``: the function of the class, pickled as
    ``getattr(OneCycleLR, name)``), ``verbose``, no ``_anneal_func_type`` / ``_is_initial``.
    The scheduler is not usable afterwards."""
    name = f"_annealing_{scheduler.__dict__.pop('_anneal_func_type')}"
    scheduler.__dict__.pop("_is_initial", None)
    scheduler.verbose = False
    scheduler.anneal_func = types.MethodType(_method_named(name), scheduler) if bound \
        else getattr(type(scheduler), name)
    return {k: v for k, v in scheduler.__dict__.items() if k != "optimizer"}


def old_multistep_state(scheduler: Any) -> dict:
    """A MultiStepLR state of old torch: ``milestones`` a Counter, ``verbose``, no ``_is_initial``."""
    state = {k: v for k, v in scheduler.state_dict().items() if k != "_is_initial"}
    assert isinstance(state["milestones"], Counter)
    return {**state, "verbose": False}


def pickle_of(path: Path) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read(next(n for n in archive.namelist() if n.endswith("/data.pkl")))


def opcodes_and_globals(path: Path):
    ops, names = set(), set()
    for op, arg, _ in pickletools.genops(pickle_of(path)):
        ops.add(op.name)
        if op.name == "GLOBAL":
            names.add(arg.replace("__builtin__ ", "builtins ").replace(" ", "."))
    return ops, names


def tiny_onecycle(strategy: str = "cos", total: int = 10):
    params = [torch.nn.Parameter(torch.randn(3, generator=torch.Generator().manual_seed(1))),
              torch.nn.Parameter(torch.randn(2, 2, generator=torch.Generator().manual_seed(2)))]
    optimizer = torch.optim.Adam(params, lr=0.001)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.001, total_steps=total,
                                                    anneal_strategy=strategy, three_phase=True)
    return params, optimizer, scheduler


def step(optimizer, scheduler, times: int, grads: bool = False) -> None:
    for k in range(times):
        if grads:
            for i, p in enumerate(optimizer.param_groups[0]["params"]):
                p.grad = torch.full_like(p, float(i + 1)) * (k + 1)
        optimizer.step()
        scheduler.step()


def write_old_tiny(path: Path, strategy: str = "cos", bound: bool = True, done: int = 4) -> dict:
    params, optimizer, scheduler = tiny_onecycle(strategy)
    step(optimizer, scheduler, done, grads=True)
    payload = {"model": {"w": params[0].detach().clone()}, "optimizer": optimizer.state_dict(),
               "scheduler": old_onecycle_state(scheduler, bound), "iteration": done}
    torch.save(payload, path)
    return payload


def test_the_files_here_hold_what_old_torch_wrote(tmp_path):
    path = tmp_path / "old.pt"
    write_old_tiny(path)
    ops, names = opcodes_and_globals(path)
    extra = names - set(torch._weights_only_unpickler._get_allowed_globals())
    assert extra == {"builtins.getattr", "torch.optim.lr_scheduler.OneCycleLR", "torch.optim.adam.Adam",
                     "collections.defaultdict", "builtins.dict"}
    assert {"NEWOBJ", "BUILD", "POP"} <= ops  # the objects, and the method's self-reference
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    # the class-function form (getattr on the class) has only the class
    write_old_tiny(tmp_path / "cls.pt", bound=False)
    assert opcodes_and_globals(tmp_path / "cls.pt")[1] - set(torch._weights_only_unpickler._get_allowed_globals()) \
        == {"builtins.getattr", "torch.optim.lr_scheduler.OneCycleLR"}


# ------------------------------------------------------------------ loading and restoring

@pytest.mark.parametrize("strategy", ["cos", "linear"])
@pytest.mark.parametrize("bound", [True, False], ids=["method", "class-function"])
def test_an_old_onecyclelr_file_restores_the_schedule_a_fresh_scheduler_gives(strategy, bound, tmp_path, caplog):
    path = tmp_path / "old.pt"
    written = write_old_tiny(path, strategy, bound, done=4)
    with caplog.at_level(logging.INFO, logger="fastposegait"):
        ckpt = load_checkpoint(path)
    assert len(older_torch_lines(caplog)) == 1 and str(path) in older_torch_lines(caplog)[0]
    assert ckpt["scheduler"]["anneal_func"] == f"_annealing_{strategy}"
    assert torch.equal(ckpt["model"]["w"], written["model"]["w"]) and ckpt["iteration"] == 4
    # no stand-in object is left anywhere, and the optimizer entry is the ordinary state dict
    assert set(ckpt["optimizer"]) == {"state", "param_groups"}
    for key, saved in written["optimizer"]["state"].items():
        assert torch.equal(ckpt["optimizer"]["state"][key]["exp_avg"], saved["exp_avg"])

    _, reference_opt, reference = tiny_onecycle(strategy)
    step(reference_opt, reference, 4)
    _, opt, resumed = tiny_onecycle("linear" if strategy == "cos" else "cos")  # the other strategy
    restore_scheduler(resumed, ckpt["scheduler"], path, steps_ahead=6)
    assert resumed.last_epoch == 4 and resumed.get_last_lr() == pytest.approx(reference.get_last_lr())
    for _ in range(6):
        step(reference_opt, reference, 1)
        step(opt, resumed, 1)
        assert resumed.get_last_lr() == pytest.approx(reference.get_last_lr(), rel=1e-12)
        assert opt.param_groups[0]["betas"] == pytest.approx(reference_opt.param_groups[0]["betas"])


def gaittr_config(folder: Path, *extra) -> Any:
    """The GaitTR demo, narrowed to seconds: 8 iterations."""
    over = synthetic_data_overrides(folder) + schedule_overrides(8, 4) + TINY["GaitTR"]["overrides"] + list(extra)
    return load_config(REPO / "configs" / "demo" / "gaittr_demo.yaml", over)


def gaittr_runner(folder: Path, monkeypatch, *extra, phase: str = "train") -> Runner:
    monkeypatch.chdir(folder)
    return Runner(gaittr_config(folder, *extra), phase, DistEnv(), torch.device("cpu"))


def write_upstream_checkpoint(runner: Runner, folder: Path, done: int, old_state) -> tuple:
    """An upstream model-zoo file of old torch for the runner's config: a model of the same
    architecture with other weights, the configured solver and schedule after ``done`` steps."""
    config = gaittr_config(folder)
    torch.manual_seed(123)
    model = build_model(config["model_cfg"])
    optimizer = build_optimizer(runner.config.optimizer, model.parameters())
    scheduler = build_scheduler(runner.config.scheduler, optimizer)
    step(optimizer, scheduler, done, grads=True)
    expected = {n: optimizer.state[p]["exp_avg"].clone() for n, p in model.named_parameters()}
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    path = runner.checkpoint_dir / f"{runner.save_name}-{done:05d}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": old_state(scheduler), "iteration": done}, path)
    return path, weights, expected


def fresh_schedule(runner: Runner, steps: int):
    optimizer = build_optimizer(runner.config.optimizer, [torch.nn.Parameter(torch.zeros(1))])
    scheduler = build_scheduler(runner.config.scheduler, optimizer)
    step(optimizer, scheduler, steps)
    return optimizer, scheduler


@pytest.mark.parametrize("extra, old_state, fallback", [
    ((), old_onecycle_state, True),
    (("scheduler_cfg.anneal_strategy=linear",), old_onecycle_state, True),
    (("scheduler_cfg.scheduler=MultiStepLR", "scheduler_cfg.milestones=[2, 5]", "scheduler_cfg.gamma=0.5"),
     old_multistep_state, False),
], ids=["OneCycleLR-cos", "OneCycleLR-linear", "MultiStepLR"])
def test_an_old_torch_upstream_checkpoint_resumes_through_the_runner(extra, old_state, fallback, tmp_path,
                                                                      monkeypatch, caplog):
    runner = gaittr_runner(tmp_path, monkeypatch, *extra)
    path, weights, expected = write_upstream_checkpoint(runner, tmp_path, 3, old_state)
    if not fallback:  # MultiStepLR's Counter is in torch's weights-only list: nothing to stand in for
        assert torch.load(path, weights_only=True)["scheduler"]["milestones"] == Counter({2: 1, 5: 1})

    resumed = gaittr_runner(tmp_path, monkeypatch, *extra, "trainer_cfg.restore_hint=3")
    logging.getLogger("fastposegait").propagate = True  # the runner's logging set-up turns it off
    with caplog.at_level(logging.INFO, logger="fastposegait"):
        parts = resumed.build_training()
    assert len(older_torch_lines(caplog)) == (1 if fallback else 0)
    assert resumed.iteration == 3 and parts.scheduler.last_epoch == 3
    for name, value in resumed.model.state_dict().items():
        assert torch.equal(value, weights[name]), name
    for name, param in resumed.model.named_parameters():
        assert torch.equal(parts.optimizer.state[param]["exp_avg"], expected[name]), name

    reference_opt, reference = fresh_schedule(runner, 3)
    assert parts.optimizer.param_groups[0]["lr"] == pytest.approx(reference.get_last_lr()[0], rel=1e-12)
    for _ in range(5):  # to the end of the schedule
        step(reference_opt, reference, 1)
        step(parts.optimizer, parts.scheduler, 1)
        assert parts.optimizer.param_groups[0]["lr"] == pytest.approx(reference.get_last_lr()[0], rel=1e-12)


def test_training_on_from_an_old_torch_checkpoint_ends_where_a_fresh_schedule_ends(tmp_path, monkeypatch):
    runner = gaittr_runner(tmp_path, monkeypatch)
    write_upstream_checkpoint(runner, tmp_path, 3, old_onecycle_state)
    resumed = gaittr_runner(tmp_path, monkeypatch, "trainer_cfg.restore_hint=3")
    resumed.train()
    final = torch.load(resumed.checkpoint_dir / f"{resumed.save_name}-00008.pt", weights_only=True)
    assert final["iteration"] == 8 and final["scheduler"]["last_epoch"] == 8
    assert "anneal_func" not in final["scheduler"] and final["scheduler"]["_anneal_func_type"] == "cos"
    _, reference = fresh_schedule(runner, 8)
    assert final["optimizer"]["param_groups"][0]["lr"] == pytest.approx(reference.get_last_lr()[0], rel=1e-12)


def test_the_test_phase_loads_an_old_torch_checkpoint_by_path(tmp_path, monkeypatch, caplog):
    runner = gaittr_runner(tmp_path, monkeypatch)
    path, weights, _ = write_upstream_checkpoint(runner, tmp_path, 3, old_onecycle_state)
    tester = gaittr_runner(tmp_path, monkeypatch, f"evaluator_cfg.restore_hint={path}", phase="test")
    logging.getLogger("fastposegait").propagate = True
    with caplog.at_level(logging.INFO, logger="fastposegait"):
        results = tester.test()
    assert results and len(older_torch_lines(caplog)) == 1
    for name, value in tester.model.state_dict().items():
        assert torch.equal(value, weights[name]), name


def test_old_torch_steplr_and_multisteplr_states_load_with_weights_only_and_restore(tmp_path, caplog):
    def make(kind):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1, momentum=0.9)
        if kind == "step":
            return optimizer, torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)
        return optimizer, torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[2, 5, 5], gamma=0.5)

    for kind in ("step", "multistep"):
        opt, scheduler = make(kind)
        step(opt, scheduler, 4)
        state = {k: v for k, v in scheduler.state_dict().items() if k != "_is_initial"}
        state["verbose"] = False
        path = tmp_path / f"{kind}.pt"
        torch.save({"model": {"w": torch.ones(2)}, "optimizer": opt.state_dict(), "scheduler": state,
                    "iteration": 4}, path)
        with caplog.at_level(logging.INFO, logger="fastposegait"):
            ckpt = load_checkpoint(path)
        assert not older_torch_lines(caplog)
        fresh_opt, fresh = make(kind)
        fresh_opt.load_state_dict(ckpt["optimizer"])  # these schedules go on from the optimizer's lr
        restore_scheduler(fresh, ckpt["scheduler"], path, steps_ahead=5)
        assert fresh.get_last_lr() == pytest.approx(scheduler.get_last_lr(), rel=1e-12)
        for _ in range(5):
            step(opt, scheduler, 1)
            step(fresh_opt, fresh, 1)
            assert fresh.get_last_lr() == pytest.approx(scheduler.get_last_lr(), rel=1e-12)


# ------------------------------------------------------------------ weights_only comes first

@pytest.fixture
def load_calls(monkeypatch):
    """Each torch.load call: its weights_only and pickle_module, and whether torch's list of
    safe globals was widened for it (torch registers some of its own at import)."""
    calls: List[dict] = []
    real = torch.load
    baseline = set(map(repr, torch.serialization.get_safe_globals()))

    def recording(*args, **kwargs):
        widened = set(map(repr, torch.serialization.get_safe_globals())) != baseline
        calls.append({"weights_only": kwargs.get("weights_only"), "pickle_module": kwargs.get("pickle_module"),
                      "widened": widened})
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording)
    return calls


def test_weights_only_is_the_first_attempt_and_the_only_one_for_ordinary_files(tmp_path, load_calls):
    first = {"weights_only": True, "pickle_module": None, "widened": False}
    path = tmp_path / "plain.pt"
    torch.save({"model": {"w": torch.ones(2)}, "iteration": 1}, path)
    load_checkpoint(path)
    assert load_calls == [first]
    load_calls.clear()
    write_old_tiny(tmp_path / "old.pt")
    load_checkpoint(tmp_path / "old.pt")
    assert load_calls == [first, {"weights_only": False, "pickle_module": old_torch_pickle, "widened": False}]


# ------------------------------------------------------------------ hostile files are refused

def G(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def S(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def call(func: bytes, *args: bytes) -> bytes:
    return func + b"(" + b"".join(args) + b"tR"


GETATTR = G("builtins", "getattr")
ONECYCLE = G("torch.optim.lr_scheduler", "OneCycleLR")


def new(cls: bytes) -> bytes:
    return cls + b")\x81"


def payloads(cmd: str) -> dict:
    """Opcode sequences that each leave one object; those marked True run ``cmd`` under plain
    pickle (checked below: they are real attacks)."""
    def attr(obj: bytes, name: str) -> bytes:
        return call(GETATTR, obj, S(name))

    sys_module = call(attr(attr(G("torch._utils", "_rebuild_tensor_v2"), "__globals__"), "get"), S("sys"))
    os_module = call(attr(attr(sys_module, "modules"), "get"), S("os"))
    return {
        "os.system via REDUCE": (call(G("os", "system"), S(cmd)), True),
        "posix.system via REDUCE": (call(G("posix", "system"), S(cmd)), True),
        "getattr(os, 'system') via __import__": (call(attr(call(G("builtins", "__import__"), S("os")), "system"),
                                                      S(cmd)), True),
        "getattr chain through torch's own globals": (call(attr(os_module, "system"), S(cmd)), True),
        "getattr on an old scheduler for another name": (call(attr(new(ONECYCLE), "__init__"), S(cmd)), False),
        "getattr on the scheduler class for another name": (attr(ONECYCLE, "__subclasses__"), False),
        "the annealing method's name called": (call(attr(new(ONECYCLE), "_annealing_cos"), S(cmd)), False),
        "OneCycleLR called with arguments": (call(ONECYCLE, S(cmd)), False),
        "Adam created with arguments": (G("torch.optim.adam", "Adam") + b"(" + S(cmd) + b"t\x81", False),
        "defaultdict of os.system": (call(G("collections", "defaultdict"), G("os", "system")), False),
        "defaultdict of another stand-in": (call(G("collections", "defaultdict"), ONECYCLE), False),
        "builtins.dict called": (call(G("__builtin__", "dict"), S(cmd)), False),
        "a stand-in kept in the result": (new(ONECYCLE) + b"}b", False),
        "the state of the getattr stand-in set": (GETATTR + b"}" + S("__defaults__") + b"N" + b"sb", False),
        "a scheduler's state set twice": (new(ONECYCLE) + b"}b}b", False),
        "a stand-in hidden in an OrderedDict's attributes": (
            call(G("collections", "OrderedDict")) + b"}" + S("_metadata") + new(ONECYCLE) + b"sb", False),
        "a stand-in hidden in a parameter's hooks": (
            call(G("torch._utils", "_rebuild_parameter"), call(G("torch", "Tensor")), b"\x88",
                 call(G("collections", "OrderedDict")) + b"(" + b"K\x00" + GETATTR + b"u"), False),
    }


class _Raw:
    def __init__(self, data: bytes) -> None:
        self.data = data


class _RawPickler(pickle._Pickler):
    """Writes a :class:`_Raw` as its opcodes; everything else as pickle does."""

    def save(self, obj, save_persistent_id=True):
        if type(obj) is _Raw:
            self.write(obj.data)
            return
        super().save(obj, save_persistent_id)


_raw_pickle = types.SimpleNamespace(__name__="raw_pickle", Pickler=_RawPickler)


def hostile_file(path: Path, payload: bytes) -> Path:
    torch.save({"model": {"w": torch.ones(2)}, "scheduler": _Raw(payload), "iteration": 1}, path,
               pickle_module=_raw_pickle)
    return path


def test_the_payloads_are_real_attacks_under_plain_pickle(tmp_path):
    for name, (payload, runs) in payloads("").items():
        if not runs:
            continue
        marker = tmp_path / f"ran-{abs(hash(name))}"
        payload = payloads(f"touch {marker}")[name][0]
        pickle.loads(b"\x80\x02" + payload + b".")
        assert marker.exists(), name


@pytest.mark.parametrize("name", list(payloads("")))
def test_a_hostile_file_is_refused_and_nothing_runs(name, tmp_path, monkeypatch, caplog):
    marker = tmp_path / "ran"
    path = hostile_file(tmp_path / "hostile.pt", payloads(f"touch {marker}")[name][0])
    called: List[str] = []
    for module in ("os", "posix"):
        real = getattr(__import__(module), "system")
        monkeypatch.setattr(f"{module}.system", lambda *a, _real=real, _m=module: called.append(_m) or _real(*a))
    with caplog.at_level(logging.INFO, logger="fastposegait"), pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = user_message(info.value)
    assert "\n" not in message and message.startswith(f"{path}: refused: the file ")
    assert "it may be hostile" in message
    assert not marker.exists() and not called
    assert not older_torch_lines(caplog)


def test_the_refusal_says_what_the_file_asked_for(tmp_path):
    cases = {
        "os.system via REDUCE": "asks for os.system",
        "getattr chain through torch's own globals": "calls builtins.getattr on _rebuild_tensor_v2",
        "OneCycleLR called with arguments": "calls torch.optim.lr_scheduler.OneCycleLR",
        "getattr on an old scheduler for another name": "calls builtins.getattr for '__init__'",
        "a stand-in kept in the result": "keeps a torch.optim.lr_scheduler.OneCycleLR object",
        "getattr(os, 'system') via __import__": "asks for builtins.__import__",
        "builtins.dict called": "calls builtins.dict",
        "the annealing method's name called": "calls a str",
    }
    for name, expected in cases.items():
        path = hostile_file(tmp_path / "h.pt", payloads("true")[name][0])
        with pytest.raises(CheckpointError, match=re.escape(f"{path}: refused: the file {expected}")):
            load_checkpoint(path)


def test_only_the_known_names_open_the_stand_in_reader(tmp_path, monkeypatch):
    read: List[Path] = []
    real = old_torch_pickle.read_old_torch_checkpoint
    monkeypatch.setattr("fastposegait.engine.checkpoint.read_old_torch_checkpoint",
                        lambda p: read.append(p) or real(p))
    for name in ("os.system via REDUCE", "getattr(os, 'system') via __import__", "defaultdict of os.system"):
        with pytest.raises(CheckpointError, match="refused"):
            load_checkpoint(hostile_file(tmp_path / "h.pt", payloads("true")[name][0]))
    assert read == []
    write_old_tiny(tmp_path / "old.pt")
    load_checkpoint(tmp_path / "old.pt")
    assert read == [tmp_path / "old.pt"]


# ------------------------------------------------------------------ the reader itself

def test_the_stand_in_reader_reads_an_ordinary_checkpoint_as_weights_only_does(tmp_path):
    model = build_model({"model": "GaitTR", "in_channels": [10, 32, 32], "num_class": 16, "joint_format": "coco"})
    _, optimizer, scheduler = tiny_onecycle()
    step(optimizer, scheduler, 2, grads=True)
    payload = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
               "rng": [capture_rng_state()], "misc": {"counter": Counter({2: 1, 5: 2}), "set": {1, 2},
                                                       "bytes": b"\x00\xffab", "big": 2 ** 70, "neg": -(2 ** 40),
                                                       "small": -3, "tuple": (1, (2.5, None), True, False, "é"),
                                                       "ordered": OrderedDict(a=1)}}
    path = tmp_path / "plain.pt"
    torch.save(payload, path)
    reference = torch.load(path, weights_only=True)
    with open(path, "rb") as f:
        ours = torch.load(f, weights_only=False, pickle_module=old_torch_pickle)
    assert_same(ours, reference)
    assert getattr(ours["model"], "_metadata", None) == reference["model"]._metadata


def assert_same(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    else:
        assert a == b
