//! The queue and one job: `GET /queue` (every job waiting or running, a page at a time),
//! `GET /jobs/{id}` (its attempts with their T.30 causes, sender, recipients, page
//! thumbnails), `GET /jobs/{id}/pages/{n}.png` (a page image, [`crate::app::console::thumbs`]),
//! and the admin's `POST /jobs/{id}/retry`, `POST /jobs/{id}/cancel` and `POST /queue/purge`
//! (finished jobs past their retention, `[spool] keep_done`/`keep_failed`, removed now rather
//! than at the daemon's next hourly purge — what `faxgate queue purge` does).
//!
//! **A page of a large queue costs a page of reads.** The ids, kinds and states of the queued
//! jobs come from the dispatcher's in-memory figures ([`crate::app::dispatch::Figures`]); only
//! the [`PER_PAGE`] records shown are read from the spool. A viewer limited to some numbers
//! sees only the fax jobs for them, which needs each fax job's record: that scan stops after
//! [`SCOPED_SCAN`] records and the page says so (the planned path past the limit: the
//! operator gives such a user a narrower view, or uses the API).
//!
//! Changes go through the spool ([`Spool::retry`], [`Spool::cancel`]), whose events reach the
//! dispatcher by themselves; each is written to the audit log and answered `303 See Other`
//! (RFC 9110 §15.4.4) to a page, so reloading it does not post again. Viewers see no buttons
//! and get `403` if they post anyway.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;

use super::{csrf_action, layout};
use crate::app::console::auth::{Scope, Who};
use crate::app::console::{Console, Peer, audit, thumbs};
use crate::fax::t30::cause::Cause;
use crate::job::{Attempt, Child, JobData, Timestamp};
use crate::onramp::route::RouteTable;
use crate::spool::{Area, JobId, JobKind, JobRecord, JobState, Spool, SpoolError};

/// Jobs shown per page of the queue and of the received faxes.
pub const PER_PAGE: usize = 100;
/// Records a scoped user's queue or received list reads at most per request (ours).
pub const SCOPED_SCAN: usize = 5000;
/// Page thumbnails shown on a job's page at most (the rest are a click away in the viewer).
pub const MAX_THUMBS: u32 = 60;

/// This area's routes.
pub fn routes() -> Router<Console> {
    Router::new()
        .route("/queue", get(queue))
        .route("/jobs/{id}", get(job))
        .route("/jobs/{id}/pages/{file}", get(page_image))
        .route("/jobs/{id}/retry", post(retry))
        .route("/jobs/{id}/cancel", post(cancel))
        .route("/queue/purge", post(purge))
}

/// `?page=` of a list (1-based).
#[derive(Debug, Deserialize, Default)]
pub struct PageQuery {
    /// The page wanted.
    pub page: Option<usize>,
}

impl PageQuery {
    /// The page, at least 1.
    pub fn number(&self) -> usize {
        self.page.unwrap_or(1).max(1)
    }
}

/// Runs `f` on a blocking thread (spool reads).
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

/// A plain-text answer (errors of the pages).
pub fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg.into(),
    )
        .into_response()
}

/// The T.30 cause an attempt's detail names (`T.30 cause N (…)`, as the fax worker writes it).
pub fn t30_cause(detail: &str) -> Option<Cause> {
    let rest = detail.split("T.30 cause ").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Cause::from_number(digits.parse().ok()?)
}

/// An attempt's cause in plain words: the T.30 cause's meaning when it names one, else the
/// worker's own words.
pub fn attempt_words(a: &Attempt) -> String {
    match (t30_cause(&a.detail), a.cause) {
        (Some(c), _) => c.meaning().to_owned(),
        (None, None) => "in progress".into(),
        (None, Some(_)) if !a.detail.is_empty() => a.detail.clone(),
        (None, Some(c)) => format!("{c:?}"),
    }
}

/// The job's last cause in plain words: why it failed, else its last attempt's cause.
pub fn last_cause(rec: &JobRecord) -> String {
    match (&rec.failure, rec.attempts.last()) {
        (Some(g), Some(a)) => format!("{g}: {}", attempt_words(a)),
        (Some(g), None) => g.to_string(),
        (None, Some(a)) => attempt_words(a),
        (None, None) => String::new(),
    }
}

/// The route a received fax took (the onramp's attempt says `route NAME → mail job …`), or
/// the route the table picks for it while it waits.
pub fn route_of(rec: &JobRecord, routes: Option<&RouteTable>) -> Option<String> {
    let JobData::FaxIn(d) = &rec.data else {
        return None;
    };
    let taken = rec.attempts.iter().rev().find_map(|a| {
        let rest = a.detail.strip_prefix("route ")?;
        Some(rest.split(" → ").next()?.to_owned())
    });
    taken.or_else(|| {
        if !d.to.is_empty() {
            return Some("(given recipients)".into());
        }
        routes.map(|t| t.route(&d.reception.route_keys()).name.clone())
    })
}

