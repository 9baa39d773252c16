//! Transcript tests of the pure SIP user agent core (`faxgate::sip::ua`): messages and
//! instants in, messages and events out — no sockets, no clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use faxgate::sip::message::{Message, Method, StartLine};
use faxgate::sip::sdp::Sdp;
use faxgate::sip::transaction::Timers;
use faxgate::sip::ua::{CallState, Event, Output, Peer, RegState, Transport, UaConfig, UserAgent};
use faxgate::sip::{Cause, Codec, RegisterError, T38Params};

const SERVER: &str = "127.0.0.1:5060";
const ME: &str = "127.0.0.1:5070";

fn cfg() -> UaConfig {
    UaConfig {
        user: "fax".into(),
        domain: "pbx.test".into(),
        auth_user: "fax".into(),
        password: "secret".into(),
        server: Some(SERVER.parse().unwrap()),
        register: false,
        register_expires: 600,
        transport: Transport::Udp,
        local: ME.parse().unwrap(),
        media_ip: "127.0.0.1".parse().unwrap(),
        allowed: vec!["127.0.0.1/32".parse().unwrap()],
        reinvite_wait: Duration::from_secs(3),
        answer_timeout: Duration::from_secs(60),
        max_calls: 2,
        t38: T38Params::default(),
        timers: Timers::default(),
        user_agent: "test".into(),
    }
}

fn server() -> Peer {
    Peer {
        transport: Transport::Udp,
        addr: SERVER.parse().unwrap(),
    }
}

struct Run {
    ua: UserAgent,
    now: Instant,
    sent: Vec<(Peer, Message)>,
    /// Every message sent, in order.
    history: Vec<Message>,
    events: Vec<Event>,
}

impl Run {
    fn new(cfg: UaConfig) -> Run {
        let now = Instant::now();
        let mut r = Run {
            ua: UserAgent::new(cfg, 42, now),
            now,
            sent: Vec::new(),
            history: Vec::new(),
            events: Vec::new(),
        };
        r.pump();
        // The first event says what registration does (disabled without `register`).
        let first = r.take_events();
        assert!(
            matches!(
                first.as_slice(),
                [] | [Event::Registration(RegState::Disabled)]
            ),
            "{first:?}"
        );
        r
    }
    fn pump(&mut self) {
        while let Some(o) = self.ua.poll_output() {
            match o {
                Output::Send { to, bytes } => {
                    let m = Message::parse(&bytes).expect("we send parseable messages");
                    self.history.push(m.clone());
                    self.sent.push((to, m));
                }
                Output::Event(e) => self.events.push(e),
            }
        }
    }
    fn feed(&mut self, from: Peer, text: &str) {
        let bytes = text.replace('\n', "\r\n").into_bytes();
        self.ua.handle_message(from, &bytes, self.now);
        self.pump();
    }
    fn advance_to(&mut self, t: Instant) {
        self.now = t;
        self.ua.handle_timeout(t);
        self.pump();
    }
    fn take_sent(&mut self) -> Vec<Message> {
        self.sent.drain(..).map(|(_, m)| m).collect()
    }
    fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }
}

fn method(m: &Message) -> String {
    match &m.start {
        StartLine::Request { method, .. } => method.as_str().to_string(),
        StartLine::Response { code, .. } => code.to_string(),
    }
}

/// A response to `req` as a far end writes it.
fn reply(req: &Message, status: &str, to_tag: Option<&str>, extra: &str, body: &str) -> String {
    let mut s = format!("SIP/2.0 {status}\n");
    for h in ["Via", "From", "Call-ID", "CSeq"] {
        s += &format!("{h}: {}\n", req.header(h).unwrap());
    }
    let to = req.header("To").unwrap();
    match to_tag {
        Some(t) if !to.contains(";tag=") => s += &format!("To: {to};tag={t}\n"),
        _ => s += &format!("To: {to}\n"),
    }
    s += extra;
    if body.is_empty() {
        s += "Content-Length: 0\n\n";
    } else {
        s += &format!(
            "Content-Type: application/sdp\nContent-Length: {}\n\n{body}",
            body.replace('\n', "\r\n").len()
        );
    }
    s
}

