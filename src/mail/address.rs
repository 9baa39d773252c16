//! Recipient addresses of the offramp: RCPT forward-paths → fax numbers.
//!
//! Owns two steps, both pure:
//!
//! 1. [`parse_forward_path`]: the text between `<` and `>` of `RCPT TO:` (RFC 5321 §4.1.2) into a
//!    [`Mailbox`], refusing what a relay would forward elsewhere: source routes
//!    (`<@a,@b:u@c>`, §4.1.1.3 / Appendix C), IP-literal domains (`u@[192.0.2.1]`), and local
//!    parts that carry another address (`user%other@us`, `a!b@us`, `"u@other"@us`).
//! 2. [`FaxAddress::from_local_part`]: the local part into a fax number.
//!    RFC 3192 §3/§4 form: `FAX=` (case-insensitive) + global phone `+` digits with optional
//!    `-`/`.` separators, optionally `/T33S=` and a T.33 subaddress; surrounding quotes and
//!    slashes are accepted (`"FAX=+1-212-555-1212"@d`, `/FAX=+12125551212/@d`), never generated.
//!    Site forms (ours, switched by `smtp.accept_plain_digits`): a plain number
//!    (`12125550123@d`, `+12125550123@d`) or `fax=` with a number written without `+`
//!    (`fax=15550100@d`); such numbers are in the site's own dialling format and are normalised
//!    by the dial plan, so they are kept apart as [`Number::Site`] (STANDARDS: "other local-part
//!    forms must be clearly distinguishable").
//!
//! Also the postmaster test (RFC 5321 §4.5.1): [`is_bare_postmaster`] for `<postmaster>` and
//! [`Mailbox::is_postmaster`] for `postmaster@…` (the caller checks the domain is ours).
//!
//! Every limit is RFC 5321 §4.5.3.1: local part 64 octets, domain 255, path 256.

pub use crate::job::{AddressForm, Number};
use thiserror::Error;

/// RFC 5321 §4.5.3.1.1: maximum local part, octets.
pub const MAX_LOCAL_PART: usize = 64;
/// RFC 5321 §4.5.3.1.2: maximum domain, octets.
pub const MAX_DOMAIN: usize = 255;
/// RFC 5321 §4.5.3.1.3: maximum path including the angle brackets, octets.
pub const MAX_PATH: usize = 256;
/// E.164 §6.1: at most 15 digits in an international number.
pub const MAX_E164_DIGITS: usize = 15;
/// T.30 §5.3.6.2.5 (SUB frame): a subaddress has at most 20 digits.
pub const MAX_SUBADDRESS: usize = 20;

/// Why an address was refused. [`AddressError::is_relay_attempt`] separates "that is not ours
/// to deliver" (RFC 3463 5.7.1) from "that is ours but not a fax address" (5.1.1) and syntax
/// errors (5.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AddressError {
    /// The client sent a malformed path: the client's fault.
    #[error("malformed address: {0}")]
    Syntax(&'static str),
    /// Longer than RFC 5321 §4.5.3.1 allows.
    #[error("address too long: {0}")]
    TooLong(&'static str),
    /// `<@a,@b:u@c>`: a source route asks us to relay.
    #[error("source routes are not accepted (no relaying)")]
    SourceRoute,
    /// `u@[192.0.2.1]`: an IP literal is never one of our domains.
    #[error("IP-literal domains are not accepted (no relaying)")]
    IpLiteral,
    /// The domain is not one we serve.
    #[error("relaying denied: {0} is not a domain served here")]
    ForeignDomain(String),
    /// `user%other@us`, `a!b@us`, `"u@other"@us`: another address hidden in the local part.
    #[error("relaying denied: the local part holds another address")]
    HiddenAddress,
    /// The local part is not an RFC 3192 fax address nor an accepted site form.
    #[error("not a fax address (use FAX=+<international number>@<domain>)")]
    NotFax,
    /// `FAX=` present but the number or subaddress is malformed.
    #[error("bad fax number: {0}")]
    BadNumber(&'static str),
}

impl AddressError {
    /// True when the address asks us to deliver elsewhere (answered `550 5.7.1`).
    pub fn is_relay_attempt(&self) -> bool {
        matches!(
            self,
            AddressError::SourceRoute
                | AddressError::IpLiteral
                | AddressError::ForeignDomain(_)
                | AddressError::HiddenAddress
        )
    }

    /// RFC 3463 enhanced status code for the refusal.
    pub fn enhanced_code(&self) -> &'static str {
        match self {
            _ if self.is_relay_attempt() => "5.7.1",
            AddressError::NotFax | AddressError::BadNumber(_) => "5.1.1",
            AddressError::Syntax(_) | AddressError::TooLong(_) => "5.1.3",
            _ => "5.1.3",
        }
    }
}

/// A parsed mailbox: the local part with quoting removed, and the domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// Local part, unquoted (`"a b"` → `a b`, `\"` → `"`).
    pub local: String,
    /// Whether the local part was a quoted string.
    pub quoted: bool,
    /// Domain as written (no IP literal: those are refused).
    pub domain: String,
}

