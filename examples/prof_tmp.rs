use nllspec::ops::{self, Reduction};
use nllspec::tensor::{Data, Tensor};
use std::time::Instant;
fn main() {
    let (n, c) = (1024usize, 32000usize);
    let x: Vec<f32> = (0..n * c).map(|i| ((i * 7919 % 10007) as f32) * 0.001 - 5.0).collect();
    let t = Tensor::new(vec![n, c], Data::F32(x.clone())).unwrap();
    let y = Tensor::new(vec![n], Data::I64((0..n as i64).collect())).unwrap();
    for _ in 0..3 {
        let t0 = Instant::now();
        let s = nllspec::kernels::fast::row_lse_f32(&x, c);
        let t1 = t0.elapsed();
        let t0 = Instant::now();
        let _ = ops::cross_entropy(&t, &y, None, Reduction::Mean, -100, 0.0).unwrap();
        let t2 = t0.elapsed();
        let mut out = vec![0f32; n * c];
        let t0 = Instant::now();
        nllspec::kernels::fast::log_softmax_f32(&x, &mut out, n, c, 1);
        let t3 = t0.elapsed();
        println!("row_lse {t1:?} ce {t2:?} lsm_into {t3:?} {}", s.len());
    }
}
