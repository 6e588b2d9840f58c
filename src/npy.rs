//! Reading and writing `.npy` files (float32, C order), as the CLI and the
//! examples exchange tensors with NumPy and PyTorch.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use npyz::WriterBuilder;

use crate::tensor::Tensor;

/// A `.npy` file could not be read or written; the message names the file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct NpyError {
    /// The file.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

fn npy_error(path: &Path, message: impl ToString) -> NpyError {
    NpyError {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// Reads a float32 C-order `.npy` file of any rank.
pub fn read_npy(path: impl AsRef<Path>) -> Result<Tensor, NpyError> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| npy_error(path, e))?;
    let npy = npyz::NpyFile::new(BufReader::new(file))
        .map_err(|e| npy_error(path, format!("not a valid .npy file ({e})")))?;
    let descr = match npy.dtype() {
        npyz::DType::Plain(ty) => ty.to_string(),
        other => other.descr(),
    };
    if descr != "<f4" && descr != ">f4" {
        return Err(npy_error(
            path,
            format!("expected float32 data (dtype '<f4'), got dtype '{descr}'"),
        ));
    }
    if npy.order() != npyz::Order::C {
        return Err(npy_error(
            path,
            "expected C-order data, got Fortran order (save with np.ascontiguousarray)",
        ));
    }
    let shape: Vec<usize> = npy
        .shape()
        .iter()
        .map(|&d| {
            usize::try_from(d).map_err(|_| npy_error(path, format!("dimension {d} is too large")))
        })
        .collect::<Result<_, _>>()?;
    let data = npy
        .into_vec::<f32>()
        .map_err(|e| npy_error(path, format!("could not read the data ({e})")))?;
    Tensor::new(shape, data).map_err(|e| npy_error(path, e))
}

/// Writes `tensor` as a little-endian float32 C-order `.npy` file.
///
/// The data goes to a temporary file beside `path` that is renamed into place
/// only when complete, so a failed write never leaves a partial file at `path`.
pub fn write_npy(path: impl AsRef<Path>, tensor: &Tensor) -> Result<(), NpyError> {
    let path = path.as_ref();
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let write = || -> std::io::Result<()> {
        let shape: Vec<u64> = tensor.shape().iter().map(|&d| d as u64).collect();
        let mut out = BufWriter::new(File::create(&tmp)?);
        let mut writer = npyz::WriteOptions::<f32>::new()
            .default_dtype()
            .shape(&shape)
            .writer(&mut out)
            .begin_nd()?;
        writer.extend(tensor.data().iter().copied())?;
        writer.finish()?;
        out.flush()?;
        Ok(())
    };
    let result = write().and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(npy_error(path, e));
    }
    Ok(())
}
