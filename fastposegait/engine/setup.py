"""What a run builds around the model, from the typed config sections: seeds, the model's
training set-up (SyncBatchNorm, layout, frozen BatchNorm, DDP, compile), optimizer, scheduler
and mixed precision. Pure functions, so the runner stays a sequence of steps."""
from __future__ import annotations

import logging
import random
from typing import Any, Callable, Iterable, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn

from ..config import EvaluatorSection, SolverSection, TrainerSection
from ..kwargs import filter_kwargs

logger = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (model-side randomness only:
    the data pipeline draws from its own keyed generators)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_batchnorm_eval(model: nn.Module) -> None:
    """Put every BatchNorm layer in eval mode (``trainer_cfg.fix_BN``)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def prepare_for_training(model: nn.Module, trainer: TrainerSection, device: torch.device,
                         world_size: int) -> Tuple[nn.Module, nn.Module]:
    """Apply ``sync_BN``, ``channels_last`` and ``fix_BN``, then wrap for DDP and
    ``torch.compile``. Returns ``(model, net)``: the (possibly converted) model whose state
    dict is checkpointed, and the module the training step calls."""
    if trainer.sync_BN:
        if device.type == "cuda" and world_size > 1:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            logger.info("sync_BN: BatchNorm layers converted to SyncBatchNorm")
        else:
            logger.info("sync_BN: skipped (needs CUDA and more than one process; here %s, world size %d)",
                        device.type, world_size)
    if trainer.channels_last:
        # 4-D weights in NHWC order; the convolutions then keep their [N, C, T, V] maps in it
        model = model.to(memory_format=torch.channels_last)
        logger.info("channels_last: 4-D weights and the convolution maps use the channels-last layout")
    if trainer.fix_BN:
        set_batchnorm_eval(model)
    net: nn.Module = model
    if world_size > 1:
        ddp_kwargs: dict = {"find_unused_parameters": trainer.find_unused_parameters}
        if device.type == "cuda":
            ddp_kwargs.update(device_ids=[device.index], output_device=device.index)
        net = nn.parallel.DistributedDataParallel(model, **ddp_kwargs)
    if trainer.compile:
        # the compiled wrapper shares the model's parameters; checkpoints keep plain names
        net = torch.compile(net)
        logger.info("compile: the training forward runs through torch.compile")
    return model, net


def build_optimizer(section: SolverSection, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    """The ``torch.optim`` class named by ``optimizer_cfg.solver`` over ``params``."""
    cls = section.resolve(torch.optim)
    kwargs = filter_kwargs(cls, section.kwargs, f"optimizer {section.name}")
    logger.info("optimizer: %s %s", section.name, kwargs)
    return cls(params, **kwargs)


def build_scheduler(section: SolverSection, optimizer: torch.optim.Optimizer) -> Any:
    """The ``torch.optim.lr_scheduler`` class named by ``scheduler_cfg.scheduler``."""
    cls = section.resolve(torch.optim.lr_scheduler)
    kwargs = filter_kwargs(cls, section.kwargs, f"scheduler {section.name}")
    logger.info("scheduler: %s %s", section.name, kwargs)
    return cls(optimizer, **kwargs)


def autocast_dtype(section: Union[TrainerSection, EvaluatorSection], key: str,
                   device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype requested by ``<key>.enable_float16`` / ``enable_bfloat16`` where it
    can run on ``device``, else None (with one log line saying why)."""
    if section.enable_float16:
        if device.type == "cuda":
            return torch.float16
        logger.info("%s.enable_float16: float16 autocast needs CUDA; running in float32 on %s "
                    "(enable_bfloat16 works on CPU)", key, device)
    if section.enable_bfloat16:
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            logger.info("%s.enable_bfloat16: this GPU has no bfloat16 support; running in float32", key)
            return None
        return torch.bfloat16
    return None


def autocast_factory(device: torch.device, dtype: Optional[torch.dtype]) -> Optional[Callable[[], Any]]:
    """A context-manager factory for autocast to ``dtype`` on ``device`` (None: no autocast)."""
    if dtype is None:
        return None
    return lambda: torch.autocast(device.type, dtype=dtype)
