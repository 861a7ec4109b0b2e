#!/usr/bin/env bash
# The benchmark on a GPU machine: one short command, a few minutes.
#
# Usage, from the repository root, with the project's virtualenv set up (make setup) and the
# corpora under $CBV_DATA_DIR, data/raw/ or ../shared/data:
#
#     bash scripts/gpu_bench.sh            # extra arguments go to `python -m helpers bench`
#
# Writes reports/bench-gpu/bench.{json,md} (and reports/bench/). On a GPU our engine trains
# under bf16 autocast and the matmul peak is measured in bfloat16; Trainer keeps its default
# (float32). The quick-profile experiment and the scale-out layouts are skipped (both are
# CPU-sized workloads: process layouts on the cores, not the GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python
DATA=${CBV_DATA_DIR:-}
if [ -z "$DATA" ]; then
    if [ -d data/raw ] && [ -n "$(ls -A data/raw 2>/dev/null)" ]; then DATA=data/raw; else DATA=../shared/data; fi
fi
exec "$PY" -m helpers bench --skip-experiment --skip-scaleout --out reports/bench-gpu --data-dir "$DATA" "$@"
