//! The onramp: received faxes become standards-exact emails, routed and delivered.
//!
//! This module owns what happens to a fax once it has been received (by a modem, dropped into
//! the inbox folder, or submitted on the command line) up to the hand-over of finished emails
//! to mail delivery ([`crate::delivery`]):
//!
//! | file | owns |
//! |---|---|
//! | [`route`] | PURE: the `[[route]]` table, first match wins |
//! | [`template`] | PURE: subject and body templates with every reception field |
//! | [`message`] | PURE: the RFC 3965 / RFC 3302 / RFC 3949 email, built with mail-builder |
//! | [`pdf`] | PURE: a small PDF writer embedding G4 (T.6 MMR) page data losslessly |
//! | [`compose`] | PURE: route + template + attachment format → the email and its envelope |
//! | [`fax_in`] | the `FaxIn` spool job: commit a received fax; route and mail it |
//! | [`inbox`] | the watched inbox folder: settle rule (PURE), sidecar (PURE), ingest |
//! | [`service`] | the workers as one service: inbox scans, `FaxIn` routing, `MailOut` delivery |
//!
//! The description of one reception, [`Reception`], is what modems, the inbox and `submit`
//! produce and what routes and templates consume.

pub mod compose;
pub mod fax_in;
pub mod inbox;
pub mod message;
pub mod pdf;
pub mod receiving;
pub mod route;
pub mod service;
pub mod template;

use serde::{Deserialize, Serialize};

/// Where a fax came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Received on a fax modem (or the built-in loopback line).
    Modem,
    /// A file dropped into the inbox folder.
    Inbox,
    /// `faxgate onramp submit`.
    Submit,
}

/// How a reception ended (the cause text is the fax engine's, in words).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "result")]
pub enum Completion {
    /// Every page confirmed and the call released normally (T.30 phase E after EOP/MCF).
    Complete,
    /// Some pages arrived, then the call failed: the pages are delivered, marked partial.
    Partial {
        /// Why the call ended early.
        cause: String,
    },
    /// No usable page arrived.
    Failed {
        /// Why.
        cause: String,
    },
}

impl Completion {
    /// True unless the reception was complete (decides `admin_copy_on_failure`).
    pub fn is_failure(&self) -> bool {
        !matches!(self, Completion::Complete)
    }
}

/// Everything known about one received fax besides its pages: routing keys and the figures the
/// templates show. Stored as the `FaxIn` job's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reception {
    /// Where it came from.
    pub source: Source,
    /// Modem (line) name.
    #[serde(default)]
    pub line: Option<String>,
    /// Dialled number (`NDID=`).
    #[serde(default)]
    pub did: Option<String>,
    /// Caller ID (`NMBR=`).
    #[serde(default)]
    pub caller: Option<String>,
    /// Remote station ID (TSI, T.30 §5.3.6.2.4).
    #[serde(default)]
    pub remote_id: Option<String>,
    /// T.33 subaddress (SUB).
    #[serde(default)]
    pub subaddress: Option<String>,
    /// Pages received.
    pub pages: u32,
    /// Call duration in seconds (0 for files).
    #[serde(default)]
    pub duration_secs: u64,
    /// Signalling rate in bit/s, when a modem call.
    #[serde(default)]
    pub speed: Option<u32>,
    /// Horizontal × vertical dpi of the pages (first page).
    #[serde(default)]
    pub resolution: Option<(u32, u32)>,
    /// Scan lines received with errors, over all pages.
    #[serde(default)]
    pub bad_lines: u32,
    /// Reception time, seconds since the Unix epoch.
    pub received: i64,
    /// How it ended.
    pub completion: Completion,
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
