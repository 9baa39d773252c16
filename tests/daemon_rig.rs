//! `faxgate run` with a real modem on the rig, against efax (an independent fax machine) on
//! the other soft modem, and a real SMTP server (aiosmtpd) as the site's mail relay:
//!
//! 1. an email with a PDF, sent with swaks, goes out through soft modem A; efax on modem B
//!    receives pages equal to the rendered document (below our header line), and the sender
//!    gets the success report through the relay;
//! 2. efax sends a page to modem A; faxgate answers (role `both`, one ring) and emails the fax
//!    to the relay, its TIFF equal to what efax sent (below efax's header line);
//! 3. `faxgate status` shows the modem and its last call; SIGTERM stops with exit status 0;
//! 4. (issue 15) efax sends 10 pages and faxgate is SIGKILLed once two are on disk: after the
//!    restart exactly one email (Maildir) carries the confirmed pages as a partial fax.
//!
//! Debian packages: iaxmodem, efax, iproute2, util-linux, coreutils, swaks, ghostscript,
//! python3-aiosmtpd, libtiff-tools. About a minute each: real calls take real time.

mod common;
mod onramp_common;
#[path = "rig/rig.rs"]
mod rig;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use faxgate::config::Config;
use faxgate::image::render::{self, Kind, Options};
use faxgate::image::{Page, Resolution};
use mail_parser::{MessageParser, MimeHeaders};

fn wait_child(c: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if let Some(s) = c.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = c.kill();
    let _ = c.wait();
    None
}

