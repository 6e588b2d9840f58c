//! [`Tensor`] ⇄ `ndarray` arrays. Owned conversions move the data without a
//! copy when the array is in standard (row-major, C) layout; a view borrows it.

use ndarray::{Array4, ArrayD, ArrayViewD, Ix4, IxDyn, ShapeError};

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
