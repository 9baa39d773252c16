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

use argon2::password_hash::PasswordHash;
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
                Ok(h) if h.algorithm.as_str().starts_with("argon2") => {
                    match argon2::Params::try_from(&h) {
                        Ok(p) if p.m_cost() <= MAX_MEMORY_KIB => {}
                        Ok(_) => return Err(bad("argon2 memory cost over 256 MiB")),
                        Err(e) => return Err(bad(&format!("bad argon2 parameters: {e}"))),
                    }
                }
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
    /// known one, so timing does not tell which user names exist. Allocates argon2's memory
    /// for this call; the listener uses [`Users::verify_in`] with reused memory instead.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        self.verify_in(user, password, &mut Scratch::default())
    }

    /// [`Users::verify`] with argon2's working memory in `scratch`, grown to the hash's
    /// `m` parameter and kept for the next call: the memory of N reused scratch buffers is
    /// all that N concurrent checks ever hold (allocating 19 MiB per check left freed blocks
    /// in every allocator arena a blocking thread had touched).
    pub fn verify_in(&self, user: &str, password: &str, scratch: &mut Scratch) -> bool {
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
        verify_phc(hash, password.as_bytes(), scratch) && known
    }
}

/// Largest argon2 memory cost a users-file hash may ask for, KiB (ours): each concurrent
/// check holds this much.
pub const MAX_MEMORY_KIB: u32 = 256 * 1024;

/// Reusable argon2 working memory (1 KiB blocks).
#[derive(Default)]
pub struct Scratch {
    blocks: Vec<argon2::Block>,
}

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scratch({} KiB)", self.blocks.len())
    }
}

impl Scratch {
    /// KiB held.
    pub fn kib(&self) -> usize {
        self.blocks.len()
    }
}

