//! Two T.30 engines back to back over the in-memory line: every coding × resolution, ECM on and
//! off, one and three pages, EOM between documents — pages must arrive pixel-exact and both
//! call reports agree. Then the same line with tampering in flight, and transcript fixtures.

use faxgate::fax::t30::line::{Fate, Line, Side, Signal, Transmission};
use faxgate::fax::t30::pages::{PagesSink, ReceivedPage};
use faxgate::fax::t30::{
    Cause, Coding, Engine, EngineConfig, Fcf, Modulation, PageOutcome, State, VResolution,
};
use faxgate::image::{Page, Resolution};
use std::sync::{Arc, Mutex};

const STEPS: usize = 100_000;

/// A deterministic test page: `seed` varies the pattern; about 5 cm of A4 at any resolution.
fn test_page(res: VResolution, seed: u32) -> Page {
    let (r, rows) = match res {
        VResolution::Standard => (Resolution::STANDARD, 200),
        VResolution::Fine => (Resolution::FINE, 400),
        VResolution::Superfine => (Resolution::SUPERFINE, 800),
    };
    let mut p = Page::new(1728, rows, r).unwrap();
    let mut x: u32 = 0x9E37_79B9 ^ seed.wrapping_mul(0x85EB_CA6B);
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    // "Text": short black bars in lines; a frame; a diagonal.
    for _ in 0..300 {
        let y0 = next() % (rows - 10);
        let x0 = next() % 1600;
        let w = 2 + next() % 60;
        let h = 1 + next() % 8;
        for y in y0..y0 + h {
            for xx in x0..(x0 + w).min(1728) {
                p.set(xx, y, true);
            }
        }
    }
    for y in 0..rows {
        p.set(5, y, true);
        p.set(1722, y, true);
        p.set((y * 3 + seed) % 1728, y, true);
    }
    p
}

struct Call {
    line: Line,
    received: Arc<Mutex<Vec<ReceivedPage>>>,
    sent: Vec<Page>,
}

fn config(id: &str, ecm: bool) -> EngineConfig {
    EngineConfig {
        local_id: id.into(),
        ecm,
        ..EngineConfig::default()
    }
}

fn call(docs: Vec<Vec<Page>>, tx: EngineConfig, rx: EngineConfig, sink: PagesSink) -> Call {
    let sent: Vec<Page> = docs.iter().flatten().cloned().collect();
    let received = sink.pages();
    let source = faxgate::fax::t30::pages::PagesSource::new(docs);
    let a = Engine::sender(tx, Box::new(source));
    let b = Engine::receiver(rx, Box::new(sink));
    Call {
        line: Line::new(a, b),
        received,
        sent,
    }
}

fn run(c: &mut Call) {
    if let Err(e) = c.line.run(STEPS) {
        panic!("line: {e}\n{}", c.line.transcript());
    }
}

fn assert_pixel_exact(c: &Call) {
    let got = c.received.lock().unwrap();
    assert_eq!(got.len(), c.sent.len(), "{}", c.line.transcript());
    for (i, (g, s)) in got.iter().zip(&c.sent).enumerate() {
        assert_eq!(g.quality.bad_rows, 0, "page {i}");
        assert!(g.page == *s, "page {i} differs\n{}", c.line.transcript());
    }
}

fn assert_reports_agree(c: &Call, cause: Cause) {
    let a = c.line.engine(Side::Caller).report();
    let b = c.line.engine(Side::Answerer).report();
    assert_eq!(a.cause, Some(cause), "{}", c.line.transcript());
    assert_eq!(b.cause, Some(cause), "{}", c.line.transcript());
    assert_eq!(a.remote_id.as_deref(), Some("+1 555 0100"));
    assert_eq!(b.remote_id.as_deref(), Some("+1 555 0199"));
    assert_eq!(a.modulation, b.modulation);
    assert_eq!(a.resolution, b.resolution);
    assert_eq!(a.coding, b.coding);
    assert_eq!(a.ecm, b.ecm);
    assert_eq!(a.pages_confirmed(), b.pages_confirmed());
    let outcomes =
        |r: &faxgate::fax::t30::CallReport| r.pages.iter().map(|p| p.outcome).collect::<Vec<_>>();
    assert_eq!(outcomes(a), outcomes(b));
}

