//! The inbox folder: files dropped into `onramp.inbox` are sent on as received faxes.
//!
//! This module owns deciding when a dropped file is complete, reading its optional sidecar,
//! turning it into fax pages ([`document_pages`]: a fax TIFF keeps its exact pixels; PDF,
//! pictures, other TIFFs and text go through [`crate::image::render`]) and committing it as a
//! `FaxIn` job whose TIFF is RFC 3949 Profile S. Poll-based (a directory scan
//! per tick): robust on every filesystem, network mounts included, and nothing to leak.
//!
//! **When is a file complete?** ([`Settler`], PURE) A file counts once it was *renamed into
//! place* or has been *unchanged for `onramp.inbox_settle`*. A rename changes a file's ctime but
//! not its mtime, while every write moves both; so a file whose ctime is later than its mtime
//! had its metadata changed after its last write — renamed in (or `cp -p`/`touch`-ed after
//! writing) — and is taken at once. (Kernels stamp files with a coarse clock, a few ms: a
//! rename within the same tick as the last write leaves ctime = mtime, and such a file simply
//! waits the settle time — later, never early.) Anything else waits until size, mtime and ctime have
//! stayed the same for the settle time. Names starting with `.` or ending in `.tmp`, `.part`
//! or `~` are temporary files and never taken; `NAME.meta` is the sidecar of `NAME`.
//!
//! **Sidecar** ([`Sidecar::parse`], PURE): write `NAME.meta` *before* `NAME`; lines
//! `key: value`, `#` comments. Keys: `caller`, `did`, `remote_id`, `line`, `subaddress` (route
//! keys and template fields) and `to` (recipients replacing the route's; comma-separated,
//! repeatable). Unknown keys are an error, like in the configuration.
//!
//! **What happens to the file**: committed to the spool as a Profile S TIFF, then removed
//! (with its sidecar). A file that cannot be used is moved to `.failed/` in the inbox with a
//! `NAME.error` text beside it, and logged.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;
use tracing::{error, info};

use crate::logging::untrusted;

use super::fax_in::{self, FaxInData};
use super::{Completion, Reception, Source};
use crate::image::Page;
use crate::image::render::{Budget, Kind, Options as RenderOptions, render_part};
use crate::image::tiff::{self, Limits};
use crate::scheduler::Timestamp;
use crate::spool::{JobRecord, Spool, SpoolError};

/// Largest file taken from the inbox (ours).
pub const MAX_INBOX_FILE: u64 = 64 * 1024 * 1024;
/// Largest sidecar (ours).
pub const MAX_SIDECAR: u64 = 64 * 1024;
/// Most directory entries looked at per scan (ours): a flooded inbox is worked off over
/// several ticks instead of in one unbounded pass.
pub const MAX_SCAN_ENTRIES: usize = 10_000;
/// Where unusable files go, inside the inbox.
pub const FAILED_DIR: &str = ".failed";
/// Sidecar file suffix.
pub const SIDECAR_SUFFIX: &str = ".meta";

/// What a scan saw of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// File name (no directory).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Last data change, nanoseconds since the epoch.
    pub mtime_ns: i128,
    /// Last status change, nanoseconds since the epoch.
    pub ctime_ns: i128,
}

/// True for names the inbox never takes as documents: temporary files and sidecars.
pub fn is_ignored(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with(".tmp")
        || name.ends_with(".part")
        || name.ends_with('~')
        || name.ends_with(SIDECAR_SUFFIX)
}

/// PURE: decides when inbox files are complete (see the module docs).
#[derive(Debug, Clone)]
pub struct Settler {
    settle: Duration,
    /// Last observation of each pending file and when it was first seen in that state.
    pending: HashMap<String, (Observation, Timestamp)>,
}

impl Settler {
    /// A settler with the settle time `onramp.inbox_settle`.
    pub fn new(settle: Duration) -> Settler {
        Settler {
            settle,
            pending: HashMap::new(),
        }
    }

