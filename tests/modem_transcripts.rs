//! Class 1 exchanges as byte transcripts (host ↔ modem) through the pure driver, and proptest
//! fuzzing of the AT, DLE and HDLC parsers. The modem side of each transcript is what a T.31
//! modem sends (several captured from the iaxmodem rig).

use std::time::{Duration, Instant};

use faxgate::fax::modem::at::{AtCommand, FinalResult, ResponseParser};
use faxgate::fax::modem::class1::{MAX_FRAME, StartError};
use faxgate::fax::modem::dle::{self, DLE, ETX, Unstuffer};
use faxgate::fax::modem::{Class1Driver, Event, LineCause, Op, OpFailure};
use faxgate::fax::t30::{Modulation, Training};

/// A transcript runner: the driver, a fake clock, and what it wrote.
struct T {
    d: Class1Driver,
    t0: Instant,
    now: Instant,
}

impl T {
    fn new() -> T {
        Self::with(false)
    }
    fn with(software_flow: bool) -> T {
        let t0 = Instant::now();
        T {
            d: Class1Driver::new(software_flow, true),
            t0,
            now: t0,
        }
    }
    fn op(&mut self, op: Op) {
        self.d.start(op, self.now).expect("op starts");
    }
    /// The host must have written exactly `bytes`.
    fn host(&mut self, bytes: &[u8]) {
        let out = self.d.pending_output().to_vec();
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(bytes),
            "host wrote {out:02x?}"
        );
        let n = out.len();
        self.d.consume_output(n);
    }
    fn modem(&mut self, bytes: &[u8]) {
        self.d.on_input(bytes, self.now);
    }
    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.d.poll_event()).collect()
    }
    fn expect(&mut self, evs: &[Event]) {
        assert_eq!(self.events(), evs);
        assert!(self.d.is_idle() || evs.is_empty(), "driver should be idle");
    }
    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.d.on_timeout(self.now);
    }
}

fn cmd(s: &str) -> Op {
    Op::Command(AtCommand::new(s).unwrap())
}

fn with_fcs(frame: &[u8]) -> Vec<u8> {
    faxgate::fax::t30::hdlc::with_fcs(frame)
}

const DIS: &[u8] = &[
    0xff, 0x13, 0x80, 0x00, 0xce, 0xf4, 0x80, 0x80, 0x81, 0x80, 0x80, 0x80, 0x18,
];

#[test]
fn unsolicited_ring_in_the_middle_of_a_command() {
    let mut t = T::new();
    t.op(cmd("AT+FCLASS=1"));
    t.host(b"AT+FCLASS=1\r");
    // Echo on, then a RING lands between the echo and the result.
    t.modem(b"AT+FCLASS=1\r\r\nRI");
    assert!(t.events().is_empty());
    t.modem(b"NG\r\n\r\nOK\r\n");
    t.expect(&[
        Event::Ring,
        Event::CommandDone {
            result: FinalResult::Ok,
            info: vec![],
        },
    ]);
}

#[test]
fn caller_id_then_rings_then_answer() {
    let mut t = T::new();
    // Captured from iaxmodem with AT+VCID=1.
    t.modem(b"\r\nDATE=1128\r\n\r\nTIME=2240\r\n\r\nNAME=Modem modemA\r\n\r\nNMBR=1001\r\n\r\nANID=<NONE>\r\n\r\nNDID=5550002\r\n\r\nRING\r\n");
    let ev = t.events();
    assert!(ev.contains(&Event::CallInfo {
        tag: "NMBR".into(),
        value: "1001".into()
    }));
    assert!(ev.contains(&Event::CallInfo {
        tag: "NDID".into(),
        value: "5550002".into()
    }));
    assert_eq!(ev.last(), Some(&Event::Ring));
    t.op(Op::Answer);
    t.host(b"ATA\r");
    t.modem(b"\r\nCONNECT\r\n");
    t.expect(&[Event::Connected]);
    // After ATA/CONNECT the modem already sends V.21 flags: frames go out with no +FTH=3.
    let csi = b"\xff\x03\x40        + 1 555 0002".to_vec();
    // A DIS whose FIF holds a DLE: it must be doubled on the wire.
    let dis = vec![0xff, 0x13, 0x80, 0x00, DLE, 0xf4];
    t.op(Op::SendFrames {
        frames: vec![csi.clone(), dis],
    });
    let mut wire = csi.clone();
    wire.extend_from_slice(&[DLE, ETX]);
    t.host(&wire);
    t.modem(b"\r\nCONNECT\r\n");
    t.host(&[0xff, 0x13, 0x80, 0x00, DLE, DLE, 0xf4, DLE, ETX]);
    t.modem(b"\r\nOK\r\n");
    t.expect(&[Event::FramesSent]);
}

