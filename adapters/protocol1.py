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
