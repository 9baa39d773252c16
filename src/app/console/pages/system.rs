//! The modems page (`GET /modems`) and the effective configuration (`GET /config`).
//!
//! **Modems**: each line of the pool with its role and state, the device and profile it is
//! configured with, what the modem said about itself when the daemon last opened it (`ATI`,
//! `AT+FCLASS=?`, `AT+FTM=?`/`+FRM=?`, `AT+FTH=?`; T.31 §8 — kept on the board by
//! `app::modems`), the call in progress, the last call and the last error. All from memory.
//!
//! **Config**: the configuration the daemon runs with, as TOML, secrets replaced by
//! [`REDACTED`]: first by [`Config::to_redacted_toml`], then, as a second line of defence for
//! keys added later, every value whose key names a secret ([`is_secret_key`]: passwords,
//! secrets, tokens, private keys) wherever it sits. Files named in the configuration (a
//! password file, TLS keys, the users and tokens files) are shown by path only: their contents
//! are never read here.

use axum::Router;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{Markup, html};

use crate::app::console::auth::Who;
use crate::app::console::{Console, pages};
use crate::app::control::modems_now;
use crate::app::loopback;
use crate::app::status::{ModemProbe, ModemStatus};
use crate::config::{Config, REDACTED};

/// This area's routes.
pub fn routes() -> Router<Console> {
    Router::new()
        .route("/modems", get(modems_page))
        .route("/config", get(config_page))
}

/// True when a configuration key's value is a secret (its name is, or ends in, `password`,
/// `secret`, `token`, `private_key` or `api_key`). Keys naming a file (`password_file`,
/// `tokens_file`, `tls_key`) hold paths, which are not secret.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "secret", "token", "private_key", "api_key"]
        .iter()
        .any(|s| k == *s || k.ends_with(&format!("_{s}")) || k.ends_with(&format!("-{s}")))
}

fn redact_value(v: &mut toml_edit::Value, secret: bool) {
    use toml_edit::Value;
    match v {
        Value::Array(a) => a.iter_mut().for_each(|x| redact_value(x, secret)),
        Value::InlineTable(t) => {
            for (k, x) in t.iter_mut() {
                let s = secret || is_secret_key(k.get());
                redact_value(x, s);
            }
        }
        other if secret => {
            let decor = other.decor().clone();
            *other = Value::from(REDACTED);
            *other.decor_mut() = decor;
        }
        _ => {}
    }
}

fn redact_table(t: &mut toml_edit::Table, secret: bool) {
    for (k, item) in t.iter_mut() {
        let s = secret || is_secret_key(k.get());
        redact_item(item, s);
    }
}

fn redact_item(item: &mut toml_edit::Item, secret: bool) {
    use toml_edit::Item;
    match item {
        Item::Value(v) => redact_value(v, secret),
        Item::Table(t) => redact_table(t, secret),
        Item::ArrayOfTables(a) => a.iter_mut().for_each(|t| redact_table(t, secret)),
        Item::None => {}
    }
}

/// PURE: `toml` with the value of every secret-named key replaced by [`REDACTED`]. Text that
/// does not parse is not shown at all (it cannot be checked).
pub fn redact_secrets(toml: &str) -> String {
    match toml.parse::<toml_edit::DocumentMut>() {
        Ok(mut doc) => {
            redact_table(doc.as_table_mut(), false);
            doc.to_string()
        }
        Err(e) => format!("# the configuration cannot be shown: {e}\n"),
    }
}

/// PURE: the effective configuration as shown: TOML, secrets redacted.
pub fn shown_config(cfg: &Config) -> String {
    redact_secrets(&cfg.to_redacted_toml())
}

async fn config_page(State(c): State<Console>, Extension(who): Extension<Who>) -> Response {
    let text = shown_config(&c.cfg);
    let body = html! {
        h1 { "Configuration" }
        p .muted {
            "The configuration this daemon runs with (files, environment and defaults merged). "
            "Secrets are shown as " code { (REDACTED) } "; files are named, never read here."
        }
        pre .config #config { (text) }
    };
    pages::layout("Configuration", "/config", &who, body).into_response()
}