#[test]
fn dial_then_frames_as_captured_on_the_rig() {
    let mut t = T::new();
    t.op(Op::Dial {
        prefix: "ATDT".into(),
        number: "5550002".into(),
        timeout: Duration::from_secs(60),
    });
    t.host(b"ATDT5550002\r");
    t.modem(b"\r\nCONNECT\r\n");
    t.expect(&[Event::Connected]);
    // After ATD/CONNECT the modem already receives HDLC: no +FRH=3 is sent.
    t.op(Op::ReceiveFrame {
        timeout: Duration::from_secs(6),
    });
    t.host(b"");
    let csi = b"\xff\x03\x40        + 1 555 0002".to_vec();
    let mut wire = with_fcs(&csi);
    wire.extend_from_slice(&[DLE, ETX]);
    wire.extend_from_slice(b"\r\nOK\r\n");
    t.modem(&wire);
    t.expect(&[
        Event::Carrier,
        Event::Frame {
            frame: csi,
            fcs_ok: true,
        },
    ]);
    // The next frame: +FRH=3, and spandsp answers CONNECT twice before the frame.
    t.op(Op::ReceiveFrame {
        timeout: Duration::from_secs(6),
    });
    t.host(b"AT+FRH=3\r");
    t.modem(b"\r\nCONNECT\r\n\r\nCONNECT\r\n\xff\x13\x80\x00\xce\xf4\x80\x80\x81\x80\x80\x80\x18c/\x10\x03\r\nOK\r\n");
    t.expect(&[
        Event::Carrier,
        Event::Frame {
            frame: DIS.to_vec(),
            fcs_ok: true,
        },
    ]);
}

#[test]
fn frame_with_bad_fcs() {
    // The modem says ERROR (T.31: FCS not OK).
    let mut t = T::new();
    t.op(Op::ReceiveFrame {
        timeout: Duration::from_secs(3),
    });
    t.host(b"AT+FRH=3\r");
    let mut wire = b"\r\nCONNECT\r\n".to_vec();
    wire.extend_from_slice(&with_fcs(DIS));
    wire.extend_from_slice(&[DLE, ETX]);
    wire.extend_from_slice(b"\r\nERROR\r\n");
    t.modem(&wire);
    t.expect(&[
        Event::Carrier,
        Event::Frame {
            frame: DIS.to_vec(),
            fcs_ok: false,
        },
    ]);
    // The modem says OK but the FCS octets disagree with the frame: not trusted.
    let mut t = T::new();
    t.op(Op::ReceiveFrame {
        timeout: Duration::from_secs(3),
    });
    t.host(b"AT+FRH=3\r");
    let mut wire = b"\r\nCONNECT\r\n".to_vec();
    wire.extend_from_slice(DIS);
    wire.extend_from_slice(&[0x00, 0x00, DLE, ETX]);
    wire.extend_from_slice(b"\r\nOK\r\n");
    t.modem(&wire);
    t.expect(&[
        Event::Carrier,
        Event::Frame {
            frame: DIS.to_vec(),
            fcs_ok: false,
        },
    ]);
}

