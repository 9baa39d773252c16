//! PURE: the T.30 options of one outgoing fax attempt — ECM, highest speed, V.17 — from the
//! defaults (`[fax_options]`), the destination's `[[fax_route]]`, the line and the attempt's
//! number.
//!
//! Order, per option: the first `[[fax_route]]` whose pattern matches the destination, else the
//! line's own setting (`[[modem]] disable_*_after_retry`), else `[fax_options]`. What the line
//! can do is a ceiling none of them lifts: a line without ECM (`[[modem]] ecm = false`) never
//! sends with ECM, and `max_speed` never goes past `[[modem]] max_rate` (nor, on a modem, past
//! what it says it modulates: the line applies that itself).
//!
//! The per-retry thresholds count the job's dials since the last operator retry, this one
//! included (as `retry.max_dials` counts them): `disable_ecm_after_retry = 1` sends attempt 1
//! with ECM and attempt 2 on without. A far end that keeps failing in ECM (T.30 Annex A:
//! PPR after PPR, or a lost RR/CTC exchange) often takes the fax without it; a line that trains
//! at V.17 but loses pages often carries V.29 (T.30 §5.3.6.1.3 leaves the choice of modulation to
//! the transmitter).
//!
//! Each attempt's options and the keys that set them are kept in the attempt
//! ([`FaxAttemptOptions`]) and logged, so an operator sees why attempt 3 went without ECM.

use serde::{Deserialize, Serialize};

use crate::fax::t30::EngineConfig;
use crate::job::FaxAttemptOptions;
use crate::mail::dialplan::pattern_matches;

/// The fastest rate without V.17: V.29 9600 (T.30 Table 2 bits 11–14).
pub const V29_MAX_BPS: u32 = 9600;

/// The T.30 signalling rates `max_speed` and `max_rate` take (T.30 Table 2, bits 11–14).
pub const FAX_SPEEDS: [u32; 6] = [2400, 4800, 7200, 9600, 12000, 14400];

/// Most `[[fax_route]]` entries (ours): each outgoing attempt scans them in order.
pub const MAX_FAX_ROUTES: usize = 1000;

/// Largest `disable_*_after_retry` threshold: `retry.max_dials`' own upper bound, past which
/// no attempt is made.
pub const MAX_RETRY_THRESHOLD: u32 = 1000;

/// `[fax_options]`: the T.30 options every outgoing fax is sent with, on every kind of line,
/// unless a `[[fax_route]]` for its destination or the line's `[[modem]]` entry says otherwise
/// (resolved per attempt by [`resolve`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaxOptions {
    /// Use T.30 Annex A error correction when the far end offers it.
    pub ecm: bool,
    /// Highest signalling rate to send at, bit/s (one of [`FAX_SPEEDS`]); the line's own
    /// limit (`[[modem]] max_rate`, what the modem modulates) still applies.
    pub max_speed: u32,
    /// From attempt N+1 on, send without ECM (a far end or line that fails in ECM often gets
    /// the fax through without it); 0: never.
    pub disable_ecm_after_retry: u32,
    /// From attempt N+1 on, send without V.17, so at V.29 9600 at most (a line that trains at
    /// 14400 but loses pages often carries V.29); 0: never.
    pub disable_v17_after_retry: u32,
}

impl Default for FaxOptions {
    fn default() -> Self {
        FaxOptions {
            ecm: true,
            max_speed: 14400,
            disable_ecm_after_retry: 0,
            disable_v17_after_retry: 0,
        }
    }
}

/// One `[[fax_route]]`: outgoing faxes to `numbers` get these options over `[fax_options]`
/// and the line's (absent keys keep those). The first entry whose pattern matches the fax's
/// E.164 destination applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaxRoute {
    /// Name shown in logs and in the attempt's options.
    pub name: String,
    /// E.164 patterns of the destinations (as `dialplan.allow`: `+`, digits, `X`, `*` last).
    pub numbers: Vec<String>,
    /// Use ECM.
    #[serde(default)]
    pub ecm: Option<bool>,
    /// Highest signalling rate, bit/s.
    #[serde(default)]
    pub max_speed: Option<u32>,
    /// From attempt N+1 on, no ECM; 0: never.
    #[serde(default)]
    pub disable_ecm_after_retry: Option<u32>,
    /// From attempt N+1 on, no V.17; 0: never.
    #[serde(default)]
    pub disable_v17_after_retry: Option<u32>,
}

