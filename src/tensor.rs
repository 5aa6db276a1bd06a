//! A small dense tensor: a shape and row-major typed storage.
//!
//! Only what the three ops and the harness need. Storage is typed (`Vec<f16>`, `Vec<f32>`, ...)
//! so that a float16 tensor really holds float16 values and round-trips exactly through the
//! golden format. Every shape product goes through [`checked_numel`], so an absurd shape is an
//! error before anything is allocated.

use half::{bf16, f16};
use std::fmt;
use std::mem::MaybeUninit;

/// The element types of the golden format (contract section 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// IEEE 754 half precision.
    F16,
    /// bfloat16 (8 exponent bits, 7 mantissa bits).
    BF16,
    /// IEEE 754 single precision.
    F32,
    /// IEEE 754 double precision.
    F64,
    /// 64-bit signed integers (PyTorch's Long).
    I64,
    /// 32-bit signed integers (Int).
    I32,
    /// 8-bit unsigned integers (Byte).
    U8,
}

impl DType {
    /// Every dtype.
    pub const ALL: [DType; 7] = [
        DType::F16,
        DType::BF16,
        DType::F32,
        DType::F64,
        DType::I64,
        DType::I32,
        DType::U8,
    ];
    /// The floating dtypes.
    pub const FLOATS: [DType; 4] = [DType::F16, DType::BF16, DType::F32, DType::F64];

