//! I/O shell: the SIP user agent on tokio — one task owns the [`UserAgent`] core, the UDP
//! socket (or the TCP listener and its connections), the timer and the call table; the
//! line's code holds an [`Agent`] and a [`SipCall`] per call.
//!
//! Bounds: one datagram or TCP frame is at most [`message::MAX_MESSAGE`] octets (a TCP peer
//! past it is disconnected, RFC 3261 §18.3 gives no way to resynchronise); at most
//! [`MAX_CONNECTIONS`] TCP connections; at most [`INCOMING_QUEUE`] answered calls wait for the
//! line to take them (more get 486 before they are answered).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot, watch};

use super::cause::Cause;
use super::message::{self, Frame};
use super::sdp::Codec;
use super::t38sdp::T38Params;
use super::transaction::Timers;
use super::ua::{CallId, Event, Output, Peer, RegState, Transport, UaConfig, UserAgent};

/// TCP connections at once (ours).
pub const MAX_CONNECTIONS: usize = 256;
/// Answered incoming calls waiting for [`Agent::next_incoming`] (ours).
pub const INCOMING_QUEUE: usize = 16;
/// How long [`Agent::shutdown`] waits for the BYEs it sends.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A SIP line's settings (the config layer fills them from a `[[sip]]` table).
#[derive(Debug, Clone)]
pub struct SipSettings {
    /// Registrar / proxy, `host[:port]` (port 5060 when absent); every out-of-dialog request
    /// goes there. `None`: no trunk — incoming calls only.
    pub server: Option<String>,
    /// Domain of our address-of-record and of outgoing Request-URIs; `None`: the server's.
    pub domain: Option<String>,
    /// REGISTER with the server (and refresh before expiry).
    pub register: bool,
    /// Registration lifetime asked for, seconds.
    pub register_expires: u32,
    /// Our user (AOR user part, From of our calls).
    pub user: String,
    /// Digest user name; `None`: [`SipSettings::user`].
    pub auth_user: Option<String>,
    /// Digest password (the config layer reads it from its file).
    pub password: String,
    /// Where we listen for SIP (an address peers reach: it goes into Via and Contact; port 0
    /// picks one, see [`Agent::local_addr`]).
    pub local_addr: SocketAddr,
    /// UDP or TCP.
    pub transport: Transport,
    /// Our media address (SDP `c=`; media sockets bind here).
    pub media_ip: IpAddr,
    /// Media ports, inclusive; one port per call carries RTP then UDPTL.
    pub media_ports: (u16, u16),
    /// Networks INVITEs are accepted from (the server's address always is); others get 403.
    pub allowed_networks: Vec<IpNet>,
    /// Sending: wait this long for the far end's T.38 re-INVITE before sending ours.
    pub reinvite_wait: Duration,
    /// Sending: ring at most this long.
    pub answer_timeout: Duration,
    /// Calls at once on this line.
    pub max_calls: usize,
    /// What we offer and accept for T.38.
    pub t38: T38Params,
}

impl Default for SipSettings {
    fn default() -> Self {
        SipSettings {
            server: None,
            domain: None,
            register: true,
            register_expires: 3600,
            user: "faxgate".into(),
            auth_user: None,
            password: String::new(),
            local_addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5060),
            transport: Transport::Udp,
            media_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            media_ports: (40_000, 40_999),
            allowed_networks: Vec::new(),
            reinvite_wait: Duration::from_secs(3),
            answer_timeout: Duration::from_secs(60),
            max_calls: 4,
            t38: T38Params::default(),
        }
    }
}

/// Why the agent could not start or place a call.
#[derive(Debug, thiserror::Error)]
pub enum SipError {
    /// A setting is unusable (its name).
    #[error("sip: {0}")]
    Setting(String),
    /// The server name did not resolve.
    #[error("sip: cannot resolve {0}: {1}")]
    Resolve(String, std::io::Error),
    /// Binding the SIP address failed.
    #[error("sip: cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    /// No free media port in the range.
    #[error("sip: no free media port in {0}-{1}")]
    NoMediaPort(u16, u16),
    /// The agent's task has stopped.
    #[error("sip: the user agent has stopped")]
    Stopped,
}

