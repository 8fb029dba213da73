"""Load, merge, override and validate YAML configs.

A config is a YAML mapping with the upstream sections (``data_cfg``, ``loss_cfg``,
``model_cfg``, ``optimizer_cfg``, ``scheduler_cfg``, ``trainer_cfg``, ``evaluator_cfg``) plus
our optional ``custom_imports``. It is merged over ``configs/default.yaml`` (mappings merge
key by key; lists and scalars replace), then ``key.sub=value`` overrides from the command line
are applied, then everything the runner relies on is checked. Each problem raises one
:class:`ConfigError` naming the file, the key and the fix, before anything is built.

Example::

    cfg = load_config("configs/gaitgraph2/gaitgraph2.yaml", ["trainer_cfg.total_iter=10"])
"""
from __future__ import annotations

import copy
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import yaml

from .errors import ConfigError

SECTIONS = (
    "data_cfg", "loss_cfg", "model_cfg", "optimizer_cfg", "scheduler_cfg",
    "trainer_cfg", "evaluator_cfg",
)
EXTRA_TOP_LEVEL = ("custom_imports",)
SAMPLE_TYPES = tuple(f"{a}_{b}" for a in ("fixed", "unfixed", "all") for b in ("ordered", "unordered"))



def default_config_path() -> Path:
    """``configs/default.yaml`` of this checkout, else of the working directory."""
    candidates = [
        Path(__file__).resolve().parent.parent / "configs" / "default.yaml",
        Path.cwd() / "configs" / "default.yaml",
    ]
    for path in candidates:
        if path.is_file():
            return path
    raise ConfigError(
        "configs/default.yaml not found (looked in "
        + ", ".join(str(p) for p in candidates)
        + "); run from the repository root or reinstall the package with `pip install -e .`"
    )


