//! Received faxes: `GET /received` (every `FaxIn` job in the spool — waiting to be routed,
//! done, failed — newest first, a page at a time, with caller, remote ID, pages, route and
//! the delivery state of its mail), `GET /received/{id}?page=n` (a viewer: one page at a time
//! as a larger image, download links, the mail's history) and the admin's
//! `POST /received/{id}/redeliver`.
//!
//! The list reads no record it does not show: queued faxes come from the dispatcher's
//! figures, archived ones from the archive directories' names (a received fax is the job
//! directory holding [`FAX_FILE`]: one `stat` each), and only the page's records are read.
//! A viewer limited to routes sees only the faxes of those routes, which needs the records:
//! that scan stops after [`SCOPED_SCAN`] faxes and the page says so.
//!
//! **Re-delivery** makes the mail go out again ([`redeliver`]): a fax whose routing failed is
//! retried (its mail is made again); a mail still queued is made due now; a failed mail is
//! retried; a delivered mail is copied into a new mail job, the fax job's next `Mail` child
//! (at most [`MAX_MAIL_COPIES`]), so the history of every delivery stays in the spool.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::html;

use super::jobs::{
    PER_PAGE, PageQuery, SCOPED_SCAN, blocking, last_cause, load_visible, pager, parse_id,
    reception_facts, route_of, routes_of, text, visible,
};
use super::{csrf_action, layout};
use crate::app::console::auth::Who;
use crate::app::console::{Console, Peer, audit};
use crate::delivery::mail_out;
use crate::job::{Child, JobData, Timestamp};
use crate::onramp::fax_in::FAX_FILE;
use crate::spool::{Area, JobId, JobKind, JobRecord, JobState, Spool, SpoolError};

/// Mail jobs one received fax may have (the first delivery and the re-deliveries).
pub const MAX_MAIL_COPIES: u16 = 20;

/// This area's routes.
pub fn routes() -> Router<Console> {
    Router::new()
        .route("/received", get(list))
        .route("/received/{id}", get(view))
        .route("/received/{id}/redeliver", post(redeliver_form))
}

/// Every received fax's id, newest first (queued ones from `queued`, archived ones by name).
fn fax_ids(spool: &Spool, queued: Vec<JobId>) -> Vec<JobId> {
    let mut ids = queued;
    for area in [Area::Done, Area::Failed] {
        if let Ok(found) = spool.ids(area) {
            ids.extend(found.into_iter().filter(|id| {
                id.child_number().is_none() && spool.job_dir(area, id).join(FAX_FILE).exists()
            }));
        }
    }
    ids.sort_by(|a, b| b.cmp(a));
    ids.dedup();
    ids
}

/// The fax's mail jobs, oldest first (the children are numbered in order; the first gap ends
/// the search).
pub fn mails_of(spool: &Spool, fax: &JobId) -> Vec<JobRecord> {
    let mut out = Vec::new();
    for n in 1..=MAX_MAIL_COPIES {
        let Ok(id) = Child::Mail(n).id_of(fax) else {
            break;
        };
        match spool.get(&id) {
            Ok((_, r)) => out.push(r),
            Err(_) => break,
        }
    }
    out
}

/// Where the fax's mail is, in words, and a class for the page (`ok`, `bad`, or none).
fn delivery(fax: &JobRecord, mails: &[JobRecord]) -> (String, &'static str) {
    match (mails.last(), fax.state) {
        (Some(m), _) => {
            let copies = if mails.len() > 1 {
                format!(" (delivery {} of {})", mails.len(), mails.len())
            } else {
                String::new()
            };
            match m.state {
                JobState::Done => (
                    format!(
                        "delivered {}{copies}",
                        m.finished.map(|t| t.to_string()).unwrap_or_default()
                    ),
                    "ok",
                ),
                JobState::Queued if m.attempts.is_empty() => {
                    (format!("queued for delivery{copies}"), "")
                }
                JobState::Queued => (
                    format!("waiting to retry: {}{copies}", last_cause(m)),
                    "bad",
                ),
                JobState::Running => (format!("being delivered{copies}"), ""),
                JobState::Failed => (format!("not delivered: {}{copies}", last_cause(m)), "bad"),
            }
        }
        (None, JobState::Queued | JobState::Running) => ("waiting to be routed".into(), ""),
        (None, JobState::Failed) => (format!("not mailed: {}", last_cause(fax)), "bad"),
        (None, JobState::Done) => ("its mail is no longer in the spool".into(), "bad"),
    }
}

