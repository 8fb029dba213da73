"""The subcommands of the ``fastposegait`` console command.

``fastposegait <subcommand> ...`` runs ``main(argv)`` of the module named here; the first
argument not being a subcommand keeps the upstream-compatible form
``fastposegait --cfgs <config> --phase train|test`` (what ``fastposegait/main.py`` takes).
Each module's ``main`` returns the exit status and raises
:class:`~fastposegait.errors.FastPoseGaitError` for bad input, which
:func:`fastposegait.cli.run_cli` prints as one line.
"""
from __future__ import annotations

import importlib
from typing import Callable, Dict, List, Optional, Tuple

#: subcommand -> (module under ``fastposegait.commands``, one-line help)
SUBCOMMANDS: Dict[str, Tuple[str, str]] = {
    "train": ("phase", "train a model from a config (same as --cfgs <config> --phase train)"),
    "test": ("phase", "test a model with its evaluator (same as --cfgs <config> --phase test)"),
    "embed": ("embed", "pose sequences -> embeddings file, with a trained model"),
    "enroll": ("enroll", "build or extend a gallery of identities from pose sequences"),
    "identify": ("identify", "rank the gallery's identities for probe sequences (table and JSON)"),
    "export": ("export", "export a trained model to TorchScript or ONNX"),
    "plot": ("plot", "redraw the CMC curves and rank-1 heatmaps of a test results JSON"),
    "render": ("render", "draw a pose sequence as an animated GIF or a frame grid"),
}


def command_main(name: str) -> Callable[[List[str]], Optional[int]]:
    """The ``main(argv)`` of subcommand ``name``."""
    module = importlib.import_module(f"{__name__}.{SUBCOMMANDS[name][0]}")
    if SUBCOMMANDS[name][0] == "phase":
        return lambda argv: module.main(name, argv)
    return module.main


def usage() -> str:
    """The list of subcommands for ``fastposegait --help``."""
    width = max(len(n) for n in SUBCOMMANDS)
    lines = [f"  {name:<{width}}  {help_line}" for name, (_, help_line) in SUBCOMMANDS.items()]
    return "subcommands (fastposegait <subcommand> --help for their options):\n" + "\n".join(lines)
