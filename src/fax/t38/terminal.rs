//! The T.30 engine's line mapped onto IFP packets — PURE, the way `fax::modem::session` maps it
//! onto Class 1: engine [`Command`]s become IFP packets with the times they are due, received
//! IFP packets become engine [`Event`]s. Time is an input; no clock, no socket.
//!
//! Sending (T.38 clauses 7 and 8):
//! - V.21 frames: the `v21-preamble` indicator, then after the 1 s flag preamble (T.30 §5.3.1)
//!   each frame as `hdlc-data` + `hdlc-fcs-OK` when its last bit would have left a modem at
//!   300 bit/s; the final frame closes with `hdlc-fcs-OK-sig-end`.
//! - TCF: the modulation's training indicator, then zeros as `t4-non-ecm-data` paced at the
//!   bit rate and `t4-non-ecm-sig-end` — with transferred TCF (T.38 clause 8) and also with local
//!   TCF, where terminals still check TCF from the data (spandsp does; a gateway ignores it).
//!   Received with local TCF and no data, TCF is heard as 1.5 s of zeros.
//! - A non-ECM page: the training indicator, the page as `t4-non-ecm-data` chunks sized to the
//!   far end's datagram limit, paced at the bit rate, then `t4-non-ecm-sig-end`.
//! - An ECM block: the training indicator, each frame as `hdlc-data` + `hdlc-fcs-OK` at the
//!   high-speed data type, the last with `hdlc-fcs-OK-sig-end`.
//! - Silence: `no-signal`, and the time passes.
//!
//! Pacing at the modulation's real rate matters: a T.38 peer runs T.30 timers against the real
//! time its packets arrive (spandsp and gateways pace the same way). After each transmission a
//! few `no-signal` indicators follow ([`TRAILERS`]): the datagrams that carry them also carry
//! the transmission's last packets as UDPTL redundancy, so a lost last datagram is rebuilt.
//!
//! Receiving: each indicator (or data of a new type when the indicator was lost) starts a
//! *signal*; a signal ends at a sig-end, `no-signal` or the next indicator. A receive command
//! takes the signal that is going on (or one that ended less than [`CATCH`] before it began,
//! which a modem would also have caught in its preamble): `Connect` when it is the carrier
//! asked for, then `Frame` / `BadFrame` per HDLC frame (FCS-less bytes; the sender checked the
//! FCS and says so with fcs-OK/BAD), `Data` per non-ECM chunk, `CarrierEnd` at its end;
//! `WrongCarrier` for high speed while V.21 is expected or the reverse, or another modulation;
//! `Timeout` when `timeout` passes with none. A UDPTL loss inside a frame spoils that frame.

use super::ifp::{DataType, Field, FieldType, Ifp, Indicator};
use super::{RateManagement, T38Params};
use crate::fax::t30::hdlc::MAX_FRAME;
use crate::fax::t30::{Command, DataKind, Event, Frame, Modulation, Training};
use std::collections::VecDeque;
use std::time::Duration;

/// T.30 §5.3.1: the flag preamble before V.21 frames, 1 s ± 15 %.
pub const V21_PREAMBLE: Duration = Duration::from_secs(1);

/// T.30 §5.3.6.1.3: TCF lasts 1.5 s; with local TCF it is this long on the far end's line.
pub const TCF_TIME: Duration = Duration::from_millis(1500);

/// How long before a receive command began a signal may have ended and still be heard (ours:
/// a modem's `+FRH`/`+FRM` catches a carrier within its preamble; packets arrive in bursts).
pub const CATCH: Duration = Duration::from_millis(1000);

/// `no-signal` indicators sent after each transmission, 20 ms apart (ours: they carry the
/// transmission's last packets as UDPTL redundancy; see the module docs).
pub const TRAILERS: usize = 3;

/// Most octets of received signal held while no receive command takes them (ours: a far
/// end talking while we transmit; more is dropped and the signal marked damaged).
pub const MAX_HELD: usize = 1 << 20;

/// Training time of a high-speed modulation before its data (ours, rounded from V.17,
/// V.29 and V.27 ter; the same figures as `fax::t30::line`).
pub fn training_time(m: Modulation, t: Training) -> Duration {
    Duration::from_micros(match (m, t) {
        (Modulation::V27ter2400, _) => 943_000,
        (Modulation::V27ter4800, _) => 708_000,
        (Modulation::V29_7200 | Modulation::V29_9600, _) => 253_000,
        (_, Training::Long) => 1_393_000,
        (_, Training::Short) => 142_000,
    })
}

