//! Reading and writing `.npy` files (float32 and float16, C order), as the
//! CLI and the examples exchange tensors with NumPy and PyTorch. bfloat16 has
//! no NumPy dtype: a bfloat16 tensor is written as float32 (`'<f4'`), whose
//! values hold it exactly, and read back with [`Tensor::to_dtype`].
//!
//! Writing never loses a file: data goes to a temporary file beside the
//! target and is renamed into place only when complete (a symlink is followed
//! and its target replaced, the link itself kept; a FIFO or device is written
//! in place, never replaced by a regular file); several files are written all
//! or nothing as far as the file system allows ([`write_npy_files`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use npyz::WriterBuilder;

use crate::dtype::DType;
use crate::error::fmt_shape;
use crate::tensor::{Tensor, try_with_capacity};

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

/// The `.npy` magic string.
const MAGIC: &[u8] = b"\x93NUMPY";

/// Float32 in this machine's byte order, as NumPy spells it in full.
const NATIVE_F4: &str = if cfg!(target_endian = "big") {
    ">f4"
} else {
    "<f4"
};

/// Float16 in this machine's byte order.
const NATIVE_F2: &str = if cfg!(target_endian = "big") {
    ">f2"
} else {
    "<f2"
};

/// Reads a float32 or float16 C-order `.npy` file of any rank, as a tensor of
/// that dtype.
///
/// Every spelling NumPy accepts for float32 and float16 is read: `'<f4'`,
/// `'>f4'`, the native-order `'=f4'`, `'|f4'` and `'f4'`, and the same with
/// `f2`. The header's shape is checked against the file's length before any
/// buffer is sized from it.
pub fn read_npy(path: impl AsRef<Path>) -> Result<Tensor, NpyError> {
    let path = path.as_ref();
    let mut file = BufReader::new(File::open(path).map_err(|e| npy_error(path, e))?);
    let file_len = fs::metadata(path).map_err(|e| npy_error(path, e))?.len();
    let invalid =
        |e: &dyn std::fmt::Display| npy_error(path, format!("not a valid .npy file ({e})"));
    let (prefix, header) = read_header(&mut file).map_err(|e| invalid(&e))?;
    let header_bytes = (prefix.len() + header.len()) as u64;
    if let Some(dims) = header_shape(&header)
        && dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .is_none()
    {
        return Err(npy_error(
            path,
            format!("its header's shape {dims:?} has more than 2^64 elements"),
        ));
    }
    let header = native_descr(&header);
    let mut rebuilt = prefix;
    // Version 1 stores the header's length in two bytes, 2 and 3 in four.
    let len_bytes = if rebuilt[6] == 1 { 2 } else { 4 };
    rebuilt.truncate(8);
    if len_bytes == 2 {
        let len = u16::try_from(header.len()).map_err(|e| invalid(&e))?;
        rebuilt.extend_from_slice(&len.to_le_bytes());
    } else {
        rebuilt.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    rebuilt.extend_from_slice(header.as_bytes());

    let npy = npyz::NpyFile::new(io::Cursor::new(rebuilt).chain(file)).map_err(|e| invalid(&e))?;
    let descr = match npy.dtype() {
        npyz::DType::Plain(ty) => ty.to_string(),
        other => other.descr(),
    };
    let dtype = match descr.as_str() {
        "<f4" | ">f4" => DType::F32,
        "<f2" | ">f2" => DType::F16,
        _ => {
            return Err(npy_error(
                path,
                format!(
                    "expected float32 or float16 data (dtype '<f4' or '<f2'), got dtype '{descr}'"
                ),
            ));
        }
    };
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
    // A header may promise more data than the file holds: check before allocating.
    let data_bytes = file_len.saturating_sub(header_bytes);
    let numel = crate::tensor::checked_numel(&shape);
    let needed = numel.and_then(|n| (n as u64).checked_mul(dtype.size() as u64));
    if needed.is_none_or(|needed| needed > data_bytes) {
        return Err(npy_error(
            path,
            format!(
                "its header's shape {} needs {} bytes of data, the file holds {data_bytes}",
                fmt_shape(&shape),
                needed.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string())
            ),
        ));
    }
    let numel = numel.unwrap_or(0);
    let mut data = try_with_capacity("the .npy data", numel).map_err(|e| npy_error(path, e))?;
    let unreadable =
        |e: &dyn std::fmt::Display| npy_error(path, format!("could not read the data ({e})"));
    if dtype == DType::F16 {
        let values = npy.data::<half::f16>().map_err(|e| unreadable(&e))?;
        for value in values.take(numel) {
            data.push(value.map_err(|e| unreadable(&e))?.to_f32());
        }
    } else {
        let values = npy.data::<f32>().map_err(|e| unreadable(&e))?;
        for value in values.take(numel) {
            data.push(value.map_err(|e| unreadable(&e))?);
        }
    }
    // float16 values are exact in f32: the conversion only marks the dtype.
    Ok(Tensor::new(shape, data)
        .map_err(|e| npy_error(path, e))?
        .to_dtype(dtype))
}

