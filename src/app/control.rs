//! The local control socket and `faxgate status`.
//!
//! The running daemon listens on a Unix stream socket, `control.sock` in the data directory.
//! Connecting needs write permission on it, which follows the process umask: under the systemd
//! unit (`UMask=0027`) only the `faxgate` user and root may ask. The protocol is one request
//! line and one answer: the client writes `status\n`, the daemon answers with the
//! [`Snapshot`] as one JSON document and closes; `changed <job id>\n` (sent by `faxgate queue
//! retry|cancel` after changing a record) makes the dispatcher read that job again and is
//! answered `{"ok":true}`. Anything else is answered `{"error": …}`. Requests are capped at
//! [`MAX_REQUEST`] octets and [`REQUEST_TIMEOUT`].
//!
//! The snapshot is built from memory (the modem board and the dispatcher's [`Live`]
//! figures), never from the spool, so it answers at once under any backlog.
//!
//! The client half of the protocol is here too ([`query`], [`tell_changed`]), so that the
//! request lines are spelt in one file; `faxgate status` ([`crate::cli::status`]) asks the
//! socket and, when nobody answers (the daemon is stopped), reads the spool directly and says
//! so.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tracing::{debug, warn};

use super::dispatch::{Event, Events, Live};
use super::status::{self, ModemStatus, Snapshot};
use crate::config::Config;
use crate::daemon::Shutdown;
use crate::scheduler::Timestamp;
use crate::spool::{Area, JobId, Spool};

/// File name of the control socket in the data directory.
pub const SOCKET_NAME: &str = "control.sock";
/// Longest request line accepted (ours).
pub const MAX_REQUEST: usize = 256;
/// How long a client may take to send its request, and `faxgate status` waits for the answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer `faxgate status` reads (ours).
pub const MAX_ANSWER: u64 = 4 << 20;

/// What a client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `status`: the snapshot.
    Status,
    /// `changed <id>`: another process changed this job's record.
    Changed(JobId),
    /// Anything else (answered with an error).
    Unknown,
}

/// PURE: the request in the first line of `bytes` (at most [`MAX_REQUEST`] octets are looked
/// at; surrounding white space is ignored).
pub fn request_of(bytes: &[u8]) -> Request {
    let head = &bytes[..bytes.len().min(MAX_REQUEST)];
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.trim_ascii();
    if line == b"status" {
        return Request::Status;
    }
    if let Some(id) = line.strip_prefix(b"changed ")
        && let Ok(id) = std::str::from_utf8(id.trim_ascii())
            .unwrap_or_default()
            .parse()
    {
        return Request::Changed(id);
    }
    Request::Unknown
}

/// The socket path for `config`.
pub fn socket_path(config: &Config) -> PathBuf {
    config.gateway.data_dir.join(SOCKET_NAME)
}

/// The live modem list, shared between the job runner (which updates it) and the socket.
pub type ModemBoard = Arc<Mutex<Vec<ModemStatus>>>;

