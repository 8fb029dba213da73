"""The optimizer and scheduler sections: a class of ``torch.optim`` (or its ``lr_scheduler``
module) and its keyword arguments, checked at load so that a run never dies later on them.

Checked here: the class exists (and steps without a metric), numeric keywords hold finite
numbers (``lr: 5e-3`` is text to YAML), learning rates and weight decay are not negative, a
fixed-length schedule covers ``trainer_cfg.total_iter``; then the optimizer and the scheduler
are built on one dummy parameter and stepped once, so every value torch itself refuses (betas
out of range, a scheduler missing a required argument, an optimizer that needs a closure or
sparse gradients) is one error naming the section, before any data is read.
"""
from __future__ import annotations

import inspect
import math
import warnings
from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, Mapping, Optional, Tuple

from ..kwargs import expected_type, match_kwargs, value_problem
from .checker import Checker, is_int, is_number


@dataclass(frozen=True)
class SolverSection:
    """``optimizer_cfg`` / ``scheduler_cfg``: a class of ``torch.optim`` (or of its
    ``lr_scheduler`` module) and its keyword arguments."""

    name: str
    kwargs: Dict[str, Any]

    def resolve(self, module: Any) -> type:
        return getattr(module, self.name)


def optimizer_classes() -> Tuple[Any, type]:
    import torch

    return torch.optim, torch.optim.Optimizer


def scheduler_classes() -> Tuple[Any, type]:
    import torch

    return torch.optim.lr_scheduler, torch.optim.lr_scheduler.LRScheduler


def read_solver(value: Any, key: str, name_key: str, checker: Checker, classes: Tuple[Any, type]) -> SolverSection:
    """``optimizer_cfg`` (``name_key`` ``solver``) or ``scheduler_cfg`` (``scheduler``)."""
    values = checker.mapping(value, key)
    name = values.get(name_key)
    if name is None:
        checker.fail(f"{key}.{name_key}", "is missing; add it to the config")
    if not isinstance(name, str):
        checker.fail(f"{key}.{name_key}", f"must be str, got {name!r} ({type(name).__name__})")
    module, base = classes
    if name in METRIC_SCHEDULERS:
        checker.fail(f"{key}.{name_key}",
                     f"{name} needs a validation metric at each step, and the runner steps the scheduler once "
                     "per iteration without one (it would fail at the first step); pick a schedule of the "
                     "iteration count: OneCycleLR, MultiStepLR, StepLR, CosineAnnealingLR, ...")
    checker.class_in(module, base, name, f"{key}.{name_key}")
    section = SolverSection(name, {k: v for k, v in values.items() if k != name_key})
    _check_solver_values(section, section.resolve(module), key, checker)
    return section


#: schedulers whose ``step`` takes a metric (the runner's per-iteration step passes none)
METRIC_SCHEDULERS = ("ReduceLROnPlateau",)
#: solver keys that must not be negative
NON_NEGATIVE_SOLVER_KEYS = ("lr", "max_lr", "base_lr", "weight_decay")


def _solver_shapes(param: inspect.Parameter, cls: type) -> Optional[Tuple[str, ...]]:
    """The value shapes a solver keyword takes, loosened to "a number" for int and float
    alike (torch computes with either); None when not checked."""
    shapes = expected_type(param.annotation, cls)
    default = param.default
    if shapes is None and isinstance(default, (int, float)) and not isinstance(default, bool):
        shapes = ("float",)
    if shapes is None or not any(s in ("int", "float", "list[int]", "list[float]") for s in shapes):
        return None
    loose = {"int": "float", "list[int]": "list[float]"}
    return tuple(dict.fromkeys(loose.get(s, s) for s in shapes))