#[test]
fn frame_receive_ends_without_frame() {
    let no_carrier = Event::Failed(OpFailure::NoCarrier);
    for (reply, want) in [
        (&b"\r\nNO CARRIER\r\n"[..], vec![no_carrier.clone()]),
        (
            &b"\r\n+FCERROR\r\n"[..],
            vec![Event::Failed(OpFailure::WrongCarrier)],
        ),
        (
            &b"\r\nCONNECT\r\n\r\nNO CARRIER\r\n"[..],
            vec![Event::Carrier, no_carrier.clone()],
        ),
    ] {
        let mut t = T::new();
        t.op(Op::ReceiveFrame {
            timeout: Duration::from_secs(3),
        });
        t.host(b"AT+FRH=3\r");
        t.modem(reply);
        t.expect(&want);
    }
}

#[test]
fn frame_receive_timeout_aborts_with_a_character() {
    let mut t = T::new();
    t.op(Op::ReceiveFrame {
        timeout: Duration::from_secs(6),
    });
    t.host(b"AT+FRH=3\r");
    t.advance(Duration::from_millis(5999));
    assert!(t.events().is_empty());
    t.advance(Duration::from_millis(1));
    // T.31: any character aborts +FRH; the modem answers OK.
    t.host(&[0x18]);
    assert!(t.events().is_empty());
    t.modem(b"\r\nOK\r\n");
    t.expect(&[Event::Failed(OpFailure::Timeout)]);
}

#[test]
fn carrier_found_lifts_the_timeout_but_a_stuck_frame_is_still_bounded() {
    let mut t = T::new();
    t.op(Op::ReceiveFrame {
        timeout: Duration::from_secs(3),
    });
    t.host(b"AT+FRH=3\r");
    t.modem(b"\r\nCONNECT\r\n\xff\x13");
    assert_eq!(t.events(), vec![Event::Carrier]);
    // Long past the op's 3 s: a frame in progress is not cut off.
    t.advance(Duration::from_secs(10));
    assert!(t.events().is_empty());
    assert!(t.d.pending_output().is_empty());
    // But a frame never ends after MAX_FRAME_TIME: aborted.
    t.advance(faxgate::fax::modem::class1::MAX_FRAME_TIME);
    t.host(&[0x18]);
    t.modem(b"\r\nOK\r\n");
    t.expect(&[Event::Failed(OpFailure::Timeout)]);
}

#[test]
fn abort_unanswered_still_ends() {
    let mut t = T::new();
    t.op(Op::ReceiveFrame {
        timeout: Duration::from_secs(1),
    });
    t.host(b"AT+FRH=3\r");
    t.advance(Duration::from_secs(1));
    t.host(&[0x18]);
    t.advance(Duration::from_secs(3));
    t.expect(&[Event::Failed(OpFailure::Timeout)]);
}

#[test]
fn modem_answers_error_to_a_speed_then_falls_back() {
    let mut t = T::new();
    let tcf = vec![0u8; 2700]; // 1.5 s of zeros at 14 400 bit/s
    t.op(Op::SendData {
        modulation: Modulation::V17_14400,
        training: Training::Long,
        data: tcf,
    });
    t.host(b"AT+FTM=145\r");
    t.modem(b"\r\nERROR\r\n");
    t.expect(&[Event::Failed(OpFailure::Rejected)]);
    // The engine steps down to V.29 9600.
    let data = vec![0x00, DLE, 0x01, DLE, ETX, 0xff];
    t.op(Op::SendData {
        modulation: Modulation::V29_9600,
        training: Training::Long,
        data,
    });
    t.host(b"AT+FTM=96\r");
    assert!(t.events().is_empty());
    t.modem(b"\r\nCONNECT\r\n");
    t.host(&[0x00, DLE, DLE, 0x01, DLE, DLE, ETX, 0xff, DLE, ETX]);
    t.modem(b"\r\nOK\r\n");
    t.expect(&[Event::DataSent]);
}

