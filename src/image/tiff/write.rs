//! The TIFF-F writer: pages appended one at a time, rows streamed, layout after RFC 3949 §3.5.
//!
//! Each page is laid out as: IFD (tags ascending), its X and Y resolution values right after
//! it, then the single strip of coded data; the next page's IFD follows on a word boundary.
//! The header points at the first IFD at offset 8. Fields unknown while rows stream
//! (ImageLength, RowsPerStrip, StripByteCounts) are patched when the page ends, and only then is
//! the page linked from the previous IFD, so a file synced after [`Writer::end_page`] always
//! holds whole pages. [`Writer::finish`] fills in the page total of every PageNumber.

use std::io::{Seek, SeekFrom, Write};

use super::ifd::{tag, ty};
use super::{Profile, TiffError, resolution_allowed, width_allowed};
use crate::image::codec::{BitOrder, Coding, EncodeOptions, Encoder};
use crate::image::{Page, Resolution};

/// Coded bytes are handed to the writer in chunks of this size (a row-at-a-time page never
/// sits whole in memory).
const CHUNK: usize = 64 * 1024;

/// Where a page's IFD and coded data sit, and the values patched once the page is complete.
#[derive(Debug, Clone, Copy)]
struct Slots {
    ifd: u64,
    data_start: u64,
    /// Position of the value bytes of ImageLength, RowsPerStrip, StripByteCounts, PageNumber.
    length_at: u64,
    rows_per_strip_at: u64,
    byte_count_at: u64,
    page_number_at: u64,
}

/// The page being streamed row by row.
#[derive(Debug)]
struct Current {
    enc: Encoder,
    buf: Vec<u8>,
    slots: Slots,
    data_len: u64,
    rows: u32,
}

/// One page already coded into its strip bytes: made by [`EncodedPage::encode`] on any thread
/// (pages of one file can be coded in parallel) and appended in order with
/// [`Writer::write_encoded`], which gives the same bytes as [`Writer::write_page`].
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedPage {
    profile: Profile,
    width: u32,
    resolution: Resolution,
    rows: u32,
    data: Vec<u8>,
}

impl EncodedPage {
    /// Codes `page` as `profile` asks (the coding, EOL alignment and end marker of a page
    /// written by [`Writer::write_page`]); checks the width and resolution against the
    /// profile.
    pub fn encode(page: &Page, profile: Profile) -> Result<EncodedPage, TiffError> {
        let (width, resolution) = (page.width(), page.resolution());
        let mut enc = page_encoder(profile, width, resolution)?;
        if page.height() == 0 {
            return Err(TiffError::Misuse("a page needs at least one row"));
        }
        // Text pages code to a small fraction of their packed size; start there to avoid
        // most regrowth without reserving the worst case.
        let packed = width.div_ceil(8) as usize * page.height() as usize;
        let mut data = Vec::with_capacity(packed / 8 + 1024);
        let mut rows = 0u32;
        for row in page.rows() {
            enc.encode_row(row, &mut data)
                .map_err(|e| TiffError::Profile(e.to_string()))?;
            rows += 1;
        }
        enc.finish(&mut data);
        Ok(EncodedPage {
            profile,
            width,
            resolution,
            rows,
            data,
        })
    }

    /// The coded strip (what goes between the page's IFD and the next).
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Rows on the page.
    pub fn rows(&self) -> u32 {
        self.rows
    }
}

/// Checks `width` and `resolution` against `profile` and makes the encoder its pages use.
fn page_encoder(
    profile: Profile,
    width: u32,
    resolution: Resolution,
) -> Result<Encoder, TiffError> {
    let profile_s = profile == Profile::S;
    if !width_allowed(profile_s, width) {
        return Err(TiffError::Profile(format!(
            "width {width} under {profile:?}"
        )));
    }
    let (x, y) = (f64::from(resolution.x_dpi), f64::from(resolution.y_dpi));
    if !resolution_allowed(profile_s, x, y) {
        return Err(TiffError::Profile(format!(
            "resolution {x}×{y} dpi under {profile:?}"
        )));
    }
    let coding = profile.coding();
    let opts = EncodeOptions {
        coding,
        align_eol: coding != Coding::Mmr,
        min_bits_per_line: 0,
        // RFC 3949 §3: no RTC in Profile S; T.6 pages end with EOFB.
        end_marker: coding == Coding::Mmr,
        bit_order: BitOrder::LsbFirst,
    };
    Encoder::new(width, opts).map_err(|e| TiffError::Profile(e.to_string()))
}

