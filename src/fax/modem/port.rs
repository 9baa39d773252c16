//! I/O: the serial device — the only code in faxgate that touches a modem — and [`Modem`], the
//! blocking shell that pumps bytes and time through the pure [`Class1Driver`] (and, for a
//! profile with `class = "2.0"`, the pure [`Class2Driver`] for dial, answer and the call).
//!
//! The port is opened raw (no echo, no line editing, 8N1) with `CLOCAL`: modem control lines
//! (DCD, DSR, CTS, RI) are never read, so a pty (the iaxmodem rig) works like a real modem;
//! `RING` is taken in-band. RTS/CTS is set when the profile says `flow_control = "hardware"`.
//! Any read or write error other than a timeout means the device is gone (USB unplug, power
//! loss, the pty's master closed): the port is closed and [`Port::reopen`] tries again with
//! growing back-off.
//!
//! Every byte each way and every decoded frame is recorded in a per-call [`Trace`] (and logged
//! at trace level) so a failed call can be read afterwards next to its job.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::at::{AtCommand, FinalResult};
use super::class1::{Class1Driver, Event, LineCause, Op, OpFailure};
use super::class2::{self, Class2Driver, HangupMeaning, Report, SessionParams};
use super::probe::{self, ModemInfo};
use super::profile::{FlowControl, Profile};

/// How long one blocking read or write may wait before the loop looks at the clock again
/// (ours: short enough for timers to be ~50 ms exact, long enough not to spin).
const POLL_SLICE: Duration = Duration::from_millis(50);

/// Why the port failed. Device faults are the hardware's; the next step is to reopen.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// The device could not be opened (missing, busy, no permission).
    #[error("cannot open modem {path}: {message}")]
    Open {
        /// Device path.
        path: PathBuf,
        /// The system's reason.
        message: String,
    },
    /// The device went away or failed mid-use; it has been closed.
    #[error("modem {path} is gone: {message}")]
    Gone {
        /// Device path.
        path: PathBuf,
        /// The system's reason.
        message: String,
    },
}

/// The serial device.
pub struct Port {
    path: PathBuf,
    baud: u32,
    flow: FlowControl,
    dev: Option<serialport::TTYPort>,
}

impl std::fmt::Debug for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Port")
            .field("path", &self.path)
            .field("open", &self.dev.is_some())
            .finish()
    }
}

impl Port {
    /// Open `path` raw at `baud` with the given flow control.
    pub fn open(path: &Path, baud: u32, flow: FlowControl) -> Result<Port, PortError> {
        let mut p = Port {
            path: path.to_path_buf(),
            baud,
            flow,
            dev: None,
        };
        p.open_device()?;
        Ok(p)
    }

