"""BaseModel: the contract every gait model implements.

A model is a pure ``nn.Module`` built from its ``model_cfg`` alone — no data, device or
process group — so it can be built for tests, parameter counts, inference or export. The
runner owns everything else (loaders, optimizer, AMP, checkpoints, logging).

Subclasses implement two methods:

* ``build_network(model_cfg)`` — create the layers (``model_cfg`` is the YAML section,
  including its ``model`` key);
* ``forward(inputs)`` with ``inputs = (ipts, labels, types, views, seqL)``, ``ipts`` a list
  with one tensor per modality, returning::

      {'training_feat': {log_prefix: {arg: tensor, ...}},   # fed to the losses
       'visual_summary': {'image/...': tensor, ...},         # optional TensorBoard images
       'inference_feat': {'embeddings': tensor [N, C, P]}}   # used by the evaluators

After ``build_network`` the generic initialisation runs (Xavier convs, N(0, 0.001) linears,
unit BatchNorm2d), then :meth:`after_init` for model-specific tweaks; the order matters
(docs/models.md#initialisation).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Mapping

from torch import nn

from ..errors import ConfigError
from ..kwargs import match_kwargs


class BaseModel(nn.Module):
    """Base class of every model selected by ``model_cfg.model``."""

    #: whether ``forward`` honours ``seqL`` for packed (``all``/``unfixed``) batches; the runner
    #: feeds models that do not one sequence at a time during inference
    #: (docs/upstream_differences.md, "Any test batch size").
    accepts_packed_sequences: bool = False

    def __init__(self, model_cfg: Mapping[str, Any]) -> None:
        super().__init__()
        self.model_cfg = dict(model_cfg)
        self.build_network(self.model_cfg)
        self.init_parameters()
        self.after_init()

    def build_network(self, model_cfg: Dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement build_network(model_cfg)")

    def forward(self, inputs: Any) -> Dict[str, Dict[str, Any]]:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement forward(inputs)")

    def init_parameters(self) -> None:
        """Generic initialisation shared by all models (docs/models.md#initialisation)."""
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d)):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.001)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d) and m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def after_init(self) -> None:
        """Hook for initialisation that must follow the generic pass."""

    def cfg_args(self, fn: Callable[..., Any], model_cfg: Mapping[str, Any]) -> Dict[str, Any]:
        """The entries of ``model_cfg`` (minus ``model``) as keyword arguments of ``fn``.

        An unknown key or a missing required argument is a :class:`ConfigError` naming the
        key and the model.
        """
        name = type(self).__name__
        match = match_kwargs(fn, model_cfg, ignore=("model",))
        if match.unknown:
            raise ConfigError(
                f"model_cfg: unknown key(s) {', '.join(match.unknown)} for model {name}; accepted keys: "
                + ", ".join(match.valid)
            )
        if match.missing:
            raise ConfigError(f"model_cfg: model {name} needs key(s) {', '.join(match.missing)}")
        return match.accepted


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
