"""Batch preparation with the transforms in the workers vs on the device, per recipe.

For each model's CASIA-B recipe at its real batch size, on a synthetic CASIA-B-like dataset:

* **worker**: one worker's time to load, sample frames and transform a batch
  (``transform_on: worker``; measured in the main process, ``num_workers: 0``, as one worker);
* **worker, device mode**: the same worker's time when it only loads and samples frames
  (``transform_on: device``);
* **device chain**: the time of the batched transforms on the device (``--device``; CUDA when
  available), on the raw batch already moved there.

With ``transform_on: device`` a batch costs a worker the second figure and the training step
the third; with ``worker`` it costs the worker the first. Medians over ``--batches`` batches
after one warm-up batch.

    python benchmarks/device_transforms.py                    # all recipes
    python benchmarks/device_transforms.py --models gaitgraph2 --device cpu
    python benchmarks/device_transforms.py --tiny             # seconds; what the tests run

Results are printed and written to ``benchmarks/results/device_transforms.json``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastposegait.config import load_config  # noqa: E402
from fastposegait.data.autogen import ensure_dataset  # noqa: E402
from fastposegait.data.dataset import dataset_from_cfg  # noqa: E402
from fastposegait.data.device_transforms import DeviceTransforms  # noqa: E402
from fastposegait.data.loader import build_loader  # noqa: E402
from fastposegait.engine.log import setup_logging  # noqa: E402
from machine import write_report  # noqa: E402
from train_throughput import CONFIGS, dataset_overrides  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_time(fn: Callable[[], Any], times: int, device: torch.device) -> List[float]:
    fn()  # warm-up
    _sync(device)
    out = []
    for _ in range(times):
        start = time.perf_counter()
        fn()
        _sync(device)
        out.append(time.perf_counter() - start)
    return out


def measure(model: str, overrides: Sequence[str], batches: int, device: torch.device) -> Dict[str, Any]:
    cfg = load_config(REPO / CONFIGS[model], list(overrides) + ["data_cfg.num_workers=0"])
    ensure_dataset(cfg["data_cfg"])
    dataset = dataset_from_cfg(cfg["data_cfg"], training=True)
    trainer = cfg["trainer_cfg"]
    row: Dict[str, Any] = {"model": model}
    for place in ("worker", "device"):
        loader = build_loader(dataset, trainer["sampler"], trainer["transform"], training=True, seed=0,
                              num_workers=0, transform_on=place)
        stream = iter(loader)
        row[f"{place}_mode_worker_s"] = _median_time(lambda: next(stream), batches, torch.device("cpu"))
    raw = next(iter(build_loader(dataset, trainer["sampler"], trainer["transform"], training=True, seed=0,
                                 num_workers=0, transform_on="device"))).to(device)
    chains = DeviceTransforms(trainer["transform"], seed=0)
    keys = iter(range(10**9))
    row["device_chain_s"] = _median_time(lambda: chains(raw, next(keys)), batches, device)
    row["batch"] = raw.num_sequences
    row["raw_shape"] = list(raw.inputs[0].shape)
    row["input_shape"] = list(chains(raw, 0).inputs[0].shape)
    for key in ("worker_mode_worker_s", "device_mode_worker_s", "device_chain_s"):
        row[f"median_{key}"] = statistics.median(row[key])
    return row


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(CONFIGS))
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--batches", type=int, default=5, help="timed batches (median reported)")
    parser.add_argument("--subjects", type=int, default=40, help="synthetic dataset size (subjects)")
    parser.add_argument("--data", default=None, help="folder for the synthetic dataset (default: a temp dir)")
    parser.add_argument("--tiny", action="store_true", help="tiny batches: proves the script works")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "device_transforms.json"))
    args = parser.parse_args(argv)
    setup_logging(rank=1)
    device = torch.device("cuda" if args.device != "cpu" and torch.cuda.is_available() else "cpu")
    out = Path(args.out).resolve()
    root = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="fpg-devtf-"))
    overrides = dataset_overrides(root, 6 if args.tiny else args.subjects, (20, 36) if args.tiny else (60, 110))
    if args.tiny:
        overrides += ["trainer_cfg.sampler.frames_num_fixed=12"]
        args.batches = 1
    tiny = {"gaitgraph2": ["trainer_cfg.sampler.batch_size=8"],
            "gaitgraph1": ["trainer_cfg.sampler.batch_size=8", "trainer_cfg.transform.0.trf_cfg.2.sequence_length=8"],
            "gaittr": ["trainer_cfg.sampler.batch_size=[2, 4]"], "gpgait": ["trainer_cfg.sampler.batch_size=[2, 4]"]}
    rows = []
    for model in (m for m in args.models.split(",") if m):
        row = measure(model, overrides + (tiny.get(model, []) if args.tiny else []), args.batches, device)
        rows.append(row)
        print(f"{model:11s} batch {row['batch']:4d}: worker {row['median_worker_mode_worker_s']:.3f} s | device mode: "
              f"worker {row['median_device_mode_worker_s']:.3f} s + chain on {device.type} "
              f"{row['median_device_chain_s']:.4f} s", flush=True)
    report = write_report(out, "device_transforms", argv, device=str(device), batches=args.batches, tiny=args.tiny,
                          rows=rows)
    print(f"written {out}")
    return report


if __name__ == "__main__":
    from fastposegait.cli import run_cli  # quiet on a closed pipe (| head), one line on Ctrl-C

    raise SystemExit(run_cli(main))
