#!/usr/bin/env bash
# The prepared GPU check (docs/gpu.md): the workflow on CUDA, backbone speed (CPU, CUDA fp32 and
# bf16), a pretraining sprint of a larger backbone and its zero-shot score, within one wall limit.
#   bench/gpu_check.sh --out DIR [--minutes 8] [--work DIR]   # on a machine with CUDA
#   bench/gpu_check.sh --out DIR --smoke                        # the CPU smoke run (about a minute)
# --out defaults to $OUT. Python: $PYTHON, else the repository's .venv, else python3 on PATH.
# Everything else is bench/gpu_check.py (its docstring lists the stages and exit codes).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
    if [[ -x "$repo/.venv/bin/python" ]]; then python="$repo/.venv/bin/python"; else python="$(command -v python3)"; fi
fi
exec "$python" "$repo/bench/gpu_check.py" "$@"