/// Compares the call's transcript with `tests/fixtures/t30/<name>.txt`. Set
/// `FAXGATE_BLESS=1` to (re)write the fixture after checking the new transcript by eye.
fn fixture(c: &Call, name: &str, title: &str) {
    let mut text = format!(
        "# {title}\n# ms since the call started · A = the calling engine, B = the answering engine\n"
    );
    text.push_str(c.line.transcript());
    for side in [Side::Caller, Side::Answerer] {
        let e = c.line.engine(side);
        let r = e.report();
        let cause = r.cause.expect("finished");
        text.push_str(&format!(
            "# {}: {:?}, cause {} {:?} ({:?}: {}), pages confirmed {}\n",
            if side == Side::Caller { "A" } else { "B" },
            e.state(),
            cause.number(),
            cause,
            cause.class(),
            cause.meaning(),
            r.pages_confirmed()
        ));
    }
    let path = format!(
        "{}/tests/fixtures/t30/{name}.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    if std::env::var_os("FAXGATE_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (run with FAXGATE_BLESS=1 to create)\n{text}"));
    assert_eq!(text, want, "transcript {name} changed");
}

fn plain(docs: Vec<Vec<Page>>, ecm: bool) -> Call {
    call(
        docs,
        config("+1 555 0199", ecm),
        config("+1 555 0100", ecm),
        PagesSink::new(),
    )
}

#[test]
fn every_coding_and_resolution_ecm_on_and_off() {
    for ecm in [false, true] {
        for res in [
            VResolution::Standard,
            VResolution::Fine,
            VResolution::Superfine,
        ] {
            for coding in [Coding::Mh, Coding::Mr, Coding::Mmr] {
                if coding == Coding::Mmr && !ecm {
                    continue; // T.30 §5.3.6.2.3: MMR only with ECM
                }
                let mut tx = config("+1 555 0199", ecm);
                let rx = config("+1 555 0100", ecm);
                // Steer the coding by what the sender may use.
                tx.max_coding = coding;
                let pages = vec![test_page(res, 1)];
                let mut c = call(vec![pages], tx, rx, PagesSink::new());
                run(&mut c);
                assert_reports_agree(&c, Cause::Ok);
                let r = c.line.engine(Side::Caller).report();
                assert_eq!(r.coding, Some(coding), "{ecm} {res:?}");
                assert_eq!(r.resolution, Some(res));
                assert_eq!(r.ecm, ecm);
                assert_pixel_exact(&c);
            }
        }
    }
}

#[test]
fn three_pages_and_eom_between_documents() {
    for ecm in [false, true] {
        // One document of three pages (MPS, MPS, EOP).
        let docs = vec![(1..=3).map(|i| test_page(VResolution::Fine, i)).collect()];
        let mut c = plain(docs, ecm);
        run(&mut c);
        assert_reports_agree(&c, Cause::Ok);
        assert_pixel_exact(&c);
        assert_eq!(count(&c, "MPS"), if ecm { 0 } else { 2 });
        // Two documents, the second at another resolution: EOM, phase B again, new DCS.
        let docs = vec![
            vec![
                test_page(VResolution::Fine, 4),
                test_page(VResolution::Fine, 5),
            ],
            vec![test_page(VResolution::Standard, 6)],
        ];
        let mut c = plain(docs, ecm);
        run(&mut c);
        assert_reports_agree(&c, Cause::Ok);
        assert_pixel_exact(&c);
        assert_eq!(count(&c, "DCS"), 2, "{}", c.line.transcript());
        assert_eq!(count(&c, "DIS"), 2);
        let r = c.line.engine(Side::Answerer).report();
        assert_eq!(r.resolution, Some(VResolution::Standard));
        assert_eq!(r.pages_confirmed(), 3);
        if ecm {
            fixture(
                &c,
                "ecm_two_documents",
                "ECM, two documents: PPS-MPS, PPS-EOM, phase B again, PPS-EOP",
            );
        } else {
            fixture(
                &c,
                "two_documents",
                "non-ECM, two documents (fine, then standard): MPS, EOM, phase B again, EOP",
            );
        }
    }
}

/// Occurrences of a word in the transcript.
fn count(c: &Call, what: &str) -> usize {
    c.line
        .transcript()
        .split(|ch: char| ch.is_whitespace() || ch == '(')
        .filter(|w| *w == what)
        .count()
}

/// Spoils the FCS of the frame(s) at `index` of a V.21 or ECM transmission.
fn corrupt_frame(t: &mut Transmission, index: usize) {
    let frames = match &mut t.signal {
        Signal::Frames(f) | Signal::Ecm(_, _, f) => f,
        _ => return,
    };
    if let Some(f) = frames.get_mut(index) {
        let mid = f.len() / 2;
        f[mid] ^= 0x5A;
    }
}

/// Replaces a V.21 transmission by one DCN frame (as if the sender had hung up there).
fn make_dcn(t: &mut Transmission, x: bool) {
    let f = faxgate::fax::t30::Frame::new(Fcf::Dcn, x, &[], true);
    t.signal = Signal::Frames(vec![faxgate::fax::t30::hdlc::with_fcs(f.bytes())]);
    t.note = Some("the line delivers DCN instead".into());
}

fn one_shot(
    mut pred: impl FnMut(&Transmission) -> bool + 'static,
    mut act: impl FnMut(&mut Transmission) -> Fate + 'static,
) -> impl FnMut(&mut Transmission) -> Fate + 'static {
    let mut done = false;
    move |t| {
        if !done && pred(t) {
            done = true;
            act(t)
        } else {
            Fate::Deliver
        }
    }
}

#[test]
fn lost_cfr_makes_the_sender_repeat_dcs_and_tcf() {
    let mut c = plain(vec![vec![test_page(VResolution::Fine, 1)]], false);
    c.line = take_line(c.line).with_tamper(one_shot(|t| t.has(Fcf::Cfr), |_| Fate::Drop));
    run(&mut c);
    assert_eq!(count(&c, "DCS"), 2, "{}", c.line.transcript());
    assert_eq!(count(&c, "TCF"), 2);
    assert_reports_agree(&c, Cause::Ok);
    assert_pixel_exact(&c);
    fixture(
        &c,
        "lost_cfr",
        "CFR lost on the line: T4 expires at the caller, DCS + TCF repeated (T.30 Figure 5-2a)",
    );
}