/// RFC 5321 §4.5.1: the reserved local part every server accepts mail for.
pub const POSTMASTER: &str = "postmaster";

impl Mailbox {
    /// True when the local part is `postmaster` (RFC 5321 §4.5.1: case-insensitive; a quoted
    /// `"Postmaster"` is the same local part, §4.1.2). The caller checks the domain is ours.
    pub fn is_postmaster(&self) -> bool {
        self.local.eq_ignore_ascii_case(POSTMASTER)
    }
}

/// True for the bare forward-path `postmaster` (RFC 5321 §4.1.1.3 `"<Postmaster>"`, any case),
/// which names this server's postmaster without a domain.
pub fn is_bare_postmaster(path: &str) -> bool {
    path.eq_ignore_ascii_case(POSTMASTER)
}

/// Parses the inside of `<…>` of a forward-path. Never panics; refuses relaying forms.
pub fn parse_forward_path(path: &str) -> Result<Mailbox, AddressError> {
    if path.len() + 2 > MAX_PATH {
        return Err(AddressError::TooLong("path longer than 256 octets"));
    }
    if path.is_empty() {
        return Err(AddressError::Syntax("empty address"));
    }
    // RFC 5321 §4.1.1.3: A-d-l ":" Mailbox. Servers may ignore the route, but ignoring it on a
    // gateway that dials numbers would honour an address the client meant for somewhere else.
    if path.starts_with('@') {
        return Err(AddressError::SourceRoute);
    }
    let (local, quoted, rest) = if let Some(body) = path.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = body.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, e)) if (' '..='~').contains(&e) => out.push(e),
                    _ => return Err(AddressError::Syntax("bad quoted-pair")),
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c if (' '..='~').contains(&c) => out.push(c),
                _ => return Err(AddressError::Syntax("bad character in quoted local part")),
            }
        }
        let Some(end) = end else {
            return Err(AddressError::Syntax("unterminated quoted local part"));
        };
        (out, true, &body[end + 1..])
    } else {
        match path.rfind('@') {
            Some(i) => {
                let local = &path[..i];
                if local.is_empty() {
                    return Err(AddressError::Syntax("empty local part"));
                }
                if !local.bytes().all(is_atext_or_dot) {
                    // An `@` or other specials left in a dot-string local part.
                    if local.contains('@') {
                        return Err(AddressError::HiddenAddress);
                    }
                    return Err(AddressError::Syntax("bad character in local part"));
                }
                if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
                    return Err(AddressError::Syntax("misplaced dot in local part"));
                }
                (local.to_owned(), false, &path[i..])
            }
            None => return Err(AddressError::Syntax("no domain (user@domain needed)")),
        }
    };
    let Some(domain) = rest.strip_prefix('@') else {
        return Err(AddressError::Syntax("no domain (user@domain needed)"));
    };
    if local.len() > MAX_LOCAL_PART {
        return Err(AddressError::TooLong("local part longer than 64 octets"));
    }
    if domain.starts_with('[') {
        return Err(AddressError::IpLiteral);
    }
    if domain.len() > MAX_DOMAIN {
        return Err(AddressError::TooLong("domain longer than 255 octets"));
    }
    if !is_domain_name(domain) {
        return Err(AddressError::Syntax("bad domain"));
    }
    Ok(Mailbox {
        local,
        quoted,
        domain: domain.to_owned(),
    })
}

/// RFC 5321 §4.1.2 atext plus `.` (Dot-string).
fn is_atext_or_dot(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b)
}

/// RFC 5321 §4.1.2 Domain: dot-separated letters-digits-hyphen labels (a trailing root dot is
/// accepted).
fn is_domain_name(d: &str) -> bool {
    let d = d.strip_suffix('.').unwrap_or(d);
    !d.is_empty()
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// True when `domain` equals one of `ours` (case-insensitive, root dot ignored).
pub fn is_our_domain(domain: &str, ours: &[String]) -> bool {
    let d = domain.strip_suffix('.').unwrap_or(domain);
    ours.iter().any(|o| o.eq_ignore_ascii_case(d))
}

/// A fax recipient parsed from a local part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaxAddress {
    /// The number.
    pub number: Number,
    /// RFC 3192 `/T33S=` subaddress (ITU-T T.33), digits only.
    pub subaddress: Option<String>,
    /// The form used.
    pub form: AddressForm,
}

