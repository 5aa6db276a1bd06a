//! A failing case as something a person can run outside the harness: its protocol-1 request
//! line (`nllspec show ID --request | python my_adapter.py`), a self-contained PyTorch 2.15
//! snippet that computes the golden answer from the exact inputs (`nllspec show ID --torch`),
//! and the command that reproduces a failure, which every failing result's detail ends with.

use crate::golden::format::{Case, Expected};
use crate::impls::protocol::request_line;
use crate::impls::{ImplSpec, Request};
use crate::ops::Call;
use crate::tensor::{DType, Data, Tensor};
use std::fmt::Write;
use std::path::Path;

/// The case's protocol-1 request, one line with its newline, as `nllspec run` sends it.
pub fn request(case: &Case) -> String {
    request_line(&Request::of(case))
}

/// A Python literal for a float (`nan` and `inf` are names the snippet defines). Rust's `{:?}`
/// is the shortest decimal that round-trips the float64, as Python's `repr` is.
fn float(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{x:?}")
    }
}

fn torch_dtype(d: DType) -> &'static str {
    match d {
        DType::F16 => "torch.float16",
        DType::BF16 => "torch.bfloat16",
        DType::F32 => "torch.float32",
        DType::F64 => "torch.float64",
        DType::I64 => "torch.int64",
        DType::I32 => "torch.int32",
        DType::U8 => "torch.uint8",
    }
}

/// `tensor([...], torch.float16, [3, 5])`, the snippet's helper call that rebuilds `t` bit for
/// bit.
fn tensor(t: &Tensor) -> String {
    let data: Vec<String> = match t.data() {
        Data::I64(v) => v.iter().map(i64::to_string).collect(),
        Data::I32(v) => v.iter().map(i32::to_string).collect(),
        Data::U8(v) => v.iter().map(u8::to_string).collect(),
        _ => t.to_f64_vec().into_iter().map(float).collect(),
    };
    format!(
        "tensor([{}], {}, {:?})",
        data.join(", "),
        torch_dtype(t.dtype()),
        t.shape()
    )
}

