//! Onramp figures, printed (never asserted): composing a received fax into its email, and
//! delivering mail into a Maildir and to a real SMTP relay (aiosmtpd via
//! `tests/fixtures/onramp/relay.py`, which writes and fsyncs every message).
//!
//! `cargo run --release --example onramp_bench [N]` (N messages per delivery run, default 200).
//! Anchor (DESIGN.md): aiosmtpd writing + fsyncing each message ≈ 400 msg/s with
//! `smtp-source` over 10 sessions at 1 KB.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use faxgate::config::{Config, RelayMode, RelaySecurity};
use faxgate::delivery::{Delivery, MailEnvelope as Envelope};
use faxgate::image::tiff::Profile;
use faxgate::image::{Page, Resolution};
use faxgate::onramp::compose::{self, Pages, Settings};
use faxgate::onramp::route::RouteTable;
use faxgate::onramp::{Completion, Reception, Source};

/// Three fine pages of text-like content: 60 lines of "words" made from a 26-glyph alphabet of
/// 12 × 20 pixel shapes, so runs repeat vertically the way typed text does.
fn pages() -> Vec<Page> {
    let mut s: u32 = 0x2545_f491;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        s
    };
    // Each glyph: 6 × 10 cells, each cell 2 × 2 pixels.
    let glyphs: Vec<[bool; 60]> = (0..26)
        .map(|_| std::array::from_fn(|_| next() % 3 == 0))
        .collect();
    (0..3u32)
        .map(|_| {
            let mut p = Page::new(1728, 2200, Resolution::FINE).unwrap();
            for line in 0..60u32 {
                let top = 120 + line * 34;
                let mut x = 150u32;
                while x < 1560 {
                    let word = 2 + next() % 8;
                    for _ in 0..word {
                        let g = &glyphs[(next() % 26) as usize];
                        for cy in 0..10u32 {
                            for cx in 0..6u32 {
                                if g[(cy * 6 + cx) as usize] {
                                    for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                                        p.set(x + cx * 2 + dx, top + cy * 2 + dy, true);
                                    }
                                }
                            }
                        }
                        x += 14;
                    }
                    x += 14;
                }
            }
            p
        })
        .collect()
}

fn rate(n: usize, d: Duration) -> String {
    format!(
        "{:.0} msg/s ({:.2} ms each)",
        n as f64 / d.as_secs_f64(),
        d.as_secs_f64() * 1e3 / n as f64
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().unwrap();
    let c = Config::default();
    let settings = Settings::from_config(&c).unwrap();
    let routes = RouteTable::new(&c.routes).unwrap();
    let pages = pages();
    let reception = Reception {
        source: Source::Modem,
        line: None,
        did: None,
        caller: None,
        remote_id: Some("+1 212 555 0123".into()),
        subaddress: None,
        pages: 3,
        duration_secs: 150,
        speed: Some(14400),
        resolution: Some((204, 196)),
        bad_lines: 0,
        received: 1_796_000_000,
        completion: Completion::Complete,
    };

    // Compose: re-encode as Profile S (the path for a non-S input) and as a G4 PDF.
    let t = Instant::now();
    let tiff = compose::write_tiff(&pages, Profile::S).unwrap();
    let t_tiff = t.elapsed();
    let t = Instant::now();
    let pdf = compose::write_g4_pdf(&pages).unwrap();
    let t_pdf = t.elapsed();
    let t = Instant::now();
    let out = compose::compose(
        &settings,
        &routes,
        &reception,
        &Pages::Decoded {
            pages: &pages,
            original: &tiff,
            original_is_profile_s: true,
        },
        "6b0b5a000000000000aa",
        None,
    )
    .unwrap();
    let t_msg = t.elapsed();
    println!(
        "3 fine text pages: Profile S TIFF {} bytes in {:.1} ms; G4 PDF {} bytes in {:.1} ms",
        tiff.len(),
        t_tiff.as_secs_f64() * 1e3,
        pdf.len(),
        t_pdf.as_secs_f64() * 1e3
    );
    println!(
        "email with the TIFF attached: {} bytes built in {:.2} ms",
        out.message.len(),
        t_msg.as_secs_f64() * 1e3
    );

    let env = Envelope {
        from: "fax-gateway@localhost".into(),
        to: vec!["fax@localhost".into()],
        envid: None,
    };

    // Maildir.
    let mut m = c.clone();
    m.gateway.data_dir = dir.path().to_path_buf();
    let d = Delivery::from_config(&m).unwrap();
    let t = Instant::now();
    for _ in 0..n {
        d.deliver(&env, &out.message).await.unwrap();
    }
    println!(
        "Maildir (tmp → fsync → new → fsync dir), {n} × {} KB: {}",
        out.message.len() / 1024,
        rate(n, t.elapsed())
    );

    // SMTP to aiosmtpd.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/onramp/relay.py"
    );
    let mut relay = Command::new("/usr/bin/python3")
        .arg(script)
        .args(["--port", &port.to_string(), "--out"])
        .arg(dir.path().join("relay"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 with python3-aiosmtpd");
    let mut line = String::new();
    BufReader::new(relay.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut s = c.clone();
    s.relay.mode = RelayMode::Smtp;
    s.relay.host = "127.0.0.1".into();
    s.relay.port = port;
    s.relay.security = RelaySecurity::None;
    let d = Delivery::from_config(&s).unwrap();
    // 1 KB: a header and 12 lines of 76 characters.
    let mut small = b"Subject: bench\r\n\r\n".to_vec();
    for _ in 0..12 {
        small.extend_from_slice(&[b'x'; 76]);
        small.extend_from_slice(b"\r\n");
    }
    for (label, msg) in [("1 KB", small), ("fax email", out.message.clone())] {
        let t = Instant::now();
        for _ in 0..n {
            d.deliver(&env, &msg).await.unwrap();
        }
        println!(
            "SMTP to aiosmtpd, one session per message, {label}: {}",
            rate(n, t.elapsed())
        );
        let t = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for k in 0..4 {
            let (d, env, msg) = (d.clone(), env.clone(), msg.clone());
            set.spawn(async move {
                for _ in (k..n).step_by(4) {
                    d.deliver(&env, &msg).await.unwrap();
                }
            });
        }
        while set.join_next().await.is_some() {}
        println!(
            "SMTP to aiosmtpd, 4 sessions at once, {label}: {}",
            rate(n, t.elapsed())
        );
    }
    let _ = relay.kill();
    let _ = relay.wait();
}