def read_yaml(path: str | Path) -> Dict[str, Any]:
    """Read a YAML mapping, turning parse errors into a :class:`ConfigError` with the line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist; pass an existing YAML file to --cfgs")
    try:
        with open(path, "r", encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: malformed YAML{where}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(data).__name__}")
    return data


def merge(base: Mapping[str, Any], user: Mapping[str, Any]) -> Dict[str, Any]:
    """Recursively write ``user`` over ``base`` without mutating either.

    Mappings merge key by key; any other user value (lists included) replaces the default.
    """
    out = copy.deepcopy(dict(base))
    for key, value in user.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> Tuple[List[str], Any]:
    """Split ``a.b.c=value`` into its key path and YAML-parsed value."""
    if "=" not in text:
        raise ConfigError(f"command-line override {text!r} must look like key.sub=value")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"command-line override {text!r} has an empty key component")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"command-line override {text!r}: value is not valid YAML ({exc})") from None
    return parts, value


def apply_override(cfg: Dict[str, Any], parts: Sequence[str], value: Any, text: str) -> None:
    """Set ``cfg[parts[0]][parts[1]]... = value`` in place; list items by integer index."""
    node: Any = cfg
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = node[_list_index(node, part, text)]
        elif isinstance(node, dict):
            if part not in node or node[part] is None:
                node[part] = {}
            node = node[part]
        else:
            raise ConfigError(
                f"command-line override {text!r}: {'.'.join(parts[:i + 1])} is a "
                f"{type(node).__name__}, not a mapping"
            )
        if not isinstance(node, (dict, list)):
            raise ConfigError(
                f"command-line override {text!r}: {'.'.join(parts[:i + 1])} holds a "
                f"{type(node).__name__}, so it has no sub-keys"
            )
    last = parts[-1]
    if isinstance(node, list):
        node[_list_index(node, last, text)] = value
    else:
        node[last] = value


def _list_index(node: list, part: str, text: str) -> int:
    try:
        index = int(part)
        node[index]
    except (ValueError, IndexError):
        raise ConfigError(
            f"command-line override {text!r}: {part!r} is not a valid index of a list of {len(node)} items"
        ) from None
    return index


def import_custom_modules(modules: Iterable[str], config_path: Optional[Path] = None) -> None:
    """Import the user's own modules named in ``custom_imports``.

    An entry is a dotted module name (importable from the working directory or the
    environment) or a path to a ``.py`` file (relative to the working directory, else to the
    config file). Importing runs the module's ``@REGISTRY.register`` decorators.
    """
    for entry in modules:
        if not isinstance(entry, str) or not entry:
            raise ConfigError(f"{config_path}: custom_imports entries must be module names or .py paths, got {entry!r}")
        if entry.endswith(".py"):
            path = Path(entry)
            if not path.is_file() and config_path is not None:
                path = config_path.parent / entry
            if not path.is_file():
                raise ConfigError(f"{config_path}: custom_imports: file {entry!r} not found")
            name = "fastposegait_custom_" + path.stem
            if name in sys.modules:
                continue
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
            sys.modules[name] = module
            spec.loader.exec_module(module)  # type: ignore[union-attr]
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))
            try:
                importlib.import_module(entry)
            except ImportError as exc:
                raise ConfigError(f"{config_path}: custom_imports: cannot import {entry!r} ({exc})") from None


def load_config(
    path: str | Path,
    overrides: Sequence[str] = (),
    default_path: Optional[str | Path] = None,
) -> Dict[str, Any]:
    """Read ``path``, merge it over the defaults, apply overrides, import custom modules and
    validate. Returns the resolved config as a plain dict."""
    path = Path(path)
    user = read_yaml(path)
    unknown = [k for k in user if k not in SECTIONS and k not in EXTRA_TOP_LEVEL]
    if unknown:
        raise ConfigError(
            f"{path}: unknown top-level section(s) {', '.join(map(repr, unknown))}; valid sections: "
            + ", ".join(SECTIONS + EXTRA_TOP_LEVEL)
        )
    defaults = read_yaml(default_path or default_config_path())
    cfg = merge(defaults, user)
    overridden = set()
    for text in overrides:
        parts, value = parse_override(text)
        if parts[0] not in SECTIONS and parts[0] not in EXTRA_TOP_LEVEL:
            raise ConfigError(
                f"command-line override {text!r}: unknown section {parts[0]!r}; valid sections: "
                + ", ".join(SECTIONS + EXTRA_TOP_LEVEL)
            )
        apply_override(cfg, parts, value, text)
        overridden.add(".".join(parts))
    data_cfg = cfg.get("data_cfg") or {}
    if isinstance(data_cfg, dict) and not data_cfg.get("test_dataset_name"):
        # Q20: upstream silently evaluates such configs with the CASIA-B protocol.
        data_cfg["test_dataset_name"] = data_cfg.get("dataset_name")
    if isinstance(data_cfg, dict) and data_cfg.get("remove_no_gallery"):
        import logging

        logging.getLogger("fastposegait").warning(
            "%s: data_cfg.remove_no_gallery is accepted for compatibility but ignored (as upstream): "
            "probes without a same-subject gallery sequence count as misses", path)
    custom = cfg.get("custom_imports") or []
    if not isinstance(custom, list):
        raise ConfigError(f"{path}: custom_imports must be a list of module names or .py paths")
    import_custom_modules(custom, path)
    ConfigValidator(path, overridden).validate(cfg)
    return cfg


class ConfigValidator:
    """Checks the keys the runner uses: presence, types, registered names."""

    def __init__(self, path: Path, overridden: Iterable[str] = ()) -> None:
        self.path = path
        self.overridden = set(overridden)

    def fail(self, key: str, message: str) -> None:
        origin = " (set on the command line)" if key in self.overridden else ""
        raise ConfigError(f"{self.path}: {key}{origin}: {message}")

    def section(self, cfg: Dict[str, Any], name: str) -> Dict[str, Any]:
        value = cfg.get(name)
        if not isinstance(value, dict):
            self.fail(name, f"must be a mapping, got {type(value).__name__}")
        return value  # type: ignore[return-value]

    def check_type(self, sec: Dict[str, Any], sec_name: str, key: str, kinds: tuple, required: bool = True) -> None:
        full = f"{sec_name}.{key}"
        if key not in sec or sec[key] is None:
            if required:
                self.fail(full, "is missing; add it to the config")
            return
        value = sec[key]
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if not ok:
            names = " or ".join(k.__name__ for k in kinds)
            self.fail(full, f"must be {names}, got {value!r} ({type(value).__name__})")

    def check_name(self, registry: Any, name: Any, key: str) -> None:
        if name not in registry:
            self.fail(key, registry.unknown_message(name))

    def validate(self, cfg: Dict[str, Any]) -> None:
        from .registry import EVALUATORS, LOSSES, MODELS, SAMPLERS

        data = self.section(cfg, "data_cfg")
        for key in ("dataset_name", "dataset_root", "dataset_partition", "test_dataset_name"):
            self.check_type(data, "data_cfg", key, (str,))
        self.check_type(data, "data_cfg", "num_workers", (int,))
        self.check_type(data, "data_cfg", "cache", (bool, str))
        if isinstance(data["cache"], str) and data["cache"] not in ("packed", "memory"):
            self.fail("data_cfg.cache", "must be bool (true: packed cache, false: none) or one of "
                      f"'packed', 'memory'; got {data['cache']!r}")
        self.check_type(data, "data_cfg", "cache_dir", (str,), required=False)
        self.check_type(data, "data_cfg", "frame_threshold", (int,))
        if data["num_workers"] < 0 or data["frame_threshold"] < 0:
            self.fail("data_cfg.num_workers", "num_workers and frame_threshold must be >= 0")
        if data.get("data_in_use") is not None:
            diu = data["data_in_use"]
            if not isinstance(diu, list) or not all(isinstance(v, bool) for v in diu):
                self.fail("data_cfg.data_in_use", f"must be a list of true/false, got {diu!r}")
        if data.get("synthetic") is not None and not isinstance(data["synthetic"], dict):
            self.fail("data_cfg.synthetic", "must be a mapping of generator arguments (layout, num_subjects, seed, ...)")

        model = self.section(cfg, "model_cfg")
        self.check_type(model, "model_cfg", "model", (str,))
        self.check_name(MODELS, model["model"], "model_cfg.model")

        losses = cfg.get("loss_cfg")
        entries = losses if isinstance(losses, list) else [losses]
        if not entries or not all(isinstance(e, dict) for e in entries):
            self.fail("loss_cfg", "must be a mapping or a list of mappings with 'type' and 'log_prefix'")
        for i, entry in enumerate(entries):
            key = "loss_cfg" if not isinstance(losses, list) else f"loss_cfg.{i}"
            self.check_type(entry, key, "type", (str,))
            self.check_name(LOSSES, entry["type"], f"{key}.type")
            self.check_type(entry, key, "log_prefix", (str,))
            self.check_type(entry, key, "loss_term_weight", (int, float), required=False)

        opt = self.section(cfg, "optimizer_cfg")
        self.check_type(opt, "optimizer_cfg", "solver", (str,))
        self.check_class_name("optimizer_cfg.solver", opt["solver"], "torch.optim", _optimizer_names())
        sched = self.section(cfg, "scheduler_cfg")
        self.check_type(sched, "scheduler_cfg", "scheduler", (str,))
        self.check_class_name("scheduler_cfg.scheduler", sched["scheduler"], "torch.optim.lr_scheduler", _scheduler_names())

        trainer = self.section(cfg, "trainer_cfg")
        for key in ("total_iter", "save_iter", "log_iter"):
            self.check_type(trainer, "trainer_cfg", key, (int,))
            if trainer[key] <= 0:
                self.fail(f"trainer_cfg.{key}", f"must be a positive integer, got {trainer[key]}")
        for key in ("enable_float16", "with_test", "fix_BN", "sync_BN", "restore_ckpt_strict",
                    "optimizer_reset", "scheduler_reset"):
            self.check_type(trainer, "trainer_cfg", key, (bool,))
        for key in ("enable_bfloat16", "compile", "channels_last", "find_unused_parameters"):
            self.check_type(trainer, "trainer_cfg", key, (bool,), required=False)
        self.check_type(trainer, "trainer_cfg", "seed", (int,))
        self.check_type(trainer, "trainer_cfg", "save_name", (str,))
        self.check_type(trainer, "trainer_cfg", "restore_hint", (int, str))
        self.check_sampler(trainer, "trainer_cfg", SAMPLERS)
        self.check_transforms(trainer.get("transform"), "trainer_cfg.transform")

        evaluator = self.section(cfg, "evaluator_cfg")
        self.check_type(evaluator, "evaluator_cfg", "restore_hint", (int, str))
        self.check_type(evaluator, "evaluator_cfg", "save_name", (str,))
        self.check_type(evaluator, "evaluator_cfg", "enable_float16", (bool,))
        self.check_type(evaluator, "evaluator_cfg", "enable_bfloat16", (bool,), required=False)
        self.check_type(evaluator, "evaluator_cfg", "restore_ckpt_strict", (bool,))
        self.check_type(evaluator, "evaluator_cfg", "eval_func", (str,))
        self.check_name(EVALUATORS, evaluator["eval_func"], "evaluator_cfg.eval_func")
        if evaluator.get("metric", "euc") not in ("euc", "cos"):
            self.fail("evaluator_cfg.metric", f"must be 'euc' or 'cos', got {evaluator.get('metric')!r}")
        self.check_type(evaluator, "evaluator_cfg", "seed", (int,), required=False)
        self.check_type(evaluator, "evaluator_cfg", "max_sequences_per_call", (int,), required=False)
        if (evaluator.get("max_sequences_per_call") or 1) < 1:
            self.fail("evaluator_cfg.max_sequences_per_call", "must be a positive integer or null (automatic)")
        self.check_sampler(evaluator, "evaluator_cfg", SAMPLERS)
        self.check_transforms(evaluator.get("transform"), "evaluator_cfg.transform")

    def check_class_name(self, key: str, name: str, module: str, valid: List[str]) -> None:
        if name not in valid:
            from .registry import closest_name

            close = closest_name(name, valid)
            hint = f" (did you mean {close!r}?)" if close else ""
            self.fail(key, f"{name!r} is not a class in {module}{hint}. Valid names: {', '.join(valid)}")

    def check_sampler(self, sec: Dict[str, Any], sec_name: str, samplers: Any) -> None:
        sampler = sec.get("sampler")
        key = f"{sec_name}.sampler"
        if not isinstance(sampler, dict):
            self.fail(key, "must be a mapping with type, batch_size and sample_type")
        self.check_type(sampler, key, "type", (str,))
        self.check_name(samplers, sampler["type"], f"{key}.type")
        self.check_type(sampler, key, "sample_type", (str,))
        st = sampler["sample_type"]
        if st not in SAMPLE_TYPES:
            self.fail(f"{key}.sample_type", f"must be one of {', '.join(SAMPLE_TYPES)}, got {st!r}")
        batch = sampler.get("batch_size")
        kind = samplers.canonical(sampler["type"])
        if kind == "TripletSampler":
            if not (isinstance(batch, list) and len(batch) == 2 and all(_is_int(b) and b > 0 for b in batch)):
                self.fail(f"{key}.batch_size", f"TripletSampler needs [P, K], two positive integers; got {batch!r}")
        elif not (_is_int(batch) and batch > 0):
            self.fail(f"{key}.batch_size", f"{sampler['type']} needs a positive integer; got {batch!r}")
        if st.startswith("fixed"):
            self.check_type(sampler, key, "frames_num_fixed", (int,))
        if st.startswith("unfixed"):
            self.check_type(sampler, key, "frames_num_min", (int,))
            self.check_type(sampler, key, "frames_num_max", (int,))
            if sampler["frames_num_min"] > sampler["frames_num_max"]:
                self.fail(f"{key}.frames_num_min", "must not exceed frames_num_max")
        for opt in ("frames_skip_num", "frames_all_limit"):
            self.check_type(sampler, key, opt, (int,), required=False)

    def check_transforms(self, cfg: Any, key: str) -> None:
        from .registry import TRANSFORMS

        if cfg is None:
            return
        if isinstance(cfg, list):
            for i, entry in enumerate(cfg):
                self.check_transforms(entry, f"{key}.{i}")
            return
        if not isinstance(cfg, dict) or "type" not in cfg:
            self.fail(key, f"a transform entry must be a mapping with 'type' (or null / a list), got {cfg!r}")
        self.check_name(TRANSFORMS, cfg["type"], f"{key}.type")
        if "trf_cfg" in cfg:
            self.check_transforms(cfg["trf_cfg"], f"{key}.trf_cfg")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _classes_in(module: Any, base: type) -> List[str]:
    return sorted(
        name for name, obj in vars(module).items()
        if inspect.isclass(obj) and issubclass(obj, base) and obj is not base and not name.startswith("_")
    )


def _optimizer_names() -> List[str]:
    import torch

    return _classes_in(torch.optim, torch.optim.Optimizer)


def _scheduler_names() -> List[str]:
    import torch

    base = getattr(torch.optim.lr_scheduler, "LRScheduler", None) or torch.optim.lr_scheduler._LRScheduler
    names = _classes_in(torch.optim.lr_scheduler, base)
    if "ReduceLROnPlateau" not in names and hasattr(torch.optim.lr_scheduler, "ReduceLROnPlateau"):
        names.append("ReduceLROnPlateau")
    return sorted(names)