/// The configured device, profile and settings of a line, as (label, value) rows.
fn configured(cfg: &Config, name: &str) -> Vec<(&'static str, String)> {
    if name == loopback::LINE_NAME && cfg.loopback.enabled {
        let l = &cfg.loopback;
        return vec![
            ("device", "built in: two T.30 engines back to back".into()),
            ("profile", "—".into()),
            ("local ID", l.local_id.clone()),
            ("far end's ID", l.remote_id.clone()),
            (
                "pace",
                if l.pace > 0.0 {
                    format!("{} × a phone line's time", l.pace)
                } else {
                    "as fast as the CPU allows".into()
                },
            ),
        ];
    }
    if let Some(s) = crate::app::sip_line::config_of(cfg, name) {
        return crate::app::sip_line::configured(s);
    }
    let Some(m) = cfg.modems.iter().find(|m| m.name == name) else {
        return vec![("device", "not in the configuration".into())];
    };
    let class = match m.class {
        crate::config::ModemClass::Class1 => "1",
        crate::config::ModemClass::Class1_0 => "1.0",
        crate::config::ModemClass::Class2_0 => "2.0",
    };
    vec![
        ("device", m.device.display().to_string()),
        (
            "profile",
            format!("{} (in {})", m.profile, m.profiles_dir.display()),
        ),
        ("class", class.into()),
        ("local ID", m.local_id.clone()),
        ("rings", m.rings.to_string()),
        ("max rate", format!("{} bit/s", m.max_rate)),
        ("ECM", if m.ecm { "on" } else { "off" }.into()),
    ]
}

fn rates(v: &[u32]) -> String {
    if v.is_empty() {
        return "none".into();
    }
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ") + " bit/s"
}

/// PURE: what a probe found, as a definition list.
pub fn probe_view(p: Option<&ModemProbe>) -> Markup {
    html! {
        @match p {
            None => span .muted { "not probed (the modem was not opened yet, or is the built-in line)" },
            Some(p) => dl .probe {
                dt { "probed" } dd { (p.when) }
                dt { "identity (ATI)" } dd { (if p.identity.is_empty() { "—" } else { &p.identity }) }
                dt { "classes" } dd { (p.classes.join(", ")) }
                dt { "sends" } dd { (rates(&p.transmit_bps)) }
                dt { "receives" } dd { (rates(&p.receive_bps)) }
                dt { "usable" } dd { (p.max_bps) " bit/s" }
                dt { "V.21 HDLC" } dd {
                    @if p.v21_hdlc { "yes" } @else { span .bad { "no: T.30 signalling is not possible" } }
                }
            },
        }
    }
}

/// PURE: the modems page's body.
pub fn modems_body(cfg: &Config, lines: &[ModemStatus], all: bool) -> Markup {
    html! {
        h1 { "Modems" }
        @if lines.is_empty() {
            p .muted { "No lines are configured: add a [[modem]] section, or enable [loopback]." }
        }
        @for m in lines {
            section .modem data-line=(m.name) {
                h2 { (m.name) " " span .muted { "(" (m.role) ")" } }
                table {
                    tbody {
                        tr { th { "state" } td data-field="state" class={ "state state-" (m.state.word()) } { (m.state.word()) } }
                        @for (k, v) in configured(cfg, &m.name) {
                            tr { th { (k) } td { (v) } }
                        }
                        @if let Some(r) = &m.registration {
                            tr { th { "SIP registration" } td data-field="registration" { (r) } }
                        } @else {
                            tr { th { "probe" } td { (probe_view(m.probe.as_ref())) } }
                        }
                        tr { th { "call in progress" } td data-field="call" {
                            @match (&m.call, all) {
                                (Some(c), true) => (c.describe()),
                                (Some(c), false) => (c.phase.word()),
                                (None, _) => "—",
                            }
                        } }
                        @if all {
                            tr { th { "last call" } td { @match &m.last_call {
                                Some(c) => (format!("{} {} {} job {}, {} pages, {}", c.ended, c.direction, c.number, c.job, c.pages, c.cause)),
                                None => "—",
                            } } }
                            tr { th { "last error" } td .bad data-field="last-error" {
                                (m.last_error.as_deref().unwrap_or(""))
                            } }
                        }
                    }
                }
            }
        }
    }
}

