//! The one error type of the crate.
//!
//! Shape and parameter messages follow PyTorch's wording (see
//! `pytorch-conv2d-semantics.md`) and always name the offending values, so that
//! a user who knows PyTorch recognises the problem at once.

/// Everything that can go wrong in this crate. No function of the crate panics on
/// bad input: it returns one of these instead, before any output is produced.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Conv2dError {
    /// `groups` was 0.
    #[error("groups must be a positive integer, got groups={0}")]
    NonPositiveGroups(usize),

    /// `in_channels` is not a multiple of `groups`.
    #[error(
        "in_channels must be divisible by groups, got in_channels={in_channels}, groups={groups}"
    )]
    InChannelsNotDivisible {
        /// The configured number of input channels.
        in_channels: usize,
        /// The configured number of groups.
        groups: usize,
    },

    /// `out_channels` is not a multiple of `groups`.
    #[error(
        "out_channels must be divisible by groups, got out_channels={out_channels}, groups={groups}"
    )]
    OutChannelsNotDivisible {
        /// The configured number of output channels.
        out_channels: usize,
        /// The configured number of groups.
        groups: usize,
    },

    /// Fewer output channels than groups (this includes `out_channels == 0`).
    #[error(
        "Given groups={groups}, expected weight to be at least {groups} at dimension 0, but got weight of size {} instead",
        fmt_shape(weight_shape)
    )]
    TooFewOutChannels {
        /// The configured number of groups.
        groups: usize,
        /// The weight shape implied by the configuration.
        weight_shape: Vec<usize>,
    },

    /// `padding='same'` together with a stride other than 1.
    #[error("padding='same' is not supported for strided convolutions, got stride=({0}, {1})")]
    SameWithStride(usize, usize),

    /// A padding string other than `same` / `valid` or a malformed number.
    #[error(
        "Invalid padding string '{0}', should be one of {{'valid', 'same'}} or an integer / 'h,w' pair"
    )]
    InvalidPaddingString(String),

    /// A padding mode string that is not one of the four modes.
    #[error(
        "padding_mode must be one of {{'zeros', 'reflect', 'replicate', 'circular'}}, but got padding_mode='{0}'"
    )]
    InvalidPaddingMode(String),

    /// Negative padding in `zeros` mode (other modes crop, as PyTorch's `F.pad` does).
    #[error("negative padding is not supported with padding_mode='zeros', got padding=({0}, {1})")]
    NegativePadding(i64, i64),

    /// A stride of 0.
    #[error("non-positive stride is not supported, got stride=({0}, {1})")]
    NonPositiveStride(usize, usize),

    /// A dilation of 0.
    #[error("non-positive dilation is not supported, got dilation=({0}, {1})")]
    NonPositiveDilation(usize, usize),

    /// A kernel size of 0.
    #[error("non-positive kernel size is not supported, got kernel_size=({0}, {1})")]
    NonPositiveKernel(usize, usize),

    /// A size, stride, dilation or padding so large that the arithmetic would overflow.
    #[error("{what} is too large: {value}")]
    ValueTooLarge {
        /// Which value.
        what: &'static str,
        /// The value as given.
        value: String,
    },

    /// The input is neither 3-D (unbatched) nor 4-D (batched).
    #[error(
        "Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: {}",
        fmt_shape(.0)
    )]
    InputRank(Vec<usize>),

    /// A weight tensor that is not 4-D.
    #[error(
        "expected a 4-D weight (out_channels, in_channels/groups, kH, kW), but got weight of size {}",
        fmt_shape(.0)
    )]
    WeightRank(Vec<usize>),

    /// The weight's shape does not match the configuration.
    #[error(
        "expected weight of size {} for this configuration, but got weight of size {}",
        fmt_shape(expected),
        fmt_shape(got)
    )]
    WeightShape {
        /// The shape the configuration implies.
        expected: Vec<usize>,
        /// The shape that was given.
        got: Vec<usize>,
    },

    /// A bias was given to a configuration without bias, or is missing, or has the wrong shape.
    #[error(
        "Given weight of size {}, expected bias to be 1-dimensional with {expected} elements, but got bias of size {} instead",
        fmt_shape(weight_shape),
        fmt_shape(got)
    )]
    BiasShape {
        /// The weight shape.
        weight_shape: Vec<usize>,
        /// Number of elements the bias must have.
        expected: usize,
        /// The shape that was given.
        got: Vec<usize>,
    },

    /// The configuration says `bias = true` but no bias was given, or the reverse.
    #[error("the configuration has bias={configured}, but a bias was {}", if *.configured { "not given" } else { "given" })]
    BiasPresence {
        /// What the configuration says.
        configured: bool,
    },

    /// The input's channel count does not match the weight.
    #[error(
        "Given groups={groups}, weight of size {}, expected input{} to have {expected} channels, but got {got} channels instead",
        fmt_shape(weight_shape),
        fmt_shape(input_shape)
    )]
    ChannelMismatch {
        /// Number of groups.
        groups: usize,
        /// The weight shape.
        weight_shape: Vec<usize>,
        /// The (batched) input shape.
        input_shape: Vec<usize>,
        /// Channels the weight expects (`weight.size(1) * groups`).
        expected: usize,
        /// Channels the input has.
        got: usize,
    },

    /// The padded input is smaller than the dilated kernel.
    #[error(
        "Calculated padded input size per channel: ({} x {}). Kernel size: ({} x {}). Kernel size can't be greater than actual input size",
        padded.0, padded.1, kernel.0, kernel.1
    )]
    KernelTooLarge {
        /// Padded input (height, width).
        padded: (i64, i64),
        /// Dilated kernel (height, width).
        kernel: (usize, usize),
    },

    /// Zero height or width with a non-empty batch and channel dimension.
    #[error(
        "Only zero batch or zero channel inputs are supported, but got input shape: {}",
        fmt_shape(.0)
    )]
    EmptySpatial(Vec<usize>),

    /// `reflect` / `replicate` padding of a tensor with a zero dimension other than the batch.
    #[error(
        "Expected 3D or 4D (batch mode) tensor with possibly 0 batch size and other non-zero dimensions for input, but got: {}",
        fmt_shape(.0)
    )]
    PadEmptyInput(Vec<usize>),

    /// `reflect` padding not strictly smaller than the dimension it pads.
    #[error(
        "Argument #{}: Padding size should be less than the corresponding input dimension, but got: padding ({}, {}) at dimension {dim} of input {}",
        // PyTorch's CPU kernel numbers its pad arguments: #4 the width's, #6 the height's.
        if *dim + 1 == input_shape.len() { 4 } else { 6 },
        pad.0, pad.1, fmt_shape(input_shape)
    )]
    ReflectPadTooLarge {
        /// (before, after) padding of that dimension.
        pad: (i64, i64),
        /// Absolute dimension index (W is the last).
        dim: usize,
        /// The input shape as given.
        input_shape: Vec<usize>,
    },

    /// `circular` padding larger than the dimension it pads.
    #[error(
        "Padding value causes wrapping around more than once. (padding ({}, {}) at dimension {dim} of input {})",
        pad.0, pad.1, fmt_shape(input_shape)
    )]
    CircularPadTooLarge {
        /// (before, after) padding of that dimension.
        pad: (i64, i64),
        /// Absolute dimension index (W is the last).
        dim: usize,
        /// The input shape as given.
        input_shape: Vec<usize>,
    },

    /// `reflect` / `replicate` padding whose (cropping) result has a dimension below 1.
    #[error(
        "Calculated output H: {} W: {} must be >= 1 in every dimension (input H: {}, W: {})",
        padded.0, padded.1, input.0, input.1
    )]
    PadOutputEmpty {
        /// Padded (height, width); negative padding crops.
        padded: (i64, i64),
        /// Input (height, width).
        input: (usize, usize),
    },

    /// `circular` padding that crops more than the whole dimension.
    #[error(
        "Negative padding value is resulting in an empty dimension: padding ({}, {}) at dimension {dim} of input {}",
        pad.0, pad.1, fmt_shape(input_shape)
    )]
    CropEmpties {
        /// (before, after) padding of that dimension.
        pad: (i64, i64),
        /// Absolute dimension index.
        dim: usize,
        /// The input shape as given.
        input_shape: Vec<usize>,
    },

    /// A gradient of the output whose shape is not the output's.
    #[error(
        "expected grad_output of size {} (the output's), but got grad_output of size {}",
        fmt_shape(expected),
        fmt_shape(got)
    )]
    GradOutputShape {
        /// The output shape.
        expected: Vec<usize>,
        /// The shape given.
        got: Vec<usize>,
    },

    /// A tensor's data length does not match its shape.
    #[error(
        "tensor of size {} needs {expected} elements, but {got} were given",
        fmt_shape(shape)
    )]
    DataLength {
        /// The declared shape.
        shape: Vec<usize>,
        /// Product of the shape.
        expected: usize,
        /// Length of the data.
        got: usize,
    },

    /// No GPU adapter could be found.
    #[error("{0}")]
    NoAdapter(String),

    /// The adapter refused to create a device.
    #[error("could not create a GPU device on adapter '{adapter}': {reason}")]
    RequestDevice {
        /// Adapter name.
        adapter: String,
        /// wgpu's reason.
        reason: String,
    },

    /// A tensor does not fit the device's limits.
    #[error(
        "{what} needs {bytes} bytes, more than this device allows in one buffer ({limit} bytes, adapter '{adapter}')"
    )]
    TensorTooLarge {
        /// Which tensor.
        what: &'static str,
        /// Bytes it needs.
        bytes: u64,
        /// The device limit.
        limit: u64,
        /// Adapter name.
        adapter: String,
    },

    /// A host buffer sized from the input (the CPU reference's padded copy or
    /// output, a benchmark's random tensors) could not be allocated.
    #[error("{what} needs {bytes} bytes of host memory, more than this machine could allocate")]
    HostMemory {
        /// Which buffer.
        what: &'static str,
        /// Bytes it needs.
        bytes: u64,
    },

    /// A tensor made into an image is not `(C, H, W)` with the pixel's channel count.
    #[error(
        "an image of {channels}-channel pixels needs a (C, H, W) tensor with C = {channels} and H, W below 2^32, got shape {}",
        fmt_shape(shape)
    )]
    ImageShape {
        /// The tensor's shape.
        shape: Vec<usize>,
        /// The pixel type's channels.
        channels: usize,
    },

    /// An optimiser's hyper-parameter out of range, or gradients that do not
    /// fit the layer; the message is PyTorch's where it has one.
    #[error("{0}")]
    InvalidOptimizer(String),

    /// A forced [`Algorithm`](crate::Algorithm) cannot compute this convolution.
    #[error("algorithm '{algorithm}' cannot run this convolution: {reason}")]
    UnsupportedAlgorithm {
        /// The algorithm's name.
        algorithm: &'static str,
        /// What it needs, with the values it got.
        reason: String,
    },

    /// The device's limits are below what a kernel needs (WebGPU's defaults
    /// are enough for every kernel; downlevel devices may grant less).
    #[error(
        "kernel '{kernel}' needs {limit} >= {needed}, but adapter '{adapter}' allows {allowed}"
    )]
    DeviceLimit {
        /// The kernel.
        kernel: String,
        /// The name of the limit, as wgpu and WebGPU name it.
        limit: &'static str,
        /// What the kernel needs.
        needed: u64,
        /// What the device allows.
        allowed: u64,
        /// The adapter's name.
        adapter: String,
    },

    /// The system gave no entropy to seed a random initialisation.
    #[error("could not draw a random seed from the system: {0}")]
    Entropy(String),

    /// An algorithm name that is not one of ours.
    #[error(
        "unknown algorithm '{0}' (expected auto, direct, implicit-gemm, gemm-1x1, depthwise, blocked, winograd or blocked-bf16)"
    )]
    UnknownAlgorithm(String),

    /// A dtype name that is not one of ours.
    #[error("unknown dtype '{0}' (expected f32, f16 or bf16)")]
    UnknownDType(String),

    /// Tensors of different dtypes in one call, refused with PyTorch's
    /// message (see [`DType`](crate::DType)).
    #[error("{0}")]
    DTypeMismatch(String),

    /// A precision level name that is not one of ours.
    #[error("unknown precision '{0}' (expected highest, high or medium)")]
    UnknownPrecision(String),

    /// A backward algorithm name that is not one of ours.
    #[error("unknown backward algorithm '{0}' (expected auto, direct, blocked or implicit-gemm)")]
    UnknownBackwardAlgorithm(String),

    /// A [`GpuTensor`](crate::GpuTensor) used with an operator of another context.
    #[error(
        "the input tensor lives on another GPU context (adapter '{tensor}') than the layer (adapter '{layer}'); upload it with the layer's context"
    )]
    ContextMismatch {
        /// The tensor's adapter.
        tensor: String,
        /// The layer's adapter.
        layer: String,
    },

    /// The GPU ran out of memory.
    #[error("GPU out of memory: {0}")]
    OutOfMemory(String),

    /// wgpu reported a validation or internal error.
    #[error("GPU error: {0}")]
    Gpu(String),

    /// The device was lost; every later call on it fails with this error.
    #[error("the GPU device was lost ({0}); create a new GpuContext")]
    DeviceLost(String),

    /// A tuning table or pipeline cache file could not be read or written;
    /// the message names the file.
    #[error("tuning file {0}")]
    TuningFile(String),
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Conv2dError> = std::result::Result<T, E>;

/// Formats a shape as PyTorch prints sizes: `[1, 3, 5, 5]`.
pub(crate) fn fmt_shape(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}
