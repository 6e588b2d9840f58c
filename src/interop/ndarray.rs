//! [`Tensor`] ⇄ `ndarray` arrays. Owned conversions of `f32` arrays move the
//! data without a copy when the array is in standard (row-major, C) layout; a
//! view borrows it. Arrays of `half`'s `f16` and `bf16` convert to and from
//! float16 and bfloat16 tensors.

use half::{bf16, f16};
use ndarray::{Array4, ArrayD, ArrayViewD, Ix4, IxDyn, ShapeError};

use crate::dtype::DType;
use crate::tensor::Tensor;

impl From<Tensor> for ArrayD<f32> {
    /// Moves the data into an array of the tensor's shape (no copy).
    fn from(tensor: Tensor) -> Self {
        let (shape, data) = tensor.into_parts();
        ArrayD::from_shape_vec(IxDyn(&shape), data)
            .expect("a tensor's data length is the product of its shape")
    }
}

impl From<ArrayD<f32>> for Tensor {
    /// Takes the array's data: without a copy when it is in standard layout,
    /// else copied into row-major order.
    fn from(array: ArrayD<f32>) -> Self {
        let shape = array.shape().to_vec();
        let array = if array.is_standard_layout() {
            array
        } else {
            array.as_standard_layout().into_owned()
        };
        let (data, offset) = array.into_raw_vec_and_offset();
        let data = match offset {
            Some(0) | None => data,
            Some(start) => data[start..].to_vec(),
        };
        Tensor::from_checked_parts(shape, data)
    }
}

impl From<ArrayD<f16>> for Tensor {
    /// A float16 tensor of the array's values, in row-major order.
    fn from(array: ArrayD<f16>) -> Self {
        let shape = array.shape().to_vec();
        let data = array.iter().map(|v| v.to_f32()).collect();
        Tensor::from_checked_parts(shape, data).with_dtype_unchecked(DType::F16)
    }
}

impl From<ArrayD<bf16>> for Tensor {
    /// A bfloat16 tensor of the array's values, in row-major order.
    fn from(array: ArrayD<bf16>) -> Self {
        let shape = array.shape().to_vec();
        let data = array.iter().map(|v| v.to_f32()).collect();
        Tensor::from_checked_parts(shape, data).with_dtype_unchecked(DType::BF16)
    }
}

impl From<&Tensor> for ArrayD<f16> {
    /// The values as `f16`, each rounded to it (exact for a float16 tensor),
    /// as `tensor.to(torch.float16)`.
    fn from(tensor: &Tensor) -> Self {
        ArrayD::from_shape_vec(IxDyn(tensor.shape()), tensor.to_f16_vec())
            .expect("a tensor's data length is the product of its shape")
    }
}

impl From<&Tensor> for ArrayD<bf16> {
    /// The values as `bf16`, each rounded to it (exact for a bfloat16 tensor).
    fn from(tensor: &Tensor) -> Self {
        ArrayD::from_shape_vec(IxDyn(tensor.shape()), tensor.to_bf16_vec())
            .expect("a tensor's data length is the product of its shape")
    }
}

impl TryFrom<Tensor> for Array4<f32> {
    type Error = ShapeError;

    /// A 4-D tensor (`(N, C, H, W)`, or a weight) as an `Array4` (no copy).
    fn try_from(tensor: Tensor) -> Result<Self, ShapeError> {
        ArrayD::from(tensor).into_dimensionality::<Ix4>()
    }
}

impl From<Array4<f32>> for Tensor {
    /// As for [`ArrayD`]: no copy in standard layout.
    fn from(array: Array4<f32>) -> Self {
        Tensor::from(array.into_dyn())
    }
}

impl Tensor {
    /// The tensor as an `ndarray` view, borrowing its data.
    pub fn view(&self) -> ArrayViewD<'_, f32> {
        ArrayViewD::from_shape(IxDyn(self.shape()), self.data())
            .expect("a tensor's data length is the product of its shape")
    }
}
