//! Who may use the console and the API, and what they may do.
//!
//! - **Users file** (`[http] users_file`): the SMTP AUTH users file format
//!   (`user:$argon2id$…`, see [`crate::smtp::auth`]) plus a role and an optional scope:
//!   `user:$argon2id$…:admin` or `user:$argon2id$…:viewer:+12125550142,route=sales`. `admin`
//!   may cancel, retry, purge, re-deliver and send; `viewer` may look (and send, within its
//!   scope: sending is what a fax user does). A scope limits the user to the fax numbers
//!   (E.164, `+` first) and onramp routes named; no scope is everything.
//! - **Sessions**: a random 256-bit id in a cookie (`HttpOnly`, `SameSite=Strict`, `Secure`
//!   under TLS), kept in memory only (a restart logs everyone out), expiring after
//!   `session_idle` without use; each has its own CSRF token that every form posts back.
//! - **API tokens** (`faxgate token create USER`): random 256-bit secrets shown once; the
//!   tokens file keeps `user:sha256-hex` lines only (a high-entropy secret needs no slow hash).
//! - **Open mode**: no users file and loopback only (config validation refuses the rest): every
//!   request acts as the local admin, as `faxgate queue` on the same box does.
//!
//! Parsing and checks are pure; only the `load` functions read files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::smtp::auth::{MAX_USERS_FILE, Users};

/// Sessions kept at most; the least recently used goes first past it (bounds memory).
pub const MAX_SESSIONS: usize = 1000;
/// Tokens file larger than this is refused (ours).
pub const MAX_TOKENS_FILE: u64 = 1024 * 1024;
/// Cookie that carries the session id.
pub const SESSION_COOKIE: &str = "faxgate_session";

/// A users or tokens file problem: the operator's to fix.
#[derive(Debug, Error)]
pub enum AccessError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Over the size limit.
    #[error("{0}: larger than 1 MiB")]
    TooLarge(PathBuf),
    /// A line is malformed.
    #[error("{file} line {line}: {why}")]
    Line {
        /// Which file.
        file: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Look, and send within the scope.
    Viewer,
    /// Everything: cancel, retry, purge, re-deliver too.
    Admin,
}

impl Role {
    /// The word in the users file and on the pages.
    pub fn word(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Admin => "admin",
        }
    }
}

/// The fax numbers and routes a user is limited to; empty lists mean no limit of that kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// E.164 numbers, `+` first.
    pub numbers: Vec<String>,
    /// Onramp route names.
    pub routes: Vec<String>,
}

impl Scope {
    /// True when nothing is limited.
    pub fn is_all(&self) -> bool {
        self.numbers.is_empty() && self.routes.is_empty()
    }

    /// May the user send to or see faxes for `e164`?
    pub fn number(&self, e164: &str) -> bool {
        self.is_all() || self.numbers.iter().any(|n| n == e164)
    }

    /// May the user see faxes received on route `name`?
    pub fn route(&self, name: &str) -> bool {
        self.is_all() || self.routes.iter().any(|r| r == name)
    }

    fn parse(text: &str) -> Result<Scope, String> {
        let mut s = Scope::default();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            if let Some(r) = item.strip_prefix("route=") {
                if r.is_empty() || r.len() > 64 {
                    return Err(format!("bad route name `{r}`"));
                }
                s.routes.push(r.to_owned());
            } else if let Some(d) = item.strip_prefix('+')
                && !d.is_empty()
                && d.len() <= 15
                && d.bytes().all(|b| b.is_ascii_digit())
            {
                s.numbers.push(item.to_owned());
            } else {
                return Err(format!(
                    "scope item `{item}` is neither `+E.164` nor `route=NAME`"
                ));
            }
        }
        Ok(s)
    }
}

/// One console user (the password hash lives in [`ConsoleUsers`]' verifier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// What they may see and send to.
    pub scope: Scope,
}

/// The console users file, parsed.
#[derive(Debug, Clone, Default)]
pub struct ConsoleUsers {
    users: HashMap<String, User>,
    hashes: Users,
}

