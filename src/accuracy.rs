//! The accuracy report (`nllspec accuracy`): how far each implementation's results are from
//! a higher-precision computation, in ulp of the result's dtype.
//!
//! Inputs are float32 / float16 / bfloat16 logits of several scales and row lengths (fixed
//! seed). The truth is the same op computed in float64 from the same rounded inputs (log1p
//! form, compensated sums: far below the half-ulp of any of these dtypes), rounded to the
//! dtype. float64 itself is left out: a float64 truth cannot judge float64 results.
//! The golden files add PyTorch's own figures: its outputs against the float64 reference the
//! exporter recorded.

use crate::golden::format::Expected;
use crate::golden::load::LoadedCase;
use crate::impls::{Implementation, Outcome, Request};
use crate::judge::compare::ulp_distance;
use crate::ops::{Call, Op};
use crate::report::markdown_header;
use crate::tensor::{DType, Data, Tensor};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Max and 99.9th percentile of a set of ulp distances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UlpStats {
    pub max: u64,
    pub p999: u64,
    pub count: usize,
}

pub fn stats(mut ulps: Vec<u64>) -> UlpStats {
    if ulps.is_empty() {
        return UlpStats {
            max: 0,
            p999: 0,
            count: 0,
        };
    }
    ulps.sort_unstable();
    let i = ((ulps.len() as f64 * 0.999).ceil() as usize).clamp(1, ulps.len()) - 1;
    UlpStats {
        max: *ulps.last().expect("non-empty"),
        p999: ulps[i],
        count: ulps.len(),
    }
}

fn fmt_ulp(s: Option<UlpStats>) -> String {
    match s {
        Some(s) => format!("{} / {}", s.max, s.p999),
        None => "-".into(),
    }
}

fn logits(n: usize, scale: f64, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            // Box-Muller on xorshift uniforms
            let mut u = || {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
            };
            let (a, b) = (u(), u());
            (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos() * scale
        })
        .collect()
}

fn ulps_against(dtype: DType, actual: &Tensor, truth: &[f64]) -> Option<Vec<u64>> {
    if actual.dtype() != dtype || actual.numel() != truth.len() {
        return None;
    }
    let a = actual.to_f64_vec();
    // the truth rounded to the dtype, then the distance in that dtype's ulp
    let t = Tensor::from_f64(dtype, vec![truth.len()], truth)
        .ok()?
        .to_f64_vec();
    Some(
        a.iter()
            .zip(&t)
            .map(|(&x, &y)| ulp_distance(dtype, x, y))
            .collect(),
    )
}

fn run(imp: &dyn Implementation, call: &Call) -> Option<Tensor> {
    match crate::execution::run_guarded(
        imp,
        &Request {
            id: "accuracy",
            call,
            grad_output: None,
        },
    ) {
        Outcome::Values { output, .. } | Outcome::ForwardOnly { output, .. } => Some(output),
        _ => None,
    }
}

/// One row of the synthetic table.
pub struct Row {
    pub op: Op,
    pub dtype: DType,
    pub scale: f64,
    pub len: usize,
    pub per_impl: Vec<Option<UlpStats>>,
}

/// Runs the synthetic measurements for `impls`.
pub fn synthetic(impls: &[&dyn Implementation], elements: usize) -> Vec<Row> {
    let mut rows = Vec::new();
    for op in [Op::LogSoftmax, Op::CrossEntropy] {
        for dtype in [DType::F32, DType::F16, DType::BF16] {
            for len in [10usize, 1000, 32000] {
                for scale in [1.0, 3.0, 30.0, 100.0] {
                    let n = (elements / len).max(1);
                    let x = Tensor::from_f64(
                        dtype,
                        vec![n, len],
                        &logits(n * len, scale, len as u64 ^ scale.to_bits()),
                    )
                    .expect("shape");
                    let wide = Tensor::new(vec![n, len], Data::F64(x.to_f64_vec())).expect("shape");
                    let (call, wide_call) = match op {
                        Op::LogSoftmax => (
                            Call::LogSoftmax {
                                input: x,
                                dim: Some(1),
                            },
                            Call::LogSoftmax {
                                input: wide,
                                dim: Some(1),
                            },
                        ),
                        _ => {
                            let t = Tensor::new(
                                vec![n],
                                Data::I64((0..n as i64).map(|i| (i * 7919) % len as i64).collect()),
                            )
                            .expect("shape");
                            let ce = |input: Tensor, target: Tensor| Call::CrossEntropy {
                                input,
                                target,
                                weight: None,
                                reduction: "none".into(),
                                ignore_index: -100,
                                label_smoothing: 0.0,
                            };
                            (ce(x, t.clone()), ce(wide, t))
                        }
                    };
                    let truth = match run(&crate::impls::native::Native, &wide_call) {
                        Some(t) => t.to_f64_vec(),
                        None => continue,
                    };
                    let per_impl = impls
                        .iter()
                        .map(|imp| {
                            run(*imp, &call)
                                .and_then(|o| ulps_against(dtype, &o, &truth))
                                .map(stats)
                        })
                        .collect();
                    rows.push(Row {
                        op,
                        dtype,
                        scale,
                        len,
                        per_impl,
                    });
                }
            }
        }
    }
    rows
}

