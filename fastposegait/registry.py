"""Name -> object registries for everything a config can select.

One small :class:`Registry` per kind (models, losses, transforms, samplers, evaluators).
Objects opt in explicitly with ``@REGISTRY.register()``; upstream names are added as
aliases. Looking up a name that is not registered raises :class:`UnknownNameError`, which
lists the valid names and the closest match so a typo in a YAML file is fixed in one step.

Each registry knows the modules that hold its built-in entries and imports them on the first
lookup, so the config layer (or a user script) can resolve any built-in name without
importing the modelling or data packages itself.
"""
from __future__ import annotations

import difflib
import importlib
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, TypeVar

from .errors import UnknownNameError

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



class Registry:
    """A mapping from names (and aliases) to classes or functions of one kind.

    Args:
        kind: what the registry holds, used in error messages (e.g. ``"model"``).
        call_doc: how a registered object is called, shown in ``repr``.
        builtin_modules: modules whose import registers the built-in entries; imported on
            the first lookup (``get``, ``names``, ``in``).
        unsupported: names the original project has but this one deliberately does not, each
            with the reason; looking one up raises :class:`UnknownNameError` giving that reason
            (unless something registered the name, e.g. a user's ``custom_imports`` module).
    """

    def __init__(self, kind: str, call_doc: str = "", builtin_modules: Sequence[str] = (),
                 unsupported: Optional[Mapping[str, str]] = None) -> None:
        self.kind = kind
        self.call_doc = call_doc
        # names of the original project deliberately left out -> why (said instead of "unknown"
        # when a config asks for one that nothing registered)
        self.unsupported: Dict[str, str] = dict(unsupported or {})
        self._objects: Dict[str, Any] = {}
        self._aliases: Dict[str, str] = {}
        self._builtin_modules = tuple(builtin_modules)
        self._builtins_loaded = not self._builtin_modules

    def load_builtins(self) -> None:
        """Import the modules that register the built-in entries (once)."""
        if self._builtins_loaded:
            return
        self._builtins_loaded = True  # set first: the imports register into this registry
        try:
            for module in self._builtin_modules:
                importlib.import_module(module)
        except BaseException:
            self._builtins_loaded = False
            raise

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
        self.load_builtins()
        return sorted([*self._objects, *self._aliases])

    def __contains__(self, name: object) -> bool:
        self.load_builtins()
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
        self.load_builtins()
        if isinstance(name, str):
            if name in self._objects:
                return self._objects[name]
            if name in self._aliases:
                return self._objects[self._aliases[name]]
        raise UnknownNameError(self.unknown_message(name, where))

    def unknown_message(self, name: Any, where: str = "") -> str:
        valid = self.names()
        if isinstance(name, str) and name in self.unsupported:
            prefix = f"{where}: " if where else ""
            return (f"{prefix}{self.kind} {name!r} is not supported: {self.unsupported[name]}. "
                    f"Valid {self.kind} names: {', '.join(valid)}")
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


# GaitHeat (ECCV 2024) is part of the original project but not of this one; docs/models.md,
# "Not supported: GaitHeat", says what it is and what running it would take.
_GAITHEAT_WHY = (
    "GaitHeat reads per-frame keypoint heatmaps (17 x 64 x 48, made by running a person detector and "
    "ViTPose on the dataset's RGB frames), which no pose dataset provides, and the original's GaitHeat "
    "cannot be built or tested as shipped (see docs/models.md, 'Not supported: GaitHeat')"
)
#: original model names that are deliberately absent, with the reason
UNSUPPORTED_MODELS = {"GaitHeat": _GAITHEAT_WHY}
#: original transform names that only serve an absent model, with the reason
UNSUPPORTED_TRANSFORMS = {
    name: f"it prepares GaitHeat's input ({role}), and {_GAITHEAT_WHY}"
    for name, role in (
        ("Sequence_level", "min-max scaling of a heatmap sequence"),
        ("RotationMat", "heatmap alignment matrices from the pose"),
        ("AffineMat", "heatmap alignment matrices from the pose"),
    )
}

MODELS = Registry("model", "Model(model_cfg: dict) -> BaseModel", ["fastposegait.modeling.models"],
                  unsupported=UNSUPPORTED_MODELS)
LOSSES = Registry("loss", "Loss(**kwargs) -> nn.Module; forward(**training_feat[prefix]) -> (loss, info)",
                  ["fastposegait.modeling.losses"])
TRANSFORMS = Registry("transform", "Transform(**kwargs); __call__(seq [T,V,C] ndarray, rng) -> ndarray",
                      ["fastposegait.data.transforms", "fastposegait.data.map_transforms",
                       "fastposegait.data.skeleton_maps.transform"], unsupported=UNSUPPORTED_TRANSFORMS)
SAMPLERS = Registry("sampler", "Sampler(dataset, batch_size, seed, rank, world_size, **kwargs)",
                    ["fastposegait.data.sampler"])
EVALUATORS = Registry("evaluator", "evaluator(data: dict, dataset: str, **kwargs) -> dict of scalars",
                      ["fastposegait.evaluation"])
ALL_REGISTRIES = (MODELS, LOSSES, TRANSFORMS, SAMPLERS, EVALUATORS)


def load_builtins() -> None:
    """Register every built-in model, loss, transform, sampler and evaluator."""
    for registry in ALL_REGISTRIES:
        registry.load_builtins()