/// The agreed T.38 stream of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct T38Media {
    /// Where UDPTL goes (the far end's `m=image` port and address).
    pub remote: SocketAddr,
    /// What both ends agreed.
    pub params: T38Params,
}

/// Where a call stands, as the line sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallProgress {
    /// INVITE out (or an incoming call being answered).
    Calling,
    /// 180/183.
    Ringing,
    /// G.711 agreed: RTP to `remote`.
    Audio {
        /// Codec.
        codec: Codec,
        /// The far end's RTP address.
        remote: SocketAddr,
    },
    /// T.38 agreed.
    T38(T38Media),
    /// Over.
    Ended(Cause),
}

enum Cmd {
    Call {
        handle: u64,
        number: String,
        port: u16,
        entry: Entry,
        reply: oneshot::Sender<()>,
    },
    Hangup(u64),
    Shutdown,
}

struct Entry {
    progress: watch::Sender<CallProgress>,
    over: Arc<AtomicBool>,
}

/// One call: its media socket, progress, and the flag the T.38 session watches.
/// Dropping it hangs up.
pub struct SipCall {
    handle: u64,
    cmd: mpsc::UnboundedSender<Cmd>,
    socket: std::net::UdpSocket,
    progress: watch::Receiver<CallProgress>,
    over: Arc<AtomicBool>,
    did: String,
    caller: String,
    caller_name: Option<String>,
}

impl SipCall {
    /// Wait until T.38 is agreed (ours or the far end's re-INVITE), or the call's end.
    pub async fn t38(&mut self) -> Result<T38Media, Cause> {
        loop {
            match &*self.progress.borrow_and_update() {
                CallProgress::T38(m) => return Ok(m.clone()),
                CallProgress::Ended(c) => return Err(c.clone()),
                _ => {}
            }
            if self.progress.changed().await.is_err() {
                return Err(Cause::Local("the SIP user agent stopped".into()));
            }
        }
    }

    /// The call's media socket (RTP while audio, then UDPTL). Bound, not connected;
    /// datagrams from other sources than the agreed remote are to be ignored.
    pub fn socket(&self) -> &std::net::UdpSocket {
        &self.socket
    }

    /// Progress as it changes.
    pub fn progress(&self) -> watch::Receiver<CallProgress> {
        self.progress.clone()
    }

    /// Turns true when the call is over from the SIP side: the far end's BYE (or CANCEL),
    /// or any other end (timeouts). The T.38 session polls it.
    pub fn remote_bye(&self) -> Arc<AtomicBool> {
        self.over.clone()
    }

    /// Why the call ended, once it has.
    pub fn ended(&self) -> Option<Cause> {
        match &*self.progress.borrow() {
            CallProgress::Ended(c) => Some(c.clone()),
            _ => None,
        }
    }

    /// The number called (incoming: Request-URI user, else To user; outgoing: the number).
    pub fn did(&self) -> &str {
        &self.did
    }

    /// The caller (incoming: P-Asserted-Identity user, else From user; outgoing: our user).
    pub fn caller(&self) -> &str {
        &self.caller
    }

    /// The caller's display name, if any.
    pub fn caller_name(&self) -> Option<&str> {
        self.caller_name.as_deref()
    }

    /// Hang up (CANCEL, BYE or a refusal, as the call's state allows). Idempotent.
    pub fn hangup(&self) {
        let _ = self.cmd.send(Cmd::Hangup(self.handle));
    }
}

impl Drop for SipCall {
    fn drop(&mut self) {
        self.hangup();
    }
}

