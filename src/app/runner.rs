//! The offramp's job workers, run by the dispatcher (`super::dispatch`): a `Message` job is
//! split into `FaxOut` jobs ([`split`]), and a `FaxOut` job is sent on the line the scheduler
//! leased to it ([`fax_out`]).
//!
//! A fax attempt: `start_attempt` (from here a crash leaves an open attempt, which start-up
//! closes as interrupted and retries: at-least-once), render the document with the header
//! line stamped at sending time, place the call, give the far end's pages to the onramp as a
//! received fax, store the call's figures in the job (`FaxResult`) and end the attempt with the
//! cause's class. A final job triggers the offramp's one report per message
//! (`offramp::jobs::on_fax_final`, idempotent by job id, so a report is never sent twice).
//!
//! SIGTERM: no new job starts; a call in progress ends with its page (an unpaced loopback call
//! is atomic), or, when paced, is hung up and the job requeued for the next start.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info, warn};

use super::control::{CallWatch, ModemBoard};
use super::loopback;
use super::modems::{ModemLine, Sent};
use super::send_pages;
use super::sip_line::SipLine;
use super::status::{self, CallProgress, LastCall, ModemState};
use crate::config::Config;
use crate::daemon::{Notifier, Shutdown};
use crate::fax::t30::SinkError;
use crate::fax::t30::pages::{PagesSink, PagesSource, ReceivedPage};
use crate::fax::t30::{self, Cause};
use crate::job::JobData;
use crate::mail::fax_options::{self, LineOptions};
use crate::metrics::{self, Direction};
use crate::offramp::budget as render_budget;
use crate::offramp::causes::Cause as OfframpCause;
use crate::offramp::document::{self, Stamp};
use crate::offramp::jobs::{self, FaxOutData, FaxResult, Reported, Split};
use crate::onramp::receiving::{CallStart, Receiving};
use crate::scheduler::{CauseClass, Decision, GiveUp, Policy};
use crate::spool::{Final, JobId, JobKind, JobState, Outcome, Spool, SpoolError};

/// Largest `message.eml` read back by the fax worker (matches the offramp's own limit).
pub const MAX_MESSAGE_BYTES: u64 = jobs::MAX_MESSAGE_BYTES;
/// Archived fax jobs younger than this are checked at start-up for a report that was never
/// queued (the process died between finishing the job and queuing its report).
pub const REPORT_RECOVERY_WINDOW: Duration = Duration::from_secs(2 * 24 * 3600);

/// A line fax jobs are sent on: a modem or a SIP line (the loopback line is the runner's own).
#[derive(Clone)]
pub enum Line {
    /// A `[[modem]]`.
    Modem(Arc<ModemLine>),
    /// A `[[sip]]` line, under each of its call slots' names.
    Sip(Arc<SipLine>),
}

impl Line {
    /// Our station ID on the line (TSI/CSI, the header line).
    pub fn local_id(&self) -> &str {
        match self {
            Line::Modem(m) => m.local_id(),
            Line::Sip(s) => s.local_id(),
        }
    }
}

/// What the runner shares with the rest of the daemon.
#[derive(Clone)]
pub struct Shared {
    /// The configuration.
    pub cfg: Arc<Config>,
    /// The spool (owned by this process).
    pub spool: Spool,
    /// `[retry]`.
    pub policy: Policy,
    /// The live line states for `faxgate status`.
    pub board: ModemBoard,
    /// systemd notification.
    pub notifier: Notifier,
    /// The real lines by lease name: modems by name, SIP lines by each call slot's name
    /// (the loopback line is not among them).
    pub lines: Arc<HashMap<String, Line>>,
    /// Set at shutdown: renderings in progress stop (their jobs are done at the next start).
    pub render_cancel: render_budget::Cancel,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => Some(v),
        Err(e) => {
            error!("background task failed: {e}");
            None
        }
    }
}

fn set_line(board: &ModemBoard, name: &str, f: impl FnOnce(&mut status::ModemStatus)) {
    let mut b = match board.lock() {
        Ok(b) => b,
        Err(p) => p.into_inner(),
    };
    if let Some(m) = b.iter_mut().find(|m| m.name == name) {
        f(m);
    }
}

