#!/usr/bin/env bash
# Every GPU figure the project claims, in one run on one GPU (meant to take a few minutes; not yet
# run on a GPU: none was lent to the session that wrote it):
# GAN images/s and peak memory per phase and the projected schedule, classifier images/s,
# and the class-optimisation speed-up. See benchmarks/gpu_check.py.
#
#   bash benchmarks/gpu_check.sh [--out gpu_check.json] [--params FILE] [--steps 5]
#   bash benchmarks/gpu_check.sh --dry-run     # the same code at toy sizes on the CPU (seconds)
set -euo pipefail
cd "$(dirname "$0")/.."
python=python
if [ -x .venv/bin/python ]; then
    python=.venv/bin/python
fi
exec "$python" benchmarks/gpu_check.py "$@"
