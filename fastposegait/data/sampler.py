"""Batch samplers: which sequences form each batch, and which part of it this rank takes.

Upstream draws a batch on every rank and then broadcasts rank 0's draw over NCCL, several
blocking GPU round trips per batch (docs/upstream_differences.md, "Samplers need no
communication"). Here every rank draws the *whole global batch* from
a generator seeded by ``(seed, batch key)`` and keeps its strided slice (positions
``rank, rank + W, ...``): the ranks agree with no communication, each batch has upstream's
distribution, and because the key is the batch number a resumed run replays the batches an
uninterrupted run would have seen.

Each sampler yields :class:`BatchRequest` items; the loader turns one into a batch.
"""
from __future__ import annotations

import itertools
from typing import Iterator, List, NamedTuple, Sequence

import numpy as np

from ..errors import ConfigError
from ..registry import SAMPLERS


class BatchRequest(NamedTuple):
    """One batch for this rank.

    ``key`` numbers the batch; ``indices`` are the sequences; ``sample_keys`` give each
    sequence a key that, with ``key``, seeds its augmentation and frame sampling. Training
    uses the position in the *global* batch and testing the sequence index, so the random
    choices for a sample do not depend on the number of processes or workers.
    """

    key: int
    indices: List[int]
    sample_keys: List[int]


def batch_rng(seed: int, key: int, *extra: int) -> np.random.Generator:
    """The generator for ``(seed, key, *extra)``; identical on every rank for the same arguments.

    The loader keys each sequence's generator by four numbers ``(seed, phase, batch,
    position)``. Key lists of different lengths can share a state (numpy's ``SeedSequence``
    pads short entropy with zeros: ``[s, k]`` is ``[s, k, 0, 0]``), so the samplers draw from
    :func:`sampler_rng`, never from a shorter ``batch_rng``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, key, *extra])))


#: spawn key that sets the samplers' stream apart from every ``batch_rng`` stream
_SAMPLER_STREAM = 1


def sampler_rng(seed: int, key: int) -> np.random.Generator:
    """The generator a training sampler draws batch ``key`` from (the same on every rank).

    Its ``spawn_key`` makes it a stream of its own: ``batch_rng(seed, key)`` would equal the
    generator of the sequence at position 0 of training batch 0 (``key`` 0) or of the test's
    sequence 0 (``key`` 1), coupling that sequence's frames and augmentation to the draw of
    the batch."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, key], spawn_key=(_SAMPLER_STREAM,))))


#: how the errors name the config key: a sampler is built from ``trainer_cfg.sampler`` or
#: ``evaluator_cfg.sampler`` and does not know which
_KEY = "sampler.batch_size"
_KEYS = "trainer_cfg.sampler.batch_size or evaluator_cfg.sampler.batch_size (whichever uses this sampler)"


def _check_divisible(total: int, world_size: int, what: str, example: str) -> None:
    """Every process takes an equal share of each global batch. ``example``: a batch size
    that would do."""
    if total % world_size:
        raise ConfigError(
            f"{_KEY}: {what} = {total} is not divisible by the world size {world_size} (the number of processes, "
            f"e.g. torchrun --nproc_per_node); each process takes an equal share of every batch: set {_KEYS} "
            f"to a multiple of {world_size}, {example}"
        )


def _batch_number(value: object, what: str) -> int:
    """``value`` as a batch size (an integer >= 1), else a ConfigError."""
    whole = isinstance(value, (int, np.integer)) or (isinstance(value, (float, np.floating)) and float(value).is_integer())
    if isinstance(value, (bool, np.bool_)) or not whole or value < 1:
        raise ConfigError(f"{_KEY}: {what} must be an integer >= 1, got {value!r}; set {_KEYS}")
    return int(value)


def _next_multiple(total: int, world_size: int) -> str:
    return f"e.g. {-(-total // world_size) * world_size}"


