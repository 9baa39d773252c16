//! PURE: HTTP digest authentication as a SIP client uses it (RFC 3261 §22.2, §22.3; RFC 2617;
//! RFC 7616 for SHA-256 and the `algorithm` names; RFC 8760 for its use in SIP).
//!
//! We answer `WWW-Authenticate` (401) and `Proxy-Authenticate` (407) challenges with
//! `algorithm=MD5` or `SHA-256` (and their `-sess` forms), with `qop=auth` when offered or
//! without qop (RFC 2069 form) when the server offers none. `qop=auth-int` alone is refused:
//! the server would then want a hash of each body we send, which no registrar we met asks for.

use std::fmt::Write as _;

use sha2::Digest as _;

use super::message::quote;

/// A challenge's parameters values are at most this long (ours).
const MAX_PARAM: usize = 1024;

/// Why we cannot answer a challenge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// Not `Digest …`, or without realm/nonce.
    #[error("malformed digest challenge")]
    Malformed,
    /// An algorithm other than MD5 / SHA-256 (and -sess).
    #[error("digest algorithm {0} not supported")]
    Algorithm(String),
    /// Only `auth-int` offered.
    #[error("digest qop {0} not supported")]
    Qop(String),
}

/// The hash a challenge names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// MD5 (RFC 2617; the default when absent).
    Md5,
    /// SHA-256 (RFC 7616 §3.2).
    Sha256,
}

/// One parsed challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `opaque`, echoed.
    pub opaque: Option<String>,
    /// The hash.
    pub algorithm: Algorithm,
    /// `-sess` variant (RFC 7616 §3.4.2).
    pub sess: bool,
    /// `qop=auth` offered.
    pub qop_auth: bool,
    /// `stale=true`: the nonce expired but our credentials were right (RFC 7616 §3.3).
    pub stale: bool,
}

