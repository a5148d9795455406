//! Writing a file whole or not at all: every file of a results folder that is written
//! in one piece (summary, reports, charts, `.hgrm` files, the scenario copy, a
//! comparison) goes through here.
//!
//! The content goes to a temporary file in the target's own folder (so the rename never
//! crosses a file system), is flushed to disk (`sync_all`), and is then renamed over the
//! target. A reader sees the previous complete file or the new complete file, never a
//! cut-off one; a failed write (a full disk, say) removes the temporary file, leaves the
//! previous file in place and is an error naming the target.
//!
//! Owns only the mechanism: it knows no format and no results folder.

use std::fs::File;
use std::io::Write as _;
use std::path::Path;

/// Replaces `path` with `bytes`.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_with(path, |file| file.write_all(bytes))
}

/// Replaces `path` with what `fill` writes into the (empty, temporary) file it is given.
/// If `fill` fails, `path` is left as it was.
pub fn write_with(
    path: &Path,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    replace(path, |temp| fill(temp.as_file_mut()))
}

/// Replaces `path` with the file that `fill` writes at the temporary path it is given,
/// for writers that insist on opening a path themselves (the chart backends). The
/// temporary path ends with the target's extension, which such writers may go by.
pub fn write_at(
    path: &Path,
    fill: impl FnOnce(&Path) -> std::io::Result<()>,
) -> std::io::Result<()> {
    replace(path, |temp| fill(temp.path()))
}

fn replace(
    path: &Path,
    fill: impl FnOnce(&mut tempfile::NamedTempFile) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let attempt = || -> std::io::Result<()> {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let extension = path
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        // Hidden, named after the target, and with its extension: `.summary.json.X1b2c3.json`.
        let prefix = format!(".{name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(&extension);
        // What a file created the ordinary way gets, read-write for all less the umask;
        // the temporary file would otherwise stay private to its owner after the rename.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let mut temp = builder.tempfile_in(dir)?;
        fill(&mut temp)?;
        temp.as_file_mut().flush()?;
        temp.as_file().sync_all()?;
        temp.persist(path).map_err(|e| e.error)?;
        sync_dir(dir);
        Ok(())
    };
    attempt()
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display())))
}

/// Makes the rename itself durable where the platform allows it; a failure here loses
/// nothing already written, so it is not an error.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect()
    }

    #[test]
    fn a_write_replaces_the_file_whole_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.json");
        write(&path, b"first").unwrap();
        write(&path, b"second, longer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
        assert!(leftovers(dir.path()).is_empty());
        write_at(&dir.path().join("c.png"), |temp| {
            assert_eq!(temp.extension().unwrap(), "png");
            std::fs::write(temp, b"drawn")
        })
        .unwrap();
        assert_eq!(std::fs::read(dir.path().join("c.png")).unwrap(), b"drawn");
    }

    #[test]
    fn a_failed_write_keeps_the_previous_file_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.json");
        write(&path, b"complete").unwrap();
        let err = write_with(&path, |file| {
            file.write_all(b"half")?;
            Err(std::io::Error::from_raw_os_error(28)) // ENOSPC
        })
        .unwrap_err();
        assert_eq!(
            err.raw_os_error(),
            None,
            "the message is ours, the kind kept"
        );
        assert_eq!(err.kind(), std::io::ErrorKind::StorageFull);
        assert!(
            err.to_string()
                .starts_with(&format!("cannot write {}: ", path.display())),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"complete");
        assert!(leftovers(dir.path()).is_empty());
    }
}
