#!/usr/bin/env python3
"""A complete NumPy implementation of log_softmax, nll_loss and cross_entropy, speaking
nllspec's external protocol 1 (spec/PROTOCOL.md) on stdin/stdout.

    nllspec run --impl "exec:python3 examples/numpy_impl.py"

It is what a framework author's adapter looks like: read one JSON request per line, compute,
answer one JSON line, flush. bfloat16 (which NumPy lacks) is answered `unsupported`.

`--bug NAME` plants one deliberate mistake (see BUGS), so that tests can show the suite
catches it; without it the implementation passes the whole suite.
"""

import json
import math
import sys

import numpy as np

BUGS = {
    "mean-ignores-weights": "mean divides by the number of positions, not by the summed weights",
    "ignored-in-denominator": "mean counts ignored positions in its denominator",
    "no-bounds-check": "out-of-bounds targets are clipped instead of rejected",
    "implicit-dim-last": "log_softmax(dim=None) reduces over the last dimension",
    "smoothing-over-c-minus-1": "label smoothing spreads ls over the C - 1 other classes",
    "grad-sign": "log_softmax's gradient has the wrong sign",
    "all-ignored-zero": "mean over only ignored targets is 0 instead of NaN",
}
BUG = None

NP = {"float16": np.float16, "float32": np.float32, "float64": np.float64,
      "int64": np.int64, "int32": np.int32, "uint8": np.uint8}
FLOATS = ("float16", "float32", "float64")
TORCH_NAMES = {"float16": "Half", "bfloat16": "BFloat16", "float32": "Float", "float64": "Double",
               "int64": "Long", "int32": "Int", "uint8": "Byte"}


