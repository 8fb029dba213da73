"""Command-line entry point, compatible with upstream FastPoseGait/OpenGait.

    python fastposegait/main.py --cfgs ./configs/gaitgraph2/gaitgraph2.yaml --phase train
    fastposegait train --cfgs ./configs/gaitgraph2/gaitgraph2.yaml     # the same, once installed
    fastposegait embed|enroll|identify|plot|render ...                 # see `fastposegait --help`
    python -m torch.distributed.launch --nproc_per_node=2 fastposegait/main.py --cfgs ... --phase test
    torchrun --nproc_per_node=2 fastposegait/main.py --cfgs ... --phase train trainer_cfg.total_iter=100

Trailing ``key.sub=value`` arguments override config entries (values parsed as YAML).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

if __package__ in (None, ""):  # run as a script: make the package importable, not its folder
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path = [p for p in sys.path if os.path.abspath(p or ".") != _here]
    sys.path.insert(0, os.path.dirname(_here))


def build_parser() -> argparse.ArgumentParser:
    from fastposegait.commands import usage

    parser = argparse.ArgumentParser(prog="fastposegait",
                                     description="FastPoseGait: train or test a gait recognition model",
                                     epilog=usage(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cfgs", required=True, help="path of the YAML config")
    parser.add_argument("--phase", default="train", choices=["train", "test"], help="train or test")
    parser.add_argument("--log_to_file", action="store_true", help="also write the log to <output>/logs/")
    parser.add_argument("--iter", default=None,
                        help="set trainer_cfg.restore_hint and evaluator_cfg.restore_hint (0: no restore)")
    parser.add_argument("--local_rank", "--local-rank", dest="local_rank", type=int, default=None,
                        help="set by torch.distributed.launch; the environment's LOCAL_RANK is used")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="where to run (auto: CUDA when available)")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line; returns the exit status.

    0 done; 1 an input error met while running (one line ``error: ...``: a missing checkpoint,
    an unusable dataset or device, a test set the protocol cannot evaluate); 2 bad arguments or
    config (``config error: ...`` or ``error: --iter ...``); 128 + the signal's number when
    SIGINT (130) or SIGTERM (143) stopped training after a checkpoint, or Ctrl-C stopped anything
    else (130); 141 the reader of the output went away (``... | head``), quietly. Bugs keep their
    traceback.
    """
    from fastposegait.cli import run_cli
    from fastposegait.commands import SUBCOMMANDS, command_main

    args = sys.argv[1:] if argv is None else list(argv)
    if args and args[0] in SUBCOMMANDS:
        return run_cli(command_main(args[0]), args[1:])
    return run_cli(_run, args)


def _run(argv: Optional[List[str]]) -> int:
    args = build_parser().parse_intermixed_args(argv)  # overrides may sit between the options
    overrides = list(args.overrides)
    if args.iter is not None:
        try:
            restore = int(args.iter)
        except ValueError:
            print(f"error: --iter must be an integer iteration, got {args.iter!r}", file=sys.stderr)
            return 2
        if restore < 0:
            print(f"error: --iter must be an iteration >= 0 (0: no restore), got {restore}", file=sys.stderr)
            return 2
        overrides += [f"trainer_cfg.restore_hint={restore}", f"evaluator_cfg.restore_hint={restore}"]
    from fastposegait import distributed as dist_utils
    from fastposegait.config import ConfigError, load_typed_config
    from fastposegait.engine.log import setup_logging

    env = dist_utils.detect_env(args.local_rank)
    device = dist_utils.select_device(env, args.device)  # DeviceError: one line from run_cli
    setup_logging(env.rank)
    try:
        cfg = load_typed_config(args.cfgs, overrides)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    dist_utils.init_process_group(env, device, cfg.engine(args.phase).collective_timeout)
    from fastposegait.engine.runner import Runner

    try:
        runner = Runner(cfg, args.phase, env, device, log_to_file=args.log_to_file)
        if args.phase == "train":
            runner.train()
        else:
            runner.test()
    except Exception as exc:  # noqa: BLE001 - input errors get one line, bugs a traceback
        from fastposegait.errors import user_message

        message = user_message(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)  # RunInterrupted: 128 + the signal's number
    finally:
        dist_utils.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
