//! Attacks on the SIP user agent's parsers (issue 17: "SIP, SDP and UDPTL parsers fuzzed"):
//! random bytes, and real messages mutated (bit flips, cuts, repeats, inserted separators),
//! fed to the message parser, the TCP framer, the SDP parser, the digest challenge parser and
//! the whole UA core. Each must return an error or a value — never panic — and the limits hold.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use faxgate::sip::T38Params;
use faxgate::sip::digest::Challenge;
use faxgate::sip::message::{self, Frame, Message, ParseError};
use faxgate::sip::sdp::Sdp;
use faxgate::sip::transaction::Timers;
use faxgate::sip::ua::{Output, Peer, Transport, UaConfig, UserAgent};
use proptest::prelude::*;

const INVITE: &str = "INVITE sip:12125550199@127.0.0.1:5070 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1;rport\r\n\
From: \"A, B\" <sip:+15550001111@pbx.test>;tag=c1\r\n\
To: <sip:12125550199@pbx.test>\r\n\
Call-ID: in1@pbx\r\nCSeq: 5 INVITE\r\n\
Contact: <sip:pbx@127.0.0.1:5060>\r\n\
P-Asserted-Identity: <sip:+15550002222@pbx.test>\r\n\
Content-Type: application/sdp\r\nContent-Length: 187\r\n\r\n\
v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 8000 RTP/AVP 0 8\r\nm=image 8002 udptl t38\r\na=T38FaxVersion:0\r\na=T38MaxBitRate:14400\r\n\
a=T38FaxRateManagement:transferredTCF\r\n";

const RESPONSE: &str = "SIP/2.0 401 Unauthorized\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc;rport\r\n\
From: <sip:fax@pbx.test>;tag=x\r\nTo: <sip:fax@pbx.test>;tag=y\r\nCall-ID: r@1\r\nCSeq: 1 REGISTER\r\n\
WWW-Authenticate: Digest realm=\"pbx\", nonce=\"n\", qop=\"auth,auth-int\", opaque=\"o\", algorithm=SHA-256\r\n\
Content-Length: 0\r\n\r\n";

fn ua() -> UserAgent {
    let cfg = UaConfig {
        user: "fax".into(),
        domain: "pbx.test".into(),
        auth_user: "fax".into(),
        password: "pw".into(),
        server: Some("127.0.0.1:5060".parse().unwrap()),
        register: true,
        register_expires: 600,
        transport: Transport::Udp,
        local: "127.0.0.1:5070".parse().unwrap(),
        media_ip: "127.0.0.1".parse().unwrap(),
        allowed: vec!["127.0.0.0/8".parse().unwrap()],
        reinvite_wait: Duration::from_secs(1),
        answer_timeout: Duration::from_secs(60),
        max_calls: 4,
        t38: T38Params::default(),
        timers: Timers::default(),
        user_agent: "hostile".into(),
    };
    UserAgent::new(cfg, 7, Instant::now())
}

/// Everything the parsers and the core can be handed, at once.
fn all_parsers(bytes: &[u8], core: &mut UserAgent, now: Instant) {
    let _ = Message::parse(bytes);
    let _ = message::frame_stream(bytes);
    let _ = Sdp::parse(bytes);
    if let Ok(s) = std::str::from_utf8(bytes) {
        let _ = Challenge::parse(s);
        let _ = message::Uri::parse(s);
        let _ = message::NameAddr::parse(s);
        let _ = message::Via::parse(s);
    }
    let from = Peer {
        transport: Transport::Udp,
        addr: SocketAddr::from(([127, 0, 0, 1], 5060)),
    };
    core.handle_message(from, bytes, now);
    // Answer whatever call it offered, so the answering paths run on hostile input too.
    while let Some(o) = core.poll_output() {
        if let Output::Event(faxgate::sip::ua::Event::Incoming { call, .. }) = o {
            core.answer(call, 40000, now);
        }
    }
}

/// splitmix64: a fixed, bounded stream of mutations (no time or OS randomness).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(6) {
        if v.is_empty() {
            v.push(b'\r');
        }
        let i = rng.below(v.len());
        match rng.below(7) {
            0 => v[i] ^= 1 << rng.below(8),
            1 => v.truncate(i),
            2 => {
                let j = (i + rng.below(64)).min(v.len());
                let piece = v[i..j].to_vec();
                v.splice(
                    i..i,
                    piece
                        .iter()
                        .copied()
                        .cycle()
                        .take(piece.len() * (1 + rng.below(20))),
                );
            }
            3 => {
                let tokens: [&[u8]; 10] = [
                    b"\r\n", b";", b",", b"<", b">", b"\"", b":", b"=", b"\r\n ", b"\x00",
                ];
                let t = tokens[rng.below(tokens.len())];
                v.splice(i..i, t.iter().copied());
            }
            4 => {
                let j = (i + rng.below(32)).min(v.len());
                v.drain(i..j);
            }
            5 => v[i] = rng.next() as u8,
            _ => {
                // A huge number where a number was.
                let n = b"99999999999999999999";
                v.splice(i..i, n.iter().copied());
            }
        }
    }
    v
}

