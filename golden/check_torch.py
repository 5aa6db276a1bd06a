#!/usr/bin/env python3
"""Runs PyTorch over the golden files themselves and checks that it agrees with them.

    python golden/check_torch.py [PATH ...]     # default: every file under golden/

The exporter wrote the goldens from spec cases; this script reads only the golden files (their
inputs, attrs and expectations), so it catches a golden that no longer says what torch does:
a hand edit, a serialisation bug, or a torch upgrade. Errors must match type and message
exactly; values must pass torch.testing.assert_close with the case's tolerance, and the float64
reference (where present) must be what torch computes in float64.
"""

import json
import math
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export import DTYPES, forward_backward  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def to_tensor(t):
    dtype = DTYPES[t["dtype"]]
    special = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
    if dtype.is_floating_point:
        data = [special[v] if isinstance(v, str) else float(v) for v in t["data"]]
        return torch.tensor(data, dtype=torch.float64).to(dtype).reshape(t["shape"])
    return torch.tensor(t["data"], dtype=torch.int64).to(dtype).reshape(t["shape"])


def close(actual, expected, tol, what):
    kw = {}
    if tol:
        kw = {"rtol": tol["rtol"], "atol": tol["atol"]}
    torch.testing.assert_close(actual, expected, equal_nan=True, msg=lambda m: f"{what}: {m}", **kw)


def check_case(case):
    ins = {k: to_tensor(v) for k, v in case["inputs"].items()}
    g = ins.pop("grad_output", None)
    attrs = case["attrs"]
    exp = case["expected"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out, gi, _ = forward_backward(case["op"], ins, attrs, (lambda _: g) if g is not None else None)
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
        wide = {k: (v.to(torch.float64) if v.dtype.is_floating_point else v) for k, v in ins.items()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            go = (lambda _: g.to(torch.float64)) if g is not None else None
            rout, rgi, _ = forward_backward(case["op"], wide, attrs, go)
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