#[test]
fn damaged_first_dis_is_waited_out_until_the_repeat() {
    // The answerer's first NSF/CSI/DIS reaches the caller with every FCS spoiled; the caller
    // must keep listening within T1 and take the repeated DIS (found against spandsp over T.38).
    let mut c = plain(vec![vec![test_page(VResolution::Fine, 1)]], false);
    c.line = take_line(c.line).with_tamper(one_shot(
        |t| t.from == Side::Answerer && t.has(Fcf::Dis),
        |t| {
            let n = match &t.signal {
                Signal::Frames(f) => f.len(),
                _ => 0,
            };
            for i in 0..n {
                corrupt_frame(t, i);
            }
            t.note = Some("every frame damaged".into());
            Fate::Deliver
        },
    ));
    run(&mut c);
    assert_reports_agree(&c, Cause::Ok);
    assert_pixel_exact(&c);
}

/// Lets a test install a tamper hook on a line built by [`call`].
fn take_line(l: Line) -> Line {
    l
}

#[test]
fn ftt_then_success_at_a_lower_speed() {
    let mut c = plain(vec![vec![test_page(VResolution::Standard, 1)]], false);
    c.line = take_line(c.line).with_tamper(one_shot(
        |t| matches!(t.signal, Signal::Tcf(..)),
        |t| {
            if let Signal::Tcf(_, b) = &mut t.signal {
                // Line noise: a burst of errors every 100 octets — no 1 s run of zeros.
                for x in b.iter_mut().step_by(100) {
                    *x = 0xA5;
                }
            }
            t.note = Some("noise".into());
            Fate::Deliver
        },
    ));
    run(&mut c);
    assert_reports_agree(&c, Cause::Ok);
    let a = c.line.engine(Side::Caller).report();
    assert_eq!(a.ftt_count, 1);
    assert_eq!(a.modulation, Some(Modulation::V17_12000));
    assert_eq!(count(&c, "FTT"), 1);
    assert_pixel_exact(&c);
    fixture(
        &c,
        "ftt_fallback",
        "TCF spoiled by noise: FTT, the caller steps V.17 14400 down to 12000",
    );
}

#[test]
fn training_fails_at_every_rate() {
    let mut c = plain(vec![vec![test_page(VResolution::Standard, 1)]], false);
    c.line = take_line(c.line).with_tamper(|t| {
        if let Signal::Tcf(_, b) = &mut t.signal {
            b.iter_mut().step_by(50).for_each(|x| *x = 0xFF);
        }
        Fate::Deliver
    });
    run(&mut c);
    let a = c.line.engine(Side::Caller).report();
    assert_eq!(
        a.cause,
        Some(Cause::TrainingFailed),
        "{}",
        c.line.transcript()
    );
    assert_eq!(a.ftt_count, EngineConfig::default().max_ftt);
    // The receiver saw DCN before any page.
    let b = c.line.engine(Side::Answerer).report();
    assert_eq!(b.cause, Some(Cause::UnexpectedDcn));
    assert!(c.line.engine(Side::Caller).is_finished());
    assert_eq!(c.line.engine(Side::Answerer).state(), State::CallFinished);
}

#[test]
fn corrupt_page_is_answered_with_rtn_and_sent_again() {
    let docs = vec![vec![
        test_page(VResolution::Fine, 1),
        test_page(VResolution::Fine, 2),
    ]];
    let mut c = plain(docs, false);
    c.line = take_line(c.line).with_tamper(one_shot(
        |t| matches!(t.signal, Signal::Page(..)),
        |t| {
            if let Signal::Page(_, _, b) = &mut t.signal {
                // Line noise: one bit hit in every 16th octet of the middle half.
                let n = b.len();
                for x in b[n / 4..3 * n / 4].iter_mut().step_by(16) {
                    *x ^= 0x08;
                }
            }
            t.note = Some("noise over half the page".into());
            Fate::Deliver
        },
    ));
    run(&mut c);
    assert_reports_agree(&c, Cause::Ok);
    let outcomes: Vec<_> = c
        .line
        .engine(Side::Caller)
        .report()
        .pages
        .iter()
        .map(|p| p.outcome)
        .collect();
    assert_eq!(
        outcomes,
        [
            PageOutcome::Rejected,
            PageOutcome::Confirmed,
            PageOutcome::Confirmed
        ],
        "{}\n{:?}",
        c.line.transcript(),
        c.line.engine(Side::Answerer).report().pages
    );
    assert_eq!(count(&c, "RTN"), 1);
    assert_eq!(count(&c, "DCS"), 2, "retrain after RTN");
    assert_pixel_exact(&c);
    fixture(
        &c,
        "rtn_resend",
        "page 1 hit by noise: RTN, retrain (DCS + TCF), page 1 again, then page 2",
    );
}

#[test]
fn lost_ecm_frames_are_repaired_by_ppr() {
    let mut c = plain(vec![vec![test_page(VResolution::Superfine, 1)]], true);
    c.line = take_line(c.line).with_tamper(one_shot(
        |t| matches!(t.signal, Signal::Ecm(..)),
        |t| {
            corrupt_frame(t, 2);
            corrupt_frame(t, 5);
            t.note = Some("frames 2 and 5 damaged".into());
            Fate::Deliver
        },
    ));
    run(&mut c);
    assert_reports_agree(&c, Cause::Ok);
    assert!(
        c.line.transcript().contains("PPR (missing 2,5)"),
        "{}",
        c.line.transcript()
    );
    assert!(c.line.transcript().contains("FCD 2,5 RCP"));
    assert_eq!(c.line.engine(Side::Caller).report().ppr_count, 1);
    assert_pixel_exact(&c);
    fixture(
        &c,
        "ecm_ppr",
        "ECM frames 2 and 5 damaged: PPR asks for them, they are sent again, MCF (Annex A)",
    );
}

