//! Typed configuration: embedded defaults < TOML file < `FAXGATE_*` environment.
//!
//! This module owns the shape of `faxgate.toml`, where each value came from, and every check
//! made on it after loading. Errors name the key and its origin: the file and line for a TOML
//! file, the variable for the environment. Secrets (`password`) can live in a separate file
//! (`password_file`) and are never printed: [`Config::to_redacted_toml`] replaces them.
//!
//! Layering (figment): [`Config::default`] is the embedded default (no hardware, no mail server,
//! everything under `./faxgate-data` or `$FAXGATE_DATA`); a TOML file given with `--config`, else
//! `./faxgate.toml`, else `/etc/faxgate/faxgate.toml` when present, is merged over it; then
//! variables `FAXGATE_SECTION__KEY` (nested keys joined with `__`) override both. Unknown keys are
//! an error everywhere: a misspelt key silently ignored is a fax sent to the wrong place.

pub use crate::job::Resolution;
use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Serialized, Toml};
use figment::{Figment, Metadata, Source};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};

/// Environment variable naming the data directory of the embedded default (ours).
pub const DATA_ENV: &str = "FAXGATE_DATA";
/// Environment variable naming the config file, same as `--config` (ours).
pub const CONFIG_ENV: &str = "FAXGATE_CONFIG";
/// Prefix of environment overrides; nested keys are joined with `__`.
pub const ENV_PREFIX: &str = "FAXGATE_";
/// System-wide config file used when neither `--config` nor `./faxgate.toml` is given.
pub const SYSTEM_CONFIG: &str = "/etc/faxgate/faxgate.toml";
/// Text that replaces every secret in printed configuration.
pub const REDACTED: &str = "<redacted>";

/// The whole configuration. Section order follows `firmware-config/faxgate.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[gateway]`: identity, served domains, data directory.
    pub gateway: Gateway,
    /// `[smtp]`: the offramp ESMTP listener.
    pub smtp: Smtp,
    /// `[relay]`: where mail the gateway writes (received faxes, reports) goes.
    pub relay: Relay,
    /// `[[modem]]`: one entry per fax modem.
    #[serde(rename = "modem")]
    pub modems: Vec<Modem>,
    /// `[[sip]]`: one entry per SIP line (a trunk or PBX account carrying fax as T.38).
    #[serde(rename = "sip")]
    pub sips: Vec<Sip>,
    /// `[loopback]`: the built-in in-memory line of the embedded default.
    pub loopback: Loopback,
    /// `[dialplan]`: number normalisation and toll-fraud policy.
    pub dialplan: DialPlan,
    /// `[fax_options]`: T.30 options of every outgoing fax (ECM, speed, per-retry fallbacks).
    pub fax_options: FaxOptions,
    /// `[[fax_route]]`: per-destination overrides of `[fax_options]`, first match wins.
    #[serde(rename = "fax_route")]
    pub fax_routes: Vec<FaxRoute>,
    /// `[[route]]`: onramp routing table, first match wins.
    #[serde(rename = "route")]
    pub routes: Vec<Route>,
    /// `[onramp]`: fax → email.
    pub onramp: Onramp,
    /// `[offramp]`: email → fax.
    pub offramp: Offramp,
    /// `[retry]`: backoff and give-up policy for fax and mail jobs.
    pub retry: Retry,
    /// `[spool]`: durable queue settings.
    pub spool: Spool,
    /// `[log]`: logging filter and format.
    pub log: Log,
    /// `[http]`: the operations console, REST API and metrics.
    pub http: Http,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            gateway: Gateway::default(),
            smtp: Smtp::default(),
            relay: Relay::default(),
            modems: Vec::new(),
            sips: Vec::new(),
            loopback: Loopback::default(),
            dialplan: DialPlan::default(),
            fax_options: FaxOptions::default(),
            fax_routes: Vec::new(),
            routes: vec![Route::default_route()],
            onramp: Onramp::default(),
            offramp: Offramp::default(),
            retry: Retry::default(),
            spool: Spool::default(),
            log: Log::default(),
            http: Http::default(),
        }
    }
}

/// `[gateway]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Gateway {
    /// Our host name: SMTP greeting, `Received:` headers, Message-ID right-hand side.
    pub hostname: String,
    /// Mail domains served: only `FAX=…@` one of these (and `postmaster@`, RFC 5321 §4.5.1,
    /// forwarded to `admin`) is accepted at RCPT; nothing is ever relayed.
    pub domains: Vec<String>,
    /// Where spool, inbox and the default Maildir live. Relative paths are relative to the
    /// working directory at start-up.
    pub data_dir: PathBuf,
    /// Operator mailbox: dead letters and failure copies are reported here.
    pub admin: String,
}

impl Default for Gateway {
    fn default() -> Self {
        let data_dir = std::env::var_os(DATA_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("faxgate-data"));
        Gateway {
            hostname: "localhost".into(),
            domains: vec!["localhost".into()],
            data_dir,
            admin: "postmaster@localhost".into(),
        }
    }
}

/// `[smtp]`: the offramp listener (RFC 5321 server).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Smtp {
    /// Addresses to listen on; a single string or a list.
    #[serde(deserialize_with = "one_or_many")]
    pub listen: Vec<SocketAddr>,
    /// Simultaneous connections in all.
    pub max_connections: usize,
    /// Simultaneous connections from one client IP address.
    pub max_connections_per_ip: usize,
    /// Messages one client (an IP address; IPv6 by /64) may start per minute, a token bucket:
    /// that many in a burst, then one per `60 s / n`; past it MAIL gets `421 4.7.0` and the
    /// connection closes. 0: no limit.
    pub max_messages_per_minute: u32,
    /// Largest message accepted, in octets (advertised as `SIZE`, RFC 1870).
    pub max_message_size: u64,
    /// Recipients per message (RFC 5321 §4.5.3.1.8 asks servers to take at least 100).
    pub max_recipients: usize,
    /// Waiting for the next command (RFC 5321 §4.5.3.2.7 server timeout: 5 minutes).
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
    /// Waiting for the next block of message data (RFC 5321 §4.5.3.2.5: 3 minutes).
    #[serde(with = "humantime_serde")]
    pub data_timeout: Duration,
    /// Longest a whole session may last, however busy: a client trickling a byte before
    /// each timeout cannot hold a connection slot for longer.
    #[serde(with = "humantime_serde")]
    pub max_session: Duration,
    /// Client networks allowed to submit fax mail without authenticating (CIDR).
    pub client_networks: Vec<IpNet>,
    /// Envelope senders allowed (`user@domain` or `@domain`); empty allows any sender
    /// that passed the network or AUTH check.
    pub allowed_senders: Vec<String>,
    /// Refuse MAIL until STARTTLS succeeded.
    pub require_tls: bool,
    /// Refuse MAIL until AUTH succeeded (clients in `client_networks` included).
    pub require_auth: bool,
    /// Offer AUTH on a connection that is not encrypted (off: AUTH only after STARTTLS).
    pub auth_without_tls: bool,
    /// Users file for AUTH: lines `user:$argon2id$…` (PHC strings). No file: no AUTH.
    pub users_file: Option<PathBuf>,
    /// Failed AUTH attempts per connection before it is closed.
    pub max_auth_failures: u32,
    /// Password checks (argon2, about 19 MiB of memory each) running at once in the whole
    /// listener; more wait in a short queue, and past that AUTH gets `454 4.7.0`.
    pub auth_max_concurrent: usize,
    /// TLS certificate chain (PEM) for STARTTLS; with `tls_key`, STARTTLS is offered.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for STARTTLS.
    pub tls_key: Option<PathBuf>,
    /// Also accept site forms of recipient local parts besides RFC 3192 `FAX=+…`: plain digits
    /// (`12125550123@`, `+12125550123@`) and `fax=` with a number in the site's dialling format
    /// (`fax=912125550123@`); the dial plan normalises them.
    pub accept_plain_digits: bool,
}

impl Default for Smtp {
    fn default() -> Self {
        Smtp {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 2525))],
            max_connections: 64,
            max_connections_per_ip: 16,
            // Far above what a person or a site's MTA sends to a fax gateway (each fax takes
            // a line for a minute or more), far below a flood.
            max_messages_per_minute: 60,
            max_message_size: 25 * 1024 * 1024,
            max_recipients: 100,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(180),
            // A 25 MiB message takes under half of this even at 256 kbit/s.
            max_session: Duration::from_secs(30 * 60),
            client_networks: vec![
                "127.0.0.0/8".parse().expect("valid CIDR"),
                "::1/128".parse().expect("valid CIDR"),
            ],
            allowed_senders: Vec::new(),
            require_tls: false,
            require_auth: false,
            auth_without_tls: false,
            users_file: None,
            max_auth_failures: 3,
            auth_max_concurrent: 2,
            tls_cert: None,
            tls_key: None,
            accept_plain_digits: true,
        }
    }
}

/// `[http]`: the operations console (web pages), the REST API under `/api/v1/` and the
/// Prometheus metrics at `/metrics`, served by the daemon itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Http {
    /// Serve the console at all.
    pub enabled: bool,
    /// Addresses to listen on; a single string or a list. Anything but loopback needs
    /// `users_file` and TLS (`tls_cert`/`tls_key`).
    #[serde(deserialize_with = "one_or_many")]
    pub listen: Vec<SocketAddr>,
    /// Console users: lines `user:$argon2id$…:role[:scope]` — the SMTP AUTH users file format
    /// plus a role (`admin` or `viewer`) and optionally the fax numbers (`+E.164`) and routes
    /// (`route=NAME`) the user is limited to, comma-separated. No file: on loopback, the console
    /// and the API need no login; with a file, everything does.
    pub users_file: Option<PathBuf>,
    /// API tokens, stored hashed (`faxgate token create USER` appends to it). Default:
    /// `api-tokens` in the data directory.
    pub tokens_file: Option<PathBuf>,
    /// TLS certificate chain (PEM); with `tls_key`, the console speaks HTTPS only.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// How long a login lasts without use.
    #[serde(with = "humantime_serde")]
    pub session_idle: Duration,
    /// Simultaneous HTTP connections in all.
    pub max_connections: usize,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            enabled: true,
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 8025))],
            users_file: None,
            tokens_file: None,
            tls_cert: None,
            tls_key: None,
            session_idle: Duration::from_secs(8 * 3600),
            max_connections: 64,
        }
    }
}

impl Http {
    /// Where API token hashes are kept.
    pub fn tokens_path(&self, data_dir: &Path) -> PathBuf {
        self.tokens_file
            .clone()
            .unwrap_or_else(|| data_dir.join("api-tokens"))
    }
}

/// How mail written by the gateway leaves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelayMode {
    /// Deliver into a Maildir (the zero-config default).
    Maildir,
    /// Deliver to an SMTP relay (the site's mail server).
    Smtp,
}

/// Transport security towards the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelaySecurity {
    /// Plain SMTP, no TLS at all.
    None,
    /// STARTTLS when offered, plain otherwise.
    Opportunistic,
    /// STARTTLS required: fail (and retry) if not offered.
    Starttls,
    /// Implicit TLS from the first byte (port 465).
    Tls,
}

/// `[relay]`: onramp delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Relay {
    /// `maildir` or `smtp`.
    pub mode: RelayMode,
    /// Maildir path (relative paths are under `gateway.data_dir`).
    pub maildir: PathBuf,
    /// Relay host name or address (mode `smtp`).
    pub host: String,
    /// Relay port.
    pub port: u16,
    /// `none`, `opportunistic`, `starttls` or `tls`.
    pub security: RelaySecurity,
    /// AUTH user name; empty: no AUTH.
    pub username: String,
    /// AUTH password (prefer `password_file`). Never printed.
    pub password: Option<String>,
    /// File whose first line is the AUTH password.
    pub password_file: Option<PathBuf>,
    /// Whole-transaction timeout per message (lettre's own timeout covers only the connect).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Ask the relay for a DSN (`NOTIFY=SUCCESS,FAILURE` with `ENVID`, RFC 3461).
    pub request_dsn: bool,
    /// Simultaneous relay connections.
    pub max_connections: usize,
    /// Extra CA certificate(s) (PEM) trusted for the relay's TLS certificate, besides the
    /// system's roots: for a site CA or a test relay. None: system roots only.
    pub tls_ca_file: Option<PathBuf>,
}

impl Default for Relay {
    fn default() -> Self {
        Relay {
            mode: RelayMode::Maildir,
            maildir: PathBuf::from("maildir"),
            host: String::new(),
            port: 25,
            security: RelaySecurity::Opportunistic,
            username: String::new(),
            password: None,
            password_file: None,
            timeout: Duration::from_secs(120),
            request_dsn: false,
            max_connections: 2,
            tls_ca_file: None,
        }
    }
}

