//! The dial plan: a recipient number → E.164 destination → the digits the modem dials, and
//! whether it may be dialled at all (toll-fraud policy). PURE.
//!
//! Normalisation (ITU-T E.164 §6, E.123 for the written forms):
//! - [`Number::Global`] (`+` form) is already E.164.
//! - [`Number::Site`] is in the site's dialling format, tried in this order: starts with
//!   `international_prefix` → the rest is E.164; starts with `national_prefix` → national
//!   significant number of our country; otherwise, with `area_code` set, a local number of our
//!   area; otherwise a national significant number written without prefix.
//!
//! Policy, checked in this order so a broad `allow` can never open a toll-fraud hole:
//! premium-rate patterns (denied unless `allow_premium`), destinations outside our country code
//! (denied unless `allow_international`), `deny` patterns, then `allow` (when not empty, the
//! destination must match one). Patterns are `+` digits, `X` any one digit, optional trailing
//! `*` any rest (see `config::validate_number_pattern`); without `*` the length must match.
//!
//! Dial string: `outside_prefix`, then for our own country `national_prefix` + national
//! significant number (or just the subscriber number of our area when `strip_local_area`), for
//! other countries `international_prefix` + the E.164 digits.

use thiserror::Error;

use super::address::{MAX_E164_DIGITS, Number};
use crate::config;

/// Why a number cannot be dialled. All are the sender's problem (RFC 3463 5.1.1 for a bad
/// number, 5.7.1 for a policy refusal).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DialError {
    /// Not a valid E.164 number after normalisation.
    #[error("{0} is not a valid international number")]
    Invalid(String),
    /// Premium-rate destination and `allow_premium` is off.
    #[error("{0} is a premium-rate destination and may not be dialled")]
    Premium(String),
    /// Outside our country and `allow_international` is off.
    #[error("{0} is an international destination and may not be dialled")]
    International(String),
    /// Matched a `deny` pattern.
    #[error("{0} is denied by the dial plan")]
    Denied(String),
    /// `allow` is not empty and no pattern matched.
    #[error("{0} is not in the dial plan's allowed destinations")]
    NotAllowed(String),
}

impl DialError {
    /// RFC 3463 enhanced status code for the refusal.
    pub fn enhanced_code(&self) -> &'static str {
        match self {
            DialError::Invalid(_) => "5.1.1",
            _ => "5.7.1",
        }
    }
}

/// Where a fax goes: its E.164 form and what to dial.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Destination {
    /// E.164 with a leading `+`, e.g. `+12125551212`.
    pub e164: String,
    /// Digits (and PBX characters) for `ATD`, e.g. `9,12125551212`.
    pub dial: String,
    /// True when outside our country code.
    pub international: bool,
}

/// The compiled `[dialplan]`.
#[derive(Debug, Clone)]
pub struct DialPlan {
    cfg: config::DialPlan,
}

impl DialPlan {
    /// Takes a validated `[dialplan]` section.
    pub fn new(cfg: &config::DialPlan) -> DialPlan {
        DialPlan { cfg: cfg.clone() }
    }

    /// E.164 digits (no `+`) for a number, without any policy check.
    pub fn normalise(&self, n: &Number) -> Result<String, DialError> {
        let c = &self.cfg;
        let e164 = match n {
            Number::Global(d) => d.clone(),
            Number::Site(d) => {
                if !c.international_prefix.is_empty() && d.starts_with(&c.international_prefix) {
                    d[c.international_prefix.len()..].to_owned()
                } else if !c.national_prefix.is_empty() && d.starts_with(&c.national_prefix) {
                    format!("{}{}", c.country_code, &d[c.national_prefix.len()..])
                } else if !c.area_code.is_empty() {
                    format!("{}{}{}", c.country_code, c.area_code, d)
                } else {
                    format!("{}{}", c.country_code, d)
                }
            }
        };
        // E.164 §6.1: at most 15 digits; a country code never starts with 0. Fewer than 7 digits
        // cannot be a country code plus a subscriber number anywhere (ours: a sanity floor).
        if e164.len() > MAX_E164_DIGITS
            || e164.len() < 7
            || e164.starts_with('0')
            || !e164.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(DialError::Invalid(format!("+{e164}")));
        }
        Ok(e164)
    }

    /// Normalises, applies the policy and builds the dial string.
    pub fn resolve(&self, n: &Number) -> Result<Destination, DialError> {
        let c = &self.cfg;
        let digits = self.normalise(n)?;
        let e164 = format!("+{digits}");
        if !c.allow_premium && c.premium.iter().any(|p| pattern_matches(p, &e164)) {
            return Err(DialError::Premium(e164));
        }
        let national = digits.strip_prefix(c.country_code.as_str());
        if national.is_none() && !c.allow_international {
            return Err(DialError::International(e164));
        }
        if c.deny.iter().any(|p| pattern_matches(p, &e164)) {
            return Err(DialError::Denied(e164));
        }
        if !c.allow.is_empty() && !c.allow.iter().any(|p| pattern_matches(p, &e164)) {
            return Err(DialError::NotAllowed(e164));
        }
        let mut dial = c.outside_prefix.clone();
        match national {
            Some(nsn) => match nsn.strip_prefix(c.area_code.as_str()) {
                Some(local) if c.strip_local_area && !c.area_code.is_empty() => {
                    dial.push_str(local)
                }
                _ => {
                    dial.push_str(&c.national_prefix);
                    dial.push_str(nsn);
                }
            },
            None => {
                dial.push_str(&c.international_prefix);
                dial.push_str(&digits);
            }
        }
        Ok(Destination {
            e164,
            dial,
            international: national.is_none(),
        })
    }
}