/// A running SIP user agent.
pub struct Agent {
    cmd: mpsc::UnboundedSender<Cmd>,
    reg: watch::Receiver<RegState>,
    incoming: tokio::sync::Mutex<mpsc::Receiver<SipCall>>,
    local: SocketAddr,
    ports: Arc<PortPool>,
    next_handle: Arc<AtomicU64>,
    user: String,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Media ports handed out round the range, two apart (RTP's habit of even ports, RFC 3550 §11).
struct PortPool {
    ip: IpAddr,
    range: (u16, u16),
    cursor: Mutex<u32>,
}

impl PortPool {
    fn bind(&self) -> Result<std::net::UdpSocket, SipError> {
        let (lo, hi) = self.range;
        let n = u32::from(hi - lo) + 1;
        let mut cur = self.cursor.lock().unwrap_or_else(|e| e.into_inner());
        for k in 0..n {
            let off = (*cur + k) % n;
            let port = (u32::from(lo) + off) as u16;
            if let Ok(s) = std::net::UdpSocket::bind(SocketAddr::new(self.ip, port)) {
                *cur = (off + 2) % n;
                return Ok(s);
            }
        }
        Err(SipError::NoMediaPort(lo, hi))
    }
}

impl Agent {
    /// Check the settings, resolve the server, bind, and start (REGISTER goes out at once
    /// when configured). Needs a tokio runtime.
    pub async fn start(s: SipSettings) -> Result<Agent, SipError> {
        if s.local_addr.ip().is_unspecified() {
            return Err(SipError::Setting(
                "local_addr must be an address peers reach (it goes into Via and Contact)".into(),
            ));
        }
        if s.media_ip.is_unspecified() {
            return Err(SipError::Setting(
                "media address must be an address peers reach (SDP c=)".into(),
            ));
        }
        if s.media_ports.0 == 0 || s.media_ports.0 > s.media_ports.1 {
            return Err(SipError::Setting(
                "media_ports: first port must be at least 1 and not above the last".into(),
            ));
        }
        if s.user.is_empty()
            || !s
                .user
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b))
        {
            return Err(SipError::Setting(
                "user: empty or not a SIP user part".into(),
            ));
        }
        let server = match &s.server {
            Some(h) => {
                // `host`, `host:port`, an IP literal, or `[v6]:port`; 5060 when no port
                // (RFC 3261 §19.1.2).
                let with_port = if h.parse::<SocketAddr>().is_ok() {
                    h.clone()
                } else if let Ok(ip) = h.trim_matches(['[', ']']).parse::<IpAddr>() {
                    SocketAddr::new(ip, 5060).to_string()
                } else if h
                    .rsplit_once(':')
                    .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
                {
                    h.clone()
                } else {
                    format!("{h}:5060")
                };
                let addr = tokio::net::lookup_host(&with_port)
                    .await
                    .map_err(|e| SipError::Resolve(h.clone(), e))?
                    .next()
                    .ok_or_else(|| {
                        SipError::Resolve(h.clone(), std::io::Error::other("no address"))
                    })?;
                Some(addr)
            }
            None => None,
        };
        let domain = s
            .domain
            .clone()
            .or_else(|| s.server.clone())
            .unwrap_or_else(|| s.local_addr.ip().to_string());
        let io = match s.transport {
            Transport::Udp => {
                let sock = UdpSocket::bind(s.local_addr)
                    .await
                    .map_err(|e| SipError::Bind(s.local_addr, e))?;
                Io::Udp(sock)
            }
            Transport::Tcp => {
                let l = TcpListener::bind(s.local_addr)
                    .await
                    .map_err(|e| SipError::Bind(s.local_addr, e))?;
                Io::Tcp(l)
            }
        };
        let local = match &io {
            Io::Udp(u) => u.local_addr(),
            Io::Tcp(l) => l.local_addr(),
        }
        .map_err(|e| SipError::Bind(s.local_addr, e))?;
        let cfg = UaConfig {
            user: s.user.clone(),
            domain,
            auth_user: s.auth_user.clone().unwrap_or_else(|| s.user.clone()),
            password: s.password.clone(),
            server,
            register: s.register,
            register_expires: s.register_expires.max(1),
            transport: s.transport,
            local,
            media_ip: s.media_ip,
            allowed: s.allowed_networks.clone(),
            reinvite_wait: s.reinvite_wait,
            answer_timeout: s.answer_timeout,
            max_calls: s.max_calls.max(1),
            t38: s.t38.clone(),
            timers: Timers::default(),
            user_agent: format!("faxgate/{}", env!("CARGO_PKG_VERSION")),
        };
        let mut seed = [0u8; 8];
        getrandom::fill(&mut seed).map_err(|e| SipError::Setting(format!("no randomness: {e}")))?;
        let core = UserAgent::new(cfg, u64::from_le_bytes(seed), Instant::now());
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (reg_tx, reg_rx) = watch::channel(core.registration());
        let (in_tx, in_rx) = mpsc::channel(INCOMING_QUEUE);
        let ports = Arc::new(PortPool {
            ip: s.media_ip,
            range: s.media_ports,
            cursor: Mutex::new(0),
        });
        let next_handle = Arc::new(AtomicU64::new(1));
        let task = Task {
            core,
            io,
            cmd_tx: cmd_tx.clone(),
            reg: reg_tx,
            incoming: in_tx,
            ports: ports.clone(),
            next_handle: next_handle.clone(),
            calls: HashMap::new(),
            handles: HashMap::new(),
            conns: HashMap::new(),
        };
        let task = tokio::spawn(task.run(cmd_rx));
        Ok(Agent {
            cmd: cmd_tx,
            reg: reg_rx,
            incoming: tokio::sync::Mutex::new(in_rx),
            local,
            ports,
            next_handle,
            user: s.user,
            task: Some(task),
        })
    }

