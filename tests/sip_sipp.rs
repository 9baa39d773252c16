//! The SIP user agent against a real peer: SIPp (Debian `sip-tester`) as registrar, callee
//! and caller, with the scenarios in `tests/fixtures/sip/`. Loopback only (127.0.0.1, and
//! 127.0.0.2 for the caller from a network we do not accept).
//!
//! Each SIPp run handles one call (`-m 1`) under a global timeout that fails it
//! (`-timeout_error`), so a scenario step that never comes fails the test instead of hanging.
//! The waits here are hang guards, not assertions on speed.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use faxgate::fax::t38::UdpEc;
use faxgate::sip::{
    Agent, CallProgress, Cause, Codec, RegState, RegisterError, SipSettings, Transport,
};

/// Hang guard for any one wait.
const GUARD: Duration = Duration::from_secs(60);

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sip")
        .join(name)
}

fn free_port(ip: &str, tcp: bool) -> u16 {
    let a: SocketAddr = format!("{ip}:0").parse().unwrap();
    if tcp {
        std::net::TcpListener::bind(a)
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    } else {
        std::net::UdpSocket::bind(a)
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }
}

struct Sipp {
    child: Child,
    addr: SocketAddr,
    media_port: u16,
    dir: tempfile::TempDir,
}

impl Sipp {
    /// Start SIPp on `ip` with `scenario`; `remote` makes it the client side.
    fn start(
        scenario: &str,
        ip: &str,
        transport: Transport,
        remote: Option<SocketAddr>,
        extra: &[&str],
    ) -> Sipp {
        let sipp = common::require_tool("sipp", "sip-tester");
        let tcp = transport == Transport::Tcp;
        let port = free_port(ip, tcp);
        let media_port = free_port(ip, false);
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(sipp);
        cmd.arg("-sf")
            .arg(fixture(scenario))
            .args([
                "-i",
                ip,
                "-p",
                &port.to_string(),
                "-mi",
                ip,
                "-mp",
                &media_port.to_string(),
            ])
            .args(["-t", if tcp { "t1" } else { "u1" }])
            .args(["-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error"])
            .arg("-trace_msg")
            .arg("-message_file")
            .arg(dir.path().join("messages.log"))
            .arg("-trace_err")
            .arg("-error_file")
            .arg(dir.path().join("errors.log"))
            .args(extra)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                std::fs::File::create(dir.path().join("stdout")).unwrap(),
            ))
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("stderr")).unwrap(),
            ));
        if let Some(r) = remote {
            cmd.arg(r.to_string());
        }
        let child = cmd.spawn().expect("run sipp");
        let addr = SocketAddr::new(ip.parse().unwrap(), port);
        let s = Sipp {
            child,
            addr,
            media_port,
            dir,
        };
        if tcp && remote.is_none() {
            // TCP has no retransmission to cover SIPp's start: wait until it listens.
            let start = Instant::now();
            while std::net::TcpStream::connect(addr).is_err() {
                assert!(start.elapsed() < GUARD, "sipp never listened on {addr}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        s
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// Wait for SIPp to finish; panics with its logs unless the scenario passed.
    async fn passed(mut self) -> String {
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > GUARD {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "sipp did not finish\n{}\n{}",
                    self.log("errors.log"),
                    self.log("messages.log")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let messages = self.log("messages.log");
        assert!(
            status.success(),
            "sipp scenario failed ({status})\nerrors:\n{}\nstdout:\n{}\nmessages:\n{messages}",
            self.log("errors.log"),
            self.log("stdout")
        );
        messages
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn settings(server: Option<SocketAddr>, transport: Transport) -> SipSettings {
    SipSettings {
        server: server.map(|s| s.to_string()),
        register: false,
        user: "faxgate".into(),
        auth_user: Some("fax".into()),
        password: "secret".into(),
        local_addr: "127.0.0.1:0".parse().unwrap(),
        transport,
        media_ip: "127.0.0.1".parse().unwrap(),
        media_ports: (42_000, 42_999),
        allowed_networks: vec!["127.0.0.1/32".parse().unwrap()],
        reinvite_wait: Duration::ZERO,
        ..SipSettings::default()
    }
}

async fn guard<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, f).await.expect("hang guard")
}

/// Wait until the registration state satisfies `want`, `n` times.
async fn registration(agent: &Agent, mut want: impl FnMut(&RegState) -> bool) -> RegState {
    let mut rx = agent.registration();
    guard(async {
        loop {
            let s = rx.borrow_and_update().clone();
            if want(&s) {
                return s;
            }
            rx.changed().await.unwrap();
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_register_md5_challenge_and_refresh() {
    let sipp = Sipp::start("registrar_md5.xml", "127.0.0.1", Transport::Udp, None, &[]);
    let mut s = settings(Some(sipp.addr), Transport::Udp);
    s.register = true;
    let agent = Agent::start(s).await.unwrap();
    // SIPp grants 4 s: the refresh (challenged and answered again) must come before expiry.
    let mut bound = 0;
    let mut last_until = None;
    registration(&agent, |s| {
        if let RegState::Registered { until } = s
            && last_until != Some(*until)
        {
            last_until = Some(*until);
            bound += 1;
        }
        bound >= 2
    })
    .await;
    let log = sipp.passed().await;
    assert_eq!(
        log.matches("algorithm=MD5, qop=auth, nc=00000001").count(),
        2,
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_register_wrong_password_is_a_clear_error() {
    let sipp = Sipp::start(
        "registrar_wrong_password.xml",
        "127.0.0.1",
        Transport::Udp,
        None,
        &[],
    );
    let mut s = settings(Some(sipp.addr), Transport::Udp);
    s.register = true;
    s.password = "not-the-password".into();
    let agent = Agent::start(s).await.unwrap();
    let st = registration(&agent, |s| matches!(s, RegState::Failed { .. })).await;
    let RegState::Failed { error, .. } = st else {
        unreachable!()
    };
    assert_eq!(error, RegisterError::AuthRejected("fax".into()));
    assert!(
        error
            .to_string()
            .contains("refused our credentials for user fax"),
        "{error}"
    );
    sipp.passed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_register_sha256_checked_by_python_hashlib() {
    let sipp = Sipp::start(
        "registrar_sha256.xml",
        "127.0.0.1",
        Transport::Udp,
        None,
        &[],
    );
    let mut s = settings(Some(sipp.addr), Transport::Udp);
    s.register = true;
    let agent = Agent::start(s).await.unwrap();
    registration(&agent, |s| matches!(s, RegState::Registered { .. })).await;
    let log = sipp.passed().await;
    let line = log
        .lines()
        .find(|l| l.starts_with("Authorization: Digest"))
        .expect("Authorization in SIPp's log");
    // An implementation that is not ours recomputes the response (RFC 7616 §3.4.1).
    let script = r#"
import hashlib, re, sys
line = sys.argv[1]
p = dict((m.group(1), m.group(2) if m.group(2) is not None else m.group(3))
         for m in re.finditer(r'(\w+)=(?:"([^"]*)"|([^,\s]+))', line))
h = lambda s: hashlib.sha256(s.encode()).hexdigest()
ha1 = h(f"{p['username']}:{p['realm']}:secret")
ha2 = h(f"REGISTER:{p['uri']}")
want = h(f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:{p['qop']}:{ha2}")
assert p['algorithm'] == 'SHA-256', p
print('ok' if want == p['response'] else 'bad ' + want)
"#;
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script, line])
        .output()
        .expect("python3 (Debian python3)");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ok",
        "{line}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn call_to_t38(transport: Transport) {
    let sipp = Sipp::start("callee_t38.xml", "127.0.0.1", transport, None, &[]);
    let agent = Agent::start(settings(Some(sipp.addr), transport))
        .await
        .unwrap();
    let mut call = agent.call("+12125550123").unwrap();
    let mut progress = call.progress();
    let media = guard(call.t38()).await.expect("T.38 agreed");
    assert_eq!(
        media.remote,
        SocketAddr::new(IpAddr::from([127, 0, 0, 1]), sipp.media_port + 2)
    );
    // SIPp answered 9600 bit/s and 272-octet datagrams: the lower of both ends is agreed.
    assert_eq!(media.params.max_bitrate, 9600);
    assert_eq!(media.params.max_datagram, 272);
    assert_eq!(media.params.udp_ec, UdpEc::Redundancy);
    assert!(matches!(
        &*progress.borrow_and_update(),
        CallProgress::T38(_)
    ));
    call.hangup();
    let ended = guard(async {
        loop {
            if let CallProgress::Ended(c) = &*progress.borrow_and_update() {
                return c.clone();
            }
            progress.changed().await.unwrap();
        }
    })
    .await;
    assert_eq!(ended, Cause::LocalHangup);
    let log = sipp.passed().await;
    assert!(log.contains("m=audio"), "our offer was audio first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_call_answered_then_our_reinvite_to_t38_udp() {
    call_to_t38(Transport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_call_answered_then_our_reinvite_to_t38_tcp() {
    call_to_t38(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_call_far_end_reinvites_to_t38_first() {
    let sipp = Sipp::start(
        "callee_their_reinvite.xml",
        "127.0.0.1",
        Transport::Udp,
        None,
        &[],
    );
    let mut s = settings(Some(sipp.addr), Transport::Udp);
    // Ours would come only after this; SIPp's comes first (a re-INVITE of ours fails the scenario).
    s.reinvite_wait = Duration::from_secs(20);
    let agent = Agent::start(s).await.unwrap();
    let mut call = agent.call("+12125550123").unwrap();
    let media = guard(call.t38())
        .await
        .expect("T.38 agreed on their re-INVITE");
    assert_eq!(
        media.remote,
        SocketAddr::new(IpAddr::from([127, 0, 0, 1]), sipp.media_port + 2)
    );
    assert_eq!(
        media.params.max_datagram, 320,
        "the far end's receive limit"
    );
    call.hangup();
    sipp.passed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_call_far_end_bye_sets_the_flag() {
    let sipp = Sipp::start("callee_t38_bye.xml", "127.0.0.1", Transport::Udp, None, &[]);
    let agent = Agent::start(settings(Some(sipp.addr), Transport::Udp))
        .await
        .unwrap();
    let mut call = agent.call("+12125550123").unwrap();
    guard(call.t38()).await.expect("T.38 agreed");
    let flag = call.remote_bye();
    // SIPp passes only once its BYE got our 200.
    sipp.passed().await;
    guard(async {
        while !flag.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(call.ended(), Some(Cause::RemoteHangup));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_reinvite_refused_488_is_no_t38() {
    let sipp = Sipp::start("callee_488.xml", "127.0.0.1", Transport::Udp, None, &[]);
    let agent = Agent::start(settings(Some(sipp.addr), Transport::Udp))
        .await
        .unwrap();
    let mut call = agent.call("+12125550123").unwrap();
    let cause = guard(call.t38()).await.expect_err("488 refuses T.38");
    assert!(matches!(cause, Cause::NoT38(_)), "{cause:?}");
    assert!(
        cause
            .to_string()
            .contains("the far end does not accept T.38"),
        "{cause}"
    );
    assert!(!cause.retryable());
    sipp.passed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_call_busy_486() {
    let sipp = Sipp::start("callee_busy.xml", "127.0.0.1", Transport::Udp, None, &[]);
    let agent = Agent::start(settings(Some(sipp.addr), Transport::Udp))
        .await
        .unwrap();
    let mut call = agent.call("+12125550123").unwrap();
    let cause = guard(call.t38()).await.expect_err("busy");
    assert_eq!(cause, Cause::Busy(486));
    assert!(cause.retryable());
    sipp.passed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_call_cancelled_while_ringing() {
    let sipp = Sipp::start("callee_cancel.xml", "127.0.0.1", Transport::Udp, None, &[]);
    let agent = Agent::start(settings(Some(sipp.addr), Transport::Udp))
        .await
        .unwrap();
    let mut call = agent.call("+12125550123").unwrap();
    let mut progress = call.progress();
    guard(async {
        while *progress.borrow_and_update() != CallProgress::Ringing {
            progress.changed().await.unwrap();
        }
    })
    .await;
    call.hangup();
    let cause = guard(call.t38()).await.expect_err("cancelled");
    assert_eq!(cause, Cause::LocalHangup);
    let log = sipp.passed().await;
    assert!(log.contains("CANCEL sip:+12125550123@"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_incoming_call_answered_g711_then_t38_and_far_end_bye() {
    incoming_call(Transport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_incoming_call_over_tcp() {
    incoming_call(Transport::Tcp).await;
}

async fn incoming_call(transport: Transport) {
    let agent = Agent::start(settings(None, transport)).await.unwrap();
    let local = agent.local_addr();
    let sipp = Sipp::start(
        "caller_t38.xml",
        "127.0.0.1",
        transport,
        Some(local),
        &["-s", "12125550199"],
    );
    let mut call = guard(agent.next_incoming())
        .await
        .expect("an incoming call");
    assert_eq!(call.did(), "12125550199");
    assert_eq!(
        call.caller(),
        "+15557654321",
        "P-Asserted-Identity wins over From"
    );
    assert_eq!(call.caller_name(), Some("Asserted Office"));
    let mut progress = call.progress();
    let audio = guard(async {
        loop {
            if let CallProgress::Audio { codec, .. } = &*progress.borrow_and_update() {
                return *codec;
            }
            if let CallProgress::T38(_) = &*progress.borrow_and_update() {
                return Codec::Pcma;
            }
            progress.changed().await.unwrap();
        }
    })
    .await;
    assert_eq!(audio, Codec::Pcma, "the caller's first G.711 codec");
    let media = guard(call.t38()).await.expect("T.38 after our re-INVITE");
    assert_eq!(
        media.remote,
        SocketAddr::new(IpAddr::from([127, 0, 0, 1]), sipp.media_port + 2)
    );
    let flag = call.remote_bye();
    guard(async {
        while !flag.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(call.ended(), Some(Cause::RemoteHangup));
    sipp.passed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_options_answered() {
    let agent = Agent::start(settings(None, Transport::Udp)).await.unwrap();
    let sipp = Sipp::start(
        "options.xml",
        "127.0.0.1",
        Transport::Udp,
        Some(agent.local_addr()),
        &[],
    );
    sipp.passed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sip_invite_from_other_network_forbidden() {
    // Accepted: 127.0.0.1/32 only; SIPp calls from 127.0.0.2.
    let agent = Agent::start(settings(None, Transport::Udp)).await.unwrap();
    let sipp = Sipp::start(
        "caller_forbidden.xml",
        "127.0.0.2",
        Transport::Udp,
        Some(agent.local_addr()),
        &[],
    );
    let log = sipp.passed().await;
    assert!(log.contains("SIP/2.0 403 Forbidden"), "{log}");
    // The refused call never reached the line.
    let none = tokio::time::timeout(Duration::from_millis(100), agent.next_incoming()).await;
    assert!(none.is_err(), "a refused INVITE must not become a call");
}
