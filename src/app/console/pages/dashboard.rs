//! The dashboard (`GET /`) and its event stream (`GET /events`): each line's state and the
//! call in progress (phase, page N of M, speed, remote ID), the queue counts by kind, the
//! failures of the last 24 h and the recently finished jobs.
//!
//! Everything shown comes from memory — the modem board the line drivers keep up to date
//! ([`crate::app::control::CallWatch`]) and the dispatcher's [`Figures`] — never from the
//! spool, so the page and the stream cost the same with ten jobs or ten thousand.
//!
//! The page is complete as served (server-side first render); `static/console.js` then opens
//! an `EventSource` on `/events` and updates it in place. The stream sends one JSON document
//! ([`Live`]) at once and then whenever it differs from the last one sent: the in-memory state
//! is looked at every [`POLL`], so a call's phase and page changes show within that, and
//! nothing is sent while nothing changes (SSE comments keep the connection alive meanwhile,
//! WHATWG HTML §9.2 "Server-sent events"). The stream ends when the daemon stops, so an open
//! browser never holds up a shutdown.
//!
//! Users limited to some fax numbers see every line's state and phase, but a call's number,
//! remote ID and job, and a line's last call and last error, only for their numbers.
//!
//! [`Figures`]: crate::app::dispatch::Figures

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Extension, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::stream::{self, Stream};
use maud::{Markup, html};
use serde::Serialize;

use crate::app::console::auth::{Scope, Who};
use crate::app::console::{Console, pages};
use crate::app::control::modems_now;
use crate::app::dispatch::{FAILURES_LISTED, Failures};
use crate::app::status::{CallProgress, Direction, KindCounts, ModemStatus, RecentJob};
use crate::daemon::Shutdown;
use crate::scheduler::Timestamp;
use crate::spool::JobKind;

/// How often the event stream looks at the in-memory state (ours: a phase or page change
/// shows within this; a look costs two short lock holds and one small JSON document).
pub const POLL: Duration = Duration::from_millis(250);
/// Interval of the stream's keep-alive comments (ours: below common proxy idle timeouts). A
/// client that went away is noticed at the latest at the second write after it left.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Event streams open at once at most (ours; and never more than half of `[http]
/// max_connections`): each holds a connection for as long as the page is open. Past it a new
/// stream is refused `503` with `Retry-After`, so the pages and the API stay reachable.
pub const MAX_EVENT_STREAMS: usize = 16;

/// Streams open now (one console per daemon process).
static OPEN_STREAMS: AtomicUsize = AtomicUsize::new(0);

/// One of the [`MAX_EVENT_STREAMS`] places, given back when the stream is dropped (the
/// client left, or the daemon stops).
struct StreamSlot;

impl StreamSlot {
    fn take(limit: usize) -> Option<StreamSlot> {
        OPEN_STREAMS
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| StreamSlot)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        OPEN_STREAMS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The job kinds, in the order the queue table lists them (all four always shown, so the
/// page's cells keep their places as counts come and go).
pub const KINDS: [JobKind; 4] = [
    JobKind::Message,
    JobKind::FaxOut,
    JobKind::MailOut,
    JobKind::FaxIn,
];

/// This area's routes.
pub fn routes() -> Router<Console> {
    Router::new()
        .route("/", get(dashboard))
        .route("/events", get(events))
}

/// One line as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineView {
    /// `[[modem]] name`, or `loopback`.
    pub name: String,
    /// `send`, `receive` or `both`.
    pub role: String,
    /// `idle`, `sending`, `receiving`, `offline`.
    pub state: &'static str,
    /// The call in progress.
    pub call: Option<CallProgress>,
    /// The call in progress in words (empty: none).
    pub call_text: String,
    /// The last call in words (empty: none known).
    pub last_call: String,
    /// The last error (empty: none).
    pub last_error: String,
}

/// A finished job as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobView {
    /// Its id.
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// `done` or `failed`.
    pub state: String,
    /// When it finished, UTC.
    pub finished: String,
    /// The last attempt's outcome, or why it was given up.
    pub detail: String,
}

/// The failures of the last 24 h.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailuresView {
    /// How many (a lower bound when `more`).
    pub count: usize,
    /// More failed than the daemon counts.
    pub more: bool,
    /// The newest, newest first (empty for users limited to some numbers).
    pub latest: Vec<JobView>,
}

/// The document the event stream sends, and what the page is first rendered from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Live {
    /// The lines, in configuration order.
    pub lines: Vec<LineView>,
    /// Queue counts by kind name, every kind present.
    pub queue: BTreeMap<String, KindCounts>,
    /// Failures of the last 24 h.
    pub failures: FailuresView,
    /// The most recently finished jobs, done or failed, newest first (empty for users limited
    /// to some numbers).
    pub recent: Vec<JobView>,
}

