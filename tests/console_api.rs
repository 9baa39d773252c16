//! The console's REST API from a real HTTP client (curl), against `faxgate run` on the
//! embedded default (the loopback line sends every fax back to our own onramp):
//! - with a users file and tokens made by `faxgate token create`: a PDF sent through the API
//!   is polled to `done`, and the fax it became on the loopback line is downloaded as PDF
//!   (poppler `pdfinfo`) and TIFF (libtiff `tiffinfo`);
//! - refusals, each before anything is queued: wrong token 401, refused numbers 422 (the
//!   dial plan's premium and international rules), an unknown type 415, oversize 413;
//! - security: no route answers without a token or session, a session's change without CSRF
//!   is refused, failed logins from one address lock it out (429), a viewer's cancel is 403
//!   and an admin's cancel names the admin in the audit log;
//! - open mode (no users file): the API needs no token.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::daemon::Daemon;

/// One answer: status, headers (raw), body.
struct Resp {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}), status {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// curl against the console of one daemon.
struct Api {
    base: String,
    dir: PathBuf,
    n: std::cell::Cell<u32>,
}

impl Api {
    fn new(d: &Daemon, dir: &Path) -> Api {
        Api {
            base: format!("http://127.0.0.1:{}", d.http_port),
            dir: dir.to_path_buf(),
            n: std::cell::Cell::new(0),
        }
    }

    /// `curl ARGS URL`; `path` is appended to the console's address.
    fn call(&self, args: &[&str], path: &str) -> Resp {
        let curl = common::require_tool("curl", "curl");
        let n = self.n.get() + 1;
        self.n.set(n);
        let body = self.dir.join(format!("body{n}"));
        let hdr = self.dir.join(format!("hdr{n}"));
        let out = Command::new(curl)
            .args(["-sS", "--max-time", "60", "-o"])
            .arg(&body)
            .arg("-D")
            .arg(&hdr)
            .args(["-w", "%{http_code}"])
            .args(args)
            .arg(format!("{}{path}", self.base))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "curl {args:?} {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Resp {
            status: String::from_utf8_lossy(&out.stdout).trim().parse().unwrap(),
            headers: std::fs::read_to_string(&hdr).unwrap_or_default(),
            body: std::fs::read(&body).unwrap_or_default(),
        }
    }

    fn get(&self, token: Option<&str>, path: &str) -> Resp {
        let auth = token.map(|t| format!("Authorization: Bearer {t}"));
        let mut args = vec![];
        if let Some(a) = &auth {
            args.extend(["-H", a.as_str()]);
        }
        self.call(&args, path)
    }

    /// `POST /api/v1/faxes` with `fields` (`-F` values, e.g. `to=+1…`, `file=@path`).
    fn send(&self, token: Option<&str>, fields: &[String]) -> Resp {
        let auth = token.map(|t| format!("Authorization: Bearer {t}"));
        let mut args: Vec<&str> = vec![];
        if let Some(a) = &auth {
            args.extend(["-H", a.as_str()]);
        }
        for f in fields {
            args.extend(["-F", f.as_str()]);
        }
        self.call(&args, "/api/v1/faxes")
    }

    fn method(&self, m: &str, token: Option<&str>, path: &str) -> Resp {
        let auth = token.map(|t| format!("Authorization: Bearer {t}"));
        let mut args = vec!["-X", m];
        if let Some(a) = &auth {
            args.extend(["-H", a.as_str()]);
        }
        self.call(&args, path)
    }
}

/// A users file: `ann` admin, `vic` viewer limited to the loopback number, `val` viewer
/// limited to the route `sales`.
fn users_file(dir: &Path) -> PathBuf {
    let h = |pw: &str| faxgate::smtp::auth::hash_password(pw).unwrap();
    let p = dir.join("console-users");
    std::fs::write(
        &p,
        format!(
            "ann:{}:admin\nvic:{}:viewer:+12125550123\nval:{}:viewer:route=sales\n",
            h("ann-pw"),
            h("vic-pw"),
            h("val-pw")
        ),
    )
    .unwrap();
    p
}

