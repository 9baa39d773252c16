//! Live views cannot take the console over: every open dashboard holds one connection, so the
//! daemon keeps at most `MAX_EVENT_STREAMS` (16) event streams open and refuses one more with
//! `503` and `Retry-After`; the pages still answer meanwhile, and a place comes back when a
//! client goes away (noticed at the stream's next keep-alive write).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::common::daemon::Daemon;

/// The places (`faxgate::app::console::pages::dashboard::MAX_EVENT_STREAMS`).
const STREAMS: usize = 16;

/// Opens `GET path`; returns the status and the connection (still open, body unread).
fn open(port: u16, path: &str) -> (u16, BufReader<TcpStream>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {line:?}"));
    (status, r)
}

/// The rest of the head, lower-cased.
fn head(r: &mut BufReader<TcpStream>) -> String {
    let mut all = String::new();
    for _ in 0..100 {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap() == 0 || line.trim().is_empty() {
            break;
        }
        all.push_str(&line.to_ascii_lowercase());
    }
    all
}

#[test]
fn console_events_beyond_the_stream_limit_are_refused_and_pages_still_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(tmp.path());
    d.start(&[]);
    let port = d.http_port;
    let mut streams: Vec<BufReader<TcpStream>> = (0..STREAMS)
        .map(|i| {
            let (status, mut r) = open(port, "/events");
            assert_eq!(status, 200, "stream {i}:\n{}", d.log());
            assert!(head(&mut r).contains("text/event-stream"));
            r
        })
        .collect();
    let (status, mut r) = open(port, "/events");
    assert_eq!(status, 503, "one stream more than the limit");
    assert!(head(&mut r).contains("retry-after: 10"));
    let (status, _) = open(port, "/");
    assert_eq!(status, 200, "the dashboard itself still answers");
    let (status, _) = open(port, "/modems");
    assert_eq!(status, 200);

    // A client leaves: its place comes back once the daemon writes to it again (keep-alive
    // every 15 s; the first write after a close may still succeed). Bounded wait.
    drop(streams.pop());
    let back = (0..90).any(|_| {
        let (status, _) = open(port, "/events");
        if status != 200 {
            std::thread::sleep(Duration::from_secs(1));
        }
        status == 200
    });
    assert!(
        back,
        "the place of a closed stream never came back:\n{}",
        d.log()
    );
    assert!(d.signal(libc::SIGTERM).success(), "{}", d.log());
}
