"""``python -m fastposegait ...``: the same as the ``fastposegait`` console command."""
import sys

from fastposegait.main import main

sys.exit(main())
