//! Class 2.0 (ITU-T T.32) exchanges as byte transcripts (host ↔ modem) through the pure driver
//! on a fake clock: the normal 2-page send and receive, hang-up statuses and their causes, no
//! carrier, busy, time-outs, flow control, and a modem that lies about ECM. The modem side is
//! what T.32 §8.3 has a DCE send (and, for `+FHNG`/`+FPTS`, what Class 2 (EIA-592) modems send).

use std::time::{Duration, Instant};

use faxgate::fax::modem::at::{AtCommand, FinalResult};
use faxgate::fax::modem::class1::{LineCause, OpFailure};
use faxgate::fax::modem::class2::{
    self, Class2Driver, Event, HangupCode, HangupMeaning, Op, PageResponse, PageStatus, PostPage,
    Report, SessionParams,
};
use faxgate::fax::modem::dle::{DLE, ETX};
use faxgate::fax::modem::profile::FlowControl;
use faxgate::fax::t30::{Cause, Coding};

/// A transcript runner: the driver, a fake clock, and what it wrote.
struct T {
    d: Class2Driver,
    now: Instant,
}

impl T {
    fn new() -> T {
        T {
            d: Class2Driver::new(false),
            now: Instant::now(),
        }
    }
    fn op(&mut self, op: Op) {
        self.d.start(op, self.now).expect("op starts");
    }
    /// The host must have written exactly `bytes`.
    fn host(&mut self, bytes: &[u8]) {
        let out = self.d.pending_output().to_vec();
        assert_eq!(out, bytes, "host wrote {:?}", String::from_utf8_lossy(&out));
        let n = out.len();
        self.d.consume_output(n);
    }
    fn modem(&mut self, bytes: &[u8]) {
        self.d.on_input(bytes, self.now);
    }
    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.d.poll_event()).collect()
    }
    /// The events must be exactly `evs`, the last one ending the op.
    fn expect(&mut self, evs: &[Event]) {
        assert_eq!(self.events(), evs);
        assert!(self.d.is_idle(), "driver should be idle");
    }
    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.d.on_timeout(self.now);
    }
}

fn params(s: &str) -> SessionParams {
    SessionParams::parse(s).unwrap()
}

/// Page data whose bytes include DLE (doubled on the wire) and the flow-control characters
/// (data, not flow control, in the host's direction).
fn page(n: u8) -> Vec<u8> {
    vec![0x00, n, DLE, 0x11, 0x13, DLE, DLE, 0x80, 0x01]
}

fn stuffed(data: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for &b in data {
        v.push(b);
        if b == DLE {
            v.push(DLE);
        }
    }
    v.extend_from_slice(&[DLE, ETX]);
    v
}

#[test]
fn setup_commands_are_exact() {
    let texts = |v: Vec<AtCommand>| v.into_iter().map(|c| c.text).collect::<Vec<_>>();
    assert_eq!(
        texts(class2::setup_commands(FlowControl::Hardware)),
        [
            "AT+FLO=2",
            "AT+FCR=1",
            "AT+FBO=0",
            "AT+FNR=1,1,1,0",
            "AT+FIE=0"
        ]
    );
    assert_eq!(
        texts(class2::setup_commands(FlowControl::Software))[0],
        "AT+FLO=1"
    );
    // Only T.30's ID characters go into +FLI (a quote would end the string early).
    let caps = SessionParams::ours(14400, true, Coding::Mmr);
    assert_eq!(
        texts(class2::station_commands("+1 555\"0100;ATH", &caps)),
        ["AT+FLI=\"+1 5550100\"", "AT+FCC=1,5,0,2,3,1,0,0"]
    );
    let mut t = T::new();
    t.op(Op::Command(AtCommand::new("AT+FCLASS=2.0").unwrap()));
    t.host(b"AT+FCLASS=2.0\r");
    t.modem(b"\r\nOK\r\n");
    t.expect(&[Event::CommandDone {
        result: FinalResult::Ok,
        info: vec![],
    }]);
}