    /// Where we listen (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The registration state, as it changes.
    pub fn registration(&self) -> watch::Receiver<RegState> {
        self.reg.clone()
    }

    /// Call `number` (digits, `+`, `*`, `#`) through the server. Returns at once; wait for
    /// T.38 with [`SipCall::t38`].
    pub fn call(&self, number: &str) -> Result<SipCall, SipError> {
        let socket = self.ports.bind()?;
        let port = socket
            .local_addr()
            .map_err(|_| SipError::NoMediaPort(self.ports.range.0, self.ports.range.1))?
            .port();
        let handle = self.next_handle.fetch_add(1, Ordering::Relaxed);
        let (ptx, prx) = watch::channel(CallProgress::Calling);
        let over = Arc::new(AtomicBool::new(false));
        let (reply, _) = oneshot::channel();
        let entry = Entry {
            progress: ptx,
            over: over.clone(),
        };
        self.cmd
            .send(Cmd::Call {
                handle,
                number: number.to_string(),
                port,
                entry,
                reply,
            })
            .map_err(|_| SipError::Stopped)?;
        Ok(SipCall {
            handle,
            cmd: self.cmd.clone(),
            socket,
            progress: prx,
            over,
            did: number.to_string(),
            caller: self.user.clone(),
            caller_name: None,
        })
    }

    /// The next incoming call (already answered with G.711; our T.38 re-INVITE follows the
    /// ACK). `None` once the agent has stopped.
    pub async fn next_incoming(&self) -> Option<SipCall> {
        self.incoming.lock().await.recv().await
    }

    /// Hang up every call and remove our registration (waiting up to a few seconds for the
    /// BYEs and the REGISTER), then stop.
    pub async fn shutdown(mut self) {
        let _ = self.cmd.send(Cmd::Shutdown);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.cmd.send(Cmd::Shutdown);
    }
}

enum Io {
    Udp(UdpSocket),
    Tcp(TcpListener),
}

enum Net {
    Frame(SocketAddr, Vec<u8>),
    Closed(SocketAddr),
}

struct Task {
    core: UserAgent,
    io: Io,
    cmd_tx: mpsc::UnboundedSender<Cmd>,
    reg: watch::Sender<RegState>,
    incoming: mpsc::Sender<SipCall>,
    ports: Arc<PortPool>,
    next_handle: Arc<AtomicU64>,
    calls: HashMap<CallId, (u64, Entry)>,
    handles: HashMap<u64, CallId>,
    conns: HashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>>,
}

