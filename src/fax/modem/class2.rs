//! PURE: the Class 2.0 driver (ITU-T T.32) — the modem runs T.30, the host moves pages.
//!
//! Like the Class 1 driver ([`super::class1`]) this is sans-IO: the host starts an [`Op`], the
//! driver queues the AT command and data bytes, reads the modem's bytes and reports
//! [`Event`]s; every op carries its timeout as a value and [`Class2Driver::poll_at`] says when
//! the driver next needs [`Class2Driver::on_timeout`]. Nothing here reads a clock or touches a
//! device.
//!
//! A Class 2.0 call, host side (T.32 §8.3 and Figures 8-1 / 8-2):
//!
//! 1. Set-up in command state ([`setup_commands`], [`station_commands`]): `+FCLASS=2.0`,
//!    `+FLO` flow control, `+FCR=1` receive capable, `+FBO=0` direct bit order, `+FNR` reports,
//!    `+FIE=0` no procedure interrupts, `+FLI` local ID, `+FCC` our capabilities (DIS).
//! 2. `Dial` (`ATD…`) → `+FCO` (fax connection), `+FCI:"id"`, `+FIS:…` (the remote's DIS),
//!    `OK`; or `Answer` (`ATA`) → `+FCO`, `+FTI:"id"`, `+FCS:…` (the DCS received), `OK`.
//! 3. Sending, per page: `SendPage` (`+FDT`) → `+FCS:…` (what the modem negotiated) and
//!    `CONNECT`; `PageData` → the T.4 data DLE-stuffed, `<DLE><ETX>`, `OK`; `EndPage`
//!    (`+FET=0/1/2`: MPS/EOM/EOP) → `+FPS:n` (the receiver's answer) and `OK`; after EOP also
//!    `+FHS:00`. A modem that reports no `+FCS` for a page (some report it only at connect,
//!    some never) leaves the coding to [`Class2Driver::page_session`]: the call's last `+FCS`,
//!    else the DCS it makes from our `+FCC` and the remote's DIS. A `+FCS` reported again
//!    (a retrain between pages) is in force from then on.
//! 4. Receiving, per page: `ReceivePage` (`+FDR`) → `+FCS:…` and `CONNECT`, the host sends
//!    `<DC2>`, page data to `<DLE><ETX>`, `+FPS:…` (the modem's copy-quality view), `+FET:n`
//!    (the sender's post-page message), `OK`. The host may overrule the answer with `+FPS=n`
//!    before the next `+FDR`; `+FDR` after EOP ends with `+FHS:00`, `OK`.
//! 5. `+FHS:xx` (hang-up status) may end any op; [`HangupCode`] maps it onto the causes of a
//!    Class 1 call.
//!
//! Class 2 (EIA-592) modems answer with the older names (`+FCON`, `+FCSI:`, `+FTSI:`, `+FDIS:`,
//! `+FDCS:`, `+FPTS:`, `+FHNG:`, decimal hang-up codes); [`parse_report`] takes both spellings.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::at::{AtCommand, FinalResult, Response, ResponseParser};
use super::class1::{ABORT_GRACE, LineCause, MAX_CARRIER_TIME, MAX_RECEIVE_DATA, OpFailure};
use super::dle::{self, Unstuffer};
use super::profile::FlowControl;
use crate::fax::t30::page::PageCoding;
use crate::fax::t30::{Cause, Coding, Modulation, VResolution, Width};

/// Extra wait after `ATD` beyond the dial timeout (ours): a Class 2.0 modem answers `OK` only
/// after phase B's DIS has come, which T.30 bounds by T1 = 35 s (§5.2).
pub const PHASE_B_WAIT: Duration = Duration::from_secs(40);

/// Wait for `CONNECT` after `+FDT` (ours): the modem sends DCS and TCF and may fall back
/// several times (T.30 §5.3.2: each try takes ~3–4 s, up to 3 repeats per rate).
pub const FDT_TIMEOUT: Duration = Duration::from_secs(90);

/// Wait for the post-page answer after `+FET` (ours): T.30 repeats the post-page message
/// three times, T4 = 3 s each, plus the modem's own line turnaround.
pub const FET_TIMEOUT: Duration = Duration::from_secs(40);

/// Wait for `CONNECT` or the hang-up report after `+FDR` (ours): the modem answers the last
/// page, then waits T2 = 6 s (T.30 §5.2) per try for the next one or for DCN.
pub const FDR_TIMEOUT: Duration = Duration::from_secs(90);

/// Most report lines kept for one command (ours): a probe answers a handful.
const MAX_INFO_LINES: usize = 32;

/// DC1 (XON): the modem may send more (T.32 §8.3.3 flow control, and the "ready for data"
/// signal of Class 2 modems after `CONNECT` to `+FDT`).
pub const XON: u8 = 0x11;
/// DC2: the host is ready for received page data (T.32 §8.3.4, after `CONNECT` to `+FDR`).
pub const DC2: u8 = 0x12;
/// DC3 (XOFF): the modem's buffer is full; hold page data.
pub const XOFF: u8 = 0x13;
/// CAN: aborts a data transfer (T.32 §8.3.3 / §8.3.4).
pub const CAN: u8 = 0x18;

/// Session parameters (T.32 Table 21, the `+FCC`/`+FIS`/`+FCS` subparameters): VR, BR, WD,
/// LN, DF, EC, BF, ST (further ones, such as JP, are kept out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionParams {
    /// Vertical resolution: 0 = 3.85 l/mm, 1 = 7.7 l/mm (bit 1 = 15.4 l/mm in T.32's bit map).
    pub vr: u8,
    /// Bit rate: 0 = 2400 … 5 = 14 400 bit/s.
    pub br: u8,
    /// Page width: 0 = 1728 pels, 1 = 2048, 2 = 2432.
    pub wd: u8,
    /// Page length: 0 = A4, 1 = B4, 2 = unlimited.
    pub ln: u8,
    /// Data format: 0 = MH, 1 = MR, 2 = uncompressed, 3 = MMR.
    pub df: u8,
    /// Error correction: 0 = off, 1 or 2 = Annex A ECM on.
    pub ec: u8,
    /// Binary file transfer: 0 = off.
    pub bf: u8,
    /// Minimum scan line time code (T.30 Table 2 bits 21–23 in T.32's numbering): 0 = 0 ms,
    /// 1 = 5, 2 = 10/5, 3 = 10, 4 = 20/10, 5 = 20, 6 = 40/20, 7 = 40 (normal/fine).
    pub st: u8,
}