#[test]
fn normal_two_page_send() {
    let mut t = T::new();
    t.op(Op::Dial {
        prefix: "ATDT".into(),
        number: "5550002".into(),
        timeout: Duration::from_secs(60),
    });
    t.host(b"ATDT5550002\r");
    t.modem(b"\r\n+FCO\r\n\r\n+FCI:\"+1 555 0002\"\r\n\r\n+FIS:1,5,0,2,1,1,0,0\r\n\r\nOK\r\n");
    t.expect(&[
        Event::Report(Report::FaxConnection),
        Event::Report(Report::CalledId("+1 555 0002".into())),
        Event::Report(Report::RemoteCapabilities(params("1,5,0,2,1,1,0,0"))),
        Event::Connected,
    ]);
    for (n, post, answer, want_hangup) in [
        (1u8, PostPage::Mps, &b"\r\n+FPS:1\r\n\r\nOK\r\n"[..], None),
        (
            2,
            PostPage::Eop,
            &b"\r\n+FPS:1\r\n\r\n+FHS:00\r\n\r\nOK\r\n"[..],
            Some(HangupCode(0)),
        ),
    ] {
        t.op(Op::SendPage);
        t.host(b"AT+FDT\r");
        t.modem(b"\r\n+FCS:1,5,0,2,1,0,0,0\r\n\r\nCONNECT\r\n");
        t.expect(&[
            Event::Report(Report::Session(params("1,5,0,2,1,0,0,0"))),
            Event::ReadyForData,
        ]);
        t.op(Op::PageData(page(n)));
        t.host(&stuffed(&page(n)));
        t.modem(b"\r\nOK\r\n");
        t.expect(&[Event::PageSent]);
        t.op(Op::EndPage(post));
        t.host(format!("AT+FET={}\r", post.value()).as_bytes());
        t.modem(answer);
        let mut want = vec![Event::Report(Report::PageStatus(PageStatus {
            response: PageResponse::Mcf,
            lines: None,
            bad_lines: None,
        }))];
        if let Some(c) = want_hangup {
            want.push(Event::Report(Report::Hangup(c)));
        }
        want.push(Event::PageAnswered {
            response: PageResponse::Mcf,
            hangup: want_hangup,
        });
        t.expect(&want);
    }
    assert_eq!(HangupCode(0).meaning(), HangupMeaning::Normal);
}