#[test]
fn four_pprs_lead_to_ctc_and_a_lower_speed() {
    let mut c = plain(vec![vec![test_page(VResolution::Fine, 1)]], true);
    let mut spoiled = 0;
    c.line = take_line(c.line).with_tamper(move |t| {
        if matches!(t.signal, Signal::Ecm(Modulation::V17_14400, ..)) && spoiled < 4 {
            spoiled += 1;
            corrupt_frame(t, 0);
        }
        Fate::Deliver
    });
    run(&mut c);
    assert_reports_agree(&c, Cause::Ok);
    let a = c.line.engine(Side::Caller).report();
    assert_eq!(a.ppr_count, 4);
    assert_eq!(a.ctc_count, 1);
    assert_eq!(a.modulation, Some(Modulation::V17_12000));
    assert_eq!(count(&c, "CTC"), 1, "{}", c.line.transcript());
    assert_eq!(count(&c, "CTR"), 1);
    assert_pixel_exact(&c);
    fixture(
        &c,
        "ecm_ctc",
        "frame 0 damaged four times at 14400: four PPRs, CTC/CTR, the block at 12000 (Annex A.4.1)",
    );
}

#[test]
fn peer_that_never_answers_ends_with_t1() {
    let mut c = plain(vec![vec![test_page(VResolution::Fine, 1)]], false);
    // Nothing the answerer sends reaches the caller.
    c.line = take_line(c.line).with_tamper(|t| {
        if t.from == Side::Answerer {
            Fate::Drop
        } else {
            Fate::Deliver
        }
    });
    run(&mut c);
    let a = c.line.engine(Side::Caller).report();
    assert_eq!(a.cause, Some(Cause::T1Expired));
    assert_eq!(a.duration, EngineConfig::default().timers.t1);
    let b = c.line.engine(Side::Answerer).report();
    assert_eq!(b.cause, Some(Cause::T1Expired));
    // The answerer repeated DIS every T4 until T1 (T.30 Figure 5-2b).
    assert!(count(&c, "DIS") >= 6, "{}", c.line.transcript());
    fixture(
        &c,
        "t1_no_answer",
        "the caller never hears the answerer: DIS repeated every T4, both give up at T1",
    );
}

#[test]
fn dcn_in_the_middle_of_a_document() {
    let docs = vec![
        (1..=3)
            .map(|i| test_page(VResolution::Standard, i))
            .collect(),
    ];
    let mut c = plain(docs, false);
    // The receiver's second MCF is replaced by DCN: it hung up after page 2.
    let mut mcfs = 0;
    c.line = take_line(c.line).with_tamper(move |t| {
        if t.from == Side::Answerer && t.has(Fcf::Mcf) {
            mcfs += 1;
            if mcfs == 2 {
                make_dcn(t, false);
            }
        }
        Fate::Deliver
    });
    run(&mut c);
    let a = c.line.engine(Side::Caller).report();
    assert_eq!(
        a.cause,
        Some(Cause::UnexpectedDcn),
        "{}",
        c.line.transcript()
    );
    assert_eq!(a.pages_confirmed(), 1);
    assert_eq!(c.line.engine(Side::Caller).state(), State::CallFinished);
    // The receiver kept two good pages and, hearing no more, ends as a partial reception.
    let b = c.line.engine(Side::Answerer).report();
    assert_eq!(b.cause, Some(Cause::PartialReceive));
    assert_eq!(c.received.lock().unwrap().len(), 2);
    fixture(
        &c,
        "dcn_mid_document",
        "the answerer sends DCN instead of the second MCF",
    );
}

#[test]
fn bad_fcs_frames_are_recovered() {
    // The DCS arrives with a bad FCS: the receiver stays silent while TCF passes (a CRP would
    // collide with it) and the caller repeats DCS + TCF after T4. Then EOP arrives damaged:
    // the receiver asks CRP and the caller repeats EOP. Then the MCF is damaged: the caller
    // repeats EOP once more and the receiver answers MCF again.
    let mut c = plain(vec![vec![test_page(VResolution::Fine, 1)]], false);
    let mut step = 0;
    c.line = take_line(c.line).with_tamper(move |t| {
        if step == 0 && t.has(Fcf::Dcs) {
            step = 1;
            let last = t.fcfs().len() - 1;
            corrupt_frame(t, last);
            t.note = Some("DCS FCS bad".into());
        } else if step == 1 && t.has(Fcf::Eop) {
            step = 2;
            corrupt_frame(t, 0);
            t.note = Some("EOP FCS bad".into());
        } else if step == 2 && t.has(Fcf::Mcf) {
            step = 3;
            corrupt_frame(t, 0);
            t.note = Some("MCF FCS bad".into());
        }
        Fate::Deliver
    });
    run(&mut c);
    assert_reports_agree(&c, Cause::Ok);
    assert_eq!(count(&c, "DCS"), 2, "{}", c.line.transcript());
    assert_eq!(count(&c, "CRP"), 1);
    assert_eq!(count(&c, "EOP"), 3);
    assert_pixel_exact(&c);
    fixture(
        &c,
        "bad_fcs",
        "bad FCS on DCS (silence, DCS repeated), on EOP (CRP, EOP repeated) and on MCF (EOP repeated, MCF again)",
    );
}

