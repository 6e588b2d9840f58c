//! `.npy` files: every float32 spelling NumPy reads, headers that promise more
//! than the file holds, and writes that never lose a file.

use std::path::{Path, PathBuf};

use wgpu_conv2d::npy::{read_npy, write_npy, write_npy_files};
use wgpu_conv2d::{DType, Tensor};

fn workdir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("npy")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Byte offset of `pattern` in `bytes` (the header is ASCII after a binary magic).
fn find(bytes: &[u8], pattern: &str) -> usize {
    bytes
        .windows(pattern.len())
        .position(|w| w == pattern.as_bytes())
        .unwrap_or_else(|| panic!("{pattern:?} not in the header"))
}

fn sample() -> Tensor {
    Tensor::new([2, 3], vec![1.0, -2.0, 3.5, 0.0, 7.25, -0.5]).unwrap()
}

/// The bytes of `sample()` saved with its dtype spelled `descr` (padded to the
/// same header length, as NumPy pads with spaces).
fn with_descr(dir: &Path, descr: &str) -> PathBuf {
    let path = dir.join(format!("{}.npy", descr.replace(['<', '>', '=', '|'], "_")));
    write_npy(&path, &sample()).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let at = find(&bytes, "'<f4'");
    let mut replacement = format!("'{descr}'").into_bytes();
    replacement.resize(5, b' ');
    let mut patched = bytes.clone();
    patched[at..at + 5].copy_from_slice(&replacement);
    std::fs::write(&path, patched).unwrap();
    path
}

#[test]
fn every_float32_spelling_numpy_reads_is_read() {
    let dir = workdir("spellings");
    for descr in ["<f4", "=f4", "|f4", "f4"] {
        let got = read_npy(with_descr(&dir, descr)).unwrap_or_else(|e| panic!("{descr}: {e}"));
        assert_eq!(got, sample(), "{descr}");
    }
    for descr in ["<f8", "<i4"] {
        let err = read_npy(with_descr(&dir, descr)).unwrap_err().to_string();
        assert!(
            err.contains("expected float32 or float16"),
            "{descr}: {err}"
        );
    }
}

/// float16 files: NumPy's own (`np.save` of a float16 array, committed),
/// every spelling of `f2`, and a float16 tensor written as `'<f2'` and read
/// back with its dtype; bfloat16 (no NumPy dtype) written as `'<f4'` holding
/// its values exactly.
#[test]
fn float16_files_round_trip_and_bfloat16_is_written_as_float32() {
    let numpy = read_npy(format!(
        "{}/tests/data/numpy_float16.npy",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    assert_eq!(numpy.dtype(), DType::F16);
    assert_eq!(numpy.shape(), [2, 3]);
    assert_eq!(numpy.data(), &[1.0, -2.0, 3.5, 6.1035156e-5, 65504.0, -0.5]);
    let dir = workdir("half");
    let path = dir.join("x.npy");
    let tensor = sample().to_dtype(DType::F16);
    write_npy(&path, &tensor).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    find(&bytes, "'<f2'");
    assert_eq!(read_npy(&path).unwrap(), tensor);
    for descr in ["=f2", "|f2", "f2"] {
        let mut patched = bytes.clone();
        let at = find(&bytes, "'<f2'");
        let mut replacement = format!("'{descr}'").into_bytes();
        replacement.resize(5, b' ');
        patched[at..at + 5].copy_from_slice(&replacement);
        std::fs::write(&path, patched).unwrap();
        assert_eq!(read_npy(&path).unwrap(), tensor, "{descr}");
    }
    let bf = Tensor::new([3], vec![1.0, 1.0 + 2f32.powi(-8), -3.0e38])
        .unwrap()
        .to_dtype(DType::BF16);
    write_npy(&path, &bf).unwrap();
    find(&std::fs::read(&path).unwrap(), "'<f4'");
    let back = read_npy(&path).unwrap();
    assert_eq!(back.dtype(), DType::F32);
    assert_eq!(back.data(), bf.data());
    assert_eq!(back.to_dtype(DType::BF16), bf);
}

#[test]
fn a_header_promising_more_data_than_the_file_holds_is_an_error() {
    let dir = workdir("truncated");
    let path = dir.join("x.npy");
    write_npy(&path, &sample()).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let at = find(&bytes, "'shape': (") + "'shape': ".len();
    let tail = find(&bytes, "\n");
    for shape in [
        "(99999, 3)",
        "(4000000000000, 1)",
        "(9999999999, 9999999999)",
    ] {
        // Keep the header's length: the shape and the closing brace, then spaces.
        let mut patched = bytes.clone();
        let mut field = format!("{shape}, }}").into_bytes();
        field.resize(tail - at, b' ');
        patched[at..tail].copy_from_slice(&field);
        std::fs::write(&path, &patched).unwrap();
        let err = read_npy(&path).unwrap_err().to_string();
        assert!(
            err.contains("bytes of data") || err.contains("more than 2^64 elements"),
            "{shape}: {err}"
        );
    }
}

#[test]
fn several_files_are_written_all_or_nothing() {
    let dir = workdir("all_or_nothing");
    let first = dir.join("first.npy");
    std::fs::write(&first, b"earlier").unwrap();
    let missing_dir = dir.join("no_such_dir").join("second.npy");
    let err = write_npy_files(&[(&first, &sample()), (&missing_dir, &sample())]).unwrap_err();
    assert!(err.to_string().contains("second.npy"), "{err}");
    assert_eq!(std::fs::read(&first).unwrap(), b"earlier");
    // Two names for one file are refused before anything is written.
    let again = dir.join(".").join("first.npy");
    let err = write_npy_files(&[(&first, &sample()), (&again, &sample())]).unwrap_err();
    assert!(err.to_string().contains("same file"), "{err}");
    assert_eq!(std::fs::read(&first).unwrap(), b"earlier");
    // Success replaces the file; no temporary is left either way.
    write_npy_files(&[(&first, &sample())]).unwrap();
    assert_eq!(read_npy(&first).unwrap(), sample());
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["first.npy"], "only the written file remains");
}
