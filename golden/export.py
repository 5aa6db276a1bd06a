#!/usr/bin/env python3
"""Runs real PyTorch over every spec case and writes the golden files.

    python golden/export.py            # regenerate golden/ from spec/cases/
    python golden/export.py --check    # regenerate in memory, fail if any file would change

spec/cases/<op>/<name>.json (written by people) becomes golden/<op>/<name>.json (written only by
this script). Each spec case expands into one golden case per matrix point and dtype, with the
id `<spec id>[/<attr>=<value>...]@<dtype>`. Inputs come from seeded NumPy generators, so the
same spec and the same torch give byte-identical files. Format: spec/FORMAT.md.
"""

import argparse
import hashlib
import itertools
import json
import math
import platform
import re
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
SPEC_DIR = ROOT / "spec" / "cases"
GOLDEN_DIR = ROOT / "golden"
TAGS_FILE = ROOT / "spec" / "tags.json"

DTYPES = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
    "int64": torch.int64,
    "int32": torch.int32,
    "uint8": torch.uint8,
}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
FLOAT_DTYPES = ["float16", "bfloat16", "float32", "float64"]
OPS = {"log_softmax", "nll_loss", "cross_entropy"}
INPUT_NAMES = {
    "log_softmax": {"input"},
    "nll_loss": {"input", "target", "weight"},
    "cross_entropy": {"input", "target", "weight"},
}
ATTRS = {
    "log_softmax": {"dim"},
    "nll_loss": {"reduction", "ignore_index"},
    "cross_entropy": {"reduction", "ignore_index", "label_smoothing"},
}
CASE_KEYS = {"id", "op", "note", "tags", "dtypes", "inputs", "attrs", "matrix", "backward",
             "expect_error", "tolerance"}
TENSOR_KEYS = {"dtype", "shape", "data", "gen", "seed", "scale", "mean", "low", "high", "value",
               "specials", "dim"}
GENS = {"normal", "uniform", "randint", "const", "probs", "log_probs", "onehot", "arange"}
ERROR_KINDS = ["input_rank", "batch_size_mismatch", "target_shape", "target_out_of_bounds",
               "target_dtype", "weight_shape", "dtype_mismatch", "input_dtype",
               "invalid_reduction", "dim_out_of_range", "invalid_argument"]
ID_RE = re.compile(r"^[A-Za-z0-9_./@=-]+$")

# How torch's messages map onto the contract's error kinds. The exporter checks that torch
# raised the kind a spec case declares, so a case cannot silently test another rejection.
KIND_PATTERNS = [
    ("input_rank", r"^Expected 1 or more dimensions"),
    ("batch_size_mismatch", r"^Expected input batch_size"),
    ("target_shape", r"^(For 1D input, 1D target must have size 1|Expected target size|0D or 1D target tensor expected|size mismatch \(got input|only batches of spatial targets supported|ArrayRef: invalid slice|Dimension specified as 0 but tensor has no dimensions)"),
    ("target_out_of_bounds", r"^Target -?\d+ is out of bounds\.$"),
    ("target_dtype", r"^(expected target dtype to be Long or Byte|Expected floating point type for target with class probabilities|expected scalar type Long but found Byte)"),
    ("weight_shape", r"^(cross_entropy: )?weight tensor should be defined either for all"),
    ("dtype_mismatch", r"^expected scalar type \w+ but found \w+$"),
    ("input_dtype", r'^"\w+" not implemented for'),
    ("invalid_reduction", r"is not a valid value for reduction$"),
    ("dim_out_of_range", r"^(Dimension out of range|Dimension specified as 1 but tensor has no dimensions)"),
    ("invalid_argument", r"^(label_smoothing must be between|ignore_index is not supported for floating point target)"),
]


class SpecError(Exception):
    pass


def classify(message):
    for kind, pattern in KIND_PATTERNS:
        if re.search(pattern, message):
            return kind
    return None


def case_seed(*parts):
    return zlib.crc32("/".join(parts).encode())


# ---------------------------------------------------------------------------------------------
# validation


def check_keys(obj, allowed, where):
    if not isinstance(obj, dict):
        raise SpecError(f"{where}: expected an object")
    unknown = set(obj) - allowed
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {sorted(unknown)} (allowed: {sorted(allowed)})")


def id_fragment(value):
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != 0 and not (1e-4 <= abs(value) < 1e15):
            raise SpecError(f"matrix float {value!r} must lie in [1e-4, 1e15) so its id is stable")
        return repr(value)
    return str(value)


