//! A fax being received, on disk page by page: every page the sender is told was received
//! (MCF) is already in the spool, so a crash, SIGKILL or power cut mid-call loses no
//! confirmed page.
//!
//! The reception lives in the spool's `receiving/<id>/` ([`Spool::begin_reception`]):
//!
//! ```text
//! call.json      who called which line and when (written and fsynced before the first page)
//! fax.part.tif   TIFF-F (Profile F, MMR: any width and resolution a caller may send), one page
//!                appended and fsynced per confirmed page; the writer links a page from the
//!                previous IFD only once it is whole, so the file always holds whole pages
//! ```
//!
//! At hang-up [`Receiving::commit`] completes the TIFF (page totals), names it `fax.tif` and
//! commits the `FaxIn` job (the spool's rename into `queue/`: the one commit point). At
//! start-up [`recover`] commits what a dead run left as a *partial* fax whose email says how
//! many pages arrived and that the call broke off; a reception with no confirmed page is
//! removed. Either way the rename happens once, so the fax is delivered exactly once.
//!
//! Memory stays flat however long the fax is: a page is coded and written when it is
//! accepted, and nothing keeps it after.

use std::fs::File;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::fax_in::{FAX_FILE, FaxInData};
use super::{Completion, Reception, Source};
use crate::fax::t30::pages::ReceivedPage;
use crate::fax::t30::{CallReport, SinkError};
use crate::image::codec::Coding;
use crate::image::tiff::{self, Limits, Profile, Writer};
use crate::spool::{Incoming, JobId, JobKind, NewJob, Spool, SpoolError};

/// The call's facts known at answer time.
pub const CALL_FILE: &str = "call.json";
/// The pages confirmed so far.
pub const PART_FILE: &str = "fax.part.tif";
/// The coding of the file on disk (ours): Profile F with MMR holds every width and resolution
/// T.30 can negotiate and is the most compact; the onramp re-codes it to what the route asks.
const PART_PROFILE: Profile = Profile::F(Coding::Mmr);

/// Who called, on which line, when: written at answer time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallStart {
    /// The line (modem name, or `loopback`).
    pub line: String,
    /// Caller ID (`NMBR=`).
    #[serde(default)]
    pub caller: Option<String>,
    /// Dialled number (`NDID=`).
    #[serde(default)]
    pub did: Option<String>,
    /// When the call was answered, seconds since the Unix epoch.
    pub answered: i64,
}

/// A reception in progress. Dropped without [`Receiving::commit`], it is removed.
pub struct Receiving {
    inc: Incoming,
    call: CallStart,
    writer: Option<Writer<File>>,
    pages: u32,
    resolution: Option<(u32, u32)>,
    bad_lines: u32,
}

impl std::fmt::Debug for Receiving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiving")
            .field("id", self.inc.id())
            .field("call", &self.call)
            .field("pages", &self.pages)
            .finish()
    }
}

/// Why a reception could not be stored.
fn sink_err(e: impl std::fmt::Display) -> SinkError {
    SinkError(e.to_string())
}

impl Receiving {
    /// Starts a reception in the spool: `call.json` is durable when this returns.
    pub fn begin(spool: &Spool, call: CallStart) -> Result<Receiving, SpoolError> {
        let mut inc = spool.begin_reception(JobKind::FaxIn)?;
        let bytes = serde_json::to_vec_pretty(&call).unwrap_or_default();
        let mut f = inc.create_file(CALL_FILE)?;
        f.write_bytes(&bytes)?;
        let path = f.path().to_path_buf();
        f.into_file()
            .sync_all()
            .map_err(|e| SpoolError::io(&path, e))?;
        Ok(Receiving {
            inc,
            call,
            writer: None,
            pages: 0,
            resolution: None,
            bad_lines: 0,
        })
    }

    /// The job id the fax will have.
    pub fn id(&self) -> &JobId {
        self.inc.id()
    }

    /// Pages stored so far.
    pub fn pages(&self) -> u32 {
        self.pages
    }

