//! The `FaxIn` spool job: a received fax waiting to be routed and mailed.
//!
//! Whatever receives a fax — a modem's receive worker, the inbox folder, `faxgate onramp
//! submit` — commits it with [`queue_fax`]: the pages as a TIFF-F ([`FAX_FILE`]) and the
//! [`Reception`] (plus optional explicit recipients) as record data, in one spool commit.
//!
//! [`process`] then decodes the pages, composes the email ([`super::compose`]) and queues it as
//! a `MailOut` child job (child 1 of the fax job, so repeating after a crash finds it queued
//! already instead of mailing twice), and only then finishes the fax job into `done/`. The fax
//! itself travels inside the mail job's message, which stays in the spool until a relay took
//! it or, if it never does, in `failed/` as a dead letter: a fax is never deleted before a
//! relay accepted it.

use std::io::Read;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tracing::{info, warn};

use super::Reception;
use super::compose::{self, ComposeError, Pages, Settings};
use super::route::RouteTable;
use crate::delivery::mail_out;
use crate::image::tiff::{self, Limits, Profile};
use crate::scheduler::{CauseClass, Decision, Policy};
use crate::spool::{JobId, JobKind, JobRecord, NewJob, Outcome, Spool, SpoolError};

/// Payload file holding the received pages.
pub const FAX_FILE: &str = "fax.tif";

/// Largest fax file read back (ours): 1000 pages of dense MH would be about 100 MB; the TIFF
/// [`Limits`] bound pages and pixels on top.
pub const MAX_FAX_BYTES: u64 = 128 * 1024 * 1024;

/// The record data of a `FaxIn` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaxInData {
    /// The reception.
    pub reception: Reception,
    /// Recipients that replace the route's (inbox sidecar `to:`, `submit --to`).
    #[serde(default)]
    pub to: Vec<String>,
}

/// Why a fax job could not be processed.
#[derive(Debug, Error)]
pub enum FaxInError {
    /// The spool failed (our storage).
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The record is not a readable `FaxIn` job (damaged or a bug).
    #[error("job {id}: {reason}")]
    BadJob {
        /// The job.
        id: JobId,
        /// What is wrong.
        reason: String,
    },
    /// The mail could not be composed (configuration).
    #[error(transparent)]
    Compose(#[from] ComposeError),
    /// A blocking task failed.
    #[error("background task failed: {0}")]
    Task(String),
}

/// Commits a received fax as a `FaxIn` job.
pub fn queue_fax(spool: &Spool, data: &FaxInData, tiff: &[u8]) -> Result<JobRecord, SpoolError> {
    let mut inc = spool.begin(JobKind::FaxIn)?;
    inc.write_file(FAX_FILE, tiff)?;
    inc.commit(NewJob::new(serde_json::to_value(data).unwrap_or_default()))
}

fn read_limited(path: &std::path::Path, max: u64) -> Result<Vec<u8>, SpoolError> {
    let f = std::fs::File::open(path).map_err(|e| SpoolError::io(path, e))?;
    let mut buf = Vec::new();
    f.take(max)
        .read_to_end(&mut buf)
        .map_err(|e| SpoolError::io(path, e))?;
    Ok(buf)
}

fn outcome(cause: CauseClass, detail: String) -> Outcome {
    Outcome {
        cause,
        detail,
        pages_sent: 0,
        connected: false,
    }
}

/// Routes and mails `FaxIn` job `id` (blocking: run it on a blocking thread). Returns the
/// `MailOut` job it queued and the fax job's fate.
pub fn process(
    spool: &Spool,
    settings: &Settings,
    routes: &RouteTable,
    policy: &Policy,
    id: &JobId,
) -> Result<(JobId, Decision), FaxInError> {
    let now = crate::spool::now;
    let rec = spool.start_attempt(id, now(), None)?;
    let fail = |reason: String, cause: CauseClass| -> Result<(), FaxInError> {
        spool.end_attempt(id, now(), outcome(cause, reason), policy)?;
        Ok(())
    };
    if rec.kind != JobKind::FaxIn {
        let reason = format!("is a {} job, not fax-in", rec.kind);
        fail(reason.clone(), CauseClass::Fatal)?;
        return Err(FaxInError::BadJob {
            id: id.clone(),
            reason,
        });
    }
    let data: FaxInData = match serde_json::from_value(rec.data.clone()) {
        Ok(d) => d,
        Err(e) => {
            let reason = format!("fax-in data does not parse: {e}");
            fail(reason.clone(), CauseClass::Fatal)?;
            return Err(FaxInError::BadJob {
                id: id.clone(),
                reason,
            });
        }
    };
    let original = match spool
        .payload_path(id, FAX_FILE)
        .and_then(|p| read_limited(&p, MAX_FAX_BYTES))
    {
        Ok(b) => b,
        Err(e) => {
            fail(
                format!("cannot read {FAX_FILE}: {e}"),
                CauseClass::LocalTemporary,
            )?;
            return Err(e.into());
        }
    };

    let decoded = tiff::read_bytes(&original, Limits::default());
    let is_s = decoded.is_ok() && tiff::check(&original, Profile::S).is_empty();
    let error_text;
    let pages = match &decoded {
        Ok(p) if !p.is_empty() => Pages::Decoded {
            pages: p,
            original: &original,
            original_is_profile_s: is_s,
        },
        Ok(_) => {
            error_text = "no pages".to_string();
            Pages::Undecodable {
                original: &original,
                error: &error_text,
            }
        }
        Err(e) => {
            error_text = e.to_string();
            warn!(job = %id, "received fax does not decode, mailing it as received: {e}");
            Pages::Undecodable {
                original: &original,
                error: &error_text,
            }
        }
    };
    let explicit = (!data.to.is_empty()).then_some(&data.to[..]);
    let out = match compose::compose(
        settings,
        routes,
        &data.reception,
        &pages,
        id.as_str(),
        explicit,
    ) {
        Ok(o) => o,
        Err(e) => {
            // Configuration trouble: keep the fax queued and retry (after the operator fixes
            // it and restarts), never drop it.
            fail(e.to_string(), CauseClass::LocalTemporary)?;
            return Err(e.into());
        }
    };
    let mail_id = match mail_out::queue(spool, &out.data, &out.message, Some((id, 1))) {
        Ok(r) => r.id,
        // Queued by an earlier run that died before finishing the fax job.
        Err(SpoolError::Exists(existing)) => existing,
        Err(e) => {
            fail(
                format!("cannot queue the mail: {e}"),
                CauseClass::LocalTemporary,
            )?;
            return Err(e.into());
        }
    };
    let (_, decision) = spool.end_attempt(
        id,
        now(),
        outcome(
            CauseClass::Done,
            format!("route {} → mail job {mail_id}", out.route),
        ),
        policy,
    )?;
    info!(
        job = %id,
        route = %out.route,
        mail_job = %mail_id,
        to = ?out.data.envelope.to,
        "fax routed"
    );
    Ok((mail_id, decision))
}