/// Writes a multi-page TIFF-F to any `Write + Seek`.
#[derive(Debug)]
pub struct Writer<W: Write + Seek> {
    w: W,
    base: u64,
    /// Write position relative to `base` (the end of what is written).
    end: u64,
    profile: Profile,
    /// Where the last complete page's next-IFD pointer is (the header's for none).
    link_at: u64,
    /// Where each complete page's PageNumber values are.
    page_numbers: Vec<u64>,
    cur: Option<Current>,
}

fn rational(v: f32) -> (u32, u32) {
    if (v - v.round()).abs() < 1e-4 {
        (v.round() as u32, 1)
    } else {
        ((f64::from(v) * 1000.0).round() as u32, 1000)
    }
}

impl<W: Write + Seek> Writer<W> {
    /// Starts a file at `w`'s current position (the TIFF header is written there).
    pub fn new(mut w: W, profile: Profile) -> Result<Writer<W>, TiffError> {
        let base = w.stream_position()?;
        // Header: little-endian (RFC 3949 §3.5 requires `II`), first IFD at 8.
        w.write_all(&[b'I', b'I', 42, 0, 8, 0, 0, 0])?;
        Ok(Writer {
            w,
            base,
            end: 8,
            profile,
            link_at: 4,
            page_numbers: Vec::new(),
            cur: None,
        })
    }

    /// Pages completed so far.
    pub fn pages(&self) -> u32 {
        self.page_numbers.len() as u32
    }

    /// Begins a page `width` pixels wide at `resolution`; rows follow with
    /// [`Writer::write_row`].
    pub fn begin_page(&mut self, width: u32, resolution: Resolution) -> Result<(), TiffError> {
        if self.cur.is_some() {
            return Err(TiffError::Misuse("begin_page while a page is open"));
        }
        let enc = page_encoder(self.profile, width, resolution)?;
        let slots = self.write_ifd(width, resolution)?;
        self.cur = Some(Current {
            enc,
            buf: Vec::with_capacity(CHUNK + 1024),
            slots,
            data_len: 0,
            rows: 0,
        });
        Ok(())
    }