/// Reads the magic, version and header length (`prefix`) and the header text.
fn read_header(reader: &mut impl Read) -> io::Result<(Vec<u8>, String)> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut prefix = vec![0; 8];
    reader.read_exact(&mut prefix)?;
    if &prefix[..6] != MAGIC {
        return Err(bad("no .npy magic string"));
    }
    let len = match prefix[6] {
        1 => {
            let mut len = [0; 2];
            reader.read_exact(&mut len)?;
            prefix.extend_from_slice(&len);
            usize::from(u16::from_le_bytes(len))
        }
        2 | 3 => {
            let mut len = [0; 4];
            reader.read_exact(&mut len)?;
            prefix.extend_from_slice(&len);
            u32::from_le_bytes(len) as usize
        }
        v => return Err(bad(&format!("unknown format version {v}"))),
    };
    if len > 1 << 20 {
        return Err(bad("header longer than 1 MiB"));
    }
    let mut header = vec![0; len];
    reader.read_exact(&mut header)?;
    let header = String::from_utf8(header).map_err(|_| bad("header is not text"))?;
    Ok((prefix, header))
}

/// The header with a native-order float32 or float16 `descr` (`'=f4'`,
/// `'|f4'`, `'f4'`, and `f2` alike, which NumPy reads but npyz does not)
/// spelled with its byte order.
fn native_descr(header: &str) -> String {
    let Some(key_end) = ["'descr'", "\"descr\""]
        .iter()
        .find_map(|key| header.find(key).map(|at| at + key.len()))
    else {
        return header.to_string();
    };
    let Some(colon) = header[key_end..].find(':') else {
        return header.to_string();
    };
    let value_start = key_end + colon + 1;
    let value = header[value_start..].trim_start();
    let start = header.len() - value.len();
    let Some(quote) = value.chars().next().filter(|&q| q == '\'' || q == '"') else {
        return header.to_string();
    };
    let Some(end) = value[1..].find(quote) else {
        return header.to_string();
    };
    let native = match &value[1..1 + end] {
        "=f4" | "|f4" | "f4" => NATIVE_F4,
        "=f2" | "|f2" | "f2" => NATIVE_F2,
        _ => return header.to_string(),
    };
    format!(
        "{}{quote}{native}{quote}{}",
        &header[..start],
        &value[end + 2..]
    )
}

/// The dimensions of the header's `'shape'` tuple, when it reads as one:
/// checked before npyz multiplies them (which overflows on hostile headers).
fn header_shape(header: &str) -> Option<Vec<u64>> {
    let key_end = ["'shape'", "\"shape\""]
        .iter()
        .find_map(|key| header.find(key).map(|at| at + key.len()))?;
    let rest = &header[key_end..];
    let rest = rest
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('(')?;
    let tuple = &rest[..rest.find(')')?];
    tuple
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.trim_end_matches('L').parse().ok())
        .collect()
}

/// Writes `tensor` as a little-endian C-order `.npy` stream: float16 as
/// `'<f2'`, float32 and bfloat16 (no NumPy dtype; its values are exact in
/// float32) as `'<f4'`.
pub fn write_npy_to(writer: impl Write, tensor: &Tensor) -> io::Result<()> {
    let mut out = BufWriter::new(writer);
    let shape: Vec<u64> = tensor.shape().iter().map(|&d| d as u64).collect();
    if tensor.dtype() == DType::F16 {
        let mut writer = npyz::WriteOptions::<half::f16>::new()
            .default_dtype()
            .shape(&shape)
            .writer(&mut out)
            .begin_nd()?;
        writer.extend(tensor.data().iter().map(|&v| half::f16::from_f32(v)))?;
        writer.finish()?;
    } else {
        let dtype = tensor.dtype();
        let mut writer = npyz::WriteOptions::<f32>::new()
            .default_dtype()
            .shape(&shape)
            .writer(&mut out)
            .begin_nd()?;
        writer.extend(tensor.data().iter().map(|&v| dtype.round(v)))?;
        writer.finish()?;
    }
    out.flush()
}

/// Writes `tensor` as a little-endian C-order `.npy` file (float16 as
/// `'<f2'`, float32 and bfloat16 as `'<f4'`); see [`write_npy_files`] for how
/// the file at `path` is kept safe.
pub fn write_npy(path: impl AsRef<Path>, tensor: &Tensor) -> Result<(), NpyError> {
    write_npy_files(&[(path.as_ref(), tensor)])
}

