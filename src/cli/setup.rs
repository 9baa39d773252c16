//! `faxgate setup`: the first run on a new box (issue 19). Finds the fax modems (the same probe
//! as `faxgate modem probe`), asks for the mail domain, relay host and admin address, and writes
//! the configuration — the existing one (or the commented appliance config) with those keys
//! changed, comments kept — after showing the difference and only with a yes (`--force` when
//! scripted). The result is checked as `check-config` checks it before it replaces anything.
//!
//! The edit ([`apply`]) and the diff ([`diff`]) are pure; this file's shell does the prompts,
//! the probing and the file writes.

use std::fmt::Write as _;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use toml_edit::{DocumentMut, Item, Table, value};

use crate::fax::modem::port::Modem;
use crate::fax::modem::profile::Profile;

/// Where `setup` writes when `--config` is not given: the file the systemd unit runs with.
pub const DEFAULT_CONFIG: &str = "/etc/faxgate/faxgate.toml";

/// Device name patterns probed when no `--device` is given: USB CDC ACM and USB serial
/// adapters (where fax modems are today) and the udev rules' stable names. On-board UARTs
/// (`ttyS*`) are left out: a PC has dozens, mostly without hardware, each costing a timeout.
const PROBE_PREFIXES: &[&str] = &["ttyACM", "ttyUSB", "faxmodem"];

/// At most this many devices are probed: each takes up to the modem's AT timeouts.
const MAX_PROBED: usize = 16;

/// Longest answer read from standard input: a domain, address or host name is far shorter.
const MAX_ANSWER_BYTES: u64 = 4096;

/// Largest existing config file setup reads and edits (ours is ~20 KiB).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Longest file [`diff`] compares line by line (its table is lines × lines); our config is
/// ~350 lines.
const MAX_DIFF_LINES: usize = 4000;

/// `faxgate setup` flags: each answers one question; `--yes` takes them (and the defaults)
/// without asking.
#[derive(clap::Args, Debug, Clone)]
pub struct SetupArgs {
    /// Do not ask: take the answers from the flags and the defaults.
    #[arg(long)]
    pub yes: bool,
    /// Replace an existing, different config file (scripted runs; interactive runs ask).
    #[arg(long)]
    pub force: bool,
    /// Mail domain served: faxes are sent to FAX=+NUMBER@DOMAIN.
    #[arg(long, value_name = "DOMAIN")]
    pub mail_domain: Option<String>,
    /// Mail relay for received faxes and reports: HOST or HOST:PORT.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub relay: Option<String>,
    /// TLS towards the relay: none, opportunistic, starttls or tls.
    #[arg(long, value_name = "MODE", value_parser = ["none", "opportunistic", "starttls", "tls"])]
    pub relay_security: Option<String>,
    /// Operator mailbox (reports, dead letters); its domain becomes the allowed senders.
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<String>,
    /// This box's DNS name (default: the system's host name).
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// Serial device to probe (repeatable; default: /dev/ttyACM*, /dev/ttyUSB*, /dev/faxmodem*).
    #[arg(long = "device", value_name = "DEV")]
    pub devices: Vec<PathBuf>,
    /// Modem profile for the modems found (a file PROFILES_DIR/NAME.toml).
    #[arg(long, value_name = "NAME", default_value = "generic-class1")]
    pub profile: String,
    /// Directory of the modem profiles.
    #[arg(long, value_name = "DIR", default_value = "/etc/faxgate/modems")]
    pub profiles_dir: PathBuf,
    /// Station ID sent as TSI/CSI (the fax number, e.g. "+1 212 555 0100").
    #[arg(long, value_name = "ID")]
    pub local_id: Option<String>,
    /// SMTP listen address (repeatable; default: as in the existing config).
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<String>,
    /// Spool directory (default: as in the existing config).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// The answers, whichever way they were given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answers {
    /// `gateway.hostname`.
    pub hostname: String,
    /// `gateway.domains` (one).
    pub domain: String,
    /// `gateway.admin`.
    pub admin: String,
    /// `relay.host`.
    pub relay_host: String,
    /// `relay.port`, when given.
    pub relay_port: Option<u16>,
    /// `relay.security`, when given.
    pub relay_security: Option<String>,
    /// One `[[modem]]` per device.
    pub modems: Vec<PathBuf>,
    /// Their profile name.
    pub profile: String,
    /// Their profile directory.
    pub profiles_dir: PathBuf,
    /// Their station ID.
    pub local_id: String,
    /// `smtp.listen`, when given.
    pub listen: Vec<String>,
    /// `gateway.data_dir`, when given.
    pub data_dir: Option<PathBuf>,
}