/// Fax service class the modem is driven in (ITU-T T.31 / T.32): one type with the modem
/// profiles'.
pub use crate::fax::modem::profile::ModemClass;

/// What a modem is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModemRole {
    /// Answer incoming calls only.
    Receive,
    /// Place outgoing calls only.
    Send,
    /// Both: answers RING when idle, leased for sending otherwise.
    Both,
}

/// One `[[modem]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Modem {
    /// Short name, used in logs, routes (`line`) and the status display.
    pub name: String,
    /// Serial device, e.g. `/dev/faxmodem0` (see `hardware/60-faxgate.rules`).
    pub device: PathBuf,
    /// Modem profile: a file name (without `.toml`) under `profiles_dir`.
    #[serde(default = "default_profile")]
    pub profile: String,
    /// Directory holding modem profiles.
    #[serde(default = "default_profiles_dir")]
    pub profiles_dir: PathBuf,
    /// `1`, `1.0` or `2.0`.
    #[serde(default = "default_class")]
    pub class: ModemClass,
    /// Our station ID sent as TSI/CSI (T.30 §5.3.6.2.4: up to 20 characters, digits, `+`, space).
    #[serde(default)]
    pub local_id: String,
    /// Answer after this many rings.
    #[serde(default = "default_rings")]
    pub rings: u32,
    /// `receive`, `send` or `both`.
    #[serde(default = "default_role")]
    pub role: ModemRole,
    /// Highest signalling rate offered, bit/s (2400 … 14400).
    #[serde(default = "default_max_rate")]
    pub max_rate: u32,
    /// Offer and accept T.30 Annex A error correction.
    #[serde(default = "default_true")]
    pub ecm: bool,
    /// Outgoing faxes on this line: from attempt N+1 on, send without ECM (0: never);
    /// overrides `[fax_options]`, a `[[fax_route]]` overrides it. Absent: `[fax_options]`'s.
    #[serde(default)]
    pub disable_ecm_after_retry: Option<u32>,
    /// Outgoing faxes on this line: from attempt N+1 on, no V.17 (V.29 9600 at most; 0: never).
    #[serde(default)]
    pub disable_v17_after_retry: Option<u32>,
}

impl From<&Modem> for crate::fax::t30::EngineConfig {
    /// The T.30 options a `[[modem]]` entry gives (`local_id`, `max_rate`, `ecm`); everything
    /// else keeps the engine's default. The engine itself never sees `config` (issue 15: pure
    /// cores take plain options).
    fn from(m: &Modem) -> Self {
        crate::fax::t30::EngineConfig {
            local_id: m.local_id.clone(),
            max_bps: m.max_rate,
            ecm: m.ecm,
            ..Default::default()
        }
    }
}

fn default_profile() -> String {
    "generic-class1".into()
}
fn default_profiles_dir() -> PathBuf {
    PathBuf::from("/etc/faxgate/modems")
}
fn default_class() -> ModemClass {
    ModemClass::Class1
}
fn default_rings() -> u32 {
    1
}
fn default_role() -> ModemRole {
    ModemRole::Both
}
fn default_max_rate() -> u32 {
    14400
}
fn default_true() -> bool {
    true
}

/// SIP transport of a `[[sip]]` line (RFC 3261 §18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SipTransport {
    /// UDP (RFC 3261 §18.1.1: every UA must support it).
    Udp,
    /// TCP.
    Tcp,
}

/// G.711 law offered on the audio leg before T.38 (ITU-T G.711; RTP payload types 0 and 8,
/// RFC 3551 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AudioCodec {
    /// µ-law, payload type 0.
    Pcmu,
    /// A-law, payload type 8.
    Pcma,
}

/// One `[[sip]]` entry: a SIP user agent whose calls carry fax as T.38 over UDPTL (T.38
/// Annex D, RFC 3362) instead of a modem. Same roles, routes and job engine as a `[[modem]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sip {
    /// Short name, used in logs, routes (`line`) and the status display; shared with the
    /// `[[modem]]` names (one namespace of lines).
    pub name: String,
    /// Registrar, `host` or `host:port` (default port 5060): REGISTER goes here and it is the
    /// domain of our address-of-record. Absent: no registration (a PBX that knows us by IP).
    #[serde(default)]
    pub registrar: Option<String>,
    /// Outbound proxy, `host` or `host:port`: every request outside a dialog goes here (the
    /// trunk). Absent: the registrar. Outbound calls go only through this trunk.
    #[serde(default)]
    pub proxy: Option<String>,
    /// Our user part: `sip:user@registrar`, and the From of our requests.
    pub user: String,
    /// Digest authentication user name (RFC 3261 §22.4); empty: `user`.
    #[serde(default)]
    pub auth_user: String,
    /// File whose first line is the digest password (like `relay.password_file`). Never
    /// printed. Absent: requests are not authenticated (a 401/407 is then a line error).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Local SIP address and port we listen on and send from: an address peers reach (it goes
    /// into Via and Contact, RFC 3261 §8.1.1.8), so required.
    pub listen: SocketAddr,
    /// `udp` or `tcp`.
    #[serde(default = "default_sip_transport")]
    pub transport: SipTransport,
    /// Address put in SDP `c=` and bound for RTP and UDPTL; absent: the `listen` address.
    #[serde(default)]
    pub media_address: Option<std::net::IpAddr>,
    /// Lowest UDP port for media (RTP audio and UDPTL), inclusive.
    #[serde(default = "default_media_port_min")]
    pub media_port_min: u16,
    /// Highest UDP port for media, inclusive; the range must hold two ports per call.
    #[serde(default = "default_media_port_max")]
    pub media_port_max: u16,
    /// `receive`, `send` or `both`.
    #[serde(default = "default_role")]
    pub role: ModemRole,
    /// Calls carried at the same time (in and out together); more INVITEs get 486 Busy Here.
    #[serde(default = "default_max_calls")]
    pub max_calls: u32,
    /// Networks (CIDR) INVITEs and OPTIONS are accepted from; others get no answer. Empty
    /// (the default): the registrar's and proxy's addresses only.
    #[serde(default)]
    pub allow_from: Vec<IpNet>,
    /// REGISTER expiry asked for (RFC 3261 §10.2.1); refreshed before it runs out.
    #[serde(default = "default_register_expires", with = "humantime_serde")]
    pub register_expires: Duration,
    /// Calling: how long we wait for the far end's re-INVITE to T.38 before we send our own.
    #[serde(default = "default_reinvite_wait", with = "humantime_serde")]
    pub reinvite_wait: Duration,
    /// Audio codecs offered before T.38, in order of preference (`pcmu`, `pcma`).
    #[serde(default = "default_codecs")]
    pub codecs: Vec<AudioCodec>,
    /// `T38FaxVersion` offered (T.38 Annex D.2.3: 0 … 3).
    #[serde(default)]
    pub t38_version: u8,
    /// `T38MaxBitRate`, bit/s (2400 … 14400); also the highest rate our T.30 engine offers.
    #[serde(default = "default_max_rate")]
    pub t38_max_bit_rate: u32,
    /// UDPTL redundancy depth: earlier IFP packets repeated in each datagram (T.38 §9.1,
    /// `T38FaxUdpEC:t38UDPRedundancy`); 0 sends none.
    #[serde(default = "default_udptl_redundancy")]
    pub udptl_redundancy: u8,
    /// `T38FaxMaxDatagram`: the largest UDPTL datagram we send and announce, bytes.
    #[serde(default = "default_udptl_max_datagram")]
    pub udptl_max_datagram: u16,
    /// Our station ID sent as TSI/CSI (T.30 §5.3.6.2.4).
    #[serde(default)]
    pub local_id: String,
    /// Offer and accept T.30 Annex A error correction.
    #[serde(default = "default_true")]
    pub ecm: bool,
    /// Outgoing faxes on this line: from attempt N+1 on, send without ECM (0: never);
    /// overrides `[fax_options]`, a `[[fax_route]]` overrides it. Absent: `[fax_options]`'s.
    #[serde(default)]
    pub disable_ecm_after_retry: Option<u32>,
    /// Outgoing faxes on this line: from attempt N+1 on, no V.17 (V.29 9600 at most; 0: never).
    #[serde(default)]
    pub disable_v17_after_retry: Option<u32>,
}

impl From<&Sip> for crate::mail::fax_options::LineOptions {
    /// A `[[sip]]` line's ceiling (`ecm`, `t38_max_bit_rate`) and per-retry settings.
    fn from(s: &Sip) -> Self {
        crate::mail::fax_options::LineOptions {
            label: format!("[[sip]] {}", s.name),
            ecm: s.ecm,
            max_bps: s.t38_max_bit_rate,
            disable_ecm_after_retry: s.disable_ecm_after_retry,
            disable_v17_after_retry: s.disable_v17_after_retry,
        }
    }
}

impl From<&Sip> for crate::fax::t30::EngineConfig {
    /// The T.30 options a `[[sip]]` entry gives (`local_id`, `t38_max_bit_rate`, `ecm`).
    fn from(s: &Sip) -> Self {
        crate::fax::t30::EngineConfig {
            local_id: s.local_id.clone(),
            max_bps: s.t38_max_bit_rate,
            ecm: s.ecm,
            ..Default::default()
        }
    }
}

impl Sip {
    /// The digest password: the first line of `password_file`, `None` without one.
    pub fn password(&self) -> std::io::Result<Option<String>> {
        match &self.password_file {
            Some(f) => {
                let s = std::fs::read_to_string(f)?;
                Ok(Some(s.lines().next().unwrap_or("").to_owned()))
            }
            None => Ok(None),
        }
    }

    /// The digest user name: `auth_user`, else `user`.
    pub fn auth_name(&self) -> &str {
        if self.auth_user.is_empty() {
            &self.user
        } else {
            &self.auth_user
        }
    }

    /// Where requests outside a dialog go: `proxy`, else `registrar`.
    pub fn trunk(&self) -> Option<&str> {
        self.proxy.as_deref().or(self.registrar.as_deref())
    }

    /// The address media is bound to and announced in SDP.
    pub fn media_ip(&self) -> std::net::IpAddr {
        self.media_address.unwrap_or(self.listen.ip())
    }
}

/// Splits `host` or `host:port` (`[v6]:port` for IPv6 literals); the port defaults to 5060
/// (RFC 3261 §19.1.2). `None` when it is neither.
pub fn sip_host_port(s: &str) -> Option<(String, u16)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (h, tail) = rest.split_once(']')?;
        h.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match tail {
            "" => 5060,
            t => t.strip_prefix(':')?.parse().ok().filter(|p| *p != 0)?,
        };
        return Some((h.to_string(), port));
    }
    let (h, port) = match s.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().ok().filter(|p| *p != 0)?),
        None => (s, 5060),
    };
    (h.parse::<std::net::Ipv4Addr>().is_ok() || is_domain(h)).then(|| (h.to_string(), port))
}

fn default_sip_transport() -> SipTransport {
    SipTransport::Udp
}
fn default_media_port_min() -> u16 {
    10000
}
fn default_media_port_max() -> u16 {
    10999
}
fn default_max_calls() -> u32 {
    4
}
fn default_register_expires() -> Duration {
    Duration::from_secs(3600)
}
fn default_reinvite_wait() -> Duration {
    Duration::from_secs(3)
}
fn default_codecs() -> Vec<AudioCodec> {
    vec![AudioCodec::Pcmu, AudioCodec::Pcma]
}
fn default_udptl_redundancy() -> u8 {
    3
}
fn default_udptl_max_datagram() -> u16 {
    400
}

/// `[loopback]`: the built-in line of the embedded default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Loopback {
    /// Run the in-memory line: every number dialled on it reaches this gateway's own onramp.
    pub enabled: bool,
    /// Station ID of the simulated far end.
    pub remote_id: String,
    /// Our own station ID on the loopback line (TSI sent, and the caller ID the far end sees).
    pub local_id: String,
    /// How much of a real line's time a loopback call takes on the wall clock: 0 runs the two
    /// T.30 engines as fast as the CPU allows (the default); 1 takes as long as the call would
    /// on a phone line (tens of seconds per page); 0.1 a tenth of that. A paced call is in
    /// progress long enough to watch it in `faxgate status` or to interrupt it.
    pub pace: f64,
}

impl Default for Loopback {
    fn default() -> Self {
        Loopback {
            enabled: true,
            remote_id: "+1 212 555 0123".into(),
            local_id: "+1 212 555 0100".into(),
            pace: 0.0,
        }
    }
}

