//! The T.30 engine (ITU-T T.30, including Annex A error correction): fax negotiation, training,
//! page transfer and error correction between two fax terminals — PURE: frames, page data and
//! `now` go in; [`Command`]s and the next deadline ([`Engine::poll_at`]) come out.
//!
//! One engine runs one call. A Class 1 driver (`fax::modem`, T.31) maps its commands onto
//! `AT+FTH=3` / `+FRH=3` (V.21 HDLC), `+FTM=n` / `+FRM=n` (high-speed data), `+FTS=n` (silence)
//! and hang-up, and feeds the modem's answers back as [`Event`]s; [`line::Line`] joins two
//! engines in memory (the loopback line, and the tests), and a T.38 transport can do the same.
//!
//! Shape (after spandsp): the [`Phase`] (T.30 §2: A call set-up, B pre-message, C message, D
//! post-message, E release) and the [`State`] are two types; states are named after the nodes
//! of the T.30 flow charts (T.30 §5.2, Figures 5-2a–5-2d, Annex A Figures A.7-1…), and each
//! state has one handler. Time is an input.
//!
//! # Legal call order (the driver's contract)
//!
//! 1. Make the engine ([`Engine::sender`] for the calling side that sends a document,
//!    [`Engine::receiver`] for the answering side) once the modem is connected in fax mode
//!    (Class 1: after `ATD` → `CONNECT` or `ATA` → `CONNECT`), and call [`Engine::start`].
//! 2. Loop: take commands with [`Engine::next_command`] until it returns `None`, and carry them
//!    out **in order**:
//!    - Every *transmit* command ([`Command::SendFrames`], [`Command::SendTcf`],
//!      [`Command::SendPage`], [`Command::SendEcmBlock`], [`Command::Silence`]) ends with exactly
//!      one [`Event::Sent`] (or [`Event::CarrierLost`] if the modem failed). Several transmit
//!      commands may be queued at once (e.g. DCS frames, 75 ms silence, TCF).
//!    - A *receive* command ([`Command::ReceiveFrames`], [`Command::ReceiveData`]) is only ever
//!      issued alone, after every transmit before it has completed. It ends with one terminal
//!      event: a frame with the final bit ([`Event::Frame`]) for `ReceiveFrames`, or
//!      [`Event::CarrierEnd`] (Class 1 `NO CARRIER`), [`Event::WrongCarrier`] (`+FCERROR`), or
//!      [`Event::Timeout`]. Before that it may deliver [`Event::Connect`] once (the carrier was
//!      detected, Class 1 `CONNECT`: from then on the timeout no longer applies and
//!      [`Engine::poll_at`] is `None` until the terminal event) and any number of
//!      [`Event::Frame`] / [`Event::BadFrame`] / [`Event::Data`]. For V.21 the driver re-issues
//!      `+FRH=3` after each non-final frame itself; that is one receive command to the engine.
//!    - [`Command::HangUp`] is the last command: hang up the line; the engine is finished.
//! 3. Whenever the engine is waiting, call [`Engine::handle_timeout`] at [`Engine::poll_at`]
//!    (or report [`Event::Timeout`] when the receive's `timeout` ran out — either is fine; a
//!    stale one is ignored). A new command while a receive is outstanding never happens: the
//!    engine always waits for the receive's terminal event or timeout first, and after a timeout
//!    the driver must abort the receive (Class 1: send a character, wait for `OK`) before
//!    starting the next command.
//! 4. When [`Engine::is_finished`], read [`Engine::report`] for the [`CallReport`].

pub mod cause;
pub mod dis;
mod engine;
pub mod fcf;
pub mod hdlc;
pub mod line;
pub mod page;
pub mod pages;
pub mod report;

pub use cause::{Cause, CauseClass};
pub use dis::{Capabilities, Coding, Dcs, Modulation, Training, VResolution, Wanted, Width};
pub use engine::{
    DATA_CARRIER_MAX, Engine, EngineConfig, FRAMES_CARRIER_MAX, HandedOver, Phase, Role, State,
    Timers,
};
pub use fcf::{Fcf, Frame};
pub use page::{
    PageCoding, PageQuality, PageSink, PageSource, QualityThresholds, SinkError, SourceError,
    Verdict,
};
pub use report::{Activity, CallReport, PageOutcome, PageRecord, Progress};

