//! Attacks on the T.38 media path (issue 17): random and mutated IFP packets and UDPTL
//! datagrams against the decoders (never a panic, every length bounded), a stream of garbage
//! into a call endpoint, and forged media from another address during a real call.

use faxgate::fax::t30::pages::{PagesSink, PagesSource};
use faxgate::fax::t30::{Cause, Engine, EngineConfig};
use faxgate::fax::t38::T38Params;
use faxgate::fax::t38::ifp::{DataType, Field, FieldType, Ifp, Indicator, MAX_FIELDS};
use faxgate::fax::t38::session::{Endpoint, Media, RX_WINDOW, run_call};
use faxgate::fax::t38::udptl::{self, Datagram, Delivery, HISTORY, Receiver, Recovery};
use faxgate::image::{Page, Resolution};
use proptest::prelude::*;
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Valid packets to mutate from.
fn seeds() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for version in 0..4 {
        v.push(
            Ifp::Indicator(Indicator::V21Preamble)
                .encode(version)
                .unwrap(),
        );
        v.push(
            Ifp::Data(
                DataType::V17_14400,
                vec![
                    Field::new(FieldType::HdlcData, &[0xFF, 0x03, 0x06, 1, 2, 3]),
                    Field::bare(FieldType::HdlcFcsOk),
                ],
            )
            .encode(version)
            .unwrap(),
        );
        v.push(
            Ifp::Data(
                DataType::V29_9600,
                vec![Field::new(FieldType::T4NonEcmData, &[0; 300])],
            )
            .encode(version)
            .unwrap(),
        );
    }
    v
}

fn mutate(mut b: Vec<u8>, ops: &[(u16, u8, u8)]) -> Vec<u8> {
    for &(at, val, op) in ops {
        let i = usize::from(at) % (b.len() + 1);
        match op % 4 {
            0 if i < b.len() => b[i] = val,
            1 if i < b.len() => b[i] ^= 1 << (val % 8),
            2 => b.truncate(i),
            _ => b.insert(i, val),
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn t38_ifp_decoder_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2000), version in 0u8..4) {
        if let Ok((p, used)) = Ifp::decode_prefix(&bytes, version) {
            prop_assert!(used <= bytes.len());
            prop_assert!(p.fields().len() <= MAX_FIELDS);
            let data: usize = p.fields().iter().map(|f| f.data.len()).sum();
            prop_assert!(data <= bytes.len());
        }
        let _ = Ifp::decode_padded(&bytes, version);
    }

    #[test]
    fn t38_ifp_decoder_mutated_packets(seed in 0usize..12, ops in proptest::collection::vec((any::<u16>(), any::<u8>(), any::<u8>()), 1..6), version in 0u8..4) {
        let b = mutate(seeds()[seed].clone(), &ops);
        if let Ok(p) = Ifp::decode(&b, version) {
            let data: usize = p.fields().iter().map(|f| f.data.len()).sum();
            prop_assert!(data <= b.len());
        }
    }

    #[test]
    fn t38_udptl_decoder_random_and_mutated(bytes in proptest::collection::vec(any::<u8>(), 0..1500),
                                           ops in proptest::collection::vec((any::<u16>(), any::<u8>(), any::<u8>()), 1..6)) {
        if let Ok(d) = Datagram::decode(&bytes) {
            prop_assert!(d.primary.len() <= bytes.len());
        }
        let mut tx = udptl::Sender::new(3, 400);
        let mut dg = Vec::new();
        for s in seeds() {
            dg = tx.send(&s);
        }
        let m = mutate(dg, &ops);
        if let Ok(Datagram { recovery: Recovery::Secondary(v), .. }) = Datagram::decode(&m) {
            prop_assert!(v.len() <= udptl::MAX_SECONDARIES);
        }
    }
}

#[test]
fn t38_receiver_memory_stays_bounded_under_garbage_and_jumps() {
    // Datagrams with wild sequence numbers, many secondaries and FEC groups: the receiver
    // holds at most its window plus its FEC history, whatever comes.
    let mut rx = Receiver::new(RX_WINDOW);
    let mut out = Vec::new();
    let mut x: u32 = 12345;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    for i in 0..20_000u32 {
        let seq = if i % 7 == 0 {
            next() as u16
        } else {
            (i * 3) as u16
        };
        let recovery = if i % 3 == 0 {
            Recovery::Fec {
                span: next() % 20,
                entries: vec![vec![next() as u8; 10]; (next() % 5) as usize],
            }
        } else {
            Recovery::Secondary(vec![vec![6]; (next() % 10) as usize])
        };
        let d = Datagram {
            seq,
            primary: vec![next() as u8; (next() % 40) as usize],
            recovery,
        };
        let _ = rx.push(&d.encode(), &mut out);
        assert!(rx.held() <= usize::from(RX_WINDOW) + HISTORY as usize + 1);
        if rx.has_gap() && i % 11 == 0 {
            rx.skip_gap(&mut out);
        }
        out.clear();
    }
    // Lost counts are reported, not materialised: a jump of 30000 is one entry.
    let mut rx = Receiver::new(8);
    rx.push(
        &Datagram {
            seq: 0,
            primary: vec![6],
            recovery: Recovery::Secondary(vec![]),
        }
        .encode(),
        &mut out,
    )
    .unwrap();
    rx.push(
        &Datagram {
            seq: 30000,
            primary: vec![6],
            recovery: Recovery::Secondary(vec![]),
        }
        .encode(),
        &mut out,
    )
    .unwrap();
    assert!(out.len() <= 3, "{out:?}");
    assert!(out.iter().any(|d| matches!(d, Delivery::Lost { .. })));
}

