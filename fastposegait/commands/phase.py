"""``fastposegait train|test --cfgs <config> ...``: the upstream form with the phase as a word."""
from __future__ import annotations

import sys
from typing import List, Optional


def main(phase: str, argv: List[str]) -> Optional[int]:
    """Run ``fastposegait --phase <phase> <argv>``; a ``--phase`` in ``argv`` is an error."""
    if any(a == "--phase" or a.startswith("--phase=") for a in argv):
        print(f"error: 'fastposegait {phase}' sets the phase; drop --phase", file=sys.stderr)
        return 2
    from fastposegait.main import _run

    return _run([*argv, "--phase", phase])