/// The training indicator of a modulation (T.38 Annex A `t30-indicator`).
pub fn training_indicator(m: Modulation, t: Training) -> Indicator {
    let long = t == Training::Long;
    match m {
        Modulation::V27ter2400 => Indicator::V27_2400Training,
        Modulation::V27ter4800 => Indicator::V27_4800Training,
        Modulation::V29_7200 => Indicator::V29_7200Training,
        Modulation::V29_9600 => Indicator::V29_9600Training,
        Modulation::V17_7200 if long => Indicator::V17_7200LongTraining,
        Modulation::V17_7200 => Indicator::V17_7200ShortTraining,
        Modulation::V17_9600 if long => Indicator::V17_9600LongTraining,
        Modulation::V17_9600 => Indicator::V17_9600ShortTraining,
        Modulation::V17_12000 if long => Indicator::V17_12000LongTraining,
        Modulation::V17_12000 => Indicator::V17_12000ShortTraining,
        Modulation::V17_14400 if long => Indicator::V17_14400LongTraining,
        Modulation::V17_14400 => Indicator::V17_14400ShortTraining,
    }
}

/// The data type of a modulation.
pub fn data_type(m: Modulation) -> DataType {
    match m {
        Modulation::V27ter2400 => DataType::V27_2400,
        Modulation::V27ter4800 => DataType::V27_4800,
        Modulation::V29_7200 => DataType::V29_7200,
        Modulation::V29_9600 => DataType::V29_9600,
        Modulation::V17_7200 => DataType::V17_7200,
        Modulation::V17_9600 => DataType::V17_9600,
        Modulation::V17_12000 => DataType::V17_12000,
        Modulation::V17_14400 => DataType::V17_14400,
    }
}

/// What kind of signal an indicator or data type announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sig {
    V21,
    /// High speed; `None` for a modulation we do not speak (V.8, V.33, V.34).
    High(Option<Modulation>),
}

fn sig_of_indicator(i: Indicator) -> Option<Sig> {
    use Indicator as I;
    let m = match i {
        I::V21Preamble => return Some(Sig::V21),
        I::V27_2400Training => Modulation::V27ter2400,
        I::V27_4800Training => Modulation::V27ter4800,
        I::V29_7200Training => Modulation::V29_7200,
        I::V29_9600Training => Modulation::V29_9600,
        I::V17_7200ShortTraining | I::V17_7200LongTraining => Modulation::V17_7200,
        I::V17_9600ShortTraining | I::V17_9600LongTraining => Modulation::V17_9600,
        I::V17_12000ShortTraining | I::V17_12000LongTraining => Modulation::V17_12000,
        I::V17_14400ShortTraining | I::V17_14400LongTraining => Modulation::V17_14400,
        // v33-12000/14400 training (extensions 5, 6) and V.34: high speed we do not speak.
        I::Extension(2..=6) => return Some(Sig::High(None)),
        I::NoSignal | I::Cng | I::Ced | I::Extension(_) => return None,
    };
    Some(Sig::High(Some(m)))
}

fn sig_of_data(d: DataType) -> Sig {
    let m = match d {
        DataType::V21 => return Sig::V21,
        DataType::V27_2400 => Modulation::V27ter2400,
        DataType::V27_4800 => Modulation::V27ter4800,
        DataType::V29_7200 => Modulation::V29_7200,
        DataType::V29_9600 => Modulation::V29_9600,
        DataType::V17_7200 => Modulation::V17_7200,
        DataType::V17_9600 => Modulation::V17_9600,
        DataType::V17_12000 => Modulation::V17_12000,
        DataType::V17_14400 => Modulation::V17_14400,
        DataType::Extension(_) => return Sig::High(None),
    };
    Sig::High(Some(m))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Frame(Frame),
    BadFrame,
    Data(Vec<u8>),
}

/// One received signal, from its indicator to its end.
#[derive(Debug)]
struct Signal {
    sig: Sig,
    items: VecDeque<Item>,
    /// When it ended (`None`: going on).
    ended: Option<Duration>,
    /// The HDLC frame being collected.
    frame: Vec<u8>,
    /// The frame being collected lost a packet (or overflowed).
    damaged: bool,
    held: usize,
}

impl Signal {
    fn new(sig: Sig) -> Signal {
        Signal {
            sig,
            items: VecDeque::new(),
            ended: None,
            frame: Vec::new(),
            damaged: false,
            held: 0,
        }
    }

    fn push(&mut self, item: Item) {
        let n = match &item {
            Item::Data(d) => d.len(),
            _ => MAX_FRAME,
        };
        if self.held + n > MAX_HELD {
            self.damaged = true;
            return;
        }
        self.held += n;
        self.items.push_back(item);
    }

    fn pop(&mut self) -> Option<Item> {
        let item = self.items.pop_front()?;
        self.held -= match &item {
            Item::Data(d) => d.len(),
            _ => MAX_FRAME,
        };
        Some(item)
    }

