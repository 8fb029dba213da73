"""``python -m fastposegait.datasets`` = ``python -m fastposegait.converters``."""
from fastposegait.converters.cli import main

raise SystemExit(main())
