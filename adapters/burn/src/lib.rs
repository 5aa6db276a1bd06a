//! Burn 0.22 (its ndarray CPU backend, with autodiff) as an implementation under test, through
//! nllspec's Rust trait: the bridge a Rust framework's author writes, copied from this crate.
//!
//! PyTorch's ops as a Burn user writes them:
//!
//! - log_softmax: `burn::tensor::activation::log_softmax(x, dim)`;
//! - cross_entropy: `burn::nn::loss::CrossEntropyLossConfig` with its `weights`, `pad_tokens`
//!   (PyTorch's ignore_index) and `smoothing`, `CrossEntropyLoss::forward(logits, targets)`;
//! - gradients: the autodiff device, `require_grad`, `backward` and `grad`.
//!
//! What Burn's API cannot express is `unsupported`, with the reason: nll_loss (burn::nn::loss
//! has none over log-probabilities), a reduction other than the mean `forward` returns,
//! probability targets, inputs other than (N, C) logits, a 0-d tensor, and a target equal to a
//! negative ignore_index (pad tokens are `usize`). Bridged API differences only: the implicit
//! log_softmax dim, an unbatched (C,) input as a batch of one, PyTorch's 0-d mean as Burn's
//! one-element tensor, and the backward pass of a given `grad_output` as the backward of the
//! loss times it. Burn rejects by panicking (its assertions, an out-of-range index): the panic is
//! caught and its message answered as the rejection, with the contract's kind where the message
//! names one.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, FloatDType, Int, Tensor, TensorData};
use nllspec::impls::{Implementation, Outcome, Request};
use nllspec::ops::Call;
use nllspec::{DType, ErrorKind};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Burn on its ndarray backend.
pub struct Burn;

/// What a case cannot be answered with.
enum Answer {
    Unsupported(String),
    Rejected(Option<ErrorKind>, String),
}

fn unsupported<T>(why: impl Into<String>) -> Result<T, Answer> {
    Err(Answer::Unsupported(why.into()))
}

fn float_dtype(d: DType) -> Option<FloatDType> {
    Some(match d {
        DType::F64 => FloatDType::F64,
        DType::F32 => FloatDType::F32,
        DType::F16 => FloatDType::F16,
        DType::BF16 => FloatDType::BF16,
        _ => return None,
    })
}

// The ndarray backend is deprecated in 0.22 in favour of flex; it is the one this gate measures.
#[allow(deprecated)]
fn device(grad: bool) -> Device {
    let d = Device::ndarray();
    if grad { d.autodiff() } else { d }
}

/// A float tensor of `x`'s dtype on `device`: made from its float64 values and cast, as a
/// Burn user converts data of another precision.
fn float<const D: usize>(x: &nllspec::Tensor, shape: [usize; D], device: &Device) -> Tensor<D> {
    let dtype = float_dtype(x.dtype()).expect("a float dtype");
    Tensor::<D>::from_data(TensorData::new(x.to_f64_vec(), shape), device).cast(dtype)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    let data = t.cast(FloatDType::F64).into_data();
    data.as_slice::<f64>().expect("cast to float64").to_vec()
}

fn tensor(dtype: DType, shape: Vec<usize>, v: &[f64]) -> nllspec::Tensor {
    nllspec::Tensor::from_f64(dtype, shape, v).expect("one value per element")
}

/// log_softmax over a rank known at compile time (Burn's `Tensor<D>`).
fn log_softmax_nd<const D: usize>(
    x: &nllspec::Tensor,
    dim: i64,
    g: Option<&nllspec::Tensor>,
) -> Outcome {
    let shape: [usize; D] = x.shape().try_into().expect("rank D");
    let device = device(g.is_some());
    let input = float::<D>(x, shape, &device);
    let input = if g.is_some() {
        input.require_grad()
    } else {
        input
    };
    let out = log_softmax(input.clone(), dim as isize);
    let output = tensor(x.dtype(), x.shape().to_vec(), &values(out.clone()));
    let grad_input = g.map(|g| {
        let g = float::<D>(g, shape, &device);
        let grads = (out * g).sum().backward();
        let gi = input.grad(&grads).expect("the input requires a gradient");
        tensor(x.dtype(), x.shape().to_vec(), &values(gi))
    });
    Outcome::Values { output, grad_input }
}

fn run_log_softmax(
    x: &nllspec::Tensor,
    dim: Option<i64>,
    g: Option<&nllspec::Tensor>,
) -> Result<Outcome, Answer> {
    if float_dtype(x.dtype()).is_none() {
        return Err(Answer::Rejected(
            Some(ErrorKind::InputDtype),
            "log_softmax takes a Tensor<D, Float>: an integer tensor does not compile".into(),
        ));
    }
    // PyTorch's implicit (deprecated) choice
    let dim = dim.unwrap_or(if matches!(x.ndim(), 0 | 1 | 3) { 0 } else { 1 });
    Ok(match x.ndim() {
        0 => return unsupported("Burn has no 0-d tensors: Tensor<D> has D >= 1"),
        1 => log_softmax_nd::<1>(x, dim, g),
        2 => log_softmax_nd::<2>(x, dim, g),
        3 => log_softmax_nd::<3>(x, dim, g),
        4 => log_softmax_nd::<4>(x, dim, g),
        5 => log_softmax_nd::<5>(x, dim, g),
        6 => log_softmax_nd::<6>(x, dim, g),
        n => {
            return unsupported(format!(
                "this bridge instantiates Tensor<D> for D <= 6, not {n}"
            ));
        }
    })
}

