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
//! Structure (E.164 §6: an international number is country code + national significant
//! number, NSN): the NSN must fit its country's numbering plan before any policy is asked.
//! The attack this stops: an NSN that itself starts with a trunk or international prefix
//! (`+44 0012125551212`) is "domestic" by its country code but, dialled as `0` + NSN, reaches
//! another country or an operator. So:
//! - for our own country code, the NSN may not begin with `national_prefix` or
//!   `international_prefix` (any plan, whatever its country);
//! - `+1` numbers follow the NANP structure ([`nanp`]: NPA-NXX-XXXX, service codes refused);
//! - `+44` numbers follow the UK plan ([`uk`]: Ofcom number ranges and their lengths);
//! - any other country: the E.164 bounds only (§6.1: at most 15 digits, country code not `0`;
//!   ours: at least [`MIN_E164_DIGITS`]).
//!
//! Policy, checked in this order so a broad `allow` can never open a toll-fraud hole:
//! structure (invalid numbers and special services are never dialled), premium rate (the
//! built-in ranges of the structure plus `premium`, denied unless `allow_premium`),
//! international — outside our country code or inside one of `international_areas` (denied
//! unless `allow_international`), `deny` patterns, then `allow` (when not empty, the
//! destination must match one). Patterns are `+` digits, `X` any one digit, optional trailing
//! `*` any rest (validated where the config is read); without `*` the length must match.
//!
//! Dial string: `outside_prefix`, then for our own country code `national_prefix` + national
//! significant number (or just the subscriber number of our area when `strip_local_area`), for
//! other countries `international_prefix` + the E.164 digits. Last guard: a dial string for a
//! number inside our country code never begins with `international_prefix`, whatever the
//! configured prefixes are.

pub use crate::job::Destination;
use thiserror::Error;

use super::address::{MAX_E164_DIGITS, Number};

/// Area codes inside the NANP (+1) that are not the United States or Canada, so a call there is
/// billed as international (NANPA's list of NANP countries and territories): the Caribbean and
/// Atlantic countries, Bermuda, and the US territories whose calls many carriers bill apart
/// (Puerto Rico, the US Virgin Islands, Guam, the Northern Mariana Islands, American Samoa).
/// The United States and Canada are domestic to each other. [`Options::default`] (and
/// so `[dialplan] international_areas`) has these as `+1NPA*` patterns.
pub const NANP_INTERNATIONAL_AREAS: [&str; 27] = [
    "242", // Bahamas
    "246", // Barbados
    "264", // Anguilla
    "268", // Antigua and Barbuda
    "284", // British Virgin Islands
    "340", // US Virgin Islands
    "345", // Cayman Islands
    "441", // Bermuda
    "473", // Grenada
    "649", // Turks and Caicos Islands
    "658", // Jamaica
    "664", // Montserrat
    "670", // Northern Mariana Islands
    "671", // Guam
    "684", // American Samoa
    "721", // Sint Maarten
    "758", // Saint Lucia
    "767", // Dominica
    "784", // Saint Vincent and the Grenadines
    "787", // Puerto Rico
    "809", // Dominican Republic
    "829", // Dominican Republic
    "849", // Dominican Republic
    "868", // Trinidad and Tobago
    "869", // Saint Kitts and Nevis
    "876", // Jamaica
    "939", // Puerto Rico
];

/// The dial plan's settings (the shell builds them from `[dialplan]`, where each is
/// documented and validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
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
    /// Allowed destinations (E.164 patterns); empty allows all that `deny` does not.
    pub allow: Vec<String>,
    /// Denied destinations; checked before `allow`.
    pub deny: Vec<String>,
    /// Permit destinations outside our country code or in `international_areas`.
    pub allow_international: bool,
    /// Destinations inside our country code billed as international calls (E.164 patterns).
    pub international_areas: Vec<String>,
    /// Premium-rate patterns, added to the ranges built into the NANP and UK structures.
    pub premium: Vec<String>,
    /// Permit premium-rate destinations.
    pub allow_premium: bool,
}

impl Default for Options {
    /// A North American gateway: country code 1, `011` / `1` prefixes, the NANP areas outside
    /// the US and Canada international, 900 and 976 premium — the `[dialplan]` defaults.
    fn default() -> Self {
        Options {
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
            premium: vec!["+1900*".into(), "+1XXX976*".into()],
            allow_premium: false,
        }
    }
}

/// Fewer than this many E.164 digits cannot be a country code plus a subscriber number anywhere
/// (the shortest NSNs in service have 4 digits behind a 3-digit country code).
pub const MIN_E164_DIGITS: usize = 7;