fn received_at(rec: &JobRecord) -> String {
    match &rec.data {
        JobData::FaxIn(d) => Timestamp(
            u64::try_from(d.reception.received)
                .unwrap_or(0)
                .saturating_mul(1000),
        )
        .to_string(),
        _ => String::new(),
    }
}

async fn list(
    State(c): State<Console>,
    axum::Extension(who): axum::Extension<Who>,
    Query(q): Query<PageQuery>,
) -> Response {
    let page = q.number();
    let offset = (page - 1).saturating_mul(PER_PAGE);
    let queued: Vec<JobId> = c
        .live
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .queued_page(|k, _| k == JobKind::FaxIn, 0, usize::MAX)
        .1
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    let (sp, scope, routes) = (c.spool.clone(), who.user.scope.clone(), routes_of(&c));
    let routes2 = routes.clone();
    let listed = blocking(move || {
        let ids = fax_ids(&sp, queued);
        let read = |id: &JobId| sp.get(id).ok().map(|(_, r)| r);
        let with_mail = |r: JobRecord| {
            let m = mails_of(&sp, &r.id);
            (r, m)
        };
        if scope.is_all() {
            let total = ids.len();
            let page: Vec<_> = ids
                .iter()
                .skip(offset)
                .take(PER_PAGE)
                .filter_map(read)
                .map(with_mail)
                .collect();
            return (page, total, false);
        }
        let capped = ids.len() > SCOPED_SCAN;
        let mut seen = 0;
        let mut page = Vec::new();
        for id in ids.iter().take(SCOPED_SCAN) {
            let Some(r) = read(id) else { continue };
            if visible(&scope, &r, routes2.as_ref()) {
                if seen >= offset && page.len() < PER_PAGE {
                    page.push(with_mail(r));
                }
                seen += 1;
            }
        }
        (page, seen, capped)
    })
    .await;
    let Some((rows, total, capped)) = listed else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "spool task failed");
    };
    let body = html! {
        h1 { "Received faxes" }
        p.muted {
            (total) " received fax(es) in the spool"
            @if capped { " (only the newest " (SCOPED_SCAN) " were looked at for your routes)" }
            "."
        }
        @if rows.is_empty() {
            p { "No fax received." }
        } @else {
            table.received {
                thead { tr {
                    th { "Received" } th { "Caller" } th { "Remote ID" } th { "Pages" }
                    th { "Route" } th { "State" } th { "Delivery" } th {}
                } }
                tbody {
                    @for (r, mails) in &rows {
                        @if let JobData::FaxIn(d) = &r.data {
                            @let (words, class) = delivery(r, mails);
                            tr id={ "fax-" (r.id) } {
                                td { (received_at(r)) }
                                td { (d.reception.caller.as_deref().unwrap_or("—")) }
                                td { (d.reception.remote_id.as_deref().unwrap_or("—")) }
                                td { (d.reception.pages) }
                                td { (route_of(r, routes.as_ref()).unwrap_or_else(|| "—".into())) }
                                td class=(r.state.name()) { (r.state.name()) }
                                td class=(class) { (words) }
                                td { a href={ "/received/" (r.id) } { "Open" } }
                            }
                        }
                    }
                }
            }
        }
        (pager("/received", page, total))
    };
    layout("Received faxes", "/received", &who, body).into_response()
}