impl Task {
    async fn run(mut self, mut cmd_rx: mpsc::UnboundedReceiver<Cmd>) {
        let (net_tx, mut net_rx) = mpsc::unbounded_channel::<Net>();
        let mut buf = vec![0u8; message::MAX_MESSAGE + 1];
        let mut stopping: Option<Instant> = None;
        loop {
            self.flush(&net_tx).await;
            if let Some(t) = stopping
                && ((self.core.call_count() == 0 && !self.core.registering())
                    || Instant::now() >= t)
            {
                break;
            }
            let deadline = self.core.next_deadline();
            let deadline = match stopping {
                Some(t) => Some(deadline.map_or(t, |d| d.min(t))),
                None => deadline,
            };
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = recv_udp(&self.io, &mut buf) => {
                    if let Some((n, from)) = r {
                        let peer = Peer { transport: Transport::Udp, addr: from };
                        self.core.handle_message(peer, &buf[..n], Instant::now());
                    }
                }
                a = accept_tcp(&self.io) => {
                    if let Some((stream, from)) = a {
                        if self.conns.len() >= MAX_CONNECTIONS {
                            tracing::warn!(peer = %from, "SIP TCP connection refused: too many");
                        } else {
                            let (tx, rx) = mpsc::unbounded_channel();
                            self.conns.insert(from, tx);
                            tokio::spawn(connection(Some(stream), from, rx, net_tx.clone()));
                        }
                    }
                }
                Some(n) = net_rx.recv() => match n {
                    Net::Frame(from, bytes) => {
                        let peer = Peer { transport: Transport::Tcp, addr: from };
                        self.core.handle_message(peer, &bytes, Instant::now());
                    }
                    Net::Closed(from) => { self.conns.remove(&from); }
                },
                c = cmd_rx.recv() => match c {
                    Some(Cmd::Call { handle, number, port, entry, reply }) => {
                        let id = self.core.call(&number, port, Instant::now());
                        self.calls.insert(id, (handle, entry));
                        self.handles.insert(handle, id);
                        let _ = reply.send(());
                    }
                    Some(Cmd::Hangup(handle)) => {
                        if let Some(id) = self.handles.get(&handle) {
                            self.core.hangup(*id, Instant::now());
                        }
                    }
                    Some(Cmd::Shutdown) | None => {
                        if stopping.is_none() {
                            let ids: Vec<CallId> = self.handles.values().copied().collect();
                            for id in ids {
                                self.core.hangup(id, Instant::now());
                            }
                            self.core.unregister(Instant::now());
                            stopping = Some(Instant::now() + SHUTDOWN_GRACE);
                        }
                    }
                },
                _ = sleep => self.core.handle_timeout(Instant::now()),
            }
        }
    }

    async fn flush(&mut self, net_tx: &mpsc::UnboundedSender<Net>) {
        while let Some(o) = self.core.poll_output() {
            match o {
                Output::Send { to, bytes } => self.send(to, bytes, net_tx).await,
                Output::Event(e) => self.on_event(e),
            }
        }
    }

    async fn send(&mut self, to: Peer, bytes: Vec<u8>, net_tx: &mpsc::UnboundedSender<Net>) {
        match (&self.io, to.transport) {
            (Io::Udp(sock), _) => {
                if let Err(e) = sock.send_to(&bytes, to.addr).await {
                    tracing::debug!(peer = %to.addr, error = %e, "SIP send failed");
                }
            }
            (Io::Tcp(_), _) => {
                let tx = match self.conns.get(&to.addr) {
                    Some(tx) if !tx.is_closed() => tx.clone(),
                    _ if self.conns.len() >= MAX_CONNECTIONS => return,
                    _ => {
                        // RFC 3261 §18.1.1: a new connection when none is open to the peer.
                        let (tx, rx) = mpsc::unbounded_channel();
                        self.conns.insert(to.addr, tx.clone());
                        tokio::spawn(connection(None, to.addr, rx, net_tx.clone()));
                        tx
                    }
                };
                let _ = tx.send(bytes);
            }
        }
    }

    fn on_event(&mut self, e: Event) {
        match e {
            Event::Registration(s) => {
                match &s {
                    RegState::Failed { error, .. } => {
                        tracing::warn!(%error, "SIP registration failed")
                    }
                    RegState::Registered { .. } => tracing::info!("SIP registered"),
                    _ => {}
                }
                self.reg.send_replace(s);
            }
            Event::Incoming {
                call,
                did,
                caller,
                caller_name,
            } => {
                let now = Instant::now();
                if self.incoming.capacity() == 0 {
                    return self.core.reject(call, 486, "Busy Here", now);
                }
                let socket = match self.ports.bind() {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "incoming SIP call refused");
                        return self.core.reject(call, 503, "Service Unavailable", now);
                    }
                };
                let Ok(port) = socket.local_addr().map(|a| a.port()) else {
                    return self.core.reject(call, 503, "Service Unavailable", now);
                };
                let handle = self.next_handle.fetch_add(1, Ordering::Relaxed);
                let (ptx, prx) = watch::channel(CallProgress::Calling);
                let over = Arc::new(AtomicBool::new(false));
                self.calls.insert(
                    call,
                    (
                        handle,
                        Entry {
                            progress: ptx,
                            over: over.clone(),
                        },
                    ),
                );
                self.handles.insert(handle, call);
                tracing::info!(did = %crate::logging::Untrusted::new(&did), caller = %crate::logging::Untrusted::new(&caller), "incoming SIP call");
                let sc = SipCall {
                    handle,
                    cmd: self.cmd_tx.clone(),
                    socket,
                    progress: prx,
                    over,
                    did,
                    caller,
                    caller_name,
                };
                self.core.answer(call, port, now);
                if let Err(e) = self.incoming.try_send(sc) {
                    drop(e);
                }
            }
            Event::Ringing { call } => self.progress(call, CallProgress::Ringing),
            Event::Audio {
                call,
                codec,
                remote,
            } => self.progress(call, CallProgress::Audio { codec, remote }),
            Event::T38 {
                call,
                remote,
                params,
            } => self.progress(call, CallProgress::T38(T38Media { remote, params })),
            Event::Ended { call, cause } => {
                tracing::info!(call, %cause, "SIP call ended");
                if let Some((handle, entry)) = self.calls.remove(&call) {
                    self.handles.remove(&handle);
                    entry.over.store(true, Ordering::SeqCst);
                    entry.progress.send_replace(CallProgress::Ended(cause));
                }
            }
        }
    }

    fn progress(&self, call: CallId, p: CallProgress) {
        if let Some((_, e)) = self.calls.get(&call) {
            e.progress.send_replace(p);
        }
    }
}