const AUDIO_ANSWER: &str =
    "v=0\no=far 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 7000 RTP/AVP 8\n";
const T38_SDP: &str = "v=0\no=far 1 2 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=image 7002 udptl t38\na=T38FaxVersion:0\na=T38MaxBitRate:14400\na=T38FaxRateManagement:transferredTCF\na=T38FaxMaxDatagram:300\na=T38FaxUdpEC:t38UDPRedundancy\n";

/// Our call answered with audio: returns the run and the call.
fn answered_call() -> (Run, u64) {
    let mut r = Run::new(cfg());
    let id = r.ua.call("+12125550100", 40000, r.now);
    r.pump();
    let invite = r.take_sent().remove(0);
    r.feed(
        server(),
        &reply(
            &invite,
            "200 OK",
            Some("far1"),
            "Contact: <sip:far@127.0.0.1:5080>\n",
            AUDIO_ANSWER,
        ),
    );
    (r, id)
}

#[test]
fn outgoing_call_answers_407_with_digest_then_reinvites_to_t38() {
    let mut r = Run::new(cfg());
    let id = r.ua.call("+12125550100", 40000, r.now);
    r.pump();
    let sent = r.take_sent();
    assert_eq!(sent.len(), 1);
    let invite = &sent[0];
    assert_eq!(
        invite.start,
        StartLine::Request {
            method: Method::Invite,
            uri: "sip:+12125550100@pbx.test".into()
        }
    );
    assert!(Sdp::parse(&invite.body).unwrap().media[0].is_audio());
    let challenge = "Proxy-Authenticate: Digest realm=\"pbx\", nonce=\"abc\", qop=\"auth\", algorithm=SHA-256\n";
    r.feed(
        server(),
        &reply(
            invite,
            "407 Proxy Authentication Required",
            Some("p1"),
            challenge,
            "",
        ),
    );
    let sent = r.take_sent();
    // §17.1.1.3: the 407 is ACKed on the same branch, then the INVITE goes again, CSeq 2.
    assert_eq!(
        sent.iter().map(method).collect::<Vec<_>>(),
        vec!["ACK", "INVITE"]
    );
    assert_eq!(
        sent[0].top_via().unwrap().branch(),
        invite.top_via().unwrap().branch()
    );
    assert_eq!(
        sent[0].start,
        StartLine::Request {
            method: Method::Ack,
            uri: "sip:+12125550100@pbx.test".into()
        }
    );
    assert_eq!(sent[0].to().unwrap().param("tag"), Some("p1"));
    assert_eq!(sent[0].cseq().unwrap(), (1, Method::Ack));
    let invite2 = &sent[1];
    assert_eq!(invite2.cseq().unwrap().0, 2);
    let auth = invite2.header("Proxy-Authorization").unwrap();
    assert!(
        auth.contains("algorithm=SHA-256")
            && auth.contains("nc=00000001")
            && auth.contains("uri=\"sip:+12125550100@pbx.test\""),
        "{auth}"
    );
    r.feed(
        server(),
        &reply(invite2, "180 Ringing", Some("far1"), "", ""),
    );
    r.feed(
        server(),
        &reply(
            invite2,
            "200 OK",
            Some("far1"),
            "Contact: <sip:far@127.0.0.1:5080>\n",
            AUDIO_ANSWER,
        ),
    );
    let sent = r.take_sent();
    assert_eq!(sent.iter().map(method).collect::<Vec<_>>(), vec!["ACK"]);
    assert_eq!(
        sent[0].start,
        StartLine::Request {
            method: Method::Ack,
            uri: "sip:far@127.0.0.1:5080".into()
        }
    );
    assert_eq!(r.sent.len(), 0);
    let ev = r.take_events();
    assert!(ev.contains(&Event::Ringing { call: id }));
    assert!(ev.contains(&Event::Audio {
        call: id,
        codec: Codec::Pcma,
        remote: "127.0.0.1:7000".parse().unwrap()
    }));
    // Nothing before the re-INVITE wait is over; then our T.38 offer.
    let answered_at = r.now;
    let due = r.ua.next_deadline().unwrap();
    r.advance_to(due);
    let mut reinvite = None;
    for _ in 0..10 {
        if let Some(m) = r.take_sent().into_iter().find(|m| method(m) == "INVITE") {
            reinvite = Some(m);
            break;
        }
        let due = r.ua.next_deadline().unwrap();
        r.advance_to(due);
    }
    let reinvite = reinvite.expect("our re-INVITE");
    assert_eq!(r.now - answered_at, Duration::from_secs(3), "reinvite_wait");
    assert_eq!(reinvite.to().unwrap().param("tag"), Some("far1"));
    let offer = Sdp::parse(&reinvite.body).unwrap();
    assert!(offer.media[0].is_t38());
    assert_eq!(
        offer.media[0].attr("T38FaxRateManagement"),
        Some("transferredTCF")
    );
    r.feed(server(), &reply(&reinvite, "200 OK", None, "", T38_SDP));
    assert_eq!(
        r.take_sent().iter().map(method).collect::<Vec<_>>(),
        vec!["ACK"]
    );
    let ev = r.take_events();
    let Some(Event::T38 { remote, params, .. }) =
        ev.iter().find(|e| matches!(e, Event::T38 { .. }))
    else {
        panic!("no T.38: {ev:?}")
    };
    assert_eq!(*remote, "127.0.0.1:7002".parse::<SocketAddr>().unwrap());
    assert_eq!(params.max_datagram, 300, "the far end's receive limit");
    assert!(matches!(r.ua.call_state(id), Some(CallState::T38 { .. })));
}