/// Start-up work before the first turn (and before any line answers): commit the receptions
/// a dead run left in the spool as partial faxes, quarantine every message whose split the process
/// died in (see [`split`]), and queue the report of every recently finished fax whose report
/// is missing (the process died between finishing the job and queuing it).
pub fn recover(sh: &Shared) -> Result<(), SpoolError> {
    let now = crate::spool::now();
    // Receptions a dead run left half way: their confirmed pages become partial faxes.
    crate::onramp::receiving::recover(&sh.spool)?;
    // One record in memory at a time: a backlog of any size starts in flat memory.
    let mut interrupted = Vec::new();
    sh.spool.scan(crate::spool::Area::Queue, &mut |rec| {
        if rec.state == JobState::Queued && jobs::split_was_interrupted(&rec) {
            interrupted.push(rec.id);
        }
    })?;
    for id in interrupted {
        match jobs::quarantine_message(&sh.spool, &id, &sh.cfg, now) {
            Ok(report) => warn!(
                job = %id,
                report = ?report.map(|r| r.to_string()),
                "message quarantined: faxgate stopped while splitting it; the sender is told"
            ),
            Err(e) => error!(job = %id, "cannot quarantine the message: {e}"),
        }
    }
    // Faxes finished shortly before a crash whose message may still owe its report.
    let (mut checked, mut finals) = (BTreeSet::new(), Vec::new());
    for area in [crate::spool::Area::Done, crate::spool::Area::Failed] {
        sh.spool.scan(area, &mut |rec| {
            let recent = rec
                .finished
                .is_some_and(|f| now.since(f) < REPORT_RECOVERY_WINDOW);
            if rec.kind != JobKind::FaxOut || !recent {
                return;
            }
            if let Some(p) = &rec.parent
                && !checked.insert(p.clone())
            {
                return;
            }
            finals.push(rec.id);
        })?;
    }
    for id in finals {
        if let Err(e) = jobs::on_fax_final(&sh.spool, &id, &sh.cfg, now) {
            warn!(job = %id, "report recovery: {e}");
        }
    }
    Ok(())
}

/// Splits a `Message` job. Returns false when it should be held off (our trouble).
///
/// The split runs inside an attempt: if the process dies while parsing or rendering the
/// message (a hostile message that crashes a parser, or an OOM kill), the attempt is still open
/// at the next start, and [`recover`] quarantines the message instead of splitting it again —
/// one message can never crash-loop the daemon.
pub async fn split(sh: &Shared, id: &JobId) -> bool {
    let (spool, id2) = (sh.spool.clone(), id.clone());
    match blocking(move || spool.start_attempt(&id2, crate::spool::now(), None)).await {
        Some(Ok(_)) => {}
        Some(Err(SpoolError::NotFound(_))) | Some(Err(SpoolError::WrongState { .. })) => {
            return true;
        }
        Some(Err(e)) => {
            warn!(job = %id, "cannot start the message split: {e}");
            return false;
        }
        None => return false,
    }
    let (spool, cfg, id2) = (sh.spool.clone(), sh.cfg.clone(), id.clone());
    let sh_cancel = sh.render_cancel.clone();
    let res = blocking(move || {
        let doc_opts = document::Options::from(&cfg.offramp);
        let check = |raw: &[u8], opts: &crate::offramp::options::SenderOptions| {
            let mut budget = render_budget::for_message(doc_opts.budget, &sh_cancel);
            document::prepare_within(raw, &doc_opts, opts, &mut budget)
        };
        jobs::split_message(&spool, &id2, &cfg, &check, crate::spool::now())
    })
    .await;
    match res {
        Some(Ok(Split::Faxes {
            pages,
            jobs,
            forwarded,
        })) => {
            info!(job = %id, pages, faxes = jobs.len(), "message split into fax jobs");
            if let Some(f) = forwarded {
                info!(job = %id, mail = %f, "postmaster copy queued for gateway.admin");
            }
            true
        }
        Some(Ok(Split::Forwarded { job })) => {
            info!(job = %id, mail = %job, "postmaster mail queued for gateway.admin");
            true
        }
        Some(Ok(Split::Failed { cause, report, .. })) => {
            info!(job = %id, report = ?report.map(|r| r.to_string()), "message cannot be faxed: {}", cause.words());
            true
        }
        Some(Err(jobs::JobsError::Interrupted(_))) => {
            // Rendering cancelled at shutdown: the attempt is closed as ours, so the next start
            // splits the message again instead of taking it for one that crashed the gateway.
            end_local_attempt(
                sh,
                id,
                "rendering cancelled: the gateway is stopping".into(),
            )
            .await;
            false
        }
        Some(Err(jobs::JobsError::Spool(e))) if !matches!(e, SpoolError::NotFound(_)) => {
            warn!(job = %id, "message split: {e}; trying again later");
            end_local_attempt(sh, id, e.to_string()).await;
            false
        }
        Some(Err(e)) => {
            // The record or its data is unusable: a bug or a damaged job. Fail it so it does
            // not come back every turn; the operator sees it in `faxgate queue`.
            error!(job = %id, "message split failed: {e}");
            let (spool, id2) = (sh.spool.clone(), id.clone());
            let _ = blocking(move || {
                spool.finish(&id2, crate::spool::now(), Final::Failed(GiveUp::Fatal))
            })
            .await;
            true
        }
        None => {
            end_local_attempt(sh, id, "the split task failed".into()).await;
            false
        }
    }
}