#[test]
fn t38_endpoint_survives_a_garbage_stream() {
    // A receiving engine's endpoint fed random and mutated datagrams for a simulated minute:
    // no panic, and the engine ends its call by its own timers (T1), not by anything forged.
    let mut engine = Engine::receiver(EngineConfig::default(), Box::new(PagesSink::new()));
    let mut ep = Endpoint::new(&T38Params::default());
    let mut now = Duration::ZERO;
    engine.start(now);
    let mut out = Vec::new();
    let mut x: u32 = 777;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    let seeds = seeds();
    let mut tx = udptl::Sender::new(2, 400);
    for i in 0..60_000u32 {
        ep.step(&mut engine, now, &mut out);
        out.clear();
        if ep.finished() {
            break;
        }
        let d = if i % 2 == 0 {
            (0..next() % 300).map(|_| next() as u8).collect::<Vec<u8>>()
        } else {
            let s = &seeds[next() as usize % seeds.len()];
            let ops: Vec<(u16, u8, u8)> = (0..next() % 3)
                .map(|_| (next() as u16, next() as u8, next() as u8))
                .collect();
            tx.send(&mutate(s.clone(), &ops))
        };
        ep.datagram(&d, now);
        now += Duration::from_millis(2);
    }
    ep.step(&mut engine, now, &mut out);
    assert!(engine.is_finished(), "{:?}", engine.state());
    assert_ne!(engine.report().cause, Some(Cause::Ok));
    assert_eq!(engine.report().pages_confirmed(), 0);
}

#[test]
fn t38_media_from_another_address_is_ignored() {
    // A real call over loopback while a third socket floods the receiver's media port with
    // datagrams that would wreck the call if taken (packets far ahead in sequence, garbage,
    // a DCN): the call still delivers its page.
    let page = {
        let mut p = Page::new(1728, 100, Resolution::FINE).unwrap();
        for y in 0..100 {
            p.set(y * 7 % 1728, y, true);
        }
        p
    };
    let sink = PagesSink::new();
    let got = sink.pages();
    let mut sender = Engine::sender(
        EngineConfig::default(),
        Box::new(PagesSource::new(vec![vec![page.clone()]])),
    );
    let mut receiver = Engine::receiver(EngineConfig::default(), Box::new(sink));
    let sa = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sb = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (a, b) = (sa.local_addr().unwrap(), sb.local_addr().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let attacker = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let evil = UdpSocket::bind("127.0.0.1:0").unwrap();
            let dcn = faxgate::fax::t30::Frame::new(faxgate::fax::t30::Fcf::Dcn, false, &[], true);
            let forged = Ifp::Data(
                DataType::V21,
                vec![
                    Field::new(FieldType::HdlcData, dcn.bytes()),
                    Field::bare(FieldType::HdlcFcsOkSigEnd),
                ],
            )
            .encode(0)
            .unwrap();
            let mut n = 0u32;
            // Bounded by the call: the main thread stops it.
            while !stop.load(Ordering::Relaxed) && n < 200_000 {
                let d = Datagram {
                    seq: (n * 997) as u16,
                    primary: forged.clone(),
                    recovery: Recovery::Secondary(vec![]),
                };
                let _ = evil.send_to(&d.encode(), b);
                let _ = evil.send_to(&[0xFF; 40], b);
                n += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let mut ma = Media {
        socket: sa,
        remote: b,
        params: T38Params::default(),
        hangup: Arc::new(AtomicBool::new(false)),
    };
    let mut mb = Media {
        socket: sb,
        remote: a,
        params: T38Params::default(),
        hangup: Arc::new(AtomicBool::new(false)),
    };
    let hb = std::thread::spawn(move || {
        run_call(&mut mb, &mut receiver).unwrap();
        receiver
    });
    run_call(&mut ma, &mut sender).unwrap();
    let receiver = hb.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    attacker.join().unwrap();
    assert_eq!(
        sender.report().cause,
        Some(Cause::Ok),
        "{:?}",
        sender.report()
    );
    assert_eq!(receiver.report().cause, Some(Cause::Ok));
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 1);
    assert!(got[0].page == page);
}

#[test]
fn t38_hangup_flag_ends_the_call_as_a_lost_carrier() {
    // The SIP layer's BYE mid-call: the receiving side's call ends promptly, as a lost line.
    let mut receiver = Engine::receiver(EngineConfig::default(), Box::new(PagesSink::new()));
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let hangup = Arc::new(AtomicBool::new(false));
    let mut m = Media {
        socket: sock,
        remote: peer.local_addr().unwrap(),
        params: T38Params::default(),
        hangup: hangup.clone(),
    };
    let h = std::thread::spawn(move || {
        run_call(&mut m, &mut receiver).unwrap();
        receiver
    });
    std::thread::sleep(Duration::from_millis(300));
    hangup.store(true, Ordering::Relaxed);
    let receiver = h.join().unwrap();
    assert!(receiver.is_finished());
    assert_eq!(receiver.report().cause, Some(Cause::CarrierLost));
}
