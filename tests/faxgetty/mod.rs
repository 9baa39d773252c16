//! HylaFAX's `faxgetty` (Debian `hylafax-server`) as a test peer: one faxgetty on one modem
//! device, with a private spool in the test's temporary directory, so no system daemon, no
//! system spool and no file outside that directory is used. faxgetty comes unpacked from the
//! Debian packages ([`PEER_ROOT`], see `tests/run.sh`), or installed where mgetty-fax is not.
//!
//! What faxgetty needs of a spool, found by running it (strace) against the emulated modem:
//! `etc/config.<devid>` (the device's configuration; devid is the device's name under /dev),
//! `status/` (it writes `status/<devid>`: "Running and idle" once the modem is set up),
//! `log/` (session logs), `recvq/` (received faxes, `recvq/fax*.tif`), `tmp/`, `info/`, and
//! a lock directory (`UUCPLockDir`). It makes its own `FIFO.<devid>`. It switches to the `uucp`
//! user for its files, so the spool belongs to uucp. Without faxq (no `FIFO` in the spool) it
//! works alone; its server log goes to syslog, which a test box may not have — the session logs
//! in `log/` carry the AT traffic of each call.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `tests/run.sh` unpacks Debian's hylafax-server and hylafax-client (`dpkg-deb -x`):
/// hylafax-server conflicts with mgetty-fax (both ship a `sendfax`), which the sendfax test
/// needs installed, so HylaFAX is unpacked instead — no maintainer scripts, no services.
pub const PEER_ROOT: &str = "/opt/faxgate-peers/hylafax";

/// faxgetty and the library directory it needs (the unpacked copy), or an installed one;
/// fails naming the package otherwise.
pub fn faxgetty_bin() -> (PathBuf, Option<PathBuf>) {
    let root = Path::new(PEER_ROOT);
    let unpacked = root.join("usr/sbin/faxgetty");
    if unpacked.is_file() {
        return (unpacked, Some(root.join("usr/lib/hylafax")));
    }
    if let Some(p) = super::common::which("faxgetty").or_else(|| {
        let p = Path::new("/usr/sbin/faxgetty");
        p.is_file().then(|| p.to_path_buf())
    }) {
        return (p, None);
    }
    panic!(
        "this test needs `faxgetty` from the Debian package `hylafax-server` (with \
         `hylafax-client`), unpacked at {PEER_ROOT} since it conflicts with mgetty-fax: \
         run tests/run.sh, or `apt-get download hylafax-server hylafax-client` and \
         `dpkg-deb -x` each into {PEER_ROOT}"
    );
}

/// The device configuration: a Class 2.0 modem as HylaFAX drives real ones (hylafax-config(5F)),
/// with the stock Class 2.0 commands of HylaFAX's `config/class2.0` left at their defaults.
pub fn device_config(spool: &Path, local_id: &str) -> String {
    format!(
        "# faxgetty on faxgate's emulated Class 2.0 modem (a test's private spool).\n\
         ModemType:\t\tClass2.0\n\
         Class2Cmd:\t\tAT+FCLASS=2.0\n\
         # T.32 §8.3.4: <DC2> tells the DCE the host is ready for page data.\n\
         Class2RecvDataTrigger:\t\"\\022\"\n\
         # T.32 §8.3.3: wait for the DCE's <DC1> before page data.\n\
         Class2XmitWaitForXON:\tyes\n\
         ModemRate:\t\t19200\n\
         ModemFlowControl:\txonxoff\n\
         RingsBeforeAnswer:\t1\n\
         SpeakerVolume:\t\toff\n\
         CountryCode:\t\t1\n\
         AreaCode:\t\t555\n\
         LongDistancePrefix:\t1\n\
         InternationalPrefix:\t011\n\
         FAXNumber:\t\t{local_id}\n\
         LocalIdentifier:\t\"{local_id}\"\n\
         RecvDataFormat:\t\tadaptive\n\
         RecvFileMode:\t\t0644\n\
         LogFileMode:\t\t0644\n\
         DeviceMode:\t\t0660\n\
         UUCPLockDir:\t\t{lock}\n\
         FaxRcvdCmd:\t\t/bin/true\n\
         # Server operation, protocol, modem operations and traffic, capabilities, HDLC frames.\n\
         ServerTracing:\t\t0x6F\n\
         SessionTracing:\t\t0x6F\n",
        lock = spool.join("lock").display()
    )
}