/// Why negotiated parameters cannot be used for page data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// A value outside what T.32 Table 21 defines (or what faxgate codes).
    #[error("session parameter {0} has a value faxgate cannot code")]
    Unsupported(&'static str),
    /// MMR without ECM: T.4 §4.3 / T.30 Annex A allow T.6 coding only under ECM.
    #[error("the modem negotiated MMR without error correction")]
    MmrWithoutEcm,
}

impl SessionParams {
    /// Parse `1,5,0,2,1,0,0,0` (values hexadecimal, T.32 §8.5.1; extra values ignored).
    /// `None` when fewer than the 8 values are there or one is not a number.
    pub fn parse(text: &str) -> Option<SessionParams> {
        let mut v = [0u8; 8];
        let mut items = text.trim().split(',');
        for slot in v.iter_mut() {
            let item = items.next()?.trim();
            if item.is_empty() || item.len() > 2 {
                return None;
            }
            *slot = u8::from_str_radix(item, 16).ok()?;
        }
        Some(SessionParams {
            vr: v[0],
            br: v[1],
            wd: v[2],
            ln: v[3],
            df: v[4],
            ec: v[5],
            bf: v[6],
            st: v[7],
        })
    }

    /// Our capabilities for `+FCC`: fine resolution, up to `max_bps`, A4 width, any length,
    /// `max_coding` (MMR only with ECM), ECM as asked, no BFT, 0 ms scan time (we decode
    /// lines as fast as they come).
    pub fn ours(max_bps: u32, ecm: bool, max_coding: Coding) -> SessionParams {
        let br = (0u8..=5)
            .rev()
            .find(|&b| (u32::from(b) + 1) * 2400 <= max_bps)
            .unwrap_or(0);
        let df = match max_coding {
            Coding::Mh => 0,
            Coding::Mr => 1,
            Coding::Mmr if ecm => 3,
            Coding::Mmr => 1,
        };
        SessionParams {
            vr: 1,
            br,
            wd: 0,
            ln: 2,
            df,
            ec: u8::from(ecm),
            bf: 0,
            st: 0,
        }
    }

    /// The session a T.32 DCE composes from these parameters (our `+FIS`, which follows
    /// `+FCC` when the host never sets it, T.32 §8.5.1.2) and the remote's DIS (`+FIS:`
    /// reported at connect): the best of each that both offer, as T.30 §5.3.6.1 has the
    /// sender choose DCS within DIS. Used only when the modem does not report `+FCS`.
    pub fn dcs_for(&self, dis: &SessionParams) -> SessionParams {
        let ec = if self.ec != 0 && dis.ec != 0 {
            self.ec.min(dis.ec)
        } else {
            0
        };
        // DF ranks MH < MR < MMR (2, uncompressed mode, counts as MR: it needs 2-D too);
        // MMR only under ECM (T.4 §4.3).
        let rank = |df: u8| match df {
            0 => 0,
            1 | 2 => 1,
            _ => 2,
        };
        let df = match rank(self.df).min(rank(dis.df)) {
            2 if ec != 0 => 3,
            0 => 0,
            _ => 1,
        };
        let mut dcs = SessionParams {
            vr: self.vr & dis.vr,
            br: self.br.min(dis.br),
            wd: self.wd.min(dis.wd),
            ln: self.ln.min(dis.ln),
            df,
            ec,
            bf: 0,
            st: dis.st,
        }
        .single();
        // The receiver's scan-line time rules; a longer one of ours (if set) too.
        let theirs = dcs.scan_time_ms();
        dcs.st = self.st;
        if dcs.scan_time_ms() < theirs {
            dcs.st = dis.st;
        }
        dcs
    }

    /// These capabilities as one session's parameters: the VR bit map reduced to its best
    /// resolution (a DCS names one, T.32 Table 21).
    pub fn single(mut self) -> SessionParams {
        self.vr = if self.vr & 2 != 0 { 2 } else { self.vr & 1 };
        self
    }

    /// The values as `+FCC=`/`+FIS=` arguments.
    pub fn to_args(&self) -> String {
        format!(
            "{:X},{:X},{:X},{:X},{:X},{:X},{:X},{:X}",
            self.vr, self.br, self.wd, self.ln, self.df, self.ec, self.bf, self.st
        )
    }

    /// The line rate in bit/s (`None` past 14 400: V.34 rates are not Group 3 T.30).
    pub fn bps(&self) -> Option<u32> {
        (self.br <= 5).then(|| (u32::from(self.br) + 1) * 2400)
    }

    /// The T.30 modulation that carries this rate (V.27 ter at 2400/4800, V.29 at 7200/9600,
    /// V.17 above: the modem does not say which it trained with, so the report names the
    /// usual one).
    pub fn modulation(&self) -> Option<Modulation> {
        Some(match self.bps()? {
            2400 => Modulation::V27ter2400,
            4800 => Modulation::V27ter4800,
            7200 => Modulation::V29_7200,
            9600 => Modulation::V29_9600,
            12000 => Modulation::V17_12000,
            _ => Modulation::V17_14400,
        })
    }

    /// Vertical resolution (T.32's VR bit map: bit 0 fine, bit 1 superfine).
    pub fn resolution(&self) -> VResolution {
        if self.vr & 2 != 0 {
            VResolution::Superfine
        } else if self.vr & 1 != 0 {
            VResolution::Fine
        } else {
            VResolution::Standard
        }
    }

    /// ECM is on (as the modem says — see the module docs of `class2_session` for what
    /// faxgate does when the line shows otherwise).
    pub fn ecm(&self) -> bool {
        self.ec != 0
    }

    /// The minimum scan line time at this resolution, ms (T.30 Table 2 bits 21–23).
    pub fn scan_time_ms(&self) -> u32 {
        let fine = self.resolution() != VResolution::Standard;
        match (self.st, fine) {
            (0, _) => 0,
            (1, _) => 5,
            (2, false) => 10,
            (2, true) => 5,
            (3, _) => 10,
            (4, false) => 20,
            (4, true) => 10,
            (5, _) => 20,
            (6, false) => 40,
            (6, true) => 20,
            _ => 40,
        }
    }

