//! The I/O shell around [`Session`]: tokio listener, connection caps, timeouts, STARTTLS,
//! AUTH checks and the durable commit of each message into the spool.
//!
//! Owns sockets and nothing else of the protocol: every decision is the session's. Per
//! connection it pumps bytes and `now` into the session and carries out its [`Output`]s in order:
//! replies are batched and flushed before each read (so a pipelined group gets one write),
//! message data goes to `incoming/<id>/message.eml` of a `Message` spool job, and the `250` is
//! released only after [`Incoming::commit`] returned (fsync + rename, the spool's single commit
//! point). Blocking file work runs on tokio's blocking pool, so concurrent commits share the
//! file system journal's commits (the spool's group commit).
//!
//! AUTH: at most `smtp.auth_max_concurrent` password checks run at once (argon2 holds ~19 MiB
//! each), [`AUTH_QUEUE_PER_SLOT`] per slot more wait their turn, and past that the client gets
//! `454 4.7.0` without a check; each check is reserved in the per-address [`AuthLimiter`]
//! before it waits, so attempts in progress count toward the lockout. [`AuthStats`] counts
//! them.
//!
//! Limits: `smtp.max_connections` in all (a semaphore; over it the client gets
//! `421 4.3.2` and is closed), `smtp.max_connections_per_ip` per address (`421 4.7.0`),
//! `smtp.max_messages_per_minute` per client ([`MessageRate`], charged at each commit; the
//! session answers a MAIL past it `421 4.7.0` and closes), the
//! RFC 5321 §4.5.3.2 timeouts from the session's `poll_at()`, also applied to our writes (a
//! client that does not read its replies is dropped). Graceful shutdown: accept stops, idle
//! sessions get `421 4.3.2`, a message in flight is finished and committed first (bounded by
//! the data timeout), then [`Server::run`] returns.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tracing::{debug, info, warn};

use super::auth::{AuthLimiter, Scratch, Users, UsersError};
use super::rate::{self, MessageRate};
use super::session::{
    AuthVerdict, CommitFailure, Envelope, Output, Policy, Session, TlsInfo, received_header,
};
use super::tls::{TlsError, TlsHolder};
use crate::config::Config;
use crate::daemon::Shutdown;
use crate::job::MessageData;
use crate::logging::Untrusted;
use crate::spool::{Incoming, JobData, JobKind, NewJob, PayloadFile, Spool, SpoolError};

/// Name of the message file in a `Message` job.
pub const MESSAGE_FILE: &str = "message.eml";
/// Message bytes kept in memory before the job is opened in `incoming/` and streamed (ours):
/// small messages cost one trip to the blocking pool, large ones stream in blocks this size.
pub const STREAM_BLOCK: usize = 128 * 1024;
/// Read buffer per connection (ours).
const READ_BUF: usize = 16 * 1024;
/// AUTH checks that may wait for a free slot, per slot of `smtp.auth_max_concurrent` (ours):
/// a burst of logins queues briefly instead of failing, a flood gets `454` at once.
pub const AUTH_QUEUE_PER_SLOT: usize = 8;

/// Counters of the AUTH gate, shared with whoever asks ([`Server::auth_stats`]): what the
/// concurrency cap actually allowed, observable without timing.
#[derive(Debug, Default)]
pub struct AuthStats {
    verifying: AtomicUsize,
    peak: AtomicUsize,
    waiting: AtomicUsize,
    verified: AtomicUsize,
    busy: AtomicUsize,
    locked: AtomicUsize,
}

/// A copy of [`AuthStats`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuthCounts {
    /// Password checks running now.
    pub verifying: usize,
    /// Most checks ever running at once.
    pub peak: usize,
    /// Attempts waiting for a slot now.
    pub waiting: usize,
    /// Password checks run in all.
    pub verified: usize,
    /// Attempts answered `454` because the queue was full (not checked).
    pub busy: usize,
    /// Attempts answered `454` because their address was locked out (not checked).
    pub locked: usize,
}

impl AuthStats {
    /// The counters now.
    pub fn snapshot(&self) -> AuthCounts {
        AuthCounts {
            verifying: self.verifying.load(Ordering::SeqCst),
            peak: self.peak.load(Ordering::SeqCst),
            waiting: self.waiting.load(Ordering::SeqCst),
            verified: self.verified.load(Ordering::SeqCst),
            busy: self.busy.load(Ordering::SeqCst),
            locked: self.locked.load(Ordering::SeqCst),
        }
    }
}