/// A faxgetty running on `/dev/<devid>` with its own spool; killed and waited for on drop.
pub struct Faxgetty {
    child: Child,
    spool: PathBuf,
    devid: String,
    out: PathBuf,
}

impl Faxgetty {
    /// Make the spool under `dir` and start faxgetty on `/dev/<devid>` (fails naming the
    /// package when faxgetty is missing).
    pub fn start(dir: &Path, devid: &str, local_id: &str) -> Faxgetty {
        let (bin, libs) = faxgetty_bin();
        let spool = dir.join("hylafax");
        for d in ["etc", "status", "log", "recvq", "tmp", "info", "lock"] {
            std::fs::create_dir_all(spool.join(d)).unwrap();
        }
        std::fs::write(spool.join("etc/config"), "# no server-wide settings\n").unwrap();
        std::fs::write(
            spool.join(format!("etc/config.{devid}")),
            device_config(&spool, local_id),
        )
        .unwrap();
        // faxgetty works as uucp (HylaFAX's fax user on Debian): the spool is uucp's, and the
        // directories above it must let uucp through to the lock directory.
        let mut p = spool.clone();
        while p.starts_with(dir) {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode | 0o755)).unwrap();
            if !p.pop() {
                break;
            }
        }
        let st = Command::new("chown")
            .args(["-R", "uucp:uucp"])
            .arg(&spool)
            .status()
            .unwrap();
        assert!(st.success(), "chown the spool to uucp");
        let out = dir.join("faxgetty.out");
        let log = std::fs::File::create(&out).unwrap();
        let mut cmd = Command::new(bin);
        if let Some(libs) = libs {
            cmd.env("LD_LIBRARY_PATH", libs);
        }
        let child = cmd
            .arg("-q")
            .arg(&spool)
            .arg(Path::new("/dev").join(devid))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        Faxgetty {
            child,
            spool,
            devid: devid.to_string(),
            out,
        }
    }

    /// The spool directory.
    pub fn spool(&self) -> &Path {
        &self.spool
    }

    /// The device's status line (`status/<devid>`), empty before faxgetty wrote it.
    pub fn status(&self) -> String {
        std::fs::read_to_string(self.spool.join("status").join(&self.devid))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// Wait (up to `limit`) until the status reads `want`; false if it never did or faxgetty
    /// exited.
    pub fn wait_status(&mut self, want: &str, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if self.status() == want {
                return true;
            }
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    }

    /// Whether faxgetty is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Received faxes (`recvq/fax*.tif`), sorted.
    pub fn received(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.spool.join("recvq"))
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with("fax") && n.ends_with(".tif"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// faxgetty's output, status and session logs, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = format!(
            "faxgetty status: {}\nfaxgetty output: {}\n",
            self.status(),
            std::fs::read_to_string(&self.out).unwrap_or_default()
        );
        let mut logs: Vec<PathBuf> = std::fs::read_dir(self.spool.join("log"))
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        logs.sort();
        for l in logs {
            s.push_str(&format!(
                "--- {}\n{}\n",
                l.display(),
                std::fs::read_to_string(&l).unwrap_or_default()
            ));
        }
        s
    }
}

impl Drop for Faxgetty {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            // SIGTERM first: faxgetty resets the modem and removes its lock and FIFO.
            if let Ok(pid) = i32::try_from(self.child.id()) {
                // SAFETY: kill(2) on our own child's pid; no memory is involved.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
            let end = Instant::now() + Duration::from_secs(10);
            while Instant::now() < end && self.child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