use std::time::Duration;

/// What kind of high-speed data a [`Command::ReceiveData`] expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKind {
    /// TCF: 1.5 s of zeros to check the training (T.30 §5.3.6.1.3). Deliver raw bytes.
    Tcf,
    /// Non-ECM page: T.4 coded lines up to RTC. Deliver raw bytes.
    Page,
    /// ECM page data (Annex A): HDLC frames at high speed. The driver removes flags and
    /// inserted zeros and checks the FCS ([`hdlc::Decoder`]), delivering [`Event::Frame`] /
    /// [`Event::BadFrame`] per frame.
    EcmFrames,
}

/// What the engine asks the line to do. See the module docs for the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Send these HDLC frames at V.21 channel 2, 300 bit/s (Class 1 `AT+FTH=3`), preceded by
    /// the 1 s flag preamble (T.30 §5.3.1). The last frame has the final bit.
    SendFrames(Vec<Frame>),
    /// Listen for V.21 HDLC frames (Class 1 `AT+FRH=3`, re-issued after each non-final frame)
    /// until a frame with the final bit, the carrier ends, or `timeout` passes with no carrier.
    ReceiveFrames {
        /// How long to wait for a carrier.
        timeout: Duration,
    },
    /// Send TCF: zeros for `duration` at `modulation` (Class 1 `AT+FTM=n`, T.30 §5.3.6.1.3:
    /// 1.5 s ± 10 %), always with long training.
    SendTcf {
        /// Rate of the training check.
        modulation: Modulation,
        /// Length of the zeros.
        duration: Duration,
    },
    /// Send non-ECM page data (T.4 lines with fill and RTC) at `modulation` (`AT+FTM=n`).
    SendPage {
        /// Rate.
        modulation: Modulation,
        /// Long or short training (V.17).
        training: Training,
        /// Coded page, sent LSB first as T.4 requires.
        data: Vec<u8>,
    },
    /// Send one ECM block at `modulation` (`AT+FTM=n`): the driver frames each (flags, FCS,
    /// zero insertion: [`hdlc::Encoder`]) and sends them back to back.
    SendEcmBlock {
        /// Rate.
        modulation: Modulation,
        /// Long or short training (V.17).
        training: Training,
        /// FCD frames then RCP frames (Annex A.3.4), without FCS.
        frames: Vec<Frame>,
    },
    /// Listen for high-speed data at `modulation` (`AT+FRM=n`).
    ReceiveData {
        /// Rate.
        modulation: Modulation,
        /// Long or short training (V.17).
        training: Training,
        /// TCF, page data or ECM frames.
        kind: DataKind,
        /// How long to wait for the carrier.
        timeout: Duration,
    },
    /// Keep silent for this long (Class 1 `AT+FTS=n`, n in 10 ms units).
    Silence(Duration),
    /// Hang up. The call is over; [`Engine::report`] has the cause.
    HangUp,
}

/// What the line reports back to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A transmit command (frames, TCF, page, ECM block, silence) completed.
    Sent,
    /// The carrier a receive command waits for was detected (Class 1 `CONNECT` after
    /// `+FRH`/`+FRM`): the receive's timeout no longer applies; it runs to its terminal event.
    Connect,
    /// A frame arrived with a good FCS (V.21, or ECM at high speed).
    Frame(Frame),
    /// A frame arrived with a bad FCS (Class 1 `ERROR` after `+FRH`), or unparseable.
    BadFrame,
    /// High-speed data bytes (TCF or non-ECM page), in order.
    Data(Vec<u8>),
    /// The carrier dropped (Class 1 `NO CARRIER`): the end of TCF, of page data, of an ECM
    /// block, or of a V.21 transmission without a final frame.
    CarrierEnd,
    /// A different carrier was detected than the one asked for (Class 1 `+FCERROR`: V.21
    /// while waiting for high speed).
    WrongCarrier,
    /// The receive's timeout passed with no carrier.
    Timeout,
    /// The modem failed or the line dropped (hang-up detected, `ERROR` to a transmit).
    CarrierLost,
}