/// The file a write to `path` changes: symlinks followed (also a dangling
/// one, whose target would be created), the directory made absolute.
pub fn output_target(path: &Path) -> io::Result<PathBuf> {
    let mut target = path.to_path_buf();
    let mut links = 0;
    while fs::symlink_metadata(&target).is_ok_and(|m| m.file_type().is_symlink()) {
        links += 1;
        if links > 40 {
            return Err(io::Error::other("too many levels of symbolic links"));
        }
        let link = fs::read_link(&target)?;
        target = match target.parent() {
            Some(dir) if link.is_relative() => dir.join(link),
            _ => link,
        };
    }
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::other("not a file name"))?
        .to_os_string();
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok(fs::canonicalize(dir)?.join(name))
}

/// Writes each `(path, tensor)` as [`write_npy`] does, all or nothing as far
/// as the file system allows:
///
/// - every file is first written in full to a new temporary file beside its
///   target (`.<name>.tmp-<pid>-<n>`, created exclusively, with the existing
///   file's permissions), and only when all are written are they renamed into
///   place; on any error the temporaries are removed and no target changes;
/// - a symlink at a path is followed: its target is replaced, the link kept;
/// - an existing FIFO or device (not a regular file) is written in place, last,
///   never replaced; a directory is refused;
/// - two paths that resolve to the same file are refused before anything is
///   written.
pub fn write_npy_files(files: &[(&Path, &Tensor)]) -> Result<(), NpyError> {
    let mut targets: Vec<(PathBuf, &Tensor, &Path)> = Vec::new();
    for &(path, tensor) in files {
        let target = output_target(path).map_err(|e| npy_error(path, e))?;
        if let Some((_, _, first)) = targets.iter().find(|(t, _, _)| *t == target) {
            return Err(npy_error(
                path,
                format!(
                    "is the same file as {}: every output needs its own path",
                    first.display()
                ),
            ));
        }
        targets.push((target, tensor, path));
    }
    let mut staged: Vec<(PathBuf, &PathBuf, &Path)> = Vec::new();
    let mut in_place: Vec<(&PathBuf, &Tensor, &Path)> = Vec::new();
    let result = (|| {
        for (k, (target, tensor, path)) in targets.iter().enumerate() {
            match fs::metadata(target) {
                Ok(m) if m.is_dir() => return Err(npy_error(path, "is a directory")),
                Ok(m) if !m.is_file() => {
                    in_place.push((target, tensor, path));
                    continue;
                }
                _ => {}
            }
            let tmp = temporary_beside(target, k);
            // Registered first: a partly written temporary is removed too.
            staged.push((tmp.clone(), target, path));
            write_new(&tmp, target, tensor).map_err(|e| npy_error(path, e))?;
        }
        for (target, tensor, path) in &in_place {
            let file = OpenOptions::new()
                .write(true)
                .open(target)
                .map_err(|e| npy_error(path, e))?;
            write_npy_to(file, tensor).map_err(|e| npy_error(path, e))?;
        }
        for (tmp, target, path) in &staged {
            fs::rename(tmp, target).map_err(|e| npy_error(path, e))?;
        }
        Ok(())
    })();
    if result.is_err() {
        for (tmp, _, _) in &staged {
            let _ = fs::remove_file(tmp);
        }
    }
    result
}

fn temporary_beside(target: &Path, k: usize) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(target.file_name().unwrap_or_default());
    name.push(format!(".tmp-{}-{k}", std::process::id()));
    target.with_file_name(name)
}

/// Writes `tensor` to a new file `tmp`, with the permissions of `target` when it exists.
fn write_new(tmp: &Path, target: &Path, tensor: &Tensor) -> io::Result<()> {
    let file = OpenOptions::new().write(true).create_new(true).open(tmp)?;
    if let Ok(existing) = fs::metadata(target) {
        file.set_permissions(existing.permissions())?;
    }
    write_npy_to(&file, tensor)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_order_spellings_get_their_byte_order() {
        let header = "{'descr': '=f4', 'fortran_order': False, 'shape': (2,), }      \n";
        assert_eq!(
            native_descr(header),
            format!("{{'descr': '{NATIVE_F4}', 'fortran_order': False, 'shape': (2,), }}      \n")
        );
        assert!(native_descr("{'descr': 'f4', }").contains(NATIVE_F4));
        assert!(native_descr("{\"descr\": \"|f4\", }").contains(NATIVE_F4));
        for kept in [
            "{'descr': '<f8', }",
            "{'descr': '>f4', }",
            "{'shape': (1,)}",
        ] {
            assert_eq!(native_descr(kept), kept);
        }
    }

    #[test]
    fn header_shapes_are_read_before_npyz_multiplies_them() {
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, ), }";
        assert_eq!(header_shape(header), Some(vec![2, 3]));
        assert_eq!(header_shape("{'shape': ()}"), Some(vec![]));
        assert_eq!(header_shape("{'shape': (7,)}"), Some(vec![7]));
        assert_eq!(header_shape("{'shape': 7}"), None);
    }
}
