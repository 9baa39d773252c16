//! Offramp jobs: from an accepted email to fax jobs, and delivery reports back.
//!
//! Once the SMTP listener committed a `Message` job, faxgate owns the message. This module
//! turns it into what people meant to fax and reports what happened:
//!
//! | file | owns |
//! |---|---|
//! | [`mime`] | PURE: which MIME parts are faxed, in order; skip policy; content sniffing; strict base64 |
//! | [`mime_guard`] | PURE: parts, nesting and header fields counted on the raw octets before mail-parser builds anything |
//! | [`options`] | PURE: what a sender may ask for (resolution) in the subject or a header |
//! | [`causes`] | PURE: outcomes in plain words, with RFC 3463 status and the `X-Fax` diagnostic |
//! | [`budget`] | the rendering budget's clock and cancel flag (I/O half of `image::render::budget`) |
//! | [`document`] | PURE: cover page, body text per `offramp.body_text`, attachments in order → pages; a part that fails names itself |
//! | [`office`] | office documents → PDF through LibreOffice, one fenced-in process per document (the one I/O step of rendering) |
//! | [`jobs`] | a `Message` job → one `FaxOut` job per recipient → ONE report (`MailOut`) when all are final |
//! | [`dsn`] | PURE: RFC 3464 delivery status notifications (and RFC 8098 MDNs) from `<>` |
//!
//! RFC 3965 §3 governs the whole: a part that cannot be processed fails the message and the
//! sender is told, never silently.

pub mod budget;
pub mod causes;
pub mod document;
pub mod dsn;
pub mod jobs;
pub mod mime;
pub mod mime_guard;
pub mod office;
pub mod options;
