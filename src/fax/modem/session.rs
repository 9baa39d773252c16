//! I/O shell: one fax call — the T.30 [`Engine`] carried over a Class 1 [`Modem`].
//!
//! The engine's commands become driver ops one to one (T.31 §8: `+FTH=3` frames, `+FRH=3`
//! frames, `+FTM=n` TCF/page/ECM data, `+FRM=n`, `+FTS=n`), and the driver's events go back as
//! engine events; time is the call's elapsed time. What this layer adds, per the engine's
//! contract (`fax::t30` module docs):
//!
//! - V.21 reception re-issues `+FRH=3` after each non-final frame; a bad frame (modem `ERROR`,
//!   or our FCS check) is reported and reception goes on until the carrier ends.
//! - Before answering received frames it waits for the profile's `frame_turnaround_ms` of
//!   silence (`+FRS`, T.30 §5.3.2.1: 75 ± 20 ms between frames in opposite directions; some
//!   peers miss a CFR sent sooner — seen on the rig).
//! - ECM blocks are HDLC-framed at high speed here ([`t30::hdlc::Encoder`]/[`Decoder`]).
//! - A modem or port failure mid-call ends the call: the engine is told the carrier was lost
//!   and gets its DCN/hang-up; the caller decides whether to reopen the port.

use std::time::{Duration, Instant};

use super::class1::{Event as ModemEvent, Op, OpFailure};
use super::port::{Modem, ModemError};
use crate::fax::t30::{
    self, Command, DataKind, Engine, Event, Frame, Modulation, Training,
    hdlc::{Decoded, Decoder, Encoder},
};

/// Wait for each further V.21 frame of a frame set once the first has come (ours): frames of
/// one set follow each other at once (T.30 §5.3.2), so 3 s of nothing means the set is over.
pub const NEXT_FRAME_TIMEOUT: Duration = Duration::from_secs(3);

/// Longest a call may last (ours, a backstop): T.30 has no overall limit; 40 pages at
/// 2400 bit/s fit.
pub const MAX_CALL_TIME: Duration = Duration::from_secs(3 * 3600);

/// Flags sent before the first ECM frame at high speed (ours): ~200 ms of flags lets the
/// receiver's HDLC decoder lock after the training (T.30 Annex A.3.1 asks for "at least one").
fn ecm_preamble_flags(bps: u32) -> usize {
    (bps as usize / 8 / 5).max(4)
}

/// Run `engine` on `modem` until the engine hangs up. The modem must be connected in fax mode
/// (after [`Modem::dial`] or [`Modem::wait_and_answer`]). Returns the port error that ended
/// the call early, if any (the engine's report still says what happened).
pub fn run_call(modem: &mut Modem, engine: &mut Engine) -> Result<(), ModemError> {
    run_call_observed(modem, engine, &mut |_| {})
}

/// [`run_call`], with `observe` shown the engine before each command is carried out (and once
/// at the end): the hook of status displays, which read [`Engine::progress`] and keep only its
/// changes. Called per command, never per byte of page data.
pub fn run_call_observed(
    modem: &mut Modem,
    engine: &mut Engine,
    observe: &mut dyn FnMut(&Engine),
) -> Result<(), ModemError> {
    if modem.is_class2() {
        // The modem runs T.30 itself (T.32): the engine lends it its pages.
        return super::class2_session::run_call_observed(modem, engine, observe);
    }
    let r = drive(modem, engine, observe);
    observe(engine);
    r
}

