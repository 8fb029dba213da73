"""Helpers for tests that drive the command line: a tiny demo config and a CLI runner."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import List, Sequence

REPO = Path(__file__).resolve().parents[1]
MAIN = REPO / "fastposegait" / "main.py"
DEMO_CFG = REPO / "configs" / "demo" / "gaitgraph2_demo.yaml"


def synthetic_data_overrides(root: Path) -> List[str]:
    """A tiny synthetic CASIA-B-like dataset generated under ``root`` (6 subjects, 2 views,
    20-36 frames), loaded in the main process."""
    return [
        f"data_cfg.dataset_root={root / 'data'}",
        f"data_cfg.dataset_partition={root / 'partition.json'}",
        "data_cfg.synthetic.num_subjects=6",
        "data_cfg.synthetic.views=['000', '090']",
        "data_cfg.synthetic.frames=[20, 36]",
        "data_cfg.num_workers=0",
    ]


def schedule_overrides(total_iter: int, save_iter: int) -> List[str]:
    """Train ``total_iter`` iterations, checkpoint every ``save_iter``, log every one."""
    return [
        f"trainer_cfg.total_iter={total_iter}",
        f"trainer_cfg.save_iter={save_iter}",
        "trainer_cfg.log_iter=1",
        f"scheduler_cfg.total_steps={total_iter}",
    ]


#: A narrow GaitGraph2 on short clips and small batches (any GaitGraph2 config).
TINY_GAITGRAPH2 = [
    "model_cfg.input_branch=[5, 16, 8]",
    "model_cfg.main_stream=[8, 32, 64]",
    "model_cfg.num_class=32",
    "trainer_cfg.sampler.batch_size=8",
    "trainer_cfg.sampler.frames_num_fixed=12",
    "evaluator_cfg.sampler.batch_size=16",
    "evaluator_cfg.sampler.frames_num_fixed=12",
]


def tiny_overrides(root: Path) -> List[str]:
    """Shrink the demo config to seconds: a tiny dataset, a narrow GaitGraph2, short clips,
    4 iterations with checkpoints at 2 and 4."""
    return synthetic_data_overrides(root) + TINY_GAITGRAPH2 + schedule_overrides(4, 2)


def _tiny_gpgait(trained_keys: List[str]) -> dict:
    """The :data:`TINY` entry of GPGait and GPGait++, which shrink and train alike (19 parts of
    16 channels; triplet and cross-entropy losses)."""
    return {
        "overrides": [
            "model_cfg.in_channels=[2, 8, 8, 8, 16]",
            "model_cfg.num_class=4",  # one logit per training subject (4 of the 6)
            "trainer_cfg.sampler.batch_size=[2, 2]",
            "trainer_cfg.sampler.frames_num_fixed=12",
            "evaluator_cfg.sampler.batch_size=8",
        ],
        "embedding": (16, 19),
        "logged": ["triplet_hard_loss=", "softmax_loss=", "softmax_accuracy="],
        "trained_keys": trained_keys,
    }


#: per model (model_cfg.model of a demo): narrow widths and small batches; the test embedding
#: shape (C, P) they give; what training logs; tensors that must change between checkpoints
TINY = {
    "GaitGraph1": {
        "overrides": [
            "model_cfg.input_branch=[3, 16, 8]",
            "model_cfg.main_stream=[8, 32, 32, 64, 64]",
            "model_cfg.num_class=32",
            "trainer_cfg.sampler.batch_size=8",
            "trainer_cfg.sampler.frames_num_fixed=16",
            "trainer_cfg.transform.0.trf_cfg.2.sequence_length=10",  # RandomSelectSequence: two 10-frame views
            "evaluator_cfg.sampler.batch_size=16",
            "evaluator_cfg.sampler.frames_num_fixed=12",
        ],
        "embedding": (32, 1),  # TTA: mean of the sequence and its reversal
        "logged": ["SupConLoss_loss="],
        "trained_keys": ["ResGCN.backbone.3.edge"],
    },
    "GaitGraph2": {
        "overrides": TINY_GAITGRAPH2,
        "embedding": (3 * 32, 1),  # TTA: original | reversed | flipped
        "logged": ["SupConLoss_loss="],
        "trained_keys": ["ResGCN.fcn.weight", "ResGCN.backbone.1.edge"],
    },
    "GaitTR": {
        "overrides": [
            "model_cfg.in_channels=[10, 32, 32]",
            "model_cfg.num_class=32",
            "trainer_cfg.sampler.batch_size=[4, 2]",
            "trainer_cfg.sampler.frames_num_fixed=12",
            "evaluator_cfg.sampler.batch_size=8",
        ],
        "embedding": (32, 1),
        "logged": ["triplet_hard_loss="],
        "trained_keys": ["backbone.1.st.attention_conv.qkv_conv.weight"],
    },
    "gpgait": _tiny_gpgait(["pose.part_2.0.asg.PA", "angle.layer_share.0.asg.conv_d.0.weight", "BNNecks.fc_bin"]),
    "GPGait_PlusPlus": _tiny_gpgait(["pose.part_2.0.asg.PA", "angle.layer_share.0.tcn.conv.weight", "BNNecks.fc_bin"]),
    "DeepGaitV2": {
        "overrides": [
            "model_cfg.Backbone.channels=[8, 8, 16, 16]",
            "model_cfg.SeparateBNNecks.class_num=4",  # one logit per training subject (4 of the 6)
            "trainer_cfg.sampler.batch_size=[2, 2]",
            "trainer_cfg.sampler.frames_num_fixed=6",
            "evaluator_cfg.sampler.batch_size=8",
            "evaluator_cfg.sampler.frames_num_fixed=8",
        ],
        "embedding": (16, 16),  # FC features (channels[2]) x 16 horizontal strips
        "logged": ["triplet_loss=", "softmax_loss=", "softmax_accuracy="],
        "trained_keys": ["layer2.0.shortcut3d.weight", "BNNecks.fc_bin"],
    },
    "RawJointsNN": {"overrides": [], "embedding": (4 * 17, 1), "logged": [], "trained_keys": []},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(args: Sequence[str], cwd: Path, launcher: Sequence[str] = (), timeout: int = 300,
            check: bool = True, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``fastposegait/main.py`` (optionally under a launcher) in ``cwd``."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    env.update(env_extra or {})
    cmd = [sys.executable, *launcher, str(MAIN), *args] if launcher else [sys.executable, str(MAIN), *args]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    return proc