/// `[dialplan]`: turning recipients into dial strings, and what may be dialled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DialPlan {
    /// Our country calling code (E.164), e.g. `1` for NANP, `44` for the UK.
    pub country_code: String,
    /// Area code used to complete short local numbers; empty: local numbers are not completed.
    pub area_code: String,
    /// Prefix dialled before an international number (`011` NANP, `00` most of the world).
    pub international_prefix: String,
    /// Prefix dialled before a national number outside the local area (`1` NANP, `0` UK).
    pub national_prefix: String,
    /// Dial national numbers of our own area without area code.
    pub strip_local_area: bool,
    /// Prefix for an outside line (PBX), e.g. `9,`; dialled first.
    pub outside_prefix: String,
    /// Allowed destinations (E.164 patterns, see [`validate_number_pattern`]); empty allows all
    /// that `deny` does not.
    pub allow: Vec<String>,
    /// Denied destinations; checked before `allow`.
    pub deny: Vec<String>,
    /// Permit destinations outside our country code or in `international_areas` (toll fraud:
    /// off by default).
    pub allow_international: bool,
    /// Destinations inside our country code that are other countries or territories, billed as
    /// international calls (E.164 patterns): refused unless `allow_international`, dialled like
    /// national numbers when allowed. Default [`NANP_INTERNATIONAL_AREAS`]; `[]` opts out.
    pub international_areas: Vec<String>,
    /// Premium-rate patterns, always denied unless `allow_premium`; added to the premium ranges
    /// built into the NANP and UK structures (`mail::dialplan`).
    pub premium: Vec<String>,
    /// Permit premium-rate destinations.
    pub allow_premium: bool,
}

/// The NANP areas billed as international (numbering-plan knowledge, kept by the dial plan);
/// `dialplan.international_areas` defaults to these as `+1NPA*` patterns.
pub use crate::mail::dialplan::NANP_INTERNATIONAL_AREAS;

impl Default for DialPlan {
    fn default() -> Self {
        DialPlan {
            country_code: "1".into(),
            area_code: String::new(),
            international_prefix: "011".into(),
            national_prefix: "1".into(),
            strip_local_area: false,
            outside_prefix: String::new(),
            allow: Vec::new(),
            deny: Vec::new(),
            allow_international: false,
            international_areas: NANP_INTERNATIONAL_AREAS
                .iter()
                .map(|a| format!("+1{a}*"))
                .collect(),
            // NANP premium and chargeable services: 900 and 976 exchanges.
            premium: vec!["+1900*".into(), "+1XXX976*".into()],
            allow_premium: false,
        }
    }
}

/// `[fax_options]`, `[[fax_route]]` and their limits: the pure resolution's own types
/// (`mail::fax_options`).
pub use crate::mail::fax_options::{
    FAX_SPEEDS, FaxOptions, FaxRoute, MAX_FAX_ROUTES, MAX_RETRY_THRESHOLD,
};

impl From<&Modem> for crate::mail::fax_options::LineOptions {
    /// A `[[modem]]`'s ceiling (`ecm`, `max_rate`) and per-retry settings for outgoing faxes.
    fn from(m: &Modem) -> Self {
        crate::mail::fax_options::LineOptions {
            label: format!("[[modem]] {}", m.name),
            ecm: m.ecm,
            max_bps: m.max_rate,
            disable_ecm_after_retry: m.disable_ecm_after_retry,
            disable_v17_after_retry: m.disable_v17_after_retry,
        }
    }
}

/// Attachment format of an onramp email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttachFormat {
    /// RFC 3949 Profile S TIFF (MH, 1728 wide): every T.37 recipient can read it.
    Tiff,
    /// TIFF-F (RFC 3949 Profile F) with MMR coding: smaller, for known-capable recipients.
    TiffMmr,
    /// PDF with the page images embedded as CCITT G4 (`CCITTFaxDecode`).
    Pdf,
    /// No attachment: a notice only (privacy).
    None,
}

/// One `[[route]]`: match keys (all given must match) → recipients.
///
/// A match value is exact (`5550002`), a prefix (`555*`), or a pattern where `X` is any digit
/// and `*` (last only) any rest (`+1212XXX*`). Absent keys match anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Name shown in logs.
    pub name: String,
    /// Modem (line) name.
    #[serde(default)]
    pub line: Option<String>,
    /// Dialled number (DID, `NDID=`).
    #[serde(default)]
    pub did: Option<String>,
    /// Caller ID (`NMBR=`).
    #[serde(default)]
    pub caller: Option<String>,
    /// Remote station ID (TSI/CSID).
    #[serde(default)]
    pub csid: Option<String>,
    /// T.33 subaddress (SUB).
    #[serde(default)]
    pub subaddress: Option<String>,
    /// Recipient addresses.
    pub to: Vec<String>,
    /// Attachment format.
    #[serde(default = "default_format")]
    pub format: AttachFormat,
    /// Subject template (fields: see `firmware-config/faxgate.toml`); empty: the onramp default.
    #[serde(default)]
    pub subject: String,
    /// Body template; empty: the onramp default.
    #[serde(default)]
    pub body: String,
    /// Copy `gateway.admin` when the reception failed or was partial.
    #[serde(default)]
    pub admin_copy_on_failure: bool,
}

fn default_format() -> AttachFormat {
    AttachFormat::Tiff
}

impl Route {
    /// The default route of the embedded configuration: everything to the local fax mailbox.
    pub fn default_route() -> Route {
        Route {
            name: "default".into(),
            line: None,
            did: None,
            caller: None,
            csid: None,
            subaddress: None,
            to: vec!["fax@localhost".into()],
            format: AttachFormat::Tiff,
            subject: String::new(),
            body: String::new(),
            admin_copy_on_failure: false,
        }
    }
}

/// Most pages `[onramp] html_previews` may show (ours): a 100-page fax would otherwise make a
/// mail of many megabytes of pictures.
pub const MAX_HTML_PREVIEWS: u32 = 50;

/// `[onramp]`: received faxes to email.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Onramp {
    /// `From:` of fax emails (RFC 3965: must be able to receive bounces).
    pub from: String,
    /// Watched inbox folder for files to send as received faxes (relative: under data dir).
    pub inbox: PathBuf,
    /// A file in the inbox counts as complete once unchanged for this long.
    #[serde(with = "humantime_serde")]
    pub inbox_settle: Duration,
    /// Default subject template.
    pub subject: String,
    /// Default body template.
    pub body: String,
    /// Pages shown as pictures in the HTML version of a fax email (for clients that cannot
    /// open a multi-page TIFF); 0: no HTML version.
    pub html_previews: u32,
}

impl Default for Onramp {
    fn default() -> Self {
        Onramp {
            from: "Fax Gateway <fax-gateway@localhost>".into(),
            inbox: PathBuf::from("inbox"),
            inbox_settle: Duration::from_secs(5),
            subject: "Fax from {remote_id} ({pages} pages)".into(),
            body: "A fax was received.\n\nFrom: {remote_id}\nCaller: {caller}\nDialled: {did}\n\
                   Pages: {pages}\nDuration: {duration}\nSpeed: {speed}\nResolution: {resolution}\n\
                   Bad lines: {bad_lines}\nReceived: {time}\nResult: {cause}\n"
                .into(),
            html_previews: 10,
        }
    }
}

/// What to do with the body text of an email sent to fax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BodyText {
    /// Fax the body text as pages of its own.
    Include,
    /// Never fax the body text.
    Omit,
    /// Fax the body text only when there is no attachment.
    IfNoAttachment,
}

/// Paper the pages are laid out for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Paper {
    /// 210 × 297 mm.
    A4,
    /// 8.5 × 11 in.
    Letter,
}

/// Default `[offramp] render_time_limit`, seconds (README "Rendering budget" gives the
/// measured figures behind it).
pub const DEFAULT_RENDER_TIME_LIMIT_SECS: u64 = 120;

/// Default `[offramp] office_time_limit`, seconds: LibreOffice starts with a fresh profile
/// each time (about 2–5 s on the appliance) and converts a few pages a second. Kept here, not
/// in `offramp::office`, so that `config` imports no module that imports it.
pub const DEFAULT_OFFICE_TIME_LIMIT_SECS: u64 = 60;

/// `[offramp]`: email to fax.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Offramp {
    /// `include`, `omit` or `if-no-attachment`.
    pub body_text: BodyText,
    /// Send a cover page first.
    pub cover_page: bool,
    /// Page header line template (TCPA: sender identity on every page).
    pub header: String,
    /// `shift` (content scaled into the rows below the header band, nothing covered) or
    /// `overlay` (header printed over the page's top).
    pub header_placement: crate::image::render::header::Placement,
    /// Sender name printed in the header line.
    pub sender_name: String,
    /// Default resolution (a sender may ask otherwise).
    pub resolution: Resolution,
    /// Paper size.
    pub paper: Paper,
    /// Inline images smaller than this (octets) are treated as signature logos and skipped.
    pub min_inline_image: u64,
    /// Send a success report when the envelope did not say (RFC 3461 NOTIFY absent).
    pub notify_success_by_default: bool,
    /// Show a small picture of the first page sent in the delivery report (and list each
    /// page's result), like a fax machine's transmission report.
    pub report_thumbnail: bool,
    /// Honour requests for MDNs (RFC 8098) at all.
    pub mdn: bool,
    /// Pages per document at most.
    pub max_pages: u32,
    /// Send a delay report (RFC 3464 `Action: delayed`) to senders who asked with
    /// `NOTIFY=DELAY` once a fax has been retrying this long; `0s` never sends one.
    #[serde(with = "humantime_serde")]
    pub delay_report_after: Duration,
    /// Cover page template (when `cover_page` is on); fields `{from}` `{to}` `{subject}`
    /// `{pages}` `{note}` `{date}` `{time}` `{station}` `{sender}` `{recipient}`. Empty: the
    /// built-in template (`image::render::cover::DEFAULT_TEMPLATE`).
    pub cover_template: String,
    /// Directory of the URW base-35 OpenType fonts drawn for PDFs that use a standard font
    /// (Times, Helvetica, Courier, Symbol, ZapfDingbats) without embedding it; a font missing
    /// there falls back to the substitute built into the PDF renderer. Empty: built-in only.
    pub pdf_font_dir: String,
    /// Wall-clock time rendering one message may take (all its parts and pages; at split and
    /// again at each attempt); past it the message fails with a report. `0s`: no limit.
    #[serde(with = "humantime_serde")]
    pub render_time_limit: Duration,
    /// Work one page may take to render, in the renderer's machine-independent work units
    /// (`image::render::budget::units`); a page past it fails the message with a report.
    /// `0`: no limit.
    pub render_work_limit: u64,
    /// Subject addressing: mail to this local part at any of our domains (e.g. `fax` for
    /// `fax@gateway`) takes the fax number from the start of its Subject, through the dial
    /// plan like a `FAX=` recipient. Empty: off.
    pub subject_address: String,
    /// Office documents (Word, Excel, PowerPoint, OpenDocument, RTF) are converted to PDF by
    /// LibreOffice: `auto` (`soffice` or `libreoffice` on `PATH`, refused when neither is
    /// there), `off`, or the absolute path of the program.
    pub office_converter: String,
    /// Wall-clock time converting one office document may take; the converter is killed past
    /// it and the sender told.
    #[serde(with = "humantime_serde")]
    pub office_time_limit: Duration,
}

impl Default for Offramp {
    fn default() -> Self {
        Offramp {
            body_text: BodyText::IfNoAttachment,
            cover_page: false,
            header: "{date} {time}  FROM: {station} {sender}  TO: {recipient}  P. {page}/{pages}"
                .into(),
            header_placement: crate::image::render::header::Placement::Shift,
            sender_name: "faxgate".into(),
            resolution: Resolution::Fine,
            paper: Paper::A4,
            min_inline_image: 16 * 1024,
            notify_success_by_default: false,
            report_thumbnail: true,
            mdn: false,
            max_pages: 100,
            delay_report_after: Duration::from_secs(30 * 60),
            cover_template: String::new(),
            pdf_font_dir: crate::image::render::pdf_fonts::DEFAULT_DIR.into(),
            render_time_limit: Duration::from_secs(DEFAULT_RENDER_TIME_LIMIT_SECS),
            render_work_limit: crate::image::render::budget::DEFAULT_PAGE_WORK,
            subject_address: String::new(),
            office_converter: "auto".into(),
            office_time_limit: Duration::from_secs(DEFAULT_OFFICE_TIME_LIMIT_SECS),
        }
    }
}

