#!/usr/bin/env bash
# The GPU suite in one command (benchmarks/gpu_suite.py; its --help lists the options), e.g.
#   benchmarks/gpu_suite.sh --out "$OUT/suite"
# Uses $PYTHON, else the repository's .venv when there is one, else python on the PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python; fi
fi
exec "$PY" benchmarks/gpu_suite.py "$@"
