#!/usr/bin/env bash
# The GPU session's one command (see devcheck/README.md):
#   bash devcheck/run.sh            # writes device_check.{json,md,log} to $OUT
# (benchmarks/device_check.sh, the command the GPU issue names, execs this file.)
# Installs the carried wheels (.whl/, made by devcheck/fetch_wheels.sh) into /tmp/site,
# points the Fashion-MNIST loader at the carried .devdata/, then runs `python3 -m devcheck`
# with any extra arguments (e.g. --parts speed --budget-s 280).
set -uo pipefail
cd "$(dirname "$0")/.."
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "wheel install failed" >&2; exit 1; }
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
[ -d .devdata ] && export SNNJAX_DATA_DIR="$PWD/.devdata"
export PYTHONUNBUFFERED=1
out=${OUT:-/tmp/device_check_out}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
exec python3 -m devcheck --out "$out" "$@"
