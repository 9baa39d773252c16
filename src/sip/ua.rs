//! PURE: the SIP user agent core — registration, calls, dialogs — bytes and `now` in,
//! datagrams/segments to send and events out.
//!
//! The shell ([`super::agent`]) owns the sockets and the clock: it feeds every received
//! message to [`UserAgent::handle_message`], calls [`UserAgent::handle_timeout`] at
//! [`UserAgent::next_deadline`], drains [`UserAgent::poll_output`], and asks for calls with
//! [`UserAgent::call`], [`UserAgent::answer`], [`UserAgent::hangup`]. Randomness (tags,
//! branches, Call-IDs, cnonces) comes from a seed, so a transcript test replays exactly.
//!
//! What a call goes through (the [`CallState`] variants carry each step's data):
//! - outgoing: INVITE with a G.711 offer (RFC 3264) → 1xx → 2xx + ACK (RFC 3261 §13.2.2.4) →
//!   audio; the far end's T.38 re-INVITE is answered, or after `reinvite_wait` we send ours
//!   (T.38 Annex D.2.2) → T.38. 401/407 are answered once per request with digest (§22.2).
//! - incoming: only from the allowed networks (else 403); 100, the shell answers with a media
//!   port → 200 with G.711 → ACK → our T.38 re-INVITE at once (unless theirs comes first).
//! - a T.38 offer we cannot take gets 488 (RFC 3261 §21.4.26); a refusal of ours (488/606…)
//!   ends the call with [`Cause::NoT38`] and a BYE.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ipnet::IpNet;

use super::cause::{Cause, RegisterError};
use super::digest::Challenge;
use super::message::{Message, Method, NameAddr, StartLine, Uri};
use super::sdp::{self, Codec, Origin, Sdp};
use super::t38sdp::{self, T38Params};
use super::transaction::{ClientOut, ClientTx, Delivery, Kind, ServerOut, ServerTx, Timers};

/// What the UA sends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// RFC 3261 §18.1.1 datagrams.
    Udp,
    /// RFC 3261 §18.3 stream, framed by Content-Length.
    Tcp,
}

impl Transport {
    fn via(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

/// The core's settings (the shell resolves names to addresses first).
#[derive(Debug, Clone)]
pub struct UaConfig {
    /// Our user (AOR user part, From user of our calls).
    pub user: String,
    /// The AOR's domain (`host[:port]`): registrar URI and outgoing Request-URIs.
    pub domain: String,
    /// Digest user name (RFC 7616 §3.4 `username`).
    pub auth_user: String,
    /// Digest password.
    pub password: String,
    /// The registrar / proxy every out-of-dialog request goes to; `None`: no trunk (incoming
    /// calls only, no REGISTER).
    pub server: Option<SocketAddr>,
    /// REGISTER with the server.
    pub register: bool,
    /// Expires we ask for, seconds (RFC 3261 §10.2.1.1).
    pub register_expires: u32,
    /// Transport for every request.
    pub transport: Transport,
    /// Our SIP address as peers reach it (Via sent-by, Contact).
    pub local: SocketAddr,
    /// Our media address (SDP `c=`).
    pub media_ip: IpAddr,
    /// Networks INVITEs are taken from (the server's address is always allowed).
    pub allowed: Vec<IpNet>,
    /// On an outgoing call, how long we wait for the far end's T.38 re-INVITE before we send
    /// ours (T.38 Annex D.2.2 lets either side start).
    pub reinvite_wait: Duration,
    /// Longest an outgoing INVITE rings before we CANCEL it.
    pub answer_timeout: Duration,
    /// Calls at once; more incoming get 486, more outgoing end at once with [`Cause::Local`].
    pub max_calls: usize,
    /// What we offer and accept for T.38.
    pub t38: T38Params,
    /// RFC 3261 timer values.
    pub timers: Timers,
    /// `User-Agent` header text.
    pub user_agent: String,
}

/// Our handle on a call (local to this UA).
pub type CallId = u64;

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    /// The transport.
    pub transport: Transport,
    /// The address.
    pub addr: SocketAddr,
}

/// Registration as the line shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegState {
    /// No registrar configured.
    Disabled,
    /// A REGISTER is out.
    Registering,
    /// Bound until this instant; refreshed before.
    Registered {
        /// The binding's end.
        until: Instant,
    },
    /// The last attempt failed; retried at `retry_at`.
    Failed {
        /// Why.
        error: RegisterError,
        /// Next attempt.
        retry_at: Instant,
    },
}

/// What happened, for the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Registration changed.
    Registration(RegState),
    /// An INVITE from an allowed peer: answer with [`UserAgent::answer`] (a media port) or
    /// [`UserAgent::reject`].
    Incoming {
        /// Our handle.
        call: CallId,
        /// The number called (Request-URI user, else To user).
        did: String,
        /// The caller (P-Asserted-Identity user, else From user).
        caller: String,
        /// The caller's display name, if any.
        caller_name: Option<String>,
    },
    /// 180/183 on an outgoing call.
    Ringing {
        /// Our handle.
        call: CallId,
    },
    /// G.711 audio is agreed.
    Audio {
        /// Our handle.
        call: CallId,
        /// The codec.
        codec: Codec,
        /// Where to send RTP.
        remote: SocketAddr,
    },
    /// T.38 is agreed: UDPTL goes to `remote`.
    T38 {
        /// Our handle.
        call: CallId,
        /// Where to send UDPTL.
        remote: SocketAddr,
        /// What both ends agreed.
        params: T38Params,
    },
    /// The call is over.
    Ended {
        /// Our handle.
        call: CallId,
        /// Why.
        cause: Cause,
    },
}

/// What the shell does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send bytes.
    Send {
        /// To whom.
        to: Peer,
        /// One whole message.
        bytes: Vec<u8>,
    },
    /// Tell the line.
    Event(Event),
}

/// Who a client transaction answers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Register,
    Invite(CallId),
    ReInvite(CallId),
    Bye(CallId),
    Cancel(CallId),
}

/// Where a call stands; each variant holds what that step needs.
#[derive(Debug, Clone)]
pub enum CallState {
    /// Our INVITE is out.
    Inviting {
        /// The INVITE as sent (for CANCEL, and re-sending with credentials).
        request: Message,
        /// Its transaction's branch.
        branch: String,
        /// Challenges answered for it.
        auth_tries: u8,
        /// A provisional came (CANCEL allowed, RFC 3261 §9.1).
        provisional: bool,
        /// Hang up asked before a provisional: CANCEL when one comes, BYE after a 2xx.
        hangup: Option<Cause>,
        /// When we stop ringing.
        give_up: Instant,
    },
    /// An INVITE came; the shell has not answered yet.
    Offered {
        /// The INVITE.
        invite: Message,
        /// Its server transaction.
        tx: (String, String),
        /// Its audio offer.
        offer: Sdp,
    },
    /// We sent 2xx to an INVITE (initial or re-INVITE); waiting for the ACK.
    Answered {
        /// The server transaction.
        tx: (String, String),
        /// T.38 agreed by that answer (then the call goes to [`CallState::T38`] on the ACK).
        t38: Option<(SocketAddr, T38Params)>,
        /// Hang up once the ACK comes (§15: no BYE before it).
        hangup: Option<Cause>,
    },
    /// G.711 up; T.38 not yet.
    Audio {
        /// When we send our T.38 re-INVITE; `None`: waiting for theirs only.
        reinvite_at: Option<Instant>,
    },
    /// Our T.38 re-INVITE is out.
    ReInviting {
        /// As sent.
        request: Message,
        /// Its branch.
        branch: String,
        /// Challenges answered.
        auth_tries: u8,
    },
    /// T.38 agreed.
    T38 {
        /// Where UDPTL goes.
        remote: SocketAddr,
        /// What was agreed.
        params: T38Params,
    },
    /// Our BYE (or CANCEL) is out; ends on its response or timeout.
    Ending {
        /// Why the call ends.
        cause: Cause,
    },
}

