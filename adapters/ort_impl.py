#!/usr/bin/env python3
"""ONNX Runtime (CPU) as an implementation under test, over nllspec's protocol 1.

    nllspec run --impl "ort=exec:python3 adapters/ort_impl.py" \
                --expectations adapters/expectations/ort.json

Each request becomes a one-node ONNX model (opset 13): LogSoftmax, NegativeLogLikelihoodLoss
or SoftmaxCrossEntropyLoss, run by an InferenceSession on the CPU execution provider. ONNX
Runtime is an inference engine without autograd, so a request for a gradient is answered
forward-only (`grad_input_unsupported`). What ONNX has no way to express is `unsupported`:
label smoothing and probability targets (SoftmaxCrossEntropyLoss takes class indices only).
PyTorch's conveniences the ONNX ops lack are supplied here as a PyTorch user would expect
them: the implicit log_softmax dim, and unbatched (C,) loss inputs (a batch of one).
Rejections are mapped to the contract's kinds from ONNX Runtime's own messages.
"""

import math

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

import protocol1  # beside this file

try:
    from ml_dtypes import bfloat16
except ImportError:  # onnx brings ml_dtypes; without it bfloat16 is unsupported
    bfloat16 = None

OPSET = 13
NP = {"float16": np.float16, "float32": np.float32, "float64": np.float64,
      "int64": np.int64, "int32": np.int32, "uint8": np.uint8}
if bfloat16 is not None:
    NP["bfloat16"] = bfloat16
ONNX_TYPE = {"float16": TensorProto.FLOAT16, "bfloat16": TensorProto.BFLOAT16, "float32": TensorProto.FLOAT,
             "float64": TensorProto.DOUBLE, "int64": TensorProto.INT64, "int32": TensorProto.INT32,
             "uint8": TensorProto.UINT8}
NAME = {v: k for k, v in NP.items()}
SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
NO_AUTOGRAD = "ONNX Runtime is an inference engine: it has no autograd"

# ONNX Runtime's messages -> the contract's error kinds (spec/ERRORS.md)
KINDS = [
    ("input_dtype", r"Type 'tensor\(\w+\)' of input parameter \(x\)"),
    ("target_dtype", r"Type 'tensor\(\w+\)' of input parameter \(target\)"),
    ("dtype_mismatch", r"Type 'tensor\(\w+\)' of input parameter \(w\)|Type parameter \(T\) .* bound to different types"),
    ("weight_shape", r"Weight rank must be 1"),
    ("dim_out_of_range", r"'axis' must be in"),
    ("target_out_of_bounds", r"Out of range value in index tensor"),
    ("target_shape", r"Target rank must be 1 less than the input rank|Input and target dimension value mismatch"),
    ("input_rank", r"Input rank must be >= \d"),
]


class Unsupported(Exception):
    pass


def read(t):
    if t["dtype"] not in NP:
        raise Unsupported(f"no NumPy type for {t['dtype']}")
    data = [SPECIAL[v] if isinstance(v, str) else v for v in t["data"]]
    wide = np.float64 if t["dtype"] in ("float16", "bfloat16", "float32", "float64") else np.int64
    return np.asarray(data, dtype=wide).astype(NP[t["dtype"]]).reshape(t["shape"])


def write(a):
    def f(x):
        x = float(x)
        if math.isnan(x):
            return "NaN"
        return x if math.isfinite(x) else ("Infinity" if x > 0 else "-Infinity")
    floats = a.dtype.kind == "f" or a.dtype == NP.get("bfloat16")
    data = [f(x) for x in a.ravel()] if floats else [int(x) for x in a.ravel()]
    return {"dtype": NAME[a.dtype.type], "shape": list(a.shape), "data": data}


def run_model(node, inputs, out_type):
    """Runs one node over named NumPy arrays; returns its single output."""
    graph = helper.make_graph(
        [node], "nllspec",
        [helper.make_tensor_value_info(n, ONNX_TYPE[NAME[a.dtype.type]], list(a.shape)) for n, a in inputs.items()],
        [helper.make_tensor_value_info("y", out_type, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return sess.run(["y"], inputs)[0]


def log_softmax(ins, attrs):
    x = ins["input"]
    dim = attrs["dim"]
    if dim is None:  # PyTorch's implicit (deprecated) choice
        dim = 0 if x.ndim in (0, 1, 3) else 1
    node = helper.make_node("LogSoftmax", ["x"], ["y"], axis=dim)
    return run_model(node, {"x": x}, ONNX_TYPE[NAME[x.dtype.type]])


def loss(op, ins, attrs):
    x, t, w = ins["input"], ins["target"], ins.get("weight")
    if NAME[t.dtype.type] in ("float16", "bfloat16", "float32", "float64"):
        raise Unsupported("SoftmaxCrossEntropyLoss takes class indices only, not probabilities")
    if attrs.get("label_smoothing", 0.0) != 0.0:
        raise Unsupported("ONNX's loss operators have no label smoothing")
    unbatched = x.ndim == 1
    if unbatched:  # (C,) with a 0-d target: a batch of one (another target is left to ONNX to judge)
        x, t = x[None], t.reshape(1) if t.ndim == 0 else t
    feeds = {"x": x, "target": t}
    names = ["x", "target"]
    if w is not None:
        feeds["w"] = w
        names.append("w")
    onnx_op = "NegativeLogLikelihoodLoss" if op == "nll_loss" else "SoftmaxCrossEntropyLoss"
    node = helper.make_node(onnx_op, names, ["y"], reduction=attrs["reduction"], ignore_index=attrs["ignore_index"])
    y = run_model(node, feeds, ONNX_TYPE[NAME[x.dtype.type]])
    if unbatched and attrs["reduction"] == "none":
        y = y.reshape(())
    return y


def answer(req):
    rid = req["id"]
    try:
        ins = {k: read(v) for k, v in req["inputs"].items()}
        op = req["op"]
        y = log_softmax(ins, req["attrs"]) if op == "log_softmax" else loss(op, ins, req["attrs"])
    except Unsupported as e:
        return {"id": rid, "unsupported": str(e)}
    except (onnx.checker.ValidationError, ort.capi.onnxruntime_pybind11_state.Fail,
            ort.capi.onnxruntime_pybind11_state.InvalidArgument,
            ort.capi.onnxruntime_pybind11_state.InvalidGraph,
            ort.capi.onnxruntime_pybind11_state.NotImplemented,
            ort.capi.onnxruntime_pybind11_state.RuntimeException) as e:
        message = str(e)
        if "NOT_IMPLEMENTED" in message:
            return {"id": rid, "unsupported": "ONNX Runtime's CPU provider has no kernel for this: " + message[:200]}
        if "Type 'tensor(bfloat16)' of input parameter" in message:
            # the opset-13 loss operators' type constraints (and SoftmaxCrossEntropyLoss's
            # function body) have no bfloat16
            return {"id": rid, "unsupported": "ONNX's opset-13 loss operators have no bfloat16 type"}
        return protocol1.error(rid, message, KINDS)
    resp = {"id": rid, "output": write(np.asarray(y))}
    if "grad_output" in req["inputs"]:
        resp["grad_input_unsupported"] = NO_AUTOGRAD
    return resp


if __name__ == "__main__":
    protocol1.serve(answer)
