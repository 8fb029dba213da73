"""What ``fastposegait embed``, ``enroll`` and ``identify`` share: the model options, the input
options, loading the recogniser and embedding what was read."""
from __future__ import annotations

import argparse
import fnmatch
import logging
import sys
from typing import Any, Dict, List, Sequence

import numpy as np

from ..errors import ConfigError

logger = logging.getLogger(__name__)

INPUTS_HELP = ("pose sequences: a dataset folder (<subject>/<type>/<view>/*.pkl), a .pkl pose file or a folder "
               "of them, a keypoint .json of one video (COCO results, as pose estimators write) or a folder of them")


def add_model_options(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """``--run`` or ``--cfgs`` (with ``--checkpoint`` / ``--iter``), ``--device``, ``--batch-size``."""
    group = parser.add_argument_group("model")
    source = group.add_mutually_exclusive_group(required=required)
    source.add_argument("--run", help="a run folder output/<dataset>/<model>/<save_name> (its config and checkpoints)")
    source.add_argument("--cfgs", help="a YAML config (with --checkpoint, --iter or its evaluator_cfg.restore_hint)")
    group.add_argument("--checkpoint", help="with --cfgs: the checkpoint file (.pt) to load")
    group.add_argument("--iter", type=int, default=None,
                       help="the checkpoint iteration (default: the run's latest; with --cfgs: "
                            "evaluator_cfg.restore_hint); 0 is the untrained model")
    group.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                       help="where the model runs (default auto: CUDA when available)")
    group.add_argument("--batch-size", type=int, default=None,
                       help="sequences prepared at once (default: the test sampler's batch size)")


def add_input_options(parser: argparse.ArgumentParser) -> None:
    """How the inputs are read (partition split, JSON layout and track, progress bars)."""
    group = parser.add_argument_group("inputs")
    group.add_argument("--partition", help="a dataset folder's partition JSON: read only the subjects of --split")
    group.add_argument("--split", default="TEST_SET", choices=["TEST_SET", "TRAIN_SET", "PROBE_SET"],
                       help="the partition's split to read (default TEST_SET)")
    group.add_argument("--json-layout", default="video", choices=["video", "frame"],
                       help="keypoint JSON: one file per video (default), or a folder of per-frame files")
    group.add_argument("--track", help="keypoint JSON: the walker's track id (default: the longest track)")
    group.add_argument("--coco17", action="store_true", help="keypoint JSON: map 18 OpenPose joints to COCO-17")
    group.add_argument("--skip-malformed", action="store_true",
                       help="keypoint JSON: drop malformed annotations with a warning instead of stopping")
    group.add_argument("--types", nargs="+", metavar="PATTERN",
                       help="keep the sequences whose type matches one of these shell patterns (e.g. 'nm-0[1-4]' "
                            "'bg-*'); also filters --from-embeddings files")
    group.add_argument("--views", nargs="+", metavar="PATTERN",
                       help="keep the sequences whose view matches one of these shell patterns (e.g. 090)")
    group.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")


def setup_cli_logging() -> None:
    """INFO lines of the package on stderr (what loaded, warnings), as the other commands print them."""
    from ..engine.log import setup_logging

    setup_logging(0)


def check_model_args(args: argparse.Namespace) -> None:
    if getattr(args, "checkpoint", None) and getattr(args, "run", None):
        raise ConfigError("--checkpoint goes with --cfgs; with --run give --iter N")
    if getattr(args, "checkpoint", None) and args.iter is not None:
        raise ConfigError("give --checkpoint or --iter, not both")
    if args.iter is not None and args.iter < 0:
        raise ConfigError(f"--iter must be an iteration >= 0 (0: the untrained model), got {args.iter}")
    if getattr(args, "batch_size", None) is not None and args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {args.batch_size}")


def load_recognizer(args: argparse.Namespace):
    """The :class:`~fastposegait.recognition.recognizer.GaitRecognizer` the options name."""
    check_model_args(args)
    if not args.run and not args.cfgs:
        raise ConfigError("give the model: --run <run folder> or --cfgs <config> [--checkpoint FILE | --iter N]")
    from ..recognition.recognizer import GaitRecognizer

    if args.run:
        return GaitRecognizer.from_run(args.run, iteration=args.iter, device=args.device)
    return GaitRecognizer.from_config(args.cfgs, checkpoint=args.checkpoint, iteration=args.iter, device=args.device)


def model_info(rec: Any) -> Dict[str, Any]:
    """The recogniser's info (with ``weights_sha256``, the fingerprint galleries are matched by)."""
    return dict(rec.info)


def read_inputs(paths: Sequence[str], args: argparse.Namespace) -> List[Any]:
    """The :class:`~fastposegait.recognition.inputs.SequenceInput` items of ``paths`` (those
    that ``--types`` / ``--views`` keep)."""
    from ..recognition.inputs import read_many

    items = read_many(list(paths), partition=args.partition, split=args.split, json_layout=args.json_layout,
                      track=args.track, coco17=args.coco17, on_error="skip" if args.skip_malformed else "stop",
                      progress=not args.no_progress)
    keep = selected([i.to_dict() for i in items], args, ", ".join(map(str, paths)))
    return [items[i] for i in keep]


def selected(entries: Sequence[Dict[str, Any]], args: argparse.Namespace, where: str) -> List[int]:
    """Indices of the entries whose type and view match ``--types`` / ``--views`` (all of them
    without those options); none left is an error naming the patterns."""
    keep = list(range(len(entries)))
    for key, patterns in (("type", args.types), ("view", args.views)):
        if patterns:
            keep = [i for i in keep if entries[i].get(key) is not None
                    and any(fnmatch.fnmatchcase(entries[i][key], p) for p in patterns)]
    if not keep and entries:
        raise ConfigError(f"{where}: no sequence has a type matching --types {' '.join(args.types or ['*'])} and a "
                          f"view matching --views {' '.join(args.views or ['*'])} (sequences outside the dataset "
                          "layout have neither)")
    return keep


def embed_inputs(rec: Any, items: Sequence[Any], args: argparse.Namespace) -> np.ndarray:
    """Embeddings ``[N, C, P]`` of the items, in order (sequence ``i`` gets the test phase's key ``i``)."""
    if not items:
        return np.zeros((0, *rec.embedding_shape), np.float32)
    from ..errors import FastPoseGaitError

    try:
        return rec.embed([list(i.arrays) for i in items], batch_size=args.batch_size,
                         progress=not args.no_progress and len(items) > 1)
    except FastPoseGaitError as exc:
        raise _name_sequence(exc, items) from None


def _name_sequence(exc: Exception, items: Sequence[Any]) -> Exception:
    """The recogniser names a bad input ``sequence <i>``: add the file it came from."""
    text = str(exc)
    if text.startswith("sequence "):
        head = text.split(":", 1)[0].split(",")[0]
        try:
            index = int(head.split()[1])
        except (IndexError, ValueError):
            return exc
        if 0 <= index < len(items):
            return type(exc)(f"{items[index].source or items[index].name} ({text})")
    return exc


def entries_of(items: Sequence[Any]) -> List[Dict[str, Any]]:
    """The per-sequence facts stored with embeddings (name, subject, type, view, source, frames)."""
    return [i.to_dict() for i in items]


def say(line: str) -> None:
    print(line, file=sys.stdout)


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain text table, columns padded to their widest cell."""
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)] if rows else [len(h) for h in header]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)
