//! The T.30 state machine: one handler per flow-chart state, time passed in.
//!
//! The flows, as the transcripts in `tests/fixtures/t30/` show them (T.30 Figure 5-2; the
//! letters are the flow charts' node names, see [`State`]):
//!
//! ```text
//! caller / sender                          answerer / receiver
//! T   wait DIS (T1) <-------- NSF CSI DIS --- R
//! D   TSI [SUB] [SID] DCS, 75 ms, TCF ------> F, FTcf (judge the zeros)
//!     wait CFR/FTT (T4) <---------- CFR|FTT --- FTrainResponse
//!       FTT: next rung of Modulation::LADDER, D again (at most max_ftt)
//!       nothing: D again (3 repeats, then DCN NoResponse)
//! I   75 ms, page (short training) ---------> FDocNonEcm (sink decodes)
//! II  75 ms, MPS|EOM|EOP -------------------> F: copy quality → verdict
//!     wait (T4) <------ MCF|RTP|RTN (PIP|PIN) --- III
//!       MPS+MCF: I   EOM+MCF: T   EOP+MCF: B   RTN/RTP: D (retrain)
//! ECM (Annex A) instead of I/II:
//! IV  FCD 0..n, RCP x3 ---------------------> FDocEcm
//!     PPS-NULL|MPS|EOM|EOP ------------------> F: all frames? MCF : PPR(map)
//!       PPR: resend the frames asked for; the 4th PPR: CTC → CTR, one rung lower
//!       RNR: RR until MCF/PPR (T5)
//! B   DCN ----------------------------------> F/FEnd: hang up
//! ```
//!
//! Polling swaps the document's direction: the answerer's DIS carries bit 9, the caller answers
//! CIG [PWD] DTC, and the answerer then runs the sender's side from node D.

use super::cause::Cause;
use super::dis::{Capabilities, Coding, Dcs, Modulation, Training, choose_dcs};
use super::fcf::{Fcf, Frame, decode_id, encode_id};
use super::page::{PageCoding, PageSink, PageSource, QualityThresholds, Verdict};
use super::report::{CallReport, PageOutcome, PageRecord};
use super::{Command, DataKind, Event};
use std::collections::VecDeque;
use std::time::Duration;

/// T.30 timers (T.30 §5 time-outs and Annex A). Defaults are the nominal values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// T.30 time-out T1 = 35 ± 5 s: how long two terminals try to identify each other, from
    /// the start of phase B.
    pub t1: Duration,
    /// T2 = 6 ± 1 s: the receiver waits this long for a command or page data. Ours: 7 s, the
    /// upper tolerance, so that a sender's repeat after T4 (which follows its TCF) is still
    /// heard (spandsp makes the same choice).
    pub t2: Duration,
    /// T4 = 3 s ± 15 %: the wait for a response's flags before a command is repeated.
    pub t4: Duration,
    /// T5 = 60 ± 5 s (Annex A): the longest a receiver may stay not ready (RNR), from the
    /// first RNR.
    pub t5: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_secs(35),
            t2: Duration::from_secs(7),
            t4: Duration::from_secs(3),
            t5: Duration::from_secs(60),
        }
    }
}

/// T.30 §5.3.2 / §5.3.6.1.3: 75 ± 20 ms of silence between V.21 frames and high-speed data
/// and between page data and the post-message command.
pub const GAP: Duration = Duration::from_millis(75);
/// T.30 §5.3.6.1.3: TCF lasts 1.5 s ± 10 %.
pub const TCF_DURATION: Duration = Duration::from_millis(1500);
/// Ours: TCF is good when it holds a run of zeros lasting at least this long (T.30 leaves
/// the check to the receiver; spandsp and most terminals use about 1 s).
pub const TCF_MIN_ZERO_RUN: Duration = Duration::from_millis(1000);
/// T.30 flow charts: an unanswered command is sent at most this many times more.
pub const MAX_REPEATS: u32 = 3;
/// Longest a V.21 carrier of HDLC frames may last once detected: T.30 §5.3.1 limits a
/// command or response to 3 s ± 15 %; ours adds slack for modems that report its end late.
pub const FRAMES_CARRIER_MAX: Duration = Duration::from_secs(10);
/// Longest a high-speed carrier (TCF, a page, an ECM block) may last once detected (ours:
/// T.30 sets no page time; a long superfine page at 2400 bit/s takes minutes, none takes this).
pub const DATA_CARRIER_MAX: Duration = Duration::from_secs(30 * 60);
/// Annex A.4.1: after this many PPRs for one block the transmitter steps the speed down (CTC).
pub const PPRS_BEFORE_CTC: u32 = 4;

/// Settings for one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Our identity for CSI / TSI (T.30 §5.3.6.2.4: up to 20 characters).
    pub local_id: String,
    /// Highest rate offered or used, bit/s.
    pub max_bps: u32,
    /// Offer / use Annex A error correction.
    pub ecm: bool,
    /// Best coding offered or used: MMR > MR > MH (MMR only with ECM). Lower it for remotes
    /// that claim more than they decode.
    pub max_coding: Coding,
    /// Use 64-octet ECM frames instead of 256 (sender side).
    pub ecm_frame_64: bool,
    /// SUB to send with DCS (when the remote's DIS bit 49 allows it).
    pub subaddress: Option<String>,
    /// SID to send with DCS (when DIS bit 50 allows it): the sender's identification, which
    /// receivers may check as a password.
    pub sender_id: Option<String>,
    /// Password: sent as PWD with DTC when polling, or as SID with DCS when no `sender_id` is
    /// set (T.30 §5.3.6.1.2–3; DIS bit 50).
    pub password: Option<String>,
    /// NSF / NSS octets to send before DIS / DCS (T.35 country code first); passed through.
    pub nsf: Option<Vec<u8>>,
    /// Copy-quality thresholds for the receive verdict.
    pub quality: QualityThresholds,
    /// FTT answers tolerated before the call fails (the fallback ladder's attempt limit).
    pub max_ftt: u32,
    /// RTN answers tolerated for one page before the call fails.
    pub max_rtn_per_page: u32,
    /// Largest page accepted on receive, bytes (non-ECM data or ECM page data).
    pub max_page_bytes: usize,
    /// Minimum scan line time we ask for as a receiver, ms at 3.85 l/mm (T.30 Table 2 bits
    /// 21–23: 0, 5, 10, 20 or 40). 0: we decode lines as fast as they come.
    pub scan_time_ms: u32,
    /// Timer values.
    pub timers: Timers,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            local_id: String::new(),
            max_bps: 14400,
            ecm: true,
            max_coding: Coding::Mmr,
            ecm_frame_64: false,
            subaddress: None,
            sender_id: None,
            password: None,
            nsf: None,
            quality: QualityThresholds::default(),
            max_ftt: 5,
            max_rtn_per_page: 2,
            max_page_bytes: 8 << 20,
            scan_time_ms: 0,
            timers: Timers::default(),
        }
    }
}

/// Which side of the call this engine is, and which way the document goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Calling terminal, sending a document (the usual offramp call).
    CallingSender,
    /// Answering terminal, receiving (the usual onramp call).
    AnsweringReceiver,
    /// Calling terminal that polls: it answers a DIS with "ready to transmit" (bit 9) by
    /// CIG + DTC and then receives (T.30 §5.3.6.1.2).
    CallingReceiver,
    /// Answering terminal that is polled: its DIS says "ready to transmit"; after the
    /// caller's DTC it sends (T.30 §5.3.6.1.2).
    AnsweringSender,
}

impl Role {
    /// Whether this side placed the call (and so sets the X bit, T.30 §5.3.6.1).
    pub fn is_calling(self) -> bool {
        matches!(self, Role::CallingSender | Role::CallingReceiver)
    }

    /// Whether this side sends the document.
    pub fn is_sender(self) -> bool {
        matches!(self, Role::CallingSender | Role::AnsweringSender)
    }
}

/// T.30 §2 phases of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Phase A: call set-up (done by the modem layer before the engine starts).
    A,
    /// Phase B: pre-message procedure — identification, capabilities, training.
    B,
    /// Phase C: message transmission (page data; with ECM, the in-message procedure).
    C,
    /// Phase D: post-message procedure — end of page, confirmation.
    D,
    /// Phase E: call release.
    E,
    /// The engine has hung up.
    CallDone,
}