/// One reserved check in the per-address limiter; released (without a failure) if dropped
/// unsettled, e.g. when the connection ends while waiting.
struct Reservation<'a> {
    limiter: &'a Mutex<AuthLimiter>,
    ip: IpAddr,
    settled: bool,
}

impl Reservation<'_> {
    fn settle(mut self, failed: bool) {
        self.settled = true;
        self.limiter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .settle(self.ip, Instant::now(), failed);
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.limiter
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .settle(self.ip, Instant::now(), false);
        }
    }
}

/// Decrements a counter when dropped.
struct Counted<'a>(&'a AtomicUsize);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why the listener could not start.
#[derive(Debug, Error)]
pub enum SmtpError {
    /// A listen address could not be bound (in use, no permission): the operator's to fix.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS certificate or key.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The users file.
    #[error(transparent)]
    Users(#[from] UsersError),
}

/// State shared by all connections.
struct Ctx {
    policy: Arc<Policy>,
    spool: Spool,
    tls: Option<TlsHolder>,
    users: std::sync::RwLock<Arc<Users>>,
    users_file: Option<std::path::PathBuf>,
    limiter: Mutex<AuthLimiter>,
    /// Password checks at once (`smtp.auth_max_concurrent`).
    auth_slots: Arc<Semaphore>,
    /// Checks allowed to run or wait at once.
    auth_queue: usize,
    auth_stats: Arc<AuthStats>,
    /// argon2 working memory, one per slot, reused (the memory bound of all checks).
    auth_scratch: Arc<Mutex<Vec<Scratch>>>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    max_per_ip: usize,
    conns: Arc<Semaphore>,
    /// Messages per client per minute (`smtp.max_messages_per_minute`).
    rate: Mutex<MessageRate>,
}

/// A bound listener, ready to [`Server::run`].
pub struct Server {
    listeners: Vec<TcpListener>,
    ctx: Arc<Ctx>,
}

/// Binds `smtp.listen`, loads the certificate and users file. Errors here stop start-up.
pub async fn bind(config: &Config, spool: Spool) -> Result<Server, SmtpError> {
    let s = &config.smtp;
    let tls = match (&s.tls_cert, &s.tls_key) {
        (Some(c), Some(k)) => Some(TlsHolder::load(&config.data_path(c), &config.data_path(k))?),
        _ => None,
    };
    let users_file = s.users_file.as_ref().map(|u| config.data_path(u));
    let users = match &users_file {
        Some(f) => Users::load(f)?,
        None => Users::default(),
    };
    let mut listeners = Vec::new();
    for addr in &s.listen {
        let l = TcpListener::bind(addr)
            .await
            .map_err(|source| SmtpError::Bind {
                addr: *addr,
                source,
            })?;
        listeners.push(l);
    }
    let policy = Arc::new(Policy::from_config(config, tls.is_some()));
    Ok(Server {
        listeners,
        ctx: Arc::new(Ctx {
            policy,
            spool,
            tls,
            users: std::sync::RwLock::new(Arc::new(users)),
            users_file,
            limiter: Mutex::new(AuthLimiter::default()),
            auth_slots: Arc::new(Semaphore::new(s.auth_max_concurrent.max(1))),
            auth_queue: s.auth_max_concurrent.max(1) * (1 + AUTH_QUEUE_PER_SLOT),
            auth_stats: Arc::new(AuthStats::default()),
            auth_scratch: Arc::new(Mutex::new(Vec::new())),
            per_ip: Mutex::new(HashMap::new()),
            max_per_ip: s.max_connections_per_ip,
            conns: Arc::new(Semaphore::new(s.max_connections)),
            rate: Mutex::new(MessageRate::new(
                s.max_messages_per_minute,
                rate::MAX_CLIENTS,
            )),
        }),
    })
}

/// Binds and runs until `shutdown`: what `faxgate run` calls.
pub async fn serve(config: &Config, spool: Spool, shutdown: Shutdown) -> Result<(), SmtpError> {
    bind(config, spool).await?.run(shutdown).await;
    Ok(())
}

impl Server {
    /// The bound addresses (port 0 in the config becomes the real port).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// The AUTH gate's counters (live: they go on changing while the server runs).
    pub fn auth_stats(&self) -> Arc<AuthStats> {
        self.ctx.auth_stats.clone()
    }

