//! PURE: the Class 1 (ITU-T T.31) driver — one modem operation at a time, as bytes.
//!
//! The host side (the T.30 engine, the CLI, the tests) starts an [`Op`]; the driver writes the
//! AT command and data bytes into its output queue, reads the modem's bytes, and reports
//! [`Event`]s. Time is an input: every op carries its timeout as a value, [`Class1Driver::poll_at`]
//! says when the driver next needs [`Class1Driver::on_timeout`], and nothing here reads a clock
//! or touches a device (that is `port.rs`).
//!
//! The legal order of ops (T.31 §8 and the T.30 flow it serves):
//!
//! 1. `Command`s (init, probe) in command state; `RING` and caller ID lines may arrive at any
//!    time and come out as [`Event::Ring`] / [`Event::CallInfo`].
//! 2. `Dial` → `CONNECT` leaves the modem already receiving V.21 HDLC (T.31: after `ATD` the
//!    DCE behaves as after `+FRH=3`), so the next `ReceiveFrame` sends no command.
//!    `Answer` → `CONNECT` leaves it transmitting V.21 flags (as after `+FTH=3`), so the next
//!    `SendFrames` sends no command.
//! 3. `SendFrames` (`+FTH=3`), `ReceiveFrame` (`+FRH=3`), `SendData` (`+FTM=n`),
//!    `ReceiveData` (`+FRM=n`), `SendSilence` (`+FTS=n`), `WaitSilence` (`+FRS=n`).
//! 4. `Hangup` (`ATH0`).
//!
//! States are named after what they expect next (`ExpectConnect`, `ExpectFrameData`, …).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::at::{AtCommand, FinalResult, Response, ResponseParser};
use super::dle::{self, Unstuffer};
use crate::fax::t30::hdlc;
use crate::fax::t30::{Modulation, Training};

/// The T.31 carrier numbers (`<MOD>` of `+FTM=n` / `+FRM=n`, T.31 Table 1): the modem
/// layer's view of the T.30 [`Modulation`]. V.17 has a long-training and a short-training
/// number (one more); V.27 ter and V.29 have one training, so one number each.
impl Modulation {
    /// The T.31 carrier number for this modulation with `training`.
    pub fn class1_code(self, training: Training) -> u32 {
        let short = u32::from(training == Training::Short);
        match self {
            Modulation::V27ter2400 => 24,
            Modulation::V27ter4800 => 48,
            Modulation::V29_7200 => 72,
            Modulation::V29_9600 => 96,
            Modulation::V17_7200 => 73 + short,
            Modulation::V17_9600 => 97 + short,
            Modulation::V17_12000 => 121 + short,
            Modulation::V17_14400 => 145 + short,
        }
    }

    /// The modulation and training of a T.31 carrier number (`None` for numbers T.31 Table 1
    /// has but fax pages do not use, such as V.21 channel 2 = 3).
    pub fn from_class1_code(code: u32) -> Option<(Modulation, Training)> {
        Modulation::LADDER
            .into_iter()
            .flat_map(|m| [(m, Training::Long), (m, Training::Short)])
            .find(|&(m, t)| m.class1_code(t) == code)
    }
}

/// Largest HDLC frame accepted from the modem, FCS included (ours): T.30 frames are at most
/// 3 header octets + 256 octets of ECM data + 4 (FCD frame number etc.) + 2 FCS.
pub const MAX_FRAME: usize = 300;

/// Most page-data octets one `ReceiveData` op passes on (ours): a superfine A4 page at
/// 14 400 bit/s for 10 minutes is about 1 MB; past this the op is aborted.
pub const MAX_RECEIVE_DATA: usize = 8 * 1024 * 1024;

/// Longest a received carrier may last once found (ours): a backstop, not a T.30 timer —
/// a page at 2400 bit/s takes a few minutes; V.21 frames at most 3 s + 15 % each (T.30 §5.3.5).
pub const MAX_CARRIER_TIME: Duration = Duration::from_secs(30 * 60);

