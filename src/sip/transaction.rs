//! PURE: SIP transactions (RFC 3261 §17) on an injected clock.
//!
//! Each transaction holds the bytes it may have to send again and its timers as instants;
//! the user agent core feeds responses, requests and `now`, and sends what comes back.
//! Retransmission timers (A, E, G) run only on UDP; on TCP the wait timers D, I, J, K are zero
//! (RFC 3261 §17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2). A 2xx to an INVITE is retransmitted by the
//! server transaction until the ACK (RFC 6026 §7.1, "Accepted"), so the core has one place for
//! every timer.

use std::time::{Duration, Instant};

/// RFC 3261 §17.1.1.1's timer values (Table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate, 500 ms.
    pub t1: Duration,
    /// Longest retransmit interval for non-INVITE requests and INVITE responses, 4 s.
    pub t2: Duration,
    /// Longest a message stays in the network, 5 s.
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// INVITE or any other method (the two state machines of §17).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// §17.1.1 / §17.2.1.
    Invite,
    /// §17.1.2 / §17.2.2.
    NonInvite,
}

/// A retransmission timer: next firing and current interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Retx {
    at: Instant,
    interval: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ClientState {
    /// Calling (INVITE) or Trying (non-INVITE): timer A/E and B/F running.
    Trying {
        retx: Option<Retx>,
        timeout: Instant,
    },
    /// A provisional response came: INVITE waits for the final (the core's answer timer
    /// bounds it); non-INVITE keeps timer E at T2 and F.
    Proceeding {
        retx: Option<Retx>,
        timeout: Option<Instant>,
    },
    /// A final response came; absorb its retransmissions until timer D/K (INVITE: resend ACK).
    Completed {
        until: Instant,
        ack: Option<Vec<u8>>,
    },
    /// An INVITE got a 2xx: its retransmissions go to the core (which resends its ACK) until
    /// 64·T1 (RFC 6026 §8.4, "Accepted").
    Accepted { until: Instant },
    /// Done.
    Terminated,
}

/// What a client transaction asks of the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOut {
    /// Send these bytes again (a request retransmission, or an ACK for a repeated final).
    Send(Vec<u8>),
    /// Timer B or F fired: the request had no final response (treat as 408, §8.1.3.1).
    TimedOut,
}

/// What to do with a response that matched a client transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Pass to the core.
    Deliver,
    /// A retransmission absorbed here; send these bytes if any (the ACK again).
    Absorb(Option<Vec<u8>>),
}

/// A client transaction.
#[derive(Debug, Clone)]
pub struct ClientTx {
    kind: Kind,
    reliable: bool,
    timers: Timers,
    request: Vec<u8>,
    state: ClientState,
}

impl ClientTx {
    /// Start: the caller sends `request` once now; this keeps it for retransmission.
    pub fn new(
        kind: Kind,
        reliable: bool,
        request: Vec<u8>,
        timers: Timers,
        now: Instant,
    ) -> ClientTx {
        let retx = (!reliable).then_some(Retx {
            at: now + timers.t1,
            interval: timers.t1,
        });
        ClientTx {
            kind,
            reliable,
            timers,
            request,
            state: ClientState::Trying {
                retx,
                timeout: now + 64 * timers.t1,
            },
        }
    }

    /// A response with this status arrived. `ack` builds the ACK for a non-2xx final to an
    /// INVITE (same branch, §17.1.1.3); the caller sends it when the result says so.
    pub fn on_response(
        &mut self,
        code: u16,
        now: Instant,
        ack: impl FnOnce() -> Vec<u8>,
    ) -> (Delivery, Option<Vec<u8>>) {
        let wait = |d: Duration| if self.reliable { now } else { now + d };
        match (&self.state, self.kind) {
            (ClientState::Terminated, _) => (Delivery::Absorb(None), None),
            (ClientState::Completed { ack, .. }, _) => (Delivery::Absorb(ack.clone()), None),
            (ClientState::Accepted { .. }, _) => (Delivery::Deliver, None),
            (_, kind) if code < 200 => {
                let retx = match kind {
                    Kind::Invite => None,
                    Kind::NonInvite => (!self.reliable).then_some(Retx {
                        at: now + self.timers.t2,
                        interval: self.timers.t2,
                    }),
                };
                let timeout = match (&self.state, kind) {
                    (ClientState::Trying { timeout, .. }, Kind::NonInvite) => Some(*timeout),
                    (ClientState::Proceeding { timeout, .. }, _) => *timeout,
                    _ => None,
                };
                self.state = ClientState::Proceeding { retx, timeout };
                (Delivery::Deliver, None)
            }
            (_, Kind::Invite) if code < 300 => {
                self.state = ClientState::Accepted {
                    until: now + 64 * self.timers.t1,
                };
                (Delivery::Deliver, None)
            }
            (_, Kind::Invite) => {
                let a = ack();
                self.state = ClientState::Completed {
                    until: wait(Duration::from_secs(32)),
                    ack: Some(a.clone()),
                };
                (Delivery::Deliver, Some(a))
            }
            (_, Kind::NonInvite) => {
                self.state = ClientState::Completed {
                    until: wait(self.timers.t4),
                    ack: None,
                };
                (Delivery::Deliver, None)
            }
        }
    }

