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
use super::report::{Activity, CallReport, PageOutcome, PageRecord, Progress};
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
    /// Offer / use V.17 (7200–14400 bit/s). Off, the fastest rate is V.29 9600: some lines and
    /// remote machines train at V.17 but lose pages in it (per-retry option
    /// `disable_v17_after_retry`).
    pub v17: bool,
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
            v17: true,
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

/// Which procedure a receiver state belongs to: the phase its node sits in (T.30 §2). A
/// receiver's node F and node III serve phases B and D alike; this says which, and so whether a
/// damaged command is a post-message command to ask again for (CRP, T.30 §5.3.6.1.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Phase B: identification, DCS, training.
    PreMessage,
    /// Phase C: page data was expected.
    Message,
    /// Phase D: the post-message exchange (and the Annex A PPS exchange).
    PostMessage,
}

impl Stage {
    fn phase(self) -> Phase {
        match self {
            Stage::PreMessage => Phase::B,
            Stage::Message => Phase::C,
            Stage::PostMessage => Phase::D,
        }
    }
}

/// A non-ECM page under transmission (nodes I and II).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sheet {
    /// The command that ends it.
    post: PostMsg,
    /// Coded size, for the call report.
    bytes: usize,
}

/// An ECM page under transmission (Annex A): the coded page and the block being corrected.
struct EcmTx {
    /// The coded page.
    data: Vec<u8>,
    /// The command that ends the page (sent inside the last block's PPS).
    post: PostMsg,
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

impl EcmTx {
    /// The block starting at `start` becomes the current one, every frame to send.
    fn next_block(&mut self, start: usize) {
        self.block_start = start;
        let left = self.data.len().saturating_sub(start);
        self.block_frames = left.div_ceil(self.frame_size).clamp(1, 256);
        self.to_send = (0..self.block_frames).collect();
        self.pprs = 0;
        self.rnr_since = None;
    }

    fn block_is_last(&self) -> bool {
        self.block_start + self.block_frames * self.frame_size >= self.data.len()
    }
}

/// The PPS being answered (Annex A.4.1): post-message octet, page, block, frame count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pps {
    post: u8,
    page: u8,
    block: u8,
    count: usize,
}

/// The engine's state: the T.30 flow-chart node ([`State`] names it) with the data that node
/// needs. The phase is a function of it ([`Engine::phase`]), so the two cannot disagree.
enum Step {
    /// Not started yet (phase A: the modem layer sets the call up).
    Idle,
    // ----- transmitter -----
    /// Node T: waiting for DIS (T1).
    WaitDis,
    /// Node D: DCS and TCF going out; `tries` repeats of the DCS so far.
    SendDcs { tries: u32 },
    /// Node D: waiting for CFR/FTT (T4).
    WaitCfr { tries: u32 },
    /// Node I: page data going out.
    SendPage(Sheet),
    /// Node II: the post-message command going out.
    SendPostMsg { sheet: Sheet, tries: u32 },
    /// Node II: waiting for MCF/RTP/RTN (T4).
    WaitPostResp { sheet: Sheet, tries: u32 },
    /// Annex A node IV: an ECM block going out.
    SendBlock(Box<EcmTx>),
    /// Annex A: PPS-x going out.
    SendPps { ecm: Box<EcmTx>, tries: u32 },
    /// Annex A: waiting for the PPS response (T4).
    WaitPpsResp { ecm: Box<EcmTx>, tries: u32 },
    /// Annex A: RR sent after RNR, waiting.
    WaitRnr { ecm: Box<EcmTx>, tries: u32 },
    /// Annex A: CTC sent, waiting for CTR.
    WaitCtr { ecm: Box<EcmTx>, tries: u32 },
    /// Node B: DCN going out, then hang up.
    Release,
    // ----- receiver (and the polled transmitter's phase B) -----
    /// Node R: NSF/CSI/DIS (or NSC/CIG/DTC) going out.
    SendDis,
    /// Node F: waiting for a command.
    Listen(Stage),
    /// Receiving TCF: the current and the longest run of zero octets so far.
    Tcf { stage: Stage, run: u64, best: u64 },
    /// Sending CFR or FTT.
    TrainResponse { stage: Stage, after: After },
    /// Receiving non-ECM page data.
    PageData,
    /// Receiving an ECM block.
    BlockData,
    /// Node III: a response going out.
    Respond { stage: Stage, after: After },
    /// After MCF to EOP: waiting for DCN.
    WaitDcn(Stage),
    /// Call over.
    Done,
}

impl Step {
    /// The flow-chart node (`role` names the node before the start).
    fn node(&self, role: Role) -> State {
        match self {
            Step::Idle if role.is_calling() => State::T,
            Step::Idle => State::R,
            Step::WaitDis => State::T,
            Step::SendDcs { .. } => State::D,
            Step::WaitCfr { .. } => State::DPostTcf,
            Step::SendPage(_) => State::I,
            Step::SendPostMsg { .. } => State::II,
            Step::WaitPostResp { .. } => State::IIQ,
            Step::SendBlock(_) => State::IV,
            Step::SendPps { .. } => State::IVPps,
            Step::WaitPpsResp { .. } => State::IVPpsQ,
            Step::WaitRnr { .. } => State::IVPpsRnr,
            Step::WaitCtr { .. } => State::IVCtc,
            Step::Release => State::B,
            Step::SendDis => State::R,
            Step::Listen(_) => State::F,
            Step::Tcf { .. } => State::FTcf,
            Step::TrainResponse { .. } => State::FTrainResponse,
            Step::PageData => State::FDocNonEcm,
            Step::BlockData => State::FDocEcm,
            Step::Respond { .. } => State::III,
            Step::WaitDcn(_) => State::FEnd,
            Step::Done => State::CallFinished,
        }
    }

    /// T.30 §2: the phase this state belongs to.
    fn phase(&self) -> Phase {
        match self {
            Step::Idle => Phase::A,
            Step::WaitDis | Step::SendDcs { .. } | Step::WaitCfr { .. } | Step::SendDis => Phase::B,
            // Annex A: the FCD frames of a block, first or corrected, are phase C.
            Step::SendPage(_) | Step::SendBlock(_) | Step::PageData | Step::BlockData => Phase::C,
            Step::SendPostMsg { .. }
            | Step::WaitPostResp { .. }
            | Step::SendPps { .. }
            | Step::WaitPpsResp { .. }
            | Step::WaitRnr { .. }
            | Step::WaitCtr { .. } => Phase::D,
            Step::Listen(stage)
            | Step::Tcf { stage, .. }
            | Step::TrainResponse { stage, .. }
            | Step::Respond { stage, .. }
            | Step::WaitDcn(stage) => stage.phase(),
            Step::Release => Phase::E,
            Step::Done => Phase::CallDone,
        }
    }
}

/// The transmitter's data for the whole call.
struct Tx {
    source: Box<dyn PageSource + Send>,
    /// The page being sent (0-based); its low octet is the Annex A page counter.
    page: usize,
    /// Fallback ladder: highest modulation to try next.
    rung: Modulation,
    /// RTN answers to the current page so far.
    rtn_for_page: u32,
}

/// The receiver's data for the whole call.
struct Rx {
    sink: Box<dyn PageSink + Send>,
    /// Training of the next high-speed reception (V.17: long after DCS and CTC).
    training: Training,
    /// Bytes of the page being received, once its first data came.
    page: Option<usize>,
    /// The response last sent and where it led (repeated when the command is).
    last_response: Option<(Frame, After)>,
    /// The post-message command last answered (non-ECM), to tell a repeat from a new one.
    last_post: Option<PostMsg>,
    /// ECM frames of the block being received, by frame number.
    frames: Vec<Option<Vec<u8>>>,
    /// (page, block) of the last block accepted with MCF: a repeated PPS for it gets MCF again.
    last_accepted: Option<(u8, u8)>,
    /// The PPS being answered.
    pending: Option<Pps>,
    /// The local side asked for a procedure interrupt (PIP/PIN at the next page end).
    interrupt: bool,
    /// A PIP/PIN was sent: the call ends as [`Cause::Interrupted`].
    interrupted: bool,
}

