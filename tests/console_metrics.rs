//! `GET /metrics` on the running daemon (issue 16 acceptance): the exposition parses with the
//! Prometheus text parser (Python's `prometheus_client.parser`; the OpenMetrics one when asked
//! for OpenMetrics), and one fax sent by SMTP on the embedded default — the loopback line sends
//! it and receives it back, the received fax is mailed into the Maildir — moves the counters by
//! exactly that fax: one session each way, its pages sent and received, one message accepted,
//! one recipient refused, its mail delivered, one observation in each latency histogram, and
//! the queue back to empty.
//!
//! Debian packages: python3, python3-prometheus-client.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::daemon::Daemon;

/// Debian's python3, which has python3-prometheus-client (the pyenv `python3` on PATH may not).
const PYTHON: &str = "/usr/bin/python3";

/// Scrapes a URL (optionally with an `Accept` header) and parses it with the classic parser,
/// or the OpenMetrics one when the answer says it is OpenMetrics; prints the families' types
/// and every sample as JSON.
const SCRAPE_PY: &str = r#"
import json, sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families as classic
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om
headers = {'Accept': sys.argv[2]} if len(sys.argv) > 2 else {}
with urllib.request.urlopen(urllib.request.Request(sys.argv[1], headers=headers)) as r:
    ctype = r.headers['Content-Type']
    text = r.read().decode('utf-8')
parse = om if ctype.startswith('application/openmetrics-text') else classic
types, samples = {}, {}
for f in parse(text):
    types[f.name] = f.type
    for s in f.samples:
        labels = ','.join('%s=%s' % kv for kv in sorted(s.labels.items()))
        samples['%s{%s}' % (s.name, labels)] = s.value
print(json.dumps({'content_type': ctype, 'types': types, 'samples': samples}))
"#;

/// Sends one text message to the loopback number and, in the same transaction, one recipient
/// the gateway refuses (another domain: relaying); prints the refused recipients.
const SEND_PY: &str = r#"
import smtplib, sys, email.message as e
m = e.EmailMessage()
m['From'] = 'you@example.org'; m['To'] = 'FAX=+12125550123@localhost'; m['Subject'] = 'metrics'
m.set_content('One page for the metrics test.\n')
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]))
refused = s.send_message(m, to_addrs=['FAX=+12125550123@localhost', 'someone@elsewhere.example'])
s.quit()
print(sorted(refused))
"#;

fn require_prometheus_client() {
    common::require_tool(PYTHON, "python3");
    let ok = Command::new(PYTHON)
        .args(["-c", "import prometheus_client.parser"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "this test needs prometheus_client for /usr/bin/python3 from the Debian package \
         `python3-prometheus-client`: run `apt-get install -y python3-prometheus-client`"
    );
}

/// One parsed scrape.
struct Scraped {
    content_type: String,
    types: BTreeMap<String, String>,
    samples: BTreeMap<String, f64>,
}

impl Scraped {
    /// The value of `key` (`name{a=x,b=y}`, labels sorted); 0 for a series not exposed.
    fn get(&self, key: &str) -> f64 {
        self.samples.get(key).copied().unwrap_or(0.0)
    }

    /// The total of every sample whose key starts with `prefix`.
    fn sum(&self, prefix: &str) -> f64 {
        self.samples
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v)
            .sum()
    }
}

fn scrape(d: &Daemon, accept: Option<&str>) -> Scraped {
    let url = format!("http://127.0.0.1:{}/metrics", d.http_port);
    let mut c = Command::new(PYTHON);
    c.args(["-c", SCRAPE_PY, &url]);
    if let Some(a) = accept {
        c.arg(a);
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "scrape or parse failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let map = |k: &str| v[k].as_object().cloned().unwrap_or_default();
    Scraped {
        content_type: v["content_type"].as_str().unwrap_or_default().to_owned(),
        types: map("types")
            .into_iter()
            .map(|(k, t)| (k, t.as_str().unwrap_or_default().to_owned()))
            .collect(),
        samples: map("samples")
            .into_iter()
            .map(|(k, x)| (k, x.as_f64().unwrap()))
            .collect(),
    }
}

/// Opens an SMTP connection, waits for its greeting and says QUIT: once the greeting came,
/// every connection made before it (the start-up probe's) has been accepted and counted.
fn smtp_settle(port: u16) {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("220 "), "{line:?}");
    (&s).write_all(b"QUIT\r\n").unwrap();
    line.clear();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("221 "), "{line:?}");
}

