//! Fax modems: the AT layer, the Class 1 (ITU-T T.31) and Class 2.0 (ITU-T T.32) drivers, modem
//! profiles and the serial port.
//!
//! | file | owns |
//! |---|---|
//! | [`at`] | PURE: result-code parser (final, information, unsolicited `RING`, caller ID), AT commands with their timeouts as values |
//! | [`dle`] | PURE: DLE stuffing/unstuffing, `<DLE><ETX>`/`<DLE><EOT>` (the HDLC FCS is `fax::t30::hdlc`'s) |
//! | [`class1`] | PURE: the Class 1 driver — ops (`+FTH/+FRH/+FTM/+FRM/+FTS/+FRS`, dial, answer, hang up) in, bytes and events out; the T.31 carrier numbers of a T.30 `Modulation` |
//! | [`class2`] | PURE: the Class 2.0 driver (T.32) — `+FDT/+FDR/+FET`, the `+FCS/+FPS/+FHS` reports, page data with DLE stuffing and flow control; hang-up codes mapped onto T.30 causes |
//! | [`class2_session`] | I/O: one Class 2.0 call — pages from a `PageSource` / into a `PageSink` over a [`port::Modem`], ending in the same call report as a Class 1 call |
//! | [`probe`] | PURE: what `ATI`, `AT+FCLASS=?`, `AT+FTM=?`, `AT+FRM=?` say about a modem |
//! | [`profile`] | modem-family profiles (`firmware-config/modems/*.toml`) and the fax class (`ModemClass`) |
//! | [`port`] | I/O: the serial device (the only code that touches it), reopen after loss, per-call trace, and [`port::Modem`], the blocking shell that runs driver ops |
//! | [`session`] | I/O: one call — the T.30 engine's commands carried out on a [`port::Modem`] |
//!
//! The rig facts the driver relies on (measured on iaxmodem/spandsp, and true of T.31 modems
//! generally): frames come back with their two FCS octets, then `<DLE><ETX>`, then `OK` (good
//! FCS) or `ERROR`; after `ATD` → `CONNECT` the modem is already receiving V.21 HDLC and after
//! `ATA` → `CONNECT` already sending flags; `+FRH=3` may be answered by `CONNECT` twice.

pub mod at;
pub mod class1;
pub mod class2;
pub mod class2_session;
pub mod dle;
pub mod emulate;
pub mod port;
pub mod probe;
pub mod profile;
pub mod session;

pub use class1::{Class1Driver, Event, LineCause, Op, OpFailure};
pub use profile::Profile;