/// One dialog's state (RFC 3261 §12).
#[derive(Debug, Clone)]
struct Dialog {
    call_id: String,
    local_tag: String,
    remote_tag: Option<String>,
    /// Our address-of-record as sent in From (without tag).
    local_uri: String,
    /// Theirs (without tag).
    remote_uri: String,
    local_cseq: u32,
    remote_cseq: Option<u32>,
    /// Request-URI of in-dialog requests.
    remote_target: String,
    /// Route set (§12.1.1 / §12.1.2), loose routes only.
    route: Vec<String>,
    /// Where in-dialog requests go.
    peer: Peer,
    /// We are the UAC of the dialog (From is ours).
    we_called: bool,
}

#[derive(Debug, Clone)]
struct Call {
    dialog: Dialog,
    media_port: u16,
    origin: Origin,
    state: CallState,
    /// The ACK we sent to the last 2xx (its CSeq, bytes), resent on a retransmitted 2xx.
    ack: Option<(u32, Vec<u8>)>,
    /// The audio codec agreed (kept for audio re-offers).
    codec: Option<Codec>,
}

#[derive(Debug, Clone)]
enum Reg {
    Off,
    Sending {
        auth_tries: u8,
        expires: u32,
    },
    Bound {
        refresh_at: Instant,
        until: Instant,
    },
    Failed {
        retry_at: Instant,
        error: Option<RegisterError>,
    },
}

/// Retry a failed REGISTER after this (ours): a wrong password is not retried faster, so the
/// registrar's lock-out counters are not run up.
const REGISTER_RETRY: Duration = Duration::from_secs(60);
const REGISTER_AUTH_RETRY: Duration = Duration::from_secs(300);

/// The user agent core.
pub struct UserAgent {
    cfg: UaConfig,
    rng: u64,
    out: VecDeque<Output>,
    /// Client transactions by (branch, method), with their owner, peer and request (an INVITE's
    /// is needed for the ACK to a non-2xx).
    clients: HashMap<(String, String), (ClientTx, Owner, Peer, Message)>,
    servers: HashMap<(String, String), (ServerTx, Peer)>,
    calls: HashMap<CallId, Call>,
    next_call: CallId,
    reg: Reg,
    reg_call_id: String,
    reg_cseq: u32,
    reg_tag: String,
}

fn key(branch: &str, m: &Method) -> (String, String) {
    (branch.to_string(), m.as_str().to_string())
}