    /// Accepts until `shutdown`, then waits for the sessions to finish.
    pub async fn run(self, shutdown: Shutdown) {
        // Every session holds a sender; when all are dropped, `done.recv()` returns None.
        let (done_tx, mut done) = mpsc::channel::<()>(1);
        let mut tasks = Vec::new();
        for l in self.listeners {
            let ctx = self.ctx.clone();
            let sd = shutdown.clone();
            let tx = done_tx.clone();
            tasks.push(tokio::spawn(accept_loop(l, ctx, sd, tx)));
        }
        let reload = tokio::spawn(reload_on_sighup(self.ctx.clone(), shutdown.clone()));
        drop(done_tx);
        for t in tasks {
            let _ = t.await;
        }
        let _ = done.recv().await;
        reload.abort();
        info!("smtp listener stopped");
    }
}

/// SIGHUP: reload the TLS certificate and the users file; a bad file keeps the old one.
async fn reload_on_sighup(ctx: Arc<Ctx>, mut shutdown: Shutdown) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        warn!("cannot install SIGHUP handler: no TLS/users reload");
        return;
    };
    loop {
        tokio::select! {
            _ = hup.recv() => {}
            _ = shutdown.stopped() => return,
        }
        if let Some(t) = &ctx.tls {
            match t.reload() {
                Ok(()) => info!("SIGHUP: TLS certificate reloaded"),
                Err(e) => warn!("SIGHUP: TLS certificate not reloaded, keeping the old one: {e}"),
            }
        }
        if let Some(f) = &ctx.users_file {
            match Users::load(f) {
                Ok(u) => {
                    info!(users = u.len(), "SIGHUP: users file reloaded");
                    *ctx.users.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(u);
                }
                Err(e) => warn!("SIGHUP: users file not reloaded, keeping the old one: {e}"),
            }
        }
    }
}

async fn accept_loop(
    l: TcpListener,
    ctx: Arc<Ctx>,
    mut shutdown: Shutdown,
    done: mpsc::Sender<()>,
) {
    if let Ok(a) = l.local_addr() {
        info!("smtp listening on {a}");
    }
    loop {
        let (stream, peer) = tokio::select! {
            r = l.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.stopped() => return,
        };
        crate::metrics::smtp_connection();
        let _ = stream.set_nodelay(true);
        let ctx = ctx.clone();
        let sd = shutdown.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let _done = done;
            admit(stream, peer, ctx, sd).await;
        });
    }
}

/// Releases the per-IP slot when the connection ends.
struct IpSlot<'a> {
    ctx: &'a Ctx,
    ip: IpAddr,
}

impl Drop for IpSlot<'_> {
    fn drop(&mut self) {
        let mut m = self.ctx.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

async fn admit(mut stream: TcpStream, peer: SocketAddr, ctx: Arc<Ctx>, shutdown: Shutdown) {
    let host = ctx.policy.hostname.clone();
    let refuse = |enh: &str, why: &str| format!("421 {enh} {host} {why}, try again later\r\n");
    let Ok(_permit) = ctx.conns.clone().try_acquire_owned() else {
        debug!(%peer, "refused: connection limit");
        let _ = write_with_timeout(
            &mut stream,
            refuse("4.3.2", "Too many connections").as_bytes(),
        )
        .await;
        return;
    };
    let ip = peer.ip();
    let over = {
        let mut m = ctx.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= ctx.max_per_ip {
            true
        } else {
            *n += 1;
            false
        }
    };
    if over {
        debug!(%peer, "refused: per-address connection limit");
        let why = refuse("4.7.0", "Too many connections from your address");
        let _ = write_with_timeout(&mut stream, why.as_bytes()).await;
        return;
    }
    let _slot = IpSlot { ctx: &ctx, ip };
    let r = Connection::new(Stream::Plain(stream), peer, &ctx)
        .run(shutdown)
        .await;
    if let Err(e) = r {
        debug!(%peer, "connection ended: {e}");
    }
}

async fn write_with_timeout(s: &mut TcpStream, b: &[u8]) -> std::io::Result<()> {
    match tokio::time::timeout(std::time::Duration::from_secs(10), s.write_all(b)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

/// The connection's byte stream, before or after STARTTLS.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// Transient, during the upgrade.
    Gone,
}

impl Stream {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf).await,
            Stream::Tls(s) => s.read(buf).await,
            Stream::Gone => Ok(0),
        }
    }

    async fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(b).await,
            Stream::Tls(s) => {
                s.write_all(b).await?;
                s.flush().await
            }
            Stream::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }

    async fn shutdown(&mut self) {
        let _ = match self {
            Stream::Plain(s) => s.shutdown().await,
            Stream::Tls(s) => s.shutdown().await,
            Stream::Gone => Ok(()),
        };
    }
}