/// Closes the open split attempt of message `id` as our own temporary trouble; the retry
/// policy sets its next try.
async fn end_local_attempt(sh: &Shared, id: &JobId, detail: String) {
    let (spool, id2, policy) = (sh.spool.clone(), id.clone(), sh.policy.clone());
    let outcome = Outcome {
        cause: CauseClass::LocalTemporary,
        detail,
        pages_sent: 0,
        connected: false,
    };
    let ended = blocking(move || spool.end_attempt(&id2, crate::spool::now(), outcome, &policy));
    if let Some(Err(e)) = ended.await
        && !matches!(e, SpoolError::NotFound(_))
    {
        error!(job = %id, "cannot record the message split attempt: {e}");
    }
}

/// The scheduler's class for a T.30 completion cause (`fax::t30::cause` registry).
pub fn class_of(cause: Cause) -> CauseClass {
    match cause.class() {
        t30::CauseClass::Done => CauseClass::Done,
        t30::CauseClass::Retry => CauseClass::ProtocolError,
        t30::CauseClass::Fail => CauseClass::Fatal,
    }
}

fn read_payload(spool: &Spool, id: &JobId, name: &str) -> Result<Vec<u8>, SpoolError> {
    let path = spool.payload_path(id, name)?;
    crate::read_limit::read(&path, MAX_MESSAGE_BYTES).map_err(|e| SpoolError::io(&path, e.into()))
}

/// Makes the attempt opened by [`fax_out`] durable before its line dials (the spool's
/// "Attempts" protocol); a failure means no call.
fn durable(spool: &Spool, id: &JobId) -> Result<(), (CauseClass, String)> {
    spool.attempt_durable(id).map_err(|e| {
        (
            CauseClass::LocalTemporary,
            format!("the attempt cannot be recorded: {e}"),
        )
    })
}

/// What a failure to make an attempt's pages means for the job: cancelled at shutdown (ours,
/// the job stays), our own trouble reading them (retried), or the document (final).
fn page_failure(cause: OfframpCause) -> (CauseClass, String) {
    let class = match &cause {
        OfframpCause::Interrupted => CauseClass::Interrupted,
        OfframpCause::GatewayError { .. } => CauseClass::LocalTemporary,
        _ => CauseClass::Fatal,
    };
    (class, cause.words())
}

/// What a fax attempt came to, before it is recorded.
struct Attempted {
    outcome: Outcome,
    result: Option<FaxResult>,
    last_call: Option<LastCall>,
    error: Option<String>,
}