    fn open_device(&mut self) -> Result<(), PortError> {
        let fc = match self.flow {
            FlowControl::Hardware => serialport::FlowControl::Hardware,
            // XON/XOFF is handled by the driver in band (only while sending page data): the
            // kernel's IXON would eat DC1/DC3 octets in received page data.
            FlowControl::Software | FlowControl::None => serialport::FlowControl::None,
        };
        let dev = serialport::new(self.path.to_string_lossy(), self.baud)
            .flow_control(fc)
            .timeout(POLL_SLICE)
            .dtr_on_open(true)
            .open_native()
            .map_err(|e| PortError::Open {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
        tracing::debug!(device = %self.path.display(), "modem port open");
        self.dev = Some(dev);
        Ok(())
    }

    /// The device path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True while the device is open.
    pub fn is_open(&self) -> bool {
        self.dev.is_some()
    }

    fn gone(&mut self, e: std::io::Error) -> PortError {
        self.dev = None;
        tracing::warn!(device = %self.path.display(), error = %e, "modem port lost");
        PortError::Gone {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Read what is there, waiting at most `wait`; `Ok(0)` when nothing came.
    pub fn read(&mut self, buf: &mut [u8], wait: Duration) -> Result<usize, PortError> {
        let Some(dev) = self.dev.as_mut() else {
            return Err(self.gone(std::io::Error::other("port is closed")));
        };
        use serialport::SerialPort;
        if let Err(e) = dev.set_timeout(wait.max(Duration::from_millis(1))) {
            return Err(self.gone(e.into()));
        }
        match dev.read(buf) {
            Ok(0) => Err(self.gone(std::io::Error::other("end of file"))),
            Ok(n) => Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Ok(0),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(self.gone(e)),
        }
    }

    /// Write as much of `data` as the device takes within `wait` (flow control and full
    /// buffers make it take less); `Ok(0)` when it took nothing.
    pub fn write(&mut self, data: &[u8], wait: Duration) -> Result<usize, PortError> {
        let Some(dev) = self.dev.as_mut() else {
            return Err(self.gone(std::io::Error::other("port is closed")));
        };
        use serialport::SerialPort;
        if let Err(e) = dev.set_timeout(wait.max(Duration::from_millis(1))) {
            return Err(self.gone(e.into()));
        }
        match dev.write(data) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Ok(0),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(0),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(self.gone(e)),
        }
    }

    /// Close the device (if open) and open it again, waiting `first_backoff`, then twice as
    /// long each time (capped at 30 s), for at most `attempts` tries.
    pub fn reopen(&mut self, attempts: u32, first_backoff: Duration) -> Result<(), PortError> {
        self.dev = None;
        let mut wait = first_backoff;
        let mut last = None;
        for _ in 0..attempts.max(1) {
            std::thread::sleep(wait);
            match self.open_device() {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
            wait = (wait * 2).min(Duration::from_secs(30));
        }
        Err(last.unwrap_or(PortError::Open {
            path: self.path.clone(),
            message: "no attempt made".into(),
        }))
    }
}

/// Longest trace kept per call, in entries (ours: a 3-page call has ~300).
pub const MAX_TRACE_ENTRIES: usize = 20_000;
/// Octets shown per trace entry (ours); page data is summarised by its length.
pub const TRACE_BYTES_SHOWN: usize = 80;

/// A raw per-call trace: AT traffic both ways and decoded frames, with times since the start.
#[derive(Debug, Clone)]
pub struct Trace {
    start: Instant,
    entries: Vec<String>,
    dropped: usize,
}

impl Trace {
    /// An empty trace starting at `start`.
    pub fn new(start: Instant) -> Self {
        Trace {
            start,
            entries: Vec::new(),
            dropped: 0,
        }
    }

    /// Record one entry (`dir` is `>` host → modem, `<` modem → host, `=` decoded).
    pub fn record(&mut self, now: Instant, dir: char, bytes: &[u8]) {
        let t = now.saturating_duration_since(self.start);
        let line = format!(
            "{:>4}.{:03} {dir} {}",
            t.as_secs(),
            t.subsec_millis(),
            escape(bytes)
        );
        tracing::trace!(target: "faxgate::modem::trace", "{line}");
        if self.entries.len() >= MAX_TRACE_ENTRIES {
            self.dropped += 1;
        } else {
            self.entries.push(line);
        }
    }

    /// The entries so far.
    pub fn entries(&self) -> &[String] {
        &self.entries
    }

    /// The whole trace as text (one entry a line), e.g. to keep with the job.
    pub fn to_text(&self) -> String {
        let mut s = self.entries.join("\n");
        if self.dropped > 0 {
            s.push_str(&format!("\n({} more entries dropped)", self.dropped));
        }
        s.push('\n');
        s
    }

    /// Start over (a new call).
    pub fn clear(&mut self, start: Instant) {
        self.start = start;
        self.entries.clear();
        self.dropped = 0;
    }
}

/// Printable form of modem bytes: text as is, CR/LF and others as `<CR>`, `<10>`, …
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes.iter().take(TRACE_BYTES_SHOWN) {
        match b {
            b'\r' => s.push_str("<CR>"),
            b'\n' => s.push_str("<LF>"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("<{b:02x}>")),
        }
    }
    if bytes.len() > TRACE_BYTES_SHOWN {
        s.push_str(&format!("… ({} octets)", bytes.len()));
    }
    s
}

/// Why a modem operation failed: the device, the modem's answer, or the far end.
#[derive(Debug, thiserror::Error)]
pub enum ModemError {
    /// The serial device failed (the modem's hardware or its cable).
    #[error(transparent)]
    Port(#[from] PortError),
    /// The modem refused a command (`ERROR`), e.g. an init string it does not know.
    #[error("modem answered {result:?} to {command}")]
    Command {
        /// The command.
        command: String,
        /// What it answered.
        result: FinalResult,
    },
    /// The call could not be set up (the line or the far end).
    #[error("call not set up: {0:?}")]
    Call(LineCause),
    /// A Class 1 operation failed mid-call.
    #[error("modem operation failed: {0:?}")]
    Op(OpFailure),
    /// No call came within the wait.
    #[error("no call within {0:?}")]
    NoCall(Duration),
    /// The driver was asked something impossible (our fault).
    #[error(transparent)]
    Start(#[from] super::class1::StartError),
}

/// Caller ID and dialled number of an incoming call, as the modem reported them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerInfo {
    /// `NMBR=`: the caller's number.
    pub number: Option<String>,
    /// `NAME=`: the caller's name.
    pub name: Option<String>,
    /// `NDID=`: the digits the caller dialled (DID), for routing.
    pub did: Option<String>,
}

impl CallerInfo {
    fn note(&mut self, tag: &str, value: &str) {
        let v = (!value.is_empty() && value != "<NONE>").then(|| value.chars().take(64).collect());
        match tag {
            "NMBR" => self.number = v,
            "NAME" => self.name = v,
            "NDID" => self.did = v,
            _ => {}
        }
    }
}

/// What a Class 2.0 modem reported while setting a call up (`+FCI`/`+FTI`, `+FIS`, `+FCS`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Class2Call {
    /// The remote's ID (CSI when we called, TSI when we answered).
    pub remote_id: Option<String>,
    /// The remote's capabilities (its DIS), when we called.
    pub remote_caps: Option<SessionParams>,
    /// The session parameters in force (the DCS), when we answered.
    pub session: Option<SessionParams>,
}

impl Class2Call {
    fn note(&mut self, ev: &class2::Event) {
        if let class2::Event::Report(r) = ev {
            match r {
                Report::CalledId(id) | Report::CallingId(id) => self.remote_id = Some(id.clone()),
                Report::RemoteCapabilities(p) => self.remote_caps = Some(*p),
                Report::Session(p) => self.session = Some(*p),
                _ => {}
            }
        }
    }
}

/// A fax modem on a port: the blocking shell around the pure drivers — [`Class1Driver`] for
/// commands and Class 1 calls, [`Class2Driver`] for calls when the profile's class is 2.0.
#[derive(Debug)]
pub struct Modem {
    port: Port,
    driver: Class1Driver,
    c2: Class2Driver,
    /// `+FLI` and `+FCC` for Class 2.0 calls (from the call settings; see [`Modem::set_station`]).
    station: (String, SessionParams),
    c2_call: Class2Call,
    profile: Profile,
    /// The current call's trace.
    pub trace: Trace,
    caller: CallerInfo,
    rings: u32,
}

impl Modem {
    /// Open the device with the profile's port settings (does not send anything yet).
    pub fn open(path: &Path, profile: Profile) -> Result<Modem, ModemError> {
        let port = Port::open(path, profile.baud, profile.flow_control)?;
        Ok(Modem {
            port,
            driver: Class1Driver::new(
                profile.flow_control == FlowControl::Software,
                profile.hdlc_fcs_octets,
            ),
            c2: Class2Driver::new(profile.class2_wait_xon),
            station: (
                String::new(),
                SessionParams::ours(14400, true, crate::fax::t30::Coding::Mmr),
            ),
            c2_call: Class2Call::default(),
            profile,
            trace: Trace::new(Instant::now()),
            caller: CallerInfo::default(),
            rings: 0,
        })
    }

    /// The profile in use.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Caller information seen since the last [`Self::clear_call`].
    pub fn caller(&self) -> &CallerInfo {
        &self.caller
    }

    /// `RING`s seen since the last [`Self::clear_call`].
    pub fn rings(&self) -> u32 {
        self.rings
    }

    /// The modem is driven in Class 2.0 (the profile's `class`): it runs T.30 itself.
    pub fn is_class2(&self) -> bool {
        self.profile.class == super::profile::ModemClass::Class2_0
    }

    /// Our ID and capabilities for the next Class 2.0 calls (`+FLI`, `+FCC`), from the same
    /// settings the T.30 engine takes on a Class 1 modem. Class 1 ignores them.
    pub fn set_station(&mut self, cfg: &crate::fax::t30::EngineConfig) {
        self.station = (
            cfg.local_id.clone(),
            SessionParams::ours(cfg.max_bps, cfg.ecm, cfg.max_coding),
        );
    }

    /// What the Class 2.0 modem reported while setting up the current call.
    pub fn class2_call(&self) -> &Class2Call {
        &self.c2_call
    }

    /// Forget the last call's caller info, ring count and trace.
    pub fn clear_call(&mut self) {
        self.c2_call = Class2Call::default();
        self.caller = CallerInfo::default();
        self.rings = 0;
        self.trace.clear(Instant::now());
    }

    /// Run one op to its end, handing every event to `on_event` (data chunks, rings, …),
    /// and return the op's final event.
    pub fn run_with(
        &mut self,
        op: Op,
        mut on_event: impl FnMut(&Event),
    ) -> Result<Event, ModemError> {
        let now = Instant::now();
        if let Op::SendFrames { frames } = &op {
            for f in frames {
                self.trace.record(now, '=', &hex_frame(f));
            }
        }
        self.driver.start(op, now)?;
        let mut buf = [0u8; 4096];
        loop {
            let pending = self.driver.pending_output();
            if !pending.is_empty() {
                let n = self.port.write(pending, POLL_SLICE)?;
                if n > 0 {
                    let now = Instant::now();
                    let written = self.driver.pending_output()[..n].to_vec();
                    self.trace.record(now, '>', &written);
                    self.driver.consume_output(n);
                }
            }
            let wait = match self.driver.poll_at() {
                Some(d) => d.saturating_duration_since(Instant::now()).min(POLL_SLICE),
                None => POLL_SLICE,
            };
            let wait = if self.driver.pending_output().is_empty() {
                wait
            } else {
                Duration::from_millis(1)
            };
            let n = self.port.read(&mut buf, wait)?;
            let now = Instant::now();
            if n > 0 {
                self.trace.record(now, '<', &buf[..n]);
                self.driver.on_input(&buf[..n], now);
            }
            self.driver.on_timeout(Instant::now());
            while let Some(ev) = self.driver.poll_event() {
                match &ev {
                    Event::Ring => self.rings = self.rings.saturating_add(1),
                    Event::CallInfo { tag, value } => self.caller.note(tag, value),
                    Event::Frame { frame, fcs_ok } => {
                        let mut t = hex_frame(frame);
                        t.extend_from_slice(if *fcs_ok { b" (FCS ok)" } else { b" (FCS bad)" });
                        self.trace.record(now, '=', &t);
                    }
                    _ => {}
                }
                on_event(&ev);
                if self.driver.is_idle() && is_final(&ev) {
                    return Ok(ev);
                }
            }
        }
    }

    /// Run one Class 2.0 op to its end, handing every event to `on_event` (reports, page data,
    /// rings), and return the op's final event.
    pub fn run2_with(
        &mut self,
        op: class2::Op,
        mut on_event: impl FnMut(&class2::Event),
    ) -> Result<class2::Event, ModemError> {
        self.c2.start(op, Instant::now())?;
        let mut buf = [0u8; 4096];
        loop {
            let pending = self.c2.pending_output();
            if !pending.is_empty() {
                let n = self.port.write(pending, POLL_SLICE)?;
                if n > 0 {
                    let written = self.c2.pending_output()[..n].to_vec();
                    self.trace.record(Instant::now(), '>', &written);
                    self.c2.consume_output(n);
                }
            }
            let wait = match self.c2.poll_at() {
                Some(d) => d.saturating_duration_since(Instant::now()).min(POLL_SLICE),
                None => POLL_SLICE,
            };
            let wait = if self.c2.pending_output().is_empty() {
                wait
            } else {
                Duration::from_millis(1)
            };
            let n = self.port.read(&mut buf, wait)?;
            let now = Instant::now();
            if n > 0 {
                self.trace.record(now, '<', &buf[..n]);
                self.c2.on_input(&buf[..n], now);
            }
            self.c2.on_timeout(Instant::now());
            while let Some(ev) = self.c2.poll_event() {
                match &ev {
                    class2::Event::Ring => self.rings = self.rings.saturating_add(1),
                    class2::Event::CallInfo { tag, value } => self.caller.note(tag, value),
                    _ => {}
                }
                self.c2_call.note(&ev);
                on_event(&ev);
                let ongoing = matches!(
                    ev,
                    class2::Event::Ring
                        | class2::Event::CallInfo { .. }
                        | class2::Event::Report(_)
                        | class2::Event::Data(_)
                );
                if self.c2.is_idle() && !ongoing {
                    return Ok(ev);
                }
            }
        }
    }

    /// Class 2.0: our ID and capabilities, sent before each dial or answer — through the
    /// Class 2.0 driver, which keeps the `+FCC` the modem took ([`Self::class2_page_session`]).
    fn send_station(&mut self) -> Result<(), ModemError> {
        let (id, caps) = self.station.clone();
        for c in class2::station_commands(&id, &caps) {
            let text = c.text.clone();
            match self.run2_with(class2::Op::Command(c), |_| {})? {
                class2::Event::CommandDone {
                    result: FinalResult::Ok,
                    ..
                } => {}
                class2::Event::CommandDone { result, .. } => {
                    return Err(ModemError::Command {
                        command: text,
                        result,
                    });
                }
                class2::Event::Failed(f) => return Err(ModemError::Op(f)),
                _ => return Err(ModemError::Op(OpFailure::Protocol)),
            }
        }
        Ok(())
    }

    /// Class 2.0: the session parameters the page of the current `+FDT` is coded with, and
    /// where they come from ([`Class2Driver::page_session`]).
    pub fn class2_page_session(&self) -> Option<(SessionParams, class2::SessionSource)> {
        self.c2.page_session()
    }

    /// Class 2.0: a dial or answer's final event as the result of [`Modem::dial`] /
    /// [`Modem::wait_and_answer`].
    fn class2_call_result(&mut self, ev: class2::Event) -> Result<(), ModemError> {
        match ev {
            class2::Event::Connected => Ok(()),
            class2::Event::CallFailed(LineCause::Timeout) => {
                self.run2_with(class2::Op::Hangup, |_| {})?;
                Err(ModemError::Call(LineCause::Timeout))
            }
            class2::Event::CallFailed(c) => Err(ModemError::Call(c)),
            class2::Event::Ended(code) => {
                tracing::debug!(code = %code.text(), "class 2.0 call not set up");
                // The modem ends phase A/B itself: anything but a phase-A verdict means a
                // line that answered without a usable fax, as NO CARRIER does in Class 1.
                Err(ModemError::Call(match code.meaning() {
                    HangupMeaning::Line(c) => c,
                    _ => LineCause::NoCarrier,
                }))
            }
            class2::Event::Failed(f) => Err(ModemError::Op(f)),
            _ => Err(ModemError::Op(OpFailure::Protocol)),
        }
    }

    /// Run one op and return its final event.
    pub fn run(&mut self, op: Op) -> Result<Event, ModemError> {
        self.run_with(op, |_| {})
    }

    /// Run a command; `Ok(info lines)` when it answered OK.
    pub fn command(&mut self, text: &str) -> Result<Vec<String>, ModemError> {
        let c = AtCommand::new(text)
            .map_err(|e| ModemError::Start(super::class1::StartError::Invalid(e.to_string())))?;
        match self.run(Op::Command(c))? {
            Event::CommandDone {
                result: FinalResult::Ok,
                info,
            } => Ok(info),
            Event::CommandDone { result, .. } => Err(ModemError::Command {
                command: text.to_owned(),
                result,
            }),
            other => Err(ModemError::Op(unexpected(&other))),
        }
    }

    /// Bring the modem to a known state: the profile's init strings, the fax class, caller
    /// ID reporting (an `ERROR` to that is tolerated: not every modem has it).
    pub fn init(&mut self) -> Result<(), ModemError> {
        // Clear whatever a previous user left half-typed.
        let _ = self.port.write(b"\r", POLL_SLICE)?;
        let mut junk = [0u8; 256];
        let _ = self.port.read(&mut junk, Duration::from_millis(100))?;
        for c in self.profile.init.clone() {
            self.command(&c)?;
        }
        self.command(self.profile.fclass_command())?;
        if self.is_class2() {
            for c in class2::setup_commands(self.profile.flow_control) {
                self.command(&c.text)?;
            }
        }
        if let Some(c) = self.profile.caller_id.clone() {
            match self.command(&c) {
                Ok(_) | Err(ModemError::Command { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Ask the modem what it is and can do.
    pub fn probe(&mut self) -> Result<ModemInfo, ModemError> {
        let mut info = ModemInfo::default();
        for (item, cmd) in probe::commands() {
            match self.run(Op::Command(cmd))? {
                Event::CommandDone {
                    result,
                    info: lines,
                } => info.record(item, result, &lines),
                other => return Err(ModemError::Op(unexpected(&other))),
            }
        }
        Ok(info)
    }

    /// Dial `number`; `Ok` once connected (the modem is then receiving V.21 HDLC).
    pub fn dial(&mut self, number: &str) -> Result<(), ModemError> {
        if self.is_class2() {
            self.send_station()?;
            let op = class2::Op::Dial {
                prefix: self.profile.dial.clone(),
                number: number.to_owned(),
                timeout: self.profile.dial_timeout(),
            };
            let ev = self.run2_with(op, |_| {})?;
            return self.class2_call_result(ev);
        }
        let op = Op::Dial {
            prefix: self.profile.dial.clone(),
            number: number.to_owned(),
            timeout: self.profile.dial_timeout(),
        };
        match self.run(op)? {
            Event::Connected => Ok(()),
            Event::CallFailed(LineCause::Timeout) => {
                // Some modems (spandsp among them) ignore the abort character while dialling
                // and keep the call up: put the line on hook so the far end stops ringing.
                self.run(Op::Hangup)?;
                Err(ModemError::Call(LineCause::Timeout))
            }
            Event::CallFailed(c) => Err(ModemError::Call(c)),
            other => Err(ModemError::Op(unexpected(&other))),
        }
    }

    /// Wait up to `max_wait` until `rings` RINGs (counted since [`Self::clear_call`]) have
    /// come, collecting caller ID on the way; nothing is answered.
    pub fn wait_for_rings(&mut self, rings: u32, max_wait: Duration) -> Result<(), ModemError> {
        let end = Instant::now() + max_wait;
        let mut buf = [0u8; 512];
        while self.rings < rings.max(1) {
            let now = Instant::now();
            if now >= end {
                return Err(ModemError::NoCall(max_wait));
            }
            let n = self
                .port
                .read(&mut buf, end.saturating_duration_since(now).min(POLL_SLICE))?;
            if n > 0 {
                let now = Instant::now();
                self.trace.record(now, '<', &buf[..n]);
                self.driver.on_input(&buf[..n], now);
                while let Some(ev) = self.driver.poll_event() {
                    match ev {
                        Event::Ring => self.rings = self.rings.saturating_add(1),
                        Event::CallInfo { tag, value } => self.caller.note(&tag, &value),
                        _ => {}
                    }
                }
            }
        }
        Ok(())
    }

    /// Wait up to `max_wait` for `rings` RINGs, then answer (`ATA`, after the profile's
    /// answer delay). Caller info is in [`Self::caller`] afterwards.
    pub fn wait_and_answer(&mut self, rings: u32, max_wait: Duration) -> Result<(), ModemError> {
        self.wait_for_rings(rings, max_wait)?;
        if self.profile.answer_delay_ms > 0 {
            std::thread::sleep(Duration::from_millis(u64::from(
                self.profile.answer_delay_ms,
            )));
        }
        if self.is_class2() {
            self.send_station()?;
            let ev = self.run2_with(class2::Op::Answer, |_| {})?;
            return self.class2_call_result(ev);
        }
        match self.run(Op::Answer)? {
            Event::Connected => Ok(()),
            Event::CallFailed(c) => Err(ModemError::Call(c)),
            other => Err(ModemError::Op(unexpected(&other))),
        }
    }

    /// Hang up (`ATH0`), tolerating a modem that has already dropped the line.
    pub fn hangup(&mut self) -> Result<(), ModemError> {
        if self.is_class2() {
            self.run2_with(class2::Op::Hangup, |_| {})?;
            return Ok(());
        }
        self.run(Op::Hangup)?;
        Ok(())
    }

    /// Put the modem back to a known state after a call: the profile's reset commands, then
    /// the fax class again (`ATZ` returns a modem to class 0, V.250 §6.1.1 and T.31/T.32
    /// `+FCLASS` default) and, in Class 2.0, the T.32 set-up — the next call on the same open
    /// port needs them. Each is tolerated to fail: the next call will complain if the modem is
    /// wedged.
    pub fn reset(&mut self) -> Result<(), ModemError> {
        let mut cmds = self.profile.reset.clone();
        cmds.push(self.profile.fclass_command().to_owned());
        if self.is_class2() {
            cmds.extend(
                class2::setup_commands(self.profile.flow_control)
                    .into_iter()
                    .map(|c| c.text),
            );
        }
        for c in cmds {
            match self.command(&c) {
                Ok(_) | Err(ModemError::Command { .. }) | Err(ModemError::Op(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// After the device vanished: reopen it (with back-off) and initialise it again.
    pub fn recover(&mut self, attempts: u32) -> Result<(), ModemError> {
        self.port.reopen(attempts, Duration::from_millis(200))?;
        self.driver = Class1Driver::new(
            self.profile.flow_control == FlowControl::Software,
            self.profile.hdlc_fcs_octets,
        );
        self.c2 = Class2Driver::new(self.profile.class2_wait_xon);
        self.init()
    }

    /// The port (for its path and state).
    pub fn port(&self) -> &Port {
        &self.port
    }
}

/// Events that end an op (everything except rings, caller info and data chunks).
fn is_final(ev: &Event) -> bool {
    !matches!(
        ev,
        Event::Ring | Event::CallInfo { .. } | Event::Data(_) | Event::Carrier
    )
}

fn unexpected(ev: &Event) -> OpFailure {
    match ev {
        Event::Failed(f) => *f,
        _ => OpFailure::Protocol,
    }
}

fn hex_frame(f: &[u8]) -> Vec<u8> {
    let mut s = String::from("frame");
    for b in f.iter().take(40) {
        s.push_str(&format!(" {b:02x}"));
    }
    if f.len() > 40 {
        s.push_str(&format!(" … ({} octets)", f.len()));
    }
    s.into_bytes()
}
