//! Spool commit throughput: durable commits per second with 1, 10 and 50 concurrent writers.
//!
//! Not a test (it measures, it asserts nothing): `cargo run --example spool_bench -- [DIR]
//! [MESSAGES_PER_LEVEL]`. DIR must be on the disk the spool will live on (default: a temporary
//! directory under the system temp dir); tmpfs would measure nothing. Each commit is a 1 KiB
//! `message.eml` committed the same way the SMTP listener does it (begin, write, commit).
//! Anchor (DESIGN.md): aiosmtpd writing + fsyncing each message ≈ 400 msg/s at 10 sessions;
//! the SMTP listener needs ≥ 2000 commits/s at 10 writers. Because this box's disk is shared
//! and its speed varies, the bench also runs that anchor's storage step side by side: create
//! a file, write 1 KiB, fsync, close (what aiosmtpd's handler does per message).

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use faxgate::spool::{JobKind, NewJob, Spool, SpoolOptions};

fn main() {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let per_level: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(4000);
    let body = vec![b'x'; 1024];
    for writers in [1usize, 10, 50] {
        let dir = base.join(format!(
            "faxgate-spool-bench-{}-{writers}",
            std::process::id()
        ));
        let each = per_level.div_ceil(writers);
        let n = each * writers;

        // The anchor: one file + one fsync per message.
        std::fs::create_dir_all(&dir).expect("bench dir");
        let t0 = Instant::now();
        std::thread::scope(|s| {
            for w in 0..writers {
                let (dir, body) = (&dir, &body);
                s.spawn(move || {
                    for i in 0..each {
                        let mut f =
                            std::fs::File::create(dir.join(format!("a{w}-{i}"))).expect("create");
                        f.write_all(body).expect("write");
                        f.sync_all().expect("fsync");
                    }
                });
            }
        });
        let anchor = n as f64 / t0.elapsed().as_secs_f64();
        let _ = std::fs::remove_dir_all(&dir);

        let spool = Spool::open(&dir, SpoolOptions::default()).expect("open spool");
        // A message job's data as the listener writes it (one recipient).
        let data = faxgate::job::JobData::from_v1(
            JobKind::Message,
            serde_json::json!({
                "envelope": {
                    "mail_from": "a@example.org", "size": null, "body": null, "ret": null,
                    "envid": null, "mail_auth": null, "auth_user": null, "tls": null,
                    "client": {"ip": "127.0.0.1", "port": 40000, "helo": "bench", "esmtp": true},
                    "recipients": [{
                        "address": "FAX=+12125550142@gw", "form": "rfc3192",
                        "number": {"kind": "global", "digits": "12125550142"},
                        "subaddress": null, "notify": null, "orcpt": null,
                        "destination": {"e164": "+12125550142", "dial": "12125550142",
                                        "international": false},
                    }],
                },
                "file": "message.eml", "size": body.len(), "received": "2026-12-03T00:00:00Z",
            }),
        )
        .expect("message data");
        let t0 = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..writers {
                let spool = spool.clone();
                let (body, data) = (&body, &data);
                s.spawn(move || {
                    for _ in 0..each {
                        let mut inc = spool.begin(JobKind::Message).expect("begin");
                        inc.write_file("message.eml", body).expect("write");
                        inc.commit(NewJob::new(data.clone())).expect("commit");
                    }
                });
            }
        });
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "{writers:>3} writers: spool {:>6.0} commits/s | anchor (write+fsync per message) {anchor:>6.0}/s | {n} each",
            n as f64 / secs
        );
        drop(spool);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