/// Sends `FaxOut` job `id` on `line`. Returns false when it should be held off.
pub async fn fax_out(sh: &Shared, id: &JobId, line: &str, mut shutdown: Shutdown) -> bool {
    let (spool, id2, line2) = (sh.spool.clone(), id.clone(), line.to_string());
    let rec = match blocking(move || {
        // Made durable by `attempt` once the line is held, before it dials.
        let r = spool.open_attempt(&id2, crate::spool::now(), Some(&line2));
        r.inspect(|r| first_dial(&spool, r))
    })
    .await
    {
        Some(Ok(r)) => r,
        Some(Err(SpoolError::NotFound(_))) | Some(Err(SpoolError::WrongState { .. })) => {
            return true;
        }
        Some(Err(e)) => {
            warn!(job = %id, "cannot start the fax attempt: {e}");
            return false;
        }
        None => return false,
    };
    set_line(&sh.board, line, |m| {
        m.state = ModemState::Sending;
        m.job = Some(id.to_string());
    });
    metrics::fax_started(Direction::Out);
    let options = attempt_options(sh, line, &rec);
    if let Some(o) = &options {
        info!(job = %id, modem = line, options = %fax_options::summary(o), "fax attempt options: {}", o.why);
    }
    let attempted = attempt(sh, id, line, &rec, options.as_ref(), &mut shutdown).await;
    let out = &attempted.outcome;
    metrics::fax_ended(Direction::Out, line, out.cause, out.pages_sent);
    set_line(&sh.board, line, |m| {
        m.state = ModemState::Idle;
        m.job = None;
        if attempted.last_call.is_some() {
            m.last_call = attempted.last_call.clone();
        }
        if attempted.error.is_some() {
            m.last_error = attempted.error.clone();
        }
    });

    // Record the call's figures and the attempt's end in one write (which may move the job to
    // its archive).
    let (spool, id2, policy) = (sh.spool.clone(), id.clone(), sh.policy.clone());
    let result = attempted.result.clone();
    let outcome = attempted.outcome.clone();
    let ended = blocking(move || {
        spool.end_attempt_with(&id2, crate::spool::now(), outcome, &policy, |r| {
            if let Some(a) = r.attempts.last_mut() {
                a.fax_options = options;
            }
            if let (Some(res), JobData::FaxOut(j)) = (result, &mut r.data) {
                j.result = Some(res);
            }
        })
    })
    .await;
    let decision = match ended {
        Some(Ok((_, d))) => d,
        Some(Err(SpoolError::NotFound(_))) => {
            info!(job = %id, "job cancelled during its call");
            return true;
        }
        Some(Err(e)) => {
            error!(job = %id, "cannot record the fax attempt: {e}");
            return false;
        }
        None => return false,
    };
    info!(job = %id, decision = ?decision, "fax attempt: {}", attempted.outcome.detail);

    let (spool, cfg, id2) = (sh.spool.clone(), sh.cfg.clone(), id.clone());
    let queued = blocking(move || match decision {
        Decision::Done | Decision::Fail(_) => {
            let r = jobs::on_fax_final(&spool, &id2, &cfg, crate::spool::now())?;
            Ok::<_, jobs::JobsError>(matches!(r, Reported::Done { .. }))
        }
        Decision::RetryAt(_) => {
            let r = jobs::on_fax_retry(&spool, &id2, &cfg, crate::spool::now())?;
            Ok(r.is_some())
        }
    })
    .await;
    match queued {
        Some(Ok(_)) => {}
        // The report is queued again at the next start-up (recover).
        Some(Err(e)) => error!(job = %id, "report: {e}"),
        None => {}
    }
    true
}

/// The T.30 options of the attempt `rec` just opened on `line` (`mail::fax_options`): its
/// number is the job's dials since the last operator retry, this one included.
fn attempt_options(
    sh: &Shared,
    line: &str,
    rec: &crate::spool::JobRecord,
) -> Option<crate::job::FaxAttemptOptions> {
    let JobData::FaxOut(job) = &rec.data else {
        return None;
    };
    let line_opts = match sh.lines.get(line) {
        Some(Line::Modem(m)) => LineOptions::from(m.config()),
        Some(Line::Sip(s)) => LineOptions::from(s.config()),
        None => LineOptions::full("the loopback line"),
    };
    let (dials, _) = rec.dials_and_tries();
    Some(fax_options::resolve(
        &sh.cfg.fax_options,
        &sh.cfg.fax_routes,
        &line_opts,
        &job.e164,
        u32::try_from(dials).unwrap_or(u32::MAX).max(1),
    ))
}