impl UserAgent {
    /// A UA; with a server and `register`, the first REGISTER goes out on the first
    /// [`UserAgent::handle_timeout`].
    pub fn new(cfg: UaConfig, seed: u64, now: Instant) -> UserAgent {
        let mut ua = UserAgent {
            reg: if cfg.register && cfg.server.is_some() {
                Reg::Failed {
                    retry_at: now,
                    error: None,
                }
            } else {
                Reg::Off
            },
            cfg,
            rng: seed | 1,
            out: VecDeque::new(),
            clients: HashMap::new(),
            servers: HashMap::new(),
            calls: HashMap::new(),
            next_call: 1,
            reg_call_id: String::new(),
            reg_cseq: 0,
            reg_tag: String::new(),
        };
        ua.reg_call_id = format!("{}@{}", ua.token(), ua.cfg.local.ip());
        ua.reg_tag = ua.token();
        if matches!(ua.reg, Reg::Off) {
            ua.out
                .push_back(Output::Event(Event::Registration(RegState::Disabled)));
        }
        ua
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// A call's state (for tests and status).
    pub fn call_state(&self, call: CallId) -> Option<&CallState> {
        self.calls.get(&call).map(|c| &c.state)
    }

    /// Calls in progress.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    // splitmix64: tags and branches need to be unique, not secret (the digest cnonce is
    // only for the server's replay check).
    fn rand(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn token(&mut self) -> String {
        format!("{:016x}", self.rand())
    }

    fn branch(&mut self) -> String {
        // RFC 3261 §8.1.1.7: the magic cookie marks RFC 3261 branches.
        format!("z9hG4bK{}", self.token())
    }

    fn local_host(&self) -> String {
        match self.cfg.local {
            SocketAddr::V4(a) => a.to_string(),
            SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        }
    }

    fn contact(&self) -> String {
        let t = match self.cfg.transport {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
        };
        format!("<sip:{}@{}{t}>", self.cfg.user, self.local_host())
    }

    fn aor(&self) -> String {
        format!("<sip:{}@{}>", self.cfg.user, self.cfg.domain)
    }

    fn send(&mut self, to: Peer, bytes: Vec<u8>) {
        self.out.push_back(Output::Send { to, bytes });
    }

    fn event(&mut self, e: Event) {
        self.out.push_back(Output::Event(e));
    }

    fn server_peer(&self) -> Option<Peer> {
        self.cfg.server.map(|addr| Peer {
            transport: self.cfg.transport,
            addr,
        })
    }

    /// Common headers of a request we originate (RFC 3261 §8.1.1).
    fn new_request(&mut self, method: Method, uri: &str, branch: &str) -> Message {
        let mut m = Message::request(method, uri);
        let via = format!(
            "SIP/2.0/{} {};branch={branch};rport",
            self.cfg.transport.via(),
            self.local_host()
        );
        m.push("Via", via);
        m.push("Max-Forwards", "70");
        m
    }

    fn start_client(
        &mut self,
        kind: Kind,
        msg: &Message,
        branch: &str,
        owner: Owner,
        to: Peer,
        now: Instant,
    ) {
        let bytes = msg.to_bytes();
        let reliable = to.transport == Transport::Tcp;
        let tx = ClientTx::new(kind, reliable, bytes.clone(), self.cfg.timers, now);
        let method = msg.method().unwrap_or(Method::Invite);
        self.clients
            .insert(key(branch, &method), (tx, owner, to, msg.clone()));
        self.send(to, bytes);
    }

    // ---- registration (RFC 3261 §10) ----

    fn send_register(
        &mut self,
        expires: u32,
        auth: Option<(&'static str, String)>,
        auth_tries: u8,
        now: Instant,
    ) {
        let Some(server) = self.server_peer() else {
            return;
        };
        let branch = self.branch();
        let uri = format!("sip:{}", self.cfg.domain);
        let mut m = self.new_request(Method::Register, &uri, &branch);
        let aor = self.aor();
        m.push("From", format!("{aor};tag={}", self.reg_tag));
        m.push("To", aor);
        m.push("Call-ID", self.reg_call_id.clone());
        self.reg_cseq += 1;
        m.push("CSeq", format!("{} REGISTER", self.reg_cseq));
        m.push("Contact", self.contact());
        m.push("Expires", expires.to_string());
        m.push("User-Agent", self.cfg.user_agent.clone());
        if let Some((h, v)) = auth {
            m.push(h, v);
        }
        self.start_client(Kind::NonInvite, &m, &branch, Owner::Register, server, now);
        self.reg = Reg::Sending {
            auth_tries,
            expires,
        };
        self.event(Event::Registration(RegState::Registering));
    }

    fn reg_failed(&mut self, error: RegisterError, now: Instant) {
        if matches!(self.reg, Reg::Sending { expires: 0, .. }) {
            // A failed removal is not retried: the binding expires on its own.
            self.reg = Reg::Off;
            self.event(Event::Registration(RegState::Disabled));
            return;
        }
        let retry = if matches!(error, RegisterError::AuthRejected(_)) {
            REGISTER_AUTH_RETRY
        } else {
            REGISTER_RETRY
        };
        let retry_at = now + retry;
        self.reg = Reg::Failed {
            retry_at,
            error: Some(error.clone()),
        };
        self.event(Event::Registration(RegState::Failed { error, retry_at }));
    }

    fn on_register_response(&mut self, resp: &Message, now: Instant) {
        let Reg::Sending {
            auth_tries,
            expires,
            ..
        } = self.reg.clone()
        else {
            return;
        };
        let code = resp.code().unwrap_or(0);
        match code {
            100..=199 => {}
            200..=299 if expires == 0 => {
                // Our removal (§10.2.2) went through.
                self.reg = Reg::Off;
                self.event(Event::Registration(RegState::Disabled));
            }
            200..=299 => {
                // §10.2.4: the binding's expiry is our Contact's expires, else Expires.
                let ours = self.contact();
                let granted = resp
                    .header_values("Contact")
                    .iter()
                    .filter_map(|c| NameAddr::parse(c).ok())
                    .find(|na| ours.contains(&na.uri))
                    .and_then(|na| na.param("expires").and_then(|e| e.parse::<u32>().ok()))
                    .or_else(|| resp.header("Expires").and_then(|e| e.parse().ok()))
                    .unwrap_or(expires)
                    .clamp(1, 86_400);
                let life = Duration::from_secs(granted.into());
                // Refresh before expiry: half-way for short bindings, else 32 s before.
                let lead = (life / 2).min(Duration::from_secs(32));
                let until = now + life;
                self.reg = Reg::Bound {
                    refresh_at: until - lead,
                    until,
                };
                self.event(Event::Registration(RegState::Registered { until }));
            }
            401 | 407 => {
                let (ch_name, auth_name) = if code == 401 {
                    ("WWW-Authenticate", "Authorization")
                } else {
                    ("Proxy-Authenticate", "Proxy-Authorization")
                };
                let challenge = match resp.header(ch_name).map(Challenge::parse) {
                    Some(Ok(c)) => c,
                    Some(Err(e)) => {
                        return self.reg_failed(RegisterError::Challenge(e.to_string()), now);
                    }
                    None => {
                        return self
                            .reg_failed(RegisterError::Challenge("no challenge".into()), now);
                    }
                };
                // A second challenge for credentials we already sent means they are wrong,
                // unless the server only says our nonce went stale (RFC 7616 §3.3).
                if auth_tries >= 1 && !challenge.stale {
                    return self
                        .reg_failed(RegisterError::AuthRejected(self.cfg.auth_user.clone()), now);
                }
                if auth_tries >= 3 {
                    return self
                        .reg_failed(RegisterError::AuthRejected(self.cfg.auth_user.clone()), now);
                }
                let cnonce = self.token();
                let uri = format!("sip:{}", self.cfg.domain);
                let v = challenge.answer(
                    &self.cfg.auth_user,
                    &self.cfg.password,
                    "REGISTER",
                    &uri,
                    1,
                    &cnonce,
                );
                self.send_register(expires, Some((auth_name, v)), auth_tries + 1, now);
            }
            423 => {
                // §10.2.8: Interval Too Brief: ask again with Min-Expires.
                match resp
                    .header("Min-Expires")
                    .and_then(|v| v.parse::<u32>().ok())
                {
                    Some(min) if min > expires && min <= 86_400 => {
                        self.send_register(min, None, 0, now)
                    }
                    _ => self.reg_failed(
                        RegisterError::Refused(423, "Interval Too Brief".into()),
                        now,
                    ),
                }
            }
            _ => {
                let reason = match &resp.start {
                    StartLine::Response { reason, .. } => reason.chars().take(80).collect(),
                    StartLine::Request { .. } => String::new(),
                };
                self.reg_failed(RegisterError::Refused(code, reason), now)
            }
        }
    }

    // ---- outgoing calls ----

    /// Place a call to `number` through the server, offering G.711 on `media_port`.
    /// The outcome comes as events for the returned handle.
    pub fn call(&mut self, number: &str, media_port: u16, now: Instant) -> CallId {
        let id = self.next_call;
        self.next_call += 1;
        let Some(server) = self.server_peer() else {
            self.event(Event::Ended {
                call: id,
                cause: Cause::Local("no SIP server configured for outgoing calls".into()),
            });
            return id;
        };
        if self.calls.len() >= self.cfg.max_calls {
            self.event(Event::Ended {
                call: id,
                cause: Cause::Local(format!(
                    "all {} calls of the line are in use",
                    self.cfg.max_calls
                )),
            });
            return id;
        }
        let valid = !number.is_empty()
            && number.len() <= 64
            && number
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'+' || b == b'*' || b == b'#');
        if !valid {
            self.event(Event::Ended {
                call: id,
                cause: Cause::BadNumber(0),
            });
            return id;
        }
        let uri = format!("sip:{number}@{}", self.cfg.domain);
        let dialog = Dialog {
            call_id: format!("{}@{}", self.token(), self.cfg.local.ip()),
            local_tag: self.token(),
            remote_tag: None,
            local_uri: self.aor(),
            remote_uri: format!("<{uri}>"),
            local_cseq: 1,
            remote_cseq: None,
            remote_target: uri.clone(),
            route: Vec::new(),
            peer: server,
            we_called: true,
        };
        let origin = Origin {
            session_id: self.rand() >> 16,
            version: 1,
            addr: self.cfg.media_ip,
        };
        let body = sdp::audio(&origin, media_port, &[Codec::Pcmu, Codec::Pcma]);
        let branch = self.branch();
        let mut m = self.new_request(Method::Invite, &uri, &branch);
        m.push(
            "From",
            format!("{};tag={}", dialog.local_uri, dialog.local_tag),
        );
        m.push("To", dialog.remote_uri.clone());
        m.push("Call-ID", dialog.call_id.clone());
        m.push("CSeq", "1 INVITE");
        m.push("Contact", self.contact());
        m.push("Allow", ALLOW);
        m.push("User-Agent", self.cfg.user_agent.clone());
        m.set_body("application/sdp", body);
        self.start_client(Kind::Invite, &m, &branch, Owner::Invite(id), server, now);
        let call = Call {
            dialog,
            media_port,
            origin,
            state: CallState::Inviting {
                request: m,
                branch,
                auth_tries: 0,
                provisional: false,
                hangup: None,
                give_up: now + self.cfg.answer_timeout,
            },
            ack: None,
            codec: None,
        };
        self.calls.insert(id, call);
        id
    }

    fn end(&mut self, id: CallId, cause: Cause) {
        if self.calls.remove(&id).is_some() {
            self.event(Event::Ended { call: id, cause });
        }
    }

    /// A request inside a dialog (RFC 3261 §12.2.1.1).
    fn in_dialog(&mut self, id: CallId, method: Method, branch: &str) -> Option<Message> {
        let ua = self.cfg.user_agent.clone();
        let via = format!(
            "SIP/2.0/{} {};branch={branch};rport",
            self.cfg.transport.via(),
            self.local_host()
        );
        let call = self.calls.get_mut(&id)?;
        let d = &mut call.dialog;
        if method != Method::Ack {
            d.local_cseq += 1;
        }
        let mut m = Message::request(method.clone(), &d.remote_target);
        m.push("Via", via);
        m.push("Max-Forwards", "70");
        for r in &d.route {
            m.push("Route", r.clone());
        }
        m.push("From", format!("{};tag={}", d.local_uri, d.local_tag));
        let to = match &d.remote_tag {
            Some(t) => format!("{};tag={t}", d.remote_uri),
            None => d.remote_uri.clone(),
        };
        m.push("To", to);
        m.push("Call-ID", d.call_id.clone());
        m.push("CSeq", format!("{} {}", d.local_cseq, method.as_str()));
        m.push("User-Agent", ua);
        Some(m)
    }

    fn send_bye(&mut self, id: CallId, cause: Cause, now: Instant) {
        let branch = self.branch();
        let Some(m) = self.in_dialog(id, Method::Bye, &branch) else {
            return;
        };
        let peer = self.calls[&id].dialog.peer;
        self.start_client(Kind::NonInvite, &m, &branch, Owner::Bye(id), peer, now);
        if let Some(c) = self.calls.get_mut(&id) {
            c.state = CallState::Ending { cause };
        }
    }

    fn send_cancel(&mut self, id: CallId, invite: &Message, branch: &str, now: Instant) {
        // RFC 3261 §9.1: same Request-URI, Call-ID, To, From, CSeq number and top Via.
        let StartLine::Request { uri, .. } = &invite.start else {
            return;
        };
        let mut m = Message::request(Method::Cancel, uri);
        for h in ["Via", "Route", "From", "To", "Call-ID"] {
            for v in invite.headers.iter().filter(|(n, _)| n == h) {
                m.push(h, v.1.clone());
            }
        }
        let n = invite.cseq().map(|c| c.0).unwrap_or(1);
        m.push("Max-Forwards", "70");
        m.push("CSeq", format!("{n} CANCEL"));
        let peer = self.calls[&id].dialog.peer;
        self.start_client(Kind::NonInvite, &m, branch, Owner::Cancel(id), peer, now);
    }

    fn send_ack_2xx(&mut self, id: CallId, cseq: u32) {
        let branch = self.branch();
        let Some(mut m) = self.in_dialog(id, Method::Ack, &branch) else {
            return;
        };
        m.set_header("CSeq", format!("{cseq} ACK"));
        let bytes = m.to_bytes();
        let peer = self.calls[&id].dialog.peer;
        if let Some(c) = self.calls.get_mut(&id) {
            c.ack = Some((cseq, bytes.clone()));
        }
        self.send(peer, bytes);
    }

    /// Learn the dialog from a 2xx (RFC 3261 §12.1.2).
    fn establish_uac(&mut self, id: CallId, resp: &Message) {
        let server = self.server_peer();
        let transport = self.cfg.transport;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let d = &mut call.dialog;
        if let Ok(to) = resp.to() {
            d.remote_tag = to.param("tag").map(str::to_string);
        }
        let mut route: Vec<String> = resp.header_values("Record-Route");
        route.reverse();
        d.route = route;
        if let Some(c) = resp
            .header_values("Contact")
            .first()
            .and_then(|c| NameAddr::parse(c).ok())
        {
            d.remote_target = c.uri.clone();
        }
        d.peer = dialog_peer(d, transport).or(server).unwrap_or(d.peer);
    }

    fn on_invite_response(&mut self, id: CallId, resp: &Message, now: Instant) {
        let code = resp.code().unwrap_or(0);
        let cseq = resp.cseq().map(|c| c.0).unwrap_or(0);
        let Some(call) = self.calls.get_mut(&id) else {
            // A 2xx after the call was dropped: ACK and BYE are not possible without the
            // dialog; the far end's timer ends it (§13.3.1.4).
            return;
        };
        match call.state.clone() {
            CallState::Inviting {
                request,
                branch,
                auth_tries,
                hangup,
                give_up,
                ..
            } => {
                if code < 200 {
                    if code > 100 {
                        if let CallState::Inviting { provisional, .. } = &mut call.state {
                            *provisional = true;
                        }
                        self.event(Event::Ringing { call: id });
                        if hangup.is_some() {
                            self.send_cancel(id, &request, &branch, now);
                        }
                    }
                    return;
                }
                if code < 300 {
                    self.establish_uac(id, resp);
                    self.send_ack_2xx(id, cseq);
                    if let Some(cause) = hangup {
                        return self.send_bye(id, cause, now);
                    }
                    let answer = Sdp::parse(&resp.body).ok();
                    match answer.as_ref().and_then(sdp::pick_audio) {
                        Some((codec, remote)) => {
                            let wait = self.cfg.reinvite_wait;
                            if let Some(c) = self.calls.get_mut(&id) {
                                c.codec = Some(codec);
                                c.state = CallState::Audio {
                                    reinvite_at: Some(now + wait),
                                };
                            }
                            self.event(Event::Audio {
                                call: id,
                                codec,
                                remote,
                            });
                        }
                        None => self.send_bye(id, Cause::NoAudio, now),
                    }
                    return;
                }
                if (code == 401 || code == 407) && hangup.is_none() {
                    match self.authorize(&request, resp, auth_tries) {
                        Ok(req) => {
                            let branch = self.branch();
                            let req = self.rebranch(req, &branch, id);
                            let peer = self.calls[&id].dialog.peer;
                            self.start_client(
                                Kind::Invite,
                                &req,
                                &branch,
                                Owner::Invite(id),
                                peer,
                                now,
                            );
                            if let Some(c) = self.calls.get_mut(&id) {
                                c.state = CallState::Inviting {
                                    request: req,
                                    branch,
                                    auth_tries: auth_tries + 1,
                                    provisional: false,
                                    hangup: None,
                                    give_up,
                                };
                            }
                        }
                        Err(cause) => self.end(id, cause),
                    }
                    return;
                }
                let cause = hangup.unwrap_or_else(|| Cause::from_status(code, reason(resp)));
                self.end(id, cause);
            }
            // A 2xx retransmission: our ACK again (§13.2.2.4).
            _ if (200..300).contains(&code) => {
                if let Some((n, bytes)) = call.ack.clone()
                    && n == cseq
                {
                    let peer = call.dialog.peer;
                    self.send(peer, bytes);
                }
            }
            _ => {}
        }
    }

    /// The request again with a new branch and CSeq (§8.1.3.5, §22.2).
    fn rebranch(&mut self, mut req: Message, branch: &str, id: CallId) -> Message {
        let via = format!(
            "SIP/2.0/{} {};branch={branch};rport",
            self.cfg.transport.via(),
            self.local_host()
        );
        req.replace_first("Via", via);
        if let Some(c) = self.calls.get_mut(&id) {
            c.dialog.local_cseq += 1;
            let m = req.method().unwrap_or(Method::Invite);
            req.replace_first("CSeq", format!("{} {}", c.dialog.local_cseq, m.as_str()));
        }
        req
    }

    /// Add credentials for a 401/407 (RFC 3261 §22.2, §22.3).
    fn authorize(&mut self, req: &Message, resp: &Message, tries: u8) -> Result<Message, Cause> {
        let code = resp.code().unwrap_or(0);
        let (ch_name, auth_name) = if code == 401 {
            ("WWW-Authenticate", "Authorization")
        } else {
            ("Proxy-Authenticate", "Proxy-Authorization")
        };
        let challenge = resp
            .header(ch_name)
            .ok_or_else(|| Cause::AuthRejected("no challenge".into()))
            .and_then(|v| Challenge::parse(v).map_err(|e| Cause::AuthRejected(e.to_string())))?;
        if tries >= 1 && !challenge.stale || tries >= 3 {
            return Err(Cause::AuthRejected(format!("user {}", self.cfg.auth_user)));
        }
        let StartLine::Request { method, uri } = &req.start else {
            return Err(Cause::Local("not a request".into()));
        };
        let cnonce = self.token();
        let v = challenge.answer(
            &self.cfg.auth_user,
            &self.cfg.password,
            method.as_str(),
            uri,
            1,
            &cnonce,
        );
        let mut out = req.clone();
        out.headers
            .retain(|(n, _)| n != "Authorization" && n != "Proxy-Authorization");
        out.push(auth_name, v);
        Ok(out)
    }

    // ---- re-INVITE to T.38 (T.38 Annex D.2.2) ----

    fn send_reinvite(&mut self, id: CallId, now: Instant) {
        let branch = self.branch();
        let contact = self.contact();
        let t38 = self.cfg.t38.clone();
        let Some(mut m) = self.in_dialog(id, Method::Invite, &branch) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.origin.version += 1;
        let body = sdp::image(&call.origin, call.media_port, &t38sdp::offer_attrs(&t38));
        m.push("Contact", contact);
        m.push("Allow", ALLOW);
        m.set_body("application/sdp", body);
        let peer = call.dialog.peer;
        call.state = CallState::ReInviting {
            request: m.clone(),
            branch: branch.clone(),
            auth_tries: 0,
        };
        self.start_client(Kind::Invite, &m, &branch, Owner::ReInvite(id), peer, now);
    }

    fn on_reinvite_response(&mut self, id: CallId, resp: &Message, now: Instant) {
        let code = resp.code().unwrap_or(0);
        let cseq = resp.cseq().map(|c| c.0).unwrap_or(0);
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let CallState::ReInviting {
            request,
            auth_tries,
            ..
        } = call.state.clone()
        else {
            if (200..300).contains(&code)
                && let Some((n, bytes)) = call.ack.clone()
                && n == cseq
            {
                let peer = call.dialog.peer;
                self.send(peer, bytes);
            }
            return;
        };
        match code {
            100..=199 => {}
            200..=299 => {
                self.send_ack_2xx(id, cseq);
                let t38 = self.cfg.t38.clone();
                let agreed = Sdp::parse(&resp.body).ok().and_then(|s| {
                    let (m, addr) = sdp::pick_t38(&s)?;
                    Some((addr, t38sdp::accept_answer(&t38, m)?))
                });
                match agreed {
                    Some((remote, params)) => {
                        if let Some(c) = self.calls.get_mut(&id) {
                            c.state = CallState::T38 {
                                remote,
                                params: params.clone(),
                            };
                        }
                        self.event(Event::T38 {
                            call: id,
                            remote,
                            params,
                        });
                    }
                    None => self.send_bye(
                        id,
                        Cause::NoT38("its answer has no usable T.38 stream".into()),
                        now,
                    ),
                }
            }
            401 | 407 => match self.authorize(&request, resp, auth_tries) {
                Ok(req) => {
                    let branch = self.branch();
                    let req = self.rebranch(req, &branch, id);
                    let peer = self.calls[&id].dialog.peer;
                    self.start_client(Kind::Invite, &req, &branch, Owner::ReInvite(id), peer, now);
                    if let Some(c) = self.calls.get_mut(&id) {
                        c.state = CallState::ReInviting {
                            request: req,
                            branch,
                            auth_tries: auth_tries + 1,
                        };
                    }
                }
                Err(cause) => self.send_bye(id, cause, now),
            },
            491 => {
                // RFC 3261 §14.1 glare: the dialog's UAC waits 2.1–4 s, the other 0–2 s.
                let we_called = call.dialog.we_called;
                let r = self.rand() % 1000;
                let wait = if we_called { 2100 + r * 19 / 10 } else { r * 2 };
                if let Some(c) = self.calls.get_mut(&id) {
                    c.state = CallState::Audio {
                        reinvite_at: Some(now + Duration::from_millis(wait)),
                    };
                }
            }
            // The dialog is gone (§12.2.1.2).
            408 | 481 => self.end(
                id,
                Cause::NoT38(format!("SIP {code} to the T.38 re-INVITE")),
            ),
            _ => self.send_bye(
                id,
                Cause::NoT38(format!("SIP {code} {} to the T.38 re-INVITE", reason(resp))),
                now,
            ),
        }
    }

    // ---- incoming requests ----

    /// Answer an incoming call (after [`Event::Incoming`]) on `media_port`: with G.711 (our
    /// T.38 re-INVITE follows the ACK), or with T.38 at once when the INVITE offers it.
    pub fn answer(&mut self, id: CallId, media_port: u16, now: Instant) {
        let t38 = self.cfg.t38.clone();
        let contact = self.contact();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let CallState::Offered { invite, tx, offer } = call.state.clone() else {
            return;
        };
        call.media_port = media_port;
        let tag = call.dialog.local_tag.clone();
        let mut r = Message::response_to(&invite, 200, "OK", Some(&tag));
        r.push("Contact", contact);
        r.push("Allow", ALLOW);
        // A gateway may offer T.38 in its first INVITE (T.38 Annex D.2.2): take it then.
        let direct = sdp::pick_t38(&offer)
            .and_then(|(m, addr)| Some((addr, t38sdp::answer_offer(&t38, m)?)));
        if let Some((remote, (params, attrs))) = direct {
            let body = sdp::answer(sdp::image(&call.origin, media_port, &attrs), &offer, |m| {
                m.is_t38() && m.port != 0
            });
            r.set_body("application/sdp", body);
            call.state = CallState::Answered {
                tx: tx.clone(),
                t38: Some((remote, params.clone())),
                hangup: None,
            };
            self.respond_msg(&tx, r, now);
            return self.event(Event::T38 {
                call: id,
                remote,
                params,
            });
        }
        let Some((codec, remote)) = sdp::pick_audio(&offer) else {
            self.respond_tx(&tx, &invite, 488, "Not Acceptable Here", None, now);
            return self.end(id, Cause::NoAudio);
        };
        call.codec = Some(codec);
        let body = sdp::answer(
            sdp::audio(&call.origin, media_port, &[codec]),
            &offer,
            |m| m.is_audio() && m.port != 0,
        );
        call.state = CallState::Answered {
            tx: tx.clone(),
            t38: None,
            hangup: None,
        };
        r.set_body("application/sdp", body);
        self.respond_msg(&tx, r, now);
        self.event(Event::Audio {
            call: id,
            codec,
            remote,
        });
    }

    /// Refuse an incoming call before answering (e.g. no media port free).
    pub fn reject(&mut self, id: CallId, code: u16, reason: &str, now: Instant) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if let CallState::Offered { invite, tx, .. } = call.state.clone() {
            let tag = call.dialog.local_tag.clone();
            self.respond_tx(&tx, &invite, code, reason, Some(&tag), now);
            self.end(id, Cause::Local(format!("refused here: {code} {reason}")));
        }
    }

    /// Hang up: CANCEL, BYE or a final refusal, as the call's state allows.
    pub fn hangup(&mut self, id: CallId, now: Instant) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        match call.state.clone() {
            CallState::Inviting {
                request,
                branch,
                provisional,
                hangup: None,
                ..
            } => {
                if let CallState::Inviting { hangup, .. } = &mut call.state {
                    *hangup = Some(Cause::LocalHangup);
                }
                if provisional {
                    self.send_cancel(id, &request, &branch, now);
                }
            }
            CallState::Offered { .. } => self.reject(id, 480, "Temporarily Unavailable", now),
            CallState::Answered {
                tx,
                t38,
                hangup: None,
            } => {
                call.state = CallState::Answered {
                    tx,
                    t38,
                    hangup: Some(Cause::LocalHangup),
                };
            }
            CallState::Audio { .. } | CallState::ReInviting { .. } | CallState::T38 { .. } => {
                self.send_bye(id, Cause::LocalHangup, now)
            }
            _ => {}
        }
    }