/// Engine states, named after the nodes of the T.30 flow charts (T.30 Figure 5-2, Annex A
/// Figure A.7; the letters are T.30's, the suffixes ours where T.30 has a box but no name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Transmitter node T: waiting for DIS (T1 running).
    T,
    /// Node D: sending TSI/DCS, 75 ms gap, TCF.
    D,
    /// Node D, after TCF: waiting for CFR/FTT (T4).
    DPostTcf,
    /// Node I: sending one page of non-ECM data.
    I,
    /// Node II: sending the post-message command (MPS/EOM/EOP).
    II,
    /// Node II, "response received?": waiting for MCF/RTP/RTN (T4).
    IIQ,
    /// Annex A node IV: sending an ECM block (FCD…RCP).
    IV,
    /// Annex A: sending PPS-x.
    IVPps,
    /// Annex A: waiting for the PPS response (MCF/PPR/RNR, T4).
    IVPpsQ,
    /// Annex A: RR sent after RNR, waiting.
    IVPpsRnr,
    /// Annex A: CTC sent, waiting for CTR.
    IVCtc,
    /// Node B (transmitter release): sending DCN.
    B,
    /// Receiver node R: sending NSF/CSI/DIS.
    R,
    /// Receiver node F: waiting for a command (DCS, post-message, PPS, DCN…).
    F,
    /// Receiving TCF.
    FTcf,
    /// Sending CFR or FTT.
    FTrainResponse,
    /// Receiving non-ECM page data.
    FDocNonEcm,
    /// Receiving an ECM block.
    FDocEcm,
    /// Node III: sending the response (MCF/RTP/RTN/PPR/CTR/RNR/ERR/CRP).
    III,
    /// After MCF to EOP: waiting for DCN.
    FEnd,
    /// Call over.
    CallFinished,
}

/// Where the receiver goes after its response (node III) has been sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// Wait for the next command (node F).
    Command,
    /// Receive the next page / block at high speed.
    Data(DataKind),
    /// Back to phase B: send DIS again (after MCF to EOM).
    PhaseB,
    /// Wait for DCN (after MCF to EOP).
    End,
}

/// The post-message command that follows a page (T.30 §5.3.6.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PostMsg {
    Mps,
    Eom,
    Eop,
}

impl PostMsg {
    fn fcf(self) -> Fcf {
        match self {
            PostMsg::Mps => Fcf::Mps,
            PostMsg::Eom => Fcf::Eom,
            PostMsg::Eop => Fcf::Eop,
        }
    }
}

enum Job {
    Send(Box<dyn PageSource + Send>),
    Receive(Box<dyn PageSink + Send>),
}

/// ECM transmit state for the current page.
#[derive(Default)]
struct EcmTx {
    /// The coded page.
    data: Vec<u8>,
    /// Octets per frame (256 or 64).
    frame_size: usize,
    /// Offset of the current block's first octet.
    block_start: usize,
    /// Frames in the current block.
    block_frames: usize,
    /// Block counter (Annex A.4.1 PPS octet 3).
    block_no: u8,
    /// Frames to (re)send in the next transmission.
    to_send: Vec<usize>,
    /// PPRs for this block so far.
    pprs: u32,
    /// First RNR answered to this PPS (for T5).
    rnr_since: Option<Duration>,
}

/// ECM receive buffer for the current block.
struct EcmRx {
    frames: Vec<Option<Vec<u8>>>,
    /// (page, block) of the last block accepted with MCF: a repeated PPS for it gets MCF again.
    last_accepted: Option<(u8, u8)>,
    page_bytes: usize,
}

/// One T.30 call. See the module docs for the call order.
pub struct Engine {
    cfg: EngineConfig,
    role: Role,
    job: Job,
    ours: Capabilities,
    phase: Phase,
    state: State,
    commands: VecDeque<Command>,
    /// Transmit commands issued and not yet reported `Sent`.
    outstanding: usize,
    /// A receive command is outstanding.
    receiving: bool,
    /// How long the carrier of the reception in progress may last once it is detected.
    carrier_max: Duration,
    /// The reception in progress is V.21 HDLC frames (else high-speed data: TCF or a page).
    rx_hdlc: bool,
    /// Deadline of the receive in progress, until its carrier is detected.
    deadline: Option<Duration>,
    /// End of T1 (phase B entry).
    t1_end: Option<Duration>,
    started: Option<Duration>,
    /// Frames of the current V.21 transmission, collected until the final one.
    rx_frames: Vec<Frame>,
    rx_bad: bool,
    /// Repeats of the current command so far.
    repeats: u32,
    /// The last command frames sent (for repeats and CRP).
    last_sent: Vec<Frame>,
    x: bool,
    remote: Option<Capabilities>,
    dcs: Option<Dcs>,
    /// Fallback ladder: highest modulation to try next.
    rung: Modulation,
    ftt_count: u32,
    training: Training,
    // Sender.
    page: usize,
    page_data: Option<Vec<u8>>,
    post: PostMsg,
    rtn_for_page: u32,
    ecm_tx: EcmTx,
    page_counter: u8,
    // Receiver.
    tcf_run: u64,
    tcf_best: u64,
    page_bytes: usize,
    page_started: bool,
    after: After,
    got_dcs: bool,
    last_response: Option<(Frame, After)>,
    /// The post-message command last answered (non-ECM), to tell a repeat from a new one.
    last_post: Option<PostMsg>,
    ecm_rx: EcmRx,
    /// The local side asked for a procedure interrupt (PIP/PIN at the next page end).
    interrupt: bool,
    /// A PIP/PIN was sent or received: the call ends as [`Cause::Interrupted`].
    interrupted: bool,
    /// The PPS being answered: (post-message octet, page, block, frame count).
    pending: Option<(u8, u8, u8, usize)>,
    report: CallReport,
}

impl Engine {
    /// A calling engine that sends the pages of `source`.
    pub fn sender(cfg: EngineConfig, source: Box<dyn PageSource + Send>) -> Engine {
        Engine::new(cfg, Role::CallingSender, Job::Send(source))
    }

    /// An answering engine that receives into `sink`.
    pub fn receiver(cfg: EngineConfig, sink: Box<dyn PageSink + Send>) -> Engine {
        Engine::new(cfg, Role::AnsweringReceiver, Job::Receive(sink))
    }

    /// A calling engine that polls the remote for its document and receives it into `sink`.
    pub fn poller(cfg: EngineConfig, sink: Box<dyn PageSink + Send>) -> Engine {
        Engine::new(cfg, Role::CallingReceiver, Job::Receive(sink))
    }

    /// An answering engine that offers `source` for polling and sends it when asked by DTC.
    pub fn polled_sender(cfg: EngineConfig, source: Box<dyn PageSource + Send>) -> Engine {
        Engine::new(cfg, Role::AnsweringSender, Job::Send(source))
    }

    fn new(cfg: EngineConfig, role: Role, job: Job) -> Engine {
        let mut ours = Capabilities::ours(cfg.max_bps, cfg.ecm);
        ours.mr = cfg.max_coding >= Coding::Mr;
        ours.mmr = cfg.ecm && cfg.max_coding == Coding::Mmr;
        ours.scan_time.standard_ms = cfg.scan_time_ms;
        // Polling (T.30 §5.3.6.1.2): the polled side offers a document instead of a receiver.
        ours.ready_to_transmit = role == Role::AnsweringSender;
        ours.can_receive = !role.is_sender();
        let rung = Modulation::LADDER
            .iter()
            .copied()
            .find(|m| m.bps() <= cfg.max_bps)
            .unwrap_or(Modulation::V27ter2400);
        Engine {
            ours,
            role,
            job,
            phase: Phase::A,
            state: if role.is_calling() {
                State::T
            } else {
                State::R
            },
            commands: VecDeque::new(),
            outstanding: 0,
            receiving: false,
            carrier_max: FRAMES_CARRIER_MAX,
            rx_hdlc: true,
            deadline: None,
            t1_end: None,
            started: None,
            rx_frames: Vec::new(),
            rx_bad: false,
            repeats: 0,
            last_sent: Vec::new(),
            // T.30 §5.3.6.1: X = 1 in frames from the station that received DIS (the caller).
            x: role.is_calling(),
            interrupt: false,
            interrupted: false,
            remote: None,
            dcs: None,
            rung,
            ftt_count: 0,
            training: Training::Long,
            page: 0,
            page_data: None,
            post: PostMsg::Eop,
            rtn_for_page: 0,
            ecm_tx: EcmTx::default(),
            page_counter: 0,
            tcf_run: 0,
            tcf_best: 0,
            page_bytes: 0,
            page_started: false,
            after: After::Command,
            got_dcs: false,
            last_response: None,
            last_post: None,
            pending: None,
            ecm_rx: EcmRx {
                frames: vec![None; 256],
                last_accepted: None,
                page_bytes: 0,
            },
            report: CallReport::default(),
            cfg,
        }
    }

