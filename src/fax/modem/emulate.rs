//! PURE: a Class 2.0 (ITU-T T.32) fax modem of our own — the DCE side of the AT dialogue.
//!
//! `faxgate modem emulate` puts this on a pseudo-terminal so that Class 2.0 host software
//! (mgetty's `sendfax`, HylaFAX) can fax through a Class 1 modem driven by faxgate's T.30
//! engine. This module is sans-IO: bytes from the host go in ([`Dce::on_input`]), bytes for
//! the host come out ([`Dce::take_output`]), and the call's T.30 side is reached through
//! [`Request`]s (polled with [`Dce::poll_request`]) and [`CallEvent`]s (fed with
//! [`Dce::on_call`]). Nothing here reads a clock or touches a device.
//!
//! Sending, as the DCE sees it (T.32 §8.3.3, Figure 8-1):
//!
//! 1. Command state: `+FCLASS=2.0`, `+FLI`, `+FCC`, `+FIS`, `+FLO`, `+FBO`, … are stored.
//! 2. `ATD<number>` → [`Request::Dial`]; on [`CallEvent::Connected`] the DCE reports `+FCO`,
//!    `+FCI:"id"`, `+FIS:…` (the remote's DIS) and `OK`; a failed dial gives `BUSY`,
//!    `NO CARRIER`, … (V.250 §6.3.1).
//! 3. `+FDT` → waits for [`CallEvent::PageReady`] (the engine negotiated and wants a page),
//!    reports `+FCS:…`, `CONNECT` and `<DC1>` (ready for data). The page data is DLE-unstuffed
//!    (`<DLE><DLE>` is one DLE, `<DLE><SUB>` two, T.32 §8.3.3.3) up to `<DLE><ETX>` → `OK`,
//!    or up to `<DLE>,` / `<DLE>;` / `<DLE>.`, which end the page and stand for `+FET=0/1/2`
//!    (mgetty's `sendfax` ends its pages so).
//! 4. `+FET=n` (or the in-band end) → [`Request::SendPage`] with the page and its post-page
//!    message; on
//!    [`CallEvent::PageResult`] the DCE reports `+FPS:n,…` and `OK` (after EOP, once the call
//!    has ended, `+FHS:xx` before the final result).
//! 5. [`CallEvent::Ended`] at any time ends the call with `+FHS:xx`.
//!
//! Receiving, as the DCE sees it (T.32 §8.3.4, Figure 8-2):
//!
//! 1. While no call is up, the shell watches the Class 1 line: [`CallEvent::Ring`] → `RING`.
//!    `ATA`, or the `S0`-th ring (V.250 §6.3.8), → [`Request::Answer`] — only with `+FCR=1`
//!    (T.32 §8.5.1; the default 0 refuses: `ATA` answers `ERROR`, rings are only reported).
//!    The DIS offered follows `+FCC`/`+FIS`, the CSI is `+FLI`.
//! 2. [`CallEvent::Negotiated`] (the caller's DCS) → `+FCO`, `+FTI:"id"`, `+FCS:…`, `OK`.
//! 3. `+FDR` → on the first [`CallEvent::PageData`] `CONNECT` (after `+FCS:` when a new DCS
//!    came since); the host's `<DC2>` (or a Class 2 host's `<DC1>`) starts the page data, DLE
//!    doubled, handed over as it arrives; [`CallEvent::PageEnd`] → `<DLE><ETX>`,
//!    `+FPS:ppr,lc,blc,0,0` (our own copy-quality verdict, +FCQ), `+FET:n`, `OK`.
//! 4. The post-page response is held until the host's next `+FDR` (T.32 §8.3.4), which sends
//!    [`Request::Release`] with our verdict or the host's `+FPS=n` (so `AT+FPS=2` gets RTN);
//!    then the next page, or after EOP the call's end: `+FHS:00`, `OK`. The shell holds the
//!    engine's answer for it only as long as T.30 allows (the sender repeats its message after
//!    T4, 3 s); a later `+FDR` finds our own verdict already sent.
//!
//! Flow control (`+FLO`): pages from the host are held whole in memory (up to
//! [`MAX_PAGE_BYTES`]), so the DCE never has to send XOFF; a page beyond the limit ends the
//! call (`ERROR`, then `+FHS`). Toward the host, received data goes out in [`RX_CHUNK`] steps
//! and stops while the host's XOFF holds (`+FLO=1`); a received page beyond
//! [`MAX_PAGE_BYTES`] ends the call (`+FHS:93`).

use std::collections::{BTreeMap, VecDeque};

use super::class2::{
    CAN, DC2, HangupCode, PageResponse, PageStatus, PostPage, SessionParams, XOFF, XON,
};
use super::dle::{DLE, ETX};
use crate::fax::t30::dis::{Capabilities, Dcs};
use crate::fax::t30::{Cause, Coding, VResolution, Width};

/// Longest command line kept (ours; V.250 §5.2.1 asks for at least 40 characters). A longer
/// line is answered `ERROR`.
pub const MAX_LINE: usize = 512;
/// Largest page accepted from the host (ours): a dense fine A4 page in MH is well under 1 MB.
pub const MAX_PAGE_BYTES: usize = 8 << 20;
/// Longest local ID (`+FLI`, `+FPI`): T.30 §5.3.6.2.4's 20 digits.
pub const MAX_ID_CHARS: usize = 20;
/// Most other `+F` parameters remembered (ours): enough for every T.32 parameter.
pub const MAX_PARAMS: usize = 64;
/// `<SUB>`: `<DLE><SUB>` stands for two DLEs in Class 2.0 page data (T.32 §8.3.3.3).
const SUB: u8 = 0x1A;
/// `+FHS` code when the host's page overflowed our buffer (T.32 Table 23: 40, unspecified
/// phase C transmit error).
pub const HANGUP_PAGE_TOO_BIG: HangupCode = HangupCode(0x40);
/// `+FHS` code when a received page overflowed our buffer toward the host (T.32 Table 23: 93,
/// DCE to DTE buffer overflow).
pub const HANGUP_RX_OVERFLOW: HangupCode = HangupCode(0x93);
/// Most received page data handed to the host per [`Dce::take_output`] (ours): small enough
/// that the host's XOFF (`+FLO=1`) stops the flow within one chunk, large enough to outrun
/// the line (14 400 bit/s is 1.8 kB/s).
pub const RX_CHUNK: usize = 4096;

/// What the DCE asks of the call's T.30 side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Place a fax call to this number (dial modifiers removed).
    Dial(String),
    /// Send this page (T.4 data, bit order as on the line) followed by `post`.
    SendPage {
        /// The page, unstuffed.
        data: Vec<u8>,
        /// MPS, EOM or EOP.
        post: PostPage,
    },
    /// End the call now (`ATH`, `+FKS`, an aborted dial).
    HangUp,
    /// Answer the ringing line as the called fax station (`ATA`, or `S0` rings counted).
    Answer,
    /// The host's `+FDR` released the post-page response held for the last received page:
    /// send this answer (the DCE's own copy-quality verdict, or the host's `+FPS=n`).
    Release(PageResponse),
}

/// Why a dial failed (V.250 §6.3.1 result codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialFailure {
    /// `BUSY`.
    Busy,
    /// `NO CARRIER`: no fax answer.
    NoCarrier,
    /// `NO DIALTONE`.
    NoDialtone,
    /// `NO ANSWER`.
    NoAnswer,
}

/// What the call's T.30 side tells the DCE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// The remote answered as a fax: its ID (CSI) and capabilities (DIS).
    Connected {
        /// The called station's ID, if it sent one.
        remote_id: Option<String>,
        /// Its DIS, in T.32 terms.
        remote: SessionParams,
    },
    /// The dial failed before any fax handshake.
    DialFailed(DialFailure),
    /// The engine has negotiated (DCS) and wants the next page, coded so.
    PageReady(SessionParams),
    /// The receiver's answer to the last page.
    PageResult(PageResponse),
    /// The call is over (`+FHS` code; 00 is a normal end).
    Ended(HangupCode),
    /// The line rings (an incoming call, while no call is up).
    Ring,
    /// The line stopped ringing without being answered: the ring count starts again.
    RingingStopped,
    /// Receiving: the caller's DCS arrived (first after `ATA`, again after EOM or a retrain):
    /// its ID (TSI) and the session it chose, in T.32 terms.
    Negotiated {
        /// The calling station's ID, if it sent one.
        remote_id: Option<String>,
        /// The session parameters (its DCS).
        session: SessionParams,
    },
    /// Receiving: page data as it came off the line (T.4/T.6, bit order as on the line).
    PageData(Vec<u8>),
    /// Receiving: the page's data ended and the sender's post-page message came; `status` is
    /// the DCE's own copy-quality view (the answer it would send).
    PageEnd {
        /// MPS, EOM or EOP.
        post: PostPage,
        /// The DCE's verdict and line counts.
        status: PageStatus,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// Command state, no call.
    Idle,
    /// `ATD` given; waiting for the call to connect.
    Dialling,
    /// A call is up; the DCE takes commands.
    Online,
    /// `+FDT` given; waiting for the engine to want a page.
    AwaitPage,
    /// Taking page data.
    Data,
    /// `+FET` given; waiting for the receiver's answer.
    AwaitResult(PostPage),
    /// EOP answered; waiting for the call to end.
    AwaitEnd,
    /// `ATA` given (or auto-answer); waiting for the caller's DCS.
    Answering,
    /// `+FDR` given; waiting for page data (→ `CONNECT`) or the call's end (→ `+FHS`).
    RecvWait,
    /// `CONNECT` sent for a received page; waiting for the host's `<DC2>`.
    RecvReady,
    /// Handing received page data to the host.
    RecvData,
}

