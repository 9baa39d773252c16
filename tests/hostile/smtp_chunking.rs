//! Attacks on CHUNKING/BDAT (RFC 3030) and SMTPUTF8 (RFC 6531) at the offramp listener
//! (issue 18): chunks past the size limit, chunk sizes that lie, a flood of tiny chunks, and
//! bytes that are not UTF-8 under SMTPUTF8. The real listener runs in this process on
//! loopback; a blocking client talks to it.
//!
//! Outcomes asserted: the reply the RFCs ask for, chunk octets never run as commands, nothing
//! spooled past the limit, the listener still serving afterwards.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use faxgate::config::Config;
use faxgate::daemon::Shutdown;
use faxgate::spool::{Area, JobKind, Spool, SpoolOptions};

/// Hang guard on every read (not an assertion on speed).
const READ_GUARD: Duration = Duration::from_secs(120);

/// The listener in this process, with its spool.
struct Listener {
    rt: tokio::runtime::Runtime,
    addr: SocketAddr,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    done: Option<tokio::task::JoinHandle<()>>,
    spool: Spool,
    dir: tempfile::TempDir,
}

impl Listener {
    fn start(tune: impl FnOnce(&mut Config)) -> Listener {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Config::default();
        c.gateway.hostname = "gw.fax.test".into();
        c.gateway.domains = vec!["fax.test".into()];
        c.gateway.data_dir = dir.path().join("data");
        c.smtp.listen = vec!["127.0.0.1:0".parse().unwrap()];
        tune(&mut c);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let spool = Spool::open(&dir.path().join("spool"), SpoolOptions::default()).unwrap();
        let server = rt.block_on(faxgate::smtp::bind(&c, spool.clone())).unwrap();
        let addr = server.local_addrs()[0];
        let (stop, shutdown) = Shutdown::new();
        let done = rt.spawn(server.run(shutdown));
        Listener {
            rt,
            addr,
            stop: Some(stop),
            done: Some(done),
            spool,
            dir,
        }
    }

    /// The committed messages' bytes.
    fn messages(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for rec in self.spool.list(Area::Queue).unwrap().jobs {
            if rec.kind != JobKind::Message {
                continue;
            }
            let faxgate::job::JobData::Message(m) = &rec.data else {
                continue;
            };
            out.push(std::fs::read(self.spool.payload_path(&rec.id, &m.file).unwrap()).unwrap());
        }
        out
    }

    /// Jobs being written and not committed.
    fn incoming(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("spool/incoming"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(true);
        }
        if let Some(d) = self.done.take() {
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(30), d).await });
        }
    }
}