/// `[retry]`: the scheduler's policy (defaults after HylaFAX and common MTAs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retry {
    /// Wait after a busy line.
    #[serde(with = "humantime_serde")]
    pub busy: Duration,
    /// Wait after no answer.
    #[serde(with = "humantime_serde")]
    pub no_answer: Duration,
    /// Wait after a T.30 protocol failure.
    #[serde(with = "humantime_serde")]
    pub protocol_error: Duration,
    /// Dials per fax job at most.
    pub max_dials: u32,
    /// Calls that reached a fax machine per job at most.
    pub max_tries: u32,
    /// A fax job older than this is given up.
    #[serde(with = "humantime_serde")]
    pub kill_after: Duration,
    /// First wait after a relay failure (doubles each time).
    #[serde(with = "humantime_serde")]
    pub relay_initial: Duration,
    /// Longest wait between relay attempts.
    #[serde(with = "humantime_serde")]
    pub relay_max: Duration,
    /// Mail is given up after this long (kept in `failed/`).
    #[serde(with = "humantime_serde")]
    pub relay_give_up: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            busy: Duration::from_secs(180),
            no_answer: Duration::from_secs(300),
            protocol_error: Duration::from_secs(60),
            max_dials: 12,
            max_tries: 3,
            kill_after: Duration::from_secs(3 * 3600),
            relay_initial: Duration::from_secs(60),
            relay_max: Duration::from_secs(3600),
            relay_give_up: Duration::from_secs(5 * 86400),
        }
    }
}

/// `[spool]`: the durable queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Spool {
    /// Spool directory (relative: under data dir).
    pub dir: PathBuf,
    /// Free space kept in reserve: below it new jobs get a temporary error.
    pub min_free_bytes: u64,
    /// Keep finished jobs in `done/` this long.
    #[serde(with = "humantime_serde")]
    pub keep_done: Duration,
    /// Keep failed jobs in `failed/` this long.
    #[serde(with = "humantime_serde")]
    pub keep_failed: Duration,
    /// High-water mark: with this many jobs in the queue, new mail and inbox files get a
    /// temporary refusal (SMTP `452 4.3.1`) until it drains. Ours: a flood cannot grow the
    /// queue (disk, start-up time, memory) without bound.
    pub max_queued: usize,
}

impl Default for Spool {
    fn default() -> Self {
        Spool {
            dir: PathBuf::from("spool"),
            min_free_bytes: 64 * 1024 * 1024,
            keep_done: Duration::from_secs(7 * 86400),
            keep_failed: Duration::from_secs(30 * 86400),
            max_queued: 20_000,
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Plain lines under systemd (journald stamps them), timestamped lines otherwise.
    Auto,
    /// Plain lines without timestamps.
    Plain,
    /// Lines with timestamps.
    Full,
    /// One JSON object per line.
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// `RUST_LOG`-style filter; `RUST_LOG` in the environment wins.
    pub filter: String,
    /// `auto`, `plain`, `full` or `json`.
    pub format: LogFormat,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            filter: "info".into(),
            format: LogFormat::Auto,
        }
    }
}

/// A list written either as one string or as a list of strings, each parsed with `FromStr`
/// (so `FAXGATE_SMTP__LISTEN=127.0.0.1:2526` works as well as a TOML list).
fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    use serde::de::Error;
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let items = match OneOrMany::deserialize(d)
        .map_err(|_| D::Error::custom("expected a string or a list of strings"))?
    {
        OneOrMany::One(v) => vec![v],
        OneOrMany::Many(v) => v,
    };
    items
        .iter()
        .map(|v| {
            v.parse::<T>()
                .map_err(|e| D::Error::custom(format!("`{v}`: {e}")))
        })
        .collect()
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The embedded default.
    Default,
    /// A TOML file, with the line of the key when it could be found.
    File {
        /// The file.
        path: PathBuf,
        /// 1-based line of the key.
        line: Option<usize>,
    },
    /// An environment variable.
    Env(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("the embedded default"),
            Origin::File {
                path,
                line: Some(l),
            } => write!(f, "{}:{l}", path.display()),
            Origin::File { path, line: None } => write!(f, "{}", path.display()),
            Origin::Env(var) => write!(f, "environment variable {var}"),
        }
    }
}

/// One configuration problem: which key, where its value came from, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key, e.g. `smtp.client_networks.1`.
    pub key: String,
    /// Where the offending value came from.
    pub origin: Origin,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: key `{}`: {}", self.origin, self.key, self.message)
    }
}

/// Every problem found while loading; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A loaded, validated configuration with the provenance of its values.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The effective configuration.
    pub config: Config,
    /// The TOML file merged over the defaults, if any.
    pub file: Option<PathBuf>,
    figment: Figment,
}

impl Loaded {
    /// Where the value at `key` (dotted) came from.
    pub fn origin(&self, key: &str) -> Origin {
        origin_of(&self.figment, key, self.file.as_deref())
    }
}

/// Which file to read: `explicit` (from `--config` or `FAXGATE_CONFIG`), else `./faxgate.toml`,
/// else [`SYSTEM_CONFIG`] when present, else none (embedded default only).
pub fn find_config_file(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os(CONFIG_ENV).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(p));
    }
    ["faxgate.toml", SYSTEM_CONFIG]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Loads defaults < `file` < environment, then validates. `env` is the environment to read
/// (`std::env::vars()` in the binary; a fixed list in tests).
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, ConfigErrors> {
    let mut errors = Vec::new();
    if let Some(f) = file
        && !f.is_file()
    {
        return Err(ConfigErrors(vec![ConfigError {
            key: String::new(),
            origin: Origin::File {
                path: f.to_path_buf(),
                line: None,
            },
            message: "config file not found or not a regular file".into(),
        }]));
    }
    // FAXGATE_DATA and FAXGATE_CONFIG are not config keys: they choose the default data
    // directory and the file.
    let env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k != DATA_ENV && k != CONFIG_ENV)
        .collect();
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(f) = file {
        figment = figment.merge(Toml::file_exact(f));
    }
    figment = figment.merge(EnvVars(env));

    let config: Config = match figment.extract() {
        Ok(c) => c,
        Err(e) => {
            // serde stops at the first error; extracting each section on its own finds the
            // first error of every section, so one run of check-config shows them all.
            errors.extend(section_errors(&figment, file));
            if errors.is_empty() {
                errors.extend(e.into_iter().map(|err| figment_error(&figment, err, file)));
            }
            return Err(ConfigErrors(errors));
        }
    };
    let loaded = Loaded {
        config,
        file: file.map(Path::to_path_buf),
        figment,
    };
    let problems = validate(&loaded.config);
    if problems.is_empty() {
        Ok(loaded)
    } else {
        Err(ConfigErrors(
            problems
                .into_iter()
                .map(|(key, message)| ConfigError {
                    origin: loaded.origin(&key),
                    key,
                    message,
                })
                .collect(),
        ))
    }
}

/// Top-level keys of [`Config`], in file order.
const SECTIONS: &[&str] = &[
    "gateway",
    "smtp",
    "relay",
    "modem",
    "sip",
    "loopback",
    "dialplan",
    "fax_options",
    "fax_route",
    "route",
    "onramp",
    "offramp",
    "retry",
    "spool",
    "log",
    "http",
];

/// The first error of each section, and every unknown top-level key.
fn section_errors(figment: &Figment, file: Option<&Path>) -> Vec<ConfigError> {
    fn one<T: serde::de::DeserializeOwned>(
        figment: &Figment,
        key: &str,
        file: Option<&Path>,
        out: &mut Vec<ConfigError>,
    ) {
        if let Err(e) = figment.extract_inner::<T>(key) {
            for mut err in e {
                // Errors of an inner extraction carry the path below `key` first.
                let rel = match err.path.iter().position(|c| c == key) {
                    Some(i) => err.path[..i].to_vec(),
                    None => err.path.clone(),
                };
                err.path = std::iter::once(key.to_owned()).chain(rel).collect();
                out.push(figment_error(figment, err, file));
            }
        }
    }
    let mut out = Vec::new();
    if let Ok(data) = figment::Provider::data(figment)
        && let Some(dict) = data.get(figment.profile())
    {
        for k in dict.keys() {
            if !SECTIONS.contains(&k.as_str()) {
                let mut err =
                    figment::Error::from(figment::error::Kind::UnknownField(k.clone(), SECTIONS));
                err.metadata = figment.find_metadata(k).cloned();
                out.push(figment_error(figment, err, file));
            }
        }
    }
    one::<Gateway>(figment, "gateway", file, &mut out);
    one::<Smtp>(figment, "smtp", file, &mut out);
    one::<Relay>(figment, "relay", file, &mut out);
    one::<Vec<Modem>>(figment, "modem", file, &mut out);
    one::<Vec<Sip>>(figment, "sip", file, &mut out);
    one::<Loopback>(figment, "loopback", file, &mut out);
    one::<DialPlan>(figment, "dialplan", file, &mut out);
    one::<FaxOptions>(figment, "fax_options", file, &mut out);
    one::<Vec<FaxRoute>>(figment, "fax_route", file, &mut out);
    one::<Vec<Route>>(figment, "route", file, &mut out);
    one::<Onramp>(figment, "onramp", file, &mut out);
    one::<Offramp>(figment, "offramp", file, &mut out);
    one::<Retry>(figment, "retry", file, &mut out);
    one::<Spool>(figment, "spool", file, &mut out);
    one::<Log>(figment, "log", file, &mut out);
    one::<Http>(figment, "http", file, &mut out);
    out
}

/// Name of the metadata of environment overrides (ours).
const ENV_SOURCE: &str = "FAXGATE_* environment";

/// The `FAXGATE_*` provider over an explicit list of variables, parsed the way figment parses
/// environment values (`5` is an integer, `[a, b]` a list, `true` a boolean). Taking the list
/// rather than reading the process environment keeps loading a pure function of its inputs.
struct EnvVars(Vec<(String, String)>);

impl figment::Provider for EnvVars {
    fn metadata(&self) -> Metadata {
        Metadata::named(ENV_SOURCE).interpolater(|_, keys| env_var_name(keys))
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        use figment::value::{Dict, Value};
        let mut root = Dict::new();
        for (name, raw) in &self.0 {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let keys: Vec<String> = rest.split("__").map(|k| k.to_ascii_lowercase()).collect();
            if keys.iter().any(String::is_empty) {
                continue;
            }
            let value: Value = raw.parse().unwrap_or_else(|_| Value::from(raw.clone()));
            let mut dict = &mut root;
            for k in &keys[..keys.len() - 1] {
                let entry = dict
                    .entry(k.clone())
                    .or_insert_with(|| Value::from(Dict::new()));
                if entry.as_dict().is_none() {
                    *entry = Value::from(Dict::new());
                }
                dict = match entry {
                    Value::Dict(_, d) => d,
                    _ => unreachable!("just made a dict"),
                };
            }
            dict.insert(keys[keys.len() - 1].clone(), value);
        }
        Ok(figment::Profile::Default.collect(root))
    }
}

/// `FAXGATE_SMTP__LISTEN` for the key path `smtp.listen` (array indices dropped).
fn env_var_name<S: AsRef<str>>(keys: &[S]) -> String {
    let parts: Vec<String> = keys
        .iter()
        .map(AsRef::as_ref)
        .filter(|c| c.parse::<usize>().is_err())
        .map(str::to_ascii_uppercase)
        .collect();
    format!("{ENV_PREFIX}{}", parts.join("__"))
}

fn figment_error(figment: &Figment, err: figment::Error, file: Option<&Path>) -> ConfigError {
    use figment::error::Kind;
    let mut path = err.path.clone();
    if let Kind::UnknownField(name, _) = &err.kind
        && path.last() != Some(name)
    {
        path.push(name.clone());
    }
    let key = path.join(".");
    let origin = match &err.metadata {
        Some(md) => origin_from_metadata(md, &path, file),
        None => origin_of(figment, &key, file),
    };
    let message = match &err.kind {
        Kind::UnknownField(name, expected) => {
            format!(
                "unknown key `{name}` (expected one of: {})",
                expected.join(", ")
            )
        }
        other => other.to_string(),
    };
    ConfigError {
        key,
        origin,
        message,
    }
}

fn origin_of(figment: &Figment, key: &str, file: Option<&Path>) -> Origin {
    let path: Vec<String> = key.split('.').map(str::to_owned).collect();
    // Array elements have no metadata of their own: walk up to the array.
    for n in (1..=path.len()).rev() {
        if let Some(md) = figment.find_metadata(&path[..n].join(".")) {
            return origin_from_metadata(md, &path, file);
        }
    }
    Origin::Default
}

fn origin_from_metadata(md: &Metadata, path: &[String], file: Option<&Path>) -> Origin {
    if md.name == ENV_SOURCE {
        return Origin::Env(env_var_name(path));
    }
    let toml_file = match &md.source {
        Some(Source::File(p)) => Some(p.clone()),
        _ if md.name.contains("TOML") => file.map(Path::to_path_buf),
        _ => None,
    };
    match toml_file {
        Some(p) => Origin::File {
            line: line_of_key(&p, path),
            path: p,
        },
        None => Origin::Default,
    }
}

/// 1-based line of the key at `path` (dotted components; numbers index arrays) in a TOML file.
/// The deepest component found is used, so an unknown element still points at its array.
pub fn line_of_key(file: &Path, path: &[String]) -> Option<usize> {
    let text = std::fs::read_to_string(file).ok()?;
    let doc = toml_edit::ImDocument::parse(text.as_str()).ok()?;
    let span = span_in_item(doc.as_item(), path, None)?;
    let upto = text.get(..span.start)?;
    Some(upto.bytes().filter(|&b| b == b'\n').count() + 1)
}

