//! An in-memory telephone line joining two engines: the loopback line of the embedded default
//! and the test bench. Time is simulated (no clock is read): each transmission lasts as long as
//! it would on a real line (V.21 preamble and 300 bit/s, high-speed training and bit rate), and
//! the line advances its own `now` from one event to the next.
//!
//! A receiver hears a transmission only if it was listening for that kind of carrier (V.21 or
//! the same high-speed modulation and training) when the transmission began, as a real modem
//! does; a high-speed listener that hears V.21 gets [`Event::WrongCarrier`] (`+FCERROR`).
//! A tamper hook sees every transmission before it goes out and may drop it or change it
//! (corrupt a frame so its FCS fails, drop ECM frames, spoil TCF): frames travel with their
//! real FCS ([`super::hdlc`]) and the receiving side checks it.

use super::dis::{Modulation, Training};
use super::engine::Engine;
use super::fcf::{Fcf, Frame};
use super::hdlc;
use super::{Command, DataKind, Event};
use std::fmt::Write as _;
use std::time::Duration;

/// One end of the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The calling engine (A).
    Caller,
    /// The answering engine (B).
    Answerer,
}

impl Side {
    fn idx(self) -> usize {
        match self {
            Side::Caller => 0,
            Side::Answerer => 1,
        }
    }
    fn letter(self) -> char {
        match self {
            Side::Caller => 'A',
            Side::Answerer => 'B',
        }
    }
    fn other(self) -> Side {
        match self {
            Side::Caller => Side::Answerer,
            Side::Answerer => Side::Caller,
        }
    }
}

/// What goes down the line in one transmission. Frames carry their FCS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// V.21 HDLC frames, each with its two FCS octets.
    Frames(Vec<Vec<u8>>),
    /// TCF bytes at a modulation.
    Tcf(Modulation, Vec<u8>),
    /// Non-ECM page data.
    Page(Modulation, Training, Vec<u8>),
    /// ECM frames at high speed, each with FCS.
    Ecm(Modulation, Training, Vec<Vec<u8>>),
}

/// A transmission as the tamper hook sees it.
#[derive(Debug, Clone)]
pub struct Transmission {
    /// Who sends it.
    pub from: Side,
    /// Sequence number over the whole call, from 0.
    pub seq: usize,
    /// The signal; the hook may change it.
    pub signal: Signal,
    /// A note for the transcript when the hook changed something.
    pub note: Option<String>,
}

impl Transmission {
    /// The FCF of every frame (V.21 or ECM), `None` for damaged ones.
    pub fn fcfs(&self) -> Vec<Option<Fcf>> {
        let frames = match &self.signal {
            Signal::Frames(f) | Signal::Ecm(_, _, f) => f,
            _ => return Vec::new(),
        };
        frames
            .iter()
            .map(|f| {
                hdlc::check_fcs(f)
                    .and_then(|b| Frame::parse(b).ok())
                    .and_then(|fr| fr.fcf())
            })
            .collect()
    }

    /// Whether any frame of this transmission has FCF `fcf`.
    pub fn has(&self, fcf: Fcf) -> bool {
        self.fcfs().contains(&Some(fcf))
    }
}

/// What the tamper hook decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Send it (possibly changed).
    Deliver,
    /// Lose it entirely (the other side hears nothing).
    Drop,
}

/// Why [`Line::run`] stopped early.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// Both engines wait and nothing can happen: an engine bug.
    #[error("deadlock at {0:?}: both engines wait with no deadline")]
    Deadlock(Duration),
    /// The step bound was reached.
    #[error("no end after {0} steps")]
    TooManySteps(usize),
    /// The caller's step hook stopped the call (the line was hung up from outside).
    #[error("hung up from outside at {0:?}")]
    HungUp(Duration),
}

type Hook = Box<dyn FnMut(&mut Transmission) -> Fate>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listen {
    V21,
    High(Modulation, Training, DataKind),
}

struct Tx {
    t: Transmission,
    start: Duration,
    end: Duration,
    fate: Fate,
}

