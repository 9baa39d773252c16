//! T.30 step scripts: one engine driven event by event, the commands it answers with checked
//! against the flow charts (T.30 Figure 5-2, Annex A), and the engine fuzzed with arbitrary
//! events (it must never panic and must always end by hanging up).

use faxgate::fax::t30::pages::{PagesSink, PagesSource};
use faxgate::fax::t30::{
    Capabilities, Cause, CauseClass, Coding, Command, Dcs, Engine, EngineConfig, Event, Fcf, Frame,
    Modulation, Phase, State, Timers, VResolution,
};
use faxgate::image::{Page, Resolution};
use proptest::prelude::*;
use std::time::Duration;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn small_page(res: Resolution) -> Page {
    let mut p = Page::new(1728, 40, res).unwrap();
    for y in 0..40 {
        p.set(100 + y * 7, y, true);
    }
    p
}

fn sender() -> Engine {
    let cfg = EngineConfig {
        local_id: "+1 555 0199".into(),
        ecm: false,
        ..EngineConfig::default()
    };
    let pages = vec![vec![
        small_page(Resolution::FINE),
        small_page(Resolution::FINE),
    ]];
    Engine::sender(cfg, Box::new(PagesSource::new(pages)))
}

fn receiver() -> Engine {
    let cfg = EngineConfig {
        local_id: "+1 555 0100".into(),
        ..EngineConfig::default()
    };
    Engine::receiver(cfg, Box::new(PagesSink::new()))
}

fn drain(e: &mut Engine) -> Vec<Command> {
    std::iter::from_fn(|| e.next_command()).collect()
}

fn frames_of(c: &Command) -> Vec<Frame> {
    match c {
        Command::SendFrames(f) => f.clone(),
        other => panic!("expected frames, got {other:?}"),
    }
}

fn fcfs(c: &Command) -> Vec<Fcf> {
    frames_of(c).iter().map(|f| f.fcf().unwrap()).collect()
}

/// Acknowledges every transmit command in `cmds`.
fn sent_all(e: &mut Engine, cmds: &[Command], now: Duration) {
    for c in cmds {
        if !matches!(
            c,
            Command::ReceiveFrames { .. } | Command::ReceiveData { .. } | Command::HangUp
        ) {
            e.handle(Event::Sent, now);
        }
    }
}

fn dis_frame(caps: &Capabilities) -> Frame {
    Frame::new(Fcf::Dis, false, &caps.encode(), true)
}

#[test]
fn timers_are_the_t30_values() {
    let t = Timers::default();
    assert_eq!(t.t1, Duration::from_secs(35)); // T.30: T1 = 35 ± 5 s
    assert_eq!(t.t2, Duration::from_secs(7)); // T2 = 6 ± 1 s: the upper tolerance
    assert_eq!(t.t4, Duration::from_secs(3)); // T4 = 3 s ± 15 %
    assert_eq!(t.t5, Duration::from_secs(60)); // Annex A: T5 = 60 ± 5 s
}

#[test]
fn answering_receiver_opens_with_csi_and_dis_then_waits_t4() {
    let mut e = receiver();
    e.start(ms(0));
    assert_eq!(e.phase(), Phase::B);
    assert_eq!(e.state(), State::R);
    let c = drain(&mut e);
    assert_eq!(c.len(), 1);
    assert_eq!(fcfs(&c[0]), [Fcf::Csi, Fcf::Dis]);
    let f = frames_of(&c[0]);
    assert!(!f[0].is_final() && f[1].is_final());
    let caps = Capabilities::decode(f[1].fif());
    assert!(caps.can_receive && caps.ecm && caps.mmr && caps.fine && caps.superfine);
    assert!(caps.modems.v17 && caps.modems.v29 && caps.modems.v27ter);
    assert_eq!(f[1].fcf_octet(), 0x80, "DIS has no X bit");
    e.handle(Event::Sent, ms(1800));
    assert_eq!(e.state(), State::F);
    assert_eq!(
        drain(&mut e),
        [Command::ReceiveFrames {
            timeout: Duration::from_secs(3)
        }]
    );
    assert_eq!(e.poll_at(), Some(ms(4800)));
    // T4 passes with nothing heard: DIS again (repeated until T1).
    e.handle_timeout(ms(4800));
    assert_eq!(fcfs(&drain(&mut e)[0]), [Fcf::Csi, Fcf::Dis]);
}

