#!/usr/bin/env python3
"""PaddlePaddle 3.3.1 (CPU) as an implementation under test, over nllspec's protocol 1.

    nllspec run --impl "paddle=exec:python3 adapters/paddle_impl.py" \
                --expectations adapters/expectations/paddle.json

PyTorch's three functions as a Paddle user writes them: `paddle.nn.functional.log_softmax`,
`nll_loss` and `cross_entropy` (with `weight`, `ignore_index`, `reduction`, `label_smoothing`
and `soft_label=True` for probability targets), gradients by `paddle.grad`. Only PyTorch's API
is bridged:

- the implicit log_softmax dim (PyTorch's deprecated choice: 0 for 0-, 1- and 3-d inputs);
- `cross_entropy`'s class axis: Paddle's default is the last (`axis=-1`), PyTorch's is dim 1
  (0 for an unbatched (C,) input), so `axis` is passed;
- `reduction="none"` of a cross_entropy keeps the class axis as size 1 ((N, 1) for (N, C)):
  that axis is squeezed, as a Paddle user porting PyTorch code does;
- an unbatched (C,) input to `nll_loss`, which Paddle rejects ("Expected 2 or more dimensions
  (got 1)"), is a batch of one.

Every other check is Paddle's own. A float dtype without a CPU kernel (float16, bfloat16:
"The kernel with key (CPU, ..., float16) of kernel `nll_loss` is not registered") is answered
`unsupported`; an integer input's missing kernel is Paddle's rejection of it (`input_dtype`).
Paddle's signal handler is disabled: with it, a crash inside a kernel (float64 nll_loss with an
ignored target corrupts the heap: `free(): invalid pointer`) deadlocks in the handler instead of
ending the process, and the run would wait out a timeout per case.
"""

import re
import warnings

warnings.filterwarnings("ignore")  # "No ccache found", printed at import

import numpy as np  # noqa: E402
import paddle  # noqa: E402
import paddle.nn.functional as F  # noqa: E402

import protocol1  # noqa: E402  (beside this file)

paddle.disable_signal_handler()
paddle.set_device("cpu")

# Paddle's messages -> the contract's error kinds (spec/ERRORS.md)
KINDS = [
    ("input_rank", r"Expected 2 or more dimensions \(got 0\)|The dimension of input should be larger than zero"),
    ("target_out_of_bounds", r"label should not be out of bounds|label value should (less than|>= 0)"
                             r"|Label value is out of range"
                             r"|Illegal index value, Input\(input\) value should be (less than|at least)"),
    ("invalid_reduction", r"'reduction' .*should be 'sum', 'mean' or 'none'"),
    ("invalid_argument", r"epsilon must be between 0 and 1|When soft_label == True, the value of 'ignore_index'"),
    ("target_dtype", r"The type of data we are trying to retrieve \(int64\) does not match"),
    ("dtype_mismatch", r"The type of data we are trying to retrieve \(float(32|64)\) does not match"),
    ("weight_shape", r"Weight's size should equal|must equal to weight's class_dimension"
                     r"|Input\(Weight\) should be a 1D tensor"),
    ("batch_size_mismatch", r"Expected input batch_size to match label batch_size"),
    ("target_shape", r"Expected input_dims - 1 = label_dims or input_dims == label_dims|ShapeError"
                     r"|Input\(X\) tensor shape should match to Input\(Label\) tensor shape"
                     r"|Input\(Logits\) and Input\(Label\) should in same shape"
                     r"|the axis dimension of Input\(Label\) should be 1"),
    ("input_dtype", r"kernel `\w+` is not registered\. Selected wrong DataType `(int|uint|bool)"),
    ("dim_out_of_range", r"Attr\(axis\) value should be in range"),
]
NO_KERNEL = re.compile(r"The kernel with key \(CPU, .*?, (float16|bfloat16)\) of kernel `(\w+)` is not registered")


def read(t):
    x = paddle.to_tensor(protocol1.values(t))
    return x if str(x.dtype).split(".")[-1] == t["dtype"] else x.astype(t["dtype"])


def write(x):
    dtype = str(x.dtype).split(".")[-1]
    a = x.astype("float64").numpy() if dtype in protocol1.FLOATS else x.numpy()
    return protocol1.tensor(dtype, a)


def log_softmax(x, dim):
    if dim is None:  # PyTorch's implicit (deprecated) choice
        dim = 0 if x.ndim in (0, 1, 3) else 1
    return F.log_softmax(x, axis=dim)


def nll_loss(x, target, weight, a):
    unbatched = x.ndim == 1
    if unbatched:  # (C,) with a 0-d target: a batch of one (another target is Paddle's to judge)
        x, target = x.unsqueeze(0), target.reshape([1]) if target.ndim == 0 else target
    out = F.nll_loss(x, target, weight=weight, ignore_index=a["ignore_index"], reduction=a["reduction"])
    return out.reshape([]) if unbatched and a["reduction"] == "none" else out


def cross_entropy(x, target, weight, a):
    axis = 0 if x.ndim == 1 else 1
    soft = str(target.dtype).split(".")[-1] in protocol1.FLOATS
    out = F.cross_entropy(x, target, weight=weight, ignore_index=a["ignore_index"], reduction=a["reduction"],
                          soft_label=soft, axis=axis, label_smoothing=a["label_smoothing"])
    if a["reduction"] == "none" and out.ndim == x.ndim and out.ndim > 0 and out.shape[axis] == 1:
        out = out.squeeze(axis)
    return out


def run(req):
    ins = {k: read(v) for k, v in req["inputs"].items()}
    a, op = req["attrs"], req["op"]
    g = ins.pop("grad_output", None)
    x = ins["input"]
    x.stop_gradient = g is None
    if op == "log_softmax":
        out = log_softmax(x, a["dim"])
    elif op == "nll_loss":
        out = nll_loss(x, ins["target"], ins.get("weight"), a)
    else:
        out = cross_entropy(x, ins["target"], ins.get("weight"), a)
    if g is None:
        return out, None
    (gi,) = paddle.grad([out], [x], grad_outputs=[g.astype(out.dtype)], allow_unused=True)
    return out, (paddle.zeros_like(x) if gi is None else gi)


def answer(req):
    rid = req["id"]
    try:
        out, gi = run(req)
    except (ValueError, TypeError, IndexError, RuntimeError, AssertionError) as e:
        message = str(e)
        missing = NO_KERNEL.search(message)
        if missing:
            return {"id": rid, "unsupported": f"Paddle has no CPU {missing[1]} kernel for {missing[2]}"}
        return protocol1.error(rid, message, KINDS, f"{type(e).__name__}: {message}")
    return protocol1.answer_values(rid, write(out), None if gi is None else write(gi))


if __name__ == "__main__":
    protocol1.serve(answer)
