//! The REST API under `/api/v1/`: send faxes, follow them, cancel and retry them, and fetch
//! received faxes. Described by `openapi.json` (OpenAPI 3.1), served at
//! `/api/v1/openapi.json`; [`ROUTES`] is the one list of routes, which both the router and the
//! test against the document read.
//!
//! Authentication is the gate's ([`super::gate`]): a bearer token (`faxgate token create`),
//! a session with its CSRF token (the web send page), or open mode. Here:
//! - **roles**: cancel and retry need `admin` (`403 forbidden` otherwise);
//! - **scope**: a user limited to numbers or routes sees only faxes to those numbers (or that
//!   they sent) and faxes received on those routes or numbers; anything else answers `404`, as
//!   an unknown id does, so ids outside the scope cannot be probed;
//! - every change (send, cancel, retry) writes an audit line ([`super::audit`]).
//!
//! A fax (`/api/v1/faxes/{id}`) is the `Message` job a submission became; its state is the
//! aggregate of its `FaxOut` children, one per recipient ([`aggregate`]).

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};
use axum::{Extension, Json};
use serde::Serialize;
use tracing::{info, warn};

use super::auth::Who;
use super::submit::{self, SubmitError};
use super::{Console, Peer, api_error, audit};
use crate::job::{Attempt, CauseClass, Child, Completion, GiveUp, JobData, Timestamp};
use crate::onramp::fax_in::{FAX_FILE, MAX_FAX_BYTES};
use crate::spool::{JobId, JobKind, JobRecord, JobState, Spool, SpoolError};

/// The OpenAPI 3.1 document of this API.
pub const OPENAPI: &str = include_str!("openapi.json");
/// Received faxes listed at most per request (`?limit=`).
pub const MAX_LIST: usize = 1000;
/// Received faxes listed when `?limit=` is not given.
pub const DEFAULT_LIST: usize = 100;

/// One route of the API: HTTP method (lower case, as OpenAPI writes it), path (axum's
/// `{param}` syntax, which is also OpenAPI's) and its handler.
pub struct ApiRoute {
    /// `get`, `post` or `delete`.
    pub method: &'static str,
    /// The path.
    pub path: &'static str,
    make: fn() -> MethodRouter<Console>,
}

/// Every route the API serves.
pub const ROUTES: &[ApiRoute] = &[
    ApiRoute {
        method: "post",
        path: "/api/v1/faxes",
        make: || post(create_fax),
    },
    ApiRoute {
        method: "get",
        path: "/api/v1/faxes/{id}",
        make: || get(show_fax),
    },
    ApiRoute {
        method: "delete",
        path: "/api/v1/faxes/{id}",
        make: || delete(cancel_fax),
    },
    ApiRoute {
        method: "post",
        path: "/api/v1/faxes/{id}/retry",
        make: || post(retry_fax),
    },
    ApiRoute {
        method: "get",
        path: "/api/v1/received",
        make: || get(list_received),
    },
    ApiRoute {
        method: "get",
        path: "/api/v1/received/{id}/document.tif",
        make: || get(received_tif),
    },
    ApiRoute {
        method: "get",
        path: "/api/v1/received/{id}/document.pdf",
        make: || get(received_pdf),
    },
    ApiRoute {
        method: "get",
        path: "/api/v1/openapi.json",
        make: || get(openapi),
    },
];

/// The API's routes (from [`ROUTES`]; routes of one path with several methods merge).
pub fn routes() -> Router<Console> {
    ROUTES
        .iter()
        .fold(Router::new(), |r, a| r.route(a.path, (a.make)()))
}

// ---- views (PURE) ----

