//! TIFF-F files (RFC 3949): the Profile S/F [`Writer`] (pages appended one at a time), the
//! [`Reader`] for any bilevel TIFF (with [`Limits`] for untrusted files), and the profile
//! [`check`]er behind `faxgate tiff-check`.
//!
//! PURE: everything goes through `Read + Seek` / `Write + Seek` arguments or byte slices.

mod check;
pub mod ifd;
mod read;
mod write;

use thiserror::Error;

use super::codec::{Coding, DecodeError};

pub use check::{Violation, check};
pub use read::{Limits, Reader, read_bytes};
pub use write::{EncodedPage, Writer};

/// Which RFC 3949 profile a file is written to or checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// RFC 3949 §3 minimal black-and-white profile: MH, 1728 wide, 204 × 98/196 dpi, and the
    /// exact layout of §3.5. What every T.37 recipient reads.
    S,
    /// RFC 3949 §4 extended black-and-white profile: MH, MR or MMR; B4/A3 widths; 200, 300,
    /// 400 dpi and superfine. For recipients known to take it.
    F(Coding),
}

impl Profile {
    /// The coding pages are written in.
    pub fn coding(self) -> Coding {
        match self {
            Profile::S => Coding::Mh,
            Profile::F(c) => c,
        }
    }
}

/// Why a TIFF could not be read or written, and whose fault that is.
#[derive(Debug, Error)]
pub enum TiffError {
    /// The underlying reader or writer failed (the environment's fault).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The file breaks the TIFF rules (the sender's fault).
    #[error("malformed TIFF (page {page}): {what}")]
    Malformed {
        /// 1-based page (0: the header).
        page: u32,
        /// What is wrong.
        what: String,
    },
    /// Valid TIFF that faxgate does not decode (e.g. JPEG compression in a bilevel page).
    #[error("unsupported TIFF (page {page}): {what}")]
    Unsupported {
        /// 1-based page.
        page: u32,
        /// What is not supported.
        what: String,
    },
    /// A grey or colour page: hand the file to a general image decoder (the rendering
    /// pipeline does).
    #[error("page {page} is not bilevel ({bits} bits × {samples} samples)")]
    NotBilevel {
        /// 1-based page.
        page: u32,
        /// BitsPerSample.
        bits: u32,
        /// SamplesPerPixel.
        samples: u32,
    },
    /// A [`Limits`] bound was exceeded (an untrusted file asked for too much).
    #[error("page {page}: {what} {value} exceeds the limit {limit}")]
    Limit {
        /// 1-based page.
        page: u32,
        /// Which limit.
        what: &'static str,
        /// The file's value.
        value: u64,
        /// The limit.
        limit: u64,
    },
    /// The coded image data is corrupt.
    #[error("page {page}: {source}")]
    Decode {
        /// 1-based page.
        page: u32,
        /// The codec's finding.
        source: DecodeError,
    },
    /// The caller asked for a page the profile does not allow (the caller's fault).
    #[error("page not allowed by the profile: {0}")]
    Profile(String),
    /// A call out of order: `write_row` with no page begun, and the like (the caller's fault).
    #[error("writer misuse: {0}")]
    Misuse(&'static str),
}

impl TiffError {
    pub(crate) fn malformed(page: u32, what: impl Into<String>) -> TiffError {
        TiffError::Malformed {
            page,
            what: what.into(),
        }
    }
    pub(crate) fn truncated() -> TiffError {
        TiffError::malformed(0, "file is truncated (an offset points past its end)")
    }
}

/// Resolutions a profile allows, in dots per inch (RFC 3949 §3.2 for S; §4 for F, which adds
/// superfine, 300 and 400).
pub(crate) fn resolution_allowed(profile_s: bool, x: f64, y: f64) -> bool {
    let near = |v: f64, set: &[f64]| set.iter().any(|s| (v - s).abs() < 0.6);
    if profile_s {
        near(x, &[200.0, 204.0]) && near(y, &[98.0, 100.0, 196.0, 200.0])
    } else {
        near(x, &[200.0, 204.0, 300.0, 400.0, 408.0])
            && near(y, &[98.0, 100.0, 196.0, 200.0, 300.0, 391.0, 400.0])
    }
}

/// Widths a profile allows (RFC 3949 §3.2: 1728 only for S; §4 adds B4/A3 and the wider
/// rows of 300/400 dpi).
pub(crate) fn width_allowed(profile_s: bool, width: u32) -> bool {
    if profile_s {
        width == 1728
    } else {
        [1728, 2048, 2432, 2592, 3072, 3648, 3456, 4096, 4864].contains(&width)
    }
}

#[cfg(test)]
mod tests;
