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

import contextlib
import copy
import importlib
import importlib.util
import sys
import traceback
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

import yaml

from ..errors import ConfigError
from .sections import EXTRA_TOP_LEVEL, SECTIONS, Config, resolved_test_dataset_name
from .solvers import inherited_unused_keys, optimizer_classes, scheduler_classes


class _DuplicateKey(yaml.YAMLError):
    """A key written twice in one mapping (YAML would silently keep the last one)."""

    def __init__(self, key: Any, first_line: int, second_line: int) -> None:
        super().__init__(f"key {key!r} is given twice in one mapping (lines {first_line} and {second_line})")
        self.key, self.first_line, self.second_line = key, first_line, second_line


class StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping.

    Plain YAML keeps the last value, so a section or key pasted twice silently replaces the
    first (``lr`` written twice trains with the second; a second ``optimizer_cfg`` drops
    the first one's keys). Merge keys (``<<``) keep their usual meaning."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> Dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: Dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=False)
                try:
                    hash(key)
                except TypeError:
                    continue  # the base class reports an unhashable key
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise _DuplicateKey(key, seen[key], line)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


StrictLoader.add_constructor("tag:yaml.org,2002:map", StrictLoader.construct_yaml_map)


def _load_yaml(stream: Any) -> Any:
    """Parse YAML text with :class:`StrictLoader` (safe: no Python objects)."""
    return yaml.load(stream, Loader=StrictLoader)  # noqa: S506 - StrictLoader is a SafeLoader


def _unreadable_value(exc: BaseException) -> str:
    """Say, in a few words, why a YAML document could not be turned into values: nested too
    deep for the parser, or an integer too long for Python to convert."""
    if isinstance(exc, RecursionError):
        return "nested too deeply to read (RecursionError); flatten the lists/mappings"
    text = " ".join(str(exc).split())
    if "integer string conversion" in text:
        return f"an integer is too long to convert ({text.split(';')[0]}); write a sensible number"
    return f"a value cannot be converted ({text})"


def default_config_path() -> Path:
    """The defaults every config is merged over: ``default.yaml`` of this package (shipped
    with it, so an installed package runs from any folder; ``configs/default.yaml`` of the
    repository links to it)."""
    path = Path(__file__).with_name("default.yaml")
    if not path.is_file():
        raise ConfigError(f"{path} is missing: the package is incomplete; reinstall it (pip install .)")
    return path


def read_yaml(path: str | Path) -> Dict[str, Any]:
    """Read a YAML mapping, turning parse errors into a :class:`ConfigError` with the line."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file {str(path)!r} is a folder; pass a YAML file to --cfgs")
    if not path.is_file():
        what = "is not a regular file (a device, a pipe or a socket)" if path.exists() else "does not exist"
        raise ConfigError(f"config file {str(path)!r} {what}; pass an existing YAML file to --cfgs")
    try:
        with open(path, "r", encoding="utf-8") as f:
            data = _load_yaml(f)
    except _DuplicateKey as exc:
        raise ConfigError(f"{path}: key {exc.key!r} is given twice in the same mapping (lines "
                          f"{exc.first_line} and {exc.second_line}); keep one of them") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
                          "save the config as UTF-8") from None
    except (RecursionError, ValueError, OverflowError) as exc:
        raise ConfigError(f"{path}: {_unreadable_value(exc)}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
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
        value = _load_yaml(raw) if raw.strip() else ""
    except _DuplicateKey as exc:
        raise ConfigError(f"command-line override {_short(text)}: key {exc.key!r} is given twice in the "
                          "value; keep one of them") from None
    except (RecursionError, ValueError, OverflowError) as exc:
        raise ConfigError(f"command-line override {_short(text)}: {_unreadable_value(exc)}") from None
    except yaml.YAMLError as exc:
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise ConfigError(f"command-line override {text!r}: the value is not valid YAML ({problem}); "
                          "quote it for the shell, e.g. 'key=[1, 2]'") from None
    return parts, value


def _short(text: str, limit: int = 80) -> str:
    """``repr`` of an override, cut to ``limit`` characters so a hostile value stays one line."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


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
            with _user_code(entry, config_path):
                try:
                    spec.loader.exec_module(module)  # type: ignore[union-attr]
                except BaseException:
                    del sys.modules[name]
                    raise
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))
            try:
                with _user_code(entry, config_path):
                    importlib.import_module(entry)
            except ModuleNotFoundError as exc:
                raise ConfigError(f"{config_path}: custom_imports: cannot import {entry!r} ({exc})") from None


@contextlib.contextmanager
def _user_code(entry: str, config_path: Optional[Path]) -> Iterator[None]:
    """Report an error raised while importing a user's module in one line that says where in
    the user's file it happened (a missing module stays for the caller to report)."""
    try:
        yield
    except ModuleNotFoundError:
        raise
    except SyntaxError as exc:
        raise ConfigError(f"{config_path}: custom_imports: {exc.filename}:{exc.lineno}: syntax error: "
                          f"{exc.msg}") from None
    except Exception as exc:  # noqa: BLE001 - the user's code failed; say where, not a torch-deep traceback
        frames = traceback.extract_tb(exc.__traceback__)
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else entry
        raise ConfigError(f"{config_path}: custom_imports: importing {entry!r} raised "
                          f"{type(exc).__name__} at {where}: {' '.join(str(exc).split())}") from None


def load_config(
    path: str | Path,
    overrides: Sequence[str] = (),
    default_path: Optional[str | Path] = None,
) -> Dict[str, Any]:
    """Read ``path``, merge it over the defaults, apply overrides, import custom modules and
    validate. Returns the resolved config as a plain dict (upstream's shape); its typed form
    is :meth:`Config.from_dict` (or :func:`load_typed_config`)."""
    return load_typed_config(path, overrides, default_path).raw


def load_typed_config(
    path: str | Path,
    overrides: Sequence[str] = (),
    default_path: Optional[str | Path] = None,
) -> Config:
    """:func:`load_config`, returning the validated :class:`Config` (its ``raw`` is the dict)."""
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
    data_cfg = cfg.get("data_cfg")
    if isinstance(data_cfg, dict):
        data_cfg["test_dataset_name"] = resolved_test_dataset_name(data_cfg)
    custom = cfg.get("custom_imports") or []
    if not isinstance(custom, list):
        raise ConfigError(f"{path}: custom_imports must be a list of module names or .py paths")
    import_custom_modules(custom, path)
    config = Config.from_dict(cfg, path, overridden)
    _drop_inherited_unused(cfg, defaults, user, overridden, config)
    return Config.from_dict(cfg, path, overridden, report=False)


def _drop_inherited_unused(cfg: Dict[str, Any], defaults: Mapping[str, Any], user: Mapping[str, Any],
                           overridden: Iterable[str], config: Config) -> None:
    """Remove the optimizer/scheduler keys that ``default.yaml`` supplied and the chosen class
    does not take (the default SGD's ``momentum`` when a config picks Adam): they were never
    the user's choice, so they go silently. A key the user wrote stays, and building the
    class warns about it."""
    for section, solver, classes in (("optimizer_cfg", config.optimizer, optimizer_classes()),
                                     ("scheduler_cfg", config.scheduler, scheduler_classes())):
        written = set(user.get(section) or {}) | {k.split(".", 1)[1] for k in overridden
                                                   if k.startswith(section + ".")}
        for key in inherited_unused_keys(solver, classes, defaults.get(section) or {}, written):
            del cfg[section][key]
