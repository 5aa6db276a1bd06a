#!/usr/bin/env python3
"""tinygrad 0.14 on its CPU device as an implementation under test, over protocol 1.

    nllspec run --impl "tinygrad=exec:python3 adapters/tinygrad_impl.py" \
                --expectations adapters/expectations/tinygrad.json

tinygrad's CPU device compiles its kernels with clang (Debian's package `clang`; without it
tinygrad finds "no usable devices" and the adapter cannot start; Debian 12's clang 14 cannot
compile bfloat16 kernels, "__bf16 is not supported on this target", so those are unsupported). PyTorch's three functions as a
tinygrad user writes them, gradients by `Tensor.gradient`:

- log_softmax: `Tensor.log_softmax(axis=dim)`.
- nll_loss: `Tensor.nll_loss(Y, weight, ignore_index, reduction)`.
- cross_entropy: `Tensor.cross_entropy(Y, reduction, label_smoothing)` (class indices or
  probabilities, PyTorch's class axis), which has no weight and no ignore_index; so a class
  weight is `x.log_softmax(1).nll_loss(Y, weight, ignore_index)` (no label smoothing there:
  with both, `unsupported`), and a target equal to ignore_index goes to
  `Tensor.sparse_categorical_crossentropy(Y, ignore_index, label_smoothing, reduction)`, whose
  class axis is the last (moved there). A per-class weight with probability targets has no
  tinygrad loss: `unsupported`.

Bridged API differences only: the implicit log_softmax dim, the class axis of
sparse_categorical_crossentropy, and an unbatched (C,) input to nll_loss as a batch of one.
Every check is tinygrad's own (mostly assertions and RuntimeErrors: tinygrad checks little);
its exceptions are mapped to the contract's kinds from their messages.
"""

import os
import subprocess

os.environ.setdefault("DEV", "CPU")

import numpy as np  # noqa: E402
from tinygrad import Tensor, dtypes  # noqa: E402

import protocol1  # noqa: E402  (beside this file)

DTYPES = {"float16": dtypes.float16, "bfloat16": dtypes.bfloat16, "float32": dtypes.float32,
          "float64": dtypes.float64, "int64": dtypes.int64, "int32": dtypes.int32, "uint8": dtypes.uint8}
NAMES = {v: k for k, v in DTYPES.items()}

# tinygrad's messages -> the contract's error kinds (spec/ERRORS.md)
KINDS = [
    ("invalid_reduction", r"reduction=.* must be one of"),
    ("invalid_argument", r"label_smoothing must be in"),
    ("dim_out_of_range", r"(dim|axis) .*out of range|IndexError|invalid dim"),
    ("target_shape", r"shape mismatch|[Ss]hapes? .*(do not match|mismatch|cannot|must)|cannot broadcast"
                     r"|self.ndim must equal index.ndim|requires self.shape\[d\] >= index.shape\[d\]"),
    ("target_dtype", r"expects int index tensor"),
]


class Unsupported(Exception):
    pass


def read(t):
    return Tensor(protocol1.values(t)).cast(DTYPES[t["dtype"]])


def write(x):
    dtype = NAMES[x.dtype]
    a = x.cast(dtypes.float64).numpy() if dtype in protocol1.FLOATS else x.numpy()
    return protocol1.tensor(dtype, a)


def log_softmax(x, dim):
    if dim is None:  # PyTorch's implicit (deprecated) choice
        dim = 0 if x.ndim in (0, 1, 3) else 1
    return x.log_softmax(axis=dim)


def nll_loss(x, y, w, a):
    unbatched = x.ndim == 1
    if unbatched:  # (C,) with a 0-d target: a batch of one (another target is tinygrad's to judge)
        x, y = x.unsqueeze(0), y.reshape(1) if y.ndim == 0 else y
    out = x.nll_loss(y, weight=w, ignore_index=a["ignore_index"], reduction=a["reduction"])
    return out.reshape(()) if unbatched and a["reduction"] == "none" else out


def cross_entropy(x, y, w, a, any_ignored):
    reduction, ignore, ls = a["reduction"], a["ignore_index"], a["label_smoothing"]
    if dtypes.is_float(y.dtype):  # class probabilities
        if w is not None:
            raise Unsupported("no tinygrad loss takes a per-class weight with probability targets")
        return x.cross_entropy(y, reduction=reduction, label_smoothing=ls)
    if w is not None:
        if ls != 0:
            raise Unsupported("no tinygrad loss takes both a class weight and label smoothing")
        return nll_loss(x.log_softmax(0 if x.ndim == 1 else 1), y, w, a)
    if any_ignored:
        xl = x.permute(0, *range(2, x.ndim), 1) if x.ndim > 2 else x
        return xl.sparse_categorical_crossentropy(y, ignore_index=ignore, label_smoothing=ls, reduction=reduction)
    return x.cross_entropy(y, reduction=reduction, label_smoothing=ls)


def run(req):
    ins = {k: read(v) for k, v in req["inputs"].items()}
    a, op = req["attrs"], req["op"]
    g = ins.pop("grad_output", None)
    x = ins["input"]
    if op == "log_softmax":
        out = log_softmax(x, a["dim"])
    elif op == "nll_loss":
        out = nll_loss(x, ins["target"], ins.get("weight"), a)
    else:
        # decided before the graph is built: tinygrad's losses take no ignore_index but one
        t = req["inputs"]["target"]
        any_ignored = t["dtype"] not in protocol1.FLOATS and a["ignore_index"] in protocol1.values(t)
        out = cross_entropy(x, ins["target"], ins.get("weight"), a, bool(np.any(any_ignored)))
    if g is None:
        return out.realize(), None
    (gi,) = out.gradient(x, gradient=g.cast(out.dtype))
    return out.realize(), gi.realize()


def answer(req):
    rid = req["id"]
    try:
        out, gi = run(req)
    except Unsupported as e:
        return {"id": rid, "unsupported": str(e)}
    except subprocess.CalledProcessError as e:
        # clang failed to compile a kernel tinygrad generated; Debian 12's clang 14 has no __bf16
        # ("__bf16 is not supported on this target"), so no bfloat16 kernel builds there
        if any(t["dtype"] == "bfloat16" for t in req["inputs"].values()):
            return {"id": rid, "unsupported": "tinygrad's CPU device cannot build bfloat16 kernels with this clang "
                                              "(clang 14: __bf16 is not supported on this target)"}
        return protocol1.error(rid, f"clang failed to compile a kernel: {e}", KINDS)
    except (ValueError, TypeError, IndexError, RuntimeError, AssertionError, KeyError) as e:
        message = f"{type(e).__name__}: {e}"
        return protocol1.error(rid, message, KINDS)
    return protocol1.answer_values(rid, write(out), None if gi is None else write(gi))


if __name__ == "__main__":
    protocol1.serve(answer)
