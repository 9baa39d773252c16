//! The operations console: web pages, the REST API under `/api/v1/` and Prometheus metrics at
//! `/metrics`, served by the daemon itself on `[http] listen` (embedded default
//! `127.0.0.1:8025`).
//!
//! Every request passes one gate ([`gate`]) before any handler runs:
//! 1. **Host** (open mode only): the `Host` header must be an IP literal or `localhost`, so a
//!    web page cannot reach the console through a DNS name that rebinds to 127.0.0.1.
//! 2. **Origin**: a request that changes anything (not GET/HEAD) and carries an `Origin`
//!    header must come from the console's own origin — a browser on another site cannot post
//!    here, whatever cookies it holds.
//! 3. **Who**: open mode (no users file; loopback only, config validation sees to that) acts
//!    as the local admin; otherwise a bearer token (`Authorization: Bearer fgt_…`) or a session
//!    cookie is required. Without one, API and metrics answer `401` (JSON), pages redirect to
//!    `/login`.
//! 4. **CSRF**: a change made by a browser (session or open mode, not a bearer token) must
//!    carry the session's CSRF token, as `?csrf=` on the form's action or an `X-CSRF-Token`
//!    header.
//!
//! Handlers then find the [`Who`] in the request extensions, and check the role and scope
//! themselves ([`Who::is_admin`], [`auth::Scope`]). Changes are written to the audit log
//! ([`audit`]): who, what, which job.
//!
//! Connections: at most `[http] max_connections`, each with a header-read timeout; TLS (rustls,
//! the same certificate handling as SMTP) when `tls_cert`/`tls_key` are set, reloaded with the
//! users file on SIGHUP.

pub mod api;
pub mod auth;
pub mod metrics;
pub mod pages;
pub mod submit;
pub mod thumbs;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{info, warn};

use self::auth::{ConsoleUsers, Sessions, Tokens, Via, Who};
use super::control::ModemBoard;
use super::dispatch::Live;
use crate::config::Config;
use crate::daemon::Shutdown;
use crate::scheduler::Timestamp;
use crate::smtp::auth::AuthLimiter;
use crate::smtp::tls::TlsHolder;
use crate::spool::Spool;

/// How long a client may take to send a request's headers (ours: slowloris).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long open connections get to finish at shutdown (ours).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Longest login form accepted, octets (ours).
pub const MAX_LOGIN_FORM: usize = 4096;