    /// How page data must be coded for this session.
    ///
    /// The scan-line fill is applied whatever the modem says about ECM: fill is harmless
    /// under ECM (T.4 fill bits are legal anywhere before an EOL), and it keeps a page
    /// decodable if the modem claimed ECM and then sent the page without it.
    pub fn page_coding(&self) -> Result<PageCoding, ParamError> {
        let coding = match self.df {
            0 => Coding::Mh,
            1 => Coding::Mr,
            3 => Coding::Mmr,
            _ => return Err(ParamError::Unsupported("DF")),
        };
        if coding == Coding::Mmr && !self.ecm() {
            return Err(ParamError::MmrWithoutEcm);
        }
        let width = match self.wd {
            0 => Width::A4,
            1 => Width::B4,
            2 => Width::A3,
            _ => return Err(ParamError::Unsupported("WD")),
        };
        let bps = self.bps().ok_or(ParamError::Unsupported("BR"))?;
        let resolution = self.resolution();
        Ok(PageCoding {
            coding,
            resolution,
            width,
            k: PageCoding::k_for(resolution),
            min_line_bits: bps * self.scan_time_ms() / 1000,
            ecm: self.ecm(),
        })
    }
}

/// Post-page message the host sends with `+FET=n` (T.32 §8.3.3.6) or the modem reports with
/// `+FET:n` on receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PostPage {
    /// 0: another page of the same document follows (T.30 MPS).
    Mps,
    /// 1: another document follows (T.30 EOM).
    Eom,
    /// 2: no more pages (T.30 EOP).
    Eop,
}

impl PostPage {
    /// The `+FET` value.
    pub fn value(self) -> u8 {
        match self {
            PostPage::Mps => 0,
            PostPage::Eom => 1,
            PostPage::Eop => 2,
        }
    }

    fn from_value(v: u32) -> Option<PostPage> {
        // 3–5 are the PRI-Q variants (procedure interrupt asked): the page counts the same.
        Some(match v {
            0 | 3 => PostPage::Mps,
            1 | 4 => PostPage::Eom,
            2 | 5 => PostPage::Eop,
            _ => return None,
        })
    }
}

/// The receiver's answer to a page (T.32 `+FPS` values, T.30 §5.3.6.1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PageResponse {
    /// 1: MCF, page good.
    Mcf,
    /// 2: RTN, page bad, retrain.
    Rtn,
    /// 3: RTP, page good, retrain.
    Rtp,
    /// 4: PIN, page bad, interrupt.
    Pin,
    /// 5: PIP, page good, interrupt.
    Pip,
}

impl PageResponse {
    /// The `+FPS` value.
    pub fn value(self) -> u8 {
        match self {
            PageResponse::Mcf => 1,
            PageResponse::Rtn => 2,
            PageResponse::Rtp => 3,
            PageResponse::Pin => 4,
            PageResponse::Pip => 5,
        }
    }

    /// The response with this `+FPS` value.
    pub fn from_value(v: u32) -> Option<PageResponse> {
        Some(match v {
            1 => PageResponse::Mcf,
            2 => PageResponse::Rtn,
            3 => PageResponse::Rtp,
            4 => PageResponse::Pin,
            5 => PageResponse::Pip,
            _ => return None,
        })
    }

    /// The page was accepted (MCF, RTP, PIP).
    pub fn accepted(self) -> bool {
        matches!(
            self,
            PageResponse::Mcf | PageResponse::Rtp | PageResponse::Pip
        )
    }
}

/// `+FPS:` as a receiving modem reports it: its answer and line counts (T.32 §8.3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageStatus {
    /// The answer the modem would send.
    pub response: PageResponse,
    /// Lines counted, if reported.
    pub lines: Option<u32>,
    /// Bad lines, if reported.
    pub bad_lines: Option<u32>,
}

/// A hang-up status (`+FHS:xx`, T.32 Table 23; Class 2 `+FHNG:n`). Kept in T.32's
/// hexadecimal numbering: `0x52` is "52", `0xA0` is "A0" (Class 2's decimal 100).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HangupCode(pub u8);

/// What a hang-up status means for the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangupMeaning {
    /// 00: the call ended normally.
    Normal,
    /// The call was never set up (phase A): the same verdict a Class 1 `ATD` would give.
    Line(LineCause),
    /// The call ended with this T.30 cause.
    Cause(Cause),
}

impl HangupCode {
    /// Parse `+FHS:` text (hexadecimal, T.32) or, with `decimal`, `+FHNG:` text (EIA-592).
    pub fn parse(text: &str, decimal: bool) -> Option<HangupCode> {
        let t = text.trim();
        if t.is_empty() || t.len() > 3 {
            return None;
        }
        if decimal {
            let n: u32 = t.parse().ok()?;
            // EIA-592 numbers 0–99 read like T.32's hex digits; 100–103 are T.32's A0–A3.
            let code = if n >= 100 {
                0xA0 + u8::try_from(n - 100).ok().filter(|v| *v <= 0x0F)?
            } else {
                u8::from_str_radix(&n.to_string(), 16).ok()?
            };
            Some(HangupCode(code))
        } else {
            u8::from_str_radix(t, 16).ok().map(HangupCode)
        }
    }

    /// The code as the modem prints it in Class 2.0.
    pub fn text(self) -> String {
        format!("{:02X}", self.0)
    }

