"""``python -m fastposegait.converters``: see :mod:`fastposegait.converters.cli`."""
from .cli import main

raise SystemExit(main())