    /// Run the timers due at `now`.
    pub fn on_timer(&mut self, now: Instant) -> Vec<ClientOut> {
        let mut out = Vec::new();
        let t2 = self.timers.t2;
        let kind = self.kind;
        match &mut self.state {
            ClientState::Trying { retx, timeout }
            | ClientState::Proceeding {
                retx,
                timeout: Some(timeout),
            } => {
                if now >= *timeout {
                    self.state = ClientState::Terminated;
                    out.push(ClientOut::TimedOut);
                    return out;
                }
                if let Some(r) = retx
                    && now >= r.at
                {
                    // Timer A doubles without bound (§17.1.1.2); E is capped at T2 (§17.1.2.2).
                    r.interval = match kind {
                        Kind::Invite => r.interval * 2,
                        Kind::NonInvite => (r.interval * 2).min(t2),
                    };
                    r.at = now + r.interval;
                    out.push(ClientOut::Send(self.request.clone()));
                }
            }
            ClientState::Proceeding {
                retx,
                timeout: None,
            } => {
                if let Some(r) = retx
                    && now >= r.at
                {
                    r.at = now + r.interval;
                    out.push(ClientOut::Send(self.request.clone()));
                }
            }
            ClientState::Completed { until, .. } | ClientState::Accepted { until } => {
                if now >= *until {
                    self.state = ClientState::Terminated;
                }
            }
            ClientState::Terminated => {}
        }
        out
    }

