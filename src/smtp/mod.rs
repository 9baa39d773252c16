//! The offramp ESMTP listener.
//!
//! [`session`] is the PURE RFC 5321 server state machine (bytes in, replies and effects out).
//! The I/O shell around it lands next to it: the tokio listener (connection caps, timeouts,
//! graceful shutdown), STARTTLS with rustls, AUTH against the users file, and the durable
//! commit of each message into the spool.

pub mod session;