type Span = Option<std::ops::Range<usize>>;

fn span_in_item(item: &toml_edit::Item, path: &[String], best: Span) -> Span {
    use toml_edit::{Item, Value};
    let Some((comp, rest)) = path.split_first() else {
        return best;
    };
    match item {
        Item::Table(t) => match t.get_key_value(comp) {
            Some((k, v)) => span_in_item(v, rest, k.span().or(best)),
            None => best,
        },
        Item::ArrayOfTables(a) => match comp.parse::<usize>().ok().and_then(|i| a.get(i)) {
            Some(t) => {
                let s = t.span().or(best);
                match t.get_key_value(rest.first().map(String::as_str).unwrap_or("")) {
                    Some((k, v)) => span_in_item(v, &rest[1..], k.span().or(s)),
                    None => s,
                }
            }
            None => best,
        },
        Item::Value(Value::Array(a)) => match comp.parse::<usize>().ok().and_then(|i| a.get(i)) {
            Some(v) => v.span().or(best),
            None => best,
        },
        Item::Value(Value::InlineTable(t)) => match t.get_key_value(comp) {
            Some((k, _)) => k.span().or(best),
            None => best,
        },
        _ => best,
    }
}

/// The files `faxgate run` reads at start that cannot be read now, as `(dotted key, problem)`
/// pairs: `faxgate check-config` reports them, so that "the config checks" means "the daemon
/// starts with it" (the Debian postinst enables the unit on that answer). Not part of
/// [`load`]: a config may be checked on another box than the one it runs on, and the
/// commands that do not start the daemon do not need these files.
pub fn unreadable_files(c: &Config) -> Vec<(String, String)> {
    let relay = c.relay.mode == RelayMode::Smtp;
    let http = c.http.enabled;
    let named: [(&str, &Option<PathBuf>, bool); 8] = [
        ("smtp.users_file", &c.smtp.users_file, true),
        ("smtp.tls_cert", &c.smtp.tls_cert, true),
        ("smtp.tls_key", &c.smtp.tls_key, true),
        ("relay.password_file", &c.relay.password_file, relay),
        ("relay.tls_ca_file", &c.relay.tls_ca_file, relay),
        ("http.users_file", &c.http.users_file, http),
        ("http.tls_cert", &c.http.tls_cert, http),
        ("http.tls_key", &c.http.tls_key, http),
    ];
    let sip =
        c.sips.iter().enumerate().filter_map(|(i, s)| {
            Some((format!("sip.{i}.password_file"), s.password_file.as_ref()?))
        });
    named
        .into_iter()
        .filter(|(_, _, used)| *used)
        .filter_map(|(key, p, _)| Some((key.to_string(), p.as_ref()?)))
        .chain(sip)
        .filter_map(|(key, p)| {
            let path = c.data_path(p);
            std::fs::File::open(&path)
                .err()
                .map(|e| (key, format!("{}: {e}", path.display())))
        })
        .collect()
}

/// Checks made after loading. Returns `(dotted key, problem)` pairs; empty when all is well.
pub fn validate(c: &Config) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = Vec::new();
    let mut err = |k: String, m: String| p.push((k, m));

    // [gateway]
    if c.gateway.hostname.is_empty() || !is_domain(&c.gateway.hostname) {
        err(
            "gateway.hostname".into(),
            format!("`{}` is not a host name", c.gateway.hostname),
        );
    }
    if c.gateway.domains.is_empty() {
        err(
            "gateway.domains".into(),
            "at least one mail domain must be served".into(),
        );
    }
    for (i, d) in c.gateway.domains.iter().enumerate() {
        if !is_domain(d) {
            err(
                format!("gateway.domains.{i}"),
                format!("`{d}` is not a domain"),
            );
        }
    }
    check_path(&mut err, "gateway.data_dir", &c.gateway.data_dir);
    if !is_address(&c.gateway.admin) {
        err(
            "gateway.admin".into(),
            format!("`{}` is not a mail address", c.gateway.admin),
        );
    }

    // [smtp]
    if c.smtp.listen.is_empty() {
        err(
            "smtp.listen".into(),
            "at least one listen address is needed".into(),
        );
    }
    check_range(
        &mut err,
        "smtp.max_connections",
        c.smtp.max_connections as u64,
        1,
        100_000,
    );
    check_range(
        &mut err,
        "smtp.max_connections_per_ip",
        c.smtp.max_connections_per_ip as u64,
        1,
        c.smtp.max_connections.max(1) as u64,
    );
    check_range(
        &mut err,
        "smtp.max_messages_per_minute",
        u64::from(c.smtp.max_messages_per_minute),
        0,
        1_000_000,
    );
    check_range(
        &mut err,
        "smtp.max_message_size",
        c.smtp.max_message_size,
        1024,
        1 << 32,
    );
    check_range(
        &mut err,
        "spool.max_queued",
        c.spool.max_queued as u64,
        1,
        10_000_000,
    );
    // RFC 5321 §4.5.3.1.8: a server must be able to buffer 100 recipients.
    check_range(
        &mut err,
        "smtp.max_recipients",
        c.smtp.max_recipients as u64,
        1,
        10_000,
    );
    // Each check holds argon2's memory (19 MiB with the default parameters) for its duration.
    check_range(
        &mut err,
        "smtp.auth_max_concurrent",
        c.smtp.auth_max_concurrent as u64,
        1,
        64,
    );
    if c.smtp.command_timeout < Duration::from_secs(1) {
        err("smtp.command_timeout".into(), "must be at least 1s".into());
    }
    if c.smtp.data_timeout < Duration::from_secs(1) {
        err("smtp.data_timeout".into(), "must be at least 1s".into());
    }
    if c.smtp.max_session < Duration::from_secs(1) {
        err("smtp.max_session".into(), "must be at least 1s".into());
    }
    for (i, s) in c.smtp.allowed_senders.iter().enumerate() {
        let ok = match s.strip_prefix('@') {
            Some(d) => is_domain(d),
            None => is_address(s),
        };
        if !ok {
            err(
                format!("smtp.allowed_senders.{i}"),
                format!("`{s}` is neither `user@domain` nor `@domain`"),
            );
        }
    }
    validate_http(&c.http, &mut err);
    match (&c.smtp.tls_cert, &c.smtp.tls_key) {
        (Some(_), None) => err(
            "smtp.tls_key".into(),
            "tls_cert is set but tls_key is not".into(),
        ),
        (None, Some(_)) => err(
            "smtp.tls_cert".into(),
            "tls_key is set but tls_cert is not".into(),
        ),
        (Some(cert), Some(key)) => {
            check_path(&mut err, "smtp.tls_cert", cert);
            check_path(&mut err, "smtp.tls_key", key);
        }
        (None, None) => {
            if c.smtp.require_tls {
                err(
                    "smtp.require_tls".into(),
                    "TLS is required but no tls_cert/tls_key is configured".into(),
                );
            }
        }
    }
    if let Some(u) = &c.smtp.users_file {
        check_path(&mut err, "smtp.users_file", u);
    } else if c.smtp.require_auth {
        err(
            "smtp.require_auth".into(),
            "AUTH is required but no users_file is configured".into(),
        );
    }
    if c.smtp.require_auth && !c.smtp.auth_without_tls && c.smtp.tls_cert.is_none() {
        err(
            "smtp.require_auth".into(),
            "AUTH is offered only after STARTTLS: configure tls_cert/tls_key or set auth_without_tls"
                .into(),
        );
    }

    // [relay]
    check_path(&mut err, "relay.maildir", &c.relay.maildir);
    if c.relay.mode == RelayMode::Smtp {
        if c.relay.host.is_empty() {
            err(
                "relay.host".into(),
                "mode is smtp but no host is set".into(),
            );
        } else if !is_domain(&c.relay.host) && c.relay.host.parse::<std::net::IpAddr>().is_err() {
            err(
                "relay.host".into(),
                format!(
                    "`{}` is neither a host name nor an IP address",
                    c.relay.host
                ),
            );
        }
        if c.relay.port == 0 {
            err("relay.port".into(), "port 0 is not a port".into());
        }
    }
    if c.relay.password.is_some() && c.relay.password_file.is_some() {
        err(
            "relay.password_file".into(),
            "set password or password_file, not both".into(),
        );
    }
    if let Some(pf) = &c.relay.password_file {
        check_path(&mut err, "relay.password_file", pf);
    }
    if let Some(ca) = &c.relay.tls_ca_file {
        check_path(&mut err, "relay.tls_ca_file", ca);
    }
    if (c.relay.password.is_some() || c.relay.password_file.is_some())
        && c.relay.username.is_empty()
    {
        err(
            "relay.username".into(),
            "a password is set but no username".into(),
        );
    }
    check_range(
        &mut err,
        "relay.max_connections",
        c.relay.max_connections as u64,
        1,
        64,
    );

    // [[modem]]
    let mut names = BTreeSet::new();
    let mut devices = BTreeSet::new();
    for (i, m) in c.modems.iter().enumerate() {
        let k = |f: &str| format!("modem.{i}.{f}");
        if m.name.is_empty()
            || !m
                .name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        {
            err(
                k("name"),
                format!("`{}`: use letters, digits, `-` and `_`", m.name),
            );
        } else if !names.insert(m.name.clone()) {
            err(k("name"), format!("modem name `{}` used twice", m.name));
        }
        let dev = m.device.to_string_lossy();
        if !m.device.is_absolute() || dev.ends_with('/') || dev.contains('\0') {
            err(
                k("device"),
                format!("`{dev}` is not an absolute device path such as /dev/ttyACM0"),
            );
        } else if !devices.insert(m.device.clone()) {
            err(k("device"), format!("device `{dev}` used by two modems"));
        }
        if m.profile.is_empty()
            || !m
                .profile
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' || ch == '.')
        {
            err(
                k("profile"),
                format!("`{}` is not a profile name", m.profile),
            );
        }
        check_path(&mut err, &k("profiles_dir"), &m.profiles_dir);
        if !is_station_id(&m.local_id) {
            err(
                k("local_id"),
                "T.30 §5.3.6.2.4: at most 20 characters, digits, `+` and spaces".into(),
            );
        }
        check_range(&mut err, &k("rings"), m.rings as u64, 1, 20);
        for (key, v) in [
            ("disable_ecm_after_retry", m.disable_ecm_after_retry),
            ("disable_v17_after_retry", m.disable_v17_after_retry),
        ] {
            if let Some(v) = v {
                check_range(&mut err, &k(key), v.into(), 0, MAX_RETRY_THRESHOLD.into());
            }
        }
        if !FAX_SPEEDS.contains(&m.max_rate) {
            err(
                k("max_rate"),
                format!(
                    "{} is not a T.30 signalling rate (2400 … 14400)",
                    m.max_rate
                ),
            );
        }
    }

    validate_sip(&c.sips, &mut names, &mut err);

    // [loopback]
    if !is_station_id(&c.loopback.remote_id) {
        err(
            "loopback.remote_id".into(),
            "T.30 §5.3.6.2.4: at most 20 characters, digits, `+` and spaces".into(),
        );
    }
    if !is_station_id(&c.loopback.local_id) {
        err(
            "loopback.local_id".into(),
            "T.30 §5.3.6.2.4: at most 20 characters, digits, `+` and spaces".into(),
        );
    }
    if !(c.loopback.pace.is_finite() && (0.0..=10.0).contains(&c.loopback.pace)) {
        err(
            "loopback.pace".into(),
            "a fraction of real line time from 0 (full speed) to 10".into(),
        );
    }

    // [dialplan]
    let d = &c.dialplan;
    if d.country_code.is_empty()
        || d.country_code.len() > 3
        || !d.country_code.bytes().all(|b| b.is_ascii_digit())
        || d.country_code.starts_with('0')
    {
        err(
            "dialplan.country_code".into(),
            format!(
                "`{}` is not an E.164 country code (1–3 digits)",
                d.country_code
            ),
        );
    }
    for (key, v) in [
        ("dialplan.area_code", &d.area_code),
        ("dialplan.international_prefix", &d.international_prefix),
        ("dialplan.national_prefix", &d.national_prefix),
    ] {
        if !v.bytes().all(|b| b.is_ascii_digit()) || v.len() > 8 {
            err(key.into(), format!("`{v}`: digits only"));
        }
    }
    if !d
        .outside_prefix
        .bytes()
        .all(|b| b.is_ascii_digit() || b"*#,W".contains(&b))
    {
        err(
            "dialplan.outside_prefix".into(),
            format!("`{}`: digits, `*`, `#`, `,` and `W` only", d.outside_prefix),
        );
    }
    for (list, name) in [
        (&d.allow, "allow"),
        (&d.deny, "deny"),
        (&d.premium, "premium"),
        (&d.international_areas, "international_areas"),
    ] {
        for (i, pat) in list.iter().enumerate() {
            if let Err(m) = validate_number_pattern(pat, true) {
                err(format!("dialplan.{name}.{i}"), m);
            }
        }
    }

    // [fax_options], [[fax_route]]
    validate_fax_options(c, &mut err);

    // [[route]]
    for (i, r) in c.routes.iter().enumerate() {
        if r.name.is_empty() {
            err(format!("route.{i}.name"), "a route needs a name".into());
        }
        if r.to.is_empty() {
            err(
                format!("route.{i}.to"),
                "a route needs at least one recipient".into(),
            );
        }
        for (j, a) in r.to.iter().enumerate() {
            if !is_address(a) {
                err(
                    format!("route.{i}.to.{j}"),
                    format!("`{a}` is not a mail address"),
                );
            }
        }
        for (field, v) in [
            ("line", &r.line),
            ("did", &r.did),
            ("caller", &r.caller),
            ("csid", &r.csid),
            ("subaddress", &r.subaddress),
        ] {
            if let Some(v) = v
                && let Err(m) = validate_match(v)
            {
                err(format!("route.{i}.{field}"), m);
            }
        }
    }
    if let Some(last) = c.routes.last() {
        let catch_all = last.line.is_none()
            && last.did.is_none()
            && last.caller.is_none()
            && last.csid.is_none()
            && last.subaddress.is_none();
        if !catch_all {
            err(
                format!("route.{}", c.routes.len() - 1),
                "the last route must match everything (a default route), so no fax goes unrouted"
                    .into(),
            );
        }
    } else {
        err(
            "route".into(),
            "at least one (default) route is needed so no fax goes unrouted".into(),
        );
    }

    // [onramp]
    if !is_address(&c.onramp.from) {
        err(
            "onramp.from".into(),
            format!("`{}` is not a mail address", c.onramp.from),
        );
    }
    check_path(&mut err, "onramp.inbox", &c.onramp.inbox);
    // Templates are checked here so an unknown `{field}` stops start-up with its key instead
    // of reaching somebody's inbox.
    for (key, src) in [
        ("onramp.subject".to_string(), &c.onramp.subject),
        ("onramp.body".to_string(), &c.onramp.body),
    ]
    .into_iter()
    .chain(c.routes.iter().enumerate().flat_map(|(i, r)| {
        [
            (format!("route.{i}.subject"), &r.subject),
            (format!("route.{i}.body"), &r.body),
        ]
    })) {
        if let Err(e) = crate::mail::template::Template::parse(src) {
            err(key, e.to_string());
        }
    }

    check_range(
        &mut err,
        "onramp.html_previews",
        u64::from(c.onramp.html_previews),
        0,
        u64::from(MAX_HTML_PREVIEWS),
    );

    // [offramp]
    if let Err(e) = crate::image::render::header::Template::parse(
        &c.offramp.header,
        crate::image::render::header::HEADER_FIELDS,
    ) {
        err("offramp.header".into(), e.to_string());
    }
    if let Err(e) = crate::image::render::cover::template(&c.offramp.cover_template) {
        err("offramp.cover_template".into(), e.to_string());
    }
    if !c.offramp.pdf_font_dir.is_empty() && !Path::new(&c.offramp.pdf_font_dir).is_absolute() {
        err(
            "offramp.pdf_font_dir".into(),
            "must be an absolute directory path, or \"\" for the built-in fonts".into(),
        );
    }
    let sa = &c.offramp.subject_address;
    if !sa.is_empty() {
        // A plain local part of ours (RFC 5321 §4.1.2 dot-string), not the postmaster.
        let probe = format!("{sa}@{}", c.gateway.hostname);
        let mb = crate::mail::address::parse_forward_path(&probe);
        if sa.contains('@') || !mb.is_ok_and(|m| !m.quoted && !m.is_postmaster()) {
            err(
                "offramp.subject_address".into(),
                "must be a plain local part such as \"fax\" (not postmaster), or \"\" for off"
                    .into(),
            );
        }
    }
    let oc = c.offramp.office_converter.as_str();
    if !matches!(oc, "auto" | "off") && !Path::new(oc).is_absolute() {
        err(
            "offramp.office_converter".into(),
            "must be \"auto\", \"off\" or the absolute path of LibreOffice's soffice".into(),
        );
    }
    check_range(
        &mut err,
        "offramp.office_time_limit",
        c.offramp.office_time_limit.as_secs(),
        1,
        3600,
    );
    check_range(
        &mut err,
        "offramp.max_pages",
        c.offramp.max_pages as u64,
        1,
        10_000,
    );

    // [retry]
    check_range(
        &mut err,
        "retry.max_dials",
        c.retry.max_dials as u64,
        1,
        1000,
    );
    check_range(
        &mut err,
        "retry.max_tries",
        c.retry.max_tries as u64,
        1,
        100,
    );
    if c.retry.relay_initial > c.retry.relay_max {
        err(
            "retry.relay_initial".into(),
            "must not exceed retry.relay_max".into(),
        );
    }
    for (k, v) in [
        ("retry.busy", c.retry.busy),
        ("retry.no_answer", c.retry.no_answer),
        ("retry.protocol_error", c.retry.protocol_error),
        ("retry.relay_initial", c.retry.relay_initial),
        ("retry.kill_after", c.retry.kill_after),
        ("retry.relay_give_up", c.retry.relay_give_up),
    ] {
        if v.is_zero() {
            err(k.into(), "must be longer than zero".into());
        }
    }

    // [spool]
    check_path(&mut err, "spool.dir", &c.spool.dir);

    // [log]
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&c.log.filter) {
        err("log.filter".into(), format!("not a valid filter: {e}"));
    }
    p
}