    /// T.32 Table 23's meaning, in faxgate's terms. Codes T.32 groups by phase; unknown codes
    /// in a group take the group's "unspecified" meaning.
    pub fn meaning(self) -> HangupMeaning {
        use HangupMeaning::{Cause as C, Line, Normal};
        match self.0 {
            0x00 => Normal,
            // 01 ring without handshake, 03 no loop current, 04 ringback without answer,
            // 05 answered without CED: phase A, as Class 1's NO ANSWER / NO CARRIER.
            0x01 | 0x04 => Line(LineCause::NoAnswer),
            0x03 => Line(LineCause::NoDialtone),
            0x05 => Line(LineCause::NoCarrier),
            // 02: aborted by +FKS or <CAN> — ours.
            0x02 => C(Cause::LocalAbort),
            // 10 unspecified phase A, 11 no answer (T1).
            0x10..=0x1F => C(Cause::T1Expired),
            // 21 remote cannot receive or send.
            0x21 => C(Cause::Incompatible),
            // 25 DCS sent three times without response.
            0x25 => C(Cause::NoResponse),
            // 27 failure to train at 2400 bit/s or the +FMS minimum.
            0x27 => C(Cause::TrainingFailed),
            // 20, 22–24, 26, 28: COMREC/RSPREC errors in transmit phase B.
            0x20..=0x2F => C(Cause::ProtocolError),
            // 41–47: image format errors — the data we sent did not suit the modem.
            0x41..=0x42 | 0x44..=0x47 => C(Cause::DocumentError),
            // 40 unspecified phase C, 43 DTE-to-DCE underflow.
            0x40..=0x4F => C(Cause::CarrierLost),
            // 52/54/56: no response to MPS/EOP/EOM three times.
            0x52 | 0x54 | 0x56 => C(Cause::NoResponse),
            // 58: no way on after PIN/PIP.
            0x58 => C(Cause::Interrupted),
            0x50..=0x5F => C(Cause::ProtocolError),
            // 73: T2 expired, no page; 74: T1 expired after EOM.
            0x73 => C(Cause::T2Expired),
            0x74 => C(Cause::T1Expired),
            0x70..=0x7F => C(Cause::ProtocolError),
            // 92: bad frames under ECM.
            0x92 => C(Cause::EcmFailed),
            // 90 unspecified phase C, 91 missing EOL, 93 DCE-to-DTE overflow.
            0x90..=0x9F => C(Cause::CarrierLost),
            0xA3 => C(Cause::Interrupted),
            0xA0..=0xAF => C(Cause::ProtocolError),
            _ => C(Cause::CarrierLost),
        }
    }
}

/// A `+F…` report line from the modem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// `+FCO` (`+FCON`): fax connection made.
    FaxConnection,
    /// `+FCI:` (`+FCSI:`): the called station's ID.
    CalledId(String),
    /// `+FTI:` (`+FTSI:`): the calling station's ID.
    CallingId(String),
    /// `+FIS:` (`+FDIS:`): the remote's capabilities (its DIS).
    RemoteCapabilities(SessionParams),
    /// `+FCS:` (`+FDCS:`): the session parameters in force (the DCS).
    Session(SessionParams),
    /// `+FPS:` (`+FPTS:`): a page's status.
    PageStatus(PageStatus),
    /// `+FET:`: the sender's post-page message.
    PostPage(PostPage),
    /// `+FHS:` (`+FHNG:`): hang-up status.
    Hangup(HangupCode),
    /// Any other `+F` line (`+FNF:`, `+FPO`, …), or one whose values do not parse.
    Other(String),
}

/// Classify a report line (`None` if it is not a `+F` report).
pub fn parse_report(line: &str) -> Option<Report> {
    let t = line.trim();
    if !t.starts_with("+F") {
        return None;
    }
    let (name, value) = match t.split_once(':') {
        Some((n, v)) => (n.trim(), v.trim()),
        None => (t, ""),
    };
    let quoted = || value.trim_matches('"').trim().chars().take(20).collect();
    let other = || Some(Report::Other(t.chars().take(80).collect()));
    Some(match name {
        "+FCO" | "+FCON" => Report::FaxConnection,
        "+FCI" | "+FCSI" => Report::CalledId(quoted()),
        "+FTI" | "+FTSI" => Report::CallingId(quoted()),
        "+FIS" | "+FDIS" => match SessionParams::parse(value) {
            Some(p) => Report::RemoteCapabilities(p),
            None => return other(),
        },
        "+FCS" | "+FDCS" => match SessionParams::parse(value) {
            Some(p) => Report::Session(p),
            None => return other(),
        },
        "+FPS" | "+FPTS" => {
            let nums: Vec<Option<u32>> = value
                .split(',')
                .take(4)
                .map(|s| u32::from_str_radix(s.trim(), if name == "+FPS" { 16 } else { 10 }).ok())
                .collect();
            match nums
                .first()
                .copied()
                .flatten()
                .and_then(PageResponse::from_value)
            {
                Some(response) => Report::PageStatus(PageStatus {
                    response,
                    lines: nums.get(1).copied().flatten(),
                    bad_lines: nums.get(2).copied().flatten(),
                }),
                None => return other(),
            }
        }
        "+FET" => match value.parse().ok().and_then(PostPage::from_value) {
            Some(p) => Report::PostPage(p),
            None => return other(),
        },
        "+FHS" | "+FHNG" => match HangupCode::parse(value, name == "+FHNG") {
            Some(c) => Report::Hangup(c),
            None => return other(),
        },
        _ => return other(),
    })
}

/// The T.32 set-up after `+FCLASS=2.0`, in order: flow control as the profile has it
/// (`+FLO`, T.32 §8.5.2.3), receive capable (`+FCR=1`), direct bit order (`+FBO=0`: the first
/// bit of each octet on the line is its least significant, as faxgate's T.4 codec writes),
/// reports of the negotiated parameters and IDs (`+FNR=1,1,1,0`), no procedure interrupts
/// (`+FIE=0`: faxgate has no operator).
pub fn setup_commands(flow: FlowControl) -> Vec<AtCommand> {
    let flo = match flow {
        FlowControl::None => "AT+FLO=0",
        FlowControl::Software => "AT+FLO=1",
        FlowControl::Hardware => "AT+FLO=2",
    };
    [flo, "AT+FCR=1", "AT+FBO=0", "AT+FNR=1,1,1,0", "AT+FIE=0"]
        .into_iter()
        .map(|c| AtCommand::new(c).expect("setup commands are valid"))
        .collect()
}

