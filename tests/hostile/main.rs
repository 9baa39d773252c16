//! Hostile input: one named test per attack class (issue 21).

mod dialplan;
