//! The console's job and fax pages against `faxgate run` on the embedded default (loopback
//! line, Maildir), over real HTTP on 127.0.0.1:
//!
//! - open mode (no users file): a fax sent by SMTP shows as done with its attempt and T.30
//!   cause, its page thumbnail is a PNG that decodes (and revalidates with `304`), the fax the
//!   loopback line brought back is listed under /received with its page image, retry and
//!   re-delivery forms are refused without the CSRF token and work with it (the mail goes out
//!   a second time);
//! - with a users file: an admin cancels and retries jobs through the forms (403 without the
//!   token, audit lines naming the user), a viewer sees no buttons and gets 403 posting one.
//!
//! Debian packages: python3 (smtplib sends the mail).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::daemon::Daemon;

/// An HTTP answer.
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request on its own connection (`Connection: close`).
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&b[..eol])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&b[start..start + size]);
        b = &b[start + size + 2..];
    }
    out
}

fn get(port: u16, path: &str, cookie: Option<&str>) -> Resp {
    match cookie {
        Some(c) => http(port, "GET", path, &[("Cookie", c)], b""),
        None => http(port, "GET", path, &[], b""),
    }
}

fn post(port: u16, path: &str, cookie: Option<&str>) -> Resp {
    let mut h = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if let Some(c) = cookie {
        h.push(("Cookie", c));
    }
    http(port, "POST", path, &h, b"")
}