/// Per-call set-up before dialling or answering: our ID (`+FLI`, T.32 §8.5.1.10; only the
/// characters T.30 §5.3.6.2.4 allows — digits, `+` and space — at most 20) and our
/// capabilities (`+FCC`, which the modem puts in its DIS and limits its DCS to).
pub fn station_commands(local_id: &str, caps: &SessionParams) -> Vec<AtCommand> {
    let id: String = local_id
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+' || *c == ' ')
        .take(20)
        .collect();
    vec![
        AtCommand::new(format!("AT+FLI=\"{id}\"")).expect("20 safe characters fit"),
        AtCommand::new(format!("AT+FCC={}", caps.to_args())).expect("8 values fit"),
    ]
}

/// What the host asks the modem to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Any AT command in command state → [`Event::CommandDone`].
    Command(AtCommand),
    /// Dial → [`Event::Connected`] (phase B reached, the remote's DIS reported),
    /// [`Event::CallFailed`], or [`Event::Ended`] (`+FHS`).
    Dial {
        /// Dial command prefix (`ATDT`).
        prefix: String,
        /// Digits and the V.250 dial modifiers `*#,W@!PT`.
        number: String,
        /// Wait for the final result this long (phase B included).
        timeout: Duration,
    },
    /// Answer (`ATA`) → [`Event::Connected`], [`Event::CallFailed`] or [`Event::Ended`].
    Answer,
    /// Start a page (`+FDT`) → [`Event::ReadyForData`] or [`Event::Ended`].
    SendPage,
    /// The page's T.4 data (unstuffed; the driver doubles DLEs and adds `<DLE><ETX>`), after
    /// [`Event::ReadyForData`] → [`Event::PageSent`].
    PageData(Vec<u8>),
    /// The post-page message (`+FET=n`) → [`Event::PageAnswered`].
    EndPage(PostPage),
    /// Receive a page (`+FDR`) → [`Event::Data`]… then [`Event::PageReceived`], or
    /// [`Event::Ended`] when the call is over.
    ReceivePage,
    /// Abort the session (`+FKS`, T.32 §8.3.5) in command state → [`Event::HungUp`].
    Abort,
    /// Cancel a page transfer in data mode (`<CAN>`, T.32 §8.3.3) after
    /// [`Event::ReadyForData`] → [`Event::HungUp`] when the modem answers.
    Cancel,
    /// Go on hook (`ATH0`) → [`Event::HungUp`].
    Hangup,
}

/// What the driver reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Unsolicited `RING`.
    Ring,
    /// Caller ID (`NMBR=` …).
    CallInfo {
        /// Upper-case tag.
        tag: String,
        /// Value as sent.
        value: String,
    },
    /// A `+F` report during a call op (not final).
    Report(Report),
    /// Received page data, DLE-unstuffed (not final).
    Data(Vec<u8>),
    /// A `Command` ended.
    CommandDone {
        /// Its final result.
        result: FinalResult,
        /// Information lines (echo excluded).
        info: Vec<String>,
    },
    /// `Dial`/`Answer` reached phase B (`+FCO` … `OK`).
    Connected,
    /// `Dial`/`Answer` failed with a result code.
    CallFailed(LineCause),
    /// `+FDT` answered `CONNECT`: page data may go.
    ReadyForData,
    /// The page data was taken (`OK` after `<DLE><ETX>`).
    PageSent,
    /// The receiver answered the page.
    PageAnswered {
        /// `+FPS:n`, or from `OK`/`ERROR` when the modem gives no `+FPS` (MCF/RTN).
        response: PageResponse,
        /// `+FHS` came with it (normal after EOP).
        hangup: Option<HangupCode>,
    },
    /// A page came in: its data ended with `<DLE><ETX>`, then the reports and `OK`/`ERROR`.
    PageReceived {
        /// `+FPS:` (the modem's copy-quality view), if reported.
        status: Option<PageStatus>,
        /// `+FET:` — what the sender says comes next; `None` if not reported.
        post: Option<PostPage>,
        /// `+FHS` came with it (the remote hung up after the page).
        hangup: Option<HangupCode>,
    },
    /// The call ended with this hang-up status (`+FHS` then a final result).
    Ended(HangupCode),
    /// `Hangup` done (or `Abort` without a `+FHS`).
    HungUp,
    /// The op failed.
    Failed(OpFailure),
}

/// Why an op cannot start.
pub use super::class1::StartError;

/// Where the parameters for the page being sent come from ([`Class2Driver::page_session`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionSource {
    /// `+FCS` reported during this `+FDT` (T.32 §8.3.3: the normal case).
    Reported,
    /// No `+FCS` this time: the last one of the call (at connect, with an earlier page, or
    /// after a retrain between pages). The modem keeps its DCS until it renegotiates, and
    /// T.32 has it report every renegotiation.
    Earlier,
    /// No `+FCS` in the whole call: what the modem composes from our `+FCC`/`+FIS` and the
    /// remote's DIS ([`SessionParams::dcs_for`]), or ours alone if it reported no DIS.
    Assumed,
}

/// What the current call has said about its session parameters (T.32 §8.5.1).
#[derive(Debug, Clone, Copy, Default)]
struct Known {
    /// Our `+FCC`/`+FIS` as the modem took it (kept across calls, like the modem's).
    local: Option<SessionParams>,
    /// The remote's DIS (`+FIS:` after dialling).
    remote: Option<SessionParams>,
    /// The last `+FCS:` of the call.
    session: Option<SessionParams>,
    /// `+FCS:` came during the current `+FDT`.
    fcs_this_page: bool,
}

#[derive(Debug)]
enum State {
    Idle,
    /// A command's final result.
    ExpectFinal {
        hangup_op: bool,
        info: Vec<String>,
        /// `+FCC=`/`+FIS=` values that become ours when the modem says `OK`.
        sets_local: Option<SessionParams>,
        deadline: Instant,
    },
    /// `ATD`/`ATA`: reports, then `OK`.
    ExpectCall {
        fax: bool,
        hangup: Option<HangupCode>,
        deadline: Instant,
    },
    /// `+FDT`: reports, then `CONNECT`.
    ExpectFdtConnect {
        hangup: Option<HangupCode>,
        deadline: Instant,
    },
    /// `OK` after the page data's `<DLE><ETX>`.
    ExpectDataOk {
        hangup: Option<HangupCode>,
        deadline: Instant,
    },
    /// `+FET=n`: `+FPS`, maybe `+FHS`, then `OK`/`ERROR`.
    ExpectAnswer {
        status: Option<PageResponse>,
        hangup: Option<HangupCode>,
        deadline: Instant,
    },
    /// `+FDR`: reports, then `CONNECT` (page) or `+FHS` and `OK` (end).
    ExpectFdrConnect {
        hangup: Option<HangupCode>,
        deadline: Instant,
    },
    /// Received page data until `<DLE><ETX>`.
    ExpectPageData {
        skip_lf: bool,
        unstuffer: Unstuffer,
        total: usize,
        deadline: Instant,
    },
    /// After the page data: `+FPS`, `+FET`, then `OK`/`ERROR`.
    ExpectPageEnd {
        status: Option<PageStatus>,
        post: Option<PostPage>,
        hangup: Option<HangupCode>,
        deadline: Instant,
    },
    /// We aborted; waiting for the final result, then `report`.
    ExpectAbortFinal {
        report: Event,
        deadline: Instant,
    },
}

