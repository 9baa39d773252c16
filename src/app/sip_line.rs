//! The SIP lines of the pool (`[[sip]]`): fax over SIP with T.38 (T.38 Annex D, RFC 3362)
//! instead of a modem, served by the same job engine, dial plan, routing and reports.
//!
//! **Leases.** A SIP line carries up to `max_calls` calls at once; the scheduler leases lines
//! one call each, so a SIP line is `max_calls` leasable *slots* on the board: `name` (the
//! line itself, where its registration shows) and `name:2` … `name:N` ([`slot_names`]).
//! Line names cannot hold `:` (config validation), so a slot name always leads back to its
//! line ([`line_of`]). Routes name the line (`line = "name"`); a received fax's line is the
//! line's name whichever slot shows the call.
//!
//! **Outbound only through the trunk.** A fax job's number (the dial plan's, already checked
//! against its allow/deny lists) becomes `sip:<number>@<trunk>` ([`request_uri`]): nothing
//! else is ever dialled, so a SIP line cannot be turned into a free route to anywhere (SIP toll
//! fraud is the same fraud as on a modem).

use crate::config::{Config, ModemRole, Sip, SipTransport};

/// Separates a SIP line's name from its slot number in lease names (`trunk:2`).
pub const SLOT_SEP: char = ':';

/// The leasable slots of SIP line `s`: its name, then `name:2` … `name:max_calls`.
pub fn slot_names(s: &Sip) -> Vec<String> {
    (1..=s.max_calls.max(1))
        .map(|n| {
            if n == 1 {
                s.name.clone()
            } else {
                format!("{}{SLOT_SEP}{n}", s.name)
            }
        })
        .collect()
}

/// The line a slot (or a line name) belongs to.
pub fn line_of(slot: &str) -> &str {
    slot.split_once(SLOT_SEP).map_or(slot, |(line, _)| line)
}

/// The `[[sip]]` entry of line or slot `name`, if it is one.
pub fn config_of<'a>(cfg: &'a Config, name: &str) -> Option<&'a Sip> {
    let line = line_of(name);
    cfg.sips.iter().find(|s| s.name == line)
}

/// `send`, `receive` or `both`, as the board shows a role.
pub fn role_word(r: ModemRole) -> &'static str {
    match r {
        ModemRole::Send => "send",
        ModemRole::Receive => "receive",
        ModemRole::Both => "both",
    }
}

/// What the console's lines page shows of a SIP line's configuration.
pub fn configured(s: &Sip) -> Vec<(&'static str, String)> {
    let transport = match s.transport {
        SipTransport::Udp => "UDP",
        SipTransport::Tcp => "TCP",
    };
    vec![
        ("device", format!("SIP line, {transport} on {}", s.listen)),
        (
            "trunk",
            s.trunk()
                .map(str::to_string)
                .unwrap_or_else(|| "none (receives only)".into()),
        ),
        (
            "user",
            format!(
                "{} (auth {}, {})",
                s.user,
                s.auth_name(),
                if s.password_file.is_some() {
                    "password file"
                } else {
                    "no password"
                }
            ),
        ),
        ("local ID", s.local_id.clone()),
        ("max calls", s.max_calls.to_string()),
        (
            "T.38",
            format!(
                "version {}, max {} bit/s, redundancy {}, datagram {} bytes",
                s.t38_version, s.t38_max_bit_rate, s.udptl_redundancy, s.udptl_max_datagram
            ),
        ),
        ("ECM", if s.ecm { "on" } else { "off" }.into()),
    ]
}

/// The request URI that dials `number` through line `s`'s trunk (RFC 3261 §19.1.1):
/// `sip:<number>@<trunk>`, with `;transport=tcp` on a TCP line (§19.1.4). The number is the
/// dial plan's (`+` and digits); anything else is refused rather than passed to the trunk,
/// and a line without a trunk places no calls.
pub fn request_uri(s: &Sip, number: &str) -> Result<String, String> {
    let digits = number.strip_prefix('+').unwrap_or(number);
    if digits.is_empty() || digits.len() > 32 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{number}` is not a number a SIP trunk is asked to dial (+ and digits only)"
        ));
    }
    let Some(trunk) = s.trunk() else {
        return Err(format!("SIP line {} has no trunk to call through", s.name));
    };
    let transport = match s.transport {
        SipTransport::Udp => "",
        SipTransport::Tcp => ";transport=tcp",
    };
    Ok(format!("sip:{number}@{trunk}{transport}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(toml: &str) -> Sip {
        toml::from_str(&format!("name = \"trunk\"\nuser = \"fax\"\n{toml}")).unwrap()
    }

    #[test]
    fn slots_lead_back_to_their_line() {
        let s = line("max_calls = 3");
        assert_eq!(slot_names(&s), ["trunk", "trunk:2", "trunk:3"]);
        for slot in slot_names(&s) {
            assert_eq!(line_of(&slot), "trunk");
        }
        assert_eq!(line_of("modem_1"), "modem_1");
        let mut cfg = Config::default();
        cfg.sips.push(s);
        assert_eq!(config_of(&cfg, "trunk:3").map(|s| s.max_calls), Some(3));
        assert!(config_of(&cfg, "loopback").is_none());
    }

    #[test]
    fn calls_go_only_through_the_trunk() {
        let s = line("proxy = \"127.0.0.1:5070\"");
        assert_eq!(
            request_uri(&s, "+12125550123").unwrap(),
            "sip:+12125550123@127.0.0.1:5070"
        );
        let t = line("registrar = \"pbx.example\"\ntransport = \"tcp\"");
        assert_eq!(
            request_uri(&t, "0012125550123").unwrap(),
            "sip:0012125550123@pbx.example;transport=tcp"
        );
        // Whatever is not a plain number never reaches the trunk: no other host, no user part
        // of another domain, no URI parameters.
        for bad in [
            "",
            "+",
            "1212@evil.example",
            "1212;transport=tcp",
            "sip:1@x",
            "12 12",
            "1,2",
        ] {
            assert!(request_uri(&s, bad).is_err(), "{bad}");
        }
        assert!(request_uri(&line(""), "+12125550123").is_err(), "no trunk");
    }
}