/// The message being spooled: buffered until [`STREAM_BLOCK`], then streamed into its job.
struct Spooling {
    env: Box<Envelope>,
    buf: Vec<u8>,
    size: u64,
    job: Option<(Incoming, PayloadFile)>,
    /// A spool error seen while streaming: the commit will fail with it.
    failed: Option<CommitFailure>,
}

fn commit_failure(e: &SpoolError) -> CommitFailure {
    CommitFailure {
        temporary: e.is_temporary(),
        no_space: e.is_out_of_space(),
        reason: if e.is_out_of_space() {
            "spool is short of space".into()
        } else {
            "spool error".into()
        },
    }
}

fn join_failure() -> CommitFailure {
    CommitFailure {
        temporary: true,
        no_space: false,
        reason: "internal error".into(),
    }
}

/// Opens a `Message` job and writes its `Received:` header (blocking). The SMTP listener and
/// the console's send API both spool messages this way, then [`commit_message`].
pub fn open_job(
    spool: &Spool,
    env: &Envelope,
    hostname: &str,
) -> Result<(Incoming, PayloadFile), SpoolError> {
    let mut inc = spool.begin(JobKind::Message)?;
    let mut f = inc.create_file(MESSAGE_FILE)?;
    let date = chrono::Utc::now().to_rfc2822();
    let h = received_header(env, hostname, inc.id().as_str(), &date);
    f.write_bytes(h.as_bytes())?;
    Ok((inc, f))
}

/// Commits a `Message` job opened with [`open_job`] whose message file `f` is complete
/// (blocking): fsync and rename, the spool's single commit point. `size` is used only when
/// the file's length cannot be read back.
pub fn commit_message(
    inc: Incoming,
    f: PayloadFile,
    envelope: Envelope,
    size: u64,
) -> Result<crate::spool::JobRecord, SpoolError> {
    let written = std::fs::metadata(f.path()).map(|m| m.len()).unwrap_or(size);
    drop(f);
    let data = MessageData {
        envelope,
        file: MESSAGE_FILE.into(),
        size: written,
        received: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    inc.commit(NewJob::new(JobData::Message(data)))
}

impl Spooling {
    /// Moves buffered bytes to disk when there are enough of them (or `all`).
    async fn flush(&mut self, ctx: &Ctx) {
        if self.failed.is_some() || self.buf.len() < STREAM_BLOCK {
            return;
        }
        let job = self.job.take();
        let buf = std::mem::take(&mut self.buf);
        let spool = ctx.spool.clone();
        let env = self.env.clone();
        let host = ctx.policy.hostname.clone();
        let r = tokio::task::spawn_blocking(move || {
            let (inc, mut f) = match job {
                Some(j) => j,
                None => open_job(&spool, &env, &host)?,
            };
            f.write_bytes(&buf)?;
            Ok::<_, SpoolError>((inc, f))
        })
        .await;
        match r {
            Ok(Ok(j)) => self.job = Some(j),
            Ok(Err(e)) => {
                warn!("spooling message failed: {e}");
                self.failed = Some(commit_failure(&e));
            }
            Err(_) => self.failed = Some(join_failure()),
        }
    }

    /// Writes the rest, commits (fsync + rename), returns the queue id.
    async fn commit(mut self, ctx: &Ctx) -> Result<String, CommitFailure> {
        if let Some(f) = self.failed.take() {
            return Err(f);
        }
        let job = self.job.take();
        let buf = std::mem::take(&mut self.buf);
        let spool = ctx.spool.clone();
        let env = self.env;
        let host = ctx.policy.hostname.clone();
        let size = self.size;
        let r = tokio::task::spawn_blocking(move || {
            let (inc, mut f) = match job {
                Some(j) => j,
                None => open_job(&spool, &env, &host)?,
            };
            f.write_bytes(&buf)?;
            let rec = commit_message(inc, f, *env, size)?;
            Ok::<_, SpoolError>(rec.id.to_string())
        })
        .await;
        match r {
            Ok(Ok(id)) => Ok(id),
            Ok(Err(e)) => {
                warn!("committing message failed: {e}");
                Err(commit_failure(&e))
            }
            Err(_) => Err(join_failure()),
        }
    }
}

/// One client connection.
struct Connection<'a> {
    stream: Stream,
    peer: SocketAddr,
    ctx: &'a Ctx,
    session: Session,
    out: Vec<u8>,
    msg: Option<Spooling>,
}

