//! Office attachments through the office converter (`src/offramp/office.rs`), end to end.
//!
//! - A `.docx`, an `.odt` and an `.xlsx` written by LibreOffice itself at test time, mailed
//!   through the daemon's SMTP listener to the loopback line (+12125550123), come back as fax
//!   pages equal, pixel for pixel below the header band, to the fax of the reference: the same
//!   document converted to PDF by `soffice` here and mailed as a PDF. The page count is checked
//!   against poppler's `pdfinfo` of the reference.
//! - `office_converter = "off"`: the sender's report names the attachment and why; a converter
//!   path that is not there, and "auto" with no LibreOffice on `PATH`, name theirs.
//! - A converter that never finishes (a script that sleeps, given as the path) is killed with
//!   everything it started past `office_time_limit`, and the cause says so; the message's
//!   cancel flag (shutdown) stops one too.
//! - The converter sees no network interface but a loopback one, and a clean environment;
//!   where the kernel refuses it the namespaces, no document is converted (fail closed).
//!
//! Debian packages: libreoffice-writer-nogui, libreoffice-calc-nogui (soffice), poppler-utils
//! (pdfinfo), python3, util-linux (unshare).

mod common;

use common::daemon::Daemon;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use faxgate::image::Page;
use faxgate::image::render;
use mail_parser::{MessageParser, MimeHeaders, PartType};

fn soffice() -> PathBuf {
    common::require_tool("soffice", "libreoffice-writer-nogui")
}