/// May a user limited by `scope` see `rec`? Fax jobs by number, received faxes by route (or
/// the number dialled), messages when one of their recipients is in scope; mail and
/// everything else only without a scope.
pub fn visible(scope: &Scope, rec: &JobRecord, routes: Option<&RouteTable>) -> bool {
    if scope.is_all() {
        return true;
    }
    match &rec.data {
        JobData::FaxOut(f) => scope.number(&f.e164),
        JobData::Message(m) => m
            .envelope
            .recipients
            .iter()
            .any(|r| scope.number(&r.destination.e164)),
        JobData::FaxIn(d) => {
            route_of(rec, routes).is_some_and(|r| scope.route(&r))
                || d.reception
                    .did
                    .as_deref()
                    .is_some_and(|n| scope.numbers.iter().any(|s| s == n))
        }
        JobData::MailOut(_) => false,
    }
}

/// The route table of the configuration, when it compiles (it does in a running daemon:
/// config validation checked it).
pub fn routes_of(c: &Console) -> Option<RouteTable> {
    RouteTable::new(&c.cfg.routes).ok()
}

/// What a job is about, in a few words: the number, the sender, the caller, the subject.
pub fn summary(rec: &JobRecord) -> String {
    match &rec.data {
        JobData::FaxOut(f) => format!("to {}", f.e164),
        JobData::Message(m) => format!(
            "from {} to {} recipient(s)",
            m.envelope.mail_from,
            m.envelope.recipients.len()
        ),
        JobData::FaxIn(d) => format!(
            "from {}",
            d.reception
                .caller
                .as_deref()
                .or(d.reception.remote_id.as_deref())
                .unwrap_or("unknown caller")
        ),
        JobData::MailOut(m) => format!("{} → {}", m.subject, m.envelope.to.join(", ")),
    }
}

/// `t` relative to `now` in words ("now", "in 3 min", "12 s ago").
pub fn when(t: Timestamp, now: Timestamp) -> String {
    let (d, later) = if t >= now {
        (t.since(now), true)
    } else {
        (now.since(t), false)
    };
    let s = d.as_secs();
    let span = if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min", s / 60)
    } else if s < 86_400 {
        format!("{} h {} min", s / 3600, s % 3600 / 60)
    } else {
        format!("{} d", s / 86_400)
    };
    match (later, s) {
        (_, 0) => "now".into(),
        (true, _) => format!("in {span}"),
        (false, _) => format!("{span} ago"),
    }
}

fn lock_live(c: &Console) -> std::sync::MutexGuard<'_, crate::app::dispatch::Figures> {
    c.live.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads the records of `ids` that are still waiting or running. The dispatcher's figures
/// learn of a cancel or a finished call only when it handles the spool's wake-up, so a job
/// the figures still list may already be in done/ or failed/; such a job, like one gone or
/// damaged, is left out rather than shown as waiting.
fn read_waiting(spool: &Spool, ids: &[JobId]) -> Vec<JobRecord> {
    ids.iter()
        .filter_map(|id| spool.get(id).ok().map(|(_, r)| r))
        .filter(|r| !r.state.is_final())
        .collect()
}

/// One page of queued jobs for `who`: (jobs on the page, jobs in all, true when a scoped scan
/// stopped at its limit).
async fn queue_page(c: &Console, who: &Who, page: usize) -> (Vec<JobRecord>, usize, bool) {
    let offset = (page - 1).saturating_mul(PER_PAGE);
    let scope = who.user.scope.clone();
    if scope.is_all() {
        let (total, ids) = lock_live(c).queued_page(|_, _| true, offset, PER_PAGE);
        let ids: Vec<JobId> = ids.into_iter().map(|(id, _, _)| id).collect();
        let sp = c.spool.clone();
        let asked = ids.len();
        let recs = blocking(move || read_waiting(&sp, &ids))
            .await
            .unwrap_or_default();
        // The ones that left the queue meanwhile are not counted either.
        let total = total.saturating_sub(asked - recs.len());
        return (recs, total, false);
    }
    // Scoped: only fax jobs can be in scope; their numbers are in the records.
    let (all, ids) = lock_live(c).queued_page(|k, _| k == JobKind::FaxOut, 0, SCOPED_SCAN);
    let sp = c.spool.clone();
    let (recs, total) = blocking(move || {
        let mut seen = 0;
        let mut out = Vec::new();
        for (id, _, _) in ids {
            let Ok((_, r)) = sp.get(&id) else { continue };
            if !r.state.is_final() && visible(&scope, &r, None) {
                if seen >= offset && out.len() < PER_PAGE {
                    out.push(r);
                }
                seen += 1;
            }
        }
        (out, seen)
    })
    .await
    .unwrap_or_default();
    (recs, total, all > SCOPED_SCAN)
}