/// Which way the document goes, with that side's data.
enum Side {
    Send(Tx),
    Receive(Rx),
}

/// The line as the engine sees it: commands queued and the reception in progress.
struct Link {
    commands: VecDeque<Command>,
    /// Transmit commands issued and not yet reported `Sent`.
    outstanding: usize,
    /// The reception in progress.
    reception: Option<Reception>,
    /// Frames of the current V.21 transmission, collected until the final one.
    frames: Vec<Frame>,
    /// A frame of the current V.21 reception was damaged.
    bad: bool,
    /// The last command frames sent (for repeats and CRP).
    last_sent: Vec<Frame>,
}

/// One reception in progress.
#[derive(Debug, Clone, Copy)]
struct Reception {
    /// V.21 HDLC frames (else high-speed data: TCF, a page or an ECM block).
    hdlc: bool,
    /// When the wait ends: first for the carrier, then for the carrier's end.
    deadline: Duration,
}

impl Reception {
    /// How long the carrier may last once detected.
    fn carrier_max(self) -> Duration {
        if self.hdlc {
            FRAMES_CARRIER_MAX
        } else {
            DATA_CARRIER_MAX
        }
    }
}

/// One T.30 call. See the module docs for the call order.
pub struct Engine {
    cfg: EngineConfig,
    role: Role,
    ours: Capabilities,
    side: Side,
    state: Step,
    link: Link,
    started: Option<Duration>,
    /// End of T1 (phase B entry).
    t1_end: Option<Duration>,
    remote: Option<Capabilities>,
    /// The DCS in force (sent or received).
    dcs: Option<Dcs>,
    /// A DCS (or, polled, a DTC) came since the last DIS: the call is past identification.
    got_dcs: bool,
    report: CallReport,
    /// Set while a modem that runs T.30 itself carries the call ([`Engine::hand_over`]).
    handed_over: Option<Progress>,
}

