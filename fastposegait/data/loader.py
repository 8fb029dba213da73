"""DataLoaders whose workers do all per-batch work: loading, frame sampling, transforms.

With ``transform_on="device"`` the workers load and sample frames only (stacked ``[B, T, V, C]``
batches), and the runner applies the batched transforms on the device
(:mod:`fastposegait.data.device_transforms`).

The sampler yields one :class:`~fastposegait.data.sampler.BatchRequest` per batch; a worker
receives the whole request and returns the finished tensors. Each sequence's randomness
(frame window, augmentations) comes from a generator keyed by ``(seed, phase, batch key,
sample key)``, so results do not depend on the number of workers or processes, and a resumed
run sees the same augmentations as an uninterrupted one.
"""
from __future__ import annotations

import atexit
import signal
import weakref
from typing import Any, Mapping

import torch
from torch.utils.data import DataLoader, Dataset

from ..kwargs import filter_kwargs
from ..registry import SAMPLERS
from .batch import Batch
from .collate import BatchCollator, sequence_preparer
from .frames import FRAME_KEYS, frame_sampler_from_cfg
from .dataset import PoseDataset
from .sampler import BatchRequest, batch_rng
from .device_transforms import check_frame_sampling
from .transforms import NoOperation, build_transforms

# sampler-section keys consumed by the frame sampler or the registry lookup, not the sampler
_FRAME_KEYS = ("type", *FRAME_KEYS)


class BatchBuilder(Dataset):
    """Maps a :class:`BatchRequest` to a finished batch (runs in a DataLoader worker)."""

    def __init__(self, dataset: PoseDataset, collator: BatchCollator, seed: int, phase: int) -> None:
        self.dataset = dataset
        self.collator = collator
        self.seed = seed
        self.phase = phase  # 0 train, 1 test: keeps the two streams apart

    def __getitem__(self, request: BatchRequest) -> Batch:
        key, indices, sample_keys = request
        ds = self.dataset
        sequences = [ds.load(i) for i in indices]
        records = [ds.records[i] for i in indices]
        batch_key = key if self.phase == 0 else 0  # test: a sequence's draws depend on it alone
        rngs = [batch_rng(self.seed, self.phase, batch_key, k) for k in sample_keys]
        return self.collator(
            sequences, ds.labels[indices], [r.type for r in records], [r.view for r in records], rngs,
        )

    def __len__(self) -> int:  # pragma: no cover - requests come from the sampler
        raise TypeError("BatchBuilder is indexed by BatchRequest")


def _identity(batch: Batch) -> Batch:
    return batch


class PoseDataLoader(DataLoader):
    """A DataLoader whose worker processes are always shut down, also when the program ends
    on an error (see :func:`shutdown_workers`)."""

    def __iter__(self):  # type: ignore[override]
        iterator = super().__iter__()
        if hasattr(iterator, "_shutdown_workers"):
            _LIVE_ITERATORS.add(iterator)
        return iterator


#: Iterators with worker processes, until they are shut down or collected.
_LIVE_ITERATORS: "weakref.WeakSet[Any]" = weakref.WeakSet()


def shutdown_workers() -> None:
    """Stop the worker processes of every loader iterator still alive.

    Workers ignore SIGTERM (:func:`_ignore_stop_signals`), so the interpreter's own exit
    (which terminates daemonic children with SIGTERM, then joins them) would wait for them
    forever when a run ends on an error while a loader is still iterating. This runs first
    at exit (registered after torch's handlers) and tells them to stop the normal way."""
    for iterator in list(_LIVE_ITERATORS):
        try:
            iterator._shutdown_workers()
        except Exception:  # noqa: BLE001 - best effort while ending
            pass
    _LIVE_ITERATORS.clear()


atexit.register(shutdown_workers)


def _ignore_stop_signals(_worker_id: int) -> None:
    """Worker initialiser: SIGINT (the terminal's Ctrl-C) and SIGTERM (sent to the process
    group on preemption) are the main process's to handle: it finishes the step and saves a
    checkpoint (:mod:`fastposegait.engine.interrupt`). A worker that died of them would end the
    run with "worker exited unexpectedly" first. Workers still exit when the loader shuts them
    down, or when the main process dies."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


def build_sampler(dataset: PoseDataset, sampler_cfg: Mapping[str, Any], seed: int, rank: int, world_size: int) -> Any:
    """Instantiate the registered sampler named by ``sampler_cfg['type']``."""
    cls = SAMPLERS.get(sampler_cfg["type"], where="sampler.type")
    kwargs = filter_kwargs(cls, sampler_cfg, f"sampler {sampler_cfg['type']}", ignore=_FRAME_KEYS)
    return cls(dataset, seed=seed, rank=rank, world_size=world_size, **kwargs)


def build_loader(
    dataset: PoseDataset,
    sampler_cfg: Mapping[str, Any],
    transform_cfg: Any,
    *,
    training: bool,
    seed: int,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 0,
    pin_memory: bool = False,
    transform_on: str = "worker",
) -> DataLoader:
    """A DataLoader over ``dataset`` that yields ``[inputs, labels, types, views, seqL]``.

    ``transform_on="device"``: the workers apply no transforms (one identity per modality of
    ``transform_cfg``) except the chains' whole-sequence hooks (:func:`sequence_preparer`);
    the caller runs the batched twins on the device. Only ``fixed_*``
    sampling is accepted then (a :class:`~fastposegait.errors.ConfigError` otherwise)."""
    sampler = build_sampler(dataset, sampler_cfg, seed, rank, world_size)
    where = "trainer_cfg.transform" if training else "evaluator_cfg.transform"
    frame_sampler = frame_sampler_from_cfg(sampler_cfg)
    transforms = build_transforms(transform_cfg, where)
    # whole-sequence hooks (e.g. SkeletonMap's imputation) run in the workers in both modes
    preparers = [sequence_preparer(t, f"{where}[{m}]") for m, t in enumerate(transforms)]
    if transform_on == "device":
        check_frame_sampling(frame_sampler.sample_type, where.replace("transform", "sampler.sample_type"))
        transforms = [NoOperation() for _ in transforms]
    elif transform_on != "worker":
        raise ValueError(f"transform_on must be 'worker' or 'device', got {transform_on!r}")
    collator = BatchCollator(frame_sampler, transforms, preparers)
    builder = BatchBuilder(dataset, collator, seed, phase=0 if training else 1)
    kwargs: dict = {}
    if num_workers > 0:
        kwargs.update(persistent_workers=training, prefetch_factor=4, worker_init_fn=_ignore_stop_signals)
    # Starting an iteration draws the workers' base seed from this generator. Left to the
    # global torch generator, that draw would shift the model's random stream (dropout) by one
    # in a resumed run, which restores the global state and only then starts the loader. The
    # workers do not use the base seed: every sequence has its own keyed generator.
    generator = torch.Generator().manual_seed(seed + rank)
    return PoseDataLoader(
        builder, sampler=sampler, batch_size=None, collate_fn=_identity,
        num_workers=num_workers, pin_memory=pin_memory, generator=generator, **kwargs,
    )
