#!/usr/bin/env python3
"""Runs PyTorch over the golden files themselves and checks that it agrees with them, stricter
than `nllspec run --impl torch=exec:...`: error types and messages verbatim, and the float64
reference recomputed.

    python golden/check_torch.py [PATH ...]     # default: every file under golden/

PyTorch runs through the torch adapter's own `run` (adapters/torch_impl.py), so there is one
way to run PyTorch over golden files. The exporter wrote the goldens from spec cases; this
script reads only the golden files (their inputs, attrs and expectations), so it catches a
golden that no longer says what torch does: a hand edit, a serialisation bug, or a torch
upgrade. Errors must match type and message exactly; values must pass
torch.testing.assert_close with the case's tolerance, and the float64 reference (where
present) must be what torch computes in float64.
"""

import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "adapters"))
from torch_impl import run, to_tensor  # noqa: E402


def close(actual, expected, tol, what):
    kw = {}
    if tol:
        kw = {"rtol": tol["rtol"], "atol": tol["atol"]}
    torch.testing.assert_close(actual, expected, equal_nan=True, msg=lambda m: f"{what}: {m}", **kw)


def widened(req):
    """The request with every float tensor as float64 (its values are exact there too)."""
    floats = ("float16", "bfloat16", "float32")
    ins = {k: {**v, "dtype": "float64"} if v["dtype"] in floats else v for k, v in req["inputs"].items()}
    return {**req, "inputs": ins}


def check_case(case):
    req = {"id": case["id"], "op": case["op"], "inputs": case["inputs"], "attrs": case["attrs"]}
    exp = case["expected"]
    try:
        out, gi = run(req)
    except Exception as e:
        if "error" not in exp:
            raise AssertionError(f"torch raised {type(e).__name__}: {e}") from e
        err = exp["error"]
        if (type(e).__name__, str(e)) != (err["type"], err["message"]):
            raise AssertionError(f"torch raised {type(e).__name__}: {e}; golden says {err['type']}: {err['message']}")
        return
    if "error" in exp:
        raise AssertionError(f"golden expects {exp['error']['kind']}, torch returned a value")
    tol = case.get("tolerance")
    close(out, to_tensor(exp["output"]), tol, "output")
    if "grad_input" in exp:
        close(gi, to_tensor(exp["grad_input"]), tol, "grad_input")
    if "reference" in exp:
        rout, rgi = run(widened(req))
        ref = exp["reference"]
        close(rout.to(out.dtype), to_tensor(ref["output"]), tol, "reference.output")
        if "grad_input" in ref:
            close(rgi.to(gi.dtype), to_tensor(ref["grad_input"]), tol, "reference.grad_input")


def main():
    torch.set_num_threads(1)
    paths = [Path(p) for p in sys.argv[1:]] or sorted((ROOT / "golden").rglob("*.json"))
    files = []
    for p in paths:
        files.extend(sorted(p.rglob("*.json")) if p.is_dir() else [p])
    total, failed = 0, 0
    for path in files:
        doc = json.loads(path.read_text())
        for case in doc["cases"]:
            total += 1
            try:
                check_case(case)
            except AssertionError as e:
                failed += 1
                print(f"FAIL {path}: {case['id']}: {e}")
    print(f"{total - failed} passed, {failed} failed")
    sys.exit(1 if failed or not total else 0)


if __name__ == "__main__":
    main()
