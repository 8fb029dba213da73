"""Name -> object registries for everything a config can select.

One small :class:`Registry` per kind (models, losses, transforms, samplers, evaluators).
Objects opt in explicitly with ``@REGISTRY.register()``; upstream names are added as
aliases. Looking up a name that is not registered raises :class:`UnknownNameError`, which
lists the valid names and the closest match so a typo in a YAML file is fixed in one step.
"""
from __future__ import annotations

import difflib
from typing import Any, Callable, Dict, Iterable, List, Optional, TypeVar

T = TypeVar("T")


def closest_name(name: Any, valid: Iterable[str]) -> Optional[str]:
    """The valid name a typo most likely meant: a case-insensitive match first, then the most
    similar spelling (or None when nothing is close)."""
    valid = list(valid)
    lowered = {v.lower(): v for v in valid}
    key = str(name).lower()
    if key in lowered:
        return lowered[key]
    close = difflib.get_close_matches(key, list(lowered), n=1, cutoff=0.5)
    return lowered[close[0]] if close else None


class UnknownNameError(KeyError):
    """A config names something that is not registered."""

    def __str__(self) -> str:  # KeyError would repr() the message and add quotes
        return str(self.args[0])


class Registry:
    """A mapping from names (and aliases) to classes or functions of one kind.

    Args:
        kind: what the registry holds, used in error messages (e.g. ``"model"``).
        call_doc: how a registered object is called, shown in ``repr``.
    """

    def __init__(self, kind: str, call_doc: str = "") -> None:
        self.kind = kind
        self.call_doc = call_doc
        self._objects: Dict[str, Any] = {}
        self._aliases: Dict[str, str] = {}

    def register(self, name: Optional[str] = None, aliases: Iterable[str] = ()) -> Callable[[T], T]:
        """Decorator registering an object under ``name`` (default: its ``__name__``)."""

        def deco(obj: T) -> T:
            self.add(obj, name or obj.__name__, aliases)  # type: ignore[attr-defined]
            return obj

        return deco

    def add(self, obj: Any, name: str, aliases: Iterable[str] = ()) -> None:
        """Register ``obj`` under ``name`` and its ``aliases``; duplicates are an error."""
        for key in (name, *aliases):
            if key in self._objects or key in self._aliases:
                raise ValueError(f"{self.kind} name {key!r} is already registered")
        self._objects[name] = obj
        for alias in aliases:
            self._aliases[alias] = name

    def names(self) -> List[str]:
        """Every name a config may use (canonical names and aliases), sorted."""
        return sorted([*self._objects, *self._aliases])

    def __contains__(self, name: object) -> bool:
        return name in self._objects or name in self._aliases

    def canonical(self, name: str) -> str:
        """The canonical name of ``name`` (itself or the name an alias points to)."""
        self.get(name)
        return self._aliases.get(name, name)

    def get(self, name: str, where: str = "") -> Any:
        """Return the object registered as ``name``.

        Args:
            name: the name from the config.
            where: where the name came from (e.g. ``"configs/x.yaml: model_cfg.model"``),
                included in the error message.
        """
        if isinstance(name, str):
            if name in self._objects:
                return self._objects[name]
            if name in self._aliases:
                return self._objects[self._aliases[name]]
        raise UnknownNameError(self.unknown_message(name, where))

    def unknown_message(self, name: Any, where: str = "") -> str:
        valid = self.names()
        close = closest_name(name, valid)
        msg = f"unknown {self.kind} {name!r}"
        if where:
            msg = f"{where}: {msg}"
        if close:
            msg += f" (did you mean {close!r}?)"
        return msg + f". Valid {self.kind} names: {', '.join(valid)}"

    def __repr__(self) -> str:
        doc = f" called as {self.call_doc}" if self.call_doc else ""
        return f"Registry({self.kind!r}{doc}: {', '.join(self.names())})"


MODELS = Registry("model", "Model(model_cfg: dict) -> BaseModel")
LOSSES = Registry("loss", "Loss(**kwargs) -> nn.Module; forward(**training_feat[prefix]) -> (loss, info)")
TRANSFORMS = Registry("transform", "Transform(**kwargs); __call__(seq [T,V,C] ndarray, rng) -> ndarray")
SAMPLERS = Registry("sampler", "Sampler(dataset, batch_size, seed, rank, world_size, **kwargs)")
EVALUATORS = Registry("evaluator", "evaluator(data: dict, dataset: str, **kwargs) -> dict of scalars")