#[test]
fn receiver_not_ready_is_polled_with_rr() {
    let sink = PagesSink::new().with_not_ready(2);
    let mut c = call(
        vec![vec![test_page(VResolution::Fine, 1)]],
        config("+1 555 0199", true),
        config("+1 555 0100", true),
        sink,
    );
    run(&mut c);
    assert_reports_agree(&c, Cause::Ok);
    assert_eq!(count(&c, "RNR"), 2, "{}", c.line.transcript());
    assert_eq!(count(&c, "RR"), 2);
    assert_pixel_exact(&c);
    fixture(
        &c,
        "ecm_rnr",
        "receiver not ready twice: RNR, RR, RNR, RR, MCF (Annex A flow control)",
    );
}

mod random_line {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// A noisy line: transmissions lost or damaged at random. Whatever happens, both
        /// engines end (no deadlock, no endless loop) with a cause, and a call that both sides
        /// call a success delivered every page pixel-exact.
        #[test]
        fn noisy_line_always_ends_and_never_lies(seed in any::<u64>(), ecm in any::<bool>(), rate in 0u64..50) {
            let docs = vec![vec![test_page(VResolution::Standard, 7), test_page(VResolution::Standard, 8)]];
            let mut c = plain(docs, ecm);
            let mut x = seed | 1;
            let mut rnd = move || { x ^= x << 13; x ^= x >> 7; x ^= x << 17; x };
            c.line = take_line(c.line).with_tamper(move |t| {
                let r = rnd() % 100;
                if r < rate / 3 {
                    return Fate::Drop;
                }
                if r < rate {
                    match &mut t.signal {
                        Signal::Frames(f) | Signal::Ecm(_, _, f) => {
                            let n = f.len();
                            let i = (rnd() as usize) % n;
                            corrupt_frame(t, i);
                        }
                        Signal::Tcf(_, b) | Signal::Page(_, _, b) => {
                            let n = b.len().max(1);
                            for _ in 0..20 {
                                let i = (rnd() as usize) % n;
                                if let Some(v) = b.get_mut(i) { *v ^= 0x10; }
                            }
                        }
                    }
                }
                Fate::Deliver
            });
            let res = c.line.run(STEPS);
            prop_assert!(res.is_ok(), "{:?}\n{}", res, c.line.transcript());
            let a = c.line.engine(Side::Caller).report().cause;
            let b = c.line.engine(Side::Answerer).report().cause;
            prop_assert!(a.is_some() && b.is_some());
            if a == Some(Cause::Ok) {
                // The sender only says OK after MCF to EOP: the receiver has every page.
                let got = c.received.lock().unwrap();
                prop_assert_eq!(got.len(), 2, "{}", c.line.transcript());
                if ecm {
                    for (g, s) in got.iter().zip(&c.sent) {
                        prop_assert!(g.page == *s);
                    }
                }
            }
        }
    }
}

#[test]
fn polling_the_remote_for_its_document() {
    for ecm in [false, true] {
        let docs = vec![
            vec![test_page(VResolution::Fine, 11)],
            vec![test_page(VResolution::Fine, 12)],
        ];
        let sent: Vec<Page> = docs.iter().flatten().cloned().collect();
        let sink = PagesSink::new();
        let received = sink.pages();
        let poller = Engine::poller(config("+1 555 0100", ecm), Box::new(sink));
        let polled = Engine::polled_sender(
            config("+1 555 0199", ecm),
            Box::new(faxgate::fax::t30::pages::PagesSource::new(docs)),
        );
        let mut c = Call {
            line: Line::new(poller, polled),
            received,
            sent,
        };
        run(&mut c);
        let t = c.line.transcript();
        assert!(t.contains("CIG \"+1 555 0100\" DTC"), "{t}");
        for side in [Side::Caller, Side::Answerer] {
            assert_eq!(c.line.engine(side).report().cause, Some(Cause::Ok), "{t}");
            assert_eq!(c.line.engine(side).report().pages_confirmed(), 2);
        }
        assert_eq!(
            c.line.engine(Side::Caller).report().remote_id.as_deref(),
            Some("+1 555 0199")
        );
        assert_pixel_exact(&c);
        if !ecm {
            fixture(
                &c,
                "polling",
                "the caller polls (DIS bit 9 → CIG + DTC), the answerer sends two documents",
            );
        }
    }
}

#[test]
fn polling_a_station_with_nothing_to_send() {
    let sink = PagesSink::new();
    let received = sink.pages();
    let poller = Engine::poller(config("+1 555 0100", false), Box::new(sink));
    let plain_rx = Engine::receiver(config("+1 555 0199", false), Box::new(PagesSink::new()));
    let mut c = Call {
        line: Line::new(poller, plain_rx),
        received,
        sent: vec![],
    };
    run(&mut c);
    let a = c.line.engine(Side::Caller).report();
    assert_eq!(
        a.cause,
        Some(Cause::NothingToPoll),
        "{}",
        c.line.transcript()
    );
    assert_eq!(
        c.line.engine(Side::Answerer).report().cause,
        Some(Cause::UnexpectedDcn)
    );
}

