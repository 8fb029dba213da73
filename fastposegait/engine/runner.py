"""The runner: builds everything around a model and trains or tests it.

One code path for one process or many, CPU or GPU. The order of a training run:

1. output folder, logging, seeds (``seed + rank``), resolved config written to the folder;
2. the model from ``model_cfg`` (pure), moved to the device; SyncBatchNorm where it can run
   (CUDA and world size > 1); ``fix_BN``; DDP when there is more than one process;
3. the training loader (workers do sampling and transforms; with ``transform_on: device`` the
   transforms run batched on the device in the training step), losses, optimizer, scheduler,
   AMP scaler; then ``restore_hint`` (weights, optimizer, scheduler, RNG, sampler position);
4. the loop: step, log every ``log_iter``, checkpoint (and test with ``with_test``) every
   ``save_iter``, stop at ``total_iter``.
"""
from __future__ import annotations

import contextlib
import json
import logging
import re
import signal
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch
import yaml
from torch import nn

from .. import distributed as dist_utils
from ..config import Config
from ..data.autogen import ensure_dataset
from ..data.dataset import PoseDataset, dataset_from_section
from ..data.device_transforms import DeviceTransforms
from ..data.io import atomic_write
from ..data.layout import check_pose_layout
from ..data.loader import build_loader
from ..errors import CheckpointError, OutputDirError, RunInterrupted
from ..modeling import BaseModel, build_model, count_parameters
from ..modeling.losses import LossAggregator
from ..registry import EVALUATORS
from .checkpoint import (capture_rng_state, checkpoint_path, load_checkpoint, load_model_state, remove_stale_temps,
                         resolve_restore_hint, restore_rng_state, rng_states_for_rank, save_checkpoint)
from .finite_guard import FiniteGuard, non_finite_tensors, stop_training
from .inference import CPU_SEQUENCES_PER_CALL, extract_embeddings, move_batch, run_evaluator
from .interrupt import StopRequests
from .log import setup_logging
from .restore import changed_settings, restore_losses, restore_optimizer, restore_scheduler, snapshot_settings
from .run_lock import RunLock
from .watchdog import ProgressWatchdog, collective_errors
from .setup import (autocast_dtype, autocast_factory, build_optimizer, build_scheduler, prepare_for_training,
                    seed_everything, set_batchnorm_eval)
from .progress import training_log_line
from .summary import SummaryWriter, mean_of_window

logger = logging.getLogger(__name__)

__all__ = ["Runner", "TrainingParts", "seed_everything", "set_batchnorm_eval"]


@dataclass
class TrainingParts:
    """What :meth:`Runner.train_step` needs, built by :meth:`Runner.build_training`."""

    loader: Any
    losses: LossAggregator
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    autocast: Optional[Callable[[], Any]]
    device_transforms: Optional[DeviceTransforms] = None  # trainer_cfg.transform_on: device


def _no_restore(hint: Union[int, str]) -> bool:
    return hint in (0, "0", "")