#[test]
fn caller_answers_dis_with_dcs_and_tcf_at_the_best_common_mode() {
    let mut e = sender();
    e.start(ms(0));
    assert_eq!(e.state(), State::T);
    assert_eq!(
        drain(&mut e),
        [Command::ReceiveFrames {
            timeout: Duration::from_secs(35)
        }]
    );
    // A V.27 ter / V.29 machine, standard resolution only, MH only, no ECM.
    let mut remote = Capabilities::ours(9600, false);
    remote.modems.v17 = false;
    remote.fine = false;
    remote.superfine = false;
    remote.mr = false;
    remote.scan_time.standard_ms = 20;
    e.handle(Event::Connect, ms(500));
    // Carrier detected: the wait for it is over; the frames may take at most the T.30 §5.3.1
    // 3 s ± 15 % (ours: 10 s), so a carrier that never drops cannot hold the call forever.
    assert_eq!(
        e.poll_at(),
        Some(ms(500) + faxgate::fax::t30::FRAMES_CARRIER_MAX),
        "carrier detected: bounded"
    );
    e.handle(
        Event::Frame(Frame::new(
            Fcf::Csi,
            false,
            &faxgate::fax::t30::fcf::encode_id("+44 20 7946"),
            false,
        )),
        ms(1500),
    );
    e.handle(Event::Frame(dis_frame(&remote)), ms(1600));
    let c = drain(&mut e);
    assert_eq!(e.state(), State::D);
    assert_eq!(fcfs(&c[0]), [Fcf::Tsi, Fcf::Dcs]);
    let f = frames_of(&c[0]);
    assert_eq!(f[1].fcf_octet(), 0x83, "DCS from the caller carries X = 1");
    let dcs = Dcs::decode(f[1].fif()).unwrap();
    assert_eq!(dcs.modulation, Modulation::V29_9600);
    assert_eq!(dcs.resolution, VResolution::Standard);
    assert_eq!(dcs.coding, Coding::Mh);
    assert!(!dcs.ecm);
    assert_eq!(dcs.scan_time_ms, 20);
    assert_eq!(c[1], Command::Silence(ms(75)));
    assert_eq!(
        c[2],
        Command::SendTcf {
            modulation: Modulation::V29_9600,
            duration: ms(1500)
        }
    );
    assert_eq!(e.report().remote_id.as_deref(), Some("+44 20 7946"));
    sent_all(&mut e, &c, ms(4000));
    assert_eq!(e.state(), State::DPostTcf);
    assert_eq!(e.poll_at(), Some(ms(7000)));
}

#[test]
fn dis_without_receive_capability_is_incompatible() {
    let mut e = sender();
    e.start(ms(0));
    drain(&mut e);
    let mut remote = Capabilities::ours(14400, true);
    remote.can_receive = false;
    e.handle(Event::Frame(dis_frame(&remote)), ms(1000));
    let c = drain(&mut e);
    assert_eq!(fcfs(&c[0]), [Fcf::Dcn]);
    assert_eq!(e.phase(), Phase::E);
    e.handle(Event::Sent, ms(2000));
    assert_eq!(drain(&mut e), [Command::HangUp]);
    assert!(e.is_finished());
    assert_eq!(e.report().cause, Some(Cause::Incompatible));
    assert_eq!(Cause::Incompatible.class(), CauseClass::Fail);
}

/// Drives a sender to node II ("response received?") after its first page.
fn sender_at_post_message() -> (Engine, Duration) {
    let mut e = sender();
    e.start(ms(0));
    drain(&mut e);
    e.handle(
        Event::Frame(dis_frame(&Capabilities::ours(14400, false))),
        ms(2000),
    );
    let c = drain(&mut e);
    sent_all(&mut e, &c, ms(5000));
    drain(&mut e);
    e.handle(
        Event::Frame(Frame::new(Fcf::Cfr, false, &[], true)),
        ms(6000),
    );
    let c = drain(&mut e);
    assert!(matches!(c[1], Command::SendPage { .. }), "{c:?}");
    sent_all(&mut e, &c, ms(8000));
    let c = drain(&mut e);
    assert_eq!(e.phase(), Phase::D);
    assert_eq!(c[0], Command::Silence(ms(75)));
    assert_eq!(fcfs(&c[1]), [Fcf::Mps]);
    sent_all(&mut e, &c, ms(9000));
    assert_eq!(e.state(), State::IIQ);
    drain(&mut e);
    (e, ms(9000))
}

