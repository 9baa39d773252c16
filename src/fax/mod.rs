//! Fax: everything between a page and the phone line.
//!
//! [`modem`] owns the fax modem: the AT layer, the Class 1 (ITU-T T.31) driver and the serial
//! port. The T.30 engine lives beside it in `fax::t30`.

pub mod modem;
