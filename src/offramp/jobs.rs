//! Offramp jobs: a committed `Message` becomes one `FaxOut` job per recipient, and when every
//! recipient of the message is final, ONE report listing each goes back as a `MailOut` job.
//!
//! The pure half ([`fax_jobs`], [`outcome_of`], [`cause_of`], [`report`]) decides; the thin
//! spool shell ([`split_message`], [`on_fax_final`]) reads and commits jobs. Idempotence after
//! a crash comes from the spool's deterministic child ids: each child job is committed in its
//! typed relation to the message ([`Child`]: a recipient's fax, the report, an MDN, a delay
//! notice, the copy for `gateway.admin` of mail to the postmaster), whose id is fixed;
//! committing an id that exists fails with `Exists`, which here means "done before", so a
//! report is never sent twice even when two fax jobs finish at the same moment.
//!
//! The split renders the message once (under the `[offramp]` time and work budget): that
//! proves every part renders, so a bad attachment fails the message before any call is made
//! (RFC 3965 §3), and the body pages it made are kept in each `FaxOut` job ([`PAGES_FILE`]).
//! Every attempt of every recipient reuses them; the fax worker adds only the cover page and
//! the header line (time of sending and "page n of m", as HylaFAX stamps it), so a line is
//! never held while a document renders.

pub use crate::job::{FaxOutData, FaxResult, MailEnvelope, ReportKind};

use super::causes::{Action, Cause};
use super::dsn::{self, FaxSummary, Notify, RecipientOutcome, Report, Ret};
use super::options::SenderOptions;
use crate::job::Child;
use crate::job::{JobData, MailOutData, Purpose};
use crate::scheduler::{CauseClass, GiveUp, Timestamp};
use crate::smtp::session::{self as smtp, Envelope};
use crate::spool::{Final, JobId, JobKind, JobRecord, JobState, NewJob, Spool, SpoolError};

/// Payload file of a `Message` job, as the SMTP listener writes it.
pub use crate::smtp::MESSAGE_FILE;
/// Payload file of a `FaxOut` job holding its body pages as rendered at split.
pub const PAGES_FILE: &str = "pages.tif";
/// Payload file of a report `MailOut` job.
pub const MAIL_FILE: &str = "mail.eml";
/// Recipients per message handled at most, so that the child number ranges stay apart
/// (`smtp.max_recipients` defaults to 100; a message with more is refused, not truncated).
pub const MAX_RECIPIENTS: usize = Child::MAX_RECIPIENTS as usize;
/// Largest `message.eml` read back (ours; the listener's SIZE limit is far below).
pub const MAX_MESSAGE_BYTES: u64 = 256 * 1024 * 1024;
pub use crate::job::MessageData;

/// Why the offramp could not process a job; the operator's or the environment's fault (the
/// sender's faults become reports, not errors).
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    /// The spool failed (disk, damaged record); temporary ones are retried by the caller.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// A job's `data` is not what this module wrote or the listener writes.
    #[error("job {id}: its data is not a {what}: {detail}")]
    BadData {
        /// The job.
        id: JobId,
        /// Expected shape.
        what: &'static str,
        /// serde's complaint.
        detail: String,
    },
    /// The job is of another kind.
    #[error("job {0} is not a {1} job")]
    WrongKind(JobId, &'static str),
    /// Mail for the postmaster came back through this gateway (its own `Received:` twice):
    /// `gateway.admin` leads back here (e.g. `postmaster@` one of our domains with the relay
    /// pointing at us). Not forwarded again; the operator must fix the configuration.
    #[error(
        "job {0}: mail loop: postmaster mail already passed this gateway; gateway.admin must not lead back here"
    )]
    MailLoop(JobId),
    /// Rendering was cancelled (the gateway is stopping): the message stays queued and is split
    /// at the next start.
    #[error("job {0}: rendering cancelled; the message is split at the next start")]
    Interrupted(JobId),
    /// `message.eml` could not be read.
    #[error("message file of job {id}: {source}")]
    Read {
        /// The job.
        id: JobId,
        /// Why.
        source: std::io::Error,
    },
}

/// RFC 3461 NOTIFY of a recipient as the listener stored it.
pub fn notify_of(r: &smtp::Recipient) -> Notify {
    match &r.notify {
        None => Notify::UNSPECIFIED,
        Some(list) => {
            let mut n = Notify {
                given: true,
                ..Notify::UNSPECIFIED
            };
            for v in list {
                match v {
                    smtp::Notify::Never => {}
                    smtp::Notify::Success => n.success = true,
                    smtp::Notify::Failure => n.failure = true,
                    smtp::Notify::Delay => n.delay = true,
                }
            }
            n
        }
    }
}

/// RFC 3461 RET of the envelope.
pub fn ret_of(e: &Envelope) -> Ret {
    match e.ret {
        None => Ret::Unspecified,
        Some(smtp::Ret::Full) => Ret::Full,
        Some(smtp::Ret::Hdrs) => Ret::Hdrs,
    }
}