/// The receive side of a call (T.32 §8.3.4).
#[derive(Debug, Default)]
struct Rx {
    /// The session in force (the last DCS), and whether `+FCS` has not reported it yet.
    session: Option<SessionParams>,
    session_new: bool,
    /// Page data not yet handed to the host, as on the line.
    buf: VecDeque<u8>,
    /// The page outgrew [`MAX_PAGE_BYTES`].
    overflow: bool,
    /// The page's end (post-page message and our verdict), once the data is complete.
    end: Option<(PostPage, PageStatus)>,
    /// The post-page response held until the host's `+FDR`, and the message it answers.
    release: Option<PageResponse>,
    /// The call ended while the host still had something to take.
    ended: Option<HangupCode>,
    /// The host sent XOFF (`+FLO=1`).
    paused: bool,
}

/// The emulated Class 2.0 modem (one per pseudo-terminal).
#[derive(Debug)]
pub struct Dce {
    mode: Mode,
    out: Vec<u8>,
    requests: VecDeque<Request>,
    line: Vec<u8>,
    line_overflow: bool,
    echo: bool,
    quiet: bool,
    verbose: bool,
    fax_class: bool,
    local_id: String,
    caps: SessionParams,
    flow: u8,
    bit_order: u8,
    params: BTreeMap<String, String>,
    page: Vec<u8>,
    page_overflow: bool,
    after_dle: bool,
    /// A page has been taken (data ended by `<DLE><ETX>`) and awaits `+FET`.
    page_done: bool,
    /// `+FHS` of the call that ended, for `AT+FHS?`.
    last_hangup: HangupCode,
    /// The engine wants a page (coded so) before the host asked with `+FDT`.
    ready: Option<SessionParams>,
    /// The call is a reception (`ATA`), not a dial.
    receiving: bool,
    rx: Rx,
    /// `+FCR`: the host can take received pages (T.32 §8.5.1; default 0).
    fcr: bool,
    /// `S0`: answer after this many rings, 0 never (V.250 §6.3.8).
    s0: u8,
    /// Rings of the current incoming call.
    rings: u32,
    /// `+FPS=n` from the host: the answer for the held post-page response.
    host_fps: Option<PageResponse>,
    /// The command just run gave its final result itself.
    final_sent: bool,
}

impl Default for Dce {
    fn default() -> Self {
        Self::new()
    }
}

/// A final result code (V.250 §5.7.1; numeric forms of Table 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Final {
    Ok,
    Connect,
    NoCarrier,
    Error,
    NoDialtone,
    Busy,
    NoAnswer,
    Ring,
}

impl Final {
    fn text(self) -> &'static str {
        match self {
            Final::Ok => "OK",
            Final::Connect => "CONNECT",
            Final::NoCarrier => "NO CARRIER",
            Final::Error => "ERROR",
            Final::NoDialtone => "NO DIALTONE",
            Final::Busy => "BUSY",
            Final::NoAnswer => "NO ANSWER",
            Final::Ring => "RING",
        }
    }
    fn number(self) -> u8 {
        match self {
            Final::Ok => 0,
            Final::Connect => 1,
            Final::NoCarrier => 3,
            Final::Error => 4,
            Final::NoDialtone => 6,
            Final::Busy => 7,
            Final::NoAnswer => 8,
            Final::Ring => 2,
        }
    }
}

/// Our default capabilities (T.32 Table 21): fine, 14 400 bit/s, A4, unlimited length, MR,
/// no ECM (the page data passes through as the host coded it), no BFT, 0 ms scan time.
fn default_caps() -> SessionParams {
    SessionParams {
        vr: 1,
        br: 5,
        wd: 0,
        ln: 2,
        df: 1,
        ec: 0,
        bf: 0,
        st: 0,
    }
}

impl Dce {
    /// A modem in command state after power-on: echo on, verbose results (V.250 defaults),
    /// data class until `+FCLASS=2.0`.
    pub fn new() -> Dce {
        Dce {
            mode: Mode::Idle,
            out: Vec::new(),
            requests: VecDeque::new(),
            line: Vec::new(),
            line_overflow: false,
            echo: true,
            quiet: false,
            verbose: true,
            fax_class: false,
            local_id: String::new(),
            caps: default_caps(),
            flow: 1,
            bit_order: 0,
            params: BTreeMap::new(),
            page: Vec::new(),
            page_overflow: false,
            after_dle: false,
            page_done: false,
            last_hangup: HangupCode(0),
            ready: None,
            receiving: false,
            rx: Rx::default(),
            fcr: false,
            s0: 0,
            rings: 0,
            host_fps: None,
            final_sent: false,
        }
    }

    /// The local ID the host set (`+FLI`), for the engine's TSI.
    pub fn local_id(&self) -> &str {
        &self.local_id
    }

    /// The capabilities the host set (`+FCC`/`+FIS`).
    pub fn capabilities(&self) -> SessionParams {
        self.caps
    }

    /// Whether a call is in progress (from `ATD` until it ended).
    pub fn in_call(&self) -> bool {
        self.mode != Mode::Idle
    }

    /// Bytes for the host, taken. While a received page is handed over, each call adds up
    /// to [`RX_CHUNK`] bytes of it (none while the host has sent XOFF).
    pub fn take_output(&mut self) -> Vec<u8> {
        self.pump();
        std::mem::take(&mut self.out)
    }

    /// Whether received page data waits for the host (the shell then polls sooner).
    pub fn has_page_data(&self) -> bool {
        self.mode == Mode::RecvData && !self.rx.paused && !self.rx.buf.is_empty()
    }

    /// The next request for the call's T.30 side.
    pub fn poll_request(&mut self) -> Option<Request> {
        self.requests.pop_front()
    }

