"""Sums the configured losses over the model's ``training_feat``.

Each ``loss_cfg`` entry's ``log_prefix`` names the ``training_feat`` key it consumes. Before
a loss sees its inputs they are gathered from every rank (this rank's slice keeps its
gradient) and the loss is multiplied by the world size, so that DDP's gradient averaging
yields the gradient of the loss on the whole global batch — as in single-process training.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Mapping, Tuple, Union

import torch
from torch import nn

from ...errors import ConfigError
from ...kwargs import filter_kwargs
from ...distributed import all_gather_tensor, all_gather_with_grad, get_world_size
from ...registry import LOSSES

logger = logging.getLogger(__name__)


def _gather(value: Any) -> Any:
    if not isinstance(value, torch.Tensor):
        return value
    return all_gather_with_grad(value) if value.requires_grad else all_gather_tensor(value)


class LossAggregator(nn.Module):
    """Builds every loss of ``loss_cfg`` (a mapping or a list of mappings)."""

    def __init__(self, loss_cfg: Union[Mapping[str, Any], List[Mapping[str, Any]]]) -> None:
        super().__init__()
        entries = loss_cfg if isinstance(loss_cfg, list) else [loss_cfg]
        self.losses = nn.ModuleDict()
        for entry in entries:
            prefix = entry["log_prefix"]
            if prefix in self.losses:
                raise ConfigError(f"loss_cfg: two losses use log_prefix {prefix!r}; each prefix must be unique")
            cls = LOSSES.get(entry["type"], where="loss_cfg.type")
            kwargs = filter_kwargs(cls, entry, f"loss {entry['type']}", ignore=("type", "log_prefix"))
            self.losses[prefix] = cls(**kwargs)

    def forward(self, training_feat: Mapping[str, Any]) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """Total weighted loss and the values to log (``scalar/<prefix>/<name>``)."""
        world = get_world_size()
        total: torch.Tensor = torch.zeros(())
        info: Dict[str, torch.Tensor] = {}
        for key, value in training_feat.items():
            if key in self.losses:
                loss_fn = self.losses[key]
                loss, loss_info = loss_fn(**{k: _gather(v) for k, v in value.items()})
                loss = loss.mean() * loss_fn.loss_term_weight * world
                for name, v in loss_info.items():
                    info[f"scalar/{key}/{name}"] = v
            elif isinstance(value, torch.Tensor):
                loss = value.mean()
                info[f"scalar/{key}"] = loss.detach()
            else:
                raise ConfigError(
                    f"the model's training_feat has key {key!r} but no loss_cfg entry has "
                    f"log_prefix {key!r}; configured prefixes: {', '.join(self.losses) or 'none'}. "
                    "Add a loss with that log_prefix or rename the prefix."
                )
            total = total.to(loss.device) + loss
        return total, info