async fn modems_page(State(c): State<Console>, Extension(who): Extension<Who>) -> Response {
    let lines = modems_now(&c.board);
    // Users limited to some numbers see the lines, not whom they called.
    let body = modems_body(&c.cfg, &lines, who.user.scope.is_all());
    pages::layout("Modems", "/modems", &who, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::status::ModemState;

    #[test]
    fn secret_keys_are_found_and_paths_are_not() {
        for k in [
            "password",
            "PASSWORD",
            "smtp_password",
            "api_key",
            "token",
            "auth-token",
            "secret",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in [
            "password_file",
            "tokens_file",
            "tls_key",
            "users_file",
            "username",
            "passwordless",
        ] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn every_secret_is_redacted_wherever_it_sits() {
        let t = "[relay]\nusername = 'u'\npassword = 'hunter2'\npassword_file = '/etc/pw'\n\
                 [[modem]]\nname = 'a'\nextra = { api_key = 'k-123', n = 1 }\n\
                 [x]\ntokens = ['t1']\nsecret = { inner = 'deep-1' }\nauth_token = ['t-9', 't-10']\n";
        let r = redact_secrets(t);
        for gone in ["hunter2", "k-123", "deep-1", "t-9", "t-10"] {
            assert!(!r.contains(gone), "{gone} in:\n{r}");
        }
        for kept in ["/etc/pw", "username = 'u'", "name = 'a'", "'t1'"] {
            assert!(r.contains(kept), "{kept} missing:\n{r}");
        }
        assert!(r.contains(&format!("password = \"{REDACTED}\"")), "{r}");
        assert!(redact_secrets("= broken").starts_with("# the configuration cannot"));
    }

    #[test]
    fn the_effective_config_hides_the_relay_password() {
        let mut c = Config::default();
        c.relay.username = "u".into();
        c.relay.password = Some("hunter2-secret".into());
        let s = shown_config(&c);
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("[relay]") && s.contains(REDACTED), "{s}");
        // It is the real configuration: it parses back, secrets aside.
        let back: Config = toml::from_str(&s).unwrap();
        assert_eq!(back.http, c.http);
    }

    #[test]
    fn the_modems_page_shows_configuration_and_probe() {
        let cfg = Config {
            modems: vec![
                toml::from_str("name = 'fax0'\ndevice = '/dev/ttyACM0'\nlocal_id = '+49 30 1'\n")
                    .unwrap(),
            ],
            ..Config::default()
        };
        let mut lines = crate::app::pool_lines(&cfg);
        lines[1].probe = Some(ModemProbe {
            when: crate::scheduler::Timestamp(0),
            identity: "<USR> 5637".into(),
            classes: vec!["0".into(), "1".into()],
            max_bps: 14400,
            transmit_bps: vec![14400, 9600],
            receive_bps: vec![14400],
            v21_hdlc: true,
        });
        lines[1].state = ModemState::Offline;
        lines[1].last_error = Some("open failed".into());
        let html = modems_body(&cfg, &lines, true).into_string();
        for want in [
            r#"data-line="loopback""#,
            r#"data-line="fax0""#,
            "/dev/ttyACM0",
            "generic-class1",
            "&lt;USR&gt; 5637",
            "14400, 9600 bit/s",
            "open failed",
            "state-offline",
            "built in",
        ] {
            assert!(html.contains(want), "{want}:\n{html}");
        }
        let scoped = modems_body(&cfg, &lines, false).into_string();
        assert!(!scoped.contains("open failed"), "{scoped}");
    }

    #[test]
    fn the_lines_page_shows_a_sip_line_and_its_registration() {
        let cfg = Config {
            sips: vec![
                toml::from_str(
                    "name = 'trunk'\nuser = 'fax'\nregistrar = 'pbx.example'\nmax_calls = 2\n\
                     listen = '127.0.0.1:5060'",
                )
                .unwrap(),
            ],
            ..Config::default()
        };
        let mut lines = crate::app::pool_lines(&cfg);
        let names: Vec<&str> = lines.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["loopback", "trunk", "trunk:2"]);
        lines[1].state = ModemState::Offline;
        lines[1].registration = Some("not registered".into());
        lines[1].last_error = Some("REGISTER as fax failed: wrong password?".into());
        let html = modems_body(&cfg, &lines, true).into_string();
        for want in [
            r#"data-line="trunk""#,
            r#"data-line="trunk:2""#,
            "SIP line, UDP on 127.0.0.1:5060",
            "pbx.example",
            r#"data-field="registration""#,
            "not registered",
            "wrong password?",
            "state-offline",
        ] {
            assert!(html.contains(want), "{want}:\n{html}");
        }
    }
}
