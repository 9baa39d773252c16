//! `faxgate run` with a `[[sip]]` line, end to end over loopback (issue 17): SIPp (Debian
//! `sip-tester`) plays the trunk, the registrar and the far end's signalling with the
//! scenarios in `tests/fixtures/sip/e2e_*.xml`; the far end's fax machine is spandsp's T.38
//! terminal behind the test harness's own UDPTL (`tests/common/t38peer.rs`).
//!
//! - An email to `FAX=+12125550123@localhost` goes out over SIP (INVITE with G.711 and CNG,
//!   our re-INVITE to T.38 after `reinvite_wait`) to the spandsp peer: its pages arrive
//!   pixel-exact (below the header line) and the sender gets the usual success DSN.
//! - spandsp calls faxgate over SIP: faxgate answers with G.711 silence and re-INVITEs to
//!   T.38; the fax becomes the usual fax email, pages pixel-exact (fine and standard, ECM on
//!   and off), DID and caller from SIP.
//! - The far end answers 488 to the re-INVITE: the attempt ends with "the far end does not
//!   accept T.38", is retried per `[retry]`, and the sender's failure DSN says why.
//! - The far end hangs up (BYE) mid-document: the confirmed pages become a partial fax.
//! - REGISTER with a wrong password: `faxgate status` shows the line offline with the
//!   registrar's refusal; the right password shows it registered.
//!
//! Media ports: faxgate's user agent hands out its `media_port_min` first, so a test that
//! places one call knows where faxgate's UDPTL will be before the call and starts the spandsp
//! peer with that remote.
//!
//! Debian packages: sip-tester, libspandsp-dev, pkg-config, gcc, python3, ghostscript.

mod common;
#[path = "common/t38peer.rs"]
mod t38peer;

use common::daemon::Daemon;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use faxgate::config::Config;
use faxgate::image::render::{self, Kind, Options};
use faxgate::image::tiff::{Limits, Profile, Writer, read_bytes};
use faxgate::image::{Page, Resolution};
use mail_parser::{MessageParser, MimeHeaders};
use t38peer::{PeerBuilder, free_udp_addr};

/// The scenarios.
fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sip")
        .join(name)
}

/// A free UDP port on loopback (SIP over UDP, RTP).
fn free_udp_port() -> u16 {
    free_udp_addr().port()
}

/// A run of SIPp (killed on drop; bounded by its own `-timeout`).
struct Sipp {
    child: Option<Child>,
    log: PathBuf,
}