/// Why the console could not start.
#[derive(Debug, Error)]
pub enum ConsoleError {
    /// A listen address could not be bound.
    #[error("http: cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS certificate or key could not be loaded.
    #[error("http: {0}")]
    Tls(#[from] crate::smtp::tls::TlsError),
    /// The users or tokens file is unusable.
    #[error("http: {0}")]
    Access(#[from] auth::AccessError),
}

/// What every handler may use: the daemon's shared state, read-only except through the spool.
pub struct Inner {
    /// The effective configuration.
    pub cfg: Arc<Config>,
    /// The spool (jobs are changed through it; its events reach the dispatcher).
    pub spool: Spool,
    /// The lines' live state.
    pub board: ModemBoard,
    /// The dispatcher's queue figures, kept in memory.
    pub live: Live,
    /// When the daemon started.
    pub since: Timestamp,
    /// Console users; `None` is open mode.
    pub users: RwLock<Option<ConsoleUsers>>,
    /// API tokens, re-read when the file changes (`faxgate token create` while running).
    tokens: Mutex<(Tokens, Option<SystemTime>)>,
    /// Logged-in browsers.
    pub sessions: Mutex<Sessions>,
    /// Failed logins per address.
    pub logins: Mutex<AuthLimiter>,
    /// Faxes sent through the console per client, at the SMTP listener's rate
    /// (`[smtp] max_messages_per_minute`), counted apart from its mail.
    pub sends: Mutex<crate::smtp::rate::MessageRate>,
    /// Open mode's CSRF token (random per start).
    pub open_csrf: String,
    /// True when served over TLS (cookies get `Secure`).
    pub tls: bool,
    /// Told at shutdown: long-lived responses (event streams) end.
    pub shutdown: Shutdown,
}

/// The console's state, cheap to clone.
#[derive(Clone)]
pub struct Console(pub Arc<Inner>);

impl std::ops::Deref for Console {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Console {
    /// True when no users file is configured (loopback only).
    pub fn is_open(&self) -> bool {
        read(&self.users).is_none()
    }

    /// The user an API token belongs to (the tokens file is re-read when it changed).
    fn token_user(&self, token: &str) -> Option<auth::User> {
        let path = self.cfg.http.tokens_path(&self.cfg.gateway.data_dir);
        let name = {
            let mut t = lock(&self.tokens);
            let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
            if mtime != t.1 {
                match Tokens::load(&path) {
                    Ok(n) => *t = (n, mtime),
                    Err(e) => warn!("http: tokens file not reloaded, keeping the old one: {e}"),
                }
            }
            t.0.user_of(token)?.to_owned()
        };
        match &*read(&self.users) {
            Some(u) => u.get(&name).cloned(),
            // Open mode: a token is not needed, but one presented still names its user.
            None => Some(Who::open("").user),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|p| p.into_inner())
}

/// The listeners, bound (a port problem fails the start before READY).
pub struct Bound {
    listeners: Vec<TcpListener>,
    tls: Option<Arc<TlsHolder>>,
    users: Option<ConsoleUsers>,
}

impl Bound {
    /// The addresses actually bound (port 0 resolved).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }
}

/// Binds `[http] listen` and loads TLS and the users file. `None` when the console is off.
pub async fn bind(cfg: &Config) -> Result<Option<Bound>, ConsoleError> {
    let h = &cfg.http;
    if !h.enabled {
        return Ok(None);
    }
    let tls = match (&h.tls_cert, &h.tls_key) {
        (Some(c), Some(k)) => Some(Arc::new(TlsHolder::load(c, k)?)),
        _ => None,
    };
    let users = h
        .users_file
        .as_deref()
        .map(ConsoleUsers::load)
        .transpose()?;
    let mut listeners = Vec::new();
    for addr in &h.listen {
        let l = TcpListener::bind(addr)
            .await
            .map_err(|source| ConsoleError::Bind {
                addr: *addr,
                source,
            })?;
        listeners.push(l);
    }
    Ok(Some(Bound {
        listeners,
        tls,
        users,
    }))
}

/// Builds the state for `bound`.
pub fn state(
    bound: &Bound,
    cfg: Arc<Config>,
    spool: Spool,
    board: ModemBoard,
    live: Live,
    since: Timestamp,
    shutdown: Shutdown,
) -> Console {
    let sends = crate::smtp::rate::MessageRate::new(
        cfg.smtp.max_messages_per_minute,
        crate::smtp::rate::MAX_CLIENTS,
    );
    Console(Arc::new(Inner {
        cfg,
        spool,
        board,
        live,
        since,
        users: RwLock::new(bound.users.clone()),
        tokens: Mutex::new((Tokens::default(), None)),
        sessions: Mutex::new(Sessions::default()),
        logins: Mutex::new(AuthLimiter::default()),
        sends: Mutex::new(sends),
        open_csrf: auth::random_hex(32),
        tls: bound.tls.is_some(),
        shutdown,
    }))
}

/// Every route, behind the gate.
pub fn router(state: Console) -> Router {
    Router::new()
        .merge(pages::routes())
        .merge(api::routes())
        .route("/metrics", get(metrics::scrape))
        .route("/login", get(login_page).post(login))
        .route("/logout", axum::routing::post(logout))
        .layer(axum::middleware::from_fn_with_state(state.clone(), gate))
        .with_state(state)
}

/// Serves until shutdown.
pub async fn serve(bound: Bound, state: Console, mut shutdown: Shutdown) {
    let app = router(state.clone());
    let slots = Arc::new(Semaphore::new(state.cfg.http.max_connections));
    let reload = tokio::spawn(reload_on_sighup(
        state.clone(),
        bound.tls.clone(),
        shutdown.clone(),
    ));
    let mut tasks = tokio::task::JoinSet::new();
    for l in bound.listeners {
        let (app, slots, tls, sd) = (
            app.clone(),
            slots.clone(),
            bound.tls.clone(),
            shutdown.clone(),
        );
        tasks.spawn(accept_loop(l, app, slots, tls, sd));
    }
    shutdown.stopped().await;
    while tasks.join_next().await.is_some() {}
    reload.abort();
}

/// The peer of a connection, for the login limiter and the audit log.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

async fn accept_loop(
    l: TcpListener,
    app: Router,
    slots: Arc<Semaphore>,
    tls: Option<Arc<TlsHolder>>,
    mut shutdown: Shutdown,
) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.stopped() => break,
        };
        let (tcp, peer) = tokio::select! {
            r = l.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and the like: wait a little instead of spinning.
                    warn!("http: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.stopped() => break,
        };
        let svc = app.clone().layer(axum::Extension(Peer(peer)));
        let (tls, sd) = (tls.clone(), shutdown.clone());
        conns.spawn(async move {
            let _permit = permit;
            match tls {
                Some(t) => {
                    let hs = tokio::time::timeout(HEADER_TIMEOUT, t.acceptor().accept(tcp)).await;
                    match hs {
                        Ok(Ok(s)) => serve_conn(s, svc, sd).await,
                        Ok(Err(e)) => tracing::debug!(%peer, "http: TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "http: TLS handshake timed out"),
                    }
                }
                None => serve_conn(tcp, svc, sd).await,
            }
        });
        // Reap finished connections so the set does not grow.
        while conns.try_join_next().is_some() {}
    }
    // Stop accepting; give open connections a moment, then drop them.
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    conns.abort_all();
}

async fn serve_conn<S>(io: S, svc: Router, mut shutdown: Shutdown)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(svc));
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!("http connection: {e}");
            }
        }
        _ = shutdown.stopped() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
        }
    }
}

