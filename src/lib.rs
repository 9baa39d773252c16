//! faxgate — a T.37 store-and-forward fax ⇄ email gateway.
//!
//! *Onramp* (fax → email): a fax received on a modem, or a file dropped into the inbox folder,
//! becomes an RFC 3949 Profile S TIFF attached to an RFC 3965 email delivered to the site's mail
//! server. *Offramp* (email → fax): mail for `FAX=+12125550142@gateway` (RFC 3192) is accepted
//! over ESMTP, stored durably, rendered into fax pages, sent over T.30 through a modem, and the
//! sender gets an RFC 3464 delivery status notification.
//!
//! # Layout
//!
//! Modules marked PURE never open files, sockets or serial ports and never read the clock:
//! bytes, events and `now` go in; outputs, commands and the next deadline come out. The I/O
//! shells around them pump bytes and time.
//!
//! | module | owns |
//! |---|---|
//! | [`config`] | typed `faxgate.toml`: embedded defaults < file < `FAXGATE_*` env, validation with key and origin, redaction |
//! | [`logging`] | tracing set-up: plain lines under systemd, timestamps otherwise, JSON on request |
//! | [`image`] | PURE: the [`image::Page`] bitmap, T.4 MH/MR and T.6 MMR codecs (row at a time; strict and received-line decoding with copy quality), TIFF-F writer (Profile S/F), bilevel TIFF reader with limits, RFC 3949 checker |
//! | [`image::render`] | PURE: TIFF, PDF (hayro), PNG/JPEG/GIF/BMP/WebP, text and simple HTML to fax pages; geometry, threshold/dither, header line, cover page, limits |
//! | [`fax`] | PURE: [`fax::t30`] the T.30 engine (phases, DIS/DCS, TCF, ECM, timers, causes, call report) and its in-memory line; [`fax::modem`] the AT layer, DLE codec and Class 1 driver (PURE), `port.rs` the only serial I/O |
//! | [`image_tools`] | I/O shell of `faxgate convert` and `faxgate tiff-check` over [`image::codec`] and [`image::tiff`] (MH/MR/MMR codecs, TIFF-F writer/reader/checker) |
//! | [`mail`] | PURE: RFC 3192 fax addresses (relay refusal included) and the dial plan (E.164, prefixes, toll-fraud policy) |
//! | [`smtp`] | offramp ESMTP listener: PURE session state machine; tokio listener, STARTTLS, AUTH, durable commit |
//! | [`private_fs`] | files and directories created `0600` / `0700` whatever the umask (spool, data dir) |
//! | [`job`] | PURE leaf: the job vocabulary — ids, kinds, states, attempts, cause classes, decisions, the retry policy's data, timestamps, typed child relations; imports nothing of the crate |
//! | [`spool`] | the durable queue on disk: one commit point per job (fsync + rename), atomic record updates, receptions kept across crashes (`receiving/`), archives, start-up recovery, the `max_queued` high-water mark, an observer told of every change; `faxgate queue` |
//! | [`scheduler`] | PURE: retry/backoff per cause class, kill and give-up times; the dispatcher's core (priorities, due times, modem leases, relay and local limits), indexed for a large backlog |
//! | [`onramp`] | received faxes → emails: receptions written page by page (`onramp::receiving`), routes, templates, the RFC 3965 message, the G4 PDF writer, `FaxIn` jobs, the inbox folder, `faxgate onramp submit` |
//! | [`delivery`] | mail leaving the gateway: Maildir or SMTP relay (lettre), `MailOut` jobs, retry classes, dead letters |
//! | [`offramp`] | offramp jobs: MIME → parts to fax, sender options, causes in plain words, RFC 3464 DSN / RFC 8098 MDN (PURE), message → fax jobs → one report |
//! | [`render_cmd`] | I/O shell of `faxgate render`: input files to a TIFF-F and PNG previews through [`image::render`] |
//! | [`app`] | `faxgate run`: the gateway wired from config — SMTP listener, the one event-driven dispatcher (`app::dispatch`) running every kind of job on the pure scheduler, the offramp workers (`app::runner`), modem pool and loopback line, inbox watcher; control socket and `faxgate status` |
//! | [`daemon`] | process plumbing: signals, the shutdown signal, systemd notification (`READY`, `STOPPING`, `WATCHDOG`, `STATUS`) |
//!
//! The binary (`src/main.rs`) is the CLI: it parses arguments with clap and calls into these
//! modules; `anyhow` is used only there.

pub mod app;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod delivery;
pub mod fax;
pub mod image;
pub mod job;
pub mod logging;
pub mod mail;
pub mod offramp;
pub mod onramp;
pub mod private_fs;
pub mod read_limit;
pub mod scheduler;
pub mod smtp;
pub mod spool;
