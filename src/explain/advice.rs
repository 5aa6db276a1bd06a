//! What `nllspec explain` says about a snippet: why PyTorch rejected it, in the snippet's own
//! shapes and values, the corrected line, and warnings for mistakes PyTorch lets through.

use super::value::{Origin, TensorVal};
use crate::error::{Check, ErrorKind, OpError};
use crate::tensor::fmt_shape;

/// One call of an op, with what advice needs to talk about it.
#[derive(Debug, Clone)]
pub struct SnippetCall {
    pub op: &'static str,
    pub line: usize,
    /// The call's source text.
    pub source: String,
    pub input: TensorVal,
    pub target: Option<TensorVal>,
    /// A loss's class weights, as the snippet gave them.
    pub weight: Option<TensorVal>,
    pub dim: Option<i64>,
}

impl SnippetCall {
    /// A call of one of the losses (cross_entropy, else nll_loss).
    pub fn loss(
        cross_entropy: bool,
        line: usize,
        source: String,
        input: TensorVal,
        target: TensorVal,
        weight: Option<TensorVal>,
    ) -> SnippetCall {
        let op = if cross_entropy {
            "cross_entropy"
        } else {
            "nll_loss"
        };
        SnippetCall {
            op,
            line,
            source,
            input,
            target: Some(target),
            weight,
            dim: None,
        }
    }
}

fn name(op: &str) -> &'static str {
    match op {
        "nll_loss" => "NLLLoss",
        "cross_entropy" => "CrossEntropyLoss",
        "softmax" => "softmax",
        "one_hot" => "F.one_hot",
        _ => "log_softmax",
    }
}

/// The class dimension of a loss input: 0 for an unbatched `(C,)` input, else 1.
fn class_dim(ndim: usize) -> usize {
    if ndim <= 1 { 0 } else { 1 }
}

fn shape(t: &TensorVal) -> String {
    fmt_shape(t.t.shape())
}

/// The values of a small known integer tensor, as Python writes them.
fn values(t: &TensorVal) -> Option<String> {
    let v = t.t.to_i64_vec()?;
    (t.known && v.len() <= 12).then(|| match t.t.ndim() {
        0 => v[0].to_string(),
        _ => format!(
            "[{}]",
            v.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
        ),
    })
}

/// The class a known one-hot row stands for (a 1-d 0/1 tensor with one 1).
fn one_hot_index(t: &TensorVal) -> Option<usize> {
    let v = t.t.to_f64_vec();
    let ones = v.iter().filter(|&&x| x == 1.0).count();
    (t.known
        && t.t.ndim() == 1
        && v.len() > 1
        && ones == 1
        && v.iter().all(|&x| x == 0.0 || x == 1.0))
    .then(|| v.iter().position(|&x| x == 1.0))
    .flatten()
}

/// The corrected line for `t` made as `replacement` (a tensor expression): its assignment
/// (`target = torch.tensor(0)`), or the failing line with `t`'s inline expression replaced.
fn reassign(t: &TensorVal, replacement: &str, source: &str, line: usize) -> Option<String> {
    if let Some((var, _)) = &t.var {
        return Some(format!("{var} = {replacement}"));
    }
    let text = source.lines().nth(line.saturating_sub(1))?.trim();
    let expr = t.expr.as_deref()?;
    text.contains(expr)
        .then(|| text.replacen(expr, replacement, 1))
}

/// The reduction a mistyped one meant: `avg` and `average` are `mean`; otherwise the closest
/// by edit distance.
pub(super) fn nearest_reduction(given: &str) -> &'static str {
    let g = given.to_ascii_lowercase();
    if ["avg", "average", "elementwise_mean", "mean_reduce"].contains(&g.as_str()) {
        return "mean";
    }
    let distance = |a: &str, b: &str| {
        let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for i in 1..=a.len() {
            let mut prev = row[0];
            row[0] = i;
            for j in 1..=b.len() {
                let here = row[j];
                row[j] = (row[j] + 1)
                    .min(row[j - 1] + 1)
                    .min(prev + usize::from(a[i - 1] != b[j - 1]));
                prev = here;
            }
        }
        row[b.len()]
    };
    ["none", "mean", "sum"]
        .into_iter()
        .min_by_key(|r| distance(&g, r))
        .unwrap_or("mean")
}