#[test]
fn normal_two_page_receive() {
    let mut t = T::new();
    t.modem(b"\r\nRING\r\n");
    assert_eq!(t.events(), [Event::Ring]);
    t.op(Op::Answer);
    t.host(b"ATA\r");
    t.modem(b"\r\n+FCO\r\n\r\n+FTI:\"+1 555 0001\"\r\n\r\n+FCS:1,3,0,2,0,0,0,0\r\n\r\nOK\r\n");
    t.expect(&[
        Event::Report(Report::FaxConnection),
        Event::Report(Report::CallingId("+1 555 0001".into())),
        Event::Report(Report::Session(params("1,3,0,2,0,0,0,0"))),
        Event::Connected,
    ]);
    for (n, fet, post) in [(1u8, b"0", PostPage::Mps), (2, b"2", PostPage::Eop)] {
        t.op(Op::ReceivePage);
        t.host(b"AT+FDR\r");
        t.modem(b"\r\nCONNECT\r\n");
        // T.32 §8.3.4: the host answers CONNECT with <DC2>.
        t.host(&[0x12]);
        // Page data may hold DLE (doubled) and DC1/DC3 (data here, not flow control); it
        // arrives in pieces, one cut between a DLE and its partner.
        let wire = stuffed(&page(n));
        let (a, b) = wire.split_at(3);
        t.modem(a);
        t.modem(b);
        // T.32 values are hexadecimal: 44C lines = 1100.
        let mut tail = b"\r\n+FPS:1,44C,0,0,0\r\n\r\n+FET:".to_vec();
        tail.extend_from_slice(fet);
        tail.extend_from_slice(b"\r\n\r\nOK\r\n");
        t.modem(&tail);
        let evs = t.events();
        let data: Vec<u8> = evs
            .iter()
            .filter_map(|e| match e {
                Event::Data(d) => Some(d.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(data, page(n));
        let status = PageStatus {
            response: PageResponse::Mcf,
            lines: Some(1100),
            bad_lines: Some(0),
        };
        let rest: Vec<Event> = evs
            .into_iter()
            .filter(|e| !matches!(e, Event::Data(_)))
            .collect();
        assert_eq!(
            rest,
            [
                Event::Report(Report::PageStatus(status)),
                Event::Report(Report::PostPage(post)),
                Event::PageReceived {
                    status: Some(status),
                    post: Some(post),
                    hangup: None,
                },
            ]
        );
        assert!(t.d.is_idle());
    }
    // After EOP: +FDR lets the modem send MCF and take DCN.
    t.op(Op::ReceivePage);
    t.host(b"AT+FDR\r");
    t.modem(b"\r\n+FHS:00\r\n\r\nOK\r\n");
    t.expect(&[
        Event::Report(Report::Hangup(HangupCode(0))),
        Event::Ended(HangupCode(0)),
    ]);
}

#[test]
fn hangup_statuses_end_ops_with_their_causes() {
    // (op, host bytes, modem hang-up line, code, meaning)
    let cases: &[(Op, &[u8], &[u8], u8, HangupMeaning)] = &[
        (
            Op::Dial {
                prefix: "ATDT".into(),
                number: "5550002".into(),
                timeout: Duration::from_secs(60),
            },
            b"ATDT5550002\r",
            b"+FHS:11",
            0x11,
            HangupMeaning::Cause(Cause::T1Expired),
        ),
        (
            Op::Dial {
                prefix: "ATDT".into(),
                number: "5550002".into(),
                timeout: Duration::from_secs(60),
            },
            b"ATDT5550002\r",
            b"+FHS:04",
            0x04,
            HangupMeaning::Line(LineCause::NoAnswer),
        ),
        (
            Op::SendPage,
            b"AT+FDT\r",
            b"+FHS:25",
            0x25,
            HangupMeaning::Cause(Cause::NoResponse),
        ),
        (
            Op::SendPage,
            b"AT+FDT\r",
            b"+FHS:27",
            0x27,
            HangupMeaning::Cause(Cause::TrainingFailed),
        ),
        (
            Op::SendPage,
            b"AT+FDT\r",
            b"+FHS:21",
            0x21,
            HangupMeaning::Cause(Cause::Incompatible),
        ),
        (
            Op::EndPage(PostPage::Mps),
            b"AT+FET=0\r",
            b"+FHS:52",
            0x52,
            HangupMeaning::Cause(Cause::NoResponse),
        ),
        // A Class 2 modem: +FHNG with a decimal code (100 = T.32's A0).
        (
            Op::ReceivePage,
            b"AT+FDR\r",
            b"+FHNG:100",
            0xA0,
            HangupMeaning::Cause(Cause::ProtocolError),
        ),
        (
            Op::ReceivePage,
            b"AT+FDR\r",
            b"+FHS:73",
            0x73,
            HangupMeaning::Cause(Cause::T2Expired),
        ),
    ];
    for (op, host, line, code, meaning) in cases {
        let mut t = T::new();
        t.op(op.clone());
        t.host(host);
        let mut wire = b"\r\n".to_vec();
        wire.extend_from_slice(line);
        wire.extend_from_slice(b"\r\n\r\nOK\r\n");
        t.modem(&wire);
        // A hang-up with no other answer ends any op, +FET's included (no +FPS: the modem
        // gave up on the post-page exchange).
        let code = HangupCode(*code);
        t.expect(&[Event::Report(Report::Hangup(code)), Event::Ended(code)]);
        assert_eq!(code.meaning(), *meaning, "{}", code.text());
    }
}

#[test]
fn no_carrier_busy_and_other_dial_verdicts() {
    for (reply, want) in [
        (&b"\r\nNO CARRIER\r\n"[..], LineCause::NoCarrier),
        (b"\r\nBUSY\r\n", LineCause::Busy),
        (b"\r\nNO DIALTONE\r\n", LineCause::NoDialtone),
        (b"\r\nNO ANSWER\r\n", LineCause::NoAnswer),
        (b"\r\nERROR\r\n", LineCause::ModemError),
        // OK without +FCO: the line answered, but not as a fax (HylaFAX sees this too).
        (b"\r\nOK\r\n", LineCause::NoCarrier),
        // CONNECT: a data modem answered.
        (b"\r\nCONNECT 2400\r\n", LineCause::NoCarrier),
    ] {
        let mut t = T::new();
        t.op(Op::Dial {
            prefix: "ATDT".into(),
            number: "5550002".into(),
            timeout: Duration::from_secs(60),
        });
        t.host(b"ATDT5550002\r");
        t.modem(reply);
        t.expect(&[Event::CallFailed(want)]);
    }
    // The carrier drops in the middle of a page being received.
    let mut t = T::new();
    t.op(Op::ReceivePage);
    t.host(b"AT+FDR\r");
    t.modem(b"\r\nNO CARRIER\r\n");
    t.expect(&[Event::Failed(OpFailure::NoCarrier)]);
}

#[test]
fn dial_timeout_aborts_with_a_character() {
    let mut t = T::new();
    t.op(Op::Dial {
        prefix: "ATDT".into(),
        number: "5550002".into(),
        timeout: Duration::from_secs(60),
    });
    t.host(b"ATDT5550002\r");
    // The wait covers the dial timeout plus phase B (T1).
    t.advance(Duration::from_secs(60) + class2::PHASE_B_WAIT - Duration::from_millis(1));
    assert!(t.events().is_empty());
    t.advance(Duration::from_millis(1));
    t.host(&[0x18]);
    t.modem(b"\r\nNO CARRIER\r\n");
    t.expect(&[Event::CallFailed(LineCause::Timeout)]);
    // A bad dial string is refused before anything is written.
    let mut t = T::new();
    assert!(
        t.d.start(
            Op::Dial {
                prefix: "ATDT".into(),
                number: "555;ATH".into(),
                timeout: Duration::from_secs(60),
            },
            t.now,
        )
        .is_err()
    );
    t.host(b"");
}

#[test]
fn xon_xoff_pace_page_data() {
    let mut t = T::new();
    t.op(Op::SendPage);
    t.host(b"AT+FDT\r");
    t.modem(b"\r\nCONNECT\r\n");
    t.expect(&[Event::ReadyForData]);
    t.op(Op::PageData(vec![1, 2, 3, 4]));
    // XOFF before the host wrote anything: nothing goes until XON.
    t.modem(&[0x13]);
    t.host(b"");
    t.modem(&[0x11]);
    t.host(&[1, 2, 3, 4, DLE, ETX]);
    t.modem(b"\r\nOK\r\n");
    t.expect(&[Event::PageSent]);

    // Class 2 quirk: data waits for the modem's XON after CONNECT.
    let mut t = T {
        d: Class2Driver::new(true),
        now: Instant::now(),
    };
    t.op(Op::SendPage);
    t.host(b"AT+FDT\r");
    t.modem(b"\r\nCONNECT\r\n");
    t.expect(&[Event::ReadyForData]);
    t.op(Op::PageData(vec![9]));
    t.host(b"");
    t.modem(&[0x11]);
    t.host(&[9, DLE, ETX]);
}

#[test]
fn post_page_answers_without_fps() {
    // T.32 §8.3.3.6: OK for a good page, ERROR for a bad one, when the modem gives no +FPS.
    for (reply, want) in [
        (&b"\r\nOK\r\n"[..], PageResponse::Mcf),
        (b"\r\nERROR\r\n", PageResponse::Rtn),
        (b"\r\n+FPS:3\r\n\r\nOK\r\n", PageResponse::Rtp),
    ] {
        let mut t = T::new();
        t.op(Op::EndPage(PostPage::Eom));
        t.host(b"AT+FET=1\r");
        t.modem(reply);
        let evs = t.events();
        assert_eq!(
            evs.last(),
            Some(&Event::PageAnswered {
                response: want,
                hangup: None
            })
        );
    }
}

/// A modem that lies about ECM: `+FCS` says EC=1, and the receiver then answers the page RTN
/// (which Annex A has no place for). The driver reports both as they are; what a robust host
/// does with them is fixed by the coding it asks for: the scan-line fill of ST stays in the
/// page data whatever EC says, so a page the modem sends without ECM is still within T.30's
/// minimum line time. (`tests/modem_port.rs`-style pty tests run the whole session.)
#[test]
fn a_modem_that_lies_about_ecm() {
    let mut t = T::new();
    t.op(Op::SendPage);
    t.host(b"AT+FDT\r");
    t.modem(b"\r\n+FCS:0,3,0,2,0,1,0,5\r\n\r\nCONNECT\r\n");
    let claimed = params("0,3,0,2,0,1,0,5");
    t.expect(&[Event::Report(Report::Session(claimed)), Event::ReadyForData]);
    assert!(claimed.ecm());
    let coding = claimed.page_coding().unwrap();
    // ST=5: 20 ms per line at 9600 bit/s = 192 bits, kept although EC says ECM.
    assert_eq!(coding.min_line_bits, 192);
    t.op(Op::PageData(page(1)));
    t.host(&stuffed(&page(1)));
    t.modem(b"\r\nOK\r\n");
    t.expect(&[Event::PageSent]);
    t.op(Op::EndPage(PostPage::Eop));
    t.host(b"AT+FET=2\r");
    t.modem(b"\r\n+FPS:2\r\n\r\nOK\r\n");
    let evs = t.events();
    assert_eq!(
        evs.last(),
        Some(&Event::PageAnswered {
            response: PageResponse::Rtn,
            hangup: None
        })
    );
    // And the other lie: MMR (T.6) without ECM is refused before any data is coded.
    assert!(params("0,3,0,2,3,0,0,0").page_coding().is_err());
}

#[test]
fn receive_timeout_cancels_and_too_much_garbage_is_bounded() {
    let mut t = T::new();
    t.op(Op::ReceivePage);
    t.host(b"AT+FDR\r");
    t.modem(b"\r\nCONNECT\r\n");
    t.host(&[0x12]);
    t.modem(&[0xAA; 100]);
    t.advance(Duration::from_secs(30 * 60));
    t.host(&[0x18]);
    t.modem(b"\r\n+FHS:02\r\n\r\nOK\r\n");
    let evs = t.events();
    assert_eq!(evs.last(), Some(&Event::Failed(OpFailure::Timeout)));
    assert!(t.d.is_idle());

    // Any bytes at all: the driver never panics and ends in a state the host can leave.
    let mut seed = 0x1234_5678u32;
    for _ in 0..200 {
        let mut t = T::new();
        t.op(Op::ReceivePage);
        let _ = t.d.pending_output().len();
        let mut junk = Vec::new();
        for _ in 0..64 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            junk.push((seed >> 16) as u8);
        }
        t.modem(&junk);
        let _ = t.events();
        t.advance(Duration::from_secs(3600));
        t.advance(Duration::from_secs(10));
        let _ = t.events();
        assert!(t.d.is_idle());
    }
}
