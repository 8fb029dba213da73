"""``python -m fastposegait.data.synthetic``: see :mod:`.cli`."""
from ...cli import run_cli
from .cli import main

if __name__ == "__main__":  # not when a worker process re-imports the main module
    raise SystemExit(run_cli(main))