#[test]
fn procedure_interrupt_when_asked() {
    for ecm in [false, true] {
        let docs = vec![
            (1..=2)
                .map(|i| test_page(VResolution::Standard, i))
                .collect(),
        ];
        let sent: Vec<Page> = docs.iter().flatten().cloned().collect();
        let sink = PagesSink::new();
        let received = sink.pages();
        let a = Engine::sender(
            config("+1 555 0199", ecm),
            Box::new(faxgate::fax::t30::pages::PagesSource::new(docs)),
        );
        let mut b = Engine::receiver(config("+1 555 0100", ecm), Box::new(sink));
        b.request_interrupt();
        let mut c = Call {
            line: Line::new(a, b),
            received,
            sent,
        };
        run(&mut c);
        assert_eq!(count(&c, "PIP"), 1, "{}", c.line.transcript());
        for side in [Side::Caller, Side::Answerer] {
            let r = c.line.engine(side).report();
            assert_eq!(r.cause, Some(Cause::Interrupted), "{}", c.line.transcript());
            assert_eq!(r.pages_confirmed(), 1);
        }
        assert_eq!(c.received.lock().unwrap().len(), 1);
    }
}

#[test]
fn identification_frames_pass_through() {
    let mut tx = config("+1 555 0199", false);
    tx.subaddress = Some("4711".into());
    tx.sender_id = Some("ACME SALES".into());
    tx.password = Some("0000".into());
    tx.nsf = Some(vec![0xB5, 0x00, 0x2A, 0x01]);
    let mut rx = config("+1 555 0100", false);
    rx.nsf = Some(vec![0x20, 0x00, 0x7F]);
    rx.scan_time_ms = 20; // the receiver asks for 20 ms lines: the sender pads with fill
    let mut c = call(
        vec![vec![test_page(VResolution::Fine, 3)]],
        tx,
        rx,
        PagesSink::new(),
    );
    run(&mut c);
    assert_reports_agree(&c, Cause::Ok);
    let b = c.line.engine(Side::Answerer).report();
    assert_eq!(b.subaddress.as_deref(), Some("4711"));
    assert_eq!(b.sender_id.as_deref(), Some("ACME SALES"));
    assert!(b.password_received);
    assert_eq!(b.nsf.as_deref(), Some(&[0xB5, 0x00, 0x2A, 0x01][..]));
    let a = c.line.engine(Side::Caller).report();
    assert_eq!(a.nsf.as_deref(), Some(&[0x20, 0x00, 0x7F][..]));
    assert_eq!(c.line.engine(Side::Caller).dcs().unwrap().scan_time_ms, 20);
    // 400 fine rows at 20 ms and 14400 bit/s: at least 288 bits a row.
    assert!(a.pages[0].bytes >= 400 * 288 / 8, "{}", a.pages[0].bytes);
    assert!(
        c.line
            .transcript()
            .contains("SUB \"4711\" SID \"ACME SALES\" DCS")
    );
    assert_pixel_exact(&c);
}

/// A page of random pixels: its MMR coding is larger than one ECM block.
fn noise_page(seed: u32) -> Page {
    let mut p = Page::new(1728, 400, Resolution::FINE).unwrap();
    let mut x: u32 = seed | 1;
    for y in 0..400 {
        for xx in 0..1728 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if x.is_multiple_of(3) {
                p.set(xx, y, true);
            }
        }
    }
    p
}

#[test]
fn ecm_pages_larger_than_a_block_use_pps_null() {
    for frame_64 in [false, true] {
        let mut tx = config("+1 555 0199", true);
        tx.ecm_frame_64 = frame_64;
        let rx = config("+1 555 0100", true);
        let mut c = call(
            vec![vec![noise_page(5), test_page(VResolution::Fine, 6)]],
            tx,
            rx,
            PagesSink::new(),
        );
        run(&mut c);
        assert_reports_agree(&c, Cause::Ok);
        let t = c.line.transcript();
        // PPS-NULL (FIF octet 1 = 00) between the blocks of page 1, then PPS-MPS, PPS-EOP.
        assert!(t.contains("PPS (00 00 00 FF)"), "{t}");
        assert!(t.contains("PPS (2F 01 00"), "{t}");
        assert_eq!(
            c.line.engine(Side::Answerer).dcs().unwrap().frame_64,
            frame_64
        );
        let bytes = c.line.engine(Side::Caller).report().pages[0].bytes;
        let block = if frame_64 { 64 * 256 } else { 256 * 256 };
        assert!(bytes > block, "{bytes}");
        assert_pixel_exact(&c);
    }
}

#[test]
fn page_over_the_receive_limit_ends_the_call() {
    for ecm in [false, true] {
        let tx = config("+1 555 0199", ecm);
        let mut rx = config("+1 555 0100", ecm);
        rx.max_page_bytes = 1000;
        let mut c = call(
            vec![vec![test_page(VResolution::Fine, 1)]],
            tx,
            rx,
            PagesSink::new(),
        );
        run(&mut c);
        let b = c.line.engine(Side::Answerer).report();
        assert_eq!(b.cause, Some(Cause::TooMuchData), "{}", c.line.transcript());
        let a = c.line.engine(Side::Caller).report().cause.unwrap();
        assert_eq!(a.class(), faxgate::fax::t30::CauseClass::Retry, "{a:?}");
        assert!(c.received.lock().unwrap().is_empty());
    }
}

