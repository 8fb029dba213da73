"""Training throughput per model: the real data pipeline vs the model-only limit.

For each model's CASIA-B recipe (its real batch size, frame sampling and transforms), on a
synthetic CASIA-B-like dataset; and for SkeletonGait (``--models skeletongait``: the CCPG
recipe's DeepGaitV2 ``[64, 128, 256, 512]``, batch [8, 16] x 30 frames, skeleton maps rendered
from the poses by the ``SkeletonMap`` transform, in the workers or, with
``trainer_cfg.transform_on=device``, on the device) on the same data, its classifier sized to
the dataset's training subjects:

* **model-only**: one batch is built by the real loader's batch builder (in this process, so
  that no worker is left prefetching batches nobody reads) and reused; the runner's own
  training step (transfer, forward, losses, backward, optimizer, scheduler) is timed on it
  repeatedly. This is the most the model can process. With device transforms the step includes
  them (for SkeletonGait: the rendering).
* **pipeline**: the same training step fed by the real DataLoader (workers load, sample
  frames and run the transforms), as ``--phase train`` runs it.

Efficiency = pipeline throughput / model-only throughput (goal: >= 0.9). Each variant
(float32, bfloat16/float16 autocast, ``torch.compile``, channels-last layout, the fused
optimizer step) is measured in the same run. Figures
are medians over ``--repeats`` timed windows of ``--steps`` steps, after ``--warmup`` steps.

    python benchmarks/train_throughput.py                       # the four graph models, CPU, fp32 + bf16
    python benchmarks/train_throughput.py --models gaitgraph2 --variants fp32,compile
    python benchmarks/train_throughput.py --models skeletongait --variants fp32,fp16 --device cuda \
        --num-workers 4 --override trainer_cfg.transform_on=device
    python benchmarks/train_throughput.py --tiny                 # seconds; what CI runs

Results are printed as a table and written to ``benchmarks/results/train_throughput.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastposegait.config import load_config  # noqa: E402
from fastposegait.data.autogen import ensure_dataset  # noqa: E402
from fastposegait.distributed import DistEnv  # noqa: E402
from fastposegait.engine.log import setup_logging  # noqa: E402
from fastposegait.engine.runner import Runner  # noqa: E402
from machine import write_report  # noqa: E402

CONFIGS = {
    "gaitgraph2": "configs/gaitgraph2/gaitgraph2.yaml",
    "gaitgraph1": "configs/gaitgraph1/gaitgraph1_phase1.yaml",
    "gaittr": "configs/gaittr/gaittr.yaml",
    "gpgait": "configs/gpgait/gpgait.yaml",
}
#: every recipe this benchmark times: the graph models' (``CONFIGS``, the default, which the other
#: benchmarks share) and SkeletonGait's, asked for by name (its CNN takes minutes per step on a CPU)
RECIPES = {**CONFIGS, "skeletongait": "configs/skeletongait/skeletongait_CCPG.yaml"}
#: models whose classifier width must equal the dataset's training subjects: the config key
CLASS_NUM_KEYS = {"skeletongait": "model_cfg.SeparateBNNecks.class_num"}
#: precision is set both ways, because a recipe may switch float16 on itself (SkeletonGait's does)
VARIANTS = {
    "fp32": ["trainer_cfg.enable_float16=false", "trainer_cfg.enable_bfloat16=false"],
    "bf16": ["trainer_cfg.enable_float16=false", "trainer_cfg.enable_bfloat16=true"],
    "fp16": ["trainer_cfg.enable_float16=true", "trainer_cfg.enable_bfloat16=false"],
    "compile": ["trainer_cfg.compile=true"],
    "channels_last": ["trainer_cfg.channels_last=true"],
    "fused_optimizer": ["optimizer_cfg.fused=true"],
}


def dataset_overrides(root: Path, subjects: int, frames: Sequence[int]) -> List[str]:
    return [
        f"data_cfg.dataset_root={root / 'data'}",
        f"data_cfg.dataset_partition={root / 'partition.json'}",
        "data_cfg.dataset_name=Synthetic-CASIA-B",
        "data_cfg.test_dataset_name=CASIA-B",
        "data_cfg.frame_threshold=0",
        f"data_cfg.synthetic={{layout: casia-b, num_subjects: {subjects}, seed: 0, frames: [{frames[0]}, {frames[1]}]}}",
    ]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_windows(step, steps: int, warmup: int, repeats: int, device: torch.device) -> List[float]:
    """Seconds per step of ``repeats`` windows of ``steps`` calls each, after ``warmup`` calls."""
    for _ in range(warmup):
        step()
    _sync(device)
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(device)
        out.append((time.perf_counter() - start) / steps)
    return out


def measure(model: str, variant: str, overrides: List[str], device: torch.device, steps: int, warmup: int,
            repeats: int, num_workers: Optional[int]) -> Dict[str, Any]:
    """Model-only and pipeline seconds per step for one model and variant."""
    over = list(overrides) + VARIANTS[variant] + ["trainer_cfg.log_iter=1000000", "trainer_cfg.save_iter=1000000",
                                                  "trainer_cfg.total_iter=1000000", "scheduler_cfg.total_steps=1000000"]
    if num_workers is not None:
        over.append(f"data_cfg.num_workers={num_workers}")
    cfg = load_config(REPO / RECIPES[model], over)
    ensure_dataset(cfg["data_cfg"])
    classes: Dict[str, int] = {}
    if model in CLASS_NUM_KEYS:  # the recipe's class count is its own dataset's, not this one's
        classes["class_num"] = training_subjects(cfg)
        cfg = load_config(REPO / RECIPES[model], over + [f"{CLASS_NUM_KEYS[model]}={classes['class_num']}"])
    runner = Runner(cfg, "train", DistEnv(), device)
    setup_logging(rank=1)  # the runner set up rank-0 logging; keep the benchmark's output readable
    parts = runner.build_training()
    runner.net.train()
    batch = first_batch(parts.loader, device)
    batch_size = batch.num_sequences
    frames = tuple(batch.inputs[0].shape)

    def model_step() -> None:
        runner.train_step(parts, batch)

    model_only = _timed_windows(model_step, steps, warmup, repeats, device)

    stream = iter(parts.loader)

    def pipeline_step() -> None:
        runner.train_step(parts, next(stream))

    pipeline = _timed_windows(pipeline_step, steps, warmup, repeats, device)
    m, p = statistics.median(model_only), statistics.median(pipeline)
    return {
        "model": model, "variant": variant, "batch": batch_size, "input_shape": list(frames),
        "num_workers": cfg["data_cfg"]["num_workers"], "transform_on": cfg["trainer_cfg"]["transform_on"], **classes,
        "model_only_s_per_step": model_only, "pipeline_s_per_step": pipeline,
        "model_only_seq_per_s": batch_size / m, "pipeline_seq_per_s": batch_size / p,
        "efficiency": m / p,
    }


def training_subjects(cfg: Dict[str, Any]) -> int:
    """Subjects in the partition's ``TRAIN_SET`` (the classifier's width)."""
    return len(json.loads(Path(cfg["data_cfg"]["dataset_partition"]).read_text())["TRAIN_SET"])


def first_batch(loader: Any, device: torch.device) -> Any:
    """The loader's first batch, built in this process by its batch builder (the loader's
    dataset) from its sampler's first request, pinned like the loader pins on CUDA.

    Not ``next(iter(loader))``: with persistent workers that iterator lives on, its workers
    keep preparing ``prefetch_factor`` (4) batches each, and the pipeline's fresh iterator would
    first wait for all of them: for SkeletonGait's 128 x 30-frame batches, at the ~600 frames/s
    of one CPU core that docs/benchmarks.md reports for ``SkeletonMap``, about 4 x 6 s."""
    batch = loader.dataset[next(iter(loader.sampler))]
    if device.type == "cuda":
        batch = batch._replace(inputs=[x.pin_memory() for x in batch.inputs], labels=batch.labels.pin_memory())
    return batch


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(CONFIGS),
                        help="comma-separated: " + ", ".join(RECIPES) + " (default: the four graph models)")
    parser.add_argument("--variants", default="fp32,bf16", help="comma-separated: " + ", ".join(VARIANTS))
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--steps", type=int, default=3, help="steps per timed window")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="timed windows; the median is reported")
    parser.add_argument("--num-workers", type=int, default=None, help="override data_cfg.num_workers")
    parser.add_argument("--subjects", type=int, default=40, help="synthetic dataset size (subjects)")
    parser.add_argument("--data", default=None, help="folder for the synthetic dataset (default: a temp dir)")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="extra config override for every model, e.g. trainer_cfg.sampler.frames_num_fixed=30")
    parser.add_argument("--tiny", action="store_true", help="tiny batches and models: proves the script works")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "train_throughput.json"))
    args = parser.parse_args(argv)
    setup_logging(rank=1)  # quiet: errors only
    device = torch.device("cuda" if args.device != "cpu" and torch.cuda.is_available() else "cpu")
    models = [m for m in args.models.split(",") if m]
    variants = [v for v in args.variants.split(",") if v]
    for name in models + variants:
        if name not in RECIPES and name not in VARIANTS:
            parser.error(f"unknown model or variant {name!r}")
    root = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="fpg-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    overrides = dataset_overrides(root, 6 if args.tiny else args.subjects, (20, 36) if args.tiny else (60, 110))
    if args.tiny:
        overrides += ["trainer_cfg.sampler.frames_num_fixed=12", "trainer_cfg.sampler.frames_num_min=10",
                      "trainer_cfg.sampler.frames_num_max=14"]
        args.steps, args.warmup, args.repeats = 1, 1, 1
    overrides += args.override
    rows = []
    out = Path(args.out).resolve()  # before changing directory
    out.parent.mkdir(parents=True, exist_ok=True)
    cwd = os.getcwd()
    os.chdir(root)  # the runner writes output/ under the working directory
    try:
        for model in models:
            extra = _tiny_model(model) if args.tiny else []
            for variant in variants:
                row = measure(model, variant, overrides + extra, device, args.steps, args.warmup, args.repeats,
                              args.num_workers)
                rows.append(row)
                _write(out, args, argv, device, rows)  # after every row: a long run keeps what it measured
                print(f"{model:11s} {variant:8s} batch {row['batch']:4d}  model-only {row['model_only_seq_per_s']:8.1f} seq/s"
                      f"  pipeline {row['pipeline_seq_per_s']:8.1f} seq/s  efficiency {row['efficiency']:.3f}",
                      flush=True)
    finally:
        os.chdir(cwd)
    report = _write(out, args, argv, device, rows)
    print(f"written {out}")
    return report


def _write(out: Path, args: argparse.Namespace, argv: Optional[Sequence[str]], device: torch.device,
           rows: List[Dict[str, Any]]) -> Dict[str, Any]:
    return write_report(out, "train_throughput", argv, device=str(device), steps=args.steps, warmup=args.warmup,
                        repeats=args.repeats, overrides=args.override, tiny=args.tiny, rows=rows)


def _tiny_model(model: str) -> List[str]:
    """Overrides that shrink a CASIA-B recipe to a few seconds on a CPU."""
    small_batch = {"gaitgraph2": ["trainer_cfg.sampler.batch_size=8"],
                   "gaitgraph1": ["trainer_cfg.sampler.batch_size=8", "trainer_cfg.sampler.frames_num_fixed=24",
                                  "trainer_cfg.transform.0.trf_cfg.2.sequence_length=10"],
                   "gaittr": ["trainer_cfg.sampler.batch_size=[2, 4]"],
                   "gpgait": ["trainer_cfg.sampler.batch_size=[2, 4]", "model_cfg.num_class=4"],
                   "skeletongait": ["model_cfg.Backbone.channels=[8, 8, 16, 16]", "trainer_cfg.sampler.batch_size=[2, 2]",
                                    "trainer_cfg.sampler.frames_num_fixed=6"]}
    return small_batch.get(model, [])


if __name__ == "__main__":
    from fastposegait.cli import run_cli  # quiet on a closed pipe (| head), one line on Ctrl-C

    raise SystemExit(run_cli(main))
