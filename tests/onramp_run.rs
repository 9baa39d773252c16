//! `faxgate run` on the embedded default runs the onramp: a TIFF renamed into `inbox/` under the
//! data dir comes out as an email in the default Maildir, and SIGTERM still stops the daemon
//! cleanly.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use faxgate::image::tiff::{self, Limits, Profile};
use faxgate::image::{Page, Resolution};

struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn run_mails_inbox_files_into_the_maildir() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let mut child = Reap(
        common::faxgate(d.path())
            .arg("run")
            .env("FAXGATE_DATA", &data)
            .env("FAXGATE_SMTP__LISTEN", "127.0.0.1:0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut page = Page::new(1728, 98, Resolution::STANDARD).unwrap();
    for x in 200..1500 {
        page.set(x, 49, true);
    }
    let tif =
        faxgate::onramp::compose::write_tiff(std::slice::from_ref(&page), Profile::S).unwrap();
    let inbox = data.join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(inbox.join(".note.tif.part"), &tif).unwrap();
    std::fs::write(inbox.join("note.tif.meta"), "caller: +1 212 555 0199\n").unwrap();
    std::fs::rename(inbox.join(".note.tif.part"), inbox.join("note.tif")).unwrap();

    // Bounded wait (a hang guard, not a timing assertion).
    let new_dir = data.join("maildir/new");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mail = loop {
        if let Some(e) = std::fs::read_dir(&new_dir).ok().and_then(|mut r| r.next()) {
            break e.unwrap().path();
        }
        if Instant::now() > deadline {
            let _ = child.0.kill();
            let mut err = String::new();
            std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("no mail in {}; stderr:\n{err}", new_dir.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let raw = std::fs::read(&mail).unwrap();
    let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
    assert_eq!(m.subject(), Some("Fax from unknown (1 pages)"));
    assert!(m.body_text(0).unwrap().contains("Caller: +1 212 555 0199"));
    // The fax file (the HTML version's page pictures are parts too).
    let att = m
        .attachments()
        .find(|a| mail_parser::MimeHeaders::is_content_type(*a, "image", "tiff"))
        .unwrap()
        .contents();
    assert!(tiff::check(att, Profile::S).is_empty());
    assert_eq!(
        tiff::read_bytes(att, Limits::default()).unwrap(),
        vec![page]
    );
    assert!(!inbox.join("note.tif").exists());

    let pid = rustix::process::Pid::from_raw(child.0.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "faxgate did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}