def validate_case(case, where, tags):
    check_keys(case, CASE_KEYS, where)
    for key in ("id", "op", "inputs"):
        if key not in case:
            raise SpecError(f"{where}: missing '{key}'")
    cid = case["id"]
    if not isinstance(cid, str) or not ID_RE.match(cid) or "@" in cid:
        raise SpecError(f"{where}: id {cid!r} must match [A-Za-z0-9_./=-]+ (no '@')")
    where = f"{where} ({cid})"
    if case["op"] not in OPS:
        raise SpecError(f"{where}: unknown op {case['op']!r}")
    op = case["op"]
    for name, spec in case["inputs"].items():
        if name == "grad_output":
            # a literal gradient (a shrunk case's own), instead of the seeded one
            if not case.get("backward") or "data" not in spec:
                raise SpecError(f"{where}: inputs.grad_output needs backward: true and literal data")
        elif name not in INPUT_NAMES[op]:
            raise SpecError(f"{where}: unknown input {name!r} for {op}")
        check_keys(spec, TENSOR_KEYS, f"{where}.inputs.{name}")
        if "gen" in spec and spec["gen"] not in GENS:
            raise SpecError(f"{where}.inputs.{name}: unknown gen {spec['gen']!r}")
        if ("gen" in spec) == ("data" in spec):
            raise SpecError(f"{where}.inputs.{name}: give exactly one of 'gen' and 'data'")
        dt = spec.get("dtype", "case")
        if dt != "case" and dt not in DTYPES:
            raise SpecError(f"{where}.inputs.{name}: unknown dtype {dt!r}")
    if "input" not in case["inputs"]:
        raise SpecError(f"{where}: missing inputs.input")
    if op != "log_softmax" and "target" not in case["inputs"]:
        raise SpecError(f"{where}: missing inputs.target")
    attrs = case.get("attrs", {})
    matrix = case.get("matrix", {})
    for name in list(attrs) + list(matrix):
        if name not in ATTRS[op]:
            raise SpecError(f"{where}: unknown attr {name!r} for {op}")
    if op == "log_softmax" and "dim" not in attrs and "dim" not in matrix:
        raise SpecError(f"{where}: log_softmax needs attrs.dim (null for the implicit rule)")
    for name, values in matrix.items():
        if not isinstance(values, list) or not values:
            raise SpecError(f"{where}: matrix.{name} must be a non-empty list")
        for v in values:
            id_fragment(v)
    for dt in case.get("dtypes", FLOAT_DTYPES):
        if dt not in DTYPES:
            raise SpecError(f"{where}: unknown dtype {dt!r} in dtypes")
    for tag in case.get("tags", []):
        if tag not in tags:
            raise SpecError(f"{where}: unknown tag {tag!r} (spec/tags.json lists the tags)")
    if "expect_error" in case:
        if case["expect_error"] not in ERROR_KINDS:
            raise SpecError(f"{where}: unknown error kind {case['expect_error']!r}")
        if case.get("backward"):
            raise SpecError(f"{where}: an error case has no backward")
    tol = case.get("tolerance")
    if tol is not None:
        check_keys(tol, {"rtol", "atol", "reason"}, f"{where}.tolerance")
        if not tol.get("reason"):
            raise SpecError(f"{where}.tolerance: a tolerance override must state its reason")


def expand(case):
    """Yields (id, attrs) for each matrix point, keys in sorted order."""
    matrix = case.get("matrix", {})
    keys = sorted(matrix)
    for values in itertools.product(*(matrix[k] for k in keys)):
        attrs = dict(case.get("attrs", {}))
        suffix = ""
        for k, v in zip(keys, values):
            attrs[k] = v
            suffix += f"/{k}={id_fragment(v)}"
        yield case["id"] + suffix, attrs


# ---------------------------------------------------------------------------------------------
# inputs


def parse_value(v):
    if isinstance(v, str):
        special = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
        if v not in special:
            raise SpecError(f"unknown special value {v!r}")
        return special[v]
    return v


def flatten(data, where):
    """Literal data as torch.tensor takes it: a flat list, a nested list (rectangular, its shape
    read from the nesting, as `torch.tensor([[1, 2], [3, 4]])`), or a single number (0-d)."""
    if not isinstance(data, list):
        return [data], []
    if not data or not isinstance(data[0], list):
        if any(isinstance(v, list) for v in data):
            raise SpecError(f"{where}: ragged nested list (a list beside a number)")
        return list(data), [len(data)]
    rows = [flatten(row, f"{where}[{i}]") for i, row in enumerate(data)]
    inner = rows[0][1]
    for i, (_, s) in enumerate(rows):
        if s != inner:
            raise SpecError(f"{where}[{i}]: ragged nested list (shape {s}, the first row's is {inner})")
    return [v for flat, _ in rows for v in flat], [len(data)] + inner