    /// Feeds one scan taken at `now`; returns the names that are complete, in name order.
    /// Files no longer present are forgotten.
    pub fn observe(&mut self, files: Vec<Observation>, now: Timestamp) -> Vec<String> {
        let mut ready = Vec::new();
        let mut next = HashMap::new();
        for o in files {
            if is_ignored(&o.name) {
                continue;
            }
            if o.ctime_ns > o.mtime_ns {
                ready.push(o.name.clone());
                continue;
            }
            let since = match self.pending.get(&o.name) {
                Some((prev, t)) if *prev == o => *t,
                _ => now,
            };
            if now.since(since) >= self.settle && since != now {
                ready.push(o.name.clone());
            } else {
                next.insert(o.name.clone(), (o, since));
            }
        }
        self.pending = next;
        ready.sort();
        ready
    }

    /// When a pending file settles if nothing changes (for the caller's timer).
    pub fn poll_at(&self) -> Option<Timestamp> {
        self.pending
            .values()
            .map(|(_, t)| t.plus(self.settle))
            .min()
    }
}

/// The sidecar's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sidecar {
    /// Caller ID.
    pub caller: Option<String>,
    /// Dialled number.
    pub did: Option<String>,
    /// Remote station ID.
    pub remote_id: Option<String>,
    /// Line name.
    pub line: Option<String>,
    /// T.33 subaddress.
    pub subaddress: Option<String>,
    /// Recipients replacing the route's.
    pub to: Vec<String>,
}

/// A sidecar that cannot be used (the dropper's fault).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SidecarError {
    /// A line without `:`.
    #[error("sidecar line {0}: expected `key: value`")]
    Syntax(usize),
    /// A key we do not know.
    #[error(
        "sidecar line {line}: unknown key `{key}` (caller, did, remote_id, line, subaddress, to)"
    )]
    UnknownKey {
        /// 1-based line.
        line: usize,
        /// The key.
        key: String,
    },
    /// A `to` value that is not an address.
    #[error("sidecar line {line}: `{value}` is not a mail address")]
    BadAddress {
        /// 1-based line.
        line: usize,
        /// The value.
        value: String,
    },
    /// Over [`MAX_SIDECAR`] or not UTF-8.
    #[error("sidecar is not UTF-8 text of at most {MAX_SIDECAR} bytes")]
    NotText,
}

impl Sidecar {
    /// Parses sidecar bytes.
    pub fn parse(bytes: &[u8]) -> Result<Sidecar, SidecarError> {
        if bytes.len() as u64 > MAX_SIDECAR {
            return Err(SidecarError::NotText);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| SidecarError::NotText)?;
        let mut s = Sidecar::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line.split_once(':').ok_or(SidecarError::Syntax(i + 1))?;
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            // Values become header text and route keys: no control characters, bounded.
            let v: String = v.chars().filter(|c| !c.is_control()).take(200).collect();
            let slot = match k.as_str() {
                "caller" => &mut s.caller,
                "did" => &mut s.did,
                "remote_id" => &mut s.remote_id,
                "line" => &mut s.line,
                "subaddress" => &mut s.subaddress,
                "to" => {
                    // An RFC 5322 address list: `a@x;b@evil` is not two addresses, nor one.
                    let list = crate::config::parse_address_list(&v).map_err(|bad| {
                        SidecarError::BadAddress {
                            line: i + 1,
                            value: bad,
                        }
                    })?;
                    s.to.extend(list);
                    continue;
                }
                _ => {
                    return Err(SidecarError::UnknownKey {
                        line: i + 1,
                        key: k,
                    });
                }
            };
            *slot = (!v.is_empty()).then_some(v);
        }
        Ok(s)
    }
}

