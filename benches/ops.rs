//! criterion benchmarks: group = op, function = implementation, parameter = shape.
//!
//!     cargo bench --bench ops                        # everything (one thread)
//!     cargo bench --bench ops -- log_softmax/native  # a slice
//!     cargo bench --bench ops -- read                # reading the input once: the floor
//!     cargo bench --bench ops -- log_softmax_dtypes  # float64, float16, bfloat16
//!     .venv/bin/python benches/torch_baseline.py     # PyTorch's figures for the same shapes
//!
//! Everything runs on one thread (RAYON_NUM_THREADS=1, set before any pool starts), float32
//! (but `log_softmax_dtypes`),
//! logits from a fixed-seed generator (normal-ish, scale 3), uniform pseudo-random targets.

use candle_core::{Device, Tensor as CTensor};
use criterion::{BenchmarkId, Criterion, Throughput};
use nllspec::ops::{self, Reduction};
use nllspec::tensor::{DType, Data, Tensor};
use std::hint::black_box;
use std::time::Duration;

const SHAPES: [(&str, &[usize]); 3] = [
    ("64x1000", &[64, 1000]),
    ("1024x32000", &[1024, 32000]),
    ("8x21x128x128", &[8, 21, 128, 128]),
];

/// A fixed-seed xorshift64 stream.
fn xorshift(mut s: u64) -> impl Iterator<Item = u64> {
    std::iter::repeat_with(move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    })
}

fn logits(shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    xorshift(0x9e37_79b9_7f4a_7c15)
        .take(n)
        .map(|s| {
            // sum of 4 uniforms: roughly normal, variance 4/12, scaled to ~3
            let u: f32 = (0..4)
                .map(|k| ((s >> (k * 16)) & 0xffff) as f32 / 65536.0)
                .sum::<f32>()
                - 2.0;
            u * 5.2
        })
        .collect()
}

/// Uniform pseudo-random classes, as `torch.randint` gives benches/torch_baseline.py. The
/// distribution matters to nll_loss over 8x21x128x128: a gather reads one line of one of 21
/// planes per position, and 16 neighbouring positions with random classes share lines where
/// a cycle through the classes (`i * 7919 % c`, used before) never does (0.37 against 0.44
/// ms for the same kernel).
fn targets(shape: &[usize]) -> Vec<i64> {
    let c = shape[1] as u64;
    let n: usize = shape.iter().product::<usize>() / shape[1];
    xorshift(0x2545_f491_4f6c_dd1d)
        .take(n)
        .map(|s| (((s >> 32) * c) >> 32) as i64)
        .collect()
}

fn target_shape(shape: &[usize]) -> Vec<usize> {
    let mut t = shape.to_vec();
    t.remove(1);
    t
}

fn configure<'a>(
    c: &'a mut Criterion,
    group: &'a str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(group);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g
}

fn log_softmax(c: &mut Criterion) {
    let mut g = configure(c, "log_softmax");
    for (name, shape) in SHAPES {
        let x = logits(shape);
        g.throughput(Throughput::Bytes((x.len() * 4) as u64));
        let t = Tensor::new(shape.to_vec(), Data::F32(x.clone())).unwrap();
        g.bench_with_input(BenchmarkId::new("native", name), &t, |b, t| {
            b.iter(|| ops::log_softmax(black_box(t), Some(1)).unwrap())
        });
        let mut out = t.clone();
        g.bench_with_input(BenchmarkId::new("native_into", name), &t, |b, t| {
            b.iter(|| ops::log_softmax_into(black_box(t), Some(1), &mut out).unwrap())
        });
        let ct = CTensor::from_vec(x, shape, &Device::Cpu).unwrap();
        g.bench_with_input(BenchmarkId::new("candle", name), &ct, |b, ct| {
            b.iter(|| candle_nn::ops::log_softmax(black_box(ct), 1).unwrap())
        });
    }
    g.finish();
}

/// A loss benchmark's inputs for `shape`: logits and targets as this crate's tensors, and as
/// Candle's where candle-nn's losses take them ((N, C) only).
struct LossInputs {
    x: Tensor,
    y: Tensor,
    candle: Option<(CTensor, CTensor)>,
}

fn loss_inputs(shape: &[usize]) -> LossInputs {
    let x = logits(shape);
    let candle = (shape.len() == 2).then(|| {
        let ct = CTensor::from_vec(x.clone(), shape, &Device::Cpu).unwrap();
        (
            ct,
            CTensor::from_vec(targets(shape), shape[0], &Device::Cpu).unwrap(),
        )
    });
    let y = Tensor::new(target_shape(shape), Data::I64(targets(shape))).unwrap();
    LossInputs {
        x: Tensor::new(shape.to_vec(), Data::F32(x)).unwrap(),
        y,
        candle,
    }
}

