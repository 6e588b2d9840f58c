//! Interop behind the optional features: `ndarray` arrays and `image` buffers.

use image::{ImageBuffer, Luma, Rgb};
use ndarray::{Array4, ArrayD, IxDyn, ShapeBuilder};
use wgpu_conv2d::{Conv2dError, Tensor};

fn sample() -> Tensor {
    Tensor::new([1, 2, 2, 3], (0..12).map(|v| v as f32).collect()).unwrap()
}

#[test]
fn tensors_and_arrays_convert_without_copying() {
    let tensor = sample();
    let address = tensor.data().as_ptr();
    let array = ArrayD::<f32>::from(tensor.clone());
    assert_eq!(array.shape(), &[1, 2, 2, 3]);
    assert_eq!(array[[0, 1, 1, 2]], 11.0);
    // Standard layout: the same allocation goes back and forth.
    let back = Tensor::from(array);
    assert_eq!(back, tensor);
    let moved = ArrayD::<f32>::from(back);
    assert_eq!(Tensor::from(moved).data(), tensor.data());
    let owned = sample();
    let owned_address = owned.data().as_ptr();
    let through = Tensor::from(ArrayD::<f32>::from(owned));
    assert_eq!(through.data().as_ptr(), owned_address, "no copy");
    assert_ne!(address, owned_address);

    let four = Array4::<f32>::try_from(sample()).unwrap();
    assert_eq!(four.dim(), (1, 2, 2, 3));
    assert_eq!(Tensor::from(four), sample());
    assert!(Array4::<f32>::try_from(Tensor::zeros([2, 3]).unwrap()).is_err());

    // A column-major array is copied into row-major order.
    let fortran = ArrayD::from_shape_vec(IxDyn(&[2, 3]).f(), vec![0., 3., 1., 4., 2., 5.]).unwrap();
    assert_eq!(Tensor::from(fortran).data(), &[0., 1., 2., 3., 4., 5.]);
    // A view borrows.
    assert_eq!(sample().view()[[0, 1, 0, 1]], 7.0);
}

#[test]
fn images_are_channel_planes_scaled_to_one() {
    let rgb =
        ImageBuffer::<Rgb<u8>, _>::from_fn(3, 2, |x, y| Rgb([x as u8 * 100, y as u8 * 255, 51]));
    let t = Tensor::from_image(&rgb);
    assert_eq!(t.shape(), &[3, 2, 3]);
    // Red plane, row 0: 0, 100, 200 of 255.
    assert_eq!(&t.data()[..3], &[0.0, 100.0 / 255.0, 200.0 / 255.0]);
    // Green plane, row 1: 255 of 255.
    assert_eq!(&t.data()[9..12], &[1.0, 1.0, 1.0]);
    assert!(t.data()[12..].iter().all(|&v| v == 0.2));

    let back: ImageBuffer<Rgb<f32>, Vec<f32>> = t.to_image().unwrap();
    assert_eq!(back.get_pixel(2, 1), &Rgb([200.0 / 255.0, 1.0, 0.2]));
    let gray = Tensor::new([1, 2, 2], vec![0.0, 0.25, 0.5, 1.0]).unwrap();
    let luma: ImageBuffer<Luma<f32>, Vec<f32>> = gray.to_image().unwrap();
    assert_eq!(Tensor::from_image(&luma), gray);
    // The wrong number of channels is an error naming the shape.
    let err = t.to_image::<Luma<f32>>().unwrap_err();
    assert!(matches!(err, Conv2dError::ImageShape { .. }), "{err}");
    assert!(err.to_string().contains("[3, 2, 3]"), "{err}");
}

/// Arrays of `half`'s `f16` and `bf16` are float16 and bfloat16 tensors and
/// back; an `f32` tensor converts to `f16` values rounded, as
/// `tensor.to(torch.float16)`. An image converts to a float16 tensor with
/// `to_dtype`, and a float16 tensor back to an image.
#[test]
fn half_arrays_and_images() {
    use half::{bf16, f16};
    use wgpu_conv2d::DType;
    let values = [0.5, -1.25, 3.0e-5, 65504.0, 2.0, -0.0];
    let halves =
        ArrayD::from_shape_vec(IxDyn(&[2, 3]), values.map(f16::from_f32).to_vec()).unwrap();
    let t = Tensor::from(halves.clone());
    assert_eq!(t.dtype(), DType::F16);
    assert_eq!(t.shape(), &[2, 3]);
    assert_eq!(t.data()[2], f16::from_f32(3.0e-5).to_f32());
    assert_eq!(ArrayD::<f16>::from(&t), halves);
    let b = ArrayD::from_shape_vec(IxDyn(&[6]), values.map(bf16::from_f32).to_vec()).unwrap();
    let tb = Tensor::from(b.clone());
    assert_eq!(tb.dtype(), DType::BF16);
    assert_eq!(ArrayD::<bf16>::from(&tb), b);
    // An f32 tensor's values, rounded.
    let third = Tensor::new([1], vec![1.0 / 3.0]).unwrap();
    assert_eq!(ArrayD::<f16>::from(&third)[[0]], f16::from_f32(1.0 / 3.0));
    let rgb = ImageBuffer::<Rgb<u8>, _>::from_fn(4, 2, |x, y| Rgb([x as u8 * 60, y as u8, 7]));
    let image16 = Tensor::from_image(&rgb).to_dtype(DType::F16);
    assert_eq!(image16.dtype(), DType::F16);
    assert_eq!(image16.data()[1], DType::F16.round(60.0 / 255.0));
    let back: ImageBuffer<Rgb<f32>, Vec<f32>> = image16.to_image().unwrap();
    assert_eq!(back.get_pixel(1, 0)[0], DType::F16.round(60.0 / 255.0));
}