    /// The golden-format name (`float32`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::I64 => "int64",
            DType::I32 => "int32",
            DType::U8 => "uint8",
        }
    }

    /// The name PyTorch's C++ error messages use (`ScalarType`'s `toString`).
    pub fn torch_name(self) -> &'static str {
        match self {
            DType::F16 => "Half",
            DType::BF16 => "BFloat16",
            DType::F32 => "Float",
            DType::F64 => "Double",
            DType::I64 => "Long",
            DType::I32 => "Int",
            DType::U8 => "Byte",
        }
    }

    /// The dtype called `s` (`float16`).
    pub fn parse(s: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == s)
    }

    /// Whether it is a floating dtype.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F16 | DType::BF16 | DType::F32 | DType::F64)
    }

    /// Significand bits including the implicit one; `None` for integers.
    pub fn mantissa_bits(self) -> Option<u32> {
        match self {
            DType::F16 => Some(11),
            DType::BF16 => Some(8),
            DType::F32 => Some(24),
            DType::F64 => Some(53),
            _ => None,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Typed row-major storage.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// float16 elements.
    F16(Vec<f16>),
    /// bfloat16 elements.
    BF16(Vec<bf16>),
    /// float32 elements.
    F32(Vec<f32>),
    /// float64 elements.
    F64(Vec<f64>),
    /// int64 elements.
    I64(Vec<i64>),
    /// int32 elements.
    I32(Vec<i32>),
    /// uint8 elements.
    U8(Vec<u8>),
}

/// Storage borrowed for writing in place: the elements can change, the length cannot.
#[derive(Debug, PartialEq)]
pub enum DataMut<'a> {
    /// float16 elements.
    F16(&'a mut [f16]),
    /// bfloat16 elements.
    BF16(&'a mut [bf16]),
    /// float32 elements.
    F32(&'a mut [f32]),
    /// float64 elements.
    F64(&'a mut [f64]),
    /// int64 elements.
    I64(&'a mut [i64]),
    /// int32 elements.
    I32(&'a mut [i32]),
    /// uint8 elements.
    U8(&'a mut [u8]),
}

impl Data {
    /// The elements' dtype.
    pub fn dtype(&self) -> DType {
        match self {
            Data::F16(_) => DType::F16,
            Data::BF16(_) => DType::BF16,
            Data::F32(_) => DType::F32,
            Data::F64(_) => DType::F64,
            Data::I64(_) => DType::I64,
            Data::I32(_) => DType::I32,
            Data::U8(_) => DType::U8,
        }
    }

    /// How many elements.
    pub fn len(&self) -> usize {
        match self {
            Data::F16(v) => v.len(),
            Data::BF16(v) => v.len(),
            Data::F32(v) => v.len(),
            Data::F64(v) => v.len(),
            Data::I64(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::U8(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The largest element count a tensor may have: 2^28 elements (1 GiB as float32). Larger
/// shapes are rejected before allocating; the shipped suite stays far below.
pub const MAX_ELEMENTS: usize = 1 << 28;

/// The product of `shape`, or `None` when it overflows `usize` or exceeds [`MAX_ELEMENTS`].
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    if shape.contains(&0) {
        return Some(0);
    }
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
}

#[derive(Debug, Clone, PartialEq)]
/// A shape that does not fit its data, or is too large.
pub struct ShapeError(pub String);

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ShapeError {}

#[derive(Debug, Clone, PartialEq)]
/// A dense, row-major tensor of one dtype.
pub struct Tensor {
    shape: Vec<usize>,
    data: Data,
}

impl Tensor {
    /// A tensor whose element count must equal the product of `shape`.
    pub fn new(shape: Vec<usize>, data: Data) -> Result<Tensor, ShapeError> {
        let n = checked_numel(&shape).ok_or_else(|| {
            ShapeError(format!(
                "shape {shape:?} has more than {MAX_ELEMENTS} elements"
            ))
        })?;
        if n != data.len() {
            return Err(ShapeError(format!(
                "shape {shape:?} needs {n} elements, got {}",
                data.len()
            )));
        }
        Ok(Tensor { shape, data })
    }

    /// Values rounded (to nearest even) into `dtype`; integer dtypes truncate toward zero.
    pub fn from_f64(dtype: DType, shape: Vec<usize>, values: &[f64]) -> Result<Tensor, ShapeError> {
        let data = match dtype {
            DType::F16 => Data::F16(values.iter().map(|&v| f16_from_f64(v)).collect()),
            DType::BF16 => Data::BF16(values.iter().map(|&v| bf16_from_f64(v)).collect()),
            DType::F32 => Data::F32(values.iter().map(|&v| v as f32).collect()),
            DType::F64 => Data::F64(values.to_vec()),
            DType::I64 => Data::I64(values.iter().map(|&v| v as i64).collect()),
            DType::I32 => Data::I32(values.iter().map(|&v| v as i32).collect()),
            DType::U8 => Data::U8(values.iter().map(|&v| v as u8).collect()),
        };
        Tensor::new(shape, data)
    }

    /// Values rounded into a float dtype from float32 (the accumulation type of low precision).
    pub fn from_f32(
        dtype: DType,
        shape: Vec<usize>,
        values: Vec<f32>,
    ) -> Result<Tensor, ShapeError> {
        let data = match dtype {
            DType::F16 => Data::F16(values.iter().map(|&v| f16::from_f32(v)).collect()),
            DType::BF16 => Data::BF16(values.iter().map(|&v| bf16::from_f32(v)).collect()),
            DType::F32 => Data::F32(values),
            DType::F64 => Data::F64(values.iter().map(|&v| v as f64).collect()),
            other => {
                return Tensor::from_f64(
                    other,
                    shape,
                    &values.iter().map(|&v| v as f64).collect::<Vec<_>>(),
                );
            }
        };
        Tensor::new(shape, data)
    }

    /// A 0-d tensor holding `value` rounded into `dtype`.
    pub fn scalar(dtype: DType, value: f64) -> Tensor {
        Tensor::from_f64(dtype, vec![], &[value]).expect("one element for a 0-d shape")
    }

    /// Its shape (`[]` for a 0-d tensor).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Its number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Its number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// Its dtype.
    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    /// Its elements.
    pub fn data(&self) -> &Data {
        &self.data
    }

    /// The storage, for writing in place: slices, so that its length, and so the shape,
    /// cannot change.
    pub fn data_mut(&mut self) -> DataMut<'_> {
        match &mut self.data {
            Data::F16(v) => DataMut::F16(v),
            Data::BF16(v) => DataMut::BF16(v),
            Data::F32(v) => DataMut::F32(v),
            Data::F64(v) => DataMut::F64(v),
            Data::I64(v) => DataMut::I64(v),
            Data::I32(v) => DataMut::I32(v),
            Data::U8(v) => DataMut::U8(v),
        }
    }

    /// Its elements, owned.
    pub fn into_data(self) -> Data {
        self.data
    }

    /// Element `i` (row-major) widened to float64.
    #[inline]
    pub fn get_f64(&self, i: usize) -> f64 {
        match &self.data {
            Data::F16(v) => v[i].to_f64(),
            Data::BF16(v) => v[i].to_f64(),
            Data::F32(v) => v[i] as f64,
            Data::F64(v) => v[i],
            Data::I64(v) => v[i] as f64,
            Data::I32(v) => v[i] as f64,
            Data::U8(v) => v[i] as f64,
        }
    }

    /// Every element widened to float64 (exact for every dtype here but int64 beyond 2^53).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match &self.data {
            Data::F16(v) => v.iter().map(|x| x.to_f64()).collect(),
            Data::BF16(v) => v.iter().map(|x| x.to_f64()).collect(),
            Data::F32(v) => v.iter().map(|&x| x as f64).collect(),
            Data::F64(v) => v.clone(),
            Data::I64(v) => v.iter().map(|&x| x as f64).collect(),
            Data::I32(v) => v.iter().map(|&x| x as f64).collect(),
            Data::U8(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }

    /// Every element as float32 (exact for float16/bfloat16/float32).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        use half::slice::HalfFloatSliceExt;
        match &self.data {
            // the slice conversions use F16C where the CPU has it
            Data::F16(v) => {
                let mut out = vec![0.0; v.len()];
                v.convert_to_f32_slice(&mut out);
                out
            }
            Data::BF16(v) => {
                let mut out = vec![0.0; v.len()];
                v.convert_to_f32_slice(&mut out);
                out
            }
            Data::F32(v) => v.clone(),
            _ => self.to_f64_vec().into_iter().map(|x| x as f32).collect(),
        }
    }

    /// Integer elements widened to i64; `None` for float tensors.
    pub fn to_i64_vec(&self) -> Option<Vec<i64>> {
        match &self.data {
            Data::I64(v) => Some(v.clone()),
            Data::I32(v) => Some(v.iter().map(|&x| x as i64).collect()),
            Data::U8(v) => Some(v.iter().map(|&x| x as i64).collect()),
            _ => None,
        }
    }
}

/// `v` rounded once to float16 (to nearest, ties to even). `half::f16::from_f64` is not that:
/// with F16C it rounds to float32 first, and its software path ignores the low 32 bits of the
/// mantissa, so a value just off a float16 midpoint can round the wrong way. Rounding to
/// float32 *to odd* first keeps the single rounding's result (round-to-odd at two or more
/// extra bits, Boldo and Melquiond 2008; float32 has 13 more than float16).
pub fn f16_from_f64(v: f64) -> f16 {
    f16::from_f32(f32_round_to_odd(v))
}

/// `v` rounded once to bfloat16 (to nearest, ties to even): see [`f16_from_f64`]
/// (`half::bf16::from_f64` also ignores the low 32 bits of the mantissa).
pub fn bf16_from_f64(v: f64) -> bf16 {
    bf16::from_f32(f32_round_to_odd(v))
}

/// `v` rounded to float32 toward zero, with the last bit set if that was inexact.
fn f32_round_to_odd(v: f64) -> f32 {
    let t = v as f32;
    if t as f64 == v || v.is_nan() {
        return t;
    }
    // `t` is a neighbour of `v`: step back toward zero if it is the outer one (infinity
    // included: it steps back to the largest float32).
    let toward_zero = if (t as f64).abs() > v.abs() {
        f32::from_bits(t.to_bits() - 1)
    } else {
        t
    };
    f32::from_bits(toward_zero.to_bits() | 1)
}

/// A vector of `n` elements written by `fill`, which is handed the vector's uninitialised
/// storage: an output about to be written in full is not zeroed first (`vec![0.0; n]` costs a
/// memset whenever the allocator reuses memory: 16% of a 64x1000 float32 log_softmax, 21% of
/// an 8x21x128x128 one). Large ones ask the kernel for transparent huge pages before the first
/// write: a fresh 131 MB output costs 32 000 page faults in 4 KiB pages, and 64 in 2 MiB ones
/// (a hint; where the kernel ignores it, or elsewhere than Linux, nothing changes).
///
/// # Safety
///
/// `fill` must write every element of the slice it is given.
pub(crate) unsafe fn written<T>(n: usize, fill: impl FnOnce(&mut [MaybeUninit<T>])) -> Vec<T> {
    let mut v = Vec::with_capacity(n);
    advise_huge_pages(v.as_ptr() as usize, n * std::mem::size_of::<T>());
    fill(&mut v.spare_capacity_mut()[..n]);
    // SAFETY: `fill` wrote the first n elements (the caller's promise), within the capacity.
    unsafe { v.set_len(n) };
    v
}

/// `s` as storage for a kernel that only writes its output (the same kernels then serve a
/// caller's buffer and [`written`]'s uninitialised one).
///
/// # Safety
///
/// Only initialised values may be written through the result (`MaybeUninit::uninit()` would
/// leave `s` holding uninitialised elements).
pub(crate) unsafe fn as_uninit<T>(s: &mut [T]) -> &mut [MaybeUninit<T>] {
    // SAFETY: MaybeUninit<T> has T's layout; the caller writes only initialised values.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast(), s.len()) }
}

/// Asks for huge pages over the whole 2 MiB pages inside a fresh allocation of `bytes` bytes at
/// `start` (nothing for small ones).
fn advise_huge_pages(start: usize, bytes: usize) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let (from, end) = (start.next_multiple_of(HUGE), start + bytes);
        if bytes >= 4 * HUGE && from < end {
            let len = (end - from) / HUGE * HUGE;
            // SAFETY: the range lies inside the caller's allocation (not yet touched: a large
            // zeroed allocation is fresh mmap'd memory); madvise only changes how it is backed.
            unsafe { libc::madvise(from as *mut libc::c_void, len, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (start, bytes);
}

/// PyTorch's rendering of a size list in messages: `[2, 3]`, `[]` for 0-d.
pub fn fmt_shape(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_numel_refuses_overflow_and_huge_shapes() {
        assert_eq!(checked_numel(&[]), Some(1));
        assert_eq!(checked_numel(&[3, 0, 5]), Some(0));
        assert_eq!(checked_numel(&[usize::MAX, 2]), None);
        assert_eq!(checked_numel(&[1 << 20, 1 << 20]), None);
        // A zero anywhere makes the product 0 even when the other factors are huge.
        assert_eq!(checked_numel(&[usize::MAX, 2, 0]), Some(0));
    }

    #[test]
    fn new_checks_element_count() {
        assert!(Tensor::new(vec![2, 2], Data::F32(vec![1.0; 3])).is_err());
        assert!(Tensor::new(vec![2, 2], Data::F32(vec![1.0; 4])).is_ok());
        assert!(Tensor::new(vec![1 << 40, 1 << 40], Data::F32(vec![])).is_err());
    }

    #[test]
    fn float16_and_bfloat16_round_once_from_float64() {
        // against a brute-force rounding: the two 16-bit neighbours of v, and v compared with
        // their midpoint (exact in float64: both have few bits)
        fn check<T: Copy + PartialEq + std::fmt::Debug>(
            v: f64,
            ours: T,
            to: impl Fn(T) -> f64,
            from_bits: impl Fn(u16) -> T,
            bits: impl Fn(T) -> u16,
        ) {
            let r = to(ours);
            let (lo, hi) = if r <= v {
                (
                    r,
                    to(from_bits(bits(ours).wrapping_add(if r < 0.0 {
                        -1i16 as u16
                    } else {
                        1
                    }))),
                )
            } else {
                (
                    to(from_bits(bits(ours).wrapping_add(if r < 0.0 {
                        1
                    } else {
                        -1i16 as u16
                    }))),
                    r,
                )
            };
            let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
            if v.is_nan() || lo > v || v > hi || !lo.is_finite() || !hi.is_finite() {
                return;
            }
            let mid = lo / 2.0 + hi / 2.0;
            let want = if v < mid {
                lo
            } else if v > mid {
                hi
            } else {
                r
            };
            assert_eq!(r, want, "{v:e}: {ours:?}");
        }
        let mut s = 0x2545_f491_4f6c_dd1du64;
        let mut hits = 0;
        for i in 0..400_000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            // values near 16-bit midpoints: a random 16-bit value plus half a quantum plus a
            // tiny offset below float32's resolution
            let base = f16::from_bits((s >> 16) as u16 & 0x7bff).to_f64();
            let v = match i % 3 {
                0 => base * (1.0 + 2f64.powi(-11)) + base * 2f64.powi(-40) * ((s & 7) as f64 - 3.5),
                1 => {
                    bf16::from_bits((s >> 20) as u16 & 0x7f7f).to_f64()
                        * (1.0 + 2f64.powi(-8) + 2f64.powi(-45))
                }
                _ => f64::from_bits(s >> 2),
            };
            for v in [v, -v] {
                check(
                    v,
                    f16_from_f64(v),
                    |h: f16| h.to_f64(),
                    f16::from_bits,
                    |h: f16| h.to_bits(),
                );
                check(
                    v,
                    bf16_from_f64(v),
                    |h: bf16| h.to_f64(),
                    bf16::from_bits,
                    |h: bf16| h.to_bits(),
                );
                hits += (f16_from_f64(v) != f16::from_f64(v)) as usize;
            }
        }
        // the near-midpoint values are where half's conversion goes wrong
        assert!(hits > 0);
        assert!(f16_from_f64(f64::NAN).is_nan());
        assert_eq!(f16_from_f64(1e10), f16::INFINITY);
        assert_eq!(bf16_from_f64(-1e300), bf16::NEG_INFINITY);
        assert_eq!(bf16_from_f64(1e-300).to_bits(), 0);
    }

    #[test]
    fn low_precision_rounds_to_nearest_even() {
        // 1 + 2^-11 lies halfway between float16 1.0 and 1 + 2^-10: ties go to even (1.0).
        let t = Tensor::from_f64(DType::F16, vec![1], &[1.0 + 2f64.powi(-11)]).unwrap();
        assert_eq!(t.to_f64_vec(), vec![1.0]);
        let t = Tensor::from_f64(DType::BF16, vec![1], &[1.0 + 3.0 * 2f64.powi(-9)]).unwrap();
        assert_eq!(t.to_f64_vec(), vec![1.0 + 2f64.powi(-7)]);
    }
}