#[test]
fn sip_mutated_messages_never_panic() {
    let mut core = ua();
    let now = Instant::now();
    let mut rng = Rng(0x5151);
    for seed in [INVITE.as_bytes(), RESPONSE.as_bytes()] {
        Message::parse(seed).expect("the seeds are valid");
        for _ in 0..20_000 {
            let m = mutate(seed, &mut rng);
            all_parsers(&m, &mut core, now);
        }
    }
    // The core's state stays bounded: calls only up to max_calls.
    assert!(core.call_count() <= 4);
}

#[test]
fn sip_limits_hold() {
    // 100 headers is the limit; 101 is refused.
    let mut many = String::from("OPTIONS sip:a@b SIP/2.0\r\n");
    for i in 0..=message::MAX_HEADERS {
        many += &format!("X-H{i}: v\r\n");
    }
    many += "\r\n";
    assert_eq!(
        Message::parse(many.as_bytes()),
        Err(ParseError::TooManyHeaders)
    );
    // A message over 64 KiB is refused by the parser and by the TCP framer.
    let big = format!(
        "OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 70000\r\n\r\n{}",
        "x".repeat(70_000)
    );
    assert_eq!(Message::parse(big.as_bytes()), Err(ParseError::TooLarge));
    assert_eq!(
        message::frame_stream(big.as_bytes()),
        Err(ParseError::TooLarge)
    );
    // A head that never ends is refused once past the limit (the connection is closed).
    let endless = format!(
        "OPTIONS sip:a@b SIP/2.0\r\nX: {}",
        "y".repeat(message::MAX_MESSAGE + 1)
    );
    assert_eq!(
        message::frame_stream(endless.as_bytes()),
        Err(ParseError::TooLarge)
    );
    assert_eq!(
        message::frame_stream(&endless.as_bytes()[..1000]),
        Ok(Frame::NeedMore)
    );
    // A folded header growing past the line limit.
    let fold = format!(
        "OPTIONS sip:a@b SIP/2.0\r\nX: a\r\n{}\r\n",
        " b\r\n".repeat(5000)
    );
    assert_eq!(
        Message::parse(fold.as_bytes()),
        Err(ParseError::LineTooLong)
    );
    // SDP: too many media sections.
    let sdp = format!("v=0\r\n{}", "m=audio 1 RTP/AVP 0\r\n".repeat(20));
    assert!(Sdp::parse(sdp.as_bytes()).is_err());
    // Via list longer than the limit: the request is not answered from it.
    let vias = format!(
        "OPTIONS sip:a@b SIP/2.0\r\nVia: {}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n",
        vec!["SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKv"; 30].join(", ")
    );
    assert!(Message::parse(vias.as_bytes()).unwrap().top_via().is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn sip_random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut core = ua();
        all_parsers(&bytes, &mut core, Instant::now());
    }

    #[test]
    fn sip_random_text_headers_never_panic(head in "[A-Za-z0-9:;,<>\"=@. \\-/\r\n]{0,600}") {
        let mut core = ua();
        let msg = format!("INVITE sip:1@127.0.0.1 SIP/2.0\r\n{head}\r\n\r\n");
        all_parsers(msg.as_bytes(), &mut core, Instant::now());
        let resp = format!("SIP/2.0 200 OK\r\n{head}\r\n\r\n");
        all_parsers(resp.as_bytes(), &mut core, Instant::now());
        let sdp = format!("v=0\r\n{head}");
        let _ = Sdp::parse(sdp.as_bytes());
    }
}

/// A TCP peer that sends a head without end, or a Content-Length past the limit, is
/// disconnected (RFC 3261 §18.3 gives no way to resynchronise); the agent keeps answering others.
#[test]
fn sip_tcp_oversized_stream_is_disconnected() {
    use faxgate::sip::{Agent, SipSettings};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let settings = SipSettings {
            server: None,
            register: false,
            local_addr: "127.0.0.1:0".parse().unwrap(),
            transport: Transport::Tcp,
            media_ip: "127.0.0.1".parse().unwrap(),
            media_ports: (43_000, 43_099),
            allowed_networks: vec!["127.0.0.1/32".parse().unwrap()],
            ..SipSettings::default()
        };
        let agent = Agent::start(settings).await.unwrap();
        let addr = agent.local_addr();
        let guard = Duration::from_secs(60);
        for attack in [
            format!("OPTIONS sip:a@b SIP/2.0\r\nX: {}", "y".repeat(message::MAX_MESSAGE + 10)),
            "OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 999999\r\n\r\n".to_string(),
        ] {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            // The write may fail once the agent has closed its end; either way the read ends.
            let _ = s.write_all(attack.as_bytes()).await;
            let mut buf = vec![0u8; 1024];
            let n = tokio::time::timeout(guard, s.read(&mut buf)).await.expect("closed, not hung");
            assert!(matches!(n, Ok(0) | Err(_)), "the connection is closed");
        }
        // A well-formed OPTIONS on a new connection still gets its 200.
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"OPTIONS sip:fax@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bKok\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:fax@127.0.0.1>\r\nCall-ID: ok\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").await.unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 4096];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tokio::time::timeout(guard, s.read(&mut buf)).await.expect("an answer").unwrap();
            assert!(n > 0, "closed without an answer");
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got.starts_with(b"SIP/2.0 200 OK\r\n"), "{}", String::from_utf8_lossy(&got));
    });
}