fn rfc3339(t: Timestamp) -> String {
    chrono::DateTime::from_timestamp_millis(i64::try_from(t.0).unwrap_or(i64::MAX))
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The T.30 cause number in a fax attempt's detail (`T.30 cause 5 (…): …`, as the fax
/// worker writes it).
pub fn t30_number(detail: &str) -> Option<u16> {
    let rest = detail.split_once("T.30 cause ")?.1;
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// One attempt, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptView {
    /// The recipient's number (E.164).
    pub number: String,
    /// RFC 3339.
    pub started: String,
    /// RFC 3339; absent while it runs.
    pub ended: Option<String>,
    /// The outcome class (`done`, `busy`, `no-answer`, `protocol-error`, `fatal`, …).
    pub result: Option<CauseClass>,
    /// The worker's words.
    pub detail: String,
    /// The T.30 completion cause number (`fax::t30::Cause`), when the call reached T.30.
    pub t30_cause: Option<u16>,
    /// What that number means.
    pub t30_meaning: Option<&'static str>,
    /// Pages confirmed in this attempt.
    pub pages_sent: u32,
    /// The line used.
    pub modem: Option<String>,
}

fn attempt_view(number: &str, a: &Attempt) -> AttemptView {
    let n = t30_number(&a.detail);
    AttemptView {
        number: number.to_owned(),
        started: rfc3339(a.started),
        ended: a.ended.map(rfc3339),
        result: a.cause,
        detail: a.detail.clone(),
        t30_cause: n,
        t30_meaning: n
            .and_then(crate::fax::t30::Cause::from_number)
            .map(|c| c.meaning()),
        pages_sent: a.pages_sent,
        modem: a.modem.clone(),
    }
}

/// One recipient of a fax.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecipientView {
    /// E.164.
    pub number: String,
    /// Its fax job, once the message was split.
    pub job: Option<String>,
    /// `queued`, `sending`, `done`, `failed` or `cancelled`.
    pub state: &'static str,
    /// Pages confirmed by the receiver.
    pub pages_sent: u32,
    /// Pages of the fax (cover included), once rendered.
    pub pages_total: Option<u32>,
    /// Why it failed, in words; absent unless failed or cancelled.
    pub cause: Option<String>,
    /// Its attempts, oldest first.
    pub attempts: Vec<AttemptView>,
}

/// A fax as `GET /api/v1/faxes/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaxView {
    /// The message job id.
    pub id: String,
    /// Aggregate state: `queued`, `sending`, `done`, `failed` or `cancelled`.
    pub state: &'static str,
    /// When it was queued, RFC 3339.
    pub created: String,
    /// The console user (or SMTP AUTH user) who sent it.
    pub user: Option<String>,
    /// Where the report goes.
    pub notify: String,
    /// Pages of the fax, once rendered.
    pub pages: Option<u32>,
    /// Pages confirmed, over all recipients.
    pub pages_sent: u32,
    /// The first failure's cause in words.
    pub cause: Option<String>,
    /// One per number.
    pub recipients: Vec<RecipientView>,
    /// Every attempt of every recipient, oldest first.
    pub attempts: Vec<AttemptView>,
}

fn job_state(rec: &JobRecord) -> &'static str {
    match rec.state {
        JobState::Queued => "queued",
        JobState::Running => "sending",
        JobState::Done => "done",
        JobState::Failed if rec.failure == Some(GiveUp::Cancelled) => "cancelled",
        JobState::Failed => "failed",
    }
}

/// The state of a fax from its message job and the fax jobs of its recipients (`None` where a
/// fax job does not exist): before the split the message's own (`queued`; `failed` when its
/// document failed, `cancelled`); after it, `sending` while any recipient's call is on,
/// `queued` while any waits, and once all are final `done` when every one was delivered,
/// `cancelled` when every failure was a cancel, else `failed`.
pub fn aggregate(msg: &JobRecord, children: &[Option<JobRecord>]) -> &'static str {
    match msg.state {
        JobState::Queued | JobState::Running => return "queued",
        JobState::Failed => return job_state(msg),
        JobState::Done => {}
    }
    let states: Vec<&'static str> = children
        .iter()
        .map(|c| c.as_ref().map_or("failed", job_state))
        .collect();
    if states.contains(&"sending") {
        "sending"
    } else if states.contains(&"queued") {
        "queued"
    } else if states.iter().all(|s| *s == "done") {
        "done"
    } else if states.iter().all(|s| matches!(*s, "done" | "cancelled")) {
        "cancelled"
    } else {
        "failed"
    }
}