    fn respond_msg(&mut self, tx: &(String, String), r: Message, now: Instant) {
        let code = r.code().unwrap_or(500);
        if let Some((stx, peer)) = self.servers.get_mut(tx)
            && let Some(bytes) = stx.respond(code, r.to_bytes(), now)
        {
            let peer = *peer;
            self.send(peer, bytes);
        }
    }

    fn respond_tx(
        &mut self,
        tx: &(String, String),
        req: &Message,
        code: u16,
        reason: &str,
        tag: Option<&str>,
        now: Instant,
    ) {
        let mut r = Message::response_to(req, code, reason, tag);
        if code == 405 || code == 200 && req.method() == Some(Method::Options) {
            r.push("Allow", ALLOW);
        }
        if req.method() == Some(Method::Options) {
            r.push("Accept", "application/sdp");
        }
        self.respond_msg(tx, r, now);
    }

    fn find_dialog(&self, req: &Message) -> Option<CallId> {
        let call_id = req.call_id().ok()?;
        let to_tag = req.to().ok()?.param("tag").map(str::to_string);
        let from_tag = req.from().ok()?.param("tag").map(str::to_string);
        self.calls.iter().find_map(|(id, c)| {
            let d = &c.dialog;
            (d.call_id == call_id
                && to_tag.as_deref() == Some(d.local_tag.as_str())
                && (d.remote_tag.is_none() || d.remote_tag == from_tag))
                .then_some(*id)
        })
    }

