//! Whole files (and streams) read into memory under a size limit.
//!
//! Everything the gateway reads whole — spool records and payloads, modem profiles, inbox
//! documents, the control socket's answer, the files the command line checks — has a ceiling,
//! and input over it is an error that says so ([`ReadError::TooLarge`]), never silently cut
//! to the limit and then taken for the whole thing. Memory stays bounded either way: at most
//! `limit + 1` bytes are ever read.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Why a limited read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Opening or reading failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file (or socket) read.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The input is larger than the limit; nothing of it is returned.
    #[error("{path}: {size} bytes, larger than the {limit}-byte limit")]
    TooLarge {
        /// The file (or socket) read.
        path: PathBuf,
        /// The limit, bytes.
        limit: u64,
        /// The size seen: the file's length, or (for a stream, or a file that grew while it
        /// was read) the bytes read before stopping, which is `limit + 1`.
        size: u64,
    },
}

impl From<ReadError> for io::Error {
    /// For callers whose errors carry an `io::Error` and the path already: the OS error as it
    /// was (its kind, e.g. `NotFound`, intact), or `FileTooLarge` with the sizes.
    fn from(e: ReadError) -> io::Error {
        match e {
            ReadError::Io { source, .. } => source,
            ReadError::TooLarge { limit, size, .. } => io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!("{size} bytes, larger than the {limit}-byte limit"),
            ),
        }
    }
}

/// Reads the file at `path` whole, if it is at most `limit` bytes.
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let f = File::open(path).map_err(io_at(path))?;
    read_file(f, path, limit)
}

/// [`read`] for UTF-8 text.
pub fn read_to_string(path: &Path, limit: u64) -> Result<String, ReadError> {
    String::from_utf8(read(path, limit)?).map_err(|_| ReadError::Io {
        path: path.to_path_buf(),
        // The words `Read::read_to_string` uses for the same fault.
        source: io::Error::new(
            io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ),
    })
}

/// Reads an opened file whole (named `path` in errors), if it is at most `limit` bytes. A file
/// whose length already says it is too large is refused without reading it.
pub fn read_file(f: File, path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let len = f.metadata().map_err(io_at(path))?.len();
    if len > limit {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
            limit,
            size: len,
        });
    }
    read_from(f, path, limit)
}

/// Reads `r` to its end (named `path` in errors), if it gives at most `limit` bytes.
pub fn read_from(r: impl Read, path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let mut buf = Vec::new();
    r.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(io_at(path))?;
    let size = buf.len() as u64;
    if size > limit {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
            limit,
            size,
        });
    }
    Ok(buf)
}

fn io_at(path: &Path) -> impl Fn(io::Error) -> ReadError + '_ {
    move |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_limit_is_read_one_over_is_refused_with_sizes() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"12345").unwrap();
        assert_eq!(read(&p, 5).unwrap(), b"12345");
        assert_eq!(read(&p, 6).unwrap(), b"12345");
        match read(&p, 4) {
            Err(ReadError::TooLarge { path, limit, size }) => {
                assert_eq!((path, limit, size), (p.clone(), 4, 5));
            }
            other => panic!("{other:?}"),
        }
        let e = io::Error::from(read(&p, 4).unwrap_err());
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(e.to_string(), "5 bytes, larger than the 4-byte limit");
    }

    #[test]
    fn a_file_whose_length_is_over_is_refused_with_its_length() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sparse");
        // 1 TiB, sparse: reading it would take hours, the refusal takes one fstat.
        File::create(&p).unwrap().set_len(1 << 40).unwrap();
        match read(&p, 1 << 20) {
            Err(ReadError::TooLarge { limit, size, .. }) => {
                assert_eq!((limit, size), (1 << 20, 1 << 40))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_stream_is_cut_one_past_the_limit() {
        let p = Path::new("<socket>");
        assert_eq!(read_from(&b"abc"[..], p, 3).unwrap(), b"abc");
        match read_from(std::io::repeat(b'x'), p, 10) {
            Err(ReadError::TooLarge { limit, size, .. }) => assert_eq!((limit, size), (10, 11)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_missing_file_keeps_its_error_kind_and_bad_text_is_invalid_data() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("nope");
        let e = read(&missing, 10).unwrap_err();
        assert!(e.to_string().starts_with("cannot read "), "{e}");
        assert_eq!(io::Error::from(e).kind(), io::ErrorKind::NotFound);
        let bad = d.path().join("bad");
        std::fs::write(&bad, [0xff, 0xfe]).unwrap();
        let e = read_to_string(&bad, 10).unwrap_err();
        assert_eq!(io::Error::from(e).kind(), io::ErrorKind::InvalidData);
        std::fs::write(&bad, "ok").unwrap();
        assert_eq!(read_to_string(&bad, 10).unwrap(), "ok");
    }
}