#[test]
fn unanswered_command_is_repeated_three_times_then_dcn() {
    let (mut e, mut now) = sender_at_post_message();
    for repeat in 1..=3 {
        now += Duration::from_secs(3);
        assert_eq!(e.poll_at(), Some(now), "T4 before repeat {repeat}");
        e.handle_timeout(now - ms(1));
        assert!(e.next_command().is_none(), "not before T4");
        e.handle_timeout(now);
        let c = drain(&mut e);
        assert_eq!(fcfs(&c[0]), [Fcf::Mps], "repeat {repeat}");
        now += ms(1200);
        sent_all(&mut e, &c, now);
        drain(&mut e);
    }
    now += Duration::from_secs(3);
    e.handle_timeout(now);
    let c = drain(&mut e);
    assert_eq!(fcfs(&c[0]), [Fcf::Dcn]);
    e.handle(Event::Sent, now + ms(1200));
    assert_eq!(drain(&mut e), [Command::HangUp]);
    assert_eq!(e.report().cause, Some(Cause::NoResponse));
    assert_eq!(Cause::NoResponse.class(), CauseClass::Retry);
}

#[test]
fn rtn_leads_back_to_phase_b_and_the_same_page() {
    let (mut e, now) = sender_at_post_message();
    e.handle(Event::Frame(Frame::new(Fcf::Rtn, false, &[], true)), now);
    let c = drain(&mut e);
    assert_eq!(e.phase(), Phase::B);
    assert_eq!(fcfs(&c[0]), [Fcf::Tsi, Fcf::Dcs]);
    assert!(matches!(c[2], Command::SendTcf { .. }));
    assert_eq!(
        e.report().pages[0].outcome,
        faxgate::fax::t30::PageOutcome::Rejected
    );
}

#[test]
fn carrier_lost_ends_the_call_at_once() {
    let (mut e, now) = sender_at_post_message();
    e.handle(Event::CarrierLost, now);
    assert_eq!(drain(&mut e), [Command::HangUp]);
    assert_eq!(e.report().cause, Some(Cause::CarrierLost));
}

#[test]
fn local_abort_sends_dcn() {
    let (mut e, now) = sender_at_post_message();
    e.abort(now);
    let c = drain(&mut e);
    assert_eq!(fcfs(&c[0]), [Fcf::Dcn]);
    e.handle(Event::Sent, now);
    assert_eq!(drain(&mut e), [Command::HangUp]);
    assert_eq!(e.report().cause, Some(Cause::LocalAbort));
}

#[derive(Debug, Clone)]
enum Ev {
    Sent,
    Connect,
    Frame(u8, Vec<u8>, bool),
    Known(usize, Vec<u8>, bool),
    Bad,
    Data(Vec<u8>),
    End,
    Wrong,
    Timeout,
    Tick(u16),
    Lost,
}

const KNOWN: [Fcf; 16] = [
    Fcf::Dis,
    Fcf::Dcs,
    Fcf::Cfr,
    Fcf::Ftt,
    Fcf::Mps,
    Fcf::Eom,
    Fcf::Eop,
    Fcf::Mcf,
    Fcf::Rtn,
    Fcf::Rtp,
    Fcf::Pps,
    Fcf::Ppr,
    Fcf::Rnr,
    Fcf::Ctc,
    Fcf::Dcn,
    Fcf::Fcd,
];

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        4 => Just(Ev::Sent),
        1 => Just(Ev::Connect),
        2 => (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..40), any::<bool>())
            .prop_map(|(a, b, c)| Ev::Frame(a, b, c)),
        4 => (0..KNOWN.len(), proptest::collection::vec(any::<u8>(), 0..40), any::<bool>())
            .prop_map(|(a, b, c)| Ev::Known(a, b, c)),
        1 => Just(Ev::Bad),
        1 => proptest::collection::vec(any::<u8>(), 0..300).prop_map(Ev::Data),
        2 => Just(Ev::End),
        1 => Just(Ev::Wrong),
        1 => Just(Ev::Timeout),
        2 => any::<u16>().prop_map(Ev::Tick),
        1 => Just(Ev::Lost),
    ]
}