/// The engine's pages, lent to a modem that runs T.30 itself (Class 2.0, ITU-T T.32): the
/// modem layer moves them and writes the report back with [`Engine::finish_handed_over`].
pub enum HandedOver<'a> {
    /// Pages to send (the sending roles).
    Send(&'a mut (dyn PageSource + Send)),
    /// Where received pages go (the receiving roles).
    Receive(&'a mut (dyn PageSink + Send)),
}

impl Engine {
    /// A calling engine that sends the pages of `source`.
    pub fn sender(cfg: EngineConfig, source: Box<dyn PageSource + Send>) -> Engine {
        Engine::new(cfg, Role::CallingSender, Side::send(source))
    }

    /// An answering engine that receives into `sink`.
    pub fn receiver(cfg: EngineConfig, sink: Box<dyn PageSink + Send>) -> Engine {
        Engine::new(cfg, Role::AnsweringReceiver, Side::receive(sink))
    }

    /// A calling engine that polls the remote for its document and receives it into `sink`.
    pub fn poller(cfg: EngineConfig, sink: Box<dyn PageSink + Send>) -> Engine {
        Engine::new(cfg, Role::CallingReceiver, Side::receive(sink))
    }

    /// An answering engine that offers `source` for polling and sends it when asked by DTC.
    pub fn polled_sender(cfg: EngineConfig, source: Box<dyn PageSource + Send>) -> Engine {
        Engine::new(cfg, Role::AnsweringSender, Side::send(source))
    }

    fn new(cfg: EngineConfig, role: Role, mut side: Side) -> Engine {
        let mut ours = Capabilities::ours(cfg.max_bps, cfg.ecm);
        // DIS/DCS bits 11–14 (T.30 Table 2): without V.17 the ladder starts at V.29.
        ours.modems.v17 &= cfg.v17;
        ours.mr = cfg.max_coding >= Coding::Mr;
        ours.mmr = cfg.ecm && cfg.max_coding == Coding::Mmr;
        ours.scan_time.standard_ms = cfg.scan_time_ms;
        // Polling (T.30 §5.3.6.1.2): the polled side offers a document instead of a receiver.
        ours.ready_to_transmit = role == Role::AnsweringSender;
        ours.can_receive = !role.is_sender();
        if let Side::Send(tx) = &mut side {
            tx.rung = Modulation::LADDER
                .iter()
                .copied()
                .find(|m| m.bps() <= cfg.max_bps && ours.modems.has(*m))
                .unwrap_or(Modulation::V27ter2400);
        }
        Engine {
            ours,
            role,
            side,
            state: Step::Idle,
            link: Link {
                commands: VecDeque::new(),
                outstanding: 0,
                reception: None,
                frames: Vec::new(),
                bad: false,
                last_sent: Vec::new(),
            },
            started: None,
            t1_end: None,
            remote: None,
            dcs: None,
            got_dcs: false,
            report: CallReport::default(),
            handed_over: None,
            cfg,
        }
    }

    /// The call's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Hands the call to a modem that runs T.30 itself (Class 2.0): the settings and the pages.
    /// From now on [`Engine::progress`] shows what [`Engine::set_handed_over_progress`] last
    /// set, and the engine issues no commands until [`Engine::finish_handed_over`].
    pub fn hand_over(&mut self) -> (&EngineConfig, HandedOver<'_>) {
        self.handed_over.get_or_insert(Progress {
            activity: Activity::Starting,
            page: None,
            pages_total: None,
            modulation: None,
            remote_id: None,
        });
        let pages = match &mut self.side {
            Side::Send(tx) => HandedOver::Send(tx.source.as_mut()),
            Side::Receive(rx) => HandedOver::Receive(rx.sink.as_mut()),
        };
        (&self.cfg, pages)
    }

    /// What a handed-over call is doing now (for status displays).
    pub fn set_handed_over_progress(&mut self, p: Progress) {
        self.handed_over = Some(p);
    }

    /// A handed-over call ended: `report` (its cause set) becomes the engine's report and the
    /// engine is finished.
    pub fn finish_handed_over(&mut self, report: CallReport) {
        self.report = report;
        self.link.commands.clear();
        self.end_receive();
        self.state = Step::Done;
        if let Some(p) = self.handed_over.as_mut() {
            p.activity = Activity::Finished;
        }
    }

    /// Starts the call at `now` (phase B begins: T1 starts).
    pub fn start(&mut self, now: Duration) {
        if self.started.is_some() {
            return;
        }
        self.started = Some(now);
        self.t1_end = Some(now + self.cfg.timers.t1);
        if self.role.is_sender() && self.source_pages() == 0 {
            self.finish(now, Cause::DocumentError);
            return;
        }
        if self.role.is_calling() {
            self.state = Step::WaitDis;
            self.receive_frames(now, self.cfg.timers.t1);
        } else {
            self.send_dis();
        }
    }

    /// The next command for the line, in order.
    pub fn next_command(&mut self) -> Option<Command> {
        self.link.commands.pop_front()
    }

    /// When [`Engine::handle_timeout`] should be called, if the engine is waiting.
    pub fn poll_at(&self) -> Option<Duration> {
        self.link.reception.map(|r| r.deadline)
    }

    /// The current phase, derived from the state (T.30 §2).
    pub fn phase(&self) -> Phase {
        self.state.phase()
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state.node(self.role)
    }

    /// This engine's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether the call is over (the engine has issued [`Command::HangUp`]).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, Step::Done)
    }

    /// The call report (final once [`Engine::is_finished`]).
    pub fn report(&self) -> &CallReport {
        &self.report
    }

    /// The remote's capabilities (its DIS or DTC), once received.
    pub fn remote_capabilities(&self) -> Option<&Capabilities> {
        self.remote.as_ref()
    }

    /// The DCS in force, if any.
    pub fn dcs(&self) -> Option<&Dcs> {
        self.dcs.as_ref()
    }

    /// What the call is doing now, for status displays ([`Progress`]). Cheap (no page data is
    /// touched): a driver may take it after every event and report only the changes.
    pub fn progress(&self) -> Progress {
        if let Some(p) = &self.handed_over {
            return p.clone();
        }
        let activity = match &self.state {
            Step::Idle => Activity::Starting,
            Step::WaitDis | Step::SendDis => Activity::Negotiating,
            Step::SendDcs { .. }
            | Step::WaitCfr { .. }
            | Step::Tcf { .. }
            | Step::TrainResponse { .. } => Activity::Training,
            // A receiver back at node F in phase B has seen a DCS when it trains again (FTT).
            Step::Listen(Stage::PreMessage)
            | Step::Respond {
                stage: Stage::PreMessage,
                ..
            } => {
                if self.got_dcs {
                    Activity::Training
                } else {
                    Activity::Negotiating
                }
            }
            Step::SendPage(_) | Step::SendBlock(_) => Activity::SendingPage,
            Step::PageData
            | Step::BlockData
            | Step::Listen(Stage::Message)
            | Step::Respond {
                stage: Stage::Message,
                ..
            } => Activity::ReceivingPage,
            Step::SendPostMsg { .. }
            | Step::WaitPostResp { .. }
            | Step::SendPps { .. }
            | Step::WaitPpsResp { .. }
            | Step::WaitRnr { .. }
            | Step::WaitCtr { .. }
            | Step::Listen(Stage::PostMessage)
            | Step::Respond {
                stage: Stage::PostMessage,
                ..
            } => Activity::Confirming,
            Step::Release | Step::WaitDcn(_) => Activity::Releasing,
            Step::Done => Activity::Finished,
        };
        let (page, pages_total) = match &self.side {
            Side::Send(tx) => {
                let total = tx.source.page_count();
                // The first page's number shows from its phase C on (training comes before it).
                let begun = !self.report.pages.is_empty()
                    || tx.page > 0
                    || matches!(self.state.phase(), Phase::C | Phase::D);
                let page = (begun && total > 0).then(|| (tx.page + 1).min(total));
                (page, Some(total))
            }
            Side::Receive(rx) => {
                let done = self.report.pages_confirmed();
                let busy = rx.page.is_some() || activity == Activity::ReceivingPage;
                let n = done + usize::from(busy);
                ((n > 0).then_some(n), None)
            }
        };
        Progress {
            activity,
            page,
            pages_total,
            modulation: self.dcs.map(|d| d.modulation),
            remote_id: self.report.remote_id.clone(),
        }
    }

    /// Time passes: if the deadline of the current wait has come, acts on it.
    pub fn handle_timeout(&mut self, now: Duration) {
        if let Some(d) = self.poll_at()
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
        if let Side::Receive(rx) = &mut self.side {
            rx.interrupt = true;
        }
    }

    /// Aborts the call locally (shutdown): DCN, then hang up.
    pub fn abort(&mut self, now: Duration) {
        if !self.is_finished() {
            self.link.commands.clear();
            self.link.outstanding = 0;
            self.end_receive();
            self.send_dcn(now, Cause::LocalAbort);
        }
    }

    fn end_receive(&mut self) {
        self.link.reception = None;
    }

    fn receiving(&self) -> bool {
        self.link.reception.is_some()
    }

    /// Feeds one event from the line at `now`. Events that make no sense now (a frame when
    /// nothing is being received, a second `Sent`) are ignored.
    pub fn handle(&mut self, event: Event, now: Duration) {
        if self.is_finished() {
            return;
        }
        match event {
            Event::Sent => {
                if self.link.outstanding == 0 {
                    return;
                }
                self.link.outstanding -= 1;
                if self.link.outstanding == 0 {
                    self.on_sent(now);
                }
            }
            Event::CarrierLost => {
                self.link.commands.clear();
                self.link.outstanding = 0;
                self.end_receive();
                let cause = self.cause_for_drop(Cause::CarrierLost);
                self.finish(now, cause);
            }
            Event::Connect => {
                // Carrier detected: the wait for it is over; the receive runs to its end — but
                // not forever: a carrier that never drops (a broken or hostile far end) ends
                // the reception as if nothing had come, and the state's timer logic goes on.
                if let Some(r) = self.link.reception.as_mut() {
                    r.deadline = now + r.carrier_max();
                }
            }
            Event::Frame(f) => {
                let Some(reception) = self.link.reception else {
                    return; // a stray frame
                };
                if matches!(self.state, Step::BlockData) {
                    self.on_ecm_frame(f);
                    return;
                }
                if !reception.hdlc {
                    // HDLC frames while TCF or non-ECM page data is expected: not what this
                    // receive can carry (a confused driver or far end); ignore them.
                    return;
                }
                let last = f.is_final();
                // Bounded: a V.21 transmission is a handful of frames (T.30 §5.3.6); keep the
                // first 15 and always the final one.
                if last || self.link.frames.len() < 15 {
                    self.link.frames.push(f);
                }
                if last {
                    self.end_receive();
                    let frames = std::mem::take(&mut self.link.frames);
                    self.link.bad = false;
                    self.on_frames(frames, now);
                }
            }
            Event::BadFrame => {
                if self.receiving() {
                    self.link.bad = true;
                }
            }
            Event::Data(bytes) => {
                if self.receiving() {
                    self.on_data(&bytes, now);
                }
            }
            Event::CarrierEnd => {
                if !self.receiving() {
                    return;
                }
                self.end_receive();
                self.on_carrier_end(now);
            }
            Event::WrongCarrier => {
                if !self.receiving() {
                    return;
                }
                self.end_receive();
                // +FCERROR: V.21 came instead of high speed — the remote repeated a command.
                match self.state {
                    Step::Tcf { stage, .. } => self.listen(now, stage),
                    Step::PageData | Step::BlockData => self.listen(now, Stage::Message),
                    _ => self.on_timeout(now),
                }
            }
            Event::Timeout => {
                if self.receiving() {
                    self.end_receive();
                    self.on_timeout(now);
                }
            }
        }
    }

    // ----- plumbing -------------------------------------------------------------------------

    /// The state, taken out to move its data into the next one; the caller sets the next.
    fn take_state(&mut self) -> Step {
        std::mem::replace(&mut self.state, Step::Done)
    }

    fn source_pages(&self) -> usize {
        match &self.side {
            Side::Send(tx) => tx.source.page_count(),
            Side::Receive(_) => 0,
        }
    }

    fn transmit(&mut self, c: Command) {
        if let Command::SendFrames(f) = &c {
            self.link.last_sent = f.clone();
        }
        self.link.outstanding += 1;
        self.link.commands.push_back(c);
    }

    fn receive_frames(&mut self, now: Duration, timeout: Duration) {
        self.link.frames.clear();
        self.link.bad = false;
        self.link.reception = Some(Reception {
            hdlc: true,
            deadline: now + timeout,
        });
        self.link
            .commands
            .push_back(Command::ReceiveFrames { timeout });
    }

    fn receive_data(&mut self, now: Duration, kind: DataKind, timeout: Duration) {
        let modulation = self.modulation();
        let training = match (&self.side, kind) {
            (_, DataKind::Tcf) => Training::Long,
            (Side::Receive(rx), _) => rx.training,
            (Side::Send(_), _) => Training::Short,
        };
        self.link.reception = Some(Reception {
            hdlc: false,
            deadline: now + timeout,
        });
        self.link.commands.push_back(Command::ReceiveData {
            modulation,
            training,
            kind,
            timeout,
        });
    }

    /// Node F: wait for a command for T2.
    fn listen(&mut self, now: Duration, stage: Stage) {
        self.state = Step::Listen(stage);
        self.receive_frames(now, self.cfg.timers.t2);
    }

    fn frame(&self, fcf: Fcf, fif: &[u8]) -> Frame {
        // T.30 §5.3.6.1: X = 1 in frames from the station that received DIS (the caller).
        Frame::new(fcf, self.role.is_calling(), fif, false)
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
        self.link.commands.push_back(Command::HangUp);
        self.end_receive();
        self.state = Step::Done;
    }

    /// Phase E: DCN (T.30 §5.3.6.1.7), then hang up with `cause`.
    fn send_dcn(&mut self, _now: Duration, cause: Cause) {
        self.state = Step::Release;
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

    fn interrupted(&self) -> bool {
        matches!(&self.side, Side::Receive(rx) if rx.interrupted)
    }

    fn on_sent(&mut self, now: Duration) {
        match self.take_state() {
            Step::SendDcs { tries } => {
                self.state = Step::WaitCfr { tries };
                self.receive_frames(now, self.cfg.timers.t4);
            }
            Step::SendPage(sheet) => {
                // Page data is out: 75 ms, then the post-message command (node II).
                self.state = Step::SendPostMsg { sheet, tries: 0 };
                let f = self.frame(sheet.post.fcf(), &[]);
                self.transmit(Command::Silence(GAP));
                self.send_frames(vec![f]);
            }
            Step::SendPostMsg { sheet, tries } => {
                self.state = Step::WaitPostResp { sheet, tries };
                self.receive_frames(now, self.cfg.timers.t4);
            }
            Step::SendBlock(ecm) => self.send_pps(ecm),
            Step::SendPps { ecm, tries } => {
                self.state = Step::WaitPpsResp { ecm, tries };
                self.receive_frames(now, self.cfg.timers.t4);
            }
            s @ (Step::WaitRnr { .. } | Step::WaitCtr { .. }) => {
                self.state = s;
                self.receive_frames(now, self.cfg.timers.t4);
            }
            Step::Release => {
                let cause = self.report.cause.unwrap_or(Cause::Ok);
                self.finish(now, cause);
            }
            Step::SendDis => {
                let t1_left = self
                    .t1_end
                    .map(|e| e.saturating_sub(now))
                    .unwrap_or(self.cfg.timers.t4);
                let wait = self
                    .cfg
                    .timers
                    .t4
                    .min(t1_left.max(Duration::from_millis(1)));
                self.state = Step::Listen(Stage::PreMessage);
                self.receive_frames(now, wait);
            }
            Step::TrainResponse { stage, after } | Step::Respond { stage, after } => {
                self.go_after(now, stage, after)
            }
            s => self.state = s,
        }
    }

    fn go_after(&mut self, now: Duration, stage: Stage, after: After) {
        match after {
            After::Command => {
                // After FTT, RTN or RTP the next command is a DCS: back in phase B (T.30
                // Figure 5-2b); after RNR, ERR or CRP the post-message exchange goes on.
                let last = self.link.last_sent.last().and_then(Frame::fcf);
                let stage = if matches!(last, Some(Fcf::Ftt | Fcf::Rtn | Fcf::Rtp)) {
                    Stage::PreMessage
                } else {
                    stage
                };
                self.listen(now, stage);
            }
            After::Data(kind) => {
                self.state = if kind == DataKind::EcmFrames {
                    Step::BlockData
                } else {
                    // A page that began and was not ended counts afresh.
                    if let Side::Receive(Rx {
                        page: Some(bytes), ..
                    }) = &mut self.side
                    {
                        *bytes = 0;
                    }
                    Step::PageData
                };
                self.receive_data(now, kind, self.cfg.timers.t2);
            }
            After::PhaseB => {
                self.t1_end = Some(now + self.cfg.timers.t1);
                self.got_dcs = false;
                self.send_dis();
            }
            After::End => {
                self.state = Step::WaitDcn(stage);
                self.receive_frames(now, self.cfg.timers.t4);
            }
        }
    }

    fn on_timeout(&mut self, now: Duration) {
        match self.take_state() {
            Step::WaitDis => self.finish(now, Cause::T1Expired),
            Step::WaitCfr { tries } => self.repeat_dcs(now, tries),
            Step::WaitPostResp { sheet, tries } => {
                self.repeat_frames(now, tries, |tries| Step::SendPostMsg { sheet, tries })
            }
            Step::WaitPpsResp { ecm, tries } => {
                self.repeat_frames(now, tries, |tries| Step::SendPps { ecm, tries })
            }
            Step::WaitRnr { ecm, tries } => {
                self.repeat_frames(now, tries, |tries| Step::WaitRnr { ecm, tries })
            }
            Step::WaitCtr { ecm, tries } => {
                self.repeat_frames(now, tries, |tries| Step::WaitCtr { ecm, tries })
            }
            s @ Step::Listen(_) => {
                self.state = s;
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
            // No high-speed carrier: the remote may be repeating a command; listen for it.
            Step::Tcf { stage, .. } => self.listen(now, stage),
            Step::PageData | Step::BlockData => self.listen(now, Stage::Message),
            Step::WaitDcn(_) => {
                // T.30: the receiver releases the call anyway after MCF to EOP.
                let cause = if self.interrupted() {
                    Cause::Interrupted
                } else {
                    Cause::Ok
                };
                self.finish(now, cause);
            }
            s => self.state = s,
        }
    }

    /// DCS unanswered (or answered DIS/CRP) for the `tries`-th time: again, or give up.
    fn repeat_dcs(&mut self, now: Duration, tries: u32) {
        if tries >= MAX_REPEATS {
            self.send_dcn(now, Cause::NoResponse);
        } else {
            self.send_dcs(now, tries + 1);
        }
    }

    /// The last command frames unanswered for the `tries`-th time: send them again in the
    /// state `then` makes, or give up.
    fn repeat_frames(&mut self, now: Duration, tries: u32, then: impl FnOnce(u32) -> Step) {
        if tries >= MAX_REPEATS {
            self.send_dcn(now, Cause::NoResponse);
            return;
        }
        self.state = then(tries + 1);
        let f = self.link.last_sent.clone();
        self.transmit(Command::SendFrames(f));
    }

    // ----- transmitter (calling, sending) ---------------------------------------------------

    fn tx(&mut self) -> &mut Tx {
        match &mut self.side {
            Side::Send(tx) => tx,
            Side::Receive(_) => unreachable!("sender handlers run only on sending engines"),
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
                self.send_dcs(now, 0);
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

    /// Node D: TSI (SUB, SID, PWD) DCS, 75 ms, TCF; `tries` repeats of it so far.
    fn send_dcs(&mut self, now: Duration, tries: u32) {
        let Some(remote) = self.remote.clone() else {
            return;
        };
        let tx = self.tx();
        let (wanted, rung) = (tx.source.wanted(tx.page), tx.rung);
        let mut dcs = match choose_dcs(&self.ours, &remote, wanted, rung) {
            Ok(d) => d,
            Err(_) => {
                self.send_dcn(now, Cause::Incompatible);
                return;
            }
        };
        dcs.frame_64 = dcs.ecm && self.cfg.ecm_frame_64;
        self.tx().rung = dcs.modulation;
        self.dcs = Some(dcs);
        self.state = Step::SendDcs { tries };
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

    /// The next rung of the fallback ladder both sides have, below the current one.
    fn lower_rung(&mut self) -> Option<Modulation> {
        let rung = self.tx().rung;
        Modulation::LADDER
            .iter()
            .copied()
            .filter(|m| *m < rung)
            .find(|m| {
                self.ours.modems.has(*m) && self.remote.as_ref().is_some_and(|r| r.modems.has(*m))
            })
    }

    /// Node D, "response received?": CFR → phase C; FTT → a lower rung; DIS → DCS again.
    fn d_on_frames(&mut self, f: &Frame, now: Duration, tries: u32) {
        match f.fcf() {
            Some(Fcf::Cfr) => self.start_page(now),
            Some(Fcf::Ftt) => {
                self.report.ftt_count += 1;
                match self.lower_rung() {
                    Some(m) if self.report.ftt_count < self.cfg.max_ftt => {
                        self.tx().rung = m;
                        self.send_dcs(now, 0);
                    }
                    _ => self.send_dcn(now, Cause::TrainingFailed),
                }
            }
            // Our DCS was lost and the remote repeated DIS/DTC (T.30 Figure 5-2a), or asked
            // for it again.
            Some(Fcf::Dis | Fcf::Dtc | Fcf::Crp) => self.repeat_dcs(now, tries),
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

    /// Phase C entry for the current page: code it (afresh: the mode may have changed the
    /// coding or the minimum line length), then node I or IV.
    fn start_page(&mut self, now: Duration) {
        let n = self.source_pages();
        let coding = self.coding();
        let tx = self.tx();
        let last = tx.page + 1 >= n;
        let ends_doc = last || tx.source.ends_document(tx.page);
        let post = if last {
            PostMsg::Eop
        } else if ends_doc {
            PostMsg::Eom
        } else {
            PostMsg::Mps
        };
        let Ok(data) = tx.source.encode(tx.page, &coding) else {
            self.send_dcn(now, Cause::DocumentError);
            return;
        };
        if coding.ecm {
            let mut ecm = Box::new(EcmTx {
                data,
                post,
                frame_size: if self.dcs.is_some_and(|d| d.frame_64) {
                    64
                } else {
                    256
                },
                block_start: 0,
                block_frames: 0,
                block_no: 0,
                to_send: Vec::new(),
                pprs: 0,
                rnr_since: None,
            });
            ecm.next_block(0);
            self.send_block(ecm, Training::Short);
        } else {
            let sheet = Sheet {
                post,
                bytes: data.len(),
            };
            self.state = Step::SendPage(sheet);
            self.transmit(Command::Silence(GAP));
            self.transmit(Command::SendPage {
                modulation: self.modulation(),
                // TCF has just trained the receiver at this rate (V.17; V.27 ter and V.29
                // have one training).
                training: Training::Short,
                data,
            });
        }
    }

    fn record_sent_page(&mut self, outcome: PageOutcome, bytes: usize) {
        let page = self.tx().page;
        self.report.pages.push(PageRecord {
            page,
            outcome,
            quality: None,
            modulation: self.modulation(),
            bytes,
        });
    }

    /// Node II, "response received?" (non-ECM).
    fn ii_on_frames(&mut self, f: &Frame, now: Duration, sheet: Sheet, tries: u32) {
        match f.fcf() {
            Some(Fcf::Mcf) => {
                self.record_sent_page(PageOutcome::Confirmed, sheet.bytes);
                self.page_done(now, sheet.post, false);
            }
            Some(Fcf::Rtp) => {
                self.record_sent_page(PageOutcome::ConfirmedRetrain, sheet.bytes);
                self.page_done(now, sheet.post, true);
            }
            Some(Fcf::Rtn) => {
                self.record_sent_page(PageOutcome::Rejected, sheet.bytes);
                let tx = self.tx();
                tx.rtn_for_page += 1;
                if tx.rtn_for_page > self.cfg.max_rtn_per_page {
                    self.send_dcn(now, Cause::PageRejected);
                } else {
                    // T.30 §5.3.6.1.5: retrain (phase B, DCS + TCF), then send the page again.
                    self.send_dcs(now, 0);
                }
            }
            Some(Fcf::Pip) => {
                self.record_sent_page(PageOutcome::Confirmed, sheet.bytes);
                self.send_dcn(now, Cause::Interrupted);
            }
            Some(Fcf::Pin) => {
                self.record_sent_page(PageOutcome::Rejected, sheet.bytes);
                self.send_dcn(now, Cause::Interrupted);
            }
            Some(Fcf::Crp) => {
                self.repeat_frames(now, tries, |tries| Step::SendPostMsg { sheet, tries })
            }
            Some(Fcf::Dcn) => self.finish(now, Cause::UnexpectedDcn),
            _ => self.send_dcn(now, Cause::ProtocolError),
        }
    }

    /// The page ending with `post` was accepted: next page, next document, or release.
    fn page_done(&mut self, now: Duration, post: PostMsg, retrain: bool) {
        self.tx().rtn_for_page = 0;
        match post {
            PostMsg::Eop => self.send_dcn(now, Cause::Ok),
            PostMsg::Mps => {
                self.tx().page += 1;
                if retrain {
                    self.send_dcs(now, 0);
                } else {
                    self.start_page(now);
                }
            }
            PostMsg::Eom => {
                // T.30 §5.3.6.1.4: EOM returns to phase B; the receiver sends DIS again.
                self.tx().page += 1;
                self.state = Step::WaitDis;
                self.t1_end = Some(now + self.cfg.timers.t1);
                self.receive_frames(now, self.cfg.timers.t1);
            }
        }
    }

    // ----- ECM transmitter (Annex A) --------------------------------------------------------

    /// Node IV: 75 ms, then the frames still wanted, then three RCP (Annex A.3.4).
    fn send_block(&mut self, ecm: Box<EcmTx>, training: Training) {
        let mut frames = Vec::with_capacity(ecm.to_send.len() + 3);
        for &i in &ecm.to_send {
            let a = ecm.block_start + i * ecm.frame_size;
            let b = (a + ecm.frame_size).min(ecm.data.len());
            let mut fif = Vec::with_capacity(1 + ecm.frame_size);
            fif.push(i as u8);
            fif.extend_from_slice(&ecm.data[a.min(b)..b]);
            frames.push(Frame::new(Fcf::Fcd, false, &fif, false));
        }
        for _ in 0..3 {
            frames.push(Frame::new(Fcf::Rcp, false, &[], false));
        }
        self.state = Step::SendBlock(ecm);
        let modulation = self.modulation();
        self.transmit(Command::Silence(GAP));
        self.transmit(Command::SendEcmBlock {
            modulation,
            training,
            frames,
        });
    }

    /// PPS-x (Annex A.4.1): FIF = post-message FCF (NULL inside a page), page, block, frames-1.
    fn send_pps(&mut self, ecm: Box<EcmTx>) {
        let post = if ecm.block_is_last() {
            ecm.post.fcf().octet(self.role.is_calling())
        } else {
            0x00
        };
        let fif = [
            post,
            self.tx().page as u8,
            ecm.block_no,
            (ecm.block_frames - 1) as u8,
        ];
        self.state = Step::SendPps { ecm, tries: 0 };
        let f = self.frame(Fcf::Pps, &fif);
        self.transmit(Command::Silence(GAP));
        self.send_frames(vec![f]);
    }

    /// Annex A "response to PPS": MCF, PPR (missing frames), RNR (wait), CTR (after CTC).
    fn iv_on_frames(&mut self, f: &Frame, now: Duration, step: Step) {
        let (mut ecm, tries, wait) = match step {
            Step::WaitPpsResp { ecm, tries } => (ecm, tries, Fcf::Pps),
            Step::WaitRnr { ecm, tries } => (ecm, tries, Fcf::Rr),
            Step::WaitCtr { ecm, tries } => (ecm, tries, Fcf::Ctc),
            s => {
                self.state = s;
                return;
            }
        };
        // Which command is waiting for its response, and so what a repeat sends again.
        let again = move |ecm, tries| match wait {
            Fcf::Rr => Step::WaitRnr { ecm, tries },
            Fcf::Ctc => Step::WaitCtr { ecm, tries },
            _ => Step::SendPps { ecm, tries },
        };
        let ctc = wait == Fcf::Ctc;
        match f.fcf() {
            Some(Fcf::Mcf) if !ctc => {
                if ecm.block_is_last() {
                    let (post, bytes) = (ecm.post, ecm.data.len());
                    self.record_sent_page(PageOutcome::Confirmed, bytes);
                    self.page_done(now, post, false);
                } else {
                    let next = ecm.block_start + ecm.block_frames * ecm.frame_size;
                    ecm.block_no = ecm.block_no.wrapping_add(1);
                    ecm.next_block(next);
                    self.send_block(ecm, Training::Short);
                }
            }
            Some(Fcf::Ppr) if !ctc => {
                self.report.ppr_count += 1;
                ecm.pprs += 1;
                ecm.rnr_since = None;
                let map = f.fif();
                let n = ecm.block_frames;
                // Annex A.4.2: bit i of the 256-bit field (LSB first) set = frame i is wanted.
                let mut wanted: Vec<usize> = (0..n)
                    .filter(|i| map.get(i / 8).is_some_and(|o| o >> (i % 8) & 1 != 0))
                    .collect();
                if wanted.is_empty() {
                    wanted = (0..n).collect();
                }
                ecm.to_send = wanted;
                if ecm.pprs >= PPRS_BEFORE_CTC {
                    self.send_ctc(now, ecm);
                } else {
                    self.send_block(ecm, Training::Short);
                }
            }
            Some(Fcf::Ctr) if ctc => {
                ecm.pprs = 0;
                // The new rate trains afresh (Annex A.4.1).
                self.send_block(ecm, Training::Long);
            }
            Some(Fcf::Rnr) => {
                let since = *ecm.rnr_since.get_or_insert(now);
                if now.saturating_sub(since) >= self.cfg.timers.t5 {
                    self.send_dcn(now, Cause::T5Expired);
                } else {
                    self.state = Step::WaitRnr { ecm, tries: 0 };
                    let f = self.frame(Fcf::Rr, &[]);
                    self.send_frames(vec![f]);
                }
            }
            // The command is asked for again: PPS, RR or CTC, whichever waits.
            Some(Fcf::Crp) => self.repeat_frames(now, tries, |tries| again(ecm, tries)),
            Some(Fcf::Dcn) => self.finish(now, Cause::UnexpectedDcn),
            Some(Fcf::Pip) => {
                self.record_sent_page(PageOutcome::Confirmed, ecm.data.len());
                self.send_dcn(now, Cause::Interrupted);
            }
            Some(Fcf::Pin) => {
                self.record_sent_page(PageOutcome::Rejected, ecm.data.len());
                self.send_dcn(now, Cause::Interrupted);
            }
            _ => self.send_dcn(now, Cause::ProtocolError),
        }
    }

    /// Annex A.4.1: after four PPRs, continue to correct at the next lower rate (CTC, whose
    /// FIF carries DCS octets 1–2 with the new rate in bits 11–14).
    fn send_ctc(&mut self, now: Duration, mut ecm: Box<EcmTx>) {
        let Some(m) = self.lower_rung() else {
            self.send_dcn(now, Cause::EcmFailed);
            return;
        };
        self.tx().rung = m;
        if let Some(d) = self.dcs.as_mut() {
            d.modulation = m;
        }
        self.report.modulation = Some(m);
        self.report.ctc_count += 1;
        ecm.pprs = 0;
        self.state = Step::WaitCtr { ecm, tries: 0 };
        // Annex A: the CTC FIF is DCS octets 1–2 with only bits 11–14 (the new rate) set.
        let fif = self.dcs.map(|d| d.encode()).unwrap_or_default();
        let rate = fif.get(1).map_or(0, |o| o & 0x3C);
        let f = self.frame(Fcf::Ctc, &[0, rate]);
        self.send_frames(vec![f]);
    }

    // ----- receiver (answering) -------------------------------------------------------------

    fn rx(&mut self) -> &mut Rx {
        match &mut self.side {
            Side::Receive(rx) => rx,
            Side::Send(_) => unreachable!("receiver handlers run only on receiving engines"),
        }
    }

    /// The stage of the receiver state in force (phase B before any).
    fn stage(&self) -> Stage {
        match self.state.phase() {
            Phase::C => Stage::Message,
            Phase::D => Stage::PostMessage,
            _ => Stage::PreMessage,
        }
    }

    /// Node R: NSF, CSI, DIS (T.30 Figure 5-2b) — or, for a polling caller, NSC, CIG, DTC
    /// (T.30 §5.3.6.1.2).
    fn send_dis(&mut self) {
        self.state = Step::SendDis;
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
                self.send_dcs(now, 0);
            }
            None => {
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

    /// Node III: send a response, remember it (a repeated command gets it again), then `after`.
    fn respond(&mut self, stage: Stage, fcf: Fcf, fif: &[u8], after: After) {
        let f = self.frame(fcf, fif);
        self.rx().last_response = Some((f.clone(), after));
        self.state = Step::Respond { stage, after };
        self.send_frames(vec![f]);
    }

    /// Sends the last response again (its command came again).
    fn resend(&mut self, f: Frame, after: After) {
        self.state = Step::Respond {
            stage: self.stage(),
            after,
        };
        self.send_frames(vec![f]);
    }

    /// Sends the last response again, or does `otherwise` when there is none.
    fn resend_last(&mut self, now: Duration, otherwise: fn(&mut Engine, Duration)) {
        match self.rx().last_response.clone() {
            Some((f, after)) => self.resend(f, after),
            None => otherwise(self, now),
        }
    }

    /// Node F, "command received": the receiver's one command handler.
    fn f_on_frames(&mut self, frames: Vec<Frame>, now: Duration) {
        let stage = self.stage();
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
                    let rx = self.rx();
                    rx.last_response = None;
                    rx.training = Training::Long;
                    self.state = Step::Tcf {
                        stage,
                        run: 0,
                        best: 0,
                    };
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
                        self.rx().training = Training::Long;
                        self.respond(stage, Fcf::Ctr, &[], After::Data(DataKind::EcmFrames));
                    }
                    _ => self.send_dcn(now, Cause::ProtocolError),
                }
            }
            Some(Fcf::Rr) => {
                // Annex A flow control: RR asks whether we are ready now.
                if !self.rx().sink.ready() {
                    self.respond(stage, Fcf::Rnr, &[], After::Command);
                } else if self.rx().pending.is_some() {
                    self.pending_pps(now);
                } else {
                    self.resend_last(now, |e, now| e.send_dcn(now, Cause::ProtocolError));
                }
            }
            Some(Fcf::Eor) => {
                let rx = self.rx();
                rx.frames.iter_mut().for_each(|f| *f = None);
                rx.pending = None;
                self.respond(stage, Fcf::Err, &[], After::Command);
            }
            Some(Fcf::Dcn) => {
                let cause = if self.interrupted() {
                    Cause::Interrupted
                } else if matches!(self.state, Step::WaitDcn(_)) {
                    Cause::Ok
                } else {
                    self.cause_for_drop(Cause::UnexpectedDcn)
                };
                self.finish(now, cause);
            }
            Some(Fcf::Crp) => self.resend_last(now, |e, _| e.send_dis()),
            // Unknown or irrelevant frames: keep listening while T2 allows.
            _ => self.listen(now, stage),
        }
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
            self.resend_last(now, |e, now| e.send_dcn(now, Cause::ProtocolError));
            return;
        }
        let rx = self.rx();
        let Some(bytes) = rx.page.take() else {
            match rx.last_response.clone() {
                // The same command again with no page between: our response was lost; repeat
                // it (T.30 Figure 5-2b, "command repeated").
                Some((f, after)) if rx.last_post == Some(post) => self.resend(f, after),
                // A different command with no page data: the page never arrived. Refuse it
                // (RTN): the sender retrains and sends it again.
                _ => {
                    rx.last_post = Some(post);
                    let page = self.report.pages_confirmed();
                    self.report.pages.push(PageRecord {
                        page,
                        outcome: PageOutcome::Rejected,
                        quality: Some(Default::default()),
                        modulation: self.modulation(),
                        bytes: 0,
                    });
                    self.respond(Stage::PostMessage, Fcf::Rtn, &[], After::Command);
                }
            }
            return;
        };
        rx.last_post = Some(post);
        let q = rx.sink.end_page();
        let verdict = self.cfg.quality.judge(&q);
        let verdict = self.rx().sink.review(post.fcf(), verdict);
        let accepted = verdict != Verdict::Bad;
        if let Err(_e) = self.rx().sink.finish_page(accepted) {
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
            bytes,
        });
        let rx = self.rx();
        if rx.interrupt {
            // T.30 §5.3.6.1.5: PIP (page good) / PIN (page bad) instead of MCF / RTN.
            rx.interrupt = false;
            rx.interrupted = true;
            let fcf = if accepted { Fcf::Pip } else { Fcf::Pin };
            self.respond(Stage::PostMessage, fcf, &[], After::End);
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
        self.respond(Stage::PostMessage, fcf, &[], after);
    }

    /// High-speed data: TCF (track the longest run of zero octets) or non-ECM page data.
    fn on_data(&mut self, bytes: &[u8], now: Duration) {
        match &mut self.state {
            Step::Tcf { run, best, .. } => {
                for &b in bytes {
                    if b == 0 {
                        *run += 1;
                        *best = (*best).max(*run);
                    } else {
                        *run = 0;
                    }
                }
            }
            Step::PageData => {
                let c = self.coding();
                let max = self.cfg.max_page_bytes;
                let rx = self.rx();
                let page = match rx.page.as_mut() {
                    Some(p) => p,
                    None => {
                        rx.sink.start_page(&c);
                        rx.page.insert(0)
                    }
                };
                *page += bytes.len();
                if *page > max {
                    self.end_receive();
                    self.send_dcn(now, Cause::TooMuchData);
                    return;
                }
                rx.sink.data(bytes);
            }
            _ => {}
        }
    }

    fn on_carrier_end(&mut self, now: Duration) {
        match self.take_state() {
            Step::Tcf { stage, best, .. } => {
                // T.30 §5.3.6.1.3: the receiver judges TCF; ours: a zero run ≥ 1 s.
                let need = u64::from(self.modulation().bps()) / 8
                    * TCF_MIN_ZERO_RUN.as_millis() as u64
                    / 1000;
                if best >= need {
                    let after = After::Data(if self.report.ecm {
                        DataKind::EcmFrames
                    } else {
                        DataKind::Page
                    });
                    self.state = Step::TrainResponse { stage, after };
                    let f = self.frame(Fcf::Cfr, &[]);
                    let rx = self.rx();
                    rx.training = Training::Short;
                    rx.last_response = Some((f.clone(), after));
                    self.send_frames(vec![f]);
                } else {
                    self.state = Step::TrainResponse {
                        stage,
                        after: After::Command,
                    };
                    let f = self.frame(Fcf::Ftt, &[]);
                    self.send_frames(vec![f]);
                }
            }
            // End of page data or of a block; the post-message command (or PPS) follows at
            // V.21 (T2).
            Step::PageData | Step::BlockData => self.listen(now, Stage::PostMessage),
            Step::Listen(stage) => {
                // V.21 carrier ended without a final frame: a damaged command.
                self.state = Step::Listen(stage);
                let damaged = std::mem::take(&mut self.link.bad);
                if damaged && stage == Stage::PostMessage {
                    // Post-message command damaged: ask for it again (CRP, T.30
                    // §5.3.6.1.7); the sender is listening for our response.
                    self.state = Step::Respond {
                        stage,
                        after: After::Command,
                    };
                    let f = self.frame(Fcf::Crp, &[]);
                    self.send_frames(vec![f]);
                } else if damaged || self.got_dcs {
                    // Phase B: a damaged DCS is followed at once by TCF, so a CRP would
                    // collide with it. Stay silent; the sender repeats DCS after T4.
                    self.receive_frames(now, self.cfg.timers.t2);
                } else {
                    self.on_timeout(now);
                }
            }
            Step::WaitDis => {
                // A damaged DIS (or a V.21 burst we could not read) ends no call: the answerer
                // repeats DIS until T1 (T.30 §5.2, Figure 5-2a node T; §5.4.3.1: T1 35 s), so
                // keep listening for what is left of T1 instead of giving up on the first one.
                self.state = Step::WaitDis;
                match self.t1_end.filter(|&end| end > now) {
                    Some(end) => self.receive_frames(now, end - now),
                    None => self.on_timeout(now),
                }
            }
            s => {
                // A damaged response: the transmitter repeats its command.
                self.state = s;
                self.on_timeout(now);
            }
        }
    }

    fn on_ecm_frame(&mut self, f: Frame) {
        if f.fcf() != Some(Fcf::Fcd) {
            return; // RCP ends the block; the carrier's end says so too
        }
        let fif = f.fif();
        let Some((&n, data)) = fif.split_first() else {
            return;
        };
        if data.len() > 256 {
            return;
        }
        let c = self.coding();
        let rx = self.rx();
        if rx.page.is_none() {
            rx.page = Some(0);
            rx.sink.start_page(&c);
        }
        rx.frames[usize::from(n)] = Some(data.to_vec());
    }

    /// Annex A.4.1: PPS-x received: all frames 0..=count there → MCF; else PPR with the map.
    fn on_pps(&mut self, fif: &[u8], now: Duration) {
        if fif.len() < 4 {
            self.send_dcn(now, Cause::ProtocolError);
            return;
        }
        let pps = Pps {
            post: fif[0],
            page: fif[1],
            block: fif[2],
            count: usize::from(fif[3]) + 1,
        };
        let rx = self.rx();
        let fresh = rx.frames.iter().any(Option::is_some);
        if rx.last_accepted == Some((pps.page, pps.block))
            && !fresh
            && let Some((f, after)) = rx.last_response.clone()
        {
            // Our MCF was lost and the PPS repeated: answer it again, keep the data once.
            self.resend(f, after);
            return;
        }
        rx.pending = Some(pps);
        if !rx.sink.ready() {
            self.respond(self.stage(), Fcf::Rnr, &[], After::Command);
            return;
        }
        self.pending_pps(now);
    }

    /// Dispatches a complete V.21 transmission to the handler of the current state.
    fn on_frames(&mut self, frames: Vec<Frame>, now: Duration) {
        // A transmitter's handlers act on the response, the final frame.
        let Some(last) = frames.last() else {
            return; // never: a transmission is complete with its final frame
        };
        match self.take_state() {
            Step::WaitDis => {
                self.state = Step::WaitDis;
                self.t_on_frames(frames, now)
            }
            Step::WaitCfr { tries } => self.d_on_frames(last, now, tries),
            Step::WaitPostResp { sheet, tries } => self.ii_on_frames(last, now, sheet, tries),
            s @ (Step::WaitPpsResp { .. } | Step::WaitRnr { .. } | Step::WaitCtr { .. }) => {
                self.iv_on_frames(last, now, s)
            }
            s @ Step::Listen(_) if self.role.is_sender() => {
                self.state = s;
                self.polled_on_frames(frames, now)
            }
            s @ (Step::Listen(_) | Step::WaitDcn(_)) => {
                self.state = s;
                self.f_on_frames(frames, now)
            }
            s => self.state = s,
        }
    }

    /// Answers the pending PPS: PPR with the map of missing frames, or MCF and the block's
    /// data to the sink (Annex A.4.2).
    fn pending_pps(&mut self, now: Duration) {
        let stage = self.stage();
        let Some(pps) = self.rx().pending else {
            self.listen(now, stage);
            return;
        };
        let max = self.cfg.max_page_bytes;
        let rx = self.rx();
        let missing: Vec<usize> = (0..pps.count).filter(|&i| rx.frames[i].is_none()).collect();
        if !missing.is_empty() {
            self.report.ppr_count += 1;
            let mut map = [0u8; 32];
            for i in missing {
                map[i / 8] |= 1 << (i % 8);
            }
            self.respond(stage, Fcf::Ppr, &map, After::Data(DataKind::EcmFrames));
            return;
        }
        rx.pending = None;
        let mut data = Vec::new();
        for slot in rx.frames.iter_mut() {
            if let Some(f) = slot.take() {
                data.extend_from_slice(&f);
            }
        }
        let page = rx.page.get_or_insert(0);
        *page += data.len();
        if *page > max {
            self.send_dcn(now, Cause::TooMuchData);
            return;
        }
        rx.sink.data(&data);
        rx.last_accepted = Some((pps.page, pps.block));
        if pps.post == 0 {
            // PPS-NULL: more blocks of this page follow.
            self.respond(stage, Fcf::Mcf, &[], After::Data(DataKind::EcmFrames));
            return;
        }
        let after = match Fcf::from_octet(pps.post) {
            Some(Fcf::Mps | Fcf::PriMps) => After::Data(DataKind::EcmFrames),
            Some(Fcf::Eom | Fcf::PriEom) => After::PhaseB,
            Some(Fcf::Eop | Fcf::PriEop) => After::End,
            _ => {
                self.send_dcn(now, Cause::ProtocolError);
                return;
            }
        };
        let rx = self.rx();
        let bytes = rx.page.take().unwrap_or(0);
        let q = rx.sink.end_page();
        // Annex A: the page arrived whole; the sink's view can only delay the MCF.
        let _ = rx
            .sink
            .review(Fcf::from_octet(pps.post).unwrap_or(Fcf::Eop), Verdict::Good);
        if rx.sink.finish_page(true).is_err() {
            self.send_dcn(now, Cause::SinkError);
            return;
        }
        let page_no = self.report.pages_confirmed();
        self.report.pages.push(PageRecord {
            page: page_no,
            outcome: PageOutcome::Confirmed,
            quality: Some(q),
            modulation: self.modulation(),
            bytes,
        });
        let rx = self.rx();
        if rx.interrupt {
            rx.interrupt = false;
            rx.interrupted = true;
            self.respond(Stage::PostMessage, Fcf::Pip, &[], After::End);
            return;
        }
        self.respond(Stage::PostMessage, Fcf::Mcf, &[], after);
    }
}

impl Side {
    fn send(source: Box<dyn PageSource + Send>) -> Side {
        Side::Send(Tx {
            source,
            page: 0,
            rung: Modulation::V27ter2400,
            rtn_for_page: 0,
        })
    }

    fn receive(sink: Box<dyn PageSink + Send>) -> Side {
        Side::Receive(Rx {
            sink,
            training: Training::Long,
            page: None,
            last_response: None,
            last_post: None,
            frames: vec![None; 256],
            last_accepted: None,
            pending: None,
            interrupt: false,
            interrupted: false,
        })
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

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn one_page_sender(ecm: bool) -> Engine {
        let mut page =
            crate::image::Page::new(1728, 40, crate::image::Resolution::STANDARD).unwrap();
        for y in 0..40 {
            page.set(100 + y * 7, y, true);
        }
        let cfg = EngineConfig {
            ecm,
            ..EngineConfig::default()
        };
        let source = crate::fax::t30::pages::PagesSource::new(vec![vec![page]]);
        Engine::sender(cfg, Box::new(source))
    }

    /// Acknowledges the transmit commands queued now; returns the FCFs of the frames sent.
    fn sent(e: &mut Engine, now: Duration) -> Vec<Fcf> {
        let queued: Vec<Command> = std::iter::from_fn(|| e.next_command()).collect();
        let mut fcfs = Vec::new();
        for c in queued {
            match c {
                Command::ReceiveFrames { .. } | Command::ReceiveData { .. } | Command::HangUp => {}
                c => {
                    if let Command::SendFrames(f) | Command::SendEcmBlock { frames: f, .. } = &c {
                        fcfs.extend(f.iter().filter_map(Frame::fcf));
                    }
                    e.handle(Event::Sent, now);
                }
            }
        }
        fcfs
    }

    fn response(fcf: Fcf, fif: &[u8]) -> Event {
        Event::Frame(Frame::new(fcf, false, fif, true))
    }

    #[test]
    fn the_phase_follows_the_ecm_senders_state() {
        let mut e = one_page_sender(true);
        assert_eq!((e.state(), e.phase()), (State::T, Phase::A));
        e.start(ms(0));
        assert_eq!((e.state(), e.phase()), (State::T, Phase::B));
        let dis = Capabilities::ours(14_400, true).encode();
        e.handle(response(Fcf::Dis, &dis), ms(100));
        assert_eq!((e.state(), e.phase()), (State::D, Phase::B));
        assert!(sent(&mut e, ms(200)).contains(&Fcf::Dcs));
        assert_eq!((e.state(), e.phase()), (State::DPostTcf, Phase::B));
        e.handle(response(Fcf::Cfr, &[]), ms(3000));
        assert_eq!((e.state(), e.phase()), (State::IV, Phase::C));
        assert_eq!(
            sent(&mut e, ms(3100)),
            [Fcf::Fcd, Fcf::Rcp, Fcf::Rcp, Fcf::Rcp]
        );
        assert_eq!((e.state(), e.phase()), (State::IVPps, Phase::D));
        assert_eq!(sent(&mut e, ms(4000)), [Fcf::Pps]);
        assert_eq!((e.state(), e.phase()), (State::IVPpsQ, Phase::D));
        // Annex A: the corrected block after PPR is phase C again, as the first one was.
        let mut map = [0u8; 32];
        map[0] = 1;
        e.handle(response(Fcf::Ppr, &map), ms(5000));
        assert_eq!((e.state(), e.phase()), (State::IV, Phase::C));
        assert_eq!(
            sent(&mut e, ms(5100)),
            [Fcf::Fcd, Fcf::Rcp, Fcf::Rcp, Fcf::Rcp]
        );
        assert_eq!(sent(&mut e, ms(6000)), [Fcf::Pps]);
        e.handle(response(Fcf::Mcf, &[]), ms(7000));
        assert_eq!((e.state(), e.phase()), (State::B, Phase::E));
        assert_eq!(sent(&mut e, ms(7100)), [Fcf::Dcn]);
        assert_eq!(
            (e.state(), e.phase()),
            (State::CallFinished, Phase::CallDone)
        );
        assert_eq!(e.report().cause, Some(Cause::Ok));
        assert_eq!(e.report().ppr_count, 1);
    }

    #[test]
    fn an_unanswered_command_is_repeated_three_times_from_its_state() {
        let mut e = one_page_sender(false);
        e.start(ms(0));
        let dis = Capabilities::ours(14_400, false).encode();
        e.handle(response(Fcf::Dis, &dis), ms(100));
        sent(&mut e, ms(200));
        e.handle(response(Fcf::Cfr, &[]), ms(3000));
        assert_eq!((e.state(), e.phase()), (State::I, Phase::C));
        assert_eq!(sent(&mut e, ms(3100)), []);
        assert_eq!((e.state(), e.phase()), (State::II, Phase::D));
        assert_eq!(sent(&mut e, ms(3900)), [Fcf::Eop]);
        let mut now = ms(4000);
        for _ in 0..MAX_REPEATS {
            assert_eq!((e.state(), e.phase()), (State::IIQ, Phase::D));
            now += e.cfg.timers.t4;
            e.handle_timeout(now);
            assert_eq!((e.state(), e.phase()), (State::II, Phase::D));
            assert_eq!(sent(&mut e, now), [Fcf::Eop]);
        }
        now += e.cfg.timers.t4;
        e.handle_timeout(now);
        assert_eq!(sent(&mut e, now), [Fcf::Dcn]);
        assert_eq!(e.report().cause, Some(Cause::NoResponse));
    }

    #[test]
    fn node_f_serves_phase_d_after_page_data_so_a_damaged_command_gets_crp() {
        let mut e = Engine::receiver(
            EngineConfig::default(),
            Box::new(crate::fax::t30::pages::PagesSink::new()),
        );
        e.start(ms(0));
        sent(&mut e, ms(100));
        assert_eq!((e.state(), e.phase()), (State::F, Phase::B));
        // Phase B: a damaged frame (a DCS, TCF follows at once) gets no CRP.
        e.handle(Event::BadFrame, ms(200));
        e.handle(Event::CarrierEnd, ms(300));
        assert_eq!((e.state(), e.phase()), (State::F, Phase::B));
        let dcs = Dcs {
            modulation: Modulation::V29_9600,
            resolution: crate::fax::t30::VResolution::Standard,
            coding: Coding::Mh,
            width: crate::fax::t30::Width::A4,
            scan_time_ms: 0,
            ecm: false,
            frame_64: false,
        };
        e.handle(response(Fcf::Dcs, &dcs.encode()), ms(400));
        assert_eq!(e.state(), State::FTcf);
        e.handle(Event::Connect, ms(500));
        e.handle(Event::Data(vec![0; 1500]), ms(2000));
        e.handle(Event::CarrierEnd, ms(2000));
        assert_eq!(sent(&mut e, ms(2500)), [Fcf::Cfr]);
        assert_eq!((e.state(), e.phase()), (State::FDocNonEcm, Phase::C));
        e.handle(Event::Connect, ms(3000));
        e.handle(Event::CarrierEnd, ms(4000));
        assert_eq!((e.state(), e.phase()), (State::F, Phase::D));
        e.handle(Event::BadFrame, ms(4100));
        e.handle(Event::CarrierEnd, ms(4200));
        assert_eq!((e.state(), e.phase()), (State::III, Phase::D));
        assert_eq!(sent(&mut e, ms(4300)), [Fcf::Crp]);
        assert_eq!((e.state(), e.phase()), (State::F, Phase::D));
    }
}
