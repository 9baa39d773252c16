//! The `MailOut` spool job: one email waiting to be delivered, and one attempt at delivering it.
//!
//! A `MailOut` job holds the finished message as its payload ([`MESSAGE_FILE`]) and its
//! [`MailOutData`] (envelope, purpose) as record data. Whoever makes mail — the onramp for a
//! received fax, the offramp for a delivery report — calls [`queue`]; the job then exists
//! durably (the spool's single commit point) before the maker lets go of its own input, so a
//! fax is never deleted before a relay accepted the mail that carries it.
//!
//! [`attempt`] runs one delivery attempt and records its outcome; the scheduler's `decide`
//! turns it into done (2xx), a retry with backoff (4xx, unreachable, timeout, local trouble)
//! or a dead letter (5xx, or the give-up time passed): the job directory with the message — and
//! so the fax — stays in the spool's `failed/` area, the failure is logged, and the operator
//! (`gateway.admin`) gets a notice as a `MailOut` of its own. Notices about notices are never
//! made, so a dead relay cannot breed mail.

pub use crate::job::{MailOutData, Purpose};

use thiserror::Error;
use tracing::{error, info, warn};

use crate::logging::untrusted;

use super::{Delivery, MailEnvelope, Refused};
use crate::scheduler::{CauseClass, Decision, Policy};
use crate::spool::{Child, JobData, JobId, JobKind, JobRecord, NewJob, Outcome, Spool, SpoolError};

/// Payload file holding the message (RFC 5322, CRLF), unless the data names another.
pub const MESSAGE_FILE: &str = "message.eml";

/// Largest message read back for delivery (ours): what [`crate::delivery::message`] can build,
/// base64-expanded, with room for headers.
pub const MAX_MESSAGE_BYTES: u64 = 96 * 1024 * 1024;

/// What went wrong around (not inside) a delivery attempt.
#[derive(Debug, Error)]
pub enum MailOutError {
    /// The spool failed (disk, damaged record): our storage's fault.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The job is not a `MailOut` job or its data does not parse: a bug or a damaged record;
    /// the job is failed so it does not loop.
    #[error("job {id}: {reason}")]
    BadJob {
        /// The job.
        id: JobId,
        /// What is wrong.
        reason: String,
    },
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SpoolError> + Send + 'static,
) -> Result<T, MailOutError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| MailOutError::Task(e.to_string()))?
        .map_err(MailOutError::from)
}

/// Queues `message` for delivery: one durable spool commit. With `parent` the job is that
/// job's child in the given relation, whose id is fixed, so repeating the hand-over after a
/// crash does not duplicate the mail.
pub fn queue(
    spool: &Spool,
    data: &MailOutData,
    message: &[u8],
    parent: Option<(&JobId, Child)>,
) -> Result<JobRecord, SpoolError> {
    let mut inc = match parent {
        Some((p, child)) => spool.begin_child(JobKind::MailOut, p, child)?,
        None => spool.begin(JobKind::MailOut)?,
    };
    inc.write_file(&data.file, message)?;
    inc.commit(NewJob::new(JobData::MailOut(data.clone())))
}

/// The data of a `MailOut` record.
pub fn data_of(rec: &JobRecord) -> Result<MailOutData, MailOutError> {
    match &rec.data {
        JobData::MailOut(d) => Ok(d.clone()),
        _ => Err(MailOutError::BadJob {
            id: rec.id.clone(),
            reason: format!("is a {} job, not mail-out", rec.kind),
        }),
    }
}

fn read_message(spool: &Spool, id: &JobId, file: &str) -> Result<Vec<u8>, SpoolError> {
    let path = spool.payload_path(id, file)?;
    crate::read_limit::read(&path, MAX_MESSAGE_BYTES).map_err(|e| SpoolError::io(&path, e.into()))
}

/// Who the operator notices come from and go to.
#[derive(Debug, Clone)]
pub struct Notices {
    /// `gateway.admin`.
    pub admin: String,
    /// `onramp.from` (a bare address is taken from it).
    pub from: String,
    /// `gateway.hostname`, for Message-IDs.
    pub hostname: String,
}

