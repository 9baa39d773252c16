//! PURE: the onramp routing table — which mailboxes a received fax goes to.
//!
//! This module owns matching a reception's keys (line, DID, caller ID, remote station ID, T.33
//! subaddress) against the `[[route]]` table of the configuration. The first route whose given
//! keys all match wins; a key a route leaves out matches anything, and the table must end with
//! a route that leaves every key out (the default), so no fax goes unrouted.
//!
//! A match value is one of (ours, documented in `firmware-config/faxgate.toml`):
//! - exact text (`5550002`, `ACME SALES`),
//! - a prefix (`555*`),
//! - a digit pattern, where `X` stands for any one digit and a final `*` for any rest
//!   (`+1212XXX*`). A value counts as a digit pattern when it holds only digits, `+`, `X` and
//!   an optional final `*`; any other value is text, so a station ID such as `XEROX` is matched
//!   literally.
//!
//! Numbers (DID, caller, subaddress) are compared after dropping the separators people and
//! modems write (space, `-`, `.`, `(`, `)`), so `212-555-0123` and `2125550123` are the same.
//! Station IDs are compared with surrounding spaces trimmed and inner runs of spaces collapsed,
//! without regard to case: T.30 §5.3.6.2.4 pads the 20-character TSI/CSI with spaces, and
//! Class 2 modems report it padded or not.

use thiserror::Error;

use crate::config::Route;

/// The keys of one reception that routes match on. `None` means the modem or sidecar did not
/// report it; a route that asks for that key does not match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteKeys<'a> {
    /// Modem (line) name from `[[modem]]`.
    pub line: Option<&'a str>,
    /// Dialled number as the modem reports it (`NDID=`).
    pub did: Option<&'a str>,
    /// Caller ID (`NMBR=`).
    pub caller: Option<&'a str>,
    /// Remote station ID (TSI, T.30 §5.3.6.2.4).
    pub csid: Option<&'a str>,
    /// T.33 subaddress (SUB frame, T.30 §5.3.6.2.9).
    pub subaddress: Option<&'a str>,
}

/// Which kind of value a key holds, deciding how it is normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    /// A modem name: compared as written.
    Name,
    /// A telephone number or subaddress: separators dropped.
    Number,
    /// A station ID: trimmed, spaces collapsed, case ignored.
    StationId,
}

/// One compiled match value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Matcher {
    /// The whole (normalised) value equals this.
    Exact(String),
    /// The (normalised) value starts with this.
    Prefix(String),
    /// Digit pattern: `None` is `X` (any digit), `Some(c)` that character; `rest` true when the
    /// pattern ended in `*`.
    Digits {
        elems: Vec<Option<char>>,
        rest: bool,
    },
}

impl Matcher {
    fn compile(raw: &str, kind: KeyKind) -> Matcher {
        let (body, rest) = match raw.strip_suffix('*') {
            Some(b) => (b, true),
            None => (raw, false),
        };
        let is_digit_pattern = kind != KeyKind::Name
            && body.contains('X')
            && body
                .chars()
                .all(|c| c.is_ascii_digit() || c == '+' || c == 'X');
        if is_digit_pattern {
            return Matcher::Digits {
                elems: body
                    .chars()
                    .map(|c| if c == 'X' { None } else { Some(c) })
                    .collect(),
                rest,
            };
        }
        let norm = normalise(body, kind);
        if rest {
            Matcher::Prefix(norm)
        } else {
            Matcher::Exact(norm)
        }
    }

    fn matches(&self, value: &str, kind: KeyKind) -> bool {
        let v = normalise(value, kind);
        match self {
            Matcher::Exact(e) => v == *e,
            Matcher::Prefix(p) => v.starts_with(p.as_str()),
            Matcher::Digits { elems, rest } => {
                let chars: Vec<char> = v.chars().collect();
                if chars.len() < elems.len() || (!rest && chars.len() != elems.len()) {
                    return false;
                }
                elems.iter().zip(&chars).all(|(e, c)| match e {
                    None => c.is_ascii_digit(),
                    Some(want) => want == c,
                })
            }
        }
    }
}

fn normalise(s: &str, kind: KeyKind) -> String {
    match kind {
        KeyKind::Name => s.to_owned(),
        KeyKind::Number => s
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect(),
        KeyKind::StationId => s
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_uppercase(),
    }
}

/// A route's compiled keys.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CompiledRoute {
    line: Option<Matcher>,
    did: Option<Matcher>,
    caller: Option<Matcher>,
    csid: Option<Matcher>,
    subaddress: Option<Matcher>,
}

