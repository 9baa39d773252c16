//! Fax images: the [`Page`] bitmap every other part of faxgate exchanges (and its vertical
//! [`resample`]), the T.4/T.6 codecs ([`codec`]), TIFF-F files ([`tiff`]) and rendering of
//! documents into pages ([`render`]).
//!
//! PURE: no I/O beyond `Read`/`Write` arguments. Rows are packed 1 bit per pixel, most
//! significant bit first, **1 = black** (the fax convention: T.4 codes black runs), each row
//! padded to a whole byte.
//!
//! # The API others build on
//!
//! - Encoding, row at a time: [`codec::Encoder::new`]`(width, `[`codec::EncodeOptions`]` { coding:
//!   `[`codec::Coding`]`::{Mh, Mr { k }, Mmr}, align_eol, min_bits_per_line, end_marker, bit_order })`,
//!   then [`codec::Encoder::encode_row`]`(&row, &mut out)` per row and
//!   [`codec::Encoder::finish`]`(&mut out)` per page (RTC/EOFB when `end_marker`). For a modem,
//!   use `bit_order: BitOrder::LsbFirst` (T.4 transmission order), `end_marker: true` and the
//!   DCS minimum scan-line time as `min_bits_per_line` (ms × bit/s / 1000).
//! - Decoding, row at a time: [`codec::Decoder::new`]`(&data, width, `[`codec::DecodeOptions`]`
//!   { coding, mode: DecodeMode::{Strict, Received}, bit_order, rows_byte_aligned, max_rows })`,
//!   then [`codec::Decoder::next_row`]`(&mut row)` until `Ok(None)`; [`codec::Decoder::quality`]
//!   gives [`codec::CopyQuality`] `{ rows, bad_rows, longest_bad_run }` and
//!   [`codec::Decoder::end`] why the page ended ([`codec::PageEnd`]).
//! - TIFF writing: [`tiff::Writer::new`]`(w: Write + Seek, `[`tiff::Profile`]`)`, then either
//!   [`tiff::Writer::write_page`]`(&Page)` or [`tiff::Writer::begin_page`] /
//!   [`tiff::Writer::write_row`] / [`tiff::Writer::end_page`] (rows streamed, height learned at
//!   the end), [`tiff::Writer::flush`] + `get_ref().sync_data()` to make pages durable, and
//!   [`tiff::Writer::finish`] (fills in the page totals).
//! - TIFF reading: [`tiff::Reader::new`]`(r: Read + Seek, `[`tiff::Limits`]`)`, then
//!   [`tiff::Reader::next_page`] → `Option<Page>`; non-bilevel pages give
//!   [`tiff::TiffError::NotBilevel`] so the caller can hand the file to a general image decoder.
//! - Checking: [`tiff::check`]`(&bytes, `[`tiff::Profile`]`)` → every [`tiff::Violation`].

pub mod codec;
mod page;
pub mod preview;
pub mod render;
mod resample;
pub mod tiff;

pub use page::{Page, PageError, Resolution};
pub use resample::resample;
