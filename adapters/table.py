#!/usr/bin/env python3
"""The README's "Real frameworks" table from a report of adapters/gate.sh:

    python3 adapters/table.py target/frameworks.json

One row per framework and op: passed, forward-only, known divergences (expected failures),
flaky (accepted whatever their outcome), skipped, and anything else (failed, xpassed: a gate
that is not green).
"""
import collections
import json
import sys

VERSIONS = {
    "jax": "JAX 0.10.2 + optax 0.2.8, CPU",
    "ort": "ONNX Runtime 1.32.0, CPU",
    "torch": "PyTorch 2.15.0, CPU",
}

report = json.load(open(sys.argv[1]))
counts = collections.defaultdict(collections.Counter)
for r in report["results"]:
    op = r["id"].split("/")[0]
    counts[(r["impl"], op)][r["status"]] += 1
print("| framework | op | passed | forward-only | known divergences | flaky | skipped | failed |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for (impl, op), c in sorted(counts.items()):
    total = sum(c.values())
    bad = c["fail"] + c["xpass"]
    print(f"| {VERSIONS.get(impl, impl)} | {op} | {c['pass']}/{total} | {c['forward_only']} | {c['xfail']} | {c['flaky']} | {c['skip']} | {bad} |")
