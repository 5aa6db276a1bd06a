//! proptest strategies over the whole case space: a [`Plan`] (the op, the layout, the dtype,
//! every attribute and the kind of values, each chosen with weights that favour the edges the
//! contract names) is drawn by proptest, then filled with values from a seeded generator, so
//! that a case is cheap to draw and the same seed draws the same cases.

use super::shrink::Subject;
use crate::ops::Call;
use crate::tensor::{DType, Tensor};
use proptest::prelude::*;

/// What a generated case is made of, before its values.
#[derive(Debug, Clone)]
pub struct Plan {
    op: u8,
    dtype: DType,
    /// The input's rank (losses: 1 is `(C)`, 2 is `(N, C)`, more is spatial).
    rank: usize,
    batch: usize,
    classes: usize,
    spatial: Vec<usize>,
    /// log_softmax's dim: `None` is the implicit rule; may be out of range.
    dim: Option<i64>,
    scale: f64,
    /// (position per mille of the input, value) pairs forced in.
    specials: Vec<(u16, f64)>,
    targets: Targets,
    target_dtype: DType,
    /// A target of the wrong shape (a rejection to reach).
    misshapen: bool,
    ignore_index: IgnoreIndex,
    weight: Weight,
    reduction: &'static str,
    label_smoothing: f64,
    probabilities: Option<Probabilities>,
    backward: bool,
    seed: u64,
}

#[derive(Debug, Clone, Copy)]
enum Targets {
    Valid,
    SomeIgnored,
    AllIgnored,
    OutOfBounds,
}

#[derive(Debug, Clone, Copy)]
enum IgnoreIndex {
    Default,
    Minus1,
    Zero,
    InRange,
    AboveC,
}

#[derive(Debug, Clone, Copy)]
enum Weight {
    None,
    Positive,
    SomeZero,
    AllZero,
    WrongLength,
    OtherDtype,
}

#[derive(Debug, Clone, Copy)]
enum Probabilities {
    Normalised,
    Unnormalised,
    OneHot,
}

/// Special values the contract pins down.
const SPECIALS: [f64; 7] = [
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    -0.0,
    1e4,
    1e-30,
    -1e4,
];

fn float_dtype() -> impl Strategy<Value = DType> {
    prop_oneof![3 => Just(DType::F32), 2 => Just(DType::F64), 2 => Just(DType::F16), 2 => Just(DType::BF16)]
}

/// Every plan.
pub fn plans() -> impl Strategy<Value = Plan> {
    let dtype = prop_oneof![9 => float_dtype(), 1 => Just(DType::I64)];
    let rank =
        prop_oneof![1 => Just(0usize), 3 => Just(1), 5 => Just(2), 2 => Just(3), 1 => Just(4)];
    let batch = prop_oneof![1 => Just(0usize), 8 => 1usize..5];
    let classes = prop_oneof![1 => Just(1usize), 8 => 2usize..7, 1 => 30usize..300];
    let spatial = prop::collection::vec(1usize..4, 2);
    let dim = prop_oneof![1 => Just(None), 4 => (-5i64..5).prop_map(Some)];
    let scale = prop_oneof![4 => Just(1.0), 2 => Just(3.0), 1 => Just(30.0)];
    let specials = prop_oneof![
        6 => Just(vec![]),
        2 => prop::collection::vec((0u16..1000, prop::sample::select(SPECIALS.to_vec())), 1..3),
    ];
    let targets = prop_oneof![
        8 => Just(Targets::Valid),
        3 => Just(Targets::SomeIgnored),
        1 => Just(Targets::AllIgnored),
        1 => Just(Targets::OutOfBounds),
    ];
    let target_dtype = prop_oneof![12 => Just(DType::I64), 1 => Just(DType::U8), 1 => Just(DType::I32), 1 => Just(DType::F32)];
    let misshapen = prop::bool::weighted(0.05);
    let ignore_index = prop_oneof![
        5 => Just(IgnoreIndex::Default),
        1 => Just(IgnoreIndex::Minus1),
        1 => Just(IgnoreIndex::Zero),
        1 => Just(IgnoreIndex::InRange),
        1 => Just(IgnoreIndex::AboveC),
    ];
    let weight = prop_oneof![
        6 => Just(Weight::None),
        3 => Just(Weight::Positive),
        1 => Just(Weight::SomeZero),
        1 => Just(Weight::AllZero),
        1 => Just(Weight::WrongLength),
        1 => Just(Weight::OtherDtype),
    ];
    let reduction =
        prop_oneof![3 => Just("none"), 3 => Just("mean"), 3 => Just("sum"), 1 => Just("avg")];
    let label_smoothing = prop_oneof![6 => Just(0.0), 2 => Just(0.1), 1 => Just(0.5), 1 => Just(1.0), 1 => Just(-0.1), 1 => Just(1.5)];
    let probabilities = prop_oneof![
        7 => Just(None),
        2 => Just(Some(Probabilities::Normalised)),
        1 => Just(Some(Probabilities::Unnormalised)),
        1 => Just(Some(Probabilities::OneHot)),
    ];
    let backward = prop::bool::weighted(0.6);
    (
        (0u8..3, dtype, rank, batch, classes, spatial, dim, scale),
        (
            specials,
            targets,
            target_dtype,
            misshapen,
            ignore_index,
            weight,
            reduction,
        ),
        (label_smoothing, probabilities, backward, any::<u64>()),
    )
        .prop_map(|(a, b, c)| Plan {
            op: a.0,
            dtype: a.1,
            rank: a.2,
            batch: a.3,
            classes: a.4,
            spatial: a.5,
            dim: a.6,
            scale: a.7,
            specials: b.0,
            targets: b.1,
            target_dtype: b.2,
            misshapen: b.3,
            ignore_index: b.4,
            weight: b.5,
            reduction: b.6,
            label_smoothing: c.0,
            probabilities: c.1,
            backward: c.2,
            seed: c.3,
        })
}