/// `faxgate token create USER` with the daemon's data directory and `env`.
fn token(d: &Daemon, env: &[(&str, &str)], user: &str) -> Result<String, String> {
    let mut c = d.cmd();
    c.args(["token", "create", user]);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap().trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The job lines of `faxgate queue list --all` (the header line left out).
fn jobs(d: &Daemon) -> Vec<String> {
    let out = d.cmd().args(["queue", "list", "--all"]).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .map(str::to_owned)
        .collect()
}

/// Polls `GET /api/v1/faxes/{id}` (bounded) until its state is `want`.
fn wait_state(
    api: &Api,
    token: Option<&str>,
    id: &str,
    want: &str,
    d: &Daemon,
) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    for _ in 0..900 {
        let r = api.get(token, &format!("/api/v1/faxes/{id}"));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        last = r.json();
        if last["state"] == want {
            return last;
        }
        assert!(
            !(want == "done"
                && ["failed", "cancelled"].contains(&last["state"].as_str().unwrap_or(""))),
            "fax ended {}: {last:#}\n{}",
            last["state"],
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("fax {id} never reached {want}: {last:#}\n{}", d.log());
}

fn documented_routes() -> Vec<(String, String)> {
    let doc: serde_json::Value = serde_json::from_str(faxgate::app::console::api::OPENAPI).unwrap();
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            out.push((
                method.to_uppercase(),
                path.replace("{id}", "6b0b5ae65504f019e0e3"),
            ));
        }
    }
    assert!(out.len() >= 8, "{out:?}");
    out
}

