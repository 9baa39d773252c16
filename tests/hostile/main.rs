//! Hostile input: one named test per attack class (issue 21).

#[path = "../common/mod.rs"]
mod common;
#[path = "../onramp_common/mod.rs"]
mod onramp_common;

mod smtp;
