//! Results do not depend on the thread count: inputs above the kernels' parallel threshold
//! (`kernels::PARALLEL_MIN` elements) are computed on one thread and on four, and must
//! agree bit for bit, for every float dtype, rows and outer dims, and the fused losses.

use nllspec::kernels::PARALLEL_MIN;
use nllspec::ops::{self, Reduction};
use nllspec::tensor::{DType, Data, Tensor};

fn on_threads<T: Send>(n: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .expect("a thread pool")
        .install(f)
}

fn logits(dtype: DType, shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let v: Vec<f64> = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 12.0
        })
        .collect();
    Tensor::from_f64(dtype, shape.to_vec(), &v).expect("shape")
}

#[test]
fn one_thread_and_four_agree_bit_for_bit() {
    // rows (dim 1 of N x C) and an outer dim (dim 1 of N x C x W), both above the threshold
    let shapes: [&[usize]; 2] = [&[700, 300], &[6, 21, 1100]];
    for shape in shapes {
        assert!(shape.iter().product::<usize>() >= PARALLEL_MIN);
        let positions: usize = shape.iter().product::<usize>() / shape[1];
        let target_shape: Vec<usize> = shape
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != 1)
            .map(|(_, &d)| d)
            .collect();
        let targets = Tensor::new(
            target_shape,
            Data::I64(
                (0..positions as i64)
                    .map(|p| {
                        if p % 7 == 3 {
                            -100
                        } else {
                            (p * 13) % shape[1] as i64
                        }
                    })
                    .collect(),
            ),
        )
        .expect("shape");
        for dtype in DType::FLOATS {
            let x = logits(dtype, shape);
            let run = || {
                (
                    ops::log_softmax(&x, Some(1)).expect("log_softmax"),
                    ops::cross_entropy(&x, &targets, None, Reduction::Mean, -100, 0.0)
                        .expect("cross_entropy"),
                    ops::cross_entropy(&x, &targets, None, Reduction::None, -100, 0.1)
                        .expect("cross_entropy"),
                    ops::nll_loss(&x, &targets, None, Reduction::Sum, -100).expect("nll_loss"),
                )
            };
            let one = on_threads(1, run);
            let four = on_threads(4, run);
            for (name, a, b) in [
                ("log_softmax", &one.0, &four.0),
                ("cross_entropy mean", &one.1, &four.1),
                ("cross_entropy none", &one.2, &four.2),
                ("nll_loss sum", &one.3, &four.3),
            ] {
                let (a, b) = (a.to_f64_vec(), b.to_f64_vec());
                assert_eq!(a.len(), b.len());
                for (i, (p, q)) in a.iter().zip(&b).enumerate() {
                    assert!(
                        p.to_bits() == q.to_bits(),
                        "{name} {dtype} {shape:?} element {i}: {p} on one thread, {q} on four"
                    );
                }
            }
        }
    }
}
