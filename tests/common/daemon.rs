//! `faxgate run` as a child process for end-to-end tests: the embedded default with only
//! `FAXGATE_DATA` and the SMTP port set, its log kept per run, signals, `faxgate status`, the
//! README's Python send command, and the Maildir it delivers into.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The README's send command (Python variant), with the port as the first argument and the
/// PDF as the second.
pub const SEND_PY: &str = "import smtplib, sys, email.message as e
m = e.EmailMessage()
m['From'] = 'you@example.org'; m['To'] = 'FAX=+12125550123@localhost'; m['Subject'] = 'test fax'
m.add_attachment(open(sys.argv[2], 'rb').read(), 'application', 'pdf', filename='doc.pdf')
smtplib.SMTP('127.0.0.1', int(sys.argv[1])).send_message(m, rcpt_options=['NOTIFY=SUCCESS'])
";

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One data directory and the daemon running on it (restartable).
pub struct Daemon {
    dir: PathBuf,
    /// The SMTP port.
    pub port: u16,
    /// The console's port.
    pub http_port: u16,
    child: Option<Child>,
    runs: u32,
}

impl Daemon {
    pub fn new(dir: &Path) -> Daemon {
        Daemon {
            dir: dir.to_path_buf(),
            port: free_port(),
            http_port: free_port(),
            child: None,
            runs: 0,
        }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.join("faxgate-data")
    }

    pub fn cmd(&self) -> Command {
        let mut c = super::faxgate(&self.dir);
        c.env("FAXGATE_DATA", self.data());
        c
    }

    /// `faxgate run` with the embedded default; `env` adds settings.
    pub fn start(&mut self, env: &[(&str, &str)]) {
        self.runs += 1;
        let log = std::fs::File::create(self.dir.join(format!("run{}.log", self.runs))).unwrap();
        let mut c = self.cmd();
        c.env("FAXGATE_SMTP__LISTEN", format!("127.0.0.1:{}", self.port))
            .env(
                "FAXGATE_HTTP__LISTEN",
                format!("127.0.0.1:{}", self.http_port),
            )
            .env("FAXGATE_LOG__FILTER", "info")
            .arg("run")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in env {
            c.env(k, v);
        }
        self.child = Some(c.spawn().unwrap());
        for _ in 0..300 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && std::net::TcpStream::connect(("127.0.0.1", self.http_port)).is_ok()
                && self.data().join("control.sock").exists()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let system = faxgate::config::SYSTEM_CONFIG;
        let hint = if Path::new(system).is_file() {
            format!(
                "\n({system} exists: a daemon without -c reads it over the embedded default; \
                 run the tests on a machine without an installed faxgate)"
            )
        } else {
            String::new()
        };
        panic!("faxgate run did not come up:\n{}{hint}", self.log());
    }

    pub fn log(&self) -> String {
        (1..=self.runs)
            .map(|i| {
                std::fs::read_to_string(self.dir.join(format!("run{i}.log"))).unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n----\n")
    }

    /// Sends `sig` to the running daemon without waiting for anything (SIGHUP).
    pub fn notify(&self, sig: i32) {
        let child = self.child.as_ref().expect("running");
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, sig) };
    }

    pub fn signal(&mut self, sig: i32) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, sig) };
        for _ in 0..400 {
            if let Some(st) = child.try_wait().unwrap() {
                return st;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        panic!("faxgate did not stop on signal {sig}:\n{}", self.log());
    }

    pub fn status(&self, json: bool) -> String {
        let mut c = self.cmd();
        c.arg("status");
        if json {
            c.arg("--json");
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn send_pdf(&self, pdf: &Path) {
        let py = super::require_tool("python3", "python3");
        let out = Command::new(py)
            .args(["-c", SEND_PY, &self.port.to_string()])
            .arg(pdf)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "send failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The messages in the Maildir's `new/`.
    pub fn mails(&self) -> Vec<Vec<u8>> {
        let dir = self.data().join("maildir").join("new");
        let mut v: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v.iter().map(|p| std::fs::read(p).unwrap()).collect()
    }

    /// Waits (bounded) until `pred` holds for the Maildir.
    pub fn wait_mail(&self, what: &str, pred: impl Fn(&[Vec<u8>]) -> bool) -> Vec<Vec<u8>> {
        for _ in 0..600 {
            let m = self.mails();
            if pred(&m) {
                return m;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("never got {what}:\n{}", self.log());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