impl FaxAddress {
    /// Parses a mailbox's local part. `site_forms` enables the plain-digits and `fax=<digits>`
    /// forms (config `smtp.accept_plain_digits`).
    pub fn from_local_part(mb: &Mailbox, site_forms: bool) -> Result<FaxAddress, AddressError> {
        let l = mb.local.as_str();
        // Another address hidden in the local part: `%` hack, UUCP bang paths, or an `@`
        // inside quotes. None of these is part of any fax form.
        if l.contains(['@', '%', '!']) {
            return Err(AddressError::HiddenAddress);
        }
        // RFC 3192 §4: optional surrounding slashes.
        let l = l.strip_prefix('/').unwrap_or(l);
        let l = l.strip_suffix('/').unwrap_or(l);
        if l.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("FAX=")) {
            let rest = &l[4..];
            let (num, params) = match rest.find('/') {
                Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                None => (rest, None),
            };
            let subaddress = match params {
                None => None,
                Some(p) => {
                    if !p.get(..5).is_some_and(|t| t.eq_ignore_ascii_case("T33S=")) {
                        return Err(AddressError::BadNumber(
                            "unknown parameter after the number",
                        ));
                    }
                    let s = &p[5..];
                    if s.is_empty()
                        || s.len() > MAX_SUBADDRESS
                        || !s.bytes().all(|b| b.is_ascii_digit())
                    {
                        return Err(AddressError::BadNumber("T33S subaddress: 1 to 20 digits"));
                    }
                    Some(s.to_owned())
                }
            };
            return match num.strip_prefix('+') {
                Some(g) => Ok(FaxAddress {
                    number: Number::Global(digits(g)?),
                    subaddress,
                    form: AddressForm::Rfc3192,
                }),
                None if site_forms => Ok(FaxAddress {
                    number: Number::Site(digits(num)?),
                    subaddress,
                    form: AddressForm::SiteFax,
                }),
                None => Err(AddressError::BadNumber(
                    "RFC 3192 needs a global number: FAX=+<country code><number>",
                )),
            };
        }
        if site_forms && !mb.quoted && !l.is_empty() {
            let (global, body) = match l.strip_prefix('+') {
                Some(b) => (true, b),
                None => (false, l),
            };
            if body.starts_with(|c: char| c.is_ascii_digit())
                && body
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'-' || b == b'.')
            {
                let d = digits(body)?;
                return Ok(FaxAddress {
                    number: if global {
                        Number::Global(d)
                    } else {
                        Number::Site(d)
                    },
                    subaddress: None,
                    form: AddressForm::PlainDigits,
                });
            }
        }
        Err(AddressError::NotFax)
    }
}

