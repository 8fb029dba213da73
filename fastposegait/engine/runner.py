"""The runner: builds everything around a model and trains or tests it.

One code path for one process or many, CPU or GPU. The order of a training run:

1. output folder, logging, seeds (``seed + rank``), resolved config written to the folder;
2. the model from ``model_cfg`` (pure), moved to the device; SyncBatchNorm where it can run
   (CUDA and world size > 1); ``fix_BN``; DDP when there is more than one process;
3. the training loader (workers do sampling and transforms), losses, optimizer, scheduler,
   AMP scaler; then ``restore_hint`` (weights, optimizer, scheduler, RNG, sampler position);
4. the loop: step, log every ``log_iter``, checkpoint (and test with ``with_test``) every
   ``save_iter``, stop at ``total_iter``.
"""
from __future__ import annotations

import contextlib
import inspect
import json
import logging
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np
import torch
import yaml
from torch import nn

from .. import distributed as dist_utils
from ..config import default_config_path, read_yaml
from ..kwargs import filter_kwargs
from ..data.dataset import PoseDataset, dataset_from_cfg
from ..data.io import atomic_write
from ..data.loader import build_loader
from ..data.autogen import ensure_dataset
from ..modeling import BaseModel, build_model, count_parameters
from ..modeling.losses import LossAggregator
from ..registry import EVALUATORS
from .checkpoint import (capture_rng_state, checkpoint_path, load_checkpoint, resolve_restore_hint,
                         restore_rng_state, rng_states_for_rank, save_checkpoint)
from .inference import CPU_SEQUENCES_PER_CALL, extract_embeddings, move_batch, run_evaluator
from .log import setup_logging
from .summary import SummaryWriter, mean_of_window

logger = logging.getLogger("fastposegait")


