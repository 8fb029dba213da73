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

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Union

from ..data.device_transforms import TRANSFORM_PLACES, unsupported_device_transform
from ..data.frames import FRAME_KEYS, FrameSampler
from ..errors import ConfigError
from ..kwargs import match_kwargs
from ..registry import EVALUATORS, LOSSES, MODELS, SAMPLERS, TRANSFORMS
from .checker import (Checker, check_folder_name, check_positive, check_restore_hint, field_names, is_int,
                      read_fields)
from .solvers import (SolverSection, check_schedule_length, dry_run_solvers, optimizer_classes, read_solver,
                      scheduler_classes)

logger = logging.getLogger(__name__)

SECTIONS = (
    "data_cfg", "loss_cfg", "model_cfg", "optimizer_cfg", "scheduler_cfg",
    "trainer_cfg", "evaluator_cfg",
)
EXTRA_TOP_LEVEL = ("custom_imports",)
SAMPLE_TYPES = tuple(f"{a}_{b}" for a in ("fixed", "unfixed", "all") for b in ("ordered", "unordered"))
CACHE_MODES = ("packed", "memory")
METRICS = ("euc", "cos")



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
        if not (isinstance(batch, list) and len(batch) == 2 and all(is_int(b) and b > 0 for b in batch)):
            checker.fail(f"{key}.batch_size", f"TripletSampler needs [P, K], two positive integers; got {batch!r}")
    elif not (is_int(batch) and batch > 0):
        checker.fail(f"{key}.batch_size", f"{sampler} needs a positive integer; got {batch!r}")


#: the longest fixed/maximum clip a sampler may ask for (frames per sequence)
MAX_CLIP_FRAMES = 10_000


def _check_frame_counts(frames: Mapping[str, Any], key: str, checker: Checker) -> None:
    """The frame counts that ``sample_type`` needs are given and consistent."""
    mode = frames["sample_type"].split("_")[0]
    needed = {"fixed": ("frames_num_fixed",), "unfixed": ("frames_num_min", "frames_num_max")}.get(mode, ())
    for name in needed:
        if frames.get(name) is None:
            checker.fail(f"{key}.{name}", "is missing; add it to the config")
    for name in ("frames_num_fixed", "frames_num_min", "frames_num_max", "frames_all_limit"):
        check_positive(checker, f"{key}.{name}", frames.get(name))
    for name in ("frames_num_fixed", "frames_num_max"):
        count = frames.get(name)
        if is_int(count) and count > MAX_CLIP_FRAMES:
            checker.fail(f"{key}.{name}", f"{count} frames per clip is more than {MAX_CLIP_FRAMES:,} (over 5 minutes of "
                         "walking at 30 fps); every sampled sequence is tiled up to this length, so the batch would "
                         "need gigabytes; use the clip length of the recipe (30-60 frames)")
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
        check_folder_name(checker, f"{key}.dataset_name", self.dataset_name)
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
    transform_on: str
    sampler: SamplerSection
    transform: Any

    @classmethod
    def from_mapping(cls, value: Any, key: str, checker: Checker) -> "TrainerSection":
        values = checker.mapping(value, key)
        checker.unknown_keys(key, [k for k in values if k not in field_names(cls)], field_names(cls))
        fields = read_fields(cls, values, key, checker, skip=("sampler", "transform"))
        for name in ("total_iter", "save_iter", "log_iter", "collective_timeout"):
            check_positive(checker, f"{key}.{name}", fields[name])
        check_restore_hint(checker, f"{key}.restore_hint", fields["restore_hint"])
        check_folder_name(checker, f"{key}.save_name", fields["save_name"])
        check_transforms(values.get("transform"), f"{key}.transform", checker)
        sampler = SamplerSection.from_mapping(values.get("sampler"), f"{key}.sampler", checker)
        _check_transform_place(fields["transform_on"], sampler, values.get("transform"), key, checker)
        return cls(sampler=sampler, transform=values.get("transform"), **fields)


def _check_transform_place(place: str, sampler: SamplerSection, transform: Any, key: str, checker: Checker) -> None:
    """``transform_on`` is ``worker`` or ``device``; ``device`` needs stacked batches (``fixed_*``
    sampling) and a batched twin of every transform (fastposegait.data.device_transforms)."""
    if place not in TRANSFORM_PLACES:
        checker.fail(f"{key}.transform_on", f"must be 'worker' or 'device', got {place!r}")
    if place != "device":
        return
    if sampler.frames.mode != "fixed":
        checker.fail(f"{key}.sampler.sample_type",
                     f"{sampler.frames.sample_type!r} packs sequences of different lengths, which the device "
                     f"transforms cannot take; use fixed_ordered/fixed_unordered or set {key}.transform_on: worker")
    found = unsupported_device_transform(transform, f"{key}.transform")
    if found is not None:
        checker.fail(found[0], f"transform {found[1]!r} has no batched version to run on the device; set "
                     f"{key}.transform_on: worker")


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
        check_positive(checker, f"{key}.max_sequences_per_call", fields.get("max_sequences_per_call"),
                  "a positive integer or null (automatic)")
        check_positive(checker, f"{key}.collective_timeout", fields["collective_timeout"])
        check_restore_hint(checker, f"{key}.restore_hint", fields["restore_hint"])
        check_folder_name(checker, f"{key}.save_name", fields["save_name"])
        check_transforms(values.get("transform"), f"{key}.transform", checker)
        sampler = SamplerSection.from_mapping(values.get("sampler"), f"{key}.sampler", checker)
        return cls(sampler=sampler, transform=values.get("transform"), **fields)


def read_losses(value: Any, checker: Checker) -> List[Dict[str, Any]]:
    """``loss_cfg`` as a list of mappings, each with a registered ``type`` and a ``log_prefix``."""
    entries = value if isinstance(value, list) else [value]
    if not entries or not all(isinstance(e, dict) for e in entries):
        checker.fail("loss_cfg", "must be a mapping or a list of mappings with 'type' and 'log_prefix'")
    for i, entry in enumerate(entries):
        key = "loss_cfg" if not isinstance(value, list) else f"loss_cfg.{i}"
        fields = read_fields(_LossEntry, entry, key, checker)
        checker.registered(LOSSES, fields["type"], f"{key}.type")
        _build_loss(entry, key, checker)
    return [dict(e) for e in entries]


def _build_loss(entry: Mapping[str, Any], key: str, checker: Checker) -> None:
    """Build the loss once, so a value it refuses (a temperature of 0, a negative margin) is an
    error at load rather than a constant or NaN loss during training."""
    cls = LOSSES.get(entry["type"])
    kwargs = match_kwargs(cls, entry, ignore=("type", "log_prefix")).accepted
    try:
        cls(**kwargs)
    except ConfigError as exc:  # the loss names the argument; the key says where it is
        message = str(exc)
        name = message.split(" ", 1)[0]
        checker.fail(f"{key}.{name}" if name in kwargs else key, message.split(" ", 1)[1] if name in kwargs
                     else message)
    except (TypeError, ValueError) as exc:
        checker.fail(key, f"{entry['type']} refuses these arguments: {' '.join(str(exc).split())}")


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
        dry_run_solvers(optimizer, scheduler, checker)
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
