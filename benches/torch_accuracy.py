#!/usr/bin/env python3
"""PyTorch's float32 log_softmax and cross_entropy error, in ulp, against float64 from the same
inputs (rounded to float32), on 1024 x 32000 rows of randn * scale.

    .venv/bin/python benches/torch_accuracy.py

Compare with `cargo run --release -- accuracy --impl native --elements 32768000`.
"""
import numpy as np
import torch
import torch.nn.functional as F


def ulps(a, b):
    ia = a.numpy().view(np.int32).astype(np.int64)
    ib = b.numpy().view(np.int32).astype(np.int64)
    ia = np.where(ia < 0, -(ia & 0x7FFFFFFF), ia)
    ib = np.where(ib < 0, -(ib & 0x7FFFFFFF), ib)
    return np.abs(ia - ib)


def main():
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    print("| op | scale | PyTorch max ulp | 99.9th percentile |")
    print("| --- | --- | --- | --- |")
    for scale in (1.0, 3.0, 30.0, 100.0):
        x = torch.randn(1024, 32000, generator=g) * scale
        t = torch.randint(0, 32000, (1024,), generator=g)
        truth = torch.log_softmax(x.double(), 1).float()
        u = ulps(torch.log_softmax(x, 1), truth)
        print(f"| log_softmax | {scale:g} | {u.max()} | {int(np.quantile(u, 0.999))} |")
        ce = F.cross_entropy(x, t, reduction="none")
        u = ulps(ce, F.cross_entropy(x.double(), t, reduction="none").float())
        print(f"| cross_entropy | {scale:g} | {u.max()} | {int(np.quantile(u, 0.999))} |")


if __name__ == "__main__":
    main()