#[test]
fn api_with_tokens_sends_polls_downloads_and_refuses_before_queueing() {
    let tmp = tempfile::tempdir().unwrap();
    let users = users_file(tmp.path());
    let users_s = users.to_str().unwrap().to_owned();
    let env = [
        ("FAXGATE_HTTP__USERS_FILE", users_s.as_str()),
        // A small upload limit, so that oversize is cheap to show.
        ("FAXGATE_SMTP__MAX_MESSAGE_SIZE", "1000000"),
    ];
    let mut d = Daemon::new(tmp.path());
    d.start(&env);
    let api = Api::new(&d, tmp.path());
    let pdf = make_pdf(tmp.path());

    // Tokens: only for users in the users file; made while the daemon runs.
    let ann = token(&d, &env, "ann").unwrap();
    let vic = token(&d, &env, "vic").unwrap();
    let e = token(&d, &env, "mallory").unwrap_err();
    assert!(e.contains("`mallory` is not a user"), "{e}");
    let tokens = std::fs::read_to_string(d.data().join("api-tokens")).unwrap();
    assert!(
        !tokens.contains(&ann) && tokens.contains("ann:"),
        "{tokens}"
    );

    // Nothing answers without a token or session: every documented API route, the pages and
    // the metrics.
    for (m, path) in documented_routes() {
        let r = api.method(&m, None, &path);
        assert_eq!(r.status, 401, "{m} {path}");
        assert_eq!(r.code(), "unauthenticated", "{m} {path}");
        assert_eq!(r.header("www-authenticate").as_deref(), Some("Bearer"));
    }
    for path in [
        "/",
        "/queue",
        "/received",
        "/send",
        "/modems",
        "/config",
        "/nowhere",
    ] {
        let r = api.get(None, path);
        assert_eq!(r.status, 303, "{path}");
        assert_eq!(r.header("location").as_deref(), Some("/login"), "{path}");
    }
    let r = api.get(None, "/metrics");
    assert_eq!((r.status, r.code().as_str()), (401, "unauthenticated"));
    // A wrong token: 401, whatever the route.
    let r = api.get(Some("fgt_0000"), "/api/v1/received");
    assert_eq!((r.status, r.code().as_str()), (401, "bad-token"));
    let r = api.send(
        Some("fgt_wrong"),
        &["to=+12125550123".into(), format!("file=@{}", pdf.display())],
    );
    assert_eq!(r.status, 401);

    // Every documented route is served (with a token, an unknown id is the handler's JSON
    // 404, never the router's empty 404 or a 405).
    for (m, path) in documented_routes() {
        let r = api.method(&m, Some(&ann), &path);
        assert!(
            r.status != 405 && !r.body.is_empty(),
            "{m} {path}: {}",
            r.status
        );
        if r.status == 404 {
            assert_eq!(r.code(), "not-found", "{m} {path}");
        }
    }

    // Refusals, and nothing queued for any of them.
    assert!(jobs(&d).is_empty(), "{:?}", jobs(&d));
    let file = format!("file=@{};type=application/pdf", pdf.display());
    for (number, why) in [
        ("+19005550123", "premium-rate"),
        ("+442079460000", "international"),
    ] {
        let r = api.send(Some(&ann), &[format!("to={number}"), file.clone()]);
        assert_eq!(r.status, 422, "{number}");
        assert_eq!(r.code(), "number-refused");
        let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(msg.contains(why), "{msg}");
    }
    // The viewer may send only to its own number.
    let r = api.send(Some(&vic), &["to=+12125550142".into(), file.clone()]);
    assert_eq!((r.status, r.code().as_str()), (403, "number-out-of-scope"));
    let zip = tmp.path().join("letter.docx");
    std::fs::write(
        &zip,
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00not a document we fax",
    )
    .unwrap();
    let r = api.send(
        Some(&ann),
        &["to=+12125550123".into(), format!("file=@{}", zip.display())],
    );
    assert_eq!((r.status, r.code().as_str()), (415, "unsupported-type"));
    let big = tmp.path().join("big.txt");
    std::fs::write(&big, "x".repeat(1_500_000)).unwrap();
    let r = api.send(
        Some(&ann),
        &["to=+12125550123".into(), format!("file=@{}", big.display())],
    );
    assert_eq!((r.status, r.code().as_str()), (413, "too-large"));
    let r = api.send(Some(&ann), std::slice::from_ref(&file));
    assert_eq!((r.status, r.code().as_str()), (400, "no-recipient"));
    assert!(
        jobs(&d).is_empty(),
        "refused faxes were queued: {:?}",
        jobs(&d)
    );

    // Send a PDF, poll it to done.
    let r = api.send(
        Some(&ann),
        &[
            "to=+1 212 555 0123".into(),
            file.clone(),
            "resolution=fine".into(),
            "notify=ann@example.org".into(),
        ],
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let sent = r.json();
    let id = sent["id"].as_str().unwrap().to_owned();
    assert_eq!(r.header("location"), Some(format!("/api/v1/faxes/{id}")));
    assert_eq!(sent["recipients"][0]["number"], "+12125550123");
    assert_eq!(sent["notify"], "ann@example.org");
    assert_eq!(sent["user"], "ann");
    let done = wait_state(&api, Some(&ann), &id, "done", &d);
    let rcpt = &done["recipients"][0];
    assert_eq!(rcpt["state"], "done", "{done:#}");
    assert_eq!(done["pages"], 1, "{done:#}");
    assert_eq!(rcpt["pages_sent"], 1, "{done:#}");
    let last = done["attempts"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["result"], "done", "{done:#}");
    assert_eq!(last["t30_cause"], 0, "{done:#}");
    assert_eq!(last["t30_meaning"], "all pages transferred and confirmed");
    assert!(done["cause"].is_null(), "{done:#}");
    // The viewer sees it (its number); an id that is not a fax is 404.
    assert_eq!(
        api.get(Some(&vic), &format!("/api/v1/faxes/{id}")).status,
        200
    );
    let r = api.get(Some(&ann), &format!("/api/v1/faxes/{id}.1"));
    assert_eq!((r.status, r.code().as_str()), (404, "not-found"));
    // Finished: nothing to cancel; and the viewer may not even try.
    let r = api.method("DELETE", Some(&vic), &format!("/api/v1/faxes/{id}"));
    assert_eq!((r.status, r.code().as_str()), (403, "forbidden"));
    let r = api.method("POST", Some(&vic), &format!("/api/v1/faxes/{id}/retry"));
    assert_eq!((r.status, r.code().as_str()), (403, "forbidden"));
    let r = api.method("DELETE", Some(&ann), &format!("/api/v1/faxes/{id}"));
    assert_eq!((r.status, r.code().as_str()), (409, "already-final"));

    // The loopback line received it: list, then download both forms.
    let mut rx = serde_json::Value::Null;
    for _ in 0..300 {
        let r = api.get(Some(&ann), "/api/v1/received");
        assert_eq!(r.status, 200);
        rx = r.json()["received"][0].clone();
        if !rx.is_null() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(rx["pages"], 1, "{rx:#}");
    assert_eq!(rx["completion"], "complete", "{rx:#}");
    assert_eq!(rx["route"], "default", "{rx:#}");
    let rid = rx["id"].as_str().unwrap().to_owned();
    let r = api.get(Some(&ann), &format!("/api/v1/received/{rid}/document.pdf"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type").as_deref(), Some("application/pdf"));
    let pdf_out = tmp.path().join("received.pdf");
    std::fs::write(&pdf_out, &r.body).unwrap();
    let pdfinfo = common::require_tool("pdfinfo", "poppler-utils");
    let out = Command::new(pdfinfo).arg(&pdf_out).output().unwrap();
    let info = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pdfinfo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        info.lines()
            .any(|l| l.starts_with("Pages:") && l.split_whitespace().nth(1) == Some("1")),
        "{info}"
    );
    let r = api.get(Some(&ann), &format!("/api/v1/received/{rid}/document.tif"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type").as_deref(), Some("image/tiff"));
    let tif_out = tmp.path().join("received.tif");
    std::fs::write(&tif_out, &r.body).unwrap();
    let tiffinfo = common::require_tool("tiffinfo", "libtiff-tools");
    let out = Command::new(tiffinfo).arg(&tif_out).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("rror"),
        "tiffinfo: {stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Image Width: 1728"));
    // Scopes: the loopback reception was dialled to +12125550123, the viewer `vic`'s number;
    // `val` has only the route `sales`, and the fax took the default route.
    let r = api.get(Some(&vic), "/api/v1/received");
    assert_eq!(r.json()["received"][0]["id"], rid.as_str());
    assert_eq!(
        api.get(Some(&vic), &format!("/api/v1/received/{rid}/document.tif"))
            .status,
        200
    );
    let val = token(&d, &env, "val").unwrap();
    let r = api.get(Some(&val), "/api/v1/received");
    assert_eq!(r.json()["received"], serde_json::json!([]));
    let r = api.get(Some(&val), &format!("/api/v1/received/{rid}/document.tif"));
    assert_eq!((r.status, r.code().as_str()), (404, "not-found"));
    let r = api.get(Some(&val), &format!("/api/v1/faxes/{id}"));
    assert_eq!((r.status, r.code().as_str()), (404, "not-found"));

    // The send is in the audit log with its user.
    let log = d.log();
    assert!(
        log.lines().any(|l| l.contains("audit")
            && l.contains("ann")
            && l.contains("send")
            && l.contains(&id)),
        "{log}"
    );
}

#[test]
fn sessions_need_csrf_logins_are_rate_limited_and_a_cancel_is_audited_with_its_user() {
    let tmp = tempfile::tempdir().unwrap();
    let users = users_file(tmp.path());
    let users_s = users.to_str().unwrap().to_owned();
    // Slow loopback calls, so that the fax is still on its way when it is cancelled.
    let env = [
        ("FAXGATE_HTTP__USERS_FILE", users_s.as_str()),
        ("FAXGATE_LOOPBACK__PACE", "1.0"),
    ];
    let mut d = Daemon::new(tmp.path());
    d.start(&env);
    let api = Api::new(&d, tmp.path());
    let pdf = make_pdf(tmp.path());
    let ann = token(&d, &env, "ann").unwrap();
    let vic = token(&d, &env, "vic").unwrap();

    // A session (login form) may look, but its change without the CSRF token is refused, and
    // nothing is queued.
    let jar = tmp.path().join("cookies");
    let jar_s = jar.to_str().unwrap();
    let r = api.call(
        &[
            "-c",
            jar_s,
            "--data-urlencode",
            "user=ann",
            "--data-urlencode",
            "password=ann-pw",
        ],
        "/login",
    );
    assert_eq!(r.status, 303, "{}", String::from_utf8_lossy(&r.body));
    let cookie = r.header("set-cookie").unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let r = api.call(&["-b", jar_s], "/api/v1/received");
    assert_eq!(r.status, 200);
    let file = format!("file=@{};type=application/pdf", pdf.display());
    let r = api.call(
        &["-b", jar_s, "-F", "to=+12125550123", "-F", &file],
        "/api/v1/faxes",
    );
    assert_eq!((r.status, r.code().as_str()), (403, "csrf"));
    let r = api.call(
        &[
            "-b",
            jar_s,
            "-H",
            "X-CSRF-Token: 0123",
            "-F",
            "to=+12125550123",
            "-F",
            &file,
        ],
        "/api/v1/faxes",
    );
    assert_eq!((r.status, r.code().as_str()), (403, "csrf"));
    assert!(jobs(&d).is_empty(), "{:?}", jobs(&d));

    // A cancel: the viewer is refused, the admin's is done and audited with its name.
    let r = api.send(Some(&ann), &["to=+12125550123".into(), file.clone()]);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let r = api.method("DELETE", Some(&vic), &format!("/api/v1/faxes/{id}"));
    assert_eq!((r.status, r.code().as_str()), (403, "forbidden"));
    let mut cancelled = None;
    for _ in 0..100 {
        let r = api.method("DELETE", Some(&ann), &format!("/api/v1/faxes/{id}"));
        match r.status {
            200 => {
                cancelled = Some(r.json());
                break;
            }
            // The split is making the fax job right now.
            409 if r.code() == "busy" => std::thread::sleep(Duration::from_millis(100)),
            s => panic!("cancel: {s} {}", String::from_utf8_lossy(&r.body)),
        }
    }
    let v = cancelled.expect("the cancel was never accepted");
    assert_eq!(v["state"], "cancelled", "{v:#}");
    let v = api.get(Some(&ann), &format!("/api/v1/faxes/{id}")).json();
    assert_eq!(v["state"], "cancelled", "{v:#}");
    let log = d.log();
    let line = log
        .lines()
        .find(|l| l.contains("audit") && l.contains("cancel") && l.contains(&id))
        .unwrap_or_else(|| panic!("no audit line for the cancel:\n{log}"));
    assert!(line.contains("ann"), "{line}");
    // The report goes out for a cancel as for any other end (to gateway.admin: no notify).
    d.wait_mail("the report of the cancelled fax", |m| {
        m.iter().any(|x| {
            let t = String::from_utf8_lossy(x);
            t.contains("postmaster@localhost") && t.contains("cancelled by the operator")
        })
    });
    // An admin may retry it: it is queued again.
    let r = api.method("POST", Some(&ann), &format!("/api/v1/faxes/{id}/retry"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        ["queued", "sending"].contains(&r.json()["state"].as_str().unwrap_or("")),
        "{:#}",
        r.json()
    );
    assert!(
        d.log()
            .lines()
            .any(|l| l.contains("audit") && l.contains("retry") && l.contains(&id))
    );

    // Failed logins from one address: after the tenth, the address is locked out (429), even
    // with the right password.
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let r = api.call(
            &[
                "--data-urlencode",
                "user=ann",
                "--data-urlencode",
                "password=wrong",
            ],
            "/login",
        );
        statuses.push(r.status);
    }
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    let r = api.call(
        &[
            "--data-urlencode",
            "user=ann",
            "--data-urlencode",
            "password=ann-pw",
        ],
        "/login",
    );
    assert_eq!(r.status, 429, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.header("retry-after").is_some());
}

#[test]
fn open_mode_api_needs_no_token() {
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(tmp.path());
    d.start(&[]);
    let api = Api::new(&d, tmp.path());
    let pdf = make_pdf(tmp.path());
    let file = format!("file=@{}", pdf.display());
    let r = api.send(None, &["to=+19005550123".into(), file.clone()]);
    assert_eq!((r.status, r.code().as_str()), (422, "number-refused"));
    assert!(jobs(&d).is_empty(), "{:?}", jobs(&d));
    let r = api.send(
        None,
        &["to=+12125550123".into(), file, "cover=Hello".into()],
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let done = wait_state(&api, None, &id, "done", &d);
    // The cover letter is its own page before the PDF's.
    assert_eq!(done["pages"], 2, "{done:#}");
    assert_eq!(done["user"], "local");
    assert_eq!(done["notify"], "postmaster@localhost");
    // A page from another site cannot post here, token or not.
    let r = api.call(
        &["-H", "Origin: http://evil.example", "-F", "to=+12125550123"],
        "/api/v1/faxes",
    );
    assert_eq!((r.status, r.code().as_str()), (403, "cross-origin"));
    let r = api.get(None, "/api/v1/openapi.json");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["openapi"], "3.1.0");
}

fn make_pdf(dir: &Path) -> PathBuf {
    common::gs_pdf(
        dir,
        "doc.pdf",
        "/Helvetica findfont 28 scalefont setfont 72 700 moveto (Sent through the API) show \
         72 300 200 120 rectfill showpage",
    )
}