    fn allowed(&self, ip: IpAddr) -> bool {
        self.cfg.server.is_some_and(|s| s.ip() == ip)
            || self.cfg.allowed.iter().any(|n| n.contains(&ip))
    }

    fn on_request(&mut self, req: Message, from: Peer, now: Instant) {
        let Ok(via) = req.top_via() else { return };
        let Some(method) = req.method() else { return };
        let branch = via.branch().unwrap_or("").to_string();
        if method == Method::Ack {
            return self.on_ack(&req, &branch, now);
        }
        let tx = key(&branch, &method);
        if !branch.is_empty()
            && let Some((stx, peer)) = self.servers.get(&tx)
        {
            // A retransmission (§17.2.1, §17.2.2).
            if let Some(b) = stx.on_retransmission() {
                let peer = *peer;
                self.send(peer, b);
            }
            return;
        }
        let reliable = from.transport == Transport::Tcp;
        let kind = if method == Method::Invite {
            Kind::Invite
        } else {
            Kind::NonInvite
        };
        // Without a magic-cookie branch the request still gets its answer, under a key of its
        // own that no retransmission will match.
        let tx = if branch.is_empty() {
            (self.token(), method.as_str().to_string())
        } else {
            tx
        };
        self.servers.insert(
            tx.clone(),
            (ServerTx::new(kind, reliable, self.cfg.timers), from),
        );
        if req.check_request().is_err() {
            return self.respond_tx(&tx, &req, 400, "Bad Request", None, now);
        }
        match method {
            Method::Invite => self.on_invite(req, tx, from, now),
            Method::Bye => match self.find_dialog(&req) {
                Some(id) => {
                    self.respond_tx(&tx, &req, 200, "OK", None, now);
                    self.end(id, Cause::RemoteHangup);
                }
                None => {
                    self.respond_tx(&tx, &req, 481, "Call/Transaction Does Not Exist", None, now)
                }
            },
            Method::Cancel => self.on_cancel(&req, &tx, &branch, now),
            Method::Options => {
                if !self.allowed(from.addr.ip()) && self.find_dialog(&req).is_none() {
                    tracing::warn!(peer = %from.addr, "SIP OPTIONS from a network not allowed: 403");
                    return self.respond_tx(&tx, &req, 403, "Forbidden", None, now);
                }
                let tag = self.token();
                self.respond_tx(&tx, &req, 200, "OK", Some(&tag), now)
            }
            _ => self.respond_tx(&tx, &req, 405, "Method Not Allowed", None, now),
        }
    }

