//! I/O shell: one fax call — the T.30 [`Engine`] carried over T.38 IFP packets in UDPTL
//! datagrams (T.38 §9.1) on a UDP socket.
//!
//! [`Endpoint`] is the pure part, shared with the tests' simulated network: the engine, its
//! [`Terminal`] (commands ↔ IFP packets, `super::terminal`), the UDPTL sender with
//! redundancy and the reorder/recovery receiver. [`run_call_observed`] wraps it with the socket
//! and the clock: it sends each packet when it is due, feeds datagrams from the far end (and
//! only from it: media from any other address is ignored, a forged-media guard) and ends the
//! call when the engine hangs up, when the SIP layer says the far end hung up (BYE: the
//! engine hears a lost carrier), or after [`MAX_CALL_TIME`].

use super::T38Params;
use super::ifp::Ifp;
use super::terminal::Terminal;
use super::udptl::{self, Delivery};
use crate::fax::t30::{Command, Engine, Event};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Longest a call may last (ours, a backstop, as for a modem call): 40 pages at 2400 bit/s fit.
pub const MAX_CALL_TIME: Duration = Duration::from_secs(3 * 3600);

/// How long the receiver waits for a missing UDPTL packet (from redundancy, FEC or a late
/// datagram) before giving it up (ours: packets come every few tens of ms while a signal
/// lasts; a gap still open after this is a burst beyond the redundancy depth).
pub const GAP_WAIT: Duration = Duration::from_millis(300);

/// Packets held ahead of a gap (ours; at 14400 bit/s and 100-octet chunks, about 1 s).
pub const RX_WINDOW: u16 = 64;

/// Largest datagram read (ours: the UDP maximum; the far end should keep to our
/// `T38FaxMaxDatagram`, and anything longer is cut by the socket and fails to parse).
const RECV_BUFFER: usize = 65_536;

/// Why a T.38 call ended early.
#[derive(Debug, thiserror::Error)]
pub enum T38Error {
    /// The socket failed.
    #[error("UDPTL socket: {0}")]
    Io(#[from] std::io::Error),
}

/// The media side of one call, set up by the SIP layer.
pub struct Media {
    /// Our UDPTL socket (bound to the local media address).
    pub socket: UdpSocket,
    /// The far end's media address from its SDP: the only source accepted.
    pub remote: SocketAddr,
    /// The agreed session parameters (`max_datagram`: the far end's limit).
    pub params: T38Params,
    /// Set by the SIP layer when the far end hangs up (BYE): the call ends as a lost carrier.
    pub hangup: Arc<AtomicBool>,
}

/// The pure call endpoint: engine events and IFP/UDPTL in and out, time as an input.
pub struct Endpoint {
    term: Terminal,
    tx: udptl::Sender,
    rx: udptl::Receiver,
    version: u8,
    gap_since: Option<Duration>,
    hung_up: bool,
    deliveries: Vec<Delivery>,
    /// Datagrams from the far end that did not parse (they are ignored).
    pub bad_datagrams: u64,
    /// IFP packets given up as lost after [`GAP_WAIT`].
    pub lost_packets: u64,
}

impl Endpoint {
    /// An endpoint for a session with `params`.
    pub fn new(params: &T38Params) -> Endpoint {
        let depth = match params.udp_ec {
            super::UdpEc::None => 0,
            _ => usize::from(params.redundancy_depth),
        };
        Endpoint {
            term: Terminal::new(params),
            tx: udptl::Sender::new(depth, params.max_datagram as usize),
            rx: udptl::Receiver::new(RX_WINDOW),
            version: params.version,
            gap_since: None,
            hung_up: false,
            deliveries: Vec::new(),
            bad_datagrams: 0,
            lost_packets: 0,
        }
    }

    /// Whether the engine has hung up and every packet has gone.
    pub fn finished(&self) -> bool {
        self.hung_up && self.term.next_due().is_none()
    }

