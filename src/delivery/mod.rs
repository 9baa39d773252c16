//! Mail delivery: every email the gateway writes (received faxes, reports to senders, notices
//! to the operator) leaves through here.
//!
//! This module owns the hand-over of one finished message to its destination and the
//! classification of what happened, which drives the retry policy of the `MailOut` job
//! ([`crate::scheduler::CauseClass`]):
//!
//! | outcome | class | what happens |
//! |---|---|---|
//! | relay said 2xx to `DATA` | `Done` | the job (and the fax in it) may be archived |
//! | relay said 4xx, unreachable, TLS failed, timed out | `RelayTemporary` | retried with backoff |
//! | relay said 5xx | `RelayPermanent` | dead letter: kept in `failed/`, logged, admin told |
//! | Maildir write failed | `LocalTemporary` | retried with backoff |
//!
//! | file | owns |
//! |---|---|
//! | [`maildir`] | delivery into a Maildir (the zero-config default): tmp → fsync → new |
//! | [`smtp`] | SMTP relay client (lettre): implicit TLS / STARTTLS, AUTH, DSN with ENVID |
//! | [`mail_out`] | the `MailOut` spool job: queue a message, run one attempt, dead letters |
//! | [`message`] | PURE: the fax email (RFC 3965 / RFC 3302 / RFC 3949) and the operator notices, built with mail-builder |

pub mod mail_out;
pub mod maildir;
pub mod message;
pub mod smtp;

pub use crate::job::MailEnvelope;
use thiserror::Error;

use crate::config::{Config, RelayMode};
use crate::scheduler::CauseClass;

/// A recipient the relay refused while others were accepted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Refused {
    /// The address.
    pub rcpt: String,
    /// The relay's reply, e.g. `550 5.1.1 no such user`.
    pub reply: String,
    /// 5xx (true) or 4xx / other (false).
    pub permanent: bool,
}

/// A message the destination took responsibility for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The relay's final reply, or the Maildir file written.
    pub detail: String,
    /// Recipients refused at `RCPT` while at least one other was accepted.
    pub refused: Vec<Refused>,
}

/// Why a delivery attempt failed, by whose fault and what happens next.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DeliveryError {
    /// The relay answered 4xx, could not be reached, or the session failed or timed out:
    /// the relay's (or the network's) trouble, retried with backoff.
    #[error("relay temporarily failed: {0}")]
    Temporary(String),
    /// The relay answered 5xx: it will never take this message; dead letter.
    #[error("relay refused the message permanently: {0}")]
    Permanent(String),
    /// Our own storage failed (Maildir write, spool read): retried with backoff.
    #[error("local delivery failed: {0}")]
    Local(String),
    /// The configuration cannot work (bad relay password file, bad CA file): the operator's
    /// fault, retried so that fixing the config and restarting delivers the mail.
    #[error("relay configuration: {0}")]
    Config(String),
}

impl DeliveryError {
    /// The scheduler's class for this failure.
    pub fn class(&self) -> CauseClass {
        match self {
            DeliveryError::Temporary(_) | DeliveryError::Config(_) => CauseClass::RelayTemporary,
            DeliveryError::Permanent(_) => CauseClass::RelayPermanent,
            DeliveryError::Local(_) => CauseClass::LocalTemporary,
        }
    }
}

/// Where mail goes, from `[relay]`.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// Into a Maildir.
    Maildir(maildir::Maildir),
    /// To an SMTP relay.
    Smtp(smtp::SmtpRelay),
}

impl Delivery {
    /// The delivery `[relay]` asks for.
    pub fn from_config(c: &Config) -> Result<Delivery, DeliveryError> {
        Ok(match c.relay.mode {
            RelayMode::Maildir => Delivery::Maildir(maildir::Maildir::new(
                c.data_path(&c.relay.maildir),
                &c.gateway.hostname,
            )),
            RelayMode::Smtp => Delivery::Smtp(smtp::SmtpRelay::from_config(c)?),
        })
    }

    /// Delivers `message` (RFC 5322 bytes, CRLF) with `envelope`.
    pub async fn deliver(
        &self,
        envelope: &MailEnvelope,
        message: &[u8],
    ) -> Result<Accepted, DeliveryError> {
        if envelope.to.is_empty() {
            return Err(DeliveryError::Permanent("no recipients".into()));
        }
        match self {
            Delivery::Maildir(m) => m.deliver(envelope, message).await,
            Delivery::Smtp(s) => s.deliver(envelope, message).await,
        }
    }

    /// A short description for logs (`maildir /x/y`, `smtp relay.example:587`).
    pub fn describe(&self) -> String {
        match self {
            Delivery::Maildir(m) => format!("maildir {}", m.root().display()),
            Delivery::Smtp(s) => format!("smtp {}", s.describe()),
        }
    }
}
