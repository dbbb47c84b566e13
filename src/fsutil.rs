//! File output that is never left half-written: write to a temporary file beside the target,
//! flush it to disk, then rename over the target.
//!
//! Output files a run will write are [`reserve`]d before the load starts: their temporary file
//! is created then (so a path that passes every check but cannot be created, such as
//! `--json /proc/foo`, fails before the run rather than losing its result after it), and
//! [`write_atomic`] later fills and renames it. An exit before that (an error, an interrupt)
//! removes the reserved files with [`discard_reserved`].
//!
//! Written by hand rather than with `tempfile::NamedTempFile::persist`: tempfile creates its
//! files with mode 0600, and a report or histogram log should get the same permissions (the
//! user's umask) as any other file the user asks for. The temporary name is unique per process,
//! and `results::args` refuses to write one path twice in a run, so no two writers share it.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::error::{Error, Result};

/// A temporary file created up front for a target path (and closed again: a run's outputs
/// hold no file descriptor during the load).
struct Reserved {
    target: PathBuf,
    tmp: PathBuf,
}

/// The reserved temporary files, taken by [`write_atomic`]. Locked only when an output is
/// reserved, written or discarded: never during the load.
static RESERVED: Mutex<Vec<Reserved>> = Mutex::new(Vec::new());

fn reserved() -> MutexGuard<'static, Vec<Reserved>> {
    RESERVED.lock().unwrap_or_else(|e| e.into_inner())
}

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

/// Creates the temporary file that [`write_atomic`] will later write `path` through; fails,
/// with the reason, when it cannot be created. Reserving a path twice is one reservation.
pub fn reserve(path: &Path) -> std::io::Result<()> {
    let mut all = reserved();
    if all.iter().any(|r| r.target == path) {
        return Ok(());
    }
    let tmp = temp_path(path).map_err(|e| std::io::Error::other(e.to_string()))?;
    File::create(&tmp)?;
    all.push(Reserved {
        target: path.to_path_buf(),
        tmp,
    });
    Ok(())
}

/// Removes the temporary files of every reserved output not written yet (before an exit).
pub fn discard_reserved() {
    for r in reserved().drain(..) {
        let _ = std::fs::remove_file(&r.tmp);
    }
}

/// Writes `data` to `path` atomically (temporary file in the same directory, then rename),
/// through its reserved temporary file when it has one.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let err = |e: std::io::Error| Error::Runtime(format!("cannot write {}: {e}", path.display()));
    // Held until the rename, so that an exit that discards the reserved files meanwhile
    // (an interrupt, from another thread) waits for it: the target is whole or untouched.
    let mut all = reserved();
    let tmp = match all.iter().position(|r| r.target == path) {
        Some(i) => all.swap_remove(i).tmp,
        None => temp_path(path)?,
    };
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

    /// One test, as [`discard_reserved`] discards every reservation in the process.
    #[test]
    fn a_reserved_file_is_created_up_front_then_written_or_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("r.json");
        reserve(&target).unwrap();
        let tmp = temp_path(&target).unwrap();
        assert!(tmp.exists() && !target.exists());
        write_atomic(&target, b"{}").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"{}");
        assert!(!tmp.exists());
        // Not creatable: refused at once.
        assert!(reserve(Path::new("/proc/loadgen-test-r.json")).is_err());
        // Discarded before it is written: no file is left.
        let other = dir.path().join("x.hlog");
        reserve(&other).unwrap();
        let tmp = temp_path(&other).unwrap();
        assert!(tmp.exists());
        discard_reserved();
        assert!(!tmp.exists() && !other.exists());
    }
}
