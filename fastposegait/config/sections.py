"""Typed config sections: each key the framework reads, its type and its constraints, once.

A resolved config (a YAML file merged over ``configs/default.yaml``, see
:mod:`fastposegait.config.loading`) becomes a :class:`Config` of frozen dataclasses:
``config.trainer.total_iter`` instead of ``cfg["trainer_cfg"].get("total_iter", ...)``.

Where the values come from: **default values live in ``configs/default.yaml`` only.** A
field here has no default unless its default is ``None``, meaning "not set" (an optional
key such as ``data_cfg.cache_dir``); a test checks that every field without a Python default
has its value in ``default.yaml``. The fields' annotations are the type checks: a wrong type,
a missing key or a value out of range is one :class:`~fastposegait.errors.ConfigError`
naming the file and the key (and whether the command line set it). A key that no field
declares is an error naming the closest valid key; every key of the original FastPoseGait
sections is a field, so configs written for it keep loading.

The free-form sections stay mappings: ``model_cfg`` (checked by the model's constructor),
``loss_cfg`` entries (checked by each loss), and the keyword arguments of the optimizer and
scheduler classes.
"""
from __future__ import annotations

import dataclasses
import inspect
import logging
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, FrozenSet, Iterable, List, Mapping, NoReturn, Optional, Tuple, Type, TypeVar, Union

from ..data.frames import FRAME_KEYS, FrameSampler
from ..errors import ConfigError
from ..kwargs import expected_type, value_problem
from ..registry import EVALUATORS, LOSSES, MODELS, SAMPLERS, TRANSFORMS, Registry, closest_name

logger = logging.getLogger(__name__)

SECTIONS = (
    "data_cfg", "loss_cfg", "model_cfg", "optimizer_cfg", "scheduler_cfg",
    "trainer_cfg", "evaluator_cfg",
)
EXTRA_TOP_LEVEL = ("custom_imports",)
SAMPLE_TYPES = tuple(f"{a}_{b}" for a in ("fixed", "unfixed", "all") for b in ("ordered", "unordered"))
CACHE_MODES = ("packed", "memory")
METRICS = ("euc", "cos")

S = TypeVar("S")


class Checker:
    """Validation context: which file, which keys the command line set, and whether to log
    warnings (a config is checked again when a runner receives it; it warns only once)."""

    def __init__(self, path: Union[str, Path] = "<config>", overridden: Iterable[str] = (), report: bool = True) -> None:
        self.path = path
        self.overridden = set(overridden)
        self.report = report

    def fail(self, key: str, message: str) -> NoReturn:
        origin = " (set on the command line)" if key in self.overridden else ""
        raise ConfigError(f"{self.path}: {key}{origin}: {message}")

    def warn(self, message: str, *args: Any) -> None:
        if self.report:
            logger.warning("%s: " + message, self.path, *args)

    def mapping(self, value: Any, key: str, what: str = "a mapping") -> Dict[str, Any]:
        if not isinstance(value, Mapping):
            self.fail(key, f"must be {what}, got {type(value).__name__}")
        return dict(value)

    def registered(self, registry: Registry, name: Any, key: str) -> None:
        if name not in registry:
            self.fail(key, registry.unknown_message(name))

    def class_in(self, module: Any, base: type, name: str, key: str) -> None:
        valid = classes_in(module, base)
        if name not in valid:
            close = closest_name(name, valid)
            hint = f" (did you mean {close!r}?)" if close else ""
            self.fail(key, f"{name!r} is not a class in {module.__name__}{hint}. Valid names: {', '.join(valid)}")

    def unknown_keys(self, key: str, unknown: List[str], valid: Iterable[str]) -> None:
        """An error for the first key of ``unknown`` (a typo would otherwise fall back to the
        default without a word), with the closest valid key and all of them."""
        valid = list(valid)
        for name in unknown:
            close = closest_name(name, valid)
            hint = f" (did you mean {close!r}?)" if close else ""
            self.fail(f"{key}.{name}", f"unknown key{hint}. Valid keys: {', '.join(valid)}")