    /// Bytes from the host. Any bytes are taken; none make the DCE panic.
    pub fn on_input(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match self.mode {
                Mode::Data => self.data_byte(b),
                Mode::RecvReady => match b {
                    // T.32 §8.3.4: the host says it is ready with <DC2>; Class 2 hosts send
                    // <DC1> (HylaFAX's Class2RecvDataTrigger): either will do.
                    DC2 | XON => {
                        self.mode = Mode::RecvData;
                        self.rx.paused = false;
                    }
                    CAN => self.abort_reception(),
                    _ => {}
                },
                Mode::RecvData => match b {
                    // T.32 §8.5.2.3 +FLO=1: DC3/DC1 from the host hold and release the data.
                    XOFF if self.flow == 1 => self.rx.paused = true,
                    XON if self.flow == 1 => self.rx.paused = false,
                    // T.32 §8.3.4: <CAN> from the host ends the reception.
                    CAN => self.abort_reception(),
                    _ => {}
                },
                Mode::RecvWait | Mode::Answering => {
                    // V.250 §6.3.5: a character aborts an answer in progress; T.32 §8.3.4:
                    // <CAN> aborts +FDR.
                    if b == CAN || (self.mode == Mode::Answering && b != b'\r' && b != b'\n') {
                        self.requests.push_back(Request::HangUp);
                        self.mode = Mode::Idle;
                        self.result(Final::NoCarrier);
                    }
                }
                Mode::Dialling => {
                    // V.250 §6.3.1: any character from the DTE aborts a dial in progress.
                    if b != b'\r' && b != b'\n' {
                        self.requests.push_back(Request::HangUp);
                        self.mode = Mode::Idle;
                        self.result(Final::NoCarrier);
                    }
                }
                Mode::AwaitPage | Mode::AwaitResult(_) | Mode::AwaitEnd => {
                    // T.32 §8.3.3: <CAN> while the DCE works on a command aborts the call.
                    if b == super::class2::CAN {
                        self.requests.push_back(Request::HangUp);
                    }
                }
                Mode::Idle | Mode::Online => self.command_byte(b),
            }
        }
    }

    /// What the call's T.30 side reports.
    pub fn on_call(&mut self, ev: CallEvent) {
        let ev = match ev {
            CallEvent::Ended(code) if self.receiving && self.mode != Mode::Idle => {
                return self.receive_ended(code);
            }
            CallEvent::Ring
            | CallEvent::RingingStopped
            | CallEvent::Negotiated { .. }
            | CallEvent::PageData(_)
            | CallEvent::PageEnd { .. } => return self.on_receive_event(ev),
            ev => ev,
        };
        match (ev, self.mode.clone()) {
            (CallEvent::Connected { remote_id, remote }, Mode::Dialling) => {
                self.mode = Mode::Online;
                self.info("+FCO");
                if let Some(id) = remote_id {
                    let id: String = id
                        .chars()
                        .filter(|c| *c != '"')
                        .take(MAX_ID_CHARS)
                        .collect();
                    self.info(&format!("+FCI:\"{id}\""));
                }
                self.info(&format!("+FIS:{}", remote.to_args()));
                self.result(Final::Ok);
            }
            (CallEvent::DialFailed(f), Mode::Dialling) => {
                self.mode = Mode::Idle;
                self.result(match f {
                    DialFailure::Busy => Final::Busy,
                    DialFailure::NoCarrier => Final::NoCarrier,
                    DialFailure::NoDialtone => Final::NoDialtone,
                    DialFailure::NoAnswer => Final::NoAnswer,
                });
            }
            (CallEvent::PageReady(p), Mode::Online | Mode::AwaitResult(_)) => {
                // Early: kept for the host's +FDT.
                self.ready = Some(p);
            }
            (CallEvent::PageReady(p), Mode::AwaitPage) => self.start_data(p),
            (CallEvent::PageResult(r), Mode::AwaitResult(post)) => {
                self.info(&format!("+FPS:{:X}", r.value()));
                if post == PostPage::Eop && r.accepted() {
                    // The engine ends the call after EOP-MCF; the final result waits for it.
                    self.mode = Mode::AwaitEnd;
                } else {
                    self.mode = Mode::Online;
                    self.result(Final::Ok);
                }
            }
            (CallEvent::Ended(code), mode) => {
                self.last_hangup = code;
                self.page_done = false;
                self.ready = None;
                match mode {
                    Mode::Idle => {}
                    Mode::Dialling => {
                        self.mode = Mode::Idle;
                        self.info(&format!("+FHS:{}", code.text()));
                        self.result(Final::NoCarrier);
                    }
                    Mode::Online => {
                        // Unsolicited: the remote hung up between commands.
                        self.mode = Mode::Idle;
                        self.info(&format!("+FHS:{}", code.text()));
                    }
                    Mode::AwaitPage
                    | Mode::Data
                    | Mode::AwaitResult(_)
                    | Mode::AwaitEnd
                    | Mode::Answering
                    | Mode::RecvWait
                    | Mode::RecvReady
                    | Mode::RecvData => {
                        self.mode = Mode::Idle;
                        self.info(&format!("+FHS:{}", code.text()));
                        self.result(if code.0 == 0 { Final::Ok } else { Final::Error });
                    }
                }
            }
            // An event that does not fit the state (late, or from a call already given up):
            // nothing the host asked for waits on it.
            _ => {}
        }
    }

    /// Incoming calls and received pages (T.32 §8.3.4, Figure 8-2).
    fn on_receive_event(&mut self, ev: CallEvent) {
        match ev {
            CallEvent::Ring if self.mode == Mode::Idle => {
                self.rings = self.rings.saturating_add(1);
                self.result(Final::Ring);
                // V.250 §6.3.8: S0 rings answer the call, as ATA would.
                if self.s0 > 0 && self.rings >= u32::from(self.s0) && self.answer().is_ok() {
                    self.rings = 0;
                }
            }
            CallEvent::RingingStopped => self.rings = 0,
            CallEvent::Negotiated { remote_id, session } if self.receiving => {
                self.rx.session = Some(session);
                if self.mode == Mode::Answering {
                    // T.32 §8.3.4: ATA ends with the caller's ID and session, then OK.
                    self.mode = Mode::Online;
                    self.rx.session_new = false;
                    self.info("+FCO");
                    if let Some(id) = remote_id {
                        let id: String = id
                            .chars()
                            .filter(|c| *c != '"' && !c.is_control())
                            .take(MAX_ID_CHARS)
                            .collect();
                        self.info(&format!("+FTI:\"{id}\""));
                    }
                    self.info(&format!("+FCS:{}", session.to_args()));
                    self.result(Final::Ok);
                } else {
                    // A new DCS (after EOM or a retrain): +FCS comes with the next CONNECT.
                    self.rx.session_new = true;
                }
            }
            CallEvent::PageData(bytes) if self.receiving && self.mode != Mode::Answering => {
                if self.rx.end.is_some() || self.rx.overflow {
                    return;
                }
                if self.rx.buf.len() + bytes.len() > MAX_PAGE_BYTES {
                    // What is buffered still goes to the host; then the call ends.
                    self.rx.overflow = true;
                } else {
                    self.rx.buf.extend(bytes);
                }
                if self.mode == Mode::RecvWait {
                    self.connect();
                }
            }
            CallEvent::PageEnd { post, status } if self.receiving => {
                if self.rx.end.is_some() || self.mode == Mode::Answering {
                    return;
                }
                self.rx.end = Some((post, status));
                if self.mode == Mode::RecvWait {
                    self.connect();
                }
            }
            _ => {}
        }
    }

    /// `ATA` (or `S0`): answer as the called station, if the host can take pages.
    fn answer(&mut self) -> Result<Option<String>, ()> {
        // T.32 §8.5.1: +FCR=0, the DCE takes no message data.
        if !self.fax_class || !self.fcr || self.mode != Mode::Idle {
            return Err(());
        }
        self.requests.push_back(Request::Answer);
        self.mode = Mode::Answering;
        self.receiving = true;
        self.rx = Rx::default();
        self.host_fps = None;
        self.page_done = false;
        self.ready = None;
        Ok(None)
    }

    /// `+FDR` (T.32 §8.3.4): release the held post-page response, then wait for the next
    /// page or the call's end.
    fn receive_page(&mut self) -> Result<Option<String>, ()> {
        if self.mode != Mode::Online || !self.receiving {
            return Err(());
        }
        if let Some(ours) = self.rx.release.take() {
            let answer = self.host_fps.take().unwrap_or(ours);
            self.requests.push_back(Request::Release(answer));
        }
        self.mode = Mode::RecvWait;
        if self.rx.overflow || !self.rx.buf.is_empty() || self.rx.end.is_some() {
            self.connect();
        } else if let Some(code) = self.rx.ended.take() {
            self.finish_receive(code);
        }
        self.final_sent = true;
        Ok(None)
    }

    /// A page begins toward the host: `+FCS` if the session is new, `CONNECT`.
    fn connect(&mut self) {
        if self.rx.session_new
            && let Some(p) = self.rx.session
        {
            self.info(&format!("+FCS:{}", p.to_args()));
        }
        self.rx.session_new = false;
        self.mode = Mode::RecvReady;
        self.result(Final::Connect);
    }

    /// Page data to the host, DLE doubled (T.32 §8.3.4), then the page's end and reports.
    fn pump(&mut self) {
        if self.mode != Mode::RecvData || self.rx.paused {
            return;
        }
        let reverse = self.bit_order & 1 == 1;
        let n = self.rx.buf.len().min(RX_CHUNK);
        for b in self.rx.buf.drain(..n) {
            // +FBO=1: the host takes its octets in reversed bit order (T.32 §8.5.1.4).
            let b = if reverse { b.reverse_bits() } else { b };
            self.out.push(b);
            if b == DLE {
                self.out.push(DLE);
            }
        }
        if !self.rx.buf.is_empty() {
            return;
        }
        if self.rx.overflow {
            self.out.extend_from_slice(&[DLE, ETX]);
            self.rx.overflow = false;
            self.requests.push_back(Request::HangUp);
            self.last_hangup = HANGUP_RX_OVERFLOW;
            self.mode = Mode::AwaitEnd;
            return;
        }
        if let Some((post, status)) = self.rx.end.take() {
            self.out.extend_from_slice(&[DLE, ETX]);
            // T.32 §8.3.4: the DCE's copy-quality answer (ppr, lines, bad lines, … hex),
            // the sender's post-page message, OK; the answer waits for the next +FDR.
            self.info(&format!(
                "+FPS:{:X},{:X},{:X},0,0",
                status.response.value(),
                status.lines.unwrap_or(0),
                status.bad_lines.unwrap_or(0)
            ));
            self.info(&format!("+FET:{}", post.value()));
            self.result(Final::Ok);
            self.rx.release = Some(status.response);
            self.mode = Mode::Online;
        }
    }

    /// The call ended during a reception.
    fn receive_ended(&mut self, code: HangupCode) {
        if self.mode == Mode::AwaitEnd && self.last_hangup == HANGUP_RX_OVERFLOW {
            // Our own reason beats the engine's view of the hang-up we asked for.
            return self.finish_receive(HANGUP_RX_OVERFLOW);
        }
        self.last_hangup = code;
        match self.mode {
            Mode::Answering => {
                self.mode = Mode::Idle;
                self.receiving = false;
                self.info(&format!("+FHS:{}", code.text()));
                self.result(Final::NoCarrier);
            }
            Mode::RecvWait => self.finish_receive(code),
            Mode::RecvReady | Mode::RecvData => {
                // Whatever came is handed over whole (the host is reading), then the end.
                self.rx.paused = false;
                self.mode = Mode::RecvData;
                let mut guard = 0;
                while !self.rx.buf.is_empty() && guard <= MAX_PAGE_BYTES / RX_CHUNK {
                    self.pump();
                    guard += 1;
                }
                if self.rx.end.is_some() {
                    self.pump();
                    self.rx.ended = Some(code);
                } else {
                    self.out.extend_from_slice(&[DLE, ETX]);
                    self.finish_receive(code);
                }
            }
            Mode::Online if self.rx.release.is_some() => {
                // The host has yet to take the last page's end: its +FDR gets the +FHS.
                self.rx.ended = Some(code);
            }
            _ => self.finish_receive(code),
        }
    }

    /// `+FHS:xx` and the final result; the call is over.
    fn finish_receive(&mut self, code: HangupCode) {
        let solicited = self.mode != Mode::Online;
        self.mode = Mode::Idle;
        self.receiving = false;
        self.rx = Rx::default();
        self.last_hangup = code;
        self.info(&format!("+FHS:{}", code.text()));
        if solicited {
            self.result(if code.0 == 0 { Final::Ok } else { Final::Error });
        }
    }

    /// `<CAN>` from the host during a reception: hang up; the end reports +FHS.
    fn abort_reception(&mut self) {
        self.out.extend_from_slice(&[DLE, ETX]);
        self.rx.buf.clear();
        self.rx.end = None;
        self.requests.push_back(Request::HangUp);
        self.mode = Mode::AwaitEnd;
    }

    fn start_data(&mut self, p: SessionParams) {
        self.mode = Mode::Data;
        self.page.clear();
        self.page_overflow = false;
        self.after_dle = false;
        self.info(&format!("+FCS:{}", p.to_args()));
        self.result(Final::Connect);
        // T.32 §8.3.3: the DCE signals with <DC1> that it is ready for page data.
        self.out.push(XON);
    }

    fn data_byte(&mut self, b: u8) {
        if self.after_dle {
            self.after_dle = false;
            match b {
                ETX => self.page_end(None),
                // T.32 §8.3.3.3: <DLE>, / <DLE>; / <DLE>. end the page and stand for
                // +FET=0/1/2 (mgetty's sendfax ends its pages so).
                b',' => self.page_end(Some(PostPage::Mps)),
                b';' => self.page_end(Some(PostPage::Eom)),
                b'.' => self.page_end(Some(PostPage::Eop)),
                DLE => self.page_push(&[DLE]),
                SUB => self.page_push(&[DLE, DLE]),
                // Other DLE pairs carry nothing for a sending DCE (T.32 §8.3.3.3).
                _ => {}
            }
        } else if b == DLE {
            self.after_dle = true;
        } else {
            self.page_push(&[b]);
        }
    }

    fn page_push(&mut self, bytes: &[u8]) {
        if self.page.len() + bytes.len() > MAX_PAGE_BYTES {
            self.page_overflow = true;
        } else {
            self.page.extend_from_slice(bytes);
        }
    }

    fn page_end(&mut self, post: Option<PostPage>) {
        if self.page_overflow {
            self.page.clear();
            self.requests.push_back(Request::HangUp);
            self.mode = Mode::AwaitEnd;
            self.last_hangup = HANGUP_PAGE_TOO_BIG;
            self.result(Final::Error);
            return;
        }
        if self.bit_order & 1 == 1 {
            // +FBO=1: the host's octets are in reversed bit order (T.32 §8.5.1.4).
            for b in &mut self.page {
                *b = b.reverse_bits();
            }
        }
        match post {
            Some(post) => {
                let data = std::mem::take(&mut self.page);
                self.requests.push_back(Request::SendPage { data, post });
                self.mode = Mode::AwaitResult(post);
            }
            None => {
                self.mode = Mode::Online;
                self.page_done = true;
                self.result(Final::Ok);
            }
        }
    }

    fn command_byte(&mut self, b: u8) {
        if self.echo && b != DC2 {
            self.out.push(b);
        }
        match b {
            b'\r' => {
                let line = std::mem::take(&mut self.line);
                let overflow = std::mem::replace(&mut self.line_overflow, false);
                let text = String::from_utf8_lossy(&line).into_owned();
                let t = text.trim();
                // Byte-wise check: the line may hold any bytes (no slicing inside a char).
                if let Some(body) = t
                    .get(2..)
                    .filter(|_| t.as_bytes()[..2].eq_ignore_ascii_case(b"AT"))
                {
                    if overflow {
                        self.result(Final::Error);
                    } else {
                        let body = body.to_string();
                        self.command_line(&body);
                    }
                }
            }
            b'\n' => {}
            0x08 => {
                self.line.pop();
            }
            _ => {
                if self.line.len() < MAX_LINE {
                    self.line.push(b);
                } else {
                    self.line_overflow = true;
                }
            }
        }
    }

    /// One command line after `AT`: basic commands and `+F` commands, `;`-separated
    /// (V.250 §5.2–5.4). The first failing command ends the line with `ERROR`.
    fn command_line(&mut self, body: &str) {
        let chars: Vec<char> = body.chars().collect();
        let mut i = 0;
        // Each step consumes at least one character: the loop ends.
        while i < chars.len() {
            let c = chars[i].to_ascii_uppercase();
            i += 1;
            let step = match c {
                ' ' | ';' => Ok(None),
                '+' => {
                    let start = i;
                    let mut in_quotes = false;
                    while i < chars.len() && (in_quotes || chars[i] != ';') {
                        if chars[i] == '"' {
                            in_quotes = !in_quotes;
                        }
                        i += 1;
                    }
                    let cmd: String = chars[start..i].iter().collect();
                    self.extended(&cmd)
                }
                'D' => {
                    let number: String = chars[i..]
                        .iter()
                        .filter(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | '+'))
                        .take(40)
                        .collect();
                    i = chars.len();
                    self.dial(number)
                }
                '&' => {
                    let sub = chars.get(i).map(|c| c.to_ascii_uppercase());
                    i += 1;
                    let _ = self.number_at(&chars, &mut i);
                    if sub == Some('F') {
                        self.reset();
                    }
                    Ok(None)
                }
                'S' => {
                    // S0 (auto-answer rings, V.250 §6.3.8) is kept; other S-registers are
                    // taken and ignored: nothing here depends on them.
                    let reg = self.number_at(&chars, &mut i);
                    if chars.get(i) == Some(&'?') {
                        i += 1;
                        Ok(Some(format!(
                            "{:03}",
                            if reg == Some(0) { self.s0 } else { 0 }
                        )))
                    } else {
                        if chars.get(i) == Some(&'=') {
                            i += 1;
                            let v = self.number_at(&chars, &mut i);
                            if reg == Some(0) {
                                self.s0 = u8::try_from(v.unwrap_or(0)).unwrap_or(u8::MAX);
                            }
                        }
                        Ok(None)
                    }
                }
                // V.250 §6.3.5: answer; the rest of the line is ignored.
                'A' => {
                    i = chars.len();
                    self.answer()
                }
                _ if c.is_ascii_alphabetic() => {
                    let n = self.number_at(&chars, &mut i).unwrap_or(0);
                    self.basic(c, n)
                }
                _ => Err(()),
            };
            match step {
                Ok(Some(text)) => self.info(&text),
                Ok(None) => {}
                Err(()) => return self.result(Final::Error),
            }
            if std::mem::take(&mut self.final_sent) {
                return;
            }
            if matches!(
                self.mode,
                Mode::Dialling
                    | Mode::AwaitPage
                    | Mode::Data
                    | Mode::Answering
                    | Mode::RecvWait
                    | Mode::RecvReady
                    | Mode::RecvData
            ) {
                // The final result comes with the call's events.
                return;
            }
            if matches!(self.mode, Mode::AwaitResult(_)) {
                return;
            }
        }
        self.result(Final::Ok);
    }

    fn number_at(&self, chars: &[char], i: &mut usize) -> Option<u32> {
        let start = *i;
        while *i < chars.len() && chars[*i].is_ascii_digit() && *i - start < 9 {
            *i += 1;
        }
        let s: String = chars[start..*i].iter().collect();
        s.parse().ok()
    }

    fn basic(&mut self, c: char, n: u32) -> Result<Option<String>, ()> {
        match c {
            'E' => self.echo = n != 0,
            'Q' => self.quiet = n != 0,
            'V' => self.verbose = n != 0,
            'Z' => self.reset(),
            'H' => {
                if self.mode != Mode::Idle {
                    self.requests.push_back(Request::HangUp);
                    self.mode = Mode::Idle;
                    self.receiving = false;
                    self.rx = Rx::default();
                }
            }
            'I' => return Ok(Some("faxgate Class 2.0 emulator".to_string())),
            // Speaker, result set, pulse/tone, … : nothing to emulate.
            'L' | 'M' | 'X' | 'T' | 'P' | 'B' | 'C' | 'W' => {}
            _ => return Err(()),
        }
        Ok(None)
    }

    fn reset(&mut self) {
        self.echo = true;
        self.quiet = false;
        self.verbose = true;
        if self.mode == Mode::Idle {
            self.fax_class = false;
            self.fcr = false;
            self.s0 = 0;
            self.host_fps = None;
            self.caps = default_caps();
            self.flow = 1;
            self.bit_order = 0;
            self.params.clear();
        }
    }

    fn dial(&mut self, number: String) -> Result<Option<String>, ()> {
        if !self.fax_class || self.mode != Mode::Idle || number.is_empty() {
            return Err(());
        }
        self.receiving = false;
        self.rx = Rx::default();
        self.requests.push_back(Request::Dial(number));
        self.mode = Mode::Dialling;
        self.page_done = false;
        self.ready = None;
        Ok(None)
    }

    /// An extended command after `+` (T.32 §8.5; V.250 §5.4): `NAME`, `NAME=v`, `NAME?`,
    /// `NAME=?`.
    fn extended(&mut self, cmd: &str) -> Result<Option<String>, ()> {
        let name_end = cmd
            .find(|c: char| !(c.is_ascii_alphanumeric()))
            .unwrap_or(cmd.len());
        let name = cmd[..name_end].to_ascii_uppercase();
        let rest = cmd[name_end..].trim();
        enum Form<'a> {
            Action,
            Set(&'a str),
            Read,
            Test,
        }
        let form = if rest.is_empty() {
            Form::Action
        } else if rest == "?" {
            Form::Read
        } else if rest == "=?" {
            Form::Test
        } else if let Some(v) = rest.strip_prefix('=') {
            Form::Set(v.trim())
        } else {
            return Err(());
        };
        let quoted = |v: &str| -> Result<String, ()> {
            let s = v.trim().trim_matches('"');
            if s.chars().count() > MAX_ID_CHARS || s.contains('"') {
                return Err(());
            }
            Ok(s.to_string())
        };
        match (name.as_str(), form) {
            ("FCLASS", Form::Test) => Ok(Some("0,2.0".to_string())),
            ("FCLASS", Form::Read) => Ok(Some(if self.fax_class { "2.0" } else { "0" }.into())),
            ("FCLASS", Form::Set(v)) => match v {
                "2.0" => {
                    self.fax_class = true;
                    Ok(None)
                }
                "0" => {
                    self.fax_class = false;
                    Ok(None)
                }
                _ => Err(()),
            },
            ("FLI" | "FPI", Form::Set(v)) => {
                let id = quoted(v)?;
                if name == "FLI" {
                    self.local_id = id;
                }
                Ok(None)
            }
            ("FLI", Form::Read) => Ok(Some(format!("\"{}\"", self.local_id))),
            ("FCC" | "FIS", Form::Set(v)) => {
                self.caps = merge_params(self.caps, v).ok_or(())?;
                Ok(None)
            }
            ("FCC" | "FIS", Form::Read) => Ok(Some(self.caps.to_args())),
            ("FCC" | "FIS", Form::Test) => {
                Ok(Some("(0,1),(0-5),(0),(0-2),(0,1),(0),(0),(0-7)".into()))
            }
            ("FLO", Form::Set(v)) => {
                self.flow = small(v, 2)?;
                Ok(None)
            }
            ("FLO", Form::Read) => Ok(Some(self.flow.to_string())),
            ("FBO", Form::Set(v)) => {
                self.bit_order = small(v, 3)?;
                Ok(None)
            }
            ("FBO", Form::Read) => Ok(Some(self.bit_order.to_string())),
            ("FHS", Form::Read) => Ok(Some(self.last_hangup.text())),
            ("FMI" | "GMI", Form::Read | Form::Action) => Ok(Some("faxgate".into())),
            ("FMM" | "GMM", Form::Read | Form::Action) => Ok(Some("Class 2.0 emulator".into())),
            ("FMR" | "GMR", Form::Read | Form::Action) => {
                Ok(Some(env!("CARGO_PKG_VERSION").to_string()))
            }
            ("FDT", Form::Action) => {
                if self.mode != Mode::Online || self.page_done || self.receiving {
                    return Err(());
                }
                match self.ready.take() {
                    Some(p) => self.start_data(p),
                    None => self.mode = Mode::AwaitPage,
                }
                Ok(None)
            }
            ("FET", Form::Set(v)) => {
                if self.mode != Mode::Online || !self.page_done {
                    return Err(());
                }
                let post = match small(v, 5)? {
                    0 | 3 => PostPage::Mps,
                    1 | 4 => PostPage::Eom,
                    _ => PostPage::Eop,
                };
                self.page_done = false;
                let data = std::mem::take(&mut self.page);
                self.requests.push_back(Request::SendPage { data, post });
                self.mode = Mode::AwaitResult(post);
                Ok(None)
            }
            ("FKS" | "FK", Form::Action) => {
                if self.mode != Mode::Idle {
                    self.requests.push_back(Request::HangUp);
                    self.mode = Mode::Idle;
                    self.receiving = false;
                    self.rx = Rx::default();
                }
                Ok(None)
            }
            ("FDR", Form::Action) => self.receive_page(),
            ("FCR", Form::Set(v)) => {
                self.fcr = small(v, 1)? == 1;
                Ok(None)
            }
            ("FCR", Form::Read) => Ok(Some(u8::from(self.fcr).to_string())),
            ("FCR", Form::Test) => Ok(Some("(0,1)".into())),
            // T.32 §8.3.4: the host may change the held post-page response before +FDR.
            ("FPS", Form::Set(v)) => {
                let n = small(v, 5)?;
                self.host_fps = Some(PageResponse::from_value(u32::from(n)).ok_or(())?);
                Ok(None)
            }
            ("FPS", Form::Read) => Ok(Some(
                self.host_fps
                    .or(self.rx.release)
                    .map_or(0, |r| r.value())
                    .to_string(),
            )),
            // Other T.32 parameters (+FCR, +FNR, +FIE, +FPS, +FCQ, +FAP, +FCT, +FMS, …) are
            // remembered and read back; none changes how this DCE sends.
            (n, Form::Set(v)) if n.starts_with('F') && n.len() <= 8 => {
                if v.len() > 64 || (self.params.len() >= MAX_PARAMS && !self.params.contains_key(n))
                {
                    return Err(());
                }
                self.params.insert(n.to_string(), v.to_string());
                Ok(None)
            }
            (n, Form::Read) if n.starts_with('F') => {
                self.params.get(n).cloned().map(Some).ok_or(())
            }
            (n, Form::Test) => param_range(n).map(|r| Some(r.to_string())).ok_or(()),
            _ => Err(()),
        }
    }

    fn info(&mut self, text: &str) {
        if self.quiet {
            return;
        }
        if self.verbose {
            self.out.extend_from_slice(b"\r\n");
        }
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    fn result(&mut self, r: Final) {
        if self.quiet {
            return;
        }
        if self.verbose {
            self.out.extend_from_slice(b"\r\n");
            self.out.extend_from_slice(r.text().as_bytes());
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.out
                .extend_from_slice(r.number().to_string().as_bytes());
            self.out.push(b'\r');
        }
    }
}