impl Sipp {
    /// SIPp running `xml` on 127.0.0.1:`port`; `remote` makes it a UAC calling there.
    fn start(dir: &Path, xml: &str, port: u16, remote: Option<SocketAddr>, args: &[&str]) -> Sipp {
        let bin = common::require_tool("sipp", "sip-tester");
        let log = dir.join(format!("{xml}.log"));
        let mut c = Command::new(bin);
        c.current_dir(dir)
            .arg("-sf")
            .arg(scenario(xml))
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-m", "1", "-nostdin", "-timeout", "240", "-timeout_error"])
            .args(["-trace_err", "-trace_msg", "-trace_logs"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null());
        if let Some(r) = remote {
            c.arg(r.to_string());
        }
        Sipp {
            child: Some(c.spawn().unwrap()),
            log,
        }
    }

    /// The SIP messages it traced (`-trace_msg`).
    fn messages(&self) -> String {
        let dir = self.log.parent().unwrap();
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with("_messages.log"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect()
    }

    /// Waits (bounded) for SIPp to end; its exit status 0 means every message came as the
    /// scenario says.
    fn wait(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return false;
        };
        for _ in 0..5000 {
            if let Some(st) = c.try_wait().unwrap() {
                return st.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
        false
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The ports of one test's faxgate SIP line.
struct Line {
    sip: u16,
    media: u16,
}

/// A config file with one `[[sip]]` line (`extra` appended to it, then more sections), the
/// loopback line off so that every fax goes over SIP.
fn config(dir: &Path, line: &Line, sip: &str, more: &str) -> PathBuf {
    let p = dir.join("faxgate.toml");
    let body = format!(
        "[loopback]\nenabled = false\n\n{more}\n\n[[sip]]\nname = \"trunk\"\nuser = \"fax\"\n\
         listen = \"127.0.0.1:{}\"\nmedia_port_min = {}\nmedia_port_max = {}\n\
         reinvite_wait = \"1s\"\nlocal_id = \"+1 555 0100\"\n{sip}\n",
        line.sip,
        line.media,
        line.media + 19,
    );
    std::fs::write(&p, body).unwrap();
    p
}

/// Media ports for faxgate: 20 free in a row (the user agent binds the first of them for the
/// first call).
fn media_range() -> u16 {
    for _ in 0..200 {
        let base = 20_000 + (free_udp_port() % 20_000) / 2 * 2;
        if (base..base + 20).all(|p| UdpSocket::bind(("127.0.0.1", p)).is_ok()) {
            return base;
        }
    }
    panic!("no 20 free UDP ports in a row on loopback");
}

fn start(dir: &Path, cfg: &Path) -> Daemon {
    let mut d = Daemon::new(dir);
    d.start(&[
        ("FAXGATE_CONFIG", cfg.to_str().unwrap()),
        (
            "FAXGATE_LOG__FILTER",
            "info,faxgate::sip=debug,faxgate::fax::t38=debug",
        ),
    ]);
    d
}

fn is_fax_mail(m: &[u8]) -> bool {
    let p = MessageParser::default().parse(m).unwrap();
    p.attachments().any(|a| {
        a.content_type()
            .is_some_and(|c| c.c_type == "image" && c.subtype() == Some("tiff"))
    })
}

fn is_report(m: &[u8]) -> bool {
    let p = MessageParser::default().parse(m).unwrap();
    p.content_type()
        .is_some_and(|c| c.c_type == "multipart" && c.subtype() == Some("report"))
}

fn tiff_of(m: &[u8]) -> Vec<u8> {
    let p = MessageParser::default().parse(m).unwrap();
    p.attachments()
        .find(|a| {
            a.content_type()
                .is_some_and(|c| c.subtype() == Some("tiff"))
        })
        .unwrap()
        .contents()
        .to_vec()
}

/// A deterministic test page (bars, a frame, a diagonal varied by `seed`): every page codes
/// differently and a lost row shows.
fn test_page(fine: bool, seed: u32) -> Page {
    let (res, rows) = if fine {
        (Resolution::FINE, 320)
    } else {
        (Resolution::STANDARD, 160)
    };
    let mut p = Page::new(1728, rows, res).unwrap();
    let mut x: u32 = 0x2545_F491 ^ seed.wrapping_mul(0x9E37_79B9);
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    for _ in 0..200 {
        let (y0, x0) = (next() % (rows - 8), next() % 1600);
        let (w, h) = (2 + next() % 80, 1 + next() % 6);
        for y in y0..y0 + h {
            for xx in x0..(x0 + w).min(1728) {
                p.set(xx, y, true);
            }
        }
    }
    for y in 0..rows {
        p.set(8, y, true);
        p.set(1719, y, true);
        p.set((y * 5 + seed * 97) % 1728, y, true);
    }
    p
}

fn write_tiff(path: &Path, pages: &[Page]) {
    let mut w = Writer::new(std::io::Cursor::new(Vec::new()), Profile::S).unwrap();
    for p in pages {
        w.write_page(p).unwrap();
    }
    std::fs::write(path, w.finish().unwrap().into_inner()).unwrap();
}

fn assert_exact(sent: &[Page], got: &[Page], from_row: impl Fn(&Page) -> u32) {
    assert_eq!(got.len(), sent.len(), "page count");
    for (i, (s, g)) in sent.iter().zip(got).enumerate() {
        assert_eq!((g.width(), g.height()), (s.width(), s.height()), "page {i}");
        assert_eq!(
            g.resolution().y_dpi.round(),
            s.resolution().y_dpi.round(),
            "page {i}"
        );
        let differing = (from_row(s)..s.height())
            .filter(|&y| s.row(y) != g.row(y))
            .count();
        assert_eq!(differing, 0, "page {}: {differing} rows differ", i + 1);
    }
}

/// The PDF rendered the way the offramp renders it by default.
fn rendered(pdf: &Path) -> Vec<Page> {
    let opts = Options::from_config(&Config::default().offramp);
    render::render_part(
        "doc.pdf",
        &std::fs::read(pdf).unwrap(),
        Kind::Pdf,
        &opts,
        &mut render::Unlimited,
    )
    .unwrap()
    .pages
}

/// RTP arriving at `sock` (bounded wait): the audio leg before T.38.
fn rtp_payload_types(sock: &UdpSocket, n: usize) -> Vec<u8> {
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buf = [0u8; 1500];
    let mut v = Vec::new();
    while v.len() < n {
        let Ok((len, _)) = sock.recv_from(&mut buf) else {
            break;
        };
        if let Some(h) = faxgate::app::rtp::parse_header(&buf[..len]) {
            v.push(h.payload_type);
        }
    }
    v
}

#[test]
fn sip_fax_out_reaches_spandsp_pages_exact_with_a_success_dsn() {
    fax_out(true);
}

#[test]
fn sip_fax_out_without_ecm_reaches_spandsp_pages_exact() {
    fax_out(false);
}

/// An email to `FAX=+12125550123@localhost` goes out over the SIP line to the spandsp peer
/// (which offers ECM or not).
fn fax_out(ecm: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pdf = common::pages_pdf(dir, 3);
    let line = Line {
        sip: free_udp_port(),
        media: media_range(),
    };
    let sipp_port = free_udp_port();
    let audio = UdpSocket::bind("127.0.0.1:0").unwrap();
    let peer_addr = free_udp_addr();
    let cfg = config(
        dir,
        &line,
        &format!("proxy = \"127.0.0.1:{sipp_port}\"\nrole = \"send\""),
        "",
    );
    let mut sipp = Sipp::start(
        dir,
        "e2e_uas_t38.xml",
        sipp_port,
        None,
        &[
            "-key",
            "audio_port",
            &audio.local_addr().unwrap().port().to_string(),
            "-key",
            "t38_port",
            &peer_addr.port().to_string(),
        ],
    );
    let out = dir.join("received.tif");
    let peer = PeerBuilder::receive(
        &out,
        peer_addr,
        SocketAddr::from(([127, 0, 0, 1], line.media)),
    )
    .ident("spandsp rx")
    .ecm(ecm)
    .max_seconds(200)
    .spawn();
    let d = start(dir, &cfg);
    d.send_pdf(&pdf);
    // Calling: CNG in PCMU on the audio leg until the re-INVITE.
    let pts = rtp_payload_types(&audio, 10);
    assert_eq!(pts, vec![0; 10], "G.711 µ-law RTP before T.38\n{}", d.log());
    let r = peer.wait();
    assert!(
        r.result == "ok" && r.pages_rx == 3,
        "spandsp: {r}\n{}",
        d.log()
    );
    assert_eq!(r.ecm, ecm, "spandsp: {r}");
    assert_eq!(r.remote_ident, "+1 555 0100", "our TSI");
    let mails = d.wait_mail("the success report", |m| m.iter().any(|x| is_report(x)));
    let report = String::from_utf8_lossy(mails.iter().find(|m| is_report(m)).unwrap());
    assert!(report.contains("Action: delivered"), "{report}");
    assert!(sipp.wait(), "SIPp saw another call flow:\n{}", d.log());
    // Below the header line, the pages are the rendered PDF's.
    let got = read_bytes(&std::fs::read(&out).unwrap(), Limits::default()).unwrap();
    let band = |p: &Page| {
        render::header::band_rows(&render::Layout {
            res: p.resolution(),
            paper: render::Paper::A4,
        })
    };
    assert_exact(&rendered(&pdf), &got, band);
    let s = d.status(false);
    assert!(s.contains("trunk") && s.contains("out +12125550123"), "{s}");
}

#[test]
fn sip_fax_in_from_spandsp_becomes_the_fax_email() {
    fax_in(true);
}

#[test]
fn sip_fax_in_without_ecm_becomes_the_fax_email() {
    fax_in(false);
}

/// spandsp calls faxgate over SIP with 3 pages (fine, standard, fine), ECM as asked.
fn fax_in(ecm: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let line = Line {
        sip: free_udp_port(),
        media: media_range(),
    };
    let sipp_port = free_udp_port();
    let audio = UdpSocket::bind("127.0.0.1:0").unwrap();
    let peer_addr = free_udp_addr();
    // Calls are taken from the SIPp host only.
    let cfg = config(
        dir,
        &line,
        "role = \"receive\"\nallow_from = [\"127.0.0.1/32\"]",
        "",
    );
    let sent: Vec<Page> = (0..3).map(|i| test_page(i != 1, 40 + i)).collect();
    let input = dir.join("send.tif");
    write_tiff(&input, &sent);
    let d = start(dir, &cfg);
    let peer = PeerBuilder::send(
        &input,
        peer_addr,
        SocketAddr::from(([127, 0, 0, 1], line.media)),
    )
    .ident("+1 212 555 0199")
    .ecm(ecm)
    .max_seconds(200)
    .spawn();
    let mut sipp = Sipp::start(
        dir,
        "e2e_uac_t38.xml",
        sipp_port,
        Some(SocketAddr::from(([127, 0, 0, 1], line.sip))),
        &[
            "-s",
            "5550002",
            "-key",
            "caller",
            "+12125550199",
            "-key",
            "audio_port",
            &audio.local_addr().unwrap().port().to_string(),
            "-key",
            "t38_port",
            &peer_addr.port().to_string(),
        ],
    );
    let r = peer.wait();
    assert!(
        r.result == "ok" && r.pages_tx == 3,
        "spandsp: {r}\n{}",
        d.log()
    );
    assert_eq!(r.ecm, ecm, "spandsp: {r}");
    let mails = d.wait_mail("the fax email", |m| m.iter().any(|x| is_fax_mail(x)));
    let fax = mails.iter().find(|m| is_fax_mail(m)).unwrap();
    let text = String::from_utf8_lossy(fax);
    // The caller (SIP From) and the remote's station ID reach the mail.
    assert!(text.contains("12125550199"), "{text}");
    let got = read_bytes(&tiff_of(fax), Limits::default()).unwrap();
    assert_exact(&sent, &got, |_| 0);
    assert!(sipp.wait(), "SIPp saw another call flow:\n{}", d.log());
    let s = d.status(false);
    assert!(s.contains("in +12125550199"), "{s}");
    // Answering, faxgate re-INVITEs to T.38 at once: whatever audio went out before was
    // G.711 silence.
    audio.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1500];
    while let Ok((len, _)) = audio.recv_from(&mut buf) {
        let h = faxgate::app::rtp::parse_header(&buf[..len]).expect("RTP");
        let silence = match h.payload_type {
            0 => 0xFF,
            8 => 0xD5,
            pt => panic!("payload type {pt}"),
        };
        assert!(buf[h.payload_at..len].iter().all(|b| *b == silence));
    }
}

#[test]
fn sip_488_to_the_reinvite_is_a_clear_cause_retried_per_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pdf = common::pages_pdf(dir, 1);
    let line = Line {
        sip: free_udp_port(),
        media: media_range(),
    };
    let sipp_port = free_udp_port();
    let audio = UdpSocket::bind("127.0.0.1:0").unwrap();
    let cfg = config(
        dir,
        &line,
        &format!("proxy = \"127.0.0.1:{sipp_port}\"\nrole = \"send\""),
        // Two dials, the second a second after the first: both get 488.
        "[retry]\nprotocol_error = \"1s\"\nmax_dials = 2\n",
    );
    let keys = [
        "-key".to_string(),
        "audio_port".into(),
        audio.local_addr().unwrap().port().to_string(),
        "-key".into(),
        "t38_port".into(),
        "9".into(),
        "-m".into(),
        "2".into(),
    ];
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let mut sipp = Sipp::start(dir, "e2e_uas_488.xml", sipp_port, None, &keys);
    let d = start(dir, &cfg);
    d.send_pdf(&pdf);
    // The sender asked for success notices only (NOTIFY=SUCCESS): the outcome is in the
    // queue. Two dials (the retry a second after the first), then failed with the cause.
    let mut s = String::new();
    for _ in 0..600 {
        s = d.status(false);
        if s.contains("fax-out  failed") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let failed = s
        .lines()
        .find(|l| l.contains("fax-out  failed"))
        .unwrap_or_else(|| panic!("the fax job failed:\n{s}\n{}", d.log()));
    assert!(failed.contains("does not accept T.38"), "{failed}");
    assert_eq!(
        d.log()
            .matches("fax attempt: the far end does not accept T.38")
            .count(),
        2,
        "one retry per [retry] max_dials = 2:\n{}",
        d.log()
    );
    assert!(
        sipp.wait(),
        "SIPp: two calls, each 488 then BYE:\n{}",
        d.log()
    );
    let msgs = sipp.messages();
    assert!(msgs.matches("SIP/2.0 488").count() >= 2, "{msgs}");
}

#[test]
fn sip_bye_mid_document_leaves_a_partial_fax() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let line = Line {
        sip: free_udp_port(),
        media: media_range(),
    };
    let sipp_port = free_udp_port();
    let audio = UdpSocket::bind("127.0.0.1:0").unwrap();
    let peer_addr = free_udp_addr();
    let cfg = config(
        dir,
        &line,
        "role = \"receive\"\nallow_from = [\"127.0.0.1/32\"]",
        "",
    );
    let sent: Vec<Page> = (0..3).map(|i| test_page(true, 70 + i)).collect();
    let input = dir.join("send.tif");
    write_tiff(&input, &sent);
    let d = start(dir, &cfg);
    // The sender stops after its first page is confirmed; then the far end hangs up.
    let peer = PeerBuilder::send(
        &input,
        peer_addr,
        SocketAddr::from(([127, 0, 0, 1], line.media)),
    )
    .bye_after_pages(1)
    .max_seconds(200)
    .spawn();
    let cid = format!("e2e-bye-{}", std::process::id());
    let mut sipp = Sipp::start(
        dir,
        "e2e_uac_t38.xml",
        sipp_port,
        Some(SocketAddr::from(([127, 0, 0, 1], line.sip))),
        &[
            "-s",
            "5550002",
            "-cid_str",
            &cid,
            "-key",
            "caller",
            "+12125550199",
            "-key",
            "audio_port",
            &audio.local_addr().unwrap().port().to_string(),
            "-key",
            "t38_port",
            &peer_addr.port().to_string(),
        ],
    );
    let r = peer.wait();
    assert!(
        r.result == "hangup" && r.pages_tx == 1,
        "spandsp: {r}\n{}",
        d.log()
    );
    // Tell SIPp to hang up now: an INFO in its call (its scenario then sends BYE).
    let info = format!(
        "INFO sip:fax@127.0.0.1:{sipp_port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-e2e\r\n\
         From: <sip:test@127.0.0.1>;tag=e2e\r\nTo: <sip:fax@127.0.0.1>\r\nCall-ID: {cid}\r\n\
         CSeq: 1 INFO\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(info.as_bytes(), ("127.0.0.1", sipp_port))
        .unwrap();
    assert!(sipp.wait(), "SIPp: BYE after the INFO:\n{}", d.log());
    let mails = d.wait_mail("the partial fax email", |m| {
        m.iter().any(|x| is_fax_mail(x))
    });
    let fax = mails.iter().find(|m| is_fax_mail(m)).unwrap();
    let got = read_bytes(&tiff_of(fax), Limits::default()).unwrap();
    assert_exact(&sent[..1], &got, |_| 0);
    let text = String::from_utf8_lossy(fax);
    assert!(
        text.to_ascii_lowercase().contains("partial") || text.contains("incomplete"),
        "the mail says the fax is incomplete:\n{text}"
    );
}

#[test]
fn sip_register_with_a_wrong_password_is_a_line_error_in_status() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let line = Line {
        sip: free_udp_port(),
        media: media_range(),
    };
    let registrar = free_udp_port();
    // A relative password file is under the data directory.
    std::fs::create_dir_all(dir.join("faxgate-data")).unwrap();
    std::fs::write(dir.join("faxgate-data/sip-password"), "wrong-pw\n").unwrap();
    let cfg = config(
        dir,
        &line,
        &format!("registrar = \"127.0.0.1:{registrar}\"\npassword_file = \"sip-password\""),
        "",
    );
    let mut sipp = Sipp::start(
        dir,
        "e2e_registrar.xml",
        registrar,
        None,
        &["-key", "password", "right-pw"],
    );
    let d = start(dir, &cfg);
    assert!(
        sipp.wait(),
        "SIPp: REGISTER, 401, REGISTER with a wrong answer, 401"
    );
    let mut s = String::new();
    for _ in 0..200 {
        s = d.status(false);
        if s.contains("last error") && s.contains("REGISTER") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(s.contains("trunk") && s.contains("offline"), "{s}");
    assert!(
        s.contains("refused our credentials") && s.contains("wrong password"),
        "a clear line error:\n{s}"
    );
    eprintln!("{s}");
    let json = d.status(true);
    assert!(json.contains("\"registration\""), "{json}");

    // The right password: registered.
    drop(d);
    let tmp2 = tempfile::tempdir().unwrap();
    let registrar = free_udp_port();
    let pw = tmp2.path().join("sip-password");
    std::fs::write(&pw, "right-pw\n").unwrap();
    let line = Line {
        sip: free_udp_port(),
        media: media_range(),
    };
    let cfg = config(
        tmp2.path(),
        &line,
        &format!(
            "registrar = \"127.0.0.1:{registrar}\"\npassword_file = \"{}\"",
            pw.display()
        ),
        "",
    );
    let mut sipp = Sipp::start(
        tmp2.path(),
        "e2e_registrar.xml",
        registrar,
        None,
        &["-key", "password", "right-pw"],
    );
    let d = start(tmp2.path(), &cfg);
    assert!(sipp.wait(), "SIPp: REGISTER, 401, REGISTER, 200");
    for _ in 0..200 {
        s = d.status(false);
        if s.contains("sip: registered") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(s.contains("sip: registered as fax"), "{s}");
    eprintln!("{s}");
    assert!(!s.contains("offline"), "{s}");
}
