//! PURE: one call on the built-in loopback line — our T.30 engine sending a document to a
//! second T.30 engine of ours that answers as the far-end fax machine.
//!
//! The embedded default has no modem and no phone line, yet an email to `FAX=…@localhost`
//! should really be faxed: rendered, coded (MH/MR/MMR as negotiated), negotiated in phase B,
//! sent page by page in phase C, confirmed in phase D, released in phase E. The line
//! ([`crate::fax::t30::line::Line`]) simulates the modulations and their timing; it advances
//! its own simulated clock, so a call finishes as fast as the CPU allows and reports how long
//! it would have taken on a phone line ([`LoopbackCall::line_time`]). The daemon may stretch the
//! call on the wall clock by `loopback.pace` (see `super::runner`).
//!
//! The far end is this gateway's own onramp: the pages it accepted become a received fax
//! (`FaxIn`), routed and mailed like one from a modem.

use std::time::Duration;

use crate::fax::t30::line::{Line, LineError};
use crate::fax::t30::pages::{PagesSink, PagesSource, ReceivedPage};
use crate::fax::t30::{CallReport, Cause, Engine, EngineConfig};
use crate::image::Page;

/// Events a loopback call may take at most (ours). A call is some tens of events per page
/// (frames, ECM blocks, timeouts); 100 000 covers far more than `offramp.max_pages` while
/// bounding a misbehaving engine pair.
pub const MAX_STEPS: usize = 100_000;

/// The modem name of the loopback line in the pool, the status display and routes (`line`).
pub const LINE_NAME: &str = "loopback";

/// What happened on a loopback call.
#[derive(Debug, Clone)]
pub struct LoopbackCall {
    /// The sending (calling) engine's report: pages confirmed, cause, remote CSI.
    pub sender: CallReport,
    /// The answering engine's report: the far end's view (TSI received, pages, quality).
    pub receiver: CallReport,
    /// Pages the far end accepted, in order.
    pub received: Vec<ReceivedPage>,
    /// How long the call would have taken on a phone line (the line's simulated time).
    pub line_time: Duration,
    /// Set when the engines did not both hang up (an engine bug, or the step bound).
    pub line_error: Option<LineError>,
}

impl LoopbackCall {
    /// The sender's completion cause; a line failure counts as a lost carrier.
    pub fn cause(&self) -> Cause {
        match (&self.line_error, self.sender.cause) {
            (None, Some(c)) => c,
            _ => Cause::CarrierLost,
        }
    }
}

/// Sends `pages` (one document) from an engine with `local_id` to an answering engine with
/// `remote_id`, both with the default capabilities (V.17 14 400, ECM, MMR), as fast as the CPU
/// allows; the far end keeps the pages in [`LoopbackCall::received`].
pub fn call(pages: Vec<Page>, local_id: &str, remote_id: &str) -> LoopbackCall {
    call_with(
        PagesSource::new(vec![pages]),
        local_id,
        remote_id,
        PagesSink::new(),
        &mut |_| true,
    )
}

/// [`call`] with the pages from `source` (made one at a time, if it does so) and the far end's page sink given (the daemon's stores each accepted page in the
/// spool as it is confirmed, so [`LoopbackCall::received`] stays empty) and `step` called with
/// the line's simulated time before each event (see [`Line::run_with`]: pacing, hang-up).
pub fn call_with(
    source: PagesSource,
    local_id: &str,
    remote_id: &str,
    sink: PagesSink,
    step: &mut dyn FnMut(Duration) -> bool,
) -> LoopbackCall {
    let tx = EngineConfig {
        local_id: local_id.into(),
        ..EngineConfig::default()
    };
    let rx = EngineConfig {
        local_id: remote_id.into(),
        ..EngineConfig::default()
    };
    let received = sink.pages();
    let a = Engine::sender(tx, Box::new(source));
    let b = Engine::receiver(rx, Box::new(sink));
    let mut line = Line::new(a, b);
    let line_error = line.run_with(MAX_STEPS, step).err();
    let sender = line
        .engine(crate::fax::t30::line::Side::Caller)
        .report()
        .clone();
    let receiver = line
        .engine(crate::fax::t30::line::Side::Answerer)
        .report()
        .clone();
    let received = match received.lock() {
        Ok(mut v) => std::mem::take(&mut *v),
        Err(p) => std::mem::take(&mut *p.into_inner()),
    };
    LoopbackCall {
        sender,
        receiver,
        received,
        line_time: line.now(),
        line_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Resolution;

    fn page(seed: u32) -> Page {
        let mut p = Page::new(1728, 400, Resolution::FINE).unwrap();
        for y in (seed % 7..400).step_by(9) {
            for b in p.row_mut(y).iter_mut().step_by(3) {
                *b = 0xF0;
            }
        }
        p
    }

    #[test]
    fn two_pages_arrive_equal_and_confirmed() {
        let sent = vec![page(1), page(2)];
        let c = call(sent.clone(), "+1 212 555 0100", "+1 212 555 0123");
        assert!(c.line_error.is_none(), "{:?}", c.line_error);
        assert_eq!(c.cause(), Cause::Ok);
        assert_eq!(c.sender.pages_confirmed(), 2);
        assert_eq!(c.sender.remote_id.as_deref(), Some("+1 212 555 0123"));
        assert_eq!(c.receiver.remote_id.as_deref(), Some("+1 212 555 0100"));
        let got: Vec<Page> = c.received.into_iter().map(|r| r.page).collect();
        assert_eq!(got, sent);
        // Phase B alone takes seconds on a real line; the simulated clock says so.
        assert!(c.line_time > Duration::from_secs(3), "{:?}", c.line_time);
    }
}
