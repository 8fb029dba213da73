"""Samplers: P x K structure, determinism per (seed, key), disjoint rank shards, inference cover."""
from collections import Counter
import numpy as np
import pytest

from fastposegait.data.sampler import CommonSampler, InferenceSampler, TripletSampler


class DS:
    """A dataset-like object: subject i holds ``counts[i]`` sequences."""

    def __init__(self, counts):
        self.labels = np.concatenate([np.full(c, i) for i, c in enumerate(counts)])
        self.indices_by_label = [np.flatnonzero(self.labels == i) for i in range(len(counts))]

    def __len__(self):
        return len(self.labels)


def take(sampler, n):
    it = iter(sampler)
    return [next(it) for _ in range(n)]


def test_triplet_sampler_p_by_k_structure():
    ds = DS([5] * 10)
    batches = take(TripletSampler(ds, [4, 3], seed=1), 20)
    for req in batches:
        idx = np.array(req.indices)
        assert len(idx) == 12
        labels = ds.labels[idx]
        # subject by subject: 4 distinct subjects, each with 3 distinct sequences
        blocks = labels.reshape(4, 3)
        assert (blocks == blocks[:, :1]).all()
        assert len(set(blocks[:, 0])) == 4
        for block in idx.reshape(4, 3):
            assert len(set(block)) == 3
    assert [r.key for r in batches] == list(range(20))


def test_triplet_sampler_replacement_when_too_few():
    ds = DS([2, 2])  # 2 subjects, 2 sequences each; ask for 3 x 4
    for req in take(TripletSampler(ds, [3, 4], seed=0), 10):
        labels = ds.labels[req.indices]
        assert len(labels) == 12
        assert set(labels) <= {0, 1}


def test_triplet_sampler_distribution_is_uniform_over_subjects():
    ds = DS([4] * 8)
    counts = Counter()
    for req in take(TripletSampler(ds, [2, 2], seed=3), 4000):
        counts.update(ds.labels[req.indices[::2]].tolist())
    freq = np.array([counts[i] for i in range(8)]) / 8000
    assert np.allclose(freq, 1 / 8, atol=0.02)


def test_batch_shuffle_permutes_the_batch():
    ds = DS([6] * 10)
    plain = take(TripletSampler(ds, [4, 4], seed=5), 5)
    shuffled = take(TripletSampler(ds, [4, 4], batch_shuffle=True, seed=5), 5)
    for a, b in zip(plain, shuffled):
        assert sorted(a.indices) == sorted(b.indices)
    assert any(a.indices != b.indices for a, b in zip(plain, shuffled))


def test_determinism_and_resume_from_key():
    ds = DS([5] * 10)
    a = take(TripletSampler(ds, [4, 2], seed=7), 10)
    b = take(TripletSampler(ds, [4, 2], seed=7), 10)
    c = take(TripletSampler(ds, [4, 2], seed=8), 10)
    assert a == b
    assert a != c
    resumed = TripletSampler(ds, [4, 2], seed=7)
    resumed.start = 6
    assert take(resumed, 4) == a[6:]


@pytest.mark.parametrize("world", [2, 4])
def test_rank_shards_are_disjoint_strided_slices_of_one_global_batch(world):
    ds = DS([5] * 10)
    per_rank = [take(TripletSampler(ds, [4, 2], seed=2, rank=r, world_size=world), 5) for r in range(world)]
    single = take(TripletSampler(ds, [4, 2], seed=2), 5)
    for b in range(5):
        rebuilt = [None] * 8
        for r in range(world):
            rebuilt[r::world] = per_rank[r][b].indices
            # each sample is keyed by its position in the global batch, whatever the world size
            assert per_rank[r][b].sample_keys == list(range(r, 8, world))
        assert rebuilt == single[b].indices


