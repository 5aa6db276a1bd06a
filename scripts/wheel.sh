#!/usr/bin/env bash
# Builds the Python wheel (maturin, `bindings = "bin"`: the nllspec binary, with the golden
# suite inside) into target/wheels/, then checks it as a Python framework's CI would use it:
# installed into a fresh venv, `nllspec` on PATH gates the NumPy example from another
# directory, with no checkout beside it (NLLSPEC_GOLDEN=embedded).
#   scripts/wheel.sh            build and check
#   scripts/wheel.sh --build    build only
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
tools="${TMPDIR:-/tmp}/nllspec-maturin-venv"
[ -x "$tools/bin/python" ] || python3 -m venv "$tools"
"$tools/bin/python" -m pip install --quiet --disable-pip-version-check "maturin>=1.5,<2"
rm -f target/wheels/nllspec-*.whl
"$tools/bin/maturin" build --release --out target/wheels --quiet
wheel=$(ls target/wheels/nllspec-*.whl)
echo "wheel: $wheel ($(du -h "$wheel" | cut -f1))"
[ "${1:-}" = "--build" ] && exit 0

check=$(mktemp -d)
python3 -m venv "$check/venv"
"$check/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel" numpy
cd "$check"
export NLLSPEC_GOLDEN=embedded NLLSPEC_CACHE="$check/cache"
"$check/venv/bin/nllspec" --version
"$check/venv/bin/nllspec" run --impl "numpy=exec:$check/venv/bin/python $root/examples/numpy_impl.py" --format junit --out numpy.xml
rm -rf "$check"
