//! The independent T.38 test peer (issue 17): `tests/fixtures/t38/spandsp_t38.c`, a fax
//! terminal over Debian's libspandsp with its own UDPTL, compiled once per test run into the
//! target directory and driven as a child process.
//!
//! Use from a test target with `#[path = "common/t38peer.rs"] mod t38peer;`. The peer is killed
//! when its [`Peer`] handle drops, so a failing test never leaves one behind; the harness also
//! stops by itself after `--max-seconds`.
#![allow(dead_code)]

use std::fmt;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The harness source, in the repository.
const SOURCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/t38/spandsp_t38.c"
);

/// Where compiled harnesses live: one per source content, so an edited source is rebuilt and
/// test binaries running at once share one build.
const BUILD_DIR: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/t38peer");

static HARNESS: OnceLock<PathBuf> = OnceLock::new();

/// A panic naming the Debian package that provides what is missing (tests never skip).
fn missing(what: &str, package: &str) -> ! {
    panic!(
        "the T.38 test peer needs {what} from the Debian package `{package}`: run \
         `apt-get install -y libspandsp-dev pkg-config gcc` (tests/run.sh does)"
    );
}

/// The compiled harness, built on first use in this process.
pub fn harness() -> &'static Path {
    HARNESS.get_or_init(build)
}

fn build() -> PathBuf {
    let src = std::fs::read(SOURCE).unwrap_or_else(|e| panic!("{SOURCE}: {e}"));
    // FNV-1a of the source names the binary: a stale build of an older source is never used.
    let hash = src.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    std::fs::create_dir_all(BUILD_DIR).unwrap();
    let bin = Path::new(BUILD_DIR).join(format!("spandsp_t38-{hash:016x}"));
    if bin.is_file() {
        return bin;
    }
    let pkg = Command::new("pkg-config")
        .args(["--cflags", "--libs", "spandsp"])
        .output()
        .unwrap_or_else(|_| missing("`pkg-config`", "pkg-config"));
    if !pkg.status.success() {
        missing("spandsp's headers and spandsp.pc", "libspandsp-dev");
    }
    let flags = String::from_utf8(pkg.stdout).unwrap();
    // Built under a private name, then renamed: test binaries building at the same moment
    // each rename a complete file over the same name.
    let tmp = bin.with_extension(format!("tmp{}", std::process::id()));
    let out = Command::new("gcc")
        .args(["-O2", "-Wall", "-Wextra", "-o"])
        .arg(&tmp)
        .arg(SOURCE)
        .args(flags.split_whitespace())
        .arg("-ltiff")
        .output()
        .unwrap_or_else(|_| missing("`gcc`", "gcc"));
    assert!(
        out.status.success(),
        "compiling {SOURCE} failed (the Debian packages `libspandsp-dev` and `libtiff-dev` \
         provide its headers):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp, &bin).unwrap();
    bin
}

/// A loopback UDP address that was free a moment ago, for a peer to bind. (The harness binds
/// its own socket; a port taken in between makes its bind fail loudly, not a test pass.)
pub fn free_udp_addr() -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap()
}

/// Data rate management (T.38 clause 7.4 / Annex D `T38FaxRateManagement`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateManagement {
    /// TCF is carried over the IP network.
    Transferred,
    /// TCF is generated/checked locally by each gateway.
    Local,
}

/// How to run one peer. Defaults: ECM on, V.17, T.38 version 0, redundancy 3, 120 s.
#[derive(Debug, Clone)]
pub struct PeerBuilder {
    send: bool,
    tiff: PathBuf,
    local: SocketAddr,
    remote: SocketAddr,
    ecm: bool,
    ident: String,
    version: u8,
    redundancy: u8,
    max_seconds: u32,
    v17: bool,
    bye_after_pages: Option<u32>,
    calling: Option<bool>,
    rate: RateManagement,
    expect_pages: Option<u32>,
    log: u8,
}

impl PeerBuilder {
    fn new(send: bool, tiff: &Path, local: SocketAddr, remote: SocketAddr) -> PeerBuilder {
        PeerBuilder {
            send,
            tiff: tiff.to_path_buf(),
            local,
            remote,
            ecm: true,
            ident: "spandsp".into(),
            version: 0,
            redundancy: 3,
            max_seconds: 120,
            v17: true,
            bye_after_pages: None,
            calling: None,
            rate: RateManagement::Transferred,
            expect_pages: None,
            log: 0,
        }
    }

