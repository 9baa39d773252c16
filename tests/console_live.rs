//! The console's live part against a running `faxgate run` (embedded default, open mode on
//! 127.0.0.1): the dashboard, its event stream (`/events`, Server-Sent Events) while a
//! three-page fax goes over the loopback line, the modems page and the effective configuration.
//!
//! The stream is read with a plain TCP socket and decoded here (HTTP/1.1 chunked transfer,
//! then the SSE `data:` lines), so the test sees exactly what a browser's `EventSource` gets.
//!
//! A second test puts a real (soft) modem on the rig behind the console: `/modems` shows what
//! the modem said when probed, and the stream follows a real call to efax on the other modem.
//!
//! Debian packages: python3 (the README's send command), ghostscript (the test PDF); for the
//! rig test also iaxmodem, efax, iproute2, util-linux, coreutils.

mod common;
#[path = "rig/rig.rs"]
mod rig;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use serde_json::Value;

/// The relay password the daemon is given; the config page must never show it.
const RELAY_SECRET: &str = "hunter2-console-secret";

/// The status line and headers of a response (header names lower-cased).
fn read_head(r: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {line:?}"));
    let mut headers = Vec::new();
    for _ in 0..100 {
        line.clear();
        r.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    (status, headers)
}

/// One chunk of a chunked body; `None` at the last (empty) chunk or the end of the stream.
fn read_chunk(r: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut size = String::new();
    if r.read_line(&mut size).ok()? == 0 {
        return None;
    }
    let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
    if n == 0 {
        return None;
    }
    let mut data = vec![0; n + 2];
    r.read_exact(&mut data).ok()?;
    data.truncate(n);
    Some(data)
}

/// `GET path` on the console: status and body.
fn get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let (status, headers) = read_head(&mut r);
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let mut body = Vec::new();
    if chunked {
        // Bounded: a page is far below this many chunks.
        for _ in 0..100_000 {
            match read_chunk(&mut r) {
                Some(c) => body.extend(c),
                None => break,
            }
        }
    } else {
        r.read_to_end(&mut body).unwrap();
    }
    (status, String::from_utf8(body).unwrap())
}

/// What the stream reader hears.
enum Heard {
    /// One event's JSON document.
    Doc(Value),
    /// The stream ended (the last chunk, or the connection closed).
    End,
}

/// Opens `/events` and reads it on a thread: each event's document, then [`Heard::End`].
fn open_events(port: u16) -> mpsc::Receiver<Heard> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    // Keep-alive comments come every 15 s; anything longer than this is a hung stream.
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(s);
        let (status, headers) = read_head(&mut r);
        assert_eq!(status, 200);
        assert!(
            headers
                .iter()
                .any(|(k, v)| k == "content-type" && v.starts_with("text/event-stream")),
            "{headers:?}"
        );
        let mut text = String::new();
        while let Some(chunk) = read_chunk(&mut r) {
            text.push_str(&String::from_utf8_lossy(&chunk));
            // Events end with a blank line (WHATWG HTML §9.2.6).
            while let Some(end) = text.find("\n\n") {
                let event: String = text.drain(..end + 2).collect();
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(|d| d.strip_prefix(' ').unwrap_or(d))
                    .collect();
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                let doc = serde_json::from_str(&data.join("\n")).unwrap();
                if tx.send(Heard::Doc(doc)).is_err() {
                    return;
                }
            }
        }
        let _ = tx.send(Heard::End);
    });
    rx
}

fn queue_total(doc: &Value) -> u64 {
    doc["queue"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["queued"].as_u64().unwrap() + c["running"].as_u64().unwrap())
        .sum()
}

