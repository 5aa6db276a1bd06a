//! Fuzzing with proptest, run by `cargo test` with a fixed seed and a bounded number of cases
//! (so CI is repeatable); `NLLSPEC_FUZZ_CASES=100000 cargo test --release --test fuzz` runs a
//! longer campaign. Each target asserts only what must hold for any input: no panic, and a
//! rejection that names where the problem is.
//!
//! Inputs that once broke something are kept below as named regression tests.

use nllspec::golden::load::parse_bytes;
use nllspec::impls::protocol::parse_response;
use nllspec::impls::{Implementation, Outcome, Request};
use nllspec::ops::Call;
use nllspec::ops::{self, Reduction};
use nllspec::tensor::{DType, Data, Tensor};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use std::path::Path;

fn config() -> Config {
    let cases = std::env::var("NLLSPEC_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    Config {
        cases,
        rng_seed: RngSeed::Fixed(0x5eed_4e11),
        failure_persistence: None,
        ..Config::default()
    }
}

const SEED_GOLDEN: &str = include_str!("../golden/nll_loss/seed.json");

/// Arbitrary small tensors of any dtype, with NaN payloads, infinities and extreme integers.
fn tensor(max_rank: usize) -> impl Strategy<Value = Tensor> {
    let shape = prop::collection::vec(0usize..4, 0..=max_rank);
    let dtype = prop::sample::select(DType::ALL.to_vec());
    (shape, dtype, any::<u64>()).prop_map(|(shape, dtype, seed)| {
        let n: usize = shape.iter().product();
        let mut s = seed | 1;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let vals: Vec<f64> = (0..n)
            .map(|_| match next() % 10 {
                0 => f64::NAN,
                1 => f64::INFINITY,
                2 => f64::NEG_INFINITY,
                3 => f64::from_bits(0x7ff8_dead_beef_0001), // a NaN with a payload
                4 => -0.0,
                5 => 3e38,
                _ => ((next() % 2001) as f64 - 1000.0) / 100.0,
            })
            .collect();
        let data = match dtype {
            DType::I64 => Data::I64(
                (0..n)
                    .map(|_| match next() % 6 {
                        0 => i64::MIN,
                        1 => i64::MAX,
                        2 => -100,
                        _ => (next() % 5) as i64 - 1,
                    })
                    .collect(),
            ),
            DType::I32 => Data::I32((0..n).map(|_| (next() % 7) as i32 - 2).collect()),
            DType::U8 => Data::U8(
                (0..n)
                    .map(|_| {
                        if next() % 5 == 0 {
                            255
                        } else {
                            (next() % 4) as u8
                        }
                    })
                    .collect(),
            ),
            d => Tensor::from_f64(d, shape.clone(), &vals)
                .unwrap()
                .into_data(),
        };
        Tensor::new(shape, data).unwrap()
    })
}