async fn recv_udp(io: &Io, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
    match io {
        Io::Udp(s) => match s.recv_from(buf).await {
            Ok(r) => Some(r),
            Err(e) => {
                // ICMP port unreachable surfaces here on Linux; not fatal.
                tracing::debug!(error = %e, "SIP UDP receive error");
                None
            }
        },
        Io::Tcp(_) => std::future::pending().await,
    }
}

async fn accept_tcp(io: &Io) -> Option<(TcpStream, SocketAddr)> {
    match io {
        Io::Tcp(l) => l.accept().await.ok(),
        Io::Udp(_) => std::future::pending().await,
    }
}

/// One TCP connection: frames in (by Content-Length), messages out.
async fn connection(
    stream: Option<TcpStream>,
    peer: SocketAddr,
    mut out: mpsc::UnboundedReceiver<Vec<u8>>,
    net: mpsc::UnboundedSender<Net>,
) {
    let stream = match stream {
        Some(s) => s,
        None => match tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(peer)).await
        {
            Ok(Ok(s)) => s,
            _ => {
                tracing::debug!(%peer, "SIP TCP connect failed");
                let _ = net.send(Net::Closed(peer));
                return;
            }
        },
    };
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        while let Some(b) = out.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
    });
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
    'read: loop {
        let n = match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        loop {
            match message::frame_stream(&buf) {
                Ok(Frame::NeedMore) => break,
                Ok(Frame::Skip(k)) => {
                    buf.drain(..k);
                }
                Ok(Frame::Message(k)) => {
                    let m: Vec<u8> = buf.drain(..k).collect();
                    if net.send(Net::Frame(peer, m)).is_err() {
                        break 'read;
                    }
                }
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "SIP TCP stream unusable; closing");
                    break 'read;
                }
            }
        }
    }
    writer.abort();
    let _ = net.send(Net::Closed(peer));
}
