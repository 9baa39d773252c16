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

pub use crate::job::FaxInData;

use thiserror::Error;
use tracing::{info, warn};

use super::compose::{self, ComposeError, Pages, Settings};
use super::route::RouteTable;
use crate::delivery::mail_out;
use crate::image::tiff::{self, Limits, Profile};
use crate::scheduler::{CauseClass, Decision, Policy};
use crate::spool::{
    Child, Incoming, JobData, JobId, JobKind, JobRecord, NewJob, Outcome, Spool, SpoolError,
};

/// Payload file holding the received pages.
pub const FAX_FILE: &str = "fax.tif";

/// Largest fax file read back (ours): 1000 pages of dense MH would be about 100 MB; the TIFF
/// [`Limits`] bound pages and pixels on top.
pub const MAX_FAX_BYTES: u64 = 128 * 1024 * 1024;

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

/// Starts a reception: the receiver creates [`FAX_FILE`] in it (`Incoming::create_file`),
/// appends pages with [`crate::image::tiff::Writer`] as they arrive, and at hang-up calls
/// [`commit_fax`] — partial receptions too, with their cause in the [`Reception`]. A reception
/// never committed (the process died mid-call) is purged from `incoming/` at start-up.
pub fn begin_fax(spool: &Spool) -> Result<Incoming, SpoolError> {
    spool.begin(JobKind::FaxIn)
}

/// Commits a reception begun with [`begin_fax`]: from here on the fax is durable and will be
/// routed and mailed.
pub fn commit_fax(inc: Incoming, data: &FaxInData) -> Result<JobRecord, SpoolError> {
    inc.commit(NewJob::new(JobData::FaxIn(data.clone())))
}

/// Commits a received fax held in memory as a `FaxIn` job.
pub fn queue_fax(spool: &Spool, data: &FaxInData, tiff: &[u8]) -> Result<JobRecord, SpoolError> {
    let mut inc = begin_fax(spool)?;
    inc.write_file(FAX_FILE, tiff)?;
    commit_fax(inc, data)
}

/// Pages of `tiff` that decode, each decoded and let go; the first error otherwise.
fn count_pages(tiff: &[u8]) -> Result<usize, tiff::TiffError> {
    let mut r = tiff::Reader::new(std::io::Cursor::new(tiff), Limits::default())?;
    let mut n = 0;
    while r.next_page()?.is_some() {
        n += 1;
    }
    Ok(n)
}