    fn on_ack(&mut self, req: &Message, branch: &str, now: Instant) {
        // ACK to a non-2xx: same branch as the INVITE (§17.2.1).
        if let Some((stx, _)) = self.servers.get_mut(&key(branch, &Method::Invite)) {
            stx.on_ack(now);
            return;
        }
        // ACK to our 2xx: matched by dialog (§13.3.1.4).
        let Some(id) = self.find_dialog(req) else {
            return;
        };
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let CallState::Answered { tx, t38, hangup } = call.state.clone() else {
            return;
        };
        if let Some((stx, _)) = self.servers.get_mut(&tx) {
            stx.on_ack(now);
        }
        if let Some(cause) = hangup {
            return self.send_bye(id, cause, now);
        }
        match t38 {
            Some((remote, params)) => {
                if let Some(c) = self.calls.get_mut(&id) {
                    c.state = CallState::T38 { remote, params };
                }
            }
            // The initial INVITE's ACK: our T.38 re-INVITE at once (issue 17: receiving, we
            // switch to T.38 ourselves).
            None => self.send_reinvite(id, now),
        }
    }

    fn on_cancel(&mut self, req: &Message, tx: &(String, String), branch: &str, now: Instant) {
        let inv = key(branch, &Method::Invite);
        let open = self
            .servers
            .get(&inv)
            .is_some_and(|(s, _)| s.is_proceeding());
        if !open {
            return self.respond_tx(tx, req, 481, "Call/Transaction Does Not Exist", None, now);
        }
        self.respond_tx(tx, req, 200, "OK", None, now);
        let found = self.calls.iter().find_map(|(id, c)| match &c.state {
            CallState::Offered { tx, invite, .. } if *tx == inv => {
                Some((*id, invite.clone(), c.dialog.local_tag.clone()))
            }
            _ => None,
        });
        if let Some((id, invite, tag)) = found {
            // §9.2: the INVITE gets 487.
            self.respond_tx(&inv, &invite, 487, "Request Terminated", Some(&tag), now);
            self.end(id, Cause::RemoteHangup);
        }
    }

    fn on_invite(&mut self, req: Message, tx: (String, String), from: Peer, now: Instant) {
        if req.to().is_ok_and(|t| t.param("tag").is_some()) {
            return self.on_reinvite(req, tx, now);
        }
        if !self.allowed(from.addr.ip()) {
            tracing::warn!(peer = %from.addr, "SIP INVITE from a network not allowed: 403");
            return self.respond_tx(&tx, &req, 403, "Forbidden", None, now);
        }
        if self.calls.len() >= self.cfg.max_calls {
            return self.respond_tx(&tx, &req, 486, "Busy Here", None, now);
        }
        let offer = match Sdp::parse(&req.body) {
            Ok(s) if sdp::pick_audio(&s).is_some() || sdp::pick_t38(&s).is_some() => s,
            // No offer (RFC 3261 §13.2.1 lets the 200 carry it) or no G.711: we need the far
            // end's audio address before T.38, so we refuse.
            _ => return self.respond_tx(&tx, &req, 488, "Not Acceptable Here", None, now),
        };
        let StartLine::Request { uri, .. } = &req.start else {
            return;
        };
        let (Ok(from_na), Ok(to_na)) = (req.from(), req.to()) else {
            return;
        };
        let did = Uri::parse(uri)
            .ok()
            .and_then(|u| u.user)
            .filter(|u| !u.is_empty())
            .or_else(|| to_na.parsed_uri().ok().and_then(|u| u.user))
            .map(|u| unescape(&u))
            .unwrap_or_default();
        // RFC 3325 §9.1: P-Asserted-Identity from a trusted network (the only ones we take
        // INVITEs from) names the caller; else From.
        let pai = req
            .header_values("P-Asserted-Identity")
            .iter()
            .filter_map(|v| NameAddr::parse(v).ok())
            .find(|na| na.parsed_uri().is_ok_and(|u| u.user.is_some()));
        let who = pai.as_ref().unwrap_or(&from_na);
        let caller = who
            .parsed_uri()
            .ok()
            .and_then(|u| u.user)
            .map(|u| unescape(&u))
            .unwrap_or_default();
        let caller_name = who.display.clone().or_else(|| from_na.display.clone());
        let id = self.next_call;
        self.next_call += 1;
        let contact = req
            .header_values("Contact")
            .first()
            .and_then(|c| NameAddr::parse(c).ok());
        let mut route = req.header_values("Record-Route");
        let dialog = Dialog {
            call_id: req.call_id().unwrap_or("").to_string(),
            local_tag: self.token(),
            remote_tag: from_na.param("tag").map(str::to_string),
            local_uri: strip_tag(req.header("To").unwrap_or("")),
            remote_uri: strip_tag(req.header("From").unwrap_or("")),
            local_cseq: (self.rand() % 10_000) as u32 + 1,
            remote_cseq: req.cseq().ok().map(|c| c.0),
            remote_target: contact
                .map(|c| c.uri)
                .unwrap_or_else(|| format!("sip:{}", from.addr)),
            route: std::mem::take(&mut route),
            // Symmetric: in-dialog requests go back where the INVITE came from (unless
            // routed), which also reuses a TCP connection.
            peer: from,
            we_called: false,
        };
        let mut dialog = dialog;
        if let Some(p) = dialog
            .route
            .first()
            .and_then(|r| NameAddr::parse(r).ok())
            .and_then(|na| na.parsed_uri().ok())
            .and_then(|u| u.socket_addr(5060))
        {
            dialog.peer = Peer {
                transport: from.transport,
                addr: p,
            };
        }
        let origin = Origin {
            session_id: self.rand() >> 16,
            version: 1,
            addr: self.cfg.media_ip,
        };
        // 100 Trying now (§8.2.6.1, §17.2.1): the shell's answer may take a moment.
        let trying = Message::response_to(&req, 100, "Trying", None);
        self.respond_msg(&tx, trying, now);
        self.calls.insert(
            id,
            Call {
                dialog,
                media_port: 0,
                origin,
                state: CallState::Offered {
                    invite: req,
                    tx,
                    offer,
                },
                ack: None,
                codec: None,
            },
        );
        self.event(Event::Incoming {
            call: id,
            did,
            caller,
            caller_name,
        });
    }