/// One attempt: render, call with `options`, hand the received pages to the onramp.
async fn attempt(
    sh: &Shared,
    id: &JobId,
    line: &str,
    rec: &crate::spool::JobRecord,
    options: Option<&crate::job::FaxAttemptOptions>,
    shutdown: &mut Shutdown,
) -> Attempted {
    let options = options.cloned();
    let cfg = &sh.cfg;
    let local = |cause: CauseClass, detail: String| Attempted {
        outcome: Outcome {
            cause,
            detail: detail.clone(),
            pages_sent: 0,
            connected: false,
        },
        result: None,
        last_call: None,
        error: Some(format!("{}: {detail}", crate::spool::now())),
    };
    let job: FaxOutData = match &rec.data {
        JobData::FaxOut(j) => j.clone(),
        other => {
            return local(
                CauseClass::Fatal,
                format!("a {} job, not fax-out", other.kind()),
            );
        }
    };
    let station = match sh.lines.get(line) {
        Some(m) => m.local_id().to_string(),
        None => cfg.loopback.local_id.clone(),
    };
    let stamp = Stamp {
        when: Some(chrono::Local::now().naive_local()),
        station,
        recipient: job.e164.clone(),
    };
    let (cfg2, opts, cancel) = (cfg.clone(), job.options.clone(), sh.render_cancel.clone());
    let (spool, id2, job2) = (sh.spool.clone(), id.clone(), job.clone());
    // The pages are made once the line is held (on a modem: opened); a line that cannot be
    // used costs nothing more.
    let prepare = move || -> Result<PagesSource, OfframpCause> {
        let doc_opts = document::Options::from(&cfg2.offramp);
        let unreadable = |e: SpoolError| OfframpCause::GatewayError {
            detail: format!("the fax job's pages cannot be read: {e}"),
        };
        match &job2.pages {
            // Rendered at split: read page by page while the line sends; only the cover page
            // and the header line are drawn now.
            Some(file) => {
                let path = spool.payload_path(&id2, file).map_err(unreadable)?;
                let body = usize::try_from(job2.pages_total)
                    .unwrap_or(usize::MAX)
                    .saturating_sub(usize::from(opts.cover_page));
                let finisher = document::Finisher::new(body, &job2.from, &doc_opts, &opts, &stamp)?;
                let pages = send_pages::StoredPages::open(&path, finisher)?;
                Ok(PagesSource::one_at_a_time(Box::new(pages)))
            }
            // Split before pages were kept: render from the message, as then.
            None => {
                let raw = read_payload(&spool, &id2, jobs::MESSAGE_FILE).map_err(unreadable)?;
                let d = document::build(
                    &raw,
                    &doc_opts,
                    &opts,
                    &stamp,
                    &mut render_budget::for_message(doc_opts.budget, &cancel),
                )?;
                Ok(PagesSource::new(vec![d.pages]))
            }
        }
    };
    if line != loopback::LINE_NAME {
        let Some(chosen) = sh.lines.get(line).cloned() else {
            return local(CauseClass::LocalTemporary, format!("no line `{line}`"));
        };
        let dial = job.dial.clone();
        let (spool, id2) = (sh.spool.clone(), id.clone());
        let made = move || {
            durable(&spool, &id2)?;
            prepare().map_err(page_failure)
        };
        let call = CallProgress::dialling(id.as_str(), &job.e164);
        let tune = move |e: &mut t30::EngineConfig| {
            if let Some(o) = &options {
                fax_options::apply(o, e);
            }
        };
        // A SIP line dials the dial plan's E.164 number through its trunk.
        let (slot, e164) = (line.to_string(), job.e164.clone());
        let Some(sent) = blocking(move || match chosen {
            Line::Modem(modem) => modem.send_with(&dial, made, call, tune),
            Line::Sip(sip) => sip.send_with(&slot, &e164, made, call, tune),
        })
        .await
        else {
            return local(CauseClass::LocalTemporary, "the line task failed".into());
        };
        return match sent {
            Sent::NotConnected { class, detail } => Attempted {
                outcome: Outcome {
                    cause: class,
                    detail: detail.clone(),
                    pages_sent: 0,
                    connected: false,
                },
                result: Some(FaxResult::default()),
                last_call: Some(LastCall {
                    ended: crate::spool::now(),
                    direction: "out".into(),
                    job: id.to_string(),
                    number: job.e164.clone(),
                    pages: 0,
                    cause: detail.clone(),
                }),
                error: Some(format!("{}: job {id}: {detail}", crate::spool::now())),
            },
            Sent::Call { report, error } => {
                if let Some(e) = error {
                    warn!(job = %id, line, "call: {e}");
                }
                let cause = report.cause.unwrap_or(Cause::CarrierLost);
                sent_attempt(id, &job, &report, cause, report.duration)
            }
        };
    }

    // The board shows the call from here: making the pages is part of "dialling".
    let mut watch = CallWatch::start(
        &sh.board,
        line,
        CallProgress::dialling(id.as_str(), &job.e164),
    );
    let (spool, id2) = (sh.spool.clone(), id.clone());
    let source = match blocking(move || {
        durable(&spool, &id2).map_err(|(_, detail)| OfframpCause::GatewayError { detail })?;
        prepare()
    })
    .await
    {
        Some(Ok(source)) => source,
        Some(Err(cause)) => {
            let (class, detail) = page_failure(cause);
            return local(class, detail);
        }
        None => return local(CauseClass::LocalTemporary, "rendering failed".into()),
    };

    // The far end is our own onramp: each page it accepts goes into a reception in the spool
    // before it answers MCF, exactly as on a modem line.
    let (spool, did) = (sh.spool.clone(), job.e164.clone());
    let call_start = CallStart {
        line: loopback::LINE_NAME.into(),
        caller: Some(cfg.loopback.local_id.clone()),
        did: Some(did),
        answered: i64::try_from(crate::spool::now().unix_secs()).unwrap_or(i64::MAX),
    };
    let receiving = match blocking(move || Receiving::begin(&spool, call_start)).await {
        Some(Ok(r)) => {
            metrics::fax_started(Direction::In);
            Arc::new(std::sync::Mutex::new(Some(r)))
        }
        Some(Err(e)) => {
            return local(
                CauseClass::LocalTemporary,
                format!("the loopback line's far end cannot store a fax: {e}"),
            );
        }
        None => return local(CauseClass::LocalTemporary, "the line task failed".into()),
    };
    let mut tx = t30::EngineConfig {
        local_id: cfg.loopback.local_id.clone(),
        ..t30::EngineConfig::default()
    };
    if let Some(o) = &options {
        fax_options::apply(o, &mut tx);
    }
    let remote_id = cfg.loopback.remote_id.clone();
    let pace = cfg.loopback.pace;
    let stop = shutdown.clone();
    let rx = Arc::clone(&receiving);
    let Some(call) = blocking(move || {
        let store = Box::new(move |page: ReceivedPage| match rx.lock() {
            Ok(mut g) => match g.as_mut() {
                Some(r) => r.append(&page),
                None => Err(SinkError("the reception is closed".into())),
            },
            Err(_) => Err(SinkError("the reception lock is poisoned".into())),
        });
        let started = std::time::Instant::now();
        // Pacing: the call takes `pace` × its line time on the wall clock, page by page, so a
        // reception is on disk as far as it got; a stop request meanwhile hangs up (an unpaced
        // call is atomic and finishes).
        let mut step = |t: Duration, engine: &t30::Engine| {
            // Before pacing: the state shown is the one the line is in until the next event.
            watch.observe(&engine.progress());
            if pace <= 0.0 {
                return true;
            }
            let due = t.mul_f64(pace);
            while started.elapsed() < due {
                if stop.is_stopping() {
                    return false;
                }
                std::thread::sleep((due - started.elapsed()).min(Duration::from_millis(50)));
            }
            !stop.is_stopping()
        };
        loopback::call_from(source, tx, &remote_id, PagesSink::storing(store), &mut step)
    })
    .await
    else {
        return local(CauseClass::LocalTemporary, "the line task failed".into());
    };
    let hung_up = matches!(call.line_error, Some(t30::line::LineError::HungUp(_)));
    if let (Some(e), false) = (&call.line_error, hung_up) {
        warn!(job = %id, "loopback line: {e}");
    }

    // The far end: our onramp gets what it accepted (a partial fax when the call broke off).
    let taken = match receiving.lock() {
        Ok(mut g) => g.take(),
        Err(p) => p.into_inner().take(),
    };
    if let Some(r) = taken {
        let (report, secs) = (call.receiver.clone(), call.line_time.as_secs());
        let class = class_of(report.cause.unwrap_or(Cause::CarrierLost));
        metrics::fax_ended(Direction::In, loopback::LINE_NAME, class, r.pages());
        match blocking(move || r.commit(&report, secs)).await {
            Some(Ok(Some(r))) => {
                info!(job = %r, fax = %id, "loopback far end received the fax");
            }
            Some(Ok(None)) => {}
            Some(Err(e)) => error!(job = %id, "loopback far end could not store the fax: {e}"),
            None => {}
        }
    }
    if hung_up {
        return Attempted {
            outcome: Outcome {
                cause: CauseClass::Interrupted,
                detail: "hung up: the gateway is stopping; the fax is sent again at the next start"
                    .into(),
                pages_sent: call.sender.pages_confirmed() as u32,
                // Not the far end's fault: does not count as a try.
                connected: false,
            },
            result: None,
            last_call: None,
            error: None,
        };
    }
    sent_attempt(id, &job, &call.sender, call.cause(), call.line_time)
}