fn validate_fax_options(c: &Config, err: &mut impl FnMut(String, String)) {
    let speed = |err: &mut dyn FnMut(String, String), key: String, v: u32| {
        if !FAX_SPEEDS.contains(&v) {
            err(
                key,
                format!(
                    "{v} is not a T.30 signalling rate (2400, 4800, 7200, 9600, 12000 or 14400)"
                ),
            );
        }
    };
    let o = &c.fax_options;
    speed(err, "fax_options.max_speed".into(), o.max_speed);
    for (key, v) in [
        ("disable_ecm_after_retry", o.disable_ecm_after_retry),
        ("disable_v17_after_retry", o.disable_v17_after_retry),
    ] {
        check_range(
            err,
            &format!("fax_options.{key}"),
            v.into(),
            0,
            MAX_RETRY_THRESHOLD.into(),
        );
    }
    if c.fax_routes.len() > MAX_FAX_ROUTES {
        err(
            "fax_route".into(),
            format!(
                "{} entries: at most {MAX_FAX_ROUTES} (use `*` patterns)",
                c.fax_routes.len()
            ),
        );
    }
    let mut names = BTreeSet::new();
    for (i, r) in c.fax_routes.iter().enumerate() {
        let k = |f: &str| format!("fax_route.{i}.{f}");
        if r.name.is_empty() {
            err(k("name"), "a fax route needs a name".into());
        } else if !names.insert(r.name.as_str()) {
            err(k("name"), format!("fax route name `{}` used twice", r.name));
        }
        if r.numbers.is_empty() {
            err(
                k("numbers"),
                "a fax route needs at least one number pattern (`+*` matches every number)".into(),
            );
        }
        for (j, p) in r.numbers.iter().enumerate() {
            if let Err(m) = validate_number_pattern(p, true) {
                err(format!("fax_route.{i}.numbers.{j}"), m);
            }
        }
        if let Some(v) = r.max_speed {
            speed(err, k("max_speed"), v);
        }
        for (key, v) in [
            ("disable_ecm_after_retry", r.disable_ecm_after_retry),
            ("disable_v17_after_retry", r.disable_v17_after_retry),
        ] {
            if let Some(v) = v {
                check_range(err, &k(key), v.into(), 0, MAX_RETRY_THRESHOLD.into());
            }
        }
        if r.ecm.is_none()
            && r.max_speed.is_none()
            && r.disable_ecm_after_retry.is_none()
            && r.disable_v17_after_retry.is_none()
        {
            err(
                k("name"),
                format!(
                    "fax route `{}` sets no option (ecm, max_speed, disable_ecm_after_retry, \
                     disable_v17_after_retry)",
                    r.name
                ),
            );
        }
    }
}

/// `[[sip]]`: each line's keys, its name unique among all lines (`names` holds the modems').
fn validate_sip(sips: &[Sip], names: &mut BTreeSet<String>, err: &mut impl FnMut(String, String)) {
    let mut listens = BTreeSet::new();
    let mut ranges: Vec<(usize, u16, u16)> = Vec::new();
    for (i, s) in sips.iter().enumerate() {
        let k = |f: &str| format!("sip.{i}.{f}");
        if s.name.is_empty()
            || !s
                .name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        {
            err(
                k("name"),
                format!("`{}`: use letters, digits, `-` and `_`", s.name),
            );
        } else if !names.insert(s.name.clone()) {
            err(k("name"), format!("line name `{}` used twice", s.name));
        }
        for (key, v) in [("registrar", &s.registrar), ("proxy", &s.proxy)] {
            if let Some(v) = v
                && sip_host_port(v).is_none()
            {
                err(
                    k(key),
                    format!("`{v}` is not `host` or `host:port` (RFC 3261 §19.1.1)"),
                );
            }
        }
        if s.registrar.is_none() && s.proxy.is_none() && s.role != ModemRole::Receive {
            // Outbound calls go only through the configured trunk (toll fraud, issue 17).
            err(
                k("proxy"),
                "a line that sends needs `registrar` or `proxy`: calls go only through the trunk"
                    .into(),
            );
        }
        // RFC 3261 §25.1 `user`: unreserved characters and user-unreserved; no escapes.
        let user_ok = |u: &str| {
            !u.is_empty()
                && u.len() <= 64
                && u.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b))
        };
        if !user_ok(&s.user) {
            err(
                k("user"),
                format!("`{}` is not a SIP user part (RFC 3261 §25.1)", s.user),
            );
        }
        if !s.auth_user.is_empty()
            && (s.auth_user.len() > 128 || s.auth_user.chars().any(|c| c.is_control() || c == '"'))
        {
            err(
                k("auth_user"),
                "at most 128 characters, no controls or `\"`".into(),
            );
        }
        if let Some(pf) = &s.password_file {
            check_path(err, &k("password_file"), pf);
        }
        if s.listen.ip().is_unspecified() {
            err(
                k("listen"),
                "an address peers reach, not 0.0.0.0 or :: (it goes into Via and Contact)".into(),
            );
        } else if s.listen.port() == 0 {
            err(k("listen"), "port 0 is not a port".into());
        } else if !listens.insert(s.listen) {
            err(
                k("listen"),
                format!("{} is used by two SIP lines", s.listen),
            );
        }
        if s.media_address.is_some_and(|a| a.is_unspecified()) {
            err(
                k("media_address"),
                "the address announced in SDP cannot be 0.0.0.0 or ::".into(),
            );
        }
        if s.media_port_min == 0 || s.media_port_min > s.media_port_max {
            err(
                k("media_port_min"),
                format!(
                    "{} … {} is not a port range",
                    s.media_port_min, s.media_port_max
                ),
            );
        } else {
            let span = u32::from(s.media_port_max) - u32::from(s.media_port_min) + 1;
            if span < 2 * s.max_calls {
                err(
                    k("media_port_max"),
                    format!(
                        "{span} ports hold fewer than 2 per call for max_calls = {}",
                        s.max_calls
                    ),
                );
            }
            for (j, lo, hi) in &ranges {
                if s.media_port_min <= *hi && *lo <= s.media_port_max {
                    err(
                        k("media_port_min"),
                        format!("the media ports overlap those of sip.{j}"),
                    );
                }
            }
            ranges.push((i, s.media_port_min, s.media_port_max));
        }
        check_range(err, &k("max_calls"), u64::from(s.max_calls), 1, 256);
        if s.register_expires < Duration::from_secs(60)
            || s.register_expires > Duration::from_secs(86_400)
        {
            err(k("register_expires"), "must be from 1m to 1day".into());
        }
        if s.reinvite_wait > Duration::from_secs(60) {
            err(k("reinvite_wait"), "at most 60s".into());
        }
        if s.codecs.is_empty() {
            err(k("codecs"), "offer at least one of pcmu, pcma".into());
        }
        check_range(err, &k("t38_version"), u64::from(s.t38_version), 0, 3);
        if ![2400, 4800, 7200, 9600, 12000, 14400].contains(&s.t38_max_bit_rate) {
            err(
                k("t38_max_bit_rate"),
                format!(
                    "{} is not a T.30 signalling rate (2400 … 14400)",
                    s.t38_max_bit_rate
                ),
            );
        }
        check_range(
            err,
            &k("udptl_redundancy"),
            u64::from(s.udptl_redundancy),
            0,
            7,
        );
        // Smaller than one ECM frame with its IFP and UDPTL headers is not usable; larger
        // than an Ethernet MTU fragments.
        check_range(
            err,
            &k("udptl_max_datagram"),
            u64::from(s.udptl_max_datagram),
            272,
            1400,
        );
        if !is_station_id(&s.local_id) {
            err(
                k("local_id"),
                "T.30 §5.3.6.2.4: at most 20 characters, digits, `+` and spaces".into(),
            );
        }
        for (key, v) in [
            ("disable_ecm_after_retry", s.disable_ecm_after_retry),
            ("disable_v17_after_retry", s.disable_v17_after_retry),
        ] {
            if let Some(v) = v {
                check_range(err, &k(key), v.into(), 0, MAX_RETRY_THRESHOLD.into());
            }
        }
    }
}

