//! The onramp: received faxes become standards-exact emails, routed and delivered.
//!
//! This module owns what happens to a fax once it has been received (by a modem, dropped into
//! the inbox folder, or submitted on the command line) up to the hand-over of finished emails
//! to mail delivery ([`crate::delivery`]):
//!
//! | file | owns |
//! |---|---|
//! | [`route`] | PURE: the `[[route]]` table, first match wins |
//! | [`pdf`] | PURE: a small PDF writer embedding G4 (T.6 MMR) page data losslessly |
//! | [`compose`] | PURE: route + template ([`crate::mail::template`]) + attachment format → the email ([`crate::delivery::message`]) and its envelope |
//! | [`fax_in`] | the `FaxIn` spool job: commit a received fax; route and mail it |
//! | [`inbox`] | the watched inbox folder: settle rule (PURE), sidecar (PURE), ingest |
//! | [`service`] | the workers as one service: inbox scans, `FaxIn` routing, `MailOut` delivery |
//!
//! The description of one reception, [`Reception`], is what modems, the inbox and `submit`
//! produce and what routes and templates consume.

pub mod compose;
pub mod fax_in;
pub mod inbox;

pub mod pdf;
pub mod receiving;
pub mod route;
pub mod service;

pub use crate::job::{Completion, Reception, Source};

impl Completion {
    /// True unless the reception was complete (decides `admin_copy_on_failure`).
    pub fn is_failure(&self) -> bool {
        !matches!(self, Completion::Complete)
    }
}

impl Reception {
    /// The keys routes match on.
    pub fn route_keys(&self) -> route::RouteKeys<'_> {
        route::RouteKeys {
            line: self.line.as_deref(),
            did: self.did.as_deref(),
            caller: self.caller.as_deref(),
            csid: self.remote_id.as_deref(),
            subaddress: self.subaddress.as_deref(),
        }
    }
}
