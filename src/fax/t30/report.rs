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

/// What a call is doing now, in the steps an operator follows (a coarser view of the T.30
/// phases, T.30 §2, and flow-chart nodes, Figure 5-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// Phase A: the engine has not started yet (the modem layer is setting the call up).
    Starting,
    /// Phase B before a DCS: identification and capabilities (DIS/CSI, or waiting for them).
    Negotiating,
    /// Phase B after a DCS: DCS, TCF and CFR/FTT — checking the line at the chosen speed.
    Training,
    /// Phase C on the sending side: page data (or an ECM block) going out.
    SendingPage,
    /// Phase C on the receiving side: page data (or an ECM block) coming in.
    ReceivingPage,
    /// Phase D: the post-message exchange (MPS/EOM/EOP or PPS, MCF/RTN/PPR…).
    Confirming,
    /// Phase E: DCN sent or awaited; the line is being released.
    Releasing,
    /// The engine has hung up.
    Finished,
}

/// A live view of a call for status displays: cheap to take after each event, so a driver can
/// compare it with the last one and tell its observer only of changes (never per byte).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// What the call is doing.
    pub activity: Activity,
    /// The page being handled, 1-based: the one going out (sender, from its first page's
    /// phase C on) or coming in (receiver); a receiver between pages shows the last one
    /// confirmed. `None` before the first page.
    pub page: Option<usize>,
    /// Pages in the call, when known (the sender's document; a receiver cannot know).
    pub pages_total: Option<usize>,
    /// The modulation of the DCS in force (sent or received).
    pub modulation: Option<Modulation>,
    /// CSI (when we called) or TSI (when we answered) of the remote, once heard.
    pub remote_id: Option<String>,
}
