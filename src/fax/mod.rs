//! Fax transmission: the T.30 protocol engine and the modem drivers that carry it.
//!
//! [`t30`] is PURE: frames, page data and `now` go in; commands and the next deadline come out.
//! [`modem`] owns the fax modem: the AT layer, the Class 1 (ITU-T T.31) driver that carries
//! the engine's commands, and the serial port. [`t38`] carries the same engine over IP: T.38
//! IFP packets in UDPTL datagrams.

pub mod modem;
pub mod t30;
pub mod t38;