impl<'a> Connection<'a> {
    fn new(stream: Stream, peer: SocketAddr, ctx: &'a Ctx) -> Connection<'a> {
        Connection {
            stream,
            peer,
            ctx,
            session: Session::new(ctx.policy.clone(), peer, Instant::now()),
            out: Vec::with_capacity(512),
            msg: None,
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let deadline = self.ctx.policy.command_timeout;
        let r = tokio::time::timeout(deadline, self.stream.write_all(&self.out)).await;
        self.out.clear();
        match r {
            Ok(r) => r,
            Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
        }
    }

    async fn run(mut self, mut shutdown: Shutdown) -> std::io::Result<()> {
        let mut buf = vec![0u8; READ_BUF];
        let mut told_to_stop = false;
        let r = loop {
            if let Err(e) = self.effects().await {
                break Err(e);
            }
            if self.session.is_closed() {
                break self.flush().await;
            }
            if let Err(e) = self.flush().await {
                break Err(e);
            }
            let deadline = self
                .session
                .poll_at()
                .unwrap_or_else(|| Instant::now() + self.ctx.policy.command_timeout);
            tokio::select! {
                r = self.stream.read(&mut buf) => match r {
                    Ok(0) | Err(_) => self.session.eof(),
                    Ok(n) => {
                        let now = Instant::now();
                        self.hold_mail(now);
                        self.session.feed(now, &buf[..n]);
                    }
                },
                _ = tokio::time::sleep_until(deadline.into()) => {
                    self.session.on_timeout(Instant::now());
                }
                _ = shutdown.stopped(), if !told_to_stop => {
                    told_to_stop = true;
                    self.session.shutdown();
                }
            }
        };
        if let Some(m) = self.msg.take() {
            drop_job(m);
        }
        self.stream.shutdown().await;
        r
    }

    /// Carries out the session's outputs in order.
    async fn effects(&mut self) -> std::io::Result<()> {
        while let Some(o) = self.session.poll_output() {
            match o {
                Output::Reply(r) => {
                    crate::metrics::smtp_reply(&r);
                    self.out.extend_from_slice(r.as_bytes())
                }
                Output::StartTls => {
                    self.flush().await?;
                    self.starttls().await?;
                }
                Output::Authenticate { user, password } => {
                    let v = self.check_auth(user, password).await;
                    self.session.auth_verdict(Instant::now(), v);
                }
                Output::MessageStart(env) => {
                    self.msg = Some(Spooling {
                        env,
                        buf: Vec::new(),
                        size: 0,
                        job: None,
                        failed: None,
                    });
                }
                Output::MessageData(d) => {
                    if let Some(m) = &mut self.msg {
                        m.size += d.len() as u64;
                        if m.failed.is_none() {
                            m.buf.extend_from_slice(&d);
                            m.flush(self.ctx).await;
                        }
                    }
                }
                Output::MessageEnd => {
                    let r = match self.msg.take() {
                        Some(m) => {
                            let from = m.env.mail_from.clone();
                            let rcpts = m.env.recipients.len();
                            let size = m.size;
                            let r = m.commit(self.ctx).await;
                            if let Ok(id) = &r {
                                info!(id = %id, from = %Untrusted::new(&from), rcpts, size, client = %self.peer, "message queued");
                            }
                            r
                        }
                        None => Err(join_failure()),
                    };
                    let now = Instant::now();
                    if r.is_ok() {
                        crate::metrics::smtp_accepted();
                        // Only committed messages count: a refused one cost the client
                        // its reply, not its rate.
                        self.ctx
                            .rate
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .charge(self.peer.ip(), now);
                    }
                    // Before the reply releases pipelined commands: a MAIL right behind this
                    // message sees the charge.
                    self.hold_mail(now);
                    self.session.commit_result(now, r);
                }
                Output::MessageAbort => {
                    if let Some(m) = self.msg.take() {
                        drop_job(m);
                    }
                }
                Output::Close => {}
            }
        }
        Ok(())
    }

    /// Tells the session when this client may start its next message (its bucket in the
    /// listener-wide [`MessageRate`], which other connections from it also drain).
    fn hold_mail(&mut self, now: Instant) {
        let until = self
            .ctx
            .rate
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ready_at(self.peer.ip(), now);
        self.session.hold_mail_until(until);
    }

    async fn starttls(&mut self) -> std::io::Result<()> {
        let Some(tls) = &self.ctx.tls else {
            return Err(std::io::ErrorKind::Unsupported.into());
        };
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            return Err(std::io::ErrorKind::InvalidInput.into());
        };
        let handshake = tls.acceptor().accept(tcp);
        let s = match tokio::time::timeout(self.ctx.policy.command_timeout, handshake).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(std::io::ErrorKind::TimedOut.into()),
        };
        let conn = s.get_ref().1;
        let info = TlsInfo {
            protocol: conn
                .protocol_version()
                .and_then(|v| v.as_str())
                .unwrap_or("TLS")
                .replace('_', "."),
            cipher: conn
                .negotiated_cipher_suite()
                .and_then(|c| c.suite().as_str())
                .unwrap_or("unknown")
                .to_owned(),
        };
        debug!(peer = %self.peer, ?info, "TLS established");
        self.stream = Stream::Tls(Box::new(s));
        self.session.tls_established(Instant::now(), info);
        Ok(())
    }

