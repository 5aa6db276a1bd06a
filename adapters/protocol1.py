"""Protocol 1's side of an adapter (spec/PROTOCOL.md), shared by jax_impl.py and ort_impl.py:
a JSON request per line in, a JSON answer per line out, and errors classified into the
contract's kinds (spec/ERRORS.md) from the framework's own messages."""

import json
import re
import sys


def error(rid, message, kinds, shown=None):
    """The error answer for `message`: the first kind whose pattern it matches (or
    "unclassified", which never matches an expected rejection), with `shown` as its text."""
    kind = next((k for k, pat in kinds if re.search(pat, message)), "unclassified")
    return {"id": rid, "error": {"kind": kind, "message": message if shown is None else shown}}


def serve(answer):
    """Answers each request line on stdin with `answer(request)`, one line each, flushed.
    Non-finite floats must already be strings ("NaN"): bare NaN is not JSON."""
    for line in sys.stdin:
        print(json.dumps(answer(json.loads(line)), allow_nan=False), flush=True)


SPECIAL = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}
FLOATS = ("float16", "bfloat16", "float32", "float64")


def values(t):
    """A request tensor's values as a NumPy array, float64 for the float dtypes (every float16,
    bfloat16 and float32 value is exactly a float64 one) and int64 for the others: the adapter
    makes its framework's tensor of `t["dtype"]` from it."""
    import numpy as np

    wide = np.float64 if t["dtype"] in FLOATS else np.int64
    data = [SPECIAL[v] if isinstance(v, str) else v for v in t["data"]]
    return np.asarray(data, dtype=wide).reshape(t["shape"])


def tensor(dtype, a):
    """The response tensor of `dtype` holding `a` (any NumPy array the framework's tensor of that
    dtype converted to: its values are already that dtype's), non-finite values as strings."""
    import math

    import numpy as np

    a = np.asarray(a)
    if dtype in FLOATS:
        def f(x):
            x = float(x)
            return x if math.isfinite(x) else ("NaN" if x != x else ("Infinity" if x > 0 else "-Infinity"))
        data = [f(x) for x in a.astype(np.float64).ravel()]
    else:
        data = [int(x) for x in a.ravel()]
    return {"dtype": dtype, "shape": list(a.shape), "data": data}


def answer_values(rid, output, grad_input=None):
    """The values answer: `output` and, for a backward case, `grad_input` (response tensors)."""
    resp = {"id": rid, "output": output}
    if grad_input is not None:
        resp["grad_input"] = grad_input
    return resp
