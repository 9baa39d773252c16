//! Class 2.0 (ITU-T T.32) exchanges as byte transcripts (host ↔ modem) through the pure driver
//! on a fake clock: the normal 2-page send and receive, hang-up statuses and their causes, no
//! carrier, busy, time-outs, flow control, a modem that lies about ECM, and one that reports
//! `+FCS` only at connect, never, or again between pages. The modem side is
//! what T.32 §8.3 has a DCE send (and, for `+FHNG`/`+FPTS`, what Class 2 (EIA-592) modems send).

use std::time::{Duration, Instant};

use faxgate::fax::modem::at::{AtCommand, FinalResult};
use faxgate::fax::modem::class1::{LineCause, OpFailure};
use faxgate::fax::modem::class2::{
    self, Class2Driver, Event, HangupCode, HangupMeaning, Op, PageResponse, PageStatus, PostPage,
    Report, SessionParams, SessionSource,
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
    type Case = (Op, &'static [u8], &'static [u8], u8, HangupMeaning);
    let cases: &[Case] = &[
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

// ---------------------------------------------------------------------------------------------
// The session parameters a page is coded with when the modem does not report `+FCS` for it
// (T.32 §8.5.1: `+FCS` holds the DCS in force; the DCE makes it from `+FIS`, which follows
// `+FCC`, and the remote's DIS), and `+FCS` reported again between pages.

impl T {
    /// `+FCC=caps` (or any command) answered with `reply`.
    fn command(&mut self, text: &str, reply: &[u8]) {
        self.op(Op::Command(AtCommand::new(text).unwrap()));
        self.host(format!("{text}\r").as_bytes());
        self.modem(reply);
        self.events();
        assert!(self.d.is_idle());
    }
    /// Dial; the modem connects with `reports` (each a line) and `OK`.
    fn connect(&mut self, reports: &[&str]) {
        self.op(Op::Dial {
            prefix: "ATDT".into(),
            number: "5550002".into(),
            timeout: Duration::from_secs(60),
        });
        self.host(b"ATDT5550002\r");
        for r in reports {
            self.modem(format!("\r\n{r}\r\n").as_bytes());
        }
        self.modem(b"\r\nOK\r\n");
        assert_eq!(self.events().last(), Some(&Event::Connected));
        assert!(self.d.is_idle());
    }
    /// `+FDT` answered with `reports` and `CONNECT`: the driver is ready for data.
    fn fdt(&mut self, reports: &[&str]) {
        self.op(Op::SendPage);
        self.host(b"AT+FDT\r");
        for r in reports {
            self.modem(format!("\r\n{r}\r\n").as_bytes());
        }
        self.modem(b"\r\nCONNECT\r\n");
        assert_eq!(self.events().last(), Some(&Event::ReadyForData));
    }
    /// The page's data and `+FET=post`, answered with `answer`.
    fn page_and_fet(&mut self, n: u8, post: PostPage, answer: &[u8]) -> Vec<Event> {
        self.op(Op::PageData(page(n)));
        self.host(&stuffed(&page(n)));
        self.modem(b"\r\nOK\r\n");
        self.expect(&[Event::PageSent]);
        self.op(Op::EndPage(post));
        self.host(format!("AT+FET={}\r", post.value()).as_bytes());
        self.modem(answer);
        let evs = self.events();
        assert!(self.d.is_idle());
        evs
    }
}

#[test]
fn no_fcs_after_fdt_codes_the_page_with_what_the_call_knows() {
    // A modem that never reports +FCS: the DCS it makes from our +FCC and the remote's DIS.
    let mut t = T::new();
    assert_eq!(t.d.page_session(), None, "nothing known yet");
    t.command("AT+FCC=1,5,0,2,3,1,0,0", b"\r\nOK\r\n");
    assert_eq!(
        t.d.page_session(),
        Some((params("1,5,0,2,3,1,0,0"), SessionSource::Assumed))
    );
    // The remote: fine, 9600, MR, no ECM, 10/5 ms scan time.
    t.connect(&["+FCO", "+FCI:\"+1 555 0002\"", "+FIS:1,3,0,2,1,0,0,2"]);
    t.fdt(&[]);
    // MMR falls with ECM; the remote's rate, resolution and scan time rule.
    let (p, source) = t.d.page_session().unwrap();
    assert_eq!(
        (p, source),
        (params("1,3,0,2,1,0,0,2"), SessionSource::Assumed)
    );
    let coding = p.page_coding().unwrap();
    assert_eq!(
        (coding.coding, coding.k, coding.min_line_bits, coding.ecm),
        (Coding::Mr, 4, 48, false)
    );
    let evs = t.page_and_fet(1, PostPage::Eop, b"\r\n+FPS:1\r\n\r\n+FHS:00\r\n\r\nOK\r\n");
    assert_eq!(
        evs.last(),
        Some(&Event::PageAnswered {
            response: PageResponse::Mcf,
            hangup: Some(HangupCode(0))
        })
    );

    // A remote that offers less than we do in every field, MMR and ECM included.
    let mut t = T::new();
    t.command("AT+FCC=1,5,0,2,3,1,0,0", b"\r\nOK\r\n");
    t.connect(&["+FCO", "+FIS:3,1,0,0,3,2,0,7"]);
    t.fdt(&[]);
    assert_eq!(
        t.d.page_session(),
        Some((params("1,1,0,0,3,1,0,7"), SessionSource::Assumed))
    );

    // A +FCC the modem refused is not ours; without a DIS, our own +FCC (one resolution).
    let mut t = T::new();
    t.command("AT+FCC=1,5,0,2,3,1,0,0", b"\r\nOK\r\n");
    t.command("AT+FCC=3,3,0,2,0,0,0,0", b"\r\nERROR\r\n");
    t.command("AT+FIS=3,3,0,2,0,0,0,0", b"\r\nOK\r\n");
    t.connect(&["+FCO"]);
    t.fdt(&[]);
    assert_eq!(
        t.d.page_session(),
        Some((params("2,3,0,2,0,0,0,0"), SessionSource::Assumed))
    );

    // A modem that reports +FCS only at connect: that one, for every page.
    let mut t = T::new();
    t.command("AT+FCC=1,5,0,2,3,1,0,0", b"\r\nOK\r\n");
    t.connect(&["+FCO", "+FIS:1,5,0,2,1,0,0,0", "+FCS:0,3,0,2,0,0,0,0"]);
    for (n, post) in [(1, PostPage::Mps), (2, PostPage::Eop)] {
        t.fdt(&[]);
        assert_eq!(
            t.d.page_session(),
            Some((params("0,3,0,2,0,0,0,0"), SessionSource::Earlier))
        );
        t.page_and_fet(n, post, b"\r\n+FPS:1\r\n\r\nOK\r\n");
    }
}

#[test]
fn fcs_reported_again_between_pages_takes_over() {
    let mut t = T::new();
    t.command("AT+FCC=1,5,0,2,3,1,0,0", b"\r\nOK\r\n");
    t.connect(&["+FCO", "+FIS:1,5,0,2,1,0,0,0"]);
    // Page 1 at 14 400 MR; the receiver answers RTN.
    t.fdt(&["+FCS:1,5,0,2,1,0,0,0"]);
    assert_eq!(
        t.d.page_session(),
        Some((params("1,5,0,2,1,0,0,0"), SessionSource::Reported))
    );
    let evs = t.page_and_fet(1, PostPage::Mps, b"\r\n+FPS:2\r\n\r\nOK\r\n");
    assert_eq!(
        evs.last(),
        Some(&Event::PageAnswered {
            response: PageResponse::Rtn,
            hangup: None
        })
    );
    // The modem retrains lower for the page sent again and says so with +FCS.
    t.fdt(&["+FCS:1,3,0,2,0,0,0,0"]);
    assert_eq!(
        t.d.page_session(),
        Some((params("1,3,0,2,0,0,0,0"), SessionSource::Reported))
    );
    // RTP, with the new DCS reported in the post-page exchange…
    let evs = t.page_and_fet(
        1,
        PostPage::Mps,
        b"\r\n+FCS:0,1,0,2,0,0,0,0\r\n\r\n+FPS:3\r\n\r\nOK\r\n",
    );
    assert_eq!(
        evs,
        [
            Event::Report(Report::Session(params("0,1,0,2,0,0,0,0"))),
            Event::Report(Report::PageStatus(PageStatus {
                response: PageResponse::Rtp,
                lines: None,
                bad_lines: None
            })),
            Event::PageAnswered {
                response: PageResponse::Rtp,
                hangup: None
            }
        ]
    );
    // …which is in force for the next +FDT that reports none.
    t.fdt(&[]);
    assert_eq!(
        t.d.page_session(),
        Some((params("0,1,0,2,0,0,0,0"), SessionSource::Earlier))
    );
    t.page_and_fet(2, PostPage::Eop, b"\r\n+FPS:1\r\n\r\n+FHS:00\r\n\r\nOK\r\n");
    // A new call forgets the last one's session (T.32 resets +FCS at a session's end); our
    // +FCC stays.
    t.connect(&["+FCO", "+FIS:1,5,0,2,1,0,0,0"]);
    t.fdt(&[]);
    assert_eq!(
        t.d.page_session(),
        Some((params("1,5,0,2,1,0,0,0"), SessionSource::Assumed))
    );
}

// ---------------------------------------------------------------------------------------------
// Whole Class 2.0 calls through the I/O shell (`port::Modem` + `class2_session`) on a pty, with
// a scripted T.32 modem on the master side (as `tests/modem_port.rs` does for Class 1). Real
// time, no timed assertions: the script answers each command at once.

mod pty_calls {
    use std::io::{Read, Write};
    use std::path::Path;
    use std::thread::JoinHandle;
    use std::time::Duration;

    use faxgate::fax::modem::class2::SessionParams;
    use faxgate::fax::modem::port::Modem;
    use faxgate::fax::modem::{Profile, session};
    use faxgate::fax::t30::page::PageSource;
    use faxgate::fax::t30::pages::{PagesSink, PagesSource};
    use faxgate::fax::t30::{Cause, Engine, EngineConfig, PageOutcome};
    use faxgate::image::{Page, Resolution};
    use serialport::{SerialPort, TTYPort};

    const DLE: u8 = 0x10;
    const ETX: u8 = 0x03;

    /// What the scripted modem does with one command line.
    enum Act {
        /// Reply with these bytes.
        Reply(Vec<u8>),
        /// Reply, then a moment later send the second bytes unasked (a RING): they wait in
        /// the pty for the host's next read whenever that comes.
        ReplyThenLater(Vec<u8>, Vec<u8>),
        /// Reply (ending in CONNECT), take DLE-stuffed page data to <DLE><ETX>, then reply
        /// with the second bytes.
        TakePage(Vec<u8>, Vec<u8>),
        /// Reply CONNECT, wait for <DC2>, send the page data (stuffed here), then the tail.
        GivePage(Vec<u8>, Vec<u8>),
    }

    struct Fake {
        /// Commands seen, in order.
        seen: Vec<String>,
        /// Page data taken (unstuffed), in order.
        pages: Vec<Vec<u8>>,
    }

    /// The next byte from the host. Bounded: 20 s of silence ends the script (the test then
    /// fails on what it lacks); once the host has talked (`opened`), the slave side closing
    /// (EIO on the master) ends it at once.
    fn read_byte(m: &mut TTYPort, opened: bool) -> Option<u8> {
        let mut b = [0u8; 1];
        for _ in 0..1000 {
            match m.read(&mut b) {
                Ok(1) => return Some(b[0]),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) if opened => return None,
                // EIO before the host has opened the slave: keep waiting.
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        None
    }

    fn stuff(data: &[u8]) -> Vec<u8> {
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

    /// Runs `script` for each command until it returns `None` (the end of the call).
    fn fake_modem(
        mut master: TTYPort,
        mut script: impl FnMut(&str) -> Option<Act> + Send + 'static,
    ) -> JoinHandle<Fake> {
        std::thread::spawn(move || {
            master.set_timeout(Duration::from_millis(20)).unwrap();
            let mut fake = Fake {
                seen: Vec::new(),
                pages: Vec::new(),
            };
            let mut line = Vec::new();
            while let Some(b) = read_byte(&mut master, !fake.seen.is_empty()) {
                if b != b'\r' {
                    line.push(b);
                    continue;
                }
                let cmd = String::from_utf8_lossy(&line).trim().to_string();
                line.clear();
                if cmd.is_empty() {
                    continue;
                }
                fake.seen.push(cmd.clone());
                let Some(act) = script(&cmd) else {
                    let _ = master.write_all(b"\r\nOK\r\n");
                    break;
                };
                match act {
                    Act::Reply(r) => master.write_all(&r).unwrap(),
                    Act::ReplyThenLater(r, later) => {
                        master.write_all(&r).unwrap();
                        std::thread::sleep(Duration::from_millis(200));
                        master.write_all(&later).unwrap();
                    }
                    Act::TakePage(connect, after) => {
                        master.write_all(&connect).unwrap();
                        let mut data = Vec::new();
                        let mut dle = false;
                        while let Some(b) = read_byte(&mut master, true) {
                            if dle {
                                dle = false;
                                match b {
                                    ETX => break,
                                    DLE => data.push(DLE),
                                    _ => {}
                                }
                            } else if b == DLE {
                                dle = true;
                            } else {
                                data.push(b);
                            }
                        }
                        fake.pages.push(data);
                        master.write_all(&after).unwrap();
                    }
                    Act::GivePage(data, tail) => {
                        master.write_all(b"\r\nCONNECT\r\n").unwrap();
                        // T.32 §8.3.4: nothing before the host's <DC2>.
                        while let Some(b) = read_byte(&mut master, true) {
                            if b == 0x12 {
                                break;
                            }
                        }
                        master.write_all(&stuff(&data)).unwrap();
                        master.write_all(&tail).unwrap();
                    }
                }
            }
            fake
        })
    }

    fn pty_at(link: &Path) -> TTYPort {
        let (master, slave) = TTYPort::pair().expect("pty pair");
        let name = slave.name().expect("slave name");
        drop(slave);
        let _ = std::fs::remove_file(link);
        std::os::unix::fs::symlink(name, link).unwrap();
        master
    }

    fn profile() -> Profile {
        Profile::from_toml_chain(&[(
            "test",
            "class = \"2.0\"\ninit = [\"ATZ\", \"ATE0V1Q0\"]\nflow_control = \"none\"\n",
        )])
        .unwrap()
    }

    fn test_page(seed: u32) -> Page {
        let mut p = Page::new(1728, 120, Resolution::FINE).unwrap();
        for y in 0..120 {
            for x in (0..1728).step_by(((y + seed) % 7 + 2) as usize) {
                if (x / 40 + y / 10) % 2 == 0 {
                    p.set(x, y, true);
                }
            }
        }
        p
    }

    fn ok() -> Option<Act> {
        Some(Act::Reply(b"\r\nOK\r\n".to_vec()))
    }

    /// A 2-page send on a modem that says ECM (+FCS EC=1) and then reports RTN for the first
    /// page: the page goes again with the same coding (ST fill included), both pages are
    /// confirmed, and the report says ECM was not in use.
    #[test]
    fn pty_send_two_pages_through_a_modem_that_lies_about_ecm() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("class2modem");
        let fcs = "0,3,0,2,0,1,0,5";
        let mut fets = 0;
        let fake = fake_modem(pty_at(&link), move |cmd| match cmd {
            "ATDT5550002" => Some(Act::Reply(
                b"\r\n+FCO\r\n\r\n+FCI:\"+1 555 0002\"\r\n\r\n+FIS:1,5,0,2,1,1,0,0\r\n\r\nOK\r\n"
                    .to_vec(),
            )),
            "AT+FDT" => Some(Act::TakePage(
                format!("\r\n+FCS:{fcs}\r\n\r\nCONNECT\r\n").into_bytes(),
                b"\r\nOK\r\n".to_vec(),
            )),
            c if c.starts_with("AT+FET=") => {
                fets += 1;
                Some(Act::Reply(match (fets, c) {
                    (1, _) => b"\r\n+FPS:2\r\n\r\nOK\r\n".to_vec(),
                    (_, "AT+FET=2") => b"\r\n+FPS:1\r\n\r\n+FHS:00\r\n\r\nOK\r\n".to_vec(),
                    _ => b"\r\n+FPS:1\r\n\r\nOK\r\n".to_vec(),
                }))
            }
            "ATH0" | "AT+FKS" => None,
            _ => ok(),
        });
        let mut m = Modem::open(&link, profile()).unwrap();
        m.init().unwrap();
        let cfg = EngineConfig {
            local_id: "+1 555 0001".into(),
            max_bps: 9600,
            ..Default::default()
        };
        m.set_station(&cfg);
        m.clear_call();
        m.dial("5550002").unwrap();
        let pages = vec![test_page(1), test_page(2)];
        let mut engine = Engine::sender(cfg, Box::new(PagesSource::new(vec![pages.clone()])));
        session::run_call(&mut m, &mut engine).unwrap();
        let r = engine.report().clone();
        // The modem hung up itself (+FHS:00): nothing more is written; end the script.
        let _ = m.command("ATH0");
        let fake = fake.join().unwrap();

        assert_eq!(r.cause, Some(Cause::Ok), "{r:?}");
        assert_eq!(r.pages_confirmed(), 2);
        let outcomes: Vec<_> = r.pages.iter().map(|p| (p.page, p.outcome)).collect();
        assert_eq!(
            outcomes,
            [
                (0, PageOutcome::Rejected),
                (0, PageOutcome::Confirmed),
                (1, PageOutcome::Confirmed)
            ]
        );
        assert!(!r.ecm, "RTN under a claimed ECM: the claim is withdrawn");
        assert_eq!(r.remote_id.as_deref(), Some("+1 555 0002"));
        // The set-up and the page exchange, in order.
        let from_init: Vec<&str> = fake.seen.iter().map(String::as_str).collect();
        assert_eq!(
            from_init,
            [
                "ATZ",
                "ATE0V1Q0",
                "AT+FCLASS=2.0",
                "AT+FLO=0",
                "AT+FCR=1",
                "AT+FBO=0",
                "AT+FNR=1,1,1,0",
                "AT+FIE=0",
                "AT+FLI=\"+1 555 0001\"",
                "AT+FCC=1,3,0,2,3,1,0,0",
                "ATDT5550002",
                "AT+FDT",
                "AT+FET=0",
                "AT+FDT",
                "AT+FET=0",
                "AT+FDT",
                "AT+FET=2",
                "ATH0",
            ]
        );
        // Byte-exact page data: coded as +FCS says, the ST fill kept though EC claims ECM.
        let coding = SessionParams::parse(fcs).unwrap().page_coding().unwrap();
        assert_eq!(coding.min_line_bits, 192);
        let mut src = PagesSource::new(vec![pages]);
        let p0 = src.encode(0, &coding).unwrap();
        let p1 = src.encode(1, &coding).unwrap();
        assert_eq!(fake.pages.len(), 3);
        assert!(fake.pages[0] == p0 && fake.pages[1] == p0, "page 1 twice");
        assert!(fake.pages[2] == p1, "page 2");
    }

    /// A receive where the modem says ECM and passes a garbled first page as good (+FPS:1):
    /// faxgate's own decode refuses it with +FPS=2, takes the page sent again, and ends
    /// normally at +FHS:00 with the exact page.
    #[test]
    fn pty_receive_overrules_the_modem_on_a_bad_page() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("class2modem");
        let fcs = "1,3,0,2,0,1,0,0";
        let page = test_page(3);
        let coding = SessionParams::parse(fcs).unwrap().page_coding().unwrap();
        let good = PagesSource::new(vec![vec![page.clone()]])
            .encode(0, &coding)
            .unwrap();
        let garbage: Vec<u8> = (0..3000u32).map(|i| (i * 97 % 251) as u8).collect();
        let mut fdrs = 0;
        let fake = fake_modem(pty_at(&link), move |cmd| match cmd {
            // RING comes after the last init command.
            "AT+FIE=0" => Some(Act::ReplyThenLater(
                b"\r\nOK\r\n".to_vec(),
                b"\r\nRING\r\n".to_vec(),
            )),
            "ATA" => Some(Act::Reply(
                format!("\r\n+FCO\r\n\r\n+FTI:\"+1 555 0009\"\r\n\r\n+FCS:{fcs}\r\n\r\nOK\r\n")
                    .into_bytes(),
            )),
            "AT+FDR" => {
                fdrs += 1;
                let tail = b"\r\n+FPS:1,78,0,0,0\r\n\r\n+FET:2\r\n\r\nOK\r\n".to_vec();
                Some(match fdrs {
                    1 => Act::GivePage(garbage.clone(), tail),
                    2 => Act::GivePage(good.clone(), tail),
                    _ => Act::Reply(b"\r\n+FHS:00\r\n\r\nOK\r\n".to_vec()),
                })
            }
            "ATH0" | "AT+FKS" => None,
            _ => ok(),
        });
        let mut m = Modem::open(&link, profile()).unwrap();
        m.clear_call();
        m.init().unwrap();
        let cfg = EngineConfig::default();
        m.set_station(&cfg);
        m.wait_and_answer(1, Duration::from_secs(10)).unwrap();
        let sink = PagesSink::new();
        let got = sink.pages();
        let mut engine = Engine::receiver(cfg, Box::new(sink));
        session::run_call(&mut m, &mut engine).unwrap();
        let r = engine.report().clone();
        let _ = m.command("ATH0");
        let fake = fake.join().unwrap();

        assert_eq!(r.cause, Some(Cause::Ok), "{r:?}");
        assert_eq!(r.pages_confirmed(), 1);
        assert_eq!(r.pages[0].outcome, PageOutcome::Rejected);
        assert!(
            !r.ecm,
            "a bad page under a claimed ECM: the claim is withdrawn"
        );
        assert_eq!(r.remote_id.as_deref(), Some("+1 555 0009"));
        let after_answer: Vec<&str> = fake
            .seen
            .iter()
            .map(String::as_str)
            .skip_while(|c| *c != "ATA")
            .collect();
        assert_eq!(
            after_answer,
            ["ATA", "AT+FDR", "AT+FPS=2", "AT+FDR", "AT+FDR", "ATH0"]
        );
        let got = got.lock().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].page, page, "the exact page");
    }

    /// `faxgate receive` with a Class 2.0 profile answers as Class 2.0 and writes the exact
    /// 2 pages to DIR/fax.tif.
    #[test]
    fn pty_cli_receive_two_pages_with_a_class2_profile() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("class2modem");
        let out_dir = dir.path().join("out");
        let prof = dir.path().join("c2.toml");
        std::fs::write(
            &prof,
            "class = \"2.0\"\ninit = [\"ATZ\", \"ATE0V1Q0\"]\nflow_control = \"none\"\n",
        )
        .unwrap();
        let fcs = "1,3,0,2,1,0,0,0";
        let coding = SessionParams::parse(fcs).unwrap().page_coding().unwrap();
        let pages = [test_page(6), test_page(7)];
        let mut src = PagesSource::new(vec![pages.to_vec()]);
        let data = [
            src.encode(0, &coding).unwrap(),
            src.encode(1, &coding).unwrap(),
        ];
        let mut fdrs = 0;
        let fake = fake_modem(pty_at(&link), move |cmd| match cmd {
            // The last probe command; the call rings a moment later.
            "AT+FTH=?" => Some(Act::ReplyThenLater(
                b"\r\nERROR\r\n".to_vec(),
                b"\r\nRING\r\n".to_vec(),
            )),
            "ATA" => Some(Act::Reply(
                format!("\r\n+FCO\r\n\r\n+FTI:\"+1 555 0007\"\r\n\r\n+FCS:{fcs}\r\n\r\nOK\r\n")
                    .into_bytes(),
            )),
            "AT+FDR" => {
                fdrs += 1;
                Some(match fdrs {
                    1 => Act::GivePage(
                        data[0].clone(),
                        b"\r\n+FPS:1\r\n\r\n+FET:0\r\n\r\nOK\r\n".to_vec(),
                    ),
                    2 => Act::GivePage(
                        data[1].clone(),
                        b"\r\n+FPS:1\r\n\r\n+FET:2\r\n\r\nOK\r\n".to_vec(),
                    ),
                    _ => Act::Reply(b"\r\n+FHS:00\r\n\r\nOK\r\n".to_vec()),
                })
            }
            _ => ok(),
        });
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_faxgate"))
            .arg("receive")
            .arg("--modem")
            .arg(&link)
            .arg("--profile")
            .arg(&prof)
            .arg("--out")
            .arg(&out_dir)
            .args(["--wait", "20"])
            .env("FAXGATE_DATA", dir.path().join("data"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        let fake = fake.join().unwrap();
        assert!(out.status.success(), "{text}\n{:?}", fake.seen);
        assert!(text.contains("pages: 2"), "{text}");
        assert!(text.contains("cause: all pages transferred"), "{text}");
        let got = faxgate::image::tiff::read_bytes(
            &std::fs::read(out_dir.join("fax.tif")).unwrap(),
            Default::default(),
        )
        .unwrap();
        assert_eq!(got, pages.to_vec(), "the exact pages");
    }

    /// `faxgate run` with one Class 2.0 line sends an email as a fax: the daemon's modem line
    /// takes the `[[modem]]` profile's class 2.0, dials with ATD and moves the page with
    /// +FDT/+FET, and the job ends done.
    #[test]
    fn pty_daemon_sends_an_email_on_a_class2_line() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let py = "/usr/bin/python3";
        assert!(
            Path::new(py).exists(),
            "needs /usr/bin/python3 (Debian package python3)"
        );
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path();
        let link = w.join("class2modem");
        std::fs::create_dir(w.join("profiles")).unwrap();
        std::fs::write(
            w.join("profiles/c2.toml"),
            "class = \"2.0\"\ninit = [\"ATZ\", \"ATE0V1Q0\"]\nflow_control = \"none\"\n",
        )
        .unwrap();
        let eop = Arc::new(AtomicBool::new(false));
        let eop2 = Arc::clone(&eop);
        let fake = fake_modem(pty_at(&link), move |cmd| {
            match cmd {
            c if c.starts_with("ATDT") => Some(Act::Reply(
                b"\r\n+FCO\r\n\r\n+FCI:\"+1 212 555 0002\"\r\n\r\n+FIS:1,5,0,2,1,0,0,0\r\n\r\nOK\r\n"
                    .to_vec(),
            )),
            "AT+FDT" => Some(Act::TakePage(
                b"\r\n+FCS:1,5,0,2,1,0,0,0\r\n\r\nCONNECT\r\n".to_vec(),
                b"\r\nOK\r\n".to_vec(),
            )),
            "AT+FET=0" => Some(Act::Reply(b"\r\n+FPS:1\r\n\r\nOK\r\n".to_vec())),
            "AT+FET=2" => {
                eop2.store(true, Ordering::SeqCst);
                Some(Act::Reply(
                    b"\r\n+FPS:1\r\n\r\n+FHS:00\r\n\r\nOK\r\n".to_vec(),
                ))
            }
            _ => ok(),
        }
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = format!(
            "[gateway]\ndata_dir = \"{data}\"\n[smtp]\nlisten = \"127.0.0.1:{port}\"\n\
             [http]\nenabled = false\n[loopback]\nenabled = false\n[log]\nfilter = \"info\"\n\
             [[modem]]\nname = \"c2\"\ndevice = \"{dev}\"\nprofile = \"c2\"\n\
             profiles_dir = \"{profiles}\"\nlocal_id = \"+1 555 0001\"\nrole = \"send\"\n",
            data = w.join("data").display(),
            dev = link.display(),
            profiles = w.join("profiles").display(),
        );
        std::fs::write(w.join("faxgate.toml"), cfg).unwrap();
        let log = w.join("run.log");
        let logf = std::fs::File::create(&log).unwrap();
        let mut gw = std::process::Command::new(env!("CARGO_BIN_EXE_faxgate"))
            .current_dir(w)
            .args(["-c", "faxgate.toml", "run"])
            .stdin(std::process::Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .unwrap();
        let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
        let mut up = false;
        for _ in 0..300 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                up = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(up, "faxgate run did not come up: {}", log_text());
        let send = "import smtplib, email.message as e, sys
m = e.EmailMessage()
m['From'] = 'you@example.org'; m['To'] = 'FAX=+12125550002@localhost'; m['Subject'] = 'class 2.0'
m.set_content('A fax through a Class 2.0 modem.')
smtplib.SMTP('127.0.0.1', int(sys.argv[1])).send_message(m)
";
        let out = std::process::Command::new(py)
            .args(["-c", send, &port.to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Bounded wait for the job to end done.
        let fax_done = |listed: &str| {
            listed.lines().any(|l| {
                l.contains("fax-out") && l.contains(" done ") && l.contains("T.30 cause 0 (Ok)")
            })
        };
        let mut listed = String::new();
        for _ in 0..600 {
            let o = std::process::Command::new(env!("CARGO_BIN_EXE_faxgate"))
                .current_dir(w)
                .args(["-c", "faxgate.toml", "queue", "list", "--all"])
                .output()
                .unwrap();
            listed = String::from_utf8_lossy(&o.stdout).to_string();
            if eop.load(Ordering::SeqCst) && fax_done(&listed) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(gw.id() as i32, libc::SIGTERM) };
        let _ = gw.wait();
        let fake = fake.join().unwrap();
        assert!(
            fax_done(&listed),
            "{listed}\n{}\n{:?}",
            log_text(),
            fake.seen
        );
        assert!(!fake.pages.is_empty());
        let seen = fake.seen.join(" | ");
        assert!(seen.contains("AT+FCLASS=2.0"), "{seen}");
        assert!(seen.contains("AT+FLI=\"+1 555 0001\""), "{seen}");
        assert!(!seen.contains("AT+FRH"), "{seen}");
    }

    /// `faxgate send` with a Class 2.0 profile drives the modem as Class 2.0 (the command line
    /// the operator uses), and `faxgate modem probe` says which classes a modem offers.
    #[test]
    fn pty_cli_send_with_a_class2_profile_and_probe_picks_a_class() {
        use faxgate::image::tiff::{Profile as TiffProfile, Writer};
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("class2modem");
        let tif = dir.path().join("two.tif");
        let mut w = Writer::new(std::fs::File::create(&tif).unwrap(), TiffProfile::S).unwrap();
        w.write_page(&test_page(4)).unwrap();
        w.write_page(&test_page(5)).unwrap();
        w.finish().unwrap();
        let prof = dir.path().join("c2.toml");
        std::fs::write(
            &prof,
            "class = \"2.0\"\ninit = [\"ATZ\", \"ATE0V1Q0\"]\nflow_control = \"none\"\n",
        )
        .unwrap();
        let fake = fake_modem(pty_at(&link), move |cmd| match cmd {
            "AT+FCLASS=?" => Some(Act::Reply(b"\r\n0,1,2,2.0\r\n\r\nOK\r\n".to_vec())),
            // In Class 2.0 the Class 1 queries are errors, as on real modems.
            "AT+FTM=?" | "AT+FRM=?" | "AT+FTH=?" => Some(Act::Reply(b"\r\nERROR\r\n".to_vec())),
            "ATDT5550002" => Some(Act::Reply(
                b"\r\n+FCO\r\n\r\n+FCI:\"+1 555 0002\"\r\n\r\n+FIS:1,5,0,2,1,0,0,0\r\n\r\nOK\r\n"
                    .to_vec(),
            )),
            "AT+FDT" => Some(Act::TakePage(
                b"\r\n+FCS:1,5,0,2,1,0,0,0\r\n\r\nCONNECT\r\n".to_vec(),
                b"\r\nOK\r\n".to_vec(),
            )),
            "AT+FET=0" => Some(Act::Reply(b"\r\n+FPS:1\r\n\r\nOK\r\n".to_vec())),
            "AT+FET=2" => Some(Act::Reply(
                b"\r\n+FPS:1\r\n\r\n+FHS:00\r\n\r\nOK\r\n".to_vec(),
            )),
            _ => ok(),
        });
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_faxgate"))
            .arg("send")
            .arg("--modem")
            .arg(&link)
            .arg("--profile")
            .arg(&prof)
            .args(["--local-id", "+1 555 0001", "5550002"])
            .arg(&tif)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("pages: 2"), "{text}");
        assert!(text.contains("remote-id: +1 555 0002"), "{text}");
        assert!(text.contains("modulation: V.17 14400"), "{text}");
        // The fake ends when the port closes (20 s of silence at most).
        let fake = fake.join().unwrap();
        assert_eq!(fake.pages.len(), 2);
        let seen = fake.seen.join(" | ");
        assert!(seen.contains("AT+FCLASS=2.0 | AT+FLO=0"), "{seen}");
        assert!(seen.contains("ATDT5550002 | AT+FDT"), "{seen}");
        assert!(
            !seen.contains("AT+FRH") && !seen.contains("AT+FTH=3"),
            "{seen}"
        );

        // probe: the classes offered and the best one.
        let link2 = dir.path().join("probe0");
        let fake = fake_modem(pty_at(&link2), move |cmd| match cmd {
            "AT+FCLASS=?" => Some(Act::Reply(b"\r\n0,2,2.0\r\n\r\nOK\r\n".to_vec())),
            _ => ok(),
        });
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_faxgate"))
            .args(["modem", "probe"])
            .arg(&link2)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("classes: 0,2,2.0"), "{text}");
        assert!(text.contains("class2.0: yes"), "{text}");
        assert!(text.contains("best-class: 2.0"), "{text}");
        drop(fake);
    }

    /// A modem that never reports `+FCS` on its own, then reports a renegotiated one with the
    /// first page's answer: page 1 is coded as the modem makes its DCS from our `+FCC` and the
    /// remote's DIS, page 2 as the `+FCS` reported between the pages; the call succeeds and
    /// the report names each page's rate.
    #[test]
    fn pty_send_without_fcs_after_fdt_codes_as_negotiated() {
        use faxgate::fax::t30::Modulation;
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("class2modem");
        let dis = "1,3,0,2,1,0,0,2";
        let renegotiated = "0,1,0,2,0,0,0,0";
        let fake = fake_modem(pty_at(&link), move |cmd| match cmd {
            "ATDT5550002" => Some(Act::Reply(
                format!("\r\n+FCO\r\n\r\n+FCI:\"+1 555 0002\"\r\n\r\n+FIS:{dis}\r\n\r\nOK\r\n")
                    .into_bytes(),
            )),
            "AT+FDT" => Some(Act::TakePage(
                b"\r\nCONNECT\r\n".to_vec(),
                b"\r\nOK\r\n".to_vec(),
            )),
            "AT+FET=0" => Some(Act::Reply(
                format!("\r\n+FCS:{renegotiated}\r\n\r\n+FPS:1\r\n\r\nOK\r\n").into_bytes(),
            )),
            "AT+FET=2" => Some(Act::Reply(
                b"\r\n+FPS:1\r\n\r\n+FHS:00\r\n\r\nOK\r\n".to_vec(),
            )),
            "ATH0" | "AT+FKS" => None,
            _ => ok(),
        });
        let mut m = Modem::open(&link, profile()).unwrap();
        m.init().unwrap();
        let cfg = EngineConfig {
            local_id: "+1 555 0001".into(),
            ..Default::default()
        };
        m.set_station(&cfg);
        m.clear_call();
        m.dial("5550002").unwrap();
        let pages = vec![test_page(3), test_page(4)];
        let mut engine = Engine::sender(cfg, Box::new(PagesSource::new(vec![pages.clone()])));
        session::run_call(&mut m, &mut engine).unwrap();
        let r = engine.report().clone();
        let _ = m.command("ATH0");
        let fake = fake.join().unwrap();

        assert_eq!(r.cause, Some(Cause::Ok), "{r:?}");
        let seen = fake.seen.join(" | ");
        assert!(
            seen.contains(
                "AT+FCC=1,5,0,2,3,1,0,0 | ATDT5550002 | AT+FDT | AT+FET=0 | AT+FDT | AT+FET=2"
            ),
            "{seen}"
        );
        let rates: Vec<_> = r.pages.iter().map(|p| (p.outcome, p.modulation)).collect();
        assert_eq!(
            rates,
            [
                (PageOutcome::Confirmed, Modulation::V29_9600),
                (PageOutcome::Confirmed, Modulation::V27ter4800)
            ]
        );
        // Byte-exact: page 1 in MR fine with the remote's 5 ms (fine) scan time, page 2 in
        // MH standard as renegotiated.
        let first = SessionParams::parse(dis).unwrap().page_coding().unwrap();
        let second = SessionParams::parse(renegotiated)
            .unwrap()
            .page_coding()
            .unwrap();
        assert_eq!(first.min_line_bits, 48);
        let mut src = PagesSource::new(vec![pages]);
        assert_eq!(fake.pages.len(), 2);
        assert!(fake.pages[0] == src.encode(0, &first).unwrap(), "page 1");
        assert!(fake.pages[1] == src.encode(1, &second).unwrap(), "page 2");
        assert!(fake.pages[0] != src.encode(0, &second).unwrap());
    }
}

/// Any bytes in any op: the driver and the report parsers never panic, and time alone always
/// brings the driver back to idle (no state waits forever).
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn ops() -> impl Strategy<Value = Op> {
        prop_oneof![
            Just(Op::Answer),
            Just(Op::SendPage),
            Just(Op::ReceivePage),
            Just(Op::EndPage(PostPage::Eop)),
            Just(Op::Abort),
            Just(Op::Cancel),
            Just(Op::Hangup),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Op::PageData),
            Just(Op::Dial {
                prefix: "ATDT".into(),
                number: "1".into(),
                timeout: Duration::from_secs(60),
            }),
        ]
    }

    /// Modem bytes built from the tokens a Class 2.0 modem sends, cut anywhere, plus noise.
    fn modem_bytes() -> impl Strategy<Value = Vec<Vec<u8>>> {
        let token = prop_oneof![
            Just(b"\r\nOK\r\n".to_vec()),
            Just(b"\r\nERROR\r\n".to_vec()),
            Just(b"\r\nCONNECT\r\n".to_vec()),
            Just(b"\r\nNO CARRIER\r\n".to_vec()),
            Just(b"\r\n+FCO\r\n".to_vec()),
            Just(b"\r\n+FHS:".to_vec()),
            Just(b"\r\n+FCS:1,5,0,2,1,1,0,".to_vec()),
            Just(b"\r\n+FPS:".to_vec()),
            Just(b"\r\n+FET:".to_vec()),
            Just(vec![DLE]),
            Just(vec![DLE, ETX]),
            Just(vec![0x11]),
            Just(vec![0x13]),
            proptest::collection::vec(any::<u8>(), 0..32),
        ];
        proptest::collection::vec(
            proptest::collection::vec(token, 0..8).prop_map(|v| v.concat()),
            0..8,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

        #[test]
        fn driver_never_panics_and_always_ends(op_list in proptest::collection::vec(ops(), 1..4),
                                               chunks in modem_bytes(),
                                               wait_xon in any::<bool>()) {
            let mut d = Class2Driver::new(wait_xon);
            let mut now = Instant::now();
            for op in op_list {
                if d.start(op, now).is_err() {
                    continue;
                }
                for c in &chunks {
                    let n = d.pending_output().len();
                    d.consume_output(n);
                    d.on_input(c, now);
                    while d.poll_event().is_some() {}
                    if d.is_idle() { break; }
                }
                for _ in 0..3 {
                    if d.is_idle() { break; }
                    now += Duration::from_secs(4000);
                    d.on_timeout(now);
                    let n = d.pending_output().len();
                    d.consume_output(n);
                    while d.poll_event().is_some() {}
                }
                prop_assert!(d.is_idle());
            }
        }

        #[test]
        fn report_parsers_never_panic(s in "\\PC{0,60}", tail in "[0-9A-Fa-f,: ]{0,30}") {
            for name in ["+FCS:", "+FIS:", "+FPS:", "+FPTS:", "+FHS:", "+FHNG:", "+FET:", "+FCI:"] {
                let _ = class2::parse_report(&format!("{name}{tail}"));
            }
            let _ = class2::parse_report(&s);
            let _ = SessionParams::parse(&s).map(|p| (p.page_coding(), p.scan_time_ms()));
            let _ = HangupCode::parse(&s, true);
            let _ = HangupCode::parse(&s, false);
        }
    }
}