class _EndlessSampler:
    """Shared part of the training samplers: endless keyed batches, strided by rank."""

    batch_total: int  # global batch size, set by subclasses

    def __init__(self, dataset, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        self.dataset = dataset
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.start = 0  # key of the first batch; the runner sets it when resuming

    def draw(self, rng: np.random.Generator) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def global_batch(self, key: int) -> np.ndarray:
        """The batch every rank agrees on for ``key`` (before the per-rank split)."""
        return self.draw(sampler_rng(self.seed, key))

    def __iter__(self) -> Iterator[BatchRequest]:
        positions = list(range(self.rank, self.batch_total, self.world_size))
        for key in itertools.count(self.start):
            batch = self.global_batch(key)
            yield BatchRequest(key, batch[self.rank::self.world_size].tolist(), positions)


@SAMPLERS.register("TripletSampler")
class TripletSampler(_EndlessSampler):
    """P subjects x K sequences per batch (``batch_size: [P, K]``), for metric losses.

    Subjects are distinct when the split has at least P of them; a subject's K sequences are
    distinct when it has at least K. ``batch_shuffle`` permutes the P*K entries.
    """

    def __init__(self, dataset, batch_size: Sequence[int], batch_shuffle: bool = False,
                 seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        super().__init__(dataset, seed, rank, world_size)
        if not (isinstance(batch_size, (list, tuple)) and len(batch_size) == 2):
            raise ConfigError(f"{_KEY}: TripletSampler batch_size must be [P, K] (P subjects x K sequences each), "
                              f"got {batch_size!r}; set {_KEYS}")
        self.P = _batch_number(batch_size[0], "TripletSampler's P (batch_size [P, K])")
        self.K = _batch_number(batch_size[1], "TripletSampler's K (batch_size [P, K])")
        self.batch_total = self.P * self.K
        fit = next(p for p in range(self.P, self.P + world_size + 1) if p * self.K % world_size == 0)
        _check_divisible(self.P * self.K, world_size, "TripletSampler batch_size P*K", f"e.g. [{fit}, {self.K}]")
        self.batch_shuffle = batch_shuffle
        self.by_label = dataset.indices_by_label

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        n_labels = len(self.by_label)
        subjects = rng.choice(n_labels, self.P, replace=n_labels < self.P)
        parts = []
        for s in subjects:
            pool = self.by_label[s]
            parts.append(pool[rng.choice(len(pool), self.K, replace=len(pool) < self.K)])
        batch = np.concatenate(parts)
        if self.batch_shuffle:
            batch = batch[rng.permutation(len(batch))]
        return batch


@SAMPLERS.register("CommonSampler")
class CommonSampler(_EndlessSampler):
    """B distinct sequences drawn uniformly per batch (``batch_size: B``)."""

    def __init__(self, dataset, batch_size: int, batch_shuffle: bool = False,
                 seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        super().__init__(dataset, seed, rank, world_size)
        self.batch_size = self.batch_total = _batch_number(batch_size, "CommonSampler batch_size")
        _check_divisible(self.batch_size, world_size, "CommonSampler batch_size",
                         _next_multiple(self.batch_size, world_size))
        self.batch_shuffle = batch_shuffle  # accepted for compatibility; draws are already random

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        n = len(self.dataset)
        return rng.choice(n, self.batch_size, replace=n < self.batch_size)


@SAMPLERS.register("InferenceSampler")
class InferenceSampler:
    """Every sequence once, in index order, for testing (``batch_size: B`` global).

    The index list is padded to a multiple of B with its first entries, cut into chunks of
    B/W, and rank r takes chunks r, r+W, ... . Gathering the ranks' outputs in rank order
    rebuilds global batch b = indices [bB, (b+1)B); the runner drops the padding at the end.
    """

    def __init__(self, dataset, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 batch_shuffle: bool = False) -> None:
        self.size = len(dataset)
        self.batch_size = _batch_number(batch_size, "InferenceSampler batch_size")
        self.rank = rank
        self.world_size = world_size
        _check_divisible(self.batch_size, world_size, "InferenceSampler batch_size",
                         _next_multiple(self.batch_size, world_size))
        # a batch larger than the test set is one batch of all of it: clamp it, so that a huge
        # batch_size pads nothing huge (the same embeddings; the padding is dropped anyway)
        self.batch_size = min(self.batch_size, -(-max(self.size, 1) // world_size) * world_size)
        indices = list(range(self.size))
        if self.batch_size != 1:
            pad = -self.size % self.batch_size
            indices += (indices * (pad // max(self.size, 1) + 1))[:pad]
        per_rank = self.batch_size // world_size
        chunks = [indices[i:i + per_rank] for i in range(0, len(indices), per_rank)]
        self.requests = [BatchRequest(key, chunk, chunk) for key, chunk in enumerate(chunks[rank::world_size])]

    def __len__(self) -> int:
        return len(self.requests)

    def __iter__(self) -> Iterator[BatchRequest]:
        return iter(self.requests)