    /// Writes a page's IFD and resolution values at the end of the file (word-aligned) and
    /// returns where its coded data starts and which values are patched later. The page's
    /// width and resolution must already be checked against the profile.
    fn write_ifd(&mut self, width: u32, resolution: Resolution) -> Result<Slots, TiffError> {
        let (compression, opt_tag, opt_val) = match self.profile.coding() {
            // T4Options bit 2: fill bits so that each EOL ends on a byte boundary.
            Coding::Mh => (3u16, tag::T4_OPTIONS, 4u32),
            Coding::Mr { .. } => (3, tag::T4_OPTIONS, 5),
            Coding::Mmr => (4, tag::T6_OPTIONS, 0),
        };
        // Word-align the IFD (TIFF 6.0 §2).
        if self.end % 2 == 1 {
            self.seek_end()?;
            self.w.write_all(&[0])?;
            self.end += 1;
        }
        let ifd = self.end;
        // (tag, type, count, value); placeholders patched at end_page / finish.
        let entries: [(u16, u16, u32, u32); 17] = [
            (tag::NEW_SUBFILE_TYPE, ty::LONG, 1, 2),
            (tag::IMAGE_WIDTH, ty::LONG, 1, width),
            (tag::IMAGE_LENGTH, ty::LONG, 1, 0),
            (tag::BITS_PER_SAMPLE, ty::SHORT, 1, 1),
            (tag::COMPRESSION, ty::SHORT, 1, u32::from(compression)),
            (tag::PHOTOMETRIC, ty::SHORT, 1, 0),
            (tag::FILL_ORDER, ty::SHORT, 1, 2),
            (tag::STRIP_OFFSETS, ty::LONG, 1, 0),
            (tag::SAMPLES_PER_PIXEL, ty::SHORT, 1, 1),
            (tag::ROWS_PER_STRIP, ty::LONG, 1, 0),
            (tag::STRIP_BYTE_COUNTS, ty::LONG, 1, 0),
            (tag::X_RESOLUTION, ty::RATIONAL, 1, 0),
            (tag::Y_RESOLUTION, ty::RATIONAL, 1, 0),
            (opt_tag, ty::LONG, 1, opt_val),
            (tag::RESOLUTION_UNIT, ty::SHORT, 1, 2),
            (tag::PAGE_NUMBER, ty::SHORT, 2, 0),
            (0, 0, 0, 0),
        ];
        let n = entries.len() - 1;
        let ifd_len = 2 + 12 * n as u64 + 4;
        let xres_at = ifd + ifd_len;
        let yres_at = xres_at + 8;
        let data_start = yres_at + 8;
        let page_index = self.page_numbers.len() as u32;
        let mut b = Vec::with_capacity(ifd_len as usize + 16);
        b.extend_from_slice(&(n as u16).to_le_bytes());
        let at =
            |t: u16| ifd + 2 + 12 * entries.iter().position(|e| e.0 == t).unwrap_or(0) as u64 + 8;
        let slots = Slots {
            ifd,
            data_start,
            length_at: at(tag::IMAGE_LENGTH),
            rows_per_strip_at: at(tag::ROWS_PER_STRIP),
            byte_count_at: at(tag::STRIP_BYTE_COUNTS),
            page_number_at: at(tag::PAGE_NUMBER),
        };
        for &(t, typ, count, v) in &entries[..n] {
            b.extend_from_slice(&t.to_le_bytes());
            b.extend_from_slice(&typ.to_le_bytes());
            b.extend_from_slice(&count.to_le_bytes());
            let v = match t {
                tag::STRIP_OFFSETS => data_start as u32,
                tag::X_RESOLUTION => xres_at as u32,
                tag::Y_RESOLUTION => yres_at as u32,
                // PageNumber: this page (0-based), total 0 = not yet known (TIFF 6.0 §8).
                tag::PAGE_NUMBER => page_index & 0xffff,
                _ => v,
            };
            if typ == ty::SHORT && count == 1 {
                b.extend_from_slice(&(v as u16).to_le_bytes());
                b.extend_from_slice(&[0, 0]);
            } else {
                b.extend_from_slice(&v.to_le_bytes());
            }
        }
        b.extend_from_slice(&0u32.to_le_bytes());
        for r in [resolution.x_dpi, resolution.y_dpi] {
            let (num, den) = rational(r);
            b.extend_from_slice(&num.to_le_bytes());
            b.extend_from_slice(&den.to_le_bytes());
        }
        if data_start > u64::from(u32::MAX) {
            return Err(TiffError::Profile("file would exceed 4 GiB".into()));
        }
        self.seek_end()?;
        self.w.write_all(&b)?;
        self.end = data_start;
        Ok(slots)
    }

    fn seek_end(&mut self) -> Result<(), TiffError> {
        self.w.seek(SeekFrom::Start(self.base + self.end))?;
        Ok(())
    }