impl CompiledRoute {
    fn is_catch_all(&self) -> bool {
        self.line.is_none()
            && self.did.is_none()
            && self.caller.is_none()
            && self.csid.is_none()
            && self.subaddress.is_none()
    }

    fn matches(&self, k: &RouteKeys<'_>) -> bool {
        fn one(m: &Option<Matcher>, v: Option<&str>, kind: KeyKind) -> bool {
            match (m, v) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(m), Some(v)) => m.matches(v, kind),
            }
        }
        one(&self.line, k.line, KeyKind::Name)
            && one(&self.did, k.did, KeyKind::Number)
            && one(&self.caller, k.caller, KeyKind::Number)
            && one(&self.csid, k.csid, KeyKind::StationId)
            && one(&self.subaddress, k.subaddress, KeyKind::Number)
    }
}

/// A route table that cannot be used (the configuration check reports the same problems with
/// their keys; this is the library's own guard).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RouteError {
    /// No routes at all.
    #[error("the route table is empty: a default route is needed so no fax goes unrouted")]
    Empty,
    /// The last route has match keys.
    #[error("the last route `{0}` has match keys: the last route must match everything")]
    NoDefault(String),
    /// A route without recipients.
    #[error("route `{0}` has no recipients")]
    NoRecipients(String),
}

/// The compiled `[[route]]` table.
#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: Vec<(Route, CompiledRoute)>,
}

impl RouteTable {
    /// Compiles the table, checking that it ends with a default route and every route has a
    /// recipient.
    pub fn new(routes: &[Route]) -> Result<RouteTable, RouteError> {
        let compiled: Vec<(Route, CompiledRoute)> = routes
            .iter()
            .map(|r| {
                let c = |v: &Option<String>, kind| v.as_deref().map(|v| Matcher::compile(v, kind));
                (
                    r.clone(),
                    CompiledRoute {
                        line: c(&r.line, KeyKind::Name),
                        did: c(&r.did, KeyKind::Number),
                        caller: c(&r.caller, KeyKind::Number),
                        csid: c(&r.csid, KeyKind::StationId),
                        subaddress: c(&r.subaddress, KeyKind::Number),
                    },
                )
            })
            .collect();
        let (last, last_c) = compiled.last().ok_or(RouteError::Empty)?;
        if !last_c.is_catch_all() {
            return Err(RouteError::NoDefault(last.name.clone()));
        }
        if let Some((r, _)) = compiled.iter().find(|(r, _)| r.to.is_empty()) {
            return Err(RouteError::NoRecipients(r.name.clone()));
        }
        Ok(RouteTable { routes: compiled })
    }

    /// The first route whose keys all match. Always some route: the table ends with a default.
    pub fn route(&self, keys: &RouteKeys<'_>) -> &Route {
        self.routes
            .iter()
            .find(|(_, c)| c.matches(keys))
            .map(|(r, _)| r)
            // `new` guarantees a catch-all last route, which matches every key set.
            .unwrap_or_else(|| &self.routes[self.routes.len() - 1].0)
    }

