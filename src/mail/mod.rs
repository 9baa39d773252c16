//! PURE mail-side logic of the offramp: who a recipient address names and what may be dialled.
//!
//! [`address`] parses RCPT forward-paths into fax recipients (RFC 3192 `FAX=+…` plus the
//! site forms) and refuses anything that smells of relaying; [`dialplan`] turns a number into
//! an E.164 destination and a dial string and applies the toll-fraud policy. Neither touches
//! files, sockets or the clock, so the SMTP session and the offramp jobs share them.

pub mod address;
pub mod dialplan;
