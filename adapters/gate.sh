#!/usr/bin/env bash
# Gates real frameworks over the shipped suite, each against its expectations file:
#   adapters/gate.sh [--all | FRAMEWORK...] [--report FILE.json] [--table FILE.md]
# FRAMEWORK: jax ort torch paddle tf tinygrad burn. No FRAMEWORK: jax and ort, and torch where a
# Python with torch 2.15 is found (what CI gated before the others existed). --all: every one.
#
# Each Python framework runs from a venv with its pinned adapters/requirements*.txt, made on
# first use: JAX and ONNX Runtime share NLLSPEC_FRAMEWORKS_VENV (default
# $TMPDIR/nllspec-frameworks-venv); Paddle, TensorFlow and tinygrad each have their own
# ($NLLSPEC_FRAMEWORKS_VENV-paddle, -tf, -tinygrad: their numpy and protobuf pins differ).
# tinygrad needs clang on PATH (Debian: apt-get install clang). PyTorch runs where the golden
# exporter's venv has torch (.venv, or NLLSPEC_TORCH_PYTHON); asked for by name without one, it
# fails. Burn is a Rust crate (adapters/burn): `cargo test` there, its report from
# nllspec::harness's NLLSPEC_REPORT. Runs NLLSPEC_BIN (default target/release/nllspec:
# `cargo build --release` first). Each framework's time is printed. Exit status: the worst of
# the frameworks' (`nllspec run`'s statuses).
set -euo pipefail
cd "$(dirname "$0")/.."
report=target/frameworks.json table="" frameworks=()
while [ $# -gt 0 ]; do
  case "$1" in
    --report) report=$2; shift 2 ;;
    --table) table=$2; shift 2 ;;
    --all) frameworks=(jax ort torch paddle tf tinygrad burn); shift ;;
    jax|ort|torch|paddle|tf|tinygrad|burn) frameworks+=("$1"); shift ;;
    *) echo "usage: adapters/gate.sh [--all | jax ort torch paddle tf tinygrad burn] [--report FILE.json] [--table FILE.md]" >&2; exit 2 ;;
  esac
done
torch_py="${NLLSPEC_TORCH_PYTHON:-.venv/bin/python}"
have_torch() { [ -x "$torch_py" ] && "$torch_py" -c 'import torch' 2>/dev/null; }
if [ ${#frameworks[@]} -eq 0 ]; then
  frameworks=(jax ort)
  if have_torch; then
    frameworks+=(torch)
  else
    echo "adapters/gate.sh: PyTorch left out: no torch in $torch_py (python3 -m venv .venv && .venv/bin/pip install -r golden/requirements.txt)" >&2
  fi
fi
base="${NLLSPEC_FRAMEWORKS_VENV:-${TMPDIR:-/tmp}/nllspec-frameworks-venv}"
bin="${NLLSPEC_BIN:-target/release/nllspec}"
parts="$(dirname "$report")/frameworks.d"
mkdir -p "$parts"
parts=$(cd "$parts" && pwd)
rm -f "$parts"/*.json "$parts"/*.seconds

# venv DIR REQUIREMENTS: the venv's python, made and brought to the pins first
venv() {
  if [ ! -x "$1/bin/python" ]; then
    python3 -m venv "$1"
  fi
  local t0=$SECONDS
  "$1/bin/python" -m pip install --quiet --disable-pip-version-check -r "$2" >&2
  echo "adapters/gate.sh: $(basename "$2"): $((SECONDS - t0)) s to install" >&2
  echo "$1/bin/python"
}

status=0
for fw in "${frameworks[@]}"; do
  t0=$SECONDS
  rc=0
  case $fw in
    torch)
      if ! have_torch; then
        echo "adapters/gate.sh: torch asked for, but $torch_py has no torch" >&2; rc=2
      else
        "$bin" run --impl "torch=exec:$torch_py adapters/torch_impl.py" --expectations adapters/expectations/torch.json \
          --format json --out "$parts/torch.json" --summary || rc=$?
      fi ;;
    jax|ort|paddle|tf|tinygrad)
      # JAX and ONNX Runtime share adapters/requirements.txt's venv; the others have their own
      case $fw in
        jax|ort) py=$(venv "$base" adapters/requirements.txt) ;;
        *) py=$(venv "$base-$fw" "adapters/requirements-$fw.txt") ;;
      esac
      "$bin" run --impl "$fw=exec:$py adapters/${fw}_impl.py" --expectations "adapters/expectations/$fw.json" \
        --format json --out "$parts/$fw.json" --summary || rc=$? ;;
    burn)
      NLLSPEC_REPORT="$parts/burn.json" cargo test --quiet --manifest-path adapters/burn/Cargo.toml --test nllspec || rc=$? ;;
  esac
  echo "adapters/gate.sh: $fw: exit $rc, $((SECONDS - t0)) s" >&2
  echo $((SECONDS - t0)) > "$parts/$fw.seconds"
  [ $rc -gt $status ] && status=$rc
done
python3 adapters/table.py --merge "$parts" > "$report"
if [ -n "$table" ]; then
  python3 adapters/table.py "$report" > "$table"
fi
exit $status