async fn view(
    State(c): State<Console>,
    axum::Extension(who): axum::Extension<Who>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    let id = match parse_id(&id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let (_, rec) = match load_visible(&c, &who, id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let JobData::FaxIn(d) = &rec.data else {
        return text(StatusCode::NOT_FOUND, "not a received fax");
    };
    let pages = d.reception.pages.max(1);
    let n = u32::try_from(q.number()).unwrap_or(u32::MAX).min(pages);
    let (sp, fid) = (c.spool.clone(), rec.id.clone());
    let mails = blocking(move || mails_of(&sp, &fid))
        .await
        .unwrap_or_default();
    let (words, class) = delivery(&rec, &mails);
    let routes = routes_of(&c);
    let base = format!("/received/{}", rec.id);
    let body = html! {
        h1 { "Received fax " code { (rec.id) } }
        (reception_facts(&rec, routes.as_ref()))
        p { "Delivery: " span class=(class) { (words) } }
        p.downloads {
            a href={ "/api/v1/received/" (rec.id) "/document.tif" } download { "Download TIFF" }
            " · "
            a href={ "/api/v1/received/" (rec.id) "/document.pdf" } download { "Download PDF" }
            " · "
            a href={ "/jobs/" (rec.id) } { "Job details" }
        }
        @if who.is_admin() {
            form.inline method="post" action=(csrf_action(&format!("{base}/redeliver"), &who)) {
                button type="submit" id="redeliver" { "Deliver again" }
            }
        }
        nav.pager {
            @if n > 1 { a href={ (base) "?page=" (n - 1) } rel="prev" { "← page " (n - 1) } " " }
            "page " (n) " of " (pages)
            @if n < pages { " " a href={ (base) "?page=" (n + 1) } rel="next" { "page " (n + 1) " →" } }
        }
        figure.page {
            img src={ "/jobs/" (rec.id) "/pages/" (n) ".png?size=large" } alt={ "page " (n) } width=(crate::app::console::thumbs::VIEW_WIDTH);
        }
        @if !mails.is_empty() {
            h2 { "Mail" }
            table.children {
                thead { tr { th { "Job" } th { "To" } th { "State" } th { "Last cause" } } }
                tbody {
                    @for m in &mails {
                        tr {
                            td { a href={ "/jobs/" (m.id) } { code { (m.id) } } }
                            td { @if let JobData::MailOut(md) = &m.data { (md.envelope.to.join(", ")) } }
                            td { (m.state.name()) }
                            td { (last_cause(m)) }
                        }
                    }
                }
            }
        }
    };
    layout(&format!("Fax {}", rec.id), "/received", &who, body).into_response()
}

/// Why a fax could not be re-delivered.
#[derive(Debug, thiserror::Error)]
pub enum RedeliverError {
    /// Not now: the fax or its mail is in the middle of something, or the limit is reached.
    #[error("{0}")]
    Conflict(String),
    /// The spool failed.
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

/// Makes fax `id`'s mail go out again (see the module documentation); returns what was done,
/// in words. Blocking.
pub fn redeliver(spool: &Spool, fax: &JobRecord, now: Timestamp) -> Result<String, RedeliverError> {
    let busy = |s: &str| Err(RedeliverError::Conflict(s.into()));
    let mails = mails_of(spool, &fax.id);
    let Some(last) = mails.last() else {
        return match fax.state {
            JobState::Failed => {
                spool.retry(&fax.id, now)?;
                Ok("the fax is routed again; its mail is made anew".into())
            }
            JobState::Queued | JobState::Running => {
                busy("the fax is still being routed: its mail goes out when that is done")
            }
            JobState::Done => busy("the fax's mail is no longer in the spool"),
        };
    };
    match last.state {
        JobState::Queued => {
            spool.retry(&last.id, now)?;
            Ok(format!("mail job {} is due now", last.id))
        }
        JobState::Failed => {
            spool.retry(&last.id, now)?;
            Ok(format!("mail job {} is tried again", last.id))
        }
        JobState::Running => busy("the mail is being delivered right now"),
        JobState::Done => {
            let next = u16::try_from(mails.len() + 1).unwrap_or(u16::MAX);
            if next > MAX_MAIL_COPIES {
                return busy("this fax has been delivered as often as the console allows");
            }
            let data =
                mail_out::data_of(last).map_err(|e| RedeliverError::Conflict(e.to_string()))?;
            let path = spool.payload_path(&last.id, &data.file)?;
            let message = crate::read_limit::read(&path, mail_out::MAX_MESSAGE_BYTES)
                .map_err(|e| SpoolError::io(&path, e.into()))?;
            let rec = mail_out::queue(spool, &data, &message, Some((&fax.id, Child::Mail(next))))?;
            Ok(format!("a copy of the mail is queued as job {}", rec.id))
        }
    }
}

async fn redeliver_form(
    State(c): State<Console>,
    axum::Extension(who): axum::Extension<Who>,
    peer: Option<axum::Extension<Peer>>,
    Path(id): Path<String>,
) -> Response {
    if !who.is_admin() {
        return text(
            StatusCode::FORBIDDEN,
            "only an admin may deliver a fax again",
        );
    }
    let id = match parse_id(&id) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let (_, rec) = match load_visible(&c, &who, id.clone()).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if rec.kind != JobKind::FaxIn {
        return text(StatusCode::NOT_FOUND, "not a received fax");
    }
    let sp = c.spool.clone();
    let now = crate::spool::now();
    match blocking(move || redeliver(&sp, &rec, now)).await {
        Some(Ok(done)) => {
            audit(&who, "redeliver", id.as_str(), peer.as_ref().map(|p| &p.0));
            tracing::info!(job = %id, "re-delivery: {done}");
            Redirect::to(&format!("/received/{id}")).into_response()
        }
        Some(Err(RedeliverError::Conflict(m))) => text(StatusCode::CONFLICT, m),
        Some(Err(e)) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        None => text(StatusCode::INTERNAL_SERVER_ERROR, "spool task failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{MailEnvelope, MailOutData, Purpose};
    use crate::spool::SpoolOptions;

    fn fax(spool: &Spool) -> JobRecord {
        let data = match crate::job::data::sample(JobKind::FaxIn, "line1") {
            JobData::FaxIn(d) => d,
            _ => unreachable!(),
        };
        crate::onramp::fax_in::queue_fax(spool, &data, b"II*\0").unwrap()
    }

    fn mail(spool: &Spool, fax: &JobId, n: u16) -> JobRecord {
        let data = MailOutData {
            envelope: MailEnvelope {
                from: "fax@localhost".into(),
                to: vec!["a@b.example".into()],
                envid: None,
            },
            purpose: Purpose::Fax {
                fax_job: Some(fax.clone()),
            },
            subject: "Fax".into(),
            file: mail_out::MESSAGE_FILE.into(),
        };
        mail_out::queue(
            spool,
            &data,
            b"Subject: Fax\r\n\r\nx\r\n",
            Some((fax, Child::Mail(n))),
        )
        .unwrap()
    }

    #[test]
    fn a_delivered_fax_is_copied_into_its_next_mail_job() {
        let d = tempfile::tempdir().unwrap();
        let spool = Spool::open(&d.path().join("s"), SpoolOptions::default()).unwrap();
        let now = crate::spool::now();
        let f = fax(&spool);
        // Still being routed: nothing to send again.
        assert!(matches!(
            redeliver(&spool, &f, now),
            Err(RedeliverError::Conflict(_))
        ));
        let f = spool.finish(&f.id, now, crate::spool::Final::Done).unwrap();
        let m1 = mail(&spool, &f.id, 1);
        // Queued: made due now, no copy.
        let said = redeliver(&spool, &f, now).unwrap();
        assert!(said.contains("due now"), "{said}");
        assert_eq!(mails_of(&spool, &f.id).len(), 1);
        spool
            .finish(&m1.id, now, crate::spool::Final::Done)
            .unwrap();
        // Delivered: a copy with the same message, as child 2.
        let said = redeliver(&spool, &f, now).unwrap();
        let mails = mails_of(&spool, &f.id);
        assert_eq!(mails.len(), 2, "{said}");
        assert_eq!(mails[1].id, Child::Mail(2).id_of(&f.id).unwrap());
        assert_eq!(mails[1].state, JobState::Queued);
        let copy = std::fs::read(
            spool
                .payload_path(&mails[1].id, mail_out::MESSAGE_FILE)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(copy, b"Subject: Fax\r\n\r\nx\r\n");
        // The list finds the archived fax by its file, newest first.
        let ids = fax_ids(&spool, Vec::new());
        assert_eq!(ids, vec![f.id.clone()]);
        let (words, _) = delivery(&f, &mails);
        assert!(
            words.contains("queued for delivery (delivery 2 of 2)"),
            "{words}"
        );
    }
}
