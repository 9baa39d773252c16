//! Low-level TIFF structure (TIFF 6.0 §2): byte order, IFDs and their entries, read through a
//! [`Source`] with every count and offset checked. Shared by the reader and the checker.

use std::io::{Read, Seek, SeekFrom};

use super::TiffError;

/// TIFF tags faxgate reads or writes (TIFF 6.0 §8 and Section 11; RFC 3949 §6).
pub mod tag {
    /// NewSubfileType.
    pub const NEW_SUBFILE_TYPE: u16 = 254;
    /// ImageWidth.
    pub const IMAGE_WIDTH: u16 = 256;
    /// ImageLength.
    pub const IMAGE_LENGTH: u16 = 257;
    /// BitsPerSample.
    pub const BITS_PER_SAMPLE: u16 = 258;
    /// Compression.
    pub const COMPRESSION: u16 = 259;
    /// PhotometricInterpretation.
    pub const PHOTOMETRIC: u16 = 262;
    /// FillOrder.
    pub const FILL_ORDER: u16 = 266;
    /// StripOffsets.
    pub const STRIP_OFFSETS: u16 = 273;
    /// SamplesPerPixel.
    pub const SAMPLES_PER_PIXEL: u16 = 277;
    /// RowsPerStrip.
    pub const ROWS_PER_STRIP: u16 = 278;
    /// StripByteCounts.
    pub const STRIP_BYTE_COUNTS: u16 = 279;
    /// XResolution.
    pub const X_RESOLUTION: u16 = 282;
    /// YResolution.
    pub const Y_RESOLUTION: u16 = 283;
    /// T4Options.
    pub const T4_OPTIONS: u16 = 292;
    /// T6Options.
    pub const T6_OPTIONS: u16 = 293;
    /// ResolutionUnit.
    pub const RESOLUTION_UNIT: u16 = 296;
    /// PageNumber.
    pub const PAGE_NUMBER: u16 = 297;
}

/// Field types (TIFF 6.0 §2).
pub mod ty {
    /// 8-bit unsigned.
    pub const BYTE: u16 = 1;
    /// 16-bit unsigned.
    pub const SHORT: u16 = 3;
    /// 32-bit unsigned.
    pub const LONG: u16 = 4;
    /// Two LONGs: numerator, denominator.
    pub const RATIONAL: u16 = 5;
}

/// Most entries one IFD may have (a limit of ours; fax IFDs have about 17).
pub const MAX_ENTRIES: u16 = 1024;
/// Most values one array field may have (a limit of ours: strips per page).
pub const MAX_VALUES: u32 = 65_536;

/// Random-access bytes: a slice or a `Read + Seek`.
pub trait Source {
    /// Fills `buf` from `offset`, or fails when the file is shorter.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), TiffError>;
}

impl Source for &[u8] {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), TiffError> {
        let start = usize::try_from(offset).map_err(|_| TiffError::truncated())?;
        let end = start
            .checked_add(buf.len())
            .ok_or_else(TiffError::truncated)?;
        let src = self.get(start..end).ok_or_else(TiffError::truncated)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// A `Read + Seek` as a [`Source`]; offsets are relative to where the TIFF starts.
#[derive(Debug)]
pub struct Seekable<R> {
    /// The underlying reader.
    pub inner: R,
    /// Stream position of the TIFF header.
    pub base: u64,
}

impl<R: Read + Seek> Source for Seekable<R> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), TiffError> {
        let at = self
            .base
            .checked_add(offset)
            .ok_or_else(TiffError::truncated)?;
        self.inner.seek(SeekFrom::Start(at))?;
        self.inner.read_exact(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                TiffError::truncated()
            } else {
                TiffError::Io(e)
            }
        })
    }
}

/// Byte order from the header (TIFF 6.0 §2: `II` little-endian, `MM` big-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endian {
    /// `II`.
    Little,
    /// `MM`.
    Big,
}

impl Endian {
    fn u16(self, b: [u8; 2]) -> u16 {
        match self {
            Endian::Little => u16::from_le_bytes(b),
            Endian::Big => u16::from_be_bytes(b),
        }
    }
    fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        }
    }
}

/// The 8-byte header.
pub fn read_header<S: Source>(src: &mut S) -> Result<(Endian, u32), TiffError> {
    let mut h = [0u8; 8];
    src.read_at(0, &mut h)?;
    let e = match &h[0..2] {
        b"II" => Endian::Little,
        b"MM" => Endian::Big,
        _ => return Err(TiffError::malformed(0, "not a TIFF file (byte order mark)")),
    };
    if e.u16([h[2], h[3]]) != 42 {
        if e.u16([h[2], h[3]]) == 43 {
            return Err(TiffError::Unsupported {
                page: 0,
                what: "BigTIFF".into(),
            });
        }
        return Err(TiffError::malformed(0, "not a TIFF file (magic 42)"));
    }
    Ok((e, e.u32([h[4], h[5], h[6], h[7]])))
}

/// One IFD entry as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Tag.
    pub tag: u16,
    /// Field type.
    pub ty: u16,
    /// Number of values.
    pub count: u32,
    /// The 4 value-or-offset bytes, as in the file.
    pub raw: [u8; 4],
}

/// One IFD: where it is, its entries, the next IFD's offset.
#[derive(Debug, Clone)]
pub struct Ifd {
    /// Offset of the IFD.
    pub offset: u32,
    /// Entries in file order.
    pub entries: Vec<Entry>,
    /// Offset of the next IFD (0: last).
    pub next: u32,
    /// Byte order of the file.
    pub endian: Endian,
}