/// Why a dropped file could not become a fax.
#[derive(Debug, Error)]
pub enum InboxError {
    /// The file or its sidecar could not be read or removed (environment).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Over [`MAX_INBOX_FILE`].
    #[error("file is larger than {MAX_INBOX_FILE} bytes")]
    TooLarge,
    /// The sidecar is unusable.
    #[error(transparent)]
    Sidecar(#[from] SidecarError),
    /// The file's content cannot be faxed (the dropper's fault).
    #[error("{0}")]
    Document(String),
    /// The spool refused (our storage; the file stays in the inbox and is tried again).
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

impl InboxError {
    /// True when trying again later may work (the file stays where it is).
    pub fn is_temporary(&self) -> bool {
        matches!(self, InboxError::Spool(_) | InboxError::Io { .. })
    }
}

/// Most time rendering one dropped document may take (ours): a hostile or broken PDF cannot
/// hold the onramp for longer.
pub const RENDER_BUDGET: Duration = Duration::from_secs(120);

/// Turns a dropped document into fax pages (1728 wide at 204 dpi). A TIFF already at fax
/// geometry keeps its exact pixels (only a density Profile S cannot carry is resampled);
/// anything else — PDF, pictures, other TIFFs, text — goes through the renderer
/// ([`crate::image::render`]) with `opts` (the `[offramp]` resolution and paper: documents
/// look the same whichever way they travel). `budget` is asked before each page. PURE.
pub fn document_pages(
    bytes: &[u8],
    name: &str,
    opts: &RenderOptions,
    budget: &mut dyn Budget,
) -> Result<Vec<Page>, InboxError> {
    let doc = |m: String| InboxError::Document(m);
    if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        let fax = tiff::read_bytes(bytes, Limits::default()).and_then(|pages| {
            if pages.is_empty() {
                return Err(tiff::TiffError::Malformed {
                    page: 0,
                    what: "no pages".into(),
                });
            }
            Ok(pages)
        });
        if let Ok(pages) = fax {
            let mapped: Result<Vec<Page>, String> =
                pages.into_iter().map(to_fax_geometry).collect();
            if let Ok(p) = mapped {
                return Ok(p);
            }
        }
        // Not a bilevel fax-geometry TIFF (a grey scan, an A4 300 dpi page): render it.
    }
    // Text has no magic number: the name says so (and the bytes have no binary controls),
    // or the bytes are clearly UTF-8 text.
    let mime = match text_type_of(name) {
        Some(t) => no_binary_controls(bytes).then_some(t),
        None => (std::str::from_utf8(bytes).is_ok() && no_binary_controls(bytes))
            .then_some("text/plain"),
    };
    let kind = Kind::sniff(bytes, mime).ok_or_else(|| {
        doc(
            "not a document faxgate renders (TIFF, PDF, PNG, JPEG, GIF, BMP, WebP, PNM, text)"
                .into(),
        )
    })?;
    let r = render_part(name, bytes, kind, opts, budget).map_err(|e| doc(e.to_string()))?;
    if r.pages.is_empty() {
        return Err(doc(format!("{name}: nothing to fax")));
    }
    Ok(r.pages)
}

/// The MIME type of a text document named `name` (`.txt`, `.text`; `.htm`, `.html`).
fn text_type_of(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    match ext.as_str() {
        "txt" | "text" => Some("text/plain"),
        "htm" | "html" => Some("text/html"),
        _ => None,
    }
}

/// True for bytes without C0 controls other than tab, line ends and form feed (any
/// 8-bit text encoding passes; a binary file has NULs or other controls).
fn no_binary_controls(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|&b| (b >= 0x20 && b != 0x7f) || matches!(b, b'\t' | b'\n' | b'\r' | 0x0c))
}

/// A TIFF page already at fax width, with its vertical density brought to standard or fine.
fn to_fax_geometry(p: Page) -> Result<Page, String> {
    // Fax width at 200 or 204 dpi only; everything else is the renderer's to place.
    let r = p.resolution();
    if p.width() != 1728 || !(199.0..=205.0).contains(&r.x_dpi) {
        return Err(format!(
            "{} pixels at {} dpi is not a fax page (1728 at 204 dpi)",
            p.width(),
            r.x_dpi
        ));
    }
    let fits = [98.0f32, 100.0, 196.0, 200.0]
        .iter()
        .any(|y| (r.y_dpi - y).abs() < 0.6);
    Ok(if fits {
        p
    } else if r.y_dpi > 150.0 {
        crate::image::resample(&p, 196.0)
    } else {
        crate::image::resample(&p, 98.0)
    })
}

