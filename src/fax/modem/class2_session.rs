//! I/O shell: one Class 2.0 call (ITU-T T.32) — the modem runs T.30, faxgate moves the pages.
//!
//! The T.30 [`Engine`] of the call is handed over ([`Engine::hand_over`]): its page source
//! or sink and its settings are used here, and the call's [`CallReport`] is written back with
//! [`Engine::finish_handed_over`], so the runner (CLI, daemon) treats the call exactly like a
//! Class 1 call: same report, same causes ([`HangupCode::meaning`]).
//!
//! What faxgate decides that the modem does not:
//!
//! - **Page coding** follows the `+FCS` the modem reports after `+FDT`; the scan-line fill of
//!   its ST value is put in even when it says ECM is on ([`SessionParams::page_coding`]). A
//!   modem that reports no `+FCS` for a page (some firmware only at connect, some never) gets
//!   the page coded with the call's last `+FCS`, else with what it composes from our `+FCC`
//!   and the remote's DIS ([`super::class2::Class2Driver::page_session`]).
//! - **Receive verdicts** are faxgate's own: every page is decoded as it comes and judged with
//!   the call's [`crate::fax::t30::QualityThresholds`]; when the modem's `+FPS` disagrees, `+FPS=n`
//!   overrules it before the next `+FDR` (T.32 §8.3.4).
//! - **A modem that lies about ECM** (`+FCS` says EC on, and then a page arrives with bad rows, or
//!   the remote answers RTN, which Annex A has no place for) is caught by the same checks: the
//!   page is refused (receive) or sent again (send, up to `max_rtn_per_page`), and the report
//!   says ECM was not in use.

use std::time::Instant;

use super::class1::OpFailure;
use super::class2::{
    Event, HangupCode, HangupMeaning, Op, PageResponse, PostPage, Report, SessionParams,
    SessionSource,
};
use super::port::{Modem, ModemError};
use crate::fax::t30::page::Verdict;
use crate::fax::t30::{
    Activity, CallReport, Cause, Engine, HandedOver, Modulation, PageOutcome, PageRecord, Progress,
};

/// Most pages one call may carry (ours, a backstop for the receive loop; a page sent again
/// after RTN counts again).
pub const MAX_PAGES: usize = 1000;

/// Session parameters assumed when a modem sends page data without reporting `+FCS` first
/// (ours): the T.30 minimum — MH, 3.85 l/mm, A4 (T.30 §5.3.6.2: every fax machine has them).
const FALLBACK: SessionParams = SessionParams {
    vr: 0,
    br: 0,
    wd: 0,
    ln: 2,
    df: 0,
    ec: 0,
    bf: 0,
    st: 0,
};

/// The call as it goes: the report being filled in and what the status display shows.
struct Call {
    report: CallReport,
    progress: Progress,
    session: Option<SessionParams>,
    /// The modem has reported `+FHS` (it is on hook already).
    ended: bool,
    /// The line showed that ECM was not in use, whatever `+FCS` says.
    not_ecm: bool,
}

impl Call {
    fn note(&mut self, ev: &Event) {
        let Event::Report(r) = ev else { return };
        match r {
            Report::CalledId(id) | Report::CallingId(id) => {
                self.report.remote_id = Some(id.clone());
                self.progress.remote_id = Some(id.clone());
            }
            Report::Session(p) => self.use_session(*p),
            Report::Hangup(_) => self.ended = true,
            _ => {}
        }
    }

    fn use_session(&mut self, p: SessionParams) {
        self.session = Some(p);
        self.report.modulation = p.modulation();
        self.progress.modulation = p.modulation();
        self.report.resolution = Some(p.resolution());
        if let Ok(c) = p.page_coding() {
            self.report.coding = Some(c.coding);
            self.report.width = Some(c.width);
        }
        // Claimed by the modem; withdrawn for good once the line shows otherwise.
        self.report.ecm = p.ecm() && !self.not_ecm;
    }

    fn not_ecm(&mut self) {
        self.not_ecm = true;
        self.report.ecm = false;
    }

    fn modulation(&self) -> Modulation {
        self.session
            .and_then(|p| p.modulation())
            .unwrap_or(Modulation::V27ter2400)
    }
}

