#!/usr/bin/env bash
# Gates the real-framework adapters over the shipped suite, each with its expectations file:
#   adapters/gate.sh [--report FILE.json] [--table FILE.md]
# JAX and ONNX Runtime run from a venv with the pinned adapters/requirements.txt (made on first
# use: NLLSPEC_FRAMEWORKS_VENV, default $TMPDIR/nllspec-frameworks-venv). PyTorch runs where the
# golden exporter's venv has torch (.venv, or NLLSPEC_TORCH_PYTHON), and is left out with a
# message otherwise. Runs NLLSPEC_BIN (default target/release/nllspec: `cargo build --release`
# first). Exit status as `nllspec run`'s.
set -euo pipefail
cd "$(dirname "$0")/.."
report=target/frameworks.json table=""
while [ $# -gt 0 ]; do
  case "$1" in
    --report) report=$2; shift 2 ;;
    --table) table=$2; shift 2 ;;
    *) echo "usage: adapters/gate.sh [--report FILE.json] [--table FILE.md]" >&2; exit 2 ;;
  esac
done
venv="${NLLSPEC_FRAMEWORKS_VENV:-${TMPDIR:-/tmp}/nllspec-frameworks-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r adapters/requirements.txt
py="$venv/bin/python"
args=(--impl "jax=exec:$py adapters/jax_impl.py" --expectations adapters/expectations/jax.json
      --impl "ort=exec:$py adapters/ort_impl.py" --expectations adapters/expectations/ort.json)
torch_py="${NLLSPEC_TORCH_PYTHON:-.venv/bin/python}"
if [ -x "$torch_py" ] && "$torch_py" -c 'import torch' 2>/dev/null; then
  args+=(--impl "torch=exec:$torch_py adapters/torch_impl.py")
else
  echo "adapters/gate.sh: PyTorch left out: no torch in $torch_py (python3 -m venv .venv && .venv/bin/pip install -r golden/requirements.txt)" >&2
fi
mkdir -p "$(dirname "$report")"
status=0
"${NLLSPEC_BIN:-target/release/nllspec}" run "${args[@]}" --format json --out "$report" || status=$?
if [ -n "$table" ]; then
  "$py" adapters/table.py "$report" > "$table"
fi
exit $status
