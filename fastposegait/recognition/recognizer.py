"""A trained model as a function from pose sequences to embeddings.

:class:`GaitRecognizer` loads a model from a run folder (or a config and a checkpoint) and
embeds pose sequences ``[T, V, C]`` exactly as the test phase does: the same frame sampling
(``evaluator_cfg.sampler``), transforms (``evaluator_cfg.transform``), test-time augmentation
(inside the model), autocast and cutting into model calls. Sequence ``i`` of a call gets the
random key ``keys[i]`` (default ``i``), the key the test phase gives the ``i``-th sequence of
its test set, so embedding a test split in dataset order reproduces the test phase's
embeddings. Only configs whose test sampler draws a random window (``fixed_ordered``, as in
the GaitGraph recipes) depend on the key; ``all_ordered`` uses every frame.

Example::

    rec = GaitRecognizer.from_run("output/Synthetic-CASIA-B/GaitGraph2/GaitGraph2-demo")
    embeddings = rec.embed([pose_a, pose_b])        # float32 [2, C, P]
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from .. import __version__
from ..config import Config, load_typed_config
from ..data.batch import Batch
from ..data.collate import BatchCollator
from ..data.frames import frame_sampler_from_cfg
from ..data.layout import PoseRequirement, pose_requirement
from ..data.sampler import batch_rng
from ..data.transforms import build_transforms
from ..distributed import DistEnv, select_device
from ..engine.checkpoint import load_checkpoint, load_model_state, resolve_restore_hint
from ..engine.inference import CPU_SEQUENCES_PER_CALL, embed_batch
from ..engine.setup import autocast_dtype, autocast_factory
from ..errors import CheckpointError, ConfigError, PoseFileError
from ..modeling import BaseModel, build_model

logger = logging.getLogger(__name__)

#: a pose sequence ``[T, V, C]``, or one array per modality
SequenceLike = Union[np.ndarray, Sequence[np.ndarray]]

#: the resolved configs a run folder holds, in the order they are preferred
RUN_CONFIGS = ("config_train.yaml", "config_test.yaml")
#: the test phase's stream of per-sequence generators (``batch_rng(seed, TEST_PHASE, 0, key)``)
TEST_PHASE = 1


class GaitRecognizer:
    """A model in evaluation mode with the test phase's data pipeline.

    Build one with :meth:`from_run` or :meth:`from_config`.

    Attributes:
        model: the :class:`~fastposegait.modeling.BaseModel`, in eval mode on ``device``.
        config: the resolved :class:`~fastposegait.config.Config`.
        device: where the model runs.
        checkpoint: the checkpoint file loaded, or None for an untrained model.
        iteration: the training iteration of that checkpoint when known.
    """

    def __init__(self, config: Config, model: BaseModel, device: torch.device,
                 checkpoint: Optional[Path] = None, iteration: Optional[int] = None,
                 config_path: Optional[Path] = None) -> None:
        self.config = config
        self.model = model.to(device).eval()
        self.device = device
        self.checkpoint = checkpoint
        self.iteration = iteration
        self.config_path = config_path
        evaluator = config.evaluator
        sampler_cfg = evaluator.sampler.as_mapping()
        self._collator = BatchCollator(frame_sampler_from_cfg(sampler_cfg),
                                       build_transforms(evaluator.transform, "evaluator_cfg.transform"))
        self._requirements: List[PoseRequirement] = [
            pose_requirement(config.model, evaluator.transform, "evaluator_cfg.transform", m)
            for m in range(len(self._collator.transforms))]
        self.batch_size = int(sampler_cfg.get("batch_size") or 1)
        self.seed = evaluator.seed
        self._autocast = autocast_factory(device, autocast_dtype(evaluator, "evaluator_cfg", device))
        self._embedding_shape: Optional[List[int]] = None
        self._weights_sha256: Optional[str] = None

    # ------------------------------------------------------------------ building
    @classmethod
    def from_config(cls, cfgs: Union[str, Path], checkpoint: Union[str, Path, None] = None,
                    iteration: Optional[int] = None, overrides: Sequence[str] = (),
                    device: Union[str, torch.device] = "auto") -> "GaitRecognizer":
        """The model of config ``cfgs`` with the weights of ``checkpoint`` (a file), or of
        iteration ``iteration`` of the config's run folder (``output/<dataset>/<model>/
        <save_name>/checkpoints``, relative to the working directory, as for ``--iter``), or of
        ``evaluator_cfg.restore_hint`` when neither is given. Iteration 0 (or a restore_hint of
        0) is the untrained model. ``overrides`` are ``key.sub=value`` strings as on the
        command line."""
        config = load_typed_config(cfgs, overrides)
        if checkpoint is not None and iteration is not None:
            raise ConfigError("give a checkpoint file or an iteration, not both")
        hint: Union[int, str] = str(checkpoint) if checkpoint is not None else \
            iteration if iteration is not None else config.evaluator.restore_hint
        save_name = config.evaluator.save_name
        run = Path("output") / config.data.dataset_name / config.model["model"] / save_name
        return cls._build(config, hint, run / "checkpoints", save_name, device, Path(cfgs))

    @classmethod
    def from_run(cls, run: Union[str, Path], iteration: Optional[int] = None, overrides: Sequence[str] = (),
                 device: Union[str, torch.device] = "auto") -> "GaitRecognizer":
        """The model a training run left in the folder ``run`` (``output/<dataset>/<model>/
        <save_name>``): its resolved config (``config_train.yaml``, else ``config_test.yaml``)
        and the checkpoint of ``iteration`` (None: the latest in ``run/checkpoints``)."""
        run = Path(run)
        config_path = next((run / name for name in RUN_CONFIGS if (run / name).is_file()), None)
        if config_path is None:
            what = "does not exist" if not run.exists() else "holds neither " + " nor ".join(RUN_CONFIGS)
            raise ConfigError(f"{run}: {what}; give the folder of a run (output/<dataset>/<model>/<save_name>), "
                              "or a config with --cfgs")
        config = load_typed_config(config_path, overrides)
        save_name = run.name
        checkpoints = run / "checkpoints"
        if iteration is None:
            found = _iterations(checkpoints, save_name)
            if not found:
                raise CheckpointError(f"{checkpoints}: no checkpoint {save_name}-<iteration>.pt; train the run "
                                      "first, or give --iter 0 for the untrained model")
            iteration = found[-1]
        return cls._build(config, iteration, checkpoints, save_name, device, config_path)

    @classmethod
    def _build(cls, config: Config, hint: Union[int, str], checkpoints: Path, save_name: str,
               device: Union[str, torch.device], config_path: Path) -> "GaitRecognizer":
        device = _device(device)
        model = build_model(config.model)
        if hint in (0, "0", ""):
            logger.warning("no checkpoint: the model is untrained (freshly initialised)")
            return cls(config, model, device, None, 0, config_path)
        path = resolve_restore_hint(hint, checkpoints, save_name)
        ckpt = load_checkpoint(path, model)
        load_model_state(model, ckpt["model"], config.evaluator.restore_ckpt_strict, path)
        iteration = ckpt.get("iteration", hint if isinstance(hint, int) else None)
        logger.info("loaded %s", path)
        return cls(config, model, device, path, iteration if isinstance(iteration, int) else None, config_path)

    # ------------------------------------------------------------------ facts
    @property
    def metric(self) -> str:
        """The distance of the config's evaluator: ``euc`` or ``cos``."""
        return self.config.evaluator.metric

    @property
    def num_joints(self) -> Optional[int]:
        """Joints per frame the first modality must have (None: any)."""
        return self._requirements[0].joints

    @property
    def num_channels(self) -> Optional[int]:
        """Channels per joint the first modality must have (None: 2 or 3)."""
        return self._requirements[0].channels

    @property
    def info(self) -> Dict[str, Any]:
        """What produced the embeddings (JSON-able): stored with galleries and embedding files,
        so that embeddings of different models are never compared."""
        return {
            "model": self.config.model["model"],
            "config": str(self.config_path.resolve()) if self.config_path else None,
            "checkpoint": str(self.checkpoint.resolve()) if self.checkpoint else None,
            "iteration": self.iteration,
            "dataset_name": self.config.data.dataset_name,
            "metric": self.metric,
            "embedding_shape": self.embedding_shape,
            "weights_sha256": self.weights_sha256,
            "fastposegait_version": __version__,
        }

    @property
    def weights_sha256(self) -> str:
        """A fingerprint of the model's weights (names and values of its state dict), so that
        embeddings of the same weights match wherever the checkpoint file lives."""
        if self._weights_sha256 is None:
            digest = hashlib.sha256()
            for name, tensor in sorted(self.model.state_dict().items()):
                digest.update(name.encode())
                digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
            self._weights_sha256 = digest.hexdigest()
        return self._weights_sha256

    @property
    def embedding_shape(self) -> List[int]:
        """``[C, P]`` of one embedding (measured once on a dummy sequence)."""
        if self._embedding_shape is None:
            req = self._requirements
            dummy = [np.ones((8, r.joints or 17, r.channels or max(3, r.min_channels)), np.float32) for r in req]
            self._embedding_shape = list(self.embed([dummy]).shape[1:])
        return self._embedding_shape

    # ------------------------------------------------------------------ embedding
    @torch.no_grad()
    def embed(self, sequences: Union[SequenceLike, Sequence[SequenceLike]], keys: Optional[Sequence[int]] = None,
              batch_size: Optional[int] = None, progress: bool = False) -> np.ndarray:
        """Embed pose sequences; returns float32 ``[N, C, P]`` in input order.

        Args:
            sequences: one array ``[T, V, C]`` (one sequence), a list of them, or a list of
                per-modality lists when the config has several modalities.
            keys: the test phase's random key of each sequence (default ``0..N-1``).
            batch_size: sequences prepared at once (default: the test sampler's batch size).
            progress: show a progress bar on stderr.
        """
        items = self._as_items(sequences)
        keys = list(range(len(items))) if keys is None else [int(k) for k in keys]
        if len(keys) != len(items):
            raise ValueError(f"keys: {len(keys)} keys for {len(items)} sequences")
        size = max(1, int(batch_size or self.batch_size))
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(items), desc="Embedding", unit="seq", leave=False)
        chunks = []
        was_training = self.model.training
        self.model.eval()
        try:
            for start in range(0, len(items), size):
                chunk = items[start:start + size]
                chunks.append(self._embed_chunk(chunk, keys[start:start + size]))
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
            self.model.train(was_training)
        if not chunks:
            return np.zeros((0, *(self._embedding_shape or (0, 0))), np.float32)
        return np.concatenate(chunks)

    def _embed_chunk(self, chunk: List[List[np.ndarray]], keys: List[int]) -> np.ndarray:
        n = len(chunk)
        rngs = [batch_rng(self.seed, TEST_PHASE, 0, k) for k in keys]
        batch: Batch = self._collator(chunk, np.zeros(n, np.int64), [""] * n, [""] * n, rngs)
        inputs = batch.to(self.device)
        calls = self.config.evaluator.max_sequences_per_call
        if calls is None and self.device.type == "cpu":
            calls = CPU_SEQUENCES_PER_CALL
        with (self._autocast() if self._autocast else contextlib.nullcontext()):
            out = embed_batch(self.model, inputs, self._collator.time_axes, calls)
        return out.float().cpu().numpy()

    def _as_items(self, sequences: Union[SequenceLike, Sequence[SequenceLike]]) -> List[List[np.ndarray]]:
        """Per sequence, its list of modality arrays, checked against the config."""
        n_mod = len(self._requirements)
        if isinstance(sequences, np.ndarray) or torch.is_tensor(sequences):
            sequences = [sequences]  # one sequence
        items = []
        for i, seq in enumerate(sequences):
            arrays = list(seq) if isinstance(seq, (list, tuple)) else [seq]
            if len(arrays) != n_mod:
                raise PoseFileError(f"sequence {i}: {len(arrays)} modalities, the config's evaluator_cfg.transform "
                                    f"has {n_mod}")
            items.append([self._checked(a, i, m) for m, a in enumerate(arrays)])
        return items

    def _checked(self, array: Any, index: int, modality: int) -> np.ndarray:
        where = f"sequence {index}" + (f", modality {modality}" if len(self._requirements) > 1 else "")
        if torch.is_tensor(array):
            array = array.detach().cpu().numpy()
        array = np.asarray(array)
        if array.ndim != 3 or not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
            raise PoseFileError(f"{where}: expected a real array [frames, joints, channels], got "
                                f"{array.dtype} of shape {list(array.shape)}")
        if array.shape[0] < 1:
            raise PoseFileError(f"{where}: has no frames")
        array = array.astype(np.float32, copy=False)
        if not np.isfinite(array).all():
            raise PoseFileError(f"{where}: holds NaN or infinite values; mark missing joints with 0 instead")
        problem = self._requirements[modality].problem(array.shape[1], array.shape[2])
        if problem:
            raise PoseFileError(f"{where}: {problem} (model {self.config.model['model']}); use poses of the "
                                "layout the model was trained on")
        return array


def _iterations(checkpoints: Path, save_name: str) -> List[int]:
    pattern = re.compile(re.escape(save_name) + r"-(\d+)\.pt")
    if not checkpoints.is_dir():
        return []
    return sorted(int(m.group(1)) for p in checkpoints.iterdir() if (m := pattern.fullmatch(p.name)))


def _device(device: Union[str, torch.device]) -> torch.device:
    if isinstance(device, torch.device):
        return device
    if device in ("auto", "cpu", "cuda"):
        return select_device(DistEnv(), device)
    return torch.device(device)
