#!/usr/bin/env python3
"""JAX (CPU, float64 enabled) as an implementation under test, over nllspec's protocol 1.

    nllspec run --impl "jax=exec:python3 adapters/jax_impl.py" \
                --expectations adapters/expectations/jax.json

PyTorch's three functions written the way a JAX user would: `jax.nn.log_softmax`; optax's
`softmax_cross_entropy_with_integer_labels` and `softmax_cross_entropy` where they apply (no
weight, no label smoothing, no ignored target); compositions of jax.numpy elsewhere (the
class weight, ignore_index, label smoothing, the reductions). Gradients by `jax.vjp`. Each
case's function is jitted as a whole: compiling it once costs less than compiling each of its
ops eagerly (the suite: 167 s eager, 2 cores). Only PyTorch's API itself is shimmed (the implicit dim, unbatched (C,)
inputs, the reduction names); every other check is JAX's own, and its exceptions are mapped
to the contract's kinds from their messages.
"""

import math

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_platforms", "cpu")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import protocol1  # noqa: E402  (beside this file)

DTYPES = {"float16": jnp.float16, "bfloat16": jnp.bfloat16, "float32": jnp.float32, "float64": jnp.float64,
          "int64": jnp.int64, "int32": jnp.int32, "uint8": jnp.uint8}
NAMES = {np.dtype(v): k for k, v in DTYPES.items()}
FLOATS = ("float16", "bfloat16", "float32", "float64")
SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

# JAX's messages -> the contract's error kinds (spec/ERRORS.md)
KINDS = [
    ("dim_out_of_range", r"axis -?\d+ is out of bounds for array of dimension"),
    ("invalid_reduction", r"is not a valid value for reduction"),
    ("target_shape", r"[Ii]ncompatible shapes for broadcasting|indices and arr must have the same number of dimensions"),
    ("input_dtype", r"must be (a )?float|floating"),
]


def read(t):
    wide = np.float64 if t["dtype"] in FLOATS else np.int64
    data = [SPECIAL[v] if isinstance(v, str) else v for v in t["data"]]
    return jnp.asarray(np.asarray(data, dtype=wide).reshape(t["shape"])).astype(DTYPES[t["dtype"]])


def write(a):
    a = np.asarray(a)
    name = NAMES[a.dtype]
    if name in FLOATS:
        def f(x):
            return x if math.isfinite(x) else ("NaN" if x != x else ("Infinity" if x > 0 else "-Infinity"))
        data = [f(float(x)) for x in a.ravel()]
    else:
        data = [int(x) for x in a.ravel()]
    return {"dtype": name, "shape": list(a.shape), "data": data}


def log_softmax(x, dim):
    if dim is None:  # PyTorch's implicit (deprecated) choice
        dim = 0 if x.ndim in (0, 1, 3) else 1
    return jax.nn.log_softmax(x, axis=dim)


def reduce(loss, weights, reduction):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.sum() / weights.sum()
    raise ValueError(f"{reduction} is not a valid value for reduction")


def picked(logp, target, weight, ignore_index):
    """-logp at each target, weighted, 0 where ignored; and each position's weight."""
    valid = target != ignore_index
    safe = jnp.where(valid, target, 0).astype(jnp.int64)
    at = jnp.take_along_axis(logp, safe[:, None], axis=1)[:, 0]
    w = jnp.ones_like(at) if weight is None else weight[safe]
    w = jnp.where(valid, w, 0)
    return jnp.where(valid, -at * w, 0), w  # an ignored position's value is never read


def nll_loss(logp, target, weight, reduction, ignore_index):
    unbatched = logp.ndim == 1
    if unbatched:
        logp, target = logp[None], target.reshape(1) if target.ndim == 0 else target
    loss, w = picked(logp, target, weight, ignore_index)
    out = reduce(loss, w, reduction)
    return out.reshape(()) if unbatched and reduction == "none" else out


def cross_entropy(x, target, weight, reduction, ignore_index, ls, any_ignored):
    if target.shape == x.shape and jnp.issubdtype(target.dtype, jnp.floating):  # class probabilities
        axis = 0 if x.ndim == 1 else 1
        t = target * (1 - ls) + ls / x.shape[axis] if ls > 0 else target
        if weight is None:
            loss = optax.softmax_cross_entropy(x, t, axis=axis)
        else:
            shape = [1] * x.ndim
            shape[axis] = -1
            loss = -(weight.reshape(shape) * t * jax.nn.log_softmax(x, axis=axis)).sum(axis=axis)
        return reduce(loss, jnp.ones_like(loss), reduction)
    if weight is None and ls == 0 and x.ndim > 1 and not any_ignored:
        loss = optax.softmax_cross_entropy_with_integer_labels(x, target, axis=1)
        return reduce(loss, jnp.ones_like(loss), reduction)
    logp = log_softmax(x, 0 if x.ndim == 1 else 1)
    nll = nll_loss(logp, target, weight, reduction, ignore_index)
    if ls <= 0:
        return nll
    # label smoothing: (1 - ls) * nll + ls / C * (the weighted sum of -logp over the classes)
    batched = logp if logp.ndim > 1 else logp[None]
    t = target.reshape(1) if target.ndim == 0 else target
    valid = t != ignore_index
    w = jnp.ones(batched.shape[1], batched.dtype) if weight is None else weight
    shape = [1] * batched.ndim
    shape[1] = -1
    smooth = jnp.where(valid, -(batched * w.reshape(shape)).sum(axis=1), 0)
    _, wt = picked(batched, t, weight, ignore_index)
    smooth = reduce(smooth, wt, reduction)
    if logp.ndim == 1 and reduction == "none":
        smooth = smooth.reshape(())
    return (1 - ls) * nll + ls / batched.shape[1] * smooth


def run(req):
    """(output, grad_input or None); the case's function is jitted as a whole."""
    ins = {k: read(v) for k, v in req["inputs"].items()}
    a, op = req["attrs"], req["op"]
    g = ins.pop("grad_output", None)
    # decided before tracing: a traced function cannot branch on values
    any_ignored = "target" in ins and bool((ins["target"] == a.get("ignore_index")).any())

    @jax.jit
    def f(x):
        if op == "log_softmax":
            return log_softmax(x, a["dim"])
        if op == "nll_loss":
            return nll_loss(x, ins["target"], ins.get("weight"), a["reduction"], a["ignore_index"])
        return cross_entropy(x, ins["target"], ins.get("weight"), a["reduction"], a["ignore_index"],
                             a["label_smoothing"], any_ignored)

    if g is None:
        return f(ins["input"]), None
    out, vjp = jax.vjp(f, ins["input"])
    (gi,) = vjp(g.astype(out.dtype))
    return out, gi


def answer(req):
    try:
        out, gi = run(req)
    except (ValueError, TypeError, IndexError) as e:
        return protocol1.error(req["id"], str(e), KINDS, f"{type(e).__name__}: {e}")
    resp = {"id": req["id"], "output": write(out)}
    if gi is not None:
        resp["grad_input"] = write(gi)
    return resp


if __name__ == "__main__":
    protocol1.serve(answer)
