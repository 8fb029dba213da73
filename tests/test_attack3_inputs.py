"""Hostile config inputs: each is refused with one ConfigError line naming the file (or the
override) and the problem, never a parser traceback or a silently chosen value."""
import re
from pathlib import Path

import pytest

from fastposegait.config import ConfigError, load_config, parse_override
from fastposegait.config.loading import read_yaml

MINIMAL = "model_cfg:\n  model: GaitGraph2\nloss_cfg:\n  type: SupConLoss_Lp\n  log_prefix: SupConLoss\n"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


def test_deeply_nested_config_is_one_error_naming_the_file(tmp_path):
    path = _write(tmp_path, MINIMAL + "trainer_cfg:\n  x: " + "[" * 100000 + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and "nested too deeply" in str(info.value)
    assert "\n" not in str(info.value)


def test_huge_integer_in_config_is_one_error_naming_the_file(tmp_path):
    path = _write(tmp_path, MINIMAL + "trainer_cfg:\n  total_iter: " + "1" * 5000 + "\n")
    with pytest.raises(ConfigError, match=r"integer is too long") as info:
        load_config(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("value, message", [("1" * 5000, "integer is too long"),
                                            ("[" * 100000, "nested too deeply"),
                                            ("{a: 1, a: 2}", "key 'a' is given twice")])
def test_hostile_override_values_are_one_short_error(value, message):
    with pytest.raises(ConfigError, match=message) as info:
        parse_override("trainer_cfg.total_iter=" + value)
    assert len(str(info.value)) < 400  # the value is cut, not echoed in full


def test_a_key_given_twice_names_the_file_key_and_both_lines(tmp_path):
    path = _write(tmp_path, MINIMAL + "optimizer_cfg:\n  solver: AdamW\n  lr: 0.005\n  lr: 0.5\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert text.startswith(str(path)) and "'lr'" in text and "lines 8 and 9" in text


def test_a_section_given_twice_names_both_lines(tmp_path):
    path = _write(tmp_path, MINIMAL + "optimizer_cfg:\n  lr: 0.005\n  weight_decay: 0.1\n"
                  "optimizer_cfg:\n  lr: 0.5\n")
    with pytest.raises(ConfigError, match=re.escape("key 'optimizer_cfg' is given twice in the same mapping "
                                                    "(lines 6 and 9)")):
        load_config(path)


def test_same_key_in_different_mappings_and_merge_keys_still_load(tmp_path):
    path = _write(tmp_path, "base: &b {lr: 1, x: 2}\nother:\n  <<: *b\n  lr: 3\nthird: {lr: 4}\n")
    assert read_yaml(path) == {"base": {"lr": 1, "x": 2}, "other": {"lr": 3, "x": 2}, "third": {"lr": 4}}


LAUNCHER_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@pytest.mark.parametrize("env, message", [
    ({"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"},
     "WORLD_SIZE=2 is set but MASTER_ADDR and MASTER_PORT are not: launch multi-process runs with torchrun"),
    ({"WORLD_SIZE": "two", "RANK": "0"}, "environment variable WORLD_SIZE='two' is not an integer >= 1"),
    ({"WORLD_SIZE": "2", "RANK": "x"}, "environment variable RANK='x' is not an integer >= 0"),
    ({"WORLD_SIZE": "2", "RANK": "2", "MASTER_ADDR": "h", "MASTER_PORT": "1"}, "RANK=2 is not below WORLD_SIZE=2"),
])
def test_launcher_variables_without_a_launcher_are_one_device_error(monkeypatch, env, message):
    from fastposegait.distributed import detect_env
    from fastposegait.errors import DeviceError
    for name in LAUNCHER_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(DeviceError, match=re.escape(message)):
        detect_env()


def test_launcher_variables_of_a_real_launch_are_read(monkeypatch):
    from fastposegait.distributed import detect_env
    for name, value in {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
                        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}.items():
        monkeypatch.setenv(name, value)
    env = detect_env()
    assert (env.rank, env.world_size, env.local_rank, env.local_world_size) == (3, 4, 1, 2)