fn reduction() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["none", "mean", "sum", "avg", ""]).prop_map(str::to_string)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn loader_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let _ = parse_bytes(Path::new("fuzz.json"), &bytes);
    }

    #[test]
    fn loader_never_panics_on_mutated_goldens(cuts in prop::collection::vec((any::<prop::sample::Index>(), 0usize..40, "[\\[\\]{}\",:0-9a-zA-Z.\\-]{0,8}"), 1..6)) {
        let mut text = SEED_GOLDEN.to_string();
        for (at, len, insert) in cuts {
            let i = at.index(text.len());
            let i = (0..=i).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
            let j = (i + len).min(text.len());
            let j = (j..=text.len()).find(|&j| text.is_char_boundary(j)).unwrap_or(text.len());
            text.replace_range(i..j, &insert);
        }
        if let Err(e) = parse_bytes(Path::new("mutated.json"), text.as_bytes()) {
            prop_assert!(e.to_string().starts_with("mutated.json"), "{e}");
        }
    }

    #[test]
    fn protocol_reader_never_panics(line in ".{0,300}") {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
            let _ = parse_response(&v);
        }
    }

    #[test]
    fn protocol_reader_on_near_valid_answers(kind in "[a-z_]{0,20}", dtype in "(float32|float16|int64|uint8|bogus)", shape in prop::collection::vec(0i64..3, 0..3), data in prop::collection::vec(prop_oneof![Just(serde_json::json!(1.5)), Just(serde_json::json!("NaN")), Just(serde_json::json!(7)), Just(serde_json::json!(null))], 0..6)) {
        let answers = [
            serde_json::json!({"id": "x", "output": {"dtype": dtype, "shape": shape, "data": data}}),
            serde_json::json!({"id": "x", "error": {"kind": kind, "message": 3}}),
            serde_json::json!({"id": "x", "unsupported": data}),
        ];
        for a in answers {
            let _ = parse_response(&a);
        }
    }

    #[test]
    fn log_softmax_never_panics(x in tensor(4), dim in prop_oneof![Just(None), (-6i64..6).prop_map(Some), any::<i64>().prop_map(Some)], g in any::<bool>()) {
        let r = ops::log_softmax(&x, dim);
        if let (Ok(y), true) = (r, g) {
            let _ = ops::log_softmax_backward(&x, dim, &y);
        }
    }

    #[test]
    fn losses_never_panic(x in tensor(4), t in tensor(4), w in prop::option::of(tensor(1)), r in reduction(), ignore in prop_oneof![Just(-100i64), Just(0), Just(255), any::<i64>()], ls in prop_oneof![Just(0.0), Just(0.1), Just(1.0), Just(1.5), Just(-0.5), Just(f64::NAN)]) {
        let red = Reduction::parse(&r);
        if let Ok(red) = red {
            let _ = ops::nll_loss(&x, &t, w.as_ref(), red, ignore);
            let _ = ops::cross_entropy(&x, &t, w.as_ref(), red, ignore, ls);
            if let Ok(y) = ops::cross_entropy(&x, &t, w.as_ref(), red, ignore, ls) {
                let _ = ops::cross_entropy_backward(&x, &t, w.as_ref(), red, ignore, ls, &Tensor::from_f64(y.dtype(), y.shape().to_vec(), &vec![1.0; y.numel()]).unwrap());
            }
            if let Ok(y) = ops::nll_loss(&x, &t, w.as_ref(), red, ignore) {
                let g = Tensor::from_f64(y.dtype(), y.shape().to_vec(), &vec![1.0; y.numel()]).unwrap();
                let _ = ops::nll_loss_backward(&x, &t, w.as_ref(), red, ignore, &g);
            }
        }
    }

    /// The Candle implementations must not take the harness down either (a panic inside
    /// candle is caught and reported as a broken case).
    #[test]
    fn candle_implementations_never_crash_the_harness(x in tensor(3), t in tensor(2), r in reduction()) {
        let call = Call::CrossEntropy { input: x, target: t, weight: None, reduction: r, ignore_index: -100, label_smoothing: 0.0 };
        for imp in [&nllspec::impls::candle::CandleReference as &dyn Implementation, &nllspec::impls::candle_nn::CandleNn] {
            let o = nllspec::execution::run_guarded(imp, &Request { id: "fuzz", call: &call, grad_output: None });
            if let Outcome::Broken(d) = &o {
                prop_assert!(!d.is_empty());
            }
        }
    }
}

// Regression inputs found while building the suite.

#[test]
fn regression_0d_target_with_empty_batch() {
    // (0, 5) input with a 0-d target: the batch check compares 0 with "0"; torch then raises
    // IndexError from target.size(0) rather than reading out of bounds.
    let x = Tensor::new(vec![0, 5], Data::F32(vec![])).unwrap();
    let t = Tensor::new(vec![], Data::I64(vec![1])).unwrap();
    let e = ops::nll_loss(&x, &t, None, Reduction::Mean, -100).unwrap_err();
    assert_eq!(
        e.message,
        "Dimension specified as 0 but tensor has no dimensions"
    );
}

#[test]
fn regression_candle_integer_exp_panics_are_contained() {
    // candle-core 0.11 panics ("no unary function for i64") on exp of an integer tensor.
    let x = Tensor::new(vec![2, 3], Data::I64(vec![1; 6])).unwrap();
    let call = Call::LogSoftmax {
        input: x,
        dim: Some(1),
    };
    let o = nllspec::execution::run_guarded(
        &nllspec::impls::candle_nn::CandleNn,
        &Request {
            id: "r",
            call: &call,
            grad_output: None,
        },
    );
    match o {
        Outcome::Broken(d) => assert!(d.contains("panicked"), "{d}"),
        other => panic!("expected a contained panic, got {other:?}"),
    }
}

#[test]
fn regression_zero_classes_with_ignored_targets() {
    // C = 0 with every target ignored: mean is 0/0 (torch 2.15: nan), never an index panic.
    let x = Tensor::new(vec![3, 0], Data::F32(vec![])).unwrap();
    let t = Tensor::new(vec![3], Data::I64(vec![-100; 3])).unwrap();
    assert!(
        ops::nll_loss(&x, &t, None, Reduction::Mean, -100)
            .unwrap()
            .to_f64_vec()[0]
            .is_nan()
    );
    assert!(
        ops::cross_entropy(&x, &t, None, Reduction::Mean, -100, 0.1)
            .unwrap()
            .to_f64_vec()[0]
            .is_nan()
    );
}