/// The line that makes the loss, with `kwarg` added to its arguments: the functional call on the
/// failing line (`F.cross_entropy(out, y)`), or the module's construction (`nn.CrossEntropyLoss()`).
fn with_kwarg(call: &SnippetCall, source: &str, kwarg: &str) -> Option<String> {
    let (functional, module) = match call.op {
        "nll_loss" => ("nll_loss(", "NLLLoss("),
        _ => ("cross_entropy(", "CrossEntropyLoss("),
    };
    let insert = |line: &str, name: &str| -> Option<String> {
        let open = line.find(name)? + name.len();
        let mut depth = 1;
        for (i, ch) in line[open..].char_indices() {
            match ch {
                '(' | '[' => depth += 1,
                ')' | ']' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                let at = open + i;
                let sep = if line[open..at].trim().is_empty() {
                    ""
                } else {
                    ", "
                };
                return Some(
                    format!("{}{sep}{kwarg}{}", &line[..at], &line[at..])
                        .trim()
                        .to_string(),
                );
            }
        }
        None
    };
    let failing = source
        .lines()
        .nth(call.line.saturating_sub(1))
        .unwrap_or("");
    insert(failing, functional)
        .or_else(|| insert(failing, module))
        .or_else(|| {
            source
                .lines()
                .find(|l| l.contains(module))
                .and_then(|l| insert(l, module))
        })
}

/// How the snippet names `t`: its variable, or the expression that made it inline.
fn var_or(t: &TensorVal, fallback: &str) -> String {
    t.var
        .as_ref()
        .map(|(v, _)| v.clone())
        .or_else(|| t.expr.clone())
        .unwrap_or_else(|| fallback.to_string())
}

pub fn implicit_dim(op: &str, s: &[usize], d: usize) -> String {
    let mut w = format!(
        "UserWarning: Implicit dimension choice for {op} has been deprecated. Change the call to include dim=X as an \
         argument. (For this {} input PyTorch picks dim={d}",
        fmt_shape(s)
    );
    if s.len() == 3 && d == 0 {
        w.push_str(": for (N, C, L) data that is the batch, not the classes");
    }
    w.push(')');
    w
}

pub fn size_one_dim(op: &str, s: &[usize], d: usize) -> String {
    let every = if op == "softmax" { "1" } else { "0" };
    format!(
        "{op} over dim={d}, which has size 1 in this {} input: every output is exactly {every}, whatever the input. \
         The classes are dim=1 of an (N, C) batch, dim=0 of an unbatched (C,) input",
        fmt_shape(s)
    )
}

/// Mistakes a loss call lets through.
pub fn loss_warnings(call: &SnippetCall) -> Vec<String> {
    let x = &call.input;
    let mut out = Vec::new();
    if x.t.ndim() == 0 {
        return out;
    }
    let cd = class_dim(x.t.ndim());
    match (x.origin, call.op) {
        (Origin::LogSoftmax { dim }, _) if dim != cd => out.push(format!(
            "the log_softmax feeding {} normalised dim={dim}, but {} reads the classes from dim={cd} of this {} \
             input: over the classes its log-probabilities do not sum to 1 (use log_softmax(dim={cd}))",
            call.op,
            call.op,
            shape(x)
        )),
        (Origin::Softmax { .. }, "cross_entropy") => out.push(
            "cross_entropy's input is a softmax output, but cross_entropy applies log_softmax itself: a double \
             softmax, which flattens the scores and slows learning. Pass the raw scores (logits)"
                .to_string(),
        ),
        (Origin::Softmax { .. }, "nll_loss") => out.push(
            "nll_loss's input is a softmax output (probabilities), but nll_loss wants log-probabilities: use \
             log_softmax instead of softmax"
                .to_string(),
        ),
        // random values: decided from the operation that made them, as the values are not known
        (Origin::Plain, "nll_loss") if !x.known && x.t.dtype().is_float() && x.t.numel() > 0 => out.push(format!(
            "nll_loss expects log-probabilities, but this input was not made by log_softmax: raw scores give a loss \
             that can be negative and does not train the model as intended. Apply log_softmax(dim={cd}) first, or \
             use cross_entropy on the raw scores"
        )),
        (Origin::Plain, "nll_loss") if x.known && x.t.dtype().is_float() && x.t.numel() > 0 => {
            let v = x.t.to_f64_vec();
            let max = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let sh = x.t.shape();
            let (len, inner) = (sh[cd], sh[cd + 1..].iter().product::<usize>());
            let lane_sum = |o: usize, i: usize| (0..len).map(|k| v[(o * len + k) * inner + i].exp()).sum::<f64>();
            if max > 0.0 {
                out.push(format!(
                    "nll_loss expects log-probabilities (at most 0, their exponentials summing to 1 over the \
                     classes), but this input has positive values (up to {max}): feed it log_softmax's output, or \
                     use cross_entropy on the raw scores"
                ));
            } else if let Some(s) = (0..v.len() / (len * inner).max(1))
                .flat_map(|o| (0..inner).map(move |i| (o, i)))
                .map(|(o, i)| lane_sum(o, i))
                .find(|s| (s - 1.0).abs() > 1e-3)
            {
                out.push(format!(
                    "nll_loss expects log-probabilities, but the exponentials of this input sum to {s:.4} over the \
                     classes of a sample, not 1: feed it log_softmax's output, or use cross_entropy on the raw scores"
                ));
            }
        }
        _ => {}
    }
    out
}

