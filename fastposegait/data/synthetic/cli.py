"""Command line: ``python -m fastposegait.data.synthetic <layout> --root DIR [options]``."""
from __future__ import annotations

import argparse
from typing import Dict, Optional, Sequence

from .generation import GenerationSummary
from .layouts import LAYOUTS, generate_dataset


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of :func:`main`."""
    parser = argparse.ArgumentParser(
        prog="python -m fastposegait.data.synthetic",
        description="Write a synthetic pose-based gait dataset in a benchmark layout.",
    )
    parser.add_argument("layout", choices=LAYOUTS)
    parser.add_argument("--root", required=True, help="output dataset root (must be empty or new)")
    parser.add_argument("--subjects", type=int, default=None, help="number of identities (default: the benchmark's)")
    parser.add_argument("--train", type=int, default=None,
                        help="training identities (all layouts but oumvlp; default: the benchmark's proportion)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--joint-format", choices=("coco", "openpose"), default=None,
                        help="default: openpose for oumvlp, coco otherwise")
    parser.add_argument("--workers", type=int, default=1, help="processes (results do not depend on it)")
    parser.add_argument("--frames", type=int, nargs=2, metavar=("MIN", "MAX"), default=None,
                        help="sequence length range")
    parser.add_argument("--views", default=None, help="comma-separated views (casia-b, oumvlp, ccpg, sustech1k)")
    parser.add_argument("--types", default=None, help="comma-separated types (casia-b, oumvlp, ccpg, sustech1k)")
    parser.add_argument("--partition", default=None, help="partition JSON path (default: <root>/partition.json)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the generated subjects in a non-empty root that this generator wrote "
                             "(it holds .fastposegait_synthetic.json; any other non-empty root is refused)")
    return parser


def _generator_kwargs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Dict[str, object]:
    """Keyword arguments of the layout's ``generate_*`` function; options that do not apply to
    the layout end the program with a usage error."""
    kwargs: Dict[str, object] = dict(seed=args.seed, workers=args.workers, overwrite=args.overwrite,
                                     partition_path=args.partition)
    if args.subjects is not None:
        kwargs["num_subjects"] = args.subjects
    if args.joint_format is not None:
        kwargs["joint_format"] = args.joint_format
    if args.frames is not None:
        kwargs["frames"] = tuple(args.frames)
    if args.train is not None:
        if args.layout == "oumvlp":
            parser.error("--train does not apply to oumvlp (odd ids train, even ids test)")
        kwargs["num_train"] = args.train
    for opt in ("views", "types"):
        value = getattr(args, opt)
        if value is not None:
            if args.layout not in ("casia-b", "oumvlp", "ccpg", "sustech1k"):
                parser.error(f"--{opt} applies to casia-b, oumvlp, ccpg and sustech1k only")
            kwargs[opt] = [v.strip() for v in value.split(",") if v.strip()]
    return kwargs


def main(argv: Optional[Sequence[str]] = None) -> GenerationSummary:
    """Command-line entry point; prints and returns the summary."""
    parser = build_parser()
    args = parser.parse_args(argv)
    kwargs = _generator_kwargs(parser, args)
    try:
        summary = generate_dataset(args.layout, args.root, **kwargs)
    except (ValueError, FileExistsError, NotADirectoryError) as exc:
        parser.exit(2, f"error: {exc}\n")
    print(summary)
    return summary