# ----------------------------------------------------------------------------- field checks


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _kinds(annotation: Any) -> Tuple[Optional[Tuple[type, ...]], bool]:
    """The runtime types an annotation allows (None: not checked generically) and whether
    ``None`` is allowed."""
    args = typing.get_args(annotation) if typing.get_origin(annotation) is Union else (annotation,)
    optional = type(None) in args
    kinds = tuple(a for a in args if a is not type(None))
    if all(a in (int, bool, str, float) for a in kinds):
        return kinds, optional
    return None, optional


def _type_ok(value: Any, kinds: Tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in kinds
    if float in kinds and _is_int(value):
        return True
    return isinstance(value, kinds)


def read_fields(cls: Type[S], values: Mapping[str, Any], key: str, checker: Checker,
                skip: Iterable[str] = ()) -> Dict[str, Any]:
    """The values of ``cls``'s fields from ``values``, each checked against its annotation.

    A field without a Python default must be given (and not null unless its annotation is
    Optional); a field whose default is None may be left out. ``skip`` fields are read by
    the caller.
    """
    hints = typing.get_type_hints(cls)
    out: Dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in skip:
            continue
        full = f"{key}.{f.name}"
        kinds, optional = _kinds(hints[f.name])
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        value = values.get(f.name, None)
        if value is None:
            if f.name not in values and has_default:
                continue
            if not optional:
                checker.fail(full, "is missing; add it to the config")
        elif kinds is not None and not _type_ok(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            checker.fail(full, f"must be {names}, got {value!r} ({type(value).__name__})")
        out[f.name] = value
    return out


def field_names(cls: type) -> List[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _positive(checker: Checker, key: str, value: Optional[int], what: str = "a positive integer") -> None:
    if value is not None and value <= 0:
        checker.fail(key, f"must be {what}, got {value}")


def _check_restore_hint(checker: Checker, key: str, value: Union[int, str]) -> None:
    """An iteration to restore is >= 0 (0: none); ``--iter -5`` would look for ``x--0005.pt``."""
    if _is_int(value) and value < 0:
        checker.fail(key, f"must be 0 (no restore), a positive iteration or a checkpoint path, got {value}")


# ----------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class SamplerSection:
    """``trainer_cfg.sampler`` / ``evaluator_cfg.sampler``: which sequences form a batch
    (``type``, ``batch_size``), which frames of each are taken (``frames``: the
    ``sample_type`` and ``frames_*`` keys, whose names and types are the fields of
    :class:`~fastposegait.data.frames.FrameSampler`), and the sampler class's own arguments
    (``options``, e.g. ``batch_shuffle``)."""

    type: str
    batch_size: Union[int, List[int]]
    frames: FrameSampler
    options: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, value: Any, key: str, checker: Checker) -> "SamplerSection":
        values = checker.mapping(value, key, "a mapping with type, batch_size and sample_type")
        name = read_fields(_SamplerName, values, key, checker)["type"]
        checker.registered(SAMPLERS, name, f"{key}.type")
        frame_values = read_fields(FrameSampler, values, key, checker)
        if frame_values["sample_type"] not in SAMPLE_TYPES:
            checker.fail(f"{key}.sample_type",
                         f"must be one of {', '.join(SAMPLE_TYPES)}, got {frame_values['sample_type']!r}")
        _check_batch_size(name, values.get("batch_size"), key, checker)
        _check_frame_counts(frame_values, key, checker)
        options = {k: v for k, v in values.items() if k not in ("type", "batch_size", *FRAME_KEYS)}
        return cls(name, values["batch_size"], FrameSampler(**frame_values), options)

    def as_mapping(self) -> Dict[str, Any]:
        """The section as the mapping the data layer takes (``fastposegait.data.loader``)."""
        frames = {k: getattr(self.frames, k) for k in FRAME_KEYS}
        return {"type": self.type, "batch_size": self.batch_size, **frames, **self.options}


@dataclass(frozen=True)
class _SamplerName:
    type: str


def _check_batch_size(sampler: str, batch: Any, key: str, checker: Checker) -> None:
    if SAMPLERS.canonical(sampler) == "TripletSampler":
        if not (isinstance(batch, list) and len(batch) == 2 and all(_is_int(b) and b > 0 for b in batch)):
            checker.fail(f"{key}.batch_size", f"TripletSampler needs [P, K], two positive integers; got {batch!r}")
    elif not (_is_int(batch) and batch > 0):
        checker.fail(f"{key}.batch_size", f"{sampler} needs a positive integer; got {batch!r}")


def _check_frame_counts(frames: Mapping[str, Any], key: str, checker: Checker) -> None:
    """The frame counts that ``sample_type`` needs are given and consistent."""
    mode = frames["sample_type"].split("_")[0]
    needed = {"fixed": ("frames_num_fixed",), "unfixed": ("frames_num_min", "frames_num_max")}.get(mode, ())
    for name in needed:
        if frames.get(name) is None:
            checker.fail(f"{key}.{name}", "is missing; add it to the config")
    for name in ("frames_num_fixed", "frames_num_min", "frames_num_max", "frames_all_limit"):
        _positive(checker, f"{key}.{name}", frames.get(name))
    if (frames.get("frames_skip_num") or 0) < 0:
        checker.fail(f"{key}.frames_skip_num", f"must be >= 0, got {frames['frames_skip_num']}")
    if mode == "unfixed" and frames["frames_num_min"] > frames["frames_num_max"]:
        checker.fail(f"{key}.frames_num_min", "must not exceed frames_num_max")


def check_transforms(cfg: Any, key: str, checker: Checker) -> None:
    """Every ``type`` in a transform list (nested ``trf_cfg`` included) is registered."""
    if cfg is None:
        return
    if isinstance(cfg, list):
        for i, entry in enumerate(cfg):
            check_transforms(entry, f"{key}.{i}", checker)
        return
    if not isinstance(cfg, dict) or "type" not in cfg:
        checker.fail(key, f"a transform entry must be a mapping with 'type' (or null / a list), got {cfg!r}")
    checker.registered(TRANSFORMS, cfg["type"], f"{key}.type")
    if "trf_cfg" in cfg:
        check_transforms(cfg["trf_cfg"], f"{key}.trf_cfg", checker)


def resolved_test_dataset_name(data_cfg: Mapping[str, Any]) -> Any:
    """The evaluation protocol's dataset: ``test_dataset_name``, else ``dataset_name``
    (docs/upstream_differences.md explains why not CASIA-B, as in the original)."""
    return data_cfg.get("test_dataset_name") or data_cfg.get("dataset_name")


@dataclass(frozen=True)
class DataSection:
    """``data_cfg``: where the dataset is and how it is read (docs/configs.md#data_cfg)."""

    dataset_name: str
    dataset_root: str
    dataset_partition: str
    test_dataset_name: str
    num_workers: int
    cache: Union[bool, str]
    frame_threshold: int
    cache_dir: Optional[str] = None
    data_in_use: Optional[List[bool]] = None
    synthetic: Optional[Dict[str, Any]] = None
    remove_no_gallery: Optional[bool] = None

    @classmethod
    def from_mapping(cls, value: Any, key: str, checker: Checker) -> "DataSection":
        values = checker.mapping(value, key)
        if values.get("test_dataset_name") is None:
            values["test_dataset_name"] = resolved_test_dataset_name(values)
        checker.unknown_keys(key, [k for k in values if k not in field_names(cls)], field_names(cls))
        section = cls(**read_fields(cls, values, key, checker))
        section._check(key, checker)
        return section

    def _check(self, key: str, checker: Checker) -> None:
        if isinstance(self.cache, str) and self.cache not in CACHE_MODES:
            checker.fail(f"{key}.cache", "must be bool (true: packed cache, false: none) or one of "
                         f"'packed', 'memory'; got {self.cache!r}")
        if self.num_workers < 0 or self.frame_threshold < 0:
            checker.fail(f"{key}.num_workers", "num_workers and frame_threshold must be >= 0")
        diu = self.data_in_use
        if diu is not None and (not isinstance(diu, list) or not all(isinstance(v, bool) for v in diu)):
            checker.fail(f"{key}.data_in_use", f"must be a list of true/false, got {diu!r}")
        if self.synthetic is not None and not isinstance(self.synthetic, dict):
            checker.fail(f"{key}.synthetic",
                         "must be a mapping of generator arguments (layout, num_subjects, seed, ...)")
        if self.remove_no_gallery:
            checker.warn("%s.remove_no_gallery is accepted for compatibility but ignored (as upstream): "
                         "probes without a same-subject gallery sequence count as misses", key)


@dataclass(frozen=True)
class TrainerSection:
    """``trainer_cfg``: the training loop (docs/configs.md#trainer_cfg)."""

    enable_float16: bool
    enable_bfloat16: bool
    compile: bool
    channels_last: bool
    with_test: bool
    fix_BN: bool
    find_unused_parameters: bool
    log_iter: int
    restore_ckpt_strict: bool
    optimizer_reset: bool
    scheduler_reset: bool
    restore_hint: Union[int, str]
    save_iter: int
    save_name: str
    sync_BN: bool
    total_iter: int
    seed: int
    collective_timeout: int
    sampler: SamplerSection
    transform: Any

    @classmethod
    def from_mapping(cls, value: Any, key: str, checker: Checker) -> "TrainerSection":
        values = checker.mapping(value, key)
        checker.unknown_keys(key, [k for k in values if k not in field_names(cls)], field_names(cls))
        fields = read_fields(cls, values, key, checker, skip=("sampler", "transform"))
        for name in ("total_iter", "save_iter", "log_iter", "collective_timeout"):
            _positive(checker, f"{key}.{name}", fields[name])
        _check_restore_hint(checker, f"{key}.restore_hint", fields["restore_hint"])
        check_transforms(values.get("transform"), f"{key}.transform", checker)
        sampler = SamplerSection.from_mapping(values.get("sampler"), f"{key}.sampler", checker)
        return cls(sampler=sampler, transform=values.get("transform"), **fields)


@dataclass(frozen=True)
class EvaluatorSection:
    """``evaluator_cfg``: the test phase (docs/configs.md#evaluator_cfg)."""

    enable_float16: bool
    enable_bfloat16: bool
    restore_ckpt_strict: bool
    restore_hint: Union[int, str]
    save_name: str
    eval_func: str
    metric: str
    cross_view_gallery: bool
    seed: int
    collective_timeout: int
    sampler: SamplerSection
    transform: Any
    max_sequences_per_call: Optional[int] = None

    @classmethod
    def from_mapping(cls, value: Any, key: str, checker: Checker) -> "EvaluatorSection":
        values = checker.mapping(value, key)
        checker.unknown_keys(key, [k for k in values if k not in field_names(cls)], field_names(cls))
        fields = read_fields(cls, values, key, checker, skip=("sampler", "transform"))
        checker.registered(EVALUATORS, fields["eval_func"], f"{key}.eval_func")
        if fields["metric"] not in METRICS:
            checker.fail(f"{key}.metric", f"must be 'euc' or 'cos', got {fields['metric']!r}")
        _positive(checker, f"{key}.max_sequences_per_call", fields.get("max_sequences_per_call"),
                  "a positive integer or null (automatic)")
        _positive(checker, f"{key}.collective_timeout", fields["collective_timeout"])
        _check_restore_hint(checker, f"{key}.restore_hint", fields["restore_hint"])
        check_transforms(values.get("transform"), f"{key}.transform", checker)
        sampler = SamplerSection.from_mapping(values.get("sampler"), f"{key}.sampler", checker)
        return cls(sampler=sampler, transform=values.get("transform"), **fields)


@dataclass(frozen=True)
class SolverSection:
    """``optimizer_cfg`` / ``scheduler_cfg``: a class of ``torch.optim`` (or of its
    ``lr_scheduler`` module) and its keyword arguments."""

    name: str
    kwargs: Dict[str, Any]

    def resolve(self, module: Any) -> type:
        return getattr(module, self.name)


def classes_in(module: Any, base: type) -> List[str]:
    """Public classes of ``module`` that subclass ``base`` (sorted)."""
    names = [name for name, obj in vars(module).items()
             if inspect.isclass(obj) and issubclass(obj, base) and obj is not base and not name.startswith("_")]
    return sorted(names)


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
        if name in NON_NEGATIVE_SOLVER_KEYS and any(_is_number(v) and v < 0 for v in numbers):
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
    if total is None and _is_int(kwargs.get("epochs")) and _is_int(kwargs.get("steps_per_epoch")):
        total = kwargs["epochs"] * kwargs["steps_per_epoch"]
        name = "scheduler_cfg.epochs"
    if _is_number(total) and total < total_iter:
        origin = " (set on the command line)" if "trainer_cfg.total_iter" in checker.overridden else ""
        checker.fail(name, f"{scheduler.name} lasts {total:g} steps but trainer_cfg.total_iter{origin} is "
                           f"{total_iter}: the scheduler would raise at step {int(total) + 1} and stop training "
                           f"there; set scheduler_cfg.total_steps >= {total_iter} (usually equal)")


def read_losses(value: Any, checker: Checker) -> List[Dict[str, Any]]:
    """``loss_cfg`` as a list of mappings, each with a registered ``type`` and a ``log_prefix``."""
    entries = value if isinstance(value, list) else [value]
    if not entries or not all(isinstance(e, dict) for e in entries):
        checker.fail("loss_cfg", "must be a mapping or a list of mappings with 'type' and 'log_prefix'")
    for i, entry in enumerate(entries):
        key = "loss_cfg" if not isinstance(value, list) else f"loss_cfg.{i}"
        fields = read_fields(_LossEntry, entry, key, checker)
        checker.registered(LOSSES, fields["type"], f"{key}.type")
    return [dict(e) for e in entries]


@dataclass(frozen=True)
class _LossEntry:
    type: str
    log_prefix: str
    loss_term_weight: Optional[float] = None


@dataclass(frozen=True)
class Config:
    """A resolved, validated config.

    Attributes:
        data, trainer, evaluator: the typed sections.
        model: ``model_cfg`` (its ``model`` names a registered model; the other keys are
            checked by the model's constructor).
        losses: ``loss_cfg`` as a list of mappings.
        optimizer, scheduler: the solver classes' names and keyword arguments.
        custom_imports: the user's modules imported before validation.
        raw: the resolved mapping itself (what ``config_<phase>.yaml`` holds).
    """

    data: DataSection
    model: Dict[str, Any]
    losses: List[Dict[str, Any]]
    optimizer: SolverSection
    scheduler: SolverSection
    trainer: TrainerSection
    evaluator: EvaluatorSection
    custom_imports: List[str]
    raw: Dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any], path: Union[str, Path] = "<config>",
                  overridden: Iterable[str] = (), report: bool = True) -> "Config":
        """Validate a resolved config mapping and return its typed form.

        Args:
            cfg: the mapping returned by :func:`~fastposegait.config.load_config`.
            path: the config file, named in errors.
            overridden: the keys set on the command line (errors say so).
            report: log warnings (keys accepted but ignored, e.g. remove_no_gallery); off when a config that was
                already loaded is checked again.
        """
        checker = Checker(path, overridden, report)
        model = checker.mapping(cfg.get("model_cfg"), "model_cfg")
        name = read_fields(_ModelName, model, "model_cfg", checker)["model"]
        checker.registered(MODELS, name, "model_cfg.model")
        data = DataSection.from_mapping(cfg.get("data_cfg"), "data_cfg", checker)
        losses = read_losses(cfg.get("loss_cfg"), checker)
        optimizer = read_solver(cfg.get("optimizer_cfg"), "optimizer_cfg", "solver", checker, optimizer_classes())
        scheduler = read_solver(cfg.get("scheduler_cfg"), "scheduler_cfg", "scheduler", checker, scheduler_classes())
        trainer = TrainerSection.from_mapping(cfg.get("trainer_cfg"), "trainer_cfg", checker)
        check_schedule_length(scheduler, trainer.total_iter, checker)
        return cls(
            data=data,
            model=model,
            losses=losses,
            optimizer=optimizer,
            scheduler=scheduler,
            trainer=trainer,
            evaluator=EvaluatorSection.from_mapping(cfg.get("evaluator_cfg"), "evaluator_cfg", checker),
            custom_imports=list(cfg.get("custom_imports") or []),
            raw=dict(cfg),
        )

    def engine(self, phase: str) -> Union[TrainerSection, EvaluatorSection]:
        """The section that drives ``phase`` (``train``: trainer, ``test``: evaluator)."""
        return self.trainer if phase == "train" else self.evaluator


@dataclass(frozen=True)
class _ModelName:
    model: str


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