    /// Starts the call at `now` (phase B begins: T1 starts).
    pub fn start(&mut self, now: Duration) {
        if self.started.is_some() {
            return;
        }
        self.started = Some(now);
        self.phase = Phase::B;
        self.t1_end = Some(now + self.cfg.timers.t1);
        if self.role.is_sender() && self.source_pages() == 0 {
            self.finish(now, Cause::DocumentError);
            return;
        }
        if self.role.is_calling() {
            self.state = State::T;
            self.receive_frames(now, self.cfg.timers.t1);
        } else {
            self.send_dis();
        }
    }

    /// The next command for the line, in order.
    pub fn next_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// When [`Engine::handle_timeout`] should be called, if the engine is waiting.
    pub fn poll_at(&self) -> Option<Duration> {
        self.deadline
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// This engine's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether the call is over (the engine has issued [`Command::HangUp`]).
    pub fn is_finished(&self) -> bool {
        self.state == State::CallFinished
    }

    /// The call report (final once [`Engine::is_finished`]).
    pub fn report(&self) -> &CallReport {
        &self.report
    }

    /// The DCS in force, if any.
    pub fn dcs(&self) -> Option<&Dcs> {
        self.dcs.as_ref()
    }

    /// Time passes: if the deadline of the current wait has come, acts on it.
    pub fn handle_timeout(&mut self, now: Duration) {
        if let Some(d) = self.deadline
            && now >= d
        {
            self.end_receive();
            self.on_timeout(now);
        }
    }

    /// Asks for a procedure interrupt (T.30 §5.3.6.1.5): as a receiver, the next page end is
    /// answered PIP (page good) or PIN (page bad) instead of MCF/RTN, and the call ends with
    /// [`Cause::Interrupted`] — faxgate has no operator to hand the line to.
    pub fn request_interrupt(&mut self) {
        self.interrupt = true;
    }

    /// Aborts the call locally (shutdown): DCN, then hang up.
    pub fn abort(&mut self, now: Duration) {
        if self.state != State::CallFinished {
            self.commands.clear();
            self.outstanding = 0;
            self.end_receive();
            self.send_dcn(now, Cause::LocalAbort);
        }
    }

    fn end_receive(&mut self) {
        self.receiving = false;
        self.deadline = None;
    }

    /// Feeds one event from the line at `now`. Events that make no sense now (a frame when
    /// nothing is being received, a second `Sent`) are ignored.
    pub fn handle(&mut self, event: Event, now: Duration) {
        if self.state == State::CallFinished {
            return;
        }
        match event {
            Event::Sent => {
                if self.outstanding == 0 {
                    return;
                }
                self.outstanding -= 1;
                if self.outstanding == 0 {
                    self.on_sent(now);
                }
            }
            Event::CarrierLost => {
                self.commands.clear();
                self.outstanding = 0;
                self.end_receive();
                let cause = self.cause_for_drop(Cause::CarrierLost);
                self.finish(now, cause);
            }
            Event::Connect => {
                // Carrier detected: the wait for it is over; the receive runs to its end — but
                // not forever: a carrier that never drops (a broken or hostile far end) ends
                // the reception as if nothing had come, and the state's timer logic goes on.
                if self.receiving {
                    self.deadline = Some(now + self.carrier_max);
                }
            }
            Event::Frame(f) => {
                if !self.receiving {
                    return; // a stray frame
                }
                if self.state == State::FDocEcm {
                    self.on_ecm_frame(f);
                    return;
                }
                if !self.rx_hdlc {
                    // HDLC frames while TCF or non-ECM page data is expected: not what this
                    // receive can carry (a confused driver or far end); ignore them.
                    return;
                }
                let last = f.is_final();
                // Bounded: a V.21 transmission is a handful of frames (T.30 §5.3.6); keep the
                // first 15 and always the final one.
                if last || self.rx_frames.len() < 15 {
                    self.rx_frames.push(f);
                }
                if last {
                    self.end_receive();
                    let frames = std::mem::take(&mut self.rx_frames);
                    self.rx_bad = false;
                    self.on_frames(frames, now);
                }
            }
            Event::BadFrame => {
                if self.receiving {
                    self.rx_bad = true;
                }
            }
            Event::Data(bytes) => {
                if self.receiving {
                    self.on_data(&bytes, now);
                }
            }
            Event::CarrierEnd => {
                if !self.receiving {
                    return;
                }
                self.end_receive();
                self.on_carrier_end(now);
            }
            Event::WrongCarrier => {
                if !self.receiving {
                    return;
                }
                self.end_receive();
                // +FCERROR: V.21 came instead of high speed — the remote repeated a command.
                match self.state {
                    State::FTcf | State::FDocNonEcm | State::FDocEcm => {
                        self.state = State::F;
                        self.receive_frames(now, self.cfg.timers.t2);
                    }
                    _ => self.on_timeout(now),
                }
            }
            Event::Timeout => {
                if self.receiving {
                    self.end_receive();
                    self.on_timeout(now);
                }
            }
        }
    }

    // ----- plumbing -------------------------------------------------------------------------

    fn source_pages(&self) -> usize {
        match &self.job {
            Job::Send(s) => s.page_count(),
            Job::Receive(_) => 0,
        }
    }

    fn transmit(&mut self, c: Command) {
        if let Command::SendFrames(f) = &c {
            self.last_sent = f.clone();
        }
        self.outstanding += 1;
        self.commands.push_back(c);
    }

    fn receive_frames(&mut self, now: Duration, timeout: Duration) {
        self.rx_frames.clear();
        self.rx_bad = false;
        self.receiving = true;
        self.rx_hdlc = true;
        self.carrier_max = FRAMES_CARRIER_MAX;
        self.deadline = Some(now + timeout);
        self.commands.push_back(Command::ReceiveFrames { timeout });
    }

    fn receive_data(&mut self, now: Duration, kind: DataKind, timeout: Duration) {
        let modulation = self.modulation();
        let training = if kind == DataKind::Tcf {
            Training::Long
        } else {
            self.training
        };
        self.receiving = true;
        self.rx_hdlc = false;
        self.carrier_max = DATA_CARRIER_MAX;
        self.deadline = Some(now + timeout);
        self.commands.push_back(Command::ReceiveData {
            modulation,
            training,
            kind,
            timeout,
        });
    }

    fn frame(&self, fcf: Fcf, fif: &[u8]) -> Frame {
        Frame::new(fcf, self.x, fif, false)
    }

    fn send_frames(&mut self, mut frames: Vec<Frame>) {
        if let Some(last) = frames.pop() {
            frames.push(last.with_final(true));
        }
        self.transmit(Command::SendFrames(frames));
    }

    fn modulation(&self) -> Modulation {
        self.dcs
            .map(|d| d.modulation)
            .unwrap_or(Modulation::V27ter2400)
    }

    fn finish(&mut self, now: Duration, cause: Cause) {
        self.report.cause = Some(cause);
        if let Some(s) = self.started {
            self.report.duration = now.saturating_sub(s);
        }
        // A page whose verdict never came is recorded as unconfirmed.
        self.commands.push_back(Command::HangUp);
        self.end_receive();
        self.phase = Phase::CallDone;
        self.state = State::CallFinished;
    }

    /// Phase E: DCN (T.30 §5.3.6.1.7), then hang up with `cause`.
    fn send_dcn(&mut self, _now: Duration, cause: Cause) {
        self.phase = Phase::E;
        self.state = State::B;
        self.report.cause = Some(cause);
        let f = self.frame(Fcf::Dcn, &[]);
        self.send_frames(vec![f]);
    }

    fn cause_for_drop(&self, default: Cause) -> Cause {
        if !self.role.is_sender() && self.report.pages_confirmed() > 0 {
            Cause::PartialReceive
        } else {
            default
        }
    }

    fn on_sent(&mut self, now: Duration) {
        match self.state {
            State::D => {
                self.state = State::DPostTcf;
                self.receive_frames(now, self.cfg.timers.t4);
            }
            State::I => {
                // Page data is out: 75 ms, then the post-message command (node II).
                self.state = State::II;
                self.phase = Phase::D;
                let f = self.frame(self.post.fcf(), &[]);
                self.transmit(Command::Silence(GAP));
                self.send_frames(vec![f]);
            }
            State::II => {
                self.state = State::IIQ;
                self.receive_frames(now, self.cfg.timers.t4);
            }
            State::IV => self.send_pps(),
            State::IVPps => {
                self.state = State::IVPpsQ;
                self.receive_frames(now, self.cfg.timers.t4);
            }
            State::IVPpsRnr | State::IVCtc => self.receive_frames(now, self.cfg.timers.t4),
            State::B => {
                let cause = self.report.cause.unwrap_or(Cause::Ok);
                self.finish(now, cause);
            }
            State::R => {
                self.state = State::F;
                let t1_left = self
                    .t1_end
                    .map(|e| e.saturating_sub(now))
                    .unwrap_or(self.cfg.timers.t4);
                let wait = self
                    .cfg
                    .timers
                    .t4
                    .min(t1_left.max(Duration::from_millis(1)));
                self.receive_frames(now, wait);
            }
            State::FTrainResponse | State::III => {
                let after = self.after;
                self.go_after(now, after);
            }
            _ => {}
        }
    }

    fn go_after(&mut self, now: Duration, after: After) {
        match after {
            After::Command => {
                // After FTT, RTN or RTP the next command is a DCS: back in phase B (T.30
                // Figure 5-2b); after RNR, ERR or CRP the post-message exchange goes on.
                let last = self.last_sent.last().and_then(Frame::fcf);
                if matches!(last, Some(Fcf::Ftt | Fcf::Rtn | Fcf::Rtp)) {
                    self.phase = Phase::B;
                }
                self.state = State::F;
                self.receive_frames(now, self.cfg.timers.t2);
            }
            After::Data(kind) => {
                self.phase = Phase::C;
                self.state = if kind == DataKind::EcmFrames {
                    State::FDocEcm
                } else {
                    State::FDocNonEcm
                };
                self.page_bytes = 0;
                self.receive_data(now, kind, self.cfg.timers.t2);
            }
            After::PhaseB => {
                self.t1_end = Some(now + self.cfg.timers.t1);
                self.got_dcs = false;
                self.send_dis();
            }
            After::End => {
                self.state = State::FEnd;
                self.receive_frames(now, self.cfg.timers.t4);
            }
        }
    }

    fn on_timeout(&mut self, now: Duration) {
        match self.state {
            State::T => self.finish(now, Cause::T1Expired),
            State::DPostTcf => self.repeat_or_fail(now, Repeat::Dcs),
            State::IIQ => self.repeat_or_fail(now, Repeat::LastFrames(State::II)),
            State::IVPpsQ | State::IVPpsRnr | State::IVCtc => {
                let st = if self.state == State::IVPpsQ {
                    State::IVPps
                } else {
                    self.state
                };
                self.repeat_or_fail(now, Repeat::LastFrames(st))
            }
            State::F => {
                if !self.got_dcs && self.t1_end.is_some_and(|e| now < e) {
                    // T.30 Figure 5-2: DIS is repeated every T4 until T1 expires.
                    self.send_dis();
                } else if !self.got_dcs {
                    self.finish(now, Cause::T1Expired);
                } else {
                    let c = self.cause_for_drop(Cause::T2Expired);
                    self.finish(now, c);
                }
            }
            State::FTcf | State::FDocNonEcm | State::FDocEcm => {
                // No high-speed carrier: the remote may be repeating a command; listen for it.
                self.state = State::F;
                self.receive_frames(now, self.cfg.timers.t2);
            }
            State::FEnd => {
                // T.30: the receiver releases the call anyway after MCF to EOP.
                let cause = if self.interrupted {
                    Cause::Interrupted
                } else {
                    Cause::Ok
                };
                self.finish(now, cause);
            }
            _ => {}
        }
    }

    fn repeat_or_fail(&mut self, now: Duration, what: Repeat) {
        if self.repeats >= MAX_REPEATS {
            self.send_dcn(now, Cause::NoResponse);
            return;
        }
        self.repeats += 1;
        match what {
            Repeat::Dcs => self.send_dcs(now),
            Repeat::LastFrames(state) => {
                self.state = state;
                let f = self.last_sent.clone();
                self.transmit(Command::SendFrames(f));
            }
        }
    }

    // ----- transmitter (calling, sending) ---------------------------------------------------

    fn source(&mut self) -> &mut Box<dyn PageSource + Send> {
        match &mut self.job {
            Job::Send(s) => s,
            Job::Receive(_) => unreachable!("sender handlers run only on sending engines"),
        }
    }

    /// Node T, "DIS received": record the remote and go to node D.
    fn t_on_frames(&mut self, frames: Vec<Frame>, now: Duration) {
        let mut dis = None;
        for f in &frames {
            match f.fcf() {
                Some(Fcf::Dis) => dis = Some(Capabilities::decode(f.fif())),
                // After EOM a poller asks again with DTC (T.30 §5.3.6.1.2).
                Some(Fcf::Dtc) if self.role == Role::AnsweringSender => {
                    dis = Some(Capabilities::decode(f.fif()))
                }
                Some(Fcf::Csi) => self.report.remote_id = Some(decode_id(f.fif())),
                Some(Fcf::Nsf) => self.report.nsf = Some(f.fif().to_vec()),
                Some(Fcf::Dcn) => {
                    self.finish(now, Cause::UnexpectedDcn);
                    return;
                }
                _ => {}
            }
        }
        match dis {
            Some(c) if !self.role.is_sender() => {
                // Polling: the remote must have a document for us (DIS bit 9).
                if c.ready_to_transmit {
                    self.remote = Some(c);
                    self.send_dis();
                } else {
                    self.send_dcn(now, Cause::NothingToPoll);
                }
            }
            Some(c) => {
                self.remote = Some(c);
                self.repeats = 0;
                self.send_dcs(now);
            }
            None => {
                let left = self
                    .t1_end
                    .map(|e| e.saturating_sub(now))
                    .unwrap_or_default();
                if left.is_zero() {
                    self.finish(now, Cause::T1Expired);
                } else {
                    self.receive_frames(now, left);
                }
            }
        }
    }

    /// Node D: TSI (SUB, SID, PWD) DCS, 75 ms, TCF.
    fn send_dcs(&mut self, now: Duration) {
        let Some(remote) = self.remote.clone() else {
            return;
        };
        let page = self.page;
        let wanted = self.source().wanted(page);
        let mut dcs = match choose_dcs(&self.ours, &remote, wanted, self.rung) {
            Ok(d) => d,
            Err(_) => {
                self.send_dcn(now, Cause::Incompatible);
                return;
            }
        };
        dcs.frame_64 = dcs.ecm && self.cfg.ecm_frame_64;
        // A new mode may change the coding or the minimum line length: code the page afresh.
        self.page_data = None;
        self.rung = dcs.modulation;
        self.dcs = Some(dcs);
        self.phase = Phase::B;
        self.state = State::D;
        self.training = Training::Long;
        self.report.modulation = Some(dcs.modulation);
        self.report.resolution = Some(dcs.resolution);
        self.report.coding = Some(dcs.coding);
        self.report.width = Some(dcs.width);
        self.report.ecm = dcs.ecm;
        let mut frames = Vec::new();
        if let Some(nsf) = self.cfg.nsf.clone() {
            frames.push(self.frame(Fcf::Nss, &nsf));
        }
        frames.push(self.frame(Fcf::Tsi, &encode_id(&self.cfg.local_id)));
        if let Some(sub) = self.cfg.subaddress.clone()
            && remote.subaddress
        {
            frames.push(self.frame(Fcf::Sub, &encode_id(&sub)));
            self.report.subaddress = Some(sub);
        }
        let mut sid_sent = false;
        if remote.password
            && let Some(sid) = self
                .cfg
                .sender_id
                .clone()
                .or_else(|| self.cfg.password.clone())
        {
            // T.30 §5.3.6.1.3: with DCS the identification/password travels as SID (PWD
            // belongs to DTC, polling).
            frames.push(self.frame(Fcf::Sid, &encode_id(&sid)));
            self.report.sender_id = Some(sid);
            sid_sent = true;
        }
        let sub_sent = self.report.subaddress.is_some() && remote.subaddress;
        frames.push(self.frame(Fcf::Dcs, &dcs.encode_with(sub_sent, sid_sent)));
        self.send_frames(frames);
        self.transmit(Command::Silence(GAP));
        self.transmit(Command::SendTcf {
            modulation: dcs.modulation,
            duration: TCF_DURATION,
        });
    }

    /// Node D, "response received?": CFR → phase C; FTT → a lower rung; DIS → DCS again.
    fn d_on_frames(&mut self, frames: Vec<Frame>, now: Duration) {
        let Some(f) = frames.last() else { return };
        match f.fcf() {
            Some(Fcf::Cfr) => {
                self.repeats = 0;
                self.training = Training::Short;
                self.start_page(now);
            }
            Some(Fcf::Ftt) => {
                self.repeats = 0;
                self.ftt_count += 1;
                self.report.ftt_count = self.ftt_count;
                let lower = Modulation::LADDER
                    .iter()
                    .copied()
                    .filter(|m| *m < self.rung)
                    .find(|m| {
                        self.ours.modems.has(*m)
                            && self.remote.as_ref().is_some_and(|r| r.modems.has(*m))
                    });
                match lower {
                    Some(m) if self.ftt_count < self.cfg.max_ftt => {
                        self.rung = m;
                        self.send_dcs(now);
                    }
                    _ => self.send_dcn(now, Cause::TrainingFailed),
                }
            }
            Some(Fcf::Dis | Fcf::Dtc) => {
                // Our DCS was lost and the remote repeated DIS/DTC (T.30 Figure 5-2a).
                self.repeat_or_fail(now, Repeat::Dcs);
            }
            Some(Fcf::Crp) => self.repeat_or_fail(now, Repeat::Dcs),
            Some(Fcf::Dcn) => self.finish(now, Cause::UnexpectedDcn),
            _ => self.send_dcn(now, Cause::ProtocolError),
        }
    }

    fn coding(&self) -> PageCoding {
        let dcs = self.dcs.unwrap_or(Dcs {
            modulation: Modulation::V27ter2400,
            resolution: super::VResolution::Standard,
            coding: Coding::Mh,
            width: super::Width::A4,
            scan_time_ms: 0,
            ecm: false,
            frame_64: false,
        });
        PageCoding {
            coding: dcs.coding,
            resolution: dcs.resolution,
            width: dcs.width,
            k: PageCoding::k_for(dcs.resolution),
            min_line_bits: dcs.scan_time_ms * dcs.modulation.bps() / 1000,
            ecm: dcs.ecm,
        }
    }

    /// Phase C entry for the current page: code it (once per page and mode), then node I or IV.
    fn start_page(&mut self, now: Duration) {
        self.phase = Phase::C;
        let n = self.source_pages();
        let last = self.page + 1 >= n;
        let ends_doc = last || {
            let p = self.page;
            self.source().ends_document(p)
        };
        self.post = if last {
            PostMsg::Eop
        } else if ends_doc {
            PostMsg::Eom
        } else {
            PostMsg::Mps
        };
        let coding = self.coding();
        let page = self.page;
        let data = match self.page_data.take() {
            Some(d) => d,
            None => match self.source().encode(page, &coding) {
                Ok(d) => d,
                Err(_) => {
                    self.send_dcn(now, Cause::DocumentError);
                    return;
                }
            },
        };
        if coding.ecm {
            self.ecm_tx = EcmTx {
                data,
                frame_size: if self.dcs.is_some_and(|d| d.frame_64) {
                    64
                } else {
                    256
                },
                ..EcmTx::default()
            };
            self.ecm_next_block(0);
            self.send_block();
        } else {
            self.state = State::I;
            self.transmit(Command::Silence(GAP));
            self.transmit(Command::SendPage {
                modulation: self.modulation(),
                training: self.training,
                data: data.clone(),
            });
            self.training = Training::Short;
            self.page_data = Some(data);
        }
    }

    fn record_sent_page(&mut self, outcome: PageOutcome) {
        let bytes = if self.report.ecm {
            self.ecm_tx.data.len()
        } else {
            self.page_data.as_ref().map_or(0, Vec::len)
        };
        self.report.pages.push(PageRecord {
            page: self.page,
            outcome,
            quality: None,
            modulation: self.modulation(),
            bytes,
        });
    }

    /// Node II, "response received?" (non-ECM), and the page-level end of Annex A (MCF to
    /// PPS-MPS/EOM/EOP).
    fn ii_on_frames(&mut self, frames: Vec<Frame>, now: Duration) {
        let Some(f) = frames.last() else { return };
        match f.fcf() {
            Some(Fcf::Mcf) => {
                self.record_sent_page(PageOutcome::Confirmed);
                self.page_done(now, false);
            }
            Some(Fcf::Rtp) => {
                self.record_sent_page(PageOutcome::ConfirmedRetrain);
                self.page_done(now, true);
            }
            Some(Fcf::Rtn) => {
                self.record_sent_page(PageOutcome::Rejected);
                self.repeats = 0;
                self.rtn_for_page += 1;
                if self.rtn_for_page > self.cfg.max_rtn_per_page {
                    self.send_dcn(now, Cause::PageRejected);
                } else {
                    // T.30 §5.3.6.1.5: retrain (phase B, DCS + TCF), then send the page again.
                    self.send_dcs(now);
                }
            }
            Some(Fcf::Pip) => {
                self.record_sent_page(PageOutcome::Confirmed);
                self.send_dcn(now, Cause::Interrupted);
            }
            Some(Fcf::Pin) => {
                self.record_sent_page(PageOutcome::Rejected);
                self.send_dcn(now, Cause::Interrupted);
            }
            Some(Fcf::Crp) => self.repeat_or_fail(now, Repeat::LastFrames(State::II)),
            Some(Fcf::Dcn) => self.finish(now, Cause::UnexpectedDcn),
            _ => self.send_dcn(now, Cause::ProtocolError),
        }
    }

    /// The page was accepted: next page, next document, or release.
    fn page_done(&mut self, now: Duration, retrain: bool) {
        self.repeats = 0;
        self.rtn_for_page = 0;
        self.page_data = None;
        match self.post {
            PostMsg::Eop => self.send_dcn(now, Cause::Ok),
            PostMsg::Mps => {
                self.page += 1;
                self.page_counter = self.page_counter.wrapping_add(1);
                if retrain {
                    self.send_dcs(now);
                } else {
                    self.start_page(now);
                }
            }
            PostMsg::Eom => {
                // T.30 §5.3.6.1.4: EOM returns to phase B; the receiver sends DIS again.
                self.page += 1;
                self.page_counter = self.page_counter.wrapping_add(1);
                self.phase = Phase::B;
                self.state = State::T;
                self.t1_end = Some(now + self.cfg.timers.t1);
                self.receive_frames(now, self.cfg.timers.t1);
            }
        }
    }

    // ----- ECM transmitter (Annex A) --------------------------------------------------------

    fn ecm_next_block(&mut self, start: usize) {
        let t = &mut self.ecm_tx;
        t.block_start = start;
        let left = t.data.len().saturating_sub(start);
        t.block_frames = left.div_ceil(t.frame_size).clamp(1, 256);
        t.to_send = (0..t.block_frames).collect();
        t.pprs = 0;
        t.rnr_since = None;
    }

    fn block_is_last(&self) -> bool {
        let t = &self.ecm_tx;
        t.block_start + t.block_frames * t.frame_size >= t.data.len()
    }

    /// Node IV: 75 ms, then the frames still wanted, then three RCP (Annex A.3.4).
    fn send_block(&mut self) {
        self.state = State::IV;
        let t = &self.ecm_tx;
        let mut frames = Vec::with_capacity(t.to_send.len() + 3);
        for &i in &t.to_send {
            let a = t.block_start + i * t.frame_size;
            let b = (a + t.frame_size).min(t.data.len());
            let mut fif = Vec::with_capacity(1 + t.frame_size);
            fif.push(i as u8);
            fif.extend_from_slice(&t.data[a.min(b)..b]);
            frames.push(Frame::new(Fcf::Fcd, false, &fif, false));
        }
        for _ in 0..3 {
            frames.push(Frame::new(Fcf::Rcp, false, &[], false));
        }
        let modulation = self.modulation();
        let training = self.training;
        self.training = Training::Short;
        self.transmit(Command::Silence(GAP));
        self.transmit(Command::SendEcmBlock {
            modulation,
            training,
            frames,
        });
    }

    /// PPS-x (Annex A.4.1): FIF = post-message FCF (NULL inside a page), page, block, frames-1.
    fn send_pps(&mut self) {
        self.state = State::IVPps;
        self.phase = Phase::D;
        let post = if self.block_is_last() {
            self.post.fcf().octet(self.x)
        } else {
            0x00
        };
        let t = &self.ecm_tx;
        let fif = [
            post,
            self.page_counter,
            t.block_no,
            (t.block_frames - 1) as u8,
        ];
        let f = self.frame(Fcf::Pps, &fif);
        self.transmit(Command::Silence(GAP));
        self.send_frames(vec![f]);
    }

    /// Annex A "response to PPS": MCF, PPR (missing frames), RNR (wait), CTR (after CTC).
    fn iv_on_frames(&mut self, frames: Vec<Frame>, now: Duration) {
        let Some(f) = frames.last() else { return };
        match f.fcf() {
            Some(Fcf::Mcf) if self.state != State::IVCtc => {
                self.repeats = 0;
                if self.block_is_last() {
                    self.record_sent_page(PageOutcome::Confirmed);
                    self.page_done(now, false);
                } else {
                    let next =
                        self.ecm_tx.block_start + self.ecm_tx.block_frames * self.ecm_tx.frame_size;
                    self.ecm_tx.block_no = self.ecm_tx.block_no.wrapping_add(1);
                    self.ecm_next_block(next);
                    self.send_block();
                }
            }
            Some(Fcf::Ppr) if self.state != State::IVCtc => {
                self.repeats = 0;
                self.report.ppr_count += 1;
                self.ecm_tx.pprs += 1;
                self.ecm_tx.rnr_since = None;
                let map = f.fif();
                let n = self.ecm_tx.block_frames;
                // Annex A.4.2: bit i of the 256-bit field (LSB first) set = frame i is wanted.
                let mut wanted: Vec<usize> = (0..n)
                    .filter(|i| map.get(i / 8).is_some_and(|o| o >> (i % 8) & 1 != 0))
                    .collect();
                if wanted.is_empty() {
                    wanted = (0..n).collect();
                }
                self.ecm_tx.to_send = wanted;
                if self.ecm_tx.pprs >= PPRS_BEFORE_CTC {
                    self.send_ctc(now);
                } else {
                    self.send_block();
                }
            }
            Some(Fcf::Ctr) if self.state == State::IVCtc => {
                self.repeats = 0;
                self.ecm_tx.pprs = 0;
                self.training = Training::Long;
                self.send_block();
            }
            Some(Fcf::Rnr) => {
                let since = *self.ecm_tx.rnr_since.get_or_insert(now);
                if now.saturating_sub(since) >= self.cfg.timers.t5 {
                    self.send_dcn(now, Cause::T5Expired);
                } else {
                    self.repeats = 0;
                    self.state = State::IVPpsRnr;
                    let f = self.frame(Fcf::Rr, &[]);
                    self.send_frames(vec![f]);
                }
            }
            Some(Fcf::Crp) => {
                let st = if self.state == State::IVPpsQ {
                    State::IVPps
                } else {
                    self.state
                };
                self.repeat_or_fail(now, Repeat::LastFrames(st));
            }
            Some(Fcf::Dcn) => self.finish(now, Cause::UnexpectedDcn),
            Some(Fcf::Pip) => {
                self.record_sent_page(PageOutcome::Confirmed);
                self.send_dcn(now, Cause::Interrupted);
            }
            Some(Fcf::Pin) => {
                self.record_sent_page(PageOutcome::Rejected);
                self.send_dcn(now, Cause::Interrupted);
            }
            _ => self.send_dcn(now, Cause::ProtocolError),
        }
    }

    /// Annex A.4.1: after four PPRs, continue to correct at the next lower rate (CTC, whose
    /// FIF carries DCS octets 1–2 with the new rate in bits 11–14).
    fn send_ctc(&mut self, now: Duration) {
        let lower = Modulation::LADDER
            .iter()
            .copied()
            .filter(|m| *m < self.rung)
            .find(|m| {
                self.ours.modems.has(*m) && self.remote.as_ref().is_some_and(|r| r.modems.has(*m))
            });
        let Some(m) = lower else {
            self.send_dcn(now, Cause::EcmFailed);
            return;
        };
        self.rung = m;
        if let Some(d) = self.dcs.as_mut() {
            d.modulation = m;
        }
        self.report.modulation = Some(m);
        self.report.ctc_count += 1;
        self.ecm_tx.pprs = 0;
        self.state = State::IVCtc;
        // Annex A: the CTC FIF is DCS octets 1–2 with only bits 11–14 (the new rate) set.
        let fif = self.dcs.map(|d| d.encode()).unwrap_or_default();
        let rate = fif.get(1).map_or(0, |o| o & 0x3C);
        let f = self.frame(Fcf::Ctc, &[0, rate]);
        self.send_frames(vec![f]);
    }

    // ----- receiver (answering) -------------------------------------------------------------

    fn sink(&mut self) -> &mut Box<dyn PageSink + Send> {
        match &mut self.job {
            Job::Receive(s) => s,
            Job::Send(_) => unreachable!("receiver handlers run only on receiving engines"),
        }
    }

    /// Node R: NSF, CSI, DIS (T.30 Figure 5-2b) — or, for a polling caller, NSC, CIG, DTC
    /// (T.30 §5.3.6.1.2).
    fn send_dis(&mut self) {
        self.phase = Phase::B;
        self.state = State::R;
        let calling = self.role.is_calling();
        let mut frames = Vec::new();
        if let Some(nsf) = self.cfg.nsf.clone() {
            frames.push(self.frame(if calling { Fcf::Nsc } else { Fcf::Nsf }, &nsf));
        }
        let id = encode_id(&self.cfg.local_id);
        frames.push(self.frame(if calling { Fcf::Cig } else { Fcf::Csi }, &id));
        if calling
            && let Some(pwd) = self.cfg.password.clone()
            && self.remote.as_ref().is_some_and(|r| r.password)
        {
            // T.30 §5.3.6.1.2: a poller may send PWD with DTC.
            frames.push(self.frame(Fcf::Pwd, &encode_id(&pwd)));
        }
        let caps = self.dis_caps().encode();
        frames.push(self.frame(if calling { Fcf::Dtc } else { Fcf::Dis }, &caps));
        self.send_frames(frames);
    }

    /// What our DIS/DTC offers. DIS bits 11–14 cannot say "V.17 up to 9600": below 14400 we
    /// offer V.29 / V.27 ter only (and still send at V.17 up to `max_bps` when we transmit).
    fn dis_caps(&self) -> Capabilities {
        let mut caps = self.ours.clone();
        if self.cfg.max_bps < 14_400 {
            caps.modems.v17 = false;
        }
        caps
    }

    /// Node F of a polled sender: DTC (with CIG/NSC) makes it the transmitter.
    fn polled_on_frames(&mut self, frames: Vec<Frame>, now: Duration) {
        let mut dtc = None;
        for f in &frames {
            match f.fcf() {
                Some(Fcf::Dtc) => dtc = Some(Capabilities::decode(f.fif())),
                Some(Fcf::Cig) => self.report.remote_id = Some(decode_id(f.fif())),
                Some(Fcf::Pwd) => self.report.password_received = true,
                Some(Fcf::Nsc) => self.report.nsf = Some(f.fif().to_vec()),
                Some(Fcf::Dcn) => {
                    self.finish(now, Cause::UnexpectedDcn);
                    return;
                }
                _ => {}
            }
        }
        match dtc {
            Some(c) => {
                self.got_dcs = true;
                self.remote = Some(c);
                self.repeats = 0;
                self.send_dcs(now);
            }
            None => {
                self.state = State::F;
                let t1_left = self
                    .t1_end
                    .map_or(Duration::ZERO, |e| e.saturating_sub(now));
                if t1_left.is_zero() {
                    self.finish(now, Cause::T1Expired);
                } else {
                    self.receive_frames(now, self.cfg.timers.t4.min(t1_left));
                }
            }
        }
    }

    fn respond(&mut self, fcf: Fcf, fif: &[u8], after: After) {
        let f = self.frame(fcf, fif);
        self.last_response = Some((f.clone(), after));
        self.after = after;
        self.state = State::III;
        self.send_frames(vec![f]);
    }

    /// Node F, "command received": the receiver's one command handler.
    fn f_on_frames(&mut self, frames: Vec<Frame>, now: Duration) {
        let mut dcs = None;
        let mut last = None;
        for f in &frames {
            match f.fcf() {
                Some(Fcf::Tsi) => self.report.remote_id = Some(decode_id(f.fif())),
                Some(Fcf::Sub) => self.report.subaddress = Some(decode_id(f.fif())),
                Some(Fcf::Sid) => {
                    self.report.sender_id = Some(decode_id(f.fif()));
                    self.report.password_received = true;
                }
                Some(Fcf::Pwd) => self.report.password_received = true,
                Some(Fcf::Nss) => self.report.nsf = Some(f.fif().to_vec()),
                Some(Fcf::Dcs) => dcs = Some(f.fif().to_vec()),
                _ => {}
            }
            last = f.fcf();
        }
        if let Some(fif) = dcs {
            match Dcs::decode(&fif) {
                Some(d) if self.accepts(&d) => {
                    self.got_dcs = true;
                    self.dcs = Some(d);
                    self.report.modulation = Some(d.modulation);
                    self.report.resolution = Some(d.resolution);
                    self.report.coding = Some(d.coding);
                    self.report.width = Some(d.width);
                    self.report.ecm = d.ecm;
                    self.last_response = None;
                    self.training = Training::Long;
                    self.tcf_run = 0;
                    self.tcf_best = 0;
                    self.state = State::FTcf;
                    self.receive_data(now, DataKind::Tcf, self.cfg.timers.t4);
                }
                _ => self.send_dcn(now, Cause::Incompatible),
            }
            return;
        }
        match last {
            Some(Fcf::Mps | Fcf::Eom | Fcf::Eop | Fcf::PriMps | Fcf::PriEom | Fcf::PriEop) => {
                let post = match last {
                    Some(Fcf::Mps | Fcf::PriMps) => PostMsg::Mps,
                    Some(Fcf::Eom | Fcf::PriEom) => PostMsg::Eom,
                    _ => PostMsg::Eop,
                };
                self.post_message(post, now);
            }
            Some(Fcf::Pps) => {
                let fif = frames.last().map(|f| f.fif().to_vec()).unwrap_or_default();
                self.on_pps(&fif, now);
            }
            Some(Fcf::Ctc) => {
                let fif = frames.last().map(|f| f.fif().to_vec()).unwrap_or_default();
                let mut full = fif.clone();
                full.resize(3, 0);
                match (Dcs::decode(&full), self.dcs.as_mut()) {
                    (Some(new), Some(d)) => {
                        d.modulation = new.modulation;
                        self.report.modulation = Some(new.modulation);
                        self.training = Training::Long;
                        self.respond(Fcf::Ctr, &[], After::Data(DataKind::EcmFrames));
                    }
                    _ => self.send_dcn(now, Cause::ProtocolError),
                }
            }
            Some(Fcf::Rr) => {
                // Annex A flow control: RR asks whether we are ready now.
                if !self.sink().ready() {
                    self.respond(Fcf::Rnr, &[], After::Command);
                } else if self.pending.is_some() {
                    self.pending_pps(now);
                } else if let Some((f, after)) = self.last_response.clone() {
                    self.resend(f, after);
                } else {
                    self.send_dcn(now, Cause::ProtocolError);
                }
            }
            Some(Fcf::Eor) => {
                self.ecm_rx.frames.iter_mut().for_each(|f| *f = None);
                self.pending = None;
                self.respond(Fcf::Err, &[], After::Command);
            }
            Some(Fcf::Dcn) => {
                let cause = if self.interrupted {
                    Cause::Interrupted
                } else if matches!(self.state, State::FEnd) {
                    Cause::Ok
                } else {
                    self.cause_for_drop(Cause::UnexpectedDcn)
                };
                self.finish(now, cause);
            }
            Some(Fcf::Crp) => {
                if let Some((f, after)) = self.last_response.clone() {
                    self.resend(f, after);
                } else {
                    self.send_dis();
                }
            }
            _ => {
                // Unknown or irrelevant frames: keep listening while T2 allows.
                self.state = State::F;
                self.receive_frames(now, self.cfg.timers.t2);
            }
        }
    }

    fn resend(&mut self, f: Frame, after: After) {
        self.after = after;
        self.state = State::III;
        self.send_frames(vec![f]);
    }

    fn accepts(&self, d: &Dcs) -> bool {
        self.dis_caps().modems.has(d.modulation)
            && d.modulation.bps() <= self.cfg.max_bps
            && (d.resolution != super::VResolution::Fine || self.ours.fine)
            && (d.resolution != super::VResolution::Superfine || self.ours.superfine)
            && (!d.ecm || self.ours.ecm)
            && (d.coding != Coding::Mmr || d.ecm)
    }

    /// Node F after page data: answer MPS/EOM/EOP with the copy-quality verdict.
    fn post_message(&mut self, post: PostMsg, now: Duration) {
        if self.report.ecm {
            // Under ECM post-message commands come inside PPS; a bare one is a repeat of a
            // command we already answered.
            if let Some((f, after)) = self.last_response.clone() {
                self.resend(f, after);
            } else {
                self.send_dcn(now, Cause::ProtocolError);
            }
            return;
        }
        if !self.page_started {
            match self.last_response.clone() {
                // The same command again with no page between: our response was lost; repeat
                // it (T.30 Figure 5-2b, "command repeated").
                Some((f, after)) if self.last_post == Some(post) => self.resend(f, after),
                // A different command with no page data: the page never arrived. Refuse it
                // (RTN): the sender retrains and sends it again.
                _ => {
                    let page = self.report.pages_confirmed();
                    self.report.pages.push(PageRecord {
                        page,
                        outcome: PageOutcome::Rejected,
                        quality: Some(Default::default()),
                        modulation: self.modulation(),
                        bytes: 0,
                    });
                    self.last_post = Some(post);
                    self.phase = Phase::D;
                    self.respond(Fcf::Rtn, &[], After::Command);
                }
            }
            return;
        }
        self.page_started = false;
        self.last_post = Some(post);
        let q = self.sink().end_page();
        let verdict = self.cfg.quality.judge(&q);
        let accepted = verdict != Verdict::Bad;
        if let Err(_e) = self.sink().finish_page(accepted) {
            self.send_dcn(now, Cause::SinkError);
            return;
        }
        let page = self.report.pages_confirmed();
        self.report.pages.push(PageRecord {
            page,
            outcome: match verdict {
                Verdict::Good => PageOutcome::Confirmed,
                Verdict::Retrain => PageOutcome::ConfirmedRetrain,
                Verdict::Bad => PageOutcome::Rejected,
            },
            quality: Some(q),
            modulation: self.modulation(),
            bytes: self.page_bytes,
        });
        if self.interrupt {
            // T.30 §5.3.6.1.5: PIP (page good) / PIN (page bad) instead of MCF / RTN.
            self.interrupt = false;
            self.interrupted = true;
            let fcf = if accepted { Fcf::Pip } else { Fcf::Pin };
            self.phase = Phase::D;
            self.respond(fcf, &[], After::End);
            return;
        }
        let (fcf, after) = match (verdict, post) {
            (Verdict::Good, PostMsg::Mps) => (Fcf::Mcf, After::Data(DataKind::Page)),
            (Verdict::Good, PostMsg::Eom) => (Fcf::Mcf, After::PhaseB),
            (Verdict::Good, PostMsg::Eop) => (Fcf::Mcf, After::End),
            (Verdict::Retrain, PostMsg::Eop) => (Fcf::Rtp, After::End),
            (Verdict::Retrain, _) => (Fcf::Rtp, After::Command),
            (Verdict::Bad, _) => (Fcf::Rtn, After::Command),
        };
        self.phase = Phase::D;
        self.respond(fcf, &[], after);
    }

    /// TCF bytes: track the longest run of zero octets.
    fn on_data(&mut self, bytes: &[u8], now: Duration) {
        match self.state {
            State::FTcf => {
                for &b in bytes {
                    if b == 0 {
                        self.tcf_run += 1;
                        self.tcf_best = self.tcf_best.max(self.tcf_run);
                    } else {
                        self.tcf_run = 0;
                    }
                }
            }
            State::FDocNonEcm => {
                if !self.page_started {
                    self.page_started = true;
                    self.page_bytes = 0;
                    let c = self.coding();
                    self.sink().start_page(&c);
                }
                self.page_bytes += bytes.len();
                if self.page_bytes > self.cfg.max_page_bytes {
                    self.end_receive();
                    self.send_dcn(now, Cause::TooMuchData);
                    return;
                }
                self.sink().data(bytes);
            }
            _ => {}
        }
    }

    fn on_carrier_end(&mut self, now: Duration) {
        match self.state {
            State::FTcf => {
                // T.30 §5.3.6.1.3: the receiver judges TCF; ours: a zero run ≥ 1 s.
                let need = u64::from(self.modulation().bps()) / 8
                    * TCF_MIN_ZERO_RUN.as_millis() as u64
                    / 1000;
                self.state = State::FTrainResponse;
                if self.tcf_best >= need {
                    self.training = Training::Short;
                    self.after = After::Data(if self.report.ecm {
                        DataKind::EcmFrames
                    } else {
                        DataKind::Page
                    });
                    let f = self.frame(Fcf::Cfr, &[]);
                    self.last_response = Some((f.clone(), self.after));
                    self.send_frames(vec![f]);
                } else {
                    self.after = After::Command;
                    let f = self.frame(Fcf::Ftt, &[]);
                    self.send_frames(vec![f]);
                }
            }
            State::FDocNonEcm => {
                // End of page data; the post-message command follows at V.21 (T2).
                self.state = State::F;
                self.phase = Phase::D;
                self.receive_frames(now, self.cfg.timers.t2);
            }
            State::FDocEcm => {
                self.state = State::F;
                self.phase = Phase::D;
                self.receive_frames(now, self.cfg.timers.t2);
            }
            _ => {
                // V.21 carrier ended without a final frame: a damaged command.
                if self.state == State::F {
                    let damaged = std::mem::take(&mut self.rx_bad);
                    if damaged && self.phase == Phase::D {
                        // Post-message command damaged: ask for it again (CRP, T.30
                        // §5.3.6.1.7); the sender is listening for our response.
                        self.state = State::III;
                        self.after = After::Command;
                        let f = self.frame(Fcf::Crp, &[]);
                        self.send_frames(vec![f]);
                    } else if damaged || self.got_dcs {
                        // Phase B: a damaged DCS is followed at once by TCF, so a CRP would
                        // collide with it. Stay silent; the sender repeats DCS after T4.
                        self.receive_frames(now, self.cfg.timers.t2);
                    } else {
                        self.on_timeout(now);
                    }
                } else {
                    // A damaged response: the transmitter repeats its command.
                    self.on_timeout(now);
                }
            }
        }
    }

    fn on_ecm_frame(&mut self, f: Frame) {
        match f.fcf() {
            Some(Fcf::Fcd) => {
                let fif = f.fif();
                let Some((&n, data)) = fif.split_first() else {
                    return;
                };
                if data.len() > 256 {
                    return;
                }
                if !self.page_started {
                    self.page_started = true;
                    self.ecm_rx.page_bytes = 0;
                    let c = self.coding();
                    self.sink().start_page(&c);
                }
                self.ecm_rx.frames[usize::from(n)] = Some(data.to_vec());
            }
            Some(Fcf::Rcp) => {}
            _ => {}
        }
    }

    /// Annex A.4.1: PPS-x received: all frames 0..=count there → MCF; else PPR with the map.
    fn on_pps(&mut self, fif: &[u8], now: Duration) {
        if fif.len() < 4 {
            self.send_dcn(now, Cause::ProtocolError);
            return;
        }
        let (post, page, block, count) = (fif[0], fif[1], fif[2], usize::from(fif[3]) + 1);
        let fresh = self.ecm_rx.frames.iter().any(Option::is_some);
        if self.ecm_rx.last_accepted == Some((page, block))
            && !fresh
            && let Some((f, after)) = self.last_response.clone()
        {
            // Our MCF was lost and the PPS repeated: answer it again, keep the data once.
            self.resend(f, after);
            return;
        }
        self.pending = Some((post, page, block, count));
        if !self.sink().ready() {
            self.respond(Fcf::Rnr, &[], After::Command);
            return;
        }
        self.pending_pps(now);
    }
}

/// What to repeat after a timeout or CRP.
enum Repeat {
    Dcs,
    LastFrames(State),
}
impl Engine {
    /// Dispatches a complete V.21 transmission to the handler of the current state.
    fn on_frames(&mut self, frames: Vec<Frame>, now: Duration) {
        match self.state {
            State::T => self.t_on_frames(frames, now),
            State::DPostTcf => self.d_on_frames(frames, now),
            State::IIQ => self.ii_on_frames(frames, now),
            State::IVPpsQ | State::IVPpsRnr | State::IVCtc => self.iv_on_frames(frames, now),
            State::F if self.role.is_sender() => self.polled_on_frames(frames, now),
            State::F | State::FEnd => self.f_on_frames(frames, now),
            _ => {}
        }
    }

