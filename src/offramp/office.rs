//! Office documents (Word, Excel, PowerPoint, OpenDocument, RTF) to PDF through LibreOffice,
//! so that they are faxed like any PDF (issue 18).
//!
//! The gateway never parses these formats itself: a `.docx` is a ZIP of XML written by dozens of
//! programs, and LibreOffice is the one free reader that lays them out as their authors saw
//! them. It is also a large program reading hostile input, so each document gets a converter of
//! its own, fenced in:
//!
//! - **one process per document**, in a process group of its own (`setsid`), killed as a whole
//!   (`kill(-pgid, SIGKILL)`) when it runs past `[offramp] office_time_limit`, past the
//!   message's rendering budget (`render_time_limit`), or when the gateway stops — and when the
//!   gateway dies (`PR_SET_PDEATHSIG`);
//! - **a private profile** (`-env:UserInstallation=file:///…`) in a private temporary directory
//!   (mode 0700) that also holds the input, the output, `HOME` and `TMPDIR`, removed afterwards:
//!   no document sees another's profile, macros or recovery files;
//! - **no network**: the converter starts in a new user and network namespace
//!   (`unshare(CLONE_NEWUSER | CLONE_NEWNET)`, see user_namespaces(7), network_namespaces(7)),
//!   which has only a loopback interface that is down — a document that links a remote picture
//!   or template cannot reach anyone. Where the kernel refuses the namespaces (user namespaces
//!   disabled by sysctl, or systemd's `RestrictNamespaces=` in force) the converter is **not**
//!   run without them: the attachment fails with the cause named, and the log says how to allow
//!   them (fail closed);
//! - **a clean environment**: only `PATH`, `HOME`, `TMPDIR` and `LANG` are set;
//! - **bounded output**: no file the converter writes may pass [`MAX_PDF_BYTES`]
//!   (`RLIMIT_FSIZE`), and the PDF is read with that limit.
//!
//! The converter runs where the offramp renders, when a message is split into fax jobs — never
//! while a modem is held. PURE parts: [`detect`], [`Format`], [`candidates`] and [`OfficeError`];
//! the I/O shell: [`resolve`] and [`to_pdf`].

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::image::render::ErrorKind;
use crate::image::render::budget::Budget;

use super::causes::Cause;

/// The largest PDF a conversion may produce, octets (also the limit on any file the converter
/// writes). A 1000-page text document is about 5 MB.
pub const MAX_PDF_BYTES: u64 = 64 * 1024 * 1024;

/// Default `[offramp] office_time_limit`, seconds (the value lives in `config`).
pub const DEFAULT_TIME_LIMIT_SECS: u64 = crate::config::DEFAULT_OFFICE_TIME_LIMIT_SECS;

/// How often the running converter is checked against its time limit and the message's
/// budget. Short enough that shutdown is not held up, long enough to cost nothing.
const POLL: Duration = Duration::from_millis(50);

/// The `PATH` the converter sees: where Debian installs `soffice` and what its start script
/// calls (`dirname`, `basename`, `uname`, …).
const CHILD_PATH: &str = "/usr/bin:/bin";

/// An office format the converter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Word 97–2003 (OLE2 compound file).
    Doc,
    /// Word 2007+ (Office Open XML, ECMA-376).
    Docx,
    /// OpenDocument text (ODF 1.2, OASIS).
    Odt,
    /// Rich Text Format.
    Rtf,
    /// Excel 97–2003.
    Xls,
    /// Excel 2007+.
    Xlsx,
    /// OpenDocument spreadsheet.
    Ods,
    /// PowerPoint 97–2003.
    Ppt,
    /// PowerPoint 2007+.
    Pptx,
    /// OpenDocument presentation.
    Odp,
}

/// How a format's file starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    /// A ZIP archive (`PK\3\4`): OOXML (ECMA-376 Part 2 OPC) and ODF packages.
    Zip,
    /// An OLE2 compound file (`D0 CF 11 E0 A1 B1 1A E1`, [MS-CFB] §2.2).
    Ole2,
    /// `{\rtf` (RTF 1.9.1 spec, "RTF header").
    Rtf,
}