/// The view of a message job and its children.
pub fn fax_view(msg: &JobRecord, children: &[Option<JobRecord>]) -> Option<FaxView> {
    let JobData::Message(data) = &msg.data else {
        return None;
    };
    let env = &data.envelope;
    let msg_cause = match (msg.state, &msg.failure) {
        (JobState::Failed, Some(g)) => Some(
            msg.attempts
                .iter()
                .rev()
                .find(|a| !a.detail.is_empty())
                .filter(|_| *g != GiveUp::Cancelled)
                .map_or_else(|| g.to_string(), |a| a.detail.clone()),
        ),
        _ => None,
    };
    let mut recipients = Vec::with_capacity(env.recipients.len());
    let mut all_attempts = Vec::new();
    for (i, r) in env.recipients.iter().enumerate() {
        let number = r.destination.e164.clone();
        let child = children.get(i).and_then(Option::as_ref);
        let view = match child.and_then(|c| c.data.as_fax_out().map(|d| (c, d))) {
            Some((c, d)) => {
                let attempts: Vec<AttemptView> = c
                    .attempts
                    .iter()
                    .map(|a| attempt_view(&number, a))
                    .collect();
                let state = job_state(c);
                let pages_sent = if c.state == JobState::Done {
                    d.pages_total
                } else {
                    d.result
                        .as_ref()
                        .map(|x| x.pages_sent)
                        .or_else(|| c.attempts.iter().map(|a| a.pages_sent).max())
                        .unwrap_or(0)
                };
                RecipientView {
                    number,
                    job: Some(c.id.to_string()),
                    state,
                    pages_sent,
                    pages_total: Some(d.pages_total),
                    cause: c
                        .state
                        .is_final()
                        .then(|| crate::offramp::jobs::cause_of(c, d))
                        .filter(|x| !x.is_success())
                        .map(|x| x.words()),
                    attempts,
                }
            }
            None => RecipientView {
                number,
                job: None,
                // Split but its fax job is gone (purged): failed; a message being split
                // is not sending yet.
                state: match msg.state {
                    JobState::Done => "failed",
                    JobState::Running => "queued",
                    _ => job_state(msg),
                },
                pages_sent: 0,
                pages_total: None,
                cause: msg_cause.clone(),
                attempts: Vec::new(),
            },
        };
        all_attempts.extend(view.attempts.iter().cloned());
        recipients.push(view);
    }
    all_attempts.sort_by(|a, b| a.started.cmp(&b.started));
    Some(FaxView {
        id: msg.id.to_string(),
        state: aggregate(msg, children),
        created: rfc3339(msg.created),
        user: env.auth_user.clone(),
        notify: env.mail_from.clone(),
        pages: recipients.iter().filter_map(|r| r.pages_total).max(),
        pages_sent: recipients.iter().map(|r| r.pages_sent).sum(),
        cause: msg_cause
            .clone()
            .or_else(|| recipients.iter().find_map(|r| r.cause.clone())),
        recipients,
        attempts: all_attempts,
    })
}

/// May `who` see this message job? Unlimited users see all; others the faxes they sent and
/// those to one of their numbers.
pub fn may_see_fax(who: &Who, msg: &JobRecord) -> bool {
    let scope = &who.user.scope;
    if scope.is_all() {
        return true;
    }
    let JobData::Message(d) = &msg.data else {
        return false;
    };
    d.envelope.auth_user.as_deref() == Some(who.user.name.as_str())
        || d.envelope
            .recipients
            .iter()
            .any(|r| scope.number(&r.destination.e164))
}

/// A received fax, as `GET /api/v1/received` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceivedView {
    /// The fax-in job id.
    pub id: String,
    /// The job's state (`queued`, `running`: being routed; `done`: mailed; `failed`).
    pub state: &'static str,
    /// When it was received, RFC 3339.
    pub received: String,
    /// `modem`, `inbox` or `submit`.
    pub source: crate::job::Source,
    /// The line.
    pub line: Option<String>,
    /// The number dialled (DID).
    pub did: Option<String>,
    /// Caller ID.
    pub caller: Option<String>,
    /// The sender's station ID (TSI/CSID).
    pub csid: Option<String>,
    /// Pages received.
    pub pages: u32,
    /// `complete`, `partial` or `failed`.
    pub completion: &'static str,
    /// Why it was partial or failed.
    pub cause: Option<String>,
    /// The route it took (`[[route]] name`).
    pub route: String,
    /// Where the document is.
    pub document: DocumentLinks,
}

/// Download links of a received fax.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentLinks {
    /// The TIFF as received.
    pub tif: String,
    /// The same pages as PDF.
    pub pdf: String,
}