/// The Class 2.0 driver (sans-IO). See the module docs for the call order.
#[derive(Debug)]
pub struct Class2Driver {
    state: State,
    lines: ResponseParser,
    out: VecDeque<u8>,
    events: VecDeque<Event>,
    /// XOFF received: hold page data.
    paused: bool,
    /// Quirk: hold page data after `CONNECT` to `+FDT` until the modem sends XON (Class 2
    /// modems do; T.32 does not ask for it).
    wait_xon: bool,
    /// An XON came since the last `+FDT` `CONNECT`.
    xon_seen: bool,
    known: Known,
}

impl Class2Driver {
    /// A driver for a modem in command state; `wait_xon`: see [`Class2Driver`]'s quirk.
    pub fn new(wait_xon: bool) -> Self {
        Class2Driver {
            state: State::Idle,
            lines: ResponseParser::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            paused: false,
            wait_xon,
            xon_seen: false,
            known: Known::default(),
        }
    }

    /// The session parameters the page of the current `+FDT` must be coded with, and where
    /// they come from: the `+FCS` of this `+FDT`; else, for a modem that reports `+FCS` only
    /// at connect or after a renegotiation, the call's last one; else, for one that never
    /// reports it, the DCS it composes from our `+FCC`/`+FIS` and the remote's DIS (T.32
    /// §8.5.1.2–8.5.1.3: `+FCS` holds the DCS in force; the DCE makes it from `+FIS` and the
    /// DIS). `None` when nothing is known (no `+FCC` was given on this driver).
    pub fn page_session(&self) -> Option<(SessionParams, SessionSource)> {
        let k = &self.known;
        if let Some(p) = k.session {
            let source = if k.fcs_this_page {
                SessionSource::Reported
            } else {
                SessionSource::Earlier
            };
            return Some((p, source));
        }
        let local = k.local?;
        let p = match k.remote {
            Some(dis) => local.dcs_for(&dis),
            None => local.single(),
        };
        Some((p, SessionSource::Assumed))
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
        match op {
            Op::Command(c) => {
                self.command(&c.to_bytes());
                let sets_local = ["AT+FCC=", "AT+FIS="]
                    .iter()
                    .find_map(|p| {
                        c.text
                            .get(..p.len())
                            .filter(|h| h.eq_ignore_ascii_case(p))
                            .map(|_| &c.text[p.len()..])
                    })
                    .and_then(SessionParams::parse);
                self.state = State::ExpectFinal {
                    hangup_op: false,
                    info: Vec::new(),
                    sets_local,
                    deadline: now + c.timeout,
                };
            }
            Op::Dial {
                prefix,
                number,
                timeout,
            } => {
                let ok = !number.is_empty()
                    && number
                        .bytes()
                        .all(|b| b.is_ascii_digit() || b"*#,W@!PTwpt".contains(&b));
                let text = format!("{prefix}{number}");
                let cmd = AtCommand::new(text)
                    .ok()
                    .filter(|_| ok)
                    .ok_or_else(|| StartError::Invalid(format!("bad dial string {number:?}")))?;
                self.command(&cmd.to_bytes());
                self.new_call();
                self.state = State::ExpectCall {
                    fax: false,
                    hangup: None,
                    deadline: now + timeout + PHASE_B_WAIT,
                };
            }
            Op::Answer => {
                self.command(b"ATA\r");
                self.new_call();
                self.state = State::ExpectCall {
                    fax: false,
                    hangup: None,
                    deadline: now + super::class1::ANSWER_TIMEOUT + PHASE_B_WAIT,
                };
            }
            Op::SendPage => {
                self.command(b"AT+FDT\r");
                self.xon_seen = false;
                self.known.fcs_this_page = false;
                self.state = State::ExpectFdtConnect {
                    hangup: None,
                    deadline: now + FDT_TIMEOUT,
                };
            }
            Op::PageData(data) => {
                let mut stuffed = Vec::with_capacity(data.len() + data.len() / 64 + 2);
                dle::stuff_into(&data, &mut stuffed);
                stuffed.extend_from_slice(&[dle::DLE, dle::ETX]);
                self.out.extend(stuffed);
                self.paused = self.wait_xon && !self.xon_seen;
                // The modem drains its buffer at the line rate; 2400 bit/s is the slowest.
                let line_time = Duration::from_millis(data.len() as u64 * 8 * 1000 / 2400);
                self.state = State::ExpectDataOk {
                    hangup: None,
                    deadline: now + line_time + FET_TIMEOUT,
                };
            }
            Op::EndPage(p) => {
                self.paused = false;
                self.command(format!("AT+FET={}\r", p.value()).as_bytes());
                self.state = State::ExpectAnswer {
                    status: None,
                    hangup: None,
                    deadline: now + FET_TIMEOUT,
                };
            }
            Op::ReceivePage => {
                self.command(b"AT+FDR\r");
                self.state = State::ExpectFdrConnect {
                    hangup: None,
                    deadline: now + FDR_TIMEOUT,
                };
            }
            Op::Abort => {
                self.command(b"AT+FKS\r");
                self.state = State::ExpectFinal {
                    hangup_op: true,
                    info: Vec::new(),
                    sets_local: None,
                    deadline: now + FET_TIMEOUT,
                };
            }
            Op::Cancel => {
                self.command(&[CAN]);
                self.state = State::ExpectFinal {
                    hangup_op: true,
                    info: Vec::new(),
                    sets_local: None,
                    deadline: now + ABORT_GRACE,
                };
            }
            Op::Hangup => {
                self.command(b"ATH0\r");
                self.state = State::ExpectFinal {
                    hangup_op: true,
                    info: Vec::new(),
                    sets_local: None,
                    deadline: now + super::at::DEFAULT_COMMAND_TIMEOUT,
                };
            }
        }
        Ok(())
    }