@dataclass
class TrainingParts:
    """What :meth:`Runner.train_step` needs, built by :meth:`Runner.build_training`."""

    loader: Any
    losses: LossAggregator
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    autocast: Optional[Callable[[], Any]]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_batchnorm_eval(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


class Runner:
    """Trains or tests the model described by a resolved config.

    Args:
        cfg: the config returned by :func:`fastposegait.config.load_config`.
        phase: ``train`` or ``test``.
        env: the launcher environment (:func:`fastposegait.distributed.detect_env`).
        device: where the model runs.
        log_to_file: also write the log under ``<output>/logs/``.
    """

    def __init__(self, cfg: Dict[str, Any], phase: str, env: dist_utils.DistEnv, device: torch.device,
                 log_to_file: bool = False) -> None:
        if phase not in ("train", "test"):
            raise ValueError(f"--phase must be train or test, got {phase!r}")
        self.cfg = cfg
        self.phase = phase
        self.training = phase == "train"
        self.env = env
        self.device = device
        self.data_cfg = cfg["data_cfg"]
        self.trainer_cfg = cfg["trainer_cfg"]
        self.evaluator_cfg = cfg["evaluator_cfg"]
        engine_cfg = self.trainer_cfg if self.training else self.evaluator_cfg
        self.save_name = engine_cfg["save_name"]
        self.output_dir = Path("output") / self.data_cfg["dataset_name"] / cfg["model_cfg"]["model"] / self.save_name
        self.checkpoint_dir = self.output_dir / "checkpoints"
        setup_logging(env.rank, self.output_dir / "logs" if log_to_file else None)
        self.rank = env.rank
        self.world_size = env.world_size
        seed_everything(int(engine_cfg.get("seed", 0)) + self.rank)
        if self.rank == 0:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            atomic_write(self.output_dir / f"config_{phase}.yaml",
                         lambda f: f.write(yaml.safe_dump(cfg, sort_keys=False).encode()))
        ensure_dataset(self.data_cfg)
        logger.info("data_cfg: %s", self.data_cfg)
        logger.info("model_cfg: %s", cfg["model_cfg"])
        logger.info("%s: %s", "trainer_cfg" if self.training else "evaluator_cfg", engine_cfg)
        self.model: BaseModel = build_model(cfg["model_cfg"]).to(device)
        logger.info("Parameters Count: %.5fM", count_parameters(self.model) / 1e6)
        self.net: nn.Module = self.model  # what the training step calls (DDP wrapper or the model)
        self.iteration = 0
        self.batches_seen = 0
        self._test_parts: Optional[Tuple[PoseDataset, Any]] = None
        self.writer = SummaryWriter(None)

    # ------------------------------------------------------------------ helpers
    def autocast_dtype(self, key: str) -> Optional[torch.dtype]:
        """The autocast dtype requested by ``<key>.enable_float16`` / ``enable_bfloat16``
        where it can run here, else None (with one log line saying why)."""
        section = self.cfg[key]
        if section.get("enable_float16", False):
            if self.device.type == "cuda":
                return torch.float16
            logger.info("%s.enable_float16: float16 autocast needs CUDA; running in float32 on %s "
                        "(enable_bfloat16 works on CPU)", key, self.device)
        if section.get("enable_bfloat16", False):
            if self.device.type == "cuda" and not torch.cuda.is_bf16_supported():
                logger.info("%s.enable_bfloat16: this GPU has no bfloat16 support; running in float32", key)
                return None
            return torch.bfloat16
        return None

    def sequences_per_call(self) -> Optional[int]:
        """``evaluator_cfg.max_sequences_per_call``, or by default a few sequences per model
        call on a CPU (faster there) and the whole test batch on a GPU."""
        value = self.evaluator_cfg.get("max_sequences_per_call")
        if value is not None:
            return int(value)
        return CPU_SEQUENCES_PER_CALL if self.device.type == "cpu" else None

    def autocast(self, dtype: Optional[torch.dtype]):
        """A context-manager factory for autocast to ``dtype`` (None: no autocast)."""
        if dtype is None:
            return None
        return lambda: torch.autocast(self.device.type, dtype=dtype)

    def _prepare_model_for_training(self) -> None:
        model = self.model
        if self.trainer_cfg.get("sync_BN", False):
            if self.device.type == "cuda" and self.world_size > 1:
                model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
                logger.info("sync_BN: BatchNorm layers converted to SyncBatchNorm")
            else:
                logger.info("sync_BN: skipped (needs CUDA and more than one process; here %s, world size %d)",
                            self.device.type, self.world_size)
        if self.trainer_cfg.get("channels_last", False):
            # 4-D weights in NHWC order; the convolutions then keep their [N, C, T, V] maps in it
            model = model.to(memory_format=torch.channels_last)
            logger.info("channels_last: 4-D weights and the convolution maps use the channels-last layout")
        self.model = model
        if self.trainer_cfg.get("fix_BN", False):
            set_batchnorm_eval(model)
        if self.world_size > 1:
            ddp_kwargs: Dict[str, Any] = {
                "find_unused_parameters": bool(self.trainer_cfg.get("find_unused_parameters", False))}
            if self.device.type == "cuda":
                ddp_kwargs.update(device_ids=[self.device.index], output_device=self.device.index)
            self.net = nn.parallel.DistributedDataParallel(model, **ddp_kwargs)
        else:
            self.net = model
        if self.trainer_cfg.get("compile", False):
            # the compiled wrapper shares the model's parameters; checkpoints keep plain names
            self.net = torch.compile(self.net)
            logger.info("compile: the training forward runs through torch.compile")

    def _build_optimizer(self, params) -> torch.optim.Optimizer:
        opt_cfg = dict(self.cfg["optimizer_cfg"])
        cls = getattr(torch.optim, opt_cfg["solver"])
        defaults = read_yaml(default_config_path()).get("optimizer_cfg", {})
        # keys inherited from default.yaml that this solver does not take (momentum for Adam)
        inherited = [k for k, v in opt_cfg.items() if defaults.get(k) == v]
        quiet = {k for k in inherited if k not in inspect.signature(cls).parameters}
        kwargs = filter_kwargs(cls, opt_cfg, f"optimizer {opt_cfg['solver']}", ignore={"solver", *quiet})
        logger.info("optimizer: %s %s", opt_cfg["solver"], kwargs)
        return cls(params, **kwargs)

    def _build_scheduler(self, optimizer: torch.optim.Optimizer):
        sched_cfg = dict(self.cfg["scheduler_cfg"])
        cls = getattr(torch.optim.lr_scheduler, sched_cfg["scheduler"])
        kwargs = filter_kwargs(cls, sched_cfg, f"scheduler {sched_cfg['scheduler']}", ignore={"scheduler"})
        logger.info("scheduler: %s %s", sched_cfg["scheduler"], kwargs)
        return cls(optimizer, **kwargs)

    def _load_model_state(self, ckpt: Mapping[str, Any], strict: bool, path: Path) -> None:
        state = ckpt["model"]
        result = self.model.load_state_dict(state, strict=strict)
        if not strict:
            matched = [k for k in state if k in self.model.state_dict()]
            logger.info("restored %d matching tensors from %s (missing: %s, unexpected: %s)",
                        len(matched), path, result.missing_keys, result.unexpected_keys)

    # ------------------------------------------------------------------ test
    def _test_loader(self) -> Tuple[PoseDataset, Any]:
        if self._test_parts is None:
            dataset = dataset_from_cfg(self.data_cfg, training=False)
            loader = build_loader(
                dataset, self.evaluator_cfg["sampler"], self.evaluator_cfg.get("transform"),
                training=False, seed=int(self.evaluator_cfg.get("seed", 0)), rank=self.rank,
                world_size=self.world_size, num_workers=int(self.data_cfg.get("num_workers", 0)),
                pin_memory=self.device.type == "cuda",
            )
            self._test_parts = (dataset, loader)
        return self._test_parts

    def run_test(self, tag: str) -> Dict[str, Any]:
        """Embed the test split, evaluate on rank 0, log and save the results as JSON."""
        dataset, loader = self._test_loader()
        t0 = time.time()
        embeddings = extract_embeddings(
            self.model, loader, self.device, len(dataset), loader.dataset.collator.time_axes,
            autocast=self.autocast(self.autocast_dtype("evaluator_cfg")), max_sequences=self.sequences_per_call(),
        )
        results: Dict[str, Any] = {}
        if dist_utils.is_main_process():
            logger.info("embedded %d test sequences in %.1fs: %s", len(dataset), time.time() - t0,
                        list(embeddings.shape))
            evaluator = EVALUATORS.get(self.evaluator_cfg["eval_func"], where="evaluator_cfg.eval_func")
            options = {
                "metric": self.evaluator_cfg.get("metric", "euc"),
                "cross_view_gallery": self.evaluator_cfg.get("cross_view_gallery", False),
                "output_dir": str(self.output_dir),
                "dataset_partition": self.data_cfg["dataset_partition"],
            }
            results = run_evaluator(evaluator, embeddings, dataset.subjects, dataset.types, dataset.views,
                                    self.data_cfg["test_dataset_name"], options) or {}
            scalars = {k: v for k, v in results.items() if k.startswith("scalar/")}
            for key, value in scalars.items():
                logger.info("%s: %.4f", key[len("scalar/"):], float(value))
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            out = self.checkpoint_dir / f"{self.save_name}-{tag}-test.json"
            report = {"eval_func": self.evaluator_cfg["eval_func"], "dataset": self.data_cfg["test_dataset_name"],
                      "metric": options["metric"], "num_sequences": len(dataset), "results": _jsonable(results)}
            atomic_write(out, lambda f: f.write(json.dumps(report, indent=2).encode()))
            logger.info("test results written to %s", out)
        dist_utils.barrier()
        return results

    def test(self) -> Dict[str, Any]:
        """The ``--phase test`` entry: restore the model (if restore_hint) and evaluate."""
        hint = self.evaluator_cfg.get("restore_hint", 0)
        tag = "untrained"
        if hint not in (0, "0", None, ""):
            path = resolve_restore_hint(hint, self.checkpoint_dir, self.save_name)
            ckpt = load_checkpoint(path)
            self._load_model_state(ckpt, bool(self.evaluator_cfg.get("restore_ckpt_strict", True)), path)
            tag = f"{hint:05d}" if isinstance(hint, int) else path.stem
            logger.info("restored model from %s", path)
        else:
            logger.info("evaluator_cfg.restore_hint is 0: testing the untrained (freshly initialised) model")
        return self.run_test(tag)

    # ------------------------------------------------------------------ train
    def train(self) -> None:
        """The ``--phase train`` entry."""
        parts = self.build_training()
        if self.rank == 0:
            self.writer = SummaryWriter(self.output_dir / "summary", purge_step=self.iteration or None)
        logger.info("Model Initialization Finished!")
        total_iter = int(self.trainer_cfg["total_iter"])
        if self.iteration >= total_iter:
            logger.info("iteration %d already reached total_iter %d; nothing to train", self.iteration, total_iter)
            return
        self._loop(parts, total_iter)
        self.writer.close()

    def build_training(self) -> TrainingParts:
        """Everything a training step needs: model set-up (SyncBN, fix_BN, DDP, compile),
        loader, losses, optimizer, scheduler, AMP; then ``restore_hint`` is applied."""
        tcfg = self.trainer_cfg
        self._prepare_model_for_training()
        dataset = dataset_from_cfg(self.data_cfg, training=True)
        loader = build_loader(
            dataset, tcfg["sampler"], tcfg.get("transform"), training=True, seed=int(tcfg.get("seed", 0)),
            rank=self.rank, world_size=self.world_size, num_workers=int(self.data_cfg.get("num_workers", 0)),
            pin_memory=self.device.type == "cuda",
        )
        losses = LossAggregator(self.cfg["loss_cfg"]).to(self.device)
        params = [p for p in self.model.parameters() if p.requires_grad] + \
                 [p for p in losses.parameters() if p.requires_grad]
        optimizer = self._build_optimizer(params)
        scheduler = self._build_scheduler(optimizer)
        dtype = self.autocast_dtype("trainer_cfg")
        scaler = torch.amp.GradScaler("cuda", enabled=dtype is torch.float16)
        self._restore_training(optimizer, scheduler, scaler)
        loader.sampler.start = self.batches_seen
        return TrainingParts(loader, losses, optimizer, scheduler, scaler, self.autocast(dtype))

    def train_step(self, parts: TrainingParts, batch: Any) -> Optional[Tuple[torch.Tensor, Dict[str, Any], Dict[str, Any]]]:
        """One optimisation step on a collated batch: forward, losses, backward, optimizer and
        scheduler step. Returns ``(loss, loss_info, model_output)``, or None when a float16
        step overflowed and was skipped (not counted, no scheduler step)."""
        inputs = move_batch(batch, self.device)
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

    def _restore_training(self, optimizer, scheduler, scaler) -> int:
        tcfg = self.trainer_cfg
        hint = tcfg.get("restore_hint", 0)
        if hint in (0, "0", None, ""):
            return 0
        path = resolve_restore_hint(hint, self.checkpoint_dir, self.save_name)
        ckpt = load_checkpoint(path)
        self._load_model_state(ckpt, bool(tcfg.get("restore_ckpt_strict", True)), path)
        if tcfg.get("optimizer_reset", False) or "optimizer" not in ckpt:
            logger.warning("optimizer state not restored (%s)", "optimizer_reset" if "optimizer" in ckpt else "absent")
        else:
            optimizer.load_state_dict(ckpt["optimizer"])
        if tcfg.get("scheduler_reset", False) or "scheduler" not in ckpt:
            logger.warning("scheduler state not restored (%s)", "scheduler_reset" if "scheduler" in ckpt else "absent")
        else:
            scheduler.load_state_dict(ckpt["scheduler"])
        if isinstance(hint, int):  # resume: continue counting, same batches, same random streams
            self.iteration = int(ckpt.get("iteration", hint))
            self.batches_seen = int(ckpt.get("batches_seen", self.iteration))
            if "scaler" in ckpt and scaler.is_enabled():
                scaler.load_state_dict(ckpt["scaler"])
            rng = rng_states_for_rank(ckpt, self.rank)
            if rng is not None:
                restore_rng_state(rng)
        logger.info("restored %s (iteration %d)", path, self.iteration)
        return self.iteration

    def _save(self, optimizer, scheduler, scaler) -> None:
        rng_states = dist_utils.all_gather_object(capture_rng_state())
        if self.rank == 0:
            payload = {
                "model": self.model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "iteration": self.iteration,
                "batches_seen": self.batches_seen,
                "rng": rng_states,
            }
            if scaler.is_enabled():
                payload["scaler"] = scaler.state_dict()
            path = checkpoint_path(self.checkpoint_dir, self.save_name, self.iteration)
            save_checkpoint(path, payload)
            logger.info("checkpoint saved: %s", path)
        dist_utils.barrier()

    def _loop(self, parts: TrainingParts, total_iter: int) -> None:
        tcfg = self.trainer_cfg
        log_iter, save_iter = int(tcfg["log_iter"]), int(tcfg["save_iter"])
        window: Dict[str, List[Any]] = defaultdict(list)
        bar = None
        if self.rank == 0:
            from tqdm import tqdm

            bar = tqdm(total=total_iter, initial=self.iteration, desc="Training", unit="it", leave=False)
        visual: Dict[str, Any] = {}
        timer = time.time()
        self.net.train()
        if tcfg.get("fix_BN", False):
            set_batchnorm_eval(self.model)
        for batch in parts.loader:
            self.batches_seen += 1
            step = self.train_step(parts, batch)
            if step is None:
                continue
            loss, info, output = step
            self.iteration += 1
            for key, value in info.items():  # kept on the device: no synchronisation per step
                window[key].append(value.detach())
            visual = output.get("visual_summary", {})
            if bar is not None:
                bar.update(1)
            if self.iteration % log_iter == 0:
                means = mean_of_window(window)
                window.clear()
                if bar is not None:
                    bar.set_postfix(loss=f"{loss.item():.4f}")
                text = ", ".join(f"{k[len('scalar/'):].replace('/', '_')}={v:.4f}" for k, v in means.items())
                logger.info("Iteration %05d, Cost %.2fs, %s", self.iteration, time.time() - timer, text)
                means["scalar/learning_rate"] = parts.optimizer.param_groups[0]["lr"]
                self.writer.scalars(means, self.iteration)
                timer = time.time()
            if self.iteration % save_iter == 0:
                self._save(parts.optimizer, parts.scheduler, parts.scaler)
                self.writer.images(visual, self.iteration)
                if tcfg.get("with_test", False):
                    results = self.run_test(f"{self.iteration:05d}")
                    self.writer.scalars(results, self.iteration)
                    self.net.train()
                    if tcfg.get("fix_BN", False):
                        set_batchnorm_eval(self.model)
                    timer = time.time()
                self.writer.flush()
            if self.iteration >= total_iter:
                break
        if bar is not None:
            bar.close()
        logger.info("training finished at iteration %d", self.iteration)


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
