"""Synthetic dataset generation from a config's ``data_cfg.synthetic``: only into a missing or
empty root, never over a partition, with a marker that later runs compare.

On 19ba7d2 a mistyped dataset_root was silently filled with a fresh synthetic dataset (one
INFO line) and the existing partition file overwritten; an empty root was not generated
into; a root generated with other arguments was reused without a word.
"""
import json
import logging

import pytest

from fastposegait.data.autogen import MARKER_NAME, ensure_dataset, generator_arguments
from fastposegait.data.dataset import PoseDataset
from fastposegait.errors import ConfigError

SPEC = {"layout": "casia-b", "num_subjects": 4, "views": ["000", "090"], "types": ["nm-01", "nm-02"],
        "frames": [20, 24], "seed": 0}


def data_cfg(tmp_path, root="data", partition="partition.json", **spec):
    return {"dataset_root": str(tmp_path / root), "dataset_partition": str(tmp_path / partition),
            "synthetic": {**SPEC, **spec}}


def warnings_of(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_first_run_generates_with_a_warning_and_a_marker_later_runs_reuse(tmp_path, caplog):
    cfg = data_cfg(tmp_path)
    with caplog.at_level(logging.INFO, logger="fastposegait"):
        assert ensure_dataset(cfg) is True
    (warning,) = warnings_of(caplog)
    assert warning.startswith(f"data_cfg.dataset_root {tmp_path / 'data'} does not exist: generating a synthetic "
                              "dataset there from data_cfg.synthetic")
    assert "correct data_cfg.dataset_root" in warning
    marker = json.loads((tmp_path / "data" / MARKER_NAME).read_text())
    assert marker["arguments"] == generator_arguments(SPEC)
    assert marker["arguments"]["num_subjects"] == 4 and marker["arguments"]["joint_format"] == "coco"
    partition = tmp_path / "partition.json"
    assert json.loads(partition.read_text())["TRAIN_SET"]
    # the demo flow: later runs (after the packed cache appeared inside the root) reuse it
    PoseDataset(cfg["dataset_root"], cfg["dataset_partition"], training=True, cache=True)
    assert (tmp_path / "data" / ".fastposegait_cache").is_dir()
    before = partition.stat().st_mtime_ns
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fastposegait"):
        assert ensure_dataset(cfg) is False
        # arguments written differently, or that do not change the data, compare equal
        assert ensure_dataset(data_cfg(tmp_path, frames=(20, 24), workers=2, joint_format="coco")) is False
    assert warnings_of(caplog) == []
    assert partition.stat().st_mtime_ns == before


def test_an_existing_partition_is_never_overwritten(tmp_path):
    partition = tmp_path / "partition.json"
    partition.write_text('{"TRAIN_SET": ["real"], "TEST_SET": ["data"]}')
    cfg = data_cfg(tmp_path, root="dta")  # a typo of an existing dataset's root
    with pytest.raises(ConfigError) as info:
        ensure_dataset(cfg)
    msg = str(info.value)
    assert f"data_cfg.dataset_root '{tmp_path / 'dta'}' does not exist, but data_cfg.dataset_partition " \
           f"'{partition}' exists" in msg
    assert "If dataset_root is mistyped, correct it; to regenerate the synthetic dataset, delete" in msg
    assert partition.read_text() == '{"TRAIN_SET": ["real"], "TEST_SET": ["data"]}'
    assert not (tmp_path / "dta").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["partition.json"]  # no temporary folder left


def test_an_empty_root_is_generated_into(tmp_path):
    (tmp_path / "data").mkdir()
    assert ensure_dataset(data_cfg(tmp_path)) is True
    assert (tmp_path / "data" / MARKER_NAME).is_file() and (tmp_path / "data" / "001").is_dir()


def test_a_root_generated_with_other_arguments_is_an_error(tmp_path):
    ensure_dataset(data_cfg(tmp_path))
    with pytest.raises(ConfigError) as info:
        ensure_dataset(data_cfg(tmp_path, num_subjects=6, seed=1))
    msg = str(info.value)
    assert "data_cfg.synthetic does not describe the synthetic dataset in" in msg
    assert "num_subjects: 4 on disk, 6 in the config; seed: 0 on disk, 1 in the config" in msg
    assert f"delete '{tmp_path / 'data'}' and '{tmp_path / 'partition.json'}'" in msg


def test_a_root_without_marker_is_used_as_it_is(tmp_path):
    root = tmp_path / "data"
    (root / "001").mkdir(parents=True)  # real data, or written by the generator's command line
    (tmp_path / "partition.json").write_text("{}")
    assert ensure_dataset(data_cfg(tmp_path)) is False
    assert not (root / MARKER_NAME).exists() and (tmp_path / "partition.json").read_text() == "{}"
    (tmp_path / "partition.json").unlink()
    with pytest.raises(ConfigError, match="dataset_partition .* is missing although the synthetic dataset"):
        ensure_dataset(data_cfg(tmp_path))


def test_no_synthetic_section_does_nothing(tmp_path):
    assert ensure_dataset({"dataset_root": str(tmp_path / "x"), "dataset_partition": "p.json"}) is False
    assert not (tmp_path / "x").exists()
