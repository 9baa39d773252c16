//! Hostile input: one named test per attack class (issue 21).
//!
//! Each module replays one class of attack against the real code paths (the SMTP listener, the
//! daemon, the parsers) and asserts the outcome the fix promises: refused with which reply, a
//! report sent, nothing lost, memory bounded, the daemon still up.

#[path = "../common/mod.rs"]
mod common;
#[path = "../onramp_common/mod.rs"]
mod onramp_common;

#[path = "../corpus/mod.rs"]
mod corpus;

mod console_api;
mod console_events;
mod console_pages;
mod crashloop;
mod dialplan;
mod flood;
mod http;
mod mail_parts;
mod mime;
mod ratelimit;
mod render;
mod sip;
mod smtp;
mod smtp_chunking;
mod t38;
