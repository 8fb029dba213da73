"""Process-group helpers that are harmless without a process group.

The same code runs as one plain process (``python fastposegait/main.py``), under
``python -m torch.distributed.launch`` or under ``torchrun`` (one or many machines). The
launcher is recognised from its environment variables; the backend is NCCL when the process
drives a CUDA device and gloo otherwise. ``get_rank()`` is 0 and ``get_world_size()`` is 1
when no group exists, so callers never branch on "distributed or not".
"""
from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass
from typing import Any, List, Optional

import torch
import torch.distributed as dist

from .errors import DeviceError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistEnv:
    """What the launcher told this process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    launcher: str = "none"  # none | torchrun | launch

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def detect_env(local_rank_flag: Optional[int] = None) -> DistEnv:
    """Read torchrun / torch.distributed.launch variables (RANK, WORLD_SIZE, LOCAL_RANK, ...).

    ``local_rank_flag`` is the value of ``--local_rank``/``--local-rank`` when the old
    launcher passed it on the command line; the environment wins when both exist.
    """
    env = os.environ
    if "RANK" not in env or "WORLD_SIZE" not in env:
        if local_rank_flag not in (None, -1, 0):
            raise DeviceError(
                f"--local_rank={local_rank_flag} was given but RANK/WORLD_SIZE are not set; "
                "start multi-process runs with torchrun or python -m torch.distributed.launch"
            )
        return DistEnv()
    rank = _env_int(env, "RANK", 0)
    world_size = _env_int(env, "WORLD_SIZE", 1)
    local_rank = _env_int(env, "LOCAL_RANK", local_rank_flag if local_rank_flag not in (None, -1) else rank)
    local_world = _env_int(env, "LOCAL_WORLD_SIZE", world_size)
    if rank >= world_size:
        raise DeviceError(f"RANK={rank} is not below WORLD_SIZE={world_size}; launch with torchrun, "
                          "or unset RANK and WORLD_SIZE for a single-process run")
    if world_size > 1:
        missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not env.get(name)]
        if missing:
            raise DeviceError(
                f"WORLD_SIZE={world_size} is set but {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'}"
                " not: launch multi-process runs with torchrun (which sets them all), or unset RANK, "
                "WORLD_SIZE and LOCAL_RANK for a single-process run")
    launcher = "torchrun" if "TORCHELASTIC_RUN_ID" in env else "launch"
    return DistEnv(rank, world_size, local_rank, local_world, launcher)


def _env_int(env: Any, name: str, default: Optional[int]) -> int:
    """The launcher variable ``name`` as a non-negative integer (``default`` when unset); any
    other value is one :class:`DeviceError` naming the variable."""
    raw = env.get(name)
    if raw is None:
        return int(default or 0)
    try:
        value = int(raw)
    except ValueError:
        value = -1
    minimum = 1 if name.endswith("WORLD_SIZE") else 0
    if value < minimum:
        raise DeviceError(f"environment variable {name}={raw[:40]!r} is not an integer >= {minimum}; "
                          f"launch with torchrun (which sets it), or unset {name} for a single-process run")
    return value


def select_device(env: DistEnv, requested: str = "auto") -> torch.device:
    """The device this process computes on: ``cuda:<local rank>`` when CUDA is usable.

    ``requested`` is ``auto`` (CUDA if available), ``cpu`` or ``cuda``. A device that cannot be
    used (``cuda`` without CUDA, a local rank beyond the visible GPUs) is a
    :class:`~fastposegait.errors.DeviceError` (a ``RuntimeError``), printed as one line.
    """
    if requested not in ("auto", "cpu", "cuda"):
        raise ValueError(f"--device must be auto, cpu or cuda, got {requested!r}")
    use_cuda = torch.cuda.is_available() and requested != "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda was requested but CUDA is not available on this machine; "
                          "pass --device cpu (or --device auto: CUDA when available)")
    if not use_cuda:
        return torch.device("cpu")
    count = torch.cuda.device_count()
    if env.local_rank >= count:
        raise DeviceError(
            f"local rank {env.local_rank} has no GPU: only {count} visible "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); "
            "lower --nproc_per_node or pass --device cpu"
        )
    device = torch.device("cuda", env.local_rank)
    torch.cuda.set_device(device)
    return device


def init_process_group(env: DistEnv, device: torch.device, timeout_s: int) -> None:
    """Join the process group when launched with more than one process (no-op otherwise).

    ``timeout_s`` (``trainer_cfg.collective_timeout``) bounds how long a rank waits in a
    collective for the others: a rank that froze or died ends the run after that long instead
    of hanging it (the original used 5,400 s)."""
    if not env.is_distributed or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    kwargs: dict = {"backend": backend, "timeout": datetime.timedelta(seconds=timeout_s)}
    if device.type == "cuda":
        kwargs["device_id"] = device
    try:
        dist.init_process_group(**kwargs)
    except TypeError:  # older torch without device_id
        kwargs.pop("device_id", None)
        dist.init_process_group(**kwargs)
    logger.info("process group: backend=%s world_size=%d launcher=%s collective_timeout=%ds", backend,
                env.world_size, env.launcher, timeout_s)


def destroy_process_group() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_dist() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_dist() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_dist() else 1


def is_main_process() -> bool:
    return get_rank() == 0


def barrier() -> None:
    if is_dist():
        dist.barrier()


def all_gather_tensor(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every rank along dim 0 (rank order), without gradients.

    Every rank must pass the same shape.
    """
    if not is_dist():
        return x
    parts = [torch.empty_like(x) for _ in range(get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


def all_gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Like :func:`all_gather_tensor`, but this rank's slice is ``x`` itself, so the local
    part of the result keeps its gradient (the other ranks' parts are constants)."""
    if not is_dist():
        return x
    parts = [torch.empty_like(x) for _ in range(get_world_size())]
    dist.all_gather(parts, x.detach().contiguous())
    parts[get_rank()] = x
    return torch.cat(parts, dim=0)


def all_gather_object(obj: Any) -> List[Any]:
    """Gather a picklable object from every rank (rank order)."""
    if not is_dist():
        return [obj]
    out: List[Any] = [None] * get_world_size()
    dist.all_gather_object(out, obj)
    return out