def make_tensor(spec, name, base_id, case_dtype, default_dtype):
    dt_name = spec.get("dtype", default_dtype)
    if dt_name == "case":
        dt_name = case_dtype
    dtype = DTYPES[dt_name]
    if "data" in spec:
        flat, nested_shape = flatten(spec["data"], f"{base_id}.inputs.{name}.data")
        values = [parse_value(v) for v in flat]
        shape = spec.get("shape", nested_shape)
        if isinstance(spec["data"], list) and any(isinstance(v, list) for v in spec["data"]) and shape != nested_shape:
            raise SpecError(f"{base_id}.inputs.{name}: shape {shape} disagrees with the nested data's {nested_shape} (give one or the other)")
        if math.prod(shape) != len(values):
            raise SpecError(f"{base_id}.inputs.{name}: shape {shape} needs {math.prod(shape)} values, data has {len(values)}")
        if not dtype.is_floating_point:
            # Literal integers go straight in: int64 extremes do not survive a float64.
            if not all(isinstance(v, int) for v in values):
                raise SpecError(f"{base_id}.inputs.{name}: {dt_name} data must be integers")
            return torch.tensor(values, dtype=torch.int64).reshape(shape).to(dtype)
        arr = np.array(values, dtype=np.float64).reshape(shape)
    else:
        shape = spec["shape"]
        rng = np.random.default_rng(spec.get("seed", case_seed(base_id, name)))
        gen = spec["gen"]
        if gen == "normal":
            arr = rng.standard_normal(shape) * spec.get("scale", 1.0) + spec.get("mean", 0.0)
        elif gen == "uniform":
            arr = rng.uniform(spec.get("low", 0.0), spec.get("high", 1.0), shape)
        elif gen == "randint":
            arr = rng.integers(spec.get("low", 0), spec["high"], shape).astype(np.float64)
        elif gen == "const":
            arr = np.full(shape, parse_value(spec["value"]), dtype=np.float64)
        elif gen == "arange":
            arr = np.arange(math.prod(shape), dtype=np.float64).reshape(shape) * spec.get("scale", 1.0) + spec.get("mean", 0.0)
        elif gen in ("probs", "log_probs", "onehot"):
            dim = spec.get("dim", 0 if len(shape) == 1 else 1)
            if gen in ("probs", "log_probs"):
                z = rng.standard_normal(shape) * spec.get("scale", 1.0)
                z = np.exp(z - z.max(axis=dim, keepdims=True))
                arr = z / z.sum(axis=dim, keepdims=True)
                if gen == "log_probs":  # what log_softmax gives NLLLoss
                    arr = np.log(arr)
            else:
                idx = rng.integers(0, shape[dim], [s for i, s in enumerate(shape) if i != dim])
                arr = np.moveaxis(np.eye(shape[dim])[idx], -1, dim)
        arr = np.asarray(arr, dtype=np.float64)
    flat = arr.reshape(-1).copy()
    for index, value in spec.get("specials", []):
        flat[index] = parse_value(value)
    arr = flat.reshape(arr.shape)
    if dtype.is_floating_point:
        return torch.tensor(arr, dtype=torch.float64).to(dtype)
    return torch.tensor(arr.astype(np.int64) if dt_name != "uint8" else arr.astype(np.uint8)).to(dtype)


# ---------------------------------------------------------------------------------------------
# running torch


def call(op, ins, attrs):
    if op == "log_softmax":
        return F.log_softmax(ins["input"], dim=attrs["dim"])
    kw = dict(weight=ins.get("weight"), reduction=attrs.get("reduction", "mean"),
              ignore_index=attrs.get("ignore_index", -100))
    if op == "nll_loss":
        return F.nll_loss(ins["input"], ins["target"], **kw)
    return F.cross_entropy(ins["input"], ins["target"], label_smoothing=attrs.get("label_smoothing", 0.0), **kw)