fn received_view(rec: &JobRecord, route: &str) -> Option<ReceivedView> {
    let JobData::FaxIn(d) = &rec.data else {
        return None;
    };
    let r = &d.reception;
    let (completion, cause) = match &r.completion {
        Completion::Complete => ("complete", None),
        Completion::Partial { cause } => ("partial", Some(cause.clone())),
        Completion::Failed { cause } => ("failed", Some(cause.clone())),
    };
    let base = format!("/api/v1/received/{}", rec.id);
    Some(ReceivedView {
        id: rec.id.to_string(),
        state: rec.state.name(),
        received: chrono::DateTime::from_timestamp(r.received, 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        source: r.source,
        line: r.line.clone(),
        did: r.did.clone(),
        caller: r.caller.clone(),
        csid: r.remote_id.clone(),
        pages: r.pages,
        completion,
        cause,
        route: route.to_owned(),
        document: DocumentLinks {
            tif: format!("{base}/document.tif"),
            pdf: format!("{base}/document.pdf"),
        },
    })
}

/// The route a received fax took, by the current `[[route]]` table.
fn route_of(routes: Option<&crate::onramp::route::RouteTable>, rec: &JobRecord) -> String {
    match (routes, &rec.data) {
        (Some(t), JobData::FaxIn(d)) => t.route(&d.reception.route_keys()).name.clone(),
        _ => String::new(),
    }
}

/// May `who` see a received fax that took route `route`? Unlimited users see all; others
/// those on their routes or dialled to one of their numbers.
pub fn may_see_received(who: &Who, rec: &JobRecord, route: &str) -> bool {
    let scope = &who.user.scope;
    if scope.is_all() || scope.route(route) {
        return true;
    }
    let JobData::FaxIn(d) = &rec.data else {
        return false;
    };
    d.reception.did.as_deref().is_some_and(|did| {
        let digits: String = did.chars().filter(char::is_ascii_digit).collect();
        !digits.is_empty() && scope.number(&format!("+{digits}"))
    })
}

// ---- shell ----

/// An API error on its way to [`api_error`] (small, unlike a `Response`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// The stable code.
    pub code: &'static str,
    /// The sentence.
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        api_error(self.status, self.code, self.message)
    }
}

fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "no such fax (or not one you may see)",
    )
}

fn forbidden(what: &str) -> Response {
    api_error(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!("{what} needs the admin role"),
    )
}

fn spool_error(e: &SpoolError) -> ApiError {
    warn!("console api: spool: {e}");
    let status = if e.is_temporary() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    ApiError::new(
        status,
        "spool-error",
        "the spool could not be read or changed",
    )
}

fn task_error() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "a background task failed",
    )
}

/// A message job and the fax jobs of its recipients (`None` where one does not exist).
type Loaded = (JobRecord, Vec<Option<JobRecord>>);

/// Runs blocking spool work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|_| Err(task_error()))
}

