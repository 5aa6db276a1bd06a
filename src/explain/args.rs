//! A call's arguments, and the conversions of Python values to what the ops take (integers,
//! floats, shapes, nested lists to tensors, dtype and dim keywords).

use super::stop::{R, unsupported};
use super::value::{TensorVal, Val};
use crate::tensor::{DType, Tensor};

/// Positional and keyword arguments of one call.
pub(super) struct Args {
    pub(super) pos: Vec<Val>,
    pub(super) kw: Vec<(String, Val)>,
    pub(super) line: usize,
    pub(super) what: String,
}

impl Args {
    /// The argument at position `i` or keyword `name`.
    pub(super) fn get(&mut self, i: usize, name: &str) -> Option<Val> {
        if let Some(k) = self.kw.iter().position(|(n, _)| n == name) {
            return Some(self.kw.remove(k).1);
        }
        self.pos
            .get_mut(i)
            .map(|v| std::mem::replace(v, Val::None))
            .filter(|v| !matches!(v, Val::None))
    }

    pub(super) fn kw(&mut self, name: &str) -> Option<Val> {
        self.kw
            .iter()
            .position(|(n, _)| n == name)
            .map(|k| self.kw.remove(k).1)
    }

    /// Fails on an argument nobody took: `what(foo=1)` is not guessed at.
    pub(super) fn done(self) -> R<()> {
        if let Some((n, _)) = self.kw.first() {
            return unsupported(
                self.line,
                format!("the keyword argument {n}= of {}", self.what),
            );
        }
        if self.pos.iter().any(|v| !matches!(v, Val::None)) {
            return unsupported(
                self.line,
                format!("this many positional arguments to {}", self.what),
            );
        }
        Ok(())
    }
}

pub(super) fn int_of(v: &Val, line: usize, what: &str) -> R<i64> {
    match v {
        Val::Int(i) => Ok(*i),
        Val::Bool(b) => Ok(*b as i64),
        _ => unsupported(line, format!("{what} that is not an integer")),
    }
}

pub(super) fn float_of(v: &Val, line: usize, what: &str) -> R<f64> {
    match v {
        Val::Int(i) => Ok(*i as f64),
        Val::Float(f) => Ok(*f),
        Val::Bool(b) => Ok(*b as i64 as f64),
        _ => unsupported(line, format!("{what} that is not a number")),
    }
}

pub(super) fn tensor_of(v: Val, line: usize, what: &str) -> R<Box<TensorVal>> {
    match v {
        Val::Tensor(t) => Ok(t),
        _ => unsupported(line, format!("{what} that is not a tensor")),
    }
}

/// A shape given as `*ints` or as one tuple, list or torch.Size.
pub(super) fn shape_of(pos: &[Val], line: usize) -> R<Vec<usize>> {
    let items: Vec<Val> = match pos {
        [Val::Tuple(v) | Val::List(v)] => v.clone(),
        [Val::Size(s)] => s.iter().map(|&d| Val::Int(d as i64)).collect(),
        other => other.to_vec(),
    };
    items
        .iter()
        .map(|v| match int_of(v, line, "a size")? {
            n if n >= 0 => Ok(n as usize),
            _ => unsupported(line, "a negative size"),
        })
        .collect()
}

/// Nested lists of numbers: the flat values, the shape, and whether any is a float.
pub(super) fn flatten(v: &Val, line: usize) -> R<(Vec<f64>, Vec<usize>, bool)> {
    match v {
        Val::Int(i) => Ok((vec![*i as f64], vec![], false)),
        Val::Float(f) => Ok((vec![*f], vec![], true)),
        Val::Bool(_) => unsupported(line, "a bool tensor"),
        Val::List(items) | Val::Tuple(items) => {
            let mut flat = Vec::new();
            let mut inner: Option<Vec<usize>> = None;
            let mut any_float = false;
            for it in items {
                let (f, s, fl) = flatten(it, line)?;
                if inner.as_ref().is_some_and(|i| *i != s) {
                    return unsupported(line, "a ragged nested list");
                }
                inner = Some(s);
                any_float |= fl;
                flat.extend(f);
            }
            let mut shape = vec![items.len()];
            shape.extend(inner.unwrap_or_default());
            Ok((flat, shape, any_float))
        }
        Val::Tensor(t) => Ok((
            t.t.to_f64_vec(),
            t.t.shape().to_vec(),
            t.t.dtype().is_float(),
        )),
        _ => unsupported(line, "tensor data that is not a number or a list"),
    }
}

/// Deterministic stand-ins for random values: shapes and errors do not depend on them, and
/// outputs computed from them are reported without data.
pub(super) fn stand_in(n: usize, seed: u64, normal: bool) -> Vec<f64> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 11) as f64 / (1u64 << 53) as f64;
            if normal { (u - 0.5) * 3.4 } else { u }
        })
        .collect()
}

pub(super) fn dtype_kw(a: &mut Args, default: DType) -> R<DType> {
    match a.kw("dtype") {
        None | Some(Val::None) => Ok(default),
        Some(Val::DType(d)) => Ok(d),
        Some(_) => unsupported(a.line, "a dtype= that is not a torch dtype"),
    }
}

pub(super) fn requires_grad_kw(a: &mut Args) -> R<bool> {
    match a.kw("requires_grad") {
        None => Ok(false),
        Some(Val::Bool(b)) => Ok(b),
        Some(_) => unsupported(a.line, "a requires_grad= that is not True or False"),
    }
}

pub(super) fn dim_of(v: Option<Val>, line: usize) -> R<Option<i64>> {
    match v {
        None | Some(Val::None) => Ok(None),
        Some(v) => int_of(&v, line, "a dim").map(Some),
    }
}

pub(super) fn tensor_from(
    dtype: DType,
    shape: Vec<usize>,
    values: &[f64],
    line: usize,
) -> R<Tensor> {
    if crate::tensor::checked_numel(&shape).is_none_or(|n| n > 1 << 24) {
        return unsupported(line, "a tensor of more than 2^24 elements");
    }
    Tensor::from_f64(dtype, shape, values)
        .or_else(|e| unsupported(line, format!("a tensor nllspec cannot hold ({})", e.0)))
}

pub(super) fn dtype_named(name: &str) -> Option<DType> {
    Some(match name {
        "float16" | "half" => DType::F16,
        "bfloat16" => DType::BF16,
        "float32" | "float" => DType::F32,
        "float64" | "double" => DType::F64,
        "int64" | "long" => DType::I64,
        "int32" | "int" => DType::I32,
        "uint8" => DType::U8,
        _ => return None,
    })
}
