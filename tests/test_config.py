"""Config loading: merge, overrides, validation messages."""
import os
import textwrap
from pathlib import Path

import pytest

from fastposegait.config import ConfigError, load_config, load_typed_config, merge, parse_override

REPO = Path(__file__).resolve().parents[1]
GG2 = REPO / "configs" / "gaitgraph2" / "gaitgraph2.yaml"


def write(tmp_path, text, name="cfg.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


MINIMAL = """
model_cfg:
  model: GaitGraph2
loss_cfg:
  type: SupConLoss_Lp
  log_prefix: SupConLoss
"""


def with_losses(loss_yaml):
    """MINIMAL with its loss_cfg section replaced by `loss_yaml`."""
    return MINIMAL.replace("loss_cfg:\n  type: SupConLoss_Lp\n  log_prefix: SupConLoss\n", loss_yaml)



def test_merge_nested_dicts_merge_and_lists_replace():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 2}
    user = {"a": {"y": [3], "z": 4}, "c": 5}
    out = merge(base, user)
    assert out == {"a": {"x": 1, "y": [3], "z": 4}, "b": 2, "c": 5}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 2}  # not mutated


def test_load_merges_over_defaults(tmp_path):
    cfg = load_config(write(tmp_path, MINIMAL))
    assert cfg["trainer_cfg"]["total_iter"] == 80000  # from default.yaml
    assert cfg["loss_cfg"]["type"] == "SupConLoss_Lp"
    assert cfg["loss_cfg"]["margin"] == 0.2  # mapping-form loss_cfg inherits default keys
    assert cfg["data_cfg"]["test_dataset_name"] == cfg["data_cfg"]["dataset_name"]


def test_overrides_parse_yaml_values_and_index_lists(tmp_path):
    cfg = load_config(write(tmp_path, MINIMAL), [
        "trainer_cfg.total_iter=12", "trainer_cfg.sampler.batch_size=[4, 2]",
        "data_cfg.dataset_name=Mine", "trainer_cfg.transform.0.type=NoOperation",
        "optimizer_cfg.lr=0.001",
    ])
    assert cfg["trainer_cfg"]["total_iter"] == 12
    assert cfg["trainer_cfg"]["sampler"]["batch_size"] == [4, 2]
    assert cfg["data_cfg"]["dataset_name"] == "Mine"
    assert cfg["trainer_cfg"]["transform"][0]["type"] == "NoOperation"
    assert cfg["optimizer_cfg"]["lr"] == pytest.approx(1e-3)


def test_parse_override_errors():
    with pytest.raises(ConfigError, match="must look like key.sub=value"):
        parse_override("trainer_cfg.total_iter")
    assert parse_override("a.b=[1, 2]") == (["a", "b"], [1, 2])


@pytest.mark.parametrize("override, message", [
    ("trainer_cfgg.total_iter=3", "unknown section 'trainer_cfgg'"),
    ("trainer_cfg.total_iter=abc", "trainer_cfg.total_iter (set on the command line): must be int, got 'abc'"),
    ("trainer_cfg.total_iter=0", "trainer_cfg.total_iter (set on the command line): must be a positive integer"),
    ("trainer_cfg.transform.5.type=X", "'5' is not a valid index of a list of 1 items"),
    ("trainer_cfg.total_iter.x=1", "trainer_cfg.total_iter holds a int, so it has no sub-keys"),
])
def test_override_errors(tmp_path, override, message):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, MINIMAL), [override])
    assert message in str(info.value)


def test_unknown_section(tmp_path):
    path = write(tmp_path, MINIMAL + "trainer:\n  total_iter: 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: unknown top-level section(s) 'trainer'")
    assert "valid sections: data_cfg" in str(info.value)


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, "model_cfg:\n  model: [GaitGraph2\n")
    with pytest.raises(ConfigError, match=r"cfg.yaml: malformed YAML at line \d+"):
        load_config(path)


def test_missing_file():
    with pytest.raises(ConfigError, match="does not exist; pass an existing YAML file to --cfgs"):
        load_config("no/such/config.yaml")


