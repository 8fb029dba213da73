"""Generate a config's synthetic dataset on first use, and never over existing data.

A ``data_cfg`` may carry a ``synthetic`` mapping (``layout`` plus generator arguments, e.g.
``{layout: casia-b, num_subjects: 40, seed: 0}``). Rank 0 then, before the run:

* **generates** the dataset when ``dataset_root`` does not exist or is an empty folder: into a
  temporary folder next to it, renamed into place when complete (an interrupted generation
  never leaves a half-written dataset that looks complete), with a marker file
  ``.fastposegait_synthetic.json`` holding the generator arguments; the partition JSON goes
  to ``dataset_partition``. A WARNING line says where and why, so a mistyped
  ``dataset_root`` is visible.
* **refuses to overwrite a partition**: when ``dataset_partition`` already exists, nothing is
  generated and a :class:`ConfigError` names both paths (a partition without its dataset
  usually means ``dataset_root`` is mistyped).
* **reuses** an existing root. When it holds a marker whose generator arguments differ from
  the config's ``synthetic`` section, that is a :class:`ConfigError` (the data on disk is not
  the data the config describes); a root without a marker's arguments (real data, or a
  dataset written by ``python -m fastposegait.data.synthetic``, whose marker names only the
  layout) is used as it is.

Other ranks wait at a barrier. Arguments that do not change the data (``workers``) are left
out of the comparison; arguments left at the generator's default compare equal to the same
value written out.
"""
from __future__ import annotations

import inspect
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

from ..distributed import barrier, is_main_process
from ..errors import ConfigError

logger = logging.getLogger(__name__)

_PARTITION_TMP_NAME = "__partition__.json"
#: the file a generated root holds: the generator arguments it was made with
MARKER_NAME = ".fastposegait_synthetic.json"
#: generator arguments that do not change the generated files
_NOT_COMPARED = ("root", "partition_path", "workers", "overwrite")


def ensure_dataset(data_cfg: Mapping[str, Any]) -> bool:
    """Generate the synthetic dataset described by ``data_cfg['synthetic']`` if its root is
    missing or empty (see the module docstring for the checks). Returns True when this call
    generated it."""
    spec = data_cfg.get("synthetic")
    if not spec:
        return False
    root = Path(data_cfg["dataset_root"])
    partition = Path(data_cfg["dataset_partition"])
    generated = False
    if is_main_process():
        state = _root_state(root)
        if state != "present":
            _refuse_partition_overwrite(root, partition, state)
            logger.warning(
                "data_cfg.dataset_root %s %s: generating a synthetic dataset there from data_cfg.synthetic %s "
                "(partition: %s). If you meant existing data, stop and correct data_cfg.dataset_root",
                root, state, dict(spec), partition,
            )
            _generate(dict(spec), root, partition)
            generated = True
        else:
            _check_marker(root, partition, spec)
            if not partition.exists():
                raise ConfigError(
                    f"data_cfg.dataset_partition {str(partition)!r} is missing although the synthetic dataset "
                    f"{str(root)!r} exists; delete {str(root)!r} to regenerate both"
                )
    barrier()
    return generated


def _root_state(root: Path) -> str:
    """``"does not exist"``, ``"is an empty folder"`` or ``"present"``."""
    if not root.exists():
        return "does not exist"
    if root.is_dir() and not any(root.iterdir()):
        return "is an empty folder"
    return "present"


def _refuse_partition_overwrite(root: Path, partition: Path, state: str) -> None:
    if partition.exists():
        raise ConfigError(
            f"data_cfg.dataset_root {str(root)!r} {state}, but data_cfg.dataset_partition {str(partition)!r} "
            "exists: generating the synthetic dataset (data_cfg.synthetic) would overwrite that partition, so "
            "nothing was generated. If dataset_root is mistyped, correct it; to regenerate the synthetic "
            f"dataset, delete {str(partition)!r}"
        )


def generator_arguments(spec: Mapping[str, Any]) -> Dict[str, Any]:
    """The arguments that decide the generated files: ``layout`` and every argument of that
    layout's generator, the config's value or else the generator's default, as JSON values
    (``workers`` and the output paths left out)."""
    from . import synthetic

    args: Dict[str, Any] = {"layout": spec.get("layout", "casia-b")}
    generator = getattr(synthetic, f"generate_{str(args['layout']).replace('-', '_')}", None)
    if generator is not None:
        for name, param in inspect.signature(generator).parameters.items():
            if name not in _NOT_COMPARED and param.default is not inspect.Parameter.empty:
                args[name] = param.default
    args.update({k: v for k, v in spec.items() if k not in _NOT_COMPARED})
    return json.loads(json.dumps(args, default=repr))


def _read_marker(root: Path) -> Optional[Dict[str, Any]]:
    path = root / MARKER_NAME
    if not path.is_file():
        return None
    try:
        with open(path, "r", encoding="utf-8") as f:
            marker = json.load(f)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable synthetic-dataset marker ({exc}); delete {str(root)!r} and "
                          "its partition to regenerate the dataset") from None
    arguments = marker.get("arguments") if isinstance(marker, dict) else None
    return arguments if isinstance(arguments, dict) else None


def _check_marker(root: Path, partition: Path, spec: Mapping[str, Any]) -> None:
    """An error when ``root`` was generated with other arguments than ``spec``."""
    on_disk = _read_marker(root)
    if on_disk is None:
        logger.debug("%s holds no %s: used as it is (data_cfg.synthetic not compared)", root, MARKER_NAME)
        return
    wanted = generator_arguments(spec)
    differ = sorted(k for k in set(on_disk) | set(wanted) if on_disk.get(k) != wanted.get(k))
    if differ:
        details = "; ".join(f"{k}: {json.dumps(on_disk.get(k))} on disk, {json.dumps(wanted.get(k))} in the config"
                            for k in differ)
        raise ConfigError(
            f"data_cfg.synthetic does not describe the synthetic dataset in {str(root)!r} ({details}). To use "
            f"the config's arguments, delete {str(root)!r} and {str(partition)!r} (they are regenerated), or "
            "point data_cfg.dataset_root / dataset_partition elsewhere; to use the data on disk, set "
            "data_cfg.synthetic to its arguments"
        )


def _generate(spec: dict, root: Path, partition: Path) -> None:
    from . import synthetic

    arguments = generator_arguments(spec)
    layout = spec.pop("layout", "casia-b")
    tmp = root.parent / f".{root.name}.generating-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        summary = synthetic.generate_dataset(layout, tmp, partition_path=tmp / _PARTITION_TMP_NAME, **spec)
        with open(tmp / MARKER_NAME, "w", encoding="utf-8") as f:
            json.dump({"generator": "fastposegait.data.synthetic", "arguments": arguments}, f, indent=2)
    except TypeError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ConfigError(f"data_cfg.synthetic: invalid generator arguments {spec} ({exc})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if root.is_dir():
        root.rmdir()  # empty (checked): the complete dataset takes its place
    os.replace(tmp, root)
    partition.parent.mkdir(parents=True, exist_ok=True)
    os.replace(root / _PARTITION_TMP_NAME, partition)
    if summary.probe_truth_path is not None and Path(summary.probe_truth_path).parent == tmp:
        logger.info("probe truth written inside %s", root)
    logger.info("synthetic dataset ready: %d subjects, %d sequences in %.1fs",
                summary.num_subjects, summary.num_sequences, summary.seconds)