/// Longest one V.21 frame may take once its carrier is found (ours): [`MAX_FRAME`] octets at
/// 300 bit/s is 8 s, plus the 1 s flag preamble (T.30 §5.3.1) and margin.
pub const MAX_FRAME_TIME: Duration = Duration::from_secs(15);

/// How long to wait for the final result after aborting a receive or a dial with a character
/// (ours; modems answer at once).
pub const ABORT_GRACE: Duration = Duration::from_secs(3);

/// Wait for `CONNECT` after `ATA` (ours): the modem sends CED for 2.6–4 s (T.30 §5.1.1) then
/// V.21 flags; 30 s covers slow answerers.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Extra wait beyond the line time of queued data before a transmit op is given up (ours).
pub const TRANSMIT_MARGIN: Duration = Duration::from_secs(10);

/// What the host asks the modem to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Any AT command in command state → [`Event::CommandDone`].
    Command(AtCommand),
    /// Dial (`<prefix><number>`) → [`Event::Connected`] or [`Event::CallFailed`].
    Dial {
        /// Dial command prefix (`ATDT`).
        prefix: String,
        /// The dial string: digits and the V.250 dial modifiers `*#,W@!PT`.
        number: String,
        /// Wait for the final result this long (T.30 §5.2: T0 = 60 ± 5 s).
        timeout: Duration,
    },
    /// Answer a ringing line (`ATA`) → [`Event::Connected`] or [`Event::CallFailed`].
    Answer,
    /// Send HDLC frames at V.21 (`+FTH=3`), FCS excluded (the modem adds it); the control
    /// field's final bit (0x10) must be set on the last frame only → [`Event::FramesSent`].
    SendFrames {
        /// Frames in order: address 0xFF, control 0x03/0x13, FCF, FIF.
        frames: Vec<Vec<u8>>,
    },
    /// Receive one HDLC frame at V.21 (`+FRH=3`) → [`Event::Frame`].
    ReceiveFrame {
        /// Give up after this (T.30 §5.2: T2 = 6 ± 1 s, T4 = 3 s ± 15 %).
        timeout: Duration,
    },
    /// Send page data or TCF (`+FTM=n`) → [`Event::DataSent`].
    SendData {
        /// The modulation.
        modulation: Modulation,
        /// The training (V.17 only: long for TCF and the first page after it).
        training: Training,
        /// Raw data in line order (first bit on the line = least significant bit of the first
        /// octet). Page data comes already padded to the minimum scan-line time: the T.4
        /// encoder puts the fill before each EOL (`PageCoding::min_line_bits`).
        data: Vec<u8>,
    },
    /// Receive page data or TCF (`+FRM=n`) → [`Event::Data`]… then [`Event::DataEnd`].
    ReceiveData {
        /// The modulation.
        modulation: Modulation,
        /// The training the sender uses (V.17 only).
        training: Training,
        /// Give up if no carrier or no end within this time.
        timeout: Duration,
    },
    /// Stop transmitting and stay silent (`+FTS=n`, n in 10 ms units) → [`Event::SilenceDone`].
    SendSilence {
        /// Silence in milliseconds (rounded down to 10 ms, at most 2550).
        ms: u32,
    },
    /// Wait until the line has been silent this long (`+FRS=n`) → [`Event::SilenceDone`].
    WaitSilence {
        /// Silence in milliseconds (rounded down to 10 ms, at most 2550).
        ms: u32,
    },
    /// Go on hook (`ATH0`) → [`Event::HungUp`].
    Hangup,
}

/// Why a call could not be set up (the modem's verdict on `ATD`/`ATA`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineCause {
    /// `BUSY`: the far end is busy or rejected the call.
    Busy,
    /// `NO ANSWER`: rang out.
    NoAnswer,
    /// `NO DIALTONE`: no line (on iaxmodem also: the far end is off-hook or in a call).
    NoDialtone,
    /// `NO CARRIER`: answered but no fax tones (a voice line), or the call dropped.
    NoCarrier,
    /// `ERROR` to the dial or answer command (bad dial string, not ringing).
    ModemError,
    /// No final result within the timeout; the dial was aborted.
    Timeout,
}

