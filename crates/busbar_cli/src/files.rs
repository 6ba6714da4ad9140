//! Writing busbar's outputs so that a failure (a full disk, a kill) leaves the old file whole:
//! each file is written to a temporary file in its own directory, synced, and renamed over the
//! old one. An existing file keeps its permissions; a new one is readable by everyone (0644),
//! like any source file.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically, creating its directory if needed.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut tmp =
        tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(".tmp").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    let permissions = match std::fs::metadata(path) {
        Ok(m) => m.permissions(),
        Err(_) => {
            #[cfg(unix)]
            {
                std::os::unix::fs::PermissionsExt::from_mode(0o644)
            }
            #[cfg(not(unix))]
            {
                tmp.as_file().metadata()?.permissions()
            }
        }
    };
    tmp.as_file().set_permissions(permissions)?;
    tmp.persist(path).map_err(|e| e.error)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A command's text output: written atomically to `file` (relative to `cwd`) when given, else
/// printed. The exit code: 0, or 2 when the file cannot be written (said on `err`).
pub(crate) fn emit(
    file: Option<&Path>,
    cwd: &Path,
    text: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    match file {
        Some(file) => {
            let path = cwd.join(file);
            match write_atomic(&path, text.as_bytes()) {
                Ok(()) => crate::EXIT_OK,
                Err(e) => {
                    let _ = writeln!(err, "error: cannot write {}: {e}", path.display());
                    crate::EXIT_USAGE
                }
            }
        }
        None => {
            let _ = out.write_all(text.as_bytes());
            crate::EXIT_OK
        }
    }
}