/// What a line lets outgoing faxes use, and its own per-retry settings. Every kind of line
/// gives one: a `[[modem]]` (`From<&config::Modem>` in `config`), the loopback line
/// ([`LineOptions::full`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineOptions {
    /// How the line is named in the reasons, e.g. `[[modem]] fax0`.
    pub label: String,
    /// The line can do ECM.
    pub ecm: bool,
    /// The line's highest rate, bit/s.
    pub max_bps: u32,
    /// The line's `disable_ecm_after_retry`, if set.
    pub disable_ecm_after_retry: Option<u32>,
    /// The line's `disable_v17_after_retry`, if set.
    pub disable_v17_after_retry: Option<u32>,
}

impl LineOptions {
    /// A line with everything our T.30 engine does (the loopback line), and no settings.
    pub fn full(label: &str) -> LineOptions {
        LineOptions {
            label: label.into(),
            ecm: true,
            max_bps: 14400,
            disable_ecm_after_retry: None,
            disable_v17_after_retry: None,
        }
    }
}

/// The first `[[fax_route]]` with a pattern matching `e164`.
pub fn route_for<'a>(routes: &'a [FaxRoute], e164: &str) -> Option<&'a FaxRoute> {
    routes
        .iter()
        .find(|r| r.numbers.iter().any(|p| pattern_matches(p, e164)))
}

/// The options attempt number `attempt` (1-based, see the module) of a fax to `e164` is sent
/// with on `line`.
pub fn resolve(
    defaults: &FaxOptions,
    routes: &[FaxRoute],
    line: &LineOptions,
    e164: &str,
    attempt: u32,
) -> FaxAttemptOptions {
    let route = route_for(routes, e164);
    let by_route = |what: &str| match route {
        Some(r) => format!("[[fax_route]] `{}` {what}", r.name),
        None => format!("[fax_options] {what}"),
    };
    let mut why = Vec::new();

    // ECM: the route's or the default's choice, within the line's means.
    let route_ecm = route.and_then(|r| r.ecm.map(|e| (r, e)));
    let mut ecm = route_ecm.map_or(defaults.ecm, |(_, e)| e);
    if !ecm {
        why.push(match route_ecm {
            Some((r, _)) => format!("ECM off: [[fax_route]] `{}` ecm = false", r.name),
            None => "ECM off: [fax_options] ecm = false".into(),
        });
    }
    if ecm && !line.ecm {
        ecm = false;
        why.push(format!("ECM off: {} ecm = false", line.label));
    }
    // The threshold: the route's, else the line's, else the default's; 0 is never.
    let threshold = |of_route: Option<u32>, of_line: Option<u32>, default: u32, key: &str| match (
        of_route, of_line,
    ) {
        (Some(n), _) => (n, by_route(&format!("{key} = {n}"))),
        (None, Some(n)) => (n, format!("{} {key} = {n}", line.label)),
        (None, None) => (default, format!("[fax_options] {key} = {default}")),
    };
    let (n, said) = threshold(
        route.and_then(|r| r.disable_ecm_after_retry),
        line.disable_ecm_after_retry,
        defaults.disable_ecm_after_retry,
        "disable_ecm_after_retry",
    );
    if ecm && n > 0 && attempt > n {
        ecm = false;
        why.push(format!("ECM off: attempt {attempt} is past {said}"));
    }

    // Speed: the route's or the default's, within the line's.
    let speed = route.and_then(|r| r.max_speed);
    let mut max_bps = speed.unwrap_or(defaults.max_speed);
    if max_bps < 14400 {
        why.push(format!(
            "at most {max_bps} bit/s: {}",
            match (route, speed) {
                (Some(r), Some(_)) => format!("[[fax_route]] `{}` max_speed = {max_bps}", r.name),
                _ => format!("[fax_options] max_speed = {max_bps}"),
            }
        ));
    }
    if line.max_bps < max_bps {
        max_bps = line.max_bps;
        why.push(format!(
            "at most {max_bps} bit/s: {} max_rate = {max_bps}",
            line.label
        ));
    }
    let mut v17 = true;
    let (n, said) = threshold(
        route.and_then(|r| r.disable_v17_after_retry),
        line.disable_v17_after_retry,
        defaults.disable_v17_after_retry,
        "disable_v17_after_retry",
    );
    if n > 0 && attempt > n {
        v17 = false;
        max_bps = max_bps.min(V29_MAX_BPS);
        why.push(format!(
            "V.17 off (V.29 {V29_MAX_BPS} at most): attempt {attempt} is past {said}"
        ));
    }

    let why = if why.is_empty() {
        format!("attempt {attempt}: ECM on, up to 14400 bit/s (the defaults)")
    } else {
        format!("attempt {attempt}: {}", why.join("; "))
    };
    FaxAttemptOptions {
        attempt,
        ecm,
        max_bps,
        v17,
        route: route.map(|r| r.name.clone()),
        why,
    }
}