impl LineCause {
    /// Whether a later retry may succeed (busy and no-answer lines usually free up; a modem
    /// error will repeat).
    pub fn retryable(self) -> bool {
        !matches!(self, LineCause::ModemError)
    }

    /// The cause for a final result that ended a dial or answer (`None` for `CONNECT`/`OK`).
    pub fn from_final(r: FinalResult) -> Option<LineCause> {
        Some(match r {
            FinalResult::Busy => LineCause::Busy,
            FinalResult::NoAnswer => LineCause::NoAnswer,
            FinalResult::NoDialtone => LineCause::NoDialtone,
            FinalResult::NoCarrier | FinalResult::FcError => LineCause::NoCarrier,
            FinalResult::Error => LineCause::ModemError,
            FinalResult::Ok | FinalResult::Connect => return None,
        })
    }
}

/// Why an op other than dial/answer failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpFailure {
    /// `NO CARRIER`: nothing (or nothing more) on the line.
    NoCarrier,
    /// `+FCERROR`: a different carrier than asked for (T.30 treats it like "no frame").
    WrongCarrier,
    /// `ERROR` to the command: e.g. a speed the modem does not offer.
    Rejected,
    /// Timed out (and aborted).
    Timeout,
    /// The modem's replies do not fit T.31 (e.g. `OK` while frames remain to be sent).
    Protocol,
    /// More data than [`MAX_RECEIVE_DATA`] (aborted).
    TooMuchData,
}

/// What the driver reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Unsolicited `RING`.
    Ring,
    /// Caller ID / call information (`NMBR`, `NDID`, …) — printed before `RING`.
    CallInfo {
        /// Upper-case tag.
        tag: String,
        /// Value as sent.
        value: String,
    },
    /// A `Command` op ended.
    CommandDone {
        /// Its final result.
        result: FinalResult,
        /// Information lines in order (echo excluded).
        info: Vec<String>,
    },
    /// `Dial`/`Answer` connected: fax signalling can start.
    Connected,
    /// `Dial`/`Answer` failed.
    CallFailed(LineCause),
    /// `SendFrames` done.
    FramesSent,
    /// A receive op found its carrier (`CONNECT` to `+FRH`/`+FRM`, or the first frame octet
    /// after dialling): the op now runs to the end of the carrier, its timeout no longer
    /// applies (only the backstops [`MAX_FRAME_TIME`] / [`MAX_CARRIER_TIME`]). Not final.
    Carrier,
    /// `ReceiveFrame` got a frame.
    Frame {
        /// Address, control, FCF, FIF — FCS octets removed.
        frame: Vec<u8>,
        /// The modem said `OK` and (when FCS octets are passed) our own check agrees.
        fcs_ok: bool,
    },
    /// `SendData` done: the modem sent everything and dropped the carrier.
    DataSent,
    /// A chunk of received page data (DLE-unstuffed).
    Data(Vec<u8>),
    /// `ReceiveData` ended normally: `<DLE><ETX>` and the final result.
    DataEnd,
    /// `SendSilence`/`WaitSilence` done.
    SilenceDone,
    /// `Hangup` done.
    HungUp,
    /// The op failed.
    Failed(OpFailure),
}

/// Why an op cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// Another op is still running.
    #[error("the modem is busy with another operation")]
    Busy,
    /// The op's arguments are invalid (the caller's fault).
    #[error("invalid modem operation: {0}")]
    Invalid(String),
}

/// Where the modem's line is after the last op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineMode {
    /// Command state.
    Command,
    /// After `ATD` → `CONNECT`: already receiving V.21 HDLC.
    HdlcRxOpen,
    /// After `ATA` → `CONNECT`: already sending V.21 flags.
    HdlcTxOpen,
}