/// SIGHUP: reload the TLS certificate and the users file; a bad file keeps the old one.
async fn reload_on_sighup(state: Console, tls: Option<Arc<TlsHolder>>, mut shutdown: Shutdown) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        warn!("http: cannot install SIGHUP handler: no TLS/users reload");
        return;
    };
    loop {
        tokio::select! {
            r = hup.recv() => if r.is_none() { return },
            _ = shutdown.stopped() => return,
        }
        if let Some(t) = &tls {
            match t.reload() {
                Ok(()) => info!("SIGHUP: console TLS certificate reloaded"),
                Err(e) => {
                    warn!("SIGHUP: console TLS certificate not reloaded, keeping the old one: {e}")
                }
            }
        }
        if let Some(path) = &state.cfg.http.users_file {
            match ConsoleUsers::load(path) {
                Ok(u) => {
                    info!(users = u.len(), "SIGHUP: console users file reloaded");
                    *state.users.write().unwrap_or_else(|p| p.into_inner()) = Some(u);
                }
                Err(e) => {
                    warn!("SIGHUP: console users file not reloaded, keeping the old one: {e}")
                }
            }
        }
    }
}

/// Writes one audit line: who did what to which job, from where.
pub fn audit(who: &Who, action: &str, job: &str, peer: Option<&Peer>) {
    let client = peer.map(|p| p.0.ip().to_string()).unwrap_or_default();
    info!(
        target: "faxgate::audit",
        user = %crate::logging::Untrusted::new(&who.user.name),
        action,
        job = %crate::logging::Untrusted::new(job),
        client,
        "audit"
    );
}

/// A JSON error with a stable code and a sentence: `{"error": {"code": …, "message": …}}`.
pub fn api_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message.into() } });
    (status, axum::Json(body)).into_response()
}