fn drive(
    modem: &mut Modem,
    engine: &mut Engine,
    observe: &mut dyn FnMut(&Engine),
) -> Result<(), ModemError> {
    let start = Instant::now();
    let now = || start.elapsed();
    engine.start(now());
    let turnaround = modem.profile().frame_turnaround_ms;
    let mut after_receive = false;
    let mut port_error = None;
    while !engine.is_finished() {
        if now() > MAX_CALL_TIME {
            engine.abort(now());
        }
        observe(engine);
        let Some(cmd) = engine.next_command() else {
            // Nothing to do until the engine's timer: sleep towards it in small steps.
            match engine.poll_at() {
                Some(at) => {
                    let wait = at.saturating_sub(now()).min(Duration::from_millis(200));
                    std::thread::sleep(wait);
                    engine.handle_timeout(now());
                }
                None => engine.abort(now()),
            }
            continue;
        };
        tracing::debug!(?cmd, "t30 command");
        let is_receive = matches!(
            cmd,
            Command::ReceiveFrames { .. } | Command::ReceiveData { .. }
        );
        let result = match cmd {
            Command::HangUp => {
                let _ = modem.hangup();
                break;
            }
            Command::SendFrames(frames) => {
                if after_receive && turnaround > 0 {
                    // T.30 §5.3.2.1 turnaround; a modem that refuses +FRS is no reason to fail.
                    let _ = modem.run(Op::WaitSilence { ms: turnaround });
                }
                let frames = frames.iter().map(|f| f.bytes().to_vec()).collect();
                transmit(modem, Op::SendFrames { frames }, ModemEvent::FramesSent)
                    .map(|ev| engine.handle(ev, now()))
            }
            Command::Silence(d) => {
                let ms = u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
                transmit(modem, Op::SendSilence { ms }, ModemEvent::SilenceDone)
                    .map(|ev| engine.handle(ev, now()))
            }
            Command::SendTcf {
                modulation,
                duration,
            } => {
                let n = (u128::from(modulation.bps()) * duration.as_millis() / 8000) as usize;
                let op = Op::SendData {
                    modulation,
                    training: Training::Long,
                    data: vec![0; n],
                };
                transmit(modem, op, ModemEvent::DataSent).map(|ev| engine.handle(ev, now()))
            }
            Command::SendPage {
                modulation,
                training,
                data,
            } => {
                let op = Op::SendData {
                    modulation,
                    training,
                    data,
                };
                transmit(modem, op, ModemEvent::DataSent).map(|ev| engine.handle(ev, now()))
            }
            Command::SendEcmBlock {
                modulation,
                training,
                frames,
            } => {
                let mut enc = Encoder::new();
                enc.flags(ecm_preamble_flags(modulation.bps()));
                for f in &frames {
                    enc.frame(f.bytes());
                }
                let op = Op::SendData {
                    modulation,
                    training,
                    data: enc.finish(),
                };
                transmit(modem, op, ModemEvent::DataSent).map(|ev| engine.handle(ev, now()))
            }
            Command::ReceiveFrames { timeout } => receive_frames(modem, engine, timeout, &now),
            Command::ReceiveData {
                modulation,
                training,
                kind,
                timeout,
            } => receive_data(modem, engine, (modulation, training), kind, timeout, &now),
        };
        after_receive = is_receive;
        if let Err(e) = result {
            // The port is gone: the engine learns the line is lost and finishes (it will ask
            // for DCN and hang-up, which fail quietly on a dead port).
            engine.handle(Event::CarrierLost, now());
            port_error.get_or_insert(e);
            drain_after_port_loss(engine, &now);
            break;
        }
    }
    match port_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The port is dead: run the engine to its end without the line.
fn drain_after_port_loss(engine: &mut Engine, now: &dyn Fn() -> Duration) {
    for _ in 0..1000 {
        if engine.is_finished() {
            return;
        }
        match engine.next_command() {
            Some(Command::HangUp) => return,
            // Every other command fails at once: the line is gone.
            Some(_) => engine.handle(Event::CarrierLost, now()),
            None => engine.abort(now()),
        }
    }
}

/// Run a transmit op; its success event becomes [`Event::Sent`], anything else
/// [`Event::CarrierLost`].
fn transmit(modem: &mut Modem, op: Op, ok: ModemEvent) -> Result<Event, ModemError> {
    let ev = modem.run(op)?;
    Ok(if ev == ok {
        Event::Sent
    } else {
        tracing::debug!(?ev, "transmit failed");
        Event::CarrierLost
    })
}

/// V.21 frames until a final frame or the carrier ends (the engine's one receive command).
fn receive_frames(
    modem: &mut Modem,
    engine: &mut Engine,
    timeout: Duration,
    now: &dyn Fn() -> Duration,
) -> Result<(), ModemError> {
    let mut connected = false;
    // Bounded: each round either ends the loop or consumed a frame; a frame set holds at most
    // a handful of frames, and 64 bad frames in a row is a broken line.
    for round in 0..64 {
        let t = if round == 0 {
            timeout
        } else {
            NEXT_FRAME_TIMEOUT
        };
        let mut saw_carrier = false;
        let ev = modem.run_with(Op::ReceiveFrame { timeout: t }, |e| {
            if *e == ModemEvent::Carrier {
                saw_carrier = true;
            }
        })?;
        if saw_carrier && !connected {
            connected = true;
            engine.handle(Event::Connect, now());
        }
        match ev {
            ModemEvent::Frame { frame, fcs_ok } => match (fcs_ok, Frame::parse(&frame)) {
                (true, Ok(f)) => {
                    let last = f.is_final();
                    engine.handle(Event::Frame(f), now());
                    if last {
                        return Ok(());
                    }
                }
                _ => engine.handle(Event::BadFrame, now()),
            },
            ModemEvent::Failed(OpFailure::NoCarrier) => {
                engine.handle(Event::CarrierEnd, now());
                return Ok(());
            }
            ModemEvent::Failed(OpFailure::WrongCarrier) => {
                engine.handle(Event::WrongCarrier, now());
                return Ok(());
            }
            ModemEvent::Failed(OpFailure::Timeout) => {
                // Before any carrier: the engine's timeout; after frames: the set just ended.
                let ev = if connected {
                    Event::CarrierEnd
                } else {
                    Event::Timeout
                };
                engine.handle(ev, now());
                return Ok(());
            }
            other => {
                tracing::debug!(?other, "frame reception failed");
                engine.handle(Event::CarrierLost, now());
                return Ok(());
            }
        }
    }
    engine.handle(Event::CarrierLost, now());
    Ok(())
}

/// High-speed data: TCF, a page, or an ECM block.
fn receive_data(
    modem: &mut Modem,
    engine: &mut Engine,
    (modulation, training): (Modulation, Training),
    kind: DataKind,
    timeout: Duration,
    now: &dyn Fn() -> Duration,
) -> Result<(), ModemError> {
    let mut decoder = Decoder::new();
    let mut decoded = Vec::new();
    let mut connected = false;
    let ev = modem.run_with(
        Op::ReceiveData {
            modulation,
            training,
            timeout,
        },
        |e| match e {
            ModemEvent::Carrier => {
                connected = true;
                engine.handle(Event::Connect, now());
            }
            ModemEvent::Data(d) => match kind {
                DataKind::Tcf | DataKind::Page => engine.handle(Event::Data(d.clone()), now()),
                DataKind::EcmFrames => {
                    decoder.push(d, &mut decoded);
                    for f in decoded.drain(..) {
                        let ev = match f {
                            Decoded::Frame(bytes) => match Frame::parse(&bytes) {
                                Ok(f) => Event::Frame(f),
                                Err(_) => Event::BadFrame,
                            },
                            Decoded::Bad => Event::BadFrame,
                        };
                        engine.handle(ev, now());
                    }
                }
            },
            _ => {}
        },
    )?;
    let ev = match ev {
        ModemEvent::DataEnd => Event::CarrierEnd,
        ModemEvent::Failed(OpFailure::NoCarrier) if connected => Event::CarrierEnd,
        ModemEvent::Failed(OpFailure::NoCarrier | OpFailure::Timeout) => Event::Timeout,
        ModemEvent::Failed(OpFailure::WrongCarrier) => Event::WrongCarrier,
        other => {
            tracing::debug!(?other, "data reception failed");
            Event::CarrierLost
        }
    };
    engine.handle(ev, now());
    Ok(())
}

/// The T.30 report's one-line summary for the CLI.
pub fn summary(report: &t30::CallReport) -> String {
    let cause = report
        .cause
        .map(|c| format!("{} ({})", c.meaning(), c.number()))
        .unwrap_or_else(|| "unfinished".into());
    format!(
        "cause: {cause}\npages: {}\nremote-id: {}\nmodulation: {}\necm: {}\nduration: {:.1}s\n",
        report.pages_confirmed(),
        report.remote_id.as_deref().unwrap_or(""),
        report.modulation.map(|m| m.name()).unwrap_or("-"),
        if report.ecm { "yes" } else { "no" },
        report.duration.as_secs_f64()
    )
}