/// Why setup stopped.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The existing config is not TOML: setup does not guess at it.
    #[error("{path} is not valid TOML ({message}); fix or move it, then run setup again")]
    BaseNotToml {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// An answer is unusable.
    #[error("{what}: {message}")]
    Answer {
        /// Which answer.
        what: &'static str,
        /// Why.
        message: String,
    },
    /// No answer could be read (standard input closed).
    #[error("no answer for {0} (standard input closed; use --yes with flags to script setup)")]
    NoAnswer(&'static str),
    /// Reading, writing or checking a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Host and optional port from `HOST` or `HOST:PORT` (`[v6]:PORT` for IPv6).
pub fn parse_relay(s: &str) -> Result<(String, Option<u16>), SetupError> {
    let bad = |m: &str| SetupError::Answer {
        what: "relay",
        message: m.into(),
    };
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        (h, after.strip_prefix(':'))
    } else if s.matches(':').count() == 1 {
        let (h, p) = s.split_once(':').unwrap_or((s, ""));
        (h, Some(p))
    } else {
        (s, None)
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(bad("expected HOST or HOST:PORT"));
    }
    let port = match port {
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| bad("bad port"))?,
        ),
        None => None,
    };
    Ok((host.to_string(), port))
}

/// The domain of a mail address `local@domain`.
fn domain_of(addr: &str) -> Option<&str> {
    let (l, d) = addr.rsplit_once('@')?;
    (!l.is_empty() && !d.is_empty() && !d.contains(char::is_whitespace)).then_some(d)
}