/// The driver's state: named after what it expects next.
#[derive(Debug)]
enum State {
    /// No op running; only unsolicited results expected.
    Idle,
    /// A command's final result (plain `Command`, `ATH0`, `+FTS`, `+FRS`).
    ExpectFinal {
        purpose: Purpose,
        info: Vec<String>,
        deadline: Instant,
    },
    /// The final result of `ATD`/`ATA`.
    ExpectCallResult { deadline: Instant, answering: bool },
    /// `CONNECT` to `+FTH=3`, `+FRH=3`, `+FTM=n`, `+FRM=n`.
    ExpectConnect {
        next: AfterConnect,
        deadline: Instant,
    },
    /// `CONNECT` (another frame wanted) or `OK` (final frame sent) after a frame's
    /// `<DLE><ETX>`.
    ExpectFrameAck {
        remaining: VecDeque<Vec<u8>>,
        deadline: Instant,
    },
    /// HDLC frame data (the frame starts with 0xFF; result lines may come first).
    ExpectFrameData {
        buf: Vec<u8>,
        started: bool,
        unstuffer: Unstuffer,
        deadline: Instant,
    },
    /// `OK`/`ERROR` after a frame's `<DLE><ETX>`.
    ExpectFrameStatus { frame: Vec<u8>, deadline: Instant },
    /// `OK` after sent page data (the modem drains its buffer at line speed).
    ExpectDataSentOk { deadline: Instant },
    /// Received page data until `<DLE><ETX>`.
    ExpectPageData {
        /// The LF of `CONNECT<CR><LF>` has not arrived yet.
        skip_lf: bool,
        unstuffer: Unstuffer,
        total: usize,
        deadline: Instant,
    },
    /// The final result after received page data's `<DLE><ETX>`.
    ExpectDataFinal { deadline: Instant },
    /// We aborted with a character; waiting for the modem's final result, then report.
    ExpectAbortFinal { report: Event, deadline: Instant },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Command,
    Hangup,
    Silence,
}

#[derive(Debug)]
enum AfterConnect {
    SendFrames(VecDeque<Vec<u8>>),
    ReceiveFrame,
    SendData(Vec<u8>, Modulation),
    ReceiveData,
}

/// The Class 1 driver (sans-IO). See the module docs for the call order.
#[derive(Debug)]
pub struct Class1Driver {
    state: State,
    mode: LineMode,
    lines: ResponseParser,
    out: VecDeque<u8>,
    events: VecDeque<Event>,
    /// XOFF received (software flow control): hold output.
    paused: bool,
    /// The running receive op has reported [`Event::Carrier`].
    carrier: bool,
    software_flow: bool,
    fcs_octets: bool,
}

impl Class1Driver {
    /// A driver for a modem in command state. `software_flow`: honour XON/XOFF from the
    /// modem while sending data; `fcs_octets`: the modem passes FCS octets after frames.
    pub fn new(software_flow: bool, fcs_octets: bool) -> Self {
        Class1Driver {
            state: State::Idle,
            mode: LineMode::Command,
            lines: ResponseParser::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            paused: false,
            carrier: false,
            software_flow,
            fcs_octets,
        }
    }