#[test]
fn the_dashboard_streams_a_call_page_by_page_and_the_stream_ends_at_shutdown() {
    let tmp = tempfile::tempdir().unwrap();
    let pdf = common::pages_pdf(tmp.path(), 3);
    let mut d = Daemon::new(tmp.path());
    // A paced line: each page takes a second or more on the wall clock, several of the
    // stream's looks (every 250 ms).
    d.start(&[
        ("FAXGATE_LOOPBACK__PACE", "0.5"),
        ("FAXGATE_RELAY__USERNAME", "gateway"),
        ("FAXGATE_RELAY__PASSWORD", RELAY_SECRET),
    ]);
    let port = d.http_port;

    let (status, page) = get(port, "/");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(r#"<tr data-line="loopback">"#), "{page}");
    assert!(
        page.contains(r#"class="state state-idle">idle</td>"#),
        "{page}"
    );
    assert!(page.contains(r#"<script src="/static/console.js""#));
    assert!(page.contains("Failures of the last 24 h"));
    let (status, js) = get(port, "/static/console.js");
    assert_eq!(status, 200);
    assert!(js.contains(r#"new EventSource("/events")"#));

    let events = open_events(port);
    let next = |what: &str| match events.recv_timeout(Duration::from_secs(60)) {
        Ok(Heard::Doc(v)) => v,
        Ok(Heard::End) => panic!("the stream ended while waiting for {what}"),
        Err(e) => panic!("nothing heard while waiting for {what}: {e}\n{}", d.log()),
    };
    let first = next("the first document");
    assert_eq!(first["lines"][0]["name"], "loopback");
    assert_eq!(first["lines"][0]["state"], "idle");
    assert_eq!(first["lines"][0]["call"], Value::Null);
    assert_eq!(queue_total(&first), 0);
    assert_eq!(
        first["queue"]["fax-out"]["queued"], 0,
        "every kind is there"
    );

    d.send_pdf(&pdf);

    // Follow the stream until the call is over and the queue is empty again.
    let (mut pages_seen, mut phases, mut most_queued) = (Vec::new(), Vec::new(), 0);
    let mut docs = 0;
    let mut last = first;
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the call never ended:\n{}",
            d.log()
        );
        let doc = next("the call");
        docs += 1;
        assert_ne!(doc, last, "a document is sent only when something changed");
        most_queued = most_queued.max(queue_total(&doc));
        let line = &doc["lines"][0];
        if let Some(call) = line["call"].as_object() {
            assert_eq!(line["state"], "sending", "{doc}");
            let phase = call["phase"].as_str().unwrap().to_owned();
            if phases.last() != Some(&phase) {
                phases.push(phase.clone());
            }
            // A page shows while it goes out and while it is confirmed (over a second in
            // all at this pace: several of the stream's looks even on a loaded machine).
            if phase == "sending page" || phase == "confirming page" {
                let n = call["page"].as_u64().unwrap();
                assert_eq!(call["pages_total"], 3, "{doc}");
                assert_eq!(call["number"], "+12125550123");
                assert_eq!(call["speed_bps"], 14400, "{doc}");
                assert_eq!(call["remote_id"], "+1 212 555 0123");
                assert!(
                    line["call_text"]
                        .as_str()
                        .unwrap()
                        .starts_with(&format!("{phase}, page {n} of 3, 14400 bit/s")),
                    "{doc}"
                );
                if pages_seen.last() != Some(&n) {
                    pages_seen.push(n);
                }
            }
        }
        let over = !pages_seen.is_empty() && line["state"] == "idle" && queue_total(&doc) == 0;
        last = doc;
        if over {
            break;
        }
    }
    assert_eq!(pages_seen, [1, 2, 3], "phases {phases:?}");
    // "dialling" is not required: the loopback line dials at once, so that phase may fall
    // between two of the stream's looks (the rig test below sees it on a real modem).
    for p in ["training", "sending page", "confirming page"] {
        assert!(phases.iter().any(|x| x == p), "{p} not in {phases:?}");
    }
    assert!(most_queued >= 1, "the queue counts went up");
    assert_eq!(last["lines"][0]["call"], Value::Null);
    let recent = last["recent"].as_array().unwrap();
    for kind in ["message", "fax-out", "fax-in", "mail-out"] {
        assert!(
            recent
                .iter()
                .any(|j| j["kind"] == kind && j["state"] == "done"),
            "{kind} done in {last}"
        );
    }
    assert_eq!(last["failures"]["count"], 0);
    assert!(
        last["lines"][0]["last_call"]
            .as_str()
            .unwrap()
            .contains("out +12125550123"),
        "{last}"
    );
    eprintln!(
        "{docs} documents for one 3-page call; phases {phases:?}; call took {:?}",
        started.elapsed()
    );

    // After the call, the page's first render shows it too.
    let (_, page) = get(port, "/");
    assert!(page.contains("out +12125550123"), "{page}");
    assert!(
        page.contains(r#"<td>fax-out</td><td class="ok">done</td>"#),
        "{page}"
    );

    let (status, modems) = get(port, "/modems");
    assert_eq!(status, 200, "{modems}");
    assert!(modems.contains(r#"data-line="loopback""#), "{modems}");
    assert!(modems.contains("built in"), "{modems}");
    let (status, config) = get(port, "/config");
    assert_eq!(status, 200, "{config}");
    assert!(config.contains("[relay]") && config.contains("username = "));
    assert!(!config.contains(RELAY_SECRET), "{config}");
    assert!(config.contains("&lt;redacted&gt;"), "{config}");

    // SIGTERM: the open stream ends and the daemon stops promptly, not held up by it.
    let t = Instant::now();
    let st = d.signal(libc::SIGTERM);
    let stopped = t.elapsed();
    assert!(st.success(), "{}", d.log());
    let ended = loop {
        match events.recv_timeout(Duration::from_secs(30)) {
            Ok(Heard::End) => break true,
            Ok(Heard::Doc(_)) => continue,
            Err(_) => break false,
        }
    };
    assert!(ended, "the event stream did not end at shutdown");
    // Bounded generously (a loaded machine); the daemon's own grace for connections is 2 s.
    assert!(
        stopped < Duration::from_secs(10),
        "stopping took {stopped:?}"
    );
    eprintln!("daemon stopped {stopped:?} after SIGTERM with an event stream open");
}

/// The phases and pages the stream showed for line `name` until it was idle again with the
/// fax-out queue empty (bounded by `limit`).
fn follow_call(
    events: &mpsc::Receiver<Heard>,
    name: &str,
    limit: Duration,
) -> (Vec<String>, Vec<u64>, Value) {
    let (mut phases, mut pages) = (Vec::<String>::new(), Vec::<u64>::new());
    let started = Instant::now();
    let mut last_call = Value::Null;
    while started.elapsed() < limit {
        let doc = match events.recv_timeout(limit) {
            Ok(Heard::Doc(v)) => v,
            _ => break,
        };
        let line = doc["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == name)
            .unwrap()
            .clone();
        if line["call"].is_object() {
            let phase = line["call"]["phase"].as_str().unwrap().to_owned();
            if phases.last() != Some(&phase) {
                phases.push(phase);
            }
            if let Some(n) = line["call"]["page"].as_u64()
                && pages.last() != Some(&n)
            {
                pages.push(n);
            }
            last_call = line["call"].clone();
        }
        let queued = &doc["queue"]["fax-out"];
        if !phases.is_empty()
            && line["state"] == "idle"
            && queued["queued"] == 0
            && queued["running"] == 0
        {
            break;
        }
    }
    (phases, pages, last_call)
}

#[test]
fn a_real_modem_shows_its_probe_and_its_call_live_on_the_console() {
    let efax = common::require_tool("efax", "efax");
    let py = common::require_tool("python3", "python3");
    let line = rig::Rig::up();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let pdf = common::pages_pdf(w, 1);
    let (smtp_port, http_port) = (common::daemon::free_port(), common::daemon::free_port());
    let cfg = format!(
        "[gateway]\ndata_dir = \"{data}\"\n\
         [smtp]\nlisten = \"127.0.0.1:{smtp_port}\"\n\
         [loopback]\nenabled = false\n\
         [log]\nfilter = \"info\"\n\
         [[modem]]\nname = \"rigA\"\ndevice = \"{dev}\"\nprofile = \"iaxmodem\"\n\
         profiles_dir = \"{profiles}\"\nlocal_id = \"+1 555 0001\"\nrole = \"both\"\nrings = 1\n",
        data = w.join("data").display(),
        dev = line.a.display(),
        profiles = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("firmware-config/modems")
            .display(),
    );
    std::fs::write(w.join("faxgate.toml"), cfg).unwrap();
    let log = w.join("faxgate.log");
    let logf = std::fs::File::create(&log).unwrap();
    let mut gw = common::faxgate(w)
        .env("FAXGATE_HTTP__LISTEN", format!("127.0.0.1:{http_port}"))
        .args(["-c", "faxgate.toml", "run"])
        .stdin(Stdio::null())
        .stdout(logf.try_clone().unwrap())
        .stderr(logf)
        .spawn()
        .unwrap();
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let up = (0..200).any(|_| {
        let ok = TcpStream::connect(("127.0.0.1", http_port)).is_ok()
            && TcpStream::connect(("127.0.0.1", smtp_port)).is_ok();
        if !ok {
            std::thread::sleep(Duration::from_millis(50));
        }
        ok
    });
    assert!(up, "faxgate run did not come up:\n{}", log_text());

    // The answering loop opens and probes the modem at start.
    let mut modems = String::new();
    let probed = (0..300).any(|_| {
        modems = get(http_port, "/modems").1;
        let done = modems.contains("identity (ATI)");
        if !done {
            std::thread::sleep(Duration::from_millis(100));
        }
        done
    });
    assert!(
        probed,
        "no probe on the modems page:\n{modems}\n{}",
        log_text()
    );
    for want in [
        r#"data-line="rigA""#,
        &line.a.display().to_string(),
        "iaxmodem (in ",
        "V.21 HDLC</dt><dd>yes",
        "14400",
    ] {
        assert!(modems.contains(want), "{want}:\n{modems}");
    }

    // efax answers on modem B; a one-page fax goes out on modem A.
    let rx_dir = w.join("efax-rx");
    std::fs::create_dir(&rx_dir).unwrap();
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
        .stdout(Stdio::from(
            std::fs::File::create(rx_dir.join("efax.log")).unwrap(),
        ))
        .stderr(Stdio::from(
            std::fs::File::create(rx_dir.join("efax.err")).unwrap(),
        ))
        .spawn()
        .unwrap();
    std::thread::sleep(rig::IAXMODEM_BUSY_OUT + Duration::from_secs(1));
    let events = open_events(http_port);
    let out = Command::new(&py)
        .args(["-c", common::daemon::SEND_PY, &smtp_port.to_string()])
        .arg(&pdf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (phases, pages, call) = follow_call(&events, "rigA", Duration::from_secs(180));
    let _ = efax_rx.kill();
    let _ = efax_rx.wait();
    eprintln!("modem call: phases {phases:?}, pages {pages:?}, last view {call}");
    for p in ["dialling", "training", "sending page"] {
        assert!(
            phases.iter().any(|x| x == p),
            "{p} not in {phases:?}\n{}",
            log_text()
        );
    }
    assert_eq!(pages, [1], "{phases:?}");
    assert_eq!(call["pages_total"], 1);
    assert_eq!(call["remote_id"], "+1 555 0002", "efax's CSI: {call}");
    assert!(
        call["speed_bps"].as_u64().is_some_and(|b| b >= 2400),
        "{call}"
    );

    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(gw.id() as i32, libc::SIGTERM) };
    let stopped = (0..400).any(|_| {
        let done = gw.try_wait().unwrap().is_some();
        if !done {
            std::thread::sleep(Duration::from_millis(50));
        }
        done
    });
    if !stopped {
        let _ = gw.kill();
    }
    assert!(stopped, "faxgate did not stop:\n{}", log_text());
}