/// `base` (a config file's text) with the answers applied, comments and the other keys kept;
/// and the notes for the operator (file-valued keys dropped because their file does not exist
/// yet). `exists` says whether a file is there (a parameter, so that this stays pure).
pub fn apply(
    base: &str,
    a: &Answers,
    exists: &dyn Fn(&Path) -> bool,
) -> Result<(String, Vec<String>), SetupError> {
    let mut doc: DocumentMut =
        base.parse()
            .map_err(|e: toml_edit::TomlError| SetupError::BaseNotToml {
                path: "base".into(),
                message: e.message().to_string(),
            })?;
    let admin_domain = domain_of(&a.admin).ok_or_else(|| SetupError::Answer {
        what: "admin",
        message: format!("{:?} is not a mail address (user@domain)", a.admin),
    })?;
    if a.domain.is_empty() || a.domain.contains(['@', ' ', '/']) {
        return Err(SetupError::Answer {
            what: "mail domain",
            message: format!("{:?} is not a domain name", a.domain),
        });
    }
    let mut notes = Vec::new();
    let table = |doc: &mut DocumentMut, name: &str| -> Table {
        match doc.remove(name) {
            Some(Item::Table(t)) => t,
            _ => Table::new(),
        }
    };

    let mut gw = table(&mut doc, "gateway");
    gw["hostname"] = value(a.hostname.as_str());
    gw["domains"] = value(toml_edit::Array::from_iter([a.domain.as_str()]));
    gw["admin"] = value(a.admin.as_str());
    if let Some(d) = &a.data_dir {
        gw["data_dir"] = value(d.display().to_string());
    }
    doc.insert("gateway", Item::Table(gw));

    let mut smtp = table(&mut doc, "smtp");
    smtp["allowed_senders"] = value(toml_edit::Array::from_iter([format!("@{admin_domain}")]));
    if !a.listen.is_empty() {
        smtp["listen"] = value(toml_edit::Array::from_iter(
            a.listen.iter().map(String::as_str),
        ));
    }
    for (keys, what) in [
        (&["users_file"][..], "SMTP AUTH users"),
        (&["tls_cert", "tls_key"][..], "STARTTLS"),
    ] {
        drop_missing(&mut smtp, "smtp", keys, what, exists, &mut notes);
    }
    doc.insert("smtp", Item::Table(smtp));

    let mut relay = table(&mut doc, "relay");
    relay["mode"] = value("smtp");
    relay["host"] = value(a.relay_host.as_str());
    if let Some(p) = a.relay_port {
        relay["port"] = value(i64::from(p));
    }
    if let Some(s) = &a.relay_security {
        relay["security"] = value(s.as_str());
    }
    let had_password = relay.contains_key("password_file");
    drop_missing(
        &mut relay,
        "relay",
        &["password_file"],
        "relay AUTH",
        exists,
        &mut notes,
    );
    if had_password && !relay.contains_key("password_file") {
        relay.remove("username");
    }
    doc.insert("relay", Item::Table(relay));

    // One [[modem]] per device, each a copy of the first existing one (its rings, role, class…)
    // with the answers set.
    let model = match doc.get("modem") {
        Some(Item::ArrayOfTables(arr)) => arr.get(0).cloned().unwrap_or_default(),
        _ => Table::new(),
    };
    let mut modems = toml_edit::ArrayOfTables::new();
    for (i, dev) in a.modems.iter().enumerate() {
        let mut m = model.clone();
        m["name"] = value(format!("line{}", i + 1));
        m["device"] = value(dev.display().to_string());
        m["profile"] = value(a.profile.as_str());
        m["profiles_dir"] = value(a.profiles_dir.display().to_string());
        m["local_id"] = value(a.local_id.as_str());
        if i > 0 {
            m.decor_mut().clear();
        }
        modems.push(m);
    }
    doc.remove("modem");
    if modems.is_empty() {
        notes.push(
            "no fax modem found: add a [[modem]] section (see faxgate.toml(5)) and run \
             `faxgate check-config`"
                .into(),
        );
    } else {
        doc.insert("modem", Item::ArrayOfTables(modems));
    }
    Ok((doc.to_string(), notes))
}

/// Removes `keys` from `t` when the file the first names does not exist, with a note.
fn drop_missing(
    t: &mut Table,
    section: &str,
    keys: &[&str],
    what: &str,
    exists: &dyn Fn(&Path) -> bool,
    notes: &mut Vec<String>,
) {
    let Some(path) = t.get(keys[0]).and_then(Item::as_str).map(str::to_string) else {
        return;
    };
    if exists(Path::new(&path)) {
        return;
    }
    for k in keys {
        t.remove(k);
    }
    notes.push(format!(
        "{what} is off: {path} does not exist; create it, then set {section}.{} again",
        keys[0]
    ));
}

/// A line diff of `old` and `new` (longest common subsequence): `-`/`+` lines with their line
/// numbers; empty when equal. Files past [`MAX_DIFF_LINES`] are reported as changed whole.
pub fn diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let mut out = String::new();
    if a == b {
        return out;
    }
    if a.len() > MAX_DIFF_LINES || b.len() > MAX_DIFF_LINES {
        let _ = writeln!(
            out,
            "(replaced whole: {} lines -> {} lines)",
            a.len(),
            b.len()
        );
        return out;
    }
    // lcs[i][j]: length of the LCS of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] > lcs[i + 1][j]) {
            let _ = writeln!(out, "+{:>4} {}", j + 1, b[j]);
            j += 1;
        } else {
            let _ = writeln!(out, "-{:>4} {}", i + 1, a[i]);
            i += 1;
        }
    }
    out
}

