//! The SIP lines of the pool (`[[sip]]`): fax over SIP with T.38 (T.38 Annex D, RFC 3362)
//! instead of a modem, served by the same job engine, dial plan, routing and reports.
//!
//! **Leases.** A SIP line carries up to `max_calls` calls at once; the scheduler leases lines
//! one call each, so a SIP line is `max_calls` leasable *slots* on the board: `name` (the
//! line itself, where its registration shows) and `name:2` … `name:N` ([`slot_names`]).
//! Line names cannot hold `:` (config validation), so a slot name always leads back to its
//! line ([`line_of`]). Routes name the line (`line = "name"`); a received fax's line is the
//! line's name whichever slot shows the call.
//!
//! **Outbound only through the trunk.** A fax job's number (the dial plan's, already checked
//! against its allow/deny lists) becomes `sip:<number>@<trunk>` ([`request_uri`]): nothing
//! else is ever dialled, so a SIP line cannot be turned into a free route to anywhere (SIP toll
//! fraud is the same fraud as on a modem).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use thiserror::Error;
use tracing::{error, info, warn};

use super::control::{CallWatch, ModemBoard, with_line};
use super::modems::{Sent, Stored};
use super::rtp::{AudioLeg, AudioSource, Tone};
use super::status::{CallProgress, LastCall, ModemState};
use crate::config::{AudioCodec, Config, ModemRole, Sip, SipTransport};
use crate::daemon::Shutdown;
use crate::fax::t30::pages::{PagesSink, PagesSource, ReceivedPage};
use crate::fax::t30::{Cause, Engine, EngineConfig, SinkError};
use crate::metrics::{self, Direction};
use crate::onramp::receiving::{CallStart, Receiving};
use crate::scheduler::CauseClass;
use crate::sip::{Agent, CallProgress as SipProgress, SipCall, SipSettings};
use crate::spool::Spool;

/// Separates a SIP line's name from its slot number in lease names (`trunk:2`).
pub const SLOT_SEP: char = ':';

/// The leasable slots of SIP line `s`: its name, then `name:2` … `name:max_calls`.
pub fn slot_names(s: &Sip) -> Vec<String> {
    (1..=s.max_calls.max(1))
        .map(|n| {
            if n == 1 {
                s.name.clone()
            } else {
                format!("{}{SLOT_SEP}{n}", s.name)
            }
        })
        .collect()
}

/// The line a slot (or a line name) belongs to.
pub fn line_of(slot: &str) -> &str {
    slot.split_once(SLOT_SEP).map_or(slot, |(line, _)| line)
}

/// The `[[sip]]` entry of line or slot `name`, if it is one.
pub fn config_of<'a>(cfg: &'a Config, name: &str) -> Option<&'a Sip> {
    let line = line_of(name);
    cfg.sips.iter().find(|s| s.name == line)
}

/// `send`, `receive` or `both`, as the board shows a role.
pub fn role_word(r: ModemRole) -> &'static str {
    match r {
        ModemRole::Send => "send",
        ModemRole::Receive => "receive",
        ModemRole::Both => "both",
    }
}

/// What the console's lines page shows of a SIP line's configuration.
pub fn configured(s: &Sip) -> Vec<(&'static str, String)> {
    let transport = match s.transport {
        SipTransport::Udp => "UDP",
        SipTransport::Tcp => "TCP",
    };
    vec![
        ("device", format!("SIP line, {transport} on {}", s.listen)),
        (
            "trunk",
            s.trunk()
                .map(str::to_string)
                .unwrap_or_else(|| "none (receives only)".into()),
        ),
        (
            "user",
            format!(
                "{} (auth {}, {})",
                s.user,
                s.auth_name(),
                if s.password_file.is_some() {
                    "password file"
                } else {
                    "no password"
                }
            ),
        ),
        ("local ID", s.local_id.clone()),
        ("max calls", s.max_calls.to_string()),
        (
            "T.38",
            format!(
                "version {}, max {} bit/s, redundancy {}, datagram {} bytes",
                s.t38_version, s.t38_max_bit_rate, s.udptl_redundancy, s.udptl_max_datagram
            ),
        ),
        ("ECM", if s.ecm { "on" } else { "off" }.into()),
    ]
}