impl ConsoleUsers {
    /// Parses the file text (`file` names it in errors).
    pub fn parse(text: &str, file: &Path) -> Result<ConsoleUsers, AccessError> {
        let mut users = HashMap::new();
        let mut plain = String::new();
        for (i, raw) in text.lines().enumerate() {
            let bad = |why: String| AccessError::Line {
                file: file.to_path_buf(),
                line: i + 1,
                why,
            };
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                // Keeps the line numbers of the hash check equal to the file's.
                plain.push('\n');
                continue;
            }
            let mut f = line.splitn(4, ':');
            let (name, hash) = (f.next().unwrap_or_default(), f.next().unwrap_or_default());
            let role = match f.next() {
                Some("admin") => Role::Admin,
                Some("viewer") => Role::Viewer,
                Some(other) => {
                    return Err(bad(format!(
                        "role `{other}` is neither `admin` nor `viewer`"
                    )));
                }
                None => {
                    return Err(bad(
                        "expected `user:$argon2id$…:admin|viewer[:scope]`".into()
                    ));
                }
            };
            let scope = Scope::parse(f.next().unwrap_or_default()).map_err(bad)?;
            plain.push_str(name);
            plain.push(':');
            plain.push_str(hash);
            plain.push('\n');
            users.insert(
                name.to_owned(),
                User {
                    name: name.to_owned(),
                    role,
                    scope,
                },
            );
        }
        let hashes = Users::parse(&plain).map_err(|e| match e {
            crate::smtp::auth::UsersError::Line { line, why } => AccessError::Line {
                file: file.to_path_buf(),
                line,
                why,
            },
            other => AccessError::Line {
                file: file.to_path_buf(),
                line: 0,
                why: other.to_string(),
            },
        })?;
        Ok(ConsoleUsers { users, hashes })
    }

    /// Reads and parses the users file.
    pub fn load(path: &Path) -> Result<ConsoleUsers, AccessError> {
        let text = read_bounded(path, MAX_USERS_FILE)?;
        ConsoleUsers::parse(&text, path)
    }

    /// The user, when `password` is theirs (argon2: slow on purpose; run it off the async
    /// threads). An unknown name costs the same work as a known one.
    pub fn check(&self, name: &str, password: &str) -> Option<User> {
        if self.hashes.verify(name, password) {
            self.users.get(name).cloned()
        } else {
            None
        }
    }

    /// The user of that name (for tokens).
    pub fn get(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True when the file lists nobody.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

fn read_bounded(path: &Path, max: u64) -> Result<String, AccessError> {
    let io = |source| AccessError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > max {
        return Err(AccessError::TooLarge(path.to_path_buf()));
    }
    std::fs::read_to_string(path).map_err(io)
}

/// SHA-256 of a token, lower-case hex: what the tokens file keeps.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// `n` random bytes as lower-case hex (session ids, CSRF tokens, API tokens).
pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    // getrandom fails only without any entropy source; then nothing secret can be made and
    // a fixed value would be worse than stopping the request.
    getrandom::fill(&mut b).expect("the system has no random source");
    hex(&b)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The API tokens: hash → user name.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    by_hash: HashMap<String, String>,
}

impl Tokens {
    /// Parses `user:sha256hex` lines (`#` comments).
    pub fn parse(text: &str, file: &Path) -> Result<Tokens, AccessError> {
        let mut by_hash = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| AccessError::Line {
                file: file.to_path_buf(),
                line: i + 1,
                why: why.into(),
            };
            let Some((user, hash)) = line.split_once(':') else {
                return Err(bad("expected `user:sha256-hex`"));
            };
            if user.is_empty()
                || hash.len() != 64
                || !hash
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            {
                return Err(bad("expected `user:` and 64 lower-case hex digits"));
            }
            by_hash.insert(hash.to_owned(), user.to_owned());
        }
        Ok(Tokens { by_hash })
    }

    /// Reads the tokens file; a missing file is no tokens.
    pub fn load(path: &Path) -> Result<Tokens, AccessError> {
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Tokens::default()),
            _ => Tokens::parse(&read_bounded(path, MAX_TOKENS_FILE)?, path),
        }
    }

    /// The user a presented token belongs to.
    pub fn user_of(&self, token: &str) -> Option<&str> {
        if token.len() > 256 {
            return None;
        }
        self.by_hash.get(&token_hash(token)).map(String::as_str)
    }

    /// Creates a token for `user`, appends its hash to the file at `path` (created 0600) and
    /// returns the token, to be shown once.
    pub fn create(path: &Path, user: &str) -> Result<String, AccessError> {
        use std::io::Write as _;
        let token = format!("fgt_{}", random_hex(32));
        let io = |source| AccessError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::private_fs::create_dir_all(dir).map_err(io)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode_private()
            .open(path)
            .map_err(io)?;
        writeln!(f, "{user}:{}", token_hash(&token)).map_err(io)?;
        f.sync_all().map_err(io)?;
        Ok(token)
    }
}

trait PrivateMode {
    fn mode_private(&mut self) -> &mut Self;
}

impl PrivateMode for std::fs::OpenOptions {
    fn mode_private(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.mode(0o600)
    }
}

/// Who is asking, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    /// The user (`local` in open mode).
    pub user: User,
    /// How they proved it.
    pub via: Via,
}

/// How a request was authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// Open mode: loopback, no users file; the daemon's CSRF token for the pages' forms.
    Open {
        /// What forms must post back.
        csrf: String,
    },
    /// A session cookie; the session's CSRF token.
    Session {
        /// The session id (to log out).
        id: String,
        /// What forms must post back.
        csrf: String,
    },
    /// A bearer token (the API).
    Token,
}