#[test]
fn receive_page_data_with_dle_edges_split_anywhere() {
    let payload: Vec<u8> = (0..=255u8).chain([DLE, DLE, ETX, DLE]).collect();
    let mut wire = b"\r\nCONNECT\r\n".to_vec();
    dle::stuff_into(&payload, &mut wire);
    wire.extend_from_slice(&[DLE, ETX]);
    wire.extend_from_slice(b"\r\nNO CARRIER\r\n");
    for cut in [
        0,
        5,
        11,
        12,
        13,
        30,
        200,
        wire.len() - 17,
        wire.len() - 16,
        wire.len() - 15,
    ] {
        let mut t = T::new();
        t.op(Op::ReceiveData {
            modulation: Modulation::V29_9600,
            training: Training::Long,
            timeout: Duration::from_secs(60),
        });
        t.host(b"AT+FRM=96\r");
        t.modem(&wire[..cut]);
        t.modem(&wire[cut..]);
        let ev = t.events();
        assert_eq!(ev.first(), Some(&Event::Carrier));
        let mut got = Vec::new();
        for e in &ev[1..ev.len() - 1] {
            let Event::Data(d) = e else {
                panic!("cut {cut}: {e:?}")
            };
            got.extend_from_slice(d);
        }
        assert_eq!(ev.last(), Some(&Event::DataEnd), "cut {cut}");
        assert_eq!(got, payload, "cut {cut}");
        assert!(t.d.is_idle());
    }
}

#[test]
fn receive_data_wrong_carrier_and_error() {
    let mut t = T::new();
    t.op(Op::ReceiveData {
        modulation: Modulation::V17_14400,
        training: Training::Long,
        timeout: Duration::from_secs(10),
    });
    t.host(b"AT+FRM=145\r");
    t.modem(b"\r\n+FCERROR\r\n");
    t.expect(&[Event::Failed(OpFailure::WrongCarrier)]);
    t.op(Op::ReceiveData {
        modulation: Modulation::V29_9600,
        training: Training::Long,
        timeout: Duration::from_secs(10),
    });
    t.host(b"AT+FRM=96\r");
    t.modem(b"\r\nERROR\r\n");
    t.expect(&[Event::Failed(OpFailure::Rejected)]);
}

#[test]
fn frames_need_connect_and_final_ok() {
    let mut t = T::new();
    let dcn = vec![0xff, 0x13, 0xfb];
    t.op(Op::SendFrames { frames: vec![dcn] });
    t.host(b"AT+FTH=3\r");
    t.modem(b"\r\nCONNECT\r\n");
    t.host(&[0xff, 0x13, 0xfb, DLE, ETX]);
    t.modem(b"\r\nOK\r\n");
    t.expect(&[Event::FramesSent]);
    // A modem that wants more frames than we have: a protocol failure, not a hang.
    t.op(Op::SendFrames {
        frames: vec![vec![0xff, 0x03, 0x40]],
    });
    t.host(b"AT+FTH=3\r");
    t.modem(b"\r\nCONNECT\r\n");
    t.host(&[0xff, 0x03, 0x40, DLE, ETX]);
    t.modem(b"\r\nCONNECT\r\n");
    t.expect(&[Event::Failed(OpFailure::Protocol)]);
}

#[test]
fn dial_results_map_to_causes() {
    for (reply, cause) in [
        ("BUSY", LineCause::Busy),
        ("NO ANSWER", LineCause::NoAnswer),
        ("NO DIALTONE", LineCause::NoDialtone),
        ("NO CARRIER", LineCause::NoCarrier),
        ("ERROR", LineCause::ModemError),
    ] {
        let mut t = T::new();
        t.op(Op::Dial {
            prefix: "ATDT".into(),
            number: "5550002".into(),
            timeout: Duration::from_secs(60),
        });
        t.host(b"ATDT5550002\r");
        t.modem(format!("\r\n{reply}\r\n").as_bytes());
        t.expect(&[Event::CallFailed(cause)]);
        assert_eq!(cause.retryable(), cause != LineCause::ModemError);
    }
}

#[test]
fn dial_timeout_aborts_the_dial() {
    let mut t = T::new();
    t.op(Op::Dial {
        prefix: "ATDT".into(),
        number: "5550002".into(),
        timeout: Duration::from_secs(60),
    });
    t.host(b"ATDT5550002\r");
    t.advance(Duration::from_secs(60));
    t.host(&[0x18]);
    t.modem(b"\r\nNO CARRIER\r\n");
    t.expect(&[Event::CallFailed(LineCause::Timeout)]);
    assert!(t.d.poll_at().is_none());
    let _ = t.t0;
}