/// Links to the other pages of a list of `total` items.
pub fn pager(path: &str, page: usize, total: usize) -> Markup {
    let pages = total.div_ceil(PER_PAGE).max(1);
    html! {
        @if pages > 1 {
            nav.pager {
                @if page > 1 { a href={ (path) "?page=" (page - 1) } rel="prev" { "← newer" } " " }
                "page " (page) " of " (pages)
                @if page < pages { " " a href={ (path) "?page=" (page + 1) } rel="next" { "older →" } }
            }
        }
    }
}

/// Retry and cancel buttons for `rec`, for admins; `back` is where the form returns.
pub fn actions(who: &Who, rec: &JobRecord, back: &str) -> Markup {
    let id = rec.id.as_str();
    let can_retry = matches!(rec.state, JobState::Queued | JobState::Failed);
    let can_cancel = matches!(rec.state, JobState::Queued | JobState::Running);
    html! {
        @if who.is_admin() {
            @if can_retry {
                form.inline method="post" action=(csrf_action(&format!("/jobs/{id}/retry?back={back}"), who)) {
                    button type="submit" class="retry" { "Retry" }
                }
            }
            @if can_cancel {
                " "
                form.inline method="post" action=(csrf_action(&format!("/jobs/{id}/cancel?back={back}"), who)) {
                    button type="submit" class="cancel" { "Cancel" }
                }
            }
        }
    }
}

async fn queue(
    State(c): State<Console>,
    axum::Extension(who): axum::Extension<Who>,
    Query(q): Query<PageQuery>,
) -> Response {
    let page = q.number();
    let (recs, total, capped) = queue_page(&c, &who, page).await;
    let now = crate::spool::now();
    let body = html! {
        h1 { "Queue" }
        p.muted {
            (total) " job(s) waiting or running"
            @if capped { " (only the first " (SCOPED_SCAN) " fax jobs were looked at for your numbers)" }
            "."
        }
        @if recs.is_empty() {
            p { "Nothing is waiting." }
        } @else {
            table.queue {
                thead { tr {
                    th { "Job" } th { "Kind" } th { "State" } th { "What" } th { "Next try" }
                    th { "Tries" } th { "Last cause" } th { "Priority" } th {}
                } }
                tbody {
                    @for r in &recs {
                        tr id={ "job-" (r.id) } {
                            td { a href={ "/jobs/" (r.id) } { code { (r.id) } } }
                            td { (r.kind.name()) }
                            td class=(r.state.name()) { (r.state.name()) }
                            td { (summary(r)) }
                            td {
                                @match r.state {
                                    JobState::Running => "in progress",
                                    JobState::Queued => (when(r.next_due, now)),
                                    _ => "—",
                                }
                            }
                            td { (r.dials_and_tries().0) }
                            td { (last_cause(r)) }
                            td { (r.priority) }
                            td { (actions(&who, r, "queue")) }
                        }
                    }
                }
            }
        }
        (pager("/queue", page, total))
        @if who.is_admin() {
            h2 { "Finished jobs" }
            p.muted {
                "Done jobs are kept " (humantime::format_duration(c.cfg.spool.keep_done))
                ", failed ones " (humantime::format_duration(c.cfg.spool.keep_failed))
                " ([spool] keep_done, keep_failed), then removed."
            }
            form.inline method="post" action=(csrf_action("/queue/purge", &who)) {
                button #purge type="submit" { "Remove finished jobs past their retention now" }
            }
        }
    };
    layout("Queue", "/queue", &who, body).into_response()
}

/// Parses a job id from the path; `404` for anything else.
// The error is the handler's answer, returned once per request: boxing it would gain nothing.
#[allow(clippy::result_large_err)]
pub fn parse_id(s: &str) -> Result<JobId, Response> {
    s.parse()
        .map_err(|_| text(StatusCode::NOT_FOUND, "no such job"))
}

