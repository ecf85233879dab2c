//! Atomic file replacement: temp file in the same folder, write, fsync, rename, fsync folder.

use std::fs::{self, File, OpenOptions};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::OraError;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replaces `path` with what `write` puts in a fresh file, so that readers (and a crash at any
/// moment) see either the old file or the complete new one, never a partial one.
///
/// The temp file lives next to `path` (a rename is only atomic within one file system) and is
/// removed if `write` fails. An existing file's permissions are kept.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut File) -> Result<(), OraError>,
) -> Result<(), OraError> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let Some(file_name) = path.file_name() else {
        return Err(OraError::file(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"),
        ));
    };
    let temp_path = dir.join(format!(
        ".{}.{}-{}.tmp",
        file_name.to_string_lossy(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp_path)
        .map_err(|e| OraError::file(&temp_path, e))?;
    if let Ok(existing) = fs::metadata(path) {
        // Best effort: a file we may not chmod still gets saved.
        let _ = file.set_permissions(existing.permissions());
    }
    let written = write(&mut file).and_then(|()| file.sync_all().map_err(OraError::Io));
    drop(file);
    if let Err(error) = written {
        let _ = fs::remove_file(&temp_path);
        return Err(error);
    }
    if let Err(error) = fs::rename(&temp_path, path) {
        let _ = fs::remove_file(&temp_path);
        return Err(OraError::file(path, error));
    }
    sync_dir(dir).map_err(|e| OraError::file(dir, e))
}

/// Makes the rename itself durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn failure_leaves_the_old_file_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.ora");
        fs::write(&path, b"old").unwrap();
        let result = write_atomically(&path, |file| {
            file.write_all(b"partial")?;
            Err(OraError::InvalidStack("simulated crash".into()))
        });
        assert!(matches!(result, Err(OraError::InvalidStack(_))));
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

        write_atomically(&path, |file| Ok(file.write_all(b"new")?)).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn missing_folder_is_a_file_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/dir/a.ora");
        let result = write_atomically(&path, |_| Ok(()));
        assert!(matches!(result, Err(OraError::File { .. })), "{result:?}");
    }
}