    /// The route named `name`, if any (the inbox sidecar may name one).
    pub fn by_name(&self, name: &str) -> Option<&Route> {
        self.routes.iter().map(|(r, _)| r).find(|r| r.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AttachFormat;

    fn route(name: &str, set: impl FnOnce(&mut Route)) -> Route {
        let mut r = Route::default_route();
        r.name = name.into();
        r.to = vec![format!("{name}@example.com")];
        set(&mut r);
        r
    }

    fn table() -> RouteTable {
        RouteTable::new(&[
            route("line-b", |r| r.line = Some("modem-b".into())),
            route("did-exact", |r| r.did = Some("5550150".into())),
            route("did-prefix", |r| r.did = Some("5551*".into())),
            route("caller-pattern", |r| r.caller = Some("+1212XXX0123".into())),
            route("caller-pattern-rest", |r| {
                r.caller = Some("+1646XXX*".into())
            }),
            route("csid", |r| r.csid = Some("acme sales".into())),
            route("csid-xerox", |r| r.csid = Some("XEROX*".into())),
            route("sub", |r| r.subaddress = Some("42".into())),
            route("two-keys", |r| {
                r.line = Some("modem-c".into());
                r.did = Some("7*".into());
            }),
            route("default", |_| {}),
        ])
        .unwrap()
    }

    #[test]
    fn table_driven() {
        let t = table();
        let k = RouteKeys::default;
        let cases: Vec<(RouteKeys<'_>, &str)> = vec![
            (k(), "default"),
            (
                RouteKeys {
                    line: Some("modem-b"),
                    ..k()
                },
                "line-b",
            ),
            (
                RouteKeys {
                    line: Some("modem-B"),
                    ..k()
                },
                "default",
            ),
            (
                RouteKeys {
                    did: Some("5550150"),
                    ..k()
                },
                "did-exact",
            ),
            (
                RouteKeys {
                    did: Some("555-0150"),
                    ..k()
                },
                "did-exact",
            ),
            (
                RouteKeys {
                    did: Some("55501500"),
                    ..k()
                },
                "default",
            ),
            (
                RouteKeys {
                    did: Some("5551999"),
                    ..k()
                },
                "did-prefix",
            ),
            (
                RouteKeys {
                    caller: Some("+12125550123"),
                    ..k()
                },
                "caller-pattern",
            ),
            (
                RouteKeys {
                    caller: Some("+1 212 555 0123"),
                    ..k()
                },
                "caller-pattern",
            ),
            (
                RouteKeys {
                    caller: Some("+12125550124"),
                    ..k()
                },
                "default",
            ),
            (
                RouteKeys {
                    caller: Some("+1212555012"),
                    ..k()
                },
                "default",
            ),
            (
                RouteKeys {
                    caller: Some("+1212A550123"),
                    ..k()
                },
                "default",
            ),
            (
                RouteKeys {
                    caller: Some("+16465550000999"),
                    ..k()
                },
                "caller-pattern-rest",
            ),
            (
                RouteKeys {
                    caller: Some("+164655"),
                    ..k()
                },
                "default",
            ),
            (
                RouteKeys {
                    csid: Some("  ACME   Sales "),
                    ..k()
                },
                "csid",
            ),
            (
                RouteKeys {
                    csid: Some("ACME SALES 2"),
                    ..k()
                },
                "default",
            ),
            (
                RouteKeys {
                    csid: Some("Xerox WorkCentre"),
                    ..k()
                },
                "csid-xerox",
            ),
            (
                RouteKeys {
                    subaddress: Some("42"),
                    ..k()
                },
                "sub",
            ),
            (
                RouteKeys {
                    subaddress: Some("421"),
                    ..k()
                },
                "default",
            ),
            (
                RouteKeys {
                    line: Some("modem-c"),
                    did: Some("7001"),
                    ..k()
                },
                "two-keys",
            ),
            (
                RouteKeys {
                    line: Some("modem-c"),
                    did: Some("8001"),
                    ..k()
                },
                "default",
            ),
            (
                RouteKeys {
                    did: Some("7001"),
                    ..k()
                },
                "default",
            ),
            // First match wins: line-b comes before did-exact.
            (
                RouteKeys {
                    line: Some("modem-b"),
                    did: Some("5550150"),
                    ..k()
                },
                "line-b",
            ),
        ];
        for (keys, want) in cases {
            assert_eq!(t.route(&keys).name, want, "{keys:?}");
        }
    }

    #[test]
    fn route_carries_its_settings() {
        let t = RouteTable::new(&[
            route("pharmacy", |r| {
                r.did = Some("5550150".into());
                r.format = AttachFormat::Pdf;
                r.admin_copy_on_failure = true;
            }),
            route("default", |_| {}),
        ])
        .unwrap();
        let r = t.route(&RouteKeys {
            did: Some("5550150"),
            ..Default::default()
        });
        assert_eq!(r.format, AttachFormat::Pdf);
        assert_eq!(r.to, vec!["pharmacy@example.com"]);
        assert!(r.admin_copy_on_failure);
        assert_eq!(t.by_name("default").unwrap().name, "default");
        assert!(t.by_name("nope").is_none());
    }

    #[test]
    fn table_must_end_with_default() {
        assert_eq!(RouteTable::new(&[]).unwrap_err(), RouteError::Empty);
        let e = RouteTable::new(&[route("x", |r| r.did = Some("1".into()))]).unwrap_err();
        assert_eq!(e, RouteError::NoDefault("x".into()));
        let e = RouteTable::new(&[route("x", |r| r.to.clear())]).unwrap_err();
        assert_eq!(e, RouteError::NoRecipients("x".into()));
    }

    proptest::proptest! {
        #[test]
        fn any_keys_route_somewhere(
            line in proptest::option::of(".{0,30}"),
            did in proptest::option::of(".{0,30}"),
            caller in proptest::option::of(".{0,30}"),
            csid in proptest::option::of(".{0,30}"),
            sub in proptest::option::of(".{0,30}"),
        ) {
            let t = table();
            let keys = RouteKeys {
                line: line.as_deref(),
                did: did.as_deref(),
                caller: caller.as_deref(),
                csid: csid.as_deref(),
                subaddress: sub.as_deref(),
            };
            let r = t.route(&keys);
            proptest::prop_assert!(!r.to.is_empty());
        }
    }
}