/// The job's record, when it exists and `who` may see it (`404` otherwise: a scoped user
/// learns nothing of other jobs).
pub async fn load_visible(
    c: &Console,
    who: &Who,
    id: JobId,
) -> Result<(Area, JobRecord), Response> {
    let sp = c.spool.clone();
    let got = blocking(move || sp.get(&id)).await;
    match got {
        Some(Ok((area, rec))) => {
            let routes = routes_of(c);
            if visible(&who.user.scope, &rec, routes.as_ref()) {
                Ok((area, rec))
            } else {
                Err(text(StatusCode::NOT_FOUND, "no such job"))
            }
        }
        Some(Err(SpoolError::NotFound(_))) => Err(text(StatusCode::NOT_FOUND, "no such job")),
        Some(Err(e)) => Err(text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
        None => Err(text(StatusCode::INTERNAL_SERVER_ERROR, "spool task failed")),
    }
}

/// A child job of a job: its relation, id, and record when it exists.
type Related = (Child, JobId, Option<JobRecord>);

/// Other records a job's page shows: its parent, its children.
fn related(spool: &Spool, rec: &JobRecord) -> (Option<JobRecord>, Vec<Related>) {
    let get = |id: &JobId| spool.get(id).ok().map(|(_, r)| r);
    let parent = rec.parent.as_ref().and_then(get);
    let mut children = Vec::new();
    match &rec.data {
        JobData::Message(m) => {
            for n in 1..=m
                .envelope
                .recipients
                .len()
                .min(usize::from(Child::MAX_RECIPIENTS))
            {
                let ch = Child::Recipient(n as u16);
                if let Ok(id) = ch.id_of(&rec.id) {
                    let r = get(&id);
                    children.push((ch, id, r));
                }
            }
            if let Ok(id) = Child::Report.id_of(&rec.id)
                && let Some(r) = get(&id)
            {
                children.push((Child::Report, id, Some(r)));
            }
        }
        JobData::FaxIn(_) => {
            for (n, r) in (1..).zip(super::received::mails_of(spool, &rec.id)) {
                children.push((Child::Mail(n), r.id.clone(), Some(r)));
            }
        }
        _ => {}
    }
    (parent, children)
}

async fn job(
    State(c): State<Console>,
    axum::Extension(who): axum::Extension<Who>,
    Path(id): Path<String>,
) -> Response {
    let id = match parse_id(&id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let (area, rec) = match load_visible(&c, &who, id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (sp, r2) = (c.spool.clone(), rec.clone());
    let (parent, children) = blocking(move || related(&sp, &r2))
        .await
        .unwrap_or_default();
    // A message's pages are its first recipient's fax job's.
    let pages_job = match (&rec.data, children.first()) {
        (JobData::Message(_), Some((_, cid, Some(_)))) => Some(cid.clone()),
        (JobData::FaxOut(_) | JobData::FaxIn(_), _) => Some(rec.id.clone()),
        _ => None,
    };
    let pages_rec = match &pages_job {
        Some(pid) if *pid == rec.id => Some(rec.clone()),
        Some(_) => children.first().and_then(|(_, _, r)| r.clone()),
        None => None,
    };
    let (sp, cfg) = (c.spool.clone(), c.cfg.clone());
    let pages = match pages_rec {
        Some(pr) => blocking(move || thumbs::pages_of(&sp, &cfg, &pr).map(|(_, n)| (pr.id, n)))
            .await
            .unwrap_or_else(|| Err(thumbs::ThumbError::Unreadable("task failed".into()))),
        None => Err(thumbs::ThumbError::NoPages(match rec.data {
            JobData::Message(_) => {
                "not rendered yet: the pages are made when the message is split into fax jobs"
                    .into()
            }
            _ => "this job has no fax pages".into(),
        })),
    };
    let routes = routes_of(&c);
    let now = crate::spool::now();
    let body = html! {
        h1 { (rec.kind.name()) " job " code { (rec.id) } }
        p {
            "State: " strong class=(rec.state.name()) { (rec.state.name()) }
            @if let Some(g) = &rec.failure { " — " (g.to_string()) }
            " " (actions(&who, &rec, "job"))
        }
        dl.facts {
            dt { "Created" } dd { (rec.created.to_string()) }
            @if !rec.state.is_final() {
                dt { "Next try" } dd { @if rec.state == JobState::Running { "in progress" } @else { (when(rec.next_due, now)) " (" (rec.next_due.to_string()) ")" } }
            }
            @if let Some(f) = rec.finished { dt { "Finished" } dd { (f.to_string()) } }
            dt { "Priority" } dd { (rec.priority) }
            dt { "Area" } dd { (format!("{area:?}").to_lowercase()) }
            @if let Some(p) = &rec.parent {
                dt { "Part of" } dd { a href={ "/jobs/" (p) } { code { (p) } } @if let Some(pr) = &parent { " (" (pr.kind.name()) ")" } }
            }
        }
        (facts(&rec, parent.as_ref(), routes.as_ref()))
        @if !children.is_empty() {
            h2 { "Made from it" }
            table.children {
                thead { tr { th { "Job" } th { "What" } th { "State" } th { "Last cause" } } }
                tbody {
                    @for (ch, cid, cr) in &children {
                        tr {
                            td { a href={ "/jobs/" (cid) } { code { (cid) } } }
                            td { (relation(ch)) @if let Some(r) = cr { " " (summary(r)) } }
                            td { @if let Some(r) = cr { (r.state.name()) } @else { "not made yet" } }
                            td { @if let Some(r) = cr { (last_cause(r)) } }
                        }
                    }
                }
            }
        }
        h2 { "Attempts" }
        (timeline(&rec))
        h2 { "Pages" }
        @match &pages {
            Ok((pid, n)) => {
                @if *pid != rec.id { p.muted { "As faxed to the first recipient (" a href={ "/jobs/" (pid) } { code { (pid) } } ")." } }
                div.thumbs {
                    @for i in 1..=(*n).min(MAX_THUMBS) {
                        a href={ "/jobs/" (pid) "/pages/" (i) ".png?size=large" } {
                            img src={ "/jobs/" (pid) "/pages/" (i) ".png" } alt={ "page " (i) } loading="lazy" width=(thumbs::THUMB_WIDTH);
                        }
                    }
                }
                @if *n > MAX_THUMBS { p.muted { "Pages " (MAX_THUMBS + 1) " to " (n) " are not shown here." } }
                @if matches!(rec.data, JobData::FaxIn(_)) { p { a href={ "/received/" (rec.id) } { "Open in the viewer" } } }
            }
            Err(e) => { p.muted.pages-missing { (e.to_string()) } }
        }
    };
    layout(&format!("Job {}", rec.id), "/queue", &who, body).into_response()
}

fn relation(ch: &Child) -> String {
    match ch {
        Child::Recipient(n) => format!("fax to recipient {n}:"),
        Child::Report => "delivery report:".into(),
        Child::Mdn(n) => format!("read receipt {n}:"),
        Child::DelayNotice(n) => format!("delay notice {n}:"),
        Child::Postmaster => "postmaster copy:".into(),
        Child::Mail(n) => format!("mail {n}:"),
    }
}

/// The kind's own facts: sender, recipients, caller, envelope.
fn facts(rec: &JobRecord, parent: Option<&JobRecord>, routes: Option<&RouteTable>) -> Markup {
    html! {
        @match &rec.data {
            JobData::FaxOut(f) => {
                h2 { "Fax" }
                dl.facts {
                    dt { "To" } dd { (f.e164) " (dial " code { (f.dial) } ")" }
                    dt { "Recipient" } dd { (f.rcpt) }
                    @if let Some(JobData::Message(m)) = parent.map(|p| &p.data) {
                        dt { "Sender" } dd { (m.envelope.mail_from) }
                    }
                    @if !f.from.is_empty() { dt { "From:" } dd { (f.from) } }
                    dt { "Subject" } dd { (f.options.subject) }
                    dt { "Pages" } dd { (f.pages_total) @if f.options.cover_page { " (cover page included)" } }
                    dt { "Resolution" } dd { (format!("{:?}", f.options.resolution).to_lowercase()) }
                    @if let Some(res) = &f.result {
                        dt { "Last call" } dd {
                            (res.pages_sent) " page(s) confirmed"
                            @if let Some(id) = &res.remote_id { ", remote " (id) }
                            @if let Some(m) = &res.modulation { ", " (m) } @else if let Some(b) = res.speed_bps { ", " (b) " bit/s" }
                            @if let Some(e) = res.ecm { @if e { ", ECM" } @else { ", no ECM" } }
                            @if let Some(c) = res.t30_cause.and_then(Cause::from_number) {
                                ", T.30 cause " (c.number()) ": " (c.meaning())
                            }
                        }
                    }
                }
            }
            JobData::Message(m) => {
                h2 { "Message" }
                dl.facts {
                    dt { "Sender" } dd { (m.envelope.mail_from) }
                    dt { "Client" } dd { (m.envelope.client.ip) " (" (m.envelope.client.helo) ")" }
                    @if let Some(u) = &m.envelope.auth_user { dt { "Logged in as" } dd { (u) } }
                    dt { "Received" } dd { (m.received) }
                    dt { "Size" } dd { (m.size) " octets" }
                }
                h2 { "Recipients" }
                ul.recipients {
                    @for (i, r) in m.envelope.recipients.iter().enumerate() {
                        li {
                            (r.destination.e164) " — " (r.address)
                            @if let Ok(cid) = Child::Recipient(i as u16 + 1).id_of(&rec.id) {
                                " → " a href={ "/jobs/" (cid) } { code { (cid) } }
                            }
                        }
                    }
                }
            }
            JobData::FaxIn(d) => {
                h2 { "Received fax" }
                (reception_facts(rec, routes))
                @let _ = d;
            }
            JobData::MailOut(m) => {
                h2 { "Mail" }
                dl.facts {
                    dt { "From" } dd { @if m.envelope.from.is_empty() { "<> (a report)" } @else { (m.envelope.from) } }
                    dt { "To" } dd { (m.envelope.to.join(", ")) }
                    dt { "Subject" } dd { (m.subject) }
                    dt { "Purpose" } dd {
                        @match &m.purpose {
                            crate::job::Purpose::Fax { fax_job: Some(f) } => { "received fax " a href={ "/received/" (f) } { code { (f) } } }
                            crate::job::Purpose::Fax { fax_job: None } => "received fax",
                            crate::job::Purpose::Report { report, message } => {
                                (format!("{report:?}").to_lowercase()) " report"
                                @if let Some(mid) = message { " on " a href={ "/jobs/" (mid) } { code { (mid) } } }
                            }
                            crate::job::Purpose::AdminNotice => "notice to the operator",
                        }
                    }
                }
            }
        }
    }
}

/// A received fax's facts (the job page and the viewer share them).
pub fn reception_facts(rec: &JobRecord, routes: Option<&RouteTable>) -> Markup {
    let JobData::FaxIn(d) = &rec.data else {
        return html! {};
    };
    let r = &d.reception;
    html! {
        dl.facts {
            dt { "Received" } dd { (Timestamp(u64::try_from(r.received).unwrap_or(0).saturating_mul(1000)).to_string()) }
            dt { "Caller" } dd { (r.caller.as_deref().unwrap_or("—")) }
            dt { "Remote ID (CSID/TSI)" } dd { (r.remote_id.as_deref().unwrap_or("—")) }
            @if let Some(did) = &r.did { dt { "Number dialled" } dd { (did) } }
            @if let Some(l) = &r.line { dt { "Line" } dd { (l) } }
            dt { "Pages" } dd { (r.pages) }
            @if let Some(s) = r.speed { dt { "Speed" } dd { (s) " bit/s" } }
            @if r.duration_secs > 0 { dt { "Call" } dd { (r.duration_secs) " s" } }
            dt { "Completion" } dd {
                @match &r.completion {
                    crate::job::Completion::Complete => "complete",
                    crate::job::Completion::Partial { cause } => { "partial: " (cause) }
                    crate::job::Completion::Failed { cause } => { "failed: " (cause) }
                }
            }
            dt { "Route" } dd { (route_of(rec, routes).unwrap_or_else(|| "—".into())) }
            @if !d.to.is_empty() { dt { "To" } dd { (d.to.join(", ")) } }
        }
    }
}

/// The attempts, oldest first.
fn timeline(rec: &JobRecord) -> Markup {
    html! {
        @if rec.attempts.is_empty() {
            p.muted { "No attempt yet." }
        } @else {
            table.timeline {
                thead { tr {
                    th { "#" } th { "Started" } th { "Ended" } th { "Line" } th { "Outcome" }
                    th { "T.30 cause" } th { "Pages sent" } th { "Fax options" } th { "Detail" }
                } }
                tbody {
                    @for (i, a) in rec.attempts.iter().enumerate() {
                        tr class=[(i < rec.counted_from).then_some("before-retry")] {
                            td { (i + 1) @if i < rec.counted_from { "*" } }
                            td { (a.started.to_string()) }
                            td { @match a.ended { Some(e) => (e.to_string()), None => "—" } }
                            td { (a.modem.as_deref().unwrap_or("—")) }
                            td { @match a.cause { Some(c) => (format!("{c:?}")), None => "in progress" } }
                            td.cause {
                                @if let Some(c) = t30_cause(&a.detail) {
                                    (c.number()) ": " (c.meaning())
                                } @else { "—" }
                            }
                            td { (a.pages_sent) }
                            td.fax-options {
                                @if let Some(o) = &a.fax_options {
                                    (crate::mail::fax_options::summary(o)) br; small.muted { (o.why) }
                                } @else { "—" }
                            }
                            td { (a.detail) }
                        }
                    }
                }
            }
            @if rec.counted_from > 0 { p.muted { "* before an operator retry: no longer counted." } }
        }
    }
}

/// `?size=large` of a page image.
#[derive(Debug, Deserialize, Default)]
struct SizeQuery {
    size: Option<String>,
}

async fn page_image(
    State(c): State<Console>,
    axum::Extension(who): axum::Extension<Who>,
    Path((id, file)): Path<(String, String)>,
    Query(q): Query<SizeQuery>,
    headers: HeaderMap,
) -> Response {
    let id = match parse_id(&id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let Some(n) = file
        .strip_suffix(".png")
        .filter(|d| !d.is_empty() && d.len() <= 6 && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse::<u32>().ok())
    else {
        return text(StatusCode::NOT_FOUND, "pages are N.png");
    };
    let (_, rec) = match load_visible(&c, &who, id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let width = match q.size.as_deref() {
        Some("large") => thumbs::VIEW_WIDTH,
        _ => thumbs::THUMB_WIDTH,
    };
    thumbs::respond(c.spool.clone(), c.cfg.clone(), rec, n, width, &headers).await
}

/// `?back=` of a change: where to return (only the console's own pages).
#[derive(Debug, Deserialize, Default)]
pub struct BackQuery {
    back: Option<String>,
}

impl BackQuery {
    /// The page to return to after changing `id`.
    pub fn target(&self, id: &JobId) -> String {
        match self.back.as_deref() {
            Some("queue") => "/queue".into(),
            Some("received") => format!("/received/{}", id.base()),
            _ => format!("/jobs/{id}"),
        }
    }
}

#[derive(Clone, Copy)]
enum Change {
    Retry,
    Cancel,
}

async fn change(
    c: Console,
    who: Who,
    peer: Option<Peer>,
    id: String,
    back: BackQuery,
    what: Change,
) -> Response {
    if !who.is_admin() {
        return text(
            StatusCode::FORBIDDEN,
            "only an admin may retry or cancel jobs",
        );
    }
    let id = match parse_id(&id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let (area, _) = match load_visible(&c, &who, id.clone()).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if area == Area::Done {
        return text(
            StatusCode::CONFLICT,
            "the job is done: there is nothing to retry or cancel",
        );
    }
    let (sp, id2) = (c.spool.clone(), id.clone());
    let now = crate::spool::now();
    let r = blocking(move || match what {
        Change::Retry => sp.retry(&id2, now),
        Change::Cancel => sp.cancel(&id2, now),
    })
    .await;
    let word = match what {
        Change::Retry => "retry",
        Change::Cancel => "cancel",
    };
    match r {
        Some(Ok(_)) => {
            audit(&who, word, id.as_str(), peer.as_ref());
            Redirect::to(&back.target(&id)).into_response()
        }
        Some(Err(e @ SpoolError::WrongState { .. })) => text(StatusCode::CONFLICT, e.to_string()),
        Some(Err(e @ SpoolError::NotFound(_))) => text(
            StatusCode::CONFLICT,
            format!("{e}: it finished or moved meanwhile"),
        ),
        Some(Err(e)) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        None => text(StatusCode::INTERNAL_SERVER_ERROR, "spool task failed"),
    }
}

async fn retry(
    State(c): State<Console>,
    axum::Extension(who): axum::Extension<Who>,
    peer: Option<axum::Extension<Peer>>,
    Path(id): Path<String>,
    Query(back): Query<BackQuery>,
) -> Response {
    change(c, who, peer.map(|p| p.0), id, back, Change::Retry).await
}

async fn cancel(
    State(c): State<Console>,
    axum::Extension(who): axum::Extension<Who>,
    peer: Option<axum::Extension<Peer>>,
    Path(id): Path<String>,
    Query(back): Query<BackQuery>,
) -> Response {
    change(c, who, peer.map(|p| p.0), id, back, Change::Cancel).await
}

/// `POST /queue/purge` (admin): removes the finished jobs whose retention has passed.
async fn purge(
    State(c): State<Console>,
    axum::Extension(who): axum::Extension<Who>,
    peer: Option<axum::Extension<Peer>>,
) -> Response {
    if !who.is_admin() {
        return text(
            StatusCode::FORBIDDEN,
            "only an admin may purge finished jobs",
        );
    }
    let sp = c.spool.clone();
    let now = crate::spool::now();
    match blocking(move || sp.purge_archives(now, false)).await {
        Some(Ok(n)) => {
            audit(
                &who,
                "purge",
                &format!("{n} finished job(s)"),
                peer.as_ref().map(|p| &p.0),
            );
            Redirect::to("/queue").into_response()
        }
        Some(Err(e)) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        None => text(StatusCode::INTERNAL_SERVER_ERROR, "spool task failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t30_causes_are_read_from_the_attempt_detail() {
        let a = "T.30 cause 2 (NoResponse): the remote stopped answering commands";
        assert_eq!(t30_cause(a), Some(Cause::NoResponse));
        assert_eq!(t30_cause("T.30 cause 0 (Ok): all pages"), Some(Cause::Ok));
        for none in [
            "",
            "busy",
            "T.30 cause ",
            "T.30 cause x",
            "T.30 cause 999 (?)",
        ] {
            assert_eq!(t30_cause(none), None, "{none}");
        }
    }

    #[test]
    fn a_job_that_left_the_queue_is_not_listed_as_waiting() {
        // The dispatcher's figures may still list a job the console has just cancelled: the
        // queue page reads the records, and those must decide.
        let d = tempfile::tempdir().unwrap();
        let opts = crate::spool::SpoolOptions {
            min_free_bytes: 0,
            ..Default::default()
        };
        let sp = Spool::open(d.path(), opts).unwrap();
        let job = |tag: &str| {
            let mut inc = sp.begin(JobKind::FaxOut).unwrap();
            inc.write_file("message.eml", b"m").unwrap();
            let data = crate::job::data::sample(JobKind::FaxOut, tag);
            inc.commit(crate::spool::NewJob::new(data)).unwrap().id
        };
        let (kept, cancelled) = (job("+12125550123"), job("+12125550124"));
        sp.cancel(&cancelled, crate::spool::now()).unwrap();
        let ids = [
            kept.clone(),
            cancelled,
            "6b0b5a000000000000aa".parse().unwrap(),
        ];
        let listed: Vec<JobId> = read_waiting(&sp, &ids).into_iter().map(|r| r.id).collect();
        assert_eq!(listed, vec![kept]);
    }

    #[test]
    fn times_read_as_words() {
        let now = Timestamp(1_000_000_000);
        assert_eq!(when(now, now), "now");
        assert_eq!(when(Timestamp(now.0 + 90_000), now), "in 1 min");
        assert_eq!(when(Timestamp(now.0 - 12_000), now), "12 s ago");
        assert_eq!(when(Timestamp(now.0 + 3_720_000), now), "in 1 h 2 min");
    }

    fn record(data: JobData) -> JobRecord {
        JobRecord {
            version: crate::spool::RECORD_VERSION,
            id: "6b0b5a000000000000aa".parse().unwrap(),
            kind: data.kind(),
            state: JobState::Queued,
            created: Timestamp(0),
            epoch: Timestamp(0),
            next_due: Timestamp(0),
            priority: 127,
            attempts: Vec::new(),
            counted_from: 0,
            failure: None,
            finished: None,
            parent: None,
            child: None,
            data,
        }
    }

    #[test]
    fn a_scope_shows_fax_jobs_by_number_and_faxes_by_route() {
        let fax = record(crate::job::data::sample(JobKind::FaxOut, "x")); // to +12125550142
        let mut received = record(crate::job::data::sample(JobKind::FaxIn, "line1"));
        received.attempts.push(Attempt {
            started: Timestamp(0),
            ended: Some(Timestamp(1)),
            cause: Some(crate::job::CauseClass::Done),
            detail: "route sales → mail job 6b0b5a000000000000aa.1".into(),
            pages_sent: 0,
            modem: None,
            connected: false,
            fax_options: None,
        });
        let mail = record(crate::job::data::sample(JobKind::MailOut, "x"));
        let all = Scope::default();
        let mine = Scope {
            numbers: vec!["+12125550142".into()],
            routes: vec![],
        };
        let other = Scope {
            numbers: vec!["+12125550199".into()],
            routes: vec!["sales".into()],
        };
        for r in [&fax, &received, &mail] {
            assert!(visible(&all, r, None));
        }
        assert!(visible(&mine, &fax, None));
        assert!(!visible(&mine, &received, None));
        assert!(!visible(&mine, &mail, None));
        assert!(!visible(&other, &fax, None));
        assert!(visible(&other, &received, None));
        assert_eq!(route_of(&received, None).as_deref(), Some("sales"));
    }

    #[test]
    fn the_timeline_shows_each_attempts_fax_options_and_the_facts_the_last_calls_ecm() {
        let mut fax = record(crate::job::data::sample(JobKind::FaxOut, "x"));
        let opts = |attempt, ecm, why: &str| crate::job::FaxAttemptOptions {
            attempt,
            ecm,
            max_bps: 14400,
            v17: true,
            route: None,
            why: why.into(),
        };
        for (n, o) in [
            (
                1,
                opts(
                    1,
                    true,
                    "attempt 1: ECM on, up to 14400 bit/s (the defaults)",
                ),
            ),
            (
                2,
                opts(
                    2,
                    false,
                    "attempt 2: ECM off: attempt 2 is past [fax_options] disable_ecm_after_retry = 1",
                ),
            ),
        ] {
            fax.attempts.push(Attempt {
                started: Timestamp(n),
                ended: Some(Timestamp(n + 1)),
                cause: Some(crate::job::CauseClass::ProtocolError),
                detail: String::new(),
                pages_sent: 0,
                modem: Some("loopback".into()),
                connected: true,
                fax_options: Some(o),
            });
        }
        // A record from before the options were kept shows a dash.
        fax.attempts.push(Attempt {
            fax_options: None,
            ..fax.attempts[0].clone()
        });
        if let JobData::FaxOut(f) = &mut fax.data {
            f.result = Some(crate::job::FaxResult {
                ecm: Some(false),
                modulation: Some("V.29 9600".into()),
                speed_bps: Some(9600),
                ..Default::default()
            });
        }
        let html = timeline(&fax).into_string();
        assert!(html.contains("<th>Fax options</th>"), "{html}");
        assert!(html.contains("ECM on, at most 14400 bit/s"), "{html}");
        assert!(html.contains("ECM off, at most 14400 bit/s"), "{html}");
        assert!(
            html.contains("attempt 2 is past [fax_options] disable_ecm_after_retry = 1"),
            "{html}"
        );
        assert!(html.contains("<td class=\"fax-options\">—</td>"), "{html}");
        let facts = facts(&fax, None, None).into_string();
        assert!(facts.contains(", V.29 9600, no ECM"), "{facts}");
    }

    #[test]
    fn back_never_leaves_the_console() {
        let id: JobId = "6b0b5a000000000000aa.1".parse().unwrap();
        let t = |b: &str| {
            BackQuery {
                back: Some(b.into()),
            }
            .target(&id)
        };
        assert_eq!(t("queue"), "/queue");
        assert_eq!(t("received"), "/received/6b0b5a000000000000aa");
        assert_eq!(t("https://evil.example/"), "/jobs/6b0b5a000000000000aa.1");
    }
}