    /// A peer that sends the pages of `tiff` from `local` to `remote`.
    pub fn send(tiff: &Path, local: SocketAddr, remote: SocketAddr) -> PeerBuilder {
        PeerBuilder::new(true, tiff, local, remote)
    }

    /// A peer that receives into `tiff` (written by spandsp).
    pub fn receive(tiff: &Path, local: SocketAddr, remote: SocketAddr) -> PeerBuilder {
        PeerBuilder::new(false, tiff, local, remote)
    }

    /// Offer/accept ECM (T.30 Annex A).
    pub fn ecm(mut self, on: bool) -> Self {
        self.ecm = on;
        self
    }

    /// The TSI/CSI the peer sends.
    pub fn ident(mut self, id: &str) -> Self {
        self.ident = id.into();
        self
    }

    /// T.38 version (0..=3).
    pub fn version(mut self, v: u8) -> Self {
        self.version = v;
        self
    }

    /// UDPTL redundancy depth: how many previous IFP packets each datagram repeats.
    pub fn redundancy(mut self, n: u8) -> Self {
        self.redundancy = n;
        self
    }

    /// The harness gives up (result `timeout`) after this long.
    pub fn max_seconds(mut self, s: u32) -> Self {
        self.max_seconds = s;
        self
    }

    /// Offer V.17 (14 400 bit/s); off: V.29 at most.
    pub fn v17(mut self, on: bool) -> Self {
        self.v17 = on;
        self
    }

    /// Stop dead (no DCN, as a BYE would) once this many pages are through.
    pub fn bye_after_pages(mut self, n: u32) -> Self {
        self.bye_after_pages = Some(n);
        self
    }

    /// Calling party (sends CNG) or answering (sends CED, DIS); default: the sender calls.
    pub fn calling(mut self, on: bool) -> Self {
        self.calling = Some(on);
        self
    }

    /// TCF transferred or local.
    pub fn rate_management(mut self, r: RateManagement) -> Self {
        self.rate = r;
        self
    }

    /// Success only with exactly this many pages.
    pub fn expect_pages(mut self, n: u32) -> Self {
        self.expect_pages = Some(n);
        self
    }

    /// spandsp's log level (0 off, 5 flow, 8+ debug) to the peer's stderr.
    pub fn log(mut self, level: u8) -> Self {
        self.log = level;
        self
    }

    /// The command line the harness gets.
    pub fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "--role".into(),
            if self.send { "send" } else { "receive" }.into(),
            "--local".into(),
            self.local.to_string(),
            "--remote".into(),
            self.remote.to_string(),
            "--tiff".into(),
            self.tiff.display().to_string(),
            "--ecm".into(),
            u8::from(self.ecm).to_string(),
            "--ident".into(),
            self.ident.clone(),
            "--version".into(),
            self.version.to_string(),
            "--redundancy".into(),
            self.redundancy.to_string(),
            "--max-seconds".into(),
            self.max_seconds.to_string(),
            "--v17".into(),
            u8::from(self.v17).to_string(),
            "--rate-management".into(),
            match self.rate {
                RateManagement::Transferred => "transferred",
                RateManagement::Local => "local",
            }
            .into(),
            "--log".into(),
            self.log.to_string(),
        ];
        if let Some(n) = self.bye_after_pages {
            a.extend(["--bye-after-pages".into(), n.to_string()]);
        }
        if let Some(c) = self.calling {
            a.extend(["--calling".into(), u8::from(c).to_string()]);
        }
        if let Some(n) = self.expect_pages {
            a.extend(["--expect-pages".into(), n.to_string()]);
        }
        a
    }

    /// Starts the peer; its stdout and stderr go to files beside `tiff` (never a pipe that
    /// could fill and stall it).
    pub fn spawn(self) -> Peer {
        let bin = harness();
        let role = if self.send { "tx" } else { "rx" };
        let out = self.tiff.with_extension(format!("{role}.out"));
        let err = self.tiff.with_extension(format!("{role}.log"));
        let child = Command::new(bin)
            .args(self.args())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        Peer {
            child: Some(child),
            out,
            err,
            limit: Duration::from_secs(u64::from(self.max_seconds) + 15),
        }
    }
}