    /// Runs the engine and the terminal up to `now`; datagrams to send are appended to `out`.
    pub fn step(&mut self, engine: &mut Engine, now: Duration, out: &mut Vec<Vec<u8>>) {
        if self.gap_since.is_some_and(|t| t + GAP_WAIT <= now) {
            self.rx.skip_gap(&mut self.deliveries);
            self.gap_since = None;
            self.feed_deliveries(now);
        }
        // Bounded: each round starts a command, sends a packet or feeds an event; a call has
        // far fewer per instant.
        for _ in 0..10_000 {
            let mut progressed = false;
            while !self.hung_up && !self.term.transmitting() {
                match engine.next_command() {
                    Some(Command::HangUp) => {
                        self.hung_up = true;
                        self.term.start(Command::HangUp, now);
                    }
                    Some(cmd) => {
                        tracing::debug!(?cmd, "t38 command");
                        self.term.start(cmd, now);
                        progressed = true;
                    }
                    None => break,
                }
            }
            while let Some(p) = self.term.poll_transmit(now) {
                match p.encode(self.version) {
                    Ok(b) => out.push(self.tx.send(&b)),
                    Err(e) => tracing::warn!(%e, "IFP packet not encodable"),
                }
                progressed = true;
            }
            while let Some(ev) = self.term.poll_event(now) {
                if !self.hung_up {
                    engine.handle(ev, now);
                }
                progressed = true;
            }
            if engine.poll_at().is_some_and(|t| t <= now) {
                engine.handle_timeout(now);
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
    }

    /// A datagram from the far end at `now`.
    pub fn datagram(&mut self, bytes: &[u8], now: Duration) {
        if self.rx.push(bytes, &mut self.deliveries).is_err() {
            self.bad_datagrams += 1;
        }
        if self.rx.has_gap() {
            self.gap_since.get_or_insert(now);
        } else {
            self.gap_since = None;
        }
        self.feed_deliveries(now);
    }

    fn feed_deliveries(&mut self, now: Duration) {
        for d in self.deliveries.drain(..) {
            match d {
                Delivery::Packet { ifp, padded, .. } => {
                    let p = if padded {
                        Ifp::decode_padded(&ifp, self.version)
                    } else {
                        Ifp::decode(&ifp, self.version)
                    };
                    match p {
                        Ok(p) => self.term.receive(p, now),
                        Err(e) => {
                            tracing::debug!(%e, "IFP packet not understood");
                            self.term.lost();
                        }
                    }
                }
                Delivery::Lost { count, .. } => {
                    self.lost_packets += count;
                    self.term.lost();
                }
            }
        }
    }

    /// When [`Endpoint::step`] should run next (a packet or event due, an engine timer, a
    /// gap to give up), if anything is pending besides datagrams.
    pub fn next_wake(&self, engine: &Engine) -> Option<Duration> {
        [
            self.term.next_due(),
            engine.poll_at(),
            self.gap_since.map(|t| t + GAP_WAIT),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// Runs `engine` over `media` until the engine hangs up. See the module docs.
pub fn run_call(media: &mut Media, engine: &mut Engine) -> Result<(), T38Error> {
    run_call_observed(media, engine, &mut |_| {})
}

/// [`run_call`], with `observe` shown the engine after each step (and once at the end): the
/// hook of status displays, as in `fax::modem::session`, which read [`Engine::progress`] and
/// keep only its changes. Steps come per packet or datagram burst, never per octet.
pub fn run_call_observed(
    media: &mut Media,
    engine: &mut Engine,
    observe: &mut dyn FnMut(&Engine),
) -> Result<(), T38Error> {
    let r = drive(media, engine, observe);
    observe(engine);
    r
}

fn drive(
    media: &mut Media,
    engine: &mut Engine,
    observe: &mut dyn FnMut(&Engine),
) -> Result<(), T38Error> {
    let start = Instant::now();
    let now = || start.elapsed();
    let mut ep = Endpoint::new(&media.params);
    let mut out = Vec::new();
    let mut buf = vec![0u8; RECV_BUFFER];
    let mut aborted = false;
    engine.start(now());
    loop {
        let t = now();
        if media.hangup.load(Ordering::Relaxed) {
            // The far end hung up (SIP BYE): the line is gone, as a modem's lost carrier.
            engine.handle(Event::CarrierLost, t);
            drain(engine, t);
            return Ok(());
        }
        if t > MAX_CALL_TIME && !aborted {
            // Once: the engine's DCN and hang-up then run their course.
            aborted = true;
            engine.abort(t);
        }
        if t > MAX_CALL_TIME + Duration::from_secs(60) {
            // The DCN after the abort could not even be sent: stop regardless.
            drain(engine, t);
            return Ok(());
        }
        ep.step(engine, t, &mut out);
        for d in out.drain(..) {
            if let Err(e) = media.socket.send_to(&d, media.remote) {
                tracing::debug!(%e, "UDPTL send failed");
            }
        }
        if ep.finished() {
            break;
        }
        observe(engine);
        // Wait for a datagram until the next thing is due (at most 100 ms, to see `hangup`).
        let wait = ep
            .next_wake(engine)
            .map_or(Duration::from_millis(100), |w| w.saturating_sub(now()))
            .clamp(Duration::from_millis(1), Duration::from_millis(100));
        media.socket.set_read_timeout(Some(wait))?;
        match media.socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                if from == media.remote {
                    ep.datagram(&buf[..n], now());
                } else {
                    tracing::debug!(%from, "datagram from an unexpected address ignored");
                }
                // Take whatever else is queued without waiting.
                media.socket.set_nonblocking(true)?;
                for _ in 0..256 {
                    match media.socket.recv_from(&mut buf) {
                        Ok((n, from)) if from == media.remote => ep.datagram(&buf[..n], now()),
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
                media.socket.set_nonblocking(false)?;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            // ICMP port unreachable from an earlier send (the far end not yet listening, or
            // gone): not fatal on UDP; the engine's timers decide.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
            Err(e) => {
                engine.handle(Event::CarrierLost, now());
                drain(engine, now());
                return Err(e.into());
            }
        }
    }
    Ok(())
}

/// The socket is dead: run the engine to its end without the line.
fn drain(engine: &mut Engine, now: Duration) {
    for _ in 0..1000 {
        if engine.is_finished() {
            return;
        }
        match engine.next_command() {
            Some(Command::HangUp) => return,
            Some(_) => engine.handle(Event::CarrierLost, now),
            None => engine.abort(now),
        }
    }
}