/// A sink whose storage fails when a page is to be kept.
struct FailingSink(PagesSink);

impl faxgate::fax::t30::PageSink for FailingSink {
    fn start_page(&mut self, c: &faxgate::fax::t30::PageCoding) {
        self.0.start_page(c)
    }
    fn data(&mut self, b: &[u8]) {
        self.0.data(b)
    }
    fn end_page(&mut self) -> faxgate::fax::t30::PageQuality {
        self.0.end_page()
    }
    fn finish_page(&mut self, _accepted: bool) -> Result<(), faxgate::fax::t30::SinkError> {
        Err(faxgate::fax::t30::SinkError("disk full".into()))
    }
}

/// A source that cannot code its second page.
struct FailingSource(faxgate::fax::t30::pages::PagesSource);

impl faxgate::fax::t30::PageSource for FailingSource {
    fn page_count(&self) -> usize {
        self.0.page_count()
    }
    fn ends_document(&self, p: usize) -> bool {
        self.0.ends_document(p)
    }
    fn wanted(&self, p: usize) -> faxgate::fax::t30::Wanted {
        self.0.wanted(p)
    }
    fn encode(
        &mut self,
        p: usize,
        c: &faxgate::fax::t30::PageCoding,
    ) -> Result<Vec<u8>, faxgate::fax::t30::SourceError> {
        if p == 1 {
            return Err(faxgate::fax::t30::SourceError {
                page: p,
                reason: "unreadable".into(),
            });
        }
        self.0.encode(p, c)
    }
}

#[test]
fn local_failures_end_the_call_with_fail_causes() {
    use faxgate::fax::t30::CauseClass;
    // The receiver cannot store the page.
    let a = Engine::sender(
        config("+1 555 0199", false),
        Box::new(faxgate::fax::t30::pages::PagesSource::new(vec![vec![
            test_page(VResolution::Standard, 1),
        ]])),
    );
    let b = Engine::receiver(
        config("+1 555 0100", false),
        Box::new(FailingSink(PagesSink::new())),
    );
    let mut line = Line::new(a, b);
    line.run(STEPS).unwrap();
    let cb = line.engine(Side::Answerer).report().cause.unwrap();
    assert_eq!(cb, Cause::SinkError, "{}", line.transcript());
    assert_eq!(cb.class(), CauseClass::Fail);
    assert_eq!(
        line.engine(Side::Caller).report().cause,
        Some(Cause::UnexpectedDcn)
    );
    // The sender cannot code its second page: DCN after the first.
    let src = FailingSource(faxgate::fax::t30::pages::PagesSource::new(vec![vec![
        test_page(VResolution::Standard, 1),
        test_page(VResolution::Standard, 2),
    ]]));
    let a = Engine::sender(config("+1 555 0199", true), Box::new(src));
    let b = Engine::receiver(config("+1 555 0100", true), Box::new(PagesSink::new()));
    let mut line = Line::new(a, b);
    line.run(STEPS).unwrap();
    let ra = line.engine(Side::Caller).report();
    assert_eq!(
        ra.cause,
        Some(Cause::DocumentError),
        "{}",
        line.transcript()
    );
    assert_eq!(ra.pages_confirmed(), 1);
    assert_eq!(Cause::DocumentError.class(), CauseClass::Fail);
    assert_eq!(
        line.engine(Side::Answerer).report().cause,
        Some(Cause::PartialReceive)
    );
}

/// Decodes wire bytes (LSB first) with hayro-ccitt, an independent T.4/T.6 decoder.
fn hayro_decode(wire: &[u8], width: u32, rows: u32, coding: Coding) -> Vec<u8> {
    use hayro_ccitt::{DecodeSettings, DecoderContext, EncodingMode};
    struct Rows {
        width: u32,
        out: Vec<u8>,
    }
    impl hayro_ccitt::Decoder for Rows {
        fn push_row(&mut self, changes: &[u32]) {
            let mut row = vec![0u8; self.width.div_ceil(8) as usize];
            let mut c = changes.to_vec();
            c.push(self.width);
            faxgate::image::codec::runs::changes_to_row(&c, self.width, &mut row);
            self.out.extend_from_slice(&row);
        }
    }
    let mut data = wire.to_vec();
    faxgate::image::codec::reverse_bits_in_place(&mut data);
    let settings = DecodeSettings {
        columns: width,
        rows,
        end_of_block: true,
        end_of_line: coding != Coding::Mmr,
        rows_are_byte_aligned: false,
        encoding: match coding {
            Coding::Mh => EncodingMode::Group3_1D,
            Coding::Mr => EncodingMode::Group3_2D,
            Coding::Mmr => EncodingMode::Group4,
        },
        strict: true,
    };
    let mut ctx = DecoderContext::new(settings);
    let mut sink = Rows {
        width,
        out: Vec::new(),
    };
    hayro_ccitt::decode(&data, &mut sink, &mut ctx).expect("hayro-ccitt decodes the wire bytes");
    sink.out
}

