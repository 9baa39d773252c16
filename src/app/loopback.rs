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

use crate::fax::t30::line::{Line, LineError, Side};
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
        &mut |_, _| true,
    )
}

/// [`call`] with the pages from `source` (made one at a time, if it does so) and the far end's
/// page sink given (the daemon's stores each accepted page in the spool as it is confirmed, so
/// [`LoopbackCall::received`] stays empty) and `step` called with the line's simulated time and
/// the sending engine before each event (see [`Line::run_observed`]: pacing, hang-up, and the
/// call's progress for the status board).
pub fn call_with(
    source: PagesSource,
    local_id: &str,
    remote_id: &str,
    sink: PagesSink,
    step: &mut dyn FnMut(Duration, &Engine) -> bool,
) -> LoopbackCall {
    let tx = EngineConfig {
        local_id: local_id.into(),
        ..EngineConfig::default()
    };
    call_from(source, tx, remote_id, sink, step)
}

/// [`call_with`] from a sending engine with the options `tx` (its station ID, and the
/// attempt's ECM and speed: `crate::mail::fax_options`); the far end keeps the defaults.
pub fn call_from(
    source: PagesSource,
    tx: EngineConfig,
    remote_id: &str,
    sink: PagesSink,
    step: &mut dyn FnMut(Duration, &Engine) -> bool,
) -> LoopbackCall {
    let rx = EngineConfig {
        local_id: remote_id.into(),
        ..EngineConfig::default()
    };
    let received = sink.pages();
    let a = Engine::sender(tx, Box::new(source));
    let b = Engine::receiver(rx, Box::new(sink));
    let mut line = Line::new(a, b);
    let line_error = line
        .run_observed(MAX_STEPS, &mut |t, l| step(t, l.engine(Side::Caller)))
        .err();
    let sender = line.engine(Side::Caller).report().clone();
    let receiver = line.engine(Side::Answerer).report().clone();
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
    use crate::fax::t30::{Activity, Progress};
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

    /// The sender's options decide the call: no ECM and no V.17 give a non-ECM call at V.29
    /// 9600 although the far end offers both; a 4800 limit gives V.27 ter.
    #[test]
    fn the_senders_options_limit_ecm_and_modulation() {
        use crate::fax::t30::dis::Modulation;
        let run = |ecm: bool, v17: bool, max_bps: u32| {
            let tx = EngineConfig {
                local_id: "+1 212 555 0100".into(),
                ecm,
                v17,
                max_bps,
                ..EngineConfig::default()
            };
            let c = call_from(
                PagesSource::new(vec![vec![page(1)]]),
                tx,
                "+1 212 555 0123",
                PagesSink::new(),
                &mut |_, _| true,
            );
            assert_eq!(c.cause(), Cause::Ok);
            assert_eq!(c.received.len(), 1);
            (c.sender.ecm, c.sender.modulation, c.receiver.ecm)
        };
        assert_eq!(
            run(true, true, 14400),
            (true, Some(Modulation::V17_14400), true)
        );
        assert_eq!(
            run(false, false, 14400),
            (false, Some(Modulation::V29_9600), false)
        );
        assert_eq!(
            run(true, true, 9600),
            (true, Some(Modulation::V17_9600), true)
        );
        assert_eq!(
            run(true, false, 12000),
            (true, Some(Modulation::V29_9600), true)
        );
        assert_eq!(
            run(true, true, 4800),
            (true, Some(Modulation::V27ter4800), true)
        );
    }

    /// The distinct (activity, page) steps `progress` went through, in order.
    fn steps(seen: &[Progress]) -> Vec<(Activity, Option<usize>)> {
        let mut v: Vec<(Activity, Option<usize>)> = Vec::new();
        for p in seen {
            if v.last() != Some(&(p.activity, p.page)) {
                v.push((p.activity, p.page));
            }
        }
        v
    }

    #[test]
    fn the_sender_reports_training_each_page_of_the_total_and_the_release() {
        let mut seen = Vec::new();
        let c = call_with(
            PagesSource::new(vec![vec![page(1), page(2), page(3)]]),
            "+1 212 555 0100",
            "+1 212 555 0123",
            PagesSink::new(),
            &mut |_, e| {
                seen.push(e.progress());
                true
            },
        );
        assert_eq!(c.cause(), Cause::Ok);
        let s = steps(&seen);
        use Activity::*;
        // Identification, then training before any page number shows.
        let first_page = s.iter().position(|x| x.1.is_some()).unwrap();
        assert!(s[..first_page].contains(&(Negotiating, None)), "{s:?}");
        assert!(s[..first_page].contains(&(Training, None)), "{s:?}");
        for n in 1..=3 {
            assert!(s.contains(&(SendingPage, Some(n))), "page {n}: {s:?}");
            assert!(s.contains(&(Confirming, Some(n))), "page {n}: {s:?}");
        }
        // Pages go up one at a time and never back.
        let pages: Vec<usize> = s.iter().filter_map(|x| x.1).collect();
        assert!(
            pages.windows(2).all(|w| w[1] == w[0] || w[1] == w[0] + 1),
            "{pages:?}"
        );
        assert_eq!(s.last(), Some(&(Releasing, Some(3))), "{s:?}");
        assert!(seen.iter().all(|p| p.pages_total == Some(3)));
        let last = seen.last().unwrap();
        assert_eq!(last.remote_id.as_deref(), Some("+1 212 555 0123"));
        assert_eq!(last.modulation.map(|m| m.bps()), Some(14400));
        // Before the remote's DIS/CSI, nothing is known of it.
        assert_eq!(seen[0].remote_id, None);
        assert_eq!(seen[0].modulation, None);
    }

    #[test]
    fn the_receiver_reports_each_page_without_a_total() {
        let tx = EngineConfig {
            local_id: "+1 212 555 0100".into(),
            ..EngineConfig::default()
        };
        let a = Engine::sender(tx, Box::new(PagesSource::new(vec![vec![page(1), page(2)]])));
        let b = Engine::receiver(EngineConfig::default(), Box::new(PagesSink::new()));
        let mut line = Line::new(a, b);
        let mut seen = Vec::new();
        line.run_observed(MAX_STEPS, &mut |_, l| {
            seen.push(l.engine(Side::Answerer).progress());
            true
        })
        .unwrap();
        let s = steps(&seen);
        use Activity::*;
        assert!(s.contains(&(ReceivingPage, Some(1))), "{s:?}");
        assert!(s.contains(&(ReceivingPage, Some(2))), "{s:?}");
        assert!(!s.iter().any(|x| x.1 == Some(3)), "{s:?}");
        assert!(seen.iter().all(|p| p.pages_total.is_none()));
        assert_eq!(
            seen.last().unwrap().remote_id.as_deref(),
            Some("+1 212 555 0100")
        );
        // The answerer's end: its last view before hanging up is the release (DCN awaited).
        assert_eq!(s.last().map(|x| x.0), Some(Releasing), "{s:?}");
        assert_eq!(line.engine(Side::Answerer).progress().activity, Finished);
    }
}