fn widen(t: &Tensor) -> Tensor {
    if t.dtype().is_float() {
        Tensor::new(t.shape().to_vec(), Data::F64(t.to_f64_vec())).expect("same shape")
    } else {
        t.clone()
    }
}

/// PyTorch's and each implementation's distance, per op and output dtype, on the golden cases
/// of float16/bfloat16/float32 inputs (outputs only), against the truth computed in float64
/// from the golden inputs. (Not against the goldens' own `reference`: PyTorch's float64
/// log_softmax rounds a dominant log-probability of -1e-20 to 0, which would make the more
/// accurate answer look wrong.)
pub fn from_goldens(
    cases: &[LoadedCase],
    impls: &[&dyn Implementation],
) -> BTreeMap<(Op, DType), Vec<Vec<u64>>> {
    let mut out: BTreeMap<(Op, DType), Vec<Vec<u64>>> = BTreeMap::new();
    for lc in cases {
        let c = &lc.case;
        let Expected::Values { torch, .. } = &c.expected else {
            continue;
        };
        if !matches!(
            c.call.input().dtype(),
            DType::F16 | DType::BF16 | DType::F32
        ) {
            continue;
        }
        let wide = c.call.map_tensors(widen);
        let dtype = torch.output.dtype();
        let op = c.call.op();
        let Some(truth) = run(&crate::impls::native::Native, &wide) else {
            continue;
        };
        let Ok(truth) = Tensor::from_f64(dtype, truth.shape().to_vec(), &truth.to_f64_vec()) else {
            continue;
        };
        let r = truth.to_f64_vec();
        let entry = out
            .entry((op, dtype))
            .or_insert_with(|| vec![vec![]; impls.len() + 1]);
        let ulps = |t: &Tensor| -> Vec<u64> {
            t.to_f64_vec()
                .iter()
                .zip(&r)
                .filter(|(a, b)| a.is_finite() && b.is_finite())
                .map(|(&a, &b)| ulp_distance(dtype, a, b))
                .collect()
        };
        entry[0].extend(ulps(&torch.output));
        for (i, imp) in impls.iter().enumerate() {
            if let Some(o) = run(*imp, &c.call)
                .filter(|o| o.dtype() == dtype && o.shape() == torch.output.shape())
            {
                entry[i + 1].extend(ulps(&o));
            }
        }
    }
    out
}

/// The whole report as Markdown.
pub fn markdown(impls: &[&dyn Implementation], cases: &[LoadedCase], elements: usize) -> String {
    let names: Vec<&str> = impls.iter().map(|i| i.name()).collect();
    let mut s = format!(
        "Synthetic inputs, {elements} elements per row length and scale (max ulp / 99.9th percentile ulp against float64, rounded to the dtype):\n\n"
    );
    s.push_str(&markdown_header(
        &["op", "dtype", "row length", "scale"],
        &names,
    ));
    for r in synthetic(impls, elements) {
        write!(s, "| {} | {} | {} | {} |", r.op, r.dtype, r.len, r.scale).unwrap();
        for st in &r.per_impl {
            write!(s, " {} |", fmt_ulp(*st)).unwrap();
        }
        writeln!(s).unwrap();
    }
    writeln!(s, "\nGolden cases with float16/bfloat16/float32 inputs (outputs against float64 from the same inputs, max ulp / 99.9th percentile):\n").unwrap();
    s.push_str(&markdown_header(&["op", "dtype", "PyTorch 2.15"], &names));
    for ((op, dtype), cols) in from_goldens(cases, impls) {
        write!(s, "| {op} | {dtype} |").unwrap();
        for c in cols {
            let st = (!c.is_empty()).then(|| stats(c));
            write!(s, " {} |", fmt_ulp(st)).unwrap();
        }
        writeln!(s).unwrap();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile() {
        let v: Vec<u64> = (0..2000).collect();
        let s = stats(v);
        assert_eq!((s.max, s.p999), (1999, 1997));
        assert_eq!(stats(vec![]).count, 0);
    }
}
