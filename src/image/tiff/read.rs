//! The TIFF reader: any bilevel TIFF (uncompressed, PackBits, CCITT RLE, T.4 MH/MR, T.6 MMR;
//! either FillOrder; either photometric; any number of strips), page by page, within
//! [`Limits`].

use std::collections::HashSet;
use std::io::{Read, Seek};

use super::TiffError;
use super::ifd::{Endian, Ifd, Seekable, Source, read_header, tag};
use crate::image::codec::{
    BitOrder, Coding, DecodeErrorKind, DecodeOptions, Decoder, reverse_bits_in_place,
};
use crate::image::{Page, Resolution};

/// Bounds for untrusted files; a file asking for more fails with [`TiffError::Limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Widest page.
    pub max_width: u32,
    /// Tallest page.
    pub max_height: u32,
    /// Most pages.
    pub max_pages: u32,
    /// Largest strip (compressed bytes).
    pub max_strip_bytes: u64,
    /// Most pixels in one page.
    pub max_pixels: u64,
}

impl Default for Limits {
    /// A3 at 400 dpi (4864 wide), about a metre long at superfine, 1000 pages, 16 MiB strips.
    fn default() -> Limits {
        Limits {
            max_width: 4864,
            max_height: 16_384,
            max_pages: 1000,
            max_strip_bytes: 16 << 20,
            max_pixels: crate::image::page::MAX_PIXELS,
        }
    }
}

/// Reads pages from a TIFF one at a time.
#[derive(Debug)]
pub struct Reader<R> {
    src: Seekable<R>,
    endian: Endian,
    next_ifd: u32,
    page: u32,
    limits: Limits,
    seen: HashSet<u32>,
}

impl<R: Read + Seek> Reader<R> {
    /// Opens a TIFF starting at `r`'s current position.
    pub fn new(mut r: R, limits: Limits) -> Result<Reader<R>, TiffError> {
        let base = r.stream_position()?;
        let mut src = Seekable { inner: r, base };
        let (endian, first) = read_header(&mut src)?;
        Ok(Reader {
            src,
            endian,
            next_ifd: first,
            page: 0,
            limits,
            seen: HashSet::new(),
        })
    }

    /// The next page, or `None` after the last.
    pub fn next_page(&mut self) -> Result<Option<Page>, TiffError> {
        if self.next_ifd == 0 {
            return Ok(None);
        }
        self.page += 1;
        let page = self.page;
        if page > self.limits.max_pages {
            return Err(TiffError::Limit {
                page,
                what: "pages",
                value: u64::from(page),
                limit: u64::from(self.limits.max_pages),
            });
        }
        if !self.seen.insert(self.next_ifd) {
            return Err(TiffError::malformed(page, "IFD chain loops"));
        }
        let ifd = Ifd::read(&mut self.src, self.endian, self.next_ifd, page)?;
        self.next_ifd = ifd.next;
        read_page(&mut self.src, &ifd, page, &self.limits).map(Some)
    }

    /// Every remaining page.
    pub fn read_all(&mut self) -> Result<Vec<Page>, TiffError> {
        let mut v = Vec::new();
        while let Some(p) = self.next_page()? {
            v.push(p);
        }
        Ok(v)
    }
}

/// Reads every page of a TIFF held in memory.
pub fn read_bytes(data: &[u8], limits: Limits) -> Result<Vec<Page>, TiffError> {
    Reader::new(std::io::Cursor::new(data), limits)?.read_all()
}

fn limit(page: u32, what: &'static str, value: u64, limit: u64) -> Result<(), TiffError> {
    if value > limit {
        return Err(TiffError::Limit {
            page,
            what,
            value,
            limit,
        });
    }
    Ok(())
}

/// How a page's strips are coded.
enum Scheme {
    Raw,
    PackBits,
    Ccitt(DecodeOptions),
}