fn check_range(err: &mut impl FnMut(String, String), key: &str, v: u64, lo: u64, hi: u64) {
    if v < lo || v > hi {
        err(key.into(), format!("{v} is outside {lo} … {hi}"));
    }
}

/// `[http]`: a console reachable from the network needs logins and TLS — a bearer token or
/// session cookie in clear text on a LAN is as good as no login.
fn validate_http(h: &Http, err: &mut impl FnMut(String, String)) {
    if !h.enabled {
        return;
    }
    if h.listen.is_empty() {
        err(
            "http.listen".into(),
            "no address to listen on (set `enabled = false` to turn the console off)".into(),
        );
    }
    let tls = h.tls_cert.is_some() && h.tls_key.is_some();
    for (i, a) in h.listen.iter().enumerate() {
        if !a.ip().is_loopback() && (h.users_file.is_none() || !tls) {
            err(
                format!("http.listen.{i}"),
                format!(
                    "{a} is not a loopback address: the console needs `http.users_file` and \
                     `http.tls_cert`/`http.tls_key` to listen there"
                ),
            );
        }
    }
    match (&h.tls_cert, &h.tls_key) {
        (Some(_), None) => err(
            "http.tls_key".into(),
            "tls_cert is set but tls_key is not".into(),
        ),
        (None, Some(_)) => err(
            "http.tls_cert".into(),
            "tls_key is set but tls_cert is not".into(),
        ),
        (Some(c), Some(k)) => {
            check_path(err, "http.tls_cert", c);
            check_path(err, "http.tls_key", k);
        }
        (None, None) => {}
    }
    if let Some(u) = &h.users_file {
        check_path(err, "http.users_file", u);
    }
    if let Some(t) = &h.tokens_file {
        check_path(err, "http.tokens_file", t);
    }
    if h.session_idle < Duration::from_secs(60) {
        err("http.session_idle".into(), "must be at least 1m".into());
    }
    check_range(
        err,
        "http.max_connections",
        h.max_connections as u64,
        1,
        10_000,
    );
}

fn check_path(err: &mut impl FnMut(String, String), key: &str, p: &Path) {
    let s = p.to_string_lossy();
    if s.is_empty() {
        err(key.into(), "an empty path is not a path".into());
    } else if s.contains('\0') {
        err(key.into(), "a path cannot hold a NUL byte".into());
    }
}

/// A host or domain name (RFC 1035 letters-digits-hyphen labels; `localhost` included).
pub fn is_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// A mail address, bare (`user@domain`) or with a display name (`Name <user@domain>`):
/// RFC 5322 §3.4 `mailbox` with a dot-atom local part (§3.4.1) and a host-name domain. A
/// display name is atoms and spaces or one quoted string (§3.2.5 `phrase`); nothing else
/// (no `;` or `,`, no second `@`, no group syntax) so that one value is one recipient.
pub fn is_address(s: &str) -> bool {
    let s = s.trim();
    let Some(open) = s.find('<') else {
        return is_addr_spec(s);
    };
    let Some(inner) = s[open + 1..].strip_suffix('>') else {
        return false;
    };
    is_display_name(s[..open].trim()) && is_addr_spec(inner)
}

/// RFC 5322 §3.2.3 `atext`.
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

/// `local@domain`, local a dot-atom (RFC 5322 §3.4.1) of at most 64 octets (RFC 5321
/// §4.5.3.1.1).
fn is_addr_spec(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && local
            .split('.')
            .all(|w| !w.is_empty() && w.bytes().all(is_atext))
        && is_domain(domain)
}

/// An empty name, words of `atext` and `.` separated by spaces, or one quoted string
/// without controls (RFC 5322 §3.2.4, §3.2.5; `.` as obs-phrase allows it).
fn is_display_name(s: &str) -> bool {
    if let Some(q) = s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        let mut escaped = false;
        for c in q.chars() {
            match c {
                _ if c.is_control() => return false,
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => return false,
                _ => {}
            }
        }
        return !escaped;
    }
    s.chars().all(|c| {
        c == ' '
            || c == '.'
            || (c.is_ascii() && is_atext(c as u8))
            || (!c.is_ascii() && !c.is_control())
    })
}

/// Splits an RFC 5322 §3.4 `address-list` (mailboxes separated by `,`, a comma inside a
/// quoted display name kept) and checks each with [`is_address`]. Empty items are skipped;
/// `Err` names the first item that is not one address.
pub fn parse_address_list(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut item = String::new();
    let (mut quoted, mut escaped) = (false, false);
    let mut push = |item: &mut String| -> Result<(), String> {
        let a = item.trim();
        if !a.is_empty() {
            if !is_address(a) {
                return Err(a.to_owned());
            }
            out.push(a.to_owned());
        }
        item.clear();
        Ok(())
    };
    for c in s.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                push(&mut item)?;
                continue;
            }
            _ => {}
        }
        item.push(c);
    }
    if quoted {
        return Err(item.trim().to_owned());
    }
    push(&mut item)?;
    Ok(out)
}

/// T.30 §5.3.6.2.4 identity: up to 20 of `0-9`, `+` and space.
pub fn is_station_id(s: &str) -> bool {
    s.len() <= 20
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b == b'+' || b == b' ')
}

/// Checks a number pattern: `+` then digits or `X` (any digit), optionally ending with `*`
/// (any rest). With `e164` false the leading `+` is optional (DIDs and caller IDs as modems
/// report them).
pub fn validate_number_pattern(p: &str, e164: bool) -> Result<(), String> {
    let body = match p.strip_prefix('+') {
        Some(b) => b,
        None if e164 => return Err(format!("`{p}`: an E.164 pattern starts with `+`")),
        None => p,
    };
    let body = body.strip_suffix('*').unwrap_or(body);
    if body.is_empty() && !p.ends_with('*') {
        return Err(format!("`{p}`: no digits"));
    }
    if let Some(bad) = body.chars().find(|c| !(c.is_ascii_digit() || *c == 'X')) {
        return Err(format!(
            "`{p}`: `{bad}` not allowed (digits, `X` for any digit, `*` at the end)"
        ));
    }
    Ok(())
}

/// Checks a route match value: exact text, `prefix*`, or a pattern with `X` and `*` on digits.
fn validate_match(v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Err("an empty match never matches; remove the key to match anything".into());
    }
    if let Some(i) = v.find('*')
        && i != v.len() - 1
    {
        return Err(format!("`{v}`: `*` is allowed only at the end"));
    }
    if v.len() > 64 {
        return Err(format!("`{v}`: longer than 64 characters"));
    }
    Ok(())
}

impl Config {
    /// The relay password: `password`, or the first line of `password_file`.
    pub fn relay_password(&self) -> std::io::Result<Option<String>> {
        if let Some(p) = &self.relay.password {
            return Ok(Some(p.clone()));
        }
        match &self.relay.password_file {
            Some(f) => {
                let s = std::fs::read_to_string(f)?;
                Ok(Some(s.lines().next().unwrap_or("").to_owned()))
            }
            None => Ok(None),
        }
    }

