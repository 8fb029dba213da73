"""Configs: YAML files merged over ``configs/default.yaml``, command-line overrides, and the
typed, validated sections the runner reads.

Example::

    cfg = load_config("configs/gaitgraph2/gaitgraph2.yaml", ["trainer_cfg.total_iter=10"])
    config = Config.from_dict(cfg)          # or load_typed_config(...)
    config.trainer.total_iter               # 10
"""
from ..errors import ConfigError
from .loading import (apply_override, default_config_path, import_custom_modules, load_config, load_typed_config,
                      merge, parse_override, read_yaml)
from .sections import (EXTRA_TOP_LEVEL, SAMPLE_TYPES, SECTIONS, Config, DataSection, EvaluatorSection,
                       SamplerSection, SolverSection, TrainerSection)

__all__ = [
    "Config",
    "ConfigError",
    "DataSection",
    "EvaluatorSection",
    "EXTRA_TOP_LEVEL",
    "SAMPLE_TYPES",
    "SECTIONS",
    "SamplerSection",
    "SolverSection",
    "TrainerSection",
    "apply_override",
    "default_config_path",
    "import_custom_modules",
    "load_config",
    "load_typed_config",
    "merge",
    "parse_override",
    "read_yaml",
]