#[derive(Default)]
struct SideState {
    busy_until: Option<Duration>,
    tx: Option<Tx>,
    listen: Option<(Listen, Duration)>,
    hung_up: bool,
}

/// Two engines on one simulated line.
pub struct Line {
    engines: [Engine; 2],
    sides: [SideState; 2],
    now: Duration,
    seq: usize,
    hook: Option<Hook>,
    transcript: String,
}

/// How late after a carrier starts a receiver may still start listening and catch it: within
/// the V.21 preamble / the training (ours; Class 1 modems re-arm `+FRH` in tens of ms).
const CATCH: Duration = Duration::from_millis(200);

impl Line {
    /// Joins `caller` (A) and `answerer` (B); both start at time 0.
    pub fn new(caller: Engine, answerer: Engine) -> Line {
        Line {
            engines: [caller, answerer],
            sides: [SideState::default(), SideState::default()],
            now: Duration::ZERO,
            seq: 0,
            hook: None,
            transcript: String::new(),
        }
    }

    /// Installs a tamper hook called for every transmission.
    pub fn with_tamper(mut self, hook: impl FnMut(&mut Transmission) -> Fate + 'static) -> Line {
        self.hook = Some(Box::new(hook));
        self
    }

    /// The engine at `side`.
    pub fn engine(&self, side: Side) -> &Engine {
        &self.engines[side.idx()]
    }

    /// The simulated time now.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// Everything that went over the line, one line per transmission or timeout, with times.
    pub fn transcript(&self) -> &str {
        &self.transcript
    }

    fn log(&mut self, side: Side, text: &str) {
        let _ = writeln!(
            self.transcript,
            "{:>7} ms  {}  {}",
            self.now.as_millis(),
            side.letter(),
            text
        );
    }

    /// Runs the call until both engines have hung up. At most `max_steps` events.
    pub fn run(&mut self, max_steps: usize) -> Result<(), LineError> {
        self.run_with(max_steps, &mut |_| true)
    }

    /// [`Line::run`], calling `step` with the simulated time before each event: the shell
    /// uses it to keep the call in step with the wall clock (pacing) and answers `false` to
    /// hang the line up (shutdown), which ends the run with [`LineError::HungUp`].
    pub fn run_with(
        &mut self,
        max_steps: usize,
        step: &mut dyn FnMut(Duration) -> bool,
    ) -> Result<(), LineError> {
        self.run_observed(max_steps, &mut |t, _| step(t))
    }

    /// [`Line::run_with`], `step` also seeing the line (its engines' [`Engine::progress`]):
    /// the observer hook of status displays, called once per event, never per byte.
    pub fn run_observed(
        &mut self,
        max_steps: usize,
        step: &mut dyn FnMut(Duration, &Line) -> bool,
    ) -> Result<(), LineError> {
        self.engines[0].start(self.now);
        self.engines[1].start(self.now);
        for _ in 0..max_steps {
            for side in [Side::Caller, Side::Answerer] {
                self.start_commands(side);
            }
            if self.sides.iter().all(|s| s.hung_up) {
                return Ok(());
            }
            let Some(next) = self.next_time() else {
                return Err(LineError::Deadlock(self.now));
            };
            self.now = self.now.max(next);
            if !step(self.now, self) {
                return Err(LineError::HungUp(self.now));
            }
            self.fire();
        }
        Err(LineError::TooManySteps(max_steps))
    }

