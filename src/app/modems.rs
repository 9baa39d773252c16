//! The real modems of the pool: one [`ModemLine`] per `[[modem]]`, driving a Class 1 modem
//! ([`crate::fax::modem`]) with our T.30 engine.
//!
//! A line is shared between its answering loop and the job runner by a mutex around the
//! opened modem. A `receive`/`both` line's answering loop ([`ModemLine::answer_loop`], on a
//! blocking thread) takes the modem for [`RING_SLICE`] at a time to wait for `RING` (the
//! driver counts rings across slices until the call is cleared) and answers after
//! `rings` rings; between slices a fax job that leased the line ([`ModemLine::send`]) takes
//! the modem, dials and sends. A modem that cannot be opened or that fails is closed and
//! reopened after [`REOPEN_AFTER`]; meanwhile the line shows `offline` with the error.
//!
//! All calls here block (serial I/O): callers run them on blocking threads.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tracing::{error, info, warn};

use super::control::{CallWatch, ModemBoard};
use super::status::{CallProgress, LastCall, ModemProbe, ModemState};
use crate::config::Modem as ModemConfig;
use crate::daemon::Shutdown;
use crate::fax::modem::class1::LineCause;
use crate::fax::modem::port::{Modem, ModemError};
use crate::fax::modem::profile::Profile;
use crate::fax::modem::session::run_call_observed;
use crate::fax::t30::pages::{PagesSink, PagesSource, ReceivedPage};
use crate::fax::t30::{CallReport, Cause, Engine, EngineConfig, SinkError};
use crate::metrics::{self, Direction};

use crate::onramp::receiving::{CallStart, Receiving};
use crate::scheduler::CauseClass;
use crate::spool::{JobId, Spool};

/// How long the answering loop holds the modem while waiting for RING (ours): a fax job
/// waits at most this long for a `both` line.
pub const RING_SLICE: Duration = Duration::from_secs(1);
/// Back-off before reopening a modem that failed (ours).
pub const REOPEN_AFTER: Duration = Duration::from_secs(30);

/// What became of an incoming call's pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// Committed as this `FaxIn` job (complete, or partial with the call's cause).
    Fax {
        /// The job.
        job: JobId,
        /// Pages received.
        pages: u32,
    },
    /// No page was confirmed.
    NoPages,
    /// The pages could not be committed now; they stay in `receiving/` and the next start
    /// delivers them.
    Kept(String),
}

/// What an outgoing call came to.
#[derive(Debug, Clone)]
pub enum Sent {
    /// The call reached T.30: the engine's report says how it ended.
    Call {
        /// The sending engine's report.
        report: CallReport,
        /// The driver failed mid-call (the report then ends with a lost carrier).
        error: Option<String>,
    },
    /// The call never reached T.30 (busy, no answer, modem trouble).
    NotConnected {
        /// The scheduler's class.
        class: CauseClass,
        /// In words.
        detail: String,
    },
}

/// The scheduler's class of a call that was not set up (T.31 final result codes).
pub fn class_of_line(c: LineCause) -> CauseClass {
    match c {
        LineCause::Busy => CauseClass::Busy,
        LineCause::NoAnswer | LineCause::NoCarrier | LineCause::NoDialtone | LineCause::Timeout => {
            CauseClass::NoAnswer
        }
        // ERROR to ATD: the modem or the dial string; not the number's fault, and it repeats.
        LineCause::ModemError => CauseClass::LocalTemporary,
    }
}

struct Opened {
    modem: Modem,
    engine: EngineConfig,
}

/// One `[[modem]]`.
pub struct ModemLine {
    cfg: ModemConfig,
    modem: Mutex<Option<Opened>>,
    failed_at: Mutex<Option<Instant>>,
    board: ModemBoard,
}

impl ModemLine {
    /// A line for `cfg`, not yet opened.
    pub fn new(cfg: ModemConfig, board: ModemBoard) -> Arc<ModemLine> {
        Arc::new(ModemLine {
            cfg,
            modem: Mutex::new(None),
            failed_at: Mutex::new(None),
            board,
        })
    }

    /// `[[modem]] name`.
    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// `[[modem]] local_id`: our station ID on this line (TSI/CSI, the header line).
    pub fn local_id(&self) -> &str {
        &self.cfg.local_id
    }

    /// The `[[modem]]` entry (its ECM, rate and per-retry settings for outgoing faxes).
    pub fn config(&self) -> &ModemConfig {
        &self.cfg
    }