fn log_of(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// `got` equals `sent` below `band` rows, for some downward shift of `got` up to `max_shift`.
fn same_below(sent: &Page, got: &Page, band: u32, max_shift: u32) -> Result<(), String> {
    if got.width() != sent.width() {
        return Err(format!("width {} vs {}", got.width(), sent.width()));
    }
    let mut best = u64::MAX;
    for shift in 0..=max_shift {
        let mut diff = 0u64;
        for y in band..sent.height() {
            let g = y + shift;
            if g >= got.height() {
                diff += u64::from(sent.width());
                continue;
            }
            diff += sent
                .row(y)
                .iter()
                .zip(got.row(g))
                .map(|(a, b)| u64::from((a ^ b).count_ones()))
                .sum::<u64>();
        }
        best = best.min(diff);
    }
    if best == 0 {
        Ok(())
    } else {
        Err(format!("{best} pixels differ"))
    }
}

fn make_pdf(dir: &Path) -> PathBuf {
    common::gs_pdf(
        dir,
        "doc.pdf",
        "/Helvetica findfont 28 scalefont setfont 72 700 moveto (Rig test order 4711) show \
         72 300 200 120 rectfill showpage",
    )
}

/// A fine test page that efax can send: frame and blocks inside the margins.
fn test_page() -> Page {
    let rows = 2156;
    let mut p = Page::new(1728, rows, Resolution::FINE).unwrap();
    for y in 200..260 {
        for x in 200..1500 {
            p.set(x, y, true);
        }
    }
    for y in 800..1400 {
        for x in 700..760 {
            p.set(x, y, true);
        }
    }
    p
}

fn efix_tiff(dir: &Path, page: &Page) -> PathBuf {
    let efix = common::require_tool("efix", "efax");
    let pbm = dir.join("page.pbm");
    let mut v = format!("P4\n{} {}\n", page.width(), page.height()).into_bytes();
    for y in 0..page.height() {
        v.extend_from_slice(page.row(y));
    }
    std::fs::write(&pbm, v).unwrap();
    let pattern = dir.join("send.%03d");
    let out = Command::new(efix)
        .args([
            "-i", "pbm", "-o", "tiffg3", "-R", "204x196", "-r", "204x196", "-n",
        ])
        .arg(&pattern)
        .arg(&pbm)
        .output()
        .unwrap();
    assert!(out.status.success(), "efix: {out:?}");
    dir.join("send.001")
}

fn attachment_tiff(eml: &[u8]) -> Option<Vec<u8>> {
    let m = MessageParser::default().parse(eml)?;
    m.attachments()
        .find(|a| {
            a.content_type()
                .is_some_and(|c| c.subtype() == Some("tiff"))
        })
        .map(|a| a.contents().to_vec())
}

#[test]
fn mail_to_efax_and_efax_to_mail_through_faxgate_run() {
    let swaks = common::require_tool("swaks", "swaks");
    let efax = common::require_tool("efax", "efax");
    let line = rig::Rig::up();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let pdf = make_pdf(w);

    let relay_out = w.join("relay");
    std::fs::create_dir(&relay_out).unwrap();
    let relay = onramp_common::Relay::start(onramp_common::free_port(), &relay_out, &[]);
    let smtp_port = onramp_common::free_port();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = format!(
        "[gateway]\ndata_dir = \"{data}\"\n\
         [smtp]\nlisten = \"127.0.0.1:{smtp_port}\"\n\
         [relay]\nmode = \"smtp\"\nhost = \"127.0.0.1\"\nport = {relay}\nsecurity = \"none\"\n\
         [loopback]\nenabled = false\n\
         [offramp]\nnotify_success_by_default = true\n\
         [log]\nfilter = \"info\"\n\
         [[modem]]\nname = \"rigA\"\ndevice = \"{dev}\"\nprofile = \"iaxmodem\"\n\
         profiles_dir = \"{profiles}\"\nlocal_id = \"+1 555 0001\"\nrole = \"both\"\nrings = 1\n",
        data = w.join("data").display(),
        relay = relay.port,
        dev = line.a.display(),
        profiles = manifest.join("firmware-config/modems").display(),
    );
    std::fs::write(w.join("faxgate.toml"), cfg).unwrap();
    let log = w.join("faxgate.log");
    let logf = std::fs::File::create(&log).unwrap();
    let mut gw = common::faxgate(w)
        .args(["-c", "faxgate.toml", "run"])
        .stdin(Stdio::null())
        .stdout(logf.try_clone().unwrap())
        .stderr(logf)
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", smtp_port)).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(up, "faxgate run did not come up: {}", log_of(&log));

    // 1. Mail → fax: efax answers on modem B.
    let rx_dir = w.join("efax-rx");
    std::fs::create_dir(&rx_dir).unwrap();
    let efax_log = rx_dir.join("efax.log");
    let mut efax_rx = Command::new(&efax)
        .arg("-d")
        .arg(&line.b)
        .args([
            "-o1",
            "-iZ",
            "-kZ",
            "-jS0=1",
            "-w",
            "-l",
            "+1 555 0002",
            "-r",
        ])
        .arg(rx_dir.join("fax"))
        .args(["-v", "ewinrt"])
        .stdout(Stdio::from(std::fs::File::create(&efax_log).unwrap()))
        .stderr(Stdio::from(
            std::fs::File::create(rx_dir.join("efax.err")).unwrap(),
        ))
        .spawn()
        .unwrap();
    // efax's ATZ on the answering modem: iaxmodem refuses calls for 5 s.
    std::thread::sleep(rig::IAXMODEM_BUSY_OUT + Duration::from_secs(1));
    let out = Command::new(&swaks)
        .args(["--server", &format!("127.0.0.1:{smtp_port}")])
        .args([
            "--from",
            "you@example.org",
            "--to",
            "FAX=+12125550002@localhost",
        ])
        .args(["--attach-type", "application/pdf", "--attach"])
        .arg(format!("@{}", pdf.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "swaks: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let st = wait_child(&mut efax_rx, Duration::from_secs(120));
    assert!(
        st.is_some_and(|s| s.success()),
        "efax: {}\nfaxgate: {}",
        log_of(&efax_log),
        log_of(&log)
    );
    let want = render::render_part(
        "doc.pdf",
        &std::fs::read(&pdf).unwrap(),
        Kind::Pdf,
        &Options::from_config(&Config::default().offramp),
        &mut render::Unlimited,
    )
    .unwrap()
    .pages;
    let got_bytes = std::fs::read(rx_dir.join("fax.001")).unwrap();
    let got = faxgate::image::tiff::read_bytes(&got_bytes, Default::default()).unwrap();
    assert_eq!(got.len(), 1);
    let band = render::header::band_rows(&render::Layout {
        res: want[0].resolution(),
        paper: render::Paper::A4,
    });
    same_below(&want[0], &got[0], band, 0)
        .unwrap_or_else(|e| panic!("efax received page: {e}\n{}", log_of(&log)));

    // The success report reaches the sender through the relay.
    let mut report = None;
    for _ in 0..300 {
        report = relay.messages().into_iter().find(|(env, eml)| {
            env.to_string().contains("you@example.org")
                && String::from_utf8_lossy(eml).contains("Action: delivered")
        });
        if report.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(report.is_some(), "no success report: {}", log_of(&log));

    // 2. Fax → mail: efax calls modem A; faxgate answers and mails the fax to the relay.
    std::thread::sleep(rig::IAXMODEM_BUSY_OUT);
    let page = test_page();
    let file = efix_tiff(w, &page);
    let sent = Command::new(&efax)
        .arg("-d")
        .arg(&line.b)
        .args([
            "-o1",
            "-iZ",
            "-kZ",
            "-l",
            "+1 555 0002",
            "-v",
            "ewinrt",
            "-t",
            "5550001",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        sent.status.success(),
        "efax send: {}\n{}\nfaxgate: {}",
        String::from_utf8_lossy(&sent.stdout),
        String::from_utf8_lossy(&sent.stderr),
        log_of(&log)
    );
    let mut tiff = None;
    for _ in 0..300 {
        tiff = relay.messages().into_iter().find_map(|(env, eml)| {
            env.to_string()
                .contains("fax@localhost")
                .then(|| attachment_tiff(&eml))
                .flatten()
        });
        if tiff.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let tiff = tiff.unwrap_or_else(|| panic!("no fax email at the relay: {}", log_of(&log)));
    let got = faxgate::image::tiff::read_bytes(&tiff, Default::default()).unwrap();
    assert_eq!(got.len(), 1);
    // efax stamps its own header line (~20 rows at fine) on the pages it sends.
    same_below(&page, &got[0], 40, 40).unwrap_or_else(|e| panic!("received page: {e}"));

    // 3. Status, then a clean stop.
    let s = common::faxgate(w)
        .args(["-c", "faxgate.toml", "status"])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&s.stdout);
    assert!(
        s.contains("rigA") && s.contains("last call") && s.contains(" in "),
        "{s}"
    );
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(gw.id() as i32, libc::SIGTERM) };
    let st = wait_child(&mut gw, Duration::from_secs(30));
    assert!(st.is_some_and(|s| s.success()), "{}", log_of(&log));
}

/// Whole pages in the reception files the daemon has in `receiving/` (the TIFF reader follows
/// only linked pages, as recovery does).
fn pages_on_disk(data: &Path) -> usize {
    let dir = data.join("spool").join("receiving");
    let mut n = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(bytes) = std::fs::read(e.path().join("fax.part.tif")) else {
            continue;
        };
        let Ok(mut r) = faxgate::image::tiff::Reader::new(
            std::io::Cursor::new(bytes),
            faxgate::image::tiff::Limits::default(),
        ) else {
            continue;
        };
        while let Ok(Some(_)) = r.next_page() {
            n += 1;
        }
    }
    n
}

/// The messages in a Maildir's `new/`.
fn maildir_new(data: &Path) -> Vec<Vec<u8>> {
    let mut v: Vec<_> = std::fs::read_dir(data.join("maildir").join("new"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// `faxgate -c faxgate.toml run` in `w`, its output in `log`; waits (bounded) for the SMTP port.
fn start_gateway(w: &Path, smtp_port: u16, log: &Path) -> Child {
    let logf = std::fs::File::create(log).unwrap();
    let gw = common::faxgate(w)
        .args(["-c", "faxgate.toml", "run"])
        .stdin(Stdio::null())
        .stdout(logf.try_clone().unwrap())
        .stderr(logf)
        .spawn()
        .unwrap();
    let up = (0..200).any(|_| {
        let ok = std::net::TcpStream::connect(("127.0.0.1", smtp_port)).is_ok();
        if !ok {
            std::thread::sleep(Duration::from_millis(50));
        }
        ok
    });
    assert!(up, "faxgate run did not come up: {}", log_of(log));
    gw
}

/// Issue 15 on the rig: efax sends 10 pages to modem A; faxgate is SIGKILLed once two pages
/// are on disk. After the restart exactly one email carries the pages confirmed before the
/// kill (counted by libtiff's `tiffinfo`) and says the reception is partial; a further wait
/// and another restart deliver nothing more.
#[test]
fn sigkill_mid_reception_from_efax_delivers_the_confirmed_pages_once_as_a_partial_fax() {
    let efax = common::require_tool("efax", "efax");
    let tiffinfo = common::require_tool("tiffinfo", "libtiff-tools");
    let line = rig::Rig::up();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let data = w.join("data");
    let smtp_port = onramp_common::free_port();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = format!(
        "[gateway]\ndata_dir = \"{data}\"\n\
         [smtp]\nlisten = \"127.0.0.1:{smtp_port}\"\n\
         [relay]\nmode = \"maildir\"\n\
         [loopback]\nenabled = false\n\
         [log]\nfilter = \"info\"\n\
         [[modem]]\nname = \"rigA\"\ndevice = \"{dev}\"\nprofile = \"iaxmodem\"\n\
         profiles_dir = \"{profiles}\"\nlocal_id = \"+1 555 0001\"\nrole = \"receive\"\nrings = 1\n",
        data = data.display(),
        dev = line.a.display(),
        profiles = manifest.join("firmware-config/modems").display(),
    );
    std::fs::write(w.join("faxgate.toml"), cfg).unwrap();

    // Ten pages, each with its own block, as efix-made TIFF-F files.
    let files: Vec<PathBuf> = (0..10u32)
        .map(|i| {
            let mut page = test_page();
            for y in 1500..1560 {
                for x in 100 + 120 * i..200 + 120 * i {
                    page.set(x, y, true);
                }
            }
            let d = w.join(format!("p{i:02}"));
            std::fs::create_dir(&d).unwrap();
            efix_tiff(&d, &page)
        })
        .collect();

    let log1 = w.join("run1.log");
    let mut gw = start_gateway(w, smtp_port, &log1);
    let ready = (0..400).any(|_| {
        let ok = log_of(&log1).contains("modem ready");
        if !ok {
            std::thread::sleep(Duration::from_millis(50));
        }
        ok
    });
    assert!(ready, "modem A never got ready: {}", log_of(&log1));
    // faxgate's ATZ on the answering modem: iaxmodem refuses calls for 5 s.
    std::thread::sleep(rig::IAXMODEM_BUSY_OUT + Duration::from_secs(1));
    let efax_log = w.join("efax.log");
    let mut sender = Command::new(&efax)
        .arg("-d")
        .arg(&line.b)
        .args([
            "-o1",
            "-iZ",
            "-kZ",
            "-l",
            "+1 555 0002",
            "-v",
            "ewinrt",
            "-t",
            "5550001",
        ])
        .args(&files)
        .stdout(Stdio::from(std::fs::File::create(&efax_log).unwrap()))
        .stderr(Stdio::from(
            std::fs::File::create(w.join("efax.err")).unwrap(),
        ))
        .spawn()
        .unwrap();

    // Ten fine pages take minutes on the rig; two are on disk well within this bound.
    let end = Instant::now() + Duration::from_secs(300);
    while pages_on_disk(&data) < 2 && Instant::now() < end {
        if let Ok(Some(st)) = sender.try_wait() {
            panic!(
                "efax ended ({st}) before two pages were on disk:\n{}\nfaxgate: {}",
                log_of(&efax_log),
                log_of(&log1)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(gw.id() as i32, libc::SIGKILL) };
    let _ = gw.wait();
    let kept = pages_on_disk(&data);
    assert!(
        (2..10).contains(&kept),
        "{kept} pages on disk at the kill:\n{}",
        log_of(&log1)
    );
    eprintln!("{kept} pages on disk at the kill");
    assert!(
        maildir_new(&data).is_empty(),
        "nothing delivered before the kill"
    );
    // The far end notices the broken call by itself (T.30 timeouts); it is stopped if not.
    let efax_end = wait_child(&mut sender, Duration::from_secs(90));
    assert!(
        !efax_end.is_some_and(|s| s.success()),
        "efax cannot have sent all pages: {}",
        log_of(&efax_log)
    );

    let log2 = w.join("run2.log");
    let mut gw = start_gateway(w, smtp_port, &log2);
    let mut mails = Vec::new();
    for _ in 0..600 {
        mails = maildir_new(&data);
        if !mails.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        mails.len(),
        1,
        "one email after the restart: {}",
        log_of(&log2)
    );
    let tiff = attachment_tiff(&mails[0]).expect("the email carries a TIFF");
    let tif_path = w.join("partial.tif");
    std::fs::write(&tif_path, &tiff).unwrap();
    let info = Command::new(&tiffinfo).arg(&tif_path).output().unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    assert_eq!(
        info.matches("TIFF Directory").count(),
        kept,
        "libtiff sees the confirmed pages: {info}"
    );
    let text = MessageParser::default()
        .parse(&mails[0][..])
        .and_then(|m| m.body_text(0).map(|t| t.into_owned()))
        .unwrap_or_default();
    assert!(
        text.contains("partial reception")
            && text.contains(&format!("the call broke off after page {kept}"))
            && text.contains("crash or power cut"),
        "{text}"
    );
    assert_eq!(
        pages_on_disk(&data),
        0,
        "nothing left in receiving/: {}",
        log_of(&log2)
    );

    // Exactly once: nothing more after a wait, a clean stop and another start.
    std::thread::sleep(Duration::from_secs(3));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(gw.id() as i32, libc::SIGTERM) };
    let st = wait_child(&mut gw, Duration::from_secs(30));
    assert!(st.is_some_and(|s| s.success()), "{}", log_of(&log2));
    let log3 = w.join("run3.log");
    let mut gw = start_gateway(w, smtp_port, &log3);
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(maildir_new(&data).len(), 1, "{}", log_of(&log3));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(gw.id() as i32, libc::SIGTERM) };
    let st = wait_child(&mut gw, Duration::from_secs(30));
    assert!(st.is_some_and(|s| s.success()), "{}", log_of(&log3));
}
