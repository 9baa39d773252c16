//! T.4 (MH, MR) and T.6 (MMR) coding of bilevel rows, one row at a time.
//!
//! PURE: bytes in, bytes out. The [`Encoder`] turns packed rows (MSB first, 1 = black, as in
//! [`crate::image::Page`]) into a coded stream with the transmission options a fax modem needs
//! (EOL fill alignment, minimum bits per scan line, RTC/EOFB); the [`Decoder`] turns a coded
//! page back into rows, either *strictly* (a file: the first error is an error naming the row)
//! or as *received lines* (modem data: a corrupt line is replaced by the previous one, decoding
//! resynchronises at the next EOL, and the copy quality is counted for T.30's MCF/RTP/RTN).
//!
//! Both work on changing elements ([`runs`]), never on single pixels, and use one-level
//! lookup tables ([`tables`]) for decoding.

pub mod bits;
mod decode;
mod encode;
pub mod runs;
pub mod tables;

pub use bits::{BitOrder, reverse_bits_in_place};
pub use decode::{
    CopyQuality, DecodeError, DecodeErrorKind, DecodeMode, DecodeOptions, Decoder, PageEnd, RowKind,
};
pub use encode::{EncodeError, EncodeOptions, Encoder};

/// Widest row the codecs accept. T.4 §2.2 pages are at most 2432 pels at 8/mm (A3) or 4864 at
/// 16/mm; ours is a generous bound that keeps every position in a `u32` and tables small.
pub const MAX_WIDTH: u32 = 16_384;

/// The coding scheme of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// T.4 §4.1 modified Huffman, one-dimensional.
    Mh,
    /// T.4 §4.2 modified READ: after each 1-D line at most `k − 1` 2-D lines. T.4 §4.2.1: K = 2
    /// at standard and 4 at fine resolution; `k = 0` means unlimited (only the first line is
    /// 1-D), which T.4 Annex A allows under ECM.
    Mr {
        /// The K parameter; 0 = unlimited.
        k: u32,
    },
    /// T.6 modified modified READ: 2-D only, no EOLs, EOFB at the end.
    Mmr,
}

impl Coding {
    /// MR with the K that T.4 §4.2.1 gives for a vertical resolution (in lines per inch):
    /// 2 at standard (≤ 100 lpi), 4 above.
    pub fn mr_for_y_dpi(y_dpi: f32) -> Coding {
        Coding::Mr {
            k: if y_dpi > 150.0 { 4 } else { 2 },
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
