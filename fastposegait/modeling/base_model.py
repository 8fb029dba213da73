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

import inspect
import typing
from typing import Any, Callable, Dict, Mapping, Optional

from torch import nn

from ..errors import ConfigError
from ..kwargs import expected_type, match_kwargs, value_problem


class BaseModel(nn.Module):
    """Base class of every model selected by ``model_cfg.model``."""

    #: whether ``forward`` honours ``seqL`` for packed (``all``/``unfixed``) batches; the runner
    #: feeds models that do not one sequence at a time during inference
    #: (docs/upstream_differences.md, "Any test batch size").
    accepts_packed_sequences: bool = False

    #: the ``model_cfg`` key that holds the number of input channels per joint when the
    #: transforms pass the pose channels through unchanged (for GaitGraph1 that would be
    #: ``input_branch``, whose first entry is 3: x, y, confidence); None: not declared. See
    #: :meth:`input_channels` and :func:`fastposegait.data.layout.check_pose_layout`.
    input_channels_key: Optional[str] = None

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

        An unknown key, a missing required argument or a value that does not fit the type
        hint of ``fn``'s parameter (int, float, bool, str, a sequence of ints or floats,
        Optional of these; other hints are not checked) is a :class:`ConfigError` naming the
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
        hints = _type_hints(fn)
        for key, value in match.accepted.items():
            problem = value_problem(value, expected_type(hints.get(key), fn))
            if problem:
                raise ConfigError(f"model_cfg.{key}: {problem} (an argument of model {name})")
        return match.accepted

    @classmethod
    def input_channels(cls, model_cfg: Mapping[str, Any]) -> Optional[int]:
        """The channels per joint the model takes when the transforms hand it the pose's own
        channels (x, y[, confidence]): the value of ``model_cfg[input_channels_key]`` (its
        first entry for a list), else that parameter's default in ``_build``; None when the
        model declares no such key. The dataset layout check compares it with the data."""
        key = cls.input_channels_key
        if key is None:
            return None
        value = model_cfg.get(key)
        if value is None:
            build = getattr(cls, "_build", None)
            try:
                param = inspect.signature(build).parameters.get(key) if build is not None else None
            except (TypeError, ValueError):
                param = None
            value = None if param is None or param.default is inspect.Parameter.empty else param.default
        if isinstance(value, (list, tuple)) and value:
            value = value[0]
        return value if isinstance(value, int) and not isinstance(value, bool) else None


def _type_hints(fn: Callable[..., Any]) -> Dict[str, Any]:
    """``fn``'s parameter annotations, evaluated where possible (text annotations that name
    something unavailable stay text and are resolved, or skipped, one by one)."""
    try:
        return typing.get_type_hints(fn)
    except Exception:  # a hint naming something not importable at run time
        return dict(getattr(fn, "__annotations__", {}))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
