//! PURE: why a SIP call or registration ended, in words a fax report can carry.
//!
//! SIP final responses (RFC 3261 §21) map onto a few causes the job engine retries
//! differently (busy and no-answer are worth another try; a bad number or a refused T.38 is
//! not, until something changes).

/// Why a call ended or never got to T.38.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Cause {
    /// 486 Busy Here, 600 Busy Everywhere.
    #[error("the line is busy (SIP {0})")]
    Busy(u16),
    /// 480 Temporarily Unavailable, 408 Request Timeout, 487 after our give-up, 603 Decline;
    /// or our answer timer ran out.
    #[error("no answer (SIP {0})")]
    NoAnswer(u16),
    /// 404 Not Found, 484 Address Incomplete, 604 Does Not Exist Anywhere, 410 Gone.
    #[error("bad number: the far end does not know it (SIP {0})")]
    BadNumber(u16),
    /// 403 Forbidden (the trunk refuses this call).
    #[error("the SIP server forbids this call (SIP 403)")]
    Forbidden,
    /// Our credentials were refused (a second 401/407 for the same request), or we could not
    /// answer the challenge.
    #[error("the SIP server refused our credentials ({0})")]
    AuthRejected(String),
    /// 488 / 606 to the T.38 offer, a T.38 answer we cannot use, or no T.38 re-INVITE came
    /// and ours went unanswered.
    #[error("the far end does not accept T.38 ({0})")]
    NoT38(String),
    /// The far end's offer had no G.711 audio we take (488 sent).
    #[error("the far end offered no PCMU/PCMA audio")]
    NoAudio,
    /// The far end hung up (BYE) or cancelled (CANCEL).
    #[error("the far end hung up")]
    RemoteHangup,
    /// We hung up (the fax session ended, or the job was cancelled).
    #[error("hung up here")]
    LocalHangup,
    /// No response at all to a request (timer B/F, RFC 3261 §17.1.1.2).
    #[error("the SIP server did not answer")]
    Timeout,
    /// Other 4xx / 5xx / 6xx.
    #[error("call refused: SIP {0} {1}")]
    Refused(u16, String),
    /// Our own limit: too many calls on the line, no media port free, not configured.
    #[error("{0}")]
    Local(String),
}

impl Cause {
    /// The cause for a final response to our INVITE (RFC 3261 §21.4–§21.6).
    pub fn from_status(code: u16, reason: &str) -> Cause {
        match code {
            486 | 600 => Cause::Busy(code),
            480 | 408 | 487 | 603 => Cause::NoAnswer(code),
            404 | 484 | 604 | 410 | 485 => Cause::BadNumber(code),
            403 => Cause::Forbidden,
            488 | 606 | 415 => Cause::NoT38(format!("SIP {code}")),
            _ => Cause::Refused(
                code,
                reason
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(80)
                    .collect(),
            ),
        }
    }

    /// Worth another attempt later (busy, no answer, server trouble), as a modem line's
    /// busy / no-carrier is.
    pub fn retryable(&self) -> bool {
        match self {
            Cause::Busy(_)
            | Cause::NoAnswer(_)
            | Cause::Timeout
            | Cause::RemoteHangup
            | Cause::Local(_) => true,
            Cause::Refused(code, _) => *code >= 500 && *code < 600,
            _ => false,
        }
    }
}

/// Registration errors, for `faxgate status` and the console.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// Our credentials were refused.
    #[error("registrar refused our credentials for user {0} (wrong password?)")]
    AuthRejected(String),
    /// A challenge we cannot answer.
    #[error("registrar challenge not supported: {0}")]
    Challenge(String),
    /// 403 and other final errors.
    #[error("registrar refused: SIP {0} {1}")]
    Refused(u16, String),
    /// No response.
    #[error("registrar did not answer")]
    Timeout,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_causes() {
        assert_eq!(Cause::from_status(486, "Busy Here"), Cause::Busy(486));
        assert_eq!(Cause::from_status(480, ""), Cause::NoAnswer(480));
        assert_eq!(Cause::from_status(484, ""), Cause::BadNumber(484));
        assert_eq!(Cause::from_status(403, ""), Cause::Forbidden);
        assert!(
            Cause::from_status(606, "")
                .to_string()
                .contains("does not accept T.38")
        );
        assert!(Cause::from_status(503, "x").retryable());
        assert!(!Cause::from_status(404, "x").retryable());
    }
}