def test_common_sampler_distinct_and_sharded():
    ds = DS([3] * 20)
    single = take(CommonSampler(ds, 16, seed=4), 10)
    for req in single:
        assert len(set(req.indices)) == 16
    r0 = take(CommonSampler(ds, 16, seed=4, rank=0, world_size=2), 10)
    r1 = take(CommonSampler(ds, 16, seed=4, rank=1, world_size=2), 10)
    for a, b, s in zip(r0, r1, single):
        assert not set(a.indices) & set(b.indices)
        assert sorted(a.indices + b.indices) == sorted(s.indices)


def test_common_sampler_with_replacement_when_split_smaller_than_batch():
    ds = DS([2, 2])
    req = take(CommonSampler(ds, 10, seed=0), 1)[0]
    assert len(req.indices) == 10 and set(req.indices) <= set(range(4))


def test_indivisible_batch_is_a_clear_error():
    ds = DS([5] * 10)
    with pytest.raises(ValueError, match=r"P\*K = 9 is not divisible by the world size 2"):
        TripletSampler(ds, [3, 3], world_size=2)
    with pytest.raises(ValueError, match="not divisible by the world size 4"):
        CommonSampler(ds, 6, world_size=4)
    with pytest.raises(ValueError, match=r"must be \[P, K\]"):
        TripletSampler(ds, 8)


@pytest.mark.parametrize("make, fix", [
    (lambda ds: CommonSampler(ds, 7, world_size=2), "e.g. 8"),
    (lambda ds: TripletSampler(ds, [3, 3], world_size=2), "e.g. [4, 3]"),
    (lambda ds: InferenceSampler(ds, 7, world_size=2), "e.g. 8"),
])
def test_indivisible_batch_is_a_config_error_naming_the_key_and_the_fix(make, fix):
    # before: a plain ValueError traceback on every rank (torchrun --nproc_per_node=2 ... batch_size=7)
    from fastposegait.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        make(DS([5] * 10))
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert message.startswith("sampler.batch_size: ")
    assert "world size 2 (the number of processes" in message
    assert "trainer_cfg.sampler.batch_size" in message and "evaluator_cfg.sampler.batch_size" in message
    assert fix in message


@pytest.mark.parametrize("make", [
    lambda ds: TripletSampler(ds, 8), lambda ds: TripletSampler(ds, [0, 4]), lambda ds: CommonSampler(ds, 0),
    lambda ds: InferenceSampler(ds, 0),
])
def test_unusable_batch_sizes_are_config_errors(make):
    from fastposegait.errors import ConfigError

    with pytest.raises(ConfigError, match="^sampler.batch_size: "):
        make(DS([5] * 10))


def test_inference_sampler_spec_example():
    ds = DS([10])
    r0 = [r.indices for r in InferenceSampler(ds, 4, rank=0, world_size=2)]
    r1 = [r.indices for r in InferenceSampler(ds, 4, rank=1, world_size=2)]
    assert r0 == [[0, 1], [4, 5], [8, 9]]
    assert r1 == [[2, 3], [6, 7], [0, 1]]
    assert [r.indices for r in InferenceSampler(ds, 4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1]]
    # test-time draws are keyed by the sequence index itself
    assert all(r.sample_keys == r.indices for r in InferenceSampler(ds, 4, rank=1, world_size=2))


@pytest.mark.parametrize("n, batch, world", [(10, 4, 2), (13, 6, 3), (7, 1, 1), (3, 8, 4), (64, 8, 8)])
def test_inference_sampler_covers_every_sequence_once_after_depadding(n, batch, world):
    ds = DS([n])
    shards = [[r.indices for r in InferenceSampler(ds, batch, rank=r, world_size=world)] for r in range(world)]
    assert len({len(s) for s in shards}) == 1  # every rank runs the same number of batches
    gathered = []
    for b in range(len(shards[0])):
        for r in range(world):
            gathered += shards[r][b]
    assert gathered[:n] == list(range(n))
    assert len(gathered) % min(batch, -(-n // world) * world) == 0  # a batch beyond the set is clamped to it


def test_inference_sampler_batch_one_needs_single_process():
    with pytest.raises(ValueError, match="not divisible"):
        InferenceSampler(DS([4]), 1, world_size=2)
