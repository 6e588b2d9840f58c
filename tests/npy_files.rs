//! `.npy` files: every float32 spelling NumPy reads, headers that promise more
//! than the file holds, and writes that never lose a file.

use std::path::{Path, PathBuf};

use wgpu_conv2d::Tensor;
use wgpu_conv2d::npy::{read_npy, write_npy, write_npy_files};

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
        assert!(err.contains("expected float32"), "{descr}: {err}");
    }
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