/// Commands the line answers with `Event::Sent` when they end.
fn is_transmission(c: &Command) -> bool {
    matches!(
        c,
        Command::SendFrames(_)
            | Command::SendTcf { .. }
            | Command::SendPage { .. }
            | Command::SendEcmBlock { .. }
            | Command::Silence(_)
    )
}

fn fuzz(mut e: Engine, events: Vec<Ev>) -> Result<(), TestCaseError> {
    let mut now = Duration::ZERO;
    e.start(now);
    let mut hangups = 0;
    // Transmissions (and silences) the line has not yet reported sent.
    let mut sending = 0usize;
    for ev in events {
        let event = match ev.clone() {
            Ev::Sent => Event::Sent,
            Ev::Connect => Event::Connect,
            Ev::Frame(fcf, fif, last) => {
                let mut b = vec![0xFF, if last { 0x13 } else { 0x03 }, fcf];
                b.extend(fif);
                match Frame::parse(&b) {
                    Ok(f) => Event::Frame(f),
                    Err(_) => Event::BadFrame,
                }
            }
            Ev::Known(i, fif, last) => Event::Frame(Frame::new(KNOWN[i], last, &fif, last)),
            Ev::Bad => Event::BadFrame,
            Ev::Data(d) => Event::Data(d),
            Ev::End => Event::CarrierEnd,
            Ev::Wrong => Event::WrongCarrier,
            Ev::Timeout => Event::Timeout,
            Ev::Tick(t) => {
                now += Duration::from_millis(u64::from(t));
                Event::Timeout // not delivered: time passes instead
            }
            Ev::Lost => Event::CarrierLost,
        };
        if matches!(ev, Ev::Tick(_)) {
            e.handle_timeout(now);
        } else {
            e.handle(event, now);
        }
        if matches!(ev, Ev::Sent) {
            sending = sending.saturating_sub(1);
        }
        let mut n = 0;
        while let Some(c) = e.next_command() {
            n += 1;
            prop_assert!(n < 16, "runaway commands");
            if c == Command::HangUp {
                hangups += 1;
            }
            sending += usize::from(is_transmission(&c));
        }
        if let Some(p) = e.poll_at() {
            prop_assert!(p >= now);
        }
    }
    prop_assert!(hangups <= 1);
    prop_assert_eq!(hangups == 1, e.is_finished());

    // Then nothing more comes from the far end: run the clock out the way a line would (every
    // transmission and silence is reported sent when it ends; a receive ends only by the
    // engine's own timer). Every run must hang up: an engine that waits with no timer, or
    // whose timers keep it alive forever, fails here.
    for _ in 0..10_000 {
        while let Some(c) = e.next_command() {
            if c == Command::HangUp {
                hangups += 1;
            }
            sending += usize::from(is_transmission(&c));
        }
        if e.is_finished() {
            break;
        }
        if sending > 0 {
            sending -= 1;
            e.handle(Event::Sent, now);
            continue;
        }
        match e.poll_at() {
            Some(t) => {
                now = now.max(t);
                e.handle_timeout(now);
            }
            None => {
                return Err(TestCaseError::fail(format!(
                    "engine waits forever with no timer in state {:?}",
                    e.state()
                )));
            }
        }
    }
    while let Some(c) = e.next_command() {
        if c == Command::HangUp {
            hangups += 1;
        }
    }
    prop_assert!(e.is_finished(), "never hung up; state {:?}", e.state());
    prop_assert_eq!(hangups, 1);
    // T.30 §5.4.3.1: T1 (35 s) bounds phase B, T2/T4 the rest; a run-out call cannot take hours.
    prop_assert!(now < Duration::from_secs(3600), "ran {now:?} of line time");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn receiver_survives_any_events(events in proptest::collection::vec(ev(), 0..80)) {
        fuzz(receiver(), events)?;
    }

    #[test]
    fn sender_survives_any_events(events in proptest::collection::vec(ev(), 0..80)) {
        fuzz(sender(), events)?;
    }
}
