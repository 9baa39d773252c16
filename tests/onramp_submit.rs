//! `faxgate onramp submit` with the embedded default configuration (no config file, no mail
//! server): the file becomes a `FaxIn` job in the spool, and the onramp service delivers the
//! email into the default Maildir.

mod common;

use std::time::Duration;

use faxgate::config::Config;
use faxgate::image::tiff::{self, Limits, Profile};
use faxgate::image::{Page, Resolution};
use faxgate::onramp::service::OnrampService;
use faxgate::spool::{JobKind, Spool, SpoolOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_then_maildir() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("faxgate-data");
    let mut page = Page::new(1728, 120, Resolution::FINE).unwrap();
    for y in 10..110 {
        for x in 100..(100 + y * 3) {
            page.set(x, y, true);
        }
    }
    let input = d.path().join("letter.tif");
    std::fs::write(
        &input,
        faxgate::onramp::compose::write_tiff(std::slice::from_ref(&page), Profile::S).unwrap(),
    )
    .unwrap();

    let out = common::faxgate(d.path())
        .env("FAXGATE_DATA", &data)
        .args(["onramp", "submit"])
        .arg(&input)
        .args(["--to", "Reception <reception@localhost>"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("queued as fax job"), "{text}");

    // A bad recipient and a missing file are refused with a message, nothing queued.
    let bad = common::faxgate(d.path())
        .env("FAXGATE_DATA", &data)
        .args(["onramp", "submit", "nope.tif", "--to", "not an address"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let missing = common::faxgate(d.path())
        .env("FAXGATE_DATA", &data)
        .args(["onramp", "submit", "nope.tif"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope.tif"));

    let mut c = Config::default();
    c.gateway.data_dir = data.clone();
    let spool = Spool::open(
        &faxgate::spool::spool_dir(&c),
        SpoolOptions::from_config(&c),
    )
    .unwrap();
    let jobs = spool.load().unwrap().jobs;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].kind, JobKind::FaxIn);

    let mut svc = OnrampService::new(&c, spool.clone()).unwrap();
    let new_dir = data.join("maildir/new");
    for _ in 0..200 {
        svc.pass().await;
        if std::fs::read_dir(&new_dir).map(|d| d.count()).unwrap_or(0) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let files: Vec<_> = std::fs::read_dir(&new_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    let raw = std::fs::read(&files[0]).unwrap();
    let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
    assert_eq!(
        m.to().unwrap().first().unwrap().address(),
        Some("reception@localhost")
    );
    // The fax file (the HTML version's page pictures are parts too).
    let tif = m
        .attachments()
        .find(|a| mail_parser::MimeHeaders::is_content_type(*a, "image", "tiff"))
        .unwrap()
        .contents();
    assert!(tiff::check(tif, Profile::S).is_empty());
    assert_eq!(
        tiff::read_bytes(tif, Limits::default()).unwrap(),
        vec![page]
    );
    assert!(String::from_utf8_lossy(&raw).starts_with("Return-Path: <fax-gateway@localhost>\r\n"));
    assert!(spool.load().unwrap().jobs.is_empty());
}
