//! A context's tuning table: for each key (a caller's shape class), the
//! choice a measurement made and what it measured, kept for the context's
//! life and shared by its clones; saved to and loaded from a text file so
//! that a service starts tuned. The runtime knows nothing of what the keys
//! and choices mean.
//!
//! The file has one line per entry, tab-separated: the adapter (name, backend
//! and driver, so that a table measured on one adapter is never used on
//! another), the key, the choice. Lines starting with `#` are comments.

use std::collections::BTreeMap;
#[cfg(not(target_arch = "wasm32"))]
use std::path::Path;
use std::sync::Mutex;

use crate::error::{Conv2dError, Result};

/// One measurement of a key: what was chosen and why.
#[derive(Debug, Clone, PartialEq)]
pub struct TuningRecord {
    /// The shape class measured.
    pub key: String,
    /// The choice.
    pub chosen: String,
    /// Every candidate: its name, and its time in milliseconds or why it was
    /// discarded.
    pub candidates: Vec<(String, std::result::Result<f64, String>)>,
}

/// Choices by key, and the records of the measurements this process made.
#[derive(Debug, Default)]
pub(crate) struct TuningTable {
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    /// Choices by key, for this context's adapter.
    chosen: BTreeMap<String, String>,
    /// Lines of a loaded file for other adapters, kept when saving.
    foreign: Vec<String>,
    records: Vec<TuningRecord>,
}

impl TuningTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The choice recorded for `key`.
    pub(crate) fn get(&self, key: &str) -> Option<String> {
        self.lock().chosen.get(key).cloned()
    }

    /// Records a measurement and its choice.
    pub(crate) fn insert(&self, record: TuningRecord) {
        let mut entries = self.lock();
        entries
            .chosen
            .insert(record.key.clone(), record.chosen.clone());
        entries.records.push(record);
    }

    /// The measurements this process made, in order.
    pub(crate) fn records(&self) -> Vec<TuningRecord> {
        self.lock().records.clone()
    }

    /// Every entry (this adapter's, and other adapters' from a loaded
    /// table), as the table's text.
    pub(crate) fn to_text(&self, adapter: &str) -> String {
        let entries = self.lock();
        let mut text =
            String::from("# wgpu-conv2d tuning table: adapter <TAB> shape class <TAB> choice\n");
        for line in &entries.foreign {
            text.push_str(line);
            text.push('\n');
        }
        for (key, chosen) in &entries.chosen {
            text.push_str(&format!("{adapter}\t{key}\t{chosen}\n"));
        }
        text
    }

    /// Writes [`to_text`](Self::to_text) to `path`, through a temporary file
    /// renamed over it.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn save(&self, path: &Path, adapter: &str) -> Result<()> {
        write_replacing(path, self.to_text(adapter).as_bytes())
    }

    /// Takes the entries of a table's `text` for `adapter` (and keeps the
    /// others for [`to_text`](Self::to_text)); `valid` says whether a choice
    /// is one the caller knows for a key; `source` names the text in errors. All or
    /// nothing: a text with a bad line changes nothing.
    pub(crate) fn load_text(
        &self,
        text: &str,
        source: &str,
        adapter: &str,
        valid: impl Fn(&str, &str) -> bool,
    ) -> Result<()> {
        let mut chosen = Vec::new();
        let mut foreign = Vec::new();
        for (number, line) in text.lines().enumerate() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split('\t').collect();
            let [file_adapter, key, choice] = fields[..] else {
                return Err(Conv2dError::TuningFile(format!(
                    "{source}: line {}: expected adapter, shape class and choice separated by tabs",
                    number + 1
                )));
            };
            if file_adapter != adapter {
                foreign.push(line.to_string());
            } else if valid(key, choice) {
                chosen.push((key.to_string(), choice.to_string()));
            } else {
                return Err(Conv2dError::TuningFile(format!(
                    "{source}: line {}: unknown choice '{choice}' for shape class '{key}'",
                    number + 1
                )));
            }
        }
        let mut entries = self.lock();
        entries.foreign.extend(foreign);
        entries.chosen.extend(chosen);
        Ok(())
    }

    /// [`load_text`](Self::load_text) on the file at `path`; a missing file
    /// is an empty table.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn load(
        &self,
        path: &Path,
        adapter: &str,
        valid: impl Fn(&str, &str) -> bool,
    ) -> Result<()> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Conv2dError::TuningFile(format!("{}: {e}", path.display()))),
        };
        self.load_text(&text, &path.display().to_string(), adapter, valid)
    }
}

#[cfg(not(target_arch = "wasm32"))]
/// Writes `bytes` to `path` through a new temporary file beside it, renamed
/// over it when complete: `path` is never left half written, and no other
/// file is touched (the temporary's name is this process's own, created new,
/// and removed when writing fails). A symlink stays a link: its target is
/// written.
pub(crate) fn write_replacing(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let io = |e: std::io::Error| Conv2dError::TuningFile(format!("{}: {e}", path.display()));
    let resolved = std::fs::canonicalize(path);
    let path = resolved.as_deref().unwrap_or(path);
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".tmp-{}", std::process::id()));
    let temporary = path.with_file_name(name);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temporary)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        });
    let renamed = written.and_then(|()| std::fs::rename(&temporary, path));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    renamed.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_table_loads_back_for_its_adapter_only() {
        let dir = std::env::temp_dir().join(format!("wgpu-conv2d-tuning-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("table.tsv");
        let table = TuningTable::default();
        table.insert(TuningRecord {
            key: "shape a".into(),
            chosen: "blocked".into(),
            candidates: vec![("blocked".into(), Ok(1.0))],
        });
        table.save(&path, "gpu one").unwrap();

        let other = TuningTable::default();
        other.load(&path, "gpu two", |_, _| true).unwrap();
        assert_eq!(other.get("shape a"), None, "another adapter's entry");
        other.insert(TuningRecord {
            key: "shape b".into(),
            chosen: "direct".into(),
            candidates: vec![],
        });
        other.save(&path, "gpu two").unwrap();

        let again = TuningTable::default();
        again.load(&path, "gpu one", |_, _| true).unwrap();
        assert_eq!(again.get("shape a").as_deref(), Some("blocked"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("gpu two\tshape b\tdirect"), "{text}");

        // Nothing but the table was written beside it.
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["table.tsv"]);
        std::fs::write(&path, "gpu one\tshape a\tfft\n").unwrap();
        let err = TuningTable::default()
            .load(&path, "gpu one", |_, c| c != "fft")
            .unwrap_err();
        assert!(err.to_string().contains("unknown choice 'fft'"), "{err}");
        assert!(
            TuningTable::default()
                .load(&dir.join("missing"), "gpu one", |_, _| true)
                .is_ok()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
