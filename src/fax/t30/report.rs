//! The call report: what a finished (or failed) call did, carried into emails and delivery
//! reports. Filled in by the engine as the call goes; final when the engine has hung up.

use super::cause::Cause;
use super::dis::{Coding, Modulation, VResolution, Width};
use super::page::PageQuality;
use std::time::Duration;

/// What became of one page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageOutcome {
    /// Confirmed with MCF (or MCF after the last PPS under ECM).
    Confirmed,
    /// Confirmed with RTP: accepted, but the receiver asked for a retrain.
    ConfirmedRetrain,
    /// Refused with RTN.
    Rejected,
    /// Transfer started but the call ended before a verdict.
    Unconfirmed,
}

/// One page as sent or received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRecord {
    /// Zero-based page number in the call.
    pub page: usize,
    /// The outcome.
    pub outcome: PageOutcome,
    /// Copy quality (receive side; the sender learns only the verdict).
    pub quality: Option<PageQuality>,
    /// Rate the page went at.
    pub modulation: Modulation,
    /// Coded bytes (non-ECM: as sent; ECM: the page's data, without retransmissions).
    pub bytes: usize,
}

/// The whole call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallReport {
    /// CSI (when we called) or TSI (when we answered) of the remote.
    pub remote_id: Option<String>,
    /// SUB received or sent.
    pub subaddress: Option<String>,
    /// SID received or sent.
    pub sender_id: Option<String>,
    /// A password came with the call (PWD with DTC, or SID with DCS); its value is not kept
    /// here because reports travel in email.
    pub password_received: bool,
    /// NSF octets of the remote (country code and vendor), passed through untouched.
    pub nsf: Option<Vec<u8>>,
    /// The last modulation used.
    pub modulation: Option<Modulation>,
    /// Resolution of the last document.
    pub resolution: Option<VResolution>,
    /// Coding of the last document.
    pub coding: Option<Coding>,
    /// Width of the last document.
    pub width: Option<Width>,
    /// Whether ECM was used.
    pub ecm: bool,
    /// Every page transfer attempt, in order (a page refused and sent again appears twice).
    pub pages: Vec<PageRecord>,
    /// Times the remote answered FTT.
    pub ftt_count: u32,
    /// ECM: PPRs exchanged.
    pub ppr_count: u32,
    /// ECM: CTCs sent (speed step-downs).
    pub ctc_count: u32,
    /// Call duration from engine start to hang-up.
    pub duration: Duration,
    /// Why the call ended; `None` while running.
    pub cause: Option<Cause>,
}

impl CallReport {
    /// Pages confirmed (MCF or RTP), each counted once.
    pub fn pages_confirmed(&self) -> usize {
        self.pages
            .iter()
            .filter(|p| {
                matches!(
                    p.outcome,
                    PageOutcome::Confirmed | PageOutcome::ConfirmedRetrain
                )
            })
            .count()
    }

    /// Total bad rows over all accepted pages (receive side).
    pub fn bad_rows(&self) -> u32 {
        self.pages
            .iter()
            .filter_map(|p| p.quality.map(|q| q.bad_rows))
            .sum()
    }
}
