#!/usr/bin/env bash
# Builds the Python wheel (maturin, `bindings = "bin"`: the nllspec binary, with the golden
# suite and the shipped expectations inside) into target/wheels/, then checks it as a Python
# framework's CI would use it: installed into a fresh venv, `nllspec` on PATH gates the NumPy
# example from another directory. The wheel is built from a copy of the sources that is
# deleted before the checks: the binary must need nothing of its build tree (candle-nn's
# expectations, the suite `--version` names).
#   scripts/wheel.sh            build and check
#   scripts/wheel.sh --build    build only
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
tools="${TMPDIR:-/tmp}/nllspec-maturin-venv"
[ -x "$tools/bin/python" ] || python3 -m venv "$tools"
"$tools/bin/python" -m pip install --quiet --disable-pip-version-check "maturin>=1.5,<2"
rm -f target/wheels/nllspec-*.whl
src=$(mktemp -d)
git ls-files -z | xargs -0 cp --parents -t "$src"
(cd "$src" && CARGO_TARGET_DIR="$root/target" "$tools/bin/maturin" build --release --out "$root/target/wheels" --quiet)
rm -rf "$src"
wheel=$(ls target/wheels/nllspec-*.whl)
echo "wheel: $wheel ($(du -h "$wheel" | cut -f1))"
[ "${1:-}" = "--build" ] && exit 0

check=$(mktemp -d)
python3 -m venv "$check/venv"
"$check/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel" numpy
cd "$check"
export NLLSPEC_CACHE="$check/cache"
version=$("$check/venv/bin/nllspec" --version)
echo "$version"
"$check/venv/bin/nllspec" run --impl "numpy=exec:$check/venv/bin/python $root/examples/numpy_impl.py" --format junit --out numpy.xml
# candle-nn's known divergences travel with the binary, and the report names the suite that ran
"$check/venv/bin/nllspec" run --impl candle-nn --format json --out candle-nn.json
"$check/venv/bin/python" - "$version" candle-nn.json <<'PY'
import json, sys
version, report = sys.argv[1], json.load(open(sys.argv[2]))
digest = report["suite"]["sha256"][:12]
assert f"sha256 {digest}" in version, (version, report["suite"])
assert report["summary"]["xfailed"] > 100 and report["summary"]["failed"] == 0, report["summary"]
print(f"wheel: candle-nn {report['summary']['passed']} passed, {report['summary']['xfailed']} known divergences; suite {digest} as --version says")
PY
rm -rf "$check"
