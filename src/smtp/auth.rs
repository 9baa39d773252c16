//! SMTP AUTH credentials and the failed-AUTH rate limit.
//!
//! Owns the users file format (`user:$argon2id$v=19$m=…,t=…,p=…$salt$hash`, one per line, `#`
//! comments; PHC strings as written by the `argon2` crate or `argon2(1)`), password checking
//! (slow salted hashes, so a stolen file does not give the passwords away), and
//! [`AuthLimiter`], which locks out a client address after repeated failures. Parsing and the
//! limiter are pure (time is an input); only [`Users::load`] reads a file.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use thiserror::Error;

/// Users file larger than this is refused (ours: thousands of users fit easily).
pub const MAX_USERS_FILE: u64 = 1024 * 1024;
/// Longest user name accepted (ours).
pub const MAX_USER: usize = 255;
/// Longest password checked (ours: bounds the hashing work a client can ask for).
pub const MAX_PASSWORD: usize = 1024;

/// A users file problem: the operator's to fix.
#[derive(Debug, Error)]
pub enum UsersError {
    /// The file could not be read.
    #[error("users file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Over [`MAX_USERS_FILE`].
    #[error("users file {0}: larger than 1 MiB")]
    TooLarge(PathBuf),
    /// A line is malformed.
    #[error("users file line {line}: {why}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
}

/// The users allowed to AUTH, with their PHC password hashes.
#[derive(Debug, Clone, Default)]
pub struct Users {
    hashes: HashMap<String, String>,
}

impl Users {
    /// Parses the users file text. Every hash must be an argon2 PHC string.
    pub fn parse(text: &str) -> Result<Users, UsersError> {
        let mut hashes = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            let bad = |why: &str| UsersError::Line {
                line: i + 1,
                why: why.into(),
            };
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((user, hash)) = line.split_once(':') else {
                return Err(bad("expected `user:$argon2id$…`"));
            };
            if user.is_empty() || user.len() > MAX_USER || user.contains(char::is_whitespace) {
                return Err(bad("bad user name"));
            }
            match PasswordHash::new(hash) {
                Ok(h) if h.algorithm.as_str().starts_with("argon2") => {}
                Ok(_) => return Err(bad("not an argon2 hash")),
                Err(e) => return Err(bad(&format!("not a PHC hash string: {e}"))),
            }
            if hashes.insert(user.to_owned(), hash.to_owned()).is_some() {
                return Err(bad("user listed twice"));
            }
        }
        Ok(Users { hashes })
    }

    /// Reads and parses a users file.
    pub fn load(path: &Path) -> Result<Users, UsersError> {
        let read = |source| UsersError::Read {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read)?;
        if meta.len() > MAX_USERS_FILE {
            return Err(UsersError::TooLarge(path.to_path_buf()));
        }
        Users::parse(&std::fs::read_to_string(path).map_err(read)?)
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// True when no user is configured.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Checks a password (slow on purpose: argon2). An unknown user costs the same work as a
    /// known one, so timing does not tell which user names exist.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        if password.len() > MAX_PASSWORD || user.len() > MAX_USER {
            return false;
        }
        let (hash, known) = match self.hashes.get(user) {
            Some(h) => (h.as_str(), true),
            None => match self.hashes.values().next() {
                Some(h) => (h.as_str(), false),
                None => return false,
            },
        };
        let Ok(parsed) = PasswordHash::new(hash) else {
            return false;
        };
        let ok = argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        ok && known
    }
}