/// Why a number cannot be dialled. All are the sender's problem (RFC 3463 5.1.1 for a bad
/// number, 5.7.1 for a policy refusal).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DialError {
    /// Not a valid E.164 number after normalisation.
    #[error("{0} is not a valid international number")]
    Invalid(String),
    /// E.164 in form, but the national significant number does not fit its country's numbering
    /// structure (the reason says how). Includes every number whose dial string would begin with
    /// a trunk or international prefix behind our country code.
    #[error("{0} is not a valid number: {1}")]
    Malformed(String, &'static str),
    /// A special service (directory assistance, carrier access, personal numbering, …): never
    /// a fax machine, often chargeable; never dialled.
    #[error("{0} is a special service number and may not be dialled: {1}")]
    Service(String, &'static str),
    /// Premium-rate destination and `allow_premium` is off.
    #[error("{0} is a premium-rate destination and may not be dialled")]
    Premium(String),
    /// Outside our country (or in one of `international_areas`) and `allow_international` is
    /// off.
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
            DialError::Invalid(_) | DialError::Malformed(..) => "5.1.1",
            _ => "5.7.1",
        }
    }
}

/// What a numbering structure says about a national significant number it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rate {
    /// An ordinary subscriber number (geographic, mobile, toll-free, …).
    Ordinary,
    /// One of the structure's own premium-rate ranges.
    Premium,
}

/// Why a numbering structure refuses a national significant number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Does not fit the structure ([`DialError::Malformed`]).
    Malformed(&'static str),
    /// A special service ([`DialError::Service`]).
    Service(&'static str),
}

impl Fault {
    fn into_error(self, e164: String) -> DialError {
        match self {
            Fault::Malformed(why) => DialError::Malformed(e164, why),
            Fault::Service(why) => DialError::Service(e164, why),
        }
    }
}

/// The compiled dial plan.
#[derive(Debug, Clone)]
pub struct DialPlan {
    cfg: Options,
}

impl DialPlan {
    /// Takes validated [`Options`], or anything the shell converts into them (its
    /// `[dialplan]` section converts).
    pub fn new(opts: impl Into<Options>) -> DialPlan {
        DialPlan { cfg: opts.into() }
    }

    /// E.164 digits (no `+`) for a number, without any structure or policy check.
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
        // E.164 §6.1: at most 15 digits; a country code never starts with 0.
        if e164.len() > MAX_E164_DIGITS
            || e164.len() < MIN_E164_DIGITS
            || e164.starts_with('0')
            || !e164.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(DialError::Invalid(format!("+{e164}")));
        }
        Ok(e164)
    }

    /// Checks E.164 digits against the numbering structure of their country: for our own
    /// country first the prefixes of this plan, then the country's table.
    fn structure(&self, digits: &str) -> Result<Rate, Fault> {
        let c = &self.cfg;
        if let Some(nsn) = digits.strip_prefix(c.country_code.as_str())
            && let Some(why) = self.prefix_fault(nsn)
        {
            return Err(Fault::Malformed(why));
        }
        // No country code is the prefix of another (E.164 §6), so `1` and `44` name NANP and
        // the UK whatever our own country is.
        if let Some(nsn) = digits.strip_prefix('1') {
            nanp(nsn)
        } else if let Some(nsn) = digits.strip_prefix("44") {
            uk(nsn)
        } else {
            Ok(Rate::Ordinary)
        }
    }

    /// Why digits that follow our country code (an NSN, or a local number of our area) cannot
    /// be dialled after this plan's trunk prefix: they would begin a new prefix.
    fn prefix_fault(&self, rest: &str) -> Option<&'static str> {
        let c = &self.cfg;
        if !c.international_prefix.is_empty() && rest.starts_with(&c.international_prefix) {
            Some(
                "the digits after the country code begin with the international prefix, so the \
                 dialled string would reach another country",
            )
        } else if !c.national_prefix.is_empty() && rest.starts_with(&c.national_prefix) {
            Some(
                "the digits after the country code begin with the trunk prefix, which an \
                 international number never includes (dialled, it would start a new prefix)",
            )
        } else {
            None
        }
    }

    /// Normalises, checks the structure, applies the policy and builds the dial string.
    pub fn resolve(&self, n: &Number) -> Result<Destination, DialError> {
        let c = &self.cfg;
        let digits = self.normalise(n)?;
        let e164 = format!("+{digits}");
        let rate = self
            .structure(&digits)
            .map_err(|f| f.into_error(e164.clone()))?;
        if !c.allow_premium
            && (rate == Rate::Premium || c.premium.iter().any(|p| pattern_matches(p, &e164)))
        {
            return Err(DialError::Premium(e164));
        }
        let national = digits.strip_prefix(c.country_code.as_str());
        // Countries and territories that share our country code (the NANP's Caribbean and
        // Pacific members) are abroad for the bill, though dialled like national numbers.
        let international = national.is_none()
            || c.international_areas
                .iter()
                .any(|p| pattern_matches(p, &e164));
        if international && !c.allow_international {
            return Err(DialError::International(e164));
        }
        if c.deny.iter().any(|p| pattern_matches(p, &e164)) {
            return Err(DialError::Denied(e164));
        }
        if !c.allow.is_empty() && !c.allow.iter().any(|p| pattern_matches(p, &e164)) {
            return Err(DialError::NotAllowed(e164));
        }
        let body = match national {
            Some(nsn) => {
                // Subscriber numbers start with 2-9: 0 and 1 begin prefixes and service codes
                // (UK 101, 118…; NANP 1010XXX) almost everywhere. A local number that would
                // begin with one, or with a prefix of this plan, is dialled in national form
                // instead, which is always unambiguous.
                let local = nsn
                    .strip_prefix(c.area_code.as_str())
                    .filter(|_| c.strip_local_area && !c.area_code.is_empty())
                    .filter(|l| l.starts_with(|d: char| ('2'..='9').contains(&d)))
                    .filter(|l| self.prefix_fault(l).is_none());
                match local {
                    Some(l) => l.to_owned(),
                    None => format!("{}{nsn}", c.national_prefix),
                }
            }
            None => format!("{}{digits}", c.international_prefix),
        };
        // The invariant the structure checks exist for, kept as its own last check so that no
        // combination of configured prefixes can break it: inside our country code, the dial
        // string never starts an international call.
        if national.is_some()
            && !c.international_prefix.is_empty()
            && body.starts_with(&c.international_prefix)
        {
            return Err(DialError::Malformed(
                e164,
                "dialled after this plan's trunk prefix, it would begin with the international \
                 prefix",
            ));
        }
        Ok(Destination {
            e164,
            dial: format!("{}{body}", c.outside_prefix),
            international,
        })
    }
}