#[test]
fn an_independent_decoder_reads_what_goes_down_the_line() {
    // Non-ECM MH and MR with a 20 ms minimum scan line (fill), and ECM MMR reassembled from
    // the FCD frames: hayro-ccitt must decode the bytes on the line to the page sent.
    for (coding, ecm) in [
        (Coding::Mh, false),
        (Coding::Mr, false),
        (Coding::Mmr, true),
    ] {
        let mut tx = config("+1 555 0199", ecm);
        tx.max_coding = coding;
        let mut rx = config("+1 555 0100", ecm);
        rx.scan_time_ms = 20;
        let page = test_page(VResolution::Fine, 9);
        let mut c = call(vec![vec![page.clone()]], tx, rx, PagesSink::new());
        let wire = Arc::new(Mutex::new(Vec::<u8>::new()));
        let w = Arc::clone(&wire);
        c.line = take_line(c.line).with_tamper(move |t| {
            match &t.signal {
                Signal::Page(_, _, b) => w.lock().unwrap().extend_from_slice(b),
                Signal::Ecm(_, _, frames) => {
                    for f in frames {
                        // address, control, FCF, frame number, data…, FCS (2)
                        if f.len() > 6 && f[2] == Fcf::Fcd.octet(false) {
                            w.lock().unwrap().extend_from_slice(&f[4..f.len() - 2]);
                        }
                    }
                }
                _ => {}
            }
            Fate::Deliver
        });
        run(&mut c);
        assert_reports_agree(&c, Cause::Ok);
        let rows = hayro_decode(&wire.lock().unwrap(), 1728, page.height(), coding);
        assert_eq!(rows.len(), page.data().len(), "{coding:?}");
        assert!(
            rows == page.data(),
            "{coding:?}: hayro-ccitt sees another page"
        );
        assert_pixel_exact(&c);
    }
}

#[test]
fn wide_pages_keep_their_width() {
    for (pels, width) in [
        (2048u32, faxgate::fax::t30::Width::B4),
        (2432, faxgate::fax::t30::Width::A3),
    ] {
        let mut p = Page::new(pels, 120, Resolution::FINE).unwrap();
        for y in 0..120 {
            p.set(pels - 1 - y, y, true);
            p.set(y * 5, y, true);
        }
        let mut c = plain(vec![vec![p]], true);
        run(&mut c);
        assert_reports_agree(&c, Cause::Ok);
        assert_eq!(c.line.engine(Side::Answerer).report().width, Some(width));
        assert_pixel_exact(&c);
    }
}

/// A sink that stands for a Class 2.0 host overruling the DCE's copy-quality answer (T.32
/// §8.3.4 `+FPS=2` before `+FDR`): the first page it reviews is refused.
struct Overruling {
    inner: PagesSink,
    seen: Arc<Mutex<Vec<Fcf>>>,
}

impl faxgate::fax::t30::PageSink for Overruling {
    fn start_page(&mut self, coding: &faxgate::fax::t30::PageCoding) {
        self.inner.start_page(coding);
    }
    fn data(&mut self, bytes: &[u8]) {
        self.inner.data(bytes);
    }
    fn end_page(&mut self) -> faxgate::fax::t30::PageQuality {
        self.inner.end_page()
    }
    fn review(
        &mut self,
        post: Fcf,
        verdict: faxgate::fax::t30::Verdict,
    ) -> faxgate::fax::t30::Verdict {
        let mut seen = self.seen.lock().unwrap();
        seen.push(post);
        if seen.len() == 1 {
            faxgate::fax::t30::Verdict::Bad
        } else {
            verdict
        }
    }
    fn finish_page(&mut self, accepted: bool) -> Result<(), faxgate::fax::t30::SinkError> {
        self.inner.finish_page(accepted)
    }
}

#[test]
fn a_sink_can_overrule_the_verdict_except_under_ecm() {
    for ecm in [false, true] {
        let pages = vec![
            test_page(VResolution::Fine, 1),
            test_page(VResolution::Fine, 2),
        ];
        let inner = PagesSink::new();
        let received = inner.pages();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Overruling {
            inner,
            seen: seen.clone(),
        };
        let source = faxgate::fax::t30::pages::PagesSource::new(vec![pages.clone()]);
        let mut c = Call {
            line: Line::new(
                Engine::sender(config("+1 555 0199", ecm), Box::new(source)),
                Engine::receiver(config("+1 555 0100", ecm), Box::new(sink)),
            ),
            received,
            sent: pages,
        };
        run(&mut c);
        assert_reports_agree(&c, Cause::Ok);
        let outcomes: Vec<_> = c
            .line
            .engine(Side::Caller)
            .report()
            .pages
            .iter()
            .map(|p| p.outcome)
            .collect();
        if ecm {
            // Annex A has no RTN: the page arrived whole and is confirmed all the same.
            assert_eq!(*seen.lock().unwrap(), [Fcf::Mps, Fcf::Eop]);
            assert_eq!(outcomes, [PageOutcome::Confirmed; 2]);
        } else {
            assert_eq!(*seen.lock().unwrap(), [Fcf::Mps, Fcf::Mps, Fcf::Eop]);
            assert_eq!(
                outcomes,
                [
                    PageOutcome::Rejected,
                    PageOutcome::Confirmed,
                    PageOutcome::Confirmed
                ],
                "{}",
                c.line.transcript()
            );
            assert_eq!(count(&c, "RTN"), 1);
        }
        assert_pixel_exact(&c);
    }
}