/// Serial devices to probe: `/dev` entries named by [`PROBE_PREFIXES`], sorted, bounded.
fn candidate_devices() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir("/dev")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            PROBE_PREFIXES.iter().any(|p| n.starts_with(p))
        })
        .map(|e| e.path())
        .collect();
    v.sort();
    v.truncate(MAX_PROBED);
    v
}

/// The profile `name` from `dir` (the built-in generic Class 1 profile when the file is absent
/// and the name is the default one).
fn load_profile(dir: &Path, name: &str) -> Result<Profile, String> {
    let file = dir.join(format!("{name}.toml"));
    match Profile::load(&file) {
        Ok(p) => Ok(p),
        Err(_) if name == "generic-class1" && !file.exists() => Ok(Profile::default()),
        Err(e) => Err(super::chain(&e)),
    }
}

/// Probes `dev`: `Ok(identity)` for a Class 1 fax modem, else why not.
fn probe(dev: &Path, profile: &Profile) -> Result<String, String> {
    let mut m = Modem::open(dev, profile.clone()).map_err(|e| super::chain(&e))?;
    m.init().map_err(|e| super::chain(&e))?;
    let info = m.probe().map_err(|e| super::chain(&e))?;
    if info.class1() {
        Ok(info.identity)
    } else {
        Err(format!(
            "not a Class 1 fax modem (classes {})",
            info.classes.join(",")
        ))
    }
}

/// The prompts: questions on `out`, answers from `input`.
struct Ask<'a> {
    input: &'a mut dyn BufRead,
    out: &'a mut dyn Write,
    interactive: bool,
}

impl Ask<'_> {
    /// The flag's value if given; else (interactive) the typed answer, `default` on an empty
    /// line; else (`--yes`) the default.
    fn ask(
        &mut self,
        what: &'static str,
        given: Option<String>,
        default: Option<String>,
    ) -> Result<String, SetupError> {
        if let Some(v) = given {
            return Ok(v);
        }
        if !self.interactive {
            return default.ok_or(SetupError::Answer {
                what,
                message: "required with --yes (no default)".into(),
            });
        }
        // Bounded: a closed input or a run of empty answers without a default ends it.
        for _ in 0..5 {
            let _ = match &default {
                Some(d) => write!(self.out, "{what} [{d}]: "),
                None => write!(self.out, "{what}: "),
            };
            let _ = self.out.flush();
            let mut line = String::new();
            let n = read_answer(self.input, &mut line).map_err(|source| SetupError::Io {
                path: "standard input".into(),
                source,
            })?;
            if n == 0 {
                return Err(SetupError::NoAnswer(what));
            }
            let line = line.trim();
            if !line.is_empty() {
                return Ok(line.to_string());
            }
            if let Some(d) = &default {
                return Ok(d.clone());
            }
        }
        Err(SetupError::NoAnswer(what))
    }

    /// A yes/no question; `--yes` answers `yes_default`.
    fn confirm(&mut self, q: &str, yes_default: bool) -> Result<bool, SetupError> {
        if !self.interactive {
            return Ok(yes_default);
        }
        let _ = write!(
            self.out,
            "{q} [{}] ",
            if yes_default { "Y/n" } else { "y/N" }
        );
        let _ = self.out.flush();
        let mut line = String::new();
        let n = read_answer(self.input, &mut line).map_err(|source| SetupError::Io {
            path: "standard input".into(),
            source,
        })?;
        if n == 0 {
            return Err(SetupError::NoAnswer("confirmation"));
        }
        Ok(match line.trim().to_ascii_lowercase().as_str() {
            "" => yes_default,
            s => s == "y" || s == "yes",
        })
    }
}