impl Who {
    /// The local admin of open mode; `csrf` is the daemon's token for forms.
    pub fn open(csrf: &str) -> Who {
        Who {
            user: User {
                name: "local".into(),
                role: Role::Admin,
                scope: Scope::default(),
            },
            via: Via::Open { csrf: csrf.into() },
        }
    }

    /// The CSRF token the pages put in every form (`?csrf=` of the action, or the
    /// `X-CSRF-Token` header); empty for API tokens, which need none.
    pub fn csrf(&self) -> &str {
        match &self.via {
            Via::Open { csrf } | Via::Session { csrf, .. } => csrf,
            Via::Token => "",
        }
    }

    /// May change jobs (cancel, retry, purge, re-deliver).
    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }
}

struct Session {
    user: User,
    csrf: String,
    last_used: Instant,
}

/// The logged-in sessions, in memory. PURE: `now` is passed in.
#[derive(Default)]
pub struct Sessions {
    map: HashMap<String, Session>,
}

impl Sessions {
    /// Opens a session for `user`; returns its id and CSRF token.
    pub fn open(&mut self, user: User, now: Instant) -> (String, String) {
        if self.map.len() >= MAX_SESSIONS
            && let Some(oldest) = self
                .map
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone())
        {
            self.map.remove(&oldest);
        }
        let (id, csrf) = (random_hex(32), random_hex(32));
        self.map.insert(
            id.clone(),
            Session {
                user,
                csrf: csrf.clone(),
                last_used: now,
            },
        );
        (id, csrf)
    }

    /// The session's user and CSRF token, when it exists and was used within `idle`; touches it.
    pub fn get(&mut self, id: &str, now: Instant, idle: Duration) -> Option<Who> {
        let s = self.map.get_mut(id)?;
        if now.saturating_duration_since(s.last_used) > idle {
            self.map.remove(id);
            return None;
        }
        s.last_used = now;
        Some(Who {
            user: s.user.clone(),
            via: Via::Session {
                id: id.to_owned(),
                csrf: s.csrf.clone(),
            },
        })
    }

    /// Ends a session.
    pub fn close(&mut self, id: &str) {
        self.map.remove(id);
    }
}

/// Constant-time equality of two secrets (CSRF tokens).
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$Q4Z2Yl4Uq8CkU4L4Kx0nKQ";

    #[test]
    fn users_file_lines_carry_role_and_scope() {
        let text = format!(
            "# console\nann:{h}:admin\nvic:{h}:viewer:+12125550142, route=sales\n",
            h = crate::smtp::auth::hash_password("pw").unwrap()
        );
        let u = ConsoleUsers::parse(&text, Path::new("u")).unwrap();
        assert_eq!(u.len(), 2);
        assert_eq!(u.get("ann").unwrap().role, Role::Admin);
        let v = u.get("vic").unwrap();
        assert_eq!(v.role, Role::Viewer);
        assert!(v.scope.number("+12125550142") && !v.scope.number("+12125550143"));
        assert!(v.scope.route("sales") && !v.scope.route("default"));
        assert!(u.check("ann", "pw").is_some());
        assert!(u.check("ann", "nope").is_none());
        assert!(u.check("nobody", "pw").is_none());
    }

    #[test]
    fn users_file_errors_name_the_line() {
        for (text, want) in [
            (format!("a:{HASH}"), "line 1"),
            (format!("\na:{HASH}:root"), "line 2: role `root`"),
            (format!("a:{HASH}:viewer:12125550142"), "neither"),
            ("a:notahash:admin".to_string(), "line 1"),
        ] {
            let e = ConsoleUsers::parse(&text, Path::new("users")).unwrap_err();
            assert!(e.to_string().contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn tokens_are_kept_hashed_and_found_by_hash() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("tokens");
        let t = Tokens::create(&p, "ann").unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(!text.contains(&t), "the token itself is never stored");
        let tokens = Tokens::load(&p).unwrap();
        assert_eq!(tokens.user_of(&t), Some("ann"));
        assert_eq!(tokens.user_of("fgt_wrong"), None);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn sessions_expire_when_idle_and_are_bounded() {
        let mut s = Sessions::default();
        let t0 = Instant::now();
        let user = Who::open("x").user;
        let (id, csrf) = s.open(user.clone(), t0);
        let idle = Duration::from_secs(60);
        let who = s.get(&id, t0 + Duration::from_secs(59), idle).unwrap();
        assert_eq!(
            who.via,
            Via::Session {
                id: id.clone(),
                csrf
            }
        );
        // Used at 59 s: idle counts from then.
        assert!(s.get(&id, t0 + Duration::from_secs(118), idle).is_some());
        assert!(s.get(&id, t0 + Duration::from_secs(179), idle).is_none());
        for i in 0..MAX_SESSIONS + 5 {
            s.open(user.clone(), t0 + Duration::from_millis(i as u64));
        }
        assert_eq!(s.map.len(), MAX_SESSIONS);
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