/// PURE: line `m` as `scope` may see it.
pub fn line_view(m: &ModemStatus, scope: &Scope) -> LineView {
    let call = m.call.clone().map(|mut c| {
        let mine = c.direction == Direction::Out && scope.number(&c.number);
        if !mine {
            // Phase, page and speed say nothing of whom: only those stay.
            c.number.clear();
            c.remote_id = None;
            c.job = None;
        }
        c
    });
    let last_call = m
        .last_call
        .as_ref()
        .filter(|c| scope.is_all() || (c.direction == "out" && scope.number(&c.number)))
        .map(|c| {
            format!(
                "{} {} {}, {} pages, {}",
                c.ended, c.direction, c.number, c.pages, c.cause
            )
        })
        .unwrap_or_default();
    LineView {
        name: m.name.clone(),
        role: m.role.clone(),
        state: m.state.word(),
        call_text: call
            .as_ref()
            .map(CallProgress::describe)
            .unwrap_or_default(),
        call,
        last_call,
        last_error: if scope.is_all() {
            m.last_error.clone().unwrap_or_default()
        } else {
            String::new()
        },
    }
}

/// PURE: the whole document from the board, the queue counts, the failures and the recent
/// jobs.
pub fn live_view(
    modems: &[ModemStatus],
    counts: &BTreeMap<String, KindCounts>,
    failures: &Failures,
    recent: &[RecentJob],
    scope: &Scope,
) -> Live {
    let mut queue: BTreeMap<String, KindCounts> = KINDS
        .iter()
        .map(|k| (k.name().to_owned(), KindCounts::default()))
        .collect();
    for (k, c) in counts {
        queue.insert(k.clone(), *c);
    }
    let shown = |r: &RecentJob| JobView {
        id: r.id.clone(),
        kind: r.kind.clone(),
        state: r.state.clone(),
        finished: r.finished.to_string(),
        detail: r.detail.clone(),
    };
    Live {
        lines: modems.iter().map(|m| line_view(m, scope)).collect(),
        queue,
        failures: FailuresView {
            count: failures.count,
            more: failures.more,
            latest: if scope.is_all() {
                failures
                    .latest
                    .iter()
                    .take(FAILURES_LISTED)
                    .map(shown)
                    .collect()
            } else {
                Vec::new()
            },
        },
        recent: if scope.is_all() {
            recent.iter().map(shown).collect()
        } else {
            Vec::new()
        },
    }
}

/// The document now, from memory.
fn live_now(c: &Console, who: &Who, now: Timestamp) -> Live {
    let modems = modems_now(&c.board);
    let (counts, failures, recent) = {
        let f = c.live.lock().unwrap_or_else(|p| p.into_inner());
        (f.counts(), f.failures(now), f.recent())
    };
    live_view(&modems, &counts, &failures, &recent, &who.user.scope)
}

/// The words a kind's row is labelled with.
fn kind_label(k: JobKind) -> &'static str {
    match k {
        JobKind::Message => "messages to split",
        JobKind::FaxOut => "faxes to send",
        JobKind::MailOut => "mails to deliver",
        JobKind::FaxIn => "received faxes to route",
    }
}

fn dash(s: &str) -> &str {
    if s.is_empty() { "—" } else { s }
}