def _check_solver_values(section: SolverSection, cls: type, key: str, checker: Checker) -> None:
    """The optimizer/scheduler keywords the class takes with a numeric default or annotation
    hold numbers (``lr: 5e-3`` is a string to YAML, and torch would fail on it only when the
    run builds the optimizer); learning rates and weight decay are not negative."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return
    for name, value in section.kwargs.items():
        param = params.get(name)
        if param is None:
            continue  # not taken by the class: dropped with a warning when it is built
        problem = value_problem(value, _solver_shapes(param, cls))
        if problem:
            checker.fail(f"{key}.{name}", f"{problem} ({section.name} takes {name} as a number)")
        numbers = value if isinstance(value, (list, tuple)) else [value]
        if any(is_number(v) and not math.isfinite(v) for v in numbers):
            checker.fail(f"{key}.{name}", f"must be a finite number, got {value!r}")
        if name in NON_NEGATIVE_SOLVER_KEYS and any(is_number(v) and v < 0 for v in numbers):
            checker.fail(f"{key}.{name}", f"must not be negative, got {value!r}")


def check_schedule_length(scheduler: SolverSection, total_iter: int, checker: Checker) -> None:
    """A scheduler with a fixed length (OneCycleLR's ``total_steps``, or ``epochs *
    steps_per_epoch``) covers ``trainer_cfg.total_iter`` steps: OneCycleLR raises at the step
    after its last, so a shorter schedule would stop training there with nothing saved."""
    cls = scheduler.resolve(scheduler_classes()[0])
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return
    if "total_steps" not in params:
        return
    kwargs = scheduler.kwargs
    total = kwargs.get("total_steps")
    name = "scheduler_cfg.total_steps"
    if total is None and is_int(kwargs.get("epochs")) and is_int(kwargs.get("steps_per_epoch")):
        total = kwargs["epochs"] * kwargs["steps_per_epoch"]
        name = "scheduler_cfg.epochs"
    if is_number(total) and total < total_iter:
        origin = " (set on the command line)" if "trainer_cfg.total_iter" in checker.overridden else ""
        checker.fail(name, f"{scheduler.name} lasts {total:g} steps but trainer_cfg.total_iter{origin} is "
                           f"{total_iter}: the scheduler would raise at step {int(total) + 1} and stop training "
                           f"there; set scheduler_cfg.total_steps >= {total_iter} (usually equal)")


def inherited_unused_keys(solver: SolverSection, classes: Tuple[Any, type], defaults: Mapping[str, Any],
                          user: Mapping[str, Any]) -> FrozenSet[str]:
    """Keys of ``solver.kwargs`` that came from ``default.yaml`` (the user did not set them)
    and that the chosen class does not take, e.g. SGD's ``momentum`` under ``solver: Adam``."""
    module, _ = classes
    try:
        params = inspect.signature(solver.resolve(module)).parameters
    except (TypeError, ValueError):
        return frozenset()
    return frozenset(k for k in solver.kwargs if k in defaults and k not in user and k not in params)


def dry_run_solvers(optimizer: SolverSection, scheduler: SolverSection, checker: Checker) -> None:
    """Build the optimizer on one dummy parameter and the scheduler on it, and step both once,
    with the keyword arguments the runner will pass; whatever torch refuses is one error."""
    import torch

    opt_cls = optimizer.resolve(optimizer_classes()[0])
    sched_cls = scheduler.resolve(scheduler_classes()[0])
    param = torch.nn.Parameter(torch.zeros(2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            built = opt_cls([param], **match_kwargs(opt_cls, optimizer.kwargs).accepted)
            param.grad = torch.zeros_like(param)
            built.step()
        except Exception as exc:  # noqa: BLE001 - torch's refusal, reported with the section's name
            checker.fail("optimizer_cfg", f"torch.optim.{optimizer.name} refuses these settings: {_first_line(exc)}")
        try:
            schedule = sched_cls(built, **match_kwargs(sched_cls, scheduler.kwargs, skip_first=True).accepted)
            schedule.step()
        except Exception as exc:  # noqa: BLE001
            checker.fail("scheduler_cfg", f"torch.optim.lr_scheduler.{scheduler.name} refuses these settings "
                                          f"(with optimizer {optimizer.name}): {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:300]}"