/// NANP (country code 1) national significant numbers: `NPA NXX XXXX`, N = 2–9 (the NANP
/// numbering plan; which codes are reserved or special is NANPA's administration). Refuses what
/// is not a subscriber number: operator and carrier access (leading 0/1), N11 service codes,
/// reserved and non-geographic service area codes, 555-1212 directory assistance, carrier access
/// and test exchanges. 900 area codes and 976 exchanges are premium rate. Which `+1` areas are other
/// countries is policy, not structure: `international_areas`.
fn nanp(nsn: &str) -> Result<Rate, Fault> {
    use Fault::{Malformed, Service};
    let d = nsn.as_bytes();
    if matches!(d.first(), Some(b'0' | b'1')) {
        return Err(Malformed(
            "a NANP area code starts with 2-9 (a leading 0 or 1 reaches an operator or a \
             carrier access code)",
        ));
    }
    if d.len() < 10 {
        return Err(Malformed(
            "fewer than 10 digits after +1 (NANP: area code, exchange, line number)",
        ));
    }
    if d.len() > 10 {
        return Err(Malformed(
            "more than 10 digits after +1 (NANP: area code, exchange, line number)",
        ));
    }
    let three = |s: &[u8]| s.iter().fold(0u16, |n, &b| n * 10 + u16::from(b - b'0'));
    let (npa, nxx) = (three(&d[..3]), three(&d[3..6]));
    let line = &nsn[6..];
    let mut rate = Rate::Ordinary;
    match npa {
        _ if npa % 100 == 11 => {
            return Err(Malformed(
                "an N11 code is a service code, never an area code",
            ));
        }
        _ if npa / 10 % 10 == 9 => {
            return Err(Malformed("N9X area codes are reserved for expansion"));
        }
        370..=379 | 960..=969 => return Err(Malformed("37X and 96X area codes are reserved")),
        200 | 300 | 400 | 555 => {
            return Err(Malformed(
                "an unassigned easily recognisable code, not an area code",
            ));
        }
        822 | 880..=887 | 889 => {
            return Err(Service(
                "a reserved or paid toll-free code (the caller is billed)",
            ));
        }
        456 => return Err(Service("456: inbound international carrier services")),
        500 | 521..=529 | 533 | 544 | 566 | 577 | 588 => {
            return Err(Service(
                "5XX personal communications services (the caller pays for the forwarded call)",
            ));
        }
        600 => return Err(Service("600: Canadian non-geographic tariffed services")),
        700 => return Err(Service("700: carrier-specific services")),
        710 => return Err(Service("710: US government special services")),
        900 => rate = Rate::Premium,
        _ => {}
    }
    if matches!(d[3], b'0' | b'1') {
        return Err(Malformed("a NANP exchange code starts with 2-9"));
    }
    match nxx {
        _ if nxx % 100 == 11 => Err(Service(
            "an N11 service code (411 directory assistance, 911 emergency, ...) as the exchange",
        )),
        555 if line == "1212" => Err(Service("555-1212 directory assistance (a chargeable call)")),
        950 => Err(Service("950: carrier access codes")),
        958 | 959 => Err(Service("958 and 959: carrier test codes")),
        976 => Ok(Rate::Premium),
        _ => Ok(rate),
    }
}

