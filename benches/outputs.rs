//! Output fingerprints: a SHA-256 of every bit the implementations produce, for proving that
//! a refactor changed no result. Not a benchmark (criterion is not involved): it lives here so
//! that `cargo test` does not build it.
//!
//!     for s in avx512 avx2 portable; do for t in 1 3; do
//!       NLLSPEC_SIMD=$s RAYON_NUM_THREADS=$t cargo bench --bench outputs; done; done
//!
//! Each line is `<what> <sha256>`: per implementation over the golden suite (every outcome:
//! values bit for bit, error kinds and messages), and per op and dtype over synthetic inputs
//! large enough for the threaded paths (above `PARALLEL_MIN` elements). Compare the lines
//! before and after a change; `NLLSPEC_SIMD` caps the SIMD level (on a CPU without AVX-512
//! the avx512 line equals the avx2 one).

use nllspec::golden::load::{default_golden_dir, discover, load_all};
use nllspec::impls::{ImplSpec, Outcome, Request};
use nllspec::ops::{Reduction, cross_entropy, log_softmax, nll_loss};
use nllspec::tensor::{DType, Data, Tensor};
use sha2::{Digest, Sha256};
use std::time::Duration;

fn feed_tensor(h: &mut Sha256, t: &Tensor) {
    h.update(format!("{:?}{:?}", t.dtype(), t.shape()));
    match t.data() {
        Data::I64(v) => v.iter().for_each(|x| h.update(x.to_le_bytes())),
        _ => t
            .to_f64_vec()
            .iter()
            .for_each(|x| h.update(x.to_bits().to_le_bytes())),
    }
}

fn feed_outcome(h: &mut Sha256, o: &Outcome) {
    match o {
        Outcome::Values { output, grad_input } => {
            h.update("values");
            feed_tensor(h, output);
            if let Some(g) = grad_input {
                feed_tensor(h, g);
            }
        }
        other => h.update(format!("{other:?}")),
    }
}

fn xorshift(mut s: u64) -> impl FnMut() -> u64 {
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}

fn logits(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    let mut r = xorshift(seed);
    (0..n)
        .map(|i| {
            let u = (r() >> 11) as f64 / (1u64 << 53) as f64;
            // an occasional -inf and a huge value, so that the special paths run
            match i % 997 {
                13 => f64::NEG_INFINITY,
                500 => 80.0,
                _ => (u - 0.5) * scale,
            }
        })
        .collect()
}

fn main() {
    std::panic::set_hook(Box::new(|_| {}));
    let golden = load_all(&discover(&[default_golden_dir()]).expect("golden dir"))
        .expect("golden suite loads");
    for name in ["native", "candle", "candle-nn"] {
        let imp =
            ImplSpec::parse(name)
                .expect("built-in")
                .build(nllspec::impls::external::Limits {
                    timeout: Duration::from_secs(60),
                    ..Default::default()
                });
        let mut h = Sha256::new();
        for c in &golden {
            h.update(&c.case.id);
            // candle-nn panics on some inputs (the harness catches it the same way)
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                imp.run(&Request::of(&c.case))
            })) {
                Ok(o) => feed_outcome(&mut h, &o),
                Err(_) => h.update("panic"),
            }
        }
        println!("golden/{name} {:x}", h.finalize());
    }
    let shapes: [&[usize]; 7] = [
        &[64, 1000],
        &[300, 1000],
        &[5000, 3],
        &[4, 50, 1000],
        &[2, 21, 64, 64],
        &[8, 21, 40, 40],
        &[3, 7, 5],
    ];
    for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        for (si, shape) in shapes.iter().enumerate() {
            let n: usize = shape.iter().product();
            for scale in [6.0, 200.0] {
                let x = Tensor::from_f64(
                    dtype,
                    shape.to_vec(),
                    &logits(n, 0x9e37_79b9 + si as u64, scale),
                )
                .unwrap();
                let g = Tensor::from_f64(
                    dtype,
                    shape.to_vec(),
                    &logits(n, 0x1234_5678 + si as u64, 2.0),
                )
                .unwrap();
                let mut h = Sha256::new();
                for dim in [-1i64, 1, 0] {
                    let r = log_softmax::log_softmax_with_grad(&x, Some(dim), Some(&g)).unwrap();
                    feed_tensor(&mut h, &r.output);
                    feed_tensor(&mut h, r.grad_input.as_ref().unwrap());
                }
                println!(
                    "log_softmax/{}/{:?}/{scale} {:x}",
                    dtype.name(),
                    shape,
                    h.finalize()
                );
                let c = shape[1];
                let mut tshape = shape.to_vec();
                tshape.remove(1);
                let nt: usize = tshape.iter().product();
                let mut r = xorshift(0x2545_f491 + si as u64);
                let t: Vec<f64> = (0..nt)
                    .map(|i| {
                        if i % 17 == 3 {
                            -100.0
                        } else {
                            ((r() >> 33) % c as u64) as f64
                        }
                    })
                    .collect();
                let t = Tensor::from_f64(DType::I64, tshape.clone(), &t).unwrap();
                let w: Vec<f64> = (0..c).map(|k| 0.5 + (k % 5) as f64 * 0.25).collect();
                let w = Tensor::from_f64(dtype, vec![c], &w).unwrap();
                let mut h = Sha256::new();
                let lp = log_softmax::log_softmax(&x, Some(1)).unwrap();
                for red in [Reduction::None, Reduction::Mean, Reduction::Sum] {
                    for weight in [None, Some(&w)] {
                        let go = if red == Reduction::None {
                            Tensor::from_f64(dtype, tshape.clone(), &logits(nt, 7, 2.0)).unwrap()
                        } else {
                            Tensor::scalar(dtype, 0.75)
                        };
                        let r = nll_loss::nll_loss_with_grad(&lp, &t, weight, red, -100, Some(&go))
                            .unwrap();
                        feed_tensor(&mut h, &r.output);
                        feed_tensor(&mut h, r.grad_input.as_ref().unwrap());
                        for ls in [0.0, 0.1] {
                            let r = cross_entropy::cross_entropy_with_grad(
                                &x,
                                &t,
                                weight,
                                red,
                                -100,
                                ls,
                                Some(&go),
                            )
                            .unwrap();
                            feed_tensor(&mut h, &r.output);
                            feed_tensor(&mut h, r.grad_input.as_ref().unwrap());
                            let r = cross_entropy::cross_entropy(&x, &t, weight, red, -100, ls)
                                .unwrap();
                            feed_tensor(&mut h, &r);
                        }
                    }
                }
                println!(
                    "losses/{}/{:?}/{scale} {:x}",
                    dtype.name(),
                    shape,
                    h.finalize()
                );
            }
        }
    }
}
