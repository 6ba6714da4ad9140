//! Reading the files around an app (busbar.toml, busbar.lock, tsconfig.json, package.json,
//! ignore files) without ever blocking: only regular files are read. A FIFO named like a
//! config file would block `open()` until something writes to it; a device or a directory is
//! not a file either. Opened non-blocking, checked with `fstat`, then read.

use std::io::Read;
use std::path::Path;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("there is no such file")]
    Missing,
    /// It exists but is a FIFO, a device, a socket or a directory.
    #[error("it is {0}, not a regular file (busbar reads only regular files)")]
    NotRegular(&'static str),
    #[error("{0}")]
    Io(std::io::Error),
}

impl ReadError {
    /// As an I/O error (`NotFound` for a missing file).
    pub fn into_io(self) -> std::io::Error {
        match self {
            ReadError::Missing => std::io::ErrorKind::NotFound.into(),
            ReadError::Io(e) => e,
            other => std::io::Error::other(other.to_string()),
        }
    }
}

fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if meta.is_dir() { "a directory" } else { "not a file" }
}

/// What is at `path`: `Ok(true)` a regular file that can be opened, `Ok(false)` nothing,
/// `Err` a file busbar will not read (and why).
pub fn check_regular(path: &Path) -> Result<bool, ReadError> {
    match open_regular(path) {
        Ok(_) => Ok(true),
        Err(ReadError::Missing) => Ok(false),
        Err(e) => Err(e),
    }
}

fn open_regular(path: &Path) -> Result<std::fs::File, ReadError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ReadError::Missing),
        Err(e) => return Err(ReadError::Io(e)),
    };
    if !meta.is_file() {
        return Err(ReadError::NotRegular(kind_of(&meta)));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        rustix::fs::OFlags::NONBLOCK.bits() as i32,
    );
    let file = options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ReadError::Missing,
        _ => ReadError::Io(e),
    })?;
    // Replaced between the check and the open: check what was opened.
    let opened = file.metadata().map_err(ReadError::Io)?;
    if !opened.is_file() {
        return Err(ReadError::NotRegular(kind_of(&opened)));
    }
    Ok(file)
}

/// The bytes of the regular file at `path`.
pub fn read_regular(path: &Path) -> Result<Vec<u8>, ReadError> {
    let mut file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(ReadError::Io)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a");
        std::fs::write(&file, "x").unwrap();
        assert_eq!(read_regular(&file).unwrap(), b"x");
        assert!(matches!(read_regular(&dir.path().join("none")), Err(ReadError::Missing)));
        assert!(matches!(read_regular(dir.path()), Err(ReadError::NotRegular("a directory"))));
        #[cfg(unix)]
        {
            let fifo = dir.path().join("fifo");
            rustix::fs::mknodat(
                rustix::fs::CWD,
                &fifo,
                rustix::fs::FileType::Fifo,
                rustix::fs::Mode::from_raw_mode(0o600),
                0,
            )
            .unwrap();
            assert!(matches!(read_regular(&fifo), Err(ReadError::NotRegular("a FIFO"))));
            assert!(read_regular(Path::new("/dev/null")).is_err());
        }
    }
}