    /// The next instant [`ClientTx::on_timer`] has work.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.state {
            ClientState::Trying { retx, timeout } => {
                Some(retx.map_or(*timeout, |r| r.at.min(*timeout)))
            }
            ClientState::Proceeding { retx, timeout } => match (retx.map(|r| r.at), timeout) {
                (Some(a), Some(b)) => Some(a.min(*b)),
                (a, b) => a.or(*b),
            },
            ClientState::Completed { until, .. } | ClientState::Accepted { until } => Some(*until),
            ClientState::Terminated => None,
        }
    }

    /// Finished: drop it.
    pub fn is_terminated(&self) -> bool {
        self.state == ClientState::Terminated
    }

    /// A final response has been received.
    pub fn is_final(&self) -> bool {
        matches!(
            self.state,
            ClientState::Completed { .. } | ClientState::Accepted { .. } | ClientState::Terminated
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ServerState {
    /// Waiting for the core's final response; a retransmitted request gets the last
    /// provisional again.
    Proceeding,
    /// INVITE answered 2xx: resend it until the ACK (RFC 6026 §7.1; RFC 3261 §13.3.1.4).
    Accepted { retx: Option<Retx>, until: Instant },
    /// Final non-2xx (INVITE: timers G, H until the ACK) or any final (non-INVITE: timer J).
    Completed { retx: Option<Retx>, until: Instant },
    /// INVITE: ACK received, absorb ACK retransmissions until timer I.
    Confirmed { until: Instant },
    /// Done.
    Terminated,
}

/// What a server transaction asks of the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerOut {
    /// Send the last response again.
    Send(Vec<u8>),
    /// Timer H (or the 2xx's 64·T1) fired without an ACK (§17.2.1; §13.3.1.4: end the dialog).
    NoAck,
}

/// A server transaction.
#[derive(Debug, Clone)]
pub struct ServerTx {
    kind: Kind,
    reliable: bool,
    timers: Timers,
    last: Option<Vec<u8>>,
    state: ServerState,
}

impl ServerTx {
    /// A new request arrived.
    pub fn new(kind: Kind, reliable: bool, timers: Timers) -> ServerTx {
        ServerTx {
            kind,
            reliable,
            timers,
            last: None,
            state: ServerState::Proceeding,
        }
    }

    /// The core sends a response with this status; returns the bytes to send now (`None` once
    /// a final was sent: a second final is not sent, §17.2.1).
    pub fn respond(&mut self, code: u16, bytes: Vec<u8>, now: Instant) -> Option<Vec<u8>> {
        if self.state != ServerState::Proceeding {
            return None;
        }
        let t1 = self.timers.t1;
        let retx = (!self.reliable).then_some(Retx {
            at: now + t1,
            interval: t1,
        });
        self.last = Some(bytes.clone());
        if code >= 200 {
            self.state = match self.kind {
                // The 2xx's retransmission runs on every transport (§13.3.1.4: "even if reliable").
                Kind::Invite if code < 300 => ServerState::Accepted {
                    retx: Some(Retx {
                        at: now + t1,
                        interval: t1,
                    }),
                    until: now + 64 * t1,
                },
                Kind::Invite => ServerState::Completed {
                    retx,
                    until: now + 64 * t1,
                },
                Kind::NonInvite => ServerState::Completed {
                    retx: None,
                    until: if self.reliable { now } else { now + 64 * t1 },
                },
            };
        }
        Some(bytes)
    }

    /// The same request came again: what to send back (§17.2.1, §17.2.2).
    pub fn on_retransmission(&self) -> Option<Vec<u8>> {
        match self.state {
            ServerState::Confirmed { .. } | ServerState::Terminated => None,
            _ => self.last.clone(),
        }
    }

    /// The ACK came (for a non-2xx: same branch; for a 2xx: the dialog matched it).
    pub fn on_ack(&mut self, now: Instant) {
        match self.state {
            ServerState::Completed { .. } if self.kind == Kind::Invite => {
                let until = if self.reliable {
                    now
                } else {
                    now + self.timers.t4
                };
                self.state = ServerState::Confirmed { until };
            }
            ServerState::Accepted { .. } => self.state = ServerState::Terminated,
            _ => {}
        }
    }

    /// Waiting for an ACK to a 2xx.
    pub fn awaits_2xx_ack(&self) -> bool {
        matches!(self.state, ServerState::Accepted { .. })
    }

    /// Run the timers due at `now`.
    pub fn on_timer(&mut self, now: Instant) -> Vec<ServerOut> {
        let mut out = Vec::new();
        let t2 = self.timers.t2;
        match &mut self.state {
            ServerState::Accepted { retx, until } | ServerState::Completed { retx, until } => {
                if now >= *until {
                    let invite = self.kind == Kind::Invite;
                    self.state = ServerState::Terminated;
                    if invite {
                        out.push(ServerOut::NoAck);
                    }
                    return out;
                }
                if let Some(r) = retx
                    && now >= r.at
                {
                    // Timer G (and the 2xx's): doubling, capped at T2.
                    r.interval = (r.interval * 2).min(t2);
                    r.at = now + r.interval;
                    if let Some(b) = &self.last {
                        out.push(ServerOut::Send(b.clone()));
                    }
                }
            }
            ServerState::Confirmed { until } => {
                if now >= *until {
                    self.state = ServerState::Terminated;
                }
            }
            ServerState::Proceeding | ServerState::Terminated => {}
        }
        out
    }

    /// The next instant [`ServerTx::on_timer`] has work.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.state {
            ServerState::Accepted { retx, until } | ServerState::Completed { retx, until } => {
                Some(retx.map_or(*until, |r| r.at.min(*until)))
            }
            ServerState::Confirmed { until } => Some(*until),
            ServerState::Proceeding | ServerState::Terminated => None,
        }
    }

    /// Finished: drop it.
    pub fn is_terminated(&self) -> bool {
        self.state == ServerState::Terminated
    }

    /// No final response yet.
    pub fn is_proceeding(&self) -> bool {
        self.state == ServerState::Proceeding
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_client_timer_a_doubles_and_b_ends() {
        let t = Timers::default();
        let t0 = Instant::now();
        let mut tx = ClientTx::new(Kind::Invite, false, b"INVITE".to_vec(), t, t0);
        let mut sends = Vec::new();
        while let Some(d) = tx.deadline() {
            for o in tx.on_timer(d) {
                sends.push((d - t0, o));
            }
            if sends.len() > 20 {
                break;
            }
        }
        let at: Vec<u64> = sends.iter().map(|(d, _)| d.as_millis() as u64).collect();
        // A at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s; B at 32 s.
        assert_eq!(at, vec![500, 1500, 3500, 7500, 15500, 31500, 32000]);
        assert_eq!(sends.last().unwrap().1, ClientOut::TimedOut);
    }

    #[test]
    fn non_invite_client_timer_e_caps_at_t2_and_completed_absorbs() {
        let t = Timers::default();
        let t0 = Instant::now();
        let mut tx = ClientTx::new(Kind::NonInvite, false, b"BYE".to_vec(), t, t0);
        let mut at = Vec::new();
        for _ in 0..6 {
            let d = tx.deadline().unwrap();
            tx.on_timer(d);
            at.push((d - t0).as_millis());
        }
        assert_eq!(at, vec![500, 1500, 3500, 7500, 11500, 15500]);
        let now = t0 + Duration::from_secs(16);
        assert_eq!(tx.on_response(200, now, Vec::new).0, Delivery::Deliver);
        assert_eq!(tx.on_response(200, now, Vec::new).0, Delivery::Absorb(None));
        assert_eq!(tx.deadline(), Some(now + t.t4));
    }

    #[test]
    fn invite_server_resends_final_until_ack_then_h() {
        let t = Timers::default();
        let t0 = Instant::now();
        let mut tx = ServerTx::new(Kind::Invite, false, t);
        assert_eq!(tx.respond(486, b"486".to_vec(), t0), Some(b"486".to_vec()));
        assert_eq!(tx.respond(200, b"200".to_vec(), t0), None);
        assert_eq!(tx.on_retransmission(), Some(b"486".to_vec()));
        let mut n = 0;
        let mut last = Vec::new();
        while let Some(d) = tx.deadline() {
            last = tx.on_timer(d);
            n += 1;
            if n > 40 {
                break;
            }
        }
        assert_eq!(last, vec![ServerOut::NoAck]);
        let mut tx = ServerTx::new(Kind::Invite, true, t);
        tx.respond(200, b"200".to_vec(), t0);
        assert!(tx.awaits_2xx_ack());
        tx.on_ack(t0);
        assert!(tx.is_terminated());
    }
}
