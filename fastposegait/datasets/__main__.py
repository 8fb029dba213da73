"""``python -m fastposegait.datasets``: see :mod:`fastposegait.datasets.cli`."""
from .cli import main

raise SystemExit(main())
