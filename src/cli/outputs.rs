//! The CLI's promise about files: a run never deletes or changes a file it did
//! not create, except an output it completed. Checked here, before any work:
//! no output path may be one of the input files (resolved through symlinks and
//! hard links) or the same file as another output, or a directory. Writing
//! itself (temporary file beside the target, renamed when all are written;
//! symlinks followed; FIFOs and devices written in place) is
//! [`wgpu_conv2d::npy::write_npy_files`].

use std::path::Path;

use wgpu_conv2d::npy::output_target;

/// A command-line flag and the path it was given.
pub type Named<'a> = (&'static str, &'a Path);

/// Fails, naming the flags and paths, when an output would overwrite an input
/// or another output, or cannot be a file.
pub fn check_outputs(outputs: &[Named], inputs: &[Named]) -> Result<(), String> {
    let mut targets: Vec<(&str, &Path, std::path::PathBuf)> = Vec::new();
    for &(flag, path) in outputs {
        let target = output_target(path)
            .map_err(|e| format!("{flag} {}: cannot write there ({e})", path.display()))?;
        if target.is_dir() {
            return Err(format!("{flag} {}: is a directory", path.display()));
        }
        for &(input_flag, input) in inputs {
            if same_regular_file(&target, input) {
                return Err(format!(
                    "{flag} {} is the same file as {input_flag} {}: writing it would destroy the input; choose another output path",
                    path.display(),
                    input.display()
                ));
            }
        }
        for &(other_flag, other_path, ref other) in &targets {
            let same = target == *other || same_regular_file(&target, other);
            if same {
                return Err(format!(
                    "{other_flag} {} and {flag} {} are the same file: each output needs its own path",
                    Path::display(other_path),
                    path.display()
                ));
            }
        }
        targets.push((flag, path, target));
    }
    Ok(())
}

/// Whether `a` and `b` are one regular file (through symlinks and hard links).
/// Only regular files are compared: telling them apart opens them, and opening
/// a FIFO would block.
fn same_regular_file(a: &Path, b: &Path) -> bool {
    let regular = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.is_file());
    regular(a) && regular(b) && same_file::is_same_file(a, b).unwrap_or(false)
}
