//! Writing an artefact (a checkpoint, an ONNX model, a run file) atomically, without clobbering
//! what is not a regular file.
//!
//! The rule every writer of the toolkit follows:
//! - a new path or a regular file is replaced atomically: the bytes go to a temporary file in
//!   the same directory, are synced, and the temporary file is renamed over the path, so a
//!   reader sees the old file or the new one, never half of one;
//! - a symbolic link is followed (a chain of them too) and the rule applies to its target: the
//!   link stays, and the file it points at is replaced atomically (or created, when the link
//!   dangles);
//! - a FIFO, a device, a socket or a directory is refused with one sentence naming the path and
//!   what it is: renaming over `/dev/full` or a named pipe would silently replace it with a
//!   regular file.
//!
//! A replaced file keeps its permissions; a new one gets `0666` less the umask, as `fs::write`
//! would give it. Checking and renaming are not one operation: a path that changes kind in
//! between is not detected.

use std::io::Write;
use std::path::{Path, PathBuf};

/// How many symbolic links [`resolve_target`] follows before giving up (Linux's limit).
const MAX_LINKS: usize = 40;

/// Why an atomic write failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The path (or what its symbolic link points at) is not a regular file.
    #[error(
        "{} is {what}, not a regular file, so it is left alone and nothing is written{}",
        path.display(),
        via.as_ref().map(|l| format!(" (reached through the symbolic link {})", l.display())).unwrap_or_default()
    )]
    NotAFile {
        /// The path that would have been replaced (the link's target when `via` is set).
        path: PathBuf,
        /// What it is, for example `a FIFO (named pipe)`.
        what: &'static str,
        /// The symbolic link given, when the refused path was reached through one.
        via: Option<PathBuf>,
    },
    /// Symbolic links that do not end (a cycle, or more than 40 of them).
    #[error("{} is a symbolic link that leads to more than {MAX_LINKS} others (a cycle?), so nothing is written", path.display())]
    LinkLoop {
        /// The link given.
        path: PathBuf,
    },
    /// An I/O error while writing the named file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file being written.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl WriteError {
    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            WriteError::NotAFile { path, .. }
            | WriteError::LinkLoop { path }
            | WriteError::Io { path, .. } => path,
        }
    }
}

/// What a non-regular file is, in words; `None` for a regular file.
fn non_regular(ft: &std::fs::FileType) -> Option<&'static str> {
    if ft.is_file() {
        return None;
    }
    if ft.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return Some("a FIFO (named pipe)");
        }
        if ft.is_char_device() {
            return Some("a character device");
        }
        if ft.is_block_device() {
            return Some("a block device");
        }
        if ft.is_socket() {
            return Some("a socket");
        }
    }
    Some("not a regular file")
}

/// The path [`write_atomic`] would replace for `path`: `path` itself when it is absent or a
/// regular file, the end of its symbolic links when it is one; an error when that is anything
/// else.
pub fn resolve_target(path: &Path) -> Result<PathBuf, WriteError> {
    let mut cur = path.to_path_buf();
    for _ in 0..=MAX_LINKS {
        let meta = match std::fs::symlink_metadata(&cur) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(cur),
            Err(source) => return Err(WriteError::Io { path: cur, source }),
        };
        let ft = meta.file_type();
        if ft.is_symlink() {
            let to = std::fs::read_link(&cur)
                .map_err(|source| WriteError::Io { path: cur.clone(), source })?;
            cur = match cur.parent() {
                Some(parent) if to.is_relative() => parent.join(to),
                _ => to,
            };
            continue;
        }
        return match non_regular(&ft) {
            None => Ok(cur),
            Some(what) => {
                let via = (cur != path).then(|| path.to_path_buf());
                Err(WriteError::NotAFile { path: cur, what, via })
            }
        };
    }
    Err(WriteError::LinkLoop { path: path.to_path_buf() })
}

/// Writes `bytes` to `path` following the rule of this module: atomically over a regular file or
/// a new path, through a symbolic link to its target, and never over a FIFO, device, socket or
/// directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// [`write_atomic`] for content produced piece by piece: `fill` writes into the temporary file
/// (buffered), which then replaces `path` by the same rule. Nothing is replaced when `fill`
/// fails.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), WriteError> {
    let target = resolve_target(path)?;
    let io = |source| WriteError::Io { path: target.clone(), source };
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        // tempfile creates 0600; a written artefact is an ordinary file (the umask applies).
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(dir).map_err(io)?;
    // Through the inner file: tempfile's own writer adds `at path "<temporary name>"` to its
    // errors, and the message names the file the user asked for.
    {
        let mut w = std::io::BufWriter::new(tmp.as_file_mut());
        fill(&mut w).map_err(io)?;
        w.flush().map_err(io)?;
    }
    if let Ok(old) = std::fs::metadata(&target) {
        tmp.as_file().set_permissions(old.permissions()).map_err(io)?;
    }
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(&target).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_new_path_and_a_regular_file_are_written() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.bin");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let left: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "a temporary file was left behind");
    }

    #[test]
    fn a_failed_fill_leaves_the_old_file_and_no_temporary_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.bin");
        write_atomic_with(&p, |w| w.write_all(b"one")).unwrap();
        let e = write_atomic_with(&p, |w| {
            w.write_all(b"half")?;
            Err(std::io::Error::other("the source ran dry"))
        })
        .unwrap_err();
        assert!(e.to_string().contains("a.bin: the source ran dry"), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1, "a temporary file was left");
    }

    #[test]
    fn a_symlink_is_kept_and_its_target_replaced_even_when_dangling() {
        let d = tempfile::tempdir().unwrap();
        let (link, target) = (d.path().join("link"), d.path().join("target"));
        std::os::unix::fs::symlink("target", &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        write_atomic(&link, b"newer").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"newer");
    }

    #[test]
    fn a_directory_and_a_link_cycle_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let e = write_atomic(d.path(), b"x").unwrap_err();
        assert!(e.to_string().contains("is a directory, not a regular file"), "{e}");
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        let e = write_atomic(&a, b"x").unwrap_err();
        assert!(matches!(e, WriteError::LinkLoop { .. }), "{e}");
    }
}
