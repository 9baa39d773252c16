//! The offramp ESMTP listener: mail clients and the site's MTA hand email-to-fax messages to
//! faxgate here.
//!
//! - [`session`] — PURE RFC 5321 server state machine: bytes and `now` in, replies and effects
//!   out; every protocol and policy decision (sequencing, RCPT policy, who may send, SIZE,
//!   dot-unstuffing, smuggling-safe end of data) is made there and tested by transcript.
//! - [`server`] — the tokio I/O shell: listener, connection caps, timeouts, graceful shutdown,
//!   STARTTLS, AUTH checks, streaming into the spool and the durable commit before `250`.
//! - [`auth`] — users file (argon2 PHC hashes) and the failed-AUTH rate limit.
//! - [`rate`] — PURE per-client message rate (token bucket per address, bounded map).
//! - [`tls`] — rustls server config from PEM files, reloadable on SIGHUP.
//!
//! The daemon calls [`serve`] (or [`bind`] then [`Server::run`]).

pub mod auth;
pub mod rate;
pub mod server;
pub mod session;
pub mod tls;

pub use crate::job::MessageData;
pub use server::{AuthCounts, AuthStats, MESSAGE_FILE, Server, SmtpError, bind, serve};
