"""Time of one SkeletonGait (DeepGaitV2 p3d) training step and of one test forward.

A training step is the forward of a random ``[n, s, 2, 64, 44]`` map batch (what the
transforms hand the model), both losses of the config, backward and the config's SGD step;
the test forward is one ``[1, frames, 2, 64, 44]`` sequence in evaluation mode. Maps are
random: the time does not depend on their content. Medians over ``--iters`` steps after one
warm-up step.

    OMP_NUM_THREADS=1 python benchmarks/skeletongait_step.py --batch 4 --frames 30
    python benchmarks/skeletongait_step.py --config configs/skeletongait/skeletongait_Gait3D.yaml \
        --batch 128 --frames 30 --device cuda --amp

Results are printed and, with ``--out``, written as JSON.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fastposegait.modeling import build_model, count_parameters  # noqa: E402
from fastposegait.modeling.losses import LossAggregator  # noqa: E402


def measure(config: Path, batch: int, frames: int, iters: int, device: str, amp: bool,
            test_frames: int) -> Dict[str, Any]:
    """Build the config's model, losses and SGD, run ``iters + 1`` training steps and two test
    forwards; return the timings (seconds) and what was run."""
    raw = yaml.safe_load(config.read_text())
    torch.manual_seed(0)
    dev = torch.device(device)
    model = build_model(raw["model_cfg"]).to(dev).train()
    losses = LossAggregator(raw["loss_cfg"])
    opt_cfg = raw["optimizer_cfg"]
    optimizer = torch.optim.SGD(model.parameters(), lr=opt_cfg["lr"], momentum=opt_cfg["momentum"],
                                weight_decay=opt_cfg["weight_decay"])
    scaler = torch.amp.GradScaler(dev.type, enabled=amp)
    x = torch.rand(batch, frames, 2, 64, 44, device=dev)
    labels = torch.arange(batch, device=dev) // 2
    autocast = (lambda: torch.autocast(dev.type, dtype=torch.float16)) if amp else contextlib.nullcontext

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    steps: List[float] = []
    for _ in range(iters + 1):
        sync()
        start = time.perf_counter()
        with autocast():
            total, _ = losses(model(([x], labels, None, None, None))["training_feat"])
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(total).backward()
        scaler.step(optimizer)
        scaler.update()
        sync()
        steps.append(time.perf_counter() - start)
    model.eval()
    tests: List[float] = []
    with torch.no_grad():
        seq = torch.rand(1, test_frames, 2, 64, 44, device=dev)
        for _ in range(2):
            sync()
            start = time.perf_counter()
            with autocast():
                model(([seq], None, None, None, None))
            sync()
            tests.append(time.perf_counter() - start)
    return {
        "benchmark": "skeletongait_step",
        "config": str(config.relative_to(REPO) if config.is_absolute() and REPO in config.parents else config),
        "parameters": count_parameters(model),
        "batch": [batch, frames, 2, 64, 44],
        "device": device,
        "amp": amp,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "step_s": steps,
        "median_step_s": statistics.median(steps[1:]) if len(steps) > 1 else steps[0],
        "test_frames": test_frames,
        "test_forward_s": tests[-1],
    }


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "skeletongait" / "skeletongait_CCPG.yaml")
    parser.add_argument("--batch", type=int, default=4, help="sequences per training batch")
    parser.add_argument("--frames", type=int, default=30, help="frames per training sequence")
    parser.add_argument("--iters", type=int, default=3, help="timed training steps (after one warm-up)")
    parser.add_argument("--test-frames", type=int, default=100, help="frames of the test sequence")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--amp", action="store_true", help="float16 autocast and a GradScaler (CUDA)")
    parser.add_argument("--out", type=Path, help="write the results here as JSON")
    args = parser.parse_args(argv)
    result = measure(args.config, args.batch, args.frames, args.iters, args.device, args.amp, args.test_frames)
    print(f"{result['config']}: {result['parameters']:,} parameters, batch {result['batch']} on {result['device']}"
          f"{' (amp)' if result['amp'] else ''}, {result['threads']} thread(s): training step "
          f"{result['median_step_s']:.3f} s (median of {len(result['step_s']) - 1}), test forward of "
          f"{result['test_frames']} frames {result['test_forward_s']:.3f} s")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