impl Format {
    const ALL: [Format; 10] = [
        Format::Doc,
        Format::Docx,
        Format::Odt,
        Format::Rtf,
        Format::Xls,
        Format::Xlsx,
        Format::Ods,
        Format::Ppt,
        Format::Pptx,
        Format::Odp,
    ];

    /// In words, for reports ("Word document (.docx)").
    pub fn label(self) -> &'static str {
        match self {
            Format::Doc => "Word document (.doc)",
            Format::Docx => "Word document (.docx)",
            Format::Odt => "OpenDocument text (.odt)",
            Format::Rtf => "RTF document",
            Format::Xls => "Excel spreadsheet (.xls)",
            Format::Xlsx => "Excel spreadsheet (.xlsx)",
            Format::Ods => "OpenDocument spreadsheet (.ods)",
            Format::Ppt => "PowerPoint presentation (.ppt)",
            Format::Pptx => "PowerPoint presentation (.pptx)",
            Format::Odp => "OpenDocument presentation (.odp)",
        }
    }

    /// The file name extension (the converter is given the input under it).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Doc => "doc",
            Format::Docx => "docx",
            Format::Odt => "odt",
            Format::Rtf => "rtf",
            Format::Xls => "xls",
            Format::Xlsx => "xlsx",
            Format::Ods => "ods",
            Format::Ppt => "ppt",
            Format::Pptx => "pptx",
            Format::Odp => "odp",
        }
    }

    /// The registered media type (IANA), and the one a console upload is labelled with.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Doc => "application/msword",
            Format::Docx => {
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            }
            Format::Odt => "application/vnd.oasis.opendocument.text",
            Format::Rtf => "application/rtf",
            Format::Xls => "application/vnd.ms-excel",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::Ods => "application/vnd.oasis.opendocument.spreadsheet",
            Format::Ppt => "application/vnd.ms-powerpoint",
            Format::Pptx => {
                "application/vnd.openxmlformats-officedocument.presentationml.presentation"
            }
            Format::Odp => "application/vnd.oasis.opendocument.presentation",
        }
    }

    fn container(self) -> Container {
        match self {
            Format::Doc | Format::Xls | Format::Ppt => Container::Ole2,
            Format::Rtf => Container::Rtf,
            _ => Container::Zip,
        }
    }
}

fn container_of(data: &[u8]) -> Option<Container> {
    if data.starts_with(b"PK\x03\x04") {
        Some(Container::Zip)
    } else if data.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        Some(Container::Ole2)
    } else if data.starts_with(b"{\\rtf") {
        Some(Container::Rtf)
    } else {
        None
    }
}

/// The office format of a part, from its declared type (`text/rtf` and `application/rtf` both
/// occur) or else its file name's extension, when its content starts the way that format's
/// files do. Word's "save as RTF" under a `.doc` name is common, so RTF content is RTF whatever
/// the name says. `None` for anything else (including a ZIP that claims no office format).
pub fn detect(declared: &str, filename: Option<&str>, data: &[u8]) -> Option<Format> {
    let found = container_of(data)?;
    if found == Container::Rtf {
        return Some(Format::Rtf);
    }
    let declared = declared.trim().to_ascii_lowercase();
    let by_type = Format::ALL
        .into_iter()
        .find(|f| f.content_type() == declared)
        .or(match declared.as_str() {
            "text/rtf" => Some(Format::Rtf),
            // Old names Outlook and some webmails still send.
            "application/vnd.ms-word" => Some(Format::Doc),
            "application/x-msexcel" | "application/x-excel" => Some(Format::Xls),
            _ => None,
        });
    let by_name = || {
        let ext = filename?.rsplit_once('.')?.1.to_ascii_lowercase();
        Format::ALL.into_iter().find(|f| f.extension() == ext)
    };
    by_type.or_else(by_name).filter(|f| f.container() == found)
}

/// Which converter `[offramp] office_converter` names, once looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Converter {
    /// `"off"`: office documents are refused.
    Off,
    /// `"auto"` found neither `soffice` nor `libreoffice` on `PATH`.
    NotInstalled,
    /// The program to run.
    Program(PathBuf),
}

/// The converter's settings (the shell builds them from `[offramp]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The converter.
    pub converter: Converter,
    /// Wall-clock time one document's conversion may take (`office_time_limit`).
    pub time_limit: Duration,
}