def test_unknown_model_lists_valid_and_closest(tmp_path):
    path = write(tmp_path, MINIMAL.replace("model: GaitGraph2", "model: GaitGrap2"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert "model_cfg.model: unknown model 'GaitGrap2' (did you mean 'GaitGraph2'?)" in msg
    assert "Valid model names:" in msg and "GaitGraph2" in msg


@pytest.mark.parametrize("override, message", [
    ("loss_cfg.type=SupCon", "loss_cfg.type (set on the command line): unknown loss 'SupCon'"),
    ("trainer_cfg.sampler.type=TripletSampeler", "unknown sampler 'TripletSampeler' (did you mean 'TripletSampler'?)"),
    ("evaluator_cfg.eval_func=identification", "evaluator_cfg.eval_func (set on the command line): unknown evaluator 'identification'"),
    ("trainer_cfg.transform.0.type=SkeletonInputt", "unknown transform 'SkeletonInputt' (did you mean 'SkeletonInput'?)"),
    ("optimizer_cfg.solver=Adamw", "'Adamw' is not a class in torch.optim (did you mean 'AdamW'?)"),
    ("scheduler_cfg.scheduler=OneCycle", "'OneCycle' is not a class in torch.optim.lr_scheduler"),
    ("trainer_cfg.sampler.batch_size=8", "TripletSampler needs [P, K], two positive integers; got 8"),
    ("trainer_cfg.sampler.sample_type=fixed", "must be one of fixed_ordered"),
    ("evaluator_cfg.metric=l2", "evaluator_cfg.metric (set on the command line): must be 'euc' or 'cos'"),
    ("data_cfg.cache=yes please", "data_cfg.cache (set on the command line): must be bool"),
    ("trainer_cfg.restore_hint=[1]", "trainer_cfg.restore_hint (set on the command line): must be int or str"),
    ("model_cfg.model=null", "model_cfg.model (set on the command line): is missing"),
    ("trainer_cfg.sampler.frames_num_fixed=0", "trainer_cfg.sampler.frames_num_fixed (set on the command line): "
                                               "must be a positive integer, got 0"),
    ("evaluator_cfg.sampler.frames_skip_num=-1", "evaluator_cfg.sampler.frames_skip_num (set on the command line): "
                                                "must be >= 0"),
])
def test_validation_messages(tmp_path, override, message):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, MINIMAL), [override])
    assert message in str(info.value)


def test_list_loss_cfg_entries_are_checked(tmp_path):
    text = with_losses("loss_cfg:\n  - type: TripletLoss\n    log_prefix: triplet\n  - type: Nope\n    log_prefix: x\n")
    with pytest.raises(ConfigError, match=r"loss_cfg.1.type: unknown loss 'Nope'"):
        load_config(write(tmp_path, text))


def test_gaitgraph2_config_loads_with_upstream_values():
    cfg = load_config(GG2)
    assert cfg["model_cfg"]["model"] == "GaitGraph2"
    assert cfg["trainer_cfg"]["sampler"]["batch_size"] == 768
    assert cfg["optimizer_cfg"]["solver"] == "AdamW"
    assert cfg["scheduler_cfg"]["total_steps"] == 500
    assert cfg["evaluator_cfg"]["metric"] == "cos"


def test_custom_imports_register_user_components(tmp_path, monkeypatch):
    module = tmp_path / "my_ext.py"
    module.write_text(textwrap.dedent("""
        from fastposegait.registry import TRANSFORMS
        from fastposegait.data.transforms import Transform

        @TRANSFORMS.register("TestOnlyDouble")
        class TestOnlyDouble(Transform):
            def __call__(self, seq, rng):
                return seq * 2
    """))
    path = write(tmp_path, MINIMAL + "custom_imports: [my_ext.py]\ntrainer_cfg:\n  transform:\n    - type: TestOnlyDouble\n")
    cfg = load_config(path)
    assert cfg["trainer_cfg"]["transform"] == [{"type": "TestOnlyDouble"}]
    bad = write(tmp_path, MINIMAL + "custom_imports: [not_a_module_xyz]\n", name="bad.yaml")
    with pytest.raises(ConfigError, match="custom_imports: cannot import 'not_a_module_xyz'"):
        load_config(bad)