    /// Answers the pending PPS: PPR with the map of missing frames, or MCF and the block's
    /// data to the sink (Annex A.4.2).
    fn pending_pps(&mut self, now: Duration) {
        let Some((post, page, block, count)) = self.pending else {
            self.state = State::F;
            self.receive_frames(now, self.cfg.timers.t2);
            return;
        };
        let missing: Vec<usize> = (0..count)
            .filter(|&i| self.ecm_rx.frames[i].is_none())
            .collect();
        if !missing.is_empty() {
            self.report.ppr_count += 1;
            let mut map = [0u8; 32];
            for i in missing {
                map[i / 8] |= 1 << (i % 8);
            }
            self.respond(Fcf::Ppr, &map, After::Data(DataKind::EcmFrames));
            return;
        }
        self.pending = None;
        let mut data = Vec::new();
        for slot in self.ecm_rx.frames.iter_mut() {
            if let Some(f) = slot.take() {
                data.extend_from_slice(&f);
            }
        }
        self.ecm_rx.page_bytes += data.len();
        self.page_bytes = self.ecm_rx.page_bytes;
        if self.ecm_rx.page_bytes > self.cfg.max_page_bytes {
            self.send_dcn(now, Cause::TooMuchData);
            return;
        }
        self.sink().data(&data);
        self.ecm_rx.last_accepted = Some((page, block));
        if post == 0 {
            // PPS-NULL: more blocks of this page follow.
            self.respond(Fcf::Mcf, &[], After::Data(DataKind::EcmFrames));
            return;
        }
        let after = match Fcf::from_octet(post) {
            Some(Fcf::Mps | Fcf::PriMps) => After::Data(DataKind::EcmFrames),
            Some(Fcf::Eom | Fcf::PriEom) => After::PhaseB,
            Some(Fcf::Eop | Fcf::PriEop) => After::End,
            _ => {
                self.send_dcn(now, Cause::ProtocolError);
                return;
            }
        };
        self.page_started = false;
        let q = self.sink().end_page();
        if self.sink().finish_page(true).is_err() {
            self.send_dcn(now, Cause::SinkError);
            return;
        }
        let page_no = self.report.pages_confirmed();
        self.report.pages.push(PageRecord {
            page: page_no,
            outcome: PageOutcome::Confirmed,
            quality: Some(q),
            modulation: self.modulation(),
            bytes: self.ecm_rx.page_bytes,
        });
        self.ecm_rx.page_bytes = 0;
        self.phase = Phase::D;
        if self.interrupt {
            self.interrupt = false;
            self.interrupted = true;
            self.respond(Fcf::Pip, &[], After::End);
            return;
        }
        self.respond(Fcf::Mcf, &[], after);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_follow_the_options() {
        let c = EngineConfig {
            local_id: "+49 30 1234".into(),
            max_bps: 9600,
            ecm: false,
            ..EngineConfig::default()
        };
        // No V.17 offered at 9600, no ECM, so no MMR.
        let e = Engine::receiver(c, Box::new(crate::fax::t30::pages::PagesSink::new()));
        let dis = e.dis_caps();
        assert!(!dis.modems.v17 && dis.modems.v29 && !dis.ecm && !dis.mmr);
        let v17_9600 = Dcs {
            modulation: Modulation::V17_9600,
            resolution: crate::fax::t30::VResolution::Fine,
            coding: Coding::Mr,
            width: crate::fax::t30::Width::A4,
            scan_time_ms: 0,
            ecm: false,
            frame_64: false,
        };
        assert!(!e.accepts(&v17_9600), "V.17 was not offered");
        let v29 = Dcs {
            modulation: Modulation::V29_9600,
            ..v17_9600
        };
        assert!(e.accepts(&v29));
    }
}