impl Settings {
    /// Office documents refused.
    pub fn off() -> Settings {
        Settings {
            converter: Converter::Off,
            time_limit: Duration::from_secs(DEFAULT_TIME_LIMIT_SECS),
        }
    }
}

/// The programs `"auto"` looks for, in order, in each directory of `path` (the value of
/// `PATH`): `soffice` (Debian's `libreoffice-core`) first, then `libreoffice`.
pub fn candidates(path: &OsStr) -> Vec<PathBuf> {
    std::env::split_paths(path)
        .filter(|d| d.is_absolute())
        .flat_map(|d| [d.join("soffice"), d.join("libreoffice")])
        .collect()
}

/// The converter `setting` names: `"off"`, `"auto"` (the first of [`candidates`] of the
/// gateway's `PATH` that is an executable file) or a path (taken as it is: a missing program
/// is reported when a document needs it, naming the path).
pub fn resolve(setting: &str) -> Converter {
    match setting {
        "off" => Converter::Off,
        "auto" => {
            let path = std::env::var_os("PATH").unwrap_or_else(|| CHILD_PATH.into());
            candidates(&path)
                .into_iter()
                .find(|p| is_executable(p))
                .map_or(Converter::NotInstalled, Converter::Program)
        }
        p => Converter::Program(PathBuf::from(p)),
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Why a document was not converted.
#[derive(Debug, thiserror::Error)]
pub enum OfficeError {
    /// `office_converter = "off"`.
    #[error("this gateway does not convert office documents (offramp.office_converter is \"off\")")]
    Off,
    /// `"auto"` found no LibreOffice.
    #[error("this gateway cannot convert office documents: LibreOffice is not installed")]
    NotInstalled,
    /// The configured program is not there or cannot be run.
    #[error("this gateway's office converter {path} cannot be run: {source}")]
    CannotRun {
        /// The program.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The kernel refused the private user and network namespace (fail closed).
    #[error(
        "this gateway cannot convert office documents safely: the system refused the \
         converter a private network ({source})"
    )]
    NoIsolation {
        /// The `unshare` error.
        source: std::io::Error,
    },
    /// The private directory could not be made or used.
    #[error("the office converter's temporary files: {0}")]
    Temp(std::io::Error),
    /// Past `office_time_limit`; the converter was killed.
    #[error("LibreOffice did not finish converting it within {seconds} s")]
    TimedOut {
        /// The limit.
        seconds: u64,
    },
    /// The message's rendering budget ran out, or the gateway is stopping; the converter was
    /// killed.
    #[error("stopped: {0}")]
    Stopped(ErrorKind),
    /// The converter ended without a usable PDF.
    #[error("LibreOffice could not convert it ({0})")]
    Failed(String),
}

impl OfficeError {
    /// Whether the fault is the gateway's setup rather than the document (the admin is told
    /// in the log as well).
    pub fn is_setup(&self) -> bool {
        matches!(
            self,
            OfficeError::CannotRun { .. } | OfficeError::NoIsolation { .. } | OfficeError::Temp(_)
        )
    }

    /// The sender's cause for part `part` in `format`; `None` for [`OfficeError::Stopped`]
    /// (the caller maps the budget's error like any rendering's).
    pub fn cause(&self, part: &str, format: Format) -> Option<Cause> {
        let what = || format!("a {}, and {self}", format.label());
        Some(match self {
            OfficeError::Stopped(_) => return None,
            OfficeError::Off
            | OfficeError::NotInstalled
            | OfficeError::CannotRun { .. }
            | OfficeError::NoIsolation { .. } => Cause::UnsupportedAttachment {
                part: part.to_string(),
                what: what(),
            },
            OfficeError::Temp(_) => Cause::GatewayError {
                detail: self.to_string(),
            },
            OfficeError::TimedOut { .. } | OfficeError::Failed(_) => Cause::DamagedAttachment {
                part: part.to_string(),
                detail: self.to_string(),
            },
        })
    }
}

/// A private directory removed (with everything in it) when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> std::io::Result<Scratch> {
        let mut tries = 0;
        loop {
            let mut r = [0u8; 8];
            getrandom::fill(&mut r).map_err(|e| std::io::Error::other(e.to_string()))?;
            let name = format!(
                "faxgate-office-{}",
                r.iter().map(|b| format!("{b:02x}")).collect::<String>()
            );
            let p = std::env::temp_dir().join(name);
            match crate::private_fs::create_dir(&p) {
                Ok(()) => return Ok(Scratch(p)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 8 => tries += 1,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(dir = %self.0.display(), "office converter: temporary directory not removed: {e}");
        }
    }
}

/// The converter's arguments: headless, no first-start wizard, no crash recovery, the private
/// profile at `profile`, the PDF written into `out`.
fn arguments(profile: &Path, out: &Path, input: &Path) -> Vec<std::ffi::OsString> {
    // RFC 8089 file URL, RFC 3986 §2.1 percent-encoding for anything but unreserved
    // characters and `/` (a space in it makes soffice hang; TMPDIR may hold one).
    use std::os::unix::ffi::OsStrExt;
    let mut url = String::from("-env:UserInstallation=file://");
    for &b in profile.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'.' | b'_' | b'~') {
            url.push(char::from(b));
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    vec![
        "--headless".into(),
        "--invisible".into(),
        "--nodefault".into(),
        "--nologo".into(),
        "--nolockcheck".into(),
        "--norestore".into(),
        url.into(),
        "--convert-to".into(),
        "pdf".into(),
        "--outdir".into(),
        out.into(),
        input.into(),
    ]
}

/// Converts `data` (a document in `format`) to PDF with the converter in `settings`, within
/// its time limit and `budget` (the message's rendering budget, asked every [`POLL`]: its time
/// limit and the gateway's cancel flag stop the converter too). Blocks the calling thread.
pub fn to_pdf(
    settings: &Settings,
    format: Format,
    data: &[u8],
    budget: &dyn Budget,
) -> Result<Vec<u8>, OfficeError> {
    let program = match &settings.converter {
        Converter::Off => return Err(OfficeError::Off),
        Converter::NotInstalled => return Err(OfficeError::NotInstalled),
        Converter::Program(p) => p,
    };
    budget.check(1).map_err(OfficeError::Stopped)?;
    if !is_executable(program) {
        return Err(OfficeError::CannotRun {
            path: program.clone(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    let scratch = Scratch::new().map_err(OfficeError::Temp)?;
    let dir = &scratch.0;
    let (profile, out, home, tmp) = (
        dir.join("profile"),
        dir.join("out"),
        dir.join("home"),
        dir.join("tmp"),
    );
    for d in [&out, &home, &tmp] {
        crate::private_fs::create_dir(d).map_err(OfficeError::Temp)?;
    }
    let input = dir.join(format!("document.{}", format.extension()));
    std::fs::write(&input, data).map_err(OfficeError::Temp)?;
    let log = crate::private_fs::create(&dir.join("log")).map_err(OfficeError::Temp)?;

    let mut cmd = Command::new(program);
    cmd.args(arguments(&profile, &out, &input))
        .env_clear()
        .env("PATH", CHILD_PATH)
        .env("HOME", &home)
        .env("TMPDIR", &tmp)
        .env("LANG", "C.UTF-8")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    // SAFETY: between fork and exec only async-signal-safe system calls are made (no
    // allocation, no locks); each reports failure through errno, which `spawn` returns.
    unsafe {
        cmd.pre_exec(|| {
            // Its own process group (and session), so a timeout kills every process it started.
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Dies with the gateway (the thread that forked it waits for it).
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            let fsize = libc::rlimit {
                rlim_cur: MAX_PDF_BYTES + 1,
                rlim_max: MAX_PDF_BYTES + 1,
            };
            let core = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_FSIZE, &fsize);
            libc::setrlimit(libc::RLIMIT_CORE, &core);
            // No network: a new network namespace has only a loopback interface, down. A user
            // namespace first, so that no privilege is needed (user_namespaces(7)); the child
            // is single-threaded here, as CLONE_NEWUSER requires.
            if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| spawn_error(program, e))?;
    let started = Instant::now();
    let waited = wait(&mut child, started, settings.time_limit, budget);
    // Whatever happened, nothing it started outlives it: the group goes while the leader is
    // still unreaped (so its id cannot have been reused), then the leader is reaped.
    kill_group(&child);
    let status = child.wait();
    if let Err(e) = waited {
        tracing::warn!(
            program = %program.display(),
            "office converter stopped after {} ms: {e}",
            started.elapsed().as_millis()
        );
        return Err(e);
    }
    let status = status.map_err(OfficeError::Temp)?;
    let pdf = out.join("document.pdf");
    let tail = || log_tail(&dir.join("log"));
    if !status.success() {
        return Err(OfficeError::Failed(format!("{status}; {}", tail())));
    }
    match crate::read_limit::read(&pdf, MAX_PDF_BYTES) {
        Ok(b) if !b.is_empty() => {
            tracing::debug!(
                "office converter: {} → {} octets of PDF in {} ms",
                format.label(),
                b.len(),
                started.elapsed().as_millis()
            );
            Ok(b)
        }
        Ok(_) => Err(OfficeError::Failed("it wrote an empty PDF".into())),
        Err(e) => {
            let e = std::io::Error::from(e);
            let why = if e.kind() == std::io::ErrorKind::NotFound {
                format!("no PDF came out; {}", tail())
            } else {
                e.to_string()
            };
            Err(OfficeError::Failed(why))
        }
    }
}

/// `spawn`'s error: `pre_exec`'s `unshare` failing is told apart from `exec` failing by its
/// errno (unshare(2): EPERM, EINVAL, ENOSPC, EUSERS; the program's own are ENOENT, EACCES,
/// ENOEXEC, ENOTDIR, ELOOP, ETXTBSY).
fn spawn_error(program: &Path, e: std::io::Error) -> OfficeError {
    match e.raw_os_error() {
        Some(libc::EPERM | libc::EINVAL | libc::ENOSPC | libc::EUSERS) => {
            tracing::error!(
                "office converter not run: the kernel refused it a private user and network \
                 namespace ({e}). Office attachments are refused until user namespaces are \
                 allowed (sysctl user.max_user_namespaces > 0, kernel.unprivileged_userns_clone=1 \
                 where it exists; under systemd: RestrictNamespaces=user net)"
            );
            OfficeError::NoIsolation { source: e }
        }
        _ => {
            tracing::error!(program = %program.display(), "office converter cannot be run: {e}");
            OfficeError::CannotRun {
                path: program.to_path_buf(),
                source: e,
            }
        }
    }
}

/// Waits for the converter to exit (without reaping it), checking its time limit and the
/// budget every [`POLL`].
fn wait(
    child: &mut Child,
    started: Instant,
    limit: Duration,
    budget: &dyn Budget,
) -> Result<(), OfficeError> {
    let pid = child.id() as libc::id_t;
    loop {
        // SAFETY: a zeroed siginfo_t is valid; waitid only writes into it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // WNOWAIT: the leader stays a zombie until `kill_group` has run.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(OfficeError::Temp(e));
            }
        } else if unsafe { info.si_pid() } != 0 {
            return Ok(());
        }
        budget.check(1).map_err(OfficeError::Stopped)?;
        if started.elapsed() >= limit {
            return Err(OfficeError::TimedOut {
                seconds: limit.as_secs(),
            });
        }
        std::thread::sleep(POLL);
    }
}

fn kill_group(child: &Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: a plain system call; the group's leader is not yet reaped.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

/// The last line or so of what the converter printed, for the log and the report.
fn log_tail(path: &Path) -> String {
    let mut buf = Vec::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(64 * 1024).read_to_end(&mut buf);
    }
    let text = String::from_utf8_lossy(&buf);
    let line = text
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.contains("javaldx") && !l.contains("dconf"))
        .unwrap_or("it printed nothing");
    line.chars().filter(|c| !c.is_control()).take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZIP: &[u8] = b"PK\x03\x04rest";
    const OLE: &[u8] = &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0];

    #[test]
    fn detect_by_type_or_name_when_the_content_agrees() {
        let docx = Format::Docx.content_type();
        assert_eq!(detect(docx, None, ZIP), Some(Format::Docx));
        assert_eq!(
            detect("application/octet-stream", Some("Q3.XLSX"), ZIP),
            Some(Format::Xlsx)
        );
        assert_eq!(
            detect("application/octet-stream", Some("a.doc"), OLE),
            Some(Format::Doc)
        );
        assert_eq!(detect("application/msword", None, OLE), Some(Format::Doc));
        // RTF content is RTF whatever it is called.
        assert_eq!(
            detect("application/msword", Some("a.doc"), b"{\\rtf1\\ansi x}"),
            Some(Format::Rtf)
        );
        // A ZIP that claims no office format, or an office name on other content: no.
        assert_eq!(detect("application/zip", Some("a.zip"), ZIP), None);
        assert_eq!(detect("application/octet-stream", None, ZIP), None);
        assert_eq!(detect(docx, Some("a.docx"), b"%PDF-1.4"), None);
        assert_eq!(detect(docx, Some("a.docx"), OLE), None);
        assert_eq!(detect("application/octet-stream", Some("docx"), ZIP), None);
        assert_eq!(detect("", None, b""), None);
    }

    #[test]
    fn every_format_round_trips_its_type_and_extension() {
        for f in Format::ALL {
            let sample: &[u8] = match f.container() {
                Container::Zip => ZIP,
                Container::Ole2 => OLE,
                Container::Rtf => b"{\\rtf1}",
            };
            assert_eq!(detect(f.content_type(), None, sample), Some(f), "{f:?}");
            let name = format!("x.{}", f.extension());
            assert_eq!(detect("", Some(&name), sample), Some(f), "{f:?}");
        }
    }

    #[test]
    fn auto_looks_for_soffice_then_libreoffice_in_absolute_path_entries() {
        let c = candidates(OsStr::new("/opt/lo/bin:relative:/usr/bin"));
        assert_eq!(
            c,
            [
                PathBuf::from("/opt/lo/bin/soffice"),
                PathBuf::from("/opt/lo/bin/libreoffice"),
                PathBuf::from("/usr/bin/soffice"),
                PathBuf::from("/usr/bin/libreoffice"),
            ]
        );
        assert_eq!(resolve("off"), Converter::Off);
        assert_eq!(
            resolve("/nowhere/soffice"),
            Converter::Program("/nowhere/soffice".into())
        );
    }

    #[test]
    fn arguments_name_the_private_profile_as_a_file_url() {
        let a = arguments(
            Path::new("/tmp/x/profile"),
            Path::new("/tmp/x/out"),
            Path::new("/tmp/x/document.docx"),
        );
        assert!(a.contains(&"-env:UserInstallation=file:///tmp/x/profile".into()));
        let at = a.iter().position(|x| x == "--convert-to").unwrap();
        assert_eq!(a[at + 1], "pdf");
        assert_eq!(a.last().unwrap(), "/tmp/x/document.docx");
        let a = arguments(
            Path::new("/tmp/my dir/p:1"),
            Path::new("/o"),
            Path::new("/i"),
        );
        assert!(a.contains(&"-env:UserInstallation=file:///tmp/my%20dir/p%3A1".into()));
    }

    #[test]
    fn causes_name_the_part_and_why() {
        let c = OfficeError::Off
            .cause("part 2 \"a.docx\"", Format::Docx)
            .unwrap();
        let Cause::UnsupportedAttachment { part, what } = &c else {
            panic!("{c:?}")
        };
        assert!(part.contains("a.docx"));
        assert!(what.contains("Word document (.docx)"), "{what}");
        assert!(what.contains("office_converter"), "{what}");
        let t = OfficeError::TimedOut { seconds: 5 }
            .cause("p", Format::Odt)
            .unwrap();
        assert!(matches!(t, Cause::DamagedAttachment { ref detail, .. } if detail.contains("5 s")));
        assert!(
            OfficeError::Stopped(ErrorKind::Cancelled { page: 1 })
                .cause("p", Format::Odt)
                .is_none()
        );
    }

    #[test]
    fn off_and_not_installed_run_nothing() {
        let b = crate::image::render::Unlimited;
        let mut s = Settings::off();
        assert!(matches!(
            to_pdf(&s, Format::Docx, ZIP, &b),
            Err(OfficeError::Off)
        ));
        s.converter = Converter::NotInstalled;
        assert!(matches!(
            to_pdf(&s, Format::Docx, ZIP, &b),
            Err(OfficeError::NotInstalled)
        ));
        s.converter = Converter::Program("/nonexistent/soffice".into());
        let e = to_pdf(&s, Format::Docx, ZIP, &b).unwrap_err();
        assert!(matches!(e, OfficeError::CannotRun { .. }), "{e:?}");
        assert!(e.to_string().contains("/nonexistent/soffice"), "{e}");
    }
}