class Runner:
    """Trains or tests the model described by a resolved config.

    Args:
        cfg: the config, typed (:class:`~fastposegait.config.Config`) or as the mapping
            :func:`fastposegait.config.load_config` returns (validated again here).
        phase: ``train`` or ``test``.
        env: the launcher environment (:func:`fastposegait.distributed.detect_env`).
        device: where the model runs.
        log_to_file: also write the log under ``<output>/logs/``.
    """

    def __init__(self, cfg: Union[Config, Mapping[str, Any]], phase: str, env: dist_utils.DistEnv,
                 device: torch.device, log_to_file: bool = False) -> None:
        if phase not in ("train", "test"):
            raise ValueError(f"--phase must be train or test, got {phase!r}")
        self.config = cfg if isinstance(cfg, Config) else Config.from_dict(cfg, report=False)
        self.phase = phase
        self.training = phase == "train"
        self.env = env
        self.device = device
        self.rank = env.rank
        self.world_size = env.world_size
        engine = self.config.engine(phase)
        self.save_name = engine.save_name
        data = self.config.data
        self.output_dir = Path("output") / data.dataset_name / self.config.model["model"] / self.save_name
        self.checkpoint_dir = self.output_dir / "checkpoints"
        self._lock: Optional[RunLock] = None
        if self.rank == 0:
            self._prepare_output_dir()
        setup_logging(env.rank, self.output_dir / "logs" if log_to_file else None)
        seed_everything(engine.seed + self.rank)
        ensure_dataset(self.config.raw["data_cfg"])
        logger.info("data_cfg: %s", self.config.raw["data_cfg"])
        logger.info("model_cfg: %s", self.config.model)
        logger.info("%s: %s", "trainer_cfg" if self.training else "evaluator_cfg",
                    self.config.raw["trainer_cfg" if self.training else "evaluator_cfg"])
        self.model: BaseModel = build_model(self.config.model).to(device)
        logger.info("Parameters Count: %.5fM", count_parameters(self.model) / 1e6)
        self.net: nn.Module = self.model  # what the training step calls (DDP wrapper or the model)
        self.iteration = 0
        self.batches_seen = 0
        self._test_parts: Optional[Tuple[PoseDataset, Any]] = None
        self._finite = FiniteGuard()
        self._last_good: Optional[str] = None  # the last checkpoint with finite weights, for the error
        self._last_info: Dict[str, Any] = {}
        self.writer = SummaryWriter(None)
        self._watch = ProgressWatchdog(self.rank, 1, 0)  # replaced by train() / test()
        self._timer = time.time()  # start of the current logging window
        self._window_start = 0  # iteration at that start

    def _prepare_output_dir(self) -> None:
        """Create the run folder; for the test phase also write the resolved config (training
        writes it when it starts, under its lock). An unwritable place is one
        :class:`OutputDirError`."""
        try:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            (self.output_dir / "logs").mkdir(exist_ok=True)
        except OSError as exc:
            raise OutputDirError(
                f"{exc.filename or self.output_dir}: cannot create the run's output folder ({exc.strerror or exc}); "
                "remove what is in the way, or run from a folder where output/ can be written (the path is "
                "relative to the working directory)"
            ) from None
        if not self.training:
            self._write_config()

    def _write_config(self) -> None:
        path = self.output_dir / f"config_{self.phase}.yaml"
        raw = yaml.safe_dump(self.config.raw, sort_keys=False).encode()
        try:
            atomic_write(path, lambda f: f.write(raw))
        except OSError as exc:
            raise OutputDirError(f"{path}: cannot write the resolved config ({exc.strerror or exc}); "
                                 f"make {self.output_dir} writable") from None

    def _check_earlier_checkpoints(self) -> None:
        """A new run (no iteration to resume) would overwrite the checkpoints an earlier run left
        in this folder, and mix two runs' files under one name: refuse, and say how to go on.
        Resuming from an earlier iteration overwrites the later ones: say so."""
        hint = self.config.trainer.restore_hint
        found = sorted(self.checkpoint_dir.glob(f"{self.save_name}-*.pt")) if self.checkpoint_dir.is_dir() else []
        iterations = sorted(int(m.group(1)) for p in found
                            if (m := re.fullmatch(re.escape(self.save_name) + r"-(\d+)\.pt", p.name)))
        if not iterations:
            return
        if not isinstance(hint, int) or hint == 0:
            raise OutputDirError(
                f"{self.checkpoint_dir} holds {len(iterations)} checkpoint(s) of an earlier run (the latest at "
                f"iteration {iterations[-1]}), which a new run would overwrite. Resume it with --iter "
                f"{iterations[-1]}, or give this run another trainer_cfg.save_name, or delete those files")
        later = [i for i in iterations if i > hint]
        if later:
            logger.warning("resuming from iteration %d: the checkpoints of iterations %s in %s will be replaced "
                           "as this run reaches them", hint, ", ".join(map(str, later)), self.checkpoint_dir)

    def close(self) -> None:
        """Release the training lock and flush TensorBoard (also done when the run ends)."""
        self.writer.close()
        if self._lock is not None:
            self._lock.release()

    @property
    def cfg(self) -> Dict[str, Any]:
        """The resolved config mapping (upstream's shape)."""
        return self.config.raw

    # ------------------------------------------------------------------ helpers
    def sequences_per_call(self) -> Optional[int]:
        """``evaluator_cfg.max_sequences_per_call``, or by default a few sequences per model
        call on a CPU (faster there) and the whole test batch on a GPU."""
        value = self.config.evaluator.max_sequences_per_call
        if value is not None:
            return value
        return CPU_SEQUENCES_PER_CALL if self.device.type == "cpu" else None

    def _load_model_state(self, ckpt: Mapping[str, Any], strict: bool, path: Path) -> None:
        load_model_state(self.model, ckpt["model"], strict, path)

    # ------------------------------------------------------------------ test
    def _test_loader(self) -> Tuple[PoseDataset, Any]:
        if self._test_parts is None:
            evaluator = self.config.evaluator
            dataset = dataset_from_section(self.config.data, training=False)
            check_pose_layout(dataset, self.config.model, evaluator.transform, "evaluator_cfg.transform")
            loader = build_loader(
                dataset, evaluator.sampler.as_mapping(), evaluator.transform, training=False,
                seed=evaluator.seed, rank=self.rank, world_size=self.world_size,
                num_workers=self.config.data.num_workers, pin_memory=self.device.type == "cuda",
            )
            self._test_parts = (dataset, loader)
        return self._test_parts

    def run_test(self, tag: str, checkpoint: Optional[Union[str, Path]] = None,
                 step: Optional[int] = None) -> Dict[str, Any]:
        """Embed the test split, evaluate on rank 0, log and save the results as JSON, with the
        pictures next to it and in TensorBoard (step ``step``, default the current iteration).
        ``checkpoint`` is the file the weights came from (None: the untrained model)."""
        dataset, loader = self._test_loader()
        t0 = time.time()
        dtype = autocast_dtype(self.config.evaluator, "evaluator_cfg", self.device)
        embeddings = extract_embeddings(
            self.model, loader, self.device, len(dataset), loader.dataset.collator.time_axes,
            autocast=autocast_factory(self.device, dtype), max_sequences=self.sequences_per_call(),
        )
        results: Dict[str, Any] = {}
        if dist_utils.is_main_process():
            logger.info("embedded %d test sequences in %.1fs: %s", len(dataset), time.time() - t0,
                        list(embeddings.shape))
            results = self._evaluate(dataset, embeddings)
            out, report = self._write_results(tag, len(dataset), results, checkpoint,
                                              self.iteration if step is None else step)
            self._publish_results(out, report, results, self.iteration if step is None else step)
        self._watch.beat("rank 0's evaluation of the test set")
        dist_utils.barrier()
        return results

    def _evaluate(self, dataset: PoseDataset, embeddings: torch.Tensor) -> Dict[str, Any]:
        evaluator_cfg, data = self.config.evaluator, self.config.data
        evaluator = EVALUATORS.get(evaluator_cfg.eval_func, where="evaluator_cfg.eval_func")
        options = {
            "metric": evaluator_cfg.metric,
            "cross_view_gallery": evaluator_cfg.cross_view_gallery,
            "output_dir": str(self.output_dir),
            "dataset_partition": data.dataset_partition,
        }
        results = run_evaluator(evaluator, embeddings, dataset.subjects, dataset.types, dataset.views,
                                data.test_dataset_name, options) or {}
        for key, value in results.items():
            if key.startswith("scalar/"):
                logger.info("%s: %.4f", key[len("scalar/"):], float(value))
        return results

    def _write_results(self, tag: str, num_sequences: int, results: Dict[str, Any],
                       checkpoint: Optional[Union[str, Path]] = None,
                       iteration: Optional[int] = None) -> Tuple[Path, Dict[str, Any]]:
        """Write ``<save_name>-<tag>-test.json``: the results and what produced them (checkpoint,
        resolved config, UTC time, versions). Returns its path and content."""
        evaluator_cfg = self.config.evaluator
        out = self.checkpoint_dir / f"{self.save_name}-{tag}-test.json"
        report = {"eval_func": evaluator_cfg.eval_func, "dataset": self.config.data.test_dataset_name,
                  "metric": evaluator_cfg.metric, "num_sequences": num_sequences,
                  **self._provenance(checkpoint, iteration), "results": _jsonable(results)}
        text = json.dumps(report, indent=2).encode()
        try:
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            atomic_write(out, lambda f: f.write(text))
        except OSError as exc:  # a full disk, a read-only folder, a quota
            raise OutputDirError(
                f"{out}: cannot write the test results ({exc.strerror or exc}); they were logged above. Free "
                f"space or make {self.checkpoint_dir} writable, then test again") from None
        logger.info("test results written to %s", out)
        return out, report

    def _provenance(self, checkpoint: Optional[Union[str, Path]], iteration: Optional[int]) -> Dict[str, Any]:
        """What a results JSON records about its origin, besides the protocol."""
        from .. import __version__

        return {
            "checkpoint": str(checkpoint) if checkpoint is not None else "untrained",
            "iteration": iteration if checkpoint is not None else 0,
            "config": {"path": str(self.output_dir / f"config_{self.phase}.yaml"),
                       "dataset_name": self.config.data.dataset_name, "model": self.config.model["model"],
                       "save_name": self.save_name},
            "time_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "versions": {"fastposegait": __version__, "torch": torch.__version__},
        }

    def _publish_results(self, out: Path, report: Mapping[str, Any], results: Mapping[str, Any], step: int) -> None:
        """The test scalars into TensorBoard; the pictures of the results (CMC curves, rank-1
        heatmaps, rank-1 per view) as PNGs next to ``out`` and into TensorBoard. A picture that
        cannot be written is a warning: the results JSON is already complete."""
        self.writer.scalars(results, step)
        from ..visualization.curves import report_pictures, write_pngs

        pictures = report_pictures(report)
        if pictures:
            try:
                paths = write_pngs(pictures, out.parent, out.stem)
                logger.info("test pictures written to %s: %s", out.parent, ", ".join(p.name for p in paths))
            except OSError as exc:
                logger.warning("%s: cannot write the test pictures (%s); the results JSON is complete",
                               exc.filename or out.parent, exc.strerror or exc)
            self.writer.rgb_images({p.tag: p.rgb for p in pictures}, step)
        self.writer.flush()

    def test(self) -> Dict[str, Any]:
        """The ``--phase test`` entry: restore the model (if restore_hint) and evaluate."""
        evaluator = self.config.evaluator
        hint = evaluator.restore_hint
        tag, path, step = "untrained", None, 0
        if not _no_restore(hint):
            path = resolve_restore_hint(hint, self.checkpoint_dir, self.save_name)
            ckpt = load_checkpoint(path)
            self._load_model_state(ckpt, evaluator.restore_ckpt_strict, path)
            tag = f"{hint:05d}" if isinstance(hint, int) else path.stem
            step = _checkpoint_iteration(ckpt, hint)
            logger.info("restored model from %s", path)
        else:
            logger.info("evaluator_cfg.restore_hint is 0: testing the untrained (freshly initialised) model")
        if self.rank == 0:
            self._open_summary(purge_step=None)
        self._watch = ProgressWatchdog(self.rank, self.world_size, evaluator.collective_timeout)
        try:
            with self._watch, collective_errors(self):
                return self.run_test(tag, checkpoint=path, step=step)
        finally:
            self.writer.close()

    def _open_summary(self, purge_step: Optional[int]) -> None:
        """The TensorBoard writer of ``<run>/summary/`` (rank 0)."""
        try:
            self.writer = SummaryWriter(self.output_dir / "summary", purge_step=purge_step)
        except OSError as exc:
            raise OutputDirError(f"{exc.filename or self.output_dir / 'summary'}: cannot write TensorBoard "
                                 f"summaries there ({exc.strerror or exc}); remove what is in the way") from None

    # ------------------------------------------------------------------ train
    def train(self) -> None:
        """The ``--phase train`` entry. Rank 0 holds the output folder's training lock from the
        start (before anything is written there) to the end, so two runs cannot interleave."""
        if self.rank == 0:
            self._lock = RunLock(self.output_dir).acquire()
        try:
            if self.rank == 0:
                self._check_earlier_checkpoints()
                self._write_config()
                removed = remove_stale_temps(self.checkpoint_dir)
                if removed:
                    logger.info("removed %d temp file(s) of checkpoint writes interrupted by an earlier run", removed)
            parts = self.build_training()
            if self.rank == 0:
                self._open_summary(purge_step=self.iteration or None)
            logger.info("Model Initialization Finished!")
            total_iter = self.config.trainer.total_iter
            if self.iteration >= total_iter:
                logger.info("iteration %d already reached total_iter %d; nothing to train", self.iteration, total_iter)
                return
            self._watch = ProgressWatchdog(self.rank, self.world_size, self.config.trainer.collective_timeout)
            with self._watch, StopRequests(self.device) as stop, collective_errors(self):
                self._loop(parts, total_iter, stop)
        finally:
            self.close()

    def build_training(self) -> TrainingParts:
        """Everything a training step needs: model set-up (SyncBN, fix_BN, DDP, compile),
        loader, losses, optimizer, scheduler, AMP; then ``restore_hint`` is applied."""
        trainer = self.config.trainer
        self.model, self.net = prepare_for_training(self.model, trainer, self.device, self.world_size)
        dataset = dataset_from_section(self.config.data, training=True)
        check_pose_layout(dataset, self.config.model, trainer.transform, "trainer_cfg.transform")
        loader = build_loader(
            dataset, trainer.sampler.as_mapping(), trainer.transform, training=True, seed=trainer.seed,
            rank=self.rank, world_size=self.world_size, num_workers=self.config.data.num_workers,
            pin_memory=self.device.type == "cuda", transform_on=trainer.transform_on,
        )
        on_device = DeviceTransforms(trainer.transform, trainer.seed, self.rank) if trainer.transform_on == "device" \
            else None
        losses = LossAggregator(self.config.losses).to(self.device)
        params = [p for p in self.model.parameters() if p.requires_grad] + \
                 [p for p in losses.parameters() if p.requires_grad]
        optimizer = build_optimizer(self.config.optimizer, params)
        scheduler = build_scheduler(self.config.scheduler, optimizer)
        dtype = autocast_dtype(trainer, "trainer_cfg", self.device)
        scaler = torch.amp.GradScaler("cuda", enabled=dtype is torch.float16)
        parts = TrainingParts(loader, losses, optimizer, scheduler, scaler, autocast_factory(self.device, dtype),
                              on_device)
        self._restore_training(parts)
        loader.sampler.start = self.batches_seen
        return parts

    def train_step(self, parts: TrainingParts, batch: Any) -> Optional[Tuple[torch.Tensor, Dict[str, Any], Dict[str, Any]]]:
        """One optimisation step on a collated batch: forward, losses, backward, optimizer and
        scheduler step. Returns ``(loss, loss_info, model_output)``, or None when a float16
        step overflowed and was skipped (not counted, no scheduler step)."""
        inputs = move_batch(batch, self.device)
        if parts.device_transforms is not None:  # transform_on: device; keyed by batch for exact resumes
            inputs = parts.device_transforms(inputs, self.batches_seen)
        with (parts.autocast() if parts.autocast else contextlib.nullcontext()):
            output = self.net(inputs)
            loss, info = parts.losses(output["training_feat"])
        optimizer, scaler = parts.optimizer, parts.scaler
        optimizer.zero_grad(set_to_none=True)
        if scaler.is_enabled():
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            before = scaler.get_scale()
            scaler.update()
            if scaler.get_scale() < before:  # inf/NaN gradients: the step was skipped
                logger.info("float16 overflow: step skipped, loss scale %.0f -> %.0f", before, scaler.get_scale())
                return None
        else:
            loss.backward()
            optimizer.step()
        parts.scheduler.step()
        return loss, info, output

    def _restore_training(self, parts: TrainingParts) -> int:
        """Apply ``trainer_cfg.restore_hint``: weights (and learnable loss parameters), optimizer
        and scheduler states; for an iteration (a resume) also the counters, the AMP scaler and
        every rank's random states, so the run continues as if it had never stopped."""
        optimizer, scheduler, scaler = parts.optimizer, parts.scheduler, parts.scaler
        trainer = self.config.trainer
        hint = trainer.restore_hint
        if _no_restore(hint):
            return 0
        path = resolve_restore_hint(hint, self.checkpoint_dir, self.save_name)
        ckpt = load_checkpoint(path, self.model)  # renames (and reorders the optimizer of) an old-named checkpoint
        left = load_model_state(self.model, ckpt["model"], trainer.restore_ckpt_strict, path)
        bad = non_finite_tensors(self.model.state_dict().values())
        if bad:
            raise CheckpointError(
                f"{path}: {bad} of the model's tensors hold NaN or inf after loading it: its run diverged, and "
                "training from it gives a NaN loss at once. Restore an earlier checkpoint of that run")
        if "loss" in ckpt:
            restore_losses(parts.losses, ckpt["loss"], path)
        start = int(ckpt.get("iteration", hint)) if isinstance(hint, int) else 0
        configured = snapshot_settings(optimizer, scheduler)
        if isinstance(hint, int):
            _check_counters(ckpt, hint, path)
        if trainer.optimizer_reset or "optimizer" not in ckpt or left:
            why = "optimizer_reset" if trainer.optimizer_reset else "absent" if "optimizer" not in ckpt else \
                "the model was loaded only in part"
            logger.warning("optimizer state not restored (%s)", why)
        else:
            restore_optimizer(optimizer, ckpt["optimizer"], path)
        if trainer.scheduler_reset or "scheduler" not in ckpt:
            logger.warning("scheduler state not restored (%s)", "scheduler_reset" if "scheduler" in ckpt else "absent")
        else:
            restore_scheduler(scheduler, ckpt["scheduler"], path, trainer.total_iter - start)
        changed = changed_settings(configured, optimizer, scheduler, self.config.raw.get("optimizer_cfg") or {},
                                   self.config.raw.get("scheduler_cfg") or {})
        if changed:
            resets = sorted({f"trainer_cfg.{r}: true" for *_, reset in changed for r in reset.split(" and ")})
            logger.warning("%s: the config differs from the optimizer/scheduler state restored from it in %s; the "
                           "checkpoint's values are used. To apply the config's instead, set %s", path,
                           "; ".join(f"{key} (config {_shown(old)}, checkpoint {_shown(new)})"
                                     for key, old, new, _ in changed), " and ".join(resets))
        self._last_good = f"{path} (trainer_cfg.restore_hint={hint if isinstance(hint, int) else str(path)!r})"
        if isinstance(hint, int):  # resume: continue counting, same batches, same random streams
            self.iteration = start
            self.batches_seen = int(ckpt.get("batches_seen", self.iteration))
            if "scaler" in ckpt and scaler.is_enabled():
                scaler.load_state_dict(ckpt["scaler"])
            rng = rng_states_for_rank(ckpt, self.rank, path)
            if rng is not None:
                restore_rng_state(rng, path)
        logger.info("restored %s (iteration %d)", path, self.iteration)
        return self.iteration

    def _save(self, parts: TrainingParts) -> None:
        """Write ``<save_name>-<iteration>.pt`` on rank 0 (every rank's RNG states included)."""
        self._watch.beat(f"the checkpoint of iteration {self.iteration} (every rank's random state)")
        gathered = dist_utils.all_gather_object((capture_rng_state(), self._finite.first_bad()))
        rng_states = [rng for rng, _ in gathered]
        bad = [b for _, b in gathered if b is not None]  # every rank stops, not only the one that saw it
        if bad:
            raise self._non_finite(min(bad))
        if non_finite_tensors(list(self.model.state_dict().values()) + list(parts.losses.state_dict().values())):
            raise self._non_finite((self.iteration, float("nan")))
        path = checkpoint_path(self.checkpoint_dir, self.save_name, self.iteration)
        if self.rank == 0:
            payload = {
                "model": self.model.state_dict(),
                "optimizer": parts.optimizer.state_dict(),
                "scheduler": parts.scheduler.state_dict(),
                "iteration": self.iteration,
                "batches_seen": self.batches_seen,
                "rng": rng_states,
            }
            loss_state = parts.losses.state_dict()
            if loss_state:  # losses with parameters (a learnable class matrix) train too
                payload["loss"] = loss_state
            if parts.scaler.is_enabled():
                payload["scaler"] = parts.scaler.state_dict()
            save_checkpoint(path, payload)
            logger.info("checkpoint saved: %s", path)
        self._last_good = f"{path} (--iter {self.iteration})"
        dist_utils.barrier()

    def _loop(self, parts: TrainingParts, total_iter: int, stop: StopRequests) -> None:
        """Train until ``total_iter``: log every ``log_iter``, checkpoint (and test) every
        ``save_iter``, stop cleanly on a signal, and end with a checkpoint."""
        trainer = self.config.trainer
        window: Dict[str, List[Any]] = defaultdict(list)
        bar = self._progress_bar(total_iter)
        self._timer = time.time()
        self._window_start = self.iteration
        self._train_mode()
        try:
            for batch in parts.loader:
                self.batches_seen += 1
                step = self.train_step(parts, batch)
                if step is None:
                    continue
                self.iteration += 1
                self._watch.beat(f"iteration {self.iteration + 1} (the gradient all-reduce and the losses' gathers)")
                loss, info, output = step
                self._finite.record(loss, self.iteration)  # on the device: read where the loop syncs anyway
                self._last_info = info
                visual = output.get("visual_summary", {})
                for key, value in {**info, **_scalars(visual)}.items():  # on the device: no sync per step
                    window[key].append(value.detach() if isinstance(value, torch.Tensor) else value)
                if bar is not None:
                    bar.update(1)
                if self.iteration % trainer.log_iter == 0:
                    self._log_window(window, loss, parts, bar, total_iter)
                if self.iteration % trainer.save_iter == 0:
                    self._checkpoint(parts, visual)
                if self.iteration >= total_iter:
                    break
                signum = stop.requested()
                if signum is not None:
                    self._stop(parts, signum)
        finally:
            if bar is not None:
                bar.close()  # clears the bar's line: an error printed next starts on its own line
        if self.iteration % trainer.save_iter != 0:  # total_iter is not a multiple of save_iter
            self._save(parts)
        logger.info("training finished at iteration %d", self.iteration)

    def _progress_bar(self, total_iter: int) -> Any:
        if self.rank != 0:
            return None
        from tqdm import tqdm

        return tqdm(total=total_iter, initial=self.iteration, desc="Training", unit="it", leave=False)

    def _train_mode(self) -> None:
        self.net.train()
        if self.config.trainer.fix_BN:
            set_batchnorm_eval(self.model)

    def _log_window(self, window: Dict[str, List[Any]], loss: torch.Tensor, parts: TrainingParts, bar: Any,
                    total_iter: Optional[int] = None) -> None:
        """One log line (iteration, time, learning rate, s/it, ETA, the means over the window
        since the last line) and the same means plus the learning rate to TensorBoard."""
        means = mean_of_window(window)
        window.clear()
        if self.world_size == 1:  # a multi-process run checks at the checkpoint, on every rank at once
            bad = self._finite.first_bad()
            if bad is not None:
                raise self._non_finite(bad)
        if bar is not None:
            bar.set_postfix(loss=f"{loss.item():.4f}")
        now = time.time()
        cost = now - self._timer
        done = max(1, self.iteration - self._window_start)
        total = self.config.trainer.total_iter if total_iter is None else total_iter
        lr = parts.optimizer.param_groups[0]["lr"]
        logger.info("%s", training_log_line(self.iteration, cost, lr, cost / done, max(0, total - self.iteration),
                                            means))
        means["scalar/learning_rate"] = lr
        self.writer.scalars(means, self.iteration)
        self._timer = now
        self._window_start = self.iteration

    def _non_finite(self, bad: Tuple[int, float]) -> Exception:
        """The error that ends a run whose loss (or weights) stopped being finite."""
        return stop_training(bad[0], bad[1], self._last_info, self._last_good, self.iteration)

    def _checkpoint(self, parts: TrainingParts, visual: Mapping[str, Any]) -> None:
        """Save, write the images, and with ``with_test`` run the test phase."""
        self._save(parts)
        self.writer.images(visual, self.iteration)
        if self.config.trainer.with_test:
            started = time.time()
            self.run_test(f"{self.iteration:05d}",
                          checkpoint=checkpoint_path(self.checkpoint_dir, self.save_name, self.iteration))
            self._train_mode()
            self._timer += time.time() - started  # the window's time and speed leave the test out
        self.writer.flush()

    def _stop(self, parts: TrainingParts, signum: int) -> None:
        """End the run after a stop signal: checkpoint this iteration (unless just saved) and
        raise :class:`RunInterrupted` with the command that resumes it."""
        if self.iteration % self.config.trainer.save_iter != 0:
            self._save(parts)
        path = checkpoint_path(self.checkpoint_dir, self.save_name, self.iteration)
        raise RunInterrupted(
            f"training stopped by {signal.Signals(signum).name} at iteration {self.iteration}; checkpoint {path} "
            f"is saved. Resume with the same command plus --iter {self.iteration}", signum)


