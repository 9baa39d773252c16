//! The console's job and fax pages under hostile input: damaged stored TIFFs behind a page
//! image (an error, never a panic or an unbounded decode), and paths, ids, page numbers and
//! queries made to break the routes (a clear 4xx, never a 5xx; the daemon stays up).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use faxgate::app::console::thumbs::{self, Pages, ThumbError};

use super::common;

/// A little-endian TIFF header pointing at an IFD at `ifd` with `entries` (tag, type, count,
/// value) and next-IFD `next`.
fn tiff(ifd: u32, entries: &[(u16, u16, u32, u32)], next: u32) -> Vec<u8> {
    let mut b = b"II*\0".to_vec();
    b.extend_from_slice(&ifd.to_le_bytes());
    b.resize(ifd as usize, 0);
    b.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, typ, count, value) in entries {
        b.extend_from_slice(&tag.to_le_bytes());
        b.extend_from_slice(&typ.to_le_bytes());
        b.extend_from_slice(&count.to_le_bytes());
        b.extend_from_slice(&value.to_le_bytes());
    }
    b.extend_from_slice(&next.to_le_bytes());
    b
}

#[test]
fn console_pages_damaged_stored_tiffs_give_an_error_not_a_panic() {
    let d = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("not a tiff", b"%PDF-1.4 nothing here".to_vec()),
        ("truncated header", b"II*\0\x08".to_vec()),
        ("ifd past the end", b"II*\0\xff\xff\xff\x00".to_vec()),
        // An IFD that points at itself: the chain loops.
        (
            "looping ifd chain",
            tiff(8, &[(256, 4, 1, 1728), (257, 4, 1, 10), (259, 3, 1, 1)], 8),
        ),
        // A page of 4 billion rows: refused by the reader's limits before any allocation.
        (
            "giant page",
            tiff(
                8,
                &[(256, 4, 1, 1728), (257, 4, 1, u32::MAX), (259, 3, 1, 1)],
                0,
            ),
        ),
        // Strips that claim far more bytes than the file has.
        (
            "strip past the end",
            tiff(
                8,
                &[
                    (256, 4, 1, 1728),
                    (257, 4, 1, 100),
                    (259, 3, 1, 4),
                    (273, 4, 1, 4096),
                    (279, 4, 1, 1 << 30),
                ],
                0,
            ),
        ),
    ];
    for (name, bytes) in cases {
        let path = d.path().join(format!("{}.tif", name.replace(' ', "-")));
        std::fs::write(&path, &bytes).unwrap();
        for n in [1, 2, 1000, 1001, u32::MAX] {
            match thumbs::page(Pages::Tiff(path.clone()), n) {
                Err(ThumbError::Unreadable(_) | ThumbError::NoSuchPage(_)) => {}
                Err(e) => panic!("{name} page {n}: unexpected {e}"),
                Ok(p) => panic!(
                    "{name} page {n}: a {}×{} page from a damaged file",
                    p.width(),
                    p.height()
                ),
            }
        }
    }
}

fn status_of(port: u16, method: &str, path: &[u8]) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = Vec::new();
    req.extend_from_slice(method.as_bytes());
    req.push(b' ');
    req.extend_from_slice(path);
    req.extend_from_slice(
        format!(
            " HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        )
        .as_bytes(),
    );
    s.write_all(&req).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    String::from_utf8_lossy(&raw)
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn console_pages_hostile_paths_ids_and_page_numbers_get_4xx() {
    let tmp = tempfile::tempdir().unwrap();
    let mut d = common::daemon::Daemon::new(tmp.path());
    d.start(&[]);
    let port = d.http_port;
    let long = format!("/jobs/{}", "a".repeat(8000));
    let gets: Vec<&[u8]> = vec![
        b"/jobs/..%2f..%2fetc%2fpasswd",
        b"/jobs/../../etc/passwd",
        b"/jobs/6b0b5a000000000000aa",
        b"/jobs/6b0b5a000000000000aa.0",
        b"/jobs/6b0b5a000000000000aa.99999",
        b"/jobs/6b0b5a000000000000aa/pages/1.png",
        b"/jobs/6b0b5a000000000000aa/pages/99999999999999999999.png",
        b"/jobs/6b0b5a000000000000aa/pages/-1.png",
        b"/jobs/6b0b5a000000000000aa/pages/..%2f..%2fjob.json",
        b"/jobs/6b0b5a000000000000aa/pages/1.png?size=%00%ff",
        b"/queue?page=99999999999999999999999999",
        b"/queue?page=-3",
        b"/queue?page=0&page=1",
        b"/received?page=18446744073709551615",
        b"/received/6b0b5a000000000000aa?page=4294967296",
        b"/received/%00",
        long.as_bytes(),
    ];
    for path in gets {
        let st = status_of(port, "GET", path);
        let shown = String::from_utf8_lossy(&path[..path.len().min(80)]).into_owned();
        assert!((200..500).contains(&st), "GET {shown}: {st}\n{}", d.log());
    }
    // Changes without the token are refused before the id is even looked at.
    for path in [
        "/jobs/6b0b5a000000000000aa/retry",
        "/jobs/../cancel",
        "/received/6b0b5a000000000000aa/redeliver",
    ] {
        assert_eq!(status_of(port, "POST", path.as_bytes()), 403, "POST {path}");
    }
    // Still up and answering.
    assert_eq!(status_of(port, "GET", b"/queue"), 200);
}