pub(crate) fn read_page<S: Source>(
    src: &mut S,
    ifd: &Ifd,
    page: u32,
    limits: &Limits,
) -> Result<Page, TiffError> {
    let get = |src: &mut S, t: u16| ifd.value(src, t, page);
    let width =
        get(src, tag::IMAGE_WIDTH)?.ok_or_else(|| TiffError::malformed(page, "no ImageWidth"))?;
    let height =
        get(src, tag::IMAGE_LENGTH)?.ok_or_else(|| TiffError::malformed(page, "no ImageLength"))?;
    let bits = get(src, tag::BITS_PER_SAMPLE)?.unwrap_or(1);
    let samples = get(src, tag::SAMPLES_PER_PIXEL)?.unwrap_or(1);
    if bits != 1 || samples != 1 {
        return Err(TiffError::NotBilevel {
            page,
            bits,
            samples,
        });
    }
    if width == 0 || height == 0 {
        return Err(TiffError::malformed(
            page,
            format!("page size {width}×{height}"),
        ));
    }
    limit(page, "width", u64::from(width), u64::from(limits.max_width))?;
    limit(
        page,
        "height",
        u64::from(height),
        u64::from(limits.max_height),
    )?;
    limit(
        page,
        "pixels",
        u64::from(width) * u64::from(height),
        limits.max_pixels,
    )?;
    let compression = get(src, tag::COMPRESSION)?.unwrap_or(1);
    let photometric = get(src, tag::PHOTOMETRIC)?.unwrap_or(0);
    let fill_order = get(src, tag::FILL_ORDER)?.unwrap_or(1);
    let order = match fill_order {
        1 => BitOrder::MsbFirst,
        2 => BitOrder::LsbFirst,
        f => return Err(TiffError::malformed(page, format!("FillOrder {f}"))),
    };
    let invert = match photometric {
        0 => false,
        1 => true,
        p => {
            return Err(TiffError::Unsupported {
                page,
                what: format!("PhotometricInterpretation {p} for a bilevel page"),
            });
        }
    };
    let ccitt = |coding: Coding| {
        let mut o = DecodeOptions::new(coding);
        o.bit_order = order;
        o
    };
    let scheme = match compression {
        1 => Scheme::Raw,
        32773 => Scheme::PackBits,
        2 => {
            let mut o = ccitt(Coding::Mh);
            o.rows_byte_aligned = true;
            Scheme::Ccitt(o)
        }
        3 => {
            let t4 = get(src, tag::T4_OPTIONS)?.unwrap_or(0);
            if t4 & 2 != 0 {
                return Err(TiffError::Unsupported {
                    page,
                    what: "T.4 uncompressed mode (T4Options bit 1)".into(),
                });
            }
            Scheme::Ccitt(ccitt(if t4 & 1 != 0 {
                Coding::Mr { k: 0 }
            } else {
                Coding::Mh
            }))
        }
        4 => {
            let t6 = get(src, tag::T6_OPTIONS)?.unwrap_or(0);
            if t6 & 2 != 0 {
                return Err(TiffError::Unsupported {
                    page,
                    what: "T.6 uncompressed mode (T6Options bit 1)".into(),
                });
            }
            Scheme::Ccitt(ccitt(Coding::Mmr))
        }
        c => {
            return Err(TiffError::Unsupported {
                page,
                what: format!("Compression {c} for a bilevel page"),
            });
        }
    };
    let rows_per_strip = get(src, tag::ROWS_PER_STRIP)?
        .unwrap_or(u32::MAX)
        .clamp(1, height);
    let strips = height.div_ceil(rows_per_strip);
    let offsets = ifd
        .values(src, tag::STRIP_OFFSETS, page)?
        .ok_or_else(|| TiffError::malformed(page, "no StripOffsets"))?;
    let stride = Page::stride_for(width);
    let counts = match ifd.values(src, tag::STRIP_BYTE_COUNTS, page)? {
        Some(c) => c,
        // TIFF 6.0 lets uncompressed files omit it.
        None if compression == 1 => vec![
            (stride as u64 * u64::from(rows_per_strip)).min(u64::from(u32::MAX))
                as u32;
            offsets.len()
        ],
        None => return Err(TiffError::malformed(page, "no StripByteCounts")),
    };
    if offsets.len() < strips as usize || counts.len() < strips as usize {
        return Err(TiffError::malformed(
            page,
            format!(
                "{strips} strips needed, {} offsets and {} byte counts given",
                offsets.len(),
                counts.len()
            ),
        ));
    }
    let x_dpi = ifd.rational(src, tag::X_RESOLUTION, page)?;
    let y_dpi = ifd.rational(src, tag::Y_RESOLUTION, page)?;
    let unit = get(src, tag::RESOLUTION_UNIT)?.unwrap_or(2);
    let scale = if unit == 3 { 2.54 } else { 1.0 };
    let resolution = Resolution {
        x_dpi: x_dpi.map_or(204.0, |v| (v * scale) as f32),
        y_dpi: y_dpi.map_or(196.0, |v| (v * scale) as f32),
    };
    let mut data = vec![0u8; stride * height as usize];
    let mut buf = Vec::new();
    for s in 0..strips {
        let first = s * rows_per_strip;
        let rows = rows_per_strip.min(height - first);
        let len = u64::from(counts[s as usize]);
        limit(page, "strip bytes", len, limits.max_strip_bytes)?;
        buf.clear();
        buf.resize(len as usize, 0);
        src.read_at(u64::from(offsets[s as usize]), &mut buf)?;
        let out = &mut data[first as usize * stride..(first + rows) as usize * stride];
        match &scheme {
            Scheme::Raw => {
                if buf.len() < out.len() {
                    return Err(TiffError::malformed(
                        page,
                        format!("strip {s} has {} bytes, needs {}", buf.len(), out.len()),
                    ));
                }
                out.copy_from_slice(&buf[..out.len()]);
                if order == BitOrder::LsbFirst {
                    reverse_bits_in_place(out);
                }
            }
            Scheme::PackBits => {
                unpack_bits(&buf, out)
                    .map_err(|what| TiffError::malformed(page, format!("strip {s}: {what}")))?;
                if order == BitOrder::LsbFirst {
                    reverse_bits_in_place(out);
                }
            }
            Scheme::Ccitt(opts) => {
                let mut opts = *opts;
                opts.max_rows = rows;
                if opts.bit_order == BitOrder::LsbFirst {
                    // The strip is ours: reversing it once, 8 bytes per step, is cheaper than
                    // reversing inside the decoder's bit reader at every refill.
                    reverse_bits_in_place(&mut buf);
                    opts.bit_order = BitOrder::MsbFirst;
                }
                let mut d = Decoder::new(&buf, width, opts)
                    .map_err(|source| TiffError::Decode { page, source })?;
                for (i, row) in out.chunks_exact_mut(stride).enumerate() {
                    match d.next_row(row) {
                        Ok(Some(_)) => {}
                        Ok(None) => {
                            return Err(TiffError::Decode {
                                page,
                                source: crate::image::codec::DecodeError {
                                    row: first + i as u32,
                                    bit: d.bit_position(),
                                    kind: DecodeErrorKind::PageTooShort,
                                },
                            });
                        }
                        Err(mut e) => {
                            e.row += first;
                            return Err(TiffError::Decode { page, source: e });
                        }
                    }
                }
            }
        }
    }
    if invert {
        data.iter_mut().for_each(|b| *b = !*b);
    }
    Page::from_packed(width, height, resolution, data)
        .map_err(|e| TiffError::malformed(page, e.to_string()))
}

/// PackBits (TIFF 6.0 Section 9) into exactly `out.len()` bytes.
fn unpack_bits(mut src: &[u8], out: &mut [u8]) -> Result<(), &'static str> {
    let mut o = 0usize;
    while o < out.len() {
        let (&n, rest) = src.split_first().ok_or("PackBits data ends early")?;
        src = rest;
        let n = n as i8;
        if n >= 0 {
            let k = n as usize + 1;
            if src.len() < k || o + k > out.len() {
                return Err("PackBits literal run overflows");
            }
            out[o..o + k].copy_from_slice(&src[..k]);
            src = &src[k..];
            o += k;
        } else if n != -128 {
            let k = (1 - i32::from(n)) as usize;
            let (&b, rest) = src.split_first().ok_or("PackBits data ends early")?;
            src = rest;
            if o + k > out.len() {
                return Err("PackBits repeat run overflows");
            }
            out[o..o + k].fill(b);
            o += k;
        }
    }
    Ok(())
}
