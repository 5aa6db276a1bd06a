//! A small interpreter for the PyTorch snippets `nllspec explain` takes: the Python subset of
//! spec/EXPLAIN.md, evaluated on the native ops. Anything outside it stops with
//! [`Stop::Unsupported`] naming the construct and its line: never a guess.

use super::advice::{self, SnippetCall};
use super::args::{
    Args, dim_of, dtype_kw, dtype_named, flatten, float_of, int_of, requires_grad_kw, shape_of,
    stand_in, tensor_from, tensor_of,
};
pub use super::stop::Stop;
use super::stop::{R, unsupported};
pub use super::value::{Module, Origin, TensorVal, Val};
use crate::error::OpError;
use crate::ops::{self, Reduction};
use crate::tensor::{DType, Tensor};
use rustpython_parser::ast::{self, Constant, Expr, Ranged, Stmt};
use std::collections::HashMap;

pub struct Interp<'a> {
    src: &'a str,
    line_starts: Vec<usize>,
    env: HashMap<String, Val>,
    pub warnings: Vec<String>,
}

impl<'a> Interp<'a> {
    pub fn new(src: &'a str) -> Interp<'a> {
        let mut line_starts = vec![0];
        line_starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        Interp {
            src,
            line_starts,
            env: HashMap::new(),
            warnings: Vec::new(),
        }
    }

    pub fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= offset)
    }

    fn warn(&mut self, line: usize, text: String) {
        self.warnings.push(format!("line {line}: {text}"));
    }

    /// Runs the statements; the value of the last one (an assignment's value, an expression's,
    /// or what `print` printed).
    pub fn run(&mut self, suite: &[Stmt]) -> R<Val> {
        let mut last = Val::None;
        for stmt in suite {
            last = self.stmt(stmt)?;
        }
        Ok(last)
    }

    fn stmt(&mut self, s: &Stmt) -> R<Val> {
        let line = self.line_of(s.range().start().to_usize());
        match s {
            Stmt::Import(i) => {
                for alias in &i.names {
                    let name = alias.name.as_str();
                    let ns = match name {
                        "torch" => "torch",
                        "torch.nn" => "nn",
                        "torch.nn.functional" => "F",
                        _ => return unsupported(line, format!("import {name}")),
                    };
                    let bound = alias.asname.as_ref().map(|a| a.to_string());
                    match (bound, ns) {
                        (Some(b), _) => self.env.insert(b, Val::Namespace(ns)),
                        (None, _) => self.env.insert("torch".into(), Val::Namespace("torch")),
                    };
                }
                Ok(Val::None)
            }
            Stmt::ImportFrom(i) => {
                let module = i.module.as_ref().map(|m| m.to_string()).unwrap_or_default();
                for alias in &i.names {
                    let ns = match (module.as_str(), alias.name.as_str()) {
                        ("torch", "nn") => "nn",
                        ("torch.nn", "functional") => "F",
                        (m, n) => return unsupported(line, format!("from {m} import {n}")),
                    };
                    let bound = alias
                        .asname
                        .as_ref()
                        .map_or_else(|| alias.name.to_string(), |a| a.to_string());
                    self.env.insert(bound, Val::Namespace(ns));
                }
                Ok(Val::None)
            }
            Stmt::Assign(a) => {
                let [Expr::Name(target)] = a.targets.as_slice() else {
                    return unsupported(line, "an assignment to anything but one name");
                };
                let mut v = self.expr(&a.value)?;
                if let Val::Tensor(t) = &mut v {
                    t.var = Some((target.id.to_string(), line));
                }
                self.env.insert(target.id.to_string(), v.clone());
                Ok(v)
            }
            Stmt::Expr(e) => self.expr(&e.value),
            other => unsupported(line, format!("this statement ({})", stmt_name(other))),
        }
    }

    fn expr(&mut self, e: &Expr) -> R<Val> {
        let line = self.line_of(e.range().start().to_usize());
        match e {
            Expr::Constant(c) => match &c.value {
                Constant::None => Ok(Val::None),
                Constant::Bool(b) => Ok(Val::Bool(*b)),
                Constant::Int(i) => i
                    .try_into()
                    .map(Val::Int)
                    .or_else(|_| unsupported(line, "an integer beyond 64 bits")),
                Constant::Float(f) => Ok(Val::Float(*f)),
                Constant::Str(s) => Ok(Val::Str(s.clone())),
                _ => unsupported(line, "this literal"),
            },
            Expr::UnaryOp(u) => {
                let v = self.expr(&u.operand)?;
                match (u.op, v) {
                    (ast::UnaryOp::USub, Val::Int(i)) => Ok(Val::Int(-i)),
                    (ast::UnaryOp::USub, Val::Float(f)) => Ok(Val::Float(-f)),
                    (ast::UnaryOp::UAdd, v @ (Val::Int(_) | Val::Float(_))) => Ok(v),
                    _ => unsupported(line, "this unary operator"),
                }
            }
            // a tensor shifted by a number (`labels - 1`), as a fix writes it
            Expr::BinOp(b) if matches!(b.op, ast::Operator::Add | ast::Operator::Sub) => {
                let (l, r) = (self.expr(&b.left)?, self.expr(&b.right)?);
                let sign = if matches!(b.op, ast::Operator::Sub) {
                    -1.0
                } else {
                    1.0
                };
                match (l, r) {
                    (Val::Int(x), Val::Int(y)) => {
                        Ok(Val::Int(if sign < 0.0 { x - y } else { x + y }))
                    }
                    (Val::Tensor(t), Val::Int(k)) => {
                        let v: Vec<f64> =
                            t.t.to_f64_vec()
                                .iter()
                                .map(|x| x + sign * k as f64)
                                .collect();
                        Ok(Val::Tensor(Box::new(TensorVal {
                            t: tensor_from(t.t.dtype(), t.t.shape().to_vec(), &v, line)?,
                            var: None,
                            expr: None,
                            ..*t
                        })))
                    }
                    _ => unsupported(
                        line,
                        "this arithmetic (a tensor plus or minus an integer is evaluated)",
                    ),
                }
            }
            Expr::List(l) => Ok(Val::List(
                l.elts.iter().map(|x| self.expr(x)).collect::<R<_>>()?,
            )),
            Expr::Tuple(t) => Ok(Val::Tuple(
                t.elts.iter().map(|x| self.expr(x)).collect::<R<_>>()?,
            )),
            Expr::Name(n) => match self.env.get(n.id.as_str()) {
                Some(v) => Ok(v.clone()),
                None if matches!(n.id.as_str(), "print" | "float") => {
                    Ok(Val::Func(n.id.to_string()))
                }
                None => unsupported(
                    line,
                    format!("the name {} (not assigned above, nor imported)", n.id),
                ),
            },
            Expr::Attribute(a) => {
                let base = self.expr(&a.value)?;
                self.attribute(base, a.attr.as_str(), line)
            }
            Expr::Call(c) => {
                let f = self.expr(&c.func)?;
                let pos = c.args.iter().map(|x| self.expr(x)).collect::<R<Vec<_>>>()?;
                let mut kw = Vec::new();
                for k in &c.keywords {
                    let Some(name) = &k.arg else {
                        return unsupported(line, "**kwargs");
                    };
                    kw.push((name.to_string(), self.expr(&k.value)?));
                }
                let what = self
                    .src
                    .get(c.func.range().start().to_usize()..c.func.range().end().to_usize())
                    .unwrap_or("a call")
                    .to_string();
                let source = self
                    .src
                    .get(c.range().start().to_usize()..c.range().end().to_usize())
                    .unwrap_or("")
                    .to_string();
                let mut v = self.call(
                    f,
                    Args {
                        pos,
                        kw,
                        line,
                        what,
                    },
                    source.clone(),
                )?;
                if let Val::Tensor(t) = &mut v {
                    t.expr = Some(source);
                }
                Ok(v)
            }
            Expr::Starred(_) => unsupported(line, "*args"),
            _ => unsupported(line, "this expression"),
        }
    }

    fn attribute(&mut self, base: Val, attr: &str, line: usize) -> R<Val> {
        match (base, attr) {
            (Val::Namespace("torch"), "nn") => Ok(Val::Namespace("nn")),
            (Val::Namespace("nn"), "functional") => Ok(Val::Namespace("F")),
            (Val::Namespace("torch"), d) if dtype_named(d).is_some() => {
                Ok(Val::DType(dtype_named(d).unwrap_or(DType::F32)))
            }
            (Val::Namespace(ns), f) => Ok(Val::Func(format!("{ns}.{f}"))),
            (Val::Tensor(t), "shape") => Ok(Val::Size(t.t.shape().to_vec())),
            (Val::Tensor(t), "dtype") => Ok(Val::DType(t.t.dtype())),
            (Val::Tensor(t), m) => Ok(Val::Method(t, m.to_string())),
            (_, a) => unsupported(line, format!("the attribute .{a}")),
        }
    }

    fn call(&mut self, f: Val, mut a: Args, source: String) -> R<Val> {
        let line = a.line;
        match f {
            Val::Func(name) => self.function(&name, a, source),
            Val::Method(t, m) => self.method(*t, &m, a, source),
            Val::Module(Module::LogSoftmax(dim)) => {
                let x = tensor_of(
                    a.get(0, "input").unwrap_or(Val::None),
                    line,
                    "a LogSoftmax input",
                )?;
                a.done()?;
                self.log_softmax(*x, dim, line, source, "log_softmax")
                    .map(Val::Tensor)
            }
            Val::Module(Module::Softmax(dim)) => {
                let x = tensor_of(
                    a.get(0, "input").unwrap_or(Val::None),
                    line,
                    "a Softmax input",
                )?;
                a.done()?;
                self.log_softmax(*x, dim, line, source, "softmax")
                    .map(Val::Tensor)
            }
            Val::Module(Module::Loss {
                cross_entropy,
                weight,
                reduction,
                ignore_index,
                label_smoothing,
            }) => {
                let input =
                    tensor_of(a.get(0, "input").unwrap_or(Val::None), line, "a loss input")?;
                let target = tensor_of(
                    a.get(1, "target").unwrap_or(Val::None),
                    line,
                    "a loss target",
                )?;
                a.done()?;
                let call = SnippetCall::loss(
                    cross_entropy,
                    line,
                    source,
                    *input,
                    *target,
                    weight.map(|w| *w),
                );
                self.loss(call, &reduction, ignore_index, label_smoothing)
                    .map(Val::Tensor)
            }
            _ => unsupported(line, format!("calling {}", a.what)),
        }
    }

    fn function(&mut self, name: &str, mut a: Args, source: String) -> R<Val> {
        let line = a.line;
        let short = name.rsplit('.').next().unwrap_or(name);
        match name {
            "float" => match a.get(0, "x") {
                Some(Val::Str(s)) => match s.trim().to_ascii_lowercase().as_str() {
                    "nan" => Ok(Val::Float(f64::NAN)),
                    "inf" | "infinity" => Ok(Val::Float(f64::INFINITY)),
                    "-inf" | "-infinity" => Ok(Val::Float(f64::NEG_INFINITY)),
                    _ => unsupported(line, "float() of this string"),
                },
                Some(v) => float_of(&v, line, "float()").map(Val::Float),
                None => Ok(Val::Float(0.0)),
            },
            "print" => {
                let v = a.pos.first().cloned().unwrap_or(Val::None);
                a.pos.clear();
                a.done()?;
                Ok(v)
            }
            "torch.tensor" => {
                let data = a.get(0, "data").unwrap_or(Val::None);
                let (values, shape, any_float) = flatten(&data, line)?;
                let dtype = dtype_kw(&mut a, if any_float { DType::F32 } else { DType::I64 })?;
                let rg = requires_grad_kw(&mut a)?;
                a.done()?;
                let mut t = TensorVal::new(tensor_from(dtype, shape, &values, line)?, true);
                t.requires_grad = rg;
                Ok(Val::Tensor(Box::new(t)))
            }
            "torch.randn" | "torch.rand" | "torch.zeros" | "torch.ones" | "torch.empty" => {
                let shape = shape_of(&std::mem::take(&mut a.pos), line)?;
                let dtype = dtype_kw(&mut a, DType::F32)?;
                let rg = requires_grad_kw(&mut a)?;
                a.done()?;
                let n: usize = shape.iter().product();
                let (values, known) = match short {
                    "zeros" => (vec![0.0; n], true),
                    "ones" => (vec![1.0; n], true),
                    s => (stand_in(n, line as u64 * 7919, s == "randn"), false),
                };
                let mut t = TensorVal::new(tensor_from(dtype, shape, &values, line)?, known);
                t.requires_grad = rg;
                Ok(Val::Tensor(Box::new(t)))
            }
            "torch.randint" => {
                let ints: Vec<i64> = a
                    .pos
                    .iter()
                    .take_while(|v| matches!(v, Val::Int(_)))
                    .map(|v| int_of(v, line, "a bound"))
                    .collect::<R<_>>()?;
                let (low, high) = match ints.as_slice() {
                    [h] => (0, *h),
                    [l, h, ..] => (*l, *h),
                    [] => return unsupported(line, "torch.randint without bounds"),
                };
                let size = a
                    .pos
                    .get(ints.len())
                    .cloned()
                    .or_else(|| a.kw("size"))
                    .unwrap_or(Val::None);
                a.pos.clear();
                let shape = shape_of(&[size], line)?;
                let dtype = dtype_kw(&mut a, DType::I64)?;
                a.done()?;
                if high <= low {
                    return unsupported(line, "torch.randint with an empty range");
                }
                let n: usize = shape.iter().product();
                let values: Vec<f64> = stand_in(n, line as u64 * 104_729, false)
                    .into_iter()
                    .map(|u| {
                        (low as f64 + (u * (high - low) as f64).floor()).min((high - 1) as f64)
                    })
                    .collect();
                Ok(Val::Tensor(Box::new(TensorVal::new(
                    tensor_from(dtype, shape, &values, line)?,
                    false,
                ))))
            }
            "torch.arange" => {
                let nums: Vec<f64> = a
                    .pos
                    .iter()
                    .map(|v| float_of(v, line, "an arange bound"))
                    .collect::<R<_>>()?;
                let any_float = a.pos.iter().any(|v| matches!(v, Val::Float(_)));
                a.pos.clear();
                let (start, end, step) = match nums.as_slice() {
                    [e] => (0.0, *e, 1.0),
                    [s, e] => (*s, *e, 1.0),
                    [s, e, st] if *st != 0.0 => (*s, *e, *st),
                    _ => return unsupported(line, "this torch.arange"),
                };
                let dtype = dtype_kw(&mut a, if any_float { DType::F32 } else { DType::I64 })?;
                a.done()?;
                let n = ((end - start) / step).ceil().max(0.0) as usize;
                let values: Vec<f64> = (0..n).map(|i| start + i as f64 * step).collect();
                Ok(Val::Tensor(Box::new(TensorVal::new(
                    tensor_from(dtype, vec![n], &values, line)?,
                    true,
                ))))
            }
            "torch.full" => {
                let shape = shape_of(&[a.get(0, "size").unwrap_or(Val::None)], line)?;
                let fill = a.get(1, "fill_value").unwrap_or(Val::None);
                let v = float_of(&fill, line, "a fill value")?;
                let dtype = dtype_kw(
                    &mut a,
                    if matches!(fill, Val::Float(_)) {
                        DType::F32
                    } else {
                        DType::I64
                    },
                )?;
                let rg = requires_grad_kw(&mut a)?;
                a.done()?;
                let n: usize = shape.iter().product();
                let mut t = TensorVal::new(tensor_from(dtype, shape, &vec![v; n], line)?, true);
                t.requires_grad = rg;
                Ok(Val::Tensor(Box::new(t)))
            }
            "nn.LogSoftmax" | "nn.Softmax" => {
                let dim = dim_of(a.get(0, "dim"), line)?;
                a.done()?;
                Ok(Val::Module(if short == "LogSoftmax" {
                    Module::LogSoftmax(dim)
                } else {
                    Module::Softmax(dim)
                }))
            }
            "nn.NLLLoss" | "nn.CrossEntropyLoss" => {
                let cross_entropy = short == "CrossEntropyLoss";
                // The loss built with the tensors: PyTorch binds them as it binds any positional
                // arguments, to weight and size_average, and the legacy size_average check asks
                // for the truth of a many-element tensor.
                if let [Val::Tensor(x), Val::Tensor(y), ..] = a.pos.as_slice()
                    && y.t.numel() > 1
                {
                    let error = OpError::new(
                        crate::ErrorKind::InvalidArgument,
                        crate::error::PyType::RuntimeError,
                        "Boolean value of Tensor with more than one value is ambiguous",
                    )
                    .with_check(crate::error::Check::TensorTruth);
                    return Err(Stop::Raise {
                        error,
                        line,
                        call: Box::new(SnippetCall::loss(
                            cross_entropy,
                            line,
                            source,
                            (**x).clone(),
                            (**y).clone(),
                            None,
                        )),
                    });
                }
                let weight = match a.get(0, "weight") {
                    None | Some(Val::None) => None,
                    Some(w) => Some(tensor_of(w, line, "a weight")?),
                };
                let (reduction, ignore_index, label_smoothing) =
                    self.loss_attrs(&mut a, cross_entropy)?;
                a.done()?;
                Ok(Val::Module(Module::Loss {
                    cross_entropy,
                    weight,
                    reduction,
                    ignore_index,
                    label_smoothing,
                }))
            }
            "F.log_softmax" | "torch.log_softmax" | "F.softmax" | "torch.softmax" => {
                let x = tensor_of(
                    a.get(0, "input").unwrap_or(Val::None),
                    line,
                    "a log_softmax input",
                )?;
                let dim = dim_of(a.get(1, "dim"), line)?;
                a.done()?;
                let op = if short == "log_softmax" {
                    "log_softmax"
                } else {
                    "softmax"
                };
                self.log_softmax(*x, dim, line, source, op).map(Val::Tensor)
            }
            "F.nll_loss" | "F.cross_entropy" => {
                let cross_entropy = short == "cross_entropy";
                let input =
                    tensor_of(a.get(0, "input").unwrap_or(Val::None), line, "a loss input")?;
                let target = tensor_of(
                    a.get(1, "target").unwrap_or(Val::None),
                    line,
                    "a loss target",
                )?;
                let weight = match a.get(2, "weight") {
                    None | Some(Val::None) => None,
                    Some(w) => Some(*tensor_of(w, line, "a weight")?),
                };
                let (reduction, ignore_index, label_smoothing) =
                    self.loss_attrs(&mut a, cross_entropy)?;
                a.done()?;
                let call = SnippetCall::loss(cross_entropy, line, source, *input, *target, weight);
                self.loss(call, &reduction, ignore_index, label_smoothing)
                    .map(Val::Tensor)
            }
            "F.one_hot" => {
                let t = tensor_of(
                    a.get(0, "tensor").unwrap_or(Val::None),
                    line,
                    "a one_hot input",
                )?;
                let n = a
                    .get(1, "num_classes")
                    .map(|v| int_of(&v, line, "num_classes"))
                    .transpose()?
                    .unwrap_or(-1);
                a.done()?;
                let Some(idx) = t.t.to_i64_vec().filter(|_| t.t.dtype() == DType::I64) else {
                    let error = OpError::new(
                        crate::ErrorKind::InvalidArgument,
                        crate::error::PyType::RuntimeError,
                        "one_hot is only applicable to index tensor of type LongTensor.",
                    )
                    .with_check(crate::error::Check::OneHotDtype);
                    return Err(Stop::Raise {
                        error,
                        line,
                        call: Box::new(SnippetCall {
                            op: "one_hot",
                            line,
                            source,
                            input: *t,
                            target: None,
                            weight: None,
                            dim: None,
                        }),
                    });
                };
                let classes = if n < 0 {
                    idx.iter().max().map_or(0, |m| m + 1)
                } else {
                    n
                };
                if idx.iter().any(|&i| i < 0 || i >= classes) {
                    return unsupported(line, "F.one_hot of an index outside num_classes");
                }
                let mut values = vec![0.0; idx.len() * classes as usize];
                for (p, &i) in idx.iter().enumerate() {
                    values[p * classes as usize + i as usize] = 1.0;
                }
                let mut shape = t.t.shape().to_vec();
                shape.push(classes as usize);
                Ok(Val::Tensor(Box::new(TensorVal::new(
                    tensor_from(DType::I64, shape, &values, line)?,
                    t.known,
                ))))
            }
            other => unsupported(line, format!("{other}()")),
        }
    }

    fn loss_attrs(&mut self, a: &mut Args, cross_entropy: bool) -> R<(String, i64, f64)> {
        let line = a.line;
        for legacy in ["size_average", "reduce"] {
            if a.kw(legacy).is_some() {
                return unsupported(line, format!("the deprecated {legacy}= argument"));
            }
        }
        let reduction = match a.kw("reduction") {
            None => "mean".to_string(),
            Some(Val::Str(s)) => s,
            Some(_) => return unsupported(line, "a reduction= that is not a string"),
        };
        let ignore_index = a
            .kw("ignore_index")
            .map(|v| int_of(&v, line, "ignore_index"))
            .transpose()?
            .unwrap_or(-100);
        let ls = if cross_entropy {
            a.kw("label_smoothing")
                .map(|v| float_of(&v, line, "label_smoothing"))
                .transpose()?
                .unwrap_or(0.0)
        } else {
            0.0
        };
        Ok((reduction, ignore_index, ls))
    }

    fn method(&mut self, t: TensorVal, m: &str, mut a: Args, source: String) -> R<Val> {
        let line = a.line;
        let cast = |d: DType, t: &TensorVal| -> R<Val> {
            let mut out = TensorVal::new(
                tensor_from(d, t.t.shape().to_vec(), &t.t.to_f64_vec(), line)?,
                t.known,
            );
            out.requires_grad = t.requires_grad && d.is_float();
            Ok(Val::Tensor(Box::new(out)))
        };
        let v = match m {
            "long" => cast(DType::I64, &t),
            "float" => cast(DType::F32, &t),
            "double" => cast(DType::F64, &t),
            "half" => cast(DType::F16, &t),
            "bfloat16" => cast(DType::BF16, &t),
            "to" => match a.get(0, "dtype") {
                Some(Val::DType(d)) => cast(d, &t),
                _ => unsupported(line, ".to() of anything but a dtype"),
            },
            "detach" => Ok(Val::Tensor(Box::new(TensorVal {
                requires_grad: false,
                var: None,
                ..t
            }))),
            "requires_grad_" => Ok(Val::Tensor(Box::new(TensorVal {
                requires_grad: true,
                ..t
            }))),
            "size" => match a.get(0, "dim") {
                None => Ok(Val::Size(t.t.shape().to_vec())),
                Some(d) => {
                    let d = self.norm_dim(int_of(&d, line, "a dim")?, t.t.ndim(), line)?;
                    Ok(Val::Int(t.t.shape()[d] as i64))
                }
            },
            "view" | "reshape" => {
                let mut shape: Vec<i64> = match std::mem::take(&mut a.pos).as_slice() {
                    [Val::Tuple(v) | Val::List(v)] => v
                        .iter()
                        .map(|x| int_of(x, line, "a size"))
                        .collect::<R<_>>()?,
                    [Val::Size(s)] => s.iter().map(|&d| d as i64).collect(),
                    other => other
                        .iter()
                        .map(|x| int_of(x, line, "a size"))
                        .collect::<R<_>>()?,
                };
                let n = t.t.numel() as i64;
                let known: i64 = shape.iter().filter(|&&d| d >= 0).product();
                if let Some(i) = shape.iter().position(|&d| d == -1) {
                    if known == 0
                        || n % known != 0
                        || shape.iter().filter(|&&d| d == -1).count() > 1
                    {
                        return unsupported(
                            line,
                            format!(
                                ".{m}() to a shape that does not fit (nllspec does not model that error)"
                            ),
                        );
                    }
                    shape[i] = n / known;
                }
                if shape.iter().any(|&d| d < 0) || shape.iter().product::<i64>() != n {
                    return unsupported(
                        line,
                        format!(
                            ".{m}() to a shape that does not fit (nllspec does not model that error)"
                        ),
                    );
                }
                let shape: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
                Ok(Val::Tensor(Box::new(TensorVal {
                    t: tensor_from(t.t.dtype(), shape, &t.t.to_f64_vec(), line)?,
                    var: None,
                    ..t
                })))
            }
            "permute" | "transpose" | "movedim" => {
                let n = t.t.ndim();
                let ints: Vec<i64> = match std::mem::take(&mut a.pos).as_slice() {
                    [Val::Tuple(v) | Val::List(v)] => v
                        .iter()
                        .map(|x| int_of(x, line, "a dim"))
                        .collect::<R<_>>()?,
                    other => other
                        .iter()
                        .map(|x| int_of(x, line, "a dim"))
                        .collect::<R<_>>()?,
                };
                let dims: Vec<usize> = ints
                    .iter()
                    .map(|&d| self.norm_dim(d, n, line))
                    .collect::<R<_>>()?;
                let order: Vec<usize> = match (m, dims.as_slice()) {
                    ("permute", d) if d.len() == n && (0..n).all(|i| d.contains(&i)) => d.to_vec(),
                    ("transpose", [x, y]) => (0..n)
                        .map(|i| {
                            if i == *x {
                                *y
                            } else if i == *y {
                                *x
                            } else {
                                i
                            }
                        })
                        .collect(),
                    ("movedim", [from, to]) => {
                        let mut o: Vec<usize> = (0..n).filter(|i| i != from).collect();
                        o.insert(*to, *from);
                        o
                    }
                    _ => return unsupported(line, format!("this .{m}()")),
                };
                Ok(Val::Tensor(Box::new(TensorVal {
                    t: permuted(&t.t, &order, line)?,
                    var: None,
                    ..t
                })))
            }
            "unsqueeze" | "squeeze" => {
                let mut shape = t.t.shape().to_vec();
                match (m, a.get(0, "dim")) {
                    ("unsqueeze", Some(d)) => {
                        let d = self.norm_dim(int_of(&d, line, "a dim")?, shape.len() + 1, line)?;
                        shape.insert(d, 1);
                    }
                    ("squeeze", None) => shape.retain(|&s| s != 1),
                    ("squeeze", Some(d)) if !shape.is_empty() => {
                        let d = self.norm_dim(int_of(&d, line, "a dim")?, shape.len(), line)?;
                        if shape[d] == 1 {
                            shape.remove(d);
                        }
                    }
                    _ => return unsupported(line, format!("this .{m}()")),
                }
                Ok(Val::Tensor(Box::new(TensorVal {
                    t: tensor_from(t.t.dtype(), shape, &t.t.to_f64_vec(), line)?,
                    var: None,
                    ..t
                })))
            }
            "argmax" => {
                let dim = dim_of(a.get(0, "dim"), line)?;
                let v = t.t.to_f64_vec();
                let (shape, values) = match dim {
                    None => (
                        vec![],
                        vec![
                            v.iter()
                                .enumerate()
                                .fold(
                                    (0, f64::NEG_INFINITY),
                                    |b, (i, &x)| if x > b.1 { (i, x) } else { b },
                                )
                                .0 as f64,
                        ],
                    ),
                    Some(d) => {
                        let d = self.norm_dim(d, t.t.ndim(), line)?;
                        let sh = t.t.shape();
                        let (outer, len, inner) = (
                            sh[..d].iter().product::<usize>(),
                            sh[d],
                            sh[d + 1..].iter().product::<usize>(),
                        );
                        let mut out = Vec::with_capacity(outer * inner);
                        for o in 0..outer {
                            for i in 0..inner {
                                let best = (0..len).fold(0, |b, k| {
                                    if v[(o * len + k) * inner + i] > v[(o * len + b) * inner + i] {
                                        k
                                    } else {
                                        b
                                    }
                                });
                                out.push(best as f64);
                            }
                        }
                        let mut s = sh.to_vec();
                        s.remove(d);
                        (s, out)
                    }
                };
                Ok(Val::Tensor(Box::new(TensorVal::new(
                    tensor_from(DType::I64, shape, &values, line)?,
                    t.known,
                ))))
            }
            "log_softmax" | "softmax" => {
                let dim = dim_of(a.get(0, "dim"), line)?;
                a.done()?;
                let op = if m == "softmax" {
                    "softmax"
                } else {
                    "log_softmax"
                };
                return self.log_softmax(t, dim, line, source, op).map(Val::Tensor);
            }
            "log" => {
                let dtype = if t.t.dtype().is_float() {
                    t.t.dtype()
                } else {
                    DType::F32
                };
                let v: Vec<f64> = t.t.to_f64_vec().iter().map(|x| x.ln()).collect();
                Ok(Val::Tensor(Box::new(TensorVal {
                    t: tensor_from(dtype, t.t.shape().to_vec(), &v, line)?,
                    var: None,
                    origin: Origin::Plain,
                    ..t
                })))
            }
            other => unsupported(line, format!("the tensor method .{other}()")),
        }?;
        a.done()?;
        Ok(v)
    }

    fn norm_dim(&self, d: i64, ndim: usize, line: usize) -> R<usize> {
        let n = ndim.max(1) as i64;
        if d < -n || d >= n {
            return unsupported(
                line,
                "a dim out of range outside log_softmax and the losses (nllspec does not model that error)",
            );
        }
        Ok(if d < 0 { (d + n) as usize } else { d as usize })
    }

    /// log_softmax, or softmax (its exponential), with the warnings of a suspicious dim.
    fn log_softmax(
        &mut self,
        x: TensorVal,
        dim: Option<i64>,
        line: usize,
        source: String,
        op: &'static str,
    ) -> R<Box<TensorVal>> {
        let call = SnippetCall {
            op,
            line,
            source,
            input: x,
            target: None,
            weight: None,
            dim,
        };
        let x = &call.input;
        if op == "softmax" && !x.t.dtype().is_float() {
            return unsupported(line, "softmax of an integer tensor");
        }
        let out = match ops::log_softmax::log_softmax_with_grad(&x.t, dim, None) {
            Ok(o) => o.output,
            Err(error) => {
                return Err(Stop::Raise {
                    error,
                    line,
                    call: Box::new(call),
                });
            }
        };
        let resolved = dim.unwrap_or_else(|| ops::log_softmax::implicit_dim(x.t.ndim()));
        let n = x.t.ndim().max(1) as i64;
        let d = if resolved < 0 {
            (resolved + n) as usize
        } else {
            resolved as usize
        };
        if dim.is_none() {
            self.warn(line, advice::implicit_dim(op, x.t.shape(), d));
        }
        if x.t.ndim() > 0 && x.t.shape()[d] == 1 && x.t.numel() > 0 {
            self.warn(line, advice::size_one_dim(op, x.t.shape(), d));
        }
        let t = if op == "softmax" {
            let v: Vec<f64> = out.to_f64_vec().iter().map(|l| l.exp()).collect();
            tensor_from(out.dtype(), out.shape().to_vec(), &v, line)?
        } else {
            out
        };
        let origin = if op == "softmax" {
            Origin::Softmax { dim: d }
        } else {
            Origin::LogSoftmax { dim: d }
        };
        Ok(Box::new(TensorVal {
            t,
            known: x.known,
            requires_grad: x.requires_grad,
            origin,
            var: None,
            expr: None,
        }))
    }

    /// Runs a loss the snippet called (its weight is the call's own).
    fn loss(
        &mut self,
        call: SnippetCall,
        reduction: &str,
        ignore_index: i64,
        ls: f64,
    ) -> R<Box<TensorVal>> {
        let line = call.line;
        let raise = |error: OpError, call: SnippetCall| {
            Err(Stop::Raise {
                error,
                line,
                call: Box::new(call),
            })
        };
        let r = match Reduction::parse(reduction) {
            Ok(r) => r,
            Err(e) => return raise(e, call),
        };
        let Some(target) = call.target.as_ref() else {
            return unsupported(line, "a loss without a target");
        };
        let (x, t) = (&call.input, &target.t);
        let weight = call.weight.as_ref().map(|w| &w.t);
        let result = if call.op == "cross_entropy" {
            ops::cross_entropy::cross_entropy_with_grad(&x.t, t, weight, r, ignore_index, ls, None)
        } else {
            ops::nll_loss::nll_loss_with_grad(&x.t, t, weight, r, ignore_index, None)
        };
        let out = match result {
            Ok(o) => o.output,
            Err(e) => return raise(e, call),
        };
        for w in advice::loss_warnings(&call) {
            self.warn(line, w);
        }
        let known = x.known && target.known;
        Ok(Box::new(TensorVal {
            t: out,
            known,
            requires_grad: x.requires_grad,
            origin: Origin::Plain,
            var: None,
            expr: None,
        }))
    }
}