/// A running peer; killed on drop.
pub struct Peer {
    child: Option<Child>,
    out: PathBuf,
    err: PathBuf,
    limit: Duration,
}

impl Peer {
    /// Waits for the peer to end by itself (bounded: its own `--max-seconds` plus a margin,
    /// after which it is killed and the test fails), and parses its result line.
    pub fn wait(mut self) -> PeerResult {
        let mut child = self.child.take().unwrap();
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > self.limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the T.38 peer did not stop within {:?} although it has --max-seconds:\n{}",
                    self.limit,
                    tail(&self.err)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stdout = std::fs::read_to_string(&self.out).unwrap_or_default();
        let line = stdout
            .lines()
            .rev()
            .find(|l| l.starts_with("T38PEER "))
            .unwrap_or_else(|| {
                panic!(
                    "the T.38 peer ({status}) printed no result line:\n{stdout}\n{}",
                    tail(&self.err)
                )
            });
        let mut r = parse_result(line)
            .unwrap_or_else(|| panic!("the T.38 peer's result line does not parse: {line}"));
        r.exit_ok = status.success();
        r.log = self.err.clone();
        r
    }

    /// The peer's process id.
    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The last lines of a log, for a failure message.
pub fn tail(p: &Path) -> String {
    let s = std::fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// What the peer reported (its one result line).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerResult {
    /// `ok`, `fail`, `hangup` or `timeout`.
    pub result: String,
    /// spandsp's phase E completion code (`T30_ERR_*`; 0 is OK, -1 no phase E).
    pub code: i32,
    /// Pages sent.
    pub pages_tx: u32,
    /// Pages received.
    pub pages_rx: u32,
    /// Pages in the file being sent.
    pub pages_in_file: u32,
    /// ECM was used.
    pub ecm: bool,
    /// The image bit rate of the last page.
    pub bit_rate: u32,
    /// UDPTL datagrams taken from the remote.
    pub rx_datagrams: u64,
    /// IFP packets recovered from redundancy secondaries.
    pub recovered: u64,
    /// IFP packets lost beyond what redundancy could recover.
    pub lost: u64,
    /// Malformed datagrams dropped.
    pub bad: u64,
    /// Datagrams from an address other than the remote, ignored.
    pub foreign: u64,
    /// Datagrams sent.
    pub tx_datagrams: u64,
    /// The far end's TSI/CSI.
    pub remote_ident: String,
    /// spandsp's text for the completion code.
    pub text: String,
    /// The process exited 0 (set by [`Peer::wait`]).
    pub exit_ok: bool,
    /// The peer's stderr (spandsp's log when asked for).
    pub log: PathBuf,
}

impl fmt::Display for PeerResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} code {} ({}), pages tx {} rx {}, ecm {}, {} bit/s, udptl rx {} recovered {} \
             lost {} bad {}, remote {:?}; log {}",
            self.result,
            self.code,
            self.text,
            self.pages_tx,
            self.pages_rx,
            self.ecm,
            self.bit_rate,
            self.rx_datagrams,
            self.recovered,
            self.lost,
            self.bad,
            self.remote_ident,
            self.log.display()
        )
    }
}

/// Parses `T38PEER key=value …` (values bare or double-quoted with `\"`/`\\` escapes); `None`
/// when a known key is missing or malformed.
pub fn parse_result(line: &str) -> Option<PeerResult> {
    let rest = line.strip_prefix("T38PEER ")?;
    let mut fields = std::collections::HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => value.push(chars.next()?),
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        fields.insert(key, value);
    }
    let num = |k: &str| fields.get(k)?.parse::<u64>().ok();
    Some(PeerResult {
        result: fields.get("result")?.clone(),
        code: fields.get("code")?.parse().ok()?,
        pages_tx: num("pages_tx")? as u32,
        pages_rx: num("pages_rx")? as u32,
        pages_in_file: num("pages_in_file")? as u32,
        ecm: num("ecm")? == 1,
        bit_rate: num("bit_rate")? as u32,
        rx_datagrams: num("rx_datagrams")?,
        recovered: num("recovered")?,
        lost: num("lost")?,
        bad: num("bad")?,
        foreign: num("foreign")?,
        tx_datagrams: num("tx_datagrams")?,
        remote_ident: fields.get("remote_ident")?.clone(),
        text: fields.get("text")?.clone(),
        exit_ok: false,
        log: PathBuf::new(),
    })
}
