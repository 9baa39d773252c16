//! The SIP user agent of faxgate's SIP lines (RFC 3261; issue 17): REGISTER, calls in and
//! out, and the switch of each call from G.711 audio to T.38 (ITU-T T.38 Annex D, RFC 3362).
//!
//! PURE parts: [`message`] (strict bounded parser/builder), [`sdp`] (RFC 4566/3264),
//! [`t38sdp`] (the T.38 stream's offer/answer over [`crate::fax::t38::T38Params`]), [`digest`] (RFC 2617/7616), [`transaction`]
//! (RFC 3261 §17 on an injected clock), [`ua`] (registration, dialogs, calls; bytes and `now`
//! in, messages and events out), [`cause`]. I/O shell: [`agent`] (tokio: one task owning the
//! UDP socket or the TCP listener and connections, the timers and the media sockets).
//!
//! # The API a SIP line uses
//!
//! ```no_run
//! # async fn demo(settings: faxgate::sip::SipSettings) -> Result<(), Box<dyn std::error::Error>> {
//! use faxgate::sip::{Agent, CallProgress};
//! let agent = Agent::start(settings).await?;          // binds, REGISTERs if configured
//! let reg = agent.registration();                     // watch: Disabled/Registering/Registered/Failed
//! // Sending: the call's media socket carries G.711 first, then UDPTL.
//! let mut call = agent.call("+12125550123")?;
//! match call.t38().await {                            // waits for T.38 (ours or theirs)
//!     Ok(media) => { /* run T.38 on call.socket() to media.remote with media.params;
//!                       stop when call.remote_bye() turns true */ }
//!     Err(cause) => { /* busy, no answer, bad number, "does not accept T.38"… */ }
//! }
//! call.hangup();                                      // BYE/CANCEL as the state allows; also on drop
//! // Receiving: each call arrives answered with G.711; our T.38 re-INVITE is already out.
//! while let Some(mut incoming) = agent.next_incoming().await {
//!     let (_did, _caller) = (incoming.did(), incoming.caller());
//!     let _ = incoming.t38().await;
//! }
//! # Ok(()) }
//! ```
//!
//! The line's audio leg (silence, CNG) sends RTP on [`SipCall::socket`] to the address
//! [`CallProgress::Audio`] names until [`SipCall::t38`] returns.

pub mod agent;
pub mod cause;
pub mod digest;
pub mod message;
pub mod sdp;
pub mod t38sdp;
pub mod transaction;
pub mod ua;

pub use agent::{Agent, CallProgress, SipCall, SipError, SipSettings, T38Media};
pub use cause::{Cause, RegisterError};
pub use sdp::Codec;
pub use t38sdp::T38Params;
pub use ua::{RegState, Transport};