impl Notices {
    /// From a configuration.
    pub fn from_config(c: &crate::config::Config) -> Notices {
        Notices {
            admin: c.gateway.admin.clone(),
            from: c.onramp.from.clone(),
            hostname: c.gateway.hostname.clone(),
        }
    }
}

/// Runs one delivery attempt of `MailOut` job `id` and records the outcome. Returns the
/// updated record and the scheduler's decision.
pub async fn attempt(
    spool: &Spool,
    delivery: &Delivery,
    policy: &Policy,
    notices: &Notices,
    id: &JobId,
) -> Result<(JobRecord, Decision), MailOutError> {
    let (s, i) = (spool.clone(), id.clone());
    let rec = blocking(move || s.start_attempt(&i, crate::spool::now(), None)).await?;
    let data = match data_of(&rec) {
        Ok(d) => d,
        Err(e) => {
            let (s, i, p) = (spool.clone(), id.clone(), policy.clone());
            let detail = e.to_string();
            blocking(move || {
                s.end_attempt(
                    &i,
                    crate::spool::now(),
                    outcome(CauseClass::Fatal, detail),
                    &p,
                )
            })
            .await?;
            return Err(e);
        }
    };
    let (s, i, f) = (spool.clone(), id.clone(), data.file.clone());
    let message = match blocking(move || read_message(&s, &i, &f)).await {
        Ok(m) => m,
        Err(e) => {
            let (s, i, p) = (spool.clone(), id.clone(), policy.clone());
            let detail = format!("cannot read the message: {e}");
            blocking(move || {
                s.end_attempt(
                    &i,
                    crate::spool::now(),
                    outcome(CauseClass::LocalTemporary, detail),
                    &p,
                )
            })
            .await?;
            return Err(e);
        }
    };

    let result = delivery.deliver(&data.envelope, &message).await;
    let out = match &result {
        Ok(a) => outcome(CauseClass::Done, a.detail.clone()),
        Err(e) => outcome(e.class(), e.to_string()),
    };
    crate::metrics::mail_attempt(out.cause);
    if let (Ok(_), Purpose::Fax { fax_job: Some(f) }) = (&result, &data.purpose) {
        fax_mail_accepted(spool, f).await;
    }
    let (s, i, p) = (spool.clone(), id.clone(), policy.clone());
    let (rec, decision) = blocking(move || s.end_attempt(&i, crate::spool::now(), out, &p)).await?;

    match (&result, &decision) {
        (Ok(a), _) => {
            info!(job = %id, to = ?data.envelope.to, "mail delivered: {}", untrusted(&a.detail));
            if !a.refused.is_empty() {
                refused_recipients(spool, notices, id, &data, &message, &a.refused).await;
            }
        }
        (Err(e), Decision::RetryAt(t)) => {
            // The error quotes the relay's reply: outside text.
            warn!(job = %id, "mail delivery failed, retry at {t}: {}", untrusted(&e.to_string()));
        }
        (Err(e), Decision::Fail(why)) => {
            error!(
                job = %id,
                subject = %untrusted(&data.subject),
                "mail dead-lettered ({why}), kept in the spool's failed/ area: {}",
                untrusted(&e.to_string())
            );
            if data.purpose != Purpose::AdminNotice {
                let text = format!(
                    "faxgate could not deliver a message and gave up ({why}).\n\n\
                     Job: {id}\nSubject: {}\nRecipients: {}\nLast error: {}\n\n\
                     The message, and any fax in it, is kept in the spool's failed/ area;\n\
                     `faxgate queue retry {id}` sends it again.\n",
                    // The subject may be a stranger's (a forwarded postmaster mail), the
                    // error quotes the relay: both escaped in the report.
                    untrusted(&data.subject),
                    untrusted(&data.envelope.to.join(", ")),
                    untrusted(&e.to_string()),
                );
                notify_admin(spool, notices, id, "dead letter", &text, 1).await;
            }
        }
        (Err(_), Decision::Done) => {}
    }
    Ok((rec, decision))
}