#[test]
fn invite_timer_a_retransmits_and_timer_b_ends_the_call() {
    let mut r = Run::new(cfg());
    let id = r.ua.call("+12125550100", 40000, r.now);
    r.pump();
    let t0 = r.now;
    let mut rounds = 0;
    while let Some(d) = r.ua.next_deadline() {
        r.advance_to(d);
        rounds += 1;
        assert!(rounds < 50, "bounded");
        if r.events.iter().any(|e| matches!(e, Event::Ended { .. })) {
            break;
        }
    }
    let invites = r
        .take_sent()
        .iter()
        .filter(|m| method(m) == "INVITE")
        .count();
    assert_eq!(
        invites, 7,
        "the first and six retransmissions (RFC 3261 §17.1.1.2)"
    );
    assert_eq!(r.now - t0, Duration::from_secs(32), "timer B = 64·T1");
    assert!(r.take_events().contains(&Event::Ended {
        call: id,
        cause: Cause::Timeout
    }));
}

#[test]
fn far_end_reinvite_to_t38_is_accepted_before_ours() {
    let (mut r, id) = answered_call();
    r.take_sent();
    r.take_events();
    let their = format!(
        "INVITE sip:fax@{ME} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKre1\nFrom: <sip:+12125550100@pbx.test>;tag=far1\nTo: <sip:fax@pbx.test>;tag={}\nCall-ID: {}\nCSeq: 10 INVITE\nContact: <sip:far@127.0.0.1:5080>\nContent-Type: application/sdp\nContent-Length: {}\n\n{}",
        local_tag(&r),
        call_id(&r),
        T38_SDP.replace('\n', "\r\n").len(),
        T38_SDP
    );
    r.feed(server(), &their);
    let sent = r.take_sent();
    assert_eq!(sent.iter().map(method).collect::<Vec<_>>(), vec!["200"]);
    let answer = Sdp::parse(&sent[0].body).unwrap();
    assert!(answer.media[0].is_t38());
    assert_eq!(answer.media[0].port, 40000);
    assert!(
        r.take_events()
            .iter()
            .any(|e| matches!(e, Event::T38 { call, .. } if *call == id))
    );
    // Their ACK; our own re-INVITE never goes out.
    let ack = format!(
        "ACK sip:fax@{ME} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKack1\nFrom: <sip:+12125550100@pbx.test>;tag=far1\nTo: <sip:fax@pbx.test>;tag={}\nCall-ID: {}\nCSeq: 10 ACK\nContent-Length: 0\n\n",
        local_tag(&r),
        call_id(&r)
    );
    r.feed(server(), &ack);
    r.advance_to(r.now + Duration::from_secs(10));
    assert!(r.take_sent().iter().all(|m| method(m) != "INVITE"));
    assert!(matches!(r.ua.call_state(id), Some(CallState::T38 { .. })));
}