/// A DIS in T.32 terms (Table 21), for `+FIS:` after dialling.
pub fn params_of_dis(c: &Capabilities) -> SessionParams {
    let br = if c.modems.v17 {
        5
    } else if c.modems.v29 {
        3
    } else if c.modems.v27ter {
        1
    } else {
        0
    };
    SessionParams {
        vr: u8::from(c.fine) | (u8::from(c.superfine) << 1),
        br,
        wd: width_code(c.width),
        ln: if c.unlimited_length { 2 } else { 0 },
        df: if c.mmr && c.ecm { 3 } else { u8::from(c.mr) },
        ec: u8::from(c.ecm),
        bf: 0,
        st: 0,
    }
}

/// A DCS in T.32 terms, for `+FCS:` (the parameters the host must code its page in).
pub fn params_of_dcs(d: &Dcs) -> SessionParams {
    SessionParams {
        vr: match d.resolution {
            VResolution::Standard => 0,
            VResolution::Fine => 1,
            VResolution::Superfine => 2,
        },
        br: u8::try_from((d.modulation.bps() / 2400).saturating_sub(1))
            .unwrap_or(5)
            .min(5),
        wd: width_code(d.width),
        ln: 2,
        df: match d.coding {
            Coding::Mh => 0,
            Coding::Mr => 1,
            Coding::Mmr => 3,
        },
        ec: u8::from(d.ecm),
        bf: 0,
        // T.32 Table 21 ST codes by the time for normal resolution.
        st: match d.scan_time_ms {
            0 => 0,
            1..=5 => 1,
            6..=10 => 3,
            11..=20 => 5,
            _ => 7,
        },
    }
}