/// The mail of received fax `fax` was just accepted: the time since its hang-up (its `FaxIn`
/// job's commit) goes to `/metrics`. One small read, the fax's record; a fax from the inbox
/// folder or `onramp submit` had no hang-up and is not counted.
async fn fax_mail_accepted(spool: &Spool, fax: &JobId) {
    let (s, f) = (spool.clone(), fax.clone());
    match blocking(move || s.get(&f)).await {
        Ok((_, r)) => {
            if let JobData::FaxIn(d) = &r.data
                && d.reception.source == crate::job::Source::Modem
            {
                crate::metrics::hangup_to_mail(crate::spool::now().since(r.created));
            }
        }
        Err(e) => warn!(job = %fax, "metrics: the received fax's record: {e}"),
    }
}

fn outcome(cause: CauseClass, detail: String) -> Outcome {
    Outcome {
        cause,
        detail,
        pages_sent: 0,
        connected: false,
    }
}

/// Some recipients were refused while others took the mail: the temporarily refused get a
/// job of their own (retried), the permanently refused are reported to the operator.
async fn refused_recipients(
    spool: &Spool,
    notices: &Notices,
    id: &JobId,
    data: &MailOutData,
    message: &[u8],
    refused: &[Refused],
) {
    let temporary: Vec<String> = refused
        .iter()
        .filter(|r| !r.permanent)
        .map(|r| r.rcpt.clone())
        .collect();
    if !temporary.is_empty() {
        let mut d = data.clone();
        d.envelope.to = temporary;
        let (s, m) = (spool.clone(), message.to_vec());
        match blocking(move || queue(&s, &d, &m, None)).await {
            Ok(r) => {
                warn!(job = %id, retry_job = %r.id, "recipients temporarily refused, queued again")
            }
            Err(e) => error!(job = %id, "cannot queue mail for refused recipients: {e}"),
        }
    }
    let permanent: Vec<&Refused> = refused.iter().filter(|r| r.permanent).collect();
    if !permanent.is_empty() && data.purpose != Purpose::AdminNotice {
        let lines: Vec<String> = permanent
            .iter()
            .map(|r| format!("  {}: {}", untrusted(&r.rcpt), untrusted(&r.reply)))
            .collect();
        let text = format!(
            "The relay refused some recipients of a message (the others got it).\n\n\
             Job: {id}\nSubject: {}\nRefused:\n{}\n",
            untrusted(&data.subject),
            lines.join("\n")
        );
        notify_admin(spool, notices, id, "recipients refused", &text, 2).await;
    }
}

/// Queues a plain notice to the operator about job `about`.
async fn notify_admin(
    spool: &Spool,
    notices: &Notices,
    about: &JobId,
    what: &str,
    text: &str,
    n: u16,
) {
    let to = match crate::delivery::message::bare_address(&notices.admin) {
        Ok(a) => a,
        Err(e) => {
            error!("cannot notify the operator: gateway.admin: {e}");
            return;
        }
    };
    let from = crate::delivery::message::bare_address(&notices.from).unwrap_or_default();
    let now = crate::spool::now();
    let mail = crate::delivery::message::FaxMail {
        from: notices.from.clone(),
        to: vec![notices.admin.clone()],
        cc: Vec::new(),
        subject: format!("faxgate: {what} (job {about})"),
        body: text.to_owned(),
        date: i64::try_from(now.unix_secs()).unwrap_or(i64::MAX),
        message_id: format!("{}.notice{n}.{}@{}", about, now.0, notices.hostname),
        attachment: None,
    };
    let bytes = match crate::delivery::message::build(&mail) {
        Ok(b) => b,
        Err(e) => {
            error!("cannot build the operator notice: {e}");
            return;
        }
    };
    let data = MailOutData {
        envelope: MailEnvelope {
            from,
            to: vec![to],
            envid: None,
        },
        purpose: Purpose::AdminNotice,
        subject: mail.subject.clone(),
        file: MESSAGE_FILE.into(),
    };
    let s = spool.clone();
    match blocking(move || queue(&s, &data, &bytes, None)).await {
        Ok(r) => info!(job = %about, notice_job = %r.id, "operator notified: {what}"),
        Err(e) => error!(job = %about, "cannot queue the operator notice: {e}"),
    }
}