def test_test_dataset_name_defaults_to_dataset_name_and_remove_no_gallery_warns(tmp_path, caplog):
    import logging

    path = write(tmp_path, MINIMAL + "data_cfg:\n  dataset_name: OUMVLP\n  test_dataset_name: null\n"
                                     "  remove_no_gallery: true\n")
    with caplog.at_level(logging.WARNING, logger="fastposegait"):
        cfg = load_config(path)
    assert cfg["data_cfg"]["test_dataset_name"] == "OUMVLP"  # upstream would say CASIA-B
    assert "remove_no_gallery is accepted for compatibility but ignored" in caplog.text


# ------------------------------------------------------------------ typed sections


def test_default_yaml_holds_the_value_of_every_field_without_a_python_default():
    import dataclasses

    import yaml

    from fastposegait.config import DataSection, EvaluatorSection, SamplerSection, TrainerSection
    from fastposegait.data.frames import FrameSampler

    defaults = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    samplers = [defaults["trainer_cfg"]["sampler"], defaults["evaluator_cfg"]["sampler"]]
    sections = [(DataSection, defaults["data_cfg"]), (TrainerSection, defaults["trainer_cfg"]),
                (EvaluatorSection, defaults["evaluator_cfg"])]
    sections += [(cls, values) for values in samplers for cls in (SamplerSection, FrameSampler)]
    for cls, values in sections:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if cls is SamplerSection:  # its frame keys are FrameSampler's fields (checked next)
            del fields["frames"]
        required = {n for n, f in fields.items()
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        assert required <= set(values), (cls.__name__, sorted(required - set(values)))
        # a Python default only ever means "not set": None (or no extra sampler options)
        for name, f in fields.items():
            if name not in required:
                assert (f.default is None) or (name == "options" and f.default_factory() == {}), (cls.__name__, name)
        if cls not in (SamplerSection, FrameSampler):  # samplers may carry the sampler's own arguments
            assert set(values) <= set(fields), (cls.__name__, sorted(set(values) - set(fields)))


def test_typed_config_reads_the_resolved_values(tmp_path):
    from fastposegait.config import Config, load_typed_config

    config = load_typed_config(GG2, ["trainer_cfg.total_iter=7", "data_cfg.num_workers=3"])
    assert config.trainer.total_iter == 7 and config.data.num_workers == 3
    assert config.trainer.sampler.batch_size == 768 and config.trainer.sampler.frames.sample_type == "fixed_ordered"
    assert config.trainer.sampler.frames.frames_num_fixed == 60
    assert config.evaluator.metric == "cos" and config.evaluator.max_sequences_per_call is None
    assert config.optimizer.name == "AdamW" and config.scheduler.kwargs["total_steps"] == 500
    assert config.data.test_dataset_name == "CASIA-B" and config.data.cache_dir is None
    assert config.raw["trainer_cfg"]["total_iter"] == 7
    again = Config.from_dict(config.raw, report=False)
    assert again.trainer == config.trainer and again.data == config.data


@pytest.mark.parametrize("override, key, hint", [
    ("trainer_cfg.totl_iter=2", "trainer_cfg.totl_iter", "did you mean 'total_iter'?"),
    ("data_cfg.num_worker=2", "data_cfg.num_worker", "did you mean 'num_workers'?"),
    ("evaluator_cfg.metrc=cos", "evaluator_cfg.metrc", "did you mean 'metric'?"),
])
def test_unknown_keys_in_a_section_are_errors_naming_the_closest_key(tmp_path, override, key, hint):
    # 19ba7d2 logged a warning and trained with the default value
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, MINIMAL), [override])
    msg = str(info.value)
    assert f"{key} (set on the command line): unknown key ({hint}). Valid keys: " in msg
    valid = msg.split("Valid keys: ")[1]
    assert key.split(".")[1].rstrip("_") not in valid.split(", ")


def test_unknown_key_written_in_the_file_names_the_file(tmp_path):
    path = write(tmp_path, MINIMAL + "trainer_cfg:\n  totl_iter: 2\n")
    with pytest.raises(ConfigError, match=r"cfg.yaml: trainer_cfg.totl_iter: unknown key \(did you mean 'total_iter'\?\)"):
        load_config(path)