/// The CSRF token a page carries in `<meta name="csrf">`.
fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" content=\"")
        .expect("a csrf meta tag");
    let rest = &page[at + "name=\"csrf\" content=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// Sends a text mail to the given fax numbers through the daemon's SMTP port.
fn send_text(port: u16, numbers: &[&str]) {
    let py = common::require_tool("python3", "python3");
    let to: Vec<String> = numbers
        .iter()
        .map(|n| format!("FAX={n}@localhost"))
        .collect();
    let script = "import smtplib, sys, email.message as e
m = e.EmailMessage()
m['From'] = 'you@example.org'; m['To'] = ', '.join(sys.argv[2:]); m['Subject'] = 'console test'
m.set_content('Purchase order 4711\\n\\n12 boxes of fax paper.\\n')
smtplib.SMTP('127.0.0.1', int(sys.argv[1])).send_message(m)
";
    let out = Command::new(py)
        .args(["-c", script, &port.to_string()])
        .args(&to)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "send failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Ids of the jobs of `kind` in the spool's `area`, sorted.
fn jobs_in(data: &Path, area: &str, kind: &str) -> Vec<String> {
    let mut out = Vec::new();
    let base = data.join("spool").join(area);
    for b in std::fs::read_dir(&base).into_iter().flatten().flatten() {
        for j in std::fs::read_dir(b.path()).into_iter().flatten().flatten() {
            let Ok(bytes) = std::fs::read(j.path().join("job.json")) else {
                continue;
            };
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                continue;
            };
            if v["kind"] == kind {
                out.push(j.file_name().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

/// Waits (bounded) until `f` gives something.
fn wait_for<T>(what: &str, d: &Daemon, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..1200 {
        if let Some(v) = f() {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("never saw {what}:\n{}", d.log());
}

fn fax_mails(d: &Daemon) -> usize {
    d.mails()
        .iter()
        .filter(|m| String::from_utf8_lossy(m).contains("Subject: Fax from"))
        .count()
}

fn decode_png(r: &Resp) -> image::GrayImage {
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("image/png"));
    image::load_from_memory(&r.body)
        .expect("the page image decodes")
        .to_luma8()
}

#[test]
fn console_shows_the_sent_fax_its_attempt_pages_and_the_received_fax() {
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(tmp.path());
    d.start(&[]);
    let port = d.http_port;
    send_text(d.port, &["+12125550123"]);
    wait_for("the fax mail", &d, || (fax_mails(&d) == 1).then_some(()));
    let data = d.data();
    let fax_out = wait_for("the done fax job", &d, || {
        jobs_in(&data, "done", "fax-out").pop()
    });
    let fax_in = wait_for("the done received fax", &d, || {
        jobs_in(&data, "done", "fax-in").pop()
    });
    let message = fax_out.split('.').next().unwrap().to_owned();

    // The queue page answers (the fax is done: it may be empty).
    let q = get(port, "/queue", None);
    assert_eq!(q.status, 200, "{}", q.text());
    assert!(q.text().contains("<h1>Queue</h1>"), "{}", q.text());

    // The job: its attempt with the T.30 cause in number and words, and its thumbnails.
    let j = get(port, &format!("/jobs/{fax_out}"), None);
    assert_eq!(j.status, 200, "{}", j.text());
    let page = j.text();
    assert!(page.contains("done"), "{page}");
    assert!(
        page.contains("0: all pages transferred and confirmed"),
        "the attempt's T.30 cause: {page}"
    );
    assert!(page.contains("+12125550123"), "{page}");
    assert!(page.contains("you@example.org"), "the sender: {page}");
    let thumb_path = format!("/jobs/{fax_out}/pages/1.png");
    assert!(page.contains(&thumb_path), "{page}");
    let t = get(port, &thumb_path, None);
    let img = decode_png(&t);
    assert_eq!(img.width(), 200);
    assert!(img.height() > 200, "a page is taller than wide");
    assert!(
        img.pixels().any(|p| p.0[0] < 128),
        "the page has its text drawn"
    );
    // Cached: the same page again is a 304 for its validator.
    let etag = t.header("etag").expect("an ETag").to_owned();
    assert!(t.header("cache-control").unwrap().contains("max-age"));
    let again = http(port, "GET", &thumb_path, &[("If-None-Match", &etag)], b"");
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(
        get(port, &format!("/jobs/{fax_out}/pages/999.png"), None).status,
        404
    );
    assert_eq!(
        get(port, &format!("/jobs/{fax_out}/pages/x.png"), None).status,
        404
    );
    assert_eq!(get(port, "/jobs/not-a-job", None).status, 404);

    // The message links its recipient's fax job.
    let m = get(port, &format!("/jobs/{message}"), None);
    assert_eq!(m.status, 200);
    assert!(
        m.text().contains(&format!("/jobs/{fax_out}")),
        "{}",
        m.text()
    );

    // The received fax: listed, viewable, its page a larger PNG.
    let r = get(port, "/received", None);
    assert_eq!(r.status, 200);
    let list = r.text();
    assert!(list.contains(&format!("/received/{fax_in}")), "{list}");
    assert!(list.contains("delivered"), "its mail went out: {list}");
    let v = get(port, &format!("/received/{fax_in}"), None);
    assert_eq!(v.status, 200);
    let view = v.text();
    assert!(
        view.contains(&format!("/api/v1/received/{fax_in}/document.pdf")),
        "{view}"
    );
    assert!(view.contains(&format!("/api/v1/received/{fax_in}/document.tif")));
    let big = decode_png(&get(
        port,
        &format!("/jobs/{fax_in}/pages/1.png?size=large"),
        None,
    ));
    assert_eq!(big.width(), 864);

    // Changes: refused without the page's CSRF token, done with it.
    let csrf = csrf_of(&view);
    let retry = format!("/jobs/{fax_out}/retry");
    assert_eq!(post(port, &retry, None).status, 403);
    let r = post(port, &format!("{retry}?csrf={csrf}"), None);
    assert_eq!(r.status, 409, "a done job is not retried: {}", r.text());
    let redeliver = format!("/received/{fax_in}/redeliver");
    assert_eq!(post(port, &redeliver, None).status, 403);
    let wrong = format!(
        "{}{}",
        if csrf.starts_with('0') { '1' } else { '0' },
        &csrf[1..]
    );
    assert_eq!(
        post(port, &format!("{redeliver}?csrf={wrong}"), None).status,
        403,
        "a wrong token"
    );
    assert_eq!(fax_mails(&d), 1, "nothing happened without the token");
    let r = post(port, &format!("{redeliver}?csrf={csrf}"), None);
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(
        r.header("location"),
        Some(format!("/received/{fax_in}").as_str())
    );
    wait_for("the fax mailed a second time", &d, || {
        (fax_mails(&d) == 2).then_some(())
    });
    // The fax's job page lists both mail jobs.
    let fj = get(port, &format!("/jobs/{fax_in}"), None).text();
    assert!(
        fj.contains(&format!("/jobs/{fax_in}.1")) && fj.contains(&format!("/jobs/{fax_in}.2")),
        "{fj}"
    );
    assert!(
        d.log().contains("redeliver") && d.log().contains("faxgate::audit"),
        "an audit line: {}",
        d.log()
    );

    // The send page has the fields the browser test finds by id.
    let s = get(port, "/send", None);
    assert_eq!(s.status, 200);
    for id in ["to", "file", "cover", "resolution", "notify", "send"] {
        assert!(s.text().contains(&format!("id=\"{id}\"")), "#{id}");
    }
    let js = get(port, "/static/console.js", None);
    assert!(js.text().contains("/api/v1/faxes") && js.text().contains("X-CSRF-Token"));
}

/// Logs `user` in; returns the session cookie and the CSRF token of its pages.
fn login(port: u16, user: &str, password: &str) -> (String, String) {
    let body = format!("user={user}&password={password}");
    let r = http(
        port,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 303, "login of {user}: {}", r.text());
    let cookie = r
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let page = get(port, "/queue", Some(&cookie));
    assert_eq!(page.status, 200);
    (cookie.clone(), csrf_of(&page.text()))
}

#[test]
fn admins_cancel_and_retry_through_the_forms_and_viewers_may_not() {
    let tmp = tempfile::tempdir().unwrap();
    let users = tmp.path().join("console-users");
    let hash = |pw: &str| faxgate::smtp::auth::hash_password(pw).unwrap();
    std::fs::write(
        &users,
        format!(
            "ann:{}:admin\nvic:{}:viewer\n",
            hash("ann-secret"),
            hash("vic-secret")
        ),
    )
    .unwrap();
    let mut d = Daemon::new(tmp.path());
    // Paced: the first fax holds the one loopback line for a while, the second waits.
    d.start(&[
        ("FAXGATE_HTTP__USERS_FILE", users.to_str().unwrap()),
        ("FAXGATE_LOOPBACK__PACE", "1"),
        // Failed jobs are kept a second: the purge below has something to remove.
        ("FAXGATE_SPOOL__KEEP_FAILED", "1s"),
    ]);
    let port = d.http_port;
    assert_eq!(
        get(port, "/queue", None).status,
        303,
        "no page without a login"
    );
    send_text(d.port, &["+12125550123", "+12125550124"]);
    let data = d.data();
    let queued = wait_for("two fax jobs in the queue", &d, || {
        let v = jobs_in(&data, "queue", "fax-out");
        (v.len() == 2).then_some(v)
    });
    let waiting = &queued[1];

    let (ann, ann_csrf) = login(port, "ann", "ann-secret");
    let (vic, vic_csrf) = login(port, "vic", "vic-secret");

    // The admin sees both jobs with buttons; the viewer sees them without.
    let q = get(port, "/queue", Some(&ann)).text();
    assert!(q.contains(&format!("/jobs/{waiting}")), "{q}");
    assert!(q.contains(&format!("/jobs/{waiting}/cancel")), "{q}");
    let q = get(port, "/queue", Some(&vic)).text();
    assert!(q.contains(&format!("/jobs/{waiting}")), "{q}");
    assert!(!q.contains("/cancel") && !q.contains("/retry"), "{q}");
    let j = get(port, &format!("/jobs/{waiting}"), Some(&vic)).text();
    assert!(!j.contains("/cancel"), "{j}");

    // A viewer posting anyway, with a valid token of its own: 403, nothing changes.
    let cancel = format!("/jobs/{waiting}/cancel");
    let r = post(port, &format!("{cancel}?csrf={vic_csrf}"), Some(&vic));
    assert_eq!(r.status, 403, "{}", r.text());
    // The admin without the token: 403; with another session's token: 403.
    assert_eq!(post(port, &cancel, Some(&ann)).status, 403);
    assert_eq!(
        post(port, &format!("{cancel}?csrf={vic_csrf}"), Some(&ann)).status,
        403
    );
    assert!(jobs_in(&data, "failed", "fax-out").is_empty());

    // The admin with the token: cancelled, into failed/.
    let r = post(
        port,
        &format!("{cancel}?csrf={ann_csrf}&back=queue"),
        Some(&ann),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/queue"));
    assert_eq!(jobs_in(&data, "failed", "fax-out"), vec![waiting.clone()]);
    let j = get(port, &format!("/jobs/{waiting}"), Some(&ann)).text();
    assert!(j.contains("cancelled by the operator"), "{j}");
    assert!(j.contains(&format!("/jobs/{waiting}/retry")), "{j}");

    // Retry brings it back to the queue.
    let r = post(
        port,
        &format!("/jobs/{waiting}/retry?csrf={ann_csrf}"),
        Some(&ann),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(jobs_in(&data, "failed", "fax-out").is_empty());
    assert!(jobs_in(&data, "queue", "fax-out").contains(waiting));
    // A viewer's retry is refused too.
    let r = post(
        port,
        &format!("/jobs/{waiting}/retry?csrf={vic_csrf}"),
        Some(&vic),
    );
    assert_eq!(r.status, 403);

    // Both jobs cancelled: the queue is empty again.
    for id in &queued {
        let r = post(
            port,
            &format!("/jobs/{id}/cancel?csrf={ann_csrf}"),
            Some(&ann),
        );
        assert_eq!(r.status, 303, "{id}: {}", r.text());
    }
    let q = get(port, "/queue", Some(&ann)).text();
    assert!(q.contains("Nothing is waiting"), "{q}");
    // Every recipient's fax has ended (cancelled): the sender gets the message's one report,
    // queued by the dispatcher for a cancel as for a fax that ended by itself.
    let mails = d.wait_mail("the report of the cancelled fax", |m| {
        m.iter()
            .any(|m| String::from_utf8_lossy(m).contains("multipart/report"))
    });
    let reports: Vec<String> = mails
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .filter(|m| m.contains("multipart/report"))
        .collect();
    assert_eq!(reports.len(), 1, "{reports:#?}");
    assert!(reports[0].contains("Action: failed"), "{}", reports[0]);

    // Purge: a viewer may not; the admin removes the finished jobs past their retention, so
    // the cancelled faxes leave failed/.
    let purge = "/queue/purge";
    assert_eq!(
        post(port, &format!("{purge}?csrf={vic_csrf}"), Some(&vic)).status,
        403
    );
    assert!(!jobs_in(&data, "failed", "fax-out").is_empty());
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r = post(port, &format!("{purge}?csrf={ann_csrf}"), Some(&ann));
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(jobs_in(&data, "failed", "fax-out").is_empty());

    // The audit log names the admin for each change.
    let log = d.log();
    let audits: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("faxgate::audit"))
        .collect();
    assert!(
        audits
            .iter()
            .filter(|l| l.contains("ann") && l.contains("cancel"))
            .count()
            >= 3,
        "{audits:?}"
    );
    assert!(
        audits
            .iter()
            .any(|l| l.contains("ann") && l.contains("retry"))
    );
    assert!(
        audits
            .iter()
            .any(|l| l.contains("ann") && l.contains("purge"))
    );
    assert!(!audits.iter().any(|l| l.contains("vic")), "{audits:?}");
}