    fn start_commands(&mut self, side: Side) {
        let i = side.idx();
        while !self.sides[i].hung_up
            && self.sides[i].busy_until.is_none()
            && self.sides[i].listen.is_none()
        {
            let Some(cmd) = self.engines[i].next_command() else {
                return;
            };
            match cmd {
                Command::HangUp => {
                    self.sides[i].hung_up = true;
                    let r = self.engines[i].report();
                    let text = match r.cause {
                        Some(c) => format!("hang up: cause {} {:?}", c.number(), c),
                        None => "hang up".into(),
                    };
                    self.log(side, &text);
                }
                Command::Silence(d) => {
                    self.sides[i].busy_until = Some(self.now + d);
                }
                Command::ReceiveFrames { .. } => {
                    self.sides[i].listen = Some((Listen::V21, self.now));
                    self.catch_started(side);
                }
                Command::ReceiveData {
                    modulation,
                    training,
                    kind,
                    ..
                } => {
                    self.sides[i].listen =
                        Some((Listen::High(modulation, training, kind), self.now));
                    self.catch_started(side);
                }
                Command::SendFrames(frames) => {
                    let f = frames.iter().map(|f| hdlc::with_fcs(f.bytes())).collect();
                    self.begin(side, Signal::Frames(f), describe_frames(&frames));
                }
                Command::SendTcf {
                    modulation,
                    duration,
                } => {
                    let n = (u128::from(modulation.bps()) * duration.as_millis() / 8000) as usize;
                    let text = format!("TCF {} {} ms", modulation.name(), duration.as_millis());
                    self.begin(side, Signal::Tcf(modulation, vec![0; n]), text);
                }
                Command::SendPage {
                    modulation,
                    training,
                    data,
                } => {
                    let text = format!(
                        "PAGE {} {:?} {} bytes",
                        modulation.name(),
                        training,
                        data.len()
                    );
                    self.begin(side, Signal::Page(modulation, training, data), text);
                }
                Command::SendEcmBlock {
                    modulation,
                    training,
                    frames,
                } => {
                    let fcd: Vec<u8> = frames
                        .iter()
                        .filter(|f| f.fcf() == Some(Fcf::Fcd))
                        .filter_map(|f| f.fif().first().copied())
                        .collect();
                    let text = format!(
                        "ECM {} {:?} FCD {} RCP x{}",
                        modulation.name(),
                        training,
                        ranges(&fcd),
                        frames.len() - fcd.len()
                    );
                    let f = frames.iter().map(|f| hdlc::with_fcs(f.bytes())).collect();
                    self.begin(side, Signal::Ecm(modulation, training, f), text);
                }
            }
        }
    }

    /// A listener just started: it hears a transmission that began at most [`CATCH`] ago, or
    /// gets `WrongCarrier` for V.21 while it wanted high speed.
    fn catch_started(&mut self, side: Side) {
        let o = side.other().idx();
        let Some(tx) = &self.sides[o].tx else { return };
        let Some((listen, _)) = self.sides[side.idx()].listen else {
            return;
        };
        if tx.fate == Fate::Deliver && matches_listen(listen, &tx.t.signal) {
            // Caught within the preamble / training: this receive will get the signal.
            if self.now <= tx.start + CATCH {
                self.engines[side.idx()].handle(Event::Connect, self.now);
            }
            return;
        }
        if matches!(listen, Listen::High(..))
            && matches!(tx.t.signal, Signal::Frames(_))
            && tx.fate == Fate::Deliver
        {
            self.sides[side.idx()].listen = None;
            self.engines[side.idx()].handle(Event::WrongCarrier, self.now);
        }
    }

    fn begin(&mut self, side: Side, signal: Signal, mut text: String) {
        let mut t = Transmission {
            from: side,
            seq: self.seq,
            signal,
            note: None,
        };
        self.seq += 1;
        let fate = match self.hook.as_mut() {
            Some(h) => h(&mut t),
            None => Fate::Deliver,
        };
        if fate == Fate::Drop {
            text.push_str("  [lost on the line]");
        } else if let Some(n) = &t.note {
            let _ = write!(text, "  [{n}]");
        }
        self.log(side, &text);
        let end = self.now + airtime(&t.signal);
        let o = side.other().idx();
        // A high-speed listener detects V.21 at once (+FCERROR).
        if fate == Fate::Deliver
            && matches!(t.signal, Signal::Frames(_))
            && matches!(self.sides[o].listen, Some((Listen::High(..), _)))
        {
            self.sides[o].listen = None;
            self.engines[o].handle(Event::WrongCarrier, self.now);
        }
        // A listener for this very carrier detects it now (Class 1 CONNECT).
        if fate == Fate::Deliver
            && let Some((listen, _)) = self.sides[o].listen
            && matches_listen(listen, &t.signal)
        {
            self.engines[o].handle(Event::Connect, self.now);
        }
        self.sides[side.idx()].busy_until = Some(end);
        self.sides[side.idx()].tx = Some(Tx {
            t,
            start: self.now,
            end,
            fate,
        });
    }