    /// Appends one packed row (MSB first, 1 = black) to the open page.
    pub fn write_row(&mut self, row: &[u8]) -> Result<(), TiffError> {
        let cur = self
            .cur
            .as_mut()
            .ok_or(TiffError::Misuse("write_row with no page begun"))?;
        cur.enc
            .encode_row(row, &mut cur.buf)
            .map_err(|e| TiffError::Profile(e.to_string()))?;
        cur.rows += 1;
        if cur.buf.len() >= CHUNK {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<(), TiffError> {
        let Some(cur) = self.cur.as_mut() else {
            return Ok(());
        };
        if cur.buf.is_empty() {
            return Ok(());
        }
        self.w.seek(SeekFrom::Start(
            self.base + cur.slots.data_start + cur.data_len,
        ))?;
        self.w.write_all(&cur.buf)?;
        cur.data_len += cur.buf.len() as u64;
        cur.buf.clear();
        self.end = cur.slots.data_start + cur.data_len;
        Ok(())
    }

    fn patch_u32(&mut self, at: u64, v: u32) -> Result<(), TiffError> {
        self.w.seek(SeekFrom::Start(self.base + at))?;
        self.w.write_all(&v.to_le_bytes())?;
        Ok(())
    }

    /// Ends the open page: the coded data is completed, the IFD patched, and the page linked
    /// into the file.
    pub fn end_page(&mut self) -> Result<(), TiffError> {
        let Some(cur) = self.cur.as_mut() else {
            return Err(TiffError::Misuse("end_page with no page begun"));
        };
        if cur.rows == 0 {
            return Err(TiffError::Misuse("a page needs at least one row"));
        }
        cur.enc.finish(&mut cur.buf);
        self.spill()?;
        let cur = self.cur.take().ok_or(TiffError::Misuse("no page"))?;
        self.complete_page(&cur.slots, cur.data_len, cur.rows)
    }

    /// Patches a page whose coded data is all written and links it into the file.
    fn complete_page(&mut self, slots: &Slots, data_len: u64, rows: u32) -> Result<(), TiffError> {
        if slots.data_start + data_len > u64::from(u32::MAX) {
            return Err(TiffError::Profile("file would exceed 4 GiB".into()));
        }
        self.patch_u32(slots.length_at, rows)?;
        self.patch_u32(slots.rows_per_strip_at, rows)?;
        self.patch_u32(slots.byte_count_at, data_len as u32)?;
        // Link last, so a reader never sees a half-written page.
        self.patch_u32(self.link_at, slots.ifd as u32)?;
        self.link_at = slots.ifd + 2 + 12 * 16;
        self.page_numbers.push(slots.page_number_at);
        self.w.seek(SeekFrom::Start(self.base + self.end))?;
        Ok(())
    }

    /// Appends a page coded by [`EncodedPage::encode`] for this writer's profile: the same
    /// bytes [`Writer::write_page`] would have written for it.
    pub fn write_encoded(&mut self, page: &EncodedPage) -> Result<(), TiffError> {
        if self.cur.is_some() {
            return Err(TiffError::Misuse("write_encoded while a page is open"));
        }
        if page.profile != self.profile {
            return Err(TiffError::Misuse("page encoded for another profile"));
        }
        let slots = self.write_ifd(page.width, page.resolution)?;
        self.w.write_all(&page.data)?;
        let data_len = page.data.len() as u64;
        self.end = slots.data_start + data_len;
        self.complete_page(&slots, data_len, page.rows)
    }

    /// Writes a whole page.
    pub fn write_page(&mut self, page: &Page) -> Result<(), TiffError> {
        self.begin_page(page.width(), page.resolution())?;
        for row in page.rows() {
            self.write_row(row)?;
        }
        self.end_page()
    }

    /// Flushes the underlying writer (for a file, follow with `get_ref().sync_data()` to make
    /// the completed pages durable).
    pub fn flush(&mut self) -> Result<(), TiffError> {
        self.w.flush()?;
        Ok(())
    }

    /// The underlying writer.
    pub fn get_ref(&self) -> &W {
        &self.w
    }

    /// The underlying writer, mutably (seeking it breaks the file).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.w
    }

    /// Completes the file: writes every page's total into its PageNumber and returns the
    /// writer, positioned at the end. A page still open is an error (end it first).
    pub fn finish(mut self) -> Result<W, TiffError> {
        if self.cur.is_some() {
            return Err(TiffError::Misuse("finish with a page open"));
        }
        if self.page_numbers.is_empty() {
            return Err(TiffError::Misuse("a TIFF needs at least one page"));
        }
        let total = self.page_numbers.len() as u32 & 0xffff;
        for (i, at) in self.page_numbers.clone().into_iter().enumerate() {
            self.patch_u32(at, (i as u32 & 0xffff) | (total << 16))?;
        }
        self.w.seek(SeekFrom::Start(self.base + self.end))?;
        self.w.flush()?;
        Ok(self.w)
    }
}