/// Matches an E.164 pattern (`+` digits/`X`, optional trailing `*`) against `+digits`.
pub fn pattern_matches(pattern: &str, e164: &str) -> bool {
    let (body, open) = match pattern.strip_suffix('*') {
        Some(b) => (b, true),
        None => (pattern, false),
    };
    let (p, n) = (body.as_bytes(), e164.as_bytes());
    if n.len() < p.len() || (!open && n.len() != p.len()) {
        return false;
    }
    p.iter().zip(n).all(|(&pc, &nc)| match pc {
        b'X' => nc.is_ascii_digit(),
        _ => pc == nc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(f: impl FnOnce(&mut config::DialPlan)) -> DialPlan {
        let mut c = config::DialPlan::default();
        f(&mut c);
        DialPlan::new(&c)
    }
    fn g(d: &str) -> Number {
        Number::Global(d.into())
    }
    fn s(d: &str) -> Number {
        Number::Site(d.into())
    }

    #[test]
    fn patterns() {
        assert!(pattern_matches("+1900*", "+19005551212"));
        assert!(pattern_matches("+1XXX976*", "+12129761234"));
        assert!(!pattern_matches("+1XXX976*", "+12125551234"));
        assert!(pattern_matches("+1212555XXXX", "+12125551234"));
        assert!(!pattern_matches("+1212555XXXX", "+121255512345"));
        assert!(pattern_matches("+*", "+44"));
    }

    #[test]
    fn nanp_defaults() {
        let p = plan(|_| {});
        let d = p.resolve(&g("12125551212")).unwrap();
        assert_eq!(d.e164, "+12125551212");
        assert_eq!(d.dial, "12125551212");
        assert!(!d.international);
        // Site forms: with national prefix, without prefix (no area code configured).
        assert_eq!(p.resolve(&s("12125551212")).unwrap().e164, "+12125551212");
        assert_eq!(p.resolve(&s("2125551212")).unwrap().e164, "+12125551212");
        assert_eq!(
            p.resolve(&s("01144201234567")),
            Err(DialError::International("+44201234567".into()))
        );
        // Toll fraud defaults.
        assert_eq!(
            p.resolve(&g("19005551212")),
            Err(DialError::Premium("+19005551212".into()))
        );
        assert_eq!(
            p.resolve(&g("12129761234")),
            Err(DialError::Premium("+12129761234".into()))
        );
        assert_eq!(
            p.resolve(&g("441234567890")),
            Err(DialError::International("+441234567890".into()))
        );
        assert!(matches!(p.resolve(&g("012")), Err(DialError::Invalid(_))));
        assert!(matches!(
            p.resolve(&g("1234567890123456")),
            Err(DialError::Invalid(_))
        ));
    }

    #[test]
    fn uk_with_pbx_and_local_area() {
        let p = plan(|c| {
            c.country_code = "44".into();
            c.area_code = "20".into();
            c.national_prefix = "0".into();
            c.international_prefix = "00".into();
            c.strip_local_area = true;
            c.outside_prefix = "9,".into();
            c.allow_international = true;
            c.premium = vec!["+449*".into()];
        });
        let local = p.resolve(&s("79460000")).unwrap();
        assert_eq!(
            (local.e164.as_str(), local.dial.as_str()),
            ("+442079460000", "9,79460000")
        );
        let nat = p.resolve(&s("01612345678")).unwrap();
        assert_eq!(
            (nat.e164.as_str(), nat.dial.as_str()),
            ("+441612345678", "9,01612345678")
        );
        let intl = p.resolve(&s("0012125551212")).unwrap();
        assert_eq!(
            (intl.dial.as_str(), intl.international),
            ("9,0012125551212", true)
        );
        assert_eq!(
            p.resolve(&g("449098765432")),
            Err(DialError::Premium("+449098765432".into()))
        );
    }

    #[test]
    fn allow_and_deny_order() {
        let p = plan(|c| {
            c.allow = vec!["+1212*".into(), "+1900*".into()];
            c.deny = vec!["+1212555*".into()];
        });
        assert!(p.resolve(&g("12127770000")).is_ok());
        assert_eq!(
            p.resolve(&g("12125550000")),
            Err(DialError::Denied("+12125550000".into()))
        );
        assert_eq!(
            p.resolve(&g("13125550000")),
            Err(DialError::NotAllowed("+13125550000".into()))
        );
        // allow never overrides the premium check
        assert_eq!(
            p.resolve(&g("19005550000")),
            Err(DialError::Premium("+19005550000".into()))
        );
        let open = plan(|c| c.allow_premium = true);
        assert!(open.resolve(&g("19005550000")).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(d in "[0-9]{0,25}", global in proptest::bool::ANY, pat in "\\+[0-9X]{0,6}\\*?") {
            let p = plan(|c| { c.allow = vec![pat.clone()]; c.allow_international = true; });
            let n = if global { g(&d) } else { s(&d) };
            if let Ok(dest) = p.resolve(&n) {
                proptest::prop_assert!(dest.e164.len() <= 16);
                proptest::prop_assert!(pattern_matches(&pat, &dest.e164));
            }
        }
    }
}