/// Why PyTorch rejected the call, in the snippet's own terms, and the corrected line.
pub fn explain(e: &OpError, call: &SnippetCall, source: &str) -> (String, Option<String>) {
    let x = &call.input;
    let op = name(call.op);
    let cd = class_dim(x.t.ndim());
    let classes = x.t.shape().get(cd).copied();
    let target = call.target.as_ref();
    let tdesc = |t: &TensorVal| values(t).unwrap_or_else(|| format!("of shape {}", shape(t)));
    match e.kind {
        ErrorKind::TargetShape if matches!(e.check, Check::UnbatchedTargetSize { .. }) => {
            let (Some(t), Some(c)) = (target, classes) else {
                return generic(e);
            };
            let n = t.t.numel();
            let mut why = format!(
                "Your input has shape {}: one sample with C = {c} class scores (a 1-D input is unbatched, its classes \
                 are dimension 0). {op} then wants that one sample's class index: a 0-d target such as \
                 torch.tensor(1), or one with a single element. The target {} has {n} entries: {op} reads them as {n} \
                 class indices, one per sample, but there is only one sample.",
                shape(x),
                tdesc(t)
            );
            if let Some(k) = one_hot_index(t) {
                why.push_str(&format!(
                    " It looks like a one-hot row, meant as the label: {op} never takes one-hot vectors, it takes the \
                     class index (here {k}, the position of the 1)"
                ));
                if n != c {
                    why.push_str(&format!(
                        ", and a one-hot row has one entry per class: {n} here, but C = {c}"
                    ));
                }
                why.push('.');
                if call.op == "cross_entropy" {
                    why.push_str(&format!(
                        " (CrossEntropyLoss also takes a float target of the input's shape as class probabilities: a \
                         one-hot row of {c} floats.)"
                    ));
                }
                return (
                    why,
                    reassign(t, &format!("torch.tensor({k})"), source, call.line),
                );
            }
            why.push_str(&format!(
                " If the {n} entries are the labels of {n} samples, the input needs a batch dimension: shape ({n}, {c})."
            ));
            (
                why,
                Some(format!(
                    "{} has shape ({n}, {c}), e.g. torch.randn({n}, {c})",
                    var_or(x, "the input")
                )),
            )
        }
        ErrorKind::TargetShape if matches!(e.check, Check::MultiTarget { .. }) => {
            let Some(t) = target else { return generic(e) };
            let why = format!(
                "For an input of shape {} ({} samples, C = {} classes) the target holds one class index per sample: \
                 shape ({},). This target has shape {}: rows of one-hot vectors are not class indices.",
                shape(x),
                x.t.shape()[0],
                classes.unwrap_or(0),
                x.t.shape()[0],
                shape(t)
            );
            let fix = reassign(
                t,
                &format!("{}.argmax(dim=1)", var_or(t, "target")),
                source,
                call.line,
            );
            (why, fix)
        }
        ErrorKind::TargetShape => {
            let Some(t) = target else { return generic(e) };
            let mut expect: Vec<usize> = x.t.shape().to_vec();
            if expect.len() > 1 {
                expect.remove(1);
            }
            // a segmentation mask with a channel dimension: (N, 1, H, W) for an (N, C, H, W) input
            let ts = t.t.shape();
            if ts.len() == x.t.ndim()
                && ts.len() >= 3
                && ts[1] == 1
                && ts[0] == x.t.shape()[0]
                && ts[2..] == x.t.shape()[2..]
            {
                let tv = var_or(t, "target");
                return (
                    format!(
                        "The target {} is a mask with a channel dimension of size 1, laid out like the input {}. {op} takes one class index per position, without a channel dimension: shape {}. Remove it: {tv}.squeeze(1).",
                        shape(t),
                        shape(x),
                        fmt_shape(&expect)
                    ),
                    reassign(t, &format!("{tv}.squeeze(1)"), source, call.line),
                );
            }
            // a sequence model's (N, T, C) logits beside an (N, T) target: the classes are last
            let dims = x.t.ndim();
            if dims >= 3 && t.t.shape() == &x.t.shape()[..dims - 1] {
                let moved = if dims == 3 {
                    ".permute(0, 2, 1)"
                } else {
                    ".movedim(-1, 1)"
                };
                let c = x.t.shape()[dims - 1];
                return (
                    format!(
                        "The input {} looks like a sequence model's logits, (N, T, C) with C = {c} classes last, beside a target {} of one class index per position. {op} wants the classes in dimension 1: (N, C, T), and reads this input as C = {} classes at {} positions. Move the class dimension: {}{moved}.",
                        shape(x),
                        shape(t),
                        x.t.shape()[1],
                        x.t.shape()[2..].iter().product::<usize>(),
                        var_or(x, "logits")
                    ),
                    reassign(
                        x,
                        &format!("{}{moved}", var_or(x, "logits")),
                        source,
                        call.line,
                    ),
                );
            }
            // a one-hot mask laid out channels last: (N, H, W, C) for an (N, C, H, W) input
            let xs = x.t.shape();
            if ts.len() == xs.len()
                && ts.len() >= 3
                && ts[0] == xs[0]
                && ts[1..ts.len() - 1] == xs[2..]
                && ts[ts.len() - 1] == xs[1]
            {
                let tv = var_or(t, "target");
                return (
                    format!(
                        "The target {} has one entry per class in its last dimension (C = {}), laid out channels last: \
                         it looks like a one-hot mask. {op} takes one class index per position, shape {}: the index of \
                         each position's 1 is {tv}.argmax(dim=-1).",
                        shape(t),
                        xs[1],
                        fmt_shape(&expect)
                    ),
                    reassign(t, &format!("{tv}.argmax(dim=-1)"), source, call.line),
                );
            }
            let mut why = format!(
                "For an input of shape {} the classes are dimension 1 (C = {}), and the target holds a class index \
                 for every other position: shape {}. This target has shape {}.",
                shape(x),
                classes.unwrap_or(0),
                fmt_shape(&expect),
                shape(t)
            );
            // the same layout at another resolution: which side is wrong is not knowable, so no fix
            if ts.len() == expect.len()
                && ts.len() >= 2
                && ts[0] == expect[0]
                && ts[1..] != expect[1..]
            {
                let size = ts[1..]
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                let mode = if ts.len() == 3 { "bilinear" } else { "linear" };
                let scores = xs[2..]
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                why.push_str(&format!(
                    " The layouts agree but the spatial sizes differ: ({scores}) for the scores, ({size}) for the target. \
                     Check which is intended: a model whose output is at a lower resolution than its labels needs its \
                     scores resized to the target's size (F.interpolate({}, size=({size}), mode='{mode}', \
                     align_corners=False)); masks that were not resized with their images need resizing with \
                     mode='nearest' (never an interpolating mode: class indices are not quantities).",
                    var_or(x, "logits")
                ));
            }
            (why, None)
        }
        ErrorKind::BatchSizeMismatch => {
            let Some(t) = target else { return generic(e) };
            let n = x.t.shape().first().copied().unwrap_or(0);
            let m = t.t.shape().first().copied().unwrap_or(0);
            // a spatial target without its batch dimension: (H, W) beside an (N, C, H, W) input
            let xs = x.t.shape();
            if xs.len() >= 3 && t.t.shape() == &xs[2..] {
                let tv = var_or(t, "target");
                let why = format!(
                    "The input {} is a batch of N = {n} with C = {} class scores at each of {} positions; the target {} \
                     has those positions but no batch dimension, so {op} reads its first dimension ({m}) as the batch.",
                    shape(x),
                    xs[1],
                    fmt_shape(&xs[2..]),
                    shape(t)
                );
                if n == 1 {
                    return (
                        format!("{why} Add the batch dimension of one: {tv}.unsqueeze(0)."),
                        reassign(t, &format!("{tv}.unsqueeze(0)"), source, call.line),
                    );
                }
                return (
                    format!(
                        "{why} Each of the {n} samples needs its own target: stack them into shape ({n}, {}).",
                        xs[2..]
                            .iter()
                            .map(|d| d.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    None,
                );
            }
            let mut why = format!(
                "The input {} holds N = {n} samples (dimension 0) of C = {} class scores; the target {} holds {m} class \
                 indices, one per sample. N and the target's length must agree.",
                shape(x),
                classes.unwrap_or(0),
                tdesc(t)
            );
            if let Some(k) = one_hot_index(t) {
                why.push_str(&format!(
                    " The target looks like a one-hot row: {op} takes the class index instead (here {k})."
                ));
                return (
                    why,
                    reassign(t, &format!("torch.tensor([{k}])"), source, call.line),
                );
            }
            (why, None)
        }
        ErrorKind::TargetOutOfBounds => {
            let c = classes.unwrap_or(0);
            let holds = match e.check {
                Check::TargetOutOfBounds { target } => {
                    format!(" The target holds {target}, outside that range.")
                }
                _ => String::new(),
            };
            let head = format!(
                "Class indices run from 0 to C - 1 = {} (C = {c}, the size of dimension {cd} of the input {}).{holds}",
                c as i64 - 1,
                shape(x),
            );
            let labels = target
                .filter(|t| t.known)
                .and_then(|t| t.t.to_i64_vec().map(|v| (t, v)));
            let Some((t, v)) = labels else {
                return (
                    head + " Either a label is wrong, or the model needs more outputs (classes start at 0, not 1).",
                    None,
                );
            };
            let (lo, hi) = (
                v.iter().copied().min().unwrap_or(0),
                v.iter().copied().max().unwrap_or(0),
            );
            let c = c as i64;
            if c == 1 && v.iter().all(|&k| k == 0 || k == 1) {
                return (
                    head + &format!(
                        " The labels are 0 and 1, a two-class problem, but the model gives one score per sample: {op} needs one score per class, two here (an output layer of 2 units, e.g. nn.Linear(..., 2)). With one output per sample, the loss for 0/1 labels is nn.BCEWithLogitsLoss on {}.squeeze(1) and float labels.",
                        var_or(x, "output")
                    ),
                    None,
                );
            }
            if lo >= 1 && hi == c {
                let tv = var_or(t, "target");
                return (
                    head + &format!(
                        " The labels run from 1 to {c}: numbered from 1, where {op} numbers classes from 0. Subtract 1 ({tv} - 1), or give the model {} outputs if class {c} is real.",
                        c + 1
                    ),
                    reassign(t, &format!("{tv} - 1"), source, call.line),
                );
            }
            let bad: Vec<i64> = v.iter().copied().filter(|&k| k < 0 || k >= c).collect();
            if lo < 0 && bad.iter().all(|&k| k == lo) {
                return (
                    head + &format!(
                        " Every label outside 0..{} is {lo}: that looks like padding (positions to leave out). {op} leaves out the targets equal to its ignore_index, -100 by default: pass ignore_index={lo}.",
                        c - 1
                    ),
                    with_kwarg(call, source, &format!("ignore_index={lo}")),
                );
            }
            (
                head + &format!(
                    " The labels run from {lo} to {hi}, and the model has {c} outputs, classes 0 to {}: either the labels are wrong, or the model needs {} outputs.",
                    c - 1,
                    hi + 1
                ),
                None,
            )
        }
        ErrorKind::TargetDtype => {
            let Some(t) = target else { return generic(e) };
            if matches!(e.check, Check::ProbabilityTargetDtype { .. }) {
                return (
                    format!(
                        "The target has the input's shape {}, so {op} reads it as class probabilities, which must be \
                         floating point; it is {}. For probabilities use .float(); for class indices pass one index per \
                         sample (shape without the class dimension), e.g. {}.argmax(dim={cd}).",
                        shape(x),
                        t.t.dtype().torch_name(),
                        var_or(t, "target")
                    ),
                    reassign(
                        t,
                        &format!("{}.float()", var_or(t, "target")),
                        source,
                        call.line,
                    ),
                );
            }
            (
                format!(
                    "{op} takes class indices as int64 (torch.long) or uint8; this target is {}. Labels stored as \
                     floats convert with .long().",
                    t.t.dtype().name()
                ),
                reassign(
                    t,
                    &format!("{}.long()", var_or(t, "target")),
                    source,
                    call.line,
                ),
            )
        }
        ErrorKind::InputRank => {
            let why = "A 0-d input has no class dimension: a single sample's scores are a 1-D tensor of C entries."
                .to_string();
            match target {
                // one sample of one class, as the caller wrote it: give the score its class dimension
                Some(t) if t.t.ndim() == 0 => {
                    let xv = var_or(x, "input");
                    (
                        why + &format!(
                            " Give this score a class dimension ({xv}.unsqueeze(0): C = 1), or pass all C scores of the sample."
                        ),
                        reassign(x, &format!("{xv}.unsqueeze(0)"), source, call.line),
                    )
                }
                _ => (why, None),
            }
        }
        ErrorKind::DimOutOfRange => {
            let k = x.t.ndim().max(1) as i64;
            let why = format!(
                "The input has shape {}, so dim must be in [{}, {}]. The classes are dim={cd} ({}).",
                shape(x),
                -k,
                k - 1,
                if x.t.ndim() <= 1 {
                    "an unbatched (C,) input"
                } else {
                    "dim 1 of an (N, C, ...) batch"
                }
            );
            // the line that chose the dim: the call itself, or where its module was built
            let fix = call.dim.and_then(|d| {
                let from = format!("dim={d}");
                let chose = |l: &&str| l.contains(&from) && l.contains("oftmax");
                let line = source
                    .lines()
                    .skip(call.line.saturating_sub(1))
                    .take(1)
                    .find(chose)
                    .or_else(|| source.lines().find(chose));
                line.map(|l| l.trim().replace(&from, &format!("dim={cd}")))
            });
            (why, fix)
        }
        ErrorKind::InputDtype => (
            format!(
                "{op} computes in floating point; this input is {}. Convert the scores with .float().",
                x.t.dtype().name()
            ),
            reassign(
                x,
                &format!("{}.float()", var_or(x, "input")),
                source,
                call.line,
            ),
        ),
        ErrorKind::WeightShape => {
            let got = call.weight.as_ref().map_or(String::new(), |w| {
                format!("; this one has shape {}", shape(w))
            });
            (
                format!(
                    "The weight gives one factor per class: a 1-D tensor of C = {} entries, in class order{got}. Which \
                     class a missing factor belongs to only the snippet's author knows, so there is no one-line fix: \
                     give one weight per class.",
                    classes.unwrap_or(0)
                ),
                None,
            )
        }
        ErrorKind::DtypeMismatch => {
            let Some(w) = call.weight.as_ref() else {
                return ("The weight must have the input's dtype.".into(), None);
            };
            let wv = var_or(w, "weight");
            let cast = if x.t.dtype() == crate::tensor::DType::F32 {
                format!("{wv}.float()")
            } else {
                format!("{wv}.to({}.dtype)", var_or(x, "input"))
            };
            let integers = if w.t.dtype().is_float() {
                ""
            } else {
                " (class weights written as integers, torch.tensor([1, 2, 3]), are int64)"
            };
            let why = format!(
                "The weight is {}, the input {}: {op} needs the weight in the input's dtype{integers}. Convert it: \
                 {cast}.",
                w.t.dtype().name(),
                x.t.dtype().name()
            );
            // the line that made the weight: its assignment, or where it was written inline
            let fix = match &w.var {
                Some((var, _)) => Some(format!("{var} = {cast}")),
                None => w.expr.as_deref().and_then(|e| {
                    source
                        .lines()
                        .find(|l| l.contains(e))
                        .map(|l| l.trim().replacen(e, &cast, 1))
                }),
            };
            (why, fix)
        }

        ErrorKind::InvalidReduction => {
            let Check::Reduction { given } = &e.check else {
                return generic(e);
            };
            let given = given.as_str();
            let nearest = nearest_reduction(given);
            let fix = source.lines().find_map(|l| {
                let (d, s) = (format!("\"{given}\""), format!("'{given}'"));
                l.contains(&d)
                    .then(|| l.trim().replace(&d, &format!("\"{nearest}\"")))
                    .or_else(|| {
                        l.contains(&s)
                            .then(|| l.trim().replace(&s, &format!("'{nearest}'")))
                    })
            });
            (
                format!(
                    "reduction is one of 'none', 'mean' (the default) and 'sum'; '{given}' is nearest to '{nearest}'."
                ),
                fix,
            )
        }
        ErrorKind::InvalidArgument if e.check == Check::TensorTruth => {
            let module = if call.op == "nll_loss" {
                "nn.NLLLoss"
            } else {
                "nn.CrossEntropyLoss"
            };
            let (xv, tv) = (
                var_or(x, "input"),
                target.map_or("target".into(), |t| var_or(t, "target")),
            );
            let why = format!(
                "{module}(...) builds the loss, it does not compute it: its arguments are options, and PyTorch binds the two tensors by position to weight ({xv}) and size_average ({tv}). The deprecated size_average check then asks whether {tv}, {} values, is true, which no tensor of more than one value can say. Build the loss, then call it: {module}()({xv}, {tv}).",
                target.map_or(0, |t| t.t.numel())
            );
            let text = source
                .lines()
                .nth(call.line.saturating_sub(1))
                .unwrap_or("")
                .trim();
            let fix = text.find(&format!("{module}(")).map(|at| {
                let open = at + module.len();
                text[..open].to_string() + "()" + &text[open..]
            });
            (why, fix)
        }
        ErrorKind::InvalidArgument if matches!(e.check, Check::LabelSmoothingRange { .. }) => {
            let why = "label_smoothing is the probability mass spread over all classes: a number from 0.0 to 1.0.";
            // the value as the snippet wrote it: a whole number from 2 to 100 reads as a percentage
            let written = source.lines().find_map(|l| {
                let at = l.find("label_smoothing=")? + "label_smoothing=".len();
                let text: String = l[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.')
                    .collect();
                Some((l.trim(), text))
            });
            match written {
                Some((line, text)) if text.parse::<u32>().is_ok_and(|p| (2..=100).contains(&p)) => {
                    let share = f64::from(text.parse::<u32>().unwrap_or(0)) / 100.0;
                    (
                        format!(
                            "{why} {text} reads as a percentage: {text}% of the mass is label_smoothing={share:?}."
                        ),
                        Some(line.replacen(
                            &format!("label_smoothing={text}"),
                            &format!("label_smoothing={share:?}"),
                            1,
                        )),
                    )
                }
                _ => (
                    format!(
                        "{why} Which value was meant only the author knows (a typo of 0.15 for 1.5?)."
                    ),
                    None,
                ),
            }
        }
        ErrorKind::InvalidArgument if e.check == Check::OneHotDtype => (
            "F.one_hot takes class indices as int64 (torch.long).".into(),
            reassign(x, &format!("{}.long()", var_or(x, "t")), source, call.line),
        ),
        _ => generic(e),
    }
}

fn generic(e: &OpError) -> (String, Option<String>) {
    (
        format!("PyTorch rejects the call ({}: {}).", e.kind, e.message),
        None,
    )
}