#: every key of the original FastPoseGait / OpenGait data_cfg, trainer_cfg and evaluator_cfg
UPSTREAM_KEYS = {
    "data_cfg": ["dataset_name", "dataset_root", "dataset_partition", "num_workers", "cache", "frame_threshold",
                 "data_in_use", "remove_no_gallery", "test_dataset_name"],
    "trainer_cfg": ["enable_float16", "fix_BN", "with_test", "log_iter", "restore_ckpt_strict", "optimizer_reset",
                    "scheduler_reset", "restore_hint", "save_iter", "save_name", "sync_BN", "total_iter", "sampler",
                    "transform", "find_unused_parameters"],
    "evaluator_cfg": ["enable_float16", "restore_ckpt_strict", "restore_hint", "save_name", "eval_func", "sampler",
                      "transform", "metric", "cross_view_gallery"],
}


def test_every_upstream_section_key_is_valid(tmp_path):
    import yaml

    defaults = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    sections = {}
    for section, keys in UPSTREAM_KEYS.items():
        values = {k: defaults[section].get(k) for k in keys}
        if section == "data_cfg":
            values.update(data_in_use=[True], remove_no_gallery=False, test_dataset_name="CASIA-B")
        sections[section] = values
    path = write(tmp_path, MINIMAL + yaml.safe_dump(sections))
    cfg = load_config(path)
    for section, keys in UPSTREAM_KEYS.items():
        assert set(keys) <= set(cfg[section])


SHIPPED_CONFIGS = sorted(p for p in [*(REPO / "configs").rglob("*.yaml"), *(REPO / "examples").rglob("*.yaml")]
                         if p.name != "default.yaml")


@pytest.mark.parametrize("path", SHIPPED_CONFIGS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_config_loads(path, monkeypatch):
    monkeypatch.chdir(REPO)  # custom_imports paths are relative to the working directory
    config = load_typed_config(path)
    assert config.trainer.total_iter > 0


@pytest.mark.parametrize("text, override, message", [
    # PyYAML 1.1 needs a dot in the mantissa: 5e-3 is the string '5e-3'
    ("optimizer_cfg:\n  solver: Adam\n  lr: 5e-3\n", None,
     "optimizer_cfg.lr: must be a number, got '5e-3' (str); YAML reads 5e-3 as text, write 5.0e-3"),
    ("", "optimizer_cfg.lr=fast", "optimizer_cfg.lr (set on the command line): must be a number, got 'fast' (str)"),
    ("", "optimizer_cfg.lr=-1", "optimizer_cfg.lr (set on the command line): must not be negative, got -1"),
    ("", "optimizer_cfg.weight_decay=-0.1", "optimizer_cfg.weight_decay (set on the command line): must not be negative"),
    ("", "scheduler_cfg.max_lr=1e-2", "scheduler_cfg.max_lr (set on the command line): must be a number or a list "
                                      "of numbers, got '1e-2' (str); YAML reads 1e-2 as text, write 1.0e-2"),
    ("", "scheduler_cfg.total_steps=100", "scheduler_cfg.total_steps (set on the command line): OneCycleLR lasts "
                                          "100 steps but trainer_cfg.total_iter is 80000"),
    ("scheduler_cfg:\n  scheduler: OneCycleLR\n  max_lr: 0.01\n  total_steps: null\n  epochs: 10\n"
     "  steps_per_epoch: 50\n", "trainer_cfg.total_iter=600",
     "scheduler_cfg.epochs: OneCycleLR lasts 500 steps but trainer_cfg.total_iter (set on the command line) is 600"),
    ("scheduler_cfg:\n  scheduler: ReduceLROnPlateau\n", None,
     "scheduler_cfg.scheduler: ReduceLROnPlateau needs a validation metric at each step"),
    ("", "trainer_cfg.restore_hint=-5", "trainer_cfg.restore_hint (set on the command line): must be 0 (no restore), "
                                        "a positive iteration or a checkpoint path, got -5"),
    ("", "evaluator_cfg.restore_hint=-5", "evaluator_cfg.restore_hint (set on the command line): must be 0"),
])
def test_solver_and_restore_values_are_checked_at_load(tmp_path, text, override, message):
    # 19ba7d2 loaded each of these; training then failed in torch (TypeError, ValueError at the
    # first step or at step total_steps + 1) or looked for a checkpoint named x--0005.pt
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, MINIMAL + text), [override] if override else [])
    assert message in str(info.value)