fn stmt_name(s: &Stmt) -> &'static str {
    match s {
        Stmt::FunctionDef(_) | Stmt::AsyncFunctionDef(_) => "def",
        Stmt::ClassDef(_) => "class",
        Stmt::For(_) | Stmt::AsyncFor(_) => "for",
        Stmt::While(_) => "while",
        Stmt::If(_) => "if",
        Stmt::With(_) | Stmt::AsyncWith(_) => "with",
        Stmt::Try(_) | Stmt::TryStar(_) => "try",
        Stmt::Return(_) => "return",
        Stmt::AugAssign(_) => "an augmented assignment",
        Stmt::AnnAssign(_) => "an annotated assignment",
        Stmt::Delete(_) => "del",
        _ => "a statement",
    }
}

/// `t` with its dimensions in `order` (`permute`): element `[i0, i1, ...]` of the result is
/// element `[i_order^-1...]` of `t`.
fn permuted(t: &Tensor, order: &[usize], line: usize) -> R<Tensor> {
    let shape = t.shape();
    let new_shape: Vec<usize> = order.iter().map(|&d| shape[d]).collect();
    let strides: Vec<usize> = (0..shape.len())
        .map(|d| shape[d + 1..].iter().product())
        .collect();
    let v = t.to_f64_vec();
    let mut out = Vec::with_capacity(v.len());
    let mut index = vec![0usize; new_shape.len()];
    for _ in 0..v.len() {
        out.push(
            v[index
                .iter()
                .zip(order)
                .map(|(i, &d)| i * strides[d])
                .sum::<usize>()],
        );
        for k in (0..index.len()).rev() {
            index[k] += 1;
            if index[k] < new_shape[k] {
                break;
            }
            index[k] = 0;
        }
    }
    tensor_from(t.dtype(), new_shape, &out, line)
}
