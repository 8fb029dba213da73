"""``fastposegait export``: a trained model's inference path as a TorchScript or ONNX file.

Examples::

    fastposegait export --run output/Synthetic-CASIA-B/GaitGraph2/GaitGraph2-demo --format onnx -o gg2.onnx
    fastposegait export --cfgs configs/demo/gaittr_demo.yaml --iter 300 --format torchscript -o gaittr.pt

Writes the file and ``<file>.json`` (model, checkpoint, input layout, joint format, metric,
the preprocessing a caller must do first). See docs/inference.md, "Export".
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import List, Optional

from ..errors import ConfigError

FORMATS = {"torchscript": ".pt", "onnx": ".onnx"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastposegait export",
        description="Export a trained model's inference path (test-time features and augmentation included) "
                    "to TorchScript or ONNX, with a metadata JSON next to it.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="a run folder output/<dataset>/<model>/<save_name> (its config and checkpoints)")
    source.add_argument("--cfgs", help="a YAML config")
    parser.add_argument("--checkpoint", help="with --cfgs: the checkpoint file (.pt) to load")
    parser.add_argument("--iter", type=int, default=None,
                        help="the checkpoint iteration (default: the run's latest; with --cfgs: "
                             "evaluator_cfg.restore_hint); 0 exports the untrained model")
    parser.add_argument("--format", choices=sorted(FORMATS), required=True, help="the file format")
    parser.add_argument("-o", "--output", required=True,
                        help="the file to write (an existing folder: <save_name><.pt|.onnx> inside it)")
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default 17)")
    parser.add_argument("--device", default="cpu",
                        help="where to trace (default cpu; a TorchScript file runs on the device it was traced on)")
    parser.add_argument("--no-check", action="store_true",
                        help="skip the comparison of the saved file with the eager model")
    return parser


def main(argv: List[str]) -> Optional[int]:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.checkpoint and args.run:
        raise ConfigError("--checkpoint goes with --cfgs; with --run give --iter N")
    if args.checkpoint and args.iter is not None:
        raise ConfigError("give --checkpoint or --iter, not both")
    if args.opset is not None and args.format != "onnx":
        raise ConfigError("--opset applies to --format onnx only")
    from ..recognition import export as export_module

    if args.format == "onnx":
        export_module._import_onnx()  # before loading anything: one line when onnx is missing
    from ..recognition.recognizer import GaitRecognizer

    if args.run:
        rec = GaitRecognizer.from_run(args.run, iteration=args.iter, device=args.device)
    else:
        rec = GaitRecognizer.from_config(args.cfgs, checkpoint=args.checkpoint, iteration=args.iter,
                                         device=args.device)
    output = Path(args.output)
    if output.is_dir():
        output = output / (rec.config.evaluator.save_name + FORMATS[args.format])
    if args.format == "onnx":
        opset = export_module.DEFAULT_OPSET if args.opset is None else args.opset
        result = export_module.export_onnx(rec, output, opset=opset, check=not args.no_check)
    else:
        result = export_module.export_torchscript(rec, output, check=not args.no_check)
    worst = max(result.parity.values(), default=None)
    checked = "not checked" if worst is None else f"max |exported - eager| {worst:.2g} on {len(result.parity)} inputs"
    print(f"wrote {result.path} and {result.metadata_path} ({result.seconds:.1f}s; {checked})")
    print("input: float32 [N, T, V, C] after: " + "; ".join(result.metadata["preprocessing"]))
    return 0