#[allow(clippy::too_many_arguments)]
fn run_cross_entropy(
    x: &nllspec::Tensor,
    target: &nllspec::Tensor,
    weight: Option<&nllspec::Tensor>,
    reduction: &str,
    ignore_index: i64,
    label_smoothing: f64,
    g: Option<&nllspec::Tensor>,
) -> Result<Outcome, Answer> {
    if target.dtype().is_float() {
        return unsupported(
            "CrossEntropyLoss::forward takes class indices (Tensor<1, Int>), not probabilities",
        );
    }
    if reduction != "mean" {
        return unsupported(format!(
            "CrossEntropyLoss::forward returns the mean only, not reduction={reduction:?}"
        ));
    }
    if float_dtype(x.dtype()).is_none() {
        return unsupported(
            "CrossEntropyLoss::forward takes Tensor<2, Float> logits: an integer tensor does not compile",
        );
    }
    let (n, c) = match x.shape() {
        [c] => (1, *c), // unbatched: a batch of one
        [n, c] => (*n, *c),
        _ => return unsupported("CrossEntropyLoss::forward takes (N, C) logits only"),
    };
    if target.ndim() > 1 {
        return Err(Answer::Rejected(
            Some(ErrorKind::TargetShape),
            format!(
                "CrossEntropyLoss::forward takes Tensor<1, Int> targets: a {}-d target does not compile",
                target.ndim()
            ),
        ));
    }
    let targets: Vec<i64> = target.to_f64_vec().iter().map(|&v| v as i64).collect();
    let ignored = targets.contains(&ignore_index);
    if ignored && ignore_index < 0 {
        return unsupported(format!(
            "pad tokens are usize: ignore_index {ignore_index} cannot be one"
        ));
    }
    let mut config = CrossEntropyLossConfig::new();
    if ignore_index >= 0 {
        config = config.with_pad_tokens(Some(vec![ignore_index as usize]));
    }
    if let Some(w) = weight {
        // Burn's weights are a Vec<f32>, whatever the logits' precision
        config = config.with_weights(Some(w.to_f64_vec().iter().map(|&v| v as f32).collect()));
    }
    if label_smoothing != 0.0 {
        config = config.with_smoothing(Some(label_smoothing as f32));
    }
    let device = device(g.is_some());
    let loss_fn = config.init(&device);
    let logits = float::<2>(x, [n, c], &device);
    let logits = if g.is_some() {
        logits.require_grad()
    } else {
        logits
    };
    let t = Tensor::<1, Int>::from_data(TensorData::new(targets.clone(), [targets.len()]), &device);
    let loss = loss_fn.forward(logits.clone(), t);
    let output = tensor(x.dtype(), vec![], &values(loss.clone()));
    let grad_input = g.map(|g| {
        let g = g.to_f64_vec()[0];
        let grads = loss.mul_scalar(g).sum().backward();
        let gi = logits.grad(&grads).expect("the logits require a gradient");
        tensor(x.dtype(), x.shape().to_vec(), &values(gi))
    });
    Ok(Outcome::Values { output, grad_input })
}

/// The contract's kind for one of Burn's panic messages, where it names one.
fn kind(message: &str) -> Option<ErrorKind> {
    if message.contains("should be in interval [0, 1]") {
        Some(ErrorKind::InvalidArgument)
    } else if message.contains("BoundsError: dimension") {
        Some(ErrorKind::DimOutOfRange)
    } else if message.contains("out of bounds") {
        Some(ErrorKind::TargetOutOfBounds)
    } else if message.contains("Shape") || message.contains("shape") {
        Some(ErrorKind::TargetShape)
    } else if message.starts_with("Data type mismatch") {
        Some(ErrorKind::DtypeMismatch)
    } else if message.contains("dim") && message.contains("range") {
        Some(ErrorKind::DimOutOfRange)
    } else {
        None
    }
}

impl Implementation for Burn {
    fn name(&self) -> &str {
        "burn"
    }

    fn run(&self, req: &Request<'_>) -> Outcome {
        let g = req.grad_output;
        // Burn rejects by panicking; the default hook would print every caught panic.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let answer = catch_unwind(AssertUnwindSafe(|| match req.call {
            Call::LogSoftmax { input, dim } => run_log_softmax(input, *dim, g),
            Call::NllLoss { .. } => unsupported(
                "burn::nn::loss has no nll_loss over log-probabilities (CrossEntropyLoss with \
                 logits=false takes probabilities and logs them)",
            ),
            Call::CrossEntropy {
                input,
                target,
                weight,
                reduction,
                ignore_index,
                label_smoothing,
            } => run_cross_entropy(
                input,
                target,
                weight.as_ref(),
                reduction,
                *ignore_index,
                *label_smoothing,
                g,
            ),
        }));
        std::panic::set_hook(hook);
        match answer {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(Answer::Unsupported(why))) => Outcome::Unsupported(why),
            Ok(Err(Answer::Rejected(kind, message))) => Outcome::error(kind, message),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "a panic without a message".into());
                if message.starts_with("Unsupported dtype") {
                    return Outcome::Unsupported(format!("the ndarray backend: {message}"));
                }
                Outcome::error(kind(&message), format!("panicked: {message}"))
            }
        }
    }
}