    /// `path` resolved against `gateway.data_dir` when relative.
    pub fn data_path(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.gateway.data_dir.join(path)
        }
    }

    /// The effective configuration as TOML, every secret replaced by [`REDACTED`].
    pub fn to_redacted_toml(&self) -> String {
        let mut c = self.clone();
        if c.relay.password.is_some() {
            c.relay.password = Some(REDACTED.into());
        }
        toml::to_string_pretty(&c).unwrap_or_else(|e| format!("# cannot print config: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_onramp_templates_parse() {
        let o = Onramp::default();
        crate::mail::template::Template::parse(&o.subject).unwrap();
        crate::mail::template::Template::parse(&o.body).unwrap();
    }

    #[test]
    fn config_check_names_the_bad_template_key() {
        let mut c = Config::default();
        c.routes[0].subject = "Fax {from}".into();
        c.onramp.body = "{pages".into();
        let problems = validate(&c);
        let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["onramp.body", "route.0.subject"], "{problems:?}");
        assert!(
            problems[1].1.contains("unknown field `{from}`"),
            "{problems:?}"
        );
    }
    use std::io::Write;

    fn write(dir: &tempfile::TempDir, name: &str, body: &str) -> PathBuf {
        let p = dir.path().join(name);
        let mut f = std::fs::File::create(&p).unwrap();
        f.write_all(body.as_bytes()).unwrap();
        p
    }

    #[test]
    fn defaults_validate() {
        assert_eq!(validate(&Config::default()), Vec::<(String, String)>::new());
    }

    #[test]
    fn misspelt_key_names_key_file_and_line() {
        let d = tempfile::tempdir().unwrap();
        let f = write(
            &d,
            "c.toml",
            "[gateway]\nhostname = \"gw\"\n\n[smtp]\nlisten = \"127.0.0.1:25\"\nmax_recipeints = 5\n",
        );
        let e = load(Some(&f), Vec::new()).unwrap_err();
        assert_eq!(e.0.len(), 1, "{e}");
        assert_eq!(e.0[0].key, "smtp.max_recipeints");
        assert_eq!(
            e.0[0].origin,
            Origin::File {
                path: f.clone(),
                line: Some(6)
            }
        );
        assert!(e.to_string().contains("unknown key"), "{e}");
    }

    #[test]
    fn bad_cidr_names_element_line() {
        let d = tempfile::tempdir().unwrap();
        let f = write(
            &d,
            "c.toml",
            "[smtp]\nclient_networks = [\n  \"10.0.0.0/8\",\n  \"10.0.0.0/33\",\n]\n",
        );
        let e = load(Some(&f), Vec::new()).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("smtp.client_networks"), "{s}");
        assert!(s.contains(&format!("{}:", f.display())), "{s}");
        match &e.0[0].origin {
            Origin::File { line: Some(l), .. } => assert!(*l == 2 || *l == 4, "line {l}"),
            o => panic!("origin {o:?}"),
        }
    }

    #[test]
    fn env_overrides_and_is_named() {
        let env = vec![
            (
                "FAXGATE_SMTP__LISTEN".to_string(),
                "127.0.0.1:2526".to_string(),
            ),
            ("FAXGATE_RETRY__MAX_DIALS".to_string(), "0".to_string()),
        ];
        let e = load(None, env.clone()).unwrap_err();
        assert_eq!(e.0.len(), 1, "{e}");
        assert_eq!(e.0[0].key, "retry.max_dials");
        assert_eq!(
            e.0[0].origin,
            Origin::Env("FAXGATE_RETRY__MAX_DIALS".into())
        );
        let ok = load(None, env[..1].to_vec()).unwrap();
        assert_eq!(
            ok.config.smtp.listen,
            vec!["127.0.0.1:2526".parse().unwrap()]
        );
        assert_eq!(
            ok.origin("smtp.listen"),
            Origin::Env("FAXGATE_SMTP__LISTEN".into())
        );
        assert_eq!(ok.origin("smtp.max_recipients"), Origin::Default);
    }

    #[test]
    fn env_list_value_and_type_error() {
        let env = vec![(
            "FAXGATE_GATEWAY__DOMAINS".to_string(),
            "[\"fax.example\", \"example\"]".to_string(),
        )];
        let ok = load(None, env).unwrap();
        assert_eq!(ok.config.gateway.domains, vec!["fax.example", "example"]);
        let env = vec![(
            "FAXGATE_SMTP__MAX_RECIPIENTS".to_string(),
            "many".to_string(),
        )];
        let e = load(None, env).unwrap_err();
        assert_eq!(
            e.0[0].origin,
            Origin::Env("FAXGATE_SMTP__MAX_RECIPIENTS".into())
        );
    }

    #[test]
    fn validation_collects_every_error() {
        let mut c = Config::default();
        c.gateway.domains = vec!["bad domain".into()];
        c.dialplan.allow = vec!["1212*".into()];
        c.modems.push(Modem {
            name: "m0".into(),
            device: "dev/ttyS0".into(),
            profile: default_profile(),
            profiles_dir: default_profiles_dir(),
            class: ModemClass::Class1,
            local_id: "this id is far too long for T.30".into(),
            rings: 0,
            role: ModemRole::Both,
            max_rate: 1234,
            ecm: true,
            disable_ecm_after_retry: Some(1001),
            disable_v17_after_retry: None,
        });
        let keys: Vec<String> = validate(&c).into_iter().map(|(k, _)| k).collect();
        for k in [
            "gateway.domains.0",
            "dialplan.allow.0",
            "modem.0.device",
            "modem.0.local_id",
            "modem.0.rings",
            "modem.0.max_rate",
            "modem.0.disable_ecm_after_retry",
        ] {
            assert!(keys.iter().any(|x| x == k), "{k} missing from {keys:?}");
        }
    }

    #[test]
    fn console_off_loopback_needs_users_and_tls() {
        let mut c = Config::default();
        c.http.listen = vec![
            "127.0.0.1:8025".parse().unwrap(),
            "[::1]:8025".parse().unwrap(),
        ];
        assert!(validate(&c).is_empty(), "loopback needs nothing");
        c.http.listen.push("0.0.0.0:8443".parse().unwrap());
        let v = validate(&c);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].0, "http.listen.2");
        assert!(v[0].1.contains("users_file"), "{v:?}");
        // Users alone are not enough: a cookie or token in clear text on a LAN is no login.
        c.http.users_file = Some("/etc/faxgate/console-users".into());
        assert_eq!(validate(&c)[0].0, "http.listen.2");
        c.http.tls_cert = Some("/etc/faxgate/c.crt".into());
        let keys: Vec<String> = validate(&c).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["http.listen.2", "http.tls_key"]);
        c.http.tls_key = Some("/etc/faxgate/c.key".into());
        assert!(validate(&c).is_empty(), "{:?}", validate(&c));
        // A console that is off needs nothing.
        let mut off = Config::default();
        off.http.enabled = false;
        off.http.listen = vec!["0.0.0.0:80".parse().unwrap()];
        assert!(validate(&off).is_empty());
    }

    #[test]
    fn secrets_redacted() {
        let mut c = Config::default();
        c.relay.password = Some("hunter2-secret".into());
        let s = c.to_redacted_toml();
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains(REDACTED));
    }

    #[test]
    fn sip_line_loads_with_defaults_and_a_password_file() {
        let d = tempfile::tempdir().unwrap();
        let pw = write(&d, "sip.pw", "s3cret\nignored\n");
        let f = write(
            &d,
            "c.toml",
            &format!(
                "[[sip]]\nname = \"trunk\"\nregistrar = \"127.0.0.1:5070\"\nuser = \"fax\"\n\
                 password_file = \"{}\"\nlisten = \"127.0.0.1:5090\"\nlocal_id = \"+1 212 555 0100\"\n",
                pw.display()
            ),
        );
        let c = load(Some(&f), Vec::new()).unwrap().config;
        let s = &c.sips[0];
        assert_eq!(s.password().unwrap().as_deref(), Some("s3cret"));
        assert_eq!(s.auth_name(), "fax");
        assert_eq!(s.trunk(), Some("127.0.0.1:5070"));
        assert_eq!(s.transport, SipTransport::Udp);
        assert_eq!(s.role, ModemRole::Both);
        assert_eq!((s.t38_version, s.t38_max_bit_rate), (0, 14400));
        assert_eq!(s.media_ip(), std::net::IpAddr::from([127, 0, 0, 1]));
        assert_eq!(validate(&c), Vec::<(String, String)>::new());
        assert_eq!(unreadable_files(&c), Vec::<(String, String)>::new());
        std::fs::remove_file(&pw).unwrap();
        let missing: Vec<String> = unreadable_files(&c).into_iter().map(|(k, _)| k).collect();
        assert_eq!(missing, ["sip.0.password_file"]);
    }

    #[test]
    fn sip_validation_names_each_key() {
        let d = tempfile::tempdir().unwrap();
        let f = write(
            &d,
            "c.toml",
            "[[modem]]\nname = \"line\"\ndevice = \"/dev/ttyS0\"\n\n\
             [[sip]]\nname = \"line\"\nuser = \"a b\"\nregistrar = \"bad host:99999\"\n\
             listen = \"0.0.0.0:5060\"\nmedia_address = \"0.0.0.0\"\n\
             media_port_min = 20000\nmedia_port_max = 20003\nmax_calls = 3\n\
             t38_version = 4\nt38_max_bit_rate = 1000\nudptl_redundancy = 9\n\
             udptl_max_datagram = 100\nlocal_id = \"far far too long a station id\"\n\
             codecs = []\nregister_expires = \"10s\"\nreinvite_wait = \"2m\"\n\n\
             [[sip]]\nname = \"out\"\nuser = \"fax\"\nlisten = \"127.0.0.1:5060\"\n\
             media_port_min = 20002\nmedia_port_max = 20100\n",
        );
        let e = load(Some(&f), Vec::new()).unwrap_err();
        let keys: Vec<&str> = e.0.iter().map(|e| e.key.as_str()).collect();
        for k in [
            "sip.0.name",
            "sip.0.user",
            "sip.0.registrar",
            "sip.0.listen",
            "sip.0.media_address",
            "sip.0.media_port_max",
            "sip.0.t38_version",
            "sip.0.t38_max_bit_rate",
            "sip.0.udptl_redundancy",
            "sip.0.udptl_max_datagram",
            "sip.0.local_id",
            "sip.0.codecs",
            "sip.0.register_expires",
            "sip.0.reinvite_wait",
            // Sends without a trunk; its media ports overlap the first line's.
            "sip.1.proxy",
            "sip.1.media_port_min",
        ] {
            assert!(keys.contains(&k), "{k} missing in {keys:?}");
        }
        let f = write(
            &d,
            "t.toml",
            "[[sip]]\nname = \"x\"\nuser = \"u\"\nlisten = \"127.0.0.1:5060\"\n\
             transport = \"tls\"\n",
        );
        let e = load(Some(&f), Vec::new()).unwrap_err();
        assert_eq!(e.0[0].key, "sip.0.transport", "{e}");
    }

    #[test]
    fn sip_example_of_the_appliance_config_loads() {
        // The commented [[sip]] example in firmware-config/faxgate.toml, uncommented, is a
        // valid line: every key it documents exists and its values pass validation.
        let doc = include_str!("../firmware-config/faxgate.toml");
        let start = doc.find("# [[sip]]").expect("the [[sip]] example");
        let end = start + doc[start..].find("\n[loopback]").unwrap();
        let body: String = doc[start..end]
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| l.starts_with("[[") || l.contains(" = "))
            .filter(|l| !l.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
            .map(|l| format!("{l}\n"))
            .collect();
        let d = tempfile::tempdir().unwrap();
        let f = write(&d, "c.toml", &body);
        let c = load(Some(&f), Vec::new())
            .unwrap_or_else(|e| panic!("{e}\n{body}"))
            .config;
        assert_eq!(c.sips.len(), 1);
        assert_eq!(c.sips[0].name, "trunk");
        for key in [
            "registrar",
            "proxy",
            "user",
            "auth_user",
            "password_file",
            "listen",
            "transport",
            "media_address",
            "media_port_min",
            "media_port_max",
            "role",
            "max_calls",
            "allow_from",
            "register_expires",
            "reinvite_wait",
            "codecs",
            "t38_version",
            "t38_max_bit_rate",
            "udptl_redundancy",
            "udptl_max_datagram",
            "local_id",
            "ecm",
        ] {
            assert!(
                body.contains(&format!("\n{key} = ")),
                "{key} not documented"
            );
        }
    }

    #[test]
    fn sip_host_port_forms() {
        assert_eq!(
            sip_host_port("pbx.example"),
            Some(("pbx.example".into(), 5060))
        );
        assert_eq!(
            sip_host_port("127.0.0.1:5070"),
            Some(("127.0.0.1".into(), 5070))
        );
        assert_eq!(sip_host_port("[::1]:5080"), Some(("::1".into(), 5080)));
        assert_eq!(sip_host_port("[::1]"), Some(("::1".into(), 5060)));
        for bad in ["", "a b", "h:0", "h:x", "[::1", "[nothost]:5", "h:70000"] {
            assert_eq!(sip_host_port(bad), None, "{bad}");
        }
    }

    #[test]
    fn engine_options_from_a_modem_entry() {
        let m: Modem = toml::from_str(
            "name = 'fax0'\ndevice = '/dev/ttyS0'\nlocal_id = '+49 30 1234'\nmax_rate = 9600\necm = false\n",
        )
        .unwrap();
        let c = crate::fax::t30::EngineConfig::from(&m);
        assert_eq!(c.local_id, "+49 30 1234");
        assert_eq!(c.max_bps, 9600);
        assert!(!c.ecm);
        let d = crate::fax::t30::EngineConfig::default();
        assert_eq!(c.timers, d.timers);
        assert_eq!((c.max_ftt, c.max_coding), (d.max_ftt, d.max_coding));
    }

    #[test]
    fn fax_options_and_routes_load_and_bad_values_name_their_key() {
        let d = tempfile::tempdir().unwrap();
        let f = write(
            &d,
            "c.toml",
            "[fax_options]\necm = true\nmax_speed = 12000\ndisable_ecm_after_retry = 1\n\n\
             [[fax_route]]\nname = 'old-machines'\nnumbers = ['+4930*', '+1212555XXXX']\n\
             ecm = false\nmax_speed = 9600\n\n\
             [[modem]]\nname = 'fax0'\ndevice = '/dev/ttyS0'\ndisable_v17_after_retry = 2\n",
        );
        let c = load(Some(&f), Vec::new()).unwrap().config;
        assert_eq!(c.fax_options.max_speed, 12000);
        assert_eq!(c.fax_options.disable_ecm_after_retry, 1);
        assert_eq!(c.fax_options.disable_v17_after_retry, 0);
        assert_eq!(c.fax_routes.len(), 1);
        assert_eq!(c.fax_routes[0].ecm, Some(false));
        assert_eq!(c.fax_routes[0].max_speed, Some(9600));
        assert_eq!(c.fax_routes[0].disable_ecm_after_retry, None);
        assert_eq!(c.modems[0].disable_v17_after_retry, Some(2));
        assert_eq!(c.modems[0].disable_ecm_after_retry, None);

        let mut c = Config::default();
        c.fax_options.max_speed = 10000;
        c.fax_options.disable_v17_after_retry = 5000;
        let ok = FaxRoute {
            name: "a".into(),
            numbers: vec!["+1*".into()],
            ecm: Some(false),
            max_speed: None,
            disable_ecm_after_retry: None,
            disable_v17_after_retry: None,
        };
        c.fax_routes = vec![
            ok.clone(),
            FaxRoute {
                numbers: vec!["1212*".into()],
                max_speed: Some(14000),
                disable_ecm_after_retry: Some(1001),
                ..ok.clone()
            },
            FaxRoute {
                name: String::new(),
                numbers: Vec::new(),
                ecm: None,
                ..ok.clone()
            },
        ];
        let keys: Vec<String> = validate(&c).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "fax_options.max_speed",
                "fax_options.disable_v17_after_retry",
                "fax_route.1.name",
                "fax_route.1.numbers.0",
                "fax_route.1.max_speed",
                "fax_route.1.disable_ecm_after_retry",
                "fax_route.2.name",
                "fax_route.2.numbers",
                "fax_route.2.name",
            ]
        );
        let v = validate(&c);
        assert!(
            v[0].1.contains("10000 is not a T.30 signalling rate"),
            "{v:?}"
        );
        assert!(v[2].1.contains("`a` used twice"), "{v:?}");
        assert!(v[8].1.contains("sets no option"), "{v:?}");

        // An unknown key inside a fax route is named with its file line.
        let f = write(
            &d,
            "bad.toml",
            "[[fax_route]]\nname = 'x'\nnumbers = ['+1*']\nmax_sped = 9600\n",
        );
        let e = load(Some(&f), Vec::new()).unwrap_err();
        assert!(e.to_string().contains("max_sped"), "{e}");
        assert!(e.to_string().contains("fax_route"), "{e}");
    }

    #[test]
    fn number_patterns() {
        assert!(validate_number_pattern("+1212*", true).is_ok());
        assert!(validate_number_pattern("+1XXX976*", true).is_ok());
        assert!(validate_number_pattern("1212", true).is_err());
        assert!(validate_number_pattern("+12a", true).is_err());
        assert!(validate_number_pattern("+1*2", true).is_err());
        assert!(validate_number_pattern("555*", false).is_ok());
    }
}