    /// Bytes waiting to be written (empty while paused by XOFF, or waiting for XON).
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
            | State::ExpectCall { deadline, .. }
            | State::ExpectFdtConnect { deadline, .. }
            | State::ExpectDataOk { deadline, .. }
            | State::ExpectAnswer { deadline, .. }
            | State::ExpectFdrConnect { deadline, .. }
            | State::ExpectPageData { deadline, .. }
            | State::ExpectPageEnd { deadline, .. }
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
            State::ExpectAbortFinal { report, .. } => self.events.push_back(report),
            // A character ends a dial in progress (V.250 §6.3.1) and a page reception
            // (T.32 §8.3.4: <CAN>); the modem answers with a final result.
            State::ExpectCall { .. } => self.abort(Event::CallFailed(LineCause::Timeout), now),
            State::ExpectPageData { .. } => self.abort(Event::Failed(OpFailure::Timeout), now),
            _ => {
                // Nothing safe to interrupt with (a character would be page data or start
                // a command): report; the shell resets the modem.
                self.out.clear();
                self.paused = false;
                self.events.push_back(Event::Failed(OpFailure::Timeout));
            }
        }
    }

    fn abort(&mut self, report: Event, now: Instant) {
        self.state = State::ExpectAbortFinal {
            report,
            deadline: now + ABORT_GRACE,
        };
        self.lines.reset();
        self.out.clear();
        self.paused = false;
        self.out.push_back(CAN);
    }

    /// Bytes read from the modem at `now`.
    pub fn on_input(&mut self, mut bytes: &[u8], now: Instant) {
        while !bytes.is_empty() {
            let n = self.step(bytes, now);
            bytes = &bytes[n.clamp(1, bytes.len())..];
        }
    }

    fn step(&mut self, bytes: &[u8], now: Instant) -> usize {
        if let State::ExpectPageData {
            skip_lf,
            unstuffer,
            total,
            deadline: _,
        } = &mut self.state
        {
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
                self.state = State::ExpectPageEnd {
                    status: None,
                    post: None,
                    hangup: None,
                    deadline: now + FET_TIMEOUT,
                };
            }
            return n;
        }
        match bytes[0] {
            // Flow control is never part of a result line (V.250 text is printable ASCII).
            XOFF => self.paused = matches!(self.state, State::ExpectDataOk { .. }),
            XON => {
                self.paused = false;
                self.xon_seen = true;
            }
            b => {
                if let Some(r) = self.lines.push(b) {
                    self.on_response(r, now);
                }
            }
        }
        1
    }

    fn on_response(&mut self, r: Response, now: Instant) {
        let fin = match r {
            Response::Ring => return self.events.push_back(Event::Ring),
            Response::CallInfo { tag, value } => {
                return self.events.push_back(Event::CallInfo { tag, value });
            }
            Response::Echo(_) | Response::Overlong => return,
            Response::Info(text) => return self.on_info(text),
            Response::Final(f) => f,
        };
        let state = std::mem::replace(&mut self.state, State::Idle);
        let ev = match state {
            // A late result with no op running (after an abort): nothing waits for it.
            State::Idle => return,
            State::ExpectFinal {
                hangup_op,
                info,
                sets_local,
                ..
            } => {
                if let (FinalResult::Ok, Some(p)) = (fin, sets_local) {
                    self.known.local = Some(p);
                }
                if hangup_op {
                    Event::HungUp
                } else {
                    Event::CommandDone { result: fin, info }
                }
            }
            State::ExpectCall { fax, hangup, .. } => match (fin, hangup) {
                (_, Some(code)) => Event::Ended(code),
                (FinalResult::Ok, None) if fax => Event::Connected,
                // OK without +FCO: not a fax connection (HylaFAX sees the same from some
                // modems); CONNECT: the modem made a data call.
                (FinalResult::Ok | FinalResult::Connect, None) => {
                    Event::CallFailed(LineCause::NoCarrier)
                }
                (f, None) => {
                    Event::CallFailed(LineCause::from_final(f).unwrap_or(LineCause::ModemError))
                }
            },
            State::ExpectFdtConnect { hangup, .. } => match (fin, hangup) {
                (_, Some(code)) => Event::Ended(code),
                (FinalResult::Connect, None) => Event::ReadyForData,
                (f, None) => Event::Failed(failure_of(f)),
            },
            State::ExpectDataOk { hangup, .. } => {
                self.paused = false;
                match (fin, hangup) {
                    (_, Some(code)) => Event::Ended(code),
                    (FinalResult::Ok, None) => Event::PageSent,
                    (f, None) => Event::Failed(failure_of(f)),
                }
            }
            State::ExpectAnswer { status, hangup, .. } => {
                if let (None, Some(code)) = (status, hangup) {
                    // Only a hang-up: the modem gave up on the post-page exchange.
                    return self.events.push_back(Event::Ended(code));
                }
                let response = match (fin, status) {
                    (FinalResult::Ok | FinalResult::Error, Some(s)) => s,
                    // Class 2.0 says OK for MCF/RTP/PIP and ERROR for RTN/PIN (T.32
                    // §8.3.3.6); without +FPS take the plain meaning.
                    (FinalResult::Ok, None) => PageResponse::Mcf,
                    (FinalResult::Error, None) => PageResponse::Rtn,
                    (f, _) => {
                        let ev = match hangup {
                            Some(code) => Event::Ended(code),
                            None => Event::Failed(failure_of(f)),
                        };
                        return self.events.push_back(ev);
                    }
                };
                Event::PageAnswered { response, hangup }
            }
            State::ExpectFdrConnect { hangup, .. } => match (fin, hangup) {
                (_, Some(code)) => Event::Ended(code),
                (FinalResult::Connect, None) => {
                    // T.32 §8.3.4: the host says it is ready with <DC2>.
                    self.out.push_back(DC2);
                    self.state = State::ExpectPageData {
                        skip_lf: self.lines.ended_by_cr(),
                        unstuffer: Unstuffer::new(),
                        total: 0,
                        deadline: now + MAX_CARRIER_TIME,
                    };
                    return;
                }
                (f, None) => Event::Failed(failure_of(f)),
            },
            // Not reached: page data never goes through the line parser.
            State::ExpectPageData { .. } => Event::Failed(OpFailure::Protocol),
            State::ExpectPageEnd {
                status,
                post,
                hangup,
                ..
            } => match fin {
                // ERROR: the modem's copy-quality check found the page bad (+FPS says how).
                FinalResult::Ok | FinalResult::Error => Event::PageReceived {
                    status,
                    post,
                    hangup,
                },
                f => match hangup {
                    Some(code) => Event::PageReceived {
                        status,
                        post,
                        hangup: Some(code),
                    },
                    None => Event::Failed(failure_of(f)),
                },
            },
            State::ExpectAbortFinal { report, .. } => report,
        };
        self.events.push_back(ev);
    }

    fn on_info(&mut self, text: String) {
        if let State::ExpectFinal { info, .. } = &mut self.state {
            if info.len() < MAX_INFO_LINES {
                info.push(text);
            }
            return;
        }
        let Some(report) = parse_report(&text) else {
            return;
        };
        match &report {
            // +FCS may come again at any point of the call (a renegotiation after RTN/RTP,
            // or at connect only): the last one is in force.
            Report::Session(p) => {
                self.known.session = Some(*p);
                if matches!(self.state, State::ExpectFdtConnect { .. }) {
                    self.known.fcs_this_page = true;
                }
            }
            Report::RemoteCapabilities(p) => self.known.remote = Some(*p),
            _ => {}
        }
        match (&mut self.state, &report) {
            (State::ExpectCall { fax, .. }, Report::FaxConnection) => *fax = true,
            (
                State::ExpectCall { hangup, .. }
                | State::ExpectFdtConnect { hangup, .. }
                | State::ExpectDataOk { hangup, .. }
                | State::ExpectAnswer { hangup, .. }
                | State::ExpectFdrConnect { hangup, .. }
                | State::ExpectPageEnd { hangup, .. },
                Report::Hangup(code),
            ) => *hangup = Some(*code),
            (State::ExpectAnswer { status, .. }, Report::PageStatus(s)) => {
                *status = Some(s.response)
            }
            (State::ExpectPageEnd { status, .. }, Report::PageStatus(s)) => *status = Some(*s),
            (State::ExpectPageEnd { post, .. }, Report::PostPage(p)) => *post = Some(*p),
            _ => {}
        }
        self.events.push_back(Event::Report(report));
    }

    /// A dial or answer starts a new session: what the last one negotiated is gone (T.32
    /// §8.5.1.3 resets `+FCS` at the end of a session); our `+FCC` stays.
    fn new_call(&mut self) {
        self.known = Known {
            local: self.known.local,
            ..Known::default()
        };
    }

    fn command(&mut self, bytes: &[u8]) {
        self.lines.reset();
        self.paused = false;
        self.out.extend(bytes.iter().copied());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_params_round_trip_and_meaning() {
        let p = SessionParams::parse("1,5,0,2,1,0,0,3").unwrap();
        assert_eq!(p.to_args(), "1,5,0,2,1,0,0,3");
        assert_eq!(p.bps(), Some(14400));
        assert_eq!(p.resolution(), VResolution::Fine);
        assert_eq!(p.scan_time_ms(), 10);
        let c = p.page_coding().unwrap();
        assert_eq!((c.coding, c.k, c.min_line_bits), (Coding::Mr, 4, 144));
        assert_eq!(SessionParams::parse("1,5,0"), None);
        assert_eq!(SessionParams::parse("1,5,0,2,1,0,0,zz"), None);
        let mmr = SessionParams::parse("0,3,0,2,3,0,0,0").unwrap();
        assert_eq!(mmr.page_coding(), Err(ParamError::MmrWithoutEcm));
        assert_eq!(
            SessionParams::ours(9600, false, Coding::Mmr).to_args(),
            "1,3,0,2,1,0,0,0"
        );
    }

    #[test]
    fn hangup_codes_both_numberings() {
        assert_eq!(HangupCode::parse("00", false), Some(HangupCode(0)));
        assert_eq!(HangupCode::parse("A0", false), Some(HangupCode(0xA0)));
        assert_eq!(HangupCode::parse("100", true), Some(HangupCode(0xA0)));
        assert_eq!(HangupCode::parse("52", true), Some(HangupCode(0x52)));
        assert_eq!(HangupCode::parse("zz", false), None);
        assert_eq!(HangupCode(0).meaning(), HangupMeaning::Normal);
        assert_eq!(
            HangupCode(0x27).meaning(),
            HangupMeaning::Cause(Cause::TrainingFailed)
        );
        assert_eq!(
            HangupCode(0x04).meaning(),
            HangupMeaning::Line(LineCause::NoAnswer)
        );
        // Every code has a meaning; the parser never panics on any 2-digit text.
        for n in 0..=255u8 {
            let _ = HangupCode(n).meaning();
            assert_eq!(
                HangupCode::parse(&HangupCode(n).text(), false),
                Some(HangupCode(n))
            );
        }
    }

    #[test]
    fn reports_in_both_spellings() {
        assert_eq!(
            parse_report("+FCSI: \"+1 555 0002\""),
            Some(Report::CalledId("+1 555 0002".into()))
        );
        assert_eq!(parse_report("+FHNG:0"), Some(Report::Hangup(HangupCode(0))));
        assert_eq!(
            parse_report("+FPTS:1,2200,0,0"),
            Some(Report::PageStatus(PageStatus {
                response: PageResponse::Mcf,
                lines: Some(2200),
                bad_lines: Some(0),
            }))
        );
        assert_eq!(
            parse_report("+FET:2"),
            Some(Report::PostPage(PostPage::Eop))
        );
        assert!(matches!(parse_report("+FCS:1,2"), Some(Report::Other(_))));
        assert_eq!(parse_report("OK"), None);
    }
}
