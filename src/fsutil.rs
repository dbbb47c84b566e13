//! File output that is never left half-written: write to a temporary file beside the target,
//! flush it to disk, then rename over the target.
//!
//! Before a run, [`check_creatable`] creates (and removes again) the temporary file of each
//! output, so that a path that passes every other check but takes no file (`--json /proc/x`)
//! fails before the load rather than losing the result after it. It is not kept open or on
//! disk during the run: a run killed with SIGKILL leaves nothing behind.
//!
//! Written by hand rather than with `tempfile::NamedTempFile::persist`: tempfile creates its
//! files with mode 0600, and a report or histogram log should get the same permissions (the
//! user's umask) as any other file the user asks for. The temporary name is unique per process,
//! and `results::args` refuses to write one path twice in a run, so no two writers share it.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The temporary file beside `path`.
fn temp_path(path: &Path) -> Result<PathBuf> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::Usage(format!("not a file path: {}", path.display())))?;
    Ok(dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    )))
}

/// Creates the temporary file that [`write_atomic`] will write `path` through, and removes it
/// again; fails with the reason when it cannot be created.
pub fn check_creatable(path: &Path) -> std::io::Result<()> {
    let tmp = temp_path(path).map_err(|e| std::io::Error::other(e.to_string()))?;
    File::create(&tmp)?;
    std::fs::remove_file(&tmp)
}

/// Writes `data` to `path` atomically (temporary file in the same directory, then rename).
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let err = |e: std::io::Error| Error::Runtime(format!("cannot write {}: {e}", path.display()));
    let tmp = temp_path(path)?;
    let mut f = File::create(&tmp).map_err(err)?;
    let res = f.write_all(data).and_then(|_| f.sync_all());
    drop(f);
    if let Err(e) = res.and_then(|_| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_creatable_check_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("r.json");
        check_creatable(&target).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        write_atomic(&target, b"{}").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"{}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A directory that takes no new file, even as root.
        assert!(check_creatable(Path::new("/proc/loadgen-test-r.json")).is_err());
    }
}
