//! File output that is never left half-written: write to a temporary file beside the target,
//! flush it to disk, then rename over the target.
//!
//! Written by hand rather than with `tempfile::NamedTempFile::persist`: tempfile creates its
//! files with mode 0600, and a report or histogram log should get the same permissions (the
//! user's umask) as any other file the user asks for. The temporary name is unique per process,
//! and `results::args` refuses to write one path twice in a run, so no two writers share it.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes `data` to `path` atomically (temporary file in the same directory, then rename).
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let err = |e: std::io::Error| Error::Runtime(format!("cannot write {}: {e}", path.display()));
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::Usage(format!("not a file path: {}", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    let res = f.write_all(data).and_then(|_| f.sync_all());
    drop(f);
    if let Err(e) = res.and_then(|_| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    Ok(())
}