fn local_tag(r: &Run) -> String {
    // Our INVITE was the first message sent; its From tag is ours.
    r.history[0]
        .from()
        .unwrap()
        .param("tag")
        .unwrap()
        .to_string()
}

fn call_id(r: &Run) -> String {
    r.history[0].call_id().unwrap().to_string()
}

fn incoming_invite(branch: &str, sdp: &str) -> String {
    format!(
        "INVITE sip:12125550199@{ME} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch={branch}\nFrom: \"Front Desk\" <sip:+15550001111@pbx.test>;tag=c1\nTo: <sip:12125550199@pbx.test>\nCall-ID: in1@pbx\nCSeq: 5 INVITE\nContact: <sip:pbx@127.0.0.1:5060>\nContent-Type: application/sdp\nContent-Length: {}\n\n{}",
        sdp.replace('\n', "\r\n").len(),
        sdp
    )
}

const AUDIO_OFFER: &str = "v=0\no=pbx 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 8000 RTP/AVP 0 8 101\n";

#[test]
fn incoming_call_is_answered_g711_and_reinvited_to_t38_after_the_ack() {
    let mut r = Run::new(cfg());
    r.feed(server(), &incoming_invite("z9hG4bKin1", AUDIO_OFFER));
    assert_eq!(
        r.take_sent().iter().map(method).collect::<Vec<_>>(),
        vec!["100"]
    );
    let ev = r.take_events();
    let Some(Event::Incoming {
        call,
        did,
        caller,
        caller_name,
    }) = ev.first().cloned()
    else {
        panic!("{ev:?}")
    };
    assert_eq!(
        (did.as_str(), caller.as_str(), caller_name.as_deref()),
        ("12125550199", "+15550001111", Some("Front Desk"))
    );
    // The same INVITE again is a retransmission: the 100 again, no second call.
    r.feed(server(), &incoming_invite("z9hG4bKin1", AUDIO_OFFER));
    assert_eq!(
        r.take_sent().iter().map(method).collect::<Vec<_>>(),
        vec!["100"]
    );
    assert!(r.take_events().is_empty());
    r.ua.answer(call, 40100, r.now);
    r.pump();
    let ok = r.take_sent().remove(0);
    assert_eq!(ok.code(), Some(200));
    let tag = ok.to().unwrap().param("tag").unwrap().to_string();
    let sdp = Sdp::parse(&ok.body).unwrap();
    assert_eq!(
        sdp.media[0].formats,
        vec!["0"],
        "the offer's first G.711 codec only"
    );
    assert!(r.take_events().contains(&Event::Audio {
        call,
        codec: Codec::Pcmu,
        remote: "127.0.0.1:8000".parse().unwrap()
    }));
    // No ACK yet: the 2xx is retransmitted (T1, 2·T1, …), and no re-INVITE goes out.
    r.advance_to(r.now + Duration::from_millis(500));
    assert_eq!(
        r.take_sent().iter().map(method).collect::<Vec<_>>(),
        vec!["200"]
    );
    let ack = format!(
        "ACK sip:fax@{ME} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa2\nFrom: <sip:+15550001111@pbx.test>;tag=c1\nTo: <sip:12125550199@pbx.test>;tag={tag}\nCall-ID: in1@pbx\nCSeq: 5 ACK\nContent-Length: 0\n\n"
    );
    r.feed(server(), &ack);
    let sent = r.take_sent();
    assert_eq!(
        sent.iter().map(method).collect::<Vec<_>>(),
        vec!["INVITE"],
        "our T.38 re-INVITE at once"
    );
    let re = &sent[0];
    assert_eq!(
        re.start,
        StartLine::Request {
            method: Method::Invite,
            uri: "sip:pbx@127.0.0.1:5060".into()
        }
    );
    assert_eq!(re.from().unwrap().param("tag"), Some(tag.as_str()));
    assert_eq!(re.to().unwrap().param("tag"), Some("c1"));
    assert!(Sdp::parse(&re.body).unwrap().media[0].is_t38());
    // The 2xx retransmission stopped with the ACK.
    r.advance_to(r.now + Duration::from_secs(1));
    assert!(r.take_sent().iter().all(|m| method(m) != "200"));
}