/// `soffice --convert-to <to> <input>` into `dir`, with a profile of its own; the output path.
fn convert(dir: &Path, input: &Path, to: &str) -> PathBuf {
    // A profile of its own per run, named without the filter's spaces and colon (a space in
    // the profile URL makes soffice hang).
    let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    let profile = dir.join(format!("profile-{n}"));
    let out = Command::new(soffice())
        .stdin(std::process::Stdio::null())
        .arg("--headless")
        .arg(format!(
            "-env:UserInstallation=file://{}",
            profile.display()
        ))
        .args(["--convert-to", to, "--outdir"])
        .arg(dir)
        .arg(input)
        .output()
        .unwrap();
    let stem = input.file_stem().unwrap().to_str().unwrap();
    let ext = to.split(':').next().unwrap();
    let made = dir.join(format!("{stem}.{ext}"));
    assert!(
        out.status.success() && made.is_file(),
        "soffice --convert-to {to} {}: {}",
        input.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    made
}

/// Sends `file` as the only attachment of an email to the loopback line.
fn send(d: &Daemon, file: &Path, ctype: &str) {
    let py = common::require_tool("python3", "python3");
    let script = "import smtplib, sys, email.message as e
m = e.EmailMessage()
m['From'] = 'you@example.org'; m['To'] = 'FAX=+12125550123@localhost'; m['Subject'] = 'office'
main, sub = sys.argv[3].split('/')
m.add_attachment(open(sys.argv[2], 'rb').read(), main, sub, filename=sys.argv[2].rsplit('/', 1)[1])
smtplib.SMTP('127.0.0.1', int(sys.argv[1])).send_message(m)
";
    let out = Command::new(py)
        .args(["-c", script, &d.port.to_string()])
        .arg(file)
        .arg(ctype)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "send failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_fax_mail(m: &[u8]) -> bool {
    MessageParser::default().parse(m).is_some_and(|p| {
        p.attachments().any(|a| {
            a.content_type()
                .is_some_and(|c| c.c_type == "image" && c.subtype() == Some("tiff"))
        })
    })
}

fn is_report(m: &[u8]) -> bool {
    MessageParser::default().parse(m).is_some_and(|p| {
        p.content_type()
            .is_some_and(|c| c.c_type == "multipart" && c.subtype() == Some("report"))
    })
}

fn pages_of(m: &[u8]) -> Vec<Page> {
    let p = MessageParser::default().parse(m).unwrap();
    let a = p
        .attachments()
        .find(|a| {
            a.content_type()
                .is_some_and(|c| c.subtype() == Some("tiff"))
        })
        .unwrap();
    faxgate::image::tiff::read_bytes(a.contents(), Default::default()).unwrap()
}

/// Sends `file` and waits for the one new fax email it makes; its pages.
fn fax_of(d: &Daemon, file: &Path, ctype: &str) -> Vec<Page> {
    let before: Vec<Vec<u8>> = d.mails().into_iter().filter(|m| is_fax_mail(m)).collect();
    send(d, file, ctype);
    // Bounded (a few minutes): LibreOffice's start on a loaded machine takes its time.
    let mut mails = Vec::new();
    for _ in 0..2400 {
        mails = d.mails();
        if mails.iter().filter(|x| is_fax_mail(x)).count() > before.len() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let new = mails
        .iter()
        .find(|m| is_fax_mail(m) && !before.contains(m))
        .unwrap_or_else(|| panic!("never got the fax of {}:\n{}", file.display(), d.log()));
    pages_of(new)
}

fn pdfinfo_pages(pdf: &Path) -> usize {
    let out = Command::new(common::require_tool("pdfinfo", "poppler-utils"))
        .arg(pdf)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("pdfinfo: {text}"))
}

/// The two faxes have the same pages, equal below the header band (which carries the time of
/// sending), and the pages are not blank.
fn assert_same_fax(what: &str, got: &[Page], want: &[Page]) {
    assert_eq!(got.len(), want.len(), "{what}: page count");
    for (n, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(
            (g.width(), g.height()),
            (w.width(), w.height()),
            "{what} page {}",
            n + 1
        );
        let band = render::header::band_rows(&render::Layout {
            res: w.resolution(),
            paper: render::Paper::A4,
        });
        let ink: usize = (band..w.height())
            .map(|y| w.row(y).iter().filter(|b| **b != 0).count())
            .sum();
        assert!(ink > 500, "{what} page {}: the reference is blank", n + 1);
        for y in band..w.height() {
            assert_eq!(g.row(y), w.row(y), "{what} page {}: row {y} differs", n + 1);
        }
    }
}

#[test]
fn office_docx_odt_xlsx_by_smtp_are_faxed_as_their_pdf() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Sources LibreOffice imports: plain text for Writer (two pages of it), CSV for Calc.
    let mut text = String::from("Quarterly report of the fax gateway\n\n");
    for i in 1..=70 {
        text.push_str(&format!(
            "Line {i}: twelve boxes of fax paper, order 4711-{i}\n"
        ));
    }
    std::fs::write(dir.join("report.txt"), &text).unwrap();
    let mut csv = String::from("Item,Boxes,Price\n");
    for i in 1..=30 {
        csv.push_str(&format!("Paper {i},{},{}.50\n", i * 3, i + 10));
    }
    std::fs::write(dir.join("sheet.csv"), &csv).unwrap();
    let docx = convert(dir, &dir.join("report.txt"), "docx:MS Word 2007 XML");
    let odt = convert(dir, &dir.join("report.txt"), "odt");
    let xlsx = convert(dir, &dir.join("sheet.csv"), "xlsx:Calc MS Excel 2007 XML");

    let mut d = Daemon::new(dir);
    // "auto" (the default) finds soffice on the daemon's PATH.
    d.start(&[]);
    for (doc, ctype) in [
        (
            &docx,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        // Declared as octet-stream: taken by its name and content.
        (&odt, "application/octet-stream"),
        (
            &xlsx,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
    ] {
        // The reference: the same document converted by soffice here, in a directory of its
        // own, and faxed as a PDF.
        let refdir = dir.join(format!(
            "ref-{}",
            doc.extension().unwrap().to_str().unwrap()
        ));
        std::fs::create_dir(&refdir).unwrap();
        let pdf = convert(&refdir, doc, "pdf");
        let want = fax_of(&d, &pdf, "application/pdf");
        assert_eq!(want.len(), pdfinfo_pages(&pdf), "{}", pdf.display());
        let got = fax_of(&d, doc, ctype);
        assert_same_fax(&doc.display().to_string(), &got, &want);
    }
    // No private directory is left behind.
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("faxgate-office-")
        })
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// The daemon's failure report for a `.docx`, with `env` set.
fn refusal_report(env: &[(&str, &str)]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("letter.txt"), "Dear sir\n").unwrap();
    let docx = convert(dir, &dir.join("letter.txt"), "docx:MS Word 2007 XML");
    let mut d = Daemon::new(dir);
    d.start(env);
    send(
        &d,
        &docx,
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    );
    let mails = d.wait_mail("the failure report", |m| m.iter().any(|x| is_report(x)));
    assert!(
        !mails.iter().any(|m| is_fax_mail(m)),
        "a fax was sent:\n{}",
        d.log()
    );
    let r = mails.iter().find(|m| is_report(m)).unwrap();
    // Every part decoded (quoted-printable, folding), whitespace collapsed.
    let p = MessageParser::default().parse(r).unwrap();
    let mut text = String::new();
    for part in &p.parts {
        match &part.body {
            PartType::Text(t) | PartType::Html(t) => text.push_str(t),
            PartType::Binary(b) | PartType::InlineBinary(b) => {
                text.push_str(&String::from_utf8_lossy(b))
            }
            _ => {}
        }
        text.push(' ');
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn office_converter_off_or_missing_report_names_the_attachment() {
    let r = refusal_report(&[("FAXGATE_OFFRAMP__OFFICE_CONVERTER", "off")]);
    assert!(r.contains("Action: failed"), "{r}");
    assert!(r.contains("letter.docx"), "{r}");
    assert!(r.contains("Word document (.docx)"), "{r}");
    assert!(r.contains("office_converter"), "{r}");

    let r = refusal_report(&[("FAXGATE_OFFRAMP__OFFICE_CONVERTER", "/nonexistent/soffice")]);
    assert!(r.contains("letter.docx"), "{r}");
    assert!(r.contains("/nonexistent/soffice"), "{r}");

    // "auto" with no LibreOffice on the daemon's PATH.
    let empty = tempfile::tempdir().unwrap();
    let path = empty.path().to_str().unwrap().to_owned();
    let r = refusal_report(&[("PATH", &path)]);
    assert!(r.contains("letter.docx"), "{r}");
    assert!(r.contains("LibreOffice is not installed"), "{r}");
}

/// A converter that never finishes: records its own pid and its child's, then waits.
fn sleeper(dir: &Path) -> PathBuf {
    let script = dir.join("fake-soffice");
    let pids = dir.join("pids");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nsleep 1000 &\necho \"$$ $!\" > {}.tmp\nmv {0}.tmp {0}\nwait\n",
            pids.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// The pids the sleeper recorded.
fn recorded_pids(dir: &Path) -> Vec<i32> {
    let text = std::fs::read_to_string(dir.join("pids")).expect("the converter ran");
    text.split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

/// Gone, or a zombie no one has reaped yet (this container's init may not reap): not running.
fn is_dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

fn wait_dead(pids: &[i32]) {
    for _ in 0..200 {
        if pids.iter().all(|p| is_dead(*p)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("converter processes still running: {pids:?}");
}

#[test]
fn office_timeout_kills_the_converter_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let script = sleeper(dir);
    std::fs::write(dir.join("letter.txt"), "Dear sir\n").unwrap();
    let docx = convert(dir, &dir.join("letter.txt"), "docx:MS Word 2007 XML");
    let eml = dir.join("m.eml");
    let py = common::require_tool("python3", "python3");
    let out = Command::new(py)
        .args([
            "-c",
            "import sys, email.message as e
m = e.EmailMessage(); m['From'] = 'a@example.org'; m['To'] = 'FAX=+12125550123@localhost'
m['Subject'] = 't'
m.add_attachment(open(sys.argv[1], 'rb').read(), 'application', 'octet-stream', filename='letter.docx')
open(sys.argv[2], 'wb').write(bytes(m))",
        ])
        .arg(&docx)
        .arg(&eml)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = common::faxgate(dir)
        .env("FAXGATE_OFFRAMP__OFFICE_CONVERTER", &script)
        .env("FAXGATE_OFFRAMP__OFFICE_TIME_LIMIT", "1s")
        .args(["offramp-check"])
        .arg(&eml)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("letter.docx"), "{text}");
    assert!(
        text.contains("LibreOffice did not finish converting it within 1 s"),
        "{text}"
    );
    // The script and the child it started are both gone.
    let pids = recorded_pids(dir);
    assert_eq!(pids.len(), 2, "{pids:?}");
    wait_dead(&pids);
}

#[test]
fn office_conversion_stops_when_the_gateway_cancels() {
    use faxgate::offramp::budget::{self, Cancel, Limits};
    use faxgate::offramp::office::{self, Converter, Format, OfficeError, Settings};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let settings = Settings {
        converter: Converter::Program(sleeper(&dir)),
        time_limit: Duration::from_secs(3600),
    };
    let cancel = Cancel::new();
    let c2 = cancel.clone();
    let d2 = dir.clone();
    // Cancels once the converter is running (bounded wait for it).
    let t = std::thread::spawn(move || {
        for _ in 0..2000 {
            if d2.join("pids").exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        c2.cancel();
    });
    let b = budget::for_message(
        Limits {
            time: Duration::ZERO,
            page_work: 0,
        },
        &cancel,
    );
    let e = office::to_pdf(&settings, Format::Docx, b"PK\x03\x04", &b).unwrap_err();
    t.join().unwrap();
    assert!(
        matches!(e, OfficeError::Stopped(render::ErrorKind::Cancelled { .. })),
        "{e:?}"
    );
    wait_dead(&recorded_pids(&dir));
}

#[test]
fn office_converter_has_no_network() {
    // The converter's namespace has a loopback interface only, and it is down: the script
    // (standing in for soffice) records what it sees.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let script = dir.join("net-soffice");
    let seen = dir.join("seen");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncat /proc/net/dev > {s}\nenv >> {s}\nexit 3\n",
            s = seen.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let settings = faxgate::offramp::office::Settings {
        converter: faxgate::offramp::office::Converter::Program(script),
        time_limit: Duration::from_secs(60),
    };
    let e = faxgate::offramp::office::to_pdf(
        &settings,
        faxgate::offramp::office::Format::Odt,
        b"PK\x03\x04",
        &render::Unlimited,
    )
    .unwrap_err();
    assert!(
        matches!(e, faxgate::offramp::office::OfficeError::Failed(_)),
        "{e:?}"
    );
    let s = std::fs::read_to_string(&seen).unwrap();
    let ifaces: Vec<&str> = s
        .lines()
        .filter_map(|l| l.split_once(':').map(|(i, _)| i.trim()))
        .filter(|i| !i.contains(' ') && !i.contains('|') && !i.contains('='))
        .collect();
    assert_eq!(ifaces, ["lo"], "{s}");
    // The environment is the clean one.
    let vars: Vec<&str> = s
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .filter(|k| !matches!(*k, "PWD" | "SHLVL" | "_" | "OLDPWD"))
        .collect();
    let mut vars = vars;
    vars.sort();
    assert_eq!(vars, ["HOME", "LANG", "PATH", "TMPDIR"], "{s}");
}

#[test]
fn office_converter_without_namespaces_fails_closed() {
    // A user namespace of the test's own in which no further one may be made
    // (user.max_user_namespaces is per namespace, user_namespaces(7)): the kernel refuses the
    // converter's namespaces there, as on a system that disables them. Nothing else is touched.
    let unshare = common::require_tool("unshare", "util-linux");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("letter.txt"), "Dear sir\n").unwrap();
    let docx = convert(dir, &dir.join("letter.txt"), "docx:MS Word 2007 XML");
    let eml = dir.join("m.eml");
    let py = common::require_tool("python3", "python3");
    let out = Command::new(py)
        .args([
            "-c",
            "import sys, email.message as e
m = e.EmailMessage(); m['From'] = 'a@example.org'; m['To'] = 'FAX=+12125550123@localhost'
m['Subject'] = 't'
m.add_attachment(open(sys.argv[1], 'rb').read(), 'application', 'octet-stream', filename='letter.docx')
open(sys.argv[2], 'wb').write(bytes(m))",
        ])
        .arg(&docx)
        .arg(&eml)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = common::faxgate(dir)
        .env("FAXGATE_DATA", dir.join("data"))
        .env("FAXGATE_OFFRAMP__OFFICE_CONVERTER", soffice())
        .output_in(&unshare, &eml);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("letter.docx"), "{text}");
    assert!(
        text.contains("cannot convert office documents safely"),
        "{text}"
    );
    assert!(!text.contains("pages:"), "{text}");
}

/// Runs `faxgate offramp-check eml` (the command's program and environment) inside a new user
/// namespace that may make no other.
trait InNoNamespaces {
    fn output_in(&mut self, unshare: &Path, eml: &Path) -> std::process::Output;
}

impl InNoNamespaces for Command {
    fn output_in(&mut self, unshare: &Path, eml: &Path) -> std::process::Output {
        let faxgate = self.get_program().to_owned();
        let mut c = Command::new(unshare);
        c.args(["--user", "--map-root-user", "sh", "-c"])
            .arg("echo 0 > /proc/sys/user/max_user_namespaces && exec \"$0\" offramp-check \"$1\"")
            .arg(faxgate)
            .arg(eml);
        for (k, v) in self.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        if let Some(d) = self.get_current_dir() {
            c.current_dir(d);
        }
        c.output().unwrap()
    }
}