    /// Appends an accepted page and makes it durable (called before the engine answers MCF).
    pub fn append(&mut self, page: &ReceivedPage) -> Result<(), SinkError> {
        if self.writer.is_none() {
            let f = self.inc.create_file(PART_FILE).map_err(sink_err)?;
            self.writer = Some(Writer::new(f.into_file(), PART_PROFILE).map_err(sink_err)?);
        }
        let Some(w) = self.writer.as_mut() else {
            return Err(SinkError("no page file".into()));
        };
        w.write_page(&page.page).map_err(sink_err)?;
        w.flush().map_err(sink_err)?;
        w.get_ref().sync_data().map_err(sink_err)?;
        if self.resolution.is_none() {
            let r = page.page.resolution();
            self.resolution = Some((r.x_dpi.round() as u32, r.y_dpi.round() as u32));
        }
        self.pages += 1;
        self.bad_lines = self.bad_lines.saturating_add(page.quality.bad_rows);
        Ok(())
    }

    /// At hang-up: commits the pages received as a `FaxIn` job (complete, or partial with the
    /// call's cause). `None` when no page arrived (the reception is removed). If the commit
    /// fails the reception stays in `receiving/` and the next start delivers it.
    pub fn commit(
        mut self,
        report: &CallReport,
        duration_secs: u64,
    ) -> Result<Option<JobId>, SpoolError> {
        let Some(w) = self.writer.take() else {
            return Ok(None);
        };
        let completion = match report.cause {
            Some(crate::fax::t30::Cause::Ok) => Completion::Complete,
            Some(c) => Completion::Partial {
                cause: c.meaning().into(),
            },
            None => Completion::Partial {
                cause: "the call did not end".into(),
            },
        };
        let reception = Reception {
            source: Source::Modem,
            line: Some(self.call.line.clone()),
            did: self.call.did.clone(),
            caller: self.call.caller.clone(),
            remote_id: report.remote_id.clone(),
            subaddress: report.subaddress.clone(),
            pages: self.pages,
            duration_secs,
            speed: report.modulation.map(|m| m.bps()),
            resolution: self.resolution,
            bad_lines: self.bad_lines,
            received: self.call.answered,
            completion,
        };
        let done = (|| {
            let path = self.inc.file_path(PART_FILE);
            let f = w.finish().map_err(|e| tiff_io(path.as_deref(), e))?;
            f.sync_data()
                .map_err(|e| SpoolError::io(path.as_deref().unwrap_or(".".as_ref()), e))?;
            self.inc.rename_file(PART_FILE, FAX_FILE)?;
            Ok::<_, SpoolError>(())
        })();
        if let Err(e) = done {
            self.inc.keep();
            return Err(e);
        }
        commit(self.inc, reception).map(Some)
    }
}

fn tiff_io(path: Option<&std::path::Path>, e: tiff::TiffError) -> SpoolError {
    SpoolError::io(
        path.unwrap_or(".".as_ref()),
        std::io::Error::other(e.to_string()),
    )
}

/// Commits `inc` as a `FaxIn` job; on failure the reception is kept for the next start.
fn commit(mut inc: Incoming, reception: Reception) -> Result<JobId, SpoolError> {
    let data = FaxInData {
        reception,
        to: Vec::new(),
    };
    // A reception must not be lost to a full disk: a failed commit leaves the directory in
    // `receiving/`, where the next start finds it again.
    inc.retain_on_failure();
    inc.commit(NewJob::new(crate::job::JobData::FaxIn(data)))
        .map(|r| r.id)
}

/// What start-up did with one reception left by a dead run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    /// Committed as a partial fax of this many pages.
    Partial {
        /// The `FaxIn` job.
        job: JobId,
        /// Pages that had been confirmed.
        pages: u32,
    },
    /// No page had been confirmed: removed.
    Empty,
}

/// The words of a recovered fax's partial-reception cause.
pub fn broke_off(pages: u32) -> String {
    format!(
        "the call broke off after page {pages}: the gateway stopped (crash or power cut) during \
         the call; the pages received before that are attached"
    )
}