def forward_backward(op, ins, attrs, grad_output_fn):
    x = ins["input"].detach().clone()
    if grad_output_fn is not None:
        x.requires_grad_(True)
    out = call(op, {**ins, "input": x}, attrs)
    if grad_output_fn is None:
        return out.detach(), None, None
    g = grad_output_fn(out)
    (gi,) = torch.autograd.grad(out, x, g, allow_unused=True)
    if gi is None:
        gi = torch.zeros_like(x)
    return out.detach(), gi.detach(), g


def float_repr(v):
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def tensor_json(t):
    t = t.detach().contiguous()
    if t.dtype.is_floating_point:
        data = [float_repr(float(v)) for v in t.to(torch.float64).reshape(-1).tolist()]
    else:
        data = [int(v) for v in t.reshape(-1).tolist()]
    return {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape), "data": data}


def export_case(case, gid, attrs, dtype, base_id):
    op = case["op"]
    ins = {}
    literal_grad = None
    for name, spec in case["inputs"].items():
        default = "int64" if name == "target" else "case"
        if name == "grad_output":
            literal_grad = make_tensor(spec, name, base_id, dtype, default)
            continue
        ins[name] = make_tensor(spec, name, base_id, dtype, default)
    backward = bool(case.get("backward"))
    if backward and not ins["input"].dtype.is_floating_point:
        raise SpecError(f"{gid}: backward needs a float input")

    def grad_output_fn(out):
        if literal_grad is not None:
            if list(literal_grad.shape) != list(out.shape):
                raise SpecError(f"{gid}: inputs.grad_output has shape {list(literal_grad.shape)}, the output {list(out.shape)}")
            return literal_grad.to(out.dtype)
        rng = np.random.default_rng(case_seed(base_id, "grad_output"))
        return torch.tensor(rng.standard_normal(list(out.shape)), dtype=torch.float64).to(out.dtype)

    golden = {"id": gid, "op": op, "inputs": {k: tensor_json(v) for k, v in ins.items()}}
    full_attrs = dict(attrs)
    if op != "log_softmax":
        full_attrs.setdefault("reduction", "mean")
        full_attrs.setdefault("ignore_index", -100)
    if op == "cross_entropy":
        full_attrs.setdefault("label_smoothing", 0.0)
    golden["attrs"] = full_attrs
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out, gi, g = forward_backward(op, ins, attrs, grad_output_fn if backward else None)
    except Exception as e:  # torch's rejection is the expected value
        message = str(e)
        kind = classify(message)
        declared = case.get("expect_error")
        if declared is None:
            raise SpecError(f"{gid}: torch raised {type(e).__name__}: {message}") from e
        if kind != declared:
            raise SpecError(f"{gid}: declared {declared}, torch raised {type(e).__name__}: {message} (kind {kind})")
        golden["expected"] = {"error": {"kind": kind, "type": type(e).__name__, "message": message}}
    else:
        if "expect_error" in case:
            raise SpecError(f"{gid}: declared {case['expect_error']}, torch returned {tuple(out.shape)}")
        if g is not None:
            golden["inputs"]["grad_output"] = tensor_json(g)
        expected = {"output": tensor_json(out)}
        if gi is not None:
            expected["grad_input"] = tensor_json(gi)
        if ins["input"].dtype in (torch.float16, torch.bfloat16, torch.float32):
            expected["reference"] = reference(op, ins, attrs, out, gi, g)
        golden["expected"] = expected
    if "tolerance" in case:
        golden["tolerance"] = case["tolerance"]
    if case.get("tags"):
        golden["tags"] = case["tags"]
    if case.get("note"):
        golden["note"] = case["note"]
    return golden


def reference(op, ins, attrs, out, gi, g):
    """The same op in float64 from the same (rounded) inputs, rounded to the output dtypes."""
    wide = {k: (v.to(torch.float64) if v.dtype.is_floating_point else v) for k, v in ins.items()}
    go = (lambda _: g.to(torch.float64)) if g is not None else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rout, rgi, _ = forward_backward(op, wide, attrs, go)
    ref = {"output": tensor_json(rout.to(out.dtype))}
    if gi is not None:
        ref["grad_input"] = tensor_json(rgi.to(gi.dtype))
    return ref


# ---------------------------------------------------------------------------------------------
# files