    fn on_reinvite(&mut self, req: Message, tx: (String, String), now: Instant) {
        let Some(id) = self.find_dialog(&req) else {
            return self.respond_tx(&tx, &req, 481, "Call/Transaction Does Not Exist", None, now);
        };
        let cseq = req.cseq().map(|c| c.0).unwrap_or(0);
        let call = &self.calls[&id];
        if call.dialog.remote_cseq.is_some_and(|r| cseq <= r) {
            return self.respond_tx(&tx, &req, 500, "Server Internal Error", None, now);
        }
        if matches!(
            call.state,
            CallState::ReInviting { .. } | CallState::Answered { .. } | CallState::Inviting { .. }
        ) {
            // §14.2: an INVITE of ours is pending.
            return self.respond_tx(&tx, &req, 491, "Request Pending", None, now);
        }
        if matches!(call.state, CallState::Ending { .. }) {
            return self.respond_tx(&tx, &req, 481, "Call/Transaction Does Not Exist", None, now);
        }
        let contact = self.contact();
        let t38 = self.cfg.t38.clone();
        let call = self.calls.get_mut(&id).expect("found above");
        call.dialog.remote_cseq = Some(cseq);
        let offer = Sdp::parse(&req.body).ok();
        let t38_offer = offer.as_ref().and_then(|s| {
            sdp::pick_t38(s).and_then(|(m, addr)| Some((addr, t38sdp::answer_offer(&t38, m)?)))
        });
        let tag = call.dialog.local_tag.clone();
        let mut r = Message::response_to(&req, 200, "OK", Some(&tag));
        r.push("Contact", contact);
        r.push("Allow", ALLOW);
        match (t38_offer, offer.as_ref().and_then(sdp::pick_audio)) {
            (Some((remote, (params, attrs))), _) => {
                call.origin.version += 1;
                r.set_body(
                    "application/sdp",
                    sdp::answer(
                        sdp::image(&call.origin, call.media_port, &attrs),
                        offer.as_ref().expect("a T.38 offer was read"),
                        |m| m.is_t38() && m.port != 0,
                    ),
                );
                call.state = CallState::Answered {
                    tx: tx.clone(),
                    t38: Some((remote, params.clone())),
                    hangup: None,
                };
                self.respond_msg(&tx, r, now);
                self.event(Event::T38 {
                    call: id,
                    remote,
                    params,
                });
            }
            // An audio re-offer (session refresh, hold): answer with our audio again; our own
            // T.38 re-INVITE stays due.
            (None, Some((codec, _)))
                if offer
                    .as_ref()
                    .is_some_and(|s| s.media.iter().all(|m| !m.is_t38() || m.port == 0)) =>
            {
                call.origin.version += 1;
                r.set_body(
                    "application/sdp",
                    sdp::answer(
                        sdp::audio(&call.origin, call.media_port, &[codec]),
                        offer.as_ref().expect("an audio offer was read"),
                        |m| m.is_audio() && m.port != 0,
                    ),
                );
                let prev = call.state.clone();
                call.state = CallState::Answered {
                    tx: tx.clone(),
                    t38: None,
                    hangup: None,
                };
                self.respond_msg(&tx, r, now);
                // Back to where we were once the ACK comes (T.38 stays T.38).
                if let Some(c) = self.calls.get_mut(&id)
                    && let CallState::Answered { .. } = c.state
                    && let CallState::T38 { remote, params } = prev
                {
                    c.state = CallState::Answered {
                        tx,
                        t38: Some((remote, params)),
                        hangup: None,
                    };
                }
            }
            _ => {
                tracing::info!(call = id, "T.38 re-INVITE we cannot take: 488");
                self.respond_tx(&tx, &req, 488, "Not Acceptable Here", Some(&tag), now);
            }
        }
    }

    // ---- input ----