/// PURE: the dashboard's body for `live`.
pub fn body(live: &Live) -> Markup {
    html! {
        h1 { "Dashboard" }
        p #live-status .muted data-live="off" { "Live updates start once the page has loaded." }
        section #lines {
            h2 { "Lines" }
            table #lines-table {
                thead { tr {
                    th { "Line" } th { "Role" } th { "State" } th { "Call in progress" }
                    th { "Last call" } th { "Last error" }
                } }
                tbody {
                    @if live.lines.is_empty() {
                        tr { td colspan="6" .muted { "No lines are configured." } }
                    }
                    @for l in &live.lines {
                        tr data-line=(l.name) {
                            td { (l.name) }
                            td { (l.role) }
                            td data-field="state" class={ "state state-" (l.state) } { (l.state) }
                            td data-field="call" { (dash(&l.call_text)) }
                            td data-field="last-call" .muted { (dash(&l.last_call)) }
                            td data-field="last-error" .bad { (l.last_error) }
                        }
                    }
                }
            }
        }
        section #queue {
            h2 { "Queue" }
            table #queue-table {
                thead { tr { th { "Kind" } th { "Waiting" } th { "Running" } } }
                tbody {
                    @for k in KINDS {
                        @let c = live.queue.get(k.name()).copied().unwrap_or_default();
                        tr data-kind=(k.name()) {
                            td { (kind_label(k)) " " span.muted { "(" (k.name()) ")" } }
                            td data-field="queued" { (c.queued) }
                            td data-field="running" { (c.running) }
                        }
                    }
                }
            }
        }
        section #failures {
            h2 { "Failures of the last 24 h" }
            p {
                span #failures-count { (live.failures.count) @if live.failures.more { "+" } }
                " failed"
            }
            table #failures-table {
                thead { tr { th { "Failed" } th { "Kind" } th { "Job" } th { "Why" } } }
                tbody #failures-list {
                    @for f in &live.failures.latest {
                        tr data-job=(f.id) {
                            td { (f.finished) } td { (f.kind) } td { code { (f.id) } }
                            td { (f.detail) }
                        }
                    }
                }
            }
        }
        section #recent {
            h2 { "Recently finished" }
            table #recent-table {
                thead { tr {
                    th { "Finished" } th { "Kind" } th { "State" } th { "Job" } th { "Outcome" }
                } }
                tbody #recent-list {
                    @for j in &live.recent {
                        tr data-job=(j.id) {
                            td { (j.finished) } td { (j.kind) }
                            td class=(if j.state == "done" { "ok" } else { "bad" }) { (j.state) }
                            td { code { (j.id) } } td { (j.detail) }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /`: the dashboard.
async fn dashboard(State(c): State<Console>, Extension(who): Extension<Who>) -> Response {
    let live = live_now(&c, &who, crate::spool::now());
    pages::layout("Dashboard", "/", &who, body(&live)).into_response()
}

/// What one event stream holds between looks.
struct Watch {
    _slot: StreamSlot,
    console: Console,
    who: Who,
    last: Option<String>,
    tick: tokio::time::Interval,
    shutdown: Shutdown,
}

/// PURE: the next document to send, if `doc` differs from the `last` one sent.
pub fn changed(last: &mut Option<String>, doc: String) -> Option<String> {
    if last.as_deref() == Some(doc.as_str()) {
        return None;
    }
    *last = Some(doc.clone());
    Some(doc)
}

/// The stream of [`Live`] documents for `who`: one now, then one per change, until shutdown.
fn live_stream(
    c: Console,
    who: Who,
    slot: StreamSlot,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let shutdown = c.shutdown.clone();
    let w = Watch {
        _slot: slot,
        console: c,
        who,
        last: None,
        tick,
        shutdown,
    };
    stream::unfold(w, |mut w| async move {
        loop {
            if w.shutdown.is_stopping() {
                return None;
            }
            let live = live_now(&w.console, &w.who, crate::spool::now());
            let doc = serde_json::to_string(&live).unwrap_or_default();
            if let Some(doc) = changed(&mut w.last, doc) {
                return Some((Ok(Event::default().data(doc)), w));
            }
            tokio::select! {
                _ = w.tick.tick() => {}
                _ = w.shutdown.stopped() => return None,
            }
        }
    })
}

/// `GET /events`: the dashboard's Server-Sent Events.
async fn events(State(c): State<Console>, Extension(who): Extension<Who>) -> Response {
    let limit = MAX_EVENT_STREAMS.min(c.cfg.http.max_connections / 2).max(1);
    let Some(slot) = StreamSlot::take(limit) else {
        tracing::warn!("console: event stream refused: {limit} are open already");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "10")],
            "too many live views are open: close one, or reload this page later",
        )
            .into_response();
    };
    Sse::new(live_stream(c, who, slot))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::status::{LastCall, ModemState};
    use crate::fax::t30::{Activity, Modulation, Progress};

    fn line(name: &str) -> ModemStatus {
        ModemStatus::idle(name, "send")
    }

    fn sending() -> ModemStatus {
        let mut m = line("loopback");
        m.state = ModemState::Sending;
        let mut c = CallProgress::dialling("J7", "+12125550123");
        c.update(&Progress {
            activity: Activity::SendingPage,
            page: Some(1),
            pages_total: Some(2),
            modulation: Some(Modulation::V17_14400),
            remote_id: Some("+1 212 555 0123".into()),
        });
        m.call = Some(c);
        m.last_error = Some("t: job J6: busy".into());
        m.last_call = Some(LastCall {
            ended: Timestamp(0),
            direction: "out".into(),
            job: "J6".into(),
            number: "+12125550199".into(),
            pages: 1,
            cause: "0 ok".into(),
        });
        m
    }

    fn render(live: &Live) -> String {
        body(live).into_string()
    }

    #[test]
    fn the_page_shows_each_line_the_call_and_every_queue_kind() {
        let mut counts = BTreeMap::new();
        counts.insert(
            "fax-out".to_string(),
            KindCounts {
                queued: 2,
                running: 1,
            },
        );
        let failures = Failures {
            count: 1,
            more: false,
            latest: vec![RecentJob {
                id: "J5".into(),
                kind: "fax-out".into(),
                state: "failed".into(),
                finished: Timestamp(0),
                detail: "<b>busy</b>".into(),
            }],
        };
        let recent = [RecentJob {
            id: "J4".into(),
            kind: "fax-out".into(),
            state: "done".into(),
            finished: Timestamp(0),
            detail: "T.30 cause 0 (Ok)".into(),
        }];
        let live = live_view(
            &[sending(), line("fax0")],
            &counts,
            &failures,
            &recent,
            &Scope::default(),
        );
        assert_eq!(live.queue.len(), 4);
        assert_eq!(live.queue["message"], KindCounts::default());
        let html = render(&live);
        assert!(html.contains(r#"<tr data-line="loopback">"#), "{html}");
        assert!(
            html.contains(
                "sending page, page 1 of 2, 14400 bit/s, to +12125550123 (remote +1 212 555 0123), job J7"
            ),
            "{html}"
        );
        assert!(html.contains(r#"class="state state-idle">idle<"#), "{html}");
        assert!(html.contains(r#"<tr data-kind="fax-out">"#), "{html}");
        assert!(html.contains(r#"<td data-field="queued">2</td>"#), "{html}");
        assert!(
            html.contains(r#"<tr data-job="J4"><td>1970-01-01 00:00:00 UTC</td><td>fax-out</td><td class="ok">done</td>"#),
            "{html}"
        );
        // Text from jobs is escaped.
        assert!(html.contains("&lt;b&gt;busy"), "{html}");
        assert!(!html.contains("<b>busy"), "{html}");
        let json = serde_json::to_value(&live).unwrap();
        assert_eq!(json["lines"][0]["call"]["phase"], "sending page");
        assert_eq!(json["lines"][0]["call"]["page"], 1);
        assert_eq!(json["lines"][0]["call"]["pages_total"], 2);
        assert_eq!(json["lines"][1]["state"], "idle");
        assert_eq!(json["queue"]["fax-out"]["running"], 1);
        assert_eq!(json["failures"]["count"], 1);
    }

    #[test]
    fn a_user_limited_to_other_numbers_sees_phases_but_not_whom() {
        let other = Scope {
            numbers: vec!["+4930123".into()],
            routes: vec![],
        };
        let v = line_view(&sending(), &other);
        let c = v.call.unwrap();
        assert_eq!((c.page, c.pages_total), (Some(1), Some(2)));
        assert_eq!(c.number, "");
        assert_eq!((c.remote_id, c.job), (None, None));
        assert!(!v.call_text.contains("+1"), "{}", v.call_text);
        assert_eq!(v.last_call, "");
        assert_eq!(v.last_error, "");
        let mine = Scope {
            numbers: vec!["+12125550123".into()],
            routes: vec![],
        };
        let v = line_view(&sending(), &mine);
        assert!(v.call_text.contains("job J7"), "{}", v.call_text);
        // The last call went elsewhere.
        assert_eq!(v.last_call, "");
        let live = live_view(
            &[],
            &BTreeMap::new(),
            &Failures {
                count: 3,
                more: true,
                latest: vec![],
            },
            &[],
            &other,
        );
        assert!(render(&live).contains(r#"<span id="failures-count">3+</span>"#));
    }

    #[test]
    fn stream_places_are_bounded_and_given_back() {
        // Other tests of this process open no streams: the count starts at 0 here.
        let limit = 3;
        let held: Vec<StreamSlot> = (0..limit).map_while(|_| StreamSlot::take(limit)).collect();
        assert_eq!(held.len(), limit);
        assert!(StreamSlot::take(limit).is_none(), "one more is refused");
        drop(held);
        assert!(
            StreamSlot::take(limit).is_some(),
            "places come back when streams end"
        );
        assert_eq!(OPEN_STREAMS.load(Ordering::Acquire), 0);
    }

    #[test]
    fn only_a_changed_document_is_sent() {
        let mut last = None;
        assert_eq!(changed(&mut last, "a".into()).as_deref(), Some("a"));
        assert_eq!(changed(&mut last, "a".into()), None);
        assert_eq!(changed(&mut last, "b".into()).as_deref(), Some("b"));
        assert_eq!(changed(&mut last, "a".into()).as_deref(), Some("a"));
    }
}