/// Verifies `password` against a PHC argon2 string, as the `password-hash` crate's verifier
/// does (same parameters, salt and constant-time output comparison), but in `scratch`.
fn verify_phc(hash: &str, password: &[u8], scratch: &mut Scratch) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(alg) = argon2::Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(argon2::Version::try_from) {
        None => argon2::Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = argon2::Params::try_from(&parsed) else {
        return false;
    };
    if params.m_cost() > MAX_MEMORY_KIB {
        return false;
    }
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let need = params.block_count();
    if scratch.blocks.len() < need {
        scratch.blocks.resize(need, argon2::Block::default());
    }
    let a = argon2::Argon2::new(alg, version, params);
    let mut out = vec![0u8; expected.len()];
    if a.hash_password_into_with_memory(password, salt, &mut out, &mut scratch.blocks[..need])
        .is_err()
    {
        return false;
    }
    // `Output`'s equality is constant-time.
    argon2::password_hash::Output::new(&out).is_ok_and(|o| o == expected)
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

/// Failed AUTH attempts from one address within [`AuthLimiter::WINDOW`] before it is locked out
/// (ours; RFC 4954 §4 asks servers to limit guessing without fixing numbers). Checks still in
/// progress count too, so that many attempts sent at once cannot all be checked before the
/// first failure is recorded.
pub const LOCKOUT_FAILURES: usize = 10;

/// Per-client-address AUTH counter: recent failures plus checks in progress. PURE: `now` is
/// passed in.
///
/// A check is [`reserve`](AuthLimiter::reserve)d before the password is verified and
/// [`settle`](AuthLimiter::settle)d after; while reserved it counts like a failure, so an
/// address never has more than [`LOCKOUT_FAILURES`] failures and checks together.
#[derive(Debug, Default)]
pub struct AuthLimiter {
    entries: HashMap<IpAddr, Entry>,
}

#[derive(Debug, Default)]
struct Entry {
    failures: Vec<Instant>,
    in_flight: usize,
}

impl Entry {
    fn forget_old(&mut self, now: Instant) {
        self.failures
            .retain(|t| now.saturating_duration_since(*t) < AuthLimiter::WINDOW);
    }

    fn is_empty(&self) -> bool {
        self.failures.is_empty() && self.in_flight == 0
    }
}

impl AuthLimiter {
    /// Failures older than this are forgotten (ours).
    pub const WINDOW: Duration = Duration::from_secs(600);
    /// Addresses tracked at most; the oldest are dropped past it (bounds memory under attack).
    pub const MAX_TRACKED: usize = 10_000;

    /// True when `ip` may try to authenticate now (failures and checks in progress under
    /// [`LOCKOUT_FAILURES`]). Does not reserve: see [`AuthLimiter::reserve`].
    pub fn allowed(&mut self, ip: IpAddr, now: Instant) -> bool {
        match self.entries.get_mut(&ip) {
            Some(e) => {
                e.forget_old(now);
                e.failures.len() + e.in_flight < LOCKOUT_FAILURES
            }
            None => true,
        }
    }

    /// Reserves one check for `ip` when [`allowed`](AuthLimiter::allowed); false (nothing
    /// reserved) when the address is locked out. Every `true` must be followed by one
    /// [`settle`](AuthLimiter::settle).
    pub fn reserve(&mut self, ip: IpAddr, now: Instant) -> bool {
        if !self.allowed(ip, now) {
            return false;
        }
        self.make_room(ip, now);
        self.entries.entry(ip).or_default().in_flight += 1;
        true
    }

    /// Ends a reserved check: `failed` records a failure at `now`; a success or a check that
    /// never ran (the client left) only releases the reservation.
    pub fn settle(&mut self, ip: IpAddr, now: Instant, failed: bool) {
        let e = self.entries.entry(ip).or_default();
        e.in_flight = e.in_flight.saturating_sub(1);
        if failed {
            e.failures.push(now);
            if e.failures.len() > LOCKOUT_FAILURES {
                e.failures.remove(0);
            }
        }
        if e.is_empty() {
            self.entries.remove(&ip);
        }
    }

    /// Records a failed attempt by `ip` that was not reserved.
    pub fn failed(&mut self, ip: IpAddr, now: Instant) {
        self.make_room(ip, now);
        let e = self.entries.entry(ip).or_default();
        e.in_flight += 1;
        self.settle(ip, now, true);
    }

    /// Checks in progress for `ip` (for tests and status).
    pub fn in_flight(&self, ip: IpAddr) -> usize {
        self.entries.get(&ip).map_or(0, |e| e.in_flight)
    }

    /// Keeps the table under [`AuthLimiter::MAX_TRACKED`] before `ip` is added.
    fn make_room(&mut self, ip: IpAddr, now: Instant) {
        if self.entries.len() < Self::MAX_TRACKED || self.entries.contains_key(&ip) {
            return;
        }
        self.entries.retain(|_, e| {
            e.forget_old(now);
            !e.is_empty()
        });
        if self.entries.len() >= Self::MAX_TRACKED {
            // Still full of recent attackers: forget one entry without checks in progress
            // (forgetting a reservation would let its settle count against nothing).
            let victim = self
                .entries
                .iter()
                .find(|(_, e)| e.in_flight == 0)
                .map(|(k, _)| *k);
            if let Some(k) = victim {
                self.entries.remove(&k);
            }
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
        // Reused memory gives the same answers, and keeps the largest size asked for.
        let mut scratch = Scratch::default();
        assert!(u.verify_in("bob", "pw b", &mut scratch));
        assert!(!u.verify_in("bob", "pw a", &mut scratch));
        assert!(u.verify_in("alice", "pw a", &mut scratch));
        assert_eq!(scratch.kib(), 1024);
        // A hash written by the crate's own hasher (default parameters) verifies too.
        let std_hash = hash_password("pw c").unwrap();
        let u2 = Users::parse(&format!("carol:{std_hash}\n")).unwrap();
        assert!(u2.verify_in("carol", "pw c", &mut scratch));
        assert!(!u2.verify_in("carol", "pw C", &mut scratch));
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

    /// Checks in progress count: with all of them reserved at once, the 11th is refused
    /// before any has failed; settling frees the slot only as far as the failures allow.
    #[test]
    fn limiter_counts_checks_in_progress() {
        let mut l = AuthLimiter::default();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..LOCKOUT_FAILURES {
            assert!(l.reserve(ip, t0), "reservation {i}");
        }
        assert_eq!(l.in_flight(ip), LOCKOUT_FAILURES);
        assert!(!l.reserve(ip, t0), "an 11th check at once");
        // One succeeds: its slot is free again.
        l.settle(ip, t0, false);
        assert!(l.reserve(ip, t0));
        // All fail: locked out although nothing is in progress any more.
        for _ in 0..LOCKOUT_FAILURES {
            l.settle(ip, t0, true);
        }
        assert_eq!(l.in_flight(ip), 0);
        assert!(!l.reserve(ip, t0 + Duration::from_secs(1)));
        assert!(l.reserve(ip, t0 + AuthLimiter::WINDOW));
        l.settle(ip, t0 + AuthLimiter::WINDOW, false);
    }

    #[test]
    fn limiter_memory_bounded() {
        let mut l = AuthLimiter::default();
        let t0 = Instant::now();
        for i in 0..(AuthLimiter::MAX_TRACKED as u32 + 50) {
            l.failed(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert!(l.entries.len() <= AuthLimiter::MAX_TRACKED);
    }
}