    /// True when no op is running.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle)
    }

    /// Start an op at `now`.
    pub fn start(&mut self, op: Op, now: Instant) -> Result<(), StartError> {
        if !self.is_idle() {
            return Err(StartError::Busy);
        }
        self.paused = false;
        self.carrier = false;
        match op {
            Op::Command(c) => {
                self.send_command(&c);
                self.state = State::ExpectFinal {
                    purpose: Purpose::Command,
                    info: Vec::new(),
                    deadline: now + c.timeout,
                };
            }
            Op::Dial {
                prefix,
                number,
                timeout,
            } => {
                if number.is_empty()
                    || !number
                        .bytes()
                        .all(|b| b.is_ascii_digit() || b"*#,W@!PTwpt".contains(&b))
                {
                    return Err(StartError::Invalid(format!(
                        "dial string {number:?}: only digits and *#,W@!PT"
                    )));
                }
                let c = AtCommand::with_timeout(format!("{prefix}{number}"), timeout)
                    .map_err(|e| StartError::Invalid(e.to_string()))?;
                self.send_command(&c);
                self.state = State::ExpectCallResult {
                    deadline: now + timeout,
                    answering: false,
                };
            }
            Op::Answer => {
                self.send_raw(b"ATA\r");
                self.state = State::ExpectCallResult {
                    deadline: now + ANSWER_TIMEOUT,
                    answering: true,
                };
            }
            Op::SendFrames { frames } => {
                if frames.is_empty() || frames.iter().any(|f| f.len() < 3 || f.len() > MAX_FRAME) {
                    return Err(StartError::Invalid(
                        "frames must be 3..=300 octets and at least one".into(),
                    ));
                }
                let frames: VecDeque<Vec<u8>> = frames.into();
                // T.30 §5.3.5: a frame sequence takes at most 3 s ± 15 % per frame; ours:
                // allow 3 s per frame plus the margin.
                let deadline = now + TRANSMIT_MARGIN + Duration::from_secs(3) * frames.len() as u32;
                if self.mode == LineMode::HdlcTxOpen {
                    self.mode = LineMode::Command;
                    self.send_next_frame(frames, deadline);
                } else {
                    self.mode = LineMode::Command;
                    self.send_raw(b"AT+FTH=3\r");
                    self.state = State::ExpectConnect {
                        next: AfterConnect::SendFrames(frames),
                        deadline,
                    };
                }
            }
            Op::ReceiveFrame { timeout } => {
                if self.mode == LineMode::HdlcRxOpen {
                    self.mode = LineMode::Command;
                    self.state = State::ExpectFrameData {
                        buf: Vec::new(),
                        started: false,
                        unstuffer: Unstuffer::new(),
                        deadline: now + timeout,
                    };
                } else {
                    self.mode = LineMode::Command;
                    self.send_raw(b"AT+FRH=3\r");
                    self.state = State::ExpectConnect {
                        next: AfterConnect::ReceiveFrame,
                        deadline: now + timeout,
                    };
                }
            }
            Op::SendData {
                modulation,
                training,
                data,
            } => {
                self.mode = LineMode::Command;
                let code = modulation.class1_code(training);
                self.send_raw(format!("AT+FTM={code}\r").as_bytes());
                self.state = State::ExpectConnect {
                    deadline: now + TRANSMIT_MARGIN,
                    next: AfterConnect::SendData(data, modulation),
                };
            }
            Op::ReceiveData {
                modulation,
                training,
                timeout,
            } => {
                self.mode = LineMode::Command;
                let code = modulation.class1_code(training);
                self.send_raw(format!("AT+FRM={code}\r").as_bytes());
                self.state = State::ExpectConnect {
                    next: AfterConnect::ReceiveData,
                    deadline: now + timeout,
                };
            }
            Op::SendSilence { ms } | Op::WaitSilence { ms } => {
                let n = (ms / 10).min(255);
                let cmd = if matches!(op, Op::SendSilence { .. }) {
                    "FTS"
                } else {
                    "FRS"
                };
                self.mode = LineMode::Command;
                self.send_raw(format!("AT+{cmd}={n}\r").as_bytes());
                self.state = State::ExpectFinal {
                    purpose: Purpose::Silence,
                    info: Vec::new(),
                    deadline: now + Duration::from_millis(u64::from(n) * 10) + TRANSMIT_MARGIN,
                };
            }
            Op::Hangup => {
                self.mode = LineMode::Command;
                self.send_raw(b"ATH0\r");
                self.state = State::ExpectFinal {
                    purpose: Purpose::Hangup,
                    info: Vec::new(),
                    deadline: now + super::at::DEFAULT_COMMAND_TIMEOUT,
                };
            }
        }
        Ok(())
    }

    /// Bytes waiting to be written to the modem (empty while paused by XOFF).
    pub fn pending_output(&mut self) -> &[u8] {
        if self.paused {
            return &[];
        }
        self.out.make_contiguous()
    }

    /// `n` bytes of [`Self::pending_output`] were written.
    pub fn consume_output(&mut self, n: usize) {
        let n = n.min(self.out.len());
        self.out.drain(..n);
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Self::on_timeout`] must be called next.
    pub fn poll_at(&self) -> Option<Instant> {
        match &self.state {
            State::Idle => None,
            State::ExpectFinal { deadline, .. }
            | State::ExpectCallResult { deadline, .. }
            | State::ExpectConnect { deadline, .. }
            | State::ExpectFrameAck { deadline, .. }
            | State::ExpectFrameData { deadline, .. }
            | State::ExpectFrameStatus { deadline, .. }
            | State::ExpectDataSentOk { deadline }
            | State::ExpectPageData { deadline, .. }
            | State::ExpectDataFinal { deadline }
            | State::ExpectAbortFinal { deadline, .. } => Some(*deadline),
        }
    }

    /// Time passed: act on an expired deadline.
    pub fn on_timeout(&mut self, now: Instant) {
        let Some(d) = self.poll_at() else { return };
        if now < d {
            return;
        }
        let state = std::mem::replace(&mut self.state, State::Idle);
        match state {
            State::ExpectAbortFinal { report, .. } => {
                // The modem did not even answer the abort: report anyway; the shell resets it.
                self.events.push_back(report);
            }
            State::ExpectCallResult { .. } => {
                self.abort(Event::CallFailed(LineCause::Timeout), now)
            }
            State::ExpectDataSentOk { .. } | State::ExpectFrameAck { .. } => {
                // Transmitting: the modem should have finished long ago. Nothing to abort
                // with (a character would be data); report and let the shell reset the modem.
                self.out.clear();
                self.events.push_back(Event::Failed(OpFailure::Timeout));
            }
            _ => self.abort(Event::Failed(OpFailure::Timeout), now),
        }
    }

    /// Abort the running receive (e.g. the engine saw RTC and wants the line back): a
    /// character ends `+FRH`/`+FRM`/`+FRS`/`ATD` (T.31 §8.3, V.250 §6.3.1), the modem answers
    /// with a final result, and `report` is emitted.
    pub fn abort(&mut self, report: Event, now: Instant) {
        self.state = State::ExpectAbortFinal {
            report,
            deadline: now + ABORT_GRACE,
        };
        self.lines.reset();
        // CAN: not DC1/DC3 (which would be taken as flow control), not a command letter.
        self.out.push_back(0x18);
    }

    /// Bytes read from the modem at `now`.
    pub fn on_input(&mut self, mut bytes: &[u8], now: Instant) {
        while !bytes.is_empty() {
            let n = self.step(bytes, now);
            bytes = &bytes[n.max(1).min(bytes.len())..];
        }
    }

    /// Process a prefix of `bytes`, returning how many were used.
    fn step(&mut self, bytes: &[u8], now: Instant) -> usize {
        match &mut self.state {
            State::ExpectFrameData {
                buf,
                started,
                unstuffer,
                deadline,
            } => {
                if !*started {
                    let b = bytes[0];
                    // A frame starts with its address octet 0xFF (T.30 §5.3.4); before it
                    // the modem may repeat CONNECT or end the op with a result line.
                    if (b == 0xFF || b == dle::DLE) && self.lines.at_line_start() {
                        *started = true;
                        *deadline = now + MAX_FRAME_TIME;
                        if !self.carrier {
                            self.carrier = true;
                            self.events.push_back(Event::Carrier);
                        }
                    } else {
                        if let Some(r) = self.lines.push(b) {
                            self.on_response(r, now);
                        }
                        return 1;
                    }
                }
                let mut data = Vec::new();
                let (n, marker) = unstuffer.push(bytes, &mut data);
                let room = (MAX_FRAME + 1).saturating_sub(buf.len());
                buf.extend_from_slice(&data[..data.len().min(room)]);
                if marker.is_some() {
                    let frame = std::mem::take(buf);
                    let deadline = now + ABORT_GRACE;
                    self.state = State::ExpectFrameStatus { frame, deadline };
                }
                n
            }
            State::ExpectPageData {
                skip_lf,
                unstuffer,
                total,
                ..
            } => {
                if std::mem::take(skip_lf) && bytes[0] == b'\n' {
                    return 1;
                }
                let mut data = Vec::new();
                let (n, marker) = unstuffer.push(bytes, &mut data);
                *total += data.len();
                let over = *total > MAX_RECEIVE_DATA;
                if !data.is_empty() {
                    self.events.push_back(Event::Data(data));
                }
                if over {
                    self.abort(Event::Failed(OpFailure::TooMuchData), now);
                } else if marker.is_some() {
                    self.state = State::ExpectDataFinal {
                        deadline: now + ABORT_GRACE,
                    };
                }
                n
            }
            State::ExpectDataSentOk { .. } if self.software_flow => {
                match bytes[0] {
                    0x13 => self.paused = true,  // DC3 = XOFF
                    0x11 => self.paused = false, // DC1 = XON
                    b => {
                        if let Some(r) = self.lines.push(b) {
                            self.on_response(r, now);
                        }
                    }
                }
                1
            }
            _ => {
                if let Some(r) = self.lines.push(bytes[0]) {
                    self.on_response(r, now);
                }
                1
            }
        }
    }

    fn on_response(&mut self, r: Response, now: Instant) {
        let fin = match r {
            Response::Ring => {
                self.events.push_back(Event::Ring);
                return;
            }
            Response::CallInfo { tag, value } => {
                self.events.push_back(Event::CallInfo { tag, value });
                return;
            }
            Response::Echo(_) | Response::Overlong => return,
            Response::Info(text) => {
                if let State::ExpectFinal { info, .. } = &mut self.state
                    && info.len() < 32
                {
                    info.push(text);
                }
                return;
            }
            Response::Final(f) => f,
        };
        let state = std::mem::replace(&mut self.state, State::Idle);
        match state {
            State::Idle => {
                // A final result with no command running (a late OK after an abort, or a
                // NO CARRIER when the far end hangs up): nothing waits for it.
            }
            State::ExpectFinal { purpose, info, .. } => {
                let ev = match (purpose, fin) {
                    (Purpose::Command, result) => Event::CommandDone { result, info },
                    (Purpose::Hangup, _) => Event::HungUp,
                    (Purpose::Silence, FinalResult::Ok) => Event::SilenceDone,
                    (Purpose::Silence, FinalResult::NoCarrier) => {
                        Event::Failed(OpFailure::NoCarrier)
                    }
                    (Purpose::Silence, _) => Event::Failed(OpFailure::Rejected),
                };
                self.events.push_back(ev);
            }
            State::ExpectCallResult { answering, .. } => match fin {
                FinalResult::Connect => {
                    self.mode = if answering {
                        LineMode::HdlcTxOpen
                    } else {
                        LineMode::HdlcRxOpen
                    };
                    self.events.push_back(Event::Connected);
                }
                f => {
                    let cause = LineCause::from_final(f).unwrap_or(LineCause::ModemError);
                    self.events.push_back(Event::CallFailed(cause));
                }
            },
            State::ExpectConnect { next, deadline } => match fin {
                FinalResult::Connect => match next {
                    AfterConnect::SendFrames(frames) => self.send_next_frame(frames, deadline),
                    AfterConnect::ReceiveFrame => {
                        self.carrier = true;
                        self.events.push_back(Event::Carrier);
                        self.state = State::ExpectFrameData {
                            buf: Vec::new(),
                            started: false,
                            unstuffer: Unstuffer::new(),
                            deadline: now + MAX_FRAME_TIME,
                        }
                    }
                    AfterConnect::SendData(data, modulation) => {
                        let mut stuffed = Vec::with_capacity(data.len() + 16);
                        dle::stuff_into(&data, &mut stuffed);
                        stuffed.extend_from_slice(&[dle::DLE, dle::ETX]);
                        self.out.extend(stuffed);
                        // The modem drains its buffer at the line rate.
                        let line_time = Duration::from_millis(
                            (data.len() as u64 * 8 * 1000) / u64::from(modulation.bps()),
                        );
                        self.state = State::ExpectDataSentOk {
                            deadline: now + line_time + TRANSMIT_MARGIN,
                        };
                    }
                    AfterConnect::ReceiveData => {
                        self.carrier = true;
                        self.events.push_back(Event::Carrier);
                        self.state = State::ExpectPageData {
                            skip_lf: self.lines.ended_by_cr(),
                            unstuffer: Unstuffer::new(),
                            total: 0,
                            deadline: now + MAX_CARRIER_TIME,
                        }
                    }
                },
                f => self.events.push_back(Event::Failed(failure_of(f))),
            },
            State::ExpectFrameAck {
                remaining,
                deadline,
            } => match fin {
                FinalResult::Connect if !remaining.is_empty() => {
                    self.send_next_frame(remaining, deadline)
                }
                FinalResult::Ok if remaining.is_empty() => self.events.push_back(Event::FramesSent),
                FinalResult::Ok | FinalResult::Connect => {
                    self.events.push_back(Event::Failed(OpFailure::Protocol))
                }
                f => self.events.push_back(Event::Failed(failure_of(f))),
            },
            s @ State::ExpectFrameData { .. } => match fin {
                // spandsp repeats CONNECT before the frame after +FRH=3 (seen on the rig).
                FinalResult::Connect => self.state = s,
                // A frame whose first octet was not 0xFF was taken for text; its FCS failed.
                FinalResult::Error => self.events.push_back(Event::Frame {
                    frame: Vec::new(),
                    fcs_ok: false,
                }),
                f => self.events.push_back(Event::Failed(failure_of(f))),
            },
            State::ExpectFrameStatus { mut frame, .. } => {
                let mut fcs_ok = fin == FinalResult::Ok && frame.len() <= MAX_FRAME;
                if self.fcs_octets {
                    if frame.len() >= 2 {
                        let body = frame.len() - 2;
                        if hdlc::fcs(&frame[..body]).to_le_bytes() != frame[body..] {
                            fcs_ok = false;
                        }
                        frame.truncate(body);
                    } else {
                        fcs_ok = false;
                    }
                }
                frame.truncate(MAX_FRAME);
                self.events.push_back(Event::Frame { frame, fcs_ok });
            }
            State::ExpectDataSentOk { .. } => match fin {
                FinalResult::Ok => self.events.push_back(Event::DataSent),
                f => self.events.push_back(Event::Failed(failure_of(f))),
            },
            State::ExpectPageData { .. } => {
                // Result text inside page data cannot be told from data; only reached if
                // the line parser was fed, which page-data state never does.
            }
            State::ExpectDataFinal { .. } => {
                // T.31 §8.3, +FRM: after carrier loss the DCE sends <DLE><ETX> then
                // NO CARRIER; OK or ERROR also end the block (ERROR: data lost).
                match fin {
                    FinalResult::Error => self.events.push_back(Event::Failed(OpFailure::Protocol)),
                    _ => self.events.push_back(Event::DataEnd),
                }
            }
            State::ExpectAbortFinal { report, .. } => self.events.push_back(report),
        }
    }

    fn send_next_frame(&mut self, mut frames: VecDeque<Vec<u8>>, deadline: Instant) {
        if let Some(f) = frames.pop_front() {
            let mut v = Vec::with_capacity(f.len() + 4);
            dle::stuff_into(&f, &mut v);
            v.extend_from_slice(&[dle::DLE, dle::ETX]);
            self.out.extend(v);
        }
        self.state = State::ExpectFrameAck {
            remaining: frames,
            deadline,
        };
    }

    fn send_command(&mut self, c: &AtCommand) {
        self.lines.reset();
        self.out.extend(c.to_bytes());
    }

    fn send_raw(&mut self, b: &[u8]) {
        self.lines.reset();
        self.out.extend(b.iter().copied());
    }
}

fn failure_of(f: FinalResult) -> OpFailure {
    match f {
        FinalResult::NoCarrier => OpFailure::NoCarrier,
        FinalResult::FcError => OpFailure::WrongCarrier,
        FinalResult::Error => OpFailure::Rejected,
        _ => OpFailure::Protocol,
    }
}
