"""Putting a checkpoint's optimizer, scheduler and loss states back, checked first.

torch's ``load_state_dict`` of an optimizer or scheduler accepts almost anything and fails
later, deep inside a step: Adam's moments of a model with other widths ("size of tensor a
must match"), an AdamW state in an SGD run (``KeyError: 'momentum'``), a CyclicLR state in a
OneCycleLR run (``KeyError: 'max_lr'``), or a finished schedule that raises at the next step.
Each is found here, before training starts, and reported as one
:class:`~fastposegait.errors.CheckpointError` that names the file and the reset option.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from ..errors import CheckpointError


def restore_optimizer(optimizer: torch.optim.Optimizer, state: Any, path: Path) -> None:
    """Load an optimizer state that fits this optimizer and its parameters."""
    fix = "set trainer_cfg.optimizer_reset: true to start with a fresh optimizer state"
    own = optimizer.state_dict()
    if not isinstance(state, Mapping) or not isinstance(state.get("param_groups"), list) \
            or not isinstance(state.get("state"), Mapping):
        raise CheckpointError(f"{path}: its optimizer entry is not an optimizer state; {fix}")
    groups = state["param_groups"]
    if len(groups) != len(own["param_groups"]) or any(
            not isinstance(g, Mapping) or len(g.get("params", ())) != len(o["params"])
            for g, o in zip(groups, own["param_groups"])):
        raise CheckpointError(f"{path}: its optimizer state is for other parameters (another model or loss); {fix}")
    # the solver's hyperparameters (numbers and tuples: lr, momentum, betas, eps, ...); flags
    # that newer torch versions add are filled in by torch itself when a state lacks them
    hyper = {k for k, v in optimizer.defaults.items()
             if isinstance(v, (int, float, tuple)) and not isinstance(v, bool)}
    needed = hyper - set(groups[0])
    if needed:
        raise CheckpointError(f"{path}: its optimizer state lacks {', '.join(sorted(needed))}, which "
                              f"{type(optimizer).__name__} needs: it was written by another solver; {fix}")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    ids = [i for g in groups for i in g["params"]]
    for position, key in enumerate(ids):
        for name, value in (state["state"].get(key) or {}).items():
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != params[position].shape:
                raise CheckpointError(
                    f"{path}: its optimizer state '{name}' of parameter {position} has shape {list(value.shape)} "
                    f"but the parameter has {list(params[position].shape)}: the model has other widths; {fix}")
    try:
        optimizer.load_state_dict(state)
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: its optimizer state does not load ({type(exc).__name__}: {exc}); {fix}") from None


#: scheduler bookkeeping fields that come and go with the torch version (not with the kind of
#: schedule): a state written by another torch version, e.g. upstream's checkpoints, may lack
#: some or hold others; OneCycleLR's annealing function became a name (``_anneal_func_type``)
_VERSION_FIELDS = frozenset({"_is_initial", "_get_lr_called_within_step", "verbose", "anneal_func",
                             "_anneal_func_type"})


def _for_this_torch(state: Mapping[str, Any], own: Mapping[str, Any]) -> dict:
    """``state`` with the torch-version fields of this torch's ``own`` state."""
    converted = {k: v for k, v in state.items() if k not in _VERSION_FIELDS or k in own}
    for key in _VERSION_FIELDS & set(own) - set(state):
        converted[key] = own[key]
    if "_anneal_func_type" in own and "_anneal_func_type" not in state and "anneal_func" in state:
        name = getattr(state["anneal_func"], "__name__", state["anneal_func"])
        if name in ("_annealing_cos", "_annealing_linear"):
            converted["_anneal_func_type"] = "cos" if name == "_annealing_cos" else "linear"
    return converted


def restore_scheduler(scheduler: Any, state: Any, path: Path, steps_ahead: int) -> None:
    """Load a scheduler state of this scheduler's class that still covers ``steps_ahead`` steps
    (written by this or another torch version)."""
    fix = "set trainer_cfg.scheduler_reset: true to start the configured schedule"
    own = scheduler.state_dict()
    if not isinstance(state, Mapping) or set(state) - _VERSION_FIELDS != set(own) - _VERSION_FIELDS:
        raise CheckpointError(f"{path}: its scheduler state was written by another scheduler than "
                              f"{type(scheduler).__name__} (other fields); {fix}")
    try:
        scheduler.load_state_dict(_for_this_torch(state, own))
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: its scheduler state does not load ({type(exc).__name__}: {exc}); {fix}") from None
    total = getattr(scheduler, "total_steps", None)
    done = getattr(scheduler, "last_epoch", 0)
    if isinstance(total, int) and done + steps_ahead > total:
        raise CheckpointError(
            f"{path}: its {type(scheduler).__name__} state has {total - done} of its {total} steps left, but this "
            f"run trains {steps_ahead} more iterations (it would fail at step {total + 1}); {fix}")


def restore_losses(losses: nn.Module, state: Any, path: Path) -> None:
    """Load the learnable parameters of the losses (a class matrix), if they fit."""
    try:
        losses.load_state_dict(state)
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        first = " ".join(str(exc).split())[:200]
        raise CheckpointError(f"{path}: its loss parameters do not fit this loss_cfg ({first}); use the "
                              "loss_cfg the checkpoint was trained with") from None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(a - b) <= 1e-9 * max(abs(a), abs(b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def snapshot_settings(optimizer: torch.optim.Optimizer, scheduler: Any) -> tuple:
    """The configured optimizer hyperparameters (first parameter group) and scheduler state,
    taken before a checkpoint's states replace them (for :func:`changed_settings`)."""
    group = {k: v for k, v in optimizer.param_groups[0].items() if k != "params"}
    return group, dict(scheduler.state_dict())


def changed_settings(before: tuple, optimizer: torch.optim.Optimizer, scheduler: Any,
                     optimizer_cfg: Mapping[str, Any], scheduler_cfg: Mapping[str, Any]) -> list:
    """The config keys whose value in the restored optimizer/scheduler state differs from the
    one the config gave: ``(section.key, configured, restored, reset option)``. Values the
    schedule moves at every step are compared where they stay put: ``lr`` as the group's
    ``initial_lr`` (not at all under OneCycleLR, whose ``max_lr`` replaces it); ``betas``/``momentum``
    not at all when the schedule cycles momentum."""
    group, sched = before
    now_group = optimizer.param_groups[0]
    now_sched = scheduler.state_dict()
    cycling = bool(sched.get("cycle_momentum"))
    found = []
    for section, cfg in (("optimizer_cfg", optimizer_cfg), ("scheduler_cfg", scheduler_cfg)):
        for key in cfg:
            if key in ("solver", "scheduler") or (cycling and key in ("betas", "momentum")) \
                    or (key == "lr" and section == "optimizer_cfg" and "max_lr" in group):
                continue  # moved at every step, or (lr under OneCycleLR) replaced by the schedule
            name = "initial_lr" if key == "lr" and "initial_lr" in group else key
            if name in sched and name in now_sched and name not in ("last_epoch", "_step_count", "_last_lr"):
                old, new, reset = sched[name], now_sched[name], "scheduler_reset"
            elif name in group and name in now_group and name != "lr":
                old, new = group[name], now_group[name]
                reset = "optimizer_reset" if section == "optimizer_cfg" else "scheduler_reset and optimizer_reset"
            else:
                continue
            if not _same(old, new):
                found.append((f"{section}.{key}", old, new, reset))
    return found