#[test]
fn incoming_invite_from_another_network_gets_403() {
    let mut r = Run::new(cfg());
    let stranger = Peer {
        transport: Transport::Udp,
        addr: "127.0.0.2:5060".parse().unwrap(),
    };
    r.feed(stranger, &incoming_invite("z9hG4bKx", AUDIO_OFFER));
    assert_eq!(
        r.take_sent().iter().map(method).collect::<Vec<_>>(),
        vec!["403"]
    );
    assert!(r.take_events().is_empty());
    assert_eq!(r.ua.call_count(), 0);
}

#[test]
fn incoming_cancel_before_answer_gets_200_and_487() {
    let mut r = Run::new(cfg());
    r.feed(server(), &incoming_invite("z9hG4bKc1", AUDIO_OFFER));
    r.take_sent();
    let Some(Event::Incoming { call, .. }) = r.take_events().first().cloned() else {
        panic!()
    };
    r.feed(server(), "CANCEL sip:12125550199@127.0.0.1:5070 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKc1\nFrom: <sip:+15550001111@pbx.test>;tag=c1\nTo: <sip:12125550199@pbx.test>\nCall-ID: in1@pbx\nCSeq: 5 CANCEL\nContent-Length: 0\n\n");
    let sent = r.take_sent();
    assert_eq!(
        sent.iter().map(method).collect::<Vec<_>>(),
        vec!["200", "487"]
    );
    assert_eq!(sent[0].cseq().unwrap().1, Method::Cancel);
    assert_eq!(sent[1].cseq().unwrap().1, Method::Invite);
    assert!(r.take_events().contains(&Event::Ended {
        call,
        cause: Cause::RemoteHangup
    }));
}

#[test]
fn t38_offer_we_cannot_run_gets_488_and_the_call_stays() {
    let (mut r, id) = answered_call();
    r.take_sent();
    let local_tcf = T38_SDP.replace("transferredTCF", "localTCF");
    let their = format!(
        "INVITE sip:fax@{ME} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKre2\nFrom: <sip:+12125550100@pbx.test>;tag=far1\nTo: <sip:fax@pbx.test>;tag={}\nCall-ID: {}\nCSeq: 11 INVITE\nContent-Type: application/sdp\nContent-Length: {}\n\n{}",
        local_tag(&r),
        call_id(&r),
        local_tcf.replace('\n', "\r\n").len(),
        local_tcf
    );
    r.feed(server(), &their);
    assert_eq!(
        r.take_sent().iter().map(method).collect::<Vec<_>>(),
        vec!["488"]
    );
    assert!(matches!(r.ua.call_state(id), Some(CallState::Audio { .. })));
}