impl Challenge {
    /// Parse a `WWW-Authenticate` / `Proxy-Authenticate` value.
    pub fn parse(v: &str) -> Result<Challenge, DigestError> {
        let v = v.trim();
        let (scheme, rest) = v.split_once([' ', '\t']).ok_or(DigestError::Malformed)?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(DigestError::Malformed);
        }
        let params = auth_params(rest)?;
        let get = |n: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        let realm = get("realm").ok_or(DigestError::Malformed)?;
        let nonce = get("nonce").ok_or(DigestError::Malformed)?;
        let alg = get("algorithm").unwrap_or_else(|| "MD5".into());
        let (algorithm, sess) = match alg.to_ascii_uppercase().as_str() {
            "MD5" => (Algorithm::Md5, false),
            "MD5-SESS" => (Algorithm::Md5, true),
            "SHA-256" => (Algorithm::Sha256, false),
            "SHA-256-SESS" => (Algorithm::Sha256, true),
            _ => return Err(DigestError::Algorithm(alg)),
        };
        let (qop_auth, qop_offered) = match get("qop") {
            Some(q) => (
                q.split(',').any(|t| t.trim().eq_ignore_ascii_case("auth")),
                Some(q),
            ),
            None => (false, None),
        };
        if let Some(q) = qop_offered
            && !qop_auth
        {
            return Err(DigestError::Qop(q));
        }
        Ok(Challenge {
            realm,
            nonce,
            opaque: get("opaque"),
            algorithm,
            sess,
            qop_auth,
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// The `Authorization` / `Proxy-Authorization` value for one request (RFC 7616 §3.4).
    /// `nc` counts our uses of this nonce from 1; `cnonce` is a fresh random string.
    pub fn answer(
        &self,
        user: &str,
        password: &str,
        method: &str,
        uri: &str,
        nc: u32,
        cnonce: &str,
    ) -> String {
        let h = |s: &str| hex_hash(self.algorithm, s.as_bytes());
        let mut ha1 = h(&format!("{user}:{}:{password}", self.realm));
        if self.sess {
            ha1 = h(&format!("{ha1}:{}:{cnonce}", self.nonce));
        }
        let ha2 = h(&format!("{method}:{uri}"));
        let nc_s = format!("{nc:08x}");
        let response = if self.qop_auth {
            h(&format!("{ha1}:{}:{nc_s}:{cnonce}:auth:{ha2}", self.nonce))
        } else {
            h(&format!("{ha1}:{}:{ha2}", self.nonce))
        };
        let alg = match (self.algorithm, self.sess) {
            (Algorithm::Md5, false) => "MD5",
            (Algorithm::Md5, true) => "MD5-sess",
            (Algorithm::Sha256, false) => "SHA-256",
            (Algorithm::Sha256, true) => "SHA-256-sess",
        };
        let mut out = format!(
            "Digest username={}, realm={}, nonce={}, uri={}, response=\"{response}\", algorithm={alg}",
            quote(user),
            quote(&self.realm),
            quote(&self.nonce),
            quote(uri)
        );
        if self.qop_auth {
            let _ = write!(out, ", qop=auth, nc={nc_s}, cnonce={}", quote(cnonce));
        }
        if let Some(o) = &self.opaque {
            let _ = write!(out, ", opaque={}", quote(o));
        }
        out
    }
}

/// Lower-case hex of the digest of `data`.
pub fn hex_hash(alg: Algorithm, data: &[u8]) -> String {
    let bytes: Vec<u8> = match alg {
        Algorithm::Md5 => md5::Md5::digest(data).to_vec(),
        Algorithm::Sha256 => sha2::Sha256::digest(data).to_vec(),
    };
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `name=value, name="quoted"` (RFC 7235 §2.1 auth-param), bounded.
fn auth_params(s: &str) -> Result<Vec<(String, String)>, DigestError> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let ns = i;
        while i < b.len() && b[i] != b'=' {
            i += 1;
        }
        let name = s
            .get(ns..i)
            .ok_or(DigestError::Malformed)?
            .trim()
            .to_string();
        i += 1; // '='
        let mut value = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut closed = false;
            while i < b.len() {
                match b[i] {
                    b'\\' if i + 1 < b.len() => {
                        value.push(b[i + 1] as char);
                        i += 2;
                    }
                    b'"' => {
                        i += 1;
                        closed = true;
                        break;
                    }
                    c => {
                        value.push(c as char);
                        i += 1;
                    }
                }
            }
            if !closed {
                return Err(DigestError::Malformed);
            }
        } else {
            let vs = i.min(b.len());
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            value = s
                .get(vs..i)
                .ok_or(DigestError::Malformed)?
                .trim()
                .to_string();
        }
        if name.is_empty() || value.len() > MAX_PARAM || out.len() >= 16 {
            return Err(DigestError::Malformed);
        }
        out.push((name, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5's example (Mufasa), MD5 with qop=auth.
    #[test]
    fn rfc2617_example() {
        let c = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        let a = c.answer(
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            1,
            "0a4f113b",
        );
        assert!(
            a.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{a}"
        );
    }

    /// RFC 7616 §3.9.1's example, SHA-256.
    #[test]
    fn rfc7616_sha256_example() {
        let c = Challenge::parse(
            "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=SHA-256, \
             nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
        )
        .unwrap();
        let a = c.answer(
            "Mufasa",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            1,
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        );
        assert!(
            a.contains(
                "response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\""
            ),
            "{a}"
        );
    }

    #[test]
    fn refuses_auth_int_only_and_unknown_algorithms() {
        assert!(matches!(
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\""),
            Err(DigestError::Qop(_))
        ));
        assert!(matches!(
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256"),
            Err(DigestError::Algorithm(_))
        ));
        assert_eq!(
            Challenge::parse("Basic realm=\"r\""),
            Err(DigestError::Malformed)
        );
        assert_eq!(
            Challenge::parse("Digest realm=\"r"),
            Err(DigestError::Malformed)
        );
    }
}
