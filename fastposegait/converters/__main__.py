"""``python -m fastposegait.converters``: see :mod:`fastposegait.converters.cli`; it ends
through :func:`fastposegait.cli.run_cli` (quiet on a closed pipe, one line on Ctrl-C)."""
from ..cli import run_cli
from .cli import main

RESUME = "sequences written so far are complete; re-run the same command to resume"

raise SystemExit(run_cli(main, interrupted=RESUME))
