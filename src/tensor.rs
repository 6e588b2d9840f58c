//! A plain host tensor: a shape, row-major (C-order) data and a dtype.

use half::{bf16, f16};

use crate::dtype::DType;
use crate::error::{Conv2dError, Result, fmt_shape};

/// A dense, row-major tensor on the host, of `float32` (the default),
/// `float16` or `bfloat16` ([`DType`]).
///
/// Every dtype's values are `f32` values, so the data is an `f32` slice
/// whatever the dtype: a half tensor holds values rounded to its dtype
/// ([`to_dtype`](Self::to_dtype)), and a value written through
/// [`data_mut`](Self::data_mut) is rounded to the dtype wherever the tensor
/// is used. On the GPU ([`GpuTensor`](crate::GpuTensor)) half tensors take 16
/// bits per element.
///
/// Shapes are checked against the data length on construction, so every
/// `Tensor` in the crate is consistent.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
    dtype: DType,
}

impl Tensor {
    /// Wraps `data` with `shape` as a `float32` tensor; fails if the lengths
    /// disagree.
    pub fn new(shape: impl Into<Vec<usize>>, data: Vec<f32>) -> Result<Self> {
        let shape = shape.into();
        let expected = checked_numel(&shape).ok_or_else(|| Conv2dError::ValueTooLarge {
            what: "tensor size",
            value: fmt_shape(&shape),
        })?;
        if expected != data.len() {
            return Err(Conv2dError::DataLength {
                shape,
                expected,
                got: data.len(),
            });
        }
        Ok(Self {
            shape,
            data,
            dtype: DType::F32,
        })
    }

    /// A `float16` tensor of `values` with `shape`.
    pub fn from_f16(shape: impl Into<Vec<usize>>, values: &[f16]) -> Result<Self> {
        let mut data = try_with_capacity("tensor", values.len())?;
        data.extend(values.iter().map(|v| v.to_f32()));
        Ok(Self::new(shape, data)?.with_dtype_unchecked(DType::F16))
    }

    /// A `bfloat16` tensor of `values` with `shape`.
    pub fn from_bf16(shape: impl Into<Vec<usize>>, values: &[bf16]) -> Result<Self> {
        let mut data = try_with_capacity("tensor", values.len())?;
        data.extend(values.iter().map(|v| v.to_f32()));
        Ok(Self::new(shape, data)?.with_dtype_unchecked(DType::BF16))
    }

    /// The same values converted to `dtype`, as PyTorch's `tensor.to(dtype)`:
    /// each rounded to nearest, ties to even (to ±infinity beyond the
    /// largest finite value).
    pub fn to_dtype(mut self, dtype: DType) -> Self {
        dtype.round_all(&mut self.data);
        self.dtype = dtype;
        self
    }

    /// Marks data already rounded to `dtype` (made by the crate's kernels and
    /// conversions).
    pub(crate) fn with_dtype_unchecked(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The elements as `float16` values (each rounded, whatever the dtype).
    pub fn to_f16_vec(&self) -> Vec<f16> {
        self.data.iter().map(|&v| f16::from_f32(v)).collect()
    }

    /// The elements as `bfloat16` values (each rounded, whatever the dtype).
    pub fn to_bf16_vec(&self) -> Vec<bf16> {
        self.data.iter().map(|&v| bf16::from_f32(v)).collect()
    }

    /// A tensor of zeros.
    pub fn zeros(shape: impl Into<Vec<usize>>) -> Result<Self> {
        let shape = shape.into();
        let n = checked_numel(&shape).ok_or_else(|| Conv2dError::ValueTooLarge {
            what: "tensor size",
            value: fmt_shape(&shape),
        })?;
        Ok(Self {
            shape,
            data: try_filled("tensor", n, 0.0)?,
            dtype: DType::F32,
        })
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The elements, row-major (of a half dtype: its values, as `f32`).
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The elements, row-major, mutable (the shape and dtype stay fixed; a
    /// value a half dtype cannot hold is rounded to it where it is used).
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// Takes the data out.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// A tensor from parts known to agree (made by the crate's conversions).
    #[cfg(any(feature = "ndarray", feature = "image"))]
    pub(crate) fn from_checked_parts(shape: Vec<usize>, data: Vec<f32>) -> Self {
        debug_assert_eq!(checked_numel(&shape), Some(data.len()));
        Self {
            shape,
            data,
            dtype: DType::F32,
        }
    }

    /// Takes shape and data out (the dtype's values, as `f32`).
    pub fn into_parts(self) -> (Vec<usize>, Vec<f32>) {
        (self.shape, self.data)
    }
}

/// An empty vector with room for `len` elements, or an error naming `what`
/// when the size overflows or the allocator refuses it: a buffer sized from
/// user input never aborts the process.
pub(crate) fn try_with_capacity<T>(what: &'static str, len: usize) -> Result<Vec<T>> {
    let bytes = len
        .checked_mul(std::mem::size_of::<T>())
        .filter(|&b| b <= isize::MAX as usize)
        .ok_or_else(|| Conv2dError::ValueTooLarge {
            what,
            value: format!("{len} elements"),
        })?;
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| Conv2dError::HostMemory {
            what,
            bytes: bytes as u64,
        })?;
    Ok(v)
}

/// `len` copies of `value`, allocated as [`try_with_capacity`] does.
pub(crate) fn try_filled<T: Clone>(what: &'static str, len: usize, value: T) -> Result<Vec<T>> {
    let mut v = try_with_capacity(what, len)?;
    v.resize(len, value);
    Ok(v)
}

/// Product of the dimensions, `None` on overflow.
pub(crate) fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}
