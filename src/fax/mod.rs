//! Fax transmission: the T.30 protocol engine and (as it lands) the modem drivers that carry it.
//!
//! [`t30`] is PURE: frames, page data and `now` go in; commands and the next deadline come out.

pub mod t30;