/// The `FaxOut` jobs for a message whose document rendered into `pages_total` pages.
pub fn fax_jobs(
    message: &JobId,
    env: &Envelope,
    options: &SenderOptions,
    pages_total: u32,
) -> Vec<FaxOutData> {
    env.recipients
        .iter()
        .take(MAX_RECIPIENTS)
        .enumerate()
        .map(|(i, r)| FaxOutData {
            message: message.clone(),
            recipient: (i + 1) as u16,
            rcpt: r.address.clone(),
            e164: r.destination.e164.clone(),
            dial: r.destination.dial.clone(),
            subaddress: r.subaddress.clone(),
            options: options.clone(),
            pages_total,
            pages: None,
            from: String::new(),
            result: None,
        })
        .collect()
}

/// Every recipient failed with the same cause (the document could not be made).
pub fn all_failed(env: &Envelope, cause: &Cause) -> Vec<RecipientOutcome> {
    env.recipients
        .iter()
        .map(|r| RecipientOutcome {
            rcpt: r.address.clone(),
            orcpt: r.orcpt.clone(),
            notify: notify_of(r),
            action: Action::Failed,
            cause: cause.clone(),
            fax: FaxSummary {
                number: r.destination.e164.clone(),
                ..FaxSummary::default()
            },
        })
        .collect()
}

/// Map a T.30 completion cause (by its stable registry number, [`crate::fax::t30::Cause`])
/// to what the sender is told. `page` is the page being sent when the call ended (1-based).
fn t30_cause(n: u16, page: u32, tries: u32) -> Option<Cause> {
    use crate::fax::t30::Cause as T;
    Some(match T::from_number(n)? {
        T::Ok => Cause::Delivered,
        // T.30 §5.4.3 T1: nothing identified itself as a fax machine.
        T::T1Expired => Cause::NotAFax,
        // No capability in common with our document.
        T::Incompatible => Cause::CodingRefused,
        // The line or the remote broke off mid-document.
        T::NoResponse
        | T::T2Expired
        | T::TrainingFailed
        | T::UnexpectedDcn
        | T::PageRejected
        | T::EcmFailed
        | T::ProtocolError
        | T::CarrierLost
        | T::T5Expired => Cause::LineFailed { page, tries },
        T::DocumentError => Cause::GatewayError {
            detail: "a page of the document could not be coded for sending".into(),
        },
        T::LocalAbort => Cause::GatewayError {
            detail: "the call was aborted by the gateway (shutdown or operator)".into(),
        },
        T::Interrupted => Cause::GatewayError {
            detail:
                "the receiving machine asked for an operator, which this gateway cannot provide"
                    .into(),
        },
        // Receive-side causes never end a send.
        T::SinkError | T::TooMuchData | T::PartialReceive | T::NothingToPoll => return None,
    })
}

/// Why a final `FaxOut` job ended as it did, in the sender's terms: from the worker's
/// [`FaxResult`] when it left one, else from the attempt history and the scheduler's reason.
pub fn cause_of(rec: &JobRecord, job: &FaxOutData) -> Cause {
    let attempts = &rec.attempts[rec.counted_from.min(rec.attempts.len())..];
    let tries = attempts
        .iter()
        .filter(|a| a.cause.is_none_or(CauseClass::is_dial))
        .count() as u32;
    let pages_sent = job
        .result
        .as_ref()
        .map(|r| r.pages_sent)
        .or_else(|| attempts.iter().map(|a| a.pages_sent).max())
        .unwrap_or(0);
    if rec.state == JobState::Done {
        return Cause::Delivered;
    }
    let page = (pages_sent + 1).min(job.pages_total.max(1));
    if let Some(c) = job
        .result
        .as_ref()
        .and_then(|r| r.t30_cause)
        .and_then(|n| t30_cause(n, page, tries))
        && !c.is_success()
    {
        return c;
    }
    let last = attempts.iter().rev().find_map(|a| a.cause);
    match (&rec.failure, last) {
        (Some(GiveUp::Cancelled), _) => Cause::GatewayError {
            detail: "the fax was cancelled by the operator".into(),
        },
        (_, Some(CauseClass::Busy)) => Cause::Busy { tries },
        (_, Some(CauseClass::NoAnswer)) => Cause::NoAnswer { tries },
        (_, Some(CauseClass::ProtocolError)) | (_, Some(CauseClass::Interrupted)) => {
            Cause::LineFailed { page, tries }
        }
        (Some(GiveUp::KillTime), _) | (Some(GiveUp::Expired), _) => Cause::Expired { tries },
        (_, Some(CauseClass::Fatal)) => Cause::CodingRefused,
        _ => Cause::Expired { tries },
    }
}