#[test]
fn our_reinvite_refused_488_ends_with_no_t38_and_bye() {
    let (mut r, id) = answered_call();
    r.take_sent();
    r.take_events();
    r.advance_to(r.now + Duration::from_secs(3));
    let re = r
        .take_sent()
        .into_iter()
        .find(|m| method(m) == "INVITE")
        .expect("re-INVITE");
    r.feed(
        server(),
        &reply(&re, "488 Not Acceptable Here", None, "", ""),
    );
    let sent = r.take_sent();
    assert_eq!(
        sent.iter().map(method).collect::<Vec<_>>(),
        vec!["ACK", "BYE"]
    );
    let bye = &sent[1];
    r.feed(server(), &reply(bye, "200 OK", None, "", ""));
    let ev = r.take_events();
    let Some(Event::Ended { call, cause }) = ev.last() else {
        panic!("{ev:?}")
    };
    assert_eq!(*call, id);
    assert!(
        matches!(cause, Cause::NoT38(_)) && cause.to_string().contains("does not accept T.38"),
        "{cause}"
    );
}

#[test]
fn glare_491_retries_our_reinvite_later() {
    let (mut r, id) = answered_call();
    r.take_sent();
    r.advance_to(r.now + Duration::from_secs(3));
    let re = r
        .take_sent()
        .into_iter()
        .find(|m| method(m) == "INVITE")
        .unwrap();
    r.feed(server(), &reply(&re, "491 Request Pending", None, "", ""));
    assert!(matches!(
        r.ua.call_state(id),
        Some(CallState::Audio {
            reinvite_at: Some(_)
        })
    ));
    let t = r.now;
    // RFC 3261 §14.1: we own the Call-ID, so 2.1–4 s later.
    let mut again = None;
    for _ in 0..20 {
        let d = r.ua.next_deadline().unwrap();
        r.advance_to(d);
        if let Some(m) = r.take_sent().into_iter().find(|m| method(m) == "INVITE") {
            again = Some(r.now - t);
            assert!(m.cseq().unwrap().0 > re.cseq().unwrap().0);
            break;
        }
    }
    let waited = again.expect("a second re-INVITE");
    assert!(
        waited >= Duration::from_millis(2100) && waited <= Duration::from_secs(4),
        "{waited:?}"
    );
}

#[test]
fn register_refreshes_before_expiry_and_a_second_challenge_is_wrong_credentials() {
    let mut c = cfg();
    c.register = true;
    let mut r = Run::new(c);
    r.advance_to(r.now);
    let reg = r.take_sent().remove(0);
    assert_eq!(method(&reg), "REGISTER");
    assert_eq!(reg.header("Expires"), Some("600"));
    r.feed(
        server(),
        &reply(
            &reg,
            "401 Unauthorized",
            Some("r"),
            "WWW-Authenticate: Digest realm=\"pbx\", nonce=\"n1\", qop=\"auth\"\n",
            "",
        ),
    );
    let reg2 = r.take_sent().remove(0);
    assert!(
        reg2.header("Authorization")
            .unwrap()
            .contains("algorithm=MD5")
    );
    assert_eq!(
        reg2.call_id().unwrap(),
        reg.call_id().unwrap(),
        "one Call-ID for the binding (§10.2)"
    );
    assert!(reg2.cseq().unwrap().0 > reg.cseq().unwrap().0);
    r.feed(
        server(),
        &reply(
            &reg2,
            "200 OK",
            Some("r"),
            &format!("Contact: <sip:fax@{ME}>;expires=120\n"),
            "",
        ),
    );
    let registered_at = r.now;
    assert!(
        r.take_events()
            .iter()
            .any(|e| matches!(e, Event::Registration(RegState::Registered { .. })))
    );
    // 120 s granted: refreshed 32 s before the end.
    let mut refresh = None;
    for _ in 0..20 {
        let d = r.ua.next_deadline().unwrap();
        r.advance_to(d);
        if let Some(m) = r.take_sent().into_iter().find(|m| method(m) == "REGISTER") {
            refresh = Some((r.now - registered_at, m));
            break;
        }
    }
    let (when, reg3) = refresh.expect("a refresh");
    assert_eq!(when, Duration::from_secs(88));
    r.feed(
        server(),
        &reply(
            &reg3,
            "401 Unauthorized",
            Some("r"),
            "WWW-Authenticate: Digest realm=\"pbx\", nonce=\"n2\"\n",
            "",
        ),
    );
    let reg4 = r.take_sent().remove(0);
    r.feed(
        server(),
        &reply(
            &reg4,
            "401 Unauthorized",
            Some("r"),
            "WWW-Authenticate: Digest realm=\"pbx\", nonce=\"n3\"\n",
            "",
        ),
    );
    assert!(
        r.take_sent().is_empty(),
        "no third try with the same password"
    );
    assert!(r.take_events().iter().any(|e| matches!(
        e,
        Event::Registration(RegState::Failed {
            error: RegisterError::AuthRejected(_),
            ..
        })
    )));
}

