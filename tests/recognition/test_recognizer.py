"""The embedding API gives the test phase's embeddings: for every demo model, a run is trained
for 2 iterations in this process, tested (the embeddings the evaluator receives are captured),
then loaded with GaitRecognizer.from_run / from_config and asked to embed the test split's
sequences in dataset order. Also: the API's input checks, keys and batching."""
import numpy as np
import pytest
import torch
import yaml

from cli_helpers import REPO, TINY, schedule_overrides, synthetic_data_overrides
from fastposegait.config import load_config
from fastposegait.data.dataset import dataset_from_section
from fastposegait.distributed import DistEnv
from fastposegait.engine import runner as runner_module
from fastposegait.engine.runner import Runner
from fastposegait.errors import CheckpointError, ConfigError, PoseFileError
from fastposegait.recognition.recognizer import GaitRecognizer

DEMOS = {p.stem: p for p in sorted((REPO / "configs" / "demo").glob("*.yaml"))
         if yaml.safe_load(p.read_text())["data_cfg"].get("synthetic", {}).get("layout", "casia-b") == "casia-b"}


def trained_run(tmp_path, monkeypatch, demo, *extra):
    """Train ``demo`` (tiny) for 4 iterations (RawJointsNN has nothing to train), test it, and
    return the runner, its config, overrides and the test-phase embeddings."""
    monkeypatch.chdir(tmp_path)
    config = DEMOS[demo]
    model = yaml.safe_load(config.read_text())["model_cfg"]["model"]
    over = synthetic_data_overrides(tmp_path) + schedule_overrides(4, 4) + TINY[model]["overrides"] + list(extra)
    iteration = 0 if model == "RawJointsNN" else 4
    if iteration:
        trainer = Runner(load_config(config, over), "train", DistEnv(), torch.device("cpu"))
        trainer.train()
        trainer.close()
    captured = {}

    def capture(evaluator, embeddings, *args, **kwargs):
        captured["embeddings"] = embeddings.numpy().copy()
        return {}

    monkeypatch.setattr(runner_module, "run_evaluator", capture)
    tester = Runner(load_config(config, over + [f"evaluator_cfg.restore_hint={iteration}"]), "test", DistEnv(),
                    torch.device("cpu"))
    tester.test()
    tester.close()
    return tester, config, over, captured["embeddings"]


def close(a, b, tol=1e-5):
    """Equal up to float32 summation order: within ``tol`` of the embeddings' largest magnitude
    (batches of another size take other BLAS paths)."""
    return a.shape == b.shape and float(np.abs(a - b).max()) <= tol * max(1.0, float(np.abs(b).max()))


def split_sequences(runner):
    dataset = dataset_from_section(runner.config.data, training=False)
    return [dataset.load(i) for i in range(len(dataset))]


@pytest.mark.parametrize("demo", sorted(DEMOS))
def test_api_embeddings_equal_the_test_phase(tmp_path, monkeypatch, demo):
    runner, config, over, expected = trained_run(tmp_path, monkeypatch, demo)
    sequences = split_sequences(runner)
    if demo == "raw_joints_nn":  # no weights: the config alone
        got = GaitRecognizer.from_config(config, iteration=0, overrides=over, device="cpu").embed(sequences)
        assert close(got, expected)
        return
    rec = GaitRecognizer.from_run(runner.output_dir, device="cpu")
    assert rec.iteration == 4 and rec.checkpoint.name.endswith("-00004.pt")
    got = rec.embed(sequences)
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert close(got, expected), float(np.abs(got - expected).max())
    # the weights matter: the untrained model gives other embeddings
    untrained = GaitRecognizer.from_run(runner.output_dir, iteration=0, device="cpu").embed(sequences[:4])
    assert not close(untrained, expected[:4], 1e-2)
    # a config and an iteration reach the same model
    by_config = GaitRecognizer.from_config(config, iteration=4, overrides=over, device="cpu")
    assert close(by_config.embed(sequences[:5]), expected[:5])
    # one at a time, in other batches, with the test phase's keys: the same embeddings
    idx = [7, 3, 0]
    one_by_one = np.concatenate([rec.embed(sequences[i], keys=[i]) for i in idx])
    assert close(one_by_one, expected[idx])
    cut = rec.embed(sequences, batch_size=3)
    assert close(cut, expected), float(np.abs(cut - expected).max())


def test_info_and_shape(tmp_path, monkeypatch):
    runner, *_ , expected = trained_run(tmp_path, monkeypatch, "gaitgraph2_demo")
    rec = GaitRecognizer.from_run(runner.output_dir, device="cpu")
    info = rec.info
    assert info["model"] == "GaitGraph2" and info["iteration"] == 4 and info["metric"] == "cos"
    assert info["embedding_shape"] == list(expected.shape[1:])
    assert rec.num_joints == 17 and rec.metric == "cos"
    # the weights' fingerprint: the same weights by another path, other weights differ
    again = GaitRecognizer.from_run(runner.output_dir, iteration=4, device="cpu")
    untrained = GaitRecognizer.from_run(runner.output_dir, iteration=0, device="cpu")
    assert len(info["weights_sha256"]) == 64 and again.info["weights_sha256"] == info["weights_sha256"]
    assert untrained.info["weights_sha256"] != info["weights_sha256"]


@pytest.fixture
def gg2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    over = synthetic_data_overrides(tmp_path) + TINY["GaitGraph2"]["overrides"]
    return GaitRecognizer.from_config(DEMOS["gaitgraph2_demo"], iteration=0, overrides=over, device="cpu")


@pytest.mark.parametrize("bad, message", [
    (np.zeros((10, 18, 3)), "sequence 0: has 18 joints per frame, the model's joint format has 17"),
    (np.zeros((10, 17, 2)), "sequence 0: has 2 channel(s) per joint, the transforms read 3"),
    (np.zeros((0, 17, 3)), "sequence 0: has no frames"),
    (np.zeros((10, 17)), "sequence 0: expected a real array [frames, joints, channels]"),
    (np.full((10, 17, 3), np.nan), "sequence 0: holds NaN or infinite values"),
])
def test_bad_sequences_are_one_clear_error(gg2, bad, message):
    with pytest.raises(PoseFileError) as err:
        gg2.embed([np.ones((5, 17, 3)), bad][1:])
    assert str(err.value).startswith(message)


def test_keys_choose_the_test_window_and_any_length_works(gg2):
    rng = np.random.default_rng(0)
    long_walk = rng.normal(size=(80, 17, 3)).astype(np.float32)
    a, b = gg2.embed([long_walk, long_walk], keys=[0, 1])
    assert not np.allclose(a, b)  # fixed_ordered: each key draws another 12-frame window
    assert np.allclose(gg2.embed(long_walk, keys=[1])[0], b, atol=1e-6)
    short = gg2.embed(rng.normal(size=(3, 17, 3)))  # shorter than the window: frames repeat
    assert short.shape == (1, 96, 1) and np.isfinite(short).all()
    assert gg2.embed([]).shape[0] == 0


def test_run_folder_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        GaitRecognizer.from_run(tmp_path / "nope")
    (tmp_path / "run").mkdir()
    with pytest.raises(ConfigError, match="holds neither config_train.yaml nor config_test.yaml"):
        GaitRecognizer.from_run(tmp_path / "run")
    (tmp_path / "run" / "config_train.yaml").write_text((DEMOS["gaitgraph2_demo"]).read_text())
    with pytest.raises(CheckpointError, match="no checkpoint run-<iteration>.pt"):
        GaitRecognizer.from_run(tmp_path / "run")
