//! Hands the offramp's report jobs to mail delivery.
//!
//! The offramp (`offramp::jobs`) queues each delivery report as a `MailOut` job whose data is
//! an [`offramp::jobs::MailOutJob`](crate::offramp::jobs::MailOutJob) and whose message is the
//! payload `mail.eml`; mail delivery (`delivery::mail_out`) runs `MailOut` jobs whose data is a
//! [`MailOutData`] and whose message is `message.eml`. Until the two agree on one shape, the
//! daemon adopts every report job before delivery sees it: it adds `message.eml` (a durable
//! copy: temp → fsync → rename → fsync the directory) and rewrites the record to the delivery
//! shape, keeping the offramp's fields (`report`, `message`) alongside. Adoption is idempotent
//! and runs under the same lock as the onramp's delivery pass (see `super::runner`), so
//! delivery never sees a report job in the other shape.

use std::fs::{self, File};
use std::io::{Read, Write};

use crate::delivery::Envelope;
use crate::delivery::mail_out::{MESSAGE_FILE, MailOutData, Purpose};
use crate::offramp::jobs::MailOutJob;
use crate::spool::{Area, JobId, JobKind, JobState, Spool, SpoolError};

/// Largest report message copied (ours; a DSN with the full original message stays far below
/// the listener's SIZE limit plus headers).
pub const MAX_REPORT_BYTES: u64 = 128 * 1024 * 1024;

/// True when `data` is in the offramp's report shape and not yet adopted.
pub fn needs_adoption(data: &serde_json::Value) -> bool {
    data.get("purpose").is_none() && data.get("report").is_some() && data.get("file").is_some()
}

fn io(path: &std::path::Path) -> impl Fn(std::io::Error) -> SpoolError + '_ {
    move |e| SpoolError::io(path, e)
}

/// Adopts report job `id` if it needs it; returns whether it did.
pub fn adopt(spool: &Spool, id: &JobId) -> Result<bool, SpoolError> {
    let (area, rec) = spool.get(id)?;
    if area != Area::Queue || rec.kind != JobKind::MailOut || !needs_adoption(&rec.data) {
        return Ok(false);
    }
    let Ok(job) = serde_json::from_value::<MailOutJob>(rec.data.clone()) else {
        return Ok(false);
    };
    let src = spool.payload_path(id, &job.file)?;
    let mut raw = Vec::new();
    File::open(&src)
        .and_then(|f| f.take(MAX_REPORT_BYTES).read_to_end(&mut raw))
        .map_err(io(&src))?;
    let dst = spool.payload_path(id, MESSAGE_FILE)?;
    if !dst.exists() {
        let dir = dst.parent().unwrap_or(spool.root()).to_path_buf();
        let tmp = dir.join(format!("{MESSAGE_FILE}.adopt"));
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&raw).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        fs::rename(&tmp, &dst).map_err(io(&dst))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&dir))?;
    }
    let subject = crate::offramp::mime::headers(&raw)
        .subject
        .unwrap_or_default();
    let data = MailOutData {
        envelope: Envelope {
            from: job.envelope.from.clone(),
            to: job.envelope.to.clone(),
            envid: job.envelope.envid.clone(),
        },
        purpose: Purpose::Report,
        subject,
    };
    let mut value = serde_json::to_value(&data).unwrap_or_default();
    if let (Some(obj), Ok(serde_json::Value::Object(orig))) =
        (value.as_object_mut(), serde_json::to_value(&job))
    {
        for (k, v) in orig {
            obj.entry(k).or_insert(v);
        }
    }
    let mut changed = false;
    spool.update(id, |r| {
        if r.state == JobState::Queued && needs_adoption(&r.data) {
            r.data = value;
            changed = true;
        }
        Ok(())
    })?;
    Ok(changed)
}

/// Adopts every report job waiting in the queue; returns how many.
pub fn adopt_all(spool: &Spool) -> Result<usize, SpoolError> {
    let mut n = 0;
    for rec in spool.load()?.jobs {
        if rec.kind == JobKind::MailOut && needs_adoption(&rec.data) {
            match adopt(spool, &rec.id) {
                Ok(true) => n += 1,
                Ok(false) | Err(SpoolError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offramp::jobs::{MailEnvelope, ReportKind};
    use crate::spool::{NewJob, SpoolOptions};

    #[test]
    fn report_job_becomes_deliverable_once() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), SpoolOptions::default()).unwrap();
        let parent = spool.begin(JobKind::Message).unwrap();
        let pid = parent.id().clone();
        parent.commit(NewJob::new(serde_json::json!({}))).unwrap();
        let job = MailOutJob {
            envelope: MailEnvelope {
                from: String::new(),
                to: vec!["ann@example.org".into()],
                envid: None,
            },
            file: "mail.eml".into(),
            report: ReportKind::Dsn,
            message: pid.clone(),
        };
        let mut inc = spool.begin_child(JobKind::MailOut, &pid, 9000).unwrap();
        inc.write_file("mail.eml", b"Subject: Delivered: hello\r\n\r\nok\r\n")
            .unwrap();
        let rec = inc
            .commit(NewJob::new(serde_json::to_value(&job).unwrap()))
            .unwrap();
        assert_eq!(adopt_all(&spool).unwrap(), 1);
        let (_, after) = spool.get(&rec.id).unwrap();
        let data = crate::delivery::mail_out::data_of(&after).unwrap();
        assert_eq!(data.envelope.to, vec!["ann@example.org".to_string()]);
        assert_eq!(data.purpose, Purpose::Report);
        assert_eq!(data.subject, "Delivered: hello");
        assert_eq!(after.data["report"], "dsn");
        let copy = fs::read(spool.payload_path(&rec.id, MESSAGE_FILE).unwrap()).unwrap();
        assert_eq!(copy, b"Subject: Delivered: hello\r\n\r\nok\r\n");
        assert_eq!(adopt_all(&spool).unwrap(), 0);
        assert!(!adopt(&spool, &rec.id).unwrap());
    }
}