/// Paths served to anyone: the login page and the static files it needs.
fn is_public(path: &str) -> bool {
    path == "/login" || path.starts_with("/static/")
}

/// Paths answered as an API (JSON errors, 401 instead of a redirect to the login page).
fn is_api(path: &str) -> bool {
    path.starts_with("/api/") || path == "/metrics"
}

/// True when the host part of `Host` is an IP literal or `localhost`.
fn host_is_literal(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => {
            return v6
                .split(']')
                .next()
                .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok());
        }
        None => host.rsplit_once(':').map_or(host, |(h, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        }),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::Ipv4Addr>().is_ok()
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The session id in the `Cookie` header.
fn session_cookie(h: &HeaderMap) -> Option<&str> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == auth::SESSION_COOKIE)
        .map(|(_, v)| v)
}

/// The CSRF token the request carries (`X-CSRF-Token` header or `csrf` query parameter).
fn csrf_of(req: &Request) -> Option<String> {
    if let Some(v) = header_str(
        req.headers(),
        header::HeaderName::from_static("x-csrf-token"),
    ) {
        return Some(v.to_owned());
    }
    req.uri().query().and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "csrf")
            .map(|(_, v)| v.to_owned())
    })
}

fn refused(api: bool, status: StatusCode, code: &str, msg: &str) -> Response {
    if api {
        api_error(status, code, msg)
    } else {
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            msg.to_owned(),
        )
            .into_response()
    }
}

/// The gate every request passes (see the module documentation).
pub async fn gate(State(c): State<Console>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let api = is_api(&path);
    let changes = !matches!(*req.method(), Method::GET | Method::HEAD);
    let open = c.is_open();
    let host = header_str(req.headers(), header::HOST)
        .unwrap_or_default()
        .to_owned();
    if open && !host_is_literal(&host) {
        return refused(
            api,
            StatusCode::MISDIRECTED_REQUEST,
            "bad-host",
            "the console without logins answers only to an IP address or localhost",
        );
    }
    if changes && let Some(origin) = header_str(req.headers(), header::ORIGIN) {
        let scheme = if c.tls { "https" } else { "http" };
        if origin != format!("{scheme}://{host}") {
            return refused(
                api,
                StatusCode::FORBIDDEN,
                "cross-origin",
                "a change from another site's page is refused",
            );
        }
    }
    if is_public(&path) {
        return next.run(req).await;
    }
    let bearer = header_str(req.headers(), header::AUTHORIZATION)
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .map(str::to_owned);
    let who = if let Some(t) = bearer {
        match c.token_user(&t) {
            Some(user) => Who {
                user,
                via: Via::Token,
            },
            None => {
                let mut r = refused(
                    true,
                    StatusCode::UNAUTHORIZED,
                    "bad-token",
                    "the bearer token is not valid",
                );
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return r;
            }
        }
    } else if open {
        Who::open(&c.open_csrf)
    } else {
        let found = session_cookie(req.headers())
            .and_then(|id| lock(&c.sessions).get(id, Instant::now(), c.cfg.http.session_idle));
        match found {
            Some(w) => w,
            None if api => {
                let mut r = api_error(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "a bearer token or a login is required",
                );
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return r;
            }
            None => return Redirect::to("/login").into_response(),
        }
    };
    // Browsers' changes carry the CSRF token; bearer-token clients (curl, scripts) need none.
    // In open mode an API call without an Origin header is a script, not a page.
    let browser = match who.via {
        Via::Session { .. } => true,
        Via::Open { .. } => !api || req.headers().contains_key(header::ORIGIN),
        Via::Token => false,
    };
    if changes && browser && !csrf_of(&req).is_some_and(|t| auth::same_secret(&t, who.csrf())) {
        return refused(
            api,
            StatusCode::FORBIDDEN,
            "csrf",
            "the form is stale or was not sent by the console: reload the page and try again",
        );
    }
    req.extensions_mut().insert(who);
    next.run(req).await
}