/// At start-up (before any line answers): commits every reception a dead run left in
/// `receiving/` as a partial fax, or removes it when no page was confirmed. A reception that
/// cannot be read now is left for the operator (logged); nothing is ever deleted that holds
/// a page.
pub fn recover(spool: &Spool) -> Result<Vec<Recovered>, SpoolError> {
    let (left, damaged) = spool.unfinished_receptions(JobKind::FaxIn)?;
    for d in damaged {
        warn!(
            "spool: unknown entry {} in receiving/: {}",
            d.path.display(),
            d.reason
        );
    }
    let mut out = Vec::new();
    for inc in left {
        let id = inc.id().clone();
        match recover_one(inc) {
            Ok(r) => {
                match &r {
                    Recovered::Partial { job, pages } => info!(
                        job = %job,
                        pages,
                        "reception cut short by a stop of the gateway: delivered as a partial fax"
                    ),
                    Recovered::Empty => {
                        info!(job = %id, "reception with no confirmed page removed")
                    }
                }
                out.push(r);
            }
            Err(e) => warn!(job = %id, "cannot recover the reception, left in place: {e}"),
        }
    }
    Ok(out)
}

fn recover_one(mut inc: Incoming) -> Result<Recovered, SpoolError> {
    let read_json = |inc: &Incoming| -> Option<CallStart> {
        let p = inc.file_path(CALL_FILE)?;
        let bytes = std::fs::read(p).ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    let call = read_json(&inc).unwrap_or(CallStart {
        line: "unknown".into(),
        caller: None,
        did: None,
        answered: 0,
    });
    let part = inc.file_path(PART_FILE);
    let final_file = inc.file_path(FAX_FILE);
    // A run that died between naming the file and committing left `fax.tif` (complete).
    let (src, name) = match (part, final_file) {
        (_, Some(f)) => (f, FAX_FILE),
        (Some(p), None) => (p, PART_FILE),
        (None, None) => {
            drop(inc);
            return Ok(Recovered::Empty);
        }
    };
    let file = File::open(&src).map_err(|e| SpoolError::io(&src, e))?;
    let mut reader = match tiff::Reader::new(std::io::BufReader::new(file), Limits::default()) {
        Ok(r) => r,
        // Not even one whole page (the first IFD was never linked).
        Err(_) => {
            drop(inc);
            return Ok(Recovered::Empty);
        }
    };
    // Re-write the whole pages into a finished file, one page in memory at a time.
    let out_path = src.with_file_name("fax.rec.tif");
    let mut pages = 0u32;
    let mut resolution = None;
    {
        let out = crate::private_fs::create(&out_path).map_err(|e| SpoolError::io(&out_path, e))?;
        let mut w = Writer::new(out, PART_PROFILE).map_err(|e| tiff_io(Some(&out_path), e))?;
        // A page cut short by the crash is not linked and is never seen here; a damaged one
        // ends the pages that count.
        while let Ok(Some(page)) = reader.next_page() {
            if resolution.is_none() {
                let r = page.resolution();
                resolution = Some((r.x_dpi.round() as u32, r.y_dpi.round() as u32));
            }
            w.write_page(&page)
                .map_err(|e| tiff_io(Some(&out_path), e))?;
            pages += 1;
        }
        let f = w.finish().map_err(|e| tiff_io(Some(&out_path), e))?;
        f.sync_all().map_err(|e| SpoolError::io(&out_path, e))?;
    }
    if pages == 0 {
        let _ = std::fs::remove_file(&out_path);
        drop(inc);
        return Ok(Recovered::Empty);
    }
    std::fs::rename(&out_path, &src).map_err(|e| SpoolError::io(&src, e))?;
    if name == PART_FILE {
        inc.rename_file(PART_FILE, FAX_FILE)?;
    }
    let reception = Reception {
        source: Source::Modem,
        line: Some(call.line),
        did: call.did,
        caller: call.caller,
        remote_id: None,
        subaddress: None,
        pages,
        duration_secs: 0,
        speed: None,
        resolution,
        bad_lines: 0,
        received: call.answered,
        completion: Completion::Partial {
            cause: broke_off(pages),
        },
    };
    let job = commit(inc, reception)?;
    Ok(Recovered::Partial { job, pages })
}