fn width_code(w: Width) -> u8 {
    match w {
        Width::A4 => 0,
        Width::B4 => 1,
        Width::A3 => 2,
    }
}

/// The `+FHS` code (T.32 Table 23) for how the engine ended a call, sending or receiving: the
/// inverse of [`HangupCode::meaning`] for the causes T.30 can meet.
pub fn hangup_for(cause: Option<Cause>) -> HangupCode {
    HangupCode(match cause {
        Some(Cause::Ok) => 0x00,
        Some(Cause::T1Expired) => 0x11,
        Some(Cause::Incompatible) => 0x21,
        Some(Cause::NoResponse) => 0x25,
        Some(Cause::TrainingFailed) => 0x27,
        Some(Cause::DocumentError) => 0x41,
        Some(Cause::T2Expired) => 0x73,
        Some(Cause::EcmFailed) => 0x92,
        Some(Cause::LocalAbort) => 0x02,
        Some(Cause::Interrupted) => 0x58,
        Some(Cause::ProtocolError | Cause::UnexpectedDcn | Cause::PageRejected) => 0x50,
        // Carrier lost, local trouble, or no cause at all: unspecified phase C error.
        _ => 0x40,
    })
}

/// What `AT+F<name>=?` answers (T.32 §8.5, V.250 §5.3.5 range syntax): the values this DCE
/// takes. Host software probes these at initialisation (HylaFAX's faxgetty asks +FCQ, +FAP and
/// +FSP) to learn which features to use. Features this DCE does not offer answer their "off"
/// value only: no copy-quality checking or correction
/// (+FCQ), no subaddress/selective-polling/password frames (+FAP), nothing to be polled for
/// (+FSP).
fn param_range(name: &str) -> Option<&'static str> {
    Some(match name {
        "FCQ" => "(0),(0)",
        "FAP" => "(0),(0),(0)",
        "FSP" => "(0)",
        "FLO" => "(0-2)",
        "FBO" => "(0-3)",
        "FPP" => "(0)",
        "FNR" => "(0,1),(0,1),(0,1),(0,1)",
        "FIE" => "(0,1)",
        "FBU" => "(0,1)",
        "FCT" => "(0-FF)",
        "FPS" => "(1-5)",
        "FET" => "(0-2)",
        "FLI" | "FPI" => "(20-7E)",
        _ => return None,
    })
}