    /// One received message (a datagram, or a frame cut from a TCP stream).
    pub fn handle_message(&mut self, from: Peer, bytes: &[u8], now: Instant) {
        let msg = match Message::parse(bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(peer = %from.addr, error = %e, "SIP message dropped");
                return;
            }
        };
        match msg.start {
            StartLine::Request { .. } => self.on_request(msg, from, now),
            StartLine::Response { .. } => self.on_response(msg, now),
        }
    }

    fn on_response(&mut self, resp: Message, now: Instant) {
        let Ok(via) = resp.top_via() else { return };
        let Some(branch) = via.branch() else { return };
        let Ok((_, method)) = resp.cseq() else { return };
        let k = key(branch, &method);
        let code = resp.code().unwrap_or(0);
        let Some((tx, owner, peer, req)) = self.clients.get_mut(&k) else {
            return;
        };
        let owner = *owner;
        let peer = *peer;
        let (delivery, ack) = tx.on_response(code, now, || ack_non2xx(req, &resp));
        if let Some(a) = ack {
            self.send(peer, a);
        }
        match delivery {
            Delivery::Absorb(Some(a)) => self.send(peer, a),
            Delivery::Absorb(None) => {}
            Delivery::Deliver => self.deliver(owner, &resp, now),
        }
    }

    fn deliver(&mut self, owner: Owner, resp: &Message, now: Instant) {
        let code = resp.code().unwrap_or(0);
        match owner {
            Owner::Register => self.on_register_response(resp, now),
            Owner::Invite(id) => self.on_invite_response(id, resp, now),
            Owner::ReInvite(id) => self.on_reinvite_response(id, resp, now),
            Owner::Bye(id) if code >= 200 => {
                if let Some(CallState::Ending { cause }) =
                    self.calls.get(&id).map(|c| c.state.clone())
                {
                    self.end(id, cause);
                }
            }
            Owner::Bye(_) | Owner::Cancel(_) => {}
        }
    }

    /// Run everything due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Client transactions.
        let mut timed_out = Vec::new();
        let mut sends = Vec::new();
        for (k, (tx, owner, peer, _)) in self.clients.iter_mut() {
            if tx.deadline().is_some_and(|d| d <= now) {
                for o in tx.on_timer(now) {
                    match o {
                        ClientOut::Send(b) => sends.push((*peer, b)),
                        ClientOut::TimedOut => timed_out.push((k.clone(), *owner)),
                    }
                }
            }
        }
        self.clients.retain(|_, (tx, _, _, _)| !tx.is_terminated());
        let mut no_ack = Vec::new();
        for (k, (tx, peer)) in self.servers.iter_mut() {
            if tx.deadline().is_some_and(|d| d <= now) {
                for o in tx.on_timer(now) {
                    match o {
                        ServerOut::Send(b) => sends.push((*peer, b)),
                        ServerOut::NoAck => no_ack.push(k.clone()),
                    }
                }
            }
        }
        self.servers.retain(|_, (tx, _)| !tx.is_terminated());
        for (p, b) in sends {
            self.send(p, b);
        }
        for (_, owner) in timed_out {
            self.on_tx_timeout(owner, now);
        }
        for k in no_ack {
            let id = self.calls.iter().find_map(|(id, c)| {
                matches!(&c.state, CallState::Answered { tx, .. } if *tx == k).then_some(*id)
            });
            if let Some(id) = id {
                // §13.3.1.4: no ACK to our 2xx: the dialog ends with a BYE.
                self.send_bye(id, Cause::Timeout, now);
            }
        }
        // Registration.
        match self.reg.clone() {
            Reg::Failed { retry_at, .. } if retry_at <= now => {
                let e = self.cfg.register_expires;
                self.send_register(e, None, 0, now)
            }
            Reg::Bound { refresh_at, .. } if refresh_at <= now => {
                let e = self.cfg.register_expires;
                self.send_register(e, None, 0, now)
            }
            _ => {}
        }
        // Calls.
        let due: Vec<(CallId, bool)> = self
            .calls
            .iter()
            .filter_map(|(id, c)| match &c.state {
                CallState::Audio {
                    reinvite_at: Some(t),
                } if *t <= now => Some((*id, true)),
                CallState::Inviting {
                    give_up,
                    hangup: None,
                    ..
                } if *give_up <= now => Some((*id, false)),
                _ => None,
            })
            .collect();
        for (id, reinvite) in due {
            if reinvite {
                self.send_reinvite(id, now);
            } else {
                // Rang too long: CANCEL (or, before a provisional, at the next one).
                if let Some(CallState::Inviting {
                    request,
                    branch,
                    provisional,
                    ..
                }) = self.calls.get(&id).map(|c| c.state.clone())
                {
                    if let Some(CallState::Inviting { hangup, .. }) =
                        self.calls.get_mut(&id).map(|c| &mut c.state)
                    {
                        *hangup = Some(Cause::NoAnswer(408));
                    }
                    if provisional {
                        self.send_cancel(id, &request, &branch, now);
                    }
                }
            }
        }
    }

    fn on_tx_timeout(&mut self, owner: Owner, now: Instant) {
        match owner {
            Owner::Register => self.reg_failed(RegisterError::Timeout, now),
            Owner::Invite(id) => {
                let cause = match self.calls.get(&id).map(|c| &c.state) {
                    Some(CallState::Inviting {
                        hangup: Some(c), ..
                    }) => c.clone(),
                    _ => Cause::Timeout,
                };
                self.end(id, cause)
            }
            // No answer to our T.38 offer: T.38 Annex D's "no answer" case.
            Owner::ReInvite(id) => self.send_bye(
                id,
                Cause::NoT38("no answer to the T.38 re-INVITE".into()),
                now,
            ),
            Owner::Bye(id) => {
                if let Some(CallState::Ending { cause }) =
                    self.calls.get(&id).map(|c| c.state.clone())
                {
                    self.end(id, cause);
                }
            }
            Owner::Cancel(id) => self.end(id, Cause::LocalHangup),
        }
    }

    /// When [`UserAgent::handle_timeout`] next has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        let tx = self
            .clients
            .values()
            .filter_map(|(t, _, _, _)| t.deadline());
        let stx = self.servers.values().filter_map(|(t, _)| t.deadline());
        let reg = match &self.reg {
            Reg::Failed { retry_at, .. } => Some(*retry_at),
            Reg::Bound { refresh_at, .. } => Some(*refresh_at),
            _ => None,
        };
        let calls = self.calls.values().filter_map(|c| match &c.state {
            CallState::Audio { reinvite_at } => *reinvite_at,
            CallState::Inviting {
                give_up,
                hangup: None,
                ..
            } => Some(*give_up),
            _ => None,
        });
        tx.chain(stx).chain(reg).chain(calls).min()
    }

    /// Remove our binding (REGISTER with `Expires: 0`, RFC 3261 §10.2.2) when we have one;
    /// no further REGISTER follows. Answered challenges as any REGISTER.
    pub fn unregister(&mut self, now: Instant) {
        match self.reg {
            Reg::Bound { .. } => self.send_register(0, None, 0, now),
            Reg::Failed { .. } => self.reg = Reg::Off,
            Reg::Off | Reg::Sending { .. } => {}
        }
    }

    /// A REGISTER is out (the shell waits for it before it stops).
    pub fn registering(&self) -> bool {
        matches!(self.reg, Reg::Sending { .. })
    }

    /// The registration as of now.
    pub fn registration(&self) -> RegState {
        match &self.reg {
            Reg::Off => RegState::Disabled,
            Reg::Sending { .. } => RegState::Registering,
            Reg::Bound { until, .. } => RegState::Registered { until: *until },
            // Before the first attempt there is no error yet: show it as registering.
            Reg::Failed { error: None, .. } => RegState::Registering,
            Reg::Failed {
                retry_at,
                error: Some(error),
            } => RegState::Failed {
                error: error.clone(),
                retry_at: *retry_at,
            },
        }
    }
}

/// Methods we take (RFC 3261 §20.5).
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS";

fn reason(resp: &Message) -> &str {
    match &resp.start {
        StartLine::Response { reason, .. } => reason,
        StartLine::Request { .. } => "",
    }
}

/// The ACK for a non-2xx final (RFC 3261 §17.1.1.3): the INVITE's Request-URI, top Via,
/// Route, From, Call-ID and CSeq number; the response's To (with the far end's tag).
fn ack_non2xx(invite: &Message, resp: &Message) -> Vec<u8> {
    let uri = match &invite.start {
        StartLine::Request { uri, .. } => uri.clone(),
        StartLine::Response { .. } => String::new(),
    };
    let mut m = Message::request(Method::Ack, &uri);
    if let Some(v) = invite.header("Via") {
        m.push("Via", v.to_string());
    }
    m.push("Max-Forwards", "70");
    for r in invite.headers.iter().filter(|(n, _)| n == "Route") {
        m.push("Route", r.1.clone());
    }
    for (h, from) in [("From", invite), ("To", resp), ("Call-ID", invite)] {
        if let Some(x) = from.header(h) {
            m.push(h, x.to_string());
        }
    }
    let n = invite.cseq().map(|c| c.0).unwrap_or(1);
    m.push("CSeq", format!("{n} ACK"));
    m.to_bytes()
}

fn strip_tag(v: &str) -> String {
    match NameAddr::parse(v) {
        Ok(na) => match na.display {
            Some(d) => format!("{} <{}>", super::message::quote(&d), na.uri),
            None => format!("<{}>", na.uri),
        },
        Err(_) => v.to_string(),
    }
}

/// Where in-dialog requests go: the first route, else the remote target, when an IP literal.
fn dialog_peer(d: &Dialog, transport: Transport) -> Option<Peer> {
    let target = match d.route.first() {
        Some(r) => NameAddr::parse(r).ok()?.parsed_uri().ok()?,
        None => Uri::parse(&d.remote_target).ok()?,
    };
    target
        .socket_addr(5060)
        .map(|addr| Peer { transport, addr })
}

/// `%xx` escapes in a URI user part (RFC 3261 §19.1.2), for the DID and caller.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(s.get(i + 1..i + 3).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out)
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect()
}