fn cross_entropy(c: &mut Criterion) {
    let mut g = configure(c, "cross_entropy");
    for (name, shape) in SHAPES {
        let LossInputs { x, y, candle } = loss_inputs(shape);
        g.throughput(Throughput::Bytes((x.numel() * 4) as u64));
        g.bench_with_input(BenchmarkId::new("native", name), &x, |b, t| {
            b.iter(|| {
                ops::cross_entropy(black_box(t), &y, None, Reduction::Mean, -100, 0.0).unwrap()
            })
        });
        if let Some((ct, cy)) = candle {
            g.bench_with_input(BenchmarkId::new("candle", name), &ct, |b, ct| {
                b.iter(|| candle_nn::loss::cross_entropy(black_box(ct), &cy).unwrap())
            });
        }
    }
    g.finish();
}

fn nll_loss(c: &mut Criterion) {
    let mut g = configure(c, "nll_loss");
    for (name, shape) in SHAPES {
        let LossInputs { x, y, candle } = loss_inputs(shape);
        g.bench_with_input(BenchmarkId::new("native", name), &x, |b, t| {
            b.iter(|| ops::nll_loss(black_box(t), &y, None, Reduction::Mean, -100).unwrap())
        });
        if let Some((ct, cy)) = candle {
            g.bench_with_input(BenchmarkId::new("candle", name), &ct, |b, ct| {
                b.iter(|| candle_nn::loss::nll(black_box(ct), &cy).unwrap())
            });
        }
    }
    g.finish();
}

/// log_softmax over dim 1 in the other float dtypes (the same logits, rounded): float64 has
/// its own vectorised kernel, float16 and bfloat16 run on the float32 kernels, converted in
/// registers (AVX-512) or a tile at a time.
/// The large shape is left out to keep the run short.
fn log_softmax_dtypes(c: &mut Criterion) {
    let mut g = configure(c, "log_softmax_dtypes");
    for (name, shape) in SHAPES.into_iter().filter(|(n, _)| *n != "1024x32000") {
        let x = logits(shape);
        for dtype in [DType::F64, DType::F16, DType::BF16] {
            let t = Tensor::from_f64(
                dtype,
                shape.to_vec(),
                &x.iter().map(|&v| v as f64).collect::<Vec<_>>(),
            )
            .unwrap();
            g.throughput(Throughput::Bytes(
                (t.numel() * if dtype == DType::F64 { 8 } else { 2 }) as u64,
            ));
            g.bench_with_input(
                BenchmarkId::new(format!("native_{dtype}"), name),
                &t,
                |b, t| b.iter(|| ops::log_softmax(black_box(t), Some(1)).unwrap()),
            );
            let cdtype = match dtype {
                DType::F64 => candle_core::DType::F64,
                DType::F16 => candle_core::DType::F16,
                _ => candle_core::DType::BF16,
            };
            let ct = CTensor::from_vec(x.clone(), shape, &Device::Cpu)
                .unwrap()
                .to_dtype(cdtype)
                .unwrap();
            g.bench_with_input(
                BenchmarkId::new(format!("candle_{dtype}"), name),
                &ct,
                |b, ct| b.iter(|| candle_nn::ops::log_softmax(black_box(ct), 1).unwrap()),
            );
        }
    }
    g.finish();
}

/// The floor for a pass over the input: its max, with the row kernels' vectorised max loop
/// (`kernels::fast::max_f32`), memory-bound on the large shape: the "read once" the fused
/// cross_entropy is compared with.
fn read_once(c: &mut Criterion) {
    let mut g = configure(c, "read");
    for (name, shape) in SHAPES {
        let x = logits(shape);
        g.throughput(Throughput::Bytes((x.len() * 4) as u64));
        g.bench_with_input(BenchmarkId::new("native", name), &x, |b, x| {
            b.iter(|| nllspec::kernels::fast::max_f32(black_box(x)))
        });
    }
    g.finish();
}

fn main() {
    // SAFETY: no other thread exists yet.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", "1") };
    let mut c = Criterion::default().configure_from_args();
    log_softmax(&mut c);
    cross_entropy(&mut c);
    nll_loss(&mut c);
    log_softmax_dtypes(&mut c);
    read_once(&mut c);
    c.final_summary();
}