def test_valid_solver_values_still_load(tmp_path):
    cfg = load_config(write(tmp_path, MINIMAL), ["optimizer_cfg.lr=5.0e-3", "optimizer_cfg.weight_decay=0",
                                                 "scheduler_cfg.total_steps=80000", "trainer_cfg.restore_hint=0"])
    assert cfg["optimizer_cfg"]["lr"] == pytest.approx(5e-3)
    step = MINIMAL + "scheduler_cfg:\n  scheduler: MultiStepLR\n  milestones: [10, 20]\n  gamma: 0.5\n"
    cfg = load_config(write(tmp_path, step, name="step.yaml"), ["trainer_cfg.restore_hint=out/x.pt"])
    assert cfg["scheduler_cfg"]["milestones"] == [10, 20]
    with pytest.raises(ConfigError, match=r"scheduler_cfg.milestones: must be a list of numbers, got 'ten'"):
        load_config(write(tmp_path, step.replace("[10, 20]", "ten"), name="bad.yaml"))


def test_inherited_optimizer_keys_the_solver_does_not_take_are_dropped(tmp_path):
    adam = MINIMAL + "optimizer_cfg:\n  solver: Adam\n  lr: 0.001\n"
    cfg = load_config(write(tmp_path, adam))
    assert cfg["optimizer_cfg"] == {"solver": "Adam", "lr": 0.001, "weight_decay": 5.0e-4}
    # a key the user wrote is kept (and warned about when the optimizer is built)
    cfg = load_config(write(tmp_path, adam + "  momentum: 0.5\n", name="mine.yaml"))
    assert cfg["optimizer_cfg"]["momentum"] == 0.5
    cfg = load_config(write(tmp_path, adam, name="cli.yaml"), ["optimizer_cfg.momentum=0.7"])
    assert cfg["optimizer_cfg"]["momentum"] == 0.7
    # the same for a scheduler that does not take OneCycleLR's defaults
    step = MINIMAL + "scheduler_cfg:\n  scheduler: MultiStepLR\n  milestones: [10]\n"
    cfg = load_config(write(tmp_path, step, name="step.yaml"))
    assert cfg["scheduler_cfg"] == {"scheduler": "MultiStepLR", "milestones": [10]}


@pytest.mark.parametrize("overrides, key, message", [
    (["optimizer_cfg.lr=.nan"], "optimizer_cfg.lr", "must be a finite number, got nan"),
    (["scheduler_cfg.max_lr=.inf"], "scheduler_cfg.max_lr", "must be a finite number, got inf"),
    (["optimizer_cfg.weight_decay=.nan"], "optimizer_cfg.weight_decay", "must be a finite number"),
    (["optimizer_cfg.solver=Adam", "optimizer_cfg.betas=[0.9, 1.5]"], "optimizer_cfg",
     "torch.optim.Adam refuses these settings: ValueError: Invalid beta parameter at index 1: 1.5"),
    (["optimizer_cfg.eps=-1.0", "optimizer_cfg.solver=Adam"], "optimizer_cfg", "Invalid epsilon value: -1.0"),
    (["optimizer_cfg.momentum=-1.0"], "optimizer_cfg", "Invalid momentum value: -1.0"),
    (["scheduler_cfg.pct_start=1.5"], "scheduler_cfg", "Expected float between 0 and 1 pct_start, but got 1.5"),
    (["scheduler_cfg.scheduler=StepLR"], "scheduler_cfg", "refuses these settings (with optimizer SGD): TypeError"),
    (["scheduler_cfg.scheduler=LambdaLR"], "scheduler_cfg", "refuses these settings"),
    (["optimizer_cfg.solver=LBFGS"], "optimizer_cfg", "torch.optim.LBFGS refuses these settings"),
    (["optimizer_cfg.solver=SparseAdam"], "optimizer_cfg", "torch.optim.SparseAdam refuses these settings"),
])
def test_solver_settings_torch_refuses_are_one_error_at_load(tmp_path, overrides, key, message):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, MINIMAL), overrides)
    text = str(info.value)
    assert f"{key}" in text and message in text and "\n" not in text


