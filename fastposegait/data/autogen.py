"""Generate a config's synthetic dataset on first use.

A ``data_cfg`` may carry a ``synthetic`` mapping (``layout`` plus generator arguments, e.g.
``{layout: casia-b, num_subjects: 40, seed: 0}``). When ``dataset_root`` does not exist yet,
rank 0 generates the dataset into a temporary folder next to it and renames it into place,
so an interrupted generation never leaves a half-written dataset that looks complete; the
partition JSON goes to ``dataset_partition``. Other ranks wait at a barrier.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError
from ..distributed import barrier, is_main_process

logger = logging.getLogger(__name__)

_PARTITION_TMP_NAME = "__partition__.json"


def ensure_dataset(data_cfg: Mapping[str, Any]) -> bool:
    """Generate the synthetic dataset described by ``data_cfg['synthetic']`` if its root is
    missing. Returns True when this call generated it."""
    spec = data_cfg.get("synthetic")
    if not spec:
        return False
    root = Path(data_cfg["dataset_root"])
    partition = Path(data_cfg["dataset_partition"])
    generated = False
    if is_main_process() and not root.exists():
        generated = True
        _generate(dict(spec), root, partition)
    elif is_main_process() and not partition.exists():
        raise ConfigError(
            f"data_cfg.dataset_partition {str(partition)!r} is missing although the synthetic dataset "
            f"{str(root)!r} exists; delete {str(root)!r} to regenerate both"
        )
    barrier()
    return generated


def _generate(spec: dict, root: Path, partition: Path) -> None:
    from . import synthetic

    layout = spec.pop("layout", "casia-b")
    tmp = root.parent / f".{root.name}.generating-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    logger.info("dataset_root %s does not exist: generating a synthetic %s dataset (%s)", root, layout, spec)
    try:
        summary = synthetic.generate_dataset(layout, tmp, partition_path=tmp / _PARTITION_TMP_NAME, **spec)
    except TypeError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ConfigError(f"data_cfg.synthetic: invalid generator arguments {spec} ({exc})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    os.replace(tmp, root)
    partition.parent.mkdir(parents=True, exist_ok=True)
    os.replace(root / _PARTITION_TMP_NAME, partition)
    if summary.probe_truth_path is not None and Path(summary.probe_truth_path).parent == tmp:
        logger.info("probe truth written inside %s", root)
    logger.info("synthetic dataset ready: %d subjects, %d sequences in %.1fs",
                summary.num_subjects, summary.num_sequences, summary.seconds)