/// A number 0..=max.
fn small(v: &str, max: u8) -> Result<u8, ()> {
    v.trim().parse::<u8>().ok().filter(|n| *n <= max).ok_or(())
}

/// `+FCC=`/`+FIS=` values over `base`: hexadecimal, empty or missing ones keep their value
/// (T.32 §8.5.1.1 lets the DTE give only the leading subparameters).
fn merge_params(base: SessionParams, v: &str) -> Option<SessionParams> {
    let mut vals = [
        base.vr, base.br, base.wd, base.ln, base.df, base.ec, base.bf, base.st,
    ];
    for (slot, item) in vals.iter_mut().zip(v.split(',')) {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        if item.len() > 2 {
            return None;
        }
        *slot = u8::from_str_radix(item, 16).ok()?;
    }
    SessionParams::parse(&format!(
        "{:X},{:X},{:X},{:X},{:X},{:X},{:X},{:X}",
        vals[0], vals[1], vals[2], vals[3], vals[4], vals[5], vals[6], vals[7]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(s: &str) -> SessionParams {
        SessionParams::parse(s).unwrap()
    }

    /// Send `line` + CR, return what the DCE answered, as text.
    fn say(d: &mut Dce, line: &str) -> String {
        d.on_input(line.as_bytes());
        d.on_input(b"\r");
        String::from_utf8_lossy(&d.take_output()).into_owned()
    }

    fn out(d: &mut Dce) -> String {
        String::from_utf8_lossy(&d.take_output()).into_owned()
    }

    #[test]
    fn setup_as_sendfax_does_it() {
        let mut d = Dce::new();
        assert_eq!(say(&mut d, "ATE0"), "ATE0\r\r\nOK\r\n");
        assert_eq!(say(&mut d, "AT+FCLASS=?"), "\r\n0,2.0\r\n\r\nOK\r\n");
        assert_eq!(say(&mut d, "AT+FCLASS=2.0"), "\r\nOK\r\n");
        assert_eq!(say(&mut d, "AT+FLI=\"+1 555 0100\""), "\r\nOK\r\n");
        assert_eq!(d.local_id(), "+1 555 0100");
        assert_eq!(say(&mut d, "AT+FCC=0,3,0,2;+FLO=1;+FBO=0"), "\r\nOK\r\n");
        assert_eq!(d.capabilities(), params("0,3,0,2,1,0,0,0"));
        assert_eq!(say(&mut d, "AT+FCR=1;+FNR=1,1,1,0"), "\r\nOK\r\n");
        assert_eq!(say(&mut d, "AT+FNR?"), "\r\n1,1,1,0\r\n\r\nOK\r\n");
        assert_eq!(
            say(&mut d, "AT+FLI=\"012345678901234567890\""),
            "\r\nERROR\r\n"
        );
        assert_eq!(say(&mut d, "AT+FDR"), "\r\nERROR\r\n", "no call to receive");
        assert_eq!(say(&mut d, "ATV0"), "0\r");
        assert_eq!(say(&mut d, "ATX"), "0\r");
        assert_eq!(say(&mut d, "ATV1"), "\r\nOK\r\n");
        assert_eq!(d.poll_request(), None);
    }

    /// The initialisation HylaFAX's `faxgetty` (ModemType Class2.0, the package's stock Class 2.0
    /// commands) sends, recorded with strace on the emulator's pty; every command must be
    /// taken, and the capability queries answered in T.32 form.
    #[test]
    fn faxgetty_init_dialogue() {
        let mut d = Dce::new();
        let steps: &[(&[u8], &[u8])] = &[
            (b"ATZ\r", b"ATZ\r\r\nOK\r\n"),
            (b"ATS0=0\r", b"ATS0=0\r\r\nOK\r\n"),
            (b"ATE0\r", b"ATE0\r\r\nOK\r\n"),
            (b"ATV1\r", b"\r\nOK\r\n"),
            (b"ATQ0\r", b"\r\nOK\r\n"),
            (b"ATS8=2\r", b"\r\nOK\r\n"),
            (b"ATS7=60\r", b"\r\nOK\r\n"),
            (b"AT+FCLASS=?\r", b"\r\n0,2.0\r\n\r\nOK\r\n"),
            (b"AT+FCLASS=2.0\r", b"\r\nOK\r\n"),
            (b"AT+FMI?\r", b"\r\nfaxgate\r\n\r\nOK\r\n"),
            (b"AT+FMM?\r", b"\r\nClass 2.0 emulator\r\n\r\nOK\r\n"),
            (
                b"AT+FCC=?\r",
                b"\r\n(0,1),(0-5),(0),(0-2),(0,1),(0),(0),(0-7)\r\n\r\nOK\r\n",
            ),
            (b"AT+FCQ=?\r", b"\r\n(0),(0)\r\n\r\nOK\r\n"),
            (b"AT+FAP=?\r", b"\r\n(0),(0),(0)\r\n\r\nOK\r\n"),
            (b"AT+FSP=?\r", b"\r\n(0)\r\n\r\nOK\r\n"),
            (b"AT+FLO=1\r", b"\r\nOK\r\n"),
            (b"AT+FPP=0\r", b"\r\nOK\r\n"),
            (b"AT+FBO=0\r", b"\r\nOK\r\n"),
            (b"AT+FCT=30\r", b"\r\nOK\r\n"),
            (b"AT+FNR=1,1,1,1\r", b"\r\nOK\r\n"),
            (b"AT+FIE=0\r", b"\r\nOK\r\n"),
            (b"AT+FBU=1\r", b"\r\nOK\r\n"),
            (b"AT+FCC=1,5,0,2,1,0,0,0\r", b"\r\nOK\r\n"),
            (b"ATL0M1\r", b"\r\nOK\r\n"),
            (b"AT+FLI=\"+1 555 0001         \"\r", b"\r\nOK\r\n"),
            (b"AT+FCR=1\r", b"\r\nOK\r\n"),
        ];
        for (host, dce) in steps {
            d.on_input(host);
            assert_eq!(
                String::from_utf8_lossy(&d.take_output()),
                String::from_utf8_lossy(dce),
                "after {}",
                String::from_utf8_lossy(host)
            );
        }
        assert_eq!(d.capabilities(), params("1,5,0,2,1,0,0,0"));
        // The ID is stored as given (T.30 pads it to 20 characters anyway).
        assert_eq!(d.local_id(), "+1 555 0001         ");
        assert_eq!(d.poll_request(), None);
        // Other capability queries a host may make.
        assert_eq!(say(&mut d, "AT+FCR=?"), "\r\n(0,1)\r\n\r\nOK\r\n");
        assert_eq!(say(&mut d, "AT+FXYZ=?"), "\r\nERROR\r\n");
    }

    #[test]
    fn two_page_send_transcript() {
        let mut d = Dce::new();
        say(&mut d, "ATE0");
        say(&mut d, "AT+FCLASS=2.0");
        // Dial modifiers and spaces go; digits stay.
        assert_eq!(say(&mut d, "ATDT 555-0123"), "");
        assert_eq!(d.poll_request(), Some(Request::Dial("5550123".into())));
        d.on_call(CallEvent::Connected {
            remote_id: Some("EFAX".into()),
            remote: params("1,3,0,2,0,0,0,0"),
        });
        assert_eq!(
            out(&mut d),
            "\r\n+FCO\r\n\r\n+FCI:\"EFAX\"\r\n\r\n+FIS:1,3,0,2,0,0,0,0\r\n\r\nOK\r\n"
        );
        // +FET before any page is refused.
        assert_eq!(say(&mut d, "AT+FET=0"), "\r\nERROR\r\n");
        for (n, post) in [(0u8, PostPage::Mps), (2, PostPage::Eop)] {
            assert_eq!(say(&mut d, "AT+FDT"), "");
            d.on_call(CallEvent::PageReady(params("1,3,0,2,0,0,0,0")));
            assert_eq!(
                out(&mut d),
                "\r\n+FCS:1,3,0,2,0,0,0,0\r\n\r\nCONNECT\r\n\x11"
            );
            // One DLE doubled, one <DLE><SUB> pair, a stray <DLE>x dropped, then the end.
            d.on_input(&[0x00, DLE, DLE, 0x80, DLE, SUB, DLE, b'x', 0x11, 0x13, DLE]);
            assert_eq!(out(&mut d), "");
            d.on_input(&[ETX]);
            assert_eq!(out(&mut d), "\r\nOK\r\n");
            assert_eq!(
                say(&mut d, "AT+FDT"),
                "\r\nERROR\r\n",
                "page waits for +FET"
            );
            assert_eq!(say(&mut d, &format!("AT+FET={n}")), "");
            assert_eq!(
                d.poll_request(),
                Some(Request::SendPage {
                    data: vec![0x00, DLE, 0x80, DLE, DLE, 0x11, 0x13],
                    post
                })
            );
            d.on_call(CallEvent::PageResult(PageResponse::Mcf));
            if post == PostPage::Mps {
                assert_eq!(out(&mut d), "\r\n+FPS:1\r\n\r\nOK\r\n");
            } else {
                assert_eq!(out(&mut d), "\r\n+FPS:1\r\n");
                d.on_call(CallEvent::Ended(HangupCode(0)));
                assert_eq!(out(&mut d), "\r\n+FHS:00\r\n\r\nOK\r\n");
            }
        }
        assert!(!d.in_call());
        assert_eq!(say(&mut d, "AT+FHS?"), "\r\n00\r\n\r\nOK\r\n");
        assert_eq!(d.poll_request(), None);
    }

    #[test]
    fn in_band_post_page_message() {
        let mut d = Dce::new();
        say(&mut d, "ATE0;+FCLASS=2.0");
        say(&mut d, "ATD1");
        d.on_call(CallEvent::Connected {
            remote_id: None,
            remote: params("0,1,0,0,0,0,0,0"),
        });
        say(&mut d, "AT+FDT");
        d.on_call(CallEvent::PageReady(params("0,1,0,0,0,0,0,0")));
        out(&mut d);
        d.on_input(&[0x55, DLE, b',']);
        assert_eq!(out(&mut d), "");
        assert_eq!(d.poll_request(), Some(Request::Dial("1".into())));
        assert_eq!(
            d.poll_request(),
            Some(Request::SendPage {
                data: vec![0x55],
                post: PostPage::Mps
            })
        );
        d.on_call(CallEvent::PageResult(PageResponse::Mcf));
        assert_eq!(out(&mut d), "\r\n+FPS:1\r\n\r\nOK\r\n");
        // The engine wants page 2 before the host asks: +FDT connects at once.
        d.on_call(CallEvent::PageReady(params("0,1,0,0,0,0,0,0")));
        assert_eq!(out(&mut d), "");
        assert_eq!(
            say(&mut d, "AT+FDT"),
            "\r\n+FCS:0,1,0,0,0,0,0,0\r\n\r\nCONNECT\r\n\x11"
        );
        d.on_input(&[0xAA, DLE, b'.']);
        assert_eq!(
            d.poll_request(),
            Some(Request::SendPage {
                data: vec![0xAA],
                post: PostPage::Eop
            })
        );
        d.on_call(CallEvent::PageResult(PageResponse::Mcf));
        d.on_call(CallEvent::Ended(HangupCode(0)));
        assert_eq!(out(&mut d), "\r\n+FPS:1\r\n\r\n+FHS:00\r\n\r\nOK\r\n");
        assert!(!d.in_call());
    }

    #[test]
    fn failed_dials_and_hangups() {
        let mut d = Dce::new();
        say(&mut d, "ATE0");
        assert_eq!(say(&mut d, "ATD123"), "\r\nERROR\r\n", "not in fax class");
        say(&mut d, "AT+FCLASS=2.0");
        say(&mut d, "ATD123");
        d.on_call(CallEvent::DialFailed(DialFailure::Busy));
        assert_eq!(out(&mut d), "\r\nBUSY\r\n");
        assert_eq!(d.poll_request(), Some(Request::Dial("123".into())));
        // A key pressed while dialling aborts the dial.
        say(&mut d, "ATD123");
        d.on_input(b"x");
        assert_eq!(out(&mut d), "\r\nNO CARRIER\r\n");
        assert_eq!(d.poll_request(), Some(Request::Dial("123".into())));
        assert_eq!(d.poll_request(), Some(Request::HangUp));
        // The remote gives up during +FDT: +FHS and ERROR.
        say(&mut d, "ATD123");
        d.on_call(CallEvent::Connected {
            remote_id: None,
            remote: params("0,1,0,0,0,0,0,0"),
        });
        out(&mut d);
        say(&mut d, "AT+FDT");
        d.on_call(CallEvent::Ended(HangupCode(0x25)));
        assert_eq!(out(&mut d), "\r\n+FHS:25\r\n\r\nERROR\r\n");
        assert!(!d.in_call());
        // A late event changes nothing.
        d.on_call(CallEvent::PageResult(PageResponse::Mcf));
        assert_eq!(out(&mut d), "");
    }

    #[test]
    fn reversed_bit_order_and_rtn() {
        let mut d = Dce::new();
        say(&mut d, "ATE0;+FCLASS=2.0;+FBO=1");
        say(&mut d, "ATD1");
        d.on_call(CallEvent::Connected {
            remote_id: None,
            remote: params("0,1,0,0,0,0,0,0"),
        });
        say(&mut d, "AT+FDT");
        d.on_call(CallEvent::PageReady(params("0,1,0,0,0,0,0,0")));
        d.on_input(&[0x01, 0x80, DLE, ETX]);
        say(&mut d, "AT+FET=2");
        assert_eq!(d.poll_request(), Some(Request::Dial("1".into())));
        assert_eq!(
            d.poll_request(),
            Some(Request::SendPage {
                data: vec![0x80, 0x01],
                post: PostPage::Eop
            })
        );
        out(&mut d);
        // RTN: the host hears it and may send the page again.
        d.on_call(CallEvent::PageResult(PageResponse::Rtn));
        assert_eq!(out(&mut d), "\r\n+FPS:2\r\n\r\nOK\r\n");
        assert!(d.in_call());
    }

    #[test]
    fn long_lines_and_garbage_are_errors() {
        let mut d = Dce::new();
        say(&mut d, "ATE0");
        let long = format!("AT{}", "Z".repeat(MAX_LINE + 10));
        assert_eq!(say(&mut d, &long), "\r\nERROR\r\n");
        assert_eq!(say(&mut d, "AT+FCC=1,ZZZ"), "\r\nERROR\r\n");
        assert_eq!(say(&mut d, "AT%%%"), "\r\nERROR\r\n");
        assert_eq!(say(&mut d, "hello"), "", "not a command line");
    }

    fn status(response: PageResponse, lines: u32, bad: u32) -> PageStatus {
        PageStatus {
            response,
            lines: Some(lines),
            bad_lines: Some(bad),
        }
    }

    /// A call answered with ATA, up to the caller's DCS.
    fn answered(d: &mut Dce, session: &str) {
        say(d, "ATE0;+FCLASS=2.0;+FCR=1");
        assert_eq!(say(d, "ATA"), "");
        assert_eq!(d.poll_request(), Some(Request::Answer));
        d.on_call(CallEvent::Negotiated {
            remote_id: Some("EFAX \"1\"".into()),
            session: params(session),
        });
        assert_eq!(
            out(d),
            format!("\r\n+FCO\r\n\r\n+FTI:\"EFAX 1\"\r\n\r\n+FCS:{session}\r\n\r\nOK\r\n")
        );
    }

    #[test]
    fn two_page_receive_transcript() {
        let mut d = Dce::new();
        say(&mut d, "ATE0;+FCLASS=2.0;+FCR=1");
        d.on_call(CallEvent::Ring);
        assert_eq!(out(&mut d), "\r\nRING\r\n");
        assert_eq!(d.poll_request(), None, "S0=0: the host answers");
        answered(&mut d, "1,5,0,2,0,0,0,0");
        // Page data may come before the host's +FDR: it waits.
        d.on_call(CallEvent::PageData(vec![0x00, DLE, 0x80]));
        assert_eq!(out(&mut d), "");
        assert_eq!(say(&mut d, "AT+FDR"), "\r\nCONNECT\r\n");
        // T.32 §8.3.4: nothing before the host's <DC2>.
        assert_eq!(out(&mut d), "");
        d.on_input(&[DC2]);
        assert_eq!(d.take_output(), [0x00, DLE, DLE, 0x80]);
        d.on_call(CallEvent::PageData(vec![DLE, 0x01]));
        assert_eq!(d.take_output(), [DLE, DLE, 0x01]);
        d.on_call(CallEvent::PageEnd {
            post: PostPage::Mps,
            status: status(PageResponse::Mcf, 2200, 0),
        });
        assert_eq!(
            d.take_output(),
            b"\x10\x03\r\n+FPS:1,898,0,0,0\r\n\r\n+FET:0\r\n\r\nOK\r\n"
        );
        // The answer (MCF) is held until the next +FDR.
        assert_eq!(d.poll_request(), None);
        assert_eq!(say(&mut d, "AT+FPS?"), "\r\n1\r\n\r\nOK\r\n");
        assert_eq!(say(&mut d, "AT+FDR"), "");
        assert_eq!(d.poll_request(), Some(Request::Release(PageResponse::Mcf)));
        d.on_call(CallEvent::PageData(vec![0x55]));
        assert_eq!(out(&mut d), "\r\nCONNECT\r\n");
        d.on_input(&[DC2]);
        d.on_call(CallEvent::PageEnd {
            post: PostPage::Eop,
            status: status(PageResponse::Mcf, 16, 0),
        });
        assert_eq!(
            d.take_output(),
            b"\x55\x10\x03\r\n+FPS:1,10,0,0,0\r\n\r\n+FET:2\r\n\r\nOK\r\n"
        );
        // After EOP, +FDR releases the MCF and ends with the call.
        assert_eq!(say(&mut d, "AT+FDR"), "");
        assert_eq!(d.poll_request(), Some(Request::Release(PageResponse::Mcf)));
        assert!(d.in_call());
        d.on_call(CallEvent::Ended(HangupCode(0)));
        assert_eq!(out(&mut d), "\r\n+FHS:00\r\n\r\nOK\r\n");
        assert!(!d.in_call());
        assert_eq!(say(&mut d, "AT+FDR"), "\r\nERROR\r\n", "no call");
        assert_eq!(d.poll_request(), None);
    }

    #[test]
    fn auto_answer_and_refusal_without_fcr() {
        let mut d = Dce::new();
        say(&mut d, "ATE0;+FCLASS=2.0");
        assert_eq!(say(&mut d, "ATS0=2"), "\r\nOK\r\n");
        assert_eq!(say(&mut d, "ATS0?"), "\r\n002\r\n\r\nOK\r\n");
        // +FCR=0 (the default, T.32 §8.5.1): rings are reported, nothing is answered.
        assert_eq!(say(&mut d, "AT+FCR?"), "\r\n0\r\n\r\nOK\r\n");
        for _ in 0..3 {
            d.on_call(CallEvent::Ring);
            assert_eq!(out(&mut d), "\r\nRING\r\n");
        }
        assert_eq!(d.poll_request(), None);
        assert_eq!(say(&mut d, "ATA"), "\r\nERROR\r\n");
        assert_eq!(d.poll_request(), None);
        // +FCR=1: the second ring of a new call answers.
        say(&mut d, "AT+FCR=1");
        d.on_call(CallEvent::RingingStopped);
        d.on_call(CallEvent::Ring);
        assert_eq!(d.poll_request(), None);
        d.on_call(CallEvent::Ring);
        assert_eq!(out(&mut d), "\r\nRING\r\n\r\nRING\r\n");
        assert_eq!(d.poll_request(), Some(Request::Answer));
        d.on_call(CallEvent::Negotiated {
            remote_id: None,
            session: params("0,3,0,2,0,0,0,0"),
        });
        assert_eq!(
            out(&mut d),
            "\r\n+FCO\r\n\r\n+FCS:0,3,0,2,0,0,0,0\r\n\r\nOK\r\n"
        );
        // The caller gives up before any page: unsolicited +FHS.
        d.on_call(CallEvent::Ended(HangupCode(0x73)));
        assert_eq!(out(&mut d), "\r\n+FHS:73\r\n");
        assert!(!d.in_call());
        // An answer that finds no fax caller: +FHS and NO CARRIER; a key aborts an answer.
        say(&mut d, "ATA");
        d.on_call(CallEvent::Ended(HangupCode(0x11)));
        assert_eq!(out(&mut d), "\r\n+FHS:11\r\n\r\nNO CARRIER\r\n");
        say(&mut d, "ATA");
        d.on_input(b"x");
        assert_eq!(out(&mut d), "\r\nNO CARRIER\r\n");
        assert_eq!(d.poll_request(), Some(Request::Answer));
        assert_eq!(d.poll_request(), Some(Request::Answer));
        assert_eq!(d.poll_request(), Some(Request::HangUp));
        assert!(!d.in_call());
    }

    #[test]
    fn host_rtn_flow_control_bit_order_and_cancel() {
        let mut d = Dce::new();
        say(&mut d, "ATE0;+FLO=1;+FBO=1");
        answered(&mut d, "1,5,0,2,0,0,0,0");
        assert_eq!(say(&mut d, "AT+FDT"), "\r\nERROR\r\n", "a receive call");
        assert_eq!(say(&mut d, "AT+FDR"), "");
        d.on_call(CallEvent::PageData(vec![0x01, 0x02]));
        assert_eq!(out(&mut d), "\r\nCONNECT\r\n");
        // Class 2 hosts send <DC1> for <DC2>; then XOFF holds the data until XON.
        d.on_input(&[XON, XOFF]);
        assert_eq!(out(&mut d), "");
        assert!(!d.has_page_data());
        d.on_input(&[XON]);
        assert!(d.has_page_data());
        // +FBO=1: reversed bit order toward the host.
        assert_eq!(d.take_output(), [0x80, 0x40]);
        d.on_call(CallEvent::PageEnd {
            post: PostPage::Mps,
            status: status(PageResponse::Mcf, 1, 0),
        });
        out(&mut d);
        // The host's copy-quality check overrules: RTN (T.32 §8.3.4).
        assert_eq!(say(&mut d, "AT+FPS=2"), "\r\nOK\r\n");
        assert_eq!(say(&mut d, "AT+FPS?"), "\r\n2\r\n\r\nOK\r\n");
        assert_eq!(say(&mut d, "AT+FDR"), "");
        assert_eq!(d.poll_request(), Some(Request::Release(PageResponse::Rtn)));
        // The sender retrains (a new DCS): +FCS comes with the next CONNECT.
        d.on_call(CallEvent::Negotiated {
            remote_id: None,
            session: params("1,3,0,2,0,0,0,0"),
        });
        assert_eq!(out(&mut d), "");
        d.on_call(CallEvent::PageData(vec![0xFF]));
        assert_eq!(out(&mut d), "\r\n+FCS:1,3,0,2,0,0,0,0\r\n\r\nCONNECT\r\n");
        // <CAN> from the host ends the reception.
        d.on_input(&[DC2, CAN]);
        assert_eq!(d.take_output(), [DLE, ETX]);
        assert_eq!(d.poll_request(), Some(Request::HangUp));
        d.on_call(CallEvent::Ended(HangupCode(0x02)));
        assert_eq!(out(&mut d), "\r\n+FHS:02\r\n\r\nERROR\r\n");
        assert!(!d.in_call());
    }

    #[test]
    fn call_lost_mid_page_and_page_too_big() {
        let mut d = Dce::new();
        answered(&mut d, "0,1,0,2,0,0,0,0");
        say(&mut d, "AT+FDR");
        d.on_call(CallEvent::PageData(vec![1, 2, 3]));
        d.on_input(&[DC2]);
        out(&mut d);
        d.on_call(CallEvent::PageData(vec![4]));
        d.on_call(CallEvent::Ended(HangupCode(0x90)));
        assert_eq!(d.take_output(), b"\x04\x10\x03\r\n+FHS:90\r\n\r\nERROR\r\n");
        assert!(!d.in_call());

        answered(&mut d, "0,1,0,2,0,0,0,0");
        say(&mut d, "AT+FDR");
        d.on_call(CallEvent::PageData(vec![0; MAX_PAGE_BYTES]));
        out(&mut d);
        d.on_input(&[DC2]);
        d.on_call(CallEvent::PageData(vec![0; 1]));
        let mut got = 0;
        // Bounded: the page drains in RX_CHUNK steps.
        for _ in 0..=MAX_PAGE_BYTES / RX_CHUNK + 1 {
            got += d.take_output().len();
        }
        assert_eq!(
            got,
            MAX_PAGE_BYTES + 2,
            "the page, cut short, then <DLE><ETX>"
        );
        assert_eq!(d.poll_request(), Some(Request::HangUp));
        d.on_call(CallEvent::Ended(HangupCode(0x02)));
        assert_eq!(out(&mut d), "\r\n+FHS:93\r\n\r\nERROR\r\n");
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_and_events_never_panic(
            answer in proptest::bool::ANY,
            chunks in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..64), 0..32),
            events in proptest::collection::vec(0u8..12, 0..32),
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        ) {
            let mut d = Dce::new();
            if answer {
                d.on_input(b"AT+FCLASS=2.0;+FCR=1;S0=1\rATA\r");
            } else {
                d.on_input(b"AT+FCLASS=2.0\rATD1\r");
            }
            let p = default_caps();
            for (i, c) in chunks.iter().enumerate() {
                d.on_input(c);
                let _ = d.take_output();
                while d.poll_request().is_some() {}
                if let Some(e) = events.get(i) {
                    d.on_call(match e {
                        0 => CallEvent::Connected { remote_id: Some("\"x".into()), remote: p },
                        1 => CallEvent::PageReady(p),
                        2 => CallEvent::PageResult(PageResponse::Mcf),
                        3 => CallEvent::Ended(HangupCode(0)),
                        4 => CallEvent::DialFailed(DialFailure::NoCarrier),
                        5 => CallEvent::PageResult(PageResponse::Rtn),
                        6 => CallEvent::Ring,
                        7 => CallEvent::RingingStopped,
                        8 => CallEvent::Negotiated { remote_id: Some("\u{7}\"".into()), session: p },
                        9 => CallEvent::PageData(data.clone()),
                        10 => CallEvent::PageEnd {
                            post: PostPage::Eop,
                            status: status(PageResponse::Rtn, 0, 0),
                        },
                        _ => CallEvent::Ended(HangupCode(0x90)),
                    });
                }
                proptest::prop_assert!(d.line.len() <= MAX_LINE);
                proptest::prop_assert!(d.page.len() <= MAX_PAGE_BYTES);
                proptest::prop_assert!(d.rx.buf.len() <= MAX_PAGE_BYTES);
            }
        }
    }
}