/// A PHC string for `password` with argon2id and the crate's default (OWASP) parameters and a
/// fresh random salt: one users-file line is `user:` followed by this.
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no random salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// `faxgate hash-password USER`: reads the password from the first line of standard input
/// (so it never appears in `ps` or shell history) and prints the users-file line.
pub fn hash_password_cli(user: &str) -> Result<String, String> {
    if user.is_empty() || user.len() > MAX_USER || user.contains([':', ' ', '\t', '\n']) {
        return Err("bad user name (no `:` or spaces)".into());
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    let pw = line.trim_end_matches(['\r', '\n']);
    if pw.is_empty() {
        return Err("empty password".into());
    }
    Ok(format!("{user}:{}", hash_password(pw)?))
}

/// The `faxgate hash-password` command: prints the line, or the error on stderr.
pub fn hash_password_main(user: &str) -> std::process::ExitCode {
    match hash_password_cli(user) {
        Ok(line) => {
            println!("{line}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("faxgate: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Failed AUTH attempts from one address within [`AuthLimiter::WINDOW`] before it is locked out
/// (ours; RFC 4954 §4 asks servers to limit guessing without fixing numbers).
pub const LOCKOUT_FAILURES: usize = 10;

/// Per-client-address failed-AUTH counter. PURE: `now` is passed in.
#[derive(Debug, Default)]
pub struct AuthLimiter {
    failures: HashMap<IpAddr, Vec<Instant>>,
}

impl AuthLimiter {
    /// Failures older than this are forgotten (ours).
    pub const WINDOW: Duration = Duration::from_secs(600);
    /// Addresses tracked at most; the oldest are dropped past it (bounds memory under attack).
    pub const MAX_TRACKED: usize = 10_000;

    /// True when `ip` may try to authenticate now.
    pub fn allowed(&mut self, ip: IpAddr, now: Instant) -> bool {
        match self.failures.get_mut(&ip) {
            Some(v) => {
                v.retain(|t| now.saturating_duration_since(*t) < Self::WINDOW);
                v.len() < LOCKOUT_FAILURES
            }
            None => true,
        }
    }

    /// Records a failed attempt by `ip`.
    pub fn failed(&mut self, ip: IpAddr, now: Instant) {
        if self.failures.len() >= Self::MAX_TRACKED && !self.failures.contains_key(&ip) {
            self.failures.retain(|_, v| {
                v.retain(|t| now.saturating_duration_since(*t) < Self::WINDOW);
                !v.is_empty()
            });
            if self.failures.len() >= Self::MAX_TRACKED {
                // Still full of recent attackers: forget one arbitrary entry.
                if let Some(k) = self.failures.keys().next().copied() {
                    self.failures.remove(&k);
                }
            }
        }
        let v = self.failures.entry(ip).or_default();
        v.push(now);
        if v.len() > LOCKOUT_FAILURES {
            v.remove(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, SaltString};

    fn hash(p: &str) -> String {
        // Small parameters keep the test fast; verification reads them from the PHC string.
        let a = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(1024, 1, 1, None).unwrap(),
        );
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).unwrap();
        a.hash_password(p.as_bytes(), &SaltString::encode_b64(&salt).unwrap())
            .unwrap()
            .to_string()
    }

    #[test]
    fn users_file_parse_and_verify() {
        let text = format!(
            "# faxgate users\n\nalice:{}\nbob:{}\n",
            hash("pw a"),
            hash("pw b")
        );
        let u = Users::parse(&text).unwrap();
        assert_eq!(u.len(), 2);
        assert!(u.verify("alice", "pw a"));
        assert!(!u.verify("alice", "pw b"));
        assert!(u.verify("bob", "pw b"));
        assert!(!u.verify("carol", "pw a"));
        assert!(!u.verify("alice", &"x".repeat(2000)));
        for (bad, line) in [
            ("alice\n", 1),
            ("# c\nalice:plaintext\n", 2),
            ("alice:$pbkdf2-sha256$i=1000$c2FsdA$aGFzaA\n", 1),
        ] {
            match Users::parse(bad) {
                Err(UsersError::Line { line: l, .. }) => assert_eq!(l, line, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        let dup = format!("a:{h}\na:{h}\n", h = hash("x"));
        assert!(Users::parse(&dup).is_err());
    }

    #[test]
    fn limiter_locks_and_forgets() {
        let mut l = AuthLimiter::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..LOCKOUT_FAILURES {
            assert!(l.allowed(ip, t0), "attempt {i}");
            l.failed(ip, t0);
        }
        assert!(!l.allowed(ip, t0 + Duration::from_secs(1)));
        assert!(l.allowed("192.0.2.2".parse().unwrap(), t0));
        assert!(l.allowed(ip, t0 + AuthLimiter::WINDOW));
    }

    #[test]
    fn limiter_memory_bounded() {
        let mut l = AuthLimiter::default();
        let t0 = Instant::now();
        for i in 0..(AuthLimiter::MAX_TRACKED as u32 + 50) {
            l.failed(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert!(l.failures.len() <= AuthLimiter::MAX_TRACKED);
    }
}