def dumps(doc):
    """JSON with one tensor per line: readable in a diff, compact on disk."""
    placeholders = {}

    def strip(o):
        if isinstance(o, dict):
            if set(o) == {"dtype", "shape", "data"}:
                key = f"@@T{len(placeholders)}@@"
                placeholders[key] = json.dumps(o, allow_nan=False, separators=(", ", ": "))
                return key
            return {k: strip(v) for k, v in o.items()}
        if isinstance(o, list):
            return [strip(v) for v in o]
        return o

    text = json.dumps(strip(doc), indent=1, allow_nan=False, ensure_ascii=False)
    return re.sub(r'"(@@T\d+@@)"', lambda m: placeholders[m.group(1)], text) + "\n"


def export_file(spec_path, tags, seen):
    raw = spec_path.read_bytes()
    rel = spec_path.relative_to(ROOT).as_posix()
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as e:
        raise SpecError(f"{rel}: not valid JSON: {e}") from e
    check_keys(doc, {"cases", "note"}, rel)
    cases = []
    prefix = spec_path.relative_to(SPEC_DIR).with_suffix("").as_posix() + "/"
    for i, case in enumerate(doc.get("cases", [])):
        validate_case(case, f"{rel}: cases[{i}]", tags)
        if not case["id"].startswith(prefix):
            raise SpecError(f"{rel}: cases[{i}]: id {case['id']!r} must start with {prefix!r} (the file's path is part of the id)")
        for dtype in case.get("dtypes", FLOAT_DTYPES):
            for cid, attrs in expand(case):
                gid = f"{cid}@{dtype}"
                if gid in seen:
                    raise SpecError(f"{rel}: duplicate golden id {gid} (also in {seen[gid]})")
                seen[gid] = rel
                cases.append(export_case(case, gid, attrs, dtype, case["id"]))
    if not cases:
        raise SpecError(f"{rel}: no cases")
    golden = {
        "format": "nllspec-golden-v1",
        "generator": {
            "torch": torch.__version__.split("+")[0],
            "python": platform.python_version(),
            "numpy": np.__version__,
            "exporter": "golden/export.py",
            "spec": rel,
            "spec_sha256": hashlib.sha256(raw).hexdigest(),
        },
        "cases": cases,
    }
    return GOLDEN_DIR / spec_path.relative_to(SPEC_DIR), dumps(golden)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="fail if any golden file would change")
    ap.add_argument("--only", nargs="+", type=Path, metavar="SPEC",
                    help="export only these spec files (e.g. a case nllspec shrink or fuzz wrote), leaving the rest")
    args = ap.parse_args()
    if torch.__version__.split("+")[0] != "2.15.0":
        sys.exit(f"export.py needs torch 2.15.0 (golden/requirements.txt), found {torch.__version__}")
    torch.set_num_threads(1)  # byte-identical output: one reduction order
    tags = json.loads(TAGS_FILE.read_text())
    seen = {}
    written, stale = 0, []
    specs = sorted(SPEC_DIR.rglob("*.json"))
    if not specs:
        sys.exit(f"no spec files under {SPEC_DIR}")
    if args.only:
        only = [p.resolve() for p in args.only]
        for p in only:
            if SPEC_DIR not in p.parents:
                sys.exit(f"export.py: {p} is not under {SPEC_DIR} (its path under spec/cases is part of its ids)")
        for spec_path in only:
            try:
                out_path, text = export_file(spec_path, tags, seen)
            except SpecError as e:
                sys.exit(f"export.py: {e}")
            out_path.parent.mkdir(parents=True, exist_ok=True)
            out_path.write_text(text)
            print(f"{out_path.relative_to(ROOT).as_posix()}: written from {spec_path.relative_to(ROOT).as_posix()}")
        return
    expected_paths = set()
    for spec_path in specs:
        try:
            out_path, text = export_file(spec_path, tags, seen)
        except SpecError as e:
            sys.exit(f"export.py: {e}")
        expected_paths.add(out_path)
        old = out_path.read_text() if out_path.exists() else None
        if old != text:
            stale.append(out_path.relative_to(ROOT).as_posix())
            if not args.check:
                out_path.parent.mkdir(parents=True, exist_ok=True)
                out_path.write_text(text)
                written += 1
    orphans = [p.relative_to(ROOT).as_posix() for p in GOLDEN_DIR.rglob("*.json") if p not in expected_paths]
    if args.check:
        if stale or orphans:
            sys.exit(f"stale golden files: {stale}; golden files without a spec: {orphans}")
        print(f"all {len(specs)} golden files are current ({len(seen)} cases)")
        return
    for p in orphans:
        (ROOT / p).unlink()
    print(f"{len(seen)} cases from {len(specs)} spec files; {written} golden files written, {len(orphans)} removed")


if __name__ == "__main__":
    main()
