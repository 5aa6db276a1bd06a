#!/usr/bin/env python3
"""TensorFlow 2.21 (tensorflow-cpu, Keras 3) as an implementation under test, over protocol 1.

    nllspec run --impl "tf=exec:python3 adapters/tf_impl.py" \
                --expectations adapters/expectations/tf.json

PyTorch's three functions as a TensorFlow user ports them, gradients by `tf.GradientTape`:

- log_softmax: `tf.nn.log_softmax(x, axis=dim)`.
- cross_entropy with class indices: `tf.nn.sparse_softmax_cross_entropy_with_logits` where it
  carries the case (no weight, no label smoothing, no target equal to ignore_index), reduced
  with `tf.reduce_mean` / `tf.reduce_sum`; otherwise Keras, which carries what `tf.nn` lacks:
  `SparseCategoricalCrossentropy(from_logits=True, ignore_class=ignore_index)`, the class
  weight as `sample_weight=tf.gather(weight, target)` with the weighted mean Keras offers for
  it (`reduction="mean_with_sample_weight"`), and label smoothing through
  `CategoricalCrossentropy(label_smoothing=...)` on `tf.one_hot(target, C)` (an ignored target
  then gets a sample weight of 0).
- cross_entropy with probabilities: `tf.nn.softmax_cross_entropy_with_logits`, or Keras's
  `CategoricalCrossentropy(from_logits=True, label_smoothing=...)` for a reduction or label
  smoothing. Neither takes a per-class weight: such a case is `unsupported`.
- nll_loss: TensorFlow has no such op. Written as a port writes it, `-tf.gather(logp, target,
  batch_dims=...)` times `tf.gather(weight, target)`, ignored positions masked, the mean
  divided by the summed weights; with no reduction argument to validate, an unknown reduction
  is `unsupported`.

Bridged API differences only: the class axis (PyTorch's dim 1 is moved last, where TensorFlow
and Keras expect it), the implicit log_softmax dim, an unbatched (C,) input to nll_loss as a
batch of one, PyTorch's reduction names, and Keras's compute dtype (`dtype=` the input's: Keras
computes in float32 unless told). Every check is TensorFlow's own; its exceptions are mapped
to the contract's kinds from their messages.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the C++ start-up banner

import tensorflow as tf  # noqa: E402

import protocol1  # noqa: E402  (beside this file)

tf.config.set_visible_devices([], "GPU")
K = tf.keras.losses

# TensorFlow's and Keras's messages -> the contract's error kinds (spec/ERRORS.md)
KINDS = [
    ("target_out_of_bounds", r"Received a label value of -?\d+ which is outside the valid range"
                             r"|indices\[[\d,]*\] = -?\d+ is not in \[0, \d+\)"),
    ("dim_out_of_range", r"`dim` must be in the range|axis .* out of (bounds|range)"),
    ("input_rank", r"must have >= 1 dimension|must be at least rank|rank at least|`logits` cannot be a scalar"
                   r"|params must be at least 1 dimensional"),
    ("target_dtype", r"attr '(Tlabels|Tindices)' of \w+ is not in the list"),
    ("input_dtype", r"attr 'T' of (u?int|bool)\w* is not in the list"),
    ("dtype_mismatch", r"expected to be a \w+ tensor but is a"),
    ("invalid_reduction", r"Invalid value for argument `reduction`"),
    ("target_shape", r"`labels.shape` must equal `logits.shape`|`labels.shape.rank` must equal"
                     r"|logits and labels must be broadcastable|must be broadcastable"
                     r"|Incompatible shapes|must have the same (shape|rank)"
                     r"|Shapes .* are incompatible|shape must be"),
]
KERAS_REDUCTION = {"none": None, "sum": "sum"}


class Unsupported(Exception):
    pass


def read(t):
    x = tf.constant(protocol1.values(t))
    return tf.cast(x, t["dtype"]) if x.dtype.name != t["dtype"] else x


def write(x):
    a = tf.cast(x, tf.float64).numpy() if x.dtype.is_floating else x.numpy()
    return protocol1.tensor(x.dtype.name, a)


def classes_last(x):
    """(N, C, d1, ...) as (N, d1, ..., C): TensorFlow's and Keras's class axis is the last."""
    return tf.experimental.numpy.moveaxis(x, 1, -1) if x.ndim > 2 else x


def reduce(per, reduction):
    if reduction == "none":
        return per
    if reduction == "sum":
        return tf.reduce_sum(per)
    return tf.reduce_mean(per)


def log_softmax(x, dim):
    if dim is None:  # PyTorch's implicit (deprecated) choice
        dim = 0 if x.ndim in (0, 1, 3) else 1
    return tf.nn.log_softmax(x, axis=dim)


def nll_loss(x, t, w, a):
    reduction, ignore = a["reduction"], a["ignore_index"]
    if reduction not in ("none", "mean", "sum"):
        raise Unsupported("TensorFlow has no nll_loss: the port's reduction is code, with no argument to reject")
    unbatched = x.ndim == 1
    if unbatched:  # (C,) with a 0-d target: a batch of one (another target is TensorFlow's to judge)
        x, t = x[None], tf.reshape(t, [1]) if t.ndim == 0 else t
    xl = classes_last(x)
    valid = tf.not_equal(t, tf.cast(ignore, t.dtype))
    safe = tf.where(valid, t, tf.zeros_like(t))
    picked = -tf.gather(xl, safe, batch_dims=t.ndim)
    wt = tf.ones_like(picked) if w is None else tf.gather(w, safe)
    wt = tf.where(valid, wt, tf.zeros_like(wt))
    per = tf.where(valid, picked * wt, tf.zeros_like(picked))
    if reduction == "none":
        return tf.reshape(per, []) if unbatched else per
    if reduction == "sum":
        return tf.reduce_sum(per)
    return tf.reduce_sum(per) / tf.reduce_sum(wt)


def cross_entropy(x, t, w, a):
    reduction, ignore, ls = a["reduction"], a["ignore_index"], a["label_smoothing"]
    xl = classes_last(x)
    dtype = x.dtype.name
    if t.dtype.is_floating:  # class probabilities
        if w is not None:
            raise Unsupported("neither tf.nn.softmax_cross_entropy_with_logits nor Keras's CategoricalCrossentropy "
                              "takes a per-class weight for probability targets")
        tl = classes_last(t)
        if ls == 0 and reduction in ("none", "mean", "sum"):
            return reduce(tf.nn.softmax_cross_entropy_with_logits(labels=tl, logits=xl), reduction)
        loss = K.CategoricalCrossentropy(from_logits=True, label_smoothing=ls,
                                         reduction=KERAS_REDUCTION.get(reduction, reduction), dtype=dtype)
        return loss(tl, xl)
    any_ignored = bool(tf.reduce_any(tf.equal(t, tf.cast(ignore, t.dtype))))
    if w is None and ls == 0 and not any_ignored and reduction in ("none", "mean", "sum"):
        return reduce(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=xl), reduction)
    valid = tf.not_equal(t, tf.cast(ignore, t.dtype))
    sample_weight = None
    if w is not None:
        sample_weight = tf.gather(w, tf.where(valid, t, tf.zeros_like(t)))
    keras_reduction = KERAS_REDUCTION.get(reduction, reduction)
    if reduction == "mean" and w is not None:
        keras_reduction = "mean_with_sample_weight"
    if ls == 0:
        loss = K.SparseCategoricalCrossentropy(from_logits=True, ignore_class=ignore, reduction=keras_reduction,
                                               dtype=dtype)
        return loss(t, xl, sample_weight=sample_weight)
    if any_ignored:  # CategoricalCrossentropy has no ignore_class: the ignored targets weigh 0
        mask = tf.cast(valid, x.dtype)
        sample_weight = mask if sample_weight is None else sample_weight * mask
        if reduction == "mean":
            keras_reduction = "mean_with_sample_weight"
    onehot = tf.one_hot(tf.where(valid, t, tf.zeros_like(t)), xl.shape[-1], dtype=x.dtype)
    loss = K.CategoricalCrossentropy(from_logits=True, label_smoothing=ls, reduction=keras_reduction, dtype=dtype)
    return loss(onehot, xl, sample_weight=sample_weight)


def run(req):
    ins = {k: read(v) for k, v in req["inputs"].items()}
    a, op = req["attrs"], req["op"]
    g = ins.pop("grad_output", None)
    x = ins["input"]
    with tf.GradientTape() as tape:
        tape.watch(x)
        if op == "log_softmax":
            out = log_softmax(x, a["dim"])
        elif op == "nll_loss":
            out = nll_loss(x, ins["target"], ins.get("weight"), a)
        else:
            out = cross_entropy(x, ins["target"], ins.get("weight"), a)
    if g is None:
        return out, None
    gi = tape.gradient(out, x, output_gradients=tf.cast(g, out.dtype),
                       unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return out, gi


def answer(req):
    rid = req["id"]
    try:
        out, gi = run(req)
    except Unsupported as e:
        return {"id": rid, "unsupported": str(e)}
    except (tf.errors.OpError, ValueError, TypeError, IndexError) as e:
        message = getattr(e, "message", None) or str(e)
        return protocol1.error(rid, message, KINDS, f"{type(e).__name__}: {message}")
    return protocol1.answer_values(rid, write(out), None if gi is None else write(gi))


if __name__ == "__main__":
    protocol1.serve(answer)