/// The request URI that dials `number` through line `s`'s trunk (RFC 3261 §19.1.1):
/// `sip:<number>@<trunk>`, with `;transport=tcp` on a TCP line (§19.1.4). The number is the
/// dial plan's (`+` and digits); anything else is refused rather than passed to the trunk,
/// and a line without a trunk places no calls.
pub fn request_uri(s: &Sip, number: &str) -> Result<String, String> {
    let digits = number.strip_prefix('+').unwrap_or(number);
    if digits.is_empty() || digits.len() > 32 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{number}` is not a number a SIP trunk is asked to dial (+ and digits only)"
        ));
    }
    let Some(trunk) = s.trunk() else {
        return Err(format!("SIP line {} has no trunk to call through", s.name));
    };
    let transport = match s.transport {
        SipTransport::Udp => "",
        SipTransport::Tcp => ";transport=tcp",
    };
    Ok(format!("sip:{number}@{trunk}{transport}"))
}

/// The scheduler's class of a SIP call that never reached T.30 (RFC 3261 §21 responses as
/// the `sip` layer names them). A far end that does not accept T.38 (488/606 to the T.38
/// offer) answered but cannot fax with us: like a fax machine that fails T.30, a protocol
/// error, retried per `[retry]` and counted against `max_tries`.
pub fn class_of_sip(c: &crate::sip::Cause) -> CauseClass {
    use crate::sip::Cause as C;
    match c {
        C::Busy(_) => CauseClass::Busy,
        C::NoAnswer(_) | C::Timeout => CauseClass::NoAnswer,
        C::NoT38(_) | C::NoAudio | C::RemoteHangup => CauseClass::ProtocolError,
        C::BadNumber(_) | C::Forbidden => CauseClass::Fatal,
        // Our credentials or our own limits: our trouble, not a dial.
        C::AuthRejected(_) | C::Local(_) => CauseClass::LocalTemporary,
        // The gateway is stopping: the job is sent again at the next start.
        C::LocalHangup => CauseClass::Interrupted,
        // 5xx: the trunk's trouble, worth another try; other refusals are final.
        C::Refused(code, _) if (500..600).contains(code) => CauseClass::NoAnswer,
        C::Refused(..) => CauseClass::Fatal,
    }
}

/// Why a SIP line cannot start.
#[derive(Debug, Error)]
pub enum SipLineError {
    /// The password file cannot be read.
    #[error("sip line {line}: password_file: {source}")]
    Password {
        /// The line.
        line: String,
        /// Why.
        source: std::io::Error,
    },
    /// The user agent cannot start (address in use, a name that does not resolve).
    #[error("sip line {line}: {source}")]
    Agent {
        /// The line.
        line: String,
        /// Why.
        source: crate::sip::SipError,
    },
}

/// The user agent's settings for `[[sip]]` line `s` with its password.
pub fn settings(s: &Sip, password: String) -> SipSettings {
    SipSettings {
        server: s.trunk().map(str::to_string),
        // Our address-of-record's domain is the registrar's; without one, the trunk's.
        domain: s
            .registrar
            .as_deref()
            .and_then(crate::config::sip_host_port)
            .map(|(h, _)| h),
        register: s.registrar.is_some(),
        register_expires: u32::try_from(s.register_expires.as_secs()).unwrap_or(u32::MAX),
        user: s.user.clone(),
        auth_user: (!s.auth_user.is_empty()).then(|| s.auth_user.clone()),
        password,
        local_addr: s.listen,
        transport: match s.transport {
            SipTransport::Udp => crate::sip::Transport::Udp,
            SipTransport::Tcp => crate::sip::Transport::Tcp,
        },
        media_ip: s.media_ip(),
        media_ports: (s.media_port_min, s.media_port_max),
        allowed_networks: s.allow_from.clone(),
        reinvite_wait: s.reinvite_wait,
        max_calls: usize::try_from(s.max_calls).unwrap_or(1),
        t38: t38_offer(s),
        ..SipSettings::default()
    }
}

/// What a SIP line offers for T.38 (T.38 Annex D.2.3), from its `t38_*`/`udptl_*` keys: the
/// user agent answers and accepts with these, and the agreed session parameters it hands
/// back ([`crate::fax::t38::T38Params::session`]) are what the media session runs with.
pub fn t38_offer(s: &Sip) -> crate::fax::t38::T38Params {
    use crate::fax::t38::{T38Params, UdpEc};
    T38Params {
        version: s.t38_version,
        max_bitrate: s.t38_max_bit_rate,
        max_datagram: u32::from(s.udptl_max_datagram),
        udp_ec: if s.udptl_redundancy > 0 {
            UdpEc::Redundancy
        } else {
            UdpEc::None
        },
        redundancy_depth: s.udptl_redundancy,
        ..T38Params::default()
    }
}

/// The board's words for a registration state at `now` (monotonic, as the user agent's
/// deadlines are) and `wall` (the same moment on the clock shown); `Err` with the line error
/// for a failure.
fn registration_words(
    s: &Sip,
    r: &crate::sip::RegState,
    now: Instant,
    wall: crate::job::Timestamp,
) -> Result<String, String> {
    use crate::sip::RegState as R;
    let at = s.registrar.as_deref().unwrap_or("");
    let when = |t: &Instant| wall.plus(t.saturating_duration_since(now));
    match r {
        R::Disabled => Ok("not registering (no registrar)".into()),
        R::Registering => Ok(format!("registering as {} with {at}", s.user)),
        R::Registered { until } => Ok(format!(
            "registered as {} with {at} until {}",
            s.user,
            when(until)
        )),
        R::Failed { error, retry_at } => Err(format!(
            "REGISTER as {} with {at} failed: {error}; next try at {}",
            s.auth_name(),
            when(retry_at)
        )),
    }
}

fn audio_codec(c: crate::sip::Codec) -> AudioCodec {
    match c {
        crate::sip::Codec::Pcmu => AudioCodec::Pcmu,
        crate::sip::Codec::Pcma => AudioCodec::Pcma,
    }
}

/// A random 32-bit value for RTP's SSRC and initial sequence/timestamp (RFC 3550 §5.1).
fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    // Without randomness the stream is still valid RTP, merely predictable.
    let _ = getrandom::fill(&mut b);
    u32::from_le_bytes(b)
}

/// Hears what became of each incoming call's pages (logging, in the daemon).
pub type OnFax = Arc<dyn Fn(&SipLine, Stored) + Send + Sync>;

/// One `[[sip]]` line: its user agent and the board slots it shows calls on.
pub struct SipLine {
    cfg: Sip,
    agent: Agent,
    board: ModemBoard,
    engine: EngineConfig,
    rt: tokio::runtime::Handle,
}

impl SipLine {
    /// Reads the password, starts the user agent (binds, REGISTERs) and shows its
    /// registration on the board until `shutdown`.
    pub async fn start(
        cfg: Sip,
        board: ModemBoard,
        shutdown: Shutdown,
    ) -> Result<Arc<SipLine>, SipLineError> {
        let password = cfg
            .password()
            .map_err(|source| SipLineError::Password {
                line: cfg.name.clone(),
                source,
            })?
            .unwrap_or_default();
        let agent = Agent::start(settings(&cfg, password))
            .await
            .map_err(|source| SipLineError::Agent {
                line: cfg.name.clone(),
                source,
            })?;
        info!(line = %cfg.name, listen = %agent.local_addr(), "SIP line ready");
        let line = Arc::new(SipLine {
            engine: EngineConfig::from(&cfg),
            cfg,
            agent,
            board,
            rt: tokio::runtime::Handle::current(),
        });
        tokio::spawn(line.clone().watch_registration(shutdown));
        Ok(line)
    }

    /// `[[sip]] name`.
    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// `[[sip]] local_id`.
    pub fn local_id(&self) -> &str {
        &self.cfg.local_id
    }

    /// The line's `[[sip]]` entry.
    pub fn config(&self) -> &Sip {
        &self.cfg
    }

    /// `[[sip]] role`.
    pub fn role(&self) -> ModemRole {
        self.cfg.role
    }

    async fn watch_registration(self: Arc<Self>, mut shutdown: Shutdown) {
        let mut reg = self.agent.registration();
        loop {
            let state = reg.borrow_and_update().clone();
            let words = registration_words(&self.cfg, &state, Instant::now(), crate::spool::now());
            with_line(&self.board, &self.cfg.name, |m| match words {
                Ok(w) => {
                    if m.state == ModemState::Offline {
                        m.state = ModemState::Idle;
                    }
                    m.registration = Some(w);
                }
                Err(e) => {
                    warn!(line = %self.cfg.name, "{e}");
                    m.state = ModemState::Offline;
                    m.registration = Some("not registered".into());
                    m.last_error = Some(format!("{}: {e}", crate::spool::now()));
                }
            });
            tokio::select! {
                r = reg.changed() => if r.is_err() { break },
                _ = shutdown.stopped() => break,
            }
        }
    }

    /// Runs the audio leg of `call` (`tone` to the far end's RTP address once audio is agreed)
    /// until T.38 is agreed or the call ends.
    fn audio_until_t38(
        &self,
        call: &mut SipCall,
        tone: Tone,
    ) -> Result<crate::sip::T38Media, crate::sip::Cause> {
        let socket = call.socket().try_clone();
        let mut progress = call.progress();
        self.rt.block_on(async {
            let mut leg: Option<AudioLeg> = None;
            loop {
                let now = progress.borrow_and_update().clone();
                match now {
                    SipProgress::Audio { codec, remote } if leg.is_none() => {
                        leg = socket.as_ref().ok().and_then(|s| {
                            let src = AudioSource::new(
                                audio_codec(codec),
                                tone,
                                random_u32(),
                                random_u32() as u16,
                                random_u32(),
                            );
                            s.try_clone()
                                .and_then(|s| AudioLeg::start(s, remote, src))
                                .inspect_err(|e| warn!(line = %self.cfg.name, "audio leg: {e}"))
                                .ok()
                        });
                    }
                    SipProgress::T38(m) => return Ok(m),
                    SipProgress::Ended(c) => return Err(c),
                    _ => {}
                }
                if progress.changed().await.is_err() {
                    return Err(crate::sip::Cause::Local(
                        "the SIP user agent stopped".into(),
                    ));
                }
            }
        })
    }

    fn media(
        &self,
        call: &SipCall,
        agreed: &crate::sip::T38Media,
    ) -> std::io::Result<crate::fax::t38::session::Media> {
        Ok(crate::fax::t38::session::Media {
            socket: call.socket().try_clone()?,
            remote: agreed.remote,
            params: agreed.params.clone(),
            hangup: call.remote_bye(),
        })
    }

    /// Calls `number` through the trunk on board slot `slot` and sends the pages `make`
    /// makes once the call is placed (blocking: run it on a blocking thread), with the line's
    /// T.30 options narrowed by `tune` (the attempt's `mail::fax_options`). The board shows
    /// `call` and its progress until this returns.
    pub fn send_with(
        &self,
        slot: &str,
        number: &str,
        make: impl FnOnce() -> Result<PagesSource, (CauseClass, String)>,
        call: CallProgress,
        tune: impl FnOnce(&mut EngineConfig),
    ) -> Sent {
        let mut watch = CallWatch::start(&self.board, slot, call);
        let uri = match request_uri(&self.cfg, number) {
            Ok(u) => u,
            Err(detail) => {
                return Sent::NotConnected {
                    class: CauseClass::Fatal,
                    detail,
                };
            }
        };
        let source = match make() {
            Ok(s) => s,
            Err((class, detail)) => return Sent::NotConnected { class, detail },
        };
        info!(line = %self.cfg.name, %uri, "calling");
        let mut sip_call = match self.agent.call(number) {
            Ok(c) => c,
            Err(e) => {
                return Sent::NotConnected {
                    class: CauseClass::LocalTemporary,
                    detail: e.to_string(),
                };
            }
        };
        // Calling: CNG on the audio leg until T.38 (ours after reinvite_wait, or theirs).
        let agreed = match self.audio_until_t38(&mut sip_call, Tone::Cng) {
            Ok(m) => m,
            Err(cause) => {
                sip_call.hangup();
                return Sent::NotConnected {
                    class: class_of_sip(&cause),
                    detail: cause.to_string(),
                };
            }
        };
        let mut media = match self.media(&sip_call, &agreed) {
            Ok(m) => m,
            Err(e) => {
                sip_call.hangup();
                return Sent::NotConnected {
                    class: CauseClass::LocalTemporary,
                    detail: format!("the call's media socket: {e}"),
                };
            }
        };
        let mut tx = self.engine.clone();
        tune(&mut tx);
        let mut engine = Engine::sender(tx, Box::new(source));
        let r = crate::fax::t38::session::run_call_observed(&mut media, &mut engine, &mut |e| {
            watch.observe(&e.progress())
        });
        sip_call.hangup();
        Sent::Call {
            report: engine.report().clone(),
            error: r.err().map(|e| e.to_string()),
        }
    }

    /// Takes incoming calls until shutdown; each is received on a blocking thread, its
    /// pages into a reception in `spool` as they are confirmed (as a modem line's), and
    /// `on_fax` hears what became of them.
    pub async fn serve(self: Arc<Self>, mut shutdown: Shutdown, spool: Spool, on_fax: OnFax) {
        let mut calls = tokio::task::JoinSet::new();
        loop {
            let next = tokio::select! {
                c = self.agent.next_incoming() => c,
                _ = shutdown.stopped() => None,
            };
            let Some(call) = next else { break };
            let (line, spool, on_fax) = (self.clone(), spool.clone(), on_fax.clone());
            calls.spawn_blocking(move || {
                let stored = line.receive(call, &spool);
                on_fax(&line, stored);
            });
            // Finished receptions are reaped as we go (the set stays as large as the calls).
            while calls.try_join_next().is_some() {}
        }
        // Calls in progress end with their pages.
        while calls.join_next().await.is_some() {}
    }

    /// A free board slot of this line to show an incoming call on (the line's own when all
    /// are busy: the user agent enforces `max_calls`).
    fn free_slot(&self) -> String {
        let b = super::control::modems_now(&self.board);
        slot_names(&self.cfg)
            .into_iter()
            .find(|n| {
                b.iter()
                    .any(|m| &m.name == n && m.call.is_none() && m.state != ModemState::Sending)
            })
            .unwrap_or_else(|| self.cfg.name.clone())
    }

    /// Receives one answered call (blocking).
    fn receive(&self, mut call: SipCall, spool: &Spool) -> Stored {
        let started = Instant::now();
        let slot = self.free_slot();
        let caller = call.caller().to_string();
        let did = call.did().to_string();
        info!(line = %self.cfg.name, %caller, %did, "incoming SIP call");
        let mut watch = CallWatch::start(
            &self.board,
            &slot,
            CallProgress::answering((!caller.is_empty()).then_some(caller.as_str())),
        );
        // Answering: silence on the audio leg until T.38 (our re-INVITE is already out).
        let agreed = match self.audio_until_t38(&mut call, Tone::Silence) {
            Ok(m) => m,
            Err(cause) => {
                warn!(line = %self.cfg.name, %caller, "incoming call without T.38: {cause}");
                call.hangup();
                self.last_call(&slot, &caller, &Stored::NoPages, 0, cause.to_string());
                return Stored::NoPages;
            }
        };
        let mut media = match self.media(&call, &agreed) {
            Ok(m) => m,
            Err(e) => {
                error!(line = %self.cfg.name, "the call's media socket: {e}");
                call.hangup();
                return Stored::NoPages;
            }
        };
        let start = CallStart {
            line: self.cfg.name.clone(),
            caller: (!caller.is_empty()).then(|| caller.clone()),
            did: (!did.is_empty()).then(|| did.clone()),
            answered: i64::try_from(crate::spool::now().unix_secs()).unwrap_or(i64::MAX),
        };
        // Every confirmed page goes to the spool before MCF; a gateway that cannot store
        // pages does not take them.
        let receiving = match Receiving::begin(spool, start) {
            Ok(r) => {
                metrics::fax_started(Direction::In);
                Arc::new(Mutex::new(Some(r)))
            }
            Err(e) => {
                error!(line = %self.cfg.name, "cannot store a fax, hanging up: {e}");
                call.hangup();
                return Stored::NoPages;
            }
        };
        with_line(&self.board, &slot, |m| m.state = ModemState::Receiving);
        let rx = Arc::clone(&receiving);
        let store = Box::new(move |page: ReceivedPage| match rx.lock() {
            Ok(mut g) => match g.as_mut() {
                Some(r) => r.append(&page),
                None => Err(SinkError("the reception is closed".into())),
            },
            Err(_) => Err(SinkError("the reception lock is poisoned".into())),
        });
        let mut engine = Engine::receiver(self.engine.clone(), Box::new(PagesSink::storing(store)));
        let r = crate::fax::t38::session::run_call_observed(&mut media, &mut engine, &mut |e| {
            watch.observe(&e.progress())
        });
        drop(watch);
        call.hangup();
        if let Err(e) = &r {
            warn!(line = %self.cfg.name, "incoming call: {e}");
        }
        let report = engine.report().clone();
        drop(engine);
        let taken = match receiving.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        let n = taken.as_ref().map_or(0, |t| t.pages());
        let class = super::runner::class_of(report.cause.unwrap_or(Cause::CarrierLost));
        metrics::fax_ended(Direction::In, &self.cfg.name, class, n);
        // A BYE mid-page ends the engine with its cause: the confirmed pages are committed as
        // a partial fax, as a modem line's lost carrier is.
        let stored = match taken.map(|t| t.commit(&report, started.elapsed().as_secs())) {
            Some(Ok(Some(job))) => Stored::Fax { job, pages: n },
            Some(Ok(None)) | None => Stored::NoPages,
            Some(Err(e)) => Stored::Kept(e.to_string()),
        };
        let cause = report
            .cause
            .map(|c| format!("{} {}", c.number(), c.meaning()))
            .unwrap_or_else(|| "no T.30 outcome".into());
        self.last_call(&slot, &caller, &stored, n, cause);
        stored
    }

    fn last_call(&self, slot: &str, caller: &str, stored: &Stored, pages: u32, cause: String) {
        with_line(&self.board, slot, |m| {
            if m.state == ModemState::Receiving {
                m.state = ModemState::Idle;
            }
            m.last_call = Some(LastCall {
                ended: crate::spool::now(),
                direction: "in".into(),
                job: match stored {
                    Stored::Fax { job, .. } => job.to_string(),
                    _ => String::new(),
                },
                number: caller.to_string(),
                pages,
                cause,
            });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(toml: &str) -> Sip {
        let listen = if toml.contains("listen") {
            ""
        } else {
            "listen = \"127.0.0.1:5060\"\n"
        };
        toml::from_str(&format!("name = \"trunk\"\nuser = \"fax\"\n{listen}{toml}")).unwrap()
    }

    #[test]
    fn sip_causes_map_to_the_schedulers_classes() {
        use crate::sip::Cause as C;
        assert_eq!(
            class_of_sip(&C::from_status(486, "Busy Here")),
            CauseClass::Busy
        );
        assert_eq!(class_of_sip(&C::from_status(480, "")), CauseClass::NoAnswer);
        assert_eq!(class_of_sip(&C::Timeout), CauseClass::NoAnswer);
        // 488 to the T.38 offer: a clear cause, retried per [retry] like a T.30 failure.
        let no_t38 = C::from_status(488, "Not Acceptable Here");
        assert_eq!(class_of_sip(&no_t38), CauseClass::ProtocolError);
        assert!(
            no_t38.to_string().contains("does not accept T.38"),
            "{no_t38}"
        );
        assert_eq!(class_of_sip(&C::from_status(404, "")), CauseClass::Fatal);
        assert_eq!(class_of_sip(&C::from_status(403, "")), CauseClass::Fatal);
        assert_eq!(class_of_sip(&C::from_status(503, "")), CauseClass::NoAnswer);
        assert_eq!(
            class_of_sip(&C::from_status(501, "x")),
            CauseClass::NoAnswer
        );
        assert_eq!(class_of_sip(&C::from_status(420, "x")), CauseClass::Fatal);
        assert_eq!(
            class_of_sip(&C::AuthRejected("401".into())),
            CauseClass::LocalTemporary
        );
        assert_eq!(class_of_sip(&C::LocalHangup), CauseClass::Interrupted);
    }

    #[test]
    fn registration_shows_on_the_clock_and_a_failure_is_a_line_error() {
        use crate::sip::{RegState, RegisterError};
        let s = line("registrar = \"127.0.0.1:5070\"");
        let now = Instant::now();
        let wall = crate::job::Timestamp(1_800_000_000_000);
        let ok = RegState::Registered {
            until: now + std::time::Duration::from_secs(3600),
        };
        assert_eq!(
            registration_words(&s, &ok, now, wall).unwrap(),
            format!(
                "registered as fax with 127.0.0.1:5070 until {}",
                wall.plus(std::time::Duration::from_secs(3600))
            )
        );
        let failed = RegState::Failed {
            error: RegisterError::AuthRejected("fax".into()),
            retry_at: now,
        };
        let e = registration_words(&s, &failed, now, wall).unwrap_err();
        assert!(e.contains("wrong password"), "{e}");
        assert!(registration_words(&line(""), &RegState::Disabled, now, wall).is_ok());
    }

    #[test]
    fn settings_follow_the_line() {
        let s = line(
            "registrar = \"pbx.example:5070\"\nproxy = \"127.0.0.1:5080\"\nauth_user = \"a1\"\n\
             transport = \"tcp\"\nlisten = \"127.0.0.1:5090\"\nudptl_redundancy = 0\n\
             t38_max_bit_rate = 9600",
        );
        let st = settings(&s, "pw".into());
        assert_eq!(st.server.as_deref(), Some("127.0.0.1:5080"));
        assert_eq!(st.domain.as_deref(), Some("pbx.example"));
        assert!(st.register);
        assert_eq!(st.auth_user.as_deref(), Some("a1"));
        assert_eq!(st.transport, crate::sip::Transport::Tcp);
        let p = &st.t38;
        assert_eq!((p.max_bitrate, p.redundancy_depth), (9600, 0));
        assert_eq!(p.udp_ec, crate::fax::t38::UdpEc::None);
        // No registrar: no REGISTER, the trunk's domain.
        assert!(!settings(&line("proxy = \"127.0.0.1:5080\""), String::new()).register);
    }

    #[test]
    fn slots_lead_back_to_their_line() {
        let s = line("max_calls = 3");
        assert_eq!(slot_names(&s), ["trunk", "trunk:2", "trunk:3"]);
        for slot in slot_names(&s) {
            assert_eq!(line_of(&slot), "trunk");
        }
        assert_eq!(line_of("modem_1"), "modem_1");
        let mut cfg = Config::default();
        cfg.sips.push(s);
        assert_eq!(config_of(&cfg, "trunk:3").map(|s| s.max_calls), Some(3));
        assert!(config_of(&cfg, "loopback").is_none());
    }

    #[test]
    fn calls_go_only_through_the_trunk() {
        let s = line("proxy = \"127.0.0.1:5070\"");
        assert_eq!(
            request_uri(&s, "+12125550123").unwrap(),
            "sip:+12125550123@127.0.0.1:5070"
        );
        let t = line("registrar = \"pbx.example\"\ntransport = \"tcp\"");
        assert_eq!(
            request_uri(&t, "0012125550123").unwrap(),
            "sip:0012125550123@pbx.example;transport=tcp"
        );
        // Whatever is not a plain number never reaches the trunk: no other host, no user part
        // of another domain, no URI parameters.
        for bad in [
            "",
            "+",
            "1212@evil.example",
            "1212;transport=tcp",
            "sip:1@x",
            "12 12",
            "1,2",
        ] {
            assert!(request_uri(&s, bad).is_err(), "{bad}");
        }
        assert!(request_uri(&line(""), "+12125550123").is_err(), "no trunk");
    }
}