    fn show(&self, f: impl FnOnce(&mut super::status::ModemStatus)) {
        let mut b = match self.board.lock() {
            Ok(b) => b,
            Err(p) => p.into_inner(),
        };
        if let Some(m) = b.iter_mut().find(|m| m.name == self.cfg.name) {
            f(m);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<Opened>> {
        match self.modem.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn fail(&self, slot: &mut Option<Opened>, what: &str, e: &ModemError) {
        warn!(modem = %self.cfg.name, "{what}: {e}");
        *slot = None;
        if let Ok(mut f) = self.failed_at.lock() {
            *f = Some(Instant::now());
        }
        let msg = format!("{}: {what}: {e}", crate::spool::now());
        self.show(|m| {
            m.state = ModemState::Offline;
            m.last_error = Some(msg);
        });
    }

    /// Opens, initialises and probes the modem if it is not open (and the back-off after a
    /// failure has passed). Returns whether it is usable.
    fn ensure_open(&self, slot: &mut Option<Opened>) -> bool {
        if slot.is_some() {
            return true;
        }
        if let Ok(f) = self.failed_at.lock()
            && f.is_some_and(|t| t.elapsed() < REOPEN_AFTER)
        {
            return false;
        }
        let profile = match Profile::load_named(&self.cfg.profiles_dir, &self.cfg.profile) {
            // A `[[modem]]` class other than the default "1" overrides the profile's.
            Ok(mut p) if self.cfg.class != crate::config::ModemClass::Class1 => {
                p.class = self.cfg.class;
                p
            }
            Ok(p) => p,
            Err(e) => {
                let msg = format!("{}: profile: {e}", crate::spool::now());
                warn!(modem = %self.cfg.name, "{msg}");
                if let Ok(mut f) = self.failed_at.lock() {
                    *f = Some(Instant::now());
                }
                self.show(|m| {
                    m.state = ModemState::Offline;
                    m.last_error = Some(msg);
                });
                return false;
            }
        };
        let opened = Modem::open(&self.cfg.device, profile).and_then(|mut m| {
            m.init()?;
            let info = m.probe()?;
            let mut engine = EngineConfig::from(&self.cfg);
            // Offer in DIS/DCS only what the modem modulates (T.31 +FTM=?/+FRM=?).
            if info.max_rate() > 0 {
                engine.max_bps = engine.max_bps.min(info.max_rate());
            }
            // A Class 2.0 modem runs T.30 itself: our ID and capabilities go to it (+FLI/+FCC).
            m.set_station(&engine);
            m.clear_call();
            Ok((Opened { modem: m, engine }, info))
        });
        match opened {
            Ok((o, info)) => {
                info!(modem = %self.cfg.name, device = %self.cfg.device.display(), max_bps = o.engine.max_bps, "modem ready");
                *slot = Some(o);
                // What it said about itself stays on the board for the console's modems page.
                let probe = ModemProbe::of(&info, crate::spool::now());
                self.show(|m| {
                    if m.state == ModemState::Offline {
                        m.state = ModemState::Idle;
                    }
                    m.probe = Some(probe);
                });
                true
            }
            Err(e) => {
                self.fail(slot, "cannot open the modem", &e);
                false
            }
        }
    }

    /// Places a call to `dial` and sends the pages of `source` (blocking).
    pub fn send(&self, dial: &str, source: PagesSource) -> Sent {
        self.send_with(
            dial,
            move || Ok(source),
            CallProgress::dialling("", dial),
            |_| {},
        )
    }

    /// [`ModemLine::send`] with the pages made by `make` once the modem is open and held for
    /// this call (a line that cannot be used costs nothing more); `make`'s failure (class and
    /// words) ends the attempt before dialling. The board shows `call` and its progress until
    /// this returns. `tune` narrows the line's engine options for this call (the attempt's ECM
    /// and speed, `mail::fax_options`).
    pub fn send_with(
        &self,
        dial: &str,
        make: impl FnOnce() -> Result<PagesSource, (CauseClass, String)>,
        call: CallProgress,
        tune: impl FnOnce(&mut EngineConfig),
    ) -> Sent {
        let mut slot = self.lock();
        // Shown once the line is ours: an incoming call on a `both` line keeps the board until
        // it ends (one watch per line at a time, each dropped before the modem is let go).
        let mut watch = CallWatch::start(&self.board, &self.cfg.name, call);
        if !self.ensure_open(&mut slot) {
            return Sent::NotConnected {
                class: CauseClass::LocalTemporary,
                detail: format!("modem {} is not available", self.cfg.name),
            };
        }
        let source = match make() {
            Ok(s) => s,
            Err((class, detail)) => return Sent::NotConnected { class, detail },
        };
        let Some(o) = slot.as_mut() else {
            return Sent::NotConnected {
                class: CauseClass::LocalTemporary,
                detail: "modem not open".into(),
            };
        };
        o.modem.clear_call();
        if let Err(e) = o.modem.dial(dial) {
            let out = match &e {
                ModemError::Call(c) => Sent::NotConnected {
                    class: class_of_line(*c),
                    detail: format!("call not set up: {c:?}"),
                },
                _ => Sent::NotConnected {
                    class: CauseClass::LocalTemporary,
                    detail: format!("modem failed while dialling: {e}"),
                },
            };
            let _ = o.modem.reset();
            o.modem.clear_call();
            if !matches!(e, ModemError::Call(_)) {
                self.fail(&mut slot, "dial", &e);
            }
            return out;
        }
        let mut engine_cfg = o.engine.clone();
        tune(&mut engine_cfg);
        let mut engine = Engine::sender(engine_cfg, Box::new(source));
        let r = run_call_observed(&mut o.modem, &mut engine, &mut |e| {
            watch.observe(&e.progress())
        });
        let _ = o.modem.reset();
        o.modem.clear_call();
        let error = r.as_ref().err().map(|e| e.to_string());
        if let Err(e) = r
            && matches!(e, ModemError::Port(_))
        {
            self.fail(&mut slot, "call", &e);
        }
        Sent::Call {
            report: engine.report().clone(),
            error,
        }
    }

    /// Waits for RING (in [`RING_SLICE`]s, releasing the modem in between) and answers calls
    /// until shutdown. Each call's pages go into a reception in `spool` as they are
    /// confirmed and are committed at hang-up; `on_fax` hears what became of them (blocking).
    pub fn answer_loop(
        &self,
        shutdown: Shutdown,
        spool: &Spool,
        on_fax: &dyn Fn(&ModemLine, Stored),
    ) {
        while !shutdown.is_stopping() {
            let mut slot = self.lock();
            if !self.ensure_open(&mut slot) {
                drop(slot);
                std::thread::sleep(RING_SLICE);
                continue;
            }
            let Some(o) = slot.as_mut() else { continue };
            match o.modem.wait_and_answer(self.cfg.rings, RING_SLICE) {
                Err(ModemError::NoCall(_)) => {
                    drop(slot);
                    // Let a fax job that waits for this line take it.
                    std::thread::yield_now();
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                Err(ModemError::Call(c)) => {
                    warn!(modem = %self.cfg.name, "answer failed: {c:?}");
                    let _ = o.modem.reset();
                    o.modem.clear_call();
                    continue;
                }
                Err(e) => {
                    self.fail(&mut slot, "waiting for calls", &e);
                    continue;
                }
                Ok(()) => {}
            }
            let started = Instant::now();
            let caller = o.modem.caller().clone();
            let call = CallStart {
                line: self.cfg.name.clone(),
                caller: caller.number.clone(),
                did: caller.did.clone(),
                answered: i64::try_from(crate::spool::now().unix_secs()).unwrap_or(i64::MAX),
            };
            // Every confirmed page goes to the spool before MCF; a gateway that cannot store
            // pages does not take them (the caller's machine will try again).
            let receiving = match Receiving::begin(spool, call) {
                Ok(r) => {
                    metrics::fax_started(Direction::In);
                    Arc::new(Mutex::new(Some(r)))
                }
                Err(e) => {
                    error!(modem = %self.cfg.name, "cannot store a fax, hanging up: {e}");
                    let _ = o.modem.reset();
                    o.modem.clear_call();
                    continue;
                }
            };
            self.show(|m| m.state = ModemState::Receiving);
            let mut watch = CallWatch::start(
                &self.board,
                &self.cfg.name,
                CallProgress::answering(caller.number.as_deref()),
            );
            let rx = Arc::clone(&receiving);
            let store = Box::new(move |page: ReceivedPage| match rx.lock() {
                Ok(mut g) => match g.as_mut() {
                    Some(r) => r.append(&page),
                    None => Err(SinkError("the reception is closed".into())),
                },
                Err(_) => Err(SinkError("the reception lock is poisoned".into())),
            });
            let mut engine =
                Engine::receiver(o.engine.clone(), Box::new(PagesSink::storing(store)));
            let r = run_call_observed(&mut o.modem, &mut engine, &mut |e| {
                watch.observe(&e.progress())
            });
            drop(watch);
            let _ = o.modem.reset();
            o.modem.clear_call();
            if let Err(e) = &r {
                warn!(modem = %self.cfg.name, "incoming call: {e}");
            }
            let report = engine.report().clone();
            drop(engine);
            let taken = match receiving.lock() {
                Ok(mut g) => g.take(),
                Err(p) => p.into_inner().take(),
            };
            let n = taken.as_ref().map_or(0, |t| t.pages());
            let class = super::runner::class_of(report.cause.unwrap_or(Cause::CarrierLost));
            metrics::fax_ended(Direction::In, &self.cfg.name, class, n);
            let stored = match taken.map(|t| t.commit(&report, started.elapsed().as_secs())) {
                Some(Ok(Some(job))) => Stored::Fax { job, pages: n },
                Some(Ok(None)) | None => Stored::NoPages,
                Some(Err(e)) => Stored::Kept(e.to_string()),
            };
            let cause = report.cause;
            if let Err(e) = r
                && matches!(e, ModemError::Port(_))
            {
                self.fail(&mut slot, "incoming call", &e);
            }
            drop(slot);
            self.show(|m| {
                if m.state == ModemState::Receiving {
                    m.state = ModemState::Idle;
                }
                m.last_call = Some(LastCall {
                    ended: crate::spool::now(),
                    direction: "in".into(),
                    job: match &stored {
                        Stored::Fax { job, .. } => job.to_string(),
                        _ => String::new(),
                    },
                    number: caller.number.clone().unwrap_or_default(),
                    pages: n,
                    cause: cause
                        .map(|c| format!("{} {}", c.number(), c.meaning()))
                        .unwrap_or_else(|| "no T.30 outcome".into()),
                });
            });
            on_fax(self, stored);
        }
    }
}
