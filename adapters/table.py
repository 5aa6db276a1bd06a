#!/usr/bin/env python3
"""The README's framework table from adapters/gate.sh's report:

    python3 adapters/table.py target/frameworks.json

One row per framework and op: passed, forward-only, known divergences (expected failures),
flaky (accepted whatever their outcome), skipped, and anything else (failed, xpassed: a gate
that is not green); the framework's first row carries its gate time (install excluded).

    python3 adapters/table.py --merge DIR > target/frameworks.json

merges the per-framework reports gate.sh leaves in DIR (NAME.json, and NAME.seconds with the
gate's wall time) into one report v1 with `gate_seconds` beside it.
"""
import collections
import glob
import json
import os
import sys

VERSIONS = {
    "jax": "JAX 0.10.2 + optax 0.2.8, CPU",
    "ort": "ONNX Runtime 1.32.0, CPU",
    "torch": "PyTorch 2.15.0, CPU",
    "paddle": "PaddlePaddle 3.3.1, CPU",
    "tf": "TensorFlow 2.21.0 + Keras 3.15.1, CPU",
    "tinygrad": "tinygrad 0.14.0, CPU (clang)",
    "burn": "Burn 0.22.1, ndarray (Rust trait)",
}
ORDER = list(VERSIONS)


def merge(directory):
    merged = {"format": "nllspec-report-v1", "results": [], "audit": [], "gate_seconds": {}}
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        r = json.load(open(path))
        merged["suite"] = r.get("suite")
        merged["results"] += r["results"]
        merged["audit"] += r.get("audit", [])
        name = os.path.basename(path)[:-5]
        seconds = os.path.join(directory, name + ".seconds")
        if os.path.exists(seconds):
            merged["gate_seconds"][name] = int(open(seconds).read())
    json.dump(merged, sys.stdout, indent=1)
    print()


def table(path):
    report = json.load(open(path))
    seconds = report.get("gate_seconds", {})
    counts = collections.defaultdict(collections.Counter)
    for r in report["results"]:
        counts[(r["impl"], r["id"].split("/")[0])][r["status"]] += 1
    print("| framework | op | passed | forward-only | known divergences | flaky | skipped | failed | gate time |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    shown = set()
    for (impl, op), c in sorted(counts.items(), key=lambda k: (ORDER.index(k[0][0]) if k[0][0] in ORDER else 99, k)):
        total = sum(c.values())
        bad = c["fail"] + c["xpass"]
        time = f"{seconds[impl]} s" if impl in seconds and impl not in shown else ""
        shown.add(impl)
        print(f"| {VERSIONS.get(impl, impl)} | {op} | {c['pass']}/{total} | {c['forward_only']} | {c['xfail']} "
              f"| {c['flaky']} | {c['skip']} | {bad} | {time} |")


if __name__ == "__main__":
    if sys.argv[1] == "--merge":
        merge(sys.argv[2])
    else:
        table(sys.argv[1])
