//! A plain host tensor: a shape and row-major (C-order) `f32` data.

use crate::error::{Conv2dError, Result, fmt_shape};

/// A dense, row-major `f32` tensor on the host.
///
/// Shapes are checked against the data length on construction, so every
/// `Tensor` in the crate is consistent.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl Tensor {
    /// Wraps `data` with `shape`; fails if the lengths disagree.
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
        Ok(Self { shape, data })
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
        })
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The elements, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The elements, row-major, mutable (the shape stays fixed).
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
        Self { shape, data }
    }

    /// Takes shape and data out.
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