/// The inbox folder as the daemon watches it.
#[derive(Debug)]
pub struct Inbox {
    dir: PathBuf,
    settler: Settler,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> InboxError + '_ {
    move |source| InboxError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Inbox {
    /// Watches `dir` (created if missing) with the settle time `settle`.
    pub fn new(dir: PathBuf, settle: Duration) -> Result<Inbox, InboxError> {
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(Inbox {
            dir,
            settler: Settler::new(settle),
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// One scan at `now`: the complete files, in name order.
    pub fn scan(&mut self, now: Timestamp) -> Result<Vec<PathBuf>, InboxError> {
        let mut seen = Vec::new();
        for e in fs::read_dir(&self.dir)
            .map_err(io_err(&self.dir))?
            .take(MAX_SCAN_ENTRIES)
        {
            let Ok(e) = e else { continue };
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            let Ok(m) = e.metadata() else { continue };
            if !m.is_file() {
                continue;
            }
            seen.push(Observation {
                name,
                size: m.len(),
                mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
                ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
            });
        }
        Ok(self
            .settler
            .observe(seen, now)
            .into_iter()
            .map(|n| self.dir.join(n))
            .collect())
    }

    /// When the next pending file settles.
    pub fn poll_at(&self) -> Option<Timestamp> {
        self.settler.poll_at()
    }

    /// Takes one complete file (see [`take_file`]).
    pub fn take(
        &self,
        spool: &Spool,
        path: &Path,
        now: Timestamp,
        opts: &RenderOptions,
    ) -> Option<JobRecord> {
        take_file(&self.dir, spool, path, now, opts)
    }
}

/// Takes one complete file from the inbox `dir`: commits it as a `FaxIn` job received at
/// `now`, then removes it and its sidecar. A file that cannot be used is moved to `.failed/`
/// with a note; a temporary failure leaves it in place for the next scan. Blocking.
pub fn take_file(
    dir: &Path,
    spool: &Spool,
    path: &Path,
    now: Timestamp,
    opts: &RenderOptions,
) -> Option<JobRecord> {
    match ingest_with(spool, path, now, Source::Inbox, &[], opts) {
        Ok(rec) => {
            for p in [path.to_path_buf(), sidecar_path(path)] {
                if let Err(e) = fs::remove_file(&p)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    error!(
                        "inbox: {} is queued as {} but cannot be removed: {e}",
                        untrusted(&p.to_string_lossy()),
                        rec.id
                    );
                }
            }
            info!(job = %rec.id, file = %untrusted(&path.to_string_lossy()), "inbox file queued as a received fax");
            Some(rec)
        }
        Err(e) if e.is_temporary() => {
            error!(file = %untrusted(&path.to_string_lossy()), "inbox: will try again: {}", untrusted(&e.to_string()));
            None
        }
        Err(e) => {
            error!(file = %untrusted(&path.to_string_lossy()), "inbox: file cannot be faxed, moved to {FAILED_DIR}/: {}", untrusted(&e.to_string()));
            park(dir, path, &e.to_string());
            None
        }
    }
}

/// Moves an unusable file (and its sidecar) to `.failed/` with a `NAME.error` note.
fn park(dir: &Path, path: &Path, why: &str) {
    let failed = dir.join(FAILED_DIR);
    let Some(name) = path.file_name() else { return };
    let r = crate::private_fs::create_dir_all(&failed)
        .and_then(|_| fs::rename(path, failed.join(name)))
        .and_then(|_| {
            let side = sidecar_path(path);
            if side.exists() {
                let mut n = name.to_os_string();
                n.push(SIDECAR_SUFFIX);
                fs::rename(&side, failed.join(n))?;
            }
            let mut n = name.to_os_string();
            n.push(".error");
            std::io::Write::write_all(
                &mut crate::private_fs::create(&failed.join(n))?,
                format!("{why}\n").as_bytes(),
            )
        });
    if let Err(e) = r {
        error!(file = %untrusted(&path.to_string_lossy()), "inbox: cannot move to {FAILED_DIR}/: {}", untrusted(&e.to_string()));
    }
}

/// Reads a regular file of at most `max` bytes (`None` when larger), not following a symlink
/// unless `follow`. A symlink, directory or device is a document error.
fn read_limited(path: &Path, max: u64, follow: bool) -> Result<Option<Vec<u8>>, InboxError> {
    use crate::read_limit::ReadError;
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = fs::OpenOptions::new();
    o.read(true);
    if !follow {
        o.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let f = match o.open(path) {
        Ok(f) => f,
        // O_NOFOLLOW on a symlink fails with ELOOP.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(InboxError::Document(format!(
                "{} is a symbolic link; the inbox takes regular files only",
                path.display()
            )));
        }
        Err(e) => return Err(io_err(path)(e)),
    };
    let m = f.metadata().map_err(io_err(path))?;
    if !m.is_file() {
        return Err(InboxError::Document(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    match crate::read_limit::read_file(f, path, max) {
        Ok(buf) => Ok(Some(buf)),
        Err(ReadError::TooLarge { .. }) => Ok(None),
        Err(ReadError::Io { source, .. }) => Err(io_err(path)(source)),
    }
}

/// `NAME.meta` beside `NAME`.
pub fn sidecar_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(SIDECAR_SUFFIX);
    PathBuf::from(s)
}

/// Reads `path` (and its sidecar), turns it into a Profile S TIFF and commits it as a `FaxIn`
/// job from `source` at `now`; `to`, when not empty, replaces the route's (and the sidecar's)
/// recipients. Does not remove anything. Used by the inbox and by `faxgate onramp submit`.
pub fn ingest_with(
    spool: &Spool,
    path: &Path,
    now: Timestamp,
    source: Source,
    to: &[String],
    opts: &RenderOptions,
) -> Result<JobRecord, InboxError> {
    // Whoever can write into the inbox must not make faxgate mail out a file it can read
    // (its relay password, the spool): inbox files are opened without following symlinks.
    // `submit` is the operator's own command and may name a link.
    let follow = source != Source::Inbox;
    let bytes = match read_limited(path, MAX_INBOX_FILE, follow)? {
        Some(b) => b,
        None => return Err(InboxError::TooLarge),
    };
    let side = sidecar_path(path);
    let sidecar = match read_limited(&side, MAX_SIDECAR, follow) {
        Ok(Some(b)) => Sidecar::parse(&b)?,
        Ok(None) => return Err(SidecarError::NotText.into()),
        Err(InboxError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Sidecar::default()
        }
        Err(e) => return Err(e),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // The I/O shell measures time for the renderer's page budget.
    let started = std::time::Instant::now();
    let mut budget = |_page: u32| started.elapsed() < RENDER_BUDGET;
    let pages = document_pages(&bytes, &name, opts, &mut budget)?;
    let tiff = super::compose::write_tiff(&pages, tiff::Profile::S)
        .map_err(|e| InboxError::Document(format!("cannot write the pages as TIFF: {e}")))?;
    let r = pages[0].resolution();
    let data = FaxInData {
        reception: Reception {
            source,
            line: sidecar.line.clone(),
            did: sidecar.did.clone(),
            caller: sidecar.caller.clone(),
            remote_id: sidecar.remote_id.clone(),
            subaddress: sidecar.subaddress.clone(),
            pages: pages.len() as u32,
            duration_secs: 0,
            speed: None,
            resolution: Some((r.x_dpi.round() as u32, r.y_dpi.round() as u32)),
            bad_lines: 0,
            received: i64::try_from(now.unix_secs()).unwrap_or(i64::MAX),
            completion: Completion::Complete,
        },
        to: if to.is_empty() {
            sidecar.to.clone()
        } else {
            to.to_vec()
        },
    };
    Ok(fax_in::queue_fax(spool, &data, &tiff)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(name: &str, size: u64, m: i128, c: i128) -> Observation {
        Observation {
            name: name.into(),
            size,
            mtime_ns: m,
            ctime_ns: c,
        }
    }

    #[test]
    fn settle_rules() {
        let mut s = Settler::new(Duration::from_secs(5));
        let t = |ms| Timestamp(ms);
        // Renamed into place (ctime after mtime): at once. Temporary names: never.
        let ready = s.observe(
            vec![
                obs("a.tif", 10, 100, 200),
                obs(".a.tif.part", 10, 100, 200),
                obs("x.tmp", 1, 1, 2),
                obs("a.tif.meta", 1, 1, 2),
                obs("b.pdf", 10, 100, 100),
            ],
            t(1_000),
        );
        assert_eq!(ready, vec!["a.tif"]);
        assert_eq!(s.poll_at(), Some(t(6_000)));
        // Still growing: the clock restarts.
        assert!(
            s.observe(vec![obs("b.pdf", 20, 150, 150)], t(4_000))
                .is_empty()
        );
        assert!(
            s.observe(vec![obs("b.pdf", 20, 150, 150)], t(8_999))
                .is_empty()
        );
        assert_eq!(
            s.observe(vec![obs("b.pdf", 20, 150, 150)], t(9_000)),
            vec!["b.pdf"]
        );
        // Gone files are forgotten.
        assert!(s.observe(vec![], t(10_000)).is_empty());
        assert_eq!(s.poll_at(), None);
        // A file seen for the first time is never ready on that same scan, whatever `now`.
        assert!(s.observe(vec![obs("c", 1, 5, 5)], t(0)).is_empty());
    }

    #[test]
    fn symlinks_are_not_followed_from_the_inbox() {
        let d = tempfile::tempdir().unwrap();
        let secret = d.path().join("secret");
        fs::write(&secret, b"relay password").unwrap();
        let link = d.path().join("evil.tif");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        assert!(matches!(
            read_limited(&link, 100, false),
            Err(InboxError::Document(m)) if m.contains("symbolic link")
        ));
        assert_eq!(
            read_limited(&link, 100, true).unwrap().unwrap(),
            b"relay password"
        );
        assert_eq!(
            read_limited(&secret, 5, false).unwrap(),
            None,
            "over the limit"
        );
        assert!(matches!(
            read_limited(d.path(), 100, false),
            Err(InboxError::Document(_))
        ));
        // The settler never even offers a symlink: scans skip non-regular entries.
        let mut inbox = Inbox::new(d.path().to_path_buf(), Duration::ZERO).unwrap();
        inbox.scan(Timestamp(0)).unwrap();
        let ready = inbox.scan(Timestamp(10)).unwrap();
        assert!(!ready.iter().any(|p| p.ends_with("evil.tif")), "{ready:?}");
    }

    proptest::proptest! {
        #[test]
        fn settler_takes_only_document_names(
            names in proptest::collection::vec("[.a-z~]{1,8}(\\.tmp|\\.part|\\.meta|\\.tif)?", 0..20),
            times in proptest::collection::vec(0i128..3, 0..20),
        ) {
            let mut s = Settler::new(Duration::from_millis(10));
            let obs: Vec<Observation> = names
                .iter()
                .zip(times.iter().chain(std::iter::repeat(&0)))
                .map(|(n, t)| Observation { name: n.clone(), size: 1, mtime_ns: 1, ctime_ns: 1 + t })
                .collect();
            for now in [0u64, 5, 20, 40] {
                for r in s.observe(obs.clone(), Timestamp(now)) {
                    proptest::prop_assert!(!is_ignored(&r));
                }
            }
        }
    }

    #[test]
    fn sidecar_parses_and_refuses() {
        let s = Sidecar::parse(
            b"# from the scanner\ncaller: +1 212 555 0123\nDID: 5550150\nremote_id: ACME\n\
              to: a@example.com, B <b@example.com>\nto: c@example.com\nline:\n",
        )
        .unwrap();
        assert_eq!(s.caller.as_deref(), Some("+1 212 555 0123"));
        assert_eq!(s.did.as_deref(), Some("5550150"));
        assert_eq!(s.remote_id.as_deref(), Some("ACME"));
        assert_eq!(s.line, None);
        assert_eq!(
            s.to,
            vec!["a@example.com", "B <b@example.com>", "c@example.com"]
        );
        assert_eq!(
            Sidecar::parse(b"colour: red\n").unwrap_err(),
            SidecarError::UnknownKey {
                line: 1,
                key: "colour".into()
            }
        );
        assert_eq!(
            Sidecar::parse(b"\nnonsense\n").unwrap_err(),
            SidecarError::Syntax(2)
        );
        assert!(matches!(
            Sidecar::parse(b"to: not an address\n"),
            Err(SidecarError::BadAddress { line: 1, .. })
        ));
        // One value, one recipient: no hidden second address behind `;`, `@` or `:`.
        for bad in [
            "a@x.example;b@evil.example",
            "a@x.example; b@evil.example",
            "a@x.example b@evil.example",
            "\"a@x.example\" b@evil.example",
            "friends: a@x.example, b@evil.example;",
            "A <a@x.example>, <b@evil.example",
            "a@b@evil.example",
        ] {
            let r = Sidecar::parse(format!("to: {bad}\n").as_bytes());
            assert!(
                matches!(r, Err(SidecarError::BadAddress { line: 1, .. })),
                "{bad}: {r:?}"
            );
        }
        let s = Sidecar::parse(b"to: \"Doe, John\" <j@x.example>, k@x.example\n").unwrap();
        assert_eq!(s.to, ["\"Doe, John\" <j@x.example>", "k@x.example"]);
        assert_eq!(
            Sidecar::parse(&[0xff, 0xfe]).unwrap_err(),
            SidecarError::NotText
        );
    }

    /// The README's promise: plain text is faxed, by name or by content; binary junk is not.
    #[test]
    fn plain_text_is_a_document() {
        use crate::image::render::Unlimited;
        let opts = RenderOptions::default();
        let text = b"Dear Sir,\n\nPlease find the order below.\n\tItem 1\x0cPage two\n";
        for name in ["order.txt", "ORDER.TXT", "order"] {
            let pages = document_pages(text, name, &opts, &mut crate::image::render::Unlimited)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!pages.is_empty(), "{name}");
            assert_eq!(pages[0].width(), 1728, "{name}");
        }
        let html = b"<html><body><p>Hello</p></body></html>";
        assert!(
            document_pages(html, "a.html", &opts, &mut crate::image::render::Unlimited).is_ok()
        );
        // Latin-1 text named .txt is text; binary named .txt is not.
        let latin1 = document_pages(b"caf\xe9\n", "menu.txt", &opts, &mut Unlimited);
        assert!(latin1.is_ok());
        for (junk, name) in [
            (&b"\0\x01\x02\xff"[..], "junk"),
            (b"\0\x01\x02\xff", "junk.txt"),
            (b"", "empty.txt"),
            (b"\x1b[2J", "esc"),
            (b"caf\xe9\n", "latin1-without-a-name"),
        ] {
            assert!(
                matches!(
                    document_pages(junk, name, &opts, &mut crate::image::render::Unlimited),
                    Err(InboxError::Document(_))
                ),
                "{name}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn sidecar_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = Sidecar::parse(&bytes);
        }

        #[test]
        fn document_pages_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let mut b = b"II*\0".to_vec();
            b.extend(bytes);
            let _ = document_pages(&b, "x.tif", &RenderOptions::default(), &mut crate::image::render::Unlimited);
        }
    }
}