/// Run a Class 2.0 call on `modem` (connected by [`Modem::dial`] or [`Modem::wait_and_answer`])
/// with `engine`'s pages; `observe` sees the engine before each step and at the end. Returns
/// the port error that ended the call early, if any (the report still says what happened).
pub fn run_call_observed(
    modem: &mut Modem,
    engine: &mut Engine,
    observe: &mut dyn FnMut(&Engine),
) -> Result<(), ModemError> {
    let start = Instant::now();
    let setup = modem.class2_call().clone();
    let mut call = Call {
        report: CallReport {
            remote_id: setup.remote_id.clone(),
            ..CallReport::default()
        },
        progress: Progress {
            activity: Activity::Negotiating,
            page: None,
            pages_total: None,
            modulation: None,
            remote_id: setup.remote_id.clone(),
        },
        session: None,
        ended: false,
        not_ecm: false,
    };
    if let Some(p) = setup.session {
        call.use_session(p);
    }
    let sending = matches!(engine.hand_over().1, HandedOver::Send(_));
    let r = if sending {
        send(modem, engine, observe, &mut call)
    } else {
        receive(modem, engine, observe, &mut call)
    };
    let (cause, port_error) = match r {
        Ok(c) => (c, None),
        Err(e) => (Cause::CarrierLost, Some(e)),
    };
    if port_error.is_none() && !call.ended {
        // The modem has not hung up by itself: end the session (T.32 §8.3.5 +FKS sends DCN),
        // then go on hook.
        if cause != Cause::Ok {
            let _ = modem.run2_with(Op::Abort, |_| {});
        }
        let _ = modem.hangup();
    }
    let mut report = call.report;
    if !sending && port_error.is_some() && report.pages_confirmed() > 0 {
        report.cause = Some(Cause::PartialReceive);
    } else {
        report.cause = Some(cause);
    }
    report.duration = start.elapsed();
    engine.finish_handed_over(report);
    observe(engine);
    match port_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn show(
    engine: &mut Engine,
    call: &mut Call,
    activity: Activity,
    observe: &mut dyn FnMut(&Engine),
) {
    call.progress.activity = activity;
    engine.set_handed_over_progress(call.progress.clone());
    observe(engine);
}

/// The cause for a hang-up status that ended the call.
fn cause_of(code: HangupCode, normal: Cause) -> Cause {
    match code.meaning() {
        HangupMeaning::Normal => normal,
        // A phase-A verdict mid-call: the line is gone.
        HangupMeaning::Line(_) => Cause::CarrierLost,
        HangupMeaning::Cause(c) => c,
    }
}

fn failed(f: OpFailure) -> Cause {
    match f {
        OpFailure::TooMuchData => Cause::TooMuchData,
        OpFailure::Protocol | OpFailure::Rejected => Cause::ProtocolError,
        _ => Cause::CarrierLost,
    }
}

/// Sending: `+FDT`, page data, `+FET` per page (T.32 §8.3.3).
fn send(
    modem: &mut Modem,
    engine: &mut Engine,
    observe: &mut dyn FnMut(&Engine),
    call: &mut Call,
) -> Result<Cause, ModemError> {
    let max_rtn = engine.config().max_rtn_per_page;
    let total = match engine.hand_over().1 {
        HandedOver::Send(s) => s.page_count(),
        HandedOver::Receive(_) => return Ok(Cause::LocalAbort),
    };
    call.progress.pages_total = Some(total);
    if total == 0 {
        return Ok(Cause::DocumentError);
    }
    let mut page = 0usize;
    let mut rtn = 0u32;
    for _ in 0..MAX_PAGES {
        call.progress.page = Some(page + 1);
        show(engine, call, Activity::Training, observe);
        match modem.run2_with(Op::SendPage, |e| call.note(e))? {
            Event::ReadyForData => {}
            Event::Ended(code) => return Ok(cause_of(code, Cause::UnexpectedDcn)),
            Event::Failed(f) => return Ok(failed(f)),
            _ => return Ok(Cause::ProtocolError),
        }
        // Without +FCS for this page: the call's last one, else what the modem makes of our
        // +FCC and the remote's DIS (a modem that reports +FCS only at connect, or never).
        let session = modem.class2_page_session();
        if let Some((p, source)) = session {
            if source != SessionSource::Reported {
                tracing::info!(params = %p.to_args(), ?source, "class 2.0 modem sent no +FCS for this page");
            }
            call.use_session(p);
        }
        let coding = match session.map(|(p, _)| p.page_coding()) {
            Some(Ok(c)) => c,
            other => {
                tracing::warn!(?other, "class 2.0 modem negotiated no usable page coding");
                let _ = modem.run2_with(Op::Cancel, |e| call.note(e));
                return Ok(Cause::ProtocolError);
            }
        };
        let data = match engine.hand_over().1 {
            HandedOver::Send(s) => s.encode(page, &coding),
            HandedOver::Receive(_) => return Ok(Cause::LocalAbort),
        };
        let data = match data {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "page not coded");
                let _ = modem.run2_with(Op::Cancel, |e| call.note(e));
                return Ok(Cause::DocumentError);
            }
        };
        let bytes = data.len();
        // The rate this page goes at: a +FCS with the page's answer is for the next one.
        let modulation = call.modulation();
        show(engine, call, Activity::SendingPage, observe);
        match modem.run2_with(Op::PageData(data), |e| call.note(e))? {
            Event::PageSent => {}
            Event::Ended(code) => return Ok(cause_of(code, Cause::UnexpectedDcn)),
            Event::Failed(f) => return Ok(failed(f)),
            _ => return Ok(Cause::ProtocolError),
        }
        let ends_doc = match engine.hand_over().1 {
            HandedOver::Send(s) => s.ends_document(page),
            HandedOver::Receive(_) => true,
        };
        let post = if page + 1 == total {
            PostPage::Eop
        } else if ends_doc {
            PostPage::Eom
        } else {
            PostPage::Mps
        };
        show(engine, call, Activity::Confirming, observe);
        let (response, hangup) = match modem.run2_with(Op::EndPage(post), |e| call.note(e))? {
            Event::PageAnswered { response, hangup } => (response, hangup),
            Event::Ended(code) => return Ok(cause_of(code, Cause::UnexpectedDcn)),
            Event::Failed(f) => return Ok(failed(f)),
            _ => return Ok(Cause::ProtocolError),
        };
        let outcome = match response {
            PageResponse::Mcf | PageResponse::Pip => PageOutcome::Confirmed,
            PageResponse::Rtp => PageOutcome::ConfirmedRetrain,
            PageResponse::Rtn | PageResponse::Pin => PageOutcome::Rejected,
        };
        call.report.pages.push(PageRecord {
            page,
            outcome,
            quality: None,
            modulation,
            bytes,
        });
        match response {
            PageResponse::Mcf | PageResponse::Rtp => {
                page += 1;
                rtn = 0;
                if page == total {
                    return Ok(Cause::Ok);
                }
            }
            PageResponse::Rtn => {
                // Annex A has no RTN: a modem that said ECM did not use it.
                call.not_ecm();
                rtn += 1;
                if rtn > max_rtn {
                    return Ok(Cause::PageRejected);
                }
            }
            PageResponse::Pin | PageResponse::Pip => return Ok(Cause::Interrupted),
        }
        if let Some(code) = hangup {
            // The modem ended the call with pages still to go.
            let normal = if response == PageResponse::Rtn {
                Cause::PageRejected
            } else {
                Cause::UnexpectedDcn
            };
            return Ok(cause_of(code, normal));
        }
    }
    Ok(Cause::ProtocolError)
}