fn py_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A self-contained PyTorch snippet that computes the case's answer from its exact inputs, as
/// golden/export.py does: the forward call, and for a backward case `torch.autograd.grad` with
/// the case's `grad_output`. It prints `output {...}` and `grad_input {...}` as golden tensors
/// (JSON), or raises PyTorch's error.
pub fn torch_snippet(case: &Case) -> String {
    let mut s = String::new();
    let c = &case.call;
    writeln!(
        s,
        "# {}: what PyTorch 2.15 answers, from the case's exact inputs",
        case.id
    )
    .unwrap();
    match &case.expected {
        Expected::Error(e) => writeln!(
            s,
            "# The golden file expects it to raise {}: {} (kind {})",
            e.type_name(),
            e.message,
            e.kind
        )
        .unwrap(),
        Expected::Values { .. } => {
            writeln!(s, "# The golden file holds the values it prints.").unwrap()
        }
    }
    s.push_str(
        r#"import json
import warnings

import torch
import torch.nn.functional as F

nan, inf = float("nan"), float("inf")


def tensor(data, dtype, shape):
    # The decimals round-trip float64 exactly, and every float16/bfloat16/float32 value is a
    # float64: converting gives torch the golden file's bits.
    wide = torch.float64 if dtype.is_floating_point else torch.int64
    return torch.tensor(data, dtype=wide).to(dtype).reshape(shape)


def golden(t):
    t = t.detach()
    if t.dtype.is_floating_point:
        data = ["NaN" if v != v else "Infinity" if v == inf else "-Infinity" if v == -inf else v
                for v in t.to(torch.float64).reshape(-1).tolist()]
    else:
        data = t.reshape(-1).tolist()
    return {"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape), "data": data}


"#,
    );
    writeln!(s, "input = {}", tensor(c.input())).unwrap();
    if let Some(t) = c.target() {
        writeln!(s, "target = {}", tensor(t)).unwrap();
    }
    match c.weight() {
        Some(w) => writeln!(s, "weight = {}", tensor(w)).unwrap(),
        None if c.target().is_some() => writeln!(s, "weight = None").unwrap(),
        None => {}
    }
    let backward = case.grad_output.is_some();
    if let Some(g) = &case.grad_output {
        writeln!(s, "grad_output = {}", tensor(g)).unwrap();
    }
    writeln!(
        s,
        "x = input.detach().clone(){}",
        if backward {
            ".requires_grad_(True)"
        } else {
            ""
        }
    )
    .unwrap();
    let call = match c {
        Call::LogSoftmax { dim, .. } => {
            format!(
                "F.log_softmax(x, dim={})",
                dim.map_or("None".to_string(), |d| d.to_string())
            )
        }
        Call::NllLoss {
            reduction,
            ignore_index,
            ..
        } => {
            format!(
                "F.nll_loss(x, target, weight=weight, reduction={}, ignore_index={ignore_index})",
                py_str(reduction)
            )
        }
        Call::CrossEntropy {
            reduction,
            ignore_index,
            label_smoothing,
            ..
        } => format!(
            "F.cross_entropy(x, target, weight=weight, reduction={}, ignore_index={ignore_index}, label_smoothing={})",
            py_str(reduction),
            float(*label_smoothing)
        ),
    };
    writeln!(s, "with warnings.catch_warnings():\n    warnings.simplefilter(\"ignore\")  # the implicit dim's deprecation").unwrap();
    writeln!(s, "    output = {call}").unwrap();
    if backward {
        writeln!(
            s,
            "    (grad_input,) = torch.autograd.grad(output, x, grad_output, allow_unused=True)"
        )
        .unwrap();
        writeln!(
            s,
            "grad_input = torch.zeros_like(x) if grad_input is None else grad_input"
        )
        .unwrap();
    }
    writeln!(s, "print(\"output\", json.dumps(golden(output)))").unwrap();
    if backward {
        writeln!(s, "print(\"grad_input\", json.dumps(golden(grad_input)))").unwrap();
    }
    s
}

/// Quotes a word for a POSIX shell where it needs it.
fn sh_word(w: &str) -> String {
    if !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./@=:-+,".contains(c))
    {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

/// The command line that reproduces case `id` under `spec` outside the run: for an `exec:`
/// implementation, its request piped into its command; for a built-in one, a run of that case.
/// `golden` is the suite's path when it is not the default.
pub fn command(id: &str, golden: &[&Path], spec: &ImplSpec) -> String {
    let golden: String = golden
        .iter()
        .map(|g| format!(" --golden {}", sh_word(&g.display().to_string())))
        .collect();
    match spec {
        ImplSpec::Exec { command, .. } => {
            // a command that is a whole script runs as nllspec runs it: through sh -c
            let plain = !command.contains(|c: char| ";|&$`()<>\n\\'\"{}*?".contains(c));
            let command = if plain {
                command.clone()
            } else {
                format!("sh -c {}", sh_word(command))
            };
            format!("nllspec show {}{golden} --request | {command}", sh_word(id))
        }
        ImplSpec::Builtin(name) => {
            format!("nllspec run --impl {name}{golden} --filter {}", sh_word(id))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_python_literals_that_round_trip() {
        assert_eq!(float(-0.0), "-0.0");
        assert_eq!(float(f64::NAN), "nan");
        assert_eq!(float(f64::NEG_INFINITY), "-inf");
        assert_eq!(float(1e-7), "1e-7");
        let x = f32::from_bits(0x3f80_0001) as f64;
        assert_eq!(float(x).parse::<f64>().unwrap(), x);
    }

    #[test]
    fn commands_quote_what_a_shell_would_split() {
        let spec = ImplSpec::parse("fw=exec:python3 a.py").unwrap();
        assert_eq!(
            command("a/b@float32", &[], &spec),
            "nllspec show a/b@float32 --request | python3 a.py"
        );
        let script = ImplSpec::parse("exec:read l; echo x").unwrap();
        assert_eq!(
            command("a@float32", &[], &script),
            "nllspec show a@float32 --request | sh -c 'read l; echo x'"
        );
        let native = ImplSpec::parse("native").unwrap();
        assert_eq!(
            command("a/b@float32", &[Path::new("my goldens")], &native),
            "nllspec run --impl native --golden 'my goldens' --filter a/b@float32"
        );
    }
}
