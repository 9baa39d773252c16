//! Hostile input: one named test per attack class (issue 21).

#[path = "../common/mod.rs"]
mod common;

mod mime;