#[test]
fn bye_and_options_outside_any_dialog() {
    let mut r = Run::new(cfg());
    r.feed(server(), "BYE sip:fax@127.0.0.1:5070 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKb1\nFrom: <sip:a@pbx.test>;tag=a\nTo: <sip:fax@pbx.test>;tag=nope\nCall-ID: nope\nCSeq: 1 BYE\nContent-Length: 0\n\n");
    r.feed(server(), "OPTIONS sip:fax@127.0.0.1:5070 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKo1\nFrom: <sip:a@pbx.test>;tag=a\nTo: <sip:fax@pbx.test>\nCall-ID: o1\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n");
    r.feed(server(), "MESSAGE sip:fax@127.0.0.1:5070 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKm1\nFrom: <sip:a@pbx.test>;tag=a\nTo: <sip:fax@pbx.test>\nCall-ID: m1\nCSeq: 1 MESSAGE\nContent-Length: 0\n\n");
    let sent = r.take_sent();
    assert_eq!(
        sent.iter().map(method).collect::<Vec<_>>(),
        vec!["481", "200", "405"]
    );
    assert!(sent[1].header("Allow").unwrap().contains("INVITE"));
}

#[test]
fn far_end_bye_ends_the_call_with_remote_hangup() {
    let (mut r, id) = answered_call();
    r.take_events();
    let bye = format!(
        "BYE sip:fax@{ME} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKbye\nFrom: <sip:+12125550100@pbx.test>;tag=far1\nTo: <sip:fax@pbx.test>;tag={}\nCall-ID: {}\nCSeq: 20 BYE\nContent-Length: 0\n\n",
        local_tag(&r),
        call_id(&r)
    );
    r.feed(server(), &bye);
    assert_eq!(r.take_sent().last().map(method).as_deref(), Some("200"));
    assert_eq!(
        r.take_events(),
        vec![Event::Ended {
            call: id,
            cause: Cause::RemoteHangup
        }]
    );
    assert_eq!(r.ua.call_count(), 0);
}

#[test]
fn calls_past_the_line_limit_end_at_once() {
    let mut r = Run::new(cfg());
    r.ua.call("+12125550100", 40000, r.now);
    r.ua.call("+12125550101", 40002, r.now);
    let third = r.ua.call("+12125550102", 40004, r.now);
    r.pump();
    assert_eq!(
        r.take_sent()
            .iter()
            .filter(|m| method(m) == "INVITE")
            .count(),
        2
    );
    let ev = r.take_events();
    assert!(
        matches!(ev.as_slice(), [Event::Ended { call, cause: Cause::Local(_) }] if *call == third),
        "{ev:?}"
    );
    // And an incoming call then gets 486.
    r.feed(server(), &incoming_invite("z9hG4bKbusy", AUDIO_OFFER));
    assert_eq!(
        r.take_sent().iter().map(method).collect::<Vec<_>>(),
        vec!["486"]
    );
}

