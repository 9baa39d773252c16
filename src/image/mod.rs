//! Fax images: the [`Page`] bitmap every other part of faxgate exchanges.
//!
//! PURE: no I/O beyond `Read`/`Write` arguments. Rows are packed 1 bit per pixel, most
//! significant bit first, **1 = black** (the fax convention: T.4 codes black runs), each row
//! padded to a whole byte.

mod page;
pub mod render;

pub use page::{Page, PageError, Resolution};
