#!/usr/bin/env python3
"""PyTorch as an implementation under test, over nllspec's protocol 1 (spec/PROTOCOL.md).

    nllspec run --impl "torch=exec:python3 adapters/torch_impl.py"                  # CPU
    nllspec run --impl "torch-cuda=exec:python3 adapters/torch_impl.py --device cuda" \
                --expectations adapters/expectations/torch-cuda.json

Its use: a hardware backend's (or another torch version's) divergences from PyTorch 2.15 on
CPU, the specification. The calls are the golden exporter's own (golden/export.py), so on
CPU with torch 2.15 every difference is a harness bug; on another device, each difference is
that device's, recorded in an expectations file with its reason.

Errors are mapped to the contract's kinds from torch's messages (the exporter's table). A CUDA
kernel does not raise on an out-of-range target: it trips a device-side assert, which
poisons the process's CUDA context. The adapter then answers that request (the only assert
in these kernels is the target bounds check) and exits, so that nllspec starts it afresh.
"""

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "golden"))
from export import DTYPES, classify, forward_backward, tensor_json  # noqa: E402

SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def to_tensor(t, device="cpu"):
    """A protocol TENSOR as a torch tensor; float values are exact in their dtype."""
    dtype = DTYPES[t["dtype"]]
    if dtype.is_floating_point:
        data = [SPECIAL[v] if isinstance(v, str) else float(v) for v in t["data"]]
        x = torch.tensor(data, dtype=torch.float64).to(dtype)
    else:
        x = torch.tensor(t["data"], dtype=torch.int64).to(dtype)
    return x.reshape(t["shape"]).to(device)


def run(req, device="cpu"):
    """(output, grad_input or None) of the request's op on `device`; raises what torch raises."""
    ins = {k: to_tensor(v, device) for k, v in req["inputs"].items()}
    g = ins.pop("grad_output", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the implicit-dim deprecation
        out, gi, _ = forward_backward(req["op"], ins, req["attrs"], (lambda _: g) if g is not None else None)
    if device != "cpu":
        torch.cuda.synchronize() if device.startswith("cuda") else None
    return out, gi


def answer(req, device):
    """The protocol response, and whether the process must exit after sending it."""
    try:
        out, gi = run(req, device)
    except Exception as e:  # torch's rejection, mapped to the contract's kind
        message = str(e)
        poisoned = "device-side assert" in message or "CUDA error" in message
        kind = classify(message)
        if kind is None and "device-side assert triggered" in message:
            kind = "target_out_of_bounds"  # the one assert in the nll/cross_entropy kernels
        error = {"kind": kind or "unclassified", "message": f"{type(e).__name__}: {message}"}
        return {"id": req["id"], "error": error}, poisoned
    resp = {"id": req["id"], "output": tensor_json(out.cpu())}
    if gi is not None:
        resp["grad_input"] = tensor_json(gi.cpu())
    return resp, False


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps, xpu: any device this torch has")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.empty(0, device=args.device)  # fail at start-up, not on the first case, if the device is absent
    for line in sys.stdin:
        req = json.loads(line)
        resp, poisoned = answer(req, args.device)
        print(json.dumps(resp, allow_nan=False), flush=True)
        if poisoned:
            sys.exit(0)


if __name__ == "__main__":
    main()