fn page(title: &str, body: maud::Markup) -> maud::Markup {
    maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — faxgate" }
                link rel="stylesheet" href="/static/console.css";
            }
            body { (body) }
        }
    }
}

async fn login_page(State(c): State<Console>) -> Response {
    if c.is_open() {
        return Redirect::to("/").into_response();
    }
    page(
        "Log in",
        maud::html! {
            main class="login" {
                h1 { "faxgate" }
                form method="post" action="/login" {
                    label { "User " input name="user" autocomplete="username" required; }
                    label { "Password " input name="password" type="password" autocomplete="current-password" required; }
                    button type="submit" { "Log in" }
                }
            }
        },
    )
    .into_response()
}

#[derive(serde::Deserialize)]
struct LoginForm {
    user: String,
    password: String,
}

async fn login(
    State(c): State<Console>,
    axum::Extension(peer): axum::Extension<Peer>,
    body: axum::body::Bytes,
) -> Response {
    let Some(users) = read(&c.users).clone() else {
        return Redirect::to("/").into_response();
    };
    let form: LoginForm = match serde_urlencoded_form(&body) {
        Some(f) => f,
        None => return (StatusCode::BAD_REQUEST, "bad login form").into_response(),
    };
    let ip = peer.0.ip();
    if !lock(&c.logins).reserve(ip, Instant::now()) {
        warn!(client = %ip, "console login refused: too many failures from this address");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "600")],
            "too many failed logins from this address: try again later",
        )
            .into_response();
    }
    let (name, pw) = (form.user.clone(), form.password);
    let checked = tokio::task::spawn_blocking(move || users.check(&name, &pw))
        .await
        .ok()
        .flatten();
    lock(&c.logins).settle(ip, Instant::now(), checked.is_none());
    let Some(user) = checked else {
        warn!(client = %ip, user = %crate::logging::Untrusted::new(&form.user), "console login failed");
        return (StatusCode::UNAUTHORIZED, page("Log in", maud::html! {
            main class="login" { p { "Wrong user or password. " a href="/login" { "Try again" } } }
        }))
            .into_response();
    };
    info!(client = %ip, user = %crate::logging::Untrusted::new(&user.name), "console login");
    let (id, _) = lock(&c.sessions).open(user, Instant::now());
    let secure = if c.tls { "; Secure" } else { "" };
    let cookie = format!(
        "{}={id}; Path=/; HttpOnly; SameSite=Strict{secure}",
        auth::SESSION_COOKIE
    );
    let mut r = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn logout(State(c): State<Console>, axum::Extension(who): axum::Extension<Who>) -> Response {
    if let Via::Session { id, .. } = &who.via {
        lock(&c.sessions).close(id);
    }
    let mut r = Redirect::to("/login").into_response();
    let gone = format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        auth::SESSION_COOKIE
    );
    if let Ok(v) = HeaderValue::from_str(&gone) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// Parses an `application/x-www-form-urlencoded` body of at most [`MAX_LOGIN_FORM`] octets.
fn serde_urlencoded_form<T: serde::de::DeserializeOwned>(body: &[u8]) -> Option<T> {
    if body.len() > MAX_LOGIN_FORM {
        return None;
    }
    serde_urlencoded::from_bytes(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_literal_hosts_pass_in_open_mode() {
        for ok in [
            "127.0.0.1:8025",
            "localhost:8025",
            "LOCALHOST",
            "[::1]:8025",
            "127.0.0.1",
        ] {
            assert!(host_is_literal(ok), "{ok}");
        }
        for bad in [
            "evil.example:8025",
            "",
            "127.0.0.1.nip.io",
            "[evil]:80",
            "localhost.evil",
        ] {
            assert!(!host_is_literal(bad), "{bad}");
        }
    }

    #[test]
    fn session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; faxgate_session=abc; b=2"),
        );
        assert_eq!(session_cookie(&h), Some("abc"));
    }
}