/// One answer line, at most [`MAX_ANSWER_BYTES`] of it (the rest of an overlong line is
/// read as the next answer, and fails there as any wrong answer does).
fn read_answer(input: &mut dyn BufRead, line: &mut String) -> std::io::Result<usize> {
    use std::io::Read as _;
    input.take(MAX_ANSWER_BYTES).read_line(line)
}

/// A string value of `section.key` in `doc`, unless it is one of the shipped examples.
fn existing(doc: Option<&DocumentMut>, section: &str, key: &str) -> Option<String> {
    let item = doc?.get(section)?.get(key)?;
    let s = match item.as_array() {
        Some(a) => a.get(0)?.as_str()?,
        None => item.as_str()?,
    };
    (!s.contains("example.")).then(|| s.to_string())
}

/// The system's host name (the default for `gateway.hostname`).
fn system_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// `faxgate setup`.
pub fn main(config: Option<&Path>, args: &SetupArgs) -> ExitCode {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut stdout = std::io::stdout();
    match run(config, args, &mut input, &mut stdout) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("faxgate setup: {}", super::chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(
    config: Option<&Path>,
    args: &SetupArgs,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<ExitCode, SetupError> {
    let path = config.unwrap_or(Path::new(DEFAULT_CONFIG)).to_path_buf();
    let io = |path: &Path| {
        let p = path.display().to_string();
        move |source| SetupError::Io { path: p, source }
    };
    let too_big = std::fs::metadata(&path).is_ok_and(|m| m.len() > MAX_CONFIG_BYTES);
    if too_big {
        return Err(SetupError::Answer {
            what: "config",
            message: format!(
                "{} is larger than {MAX_CONFIG_BYTES} bytes: not a faxgate config",
                path.display()
            ),
        });
    }
    let old = match std::fs::read_to_string(&path) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(&path)(e)),
    };
    let base = old.as_deref().unwrap_or(super::docs::FIRMWARE_CONFIG);
    let base_doc: DocumentMut =
        base.parse()
            .map_err(|e: toml_edit::TomlError| SetupError::BaseNotToml {
                path: path.display().to_string(),
                message: e.message().to_string(),
            })?;
    let mut ask = Ask {
        input,
        out,
        interactive: !args.yes,
    };

    // 1. The modems.
    let profile =
        load_profile(&args.profiles_dir, &args.profile).map_err(|m| SetupError::Answer {
            what: "profile",
            message: m,
        })?;
    let devices = if args.devices.is_empty() {
        candidate_devices()
    } else {
        args.devices.clone()
    };
    let mut modems = Vec::new();
    for dev in devices.iter().take(MAX_PROBED) {
        let _ = write!(ask.out, "probing {} … ", dev.display());
        let _ = ask.out.flush();
        match probe(dev, &profile) {
            Ok(identity) => {
                let _ = writeln!(ask.out, "fax modem: {identity}");
                if ask.confirm(&format!("use {}?", dev.display()), true)? {
                    modems.push(dev.clone());
                }
            }
            Err(why) => {
                let _ = writeln!(ask.out, "no ({why})");
            }
        }
    }

    // 2. The questions.
    let domain = ask.ask(
        "mail domain (faxes go to FAX=+NUMBER@DOMAIN)",
        args.mail_domain.clone(),
        existing(Some(&base_doc), "gateway", "domains"),
    )?;
    let relay = ask.ask(
        "mail relay host[:port]",
        args.relay.clone(),
        existing(Some(&base_doc), "relay", "host"),
    )?;
    let (relay_host, relay_port) = parse_relay(&relay)?;
    let admin = ask.ask(
        "admin address",
        args.admin.clone(),
        existing(Some(&base_doc), "gateway", "admin"),
    )?;
    let hostname = args.hostname.clone().unwrap_or_else(system_hostname);
    let answers = Answers {
        hostname,
        domain,
        admin,
        relay_host,
        relay_port,
        relay_security: args.relay_security.clone(),
        modems,
        profile: args.profile.clone(),
        profiles_dir: args.profiles_dir.clone(),
        local_id: args.local_id.clone().unwrap_or_default(),
        listen: args.listen.clone(),
        data_dir: args.data_dir.clone(),
    };
    let (new, notes) = apply(base, &answers, &|p| p.exists())?;

    // 3. Checked as check-config checks it, before anything is replaced.
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.setup-new",
        path.file_name()
            .map_or("faxgate.toml".into(), |n| n.to_string_lossy())
    ));
    std::fs::write(&tmp, &new).map_err(io(&tmp))?;
    if let Err(errs) = crate::config::load(Some(&tmp), std::env::vars()) {
        let _ = std::fs::remove_file(&tmp);
        let _ = writeln!(ask.out, "the new configuration is not valid:\n{errs}");
        return Ok(ExitCode::FAILURE);
    }

    // 4. Shown, and written only with a yes.
    let changes = match &old {
        Some(old) => diff(old, &new),
        None => String::new(),
    };
    if old.is_some() && changes.is_empty() {
        let _ = std::fs::remove_file(&tmp);
        let _ = writeln!(ask.out, "{} is already this configuration.", path.display());
    } else {
        if old.is_some() {
            let _ = writeln!(ask.out, "changes to {}:\n{changes}", path.display());
        }
        let write = if old.is_some() && !args.force {
            if args.yes {
                let _ = std::fs::remove_file(&tmp);
                let _ = writeln!(
                    ask.out,
                    "{} exists and differs: not replaced (use --force)",
                    path.display()
                );
                return Ok(ExitCode::FAILURE);
            }
            ask.confirm(&format!("replace {}?", path.display()), false)?
        } else {
            true
        };
        if !write {
            let _ = std::fs::remove_file(&tmp);
            let _ = writeln!(ask.out, "nothing written.");
            return Ok(ExitCode::FAILURE);
        }
        settle_owner(&tmp, &path, dir);
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        let _ = writeln!(ask.out, "wrote {}", path.display());
    }

    // 5. What next.
    let _ = writeln!(ask.out, "\nnext steps:");
    for n in &notes {
        let _ = writeln!(ask.out, "  - {n}");
    }
    let _ = writeln!(
        ask.out,
        "  - check it any time: faxgate check-config {p}\n  \
         - start the service: systemctl enable --now faxgate (after a change: systemctl \
         restart faxgate)\n  \
         - watch it: faxgate status; journalctl -u faxgate\n  \
         - send a test fax: mail a PDF to FAX=+NUMBER@{d}",
        p = path.display(),
        d = answers.domain
    );
    Ok(ExitCode::SUCCESS)
}

