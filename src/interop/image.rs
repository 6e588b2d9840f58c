//! [`Tensor`] ⇄ `image` buffers, as `(C, H, W)` tensors (channel planes), the
//! layout torchvision's `ToTensor` gives a picture.

use std::ops::Deref;

use image::{ImageBuffer, Pixel, Primitive};

use crate::error::{Conv2dError, Result};
use crate::tensor::Tensor;

impl Tensor {
    /// `image` as a `(C, H, W)` tensor, `C` the pixel's channels, values
    /// scaled to `[0, 1]` by the subpixel type's maximum (255 for `u8`, 65535
    /// for `u16`, 1 for `f32`), as torchvision's `ToTensor` does.
    pub fn from_image<P, Container>(image: &ImageBuffer<P, Container>) -> Tensor
    where
        P: Pixel,
        P::Subpixel: Into<f32>,
        Container: Deref<Target = [P::Subpixel]>,
    {
        let (w, h) = image.dimensions();
        let (w, h) = (w as usize, h as usize);
        let channels = usize::from(P::CHANNEL_COUNT);
        let max: f32 = <P::Subpixel as Primitive>::DEFAULT_MAX_VALUE.into();
        let raw: &[P::Subpixel] = image.as_raw();
        let mut data = vec![0.0; channels * h * w];
        for (pixel, values) in raw.chunks_exact(channels).enumerate() {
            for (c, &v) in values.iter().enumerate() {
                data[c * h * w + pixel] = v.into() / max;
            }
        }
        Tensor::from_checked_parts(vec![channels, h, w], data)
    }

    /// A `(C, H, W)` tensor as an image of `f32` pixels with `C` channels
    /// (`Luma<f32>`, `Rgb<f32>`, `Rgba<f32>`), values as they are; convert
    /// it to 8 bits with `image`'s `ConvertBuffer` (which maps `[0, 1]` to
    /// `0..=255`).
    pub fn to_image<P>(&self) -> Result<ImageBuffer<P, Vec<f32>>>
    where
        P: Pixel<Subpixel = f32>,
    {
        let channels = usize::from(P::CHANNEL_COUNT);
        let &[c, h, w] = self.shape() else {
            return Err(Conv2dError::ImageShape {
                shape: self.shape().to_vec(),
                channels,
            });
        };
        let (Ok(width), Ok(height)) = (u32::try_from(w), u32::try_from(h)) else {
            return Err(Conv2dError::ImageShape {
                shape: self.shape().to_vec(),
                channels,
            });
        };
        if c != channels {
            return Err(Conv2dError::ImageShape {
                shape: self.shape().to_vec(),
                channels,
            });
        }
        let plane = h * w;
        let mut raw = vec![0.0; c * plane];
        for (pixel, values) in raw.chunks_exact_mut(c).enumerate() {
            for (k, v) in values.iter_mut().enumerate() {
                *v = self.data()[k * plane + pixel];
            }
        }
        Ok(ImageBuffer::from_raw(width, height, raw).expect("the buffer holds every pixel"))
    }
}