    /// The earliest pending end of transmission, silence, or receive deadline.
    fn next_time(&self) -> Option<Duration> {
        let mut best: Option<Duration> = None;
        let mut consider = |t: Duration| best = Some(best.map_or(t, |b: Duration| b.min(t)));
        for (i, s) in self.sides.iter().enumerate() {
            if let Some(t) = s.busy_until {
                consider(t);
            }
            if let Some((listen, _)) = s.listen
                && let Some(d) = self.engines[i].poll_at()
                && !self.carrier_for(i, listen)
            {
                consider(d);
            }
        }
        best
    }

    fn fire(&mut self) {
        for side in [Side::Caller, Side::Answerer] {
            let i = side.idx();
            if self.sides[i].busy_until.is_some_and(|t| t <= self.now) {
                self.sides[i].busy_until = None;
                if let Some(tx) = self.sides[i].tx.take() {
                    self.deliver(side.other(), tx);
                }
                self.engines[i].handle(Event::Sent, self.now);
            }
        }
        for side in [Side::Caller, Side::Answerer] {
            let i = side.idx();
            let Some((listen, _)) = self.sides[i].listen else {
                continue;
            };
            let Some(d) = self.engines[i].poll_at() else {
                continue;
            };
            if d > self.now {
                continue;
            }
            // Carrier present (the other side is sending what we listen for): no timeout yet.
            if self.carrier_for(i, listen) {
                continue;
            }
            self.sides[i].listen = None;
            let what = format!("timeout waiting in state {:?}", self.engines[i].state());
            self.log(side, &what);
            self.engines[i].handle(Event::Timeout, self.now);
        }
    }

    /// Whether side `i` hears the carrier it listens for right now.
    fn carrier_for(&self, i: usize, listen: Listen) -> bool {
        self.sides[1 - i]
            .tx
            .as_ref()
            .is_some_and(|tx| tx.fate == Fate::Deliver && matches_listen(listen, &tx.t.signal))
    }

    fn deliver(&mut self, to: Side, tx: Tx) {
        let i = to.idx();
        if tx.fate == Fate::Drop {
            return;
        }
        let Some((listen, since)) = self.sides[i].listen else {
            return;
        };
        if since > tx.start + CATCH || !matches_listen(listen, &tx.t.signal) {
            return;
        }
        let _ = tx.end;
        self.sides[i].listen = None;
        let now = self.now;
        let e = &mut self.engines[i];
        match tx.t.signal {
            Signal::Frames(frames) | Signal::Ecm(_, _, frames) => {
                let mut ended = false;
                for f in frames {
                    match hdlc::check_fcs(&f).map(Frame::parse) {
                        Some(Ok(fr)) => {
                            let fin = fr.is_final() && matches!(listen, Listen::V21);
                            e.handle(Event::Frame(fr), now);
                            if fin {
                                ended = true;
                                break;
                            }
                        }
                        _ => e.handle(Event::BadFrame, now),
                    }
                }
                if !ended {
                    e.handle(Event::CarrierEnd, now);
                }
            }
            Signal::Tcf(_, bytes) | Signal::Page(_, _, bytes) => {
                for chunk in bytes.chunks(4096) {
                    e.handle(Event::Data(chunk.to_vec()), now);
                }
                e.handle(Event::CarrierEnd, now);
            }
        }
    }
}