    /// Checks credentials under both limits: the address's lockout (a reservation taken
    /// before anything else, so checks in progress count) and the listener's cap on checks
    /// running at once (a bounded queue in front of `auth_slots`).
    async fn check_auth(&mut self, user: String, password: String) -> AuthVerdict {
        let ctx = self.ctx;
        let stats = &ctx.auth_stats;
        let ip = self.peer.ip();
        // The user name is the unauthenticated client's: escaped, or a newline in it could
        // forge an `AUTH ok` line.
        let user_log = Untrusted::new(&user).to_string();
        let reserved = ctx
            .limiter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .reserve(ip, Instant::now());
        if !reserved {
            stats.locked.fetch_add(1, Ordering::SeqCst);
            warn!(%ip, user = %user_log, "AUTH refused: too many recent failures");
            return AuthVerdict::Locked;
        }
        let reservation = Reservation {
            limiter: &ctx.limiter,
            ip,
            settled: false,
        };
        // Running + waiting, counted before waiting so that the bound holds under a burst.
        let queued = stats.waiting.fetch_add(1, Ordering::SeqCst) + 1;
        let waiting = Counted(&stats.waiting);
        if queued + stats.verifying.load(Ordering::SeqCst) > ctx.auth_queue {
            drop(waiting);
            drop(reservation);
            stats.busy.fetch_add(1, Ordering::SeqCst);
            warn!(%ip, user = %user_log, "AUTH refused: too many checks in progress");
            return AuthVerdict::Busy;
        }
        let Ok(permit) = ctx.auth_slots.clone().acquire_owned().await else {
            return AuthVerdict::Unavailable;
        };
        drop(waiting);
        let users = ctx.users.read().unwrap_or_else(|p| p.into_inner()).clone();
        let st = stats.clone();
        let pool = ctx.auth_scratch.clone();
        let ok = tokio::task::spawn_blocking(move || {
            // The permit lives as long as the check, even if this task is dropped meanwhile.
            let _permit = permit;
            let now = st.verifying.fetch_add(1, Ordering::SeqCst) + 1;
            st.peak.fetch_max(now, Ordering::SeqCst);
            let _running = Counted(&st.verifying);
            st.verified.fetch_add(1, Ordering::SeqCst);
            // At most one scratch per permit exists: the pool never grows past the cap.
            let mut scratch = pool
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop()
                .unwrap_or_default();
            let ok = users.verify_in(&user, &password, &mut scratch);
            pool.lock().unwrap_or_else(|p| p.into_inner()).push(scratch);
            ok
        })
        .await;
        match ok {
            Ok(true) => {
                reservation.settle(false);
                info!(%ip, user = %user_log, "AUTH ok");
                AuthVerdict::Accepted
            }
            Ok(false) => {
                reservation.settle(true);
                warn!(%ip, user = %user_log, "AUTH failed");
                AuthVerdict::Rejected
            }
            Err(_) => AuthVerdict::Unavailable,
        }
    }
}

/// Abandons a job off the async threads (removing its directory is file work).
fn drop_job(m: Spooling) {
    if m.job.is_some() {
        tokio::task::spawn_blocking(move || drop(m));
    }
}