/// The `job.json` records of an area of the spool.
fn records(spool: &Path, area: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for bucket in std::fs::read_dir(spool.join(area))
        .into_iter()
        .flatten()
        .flatten()
    {
        for job in std::fs::read_dir(bucket.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(b) = std::fs::read(job.path().join("job.json")) {
                out.push(serde_json::from_slice(&b).unwrap());
            }
        }
    }
    out
}

/// Every `faxgate_queue_depth_jobs` series is 0.
fn queue_empty(s: &Scraped) -> bool {
    let depth: Vec<_> = s
        .samples
        .iter()
        .filter(|(k, _)| k.starts_with("faxgate_queue_depth_jobs{"))
        .collect();
    !depth.is_empty() && depth.iter().all(|(_, v)| **v == 0.0)
}

#[test]
fn metrics_parse_and_move_by_exactly_one_fax() {
    require_prometheus_client();
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(tmp.path());
    d.start(&[]);
    smtp_settle(d.port);

    // The classic text format by default, typed as the classic parser sees it.
    let before = scrape(&d, None);
    assert!(
        before.content_type.starts_with("text/plain; version=0.0.4"),
        "{}",
        before.content_type
    );
    for (family, typ) in [
        ("faxgate_fax_sessions_started", "counter"),
        ("faxgate_fax_sessions_completed", "counter"),
        ("faxgate_fax_sessions_failed", "counter"),
        ("faxgate_fax_pages_sent", "counter"),
        ("faxgate_fax_pages_received", "counter"),
        ("faxgate_smtp_connections_accepted", "counter"),
        ("faxgate_smtp_messages_accepted", "counter"),
        ("faxgate_smtp_messages_rejected", "counter"),
        ("faxgate_mail_deliveries", "counter"),
        ("faxgate_mail_delivery_failures", "counter"),
        ("faxgate_fax_hangup_to_mail_seconds", "histogram"),
        ("faxgate_fax_accepted_to_dial_seconds", "histogram"),
        ("faxgate_queue_depth_jobs", "gauge"),
        ("faxgate_line_state", "gauge"),
        ("faxgate_build_info", "gauge"),
    ] {
        assert_eq!(
            before.types.get(family).map(String::as_str),
            Some(typ),
            "{family}: {:?}",
            before.types
        );
    }
    let version = format!(
        "faxgate_build_info{{version={}}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(before.get(&version), 1.0, "{:?}", before.samples.keys());
    assert_eq!(
        before.get("faxgate_line_state{line=loopback,state=idle}"),
        1.0
    );
    assert_eq!(
        before.sum("faxgate_line_state{line=loopback,"),
        1.0,
        "one state at a time"
    );
    assert!(queue_empty(&before), "{:?}", before.samples);

    // OpenMetrics for a scraper that asks for it (as Prometheus does), and it parses with the
    // OpenMetrics parser (which insists on `# EOF`).
    let om = scrape(
        &d,
        Some("application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4"),
    );
    assert!(
        om.content_type
            .starts_with("application/openmetrics-text; version=1.0.0"),
        "{}",
        om.content_type
    );
    assert_eq!(
        om.types
            .get("faxgate_fax_sessions_started")
            .map(String::as_str),
        Some("counter")
    );
    assert_eq!(
        om.types.get("faxgate_build").map(String::as_str),
        Some("info")
    );

    // One fax, and one recipient refused in the same transaction.
    let out = Command::new(PYTHON)
        .args(["-c", SEND_PY, &d.port.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "send failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "['someone@elsewhere.example']"
    );

    // Done: the received fax's mail is in the Maildir and the queue is empty again (both
    // happen after every count of this fax was made).
    d.wait_mail("the received fax's mail", |m| !m.is_empty());
    let mut after = scrape(&d, None);
    for _ in 0..300 {
        if queue_empty(&after) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        after = scrape(&d, None);
    }
    assert!(
        queue_empty(&after),
        "the queue never emptied: {:?}\n{}",
        after.samples,
        d.log()
    );
    let mails = d.mails().len() as f64;

    let spool = d.data().join("spool");
    let faxes: Vec<_> = records(&spool, "done")
        .into_iter()
        .filter(|r| r["kind"] == "fax-out")
        .collect();
    assert_eq!(faxes.len(), 1, "one fax job done");
    let pages = serde_json::to_string(&faxes[0]).unwrap();
    let pages: f64 = pages
        .split("\"pages_sent\":")
        .nth(1)
        .and_then(|t| t.split([',', '}']).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no pages_sent in {pages}"));
    assert!(pages >= 1.0);

    let delta = |key: &str| after.get(key) - before.get(key);
    let sum_delta = |prefix: &str| after.sum(prefix) - before.sum(prefix);
    let expect = [
        ("faxgate_smtp_connections_accepted_total{}", 1.0),
        ("faxgate_smtp_messages_accepted_total{}", 1.0),
        ("faxgate_smtp_messages_rejected_total{reason=policy}", 1.0),
        ("faxgate_fax_sessions_started_total{direction=out}", 1.0),
        ("faxgate_fax_sessions_started_total{direction=in}", 1.0),
        ("faxgate_fax_sessions_completed_total{direction=out}", 1.0),
        ("faxgate_fax_sessions_completed_total{direction=in}", 1.0),
        ("faxgate_fax_pages_sent_total{}", pages),
        ("faxgate_fax_pages_received_total{}", pages),
        ("faxgate_mail_deliveries_total{}", mails),
        ("faxgate_fax_hangup_to_mail_seconds_count{}", 1.0),
        ("faxgate_fax_accepted_to_dial_seconds_count{}", 1.0),
        ("faxgate_fax_hangup_to_mail_seconds_bucket{le=+Inf}", 1.0),
        ("faxgate_fax_accepted_to_dial_seconds_bucket{le=+Inf}", 1.0),
    ];
    for (key, want) in expect {
        assert_eq!(delta(key), want, "{key}: {:?}", after.samples);
    }
    for (prefix, want) in [
        ("faxgate_smtp_messages_rejected_total{", 1.0),
        ("faxgate_fax_sessions_failed_total{", 0.0),
        ("faxgate_mail_delivery_failures_total{", 0.0),
    ] {
        assert_eq!(sum_delta(prefix), want, "{prefix}: {:?}", after.samples);
    }
    assert!(after.get("faxgate_fax_hangup_to_mail_seconds_sum{}") >= 0.0);
    // The loopback line carried this fax both ways, and neither failed.
    assert_eq!(after.get("faxgate_line_recent_calls{line=loopback}"), 2.0);
    assert_eq!(after.get("faxgate_line_failure_ratio{line=loopback}"), 0.0);
    assert_eq!(
        after.get("faxgate_line_state{line=loopback,state=idle}"),
        1.0
    );

    let st = d.signal(libc::SIGTERM);
    assert!(st.success(), "{}", d.log());
}

#[test]
fn metrics_need_a_login_when_users_exist() {
    // With a users file the gate answers /metrics 401 (JSON) without a token or session.
    let tmp = tempfile::tempdir().unwrap();
    let users = tmp.path().join("console-users");
    let hash = common::faxgate(tmp.path())
        .args(["hash-password", "admin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(b"secret\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(hash.status.success());
    let line = String::from_utf8(hash.stdout).unwrap();
    std::fs::write(&users, format!("{}:admin\n", line.trim())).unwrap();
    let mut d = Daemon::new(tmp.path());
    d.start(&[("FAXGATE_HTTP__USERS_FILE", users.to_str().unwrap())]);
    let mut s = TcpStream::connect(("127.0.0.1", d.http_port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut status = String::new();
    BufReader::new(&s).read_line(&mut status).unwrap();
    assert!(
        status.starts_with("HTTP/1.1 401"),
        "{status:?}\n{}",
        d.log()
    );
}