/// xorshift64*: the values of one case, from its plan's seed.
struct Values(u64);

impl Values {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform().max(1e-300), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn tensor(dtype: DType, shape: Vec<usize>, values: &[f64]) -> Tensor {
    Tensor::from_f64(dtype, shape, values).unwrap_or_else(|_| Tensor::scalar(dtype, 0.0))
}

impl Plan {
    /// The call the plan describes, and whether to check its backward pass.
    pub fn build(&self) -> (Call, bool) {
        let mut v = Values(self.seed | 1);
        let loss = self.op != 0;
        let rank = if loss { self.rank.max(1) } else { self.rank };
        let shape: Vec<usize> = match rank {
            0 => vec![],
            1 => vec![self.classes],
            r => [
                vec![self.batch, self.classes],
                self.spatial[..(r - 2).min(2)].to_vec(),
            ]
            .concat(),
        };
        let n: usize = shape.iter().product();
        let mut x: Vec<f64> = (0..n).map(|_| v.normal() * self.scale).collect();
        for &(at, value) in &self.specials {
            if n > 0 {
                x[at as usize * n / 1000] = value;
            }
        }
        if !self.dtype.is_float() {
            x.iter_mut().for_each(|e| {
                *e = if e.is_finite() {
                    e.round().clamp(-50.0, 50.0)
                } else {
                    0.0
                }
            });
        }
        let input = tensor(self.dtype, shape.clone(), &x);
        if !loss {
            return (
                Call::LogSoftmax {
                    input,
                    dim: self.dim,
                },
                self.backward,
            );
        }
        let class_dim = usize::from(rank >= 2);
        let c = self.classes as i64;
        let ignore_index = match self.ignore_index {
            IgnoreIndex::Default => -100,
            IgnoreIndex::Minus1 => -1,
            IgnoreIndex::Zero => 0,
            IgnoreIndex::InRange => v.below(self.classes) as i64,
            IgnoreIndex::AboveC => c + 3,
        };
        let probabilities = self.op == 2 && self.probabilities.is_some();
        let target = if probabilities {
            let float = if self.target_dtype.is_float() {
                self.dtype
            } else {
                DType::F64
            };
            let float = if float.is_float() { float } else { DType::F32 };
            let mut p: Vec<f64> = (0..n).map(|_| v.normal()).collect();
            let outer: usize = shape[..class_dim].iter().product();
            let inner: usize = shape[class_dim + 1..].iter().product();
            for o in 0..outer {
                for i in 0..inner {
                    let at = |k: usize| (o * self.classes + k) * inner + i;
                    match self.probabilities {
                        Some(Probabilities::OneHot) => {
                            let hot = v.below(self.classes);
                            (0..self.classes)
                                .for_each(|k| p[at(k)] = if k == hot { 1.0 } else { 0.0 });
                        }
                        Some(Probabilities::Normalised) => {
                            let m = (0..self.classes)
                                .map(|k| p[at(k)])
                                .fold(f64::NEG_INFINITY, f64::max);
                            let s: f64 = (0..self.classes).map(|k| (p[at(k)] - m).exp()).sum();
                            (0..self.classes).for_each(|k| p[at(k)] = (p[at(k)] - m).exp() / s);
                        }
                        _ => (0..self.classes).for_each(|k| p[at(k)] = p[at(k)].abs()),
                    }
                }
            }
            let tshape = if self.misshapen {
                shape.iter().map(|d| d + 1).collect()
            } else {
                shape.clone()
            };
            let tn: usize = tshape.iter().product();
            p.resize(tn, 0.25);
            tensor(float, tshape, &p)
        } else {
            let mut tshape: Vec<usize> = shape
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != class_dim)
                .map(|(_, d)| *d)
                .collect();
            if self.misshapen {
                match tshape.first_mut() {
                    Some(d) => *d += 1,
                    None => tshape.push(3),
                }
            }
            let tn: usize = tshape.iter().product();
            let mut t: Vec<f64> = (0..tn).map(|_| v.below(self.classes) as f64).collect();
            match self.targets {
                Targets::Valid => {}
                Targets::SomeIgnored => t.iter_mut().for_each(|e| {
                    if v.below(3) == 0 {
                        *e = ignore_index as f64;
                    }
                }),
                Targets::AllIgnored => t.iter_mut().for_each(|e| *e = ignore_index as f64),
                Targets::OutOfBounds => {
                    if let Some(e) = t.first_mut() {
                        *e = if v.below(2) == 0 { c as f64 } else { -1.0 };
                    }
                }
            }
            let dtype =
                if self.target_dtype == DType::U8 && t.iter().any(|e| *e < 0.0 || *e > 255.0) {
                    DType::I64
                } else {
                    self.target_dtype
                };
            tensor(dtype, tshape, &t)
        };
        let wdtype = if self.dtype.is_float() {
            self.dtype
        } else {
            DType::F32
        };
        let wvalues = |v: &mut Values, len: usize, f: &dyn Fn(&mut Values) -> f64| -> Vec<f64> {
            (0..len).map(|_| f(v)).collect()
        };
        let weight = match self.weight {
            Weight::None => None,
            Weight::Positive => Some(tensor(
                wdtype,
                vec![self.classes],
                &wvalues(&mut v, self.classes, &|v| 0.1 + 2.0 * v.uniform()),
            )),
            Weight::SomeZero => Some(tensor(
                wdtype,
                vec![self.classes],
                &wvalues(&mut v, self.classes, &|v| {
                    if v.below(2) == 0 {
                        0.0
                    } else {
                        v.uniform() + 0.5
                    }
                }),
            )),
            Weight::AllZero => Some(tensor(wdtype, vec![self.classes], &vec![0.0; self.classes])),
            Weight::WrongLength => Some(tensor(
                wdtype,
                vec![self.classes + 1],
                &vec![1.0; self.classes + 1],
            )),
            Weight::OtherDtype => {
                let other = if wdtype == DType::F64 {
                    DType::F32
                } else {
                    DType::F64
                };
                Some(tensor(other, vec![self.classes], &vec![1.5; self.classes]))
            }
        };
        let reduction = self.reduction.to_string();
        let call = if self.op == 1 {
            Call::NllLoss {
                input,
                target,
                weight,
                reduction,
                ignore_index,
            }
        } else {
            Call::CrossEntropy {
                input,
                target,
                weight,
                reduction,
                ignore_index,
                label_smoothing: self.label_smoothing,
            }
        };
        (call, self.backward)
    }
}

/// The subject of a plan: its call, and for a backward case a gradient of the output's shape
/// (native's output: a call native rejects has no gradient to check).
pub fn subject(plan: &Plan) -> Subject {
    let (call, backward) = plan.build();
    let grad_output = if backward && call.input().dtype().is_float() {
        call.run(None).ok().map(|out| {
            let mut v = Values(plan.seed.rotate_left(17) | 1);
            let g: Vec<f64> = (0..out.output.numel()).map(|_| v.normal()).collect();
            tensor(out.output.dtype(), out.output.shape().to_vec(), &g)
        })
    } else {
        None
    };
    Subject { call, grad_output }
}