/// A blocking SMTP client.
struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Client {
    fn connect(to: SocketAddr) -> Client {
        let s = TcpStream::connect(to).unwrap();
        s.set_read_timeout(Some(READ_GUARD)).unwrap();
        let mut c = Client {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        };
        assert!(c.reply().starts_with("220 "));
        c
    }

    /// One whole reply; empty at end of stream.
    fn reply(&mut self) -> String {
        let mut all = Vec::new();
        loop {
            let mut line = Vec::new();
            if self.r.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                break;
            }
            all.extend_from_slice(&line);
            if line.get(3) != Some(&b'-') {
                break;
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    }

    fn send(&mut self, b: &[u8]) {
        self.w.write_all(b).unwrap();
    }

    fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    fn envelope(&mut self) {
        assert!(self.cmd("EHLO attacker.test").contains("250-CHUNKING"));
        assert!(self.cmd("MAIL FROM:<a@example.org>").starts_with("250 "));
        assert!(
            self.cmd("RCPT TO:<FAX=+12125550142@fax.test>")
                .starts_with("250 ")
        );
    }
}

/// Chunks past `max_message_size`: one announced far beyond it (its octets drained, nothing
/// spooled, no reply until the client stops or the data timeout ends it), and real octets
/// over two chunks (552, then 503 for what was pipelined behind). The listener serves on.
#[test]
fn smtp_chunking_bdat_past_the_size_limit() {
    let l = Listener::start(|c| c.smtp.max_message_size = 100_000);
    let mut c = Client::connect(l.addr);
    c.envelope();
    let junk = vec![b'j'; 60_000];
    let batch = [
        b"BDAT 60000\r\n".as_slice(),
        &junk,
        b"BDAT 60000\r\n",
        &junk,
        b"BDAT 5 LAST\r\nQUIT\r",
        b"NOOP\r\n",
    ]
    .concat();
    c.send(&batch);
    assert_eq!(c.reply(), "250 2.0.0 60000 octets received\r\n");
    assert!(c.reply().starts_with("552 5.3.4"));
    assert!(c.reply().starts_with("503 5.5.1 No mail transaction"));
    assert_eq!(c.reply(), "250 2.0.0 Ok\r\n", "QUIT was chunk data");
    assert!(l.messages().is_empty());
    // A chunk announced at 10^18 octets: drained, never stored. The client gives up.
    let mut c = Client::connect(l.addr);
    c.envelope();
    c.send(b"BDAT 1000000000000000000 LAST\r\n");
    for _ in 0..40 {
        c.send(&[b'z'; 16 * 1024]);
    }
    drop(c);
    let mut c = Client::connect(l.addr);
    c.envelope();
    assert!(c.cmd("NOOP").starts_with("250 "), "listener still serving");
    assert!(l.messages().is_empty());
    // Whatever the listener had open for the drained chunk is gone once the client is.
    for _ in 0..200 {
        if l.incoming() == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(l.incoming(), 0, "nothing left in incoming/");
}

/// Chunk sizes that lie. Commands hidden inside a chunk are data, never run; a `.` line is
/// data (no end of data inside BDAT); a size that cannot be read closes the session (501),
/// because the chunk's end cannot be known; a size above `u64` too.
#[test]
fn smtp_chunking_lying_chunk_sizes() {
    let l = Listener::start(|_| {});
    let mut c = Client::connect(l.addr);
    c.envelope();
    let inner = "\r\n.\r\nQUIT\r\nRSET\r\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<FAX=+19005550100@fax.test>\r\nDATA\r\n";
    c.send(format!("BDAT {}\r\n{inner}", inner.len() + 10).as_bytes());
    // Ten octets short: the next command line is taken as the rest of the chunk.
    c.send(b"BDAT 0 LAS");
    assert_eq!(
        c.reply(),
        format!("250 2.0.0 {} octets received\r\n", inner.len() + 10)
    );
    assert!(c.cmd("BDAT 0 LAST").starts_with("250 2.0.0 Ok: queued"));
    let msgs = l.messages();
    assert_eq!(msgs.len(), 1);
    // (After our `Received:` field.)
    let want = format!("{inner}BDAT 0 LAS");
    let m = &msgs[0];
    assert!(
        m.ends_with(want.as_bytes()),
        "{:?}",
        String::from_utf8_lossy(m)
    );
    let received = &m[..m.len() - want.len()];
    assert!(received.starts_with(b"Received: ") && !received.windows(4).any(|w| w == b"\r\n\r\n"));
    for bad in [
        "BDAT +5",
        "BDAT 0x10",
        "BDAT 18446744073709551616",
        "BDAT 5 LAST LAST",
    ] {
        let mut c = Client::connect(l.addr);
        c.envelope();
        let r = c.cmd(&format!("{bad}\r\nMAIL FROM:<x@example.org>"));
        assert!(r.starts_with("501 5.5.4 Syntax: BDAT"), "{bad}: {r}");
        assert_eq!(c.reply(), "", "{bad}: the session is closed");
    }
    assert_eq!(l.messages().len(), 1);
}

/// 20 000 one-octet chunks pipelined in one write: one reply each, in order, and one message
/// of 20 000 octets.
#[test]
fn smtp_chunking_huge_chunk_count() {
    const N: usize = 20_000;
    let l = Listener::start(|_| {});
    let mut c = Client::connect(l.addr);
    c.envelope();
    let mut batch = Vec::with_capacity(N * 10);
    let mut want = Vec::with_capacity(N);
    for i in 0..N {
        want.push(b'a' + (i % 26) as u8);
        batch.extend_from_slice(b"BDAT 1\r\n");
        batch.push(b'a' + (i % 26) as u8);
    }
    batch.extend_from_slice(b"BDAT 0 LAST\r\n");
    let w = c.w.try_clone().unwrap();
    // Written from another thread: the replies must be read while the batch goes out.
    let writer = std::thread::spawn(move || {
        let mut w = w;
        w.write_all(&batch).unwrap();
    });
    for i in 0..N {
        let r = c.reply();
        assert_eq!(r, "250 2.0.0 1 octets received\r\n", "chunk {i}");
    }
    assert!(c.reply().starts_with("250 2.0.0 Ok: queued"));
    writer.join().unwrap();
    let msgs = l.messages();
    assert_eq!(msgs.len(), 1);
    // Our `Received:` field, then the octets in order.
    assert!(msgs[0].ends_with(&want) && msgs[0].starts_with(b"Received: "));
}

/// Bytes that are not UTF-8 under SMTPUTF8: refused in addresses (553), never echoed raw;
/// in the header of a message (8-bit data) they are stored as sent, and a subject-addressed
/// message still finds its number.
#[test]
fn smtp_chunking_non_utf8_bytes_with_smtputf8() {
    let l = Listener::start(|c| c.offramp.subject_address = "fax".into());
    let mut c = Client::connect(l.addr);
    assert!(c.cmd("EHLO attacker.test").contains("250-SMTPUTF8"));
    c.send(b"MAIL FROM:<\xff\xfe@example.org> SMTPUTF8\r\n");
    let r = c.reply();
    assert_eq!(r, "553 5.1.7 Bad sender address: bad character\r\n");
    c.send(b"MAIL FROM:<a@ex\xc3ample.org> SMTPUTF8\r\n");
    assert!(c.reply().starts_with("553 5.1.7"));
    c.send(b"MAIL FROM:<j\xc3\xbcrgen@example.org> SMTPUTF8\r\n");
    assert!(c.reply().starts_with("250 2.1.0"));
    c.send(b"RCPT TO:<FAX=+12125550142@f\xe4x.test>\r\n");
    let r = c.reply();
    assert!(r.starts_with("550 5.1.1") && r.is_ascii(), "{r}");
    assert!(c.cmd("RCPT TO:<fax@fax.test>").starts_with("250 2.1.5"));
    let msg = b"Subject: +12125550142 \xff\xfe\xc3(\r\nFrom: \xf0\x28\x8c\xbc <j@example.org>\r\n\r\nbody \x80\r\n";
    c.send(format!("BDAT {} LAST\r\n", msg.len()).as_bytes());
    c.send(msg);
    let r = c.reply();
    assert!(r.starts_with("250 2.0.0 Ok: queued"), "{r}");
    let msgs = l.messages();
    assert_eq!(msgs.len(), 1);
    assert!(msgs[0].ends_with(msg), "stored as sent");
}