/// Receiving: `+FDR` per page, our own verdict, `+FPS=n` when the modem's differs (T.32
/// §8.3.4).
fn receive(
    modem: &mut Modem,
    engine: &mut Engine,
    observe: &mut dyn FnMut(&Engine),
    call: &mut Call,
) -> Result<Cause, ModemError> {
    let thresholds = engine.config().quality;
    let max_bytes = engine.config().max_page_bytes;
    let mut overrule: Option<PageResponse> = None;
    let mut eop_confirmed = false;
    let end = |code: HangupCode, call: &Call, eop: bool| {
        let confirmed = call.report.pages_confirmed() > 0;
        match code.meaning() {
            HangupMeaning::Normal if eop => Cause::Ok,
            _ if confirmed => Cause::PartialReceive,
            _ => cause_of(code, Cause::UnexpectedDcn),
        }
    };
    for _ in 0..MAX_PAGES {
        if let Some(r) = overrule.take() {
            // A modem without +FPS=n keeps its own answer; the page is judged all the same.
            if let Err(e) = modem.command(&format!("AT+FPS={}", r.value())) {
                if matches!(e, ModemError::Port(_)) {
                    return Err(e);
                }
                tracing::debug!(error = %e, "+FPS not taken");
            }
        }
        call.progress.page = Some(call.report.pages_confirmed() + 1);
        show(engine, call, Activity::ReceivingPage, observe);
        let HandedOver::Receive(sink) = engine.hand_over().1 else {
            return Ok(Cause::LocalAbort);
        };
        let mut started: Option<crate::fax::t30::page::PageCoding> = None;
        let mut bytes = 0usize;
        let mut too_much = false;
        let ev = modem.run2_with(Op::ReceivePage, |e| {
            call.note(e);
            if let Event::Data(d) = e {
                if started.is_none() {
                    let p = call.session.unwrap_or(FALLBACK);
                    let coding = p
                        .page_coding()
                        .or_else(|_| FALLBACK.page_coding())
                        .expect("the fallback parameters code");
                    sink.start_page(&coding);
                    started = Some(coding);
                }
                bytes += d.len();
                if bytes <= max_bytes {
                    sink.data(d);
                } else {
                    too_much = true;
                }
            }
        })?;
        match ev {
            Event::PageReceived {
                status,
                post,
                hangup,
            } => {
                if started.is_none() {
                    let coding = call
                        .session
                        .unwrap_or(FALLBACK)
                        .page_coding()
                        .or_else(|_| FALLBACK.page_coding())
                        .expect("the fallback parameters code");
                    sink.start_page(&coding);
                }
                let quality = sink.end_page();
                let ours = if too_much {
                    PageResponse::Rtn
                } else {
                    match thresholds.judge(&quality) {
                        Verdict::Good => PageResponse::Mcf,
                        Verdict::Retrain => PageResponse::Rtp,
                        Verdict::Bad => PageResponse::Rtn,
                    }
                };
                if ours != PageResponse::Mcf {
                    // An ECM page is error-free by construction (Annex A): a bad one means the
                    // modem's "EC on" was not true.
                    call.not_ecm();
                }
                let modem_says = status.map_or(PageResponse::Mcf, |s| s.response);
                if ours != modem_says && hangup.is_none() {
                    overrule = Some(ours);
                }
                let accepted = ours.accepted();
                let kept = sink.finish_page(accepted);
                call.report.pages.push(PageRecord {
                    page: call.report.pages_confirmed(),
                    outcome: match ours {
                        PageResponse::Mcf => PageOutcome::Confirmed,
                        PageResponse::Rtp => PageOutcome::ConfirmedRetrain,
                        _ => PageOutcome::Rejected,
                    },
                    quality: Some(quality),
                    modulation: call.modulation(),
                    bytes,
                });
                if let Err(e) = kept {
                    tracing::warn!(error = %e, "received page not stored");
                    if let Some(p) = call.report.pages.last_mut() {
                        p.outcome = PageOutcome::Rejected;
                    }
                    return Ok(Cause::SinkError);
                }
                if too_much {
                    return Ok(Cause::TooMuchData);
                }
                eop_confirmed = accepted && post == Some(PostPage::Eop);
                show(engine, call, Activity::Confirming, observe);
                if let Some(code) = hangup {
                    return Ok(end(code, call, eop_confirmed));
                }
            }
            Event::Ended(code) => return Ok(end(code, call, eop_confirmed)),
            Event::Failed(OpFailure::TooMuchData) => return Ok(Cause::TooMuchData),
            Event::Failed(f) => {
                return Ok(if call.report.pages_confirmed() > 0 {
                    Cause::PartialReceive
                } else {
                    failed(f)
                });
            }
            _ => return Ok(Cause::ProtocolError),
        }
    }
    Ok(Cause::ProtocolError)
}