/// A message job and its recipients' fax jobs; `None` when `id` is not a message job.
fn load_fax(spool: &Spool, id: &JobId) -> Result<Option<Loaded>, SpoolError> {
    if id.child_number().is_some() {
        return Ok(None);
    }
    let msg = match spool.get(id) {
        Ok((_, r)) => r,
        Err(SpoolError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let JobData::Message(d) = &msg.data else {
        return Ok(None);
    };
    let n = d
        .envelope
        .recipients
        .len()
        .min(crate::offramp::jobs::MAX_RECIPIENTS);
    let mut children = Vec::with_capacity(n);
    for i in 1..=n {
        let cid = match Child::Recipient(i as u16).id_of(&msg.id) {
            Ok(c) => c,
            Err(_) => {
                children.push(None);
                continue;
            }
        };
        match spool.get(&cid) {
            Ok((_, c)) if c.kind == JobKind::FaxOut => children.push(Some(c)),
            Ok(_) | Err(SpoolError::NotFound(_)) => children.push(None),
            Err(e) => return Err(e),
        }
    }
    Ok(Some((msg, children)))
}

/// The view of fax `id` if `who` may see it.
fn visible_fax(spool: &Spool, who: &Who, id: &str) -> Result<(FaxView, Loaded), ApiError> {
    let Ok(id) = id.parse::<JobId>() else {
        return Err(not_found());
    };
    match load_fax(spool, &id) {
        Ok(Some((msg, children))) if may_see_fax(who, &msg) => match fax_view(&msg, &children) {
            Some(v) => Ok((v, (msg, children))),
            None => Err(not_found()),
        },
        Ok(_) => Err(not_found()),
        Err(e) => Err(spool_error(&e)),
    }
}

fn lock_sends(c: &Console) -> std::sync::MutexGuard<'_, crate::smtp::rate::MessageRate> {
    c.sends.lock().unwrap_or_else(|p| p.into_inner())
}

fn json_ok(status: StatusCode, v: &impl Serialize) -> Response {
    (status, Json(v)).into_response()
}

async fn create_fax(
    State(c): State<Console>,
    Extension(who): Extension<Who>,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let len = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // The same per-client message rate as SMTP (`[smtp] max_messages_per_minute`): a token
    // cannot queue faxes faster than a mail client could. Checked before the upload is read,
    // charged once a fax is queued.
    let client_ip = peer
        .as_ref()
        .map_or(std::net::IpAddr::from([127, 0, 0, 1]), |p| p.0.0.ip());
    let ready = lock_sends(&c).ready_at(client_ip, std::time::Instant::now());
    if let Some(at) = ready {
        let wait = at
            .saturating_duration_since(std::time::Instant::now())
            .as_secs()
            + 1;
        info!(
            user = %crate::logging::Untrusted::new(&who.user.name),
            client = %client_ip,
            "console: fax refused: sending too fast"
        );
        let mut r = super::api_error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limit",
            format!(
                "more faxes than [smtp] max_messages_per_minute allows from this client: \
                 try again in {wait} s"
            ),
        );
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let limit = c.cfg.smtp.max_message_size;
    let form = match submit::read_form(body, ct, len, limit).await {
        Ok(f) => f,
        Err(e) => return refused(&who, &e),
    };
    let client = peer
        .as_ref()
        .map(|p| p.0.0)
        .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let (cfg, spool, w) = (c.cfg.clone(), c.spool.clone(), who.clone());
    let now = chrono::Utc::now().timestamp();
    let r = tokio::task::spawn_blocking(move || {
        let checked = submit::check(&cfg, &w, client, &form, now)?;
        let id = submit::commit(&spool, &cfg.gateway.hostname, checked)?;
        let view = load_fax(&spool, &id)
            .ok()
            .flatten()
            .and_then(|(m, ch)| fax_view(&m, &ch));
        Ok::<_, SubmitError>((id, view))
    })
    .await;
    let (id, view) = match r {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => return refused(&who, &e),
        Err(_) => return task_error().into_response(),
    };
    lock_sends(&c).charge(client_ip, std::time::Instant::now());
    audit(&who, "send", id.as_str(), peer.as_ref().map(|p| &p.0));
    info!(id = %id, user = %crate::logging::Untrusted::new(&who.user.name), "console: fax queued");
    let mut r = match view {
        Some(v) => json_ok(StatusCode::CREATED, &v),
        None => json_ok(
            StatusCode::CREATED,
            &serde_json::json!({ "id": id.as_str(), "state": "queued", "recipients": [] }),
        ),
    };
    if let Ok(loc) = HeaderValue::from_str(&format!("/api/v1/faxes/{id}")) {
        r.headers_mut().insert(header::LOCATION, loc);
    }
    r
}

/// A refused submission: the JSON error, logged with the user.
fn refused(who: &Who, e: &SubmitError) -> Response {
    info!(
        user = %crate::logging::Untrusted::new(&who.user.name),
        code = e.code(),
        "console: fax refused: {e}"
    );
    e.response()
}

async fn show_fax(
    State(c): State<Console>,
    Extension(who): Extension<Who>,
    Path(id): Path<String>,
) -> Response {
    let spool = c.spool.clone();
    match blocking(move || visible_fax(&spool, &who, &id).map(|(v, ..)| v)).await {
        Ok(v) => json_ok(StatusCode::OK, &v),
        Err(e) => e.into_response(),
    }
}

/// What a cancel or retry did to the jobs of one fax.
enum Change {
    /// Jobs changed.
    Changed,
    /// Nothing to do: the `409` code and sentence.
    Nothing(&'static str, &'static str),
}

async fn cancel_fax(
    State(c): State<Console>,
    Extension(who): Extension<Who>,
    peer: Option<Extension<Peer>>,
    Path(id): Path<String>,
) -> Response {
    if !who.is_admin() {
        return forbidden("cancelling a fax");
    }
    let (spool, w) = (c.spool.clone(), who.clone());
    let r = blocking(move || {
        let (_, (msg, children)) = visible_fax(&spool, &w, &id)?;
        let now = crate::spool::now();
        let change = match msg.state {
            // The split is making the fax jobs right now: cancelling the message would leave
            // them behind.
            JobState::Running => Change::Nothing(
                "busy",
                "the fax is being prepared for sending: try again in a moment",
            ),
            JobState::Queued => match spool.cancel(&msg.id, now) {
                Ok(_) => Change::Changed,
                Err(SpoolError::NotFound(_) | SpoolError::WrongState { .. }) => {
                    Change::Nothing("already-final", "the fax is no longer queued")
                }
                Err(e) => return Err(spool_error(&e)),
            },
            JobState::Failed => Change::Nothing("already-final", "the fax has already ended"),
            JobState::Done => {
                let mut any = false;
                for ch in children.iter().flatten().filter(|c| !c.state.is_final()) {
                    match spool.cancel(&ch.id, now) {
                        Ok(_) => any = true,
                        Err(SpoolError::NotFound(_) | SpoolError::WrongState { .. }) => {}
                        Err(e) => return Err(spool_error(&e)),
                    }
                }
                if any {
                    Change::Changed
                } else {
                    Change::Nothing("already-final", "every recipient's fax has ended")
                }
            }
        };
        // The message's report follows from the cancel: the dispatcher queues it for every
        // fax job an operator cancels (`dispatch::handle`), whoever cancelled it.
        let view = visible_fax(&spool, &w, msg.id.as_str()).map(|(v, ..)| v)?;
        Ok((change, view))
    })
    .await;
    finish_change(&who, "cancel", peer, r)
}

async fn retry_fax(
    State(c): State<Console>,
    Extension(who): Extension<Who>,
    peer: Option<Extension<Peer>>,
    Path(id): Path<String>,
) -> Response {
    if !who.is_admin() {
        return forbidden("retrying a fax");
    }
    let (spool, w) = (c.spool.clone(), who.clone());
    let r = blocking(move || {
        let (_, (msg, children)) = visible_fax(&spool, &w, &id)?;
        let now = crate::spool::now();
        let targets: Vec<JobId> = match msg.state {
            JobState::Running => Vec::new(),
            // Not split yet, or its document failed (or it was cancelled before the split):
            // the message itself goes again.
            JobState::Queued | JobState::Failed => vec![msg.id.clone()],
            JobState::Done => children
                .iter()
                .flatten()
                .filter(|c| matches!(c.state, JobState::Queued | JobState::Failed))
                .map(|c| c.id.clone())
                .collect(),
        };
        let mut changed = false;
        for t in &targets {
            match spool.retry(t, now) {
                Ok(_) => changed = true,
                Err(SpoolError::NotFound(_) | SpoolError::WrongState { .. }) => {}
                Err(e) => return Err(spool_error(&e)),
            }
        }
        let change = if changed {
            Change::Changed
        } else {
            Change::Nothing(
                "nothing-to-retry",
                "no recipient of this fax is waiting or failed",
            )
        };
        let view = visible_fax(&spool, &w, msg.id.as_str()).map(|(v, ..)| v)?;
        Ok((change, view))
    })
    .await;
    finish_change(&who, "retry", peer, r)
}

fn finish_change(
    who: &Who,
    action: &str,
    peer: Option<Extension<Peer>>,
    r: Result<(Change, FaxView), ApiError>,
) -> Response {
    match r {
        Ok((Change::Changed, v)) => {
            audit(who, action, &v.id, peer.as_ref().map(|p| &p.0));
            json_ok(StatusCode::OK, &v)
        }
        Ok((Change::Nothing(code, msg), _)) => api_error(StatusCode::CONFLICT, code, msg),
        Err(e) => e.into_response(),
    }
}

#[derive(serde::Deserialize)]
struct ListQuery {
    limit: Option<usize>,
}

async fn list_received(
    State(c): State<Console>,
    Extension(who): Extension<Who>,
    Query(q): Query<ListQuery>,
) -> Response {
    let limit = q.limit.unwrap_or(DEFAULT_LIST).clamp(1, MAX_LIST);
    let (spool, cfg) = (c.spool.clone(), c.cfg.clone());
    let r = blocking(move || {
        let routes = crate::onramp::route::RouteTable::new(&cfg.routes).ok();
        let mut found: Vec<ReceivedView> = Vec::new();
        for area in [
            crate::spool::Area::Queue,
            crate::spool::Area::Done,
            crate::spool::Area::Failed,
        ] {
            let mut each = |rec: JobRecord| {
                if rec.kind != JobKind::FaxIn {
                    return;
                }
                let route = route_of(routes.as_ref(), &rec);
                if may_see_received(&who, &rec, &route)
                    && let Some(v) = received_view(&rec, &route)
                {
                    found.push(v);
                    // Newest first, at most `limit`: ids sort by time, so keep the largest.
                    if found.len() > 2 * limit {
                        found.sort_by(|a, b| b.id.cmp(&a.id));
                        found.truncate(limit);
                    }
                }
            };
            spool.scan(area, &mut each).map_err(|e| spool_error(&e))?;
        }
        found.sort_by(|a, b| b.id.cmp(&a.id));
        found.truncate(limit);
        Ok(found)
    })
    .await;
    match r {
        Ok(list) => json_ok(StatusCode::OK, &serde_json::json!({ "received": list })),
        Err(e) => e.into_response(),
    }
}

/// The stored pages of received fax `id`, if `who` may see it.
async fn received_file(c: &Console, who: Who, id: String) -> Result<(JobId, Vec<u8>), ApiError> {
    let (spool, cfg) = (c.spool.clone(), c.cfg.clone());
    blocking(move || {
        let id = id.parse::<JobId>().map_err(|_| not_found())?;
        let rec = match spool.get(&id) {
            Ok((_, r)) if r.kind == JobKind::FaxIn => r,
            Ok(_) | Err(SpoolError::NotFound(_)) => return Err(not_found()),
            Err(e) => return Err(spool_error(&e)),
        };
        let routes = crate::onramp::route::RouteTable::new(&cfg.routes).ok();
        if !may_see_received(&who, &rec, &route_of(routes.as_ref(), &rec)) {
            return Err(not_found());
        }
        let path = spool
            .payload_path(&id, FAX_FILE)
            .map_err(|e| spool_error(&e))?;
        let bytes = crate::read_limit::read(&path, MAX_FAX_BYTES).map_err(|e| {
            warn!(job = %id, "console: received fax unreadable: {e}");
            ApiError::new(
                StatusCode::GONE,
                "document-gone",
                "the pages of this fax are no longer stored",
            )
        })?;
        Ok((id, bytes))
    })
    .await
}

fn download(bytes: Vec<u8>, mime: &'static str, name: String) -> Response {
    let disp = format!("attachment; filename=\"{name}\"");
    let mut r = ([(header::CONTENT_TYPE, mime)], bytes).into_response();
    if let Ok(v) = HeaderValue::from_str(&disp) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

async fn received_tif(
    State(c): State<Console>,
    Extension(who): Extension<Who>,
    Path(id): Path<String>,
) -> Response {
    match received_file(&c, who, id).await {
        Ok((id, bytes)) => download(bytes, "image/tiff", format!("fax-{id}.tif")),
        Err(e) => e.into_response(),
    }
}

async fn received_pdf(
    State(c): State<Console>,
    Extension(who): Extension<Who>,
    Path(id): Path<String>,
) -> Response {
    let (id, tiff) = match received_file(&c, who, id).await {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let pdf = blocking(move || {
        crate::onramp::compose::pdf_of_stored(&tiff).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "undecodable",
                format!("the received pages cannot be made into a PDF: {e}"),
            )
        })
    })
    .await;
    match pdf {
        Ok(b) => download(b, "application/pdf", format!("fax-{id}.pdf")),
        Err(e) => e.into_response(),
    }
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_route_is_documented_and_every_documented_route_is_served() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        assert_eq!(doc["openapi"].as_str().map(|v| &v[..3]), Some("3.1"));
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if ["get", "post", "delete", "put", "patch", "head"].contains(&method.as_str()) {
                    documented.insert((method.clone(), path.clone()));
                    assert!(
                        op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                        "{method} {path}: no responses"
                    );
                    // Every path parameter is declared.
                    for seg in path.split('/').filter(|s| s.starts_with('{')) {
                        let name = seg.trim_matches(|c| c == '{' || c == '}');
                        let params = op["parameters"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .chain(item["parameters"].as_array().into_iter().flatten());
                        let declared = params.map(|p| {
                            if let Some(r) = p["$ref"].as_str() {
                                let key = r.rsplit('/').next().unwrap();
                                doc["components"]["parameters"][key].clone()
                            } else {
                                p.clone()
                            }
                        });
                        assert!(
                            declared
                                .into_iter()
                                .any(|p| p["name"] == name && p["in"] == "path"),
                            "{method} {path}: path parameter {name} not declared"
                        );
                    }
                }
            }
        }
        let served: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|r| (r.method.to_owned(), r.path.to_owned()))
            .collect();
        assert_eq!(served, documented);
        // The router is built from the same table (and accepts it: no overlap panics).
        let _ = routes();
    }

    #[test]
    fn t30_numbers_are_read_from_attempt_details() {
        assert_eq!(
            t30_number("T.30 cause 5 (UnexpectedDcn): the remote disconnected"),
            Some(5)
        );
        assert_eq!(t30_number("T.30 cause 0 (Ok): all pages"), Some(0));
        assert_eq!(t30_number("busy"), None);
        assert_eq!(t30_number("T.30 cause x"), None);
    }

    fn rec(id: &str, kind: JobKind, state: JobState, failure: Option<GiveUp>) -> JobRecord {
        JobRecord {
            version: crate::spool::RECORD_VERSION,
            id: id.parse().unwrap(),
            kind,
            state,
            created: Timestamp(1_796_000_000_000),
            epoch: Timestamp(1_796_000_000_000),
            next_due: Timestamp(1_796_000_000_000),
            priority: 127,
            attempts: Vec::new(),
            counted_from: 0,
            failure,
            finished: None,
            parent: None,
            child: None,
            data: crate::job::data::sample(kind, "t"),
        }
    }

    #[test]
    fn the_state_is_the_aggregate_of_the_recipients() {
        let m = |s, f| rec("6b0b5ae65504f019e0e3", JobKind::Message, s, f);
        let c = |s, f| Some(rec("6b0b5ae65504f019e0e3.1", JobKind::FaxOut, s, f));
        let done = m(JobState::Done, None);
        assert_eq!(aggregate(&m(JobState::Queued, None), &[]), "queued");
        assert_eq!(aggregate(&m(JobState::Running, None), &[]), "queued");
        assert_eq!(
            aggregate(&m(JobState::Failed, Some(GiveUp::Fatal)), &[]),
            "failed"
        );
        assert_eq!(
            aggregate(&m(JobState::Failed, Some(GiveUp::Cancelled)), &[]),
            "cancelled"
        );
        let d = || c(JobState::Done, None);
        let cases = [
            (vec![d(), c(JobState::Running, None)], "sending"),
            (vec![d(), c(JobState::Queued, None)], "queued"),
            (vec![d(), d()], "done"),
            (
                vec![d(), c(JobState::Failed, Some(GiveUp::Cancelled))],
                "cancelled",
            ),
            (
                vec![d(), c(JobState::Failed, Some(GiveUp::TooManyDials))],
                "failed",
            ),
            (vec![d(), None], "failed"),
        ];
        for (children, want) in cases {
            assert_eq!(aggregate(&done, &children), want, "{children:?}");
        }
    }

    #[test]
    fn scope_hides_faxes_of_other_numbers_and_users() {
        use crate::app::console::auth::{Role, Scope, User, Via};
        let who = |name: &str, numbers: &[&str], routes: &[&str]| Who {
            user: User {
                name: name.into(),
                role: Role::Viewer,
                scope: Scope {
                    numbers: numbers.iter().map(|s| s.to_string()).collect(),
                    routes: routes.iter().map(|s| s.to_string()).collect(),
                },
            },
            via: Via::Token,
        };
        let mut msg = rec(
            "6b0b5ae65504f019e0e3",
            JobKind::Message,
            JobState::Queued,
            None,
        );
        if let JobData::Message(d) = &mut msg.data {
            d.envelope.auth_user = Some("ann".into());
            let p =
                crate::smtp::session::Policy::from_config(&crate::config::Config::default(), false);
            d.envelope.recipients =
                submit::recipients(&p, &who("x", &[], &[]), &["+12125550142".into()], &[]).unwrap();
        }
        assert!(may_see_fax(&who("any", &[], &[]), &msg));
        assert!(may_see_fax(&who("vic", &["+12125550142"], &[]), &msg));
        assert!(may_see_fax(&who("ann", &["+19995550000"], &[]), &msg));
        assert!(!may_see_fax(&who("vic", &["+12125550143"], &[]), &msg));
        let mut fin = rec("6b0b5ae65504f019e0e4", JobKind::FaxIn, JobState::Done, None);
        if let JobData::FaxIn(d) = &mut fin.data {
            d.reception.did = Some("12125550142".into());
        }
        assert!(may_see_received(
            &who("vic", &["+12125550142"], &[]),
            &fin,
            "default"
        ));
        assert!(may_see_received(
            &who("vic", &[], &["sales"]),
            &fin,
            "sales"
        ));
        assert!(!may_see_received(
            &who("vic", &[], &["sales"]),
            &fin,
            "default"
        ));
        assert!(!may_see_received(
            &who("vic", &["+1212555014"], &[]),
            &fin,
            "default"
        ));
    }
}