/// UK (country code 44) national significant numbers: the number ranges of the Ofcom National
/// Telephone Numbering Plan with their lengths (9 or 10 digits). Refuses a leading 0 (the trunk
/// prefix: `+44 0…` is how the "+44 00 1 212…" trick reaches the USA), ranges not in use,
/// 070 personal numbering and 076 paging (except 07624, Isle of Man mobiles). 09 and
/// 0871–0873 are premium rate.
fn uk(nsn: &str) -> Result<Rate, Fault> {
    use Fault::{Malformed, Service};
    let (lengths, rate): (&[usize], Rate) = match nsn.as_bytes() {
        [b'0', ..] => {
            return Err(Malformed(
                "a UK number after +44 never starts with 0 (the trunk prefix; behind it, 00 \
                 reaches another country)",
            ));
        }
        [] | [_] => return Err(Malformed("too few digits after +44")),
        [b'1', ..] => (&[9, 10], Rate::Ordinary),
        [b'2' | b'3', ..] | [b'5', b'5', ..] => (&[10], Rate::Ordinary),
        [b'7', b'0', ..] => {
            return Err(Service(
                "070 personal numbering (the caller pays for the forwarded call)",
            ));
        }
        [b'7', b'6', b'2', b'4', ..] => (&[10], Rate::Ordinary),
        [b'7', b'6', ..] => return Err(Service("076 radiopaging")),
        [b'7', ..]
        | [b'8', b'0', b'8', ..]
        | [b'8', b'4', b'2'..=b'5', ..]
        | [b'8', b'7', b'0', ..] => (&[10], Rate::Ordinary),
        [b'8', b'0', b'0', ..] => (&[9, 10], Rate::Ordinary),
        [b'8', b'7', b'1'..=b'3', ..] | [b'9', ..] => (&[10], Rate::Premium),
        _ => {
            return Err(Malformed(
                "not a UK number range in use (04, 05 other than 055, 06, and 08 other than \
                 0800, 0808, 0842-0845, 0870-0873 are not in use)",
            ));
        }
    };
    let n = nsn.len();
    if n < lengths[0] {
        Err(Malformed("too few digits for this UK number range"))
    } else if n > lengths[lengths.len() - 1] {
        Err(Malformed("too many digits for this UK number range"))
    } else if !lengths.contains(&n) {
        Err(Malformed("wrong number of digits for this UK number range"))
    } else {
        Ok(rate)
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

    fn plan(f: impl FnOnce(&mut Options)) -> DialPlan {
        let mut c = Options::default();
        f(&mut c);
        DialPlan::new(c)
    }
    fn g(d: &str) -> Number {
        Number::Global(d.into())
    }
    fn s(d: &str) -> Number {
        Number::Site(d.into())
    }

    #[test]
    fn patterns() {
        assert!(pattern_matches("+1900*", "+19005550142"));
        assert!(pattern_matches("+1XXX976*", "+12129761234"));
        assert!(!pattern_matches("+1XXX976*", "+12125551234"));
        assert!(pattern_matches("+1212555XXXX", "+12125551234"));
        assert!(!pattern_matches("+1212555XXXX", "+121255512345"));
        assert!(pattern_matches("+*", "+44"));
    }

    #[test]
    fn nanp_defaults() {
        let p = plan(|_| {});
        let d = p.resolve(&g("12125550142")).unwrap();
        assert_eq!(d.e164, "+12125550142");
        assert_eq!(d.dial, "12125550142");
        assert!(!d.international);
        // Site forms: with national prefix, without prefix (no area code configured).
        assert_eq!(p.resolve(&s("12125550142")).unwrap().e164, "+12125550142");
        assert_eq!(p.resolve(&s("2125550142")).unwrap().e164, "+12125550142");
        assert_eq!(
            p.resolve(&s("011442012345678")),
            Err(DialError::International("+442012345678".into()))
        );
        // Toll fraud defaults.
        assert_eq!(
            p.resolve(&g("19005550142")),
            Err(DialError::Premium("+19005550142".into()))
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
        // Issue 21: `+1 011 44…` dialled `1011…`, a carrier access code then 44…
        assert!(matches!(
            p.resolve(&g("101144207946")),
            Err(DialError::Malformed(_, why)) if why.contains("international prefix")
        ));
        assert!(matches!(
            p.resolve(&g("12125551212")),
            Err(DialError::Service(_, why)) if why.contains("directory assistance")
        ));
        // The other countries inside +1 are international; US and Canada are not.
        assert_eq!(
            p.resolve(&g("18095550100")),
            Err(DialError::International("+18095550100".into()))
        );
        assert!(!p.resolve(&g("14165550123")).unwrap().international);
        let open = plan(|c| c.allow_international = true);
        let dr = open.resolve(&g("18095550100")).unwrap();
        assert_eq!((dr.dial.as_str(), dr.international), ("18095550100", true));
        let opt_out = plan(|c| c.international_areas.clear());
        assert!(!opt_out.resolve(&g("18095550100")).unwrap().international);
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
        let intl = p.resolve(&s("0012125550142")).unwrap();
        assert_eq!(
            (intl.dial.as_str(), intl.international),
            ("9,0012125550142", true)
        );
        assert_eq!(
            p.resolve(&g("449098765432")),
            Err(DialError::Premium("+449098765432".into()))
        );
    }

    #[test]
    fn uk_trunk_prefix_tricks() {
        let p = plan(|c| {
            c.country_code = "44".into();
            c.national_prefix = "0".into();
            c.international_prefix = "00".into();
        });
        // Issue 21: these dialled 0012125551212 (USA) and 00909876543 (+90).
        for n in ["44012125551212", "440909876543"] {
            assert!(
                matches!(p.resolve(&g(n)), Err(DialError::Malformed(..))),
                "{n}"
            );
        }
        // Even with international calls allowed: the real number must be written as such.
        let open = plan(|c| {
            c.country_code = "44".into();
            c.national_prefix = "0".into();
            c.international_prefix = "00".into();
            c.allow_international = true;
        });
        assert!(matches!(
            open.resolve(&g("44012125550142")),
            Err(DialError::Malformed(..))
        ));
        assert_eq!(
            open.resolve(&g("12125550142")).unwrap().dial,
            "0012125550142"
        );
        // Built-in UK premium ranges hold without a `premium` list.
        let bare = plan(|c| {
            c.country_code = "44".into();
            c.national_prefix = "0".into();
            c.international_prefix = "00".into();
            c.premium.clear();
        });
        assert_eq!(
            bare.resolve(&g("449098765432")),
            Err(DialError::Premium("+449098765432".into()))
        );
    }

    #[test]
    fn final_guard_catches_prefixes_that_overlap() {
        // Russia's old plan: trunk prefix 8, international 8~10. An NSN starting `10` passes
        // the prefix test (it starts with neither) but `8` + `10…` is the international prefix.
        let p = plan(|c| {
            c.country_code = "7".into();
            c.national_prefix = "8".into();
            c.international_prefix = "810".into();
            c.international_areas.clear();
        });
        assert!(matches!(
            p.resolve(&g("7101212555014")),
            Err(DialError::Malformed(_, why)) if why.contains("international prefix")
        ));
        assert_eq!(p.resolve(&g("74951234567")).unwrap().dial, "84951234567");
    }

    #[test]
    fn local_numbers_that_would_start_a_prefix_or_service_code_are_dialled_nationally() {
        let p = plan(|c| {
            c.country_code = "49".into();
            c.area_code = "30".into();
            c.national_prefix = "0".into();
            c.international_prefix = "00".into();
            c.strip_local_area = true;
        });
        assert_eq!(p.resolve(&g("4930223456")).unwrap().dial, "223456");
        // `+49 30 0…` would dial a bare `0…` locally, `+49 30 1…` a service code: national
        // form instead.
        assert_eq!(p.resolve(&g("49300123456")).unwrap().dial, "0300123456");
        assert_eq!(p.resolve(&g("4930110123")).unwrap().dial, "030110123");
        assert_eq!(
            p.resolve(&g("4930")),
            Err(DialError::Invalid("+4930".into()))
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