fn type_size(ty: u16) -> Option<u64> {
    Some(match ty {
        1 | 2 | 6 | 7 => 1,
        3 | 8 => 2,
        4 | 9 | 11 | 13 => 4,
        5 | 10 | 12 => 8,
        _ => return None,
    })
}

impl Ifd {
    /// Reads the IFD at `offset` (`page` is for error messages).
    pub fn read<S: Source>(
        src: &mut S,
        endian: Endian,
        offset: u32,
        page: u32,
    ) -> Result<Ifd, TiffError> {
        if offset < 8 {
            return Err(TiffError::malformed(page, "IFD offset inside the header"));
        }
        let mut b2 = [0u8; 2];
        src.read_at(u64::from(offset), &mut b2)?;
        let n = endian.u16(b2);
        if n == 0 || n > MAX_ENTRIES {
            return Err(TiffError::malformed(page, format!("IFD with {n} entries")));
        }
        let mut raw = vec![0u8; 12 * usize::from(n) + 4];
        src.read_at(u64::from(offset) + 2, &mut raw)?;
        let entries = raw[..12 * usize::from(n)]
            .chunks_exact(12)
            .map(|e| Entry {
                tag: endian.u16([e[0], e[1]]),
                ty: endian.u16([e[2], e[3]]),
                count: endian.u32([e[4], e[5], e[6], e[7]]),
                raw: [e[8], e[9], e[10], e[11]],
            })
            .collect();
        let t = &raw[12 * usize::from(n)..];
        Ok(Ifd {
            offset,
            entries,
            next: endian.u32([t[0], t[1], t[2], t[3]]),
            endian,
        })
    }

    /// Byte length of the IFD itself.
    pub fn len(&self) -> u32 {
        2 + 12 * self.entries.len() as u32 + 4
    }

    /// True when there are no entries (never, for a parsed IFD).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry for `tag`.
    pub fn get(&self, tag: u16) -> Option<&Entry> {
        self.entries.iter().find(|e| e.tag == tag)
    }

    /// Offset of an entry's out-of-line values, when they do not fit in 4 bytes.
    pub fn value_offset(&self, e: &Entry) -> Option<u32> {
        let size = type_size(e.ty)? * u64::from(e.count);
        (size > 4).then(|| self.endian.u32(e.raw))
    }

    /// All values of an integer field (BYTE, SHORT, LONG) as `u32`, at most [`MAX_VALUES`].
    pub fn values<S: Source>(
        &self,
        src: &mut S,
        tag: u16,
        page: u32,
    ) -> Result<Option<Vec<u32>>, TiffError> {
        let Some(e) = self.get(tag) else {
            return Ok(None);
        };
        let size = match e.ty {
            1 => 1usize,
            3 => 2,
            4 => 4,
            _ => {
                return Err(TiffError::malformed(
                    page,
                    format!("tag {tag} has type {} where an integer is needed", e.ty),
                ));
            }
        };
        if e.count == 0 || e.count > MAX_VALUES {
            return Err(TiffError::malformed(
                page,
                format!("tag {tag} has {} values", e.count),
            ));
        }
        let total = size * e.count as usize;
        let bytes = if total <= 4 {
            e.raw[..total].to_vec()
        } else {
            let mut v = vec![0u8; total];
            src.read_at(u64::from(self.endian.u32(e.raw)), &mut v)?;
            v
        };
        Ok(Some(
            bytes
                .chunks_exact(size)
                .map(|c| match size {
                    1 => u32::from(c[0]),
                    2 => u32::from(self.endian.u16([c[0], c[1]])),
                    _ => self.endian.u32([c[0], c[1], c[2], c[3]]),
                })
                .collect(),
        ))
    }

    /// The first value of an integer field.
    pub fn value<S: Source>(
        &self,
        src: &mut S,
        tag: u16,
        page: u32,
    ) -> Result<Option<u32>, TiffError> {
        let Some(e) = self.get(tag) else {
            return Ok(None);
        };
        if e.count > 4 {
            // Only the first is wanted: do not load a long array for it.
            if let Some(off) = self.value_offset(e) {
                let size = if e.ty == 3 {
                    2
                } else if e.ty == 1 {
                    1
                } else {
                    4
                };
                let mut b = [0u8; 4];
                src.read_at(u64::from(off), &mut b[..size])?;
                return Ok(Some(match size {
                    1 => u32::from(b[0]),
                    2 => u32::from(self.endian.u16([b[0], b[1]])),
                    _ => self.endian.u32(b),
                }));
            }
        }
        Ok(self
            .values(src, tag, page)?
            .and_then(|v| v.first().copied()))
    }

    /// A RATIONAL field as `f64` (denominator 0 reads as absent).
    pub fn rational<S: Source>(
        &self,
        src: &mut S,
        tag: u16,
        page: u32,
    ) -> Result<Option<f64>, TiffError> {
        let Some(e) = self.get(tag) else {
            return Ok(None);
        };
        match e.ty {
            ty::RATIONAL => {
                let mut b = [0u8; 8];
                src.read_at(u64::from(self.endian.u32(e.raw)), &mut b)?;
                let n = self.endian.u32([b[0], b[1], b[2], b[3]]);
                let d = self.endian.u32([b[4], b[5], b[6], b[7]]);
                Ok((d != 0).then(|| f64::from(n) / f64::from(d)))
            }
            3 | 4 => Ok(self.value(src, tag, page)?.map(f64::from)),
            _ => Err(TiffError::malformed(
                page,
                format!("tag {tag} has type {}", e.ty),
            )),
        }
    }
}