/// Digits of a written number: digits with optional `-`/`.` separators (RFC 3192 written-sep),
/// at least one digit, at most [`MAX_E164_DIGITS`] + a few for site prefixes.
fn digits(s: &str) -> Result<String, AddressError> {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'0'..=b'9' => out.push(b as char),
            b'-' | b'.' => {}
            _ => return Err(AddressError::BadNumber("digits, `-` and `.` only")),
        }
    }
    if out.is_empty() {
        return Err(AddressError::BadNumber("no digits"));
    }
    // International prefix (up to 4) + 15 digits is the longest meaningful site number.
    if out.len() > MAX_E164_DIGITS + 4 {
        return Err(AddressError::BadNumber("too many digits"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fax(path: &str, site: bool) -> Result<FaxAddress, AddressError> {
        let mb = parse_forward_path(path)?;
        FaxAddress::from_local_part(&mb, site)
    }

    fn global(d: &str, sub: Option<&str>) -> FaxAddress {
        FaxAddress {
            number: Number::Global(d.into()),
            subaddress: sub.map(Into::into),
            form: AddressForm::Rfc3192,
        }
    }

    #[test]
    fn rfc3192_forms() {
        let ok = [
            (
                "FAX=+1-212-555-1212@fax.example",
                global("12125551212", None),
            ),
            ("fax=+12125551212@fax.example", global("12125551212", None)),
            (
                "Fax=+1.212.555.1212@fax.example",
                global("12125551212", None),
            ),
            (
                "FAX=+1-212-555-1212/T33S=123@fax.example",
                global("12125551212", Some("123")),
            ),
            (
                "FAX=+1-212-555-1212/t33s=123@fax.example",
                global("12125551212", Some("123")),
            ),
            (
                "\"FAX=+1-212-555-1212/T33S=123\"@fax.example",
                global("12125551212", Some("123")),
            ),
            (
                "/FAX=+12125551212/@fax.example",
                global("12125551212", None),
            ),
            (
                "\"/FAX=+4930123456/\"@fax.example",
                global("4930123456", None),
            ),
        ];
        for (p, want) in ok {
            assert_eq!(fax(p, false), Ok(want), "{p}");
        }
    }

    #[test]
    fn site_forms_only_when_enabled() {
        assert_eq!(
            fax("12125550123@d.example", true).unwrap().number,
            Number::Site("12125550123".into())
        );
        assert_eq!(
            fax("+1-212-555-0123@d.example", true).unwrap().number,
            Number::Global("12125550123".into())
        );
        let f = fax("fax=15550100@d.example", true).unwrap();
        assert_eq!(f.number, Number::Site("15550100".into()));
        assert_eq!(f.form, AddressForm::SiteFax);
        assert_eq!(
            fax("12125550123@d.example", false),
            Err(AddressError::NotFax)
        );
        assert!(matches!(
            fax("fax=15550100@d.example", false),
            Err(AddressError::BadNumber(_))
        ));
    }

    #[test]
    fn not_fax_and_bad_numbers() {
        assert_eq!(fax("alice@d.example", true), Err(AddressError::NotFax));
        assert_eq!(
            fax("\"12125550123\"@d.example", true),
            Err(AddressError::NotFax)
        );
        for p in [
            "FAX=+@d.example",
            "FAX=+1-800-FLOWERS@d.example",
            "FAX=+1212/T33S=@d.example",
            "FAX=+1212/T33S=12a@d.example",
            "FAX=+1212/X=1@d.example",
            "FAX=+12345678901234567890@d.example",
        ] {
            assert!(
                matches!(fax(p, true), Err(AddressError::BadNumber(_))),
                "{p}"
            );
        }
    }

    #[test]
    fn relay_forms_refused() {
        let cases = [
            (
                "@a.example,@b.example:u@c.example",
                AddressError::SourceRoute,
            ),
            (
                "@a.example:FAX=+1212@fax.example",
                AddressError::SourceRoute,
            ),
            ("FAX=+12125551212@[192.0.2.1]", AddressError::IpLiteral),
            ("FAX=+12125551212@[IPv6:::1]", AddressError::IpLiteral),
            (
                "user%other.example@fax.example",
                AddressError::HiddenAddress,
            ),
            (
                "FAX=+1212%evil.example@fax.example",
                AddressError::HiddenAddress,
            ),
            ("host!user@fax.example", AddressError::HiddenAddress),
            (
                "\"user@other.example\"@fax.example",
                AddressError::HiddenAddress,
            ),
            (
                "\"FAX=+1212@other.example\"@fax.example",
                AddressError::HiddenAddress,
            ),
        ];
        for (p, want) in cases {
            let got = fax(p, true);
            assert_eq!(got, Err(want), "{p}");
            assert!(got.unwrap_err().is_relay_attempt());
        }
        assert!(is_our_domain("FAX.example.", &["fax.example".into()]));
        assert!(!is_our_domain("fax.example.evil", &["fax.example".into()]));
    }

    #[test]
    fn postmaster_any_case_bare_or_at_a_domain() {
        for p in ["postmaster", "Postmaster", "POSTMASTER", "pOsTmAsTeR"] {
            assert!(is_bare_postmaster(p), "{p}");
        }
        for p in [
            "postmaster ",
            "postmasters",
            "post master",
            "",
            "postmaster@",
        ] {
            assert!(!is_bare_postmaster(p), "{p:?}");
        }
        for p in [
            "postmaster@fax.example",
            "PostMaster@fax.example",
            "\"Postmaster\"@fax.example",
        ] {
            assert!(parse_forward_path(p).unwrap().is_postmaster(), "{p}");
        }
        for p in [
            "postmaster.x@fax.example",
            "\"postmaster \"@fax.example",
            "FAX=+12125551212@fax.example",
        ] {
            assert!(!parse_forward_path(p).unwrap().is_postmaster(), "{p}");
        }
    }

    #[test]
    fn syntax_errors() {
        for p in [
            "",
            "nodomain",
            "@",
            "a@",
            "a@b..c",
            "\"unterminated@d",
            "a b@d.example",
            ".a@d.example",
            "a..b@d.example",
            "\"a\"x@d.example",
        ] {
            let e = parse_forward_path(p).unwrap_err();
            assert!(!e.is_relay_attempt() || p.starts_with('@'), "{p}: {e:?}");
        }
        let long = format!("FAX=+1{}@d.example", "2".repeat(70));
        assert!(matches!(
            parse_forward_path(&long),
            Err(AddressError::TooLong(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,300}") {
            if let Ok(mb) = parse_forward_path(&s) {
                let _ = FaxAddress::from_local_part(&mb, true);
            }
        }

        #[test]
        fn near_miss_never_panics(s in "[\"/@%!\\\\.+=FAXfax0-9T3S\\[\\]:,-]{0,80}") {
            if let Ok(mb) = parse_forward_path(&s) {
                let _ = FaxAddress::from_local_part(&mb, true);
            }
        }
    }
}