/// Gives the new file the old one's mode and owner, or (new file) mode 0640 and the
/// directory's group, so that the service user (group `faxgate` on /etc/faxgate) can read it
/// and others cannot (it may name secrets' files). Best effort: a user writing their own file
/// keeps it.
fn settle_owner(tmp: &Path, path: &Path, dir: &Path) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let (mode, uid, gid) = match std::fs::metadata(path) {
        Ok(m) => (
            m.permissions().mode() & 0o7777,
            Some(m.uid()),
            Some(m.gid()),
        ),
        Err(_) => (0o640, None, std::fs::metadata(dir).ok().map(|m| m.gid())),
    };
    let _ = std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(mode));
    let _ = std::os::unix::fs::chown(tmp, uid, gid);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers() -> Answers {
        Answers {
            hostname: "fax1.site.test".into(),
            domain: "fax.site.test".into(),
            admin: "ops@site.test".into(),
            relay_host: "mail.site.test".into(),
            relay_port: Some(25),
            relay_security: Some("none".into()),
            modems: vec!["/dev/ttyACM0".into(), "/dev/ttyACM1".into()],
            profile: "usr5637".into(),
            profiles_dir: "/etc/faxgate/modems".into(),
            local_id: "+1 555 0100".into(),
            listen: vec![],
            data_dir: None,
        }
    }

    #[test]
    fn setup_sets_the_answers_and_keeps_the_comments() {
        let (new, notes) =
            apply(super::super::docs::FIRMWARE_CONFIG, &answers(), &|_| false).unwrap();
        let c: toml::Table = toml::from_str(&new).unwrap();
        assert_eq!(c["gateway"]["domains"][0].as_str(), Some("fax.site.test"));
        assert_eq!(c["gateway"]["admin"].as_str(), Some("ops@site.test"));
        assert_eq!(c["relay"]["host"].as_str(), Some("mail.site.test"));
        assert_eq!(c["relay"]["port"].as_integer(), Some(25));
        assert_eq!(c["smtp"]["allowed_senders"][0].as_str(), Some("@site.test"));
        let m = c["modem"].as_array().unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[1]["device"].as_str(), Some("/dev/ttyACM1"));
        assert_eq!(m[1]["name"].as_str(), Some("line2"));
        assert_eq!(m[1]["rings"].as_integer(), Some(2), "other keys copied");
        // Files that do not exist are not named (the daemon would fail on them).
        assert!(c["smtp"].get("users_file").is_none());
        assert!(c["smtp"].get("tls_cert").is_none());
        assert!(c["relay"].get("password_file").is_none());
        assert!(c["relay"].get("username").is_none());
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(new.contains("# Mail domains this gateway serves."));
        // Valid as check-config sees it.
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("faxgate.toml");
        std::fs::write(&f, &new).unwrap();
        crate::config::load(Some(&f), std::iter::empty()).unwrap();
    }

    #[test]
    fn setup_keeps_file_keys_whose_files_exist() {
        let (new, notes) =
            apply(super::super::docs::FIRMWARE_CONFIG, &answers(), &|_| true).unwrap();
        assert!(notes.is_empty());
        assert!(new.contains("users_file = \"/etc/faxgate/users\""));
        assert!(new.contains("username = \"faxgate\""));
    }

    #[test]
    fn setup_refuses_bad_answers() {
        let mut a = answers();
        a.admin = "nobody".into();
        assert!(matches!(
            apply("", &a, &|_| false),
            Err(SetupError::Answer { what: "admin", .. })
        ));
        let mut a = answers();
        a.domain = "a b".into();
        assert!(apply("", &a, &|_| false).is_err());
        assert!(matches!(
            apply("[x", &answers(), &|_| false),
            Err(SetupError::BaseNotToml { .. })
        ));
    }

    #[test]
    fn setup_relay_forms() {
        assert_eq!(parse_relay("mail.x").unwrap(), ("mail.x".into(), None));
        assert_eq!(
            parse_relay("mail.x:587").unwrap(),
            ("mail.x".into(), Some(587))
        );
        assert_eq!(parse_relay("[::1]:25").unwrap(), ("::1".into(), Some(25)));
        assert_eq!(parse_relay("::1").unwrap(), ("::1".into(), None));
        for bad in ["", ":25", "x:0", "x:99999", "a b", "[::1"] {
            assert!(parse_relay(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn setup_diff_shows_changed_lines_only() {
        assert_eq!(diff("a\nb\nc\n", "a\nb\nc\n"), "");
        assert_eq!(diff("a\nb\nc\n", "a\nB\nc\n"), "-   2 b\n+   2 B\n");
        assert_eq!(diff("", "x\n"), "+   1 x\n");
        let big = "x\n".repeat(MAX_DIFF_LINES + 1);
        assert!(diff(&big, "y\n").starts_with("(replaced whole"));
    }

    #[test]
    fn setup_asks_for_what_the_flags_leave_out() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("faxgate.toml");
        let args = SetupArgs {
            yes: false,
            force: false,
            mail_domain: None,
            relay: None,
            relay_security: None,
            admin: None,
            hostname: Some("h.test".into()),
            devices: vec![dir.path().join("no-such-tty")],
            profile: "generic-class1".into(),
            profiles_dir: dir.path().into(),
            local_id: None,
            listen: vec![],
            data_dir: Some(dir.path().join("data")),
        };
        // Domain, relay (an empty line first: no default, asked again), admin.
        let mut out = Vec::new();
        let answers = b"fax.site.test\n\nmail.site.test:587\nops@site.test\n";
        let code = run(Some(&f), &args, &mut &answers[..], &mut out).unwrap();
        let said = String::from_utf8(out).unwrap();
        assert_eq!(code, ExitCode::SUCCESS, "{said}");
        assert!(said.contains("no-such-tty … no ("), "{said}");
        assert!(said.contains("no fax modem found"), "{said}");
        let c: toml::Table = toml::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        assert_eq!(c["relay"]["host"].as_str(), Some("mail.site.test"));
        assert_eq!(c["relay"]["port"].as_integer(), Some(587));
        assert_eq!(c["gateway"]["admin"].as_str(), Some("ops@site.test"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&f).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o640,
            "may name secrets' files: not world-readable"
        );
        // An existing file far larger than any config is refused, not read.
        let big = dir.path().join("big.toml");
        std::fs::write(&big, vec![b'#'; MAX_CONFIG_BYTES as usize + 1]).unwrap();
        let e = run(Some(&big), &args, &mut &answers[..], &mut Vec::new());
        assert!(matches!(e, Err(SetupError::Answer { what: "config", .. })));
        // A closed input ends the questions with an error, never a loop.
        std::fs::remove_file(&f).unwrap();
        let e = run(
            Some(&f),
            &args,
            &mut &b"fax.site.test\n"[..],
            &mut Vec::new(),
        );
        assert!(matches!(e, Err(SetupError::NoAnswer(_))));
        assert!(!f.exists());
    }

    #[test]
    fn setup_never_overwrites_without_a_yes() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("faxgate.toml");
        std::fs::write(&f, "[gateway]\nadmin = \"a@b.test\"\n").unwrap();
        let args = SetupArgs {
            yes: false,
            force: false,
            mail_domain: Some("fax.site.test".into()),
            relay: Some("127.0.0.1:2525".into()),
            relay_security: Some("none".into()),
            admin: Some("ops@site.test".into()),
            hostname: Some("h.test".into()),
            devices: vec![dir.path().join("no-such-tty")],
            profile: "generic-class1".into(),
            profiles_dir: dir.path().into(),
            local_id: None,
            listen: vec!["127.0.0.1:2525".into()],
            data_dir: Some(dir.path().join("data")),
        };
        // Interactive, answering "n": nothing written.
        let mut out = Vec::new();
        let code = run(Some(&f), &args, &mut &b"n\n"[..], &mut out).unwrap();
        assert_eq!(code, ExitCode::FAILURE);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("+") && text.contains("fax.site.test"),
            "{text}"
        );
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            "[gateway]\nadmin = \"a@b.test\"\n"
        );
        // Scripted without --force: refused.
        let mut scripted = args.clone();
        scripted.yes = true;
        let code = run(Some(&f), &scripted, &mut &b""[..], &mut Vec::new()).unwrap();
        assert_eq!(code, ExitCode::FAILURE);
        assert!(
            std::fs::read_to_string(&f)
                .unwrap()
                .starts_with("[gateway]\nadmin = \"a@b")
        );
        // With --force: written, valid, and no temporary file left.
        scripted.force = true;
        let code = run(Some(&f), &scripted, &mut &b""[..], &mut Vec::new()).unwrap();
        assert_eq!(code, ExitCode::SUCCESS);
        let new = std::fs::read_to_string(&f).unwrap();
        assert!(new.contains("fax.site.test"));
        crate::config::load(Some(&f), std::iter::empty()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