def _checkpoint_iteration(ckpt: Mapping[str, Any], hint: Union[int, str]) -> int:
    """The training iteration of a restored checkpoint (its TensorBoard step when tested): its
    ``iteration`` entry, else the iteration ``restore_hint`` names, else 0."""
    value = ckpt.get("iteration")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return hint if isinstance(hint, int) else 0


def _shown(value: Any) -> str:
    """A config or state value for a log line."""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _check_counters(ckpt: Mapping[str, Any], hint: int, path: Path) -> None:
    """A resume trusts the counters of the file its iteration names: they must be the ones a run
    of this program leaves there. ``iteration`` is the number in the file name; ``batches_seen``
    (batches the sampler produced) equals it, or exceeds it by the float16 steps an overflow
    skipped (only a run with a grad-scaler state skips steps)."""
    iteration = ckpt.get("iteration", hint)
    if iteration != hint:
        raise CheckpointError(
            f"{path}: its name says iteration {hint} but it holds iteration {iteration}: it was renamed, copied "
            "from another run or altered. Resume from the file of that iteration, or restore it by path "
            "(trainer_cfg.restore_hint=<file>) to fine-tune from its weights")
    if "batches_seen" not in ckpt:
        return
    seen = ckpt["batches_seen"]
    skips = "scaler" in ckpt  # float16 training: overflowing steps are skipped but their batches counted
    if seen < iteration or (seen > iteration and not skips) or seen > 2 * iteration + 1000:
        expected = f"at least {iteration}" if skips else f"{iteration} (a run without float16 skips no step)"
        raise CheckpointError(
            f"{path}: its batches_seen is {seen} at iteration {iteration}, expected {expected}: the file was "
            "altered or written by another program. Restore it by path (trainer_cfg.restore_hint=<file>) to "
            "fine-tune from its weights")


def _scalars(summary: Mapping[str, Any]) -> Dict[str, Any]:
    """The ``scalar/`` entries of a model's ``visual_summary`` (logged like the losses')."""
    return {k: v for k, v in summary.items() if k.startswith("scalar/")}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return _jsonable(value.tolist())
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