#[test]
fn unregister_sends_expires_zero_and_stops_refreshing() {
    let mut c = cfg();
    c.register = true;
    let mut r = Run::new(c);
    r.advance_to(r.now);
    let reg = r.take_sent().remove(0);
    r.feed(
        server(),
        &reply(&reg, "200 OK", Some("r"), "Expires: 300\n", ""),
    );
    r.take_events();
    r.ua.unregister(r.now);
    r.pump();
    let bye = r.take_sent().remove(0);
    assert_eq!(method(&bye), "REGISTER");
    assert_eq!(bye.header("Expires"), Some("0"));
    assert!(r.ua.registering());
    // A challenge on the removal is answered like any other.
    r.feed(
        server(),
        &reply(
            &bye,
            "401 Unauthorized",
            Some("r"),
            "WWW-Authenticate: Digest realm=\"pbx\", nonce=\"u\"\n",
            "",
        ),
    );
    let bye2 = r.take_sent().remove(0);
    assert_eq!(bye2.header("Expires"), Some("0"));
    assert!(bye2.header("Authorization").is_some());
    r.feed(server(), &reply(&bye2, "200 OK", Some("r"), "", ""));
    assert_eq!(
        r.take_events().last(),
        Some(&Event::Registration(RegState::Disabled))
    );
    assert!(!r.ua.registering());
    // Nothing more is due once the transactions' wait timers are over: no refresh.
    for _ in 0..10 {
        match r.ua.next_deadline() {
            Some(d) => r.advance_to(d),
            None => break,
        }
    }
    assert_eq!(r.ua.next_deadline(), None);
    assert!(r.take_sent().is_empty());
}

#[test]
fn incoming_invite_offering_t38_is_answered_with_t38_at_once() {
    let mut r = Run::new(cfg());
    let offer = "v=0\no=gw 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 8000 RTP/AVP 0\nm=image 8002 udptl t38\na=T38FaxVersion:0\na=T38MaxBitRate:9600\na=T38FaxRateManagement:transferredTCF\na=T38FaxMaxDatagram:200\n";
    r.feed(server(), &incoming_invite("z9hG4bKd1", offer));
    r.take_sent();
    let Some(Event::Incoming { call, .. }) = r.take_events().first().cloned() else {
        panic!()
    };
    r.ua.answer(call, 40200, r.now);
    r.pump();
    let ok = r.take_sent().remove(0);
    let sdp = Sdp::parse(&ok.body).unwrap();
    // RFC 3264 §6: both offered streams answered in order, the audio one refused.
    assert_eq!(sdp.media.len(), 2);
    assert!(sdp.media[0].is_audio() && sdp.media[0].port == 0);
    assert!(sdp.media[1].is_t38() && sdp.media[1].port == 40200);
    let ev = r.take_events();
    let Some(Event::T38 { remote, params, .. }) = ev.first() else {
        panic!("{ev:?}")
    };
    assert_eq!(*remote, "127.0.0.1:8002".parse::<SocketAddr>().unwrap());
    assert_eq!((params.max_bitrate, params.max_datagram), (9600, 200));
    let tag = ok.to().unwrap().param("tag").unwrap().to_string();
    r.feed(server(), &format!("ACK sip:fax@{ME} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa9\nFrom: <sip:+15550001111@pbx.test>;tag=c1\nTo: <sip:12125550199@pbx.test>;tag={tag}\nCall-ID: in1@pbx\nCSeq: 5 ACK\nContent-Length: 0\n\n"));
    assert!(r.take_sent().is_empty(), "no re-INVITE: T.38 is already up");
    assert!(matches!(r.ua.call_state(call), Some(CallState::T38 { .. })));
}