fn read_limited(path: &std::path::Path, max: u64) -> Result<Vec<u8>, SpoolError> {
    crate::read_limit::read(path, max).map_err(|e| SpoolError::io(path, e.into()))
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
    let data: FaxInData = match &rec.data {
        JobData::FaxIn(d) => d.clone(),
        other => {
            let reason = format!("is a {} job, not fax-in", other.kind());
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

    // Checked page by page (each decoded and let go): a fax of any length in flat memory.
    let decoded = count_pages(&original);
    let is_s = decoded.is_ok() && tiff::check(&original, Profile::S).is_empty();
    let error_text;
    let pages = match &decoded {
        Ok(n) if *n > 0 => Pages::Stored {
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
    let mail_id = match mail_out::queue(spool, &out.data, &out.message, Some((id, Child::Mail(1))))
    {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::delivery::mail_out::{self, MESSAGE_FILE, MailOutData, Purpose};
    use crate::image::{Page, Resolution};
    use crate::onramp::{Completion, Source};
    use crate::spool::{Area, SpoolOptions};

    fn reception() -> crate::job::Reception {
        crate::job::Reception {
            source: Source::Modem,
            line: Some("line1".into()),
            did: Some("5550150".into()),
            caller: None,
            remote_id: Some("+49 30 1234".into()),
            subaddress: None,
            pages: 2,
            duration_secs: 75,
            speed: Some(14400),
            resolution: Some((204, 196)),
            bad_lines: 3,
            received: 1_796_000_000,
            completion: Completion::Partial {
                cause: "carrier lost on page 3".into(),
            },
        }
    }

    fn page(k: u32) -> Page {
        let mut p = Page::new(1728, 64, Resolution::FINE).unwrap();
        for y in 0..64 {
            p.set((y * 13 + k * 101) % 1728, y, true);
        }
        p
    }

    fn setup() -> (tempfile::TempDir, Spool, Settings, RouteTable, Policy) {
        let d = tempfile::tempdir().unwrap();
        let spool = Spool::open(&d.path().join("spool"), SpoolOptions::default()).unwrap();
        let c = Config::default();
        (
            d,
            spool,
            Settings::from_config(&c).unwrap(),
            RouteTable::new(&c.routes).unwrap(),
            Policy::from(&c.retry),
        )
    }

    /// A modem-style reception: pages appended to the spool file as they arrive, committed at
    /// hang-up (partial), then routed: the mail job holds a Profile S TIFF of those pages.
    #[test]
    fn streamed_partial_reception_is_routed() {
        let (_d, spool, settings, routes, policy) = setup();
        let mut inc = begin_fax(&spool).unwrap();
        let file = inc.create_file(FAX_FILE).unwrap().into_file();
        let mut w = crate::image::tiff::Writer::new(file, Profile::S).unwrap();
        w.write_page(&page(0)).unwrap();
        w.write_page(&page(1)).unwrap();
        w.finish().unwrap();
        let data = FaxInData {
            reception: reception(),
            to: vec![],
        };
        let rec = commit_fax(inc, &data).unwrap();

        let (mail, decision) = process(&spool, &settings, &routes, &policy, &rec.id).unwrap();
        assert_eq!(decision, Decision::Done);
        assert_eq!(
            spool.get(&rec.id).unwrap().0,
            Area::Done,
            "fax job archived"
        );
        let (area, mrec) = spool.get(&mail).unwrap();
        assert_eq!(area, Area::Queue);
        let md: MailOutData = mail_out::data_of(&mrec).unwrap();
        assert_eq!(md.envelope.to, vec!["fax@localhost"]);
        assert_eq!(
            md.purpose,
            Purpose::Fax {
                fax_job: Some(rec.id.clone())
            }
        );
        let raw = std::fs::read(spool.payload_path(&mail, MESSAGE_FILE).unwrap()).unwrap();
        let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(m.subject(), Some("Fax from +49 30 1234 (2 pages)"));
        let body = m.body_text(0).unwrap();
        assert!(
            body.contains("partial reception: carrier lost on page 3"),
            "{body}"
        );
        assert!(body.contains("Bad lines: 3"), "{body}");
        // The fax file (the HTML version's page pictures are parts too).
        let tif = m
            .attachments()
            .find(|a| mail_parser::MimeHeaders::is_content_type(*a, "image", "tiff"))
            .unwrap()
            .contents();
        assert!(tiff::check(tif, Profile::S).is_empty());
        assert_eq!(
            tiff::read_bytes(tif, Limits::default()).unwrap(),
            vec![page(0), page(1)]
        );
    }

    /// After a crash between queueing the mail and finishing the fax job, processing again
    /// finds the mail job already there: one email, not two.
    #[test]
    fn reprocessing_after_a_crash_does_not_duplicate_mail() {
        let (_d, spool, settings, routes, policy) = setup();
        let tif = super::compose::write_tiff(&[page(0)], Profile::S).unwrap();
        let rec = queue_fax(
            &spool,
            &FaxInData {
                reception: reception(),
                to: vec![],
            },
            &tif,
        )
        .unwrap();
        // The first run got as far as queueing the mail job, then died.
        let earlier = mail_out::queue(
            &spool,
            &MailOutData {
                envelope: crate::delivery::MailEnvelope {
                    from: "a@b.example".into(),
                    to: vec!["c@d.example".into()],
                    envid: None,
                },
                purpose: Purpose::Fax { fax_job: None },
                subject: String::new(),
                file: MESSAGE_FILE.into(),
            },
            b"x",
            Some((&rec.id, Child::Mail(1))),
        )
        .unwrap();
        let (mail, _) = process(&spool, &settings, &routes, &policy, &rec.id).unwrap();
        assert_eq!(mail, earlier.id);
        let queued = spool.load().unwrap().jobs;
        assert_eq!(queued.len(), 1, "{queued:?}");
    }

    /// A damaged TIFF is still mailed (as received), never dropped.
    #[test]
    fn undecodable_fax_is_mailed_as_received() {
        let (_d, spool, settings, routes, policy) = setup();
        let junk = b"II*\0\x08\0\0\0\xff\xff broken".to_vec();
        let rec = queue_fax(
            &spool,
            &FaxInData {
                reception: reception(),
                to: vec![],
            },
            &junk,
        )
        .unwrap();
        let (mail, _) = process(&spool, &settings, &routes, &policy, &rec.id).unwrap();
        let raw = std::fs::read(spool.payload_path(&mail, MESSAGE_FILE).unwrap()).unwrap();
        let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(m.attachment(0).unwrap().contents(), &junk[..]);
        let md = mail_out::data_of(&spool.get(&mail).unwrap().1).unwrap();
        assert!(md.envelope.to.contains(&"postmaster@localhost".to_string()));
    }
}
