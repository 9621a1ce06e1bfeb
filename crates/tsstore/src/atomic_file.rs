//! `atomic_write`: replace a small file so that a crash leaves either the
//! old or the new contents, never a mix, with the new ones durable once it
//! returns. The engine writes `meta.tsdb` at create and `schema.json` with
//! it; it is public so the server writes its own files the same way.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Replaces `path` with `bytes`: writes `<path>.tmp`, fsyncs it, renames
/// it over `path`, then fsyncs the directory so the rename itself survives
/// a power cut.
///
/// `mode` (unix) gives the file exactly these permission bits, e.g.
/// `Some(0o600)` for secrets: the temp file is created with them and set to
/// them (so the umask cannot change them) before any byte is written. With
/// `None` a new file gets the default permissions. Ignored elsewhere.
///
/// A stale temp file from an interrupted earlier call is removed first. On
/// failure `path` is untouched and the temp file is removed (best effort).
/// Concurrent calls on the same path must be serialized by the caller.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("keys.json");
/// tsstore::atomic_write(&path, b"{}", Some(0o600))?;
/// assert_eq!(std::fs::read(&path)?, b"{}");
/// # Ok(())
/// # }
/// ```
pub fn atomic_write(path: &Path, bytes: &[u8], mode: Option<u32>) -> io::Result<()> {
    let Some(name) = path.file_name() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} does not name a file", path.display()),
        ));
    };
    let mut tmp_name = name.to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Err(e) = write_new(&tmp, bytes, mode).and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    File::open(dir)?.sync_all()
}

/// Writes and fsyncs a fresh `tmp`. `create_new` refuses anything already
/// there, a symlink planted at the temp name included.
fn write_new(tmp: &Path, bytes: &[u8], mode: Option<u32>) -> io::Result<()> {
    match fs::remove_file(tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if let Some(mode) = mode {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(mode);
        let file = options.open(tmp)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        return finish(file, bytes);
    }
    #[cfg(not(unix))]
    let _ = mode;
    finish(options.open(tmp)?, bytes)
}

fn finish(mut file: File, bytes: &[u8]) -> io::Result<()> {
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        atomic_write(&path, b"one", None).unwrap();
        atomic_write(&path, b"two", None).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert!(!dir.path().join("a.json.tmp").exists());
    }

    #[test]
    fn a_stale_temp_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        fs::write(dir.path().join("k.tmp"), b"left over by a crash").unwrap();
        atomic_write(&path, b"new", None).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
    }

    #[cfg(unix)]
    #[test]
    fn mode_is_exact() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        atomic_write(&path, b"x", Some(0o600)).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        atomic_write(&path, b"y", Some(0o640)).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
    }

    #[test]
    fn failure_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        atomic_write(&path, b"old", None).unwrap();
        // A directory where the temp file goes makes the write fail.
        fs::create_dir(dir.path().join("f.tmp")).unwrap();
        fs::write(dir.path().join("f.tmp").join("x"), b"").unwrap();
        assert!(atomic_write(&path, b"new", None).is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert!(atomic_write(Path::new("/"), b"", None).is_err());
    }
}
