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
//! shells around them pump bytes and time. A module that holds both says which part is which.
//!
//! | module | owns |
//! |---|---|
//! | [`job`] | PURE leaf: the job vocabulary — ids, kinds, states, attempts, cause classes, decisions, the retry policy's data, timestamps, typed child relations, and each kind's typed data ([`job::JobData`], what the spool stores); imports nothing of the crate |
//! | [`config`] | typed `faxgate.toml`: embedded defaults < file < `FAXGATE_*` env, validation with key and origin, redaction |
//! | [`logging`] | tracing set-up: plain lines under systemd, timestamps otherwise, JSON on request; [`logging::Untrusted`] for outside text in logs and replies |
//! | [`private_fs`] | files and directories created `0600` / `0700` whatever the umask (spool, data dir) |
//! | [`read_limit`] | whole files and streams read under a size limit, a larger one refused with a typed error |
//! | [`image`] | PURE: the [`image::Page`] bitmap and its resampling; T.4 MH/MR and T.6 MMR codecs (row at a time; strict and received-line decoding with copy quality); TIFF-F writer (Profile S/F), bilevel TIFF reader with limits, RFC 3949 checker; [`image::render`]: TIFF, PDF (hayro), PNG/JPEG/GIF/BMP/WebP, text and simple HTML to fax pages under a work budget — geometry, threshold/dither, header line, cover page |
//! | [`fax`] | [`fax::t30`] PURE: the T.30 engine (phases, DIS/DCS, TCF, ECM, timers, causes, call report) and its in-memory line; [`fax::modem`]: the AT layer, DLE codec, Class 1 driver and probe (PURE), profiles, `port.rs` (the only serial I/O) and `session.rs` (one call on a port); [`fax::t38`]: IFP/UDPTL codecs, SDP parameters and the terminal mapping the engine onto IFP (PURE), `session.rs` (one call on a UDP socket) |
//! | [`mail`] | PURE: RFC 3192 fax addresses (relay refusal included), the dial plan (E.164, prefixes, toll-fraud policy), the fax email's templates |
//! | [`sip`] | the SIP lines' user agent (RFC 3261): PURE message/SDP parsers, digest, transactions, registration and calls to T.38 (`sip::ua`); the tokio shell `sip::agent` (UDP/TCP, media ports) |
//! | [`smtp`] | the offramp ESMTP listener: PURE session state machine and per-client message rate; tokio listener, STARTTLS, AUTH, durable commit |
//! | [`spool`] | the durable queue on disk: one commit point per job (fsync + rename), atomic record updates, receptions kept across crashes (`receiving/`), archives, start-up recovery, the `max_queued` high-water mark, an observer told of every change |
//! | [`scheduler`] | PURE: retry/backoff per cause class, kill and give-up times; the dispatcher's core (priorities, due times, modem leases, relay and local limits), indexed for a large backlog |
//! | [`offramp`] | email → fax: MIME parts to fax, sender options, the document's pages, causes in plain words, RFC 3464 DSN / RFC 8098 MDN (all PURE); the render budget's clock; `Message` → `FaxOut` jobs → one report per message (spool I/O) |
//! | [`onramp`] | received fax → email: routes, the G4 PDF writer (PURE); receptions written page by page, `FaxIn` jobs, the inbox folder, the onramp's workers |
//! | [`delivery`] | mail leaving the gateway: the RFC 3965 / RFC 5322 message builder (PURE), Maildir or SMTP relay (lettre), `MailOut` jobs, retry classes, dead letters |
//! | [`metrics`] | Prometheus metrics: the process's counters and histograms (fax sessions, pages, SMTP, mail delivery, latencies), each line's failure ratio over its last 32 calls, and the exposition (OpenMetrics or classic text) with the queue and line figures handed in at scrape; imports only [`job`] |
//! | [`daemon`] | process plumbing for `faxgate run`: the shutdown signal, SIGTERM/SIGINT, systemd notification (`READY`, `STOPPING`, `WATCHDOG`, `STATUS`) |
//! | [`app`] | `faxgate run`: the gateway wired from config — the pure cores' options (`app::cores`), SMTP listener, the one event-driven dispatcher (`app::dispatch`) running every kind of job on the pure scheduler, the offramp workers (`app::runner`), modem pool and loopback line, inbox watcher; the control socket |
//! | [`cli`] | the command line: every verb's arguments (clap) and I/O shell — `run`, `status`, `check-config`, `queue`, `onramp submit`, `offramp-check`, `render`, `convert`, `tiff-check`, `modem probe`, `send`, `receive`, `hash-password` |
//!
//! The binary (`src/main.rs`) only calls [`cli::main`]. Library errors are typed (thiserror);
//! the command line prints them with their causes.

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
pub mod metrics;
pub mod offramp;
pub mod onramp;
pub mod private_fs;
pub mod read_limit;
pub mod scheduler;
pub mod sip;
pub mod smtp;
pub mod spool;