/// Each of the fax's `total` pages as the call report saw it (its records are every transfer
/// of a page, in order: a page refused with RTN and sent again appears twice).
fn page_results(sent: &t30::CallReport, total: u32) -> Vec<crate::job::PageResult> {
    use crate::fax::t30::report::PageOutcome as O;
    use crate::job::PageResult as R;
    (0..total as usize)
        .map(|n| {
            let mut tries = sent.pages.iter().filter(|p| p.page == n);
            let Some(first) = tries.next() else {
                return R::NotSent;
            };
            let mut refused = first.outcome == O::Rejected;
            let mut last = first.outcome;
            for p in tries {
                refused |= p.outcome == O::Rejected;
                last = p.outcome;
            }
            match last {
                O::Confirmed | O::ConfirmedRetrain if refused => R::Retransmitted,
                O::Confirmed | O::ConfirmedRetrain => R::Confirmed,
                O::Rejected => R::Refused,
                O::Unconfirmed => R::Interrupted,
            }
        })
        .collect()
}

/// The attempt of a call that reached T.30, from the sending engine's report.
fn sent_attempt(
    id: &JobId,
    job: &FaxOutData,
    sent: &t30::CallReport,
    cause: Cause,
    duration: Duration,
) -> Attempted {
    let class = class_of(cause);
    let pages_sent = sent.pages_confirmed() as u32;
    let connected = sent.remote_id.is_some() || !matches!(cause, Cause::T1Expired);
    let detail = format!(
        "T.30 cause {} ({}): {}",
        cause.number(),
        cause_name(cause),
        cause.meaning()
    );
    Attempted {
        outcome: Outcome {
            cause: class,
            detail: detail.clone(),
            pages_sent,
            connected,
        },
        result: Some(FaxResult {
            t30_cause: Some(cause.number()),
            pages_sent,
            remote_id: sent.remote_id.clone(),
            speed_bps: sent.modulation.map(|m| m.bps()),
            duration_ms: u64::try_from(duration.as_millis()).ok(),
            page_results: page_results(sent, job.pages_total),
            // Set with the DCS, as the modulation is.
            ecm: sent.modulation.map(|_| sent.ecm),
            modulation: sent.modulation.map(|m| m.name().to_string()),
        }),
        last_call: Some(LastCall {
            ended: crate::spool::now(),
            direction: "out".into(),
            job: id.to_string(),
            number: job.e164.clone(),
            pages: pages_sent,
            cause: format!("{} {}", cause.number(), cause.meaning()),
        }),
        error: (class != CauseClass::Done)
            .then(|| format!("{}: job {id}: {detail}", crate::spool::now())),
    }
}