#[test]
fn bad_ops_are_refused() {
    let mut t = T::new();
    let dial = |n: &str| Op::Dial {
        prefix: "ATDT".into(),
        number: n.into(),
        timeout: Duration::from_secs(1),
    };
    assert!(matches!(
        t.d.start(dial("555\rATH"), t.now),
        Err(StartError::Invalid(_))
    ));
    assert!(matches!(
        t.d.start(dial(""), t.now),
        Err(StartError::Invalid(_))
    ));
    assert!(matches!(
        t.d.start(
            Op::SendFrames {
                frames: vec![vec![0xff; MAX_FRAME + 1]]
            },
            t.now
        ),
        Err(StartError::Invalid(_))
    ));
    t.op(cmd("AT"));
    assert_eq!(t.d.start(cmd("AT"), t.now), Err(StartError::Busy));
}

#[test]
fn silences_and_hangup() {
    let mut t = T::new();
    t.op(Op::WaitSilence { ms: 70 });
    t.host(b"AT+FRS=7\r");
    t.modem(b"\r\nOK\r\n");
    t.expect(&[Event::SilenceDone]);
    t.op(Op::SendSilence { ms: 99_999 });
    t.host(b"AT+FTS=255\r");
    t.modem(b"\r\nOK\r\n");
    t.expect(&[Event::SilenceDone]);
    t.op(Op::Hangup);
    t.host(b"ATH0\r");
    t.modem(b"\r\nOK\r\n");
    t.expect(&[Event::HungUp]);
}

#[test]
fn software_flow_control_pauses_and_resumes() {
    let mut t = T::with(true);
    t.op(Op::SendData {
        modulation: Modulation::V29_9600,
        training: Training::Long,
        data: vec![0x55; 100],
    });
    t.host(b"AT+FTM=96\r");
    t.modem(b"\r\nCONNECT\r\n");
    let first = t.d.pending_output().len();
    assert_eq!(first, 102);
    t.d.consume_output(40);
    t.modem(&[0x13]); // XOFF
    assert!(t.d.pending_output().is_empty());
    t.modem(&[0x11]); // XON
    assert_eq!(t.d.pending_output().len(), 62);
    t.d.consume_output(62);
    t.modem(b"\r\nOK\r\n");
    t.expect(&[Event::DataSent]);
}

#[test]
fn transmit_that_never_finishes_times_out() {
    let mut t = T::new();
    t.op(Op::SendData {
        modulation: Modulation::V27ter2400,
        training: Training::Long,
        data: vec![0; 300], // 1 s of line time
    });
    t.host(b"AT+FTM=24\r");
    t.modem(b"\r\nCONNECT\r\n");
    t.advance(Duration::from_secs(10));
    assert!(t.events().is_empty());
    t.advance(Duration::from_secs(2));
    t.expect(&[Event::Failed(OpFailure::Timeout)]);
    assert!(t.d.pending_output().is_empty());
}