fn matches_listen(l: Listen, s: &Signal) -> bool {
    match (l, s) {
        (Listen::V21, Signal::Frames(_)) => true,
        (Listen::High(m, _, DataKind::Tcf), Signal::Tcf(m2, _)) => m == *m2,
        (Listen::High(m, t, DataKind::Page), Signal::Page(m2, t2, _)) => {
            m == *m2 && same_train(m, t, *t2)
        }
        (Listen::High(m, t, DataKind::EcmFrames), Signal::Ecm(m2, t2, _)) => {
            m == *m2 && same_train(m, t, *t2)
        }
        _ => false,
    }
}

/// V.17 receivers must be told long or short training; V.27 ter and V.29 have one kind.
fn same_train(m: Modulation, a: Training, b: Training) -> bool {
    a == b || !m.has_short_training()
}

/// How long a signal occupies the line.
fn airtime(s: &Signal) -> Duration {
    // T.30 §5.3.1: 1 s ± 15 % of flags precede V.21 frames; 300 bit/s; one flag per frame.
    let hs_train = |m: Modulation, t: Training| -> u64 {
        // Training lengths (ours, rounded from V.17 §1.3, V.29, V.27 ter): µs.
        match (m, t) {
            (Modulation::V27ter2400, _) => 943_000,
            (Modulation::V27ter4800, _) => 708_000,
            (Modulation::V29_7200 | Modulation::V29_9600, _) => 253_000,
            (_, Training::Long) => 1_393_000,
            (_, Training::Short) => 142_000,
        }
    };
    let us = match s {
        Signal::Frames(f) => {
            let bits: u64 = f.iter().map(|x| (x.len() as u64 + 1) * 8).sum();
            1_000_000 + bits * 1_000_000 / 300
        }
        Signal::Tcf(m, b) => {
            hs_train(*m, Training::Long) + b.len() as u64 * 8_000_000 / u64::from(m.bps())
        }
        Signal::Page(m, t, b) => hs_train(*m, *t) + b.len() as u64 * 8_000_000 / u64::from(m.bps()),
        Signal::Ecm(m, t, f) => {
            let bits: u64 = f.iter().map(|x| (x.len() as u64 + 1) * 8).sum();
            hs_train(*m, *t) + bits * 1_000_000 / u64::from(m.bps())
        }
    };
    Duration::from_micros(us)
}

fn describe_frames(frames: &[Frame]) -> String {
    let mut s = String::new();
    for (n, f) in frames.iter().enumerate() {
        if n > 0 {
            s.push(' ');
        }
        let name = f.fcf().map(Fcf::name).unwrap_or("?");
        s.push_str(name);
        match f.fcf() {
            Some(Fcf::Tsi | Fcf::Csi | Fcf::Cig | Fcf::Sub | Fcf::Sid) => {
                let _ = write!(s, " \"{}\"", super::fcf::decode_id(f.fif()));
            }
            Some(Fcf::Dis | Fcf::Dcs | Fcf::Dtc | Fcf::Pps | Fcf::Ctc) => {
                s.push_str(" (");
                for (k, b) in f.fif().iter().enumerate() {
                    if k > 0 {
                        s.push(' ');
                    }
                    let _ = write!(s, "{b:02X}");
                }
                s.push(')');
            }
            Some(Fcf::Ppr) => {
                let missing: Vec<u8> = (0..=255u8)
                    .filter(|i| {
                        f.fif()
                            .get(usize::from(*i) / 8)
                            .is_some_and(|o| o >> (i % 8) & 1 != 0)
                    })
                    .collect();
                let _ = write!(s, " (missing {})", ranges(&missing));
            }
            _ => {}
        }
    }
    format!("V.21 {s}")
}

/// "0-3,7" for a sorted list of frame numbers.
fn ranges(v: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && u16::from(v[j + 1]) == u16::from(v[j]) + 1 {
            j += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if j > i {
            let _ = write!(out, "{}-{}", v[i], v[j]);
        } else {
            let _ = write!(out, "{}", v[i]);
        }
        i = j + 1;
    }
    if out.is_empty() {
        out.push_str("none");
    }
    out
}