class Reject(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


class Unsupported(Exception):
    pass


class T:
    """A tensor: float64 (or int64) values, the golden dtype name, and the shape."""

    def __init__(self, values, dtype, shape=None):
        self.dtype = dtype
        self.v = np.asarray(values)
        self.shape = tuple(self.v.shape if shape is None else shape)
        self.v = self.v.reshape(self.shape)

    @property
    def is_float(self):
        return self.dtype in FLOATS or self.dtype == "bfloat16"

    @property
    def ndim(self):
        return len(self.shape)


SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def read(t):
    if t["dtype"] == "bfloat16":
        raise Unsupported("NumPy has no bfloat16")
    shape = tuple(t["shape"])
    if t["dtype"] in FLOATS:
        vals = np.array([SPECIAL.get(x, x) if isinstance(x, str) else x for x in t["data"]], dtype=np.float64)
    else:
        vals = np.array(t["data"], dtype=np.int64)
    return T(vals, t["dtype"], shape)


def write(values, dtype):
    a = np.asarray(values, dtype=np.float64)
    rounded = a.astype(NP[dtype]).astype(np.float64).reshape(-1)
    data = []
    for x in rounded.tolist():
        if math.isnan(x):
            data.append("NaN")
        elif math.isinf(x):
            data.append("Infinity" if x > 0 else "-Infinity")
        else:
            data.append(x)
    return {"dtype": dtype, "shape": list(a.shape), "data": data}


def fmt_shape(shape):
    return "[" + ", ".join(str(d) for d in shape) + "]"


def promote(a, b):
    if a not in FLOATS:
        return b
    if b not in FLOATS or a == b:
        return a
    return "float64" if "float64" in (a, b) else "float32"


# ---------------------------------------------------------------------------------------------
# log_softmax


def check_log_softmax(x, dim):
    if dim is None:
        dim = (x.ndim - 1 if x.ndim else 0) if BUG == "implicit-dim-last" else (0 if x.ndim in (0, 1, 3) else 1)
    n = max(x.ndim, 1)
    if not -n <= dim < n:
        raise Reject("dim_out_of_range", f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    dim = dim + n if dim < 0 else dim
    if x.v.size and not x.is_float:
        raise Reject("input_dtype", f"log_softmax not implemented for '{TORCH_NAMES[x.dtype]}'")
    return dim


def log_softmax_values(v, dim):
    """log_softmax of float64 values along dim; rows with NaN or +inf, or all -inf, are NaN."""
    if v.ndim == 0:
        v = v.reshape(1)
        return log_softmax_values(v, 0).reshape(())
    m = np.max(v, axis=dim, keepdims=True) if v.shape[dim] else v
    with np.errstate(invalid="ignore", over="ignore"):
        shifted = v - m
        lse = np.log(np.sum(np.exp(shifted), axis=dim, keepdims=True))
        out = shifted - lse
    bad = ~np.isfinite(m)
    return np.where(bad, np.nan, out)


def log_softmax_vjp(g, out, dim):
    if out.ndim == 0:
        return g - np.exp(out) * g
    with np.errstate(invalid="ignore"):
        gi = g - np.exp(out) * np.sum(g, axis=dim, keepdims=True)
    return -gi if BUG == "grad-sign" else gi


# ---------------------------------------------------------------------------------------------
# nll_loss: the checks of torch's nll_loss_nd, then nll_loss (1-D/2-D) or nll_loss2d


def nll_plan(shape, dtype, target, weight, ignore_index):
    nd = len(shape)
    if nd < 1:
        raise Reject("input_rank", f"Expected 1 or more dimensions (got {nd})")
    if nd != 1:
        tb = target.shape[0] if target.ndim else 0
        if shape[0] != tb:
            raise Reject("batch_size_mismatch", f"Expected input batch_size ({shape[0]}) to match target batch_size ({tb}).")
    index_dtypes = ("int64", "uint8")
    if nd <= 2:
        if target.ndim > 1:
            raise Reject("target_shape", "0D or 1D target tensor expected, multi-target not supported")
        if target.dtype not in index_dtypes:
            raise Reject("target_dtype", f"expected target dtype to be Long or Byte, but got {TORCH_NAMES[target.dtype]}")
        if nd == 2 and target.ndim == 0:
            raise Reject("target_shape", "Dimension specified as 0 but tensor has no dimensions")
        if nd == 1 and target.ndim == 1 and target.v.size != 1:
            raise Reject("target_shape", f"For 1D input, 1D target must have size 1, but got target size: {target.v.size}")
        c = shape[-1]
        if weight is not None and (weight.ndim != 1 or weight.v.size != c):
            raise Reject("weight_shape", f"weight tensor should be defined either for all {c} classes or no classes")
        if dtype not in FLOATS and dtype != "bfloat16":
            raise Reject("input_dtype", f"nll_loss not implemented for '{TORCH_NAMES[dtype]}'")
        if weight is not None and weight.dtype != dtype:
            raise Reject("dtype_mismatch", f"expected scalar type {TORCH_NAMES[dtype]} but found {TORCH_NAMES[weight.dtype]}")
        inner = 1
    else:
        if nd != 4:
            if target.ndim == 0:
                raise Reject("target_shape", "ArrayRef: invalid slice, N = 1; size = 0")
            if tuple(target.shape[1:]) != tuple(shape[2:]):
                raise Reject("target_shape", f"Expected target size {fmt_shape((shape[0],) + tuple(shape[2:]))}, got {fmt_shape(target.shape)}")
        elif target.ndim != 3:
            raise Reject("target_shape", f"only batches of spatial targets supported (3D tensors) but got targets of dimension: {target.ndim}")
        if target.dtype not in index_dtypes:
            raise Reject("target_dtype", f"expected target dtype to be Long or Byte, but got {TORCH_NAMES[target.dtype]}")
        c = shape[1]
        if weight is not None and weight.v.size != c:
            raise Reject("weight_shape", "weight tensor should be defined either for all or no classes")
        if nd == 4 and (shape[0], shape[2], shape[3]) != tuple(target.shape):
            raise Reject("target_shape", f"size mismatch (got input: {fmt_shape(shape)} , target: {fmt_shape(target.shape)}")
        if dtype not in FLOATS and dtype != "bfloat16":
            raise Reject("input_dtype", f"nll_loss2d not implemented for '{TORCH_NAMES[dtype]}'")
        if weight is not None and weight.dtype != dtype:
            raise Reject("dtype_mismatch", f"expected scalar type {TORCH_NAMES[dtype]} but found {TORCH_NAMES[weight.dtype]}")
        if target.dtype == "uint8":
            raise Reject("target_dtype", "expected scalar type Long but found Byte")
        inner = int(np.prod(shape[2:]))
    t = target.v.reshape(-1).astype(np.int64)
    keep = t != ignore_index
    oob = keep & ((t < 0) | (t >= c))
    if oob.any():
        if BUG == "no-bounds-check":
            t = np.clip(t, 0, max(c - 1, 0))
        else:
            raise Reject("target_out_of_bounds", f"Target {t[np.argmax(oob)]} is out of bounds.")
    if nd == 1:
        none_shape = ()
    elif nd == 2:
        none_shape = (shape[0],)
    else:
        none_shape = (shape[0],) + tuple(shape[2:])
    w = weight.v.reshape(-1).astype(np.float64) if weight is not None else np.ones(c)
    return {"c": c, "inner": inner, "t": np.where(keep, t, 0), "keep": keep, "w": w, "none_shape": none_shape,
            "weighted": weight is not None}


def rows_view(v, plan):
    """(positions, C) view of an (N, C, *) array; (1, C) for a (C,) input."""
    c, inner = plan["c"], plan["inner"]
    n = v.size // max(c * inner, 1) if c * inner else (plan["t"].size // max(inner, 1))
    return np.moveaxis(v.reshape(n, c, inner), 1, 2).reshape(n * inner, c)


def from_rows(rows, plan, shape):
    c, inner = plan["c"], plan["inner"]
    n = rows.shape[0] // inner if inner else 0
    return np.moveaxis(rows.reshape(n, inner, c), 2, 1).reshape(shape)


def mean_denominator(plan):
    keep, wt = plan["keep"], plan["w"][plan["t"]]
    if BUG == "ignored-in-denominator":
        return float(keep.size) if not plan["weighted"] else float(np.sum(wt))
    if BUG == "mean-ignores-weights":
        return float(np.sum(keep))
    return float(np.sum(np.where(keep, wt, 0.0)))


def reduce(per_pos, reduction, total, plan):
    if reduction == "none":
        return per_pos.reshape(plan["none_shape"])
    s = np.sum(per_pos)
    if reduction == "sum":
        return np.array(s)
    if BUG == "all-ignored-zero" and not plan["keep"].any():
        return np.array(0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.array(s / total)


def scale(g, reduction, total, n):
    if reduction == "none":
        return g.reshape(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.full(n, g.reshape(-1)[0] / total if reduction == "mean" else g.reshape(-1)[0])


def parse_reduction(r):
    if r == "elementwise_mean":
        return "mean"
    if r not in ("none", "mean", "sum"):
        raise Reject("invalid_reduction", f"{r} is not a valid value for reduction")
    return r


def nll_forward_backward(rows, plan, reduction, g):
    """rows: (P, C) log-probabilities. Returns output and d loss / d rows."""
    idx = np.arange(rows.shape[0])
    keep, t, w = plan["keep"], plan["t"], plan["w"]
    picked = rows[idx, t] if rows.shape[1] else np.zeros(rows.shape[0])
    with np.errstate(invalid="ignore"):
        per_pos = np.where(keep, -(picked * w[t] if rows.shape[1] else 0), 0.0)
    total = mean_denominator(plan)
    out = reduce(per_pos, reduction, total, plan)
    grad = None
    if g is not None:
        s = scale(g, reduction, total, rows.shape[0])
        grad = np.zeros_like(rows)
        with np.errstate(invalid="ignore"):
            vals = w[t] * -s if rows.shape[1] else np.zeros(rows.shape[0])
        grad[idx[keep], t[keep]] = vals[keep]
    return out, grad, per_pos, total


# ---------------------------------------------------------------------------------------------
# requests


def op_log_softmax(inputs, attrs):
    x = inputs["input"]
    dim = check_log_softmax(x, attrs["dim"])
    if x.v.size == 0:
        empty = {"dtype": x.dtype, "shape": list(x.shape), "data": []}
        resp = {"output": empty}
        if "grad_output" in inputs:
            resp["grad_input"] = empty
        return resp, x
    out = log_softmax_values(x.v.astype(np.float64), dim)
    resp = {"output": write(out, x.dtype)}
    if "grad_output" in inputs:
        resp["grad_input"] = write(log_softmax_vjp(inputs["grad_output"].v, out, dim), x.dtype)
    return resp, x


def op_nll_loss(inputs, attrs):
    reduction = parse_reduction(attrs.get("reduction", "mean"))
    x, target, weight = inputs["input"], inputs["target"], inputs.get("weight")
    plan = nll_plan(x.shape, x.dtype, target, weight, attrs.get("ignore_index", -100))
    rows = rows_view(x.v.astype(np.float64), plan)
    g = inputs["grad_output"].v if "grad_output" in inputs else None
    out, grad, _, _ = nll_forward_backward(rows, plan, reduction, g)
    resp = {"output": write(out, x.dtype)}
    if grad is not None:
        resp["grad_input"] = write(from_rows(grad, plan, x.shape), x.dtype)
    return resp, x


def op_cross_entropy(inputs, attrs):
    reduction = parse_reduction(attrs.get("reduction", "mean"))
    x, target, weight = inputs["input"], inputs["target"], inputs.get("weight")
    ls = float(attrs.get("label_smoothing", 0.0))
    ignore_index = attrs.get("ignore_index", -100)
    g = inputs["grad_output"].v if "grad_output" in inputs else None
    cd = 0 if x.ndim == 1 else 1
    if x.shape == target.shape:
        if not target.is_float:
            raise Reject("target_dtype", f"Expected floating point type for target with class probabilities, got {TORCH_NAMES[target.dtype]}")
        if ignore_index >= 0:
            raise Reject("invalid_argument", "ignore_index is not supported for floating point target")
        if x.ndim == 0:
            raise Reject("dim_out_of_range", "Dimension specified as 1 but tensor has no dimensions")
        c = x.shape[cd]
        if weight is not None and (weight.ndim != 1 or weight.v.size != c):
            raise Reject("weight_shape", f"cross_entropy: weight tensor should be defined either for all {c} classes or no classes")
        check_log_softmax(x, cd)
        if ls > 0 and not ls <= 1:
            raise Reject("invalid_argument", f"label_smoothing must be between 0.0 and 1.0. Got: {ls}")
        out_dtype = promote(x.dtype, target.dtype)
        if weight is not None:
            out_dtype = promote(out_dtype, weight.dtype)
        logp = log_softmax_values(x.v.astype(np.float64), cd)
        t = target.v.astype(np.float64)
        if ls > 0:
            t = t * (1 - ls) + ls / c
        wshape = [1] * x.ndim
        wshape[cd] = c
        w = weight.v.astype(np.float64).reshape(wshape) if weight is not None else 1.0
        coef = t * w
        with np.errstate(invalid="ignore"):
            per_pos = -np.sum(logp * coef, axis=cd)
        count = x.v.size // c if x.v.size else 0
        if reduction == "none":
            out = per_pos
        elif reduction == "sum":
            out = np.array(np.sum(per_pos))
        else:
            out = np.array(np.sum(per_pos) / count) if count else np.array(math.nan)
        resp = {"output": write(out, out_dtype)}
        if g is not None:
            gg = g.astype(np.float64)
            if reduction == "none":
                s = np.expand_dims(gg, cd)
            else:
                s = gg.reshape(()) / (count if reduction == "mean" else 1)
            resp["grad_input"] = write(log_softmax_vjp(-coef * s, logp, cd), x.dtype)
        return resp, x

    if ls > 0 and not ls <= 1:
        raise Reject("invalid_argument", f"label_smoothing must be between 0.0 and 1.0. Got: {ls}")
    check_log_softmax(x, cd)
    plan = nll_plan(x.shape, x.dtype, target, weight, ignore_index)
    logp = log_softmax_values(x.v.astype(np.float64), cd) if x.v.size else x.v.astype(np.float64)
    rows = rows_view(logp, plan)
    out, grad, _, total = nll_forward_backward(rows, plan, reduction, g)
    if ls > 0:
        c = plan["c"]
        keep = plan["keep"]
        with np.errstate(invalid="ignore"):
            smooth = np.where(keep, -np.sum(rows * plan["w"][None, :], axis=1), 0.0)
        sm = reduce(smooth, reduction, total, plan)
        if BUG == "smoothing-over-c-minus-1":
            # wrong: the ls mass goes to the C - 1 other classes, in place of ls / C on every class
            own = np.where(keep, -rows[np.arange(rows.shape[0]), plan["t"]] * plan["w"][plan["t"]], 0.0)
            other = reduce(smooth - own, reduction, total, plan)
            with np.errstate(invalid="ignore", divide="ignore"):
                out = (1 - ls) * out + other * (ls / (c - 1))
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                out = (1 - ls) * out + sm * (ls / c)
        if g is not None:
            s = scale(g, reduction, total, rows.shape[0])
            with np.errstate(invalid="ignore", divide="ignore"):
                spread = np.where(keep, s, 0.0)[:, None] * (-(ls / c)) * plan["w"][None, :]
            grad = grad * (1 - ls) + spread
    resp = {"output": write(out, x.dtype)}
    if grad is not None:
        gi = log_softmax_vjp(grad, rows, 1) if rows.size else grad
        resp["grad_input"] = write(from_rows(gi, plan, x.shape), x.dtype)
    return resp, x


OPS = {"log_softmax": op_log_softmax, "nll_loss": op_nll_loss, "cross_entropy": op_cross_entropy}


def handle(req):
    inputs = {k: read(v) for k, v in req["inputs"].items()}
    resp, _ = OPS[req["op"]](inputs, req.get("attrs", {}))
    return resp


def main():
    global BUG
    if len(sys.argv) == 3 and sys.argv[1] == "--bug" and sys.argv[2] in BUGS:
        BUG = sys.argv[2]
    elif len(sys.argv) != 1:
        sys.exit(f"usage: numpy_impl.py [--bug {{{','.join(BUGS)}}}]")
    for line in sys.stdin:
        req = json.loads(line)
        try:
            resp = {"id": req["id"], **handle(req)}
        except Reject as e:
            resp = {"id": req["id"], "error": {"kind": e.kind, "message": str(e)}}
        except Unsupported as e:
            resp = {"id": req["id"], "unsupported": str(e)}
        sys.stdout.write(json.dumps(resp) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
