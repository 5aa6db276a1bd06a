#!/usr/bin/env python3
"""PyTorch's figures for the shapes of benches/ops.rs: one thread, float32, median of repeats.

    .venv/bin/python benches/torch_baseline.py
"""
import statistics
import time

import torch
import torch.nn.functional as F

SHAPES = {"64x1000": (64, 1000), "1024x32000": (1024, 32000), "8x21x128x128": (8, 21, 128, 128)}


def median_ms(fn, budget=3.0):
    fn()
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < budget or len(times) < 10:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main():
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__}, 1 thread, float32, median ms")
    print("| shape | log_softmax | cross_entropy | nll_loss | read once (sum) |")
    print("| --- | --- | --- | --- | --- |")
    for name, shape in SHAPES.items():
        x = torch.randn(shape, generator=g) * 3
        tshape = (shape[0],) + shape[2:]
        t = torch.randint(0, shape[1], tshape, generator=g)
        ls = median_ms(lambda: torch.log_softmax(x, 1))
        ce = median_ms(lambda: F.cross_entropy(x, t))
        nll = median_ms(lambda: F.nll_loss(x, t))
        rd = median_ms(lambda: x.sum())
        print(f"| {name} | {ls:.3f} | {ce:.3f} | {nll:.3f} | {rd:.3f} |")
    # benches/ops.rs's log_softmax_dtypes group: the same logits in the other float dtypes
    print()
    print("log_softmax, median ms")
    print("| shape | float64 | float16 | bfloat16 |")
    print("| --- | --- | --- | --- |")
    for name, shape in SHAPES.items():
        if name == "1024x32000":
            continue
        x = torch.randn(shape, generator=g) * 3
        cells = []
        for dt in (torch.float64, torch.float16, torch.bfloat16):
            xd = x.to(dt)
            cells.append(median_ms(lambda: torch.log_softmax(xd, 1)))
        print(f"| {name} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")


if __name__ == "__main__":
    main()