/// A fax job's first attempt just started: the time since its message's commit (the SMTP
/// `250`) goes to `/metrics`. One small read, the message's record, once per fax job.
fn first_dial(spool: &Spool, rec: &crate::spool::JobRecord) {
    let (Some(parent), [first]) = (&rec.parent, rec.attempts.as_slice()) else {
        return;
    };
    match spool.get(parent) {
        Ok((_, message)) => metrics::accepted_to_dial(first.started.since(message.created)),
        Err(e) => warn!(job = %rec.id, "metrics: the message's record: {e}"),
    }
}

fn cause_name(c: Cause) -> String {
    format!("{c:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fax::t30::dis::Modulation;
    use crate::fax::t30::report::{PageOutcome as O, PageRecord};
    use crate::job::PageResult as R;

    #[test]
    fn page_results_follow_the_call_report() {
        let rec = |page, outcome| PageRecord {
            page,
            outcome,
            quality: None,
            modulation: Modulation::V29_7200,
            bytes: 0,
        };
        let report = t30::CallReport {
            pages: vec![
                rec(0, O::Confirmed),
                rec(1, O::Rejected),
                rec(1, O::ConfirmedRetrain),
                rec(2, O::ConfirmedRetrain),
                rec(3, O::Rejected),
                rec(4, O::Unconfirmed),
            ],
            ..t30::CallReport::default()
        };
        assert_eq!(
            page_results(&report, 6),
            [
                R::Confirmed,
                R::Retransmitted,
                R::Confirmed,
                R::Refused,
                R::Interrupted,
                R::NotSent
            ]
        );
    }
}
