//! Between this crate's tensors and Candle's, for the two Candle-based implementations.

use crate::tensor::{DType, Data, Tensor};
use candle_core::{DType as CDType, Device, Tensor as CTensor};

pub(crate) type CResult<T> = candle_core::Result<T>;

pub(crate) fn to_candle(t: &Tensor) -> CResult<CTensor> {
    let dev = &Device::Cpu;
    let shape = t.shape();
    match t.data() {
        Data::F16(v) => CTensor::from_vec(v.clone(), shape, dev),
        Data::BF16(v) => CTensor::from_vec(v.clone(), shape, dev),
        Data::F32(v) => CTensor::from_vec(v.clone(), shape, dev),
        Data::F64(v) => CTensor::from_vec(v.clone(), shape, dev),
        Data::I64(v) => CTensor::from_vec(v.clone(), shape, dev),
        Data::I32(v) => CTensor::from_vec(v.clone(), shape, dev),
        Data::U8(v) => CTensor::from_vec(v.clone(), shape, dev),
    }
}

pub(crate) fn cdtype(d: DType) -> CDType {
    match d {
        DType::F16 => CDType::F16,
        DType::BF16 => CDType::BF16,
        DType::F32 => CDType::F32,
        DType::F64 => CDType::F64,
        DType::I64 => CDType::I64,
        DType::I32 => CDType::I32,
        DType::U8 => CDType::U8,
    }
}

/// Reads a Candle tensor back, converted to `dtype`.
pub(crate) fn from_candle(t: &CTensor, shape: &[usize], dtype: DType) -> CResult<Tensor> {
    let flat = t.flatten_all()?.to_dtype(cdtype(dtype))?;
    let data = match flat.dtype() {
        CDType::F16 => Data::F16(flat.to_vec1()?),
        CDType::BF16 => Data::BF16(flat.to_vec1()?),
        CDType::F32 => Data::F32(flat.to_vec1()?),
        CDType::F64 => Data::F64(flat.to_vec1()?),
        CDType::I64 => Data::I64(flat.to_vec1()?),
        CDType::U8 => Data::U8(flat.to_vec1()?),
        other => candle_core::bail!("unexpected dtype {other:?}"),
    };
    Tensor::new(shape.to_vec(), data).map_err(|e| candle_core::Error::Msg(e.0))
}

/// Candle appends a backtrace to its errors when RUST_BACKTRACE is set; the first line is the
/// message.
pub(crate) fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}
