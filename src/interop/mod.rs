//! Conversions a Rust user expects, behind optional features: `ndarray`
//! arrays ([`ndarray`](mod@ndarray), feature `ndarray`) and `image` buffers
//! ([`image`](mod@image), feature `image`).

#[cfg(feature = "image")]
mod image;
#[cfg(feature = "ndarray")]
mod ndarray;
