"""Export time, file size and exported-vs-eager parity of the demo models, on one CPU thread.

Part 1 exports each demo config's freshly built (seeded, untrained) model to TorchScript and
ONNX and prints the export's own check (max |exported - eager| over its five inputs). Part 2,
with ``--run``, compares the exported files of a trained run with
``GaitRecognizer.embed`` on the sequences of the first two test subjects (ExportPreprocessor +
the file) and measures sequences per second. Run from the folder that holds ``output/`` and
``data/`` of the run:

    python benchmarks/export_models.py --out /tmp/exports
    python benchmarks/export_models.py --out /tmp/exports --run output/Synthetic-CASIA-B/GaitGraph2/GaitGraph2-demo
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from fastposegait.config import load_typed_config
from fastposegait.modeling import build_model
from fastposegait.recognition.export import ExportPreprocessor, export_onnx, export_torchscript

REPO = Path(__file__).resolve().parents[1]
DEMOS = ["gaitgraph1", "gaitgraph2", "gaittr", "gpgait", "gpgait++"]


def demo_table(out: Path) -> None:
    print("| model | TorchScript export s | max diff | MB | ONNX export s | max diff | MB | output [C, P] |")
    print("|---|---|---|---|---|---|---|---|")
    for name in DEMOS:
        cfg = load_typed_config(REPO / "configs" / "demo" / f"{name}_demo.yaml")
        torch.manual_seed(0)
        model = build_model(cfg.model)
        ts = export_torchscript(model, out / f"{name}.pt", cfg)
        ox = export_onnx(model, out / f"{name}.onnx", cfg)
        print(f"| {name} | {ts.seconds:.2f} | {max(ts.parity.values()):.2g} | {os.path.getsize(ts.path) / 1e6:.2f} "
              f"| {ox.seconds:.2f} | {max(ox.parity.values()):.2g} | {os.path.getsize(ox.path) / 1e6:.2f} "
              f"| {ox.metadata['output']['shape']} |")


def trained_run(run: str, out: Path) -> None:
    import onnxruntime as ort

    from fastposegait import GaitRecognizer
    from fastposegait.data.io import load_pose

    rec = GaitRecognizer.from_run(run)
    root, partition = rec.config.data.dataset_root, rec.config.data.dataset_partition
    subjects = json.loads(Path(partition).read_text())["TEST_SET"][:2]
    seqs = [load_pose(p) for s in subjects for p in sorted(glob.glob(f"{root}/{s}/*/*/*.pkl"))]
    start = time.perf_counter()
    want = rec.embed(seqs)
    eager = time.perf_counter() - start
    print(f"{len(seqs)} sequences; GaitRecognizer.embed {len(seqs) / eager:.0f} seq/s; "
          f"embedding scale {np.abs(want).max():.3g}")
    inputs = ExportPreprocessor(rec).batch(seqs)
    export_torchscript(rec, out / "run.pt")
    export_onnx(rec, out / "run.onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(out / "run.onnx"), options, providers=["CPUExecutionProvider"])
    script = torch.jit.load(str(out / "run.pt"))

    def run_onnx(x):
        return session.run(None, {"poses": x})[0]

    def run_script(x):
        with torch.no_grad():
            return script(torch.from_numpy(x)).numpy()

    same_length = len({x.shape for x in inputs}) == 1
    for name, fn in (("onnxruntime", run_onnx), ("torchscript", run_script)):
        groups = [np.stack(inputs[i:i + 8]) for i in range(0, len(inputs), 8)] if same_length \
            else [x[None] for x in inputs]
        start = time.perf_counter()
        got = np.concatenate([fn(g) for g in groups])
        batched = time.perf_counter() - start
        start = time.perf_counter()
        for x in inputs:
            fn(x[None])
        single = time.perf_counter() - start
        print(f"{name}: max |diff| vs GaitRecognizer.embed {np.abs(got - want).max():.3g}; "
              f"{len(seqs) / batched:.0f} seq/s {'in batches of 8' if same_length else 'one call per length'}, "
              f"{len(seqs) / single:.0f} seq/s one by one")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for the exported files")
    parser.add_argument("--run", help="a trained run folder (part 2)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    demo_table(out)
    if args.run:
        trained_run(args.run, out)


if __name__ == "__main__":
    main()