/// The outcome of one recipient, or `None` while its job is not final.
pub fn outcome_of(
    rec: &JobRecord,
    job: &FaxOutData,
    recipient: &smtp::Recipient,
) -> Option<RecipientOutcome> {
    if !rec.state.is_final() {
        return None;
    }
    let cause = cause_of(rec, job);
    let attempts = &rec.attempts[rec.counted_from.min(rec.attempts.len())..];
    let r = job.result.clone().unwrap_or_default();
    let pages_sent = if cause.is_success() {
        job.pages_total
    } else {
        r.pages_sent
    };
    Some(RecipientOutcome {
        rcpt: recipient.address.clone(),
        orcpt: recipient.orcpt.clone(),
        notify: notify_of(recipient),
        action: if cause.is_success() {
            Action::Delivered
        } else {
            Action::Failed
        },
        cause,
        fax: FaxSummary {
            number: job.e164.clone(),
            pages_sent,
            pages_total: job.pages_total,
            duration: r.duration_ms.map(std::time::Duration::from_millis),
            remote_id: r.remote_id,
            speed_bps: r.speed_bps,
            page_results: r.page_results,
            attempts: attempts
                .iter()
                .filter(|a| a.cause.is_none_or(CauseClass::is_dial))
                .count() as u32,
            last_attempt: attempts
                .iter()
                .rev()
                .find_map(|a| a.ended)
                .map(|t| t.unix_secs() as i64),
        },
    })
}

fn to_utc(t: Timestamp) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(i64::try_from(t.0).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// Width of the first page's picture in a report, pixels (a 1728-pel line scaled by about
/// 1/5.8: the text of a letter stays recognisable as such, the file stays a few kB).
pub const REPORT_THUMB_WIDTH: u32 = 300;

/// What finishes the stored body pages of fax job `rec` (`job` its data) the way its last
/// attempt finished them — cover page, and the header line stamped with that attempt's start
/// (or the job's creation before any attempt) and the station ID of its line — so a picture
/// of a page (console, report) is the page as it was, or will be, faxed; the same job always
/// gives the same pages.
pub fn finisher_of(
    cfg: &crate::config::Config,
    rec: &JobRecord,
    job: &FaxOutData,
) -> Result<super::document::Finisher, Cause> {
    use super::document::{self, Finisher, Stamp};
    let when = rec
        .attempts
        .last()
        .map(|a| a.started)
        .unwrap_or(rec.created);
    let line = rec.attempts.last().and_then(|a| a.modem.as_deref());
    let station = line
        .and_then(|l| cfg.modems.iter().find(|m| m.name == l))
        .map(|m| m.local_id.clone())
        .unwrap_or_else(|| cfg.loopback.local_id.clone());
    let stamp = Stamp {
        when: i64::try_from(when.unix_secs())
            .ok()
            .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
            .map(|d| d.with_timezone(&chrono::Local).naive_local()),
        station,
        recipient: job.e164.clone(),
    };
    let body = usize::try_from(job.pages_total)
        .unwrap_or(usize::MAX)
        .saturating_sub(usize::from(job.options.cover_page));
    Finisher::new(
        body,
        &job.from,
        &document::Options::from(&cfg.offramp),
        &job.options,
        &stamp,
    )
}

/// The first page as it was faxed (cover page and header line included, from the stored
/// pages of the first recipient with a page confirmed) as a PNG, for the report; `None` when
/// no page went or the pages cannot be read (the report goes without the picture: it is an
/// extra, never a reason to hold the report back).
pub fn first_page_png(
    spool: &Spool,
    cfg: &crate::config::Config,
    message: &JobId,
    recipients: usize,
) -> Option<(Vec<u8>, u32, u32)> {
    use crate::image::tiff::{Limits, Reader};
    for i in 0..recipients.min(MAX_RECIPIENTS) {
        let cid = child_id(message, Child::Recipient((i + 1) as u16)).ok()?;
        let Ok((_, rec)) = spool.get(&cid) else {
            continue;
        };
        let Ok(job) = fax_data(&rec) else { continue };
        let sent =
            job.result.as_ref().is_some_and(|r| r.pages_sent > 0) || rec.state == JobState::Done;
        let Some(file) = job.pages.as_ref().filter(|_| sent) else {
            continue;
        };
        let (Ok(path), Ok(finisher)) = (
            spool.payload_path(&rec.id, file),
            finisher_of(cfg, &rec, job),
        ) else {
            continue;
        };
        // Page 1 is the cover page (made by the finisher) or body page 1, the first in the
        // file: one page decoded.
        let page = finisher.page(0, &mut |_| {
            let unreadable = |e: String| Cause::GatewayError { detail: e };
            let f = std::fs::File::open(&path).map_err(|e| unreadable(e.to_string()))?;
            Reader::new(std::io::BufReader::new(f), Limits::default())
                .and_then(|mut r| r.next_page())
                .map_err(|e| unreadable(e.to_string()))?
                .ok_or_else(|| unreadable("no pages".into()))
        });
        let Ok(page) = page else { continue };
        let grey = crate::image::preview::scale_grey(&page, REPORT_THUMB_WIDTH);
        if let Ok(png) = crate::image::preview::png(&grey) {
            return Some((png, grey.width, grey.height));
        }
    }
    None
}

/// The one report for a message, if anybody's NOTIFY asks for it; `thumbnail` is the first
/// page sent ([`first_page_png`]).
#[allow(clippy::too_many_arguments)]
pub fn report(
    cfg: &crate::config::Config,
    message: &JobRecord,
    data: &MessageData,
    original: &[u8],
    subject: Option<&str>,
    outcomes: &[RecipientOutcome],
    now: Timestamp,
    thumbnail: Option<dsn::Thumbnail<'_>>,
) -> Option<Report> {
    let arrival = chrono::DateTime::parse_from_rfc3339(&data.received)
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|_| to_utc(message.created));
    let report_id = format!("{}.{}", message.id.base(), Child::Report.number());
    dsn::build(&dsn::ReportInput {
        hostname: &cfg.gateway.hostname,
        report_id: &report_id,
        mail_from: &data.envelope.mail_from,
        envid: data.envelope.envid.as_deref(),
        ret: ret_of(&data.envelope),
        arrival,
        now: to_utc(now),
        original,
        subject,
        recipients: outcomes,
        success_by_default: cfg.offramp.notify_success_by_default,
        thumbnail,
    })
}