/// Narrows a line's sending engine to `opts`: never more than the line already allows.
pub fn apply(opts: &FaxAttemptOptions, engine: &mut EngineConfig) {
    engine.ecm &= opts.ecm;
    engine.v17 &= opts.v17;
    engine.max_bps = engine.max_bps.min(opts.max_bps);
}

/// The options in a few words for logs and tables, e.g. `ECM off, at most 9600 bit/s, no V.17`.
pub fn summary(opts: &FaxAttemptOptions) -> String {
    format!(
        "ECM {}, at most {} bit/s{}",
        if opts.ecm { "on" } else { "off" },
        opts.max_bps,
        if opts.v17 { "" } else { ", no V.17" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, numbers: &[&str], f: impl FnOnce(&mut FaxRoute)) -> FaxRoute {
        let mut r = FaxRoute {
            name: name.into(),
            numbers: numbers.iter().map(|n| n.to_string()).collect(),
            ecm: None,
            max_speed: None,
            disable_ecm_after_retry: None,
            disable_v17_after_retry: None,
        };
        f(&mut r);
        r
    }

    fn modem(f: impl FnOnce(&mut LineOptions)) -> LineOptions {
        let mut l = LineOptions::full("[[modem]] fax0");
        f(&mut l);
        l
    }

    const NYC: &str = "+12125550123";

    /// (ecm, max_bps, v17) of a resolution.
    fn eff(o: &FaxAttemptOptions) -> (bool, u32, bool) {
        (o.ecm, o.max_bps, o.v17)
    }

    #[test]
    fn fax_options_defaults_send_everything_on_every_attempt() {
        let d = FaxOptions::default();
        for attempt in [1, 2, 12, 1000] {
            let o = resolve(&d, &[], &LineOptions::full("loopback"), NYC, attempt);
            assert_eq!(eff(&o), (true, 14400, true));
            assert_eq!(o.attempt, attempt);
            assert_eq!(o.route, None);
            assert!(o.why.contains("the defaults"), "{}", o.why);
        }
    }

    #[test]
    fn fax_options_defaults_apply_without_a_matching_route() {
        let d = FaxOptions {
            ecm: false,
            max_speed: 9600,
            ..FaxOptions::default()
        };
        let routes = [route("paris", &["+331*"], |r| r.ecm = Some(true))];
        let o = resolve(&d, &routes, &modem(|_| {}), NYC, 1);
        assert_eq!(eff(&o), (false, 9600, true));
        assert!(o.why.contains("[fax_options] ecm = false"), "{}", o.why);
        assert!(
            o.why.contains("[fax_options] max_speed = 9600"),
            "{}",
            o.why
        );
    }

    #[test]
    fn fax_options_the_first_matching_route_overrides_the_defaults() {
        let d = FaxOptions {
            ecm: false,
            max_speed: 9600,
            disable_v17_after_retry: 1,
            ..FaxOptions::default()
        };
        let routes = [
            route("nyc-exact", &["+1212555XXXX"], |r| {
                r.ecm = Some(true);
                r.max_speed = Some(14400);
                r.disable_v17_after_retry = Some(0);
            }),
            route("nanp", &["+1*"], |r| r.ecm = Some(false)),
        ];
        let o = resolve(&d, &routes, &modem(|_| {}), NYC, 3);
        assert_eq!(eff(&o), (true, 14400, true), "{}", o.why);
        assert_eq!(o.route.as_deref(), Some("nyc-exact"));
        // A route's absent keys keep the defaults.
        let o = resolve(&d, &routes, &modem(|_| {}), "+13125550000", 2);
        assert_eq!(o.route.as_deref(), Some("nanp"));
        assert_eq!(eff(&o), (false, 9600, false), "{}", o.why);
        assert!(
            o.why.contains("[[fax_route]] `nanp` ecm = false"),
            "{}",
            o.why
        );
        assert!(
            o.why.contains("[fax_options] disable_v17_after_retry = 1"),
            "{}",
            o.why
        );
    }

    #[test]
    fn fax_options_the_line_caps_ecm_and_speed_whatever_the_route_says() {
        let routes = [route("all", &["+*"], |r| {
            r.ecm = Some(true);
            r.max_speed = Some(14400);
        })];
        let line = modem(|l| {
            l.ecm = false;
            l.max_bps = 7200;
        });
        let o = resolve(&FaxOptions::default(), &routes, &line, NYC, 1);
        assert_eq!(eff(&o), (false, 7200, true));
        assert!(o.why.contains("[[modem]] fax0 ecm = false"), "{}", o.why);
        assert!(
            o.why.contains("[[modem]] fax0 max_rate = 7200"),
            "{}",
            o.why
        );
    }

    #[test]
    fn fax_options_line_thresholds_override_defaults_and_routes_override_lines() {
        let d = FaxOptions {
            disable_ecm_after_retry: 5,
            ..FaxOptions::default()
        };
        let line = modem(|l| l.disable_ecm_after_retry = Some(1));
        let o = resolve(&d, &[], &line, NYC, 2);
        assert!(!o.ecm);
        assert!(
            o.why
                .contains("attempt 2 is past [[modem]] fax0 disable_ecm_after_retry = 1"),
            "{}",
            o.why
        );
        // A route's 0 (never) beats the line's threshold.
        let routes = [route("keep-ecm", &["+1212*"], |r| {
            r.disable_ecm_after_retry = Some(0)
        })];
        for attempt in [1, 2, 50] {
            assert!(resolve(&d, &routes, &line, NYC, attempt).ecm);
        }
        // Another destination: the line's again.
        assert!(!resolve(&d, &routes, &line, "+13125550000", 2).ecm);
    }

    #[test]
    fn fax_options_per_retry_thresholds_start_at_attempt_n_plus_one() {
        let d = FaxOptions {
            disable_ecm_after_retry: 1,
            disable_v17_after_retry: 2,
            ..FaxOptions::default()
        };
        let line = LineOptions::full("loopback");
        let got: Vec<_> = (1..=4)
            .map(|a| eff(&resolve(&d, &[], &line, NYC, a)))
            .collect();
        assert_eq!(
            got,
            [
                (true, 14400, true),
                (false, 14400, true),
                (false, 9600, false),
                (false, 9600, false),
            ]
        );
        let o = resolve(&d, &[], &line, NYC, 3);
        assert!(
            o.why
                .contains("ECM off: attempt 3 is past [fax_options] disable_ecm_after_retry = 1"),
            "{}",
            o.why
        );
        assert!(
            o.why
                .contains("V.17 off (V.29 9600 at most): attempt 3 is past [fax_options] disable_v17_after_retry = 2"),
            "{}",
            o.why
        );
        // V.17 off keeps a lower speed limit.
        let slow = FaxOptions {
            max_speed: 4800,
            ..d
        };
        assert_eq!(
            eff(&resolve(&slow, &[], &line, NYC, 3)),
            (false, 4800, false)
        );
    }

    #[test]
    fn fax_options_apply_only_narrows_the_engine() {
        let o = resolve(
            &FaxOptions {
                max_speed: 12000,
                ..FaxOptions::default()
            },
            &[],
            &LineOptions::full("loopback"),
            NYC,
            1,
        );
        // A modem that probed at 9600 without ECM stays there.
        let mut e = EngineConfig {
            max_bps: 9600,
            ecm: false,
            ..EngineConfig::default()
        };
        apply(&o, &mut e);
        assert_eq!((e.ecm, e.max_bps, e.v17), (false, 9600, true));
        let mut e = EngineConfig::default();
        apply(&o, &mut e);
        assert_eq!((e.ecm, e.max_bps, e.v17), (true, 12000, true));
        let off = FaxAttemptOptions {
            ecm: false,
            v17: false,
            max_bps: 9600,
            ..o
        };
        apply(&off, &mut e);
        assert_eq!((e.ecm, e.max_bps, e.v17), (false, 9600, false));
        assert_eq!(summary(&off), "ECM off, at most 9600 bit/s, no V.17");
    }
}