    fn close_frame(&mut self, good: bool) {
        let bytes = std::mem::take(&mut self.frame);
        let item = match (good && !self.damaged, Frame::parse(&bytes)) {
            (true, Ok(f)) => Item::Frame(f),
            _ => Item::BadFrame,
        };
        self.damaged = false;
        self.push(item);
    }

    fn end(&mut self, now: Duration) {
        if self.ended.is_none() {
            if !self.frame.is_empty() {
                // The carrier ended inside a frame: that frame is lost.
                self.frame.clear();
                self.push(Item::BadFrame);
            }
            self.ended = Some(now);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    V21,
    High(Modulation, DataKind),
}

#[derive(Debug, Clone, Copy)]
struct Listen {
    want: Want,
    since: Duration,
    timeout: Duration,
    connected: bool,
    /// Data octets delivered (local TCF synthesises TCF when the far end sent none).
    data: usize,
}

/// The engine's line over T.38, for one call. See the module docs.
#[derive(Debug)]
pub struct Terminal {
    version: u8,
    rate: RateManagement,
    /// Largest payload octets per IFP packet (from the far end's datagram limit).
    chunk: usize,
    tx: VecDeque<(Duration, Ifp, bool)>,
    /// When the transmit in progress completes ([`Event::Sent`]).
    tx_end: Option<Duration>,
    last_indicator: Option<Indicator>,
    signals: VecDeque<Signal>,
    listen: Option<Listen>,
}

/// Most signals held (ours: only the last one or two ever matter).
const MAX_SIGNALS: usize = 4;

impl Terminal {
    /// A terminal for a session with these parameters ([`T38Params::max_datagram`] being the
    /// far end's limit, [`T38Params::redundancy_depth`] the copies each packet travels in).
    pub fn new(params: &T38Params) -> Terminal {
        // A datagram holds the packet and `depth` earlier ones, each with a few octets of
        // IFP and UDPTL framing (ours: 8).
        let copies = usize::from(params.redundancy_depth) + 1;
        let per = (params.max_datagram as usize).saturating_sub(4) / copies;
        Terminal {
            version: params.version,
            rate: params.rate_management,
            chunk: per.saturating_sub(8).clamp(16, 1024),
            tx: VecDeque::new(),
            tx_end: None,
            last_indicator: None,
            signals: VecDeque::new(),
            listen: None,
        }
    }

    /// The T.38 version packets are encoded in.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// Whether a transmit command is in progress (its [`Event::Sent`] not yet given).
    pub fn transmitting(&self) -> bool {
        self.tx_end.is_some()
    }

    /// Whether a receive command is in progress.
    pub fn receiving(&self) -> bool {
        self.listen.is_some()
    }

    /// Starts carrying out `cmd` at `now`. A receive still in progress is abandoned (the
    /// engine moved on after its own timeout). [`Command::HangUp`] does nothing here.
    pub fn start(&mut self, cmd: Command, now: Duration) {
        self.listen = None;
        match cmd {
            Command::HangUp => {}
            Command::ReceiveFrames { timeout } => self.listen(Want::V21, timeout, now),
            Command::ReceiveData {
                modulation,
                kind,
                timeout,
                ..
            } => self.listen(Want::High(modulation, kind), timeout, now),
            Command::Silence(d) => {
                let t = self.begin_tx(now);
                if self.last_indicator != Some(Indicator::NoSignal) {
                    self.indicator(t, Indicator::NoSignal);
                }
                self.end_tx(t + d, false);
            }
            Command::SendFrames(frames) => {
                let mut t = self.begin_tx(now);
                self.indicator(t, Indicator::V21Preamble);
                t += V21_PREAMBLE;
                let n = frames.len();
                for (i, f) in frames.iter().enumerate() {
                    t += bits_time(hdlc_bits(f.bytes().len()), 300);
                    self.hdlc(t, DataType::V21, f.bytes(), i + 1 == n);
                }
                self.end_tx(t, true);
            }
            Command::SendTcf {
                modulation,
                duration,
            } => {
                let mut t = self.begin_tx(now);
                self.indicator(t, training_indicator(modulation, Training::Long));
                t += training_time(modulation, Training::Long);
                // The zeros go out with local TCF too: a gateway doing its own TCF ignores
                // them, and terminals (spandsp's among them) check TCF from the data
                // whatever the SDP said.
                let n = (u128::from(modulation.bps()) * duration.as_millis() / 8000) as usize;
                t = self.non_ecm(t, data_type(modulation), modulation.bps(), &vec![0; n]);
                self.end_tx(t, true);
            }
            Command::SendPage {
                modulation,
                training,
                data,
            } => {
                let mut t = self.begin_tx(now);
                self.indicator(t, training_indicator(modulation, training));
                t += training_time(modulation, training);
                t = self.non_ecm(t, data_type(modulation), modulation.bps(), &data);
                self.end_tx(t, true);
            }
            Command::SendEcmBlock {
                modulation,
                training,
                frames,
            } => {
                let mut t = self.begin_tx(now);
                self.indicator(t, training_indicator(modulation, training));
                t += training_time(modulation, training);
                let dt = data_type(modulation);
                let n = frames.len();
                for (i, f) in frames.iter().enumerate() {
                    t += bits_time(hdlc_bits(f.bytes().len()), modulation.bps());
                    self.hdlc(t, dt, f.bytes(), i + 1 == n);
                }
                if n == 0 {
                    let p = Ifp::Data(dt, vec![Field::bare(FieldType::HdlcSigEnd)]);
                    self.tx.push_back((t, p, false));
                }
                self.end_tx(t, true);
            }
        }
    }

    fn listen(&mut self, want: Want, timeout: Duration, now: Duration) {
        // Only the latest signal can be the one this receive hears, and only if it is still
        // going on or ended within CATCH.
        while self.signals.len() > 1 {
            self.signals.pop_front();
        }
        if self
            .signals
            .front()
            .and_then(|s| s.ended)
            .is_some_and(|e| e + CATCH < now)
        {
            self.signals.clear();
        }
        self.listen = Some(Listen {
            want,
            since: now,
            timeout,
            connected: false,
            data: 0,
        });
    }

    /// A new transmission begins: `no-signal` trailers still waiting would only cut into it.
    fn begin_tx(&mut self, now: Duration) -> Duration {
        self.tx.retain(|(_, _, trailer)| !trailer);
        self.tx.back().map_or(now, |(t, _, _)| (*t).max(now))
    }

    fn end_tx(&mut self, t: Duration, trailers: bool) {
        self.tx_end = Some(t);
        if trailers {
            for k in 0..TRAILERS {
                let p = Ifp::Indicator(Indicator::NoSignal);
                self.tx
                    .push_back((t + Duration::from_millis(20 * k as u64), p, true));
            }
        }
    }

    fn indicator(&mut self, t: Duration, i: Indicator) {
        self.tx.push_back((t, Ifp::Indicator(i), false));
    }

    /// One HDLC frame as hdlc-data chunks, then an FCS-OK (with sig-end when `last`) in a
    /// packet of its own: a receiver that drops a repeated field type (spandsp takes an
    /// fcs-OK right after an fcs-OK for a repeat) sees hdlc-data in between.
    fn hdlc(&mut self, t: Duration, dt: DataType, frame: &[u8], last: bool) {
        let end = if last {
            FieldType::HdlcFcsOkSigEnd
        } else {
            FieldType::HdlcFcsOk
        };
        let wire = line_order(frame);
        for c in wire.chunks(self.chunk) {
            let p = Ifp::Data(dt, vec![Field::new(FieldType::HdlcData, c)]);
            self.tx.push_back((t, p, false));
        }
        self.tx
            .push_back((t, Ifp::Data(dt, vec![Field::bare(end)]), false));
    }

    /// Non-ECM data from `t` at `bps`, chunked and paced; then the sig-end. Returns the end.
    fn non_ecm(&mut self, mut t: Duration, dt: DataType, bps: u32, data: &[u8]) -> Duration {
        for c in data.chunks(self.chunk) {
            t += bits_time(c.len() as u64 * 8, bps);
            let p = Ifp::Data(
                dt,
                vec![Field::new(FieldType::T4NonEcmData, &line_order(c))],
            );
            self.tx.push_back((t, p, false));
        }
        let p = Ifp::Data(dt, vec![Field::bare(FieldType::T4NonEcmSigEnd)]);
        self.tx.push_back((t, p, false));
        t
    }

    /// The next packet to send if it is due at `now`.
    pub fn poll_transmit(&mut self, now: Duration) -> Option<Ifp> {
        if self.tx.front().is_some_and(|(t, _, _)| *t <= now) {
            let (_, p, _) = self.tx.pop_front()?;
            if let Ifp::Indicator(i) = p {
                self.last_indicator = Some(i);
            } else {
                self.last_indicator = None;
            }
            return Some(p);
        }
        None
    }

    /// When something is next due: a packet, the end of a transmit, a receive's timeout.
    pub fn next_due(&self) -> Option<Duration> {
        let tx = self.tx.front().map(|(t, _, _)| *t);
        let end = self.tx_end;
        let rx = self
            .listen
            .filter(|l| !l.connected)
            .map(|l| l.since + l.timeout);
        [tx, end, rx].into_iter().flatten().min()
    }

    /// A packet from the far end, decoded, at `now`.
    pub fn receive(&mut self, ifp: Ifp, now: Duration) {
        match ifp {
            Ifp::Indicator(i) => {
                let sig = sig_of_indicator(i);
                if sig.is_some() && self.open().is_some_and(|s| Some(s.sig) == sig) {
                    // The same indicator again while its signal goes on: a repeat (some
                    // peers send them between HDLC frames); T.38 has it ignored.
                    return;
                }
                if let Some(s) = self.open() {
                    s.end(now);
                }
                if let Some(sig) = sig {
                    self.new_signal(sig);
                }
            }
            Ifp::Data(dt, fields) => {
                let sig = sig_of_data(dt);
                if self.open().is_none_or(|s| s.sig != sig) {
                    // Data of another kind without its indicator (lost): a new signal.
                    if let Some(s) = self.open() {
                        s.end(now);
                    }
                    if self
                        .signals
                        .back()
                        .is_none_or(|s| s.sig != sig || s.ended.is_some())
                    {
                        self.new_signal(sig);
                    }
                }
                let Some(s) = self.open() else { return };
                for f in fields {
                    s.field(f, now);
                }
            }
        }
    }

    /// UDPTL lost packets that could not be rebuilt: the frame being received is spoilt.
    pub fn lost(&mut self) {
        if let Some(s) = self.open() {
            s.damaged = true;
        }
    }

    fn open(&mut self) -> Option<&mut Signal> {
        self.signals.back_mut().filter(|s| s.ended.is_none())
    }

    fn new_signal(&mut self, sig: Sig) {
        if self.signals.len() >= MAX_SIGNALS {
            self.signals.pop_front();
        }
        self.signals.push_back(Signal::new(sig));
    }

    /// The next event for the engine at `now`, if any.
    pub fn poll_event(&mut self, now: Duration) -> Option<Event> {
        if self.tx_end.is_some_and(|t| t <= now)
            && self
                .tx
                .front()
                .is_none_or(|(t, _, trailer)| *trailer || *t > now)
        {
            self.tx_end = None;
            return Some(Event::Sent);
        }
        let mut l = self.listen?;
        if !l.connected {
            let Some(s) = self.signals.front() else {
                if now >= l.since + l.timeout {
                    self.listen = None;
                    return Some(Event::Timeout);
                }
                return None;
            };
            let fits = match (l.want, s.sig) {
                (Want::V21, Sig::V21) => true,
                (Want::High(m, _), Sig::High(Some(m2))) => m == m2,
                _ => false,
            };
            if !fits {
                // V.21 instead of high speed: the engine listens for it next, so keep it.
                // Anything else is a signal we cannot demodulate: drop it.
                if s.sig != Sig::V21 {
                    self.signals.pop_front();
                }
                self.listen = None;
                return Some(Event::WrongCarrier);
            }
            l.connected = true;
            self.listen = Some(l);
            return Some(Event::Connect);
        }
        let s = self.signals.front_mut()?;
        match s.pop() {
            Some(item) => {
                let ev = match (l.want, item) {
                    (Want::High(_, DataKind::Tcf | DataKind::Page), Item::Data(d)) => {
                        l.data += d.len();
                        Event::Data(d)
                    }
                    (Want::V21 | Want::High(_, DataKind::EcmFrames), Item::Frame(f)) => {
                        if l.want == Want::V21 && f.is_final() {
                            // The final frame ends the receive command; the rest of this
                            // signal (its sig-end) belongs to no one.
                            self.signals.pop_front();
                            self.listen = None;
                            return Some(Event::Frame(f));
                        }
                        Event::Frame(f)
                    }
                    (Want::V21 | Want::High(_, DataKind::EcmFrames), Item::BadFrame) => {
                        Event::BadFrame
                    }
                    // Frames in non-ECM data or data among frames: not this receive's.
                    _ => return self.poll_event_after(l),
                };
                self.listen = Some(l);
                Some(ev)
            }
            None if s.ended.is_some() => {
                if l.want == Want::High(self.tcf_modulation(l), DataKind::Tcf)
                    && self.rate == RateManagement::LocalTcf
                    && l.data == 0
                {
                    // Local TCF (T.38 clause 8): the far end's gateway checked the training; we
                    // hear the 1.5 s of zeros it stands for.
                    if let Want::High(m, _) = l.want {
                        l.data = 1;
                        self.listen = Some(l);
                        let n = (u128::from(m.bps()) * TCF_TIME.as_millis() / 8000) as usize;
                        return Some(Event::Data(vec![0; n]));
                    }
                }
                self.signals.pop_front();
                self.listen = None;
                Some(Event::CarrierEnd)
            }
            None => None,
        }
    }

    fn poll_event_after(&mut self, l: Listen) -> Option<Event> {
        self.listen = Some(l);
        None
    }

    fn tcf_modulation(&self, l: Listen) -> Modulation {
        match l.want {
            Want::High(m, _) => m,
            Want::V21 => Modulation::V27ter2400,
        }
    }
}

impl Signal {
    fn field(&mut self, f: Field, now: Duration) {
        match f.kind {
            FieldType::HdlcData => {
                if self.frame.len() + f.data.len() > MAX_FRAME + 2 {
                    self.damaged = true;
                } else {
                    self.frame.extend(f.data.iter().map(|x| x.reverse_bits()));
                }
            }
            FieldType::HdlcFcsOk | FieldType::HdlcFcsOkSigEnd => {
                // Data in an fcs-OK field is against T.38; taken as the frame's tail.
                self.frame.extend(f.data.iter().map(|x| x.reverse_bits()));
                self.close_frame(true);
                if f.kind == FieldType::HdlcFcsOkSigEnd {
                    self.end(now);
                }
            }
            FieldType::HdlcFcsBad | FieldType::HdlcFcsBadSigEnd => {
                self.close_frame(false);
                if f.kind == FieldType::HdlcFcsBadSigEnd {
                    self.end(now);
                }
            }
            FieldType::HdlcSigEnd => self.end(now),
            FieldType::T4NonEcmData => {
                if !f.data.is_empty() {
                    self.push(Item::Data(line_order(&f.data)));
                }
            }
            FieldType::T4NonEcmSigEnd => {
                if !f.data.is_empty() {
                    self.push(Item::Data(line_order(&f.data)));
                }
                self.end(now);
            }
            FieldType::Extension(_) => {}
        }
    }
}

/// T.38 field-data holds the line's bits first-bit-in-MSB (each octet as it would be shifted
/// out MSB first); the engine's frames and page data are LSB first (T.30 §5.3.1, T.4): every
/// octet is bit-reversed on the way in and out (spandsp's terminal does the same).
fn line_order(b: &[u8]) -> Vec<u8> {
    b.iter().map(|x| x.reverse_bits()).collect()
}

/// Bits an HDLC frame of `len` octets (without FCS) takes: the FCS and one closing flag
/// (zero insertion ignored).
fn hdlc_bits(len: usize) -> u64 {
    (len as u64 + 3) * 8
}

fn bits_time(bits: u64, bps: u32) -> Duration {
    Duration::from_micros(bits * 1_000_000 / u64::from(bps.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fax::t30::Fcf;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Everything a terminal sends until `until`, as "ms packet" lines, plus events.
    fn transcript(t: &mut Terminal, until: u64) -> Vec<String> {
        let mut out = Vec::new();
        let mut now = Duration::ZERO;
        while now <= ms(until) {
            while let Some(p) = t.poll_transmit(now) {
                out.push(format!("{} {}", now.as_millis(), describe(&p)));
            }
            while let Some(e) = t.poll_event(now) {
                out.push(format!("{} event {e:?}", now.as_millis()));
            }
            match t.next_due() {
                Some(d) if d > now => now = d,
                Some(_) => now += ms(1),
                None => break,
            }
        }
        out
    }

    fn describe(p: &Ifp) -> String {
        match p {
            Ifp::Indicator(i) => format!("{i:?}"),
            Ifp::Data(d, f) => {
                let f: Vec<String> = f
                    .iter()
                    .map(|x| format!("{:?}[{}]", x.kind, x.data.len()))
                    .collect();
                format!("{d:?} {}", f.join(" "))
            }
        }
    }

    #[test]
    fn v21_frames_are_paced_and_end_with_sig_end() {
        let mut t = Terminal::new(&T38Params::default());
        let dis = Frame::new(Fcf::Dis, false, &[0, 0xCE, 0xF4], false);
        let csi = Frame::new(Fcf::Csi, false, &[0x20; 20], false);
        t.start(Command::SendFrames(vec![csi, dis.with_final(true)]), ms(0));
        let got = transcript(&mut t, 5000);
        let want = [
            "0 V21Preamble",
            // CSI: 23 octets + FCS + flag = 26 octets = 208 bits at 300 bit/s = 693 ms.
            "1693 V21 HdlcData[23]",
            "1693 V21 HdlcFcsOk[0]",
            // DIS: 6 octets → 9 × 8 = 72 bits = 240 ms.
            "1933 V21 HdlcData[6]",
            "1933 V21 HdlcFcsOkSigEnd[0]",
            "1933 NoSignal",
            "1933 event Sent",
            "1953 NoSignal",
            "1973 NoSignal",
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn field_data_is_in_line_order_msb_first() {
        // DIS's address, control (final) and FCF as the engine has them (LSB first: FF 13 80)
        // go out as FF C8 01; page octets likewise.
        let mut t = Terminal::new(&T38Params::default());
        let dis = Frame::new(Fcf::Dis, false, &[], true);
        assert_eq!(dis.bytes(), &[0xFF, 0x13, 0x80]);
        t.start(Command::SendFrames(vec![dis]), ms(0));
        t.poll_transmit(ms(0));
        let p = t.poll_transmit(ms(5000)).unwrap();
        assert_eq!(p.fields()[0].data, vec![0xFF, 0xC8, 0x01]);
        let mut t = Terminal::new(&T38Params::default());
        t.start(
            Command::SendPage {
                modulation: Modulation::V29_9600,
                training: Training::Long,
                data: vec![0x01, 0x80, 0x0F],
            },
            ms(0),
        );
        t.poll_transmit(ms(0));
        let p = t.poll_transmit(ms(5000)).unwrap();
        assert_eq!(p.fields()[0].data, vec![0x80, 0x01, 0xF0]);
    }

    #[test]
    fn tcf_transferred_and_local() {
        let p = T38Params {
            max_datagram: 400,
            redundancy_depth: 3,
            ..T38Params::default()
        };
        let mut t = Terminal::new(&p);
        t.start(
            Command::SendTcf {
                modulation: Modulation::V29_9600,
                duration: ms(1500),
            },
            ms(0),
        );
        let got = transcript(&mut t, 5000);
        assert_eq!(got[0], "0 V29_9600Training");
        // 1800 zero octets in chunks of 91 (400-4)/4-8: 20 packets, the last 1800-19*91=71.
        let data: Vec<_> = got.iter().filter(|l| l.contains("T4NonEcmData")).collect();
        assert_eq!(data.len(), 20);
        assert!(data[19].ends_with("T4NonEcmData[71]"), "{}", data[19]);
        // Paced: the last zeros leave 253 ms + 1.5 s after the indicator.
        // (1752: the chunk times are whole microseconds, rounded down.)
        assert!(
            got.contains(&"1752 V29_9600 T4NonEcmSigEnd[0]".to_string()),
            "{got:?}"
        );
        assert!(got.contains(&"1752 event Sent".to_string()));
        let mut l = Terminal::new(&T38Params {
            rate_management: RateManagement::LocalTcf,
            ..p
        });
        l.start(
            Command::SendTcf {
                modulation: Modulation::V29_9600,
                duration: ms(1500),
            },
            ms(0),
        );
        assert_eq!(transcript(&mut l, 5000), got);
    }

    fn wire(b: &[u8]) -> Vec<u8> {
        line_order(b)
    }

    fn feed(t: &mut Terminal, p: Ifp, now: u64) {
        t.receive(p, ms(now));
    }

    fn events(t: &mut Terminal, now: u64) -> Vec<Event> {
        let mut v = Vec::new();
        while let Some(e) = t.poll_event(ms(now)) {
            v.push(e);
        }
        v
    }

    #[test]
    fn receives_frames_with_and_without_losses() {
        let mut t = Terminal::new(&T38Params::default());
        t.start(Command::ReceiveFrames { timeout: ms(3000) }, ms(0));
        assert_eq!(events(&mut t, 10), vec![]);
        feed(&mut t, Ifp::Indicator(Indicator::V21Preamble), 100);
        assert_eq!(events(&mut t, 100), vec![Event::Connect]);
        let csi = Frame::new(Fcf::Csi, false, &[0x20; 20], false);
        let dis = Frame::new(Fcf::Dis, false, &[0, 0xCE], true);
        let data = |f: &Frame, end| {
            Ifp::Data(
                DataType::V21,
                vec![
                    Field::new(FieldType::HdlcData, &wire(f.bytes())),
                    Field::bare(end),
                ],
            )
        };
        // The CSI packet's tail went missing: the frame is spoilt.
        feed(
            &mut t,
            Ifp::Data(
                DataType::V21,
                vec![Field::new(FieldType::HdlcData, &wire(&csi.bytes()[..10]))],
            ),
            1100,
        );
        t.lost();
        feed(&mut t, data(&dis, FieldType::HdlcFcsOkSigEnd), 1300);
        // The DIS joined the spoilt CSI's bytes: one bad frame, then the carrier ends
        // without a final frame.
        assert_eq!(
            events(&mut t, 1300),
            vec![Event::BadFrame, Event::CarrierEnd]
        );
        assert!(!t.receiving());
        // Again, cleanly.
        t.start(Command::ReceiveFrames { timeout: ms(3000) }, ms(5000));
        feed(&mut t, Ifp::Indicator(Indicator::V21Preamble), 5100);
        feed(&mut t, data(&csi, FieldType::HdlcFcsOk), 5800);
        // A repeated preamble indicator between frames does not end the signal.
        feed(&mut t, Ifp::Indicator(Indicator::V21Preamble), 5900);
        feed(&mut t, data(&dis, FieldType::HdlcFcsOkSigEnd), 6000);
        assert_eq!(
            events(&mut t, 6000),
            vec![Event::Connect, Event::Frame(csi), Event::Frame(dis)]
        );
        assert!(!t.receiving());
        // The sig-end that followed the final frame is not replayed to the next receive.
        t.start(Command::ReceiveFrames { timeout: ms(3000) }, ms(6100));
        assert_eq!(events(&mut t, 6200), vec![]);
        assert_eq!(events(&mut t, 9100), vec![Event::Timeout]);
    }

    #[test]
    fn wrong_carrier_both_ways_and_late_listener_catches_up() {
        let mut t = Terminal::new(&T38Params::default());
        // V.21 while TCF is expected: WrongCarrier; then the V.21 receive gets it.
        t.start(
            Command::ReceiveData {
                modulation: Modulation::V17_14400,
                training: Training::Long,
                kind: DataKind::Tcf,
                timeout: ms(6000),
            },
            ms(0),
        );
        feed(&mut t, Ifp::Indicator(Indicator::V21Preamble), 50);
        assert_eq!(events(&mut t, 50), vec![Event::WrongCarrier]);
        t.start(Command::ReceiveFrames { timeout: ms(3000) }, ms(60));
        assert_eq!(events(&mut t, 60), vec![Event::Connect]);
        feed(&mut t, Ifp::Indicator(Indicator::NoSignal), 1500);
        assert_eq!(events(&mut t, 1500), vec![Event::CarrierEnd]);
        // High speed while V.21 is expected: WrongCarrier.
        t.start(Command::ReceiveFrames { timeout: ms(3000) }, ms(2000));
        feed(
            &mut t,
            Ifp::Indicator(Indicator::V17_14400LongTraining),
            2100,
        );
        assert_eq!(events(&mut t, 2100), vec![Event::WrongCarrier]);
        // Page data that started (indicator lost) before the receive command: caught.
        let dt = DataType::V17_14400;
        feed(
            &mut t,
            Ifp::Data(dt, vec![Field::new(FieldType::T4NonEcmData, &[1, 2, 3])]),
            3000,
        );
        t.start(
            Command::ReceiveData {
                modulation: Modulation::V17_14400,
                training: Training::Short,
                kind: DataKind::Page,
                timeout: ms(6000),
            },
            ms(3050),
        );
        feed(
            &mut t,
            Ifp::Data(dt, vec![Field::new(FieldType::T4NonEcmSigEnd, &[4])]),
            3100,
        );
        assert_eq!(
            events(&mut t, 3100),
            vec![
                Event::Connect,
                Event::Data(vec![0x80, 0x40, 0xC0]),
                Event::Data(vec![0x20]),
                Event::CarrierEnd
            ]
        );
    }

    #[test]
    fn held_signal_is_bounded_but_a_listened_one_is_not() {
        let chunk = vec![0x55u8; 1000];
        let dt = DataType::V29_9600;
        let data = |c: &[u8]| Ifp::Data(dt, vec![Field::new(FieldType::T4NonEcmData, c)]);
        // Nobody listens: at most MAX_HELD octets are kept.
        let mut t = Terminal::new(&T38Params::default());
        t.receive(Ifp::Indicator(Indicator::V29_9600Training), ms(0));
        for _ in 0..2 * MAX_HELD / chunk.len() {
            t.receive(data(&chunk), ms(1));
        }
        assert!(t.signals[0].held <= MAX_HELD);
        // A receive takes them as they come: a page longer than MAX_HELD goes through whole.
        let mut t = Terminal::new(&T38Params::default());
        t.start(
            Command::ReceiveData {
                modulation: Modulation::V29_9600,
                training: Training::Long,
                kind: DataKind::Page,
                timeout: ms(6000),
            },
            ms(0),
        );
        t.receive(Ifp::Indicator(Indicator::V29_9600Training), ms(0));
        let mut total = 0;
        for _ in 0..2 * MAX_HELD / chunk.len() {
            t.receive(data(&chunk), ms(1));
            for e in events(&mut t, 1) {
                if let Event::Data(d) = e {
                    total += d.len();
                }
            }
        }
        assert_eq!(total, 2 * MAX_HELD / chunk.len() * chunk.len());
    }

    #[test]
    fn local_tcf_is_heard_as_zeros() {
        let mut t = Terminal::new(&T38Params {
            rate_management: RateManagement::LocalTcf,
            ..T38Params::default()
        });
        t.start(
            Command::ReceiveData {
                modulation: Modulation::V27ter4800,
                training: Training::Long,
                kind: DataKind::Tcf,
                timeout: ms(6000),
            },
            ms(0),
        );
        feed(&mut t, Ifp::Indicator(Indicator::V27_4800Training), 10);
        feed(
            &mut t,
            Ifp::Data(
                DataType::V27_4800,
                vec![Field::bare(FieldType::T4NonEcmSigEnd)],
            ),
            2200,
        );
        assert_eq!(
            events(&mut t, 2200),
            vec![Event::Connect, Event::Data(vec![0; 900]), Event::CarrierEnd]
        );
    }
}