/// The data of a `Message` record.
fn message_data(rec: &JobRecord) -> Result<&MessageData, JobsError> {
    match &rec.data {
        JobData::Message(d) => Ok(d),
        _ => Err(JobsError::WrongKind(rec.id.clone(), "message")),
    }
}

/// The data of a `FaxOut` record.
fn fax_data(rec: &JobRecord) -> Result<&FaxOutData, JobsError> {
    match &rec.data {
        JobData::FaxOut(d) => Ok(d),
        _ => Err(JobsError::WrongKind(rec.id.clone(), "fax-out")),
    }
}

/// The id of `parent`'s child `child`.
fn child_id(parent: &JobId, child: Child) -> Result<JobId, JobsError> {
    child.id_of(parent).map_err(|e| JobsError::BadData {
        id: parent.clone(),
        what: "parent id",
        detail: e.to_string(),
    })
}

fn read_message(spool: &Spool, id: &JobId, file: &str) -> Result<Vec<u8>, JobsError> {
    let path = spool.payload_path(id, file)?;
    crate::read_limit::read(&path, MAX_MESSAGE_BYTES).map_err(|e| JobsError::Read {
        id: id.clone(),
        source: e.into(),
    })
}

/// Commit child `child` of `parent` with payload `file` holding `bytes`; `Ok(false)` when it
/// was committed before (a repeat after a crash: `Exists`).
fn commit_child(
    spool: &Spool,
    parent: &JobId,
    child: Child,
    file: &str,
    bytes: &[u8],
    data: JobData,
    now: Timestamp,
) -> Result<bool, JobsError> {
    let mut inc = match spool.begin_child(data.kind(), parent, child) {
        Ok(i) => i,
        Err(SpoolError::Exists(_)) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    inc.write_file(file, bytes)?;
    match inc.commit_at(NewJob::new(data), now) {
        Ok(_) => Ok(true),
        Err(SpoolError::Exists(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// What [`split_message`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Split {
    /// The document rendered into `pages` pages; these `FaxOut` jobs exist now.
    Faxes {
        /// Pages per fax (cover included).
        pages: u32,
        /// The jobs, one per recipient.
        jobs: Vec<JobId>,
        /// The `MailOut` copy for `gateway.admin`, when postmaster was a recipient too.
        forwarded: Option<JobId>,
    },
    /// Every recipient was the postmaster (RFC 5321 §4.5.1): the message went, unchanged, to
    /// `gateway.admin` as this `MailOut` job; nothing was rendered or dialled.
    Forwarded {
        /// The `MailOut` job.
        job: JobId,
    },
    /// The message cannot be faxed; every recipient failed with this cause and the report (if
    /// anybody asked for one) is queued.
    Failed {
        /// Why.
        cause: Cause,
        /// The report job, if one was made.
        report: Option<JobId>,
        /// The `MailOut` copy for `gateway.admin`, when postmaster was a recipient too (it goes
        /// whether or not the document could be faxed).
        forwarded: Option<JobId>,
    },
}

/// The document step as the caller provides it: the raw message and the sender's options in,
/// the rendered body pages or the cause for the sender out (normally
/// [`super::document::prepare_within`]).
pub type DocumentCheck<'a> =
    &'a dyn Fn(&[u8], &SenderOptions) -> Result<super::document::Prepared, Cause>;

/// Split a queued `Message` job: prove its document renders (via `check`), then commit one
/// `FaxOut` job per recipient (each with a copy of the message) and finish the message job;
/// or, when the document fails, queue the failure report and fail the message job. Postmaster
/// recipients get the message forwarded unchanged to `gateway.admin` (one `MailOut` job, child
/// [`POSTMASTER_CHILD`]) first; a message only for the postmaster is not rendered at all.
pub fn split_message(
    spool: &Spool,
    id: &JobId,
    cfg: &crate::config::Config,
    check: DocumentCheck<'_>,
    now: Timestamp,
) -> Result<Split, JobsError> {
    let (_, rec) = spool.get(id)?;
    let data = message_data(&rec)?;
    let raw = read_message(spool, id, &data.file)?;
    let headers = super::mime::headers(&raw);
    let forwarded = forward_to_admin(spool, cfg, id, data, &raw, headers.subject.as_deref(), now)?;
    if let (true, Some(job)) = (data.envelope.recipients.is_empty(), &forwarded) {
        finish_if_queued(spool, id, now, Final::Done)?;
        return Ok(Split::Forwarded { job: job.clone() });
    }
    // Subject addressing: the number at the start of the Subject is the recipient's; the rest
    // is the fax's subject.
    let by_subject = (data.envelope.recipients.iter())
        .any(|r| r.form == crate::mail::address::AddressForm::Subject);
    let fax_subject = match headers.subject.as_deref() {
        Some(s) if by_subject => Some(crate::mail::subject::rest_of_subject(
            s,
            cfg.smtp.accept_plain_digits,
        )),
        s => s,
    };
    let options = super::options::parse(
        fax_subject,
        headers.fax_resolution.as_deref(),
        super::options::Defaults::from(&cfg.offramp),
    );
    let checked = if data.envelope.recipients.len() > MAX_RECIPIENTS {
        Err(Cause::GatewayError {
            detail: format!(
                "the message has more than {MAX_RECIPIENTS} recipients; send it in smaller batches"
            ),
        })
    } else {
        check(&raw, &options)
    };
    match checked {
        Err(Cause::Interrupted) => Err(JobsError::Interrupted(id.clone())),
        Ok(prepared) => {
            let pages = prepared.pages_total;
            let mut jobs = Vec::new();
            for mut job in fax_jobs(id, &data.envelope, &options, pages) {
                let child = Child::Recipient(job.recipient);
                job.pages = Some(PAGES_FILE.into());
                job.from = prepared.from.clone();
                commit_child(
                    spool,
                    id,
                    child,
                    PAGES_FILE,
                    &prepared.body,
                    JobData::FaxOut(job),
                    now,
                )?;
                jobs.push(child_id(id, child)?);
            }
            finish_if_queued(spool, id, now, Final::Done)?;
            Ok(Split::Faxes {
                pages,
                jobs,
                forwarded,
            })
        }
        Err(cause) => {
            let report = fail_message(spool, cfg, &rec, data, &raw, &headers, &cause, now)?;
            Ok(Split::Failed {
                cause,
                report,
                forwarded,
            })
        }
    }
}

/// Every recipient of a message failed with `cause`: queue the one report (if anybody asked
/// for one) and fail the message job.
#[allow(clippy::too_many_arguments)]
fn fail_message(
    spool: &Spool,
    cfg: &crate::config::Config,
    rec: &JobRecord,
    data: &MessageData,
    raw: &[u8],
    headers: &super::mime::Headers,
    cause: &Cause,
    now: Timestamp,
) -> Result<Option<JobId>, JobsError> {
    let outcomes = all_failed(&data.envelope, cause);
    let report = queue_report(
        spool,
        cfg,
        rec,
        data,
        raw,
        headers.subject.as_deref(),
        &outcomes,
        now,
    )?;
    finish_if_queued(spool, &rec.id, now, Final::Failed(GiveUp::Fatal))?;
    Ok(report)
}

/// True when the process died while message job `rec` was being split: its last counted
/// attempt was closed as interrupted at start-up (the split runs inside an attempt, so a
/// crash during it leaves the attempt open).
pub fn split_was_interrupted(rec: &JobRecord) -> bool {
    rec.kind == JobKind::Message
        && rec.attempts.len() > rec.counted_from
        && rec
            .attempts
            .last()
            .is_some_and(|a| a.cause == Some(CauseClass::Interrupted))
}

/// Set aside a message whose split stopped the gateway (see [`split_was_interrupted`]): the
/// message is not parsed or rendered again; every recipient fails with
/// [`Cause::Quarantined`], the sender gets the report, and the job stays in `failed/` for the
/// operator (`faxgate queue show`, `faxgate queue retry` to try it once more). Only the header
/// block is read, for the report's subject.
pub fn quarantine_message(
    spool: &Spool,
    id: &JobId,
    cfg: &crate::config::Config,
    now: Timestamp,
) -> Result<Option<JobId>, JobsError> {
    let (_, rec) = spool.get(id)?;
    let data = message_data(&rec)?;
    let raw = read_message(spool, id, &data.file)?;
    let headers = super::mime::headers(&raw);
    fail_message(
        spool,
        cfg,
        &rec,
        data,
        &raw,
        &headers,
        &Cause::Quarantined,
        now,
    )
}

/// RFC 5321 §4.5.1: mail for the postmaster reaches a person. The message goes unchanged
/// (sender, ENVID and bytes as received) to `gateway.admin`; as mail to the operator it is an
/// [`Purpose::AdminNotice`](crate::delivery::mail_out::Purpose): a relay failure is logged and
/// dead-lettered, never reported back to the operator it could not reach. `None` when no
/// recipient was the postmaster. Idempotent: the child id is fixed.
fn forward_to_admin(
    spool: &Spool,
    cfg: &crate::config::Config,
    id: &JobId,
    data: &MessageData,
    raw: &[u8],
    subject: Option<&str>,
    now: Timestamp,
) -> Result<Option<JobId>, JobsError> {
    if data.envelope.postmaster.is_empty() {
        return Ok(None);
    }
    if passes_through_us(raw, &cfg.gateway.hostname) > 1 {
        // RFC 5321 §6.3: detect loops by the Received fields; ours twice means the copy came
        // back. Fax recipients of the same message (if any) are still served.
        if data.envelope.recipients.is_empty() {
            return Err(JobsError::MailLoop(id.clone()));
        }
        return Ok(None);
    }
    let file = crate::delivery::mail_out::MESSAGE_FILE;
    let job = MailOutData {
        envelope: MailEnvelope {
            from: data.envelope.mail_from.clone(),
            to: vec![cfg.gateway.admin.clone()],
            envid: data.envelope.envid.clone(),
        },
        purpose: Purpose::AdminNotice,
        subject: subject.unwrap_or_default().to_owned(),
        file: file.to_owned(),
    };
    let child = Child::Postmaster;
    commit_child(spool, id, child, file, raw, JobData::MailOut(job), now)?;
    child_id(id, child).map(Some)
}

/// Header block read when looking for loops (ours; a header block this long is not a loop
/// we made: each pass adds one short `Received:`).
const LOOP_SCAN_BYTES: usize = 256 * 1024;

/// How many `Received:` fields in the header of `raw` were written by this gateway
/// (`by <hostname> (faxgate)`, as the listener writes them; RFC 5321 §4.4). Pure; reads at
/// most 256 KiB (`LOOP_SCAN_BYTES`).
pub fn passes_through_us(raw: &[u8], hostname: &str) -> usize {
    let head = &raw[..raw.len().min(LOOP_SCAN_BYTES)];
    let text = String::from_utf8_lossy(head);
    let needle = format!("by {} (faxgate)", hostname.to_ascii_lowercase());
    let mut count = 0;
    let mut field = String::new();
    let mut check = |field: &str| {
        let f = field.to_ascii_lowercase();
        if f.starts_with("received:") && f.contains(&needle) {
            count += 1;
        }
    };
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with([' ', '\t']) {
            // RFC 5322 §2.2.3: a folded continuation of the field before.
            field.push(' ');
            field.push_str(line.trim_start());
            continue;
        }
        check(&field);
        field.clear();
        if line.is_empty() {
            break;
        }
        field.push_str(line);
    }
    check(&field);
    count
}

fn finish_if_queued(
    spool: &Spool,
    id: &JobId,
    now: Timestamp,
    how: Final,
) -> Result<(), JobsError> {
    match spool.finish(id, now, how) {
        Ok(_) => Ok(()),
        // Finished before a crash, or by the operator meanwhile.
        Err(SpoolError::NotFound(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[allow(clippy::too_many_arguments)]
fn queue_report(
    spool: &Spool,
    cfg: &crate::config::Config,
    rec: &JobRecord,
    data: &MessageData,
    raw: &[u8],
    subject: Option<&str>,
    outcomes: &[RecipientOutcome],
    now: Timestamp,
) -> Result<Option<JobId>, JobsError> {
    let pic = if cfg.offramp.report_thumbnail {
        first_page_png(spool, cfg, &rec.id, data.envelope.recipients.len())
    } else {
        None
    };
    let thumbnail = pic.as_ref().map(|(png, width, height)| dsn::Thumbnail {
        png,
        width: *width,
        height: *height,
    });
    let Some(rep) = report(cfg, rec, data, raw, subject, outcomes, now, thumbnail) else {
        return Ok(None);
    };
    queue_report_mail(spool, &rec.id, Child::Report, ReportKind::Dsn, &rep, now)?;
    child_id(&rec.id, Child::Report).map(Some)
}

/// Queue report `rep` (DSN, delay DSN or MDN) about message `message` as its child `child`.
/// `Ok(false)`: an earlier run queued it already (the fixed child id says so).
fn queue_report_mail(
    spool: &Spool,
    message: &JobId,
    child: Child,
    kind: ReportKind,
    rep: &Report,
    now: Timestamp,
) -> Result<bool, JobsError> {
    let data = MailOutData {
        envelope: MailEnvelope {
            from: rep.mail_from.clone(),
            to: vec![rep.rcpt_to.clone()],
            envid: None,
        },
        purpose: Purpose::Report {
            report: kind,
            message: Some(message.clone()),
        },
        subject: String::new(),
        file: MAIL_FILE.into(),
    };
    commit_child(
        spool,
        message,
        child,
        MAIL_FILE,
        &rep.message,
        JobData::MailOut(data),
        now,
    )
}

/// What [`on_fax_final`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reported {
    /// Some recipient of the message is not final yet.
    Pending,
    /// All final; the report job (if anybody asked for one) and MDN jobs are queued.
    Done {
        /// Every recipient's outcome, in RCPT order.
        outcomes: Vec<RecipientOutcome>,
        /// The report job.
        report: Option<JobId>,
        /// MDN jobs.
        mdns: Vec<JobId>,
    },
}

/// Called by the fax worker after a `FaxOut` job became final: when every recipient of its
/// message is final, queue the one report listing each (and MDNs where asked and enabled).
pub fn on_fax_final(
    spool: &Spool,
    fax_id: &JobId,
    cfg: &crate::config::Config,
    now: Timestamp,
) -> Result<Reported, JobsError> {
    let (_, fax) = spool.get(fax_id)?;
    let job = fax_data(&fax)?;
    let (_, msg) = spool.get(&job.message)?;
    let data = message_data(&msg)?;
    let mut outcomes = Vec::with_capacity(data.envelope.recipients.len());
    for (i, r) in data
        .envelope
        .recipients
        .iter()
        .take(MAX_RECIPIENTS)
        .enumerate()
    {
        let cid = child_id(&msg.id, Child::Recipient((i + 1) as u16))?;
        let (_, crec) = spool.get(&cid)?;
        match outcome_of(&crec, fax_data(&crec)?, r) {
            Some(o) => outcomes.push(o),
            None => return Ok(Reported::Pending),
        }
    }
    let raw = read_message(spool, &msg.id, &data.file)?;
    let headers = super::mime::headers(&raw);
    let report_job = queue_report(
        spool,
        cfg,
        &msg,
        data,
        &raw,
        headers.subject.as_deref(),
        &outcomes,
        now,
    )?;
    let mut mdns = Vec::new();
    if let Some(to) = headers.mdn_to.as_deref() {
        for (i, o) in outcomes.iter().enumerate() {
            if o.action != Action::Delivered {
                continue;
            }
            let child = Child::Mdn((i + 1) as u16);
            let report_id = format!("{}.{}", msg.id.base(), child.number());
            let Some(m) = dsn::build_mdn(&dsn::MdnInput {
                hostname: &cfg.gateway.hostname,
                report_id: &report_id,
                mail_from: &data.envelope.mail_from,
                notification_to: to,
                original_message_id: headers.message_id.as_deref(),
                final_recipient: &o.rcpt,
                now: to_utc(now),
                enabled: cfg.offramp.mdn,
            }) else {
                continue;
            };
            queue_report_mail(spool, &msg.id, child, ReportKind::Mdn, &m, now)?;
            mdns.push(child_id(&msg.id, child)?);
        }
    }
    Ok(Reported::Done {
        outcomes,
        report: report_job,
        mdns,
    })
}

/// Called by the fax worker after a `FaxOut` attempt that will be retried: when the sender
/// asked with `NOTIFY=DELAY` (RFC 3461 §4.1) and the fax has been retrying for
/// `offramp.delay_report_after`, queue ONE delay report for this recipient (RFC 3464
/// `Action: delayed`, status 4.x.x). Returns the report job when one was queued now.
pub fn on_fax_retry(
    spool: &Spool,
    fax_id: &JobId,
    cfg: &crate::config::Config,
    now: Timestamp,
) -> Result<Option<JobId>, JobsError> {
    let after = cfg.offramp.delay_report_after;
    if after.is_zero() {
        return Ok(None);
    }
    let (_, fax) = spool.get(fax_id)?;
    let job = fax_data(&fax)?;
    if fax.state.is_final() || now.since(fax.epoch) < after {
        return Ok(None);
    }
    let (_, msg) = spool.get(&job.message)?;
    let data = message_data(&msg)?;
    let Some(r) = data
        .envelope
        .recipients
        .get(usize::from(job.recipient).wrapping_sub(1))
    else {
        return Err(JobsError::BadData {
            id: fax_id.clone(),
            what: "fax-out job",
            detail: format!("recipient {} not in the envelope", job.recipient),
        });
    };
    let notify = notify_of(r);
    if !notify.wants(Action::Delayed, false) || usize::from(job.recipient) > MAX_RECIPIENTS {
        return Ok(None);
    }
    let attempts = &fax.attempts[fax.counted_from.min(fax.attempts.len())..];
    let res = job.result.clone().unwrap_or_default();
    let outcome = RecipientOutcome {
        rcpt: r.address.clone(),
        orcpt: r.orcpt.clone(),
        notify,
        action: Action::Delayed,
        cause: cause_of(&fax, job),
        fax: FaxSummary {
            number: job.e164.clone(),
            pages_sent: res.pages_sent,
            pages_total: job.pages_total,
            duration: None,
            remote_id: res.remote_id,
            speed_bps: None,
            page_results: Vec::new(),
            attempts: attempts
                .iter()
                .filter(|a| a.cause.is_none_or(CauseClass::is_dial))
                .count() as u32,
            last_attempt: attempts
                .iter()
                .rev()
                .find_map(|a| a.ended)
                .map(|t| t.unix_secs() as i64),
        },
    };
    let raw = read_message(spool, &msg.id, &data.file)?;
    let subject = super::mime::headers(&raw).subject;
    let child = Child::DelayNotice(job.recipient);
    let arrival = chrono::DateTime::parse_from_rfc3339(&data.received)
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|_| to_utc(msg.created));
    let report_id = format!("{}.{}", msg.id.base(), child.number());
    let Some(rep) = dsn::build(&dsn::ReportInput {
        hostname: &cfg.gateway.hostname,
        report_id: &report_id,
        mail_from: &data.envelope.mail_from,
        envid: data.envelope.envid.as_deref(),
        // RFC 3461 §4.3: no content with a delay notice; headers identify the message.
        ret: Ret::Hdrs,
        arrival,
        now: to_utc(now),
        original: &raw,
        subject: subject.as_deref(),
        recipients: std::slice::from_ref(&outcome),
        success_by_default: false,
        thumbnail: None,
    }) else {
        return Ok(None);
    };
    let fresh = queue_report_mail(spool, &msg.id, child, ReportKind::Delay, &rep, now)?;
    Ok(if fresh {
        Some(child_id(&msg.id, child)?)
    } else {
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::Attempt;

    fn rec(state: JobState, failure: Option<GiveUp>, causes: &[(CauseClass, u32)]) -> JobRecord {
        let id: JobId = "6b0b5ae65504f019e0e3.1".parse().unwrap();
        JobRecord {
            version: crate::spool::RECORD_VERSION,
            id,
            kind: JobKind::FaxOut,
            state,
            created: Timestamp(0),
            epoch: Timestamp(0),
            next_due: Timestamp(0),
            priority: 127,
            attempts: causes
                .iter()
                .enumerate()
                .map(|(i, (c, p))| Attempt {
                    started: Timestamp(i as u64 * 1000),
                    ended: Some(Timestamp(i as u64 * 1000 + 500)),
                    cause: Some(*c),
                    detail: String::new(),
                    pages_sent: *p,
                    modem: None,
                    connected: false,
                    fax_options: None,
                })
                .collect(),
            counted_from: 0,
            failure,
            finished: Some(Timestamp(9999)),
            parent: None,
            child: None,
            data: JobData::FaxOut(job(None)),
        }
    }

    fn job(result: Option<FaxResult>) -> FaxOutData {
        FaxOutData {
            message: "6b0b5ae65504f019e0e3".parse().unwrap(),
            recipient: 1,
            rcpt: "FAX=+1@h".into(),
            e164: "+1".into(),
            dial: "1".into(),
            subaddress: None,
            options: SenderOptions {
                resolution: crate::config::Resolution::Fine,
                cover_page: false,
                subject: String::new(),
            },
            pages_total: 4,
            pages: None,
            from: String::new(),
            result,
        }
    }

    #[test]
    fn causes_from_history_and_t30_numbers() {
        use CauseClass::*;
        let t30 = |n: u16, pages: u32| {
            Some(FaxResult {
                t30_cause: Some(n),
                pages_sent: pages,
                ..FaxResult::default()
            })
        };
        let failed = |f: GiveUp, c: &[(CauseClass, u32)]| rec(JobState::Failed, Some(f), c);
        let table: Vec<(JobRecord, FaxOutData, Cause)> = vec![
            (
                rec(JobState::Done, None, &[(Done, 4)]),
                job(None),
                Cause::Delivered,
            ),
            (
                failed(GiveUp::TooManyDials, &[(Busy, 0), (Busy, 0)]),
                job(None),
                Cause::Busy { tries: 2 },
            ),
            (
                failed(GiveUp::TooManyDials, &[(Busy, 0), (NoAnswer, 0)]),
                job(None),
                Cause::NoAnswer { tries: 2 },
            ),
            (
                failed(GiveUp::TooManyTries, &[(ProtocolError, 2)]),
                job(None),
                Cause::LineFailed { page: 3, tries: 1 },
            ),
            (
                failed(GiveUp::Fatal, &[(Fatal, 0)]),
                job(t30(7, 0)),
                Cause::CodingRefused,
            ),
            (
                failed(GiveUp::TooManyTries, &[(ProtocolError, 0)]),
                job(t30(1, 0)),
                Cause::NotAFax,
            ),
            (
                failed(GiveUp::TooManyTries, &[(ProtocolError, 3)]),
                job(t30(10, 3)),
                Cause::LineFailed { page: 4, tries: 1 },
            ),
            (
                failed(GiveUp::KillTime, &[(LocalTemporary, 0)]),
                job(None),
                Cause::Expired { tries: 0 },
            ),
            (
                failed(GiveUp::Cancelled, &[]),
                job(None),
                Cause::GatewayError {
                    detail: "the fax was cancelled by the operator".into(),
                },
            ),
        ];
        for (r, j, want) in table {
            assert_eq!(cause_of(&r, &j), want, "{:?} {:?}", r.failure, r.attempts);
        }
    }

    #[test]
    fn outcome_is_none_until_final() {
        let r = rec(JobState::Queued, None, &[(CauseClass::Busy, 0)]);
        let rc = crate::smtp::session::Recipient {
            address: "FAX=+1@h".into(),
            number: crate::mail::address::Number::Global("1".into()),
            form: crate::mail::address::AddressForm::Rfc3192,
            subaddress: None,
            destination: crate::mail::dialplan::Destination {
                e164: "+1".into(),
                dial: "1".into(),
                international: false,
            },
            notify: Some(vec![smtp::Notify::Success, smtp::Notify::Failure]),
            orcpt: None,
        };
        assert!(outcome_of(&r, &job(None), &rc).is_none());
        let done = rec(
            JobState::Done,
            None,
            &[(CauseClass::Busy, 0), (CauseClass::Done, 4)],
        );
        let o = outcome_of(&done, &job(None), &rc).unwrap();
        assert_eq!(o.action, Action::Delivered);
        assert_eq!(o.fax.pages_sent, 4);
        assert_eq!(o.fax.attempts, 2);
        assert!(o.notify.success && o.notify.failure && o.notify.given);
    }
}