@pytest.mark.parametrize("override, key", [
    ("data_cfg.dataset_name=../../../etc", "data_cfg.dataset_name"),
    ("trainer_cfg.save_name=../../x", "trainer_cfg.save_name"),
    ("evaluator_cfg.save_name=a/b", "evaluator_cfg.save_name"),
    ("trainer_cfg.save_name=..", "trainer_cfg.save_name"),
])
def test_names_that_would_write_outside_the_output_folder_are_refused(tmp_path, override, key):
    with pytest.raises(ConfigError, match=f"{key} \\(set on the command line\\): must be a plain folder name"):
        load_config(write(tmp_path, MINIMAL), [override])


def test_config_files_that_are_not_text_folders_or_bad_overrides_are_one_line(tmp_path):
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"model_cfg:\n  model: GaitGraph2\n# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin.yaml: not UTF-8 text \(byte 0xe9 at offset 36\); save the config as UTF-8"):
        load_config(latin)
    with pytest.raises(ConfigError, match="is a folder; pass a YAML file to --cfgs"):
        load_config(tmp_path)
    os.mkfifo(tmp_path / "fifo.yaml")  # reading it would wait for a writer forever
    for special in (tmp_path / "fifo.yaml", Path("/dev/zero")):
        with pytest.raises(ConfigError, match=r"is not a regular file \(a device, a pipe or a socket\); pass an"):
            load_config(special)
    with pytest.raises(ConfigError, match="does not exist; pass an existing YAML file"):
        load_config(tmp_path / "missing.yaml")
    for bad in ("trainer_cfg.total_iter=[1", "trainer_cfg.total_iter=!!python/object:os.system x"):
        with pytest.raises(ConfigError) as info:
            load_config(write(tmp_path, MINIMAL), [bad])
        assert "the value is not valid YAML" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("source, message", [
    ("def broken(:\n", r"custom_imports: .*bad_ext.py:1: syntax error: "),
    ("x = 1\nraise ValueError('no GPU here')\n", r"importing 'bad_ext.py' raised ValueError at .*bad_ext.py:2: no GPU here"),
])
def test_errors_in_a_users_custom_module_say_where_in_one_line(tmp_path, source, message):
    (tmp_path / "bad_ext.py").write_text(source)
    path = write(tmp_path, MINIMAL + "custom_imports: [bad_ext.py]\n", name="ext.yaml")
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("override, key, message", [
    ("loss_cfg.temperature=0", "loss_cfg.temperature", "must be > 0 (a finite number), got 0"),
    ("loss_cfg.temperature=.nan", "loss_cfg.temperature", "must be > 0 (a finite number)"),
    ("loss_cfg.loss_term_weight=-1", "loss_cfg.loss_term_weight", "must be >= 0 (a finite number), got -1"),
])
def test_loss_arguments_are_checked_at_load(tmp_path, override, key, message):
    with pytest.raises(ConfigError, match=f"{key} \\(set on the command line\\)|{key}: ") as info:
        load_config(write(tmp_path, MINIMAL), [override])
    assert message in str(info.value)


def test_triplet_and_cross_entropy_arguments_are_checked(tmp_path):
    text = with_losses("loss_cfg:\n  - type: TripletLoss\n    log_prefix: triplet\n    margin: -0.3\n")
    with pytest.raises(ConfigError, match=r"loss_cfg.0.margin: must be >= 0 \(a finite number\), got -0.3"):
        load_config(write(tmp_path, text))
    text = with_losses("loss_cfg:\n  - type: CrossEntropyLoss\n    log_prefix: softmax\n    scale: 0\n")
    with pytest.raises(ConfigError, match=r"loss_cfg.0.scale: must be > 0 \(a finite number\), got 0"):
        load_config(write(tmp_path, text, name="ce.yaml"))


@pytest.mark.parametrize("override", ["trainer_cfg.sampler.frames_num_fixed=100000",
                                      "evaluator_cfg.sampler.frames_num_fixed=10001"])
def test_a_clip_length_beyond_ten_thousand_frames_is_refused(tmp_path, override):
    """frames_num_fixed=100000 used to allocate memory until the machine ran out (no output)."""
    key = override.split("=")[0]
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, MINIMAL), [override])
    assert f"{key} (set on the command line): " in str(info.value)
    assert "more than 10,000 (over 5 minutes of walking at 30 fps)" in str(info.value)
    load_config(write(tmp_path, MINIMAL), [override.split("=")[0] + "=10000"])  # the bound itself is fine