#[test]
fn late_results_after_an_op_are_harmless() {
    let mut t = T::new();
    t.modem(b"\r\nOK\r\n\r\nNO CARRIER\r\n");
    assert!(t.events().is_empty());
    t.op(cmd("AT"));
    t.host(b"AT\r");
    t.modem(b"\r\nOK\r\n");
    t.expect(&[Event::CommandDone {
        result: FinalResult::Ok,
        info: vec![],
    }]);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn ops() -> impl Strategy<Value = Op> {
        prop_oneof![
            Just(Op::Command(AtCommand::new("ATI").unwrap())),
            Just(Op::Dial {
                prefix: "ATDT".into(),
                number: "5550002".into(),
                timeout: Duration::from_secs(60)
            }),
            Just(Op::Answer),
            Just(Op::SendFrames {
                frames: vec![vec![0xff, 0x03, 0x40], vec![0xff, 0x13, 0x80]]
            }),
            Just(Op::ReceiveFrame {
                timeout: Duration::from_secs(3)
            }),
            Just(Op::SendData {
                modulation: Modulation::V29_9600,
                training: Training::Long,
                data: vec![DLE; 10]
            }),
            Just(Op::ReceiveData {
                modulation: Modulation::V17_14400,
                training: Training::Long,
                timeout: Duration::from_secs(30)
            }),
            Just(Op::WaitSilence { ms: 70 }),
            Just(Op::Hangup),
        ]
    }

    /// Modem output biased toward the interesting bytes.
    fn modem_bytes() -> impl Strategy<Value = Vec<Vec<u8>>> {
        let token = prop_oneof![
            any::<u8>().prop_map(|b| vec![b]),
            Just(vec![DLE]),
            Just(vec![DLE, ETX]),
            Just(vec![0xff]),
            Just(b"\r\nOK\r\n".to_vec()),
            Just(b"\r\nCONNECT\r\n".to_vec()),
            Just(b"\r\nERROR\r\n".to_vec()),
            Just(b"\r\nNO CARRIER\r\n".to_vec()),
            Just(b"\r\n+FCERROR\r\n".to_vec()),
            Just(b"\r\nRING\r\n".to_vec()),
            Just(b"NMBR=".to_vec()),
            Just(vec![0x11]),
            Just(vec![0x13]),
            proptest::collection::vec(any::<u8>(), 0..64),
        ];
        proptest::collection::vec(
            proptest::collection::vec(token, 0..8).prop_map(|v| v.concat()),
            0..12,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn driver_never_panics_and_always_ends(op_list in proptest::collection::vec(ops(), 1..4),
                                               chunks in modem_bytes(),
                                               sw in any::<bool>()) {
            let mut d = Class1Driver::new(sw, true);
            let mut now = Instant::now();
            for op in op_list {
                if d.start(op, now).is_err() {
                    continue;
                }
                for c in &chunks {
                    let n = d.pending_output().len();
                    d.consume_output(n);
                    d.on_input(c, now);
                    while let Some(ev) = d.poll_event() {
                        if let Event::Frame { frame, .. } = &ev {
                            prop_assert!(frame.len() <= MAX_FRAME);
                        }
                    }
                    if d.is_idle() { break; }
                }
                // Time alone always brings the driver back to idle: nothing hangs.
                for _ in 0..3 {
                    if d.is_idle() { break; }
                    now += Duration::from_secs(4000);
                    d.on_timeout(now);
                    let n = d.pending_output().len();
                    d.consume_output(n);
                }
                while d.poll_event().is_some() {}
                prop_assert!(d.is_idle());
            }
        }

        #[test]
        fn response_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let mut p = ResponseParser::new();
            let mut out = Vec::new();
            p.push_all(&bytes, &mut out);
            prop_assert!(out.len() <= bytes.len());
        }

        #[test]
        fn unstuffer_inverts_stuffing(data in proptest::collection::vec(any::<u8>(), 0..600),
                                      cut in 0usize..700) {
            let wire = dle::stuff_block(&data);
            let cut = cut.min(wire.len());
            let mut u = Unstuffer::new();
            let mut got = Vec::new();
            let (n1, m1) = u.push(&wire[..cut], &mut got);
            let (n2, m2) = if m1.is_none() { u.push(&wire[cut..], &mut got) } else { (0, None) };
            prop_assert_eq!(&got, &data);
            prop_assert!(m1.is_some() || m2.is_some());
            prop_assert_eq!(n1 + n2, wire.len());
        }

        #[test]
        fn unstuffer_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let mut u = Unstuffer::new();
            let mut got = Vec::new();
            let mut rest = &bytes[..];
            let mut rounds = 0;
            while !rest.is_empty() && rounds < 4000 {
                let (n, _) = u.push(rest, &mut got);
                prop_assert!(n >= 1 && n <= rest.len());
                rest = &rest[n..];
                rounds += 1;
            }
            prop_assert!(got.len() <= bytes.len() * 2);
        }
    }
}