/// A snapshot of the modem board (a poisoned lock still holds the last good data).
pub fn modems_now(board: &ModemBoard) -> Vec<ModemStatus> {
    match board.lock() {
        Ok(m) => m.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

/// Keeps the call in progress of one line on the board, from the line driver's observer hook
/// (the loopback line's step, a modem call's `run_call_observed`): the board is written when
/// the phase, the page, the speed or the remote's ID changes — a few times per page, never per
/// byte — and the call is taken off the board when the watch is dropped (however the call
/// ended).
pub struct CallWatch {
    board: ModemBoard,
    line: String,
    shown: status::CallProgress,
    writes: usize,
}

impl CallWatch {
    /// Shows `call` on `line` now.
    pub fn start(board: &ModemBoard, line: &str, call: status::CallProgress) -> CallWatch {
        let mut w = CallWatch {
            board: board.clone(),
            line: line.to_owned(),
            shown: call,
            writes: 0,
        };
        w.publish();
        w
    }

    /// Folds an engine's progress in; the board is written only when something shown changed.
    pub fn observe(&mut self, p: &crate::fax::t30::Progress) {
        if self.shown.update(p) {
            self.publish();
        }
    }

    /// The call as shown now.
    pub fn shown(&self) -> &status::CallProgress {
        &self.shown
    }

    /// How many times the board was written (the first showing included).
    pub fn writes(&self) -> usize {
        self.writes
    }

    fn publish(&mut self) {
        self.writes += 1;
        let call = self.shown.clone();
        with_line(&self.board, &self.line, |m| m.call = Some(call));
    }
}

impl Drop for CallWatch {
    fn drop(&mut self) {
        with_line(&self.board, &self.line, |m| m.call = None);
    }
}

/// Changes line `name` on the board (a poisoned lock still holds the last good data).
pub fn with_line(board: &ModemBoard, name: &str, f: impl FnOnce(&mut ModemStatus)) {
    let mut b = match board.lock() {
        Ok(b) => b,
        Err(p) => p.into_inner(),
    };
    if let Some(m) = b.iter_mut().find(|m| m.name == name) {
        f(m);
    }
}

/// Reads the queue part of a snapshot from the spool (blocking).
pub fn spool_figures(
    spool: &Spool,
) -> (
    BTreeMap<String, status::KindCounts>,
    Vec<status::RecentJob>,
    usize,
) {
    let mut damaged = 0;
    let queue = match spool.list(Area::Queue) {
        Ok(l) => {
            damaged += l.damaged.len();
            status::queue_counts(&l.jobs)
        }
        Err(e) => {
            warn!("status: cannot list the queue: {e}");
            BTreeMap::new()
        }
    };
    let mut archived = Vec::new();
    for area in [Area::Done, Area::Failed] {
        if let Ok(l) = spool.list(area) {
            damaged += l.damaged.len();
            archived.extend(l.jobs);
        }
    }
    (
        queue,
        status::recent(archived, status::RECENT_JOBS),
        damaged,
    )
}

/// The last call of each line from the spool's records (blocking): what `faxgate status`
/// shows before the daemon has made a call of its own, or while it is stopped.
pub fn remembered_calls(spool: &Spool) -> BTreeMap<String, status::LastCall> {
    // One record in memory at a time: the daemon asks this at start-up, whatever the backlog.
    let mut calls = BTreeMap::new();
    for area in [Area::Queue, Area::Done, Area::Failed] {
        let _ = spool.scan(area, &mut |r| status::note_calls(&mut calls, &r));
    }
    calls
}

/// Serves the control socket until shutdown. A stale socket file (left by a daemon that was
/// killed) is replaced: the spool's owner lock already guarantees we are the only daemon.
pub async fn serve(
    path: PathBuf,
    board: ModemBoard,
    live: Live,
    events: Events,
    since: Timestamp,
    mut shutdown: Shutdown,
) -> std::io::Result<()> {
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    loop {
        tokio::select! {
            _ = shutdown.stopped() => break,
            acc = listener.accept() => {
                let (mut stream, _) = match acc {
                    Ok(s) => s,
                    Err(e) => {
                        warn!("control socket: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (board, live, events) = (board.clone(), live.clone(), events.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let read = tokio::time::timeout(REQUEST_TIMEOUT, async {
                        let mut chunk = [0u8; 64];
                        while !buf.contains(&b'\n') && buf.len() < MAX_REQUEST {
                            let n = stream.read(&mut chunk).await?;
                            if n == 0 {
                                break;
                            }
                            buf.extend_from_slice(&chunk[..n]);
                        }
                        Ok::<_, std::io::Error>(())
                    })
                    .await;
                    if !matches!(read, Ok(Ok(()))) {
                        debug!("control socket: request not read");
                        return;
                    }
                    let answer = match request_of(&buf) {
                        Request::Status => {
                            let modems = modems_now(&board);
                            let (queue, recent, damaged) = {
                                let f = match live.lock() {
                                    Ok(f) => f,
                                    Err(p) => p.into_inner(),
                                };
                                (f.counts(), f.recent(), f.damaged)
                            };
                            serde_json::to_vec(&Snapshot {
                                live: true,
                                pid: Some(std::process::id()),
                                since: Some(since),
                                modems,
                                queue,
                                recent,
                                damaged,
                            })
                            .unwrap_or_default()
                        }
                        Request::Changed(id) => {
                            let _ = events.send(Event::Reread(id));
                            br#"{"ok":true}"#.to_vec()
                        }
                        Request::Unknown => br#"{"error":"unknown request; they are: status, changed <job id>"}"#.to_vec(),
                    };
                    let _ = stream.write_all(&answer).await;
                    let _ = stream.shutdown().await;
                });
            }
        }
    }
    let _ = std::fs::remove_file(&path);
    Ok(())
}

/// Tells a running daemon that this process changed job `id` (best effort: a daemon that does
/// not answer is stopped, and reads the spool when it starts).
pub fn tell_changed(path: &Path, id: &JobId) {
    let Ok(mut s) = StdUnixStream::connect(path) else {
        return;
    };
    let _ = s.set_read_timeout(Some(REQUEST_TIMEOUT));
    let _ = s.set_write_timeout(Some(REQUEST_TIMEOUT));
    let _ = s.write_all(format!("changed {id}\n").as_bytes());
    let mut sink = Vec::new();
    let _ = s.take(1024).read_to_end(&mut sink);
}

/// Asks a running daemon for its snapshot (blocking).
pub fn query(path: &Path) -> std::io::Result<Snapshot> {
    let mut s = StdUnixStream::connect(path)?;
    s.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    s.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    s.write_all(b"status\n")?;
    let buf = crate::read_limit::read_from(s, path, MAX_ANSWER)?;
    serde_json::from_slice(&buf)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::status::ModemState;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_request_bytes_get_a_verdict(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let r = request_of(&bytes);
            let first = bytes[..bytes.len().min(MAX_REQUEST)].split(|b| *b == b'\n').next().unwrap_or_default();
            prop_assert_eq!(r == Request::Status, first.trim_ascii() == b"status");
            if let Request::Changed(id) = r {
                prop_assert!(first.trim_ascii().ends_with(id.as_str().as_bytes()));
            }
        }
    }

    #[test]
    fn a_call_shows_on_the_board_at_each_phase_and_page_and_leaves_it_after() {
        use crate::app::status::{CallPhase, CallProgress};
        use crate::fax::t30::pages::{PagesSink, PagesSource};
        let board: ModemBoard = Arc::new(Mutex::new(super::super::pool_lines(&Config::default())));
        let shown = |b: &ModemBoard| modems_now(b)[0].call.clone();
        let page = || {
            let mut p = crate::image::Page::new(1728, 200, crate::image::Resolution::FINE).unwrap();
            p.row_mut(50).fill(0xF0);
            p
        };
        let mut watch = CallWatch::start(
            &board,
            "loopback",
            CallProgress::dialling("J1", "+12125550123"),
        );
        assert_eq!(shown(&board).unwrap().phase, CallPhase::Dialling);
        let (mut events, mut board_seen) = (0usize, Vec::<CallProgress>::new());
        let call = crate::app::loopback::call_with(
            PagesSource::new(vec![vec![page(), page()]]),
            "+1 212 555 0100",
            "+1 212 555 0123",
            PagesSink::new(),
            &mut |_, e| {
                events += 1;
                watch.observe(&e.progress());
                let now = shown(&board).unwrap();
                if board_seen.last() != Some(&now) {
                    board_seen.push(now);
                }
                true
            },
        );
        assert_eq!(call.cause(), crate::fax::t30::Cause::Ok);
        let texts: Vec<String> = board_seen.iter().map(|c| c.describe()).collect();
        for want in [
            "sending page, page 1 of 2, 14400 bit/s, to +12125550123 (remote +1 212 555 0123), job J1",
            "sending page, page 2 of 2, 14400 bit/s",
            "confirming page, page 2 of 2",
            "hanging up, page 2 of 2",
        ] {
            assert!(
                texts.iter().any(|t| t.starts_with(want)),
                "{want}: {texts:#?}"
            );
        }
        assert!(
            texts.iter().any(|t| t.starts_with("training")),
            "{texts:#?}"
        );
        // Written at changes only: each board write is a distinct view (the first is the
        // dialling one), and the same view observed again writes nothing.
        assert_eq!(watch.writes(), board_seen.len() + 1, "{texts:#?}");
        assert!(watch.writes() <= events + 1);
        assert_eq!(watch.shown().phase, CallPhase::HangingUp);
        let (writes, last) = (watch.writes(), call.sender.clone());
        let done = crate::fax::t30::Progress {
            activity: crate::fax::t30::Activity::Finished,
            page: Some(2),
            pages_total: Some(2),
            modulation: last.modulation,
            remote_id: last.remote_id,
        };
        for _ in 0..100 {
            watch.observe(&done);
        }
        assert_eq!(watch.writes(), writes);
        drop(watch);
        assert_eq!(
            shown(&board),
            None,
            "the call leaves the board with its watch"
        );
    }

    #[test]
    fn request_lines() {
        assert_eq!(request_of(b"status\n"), Request::Status);
        assert_eq!(request_of(b"  status \r\nmore"), Request::Status);
        assert_eq!(request_of(b"status"), Request::Status);
        assert_eq!(request_of(b"STATUS\n"), Request::Unknown);
        assert_eq!(request_of(b"stop\n"), Request::Unknown);
        assert_eq!(request_of(b""), Request::Unknown);
        assert_eq!(
            request_of(b"changed 6b0b5a000000000000aa.2\n"),
            Request::Changed("6b0b5a000000000000aa.2".parse().unwrap())
        );
        assert_eq!(request_of(b"changed ../etc\n"), Request::Unknown);
    }

    fn ask(path: &Path, request: &[u8]) -> String {
        let mut s = StdUnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(REQUEST_TIMEOUT * 2)).unwrap();
        // The server may close as soon as it has read its limit: a failed write is fine.
        let _ = s.write_all(request);
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_status_refuses_anything_else_and_survives_floods() {
        let dir = tempfile::tempdir().unwrap();
        let board: ModemBoard = Arc::new(Mutex::new(super::super::pool_lines(&Config::default())));
        let path = dir.path().join(SOCKET_NAME);
        let (tx, sd) = Shutdown::new();
        let (events, mut heard) = tokio::sync::mpsc::unbounded_channel();
        let server = tokio::spawn(serve(
            path.clone(),
            board,
            Live::default(),
            events,
            Timestamp(0),
            sd,
        ));
        for _ in 0..100 {
            if path.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let p = path.clone();
        let (snap, bad, flood, binary, changed) = tokio::task::spawn_blocking(move || {
            (
                query(&p).unwrap(),
                ask(&p, b"shutdown\n"),
                ask(&p, &vec![b'x'; 100_000]),
                ask(&p, &[0xff, 0x00, 0xfe, b'\n']),
                ask(&p, b"changed 6b0b5a000000000000aa\n"),
            )
        })
        .await
        .unwrap();
        assert!(snap.live);
        assert_eq!(snap.modems[0].name, "loopback");
        assert_eq!(snap.modems[0].state, ModemState::Idle);
        assert!(bad.contains("unknown request"), "{bad}");
        assert!(flood.contains("unknown request"), "{flood}");
        assert!(binary.contains("unknown request"), "{binary}");
        assert!(changed.contains("ok"), "{changed}");
        assert!(
            matches!(heard.recv().await, Some(Event::Reread(id)) if id.as_str() == "6b0b5a000000000000aa")
        );
        tx.send(true).unwrap();
        server.await.unwrap().unwrap();
        assert!(!path.exists(), "socket removed at shutdown");
    }
}
