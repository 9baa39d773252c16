//! The options of the pure cores, built from the config: the one place where config sections
//! become the plain structs that the SMTP session, the dial plan, the renderer, the MIME walk,
//! the fax document, the rendering budget and the scheduler take.
//!
//! The cores never import `config` (a test in `tests/foundation.rs` holds them to it): they
//! stay testable with options written by hand, and a config change touches only this file.
//! Inherent constructors (`Policy::from_config`, …) live here rather than in the cores, so
//! the shell keeps calling them by the same names.

use crate::config::{BodyText, Config, DialPlan, ModemRole, Offramp, Paper, Resolution, Retry};
use crate::image::{self, render};
use crate::job::Policy as RetryPolicy;
use crate::mail::dialplan;
use crate::offramp::{budget, document, mime};
use crate::scheduler::{LOCAL_WORKERS, Limits, decide};
use crate::smtp::session::Policy as SmtpPolicy;
use crate::spool::SpoolOptions;

impl From<&DialPlan> for dialplan::Options {
    fn from(c: &DialPlan) -> Self {
        dialplan::Options {
            country_code: c.country_code.clone(),
            area_code: c.area_code.clone(),
            international_prefix: c.international_prefix.clone(),
            national_prefix: c.national_prefix.clone(),
            strip_local_area: c.strip_local_area,
            outside_prefix: c.outside_prefix.clone(),
            allow: c.allow.clone(),
            deny: c.deny.clone(),
            allow_international: c.allow_international,
            international_areas: c.international_areas.clone(),
            premium: c.premium.clone(),
            allow_premium: c.allow_premium,
        }
    }
}

impl SmtpPolicy {
    /// From a validated config; `tls_available` says whether a certificate was loaded.
    pub fn from_config(c: &Config, tls_available: bool) -> SmtpPolicy {
        let s = &c.smtp;
        SmtpPolicy {
            hostname: c.gateway.hostname.clone(),
            domains: c.gateway.domains.clone(),
            max_message_size: s.max_message_size,
            max_recipients: s.max_recipients,
            client_networks: s.client_networks.clone(),
            allowed_senders: s.allowed_senders.clone(),
            require_tls: s.require_tls,
            require_auth: s.require_auth,
            auth_without_tls: s.auth_without_tls,
            auth_available: s.users_file.is_some(),
            tls_available,
            site_forms: s.accept_plain_digits,
            max_auth_failures: s.max_auth_failures,
            command_timeout: s.command_timeout,
            data_timeout: s.data_timeout,
            max_session: s.max_session,
            dialplan: dialplan::DialPlan::new(&c.dialplan),
            subject_address: c.offramp.subject_address.clone(),
        }
    }
}

impl From<Resolution> for image::Resolution {
    fn from(r: Resolution) -> Self {
        match r {
            Resolution::Standard => image::Resolution::STANDARD,
            Resolution::Fine => image::Resolution::FINE,
            Resolution::Superfine => image::Resolution::SUPERFINE,
        }
    }
}

impl From<Paper> for render::Paper {
    fn from(p: Paper) -> Self {
        match p {
            Paper::A4 => render::Paper::A4,
            Paper::Letter => render::Paper::Letter,
        }
    }
}

impl render::Options {
    /// Options from the `[offramp]` section.
    pub fn from_config(c: &Offramp) -> render::Options {
        render::Options {
            resolution: c.resolution.into(),
            paper: c.paper.into(),
            bilevel: render::Bilevel::Auto,
            limits: render::Limits {
                max_pages: c.max_pages,
                max_pdf_pages: c.max_pages,
                ..render::Limits::default()
            },
            pdf_fonts: render::PdfFonts::from_config(&c.pdf_font_dir),
            header_placement: c.header_placement,
        }
    }
}

impl mime::Policy {
    /// The policy from the `[offramp]` section.
    pub fn from_config(c: &Offramp) -> mime::Policy {
        mime::Policy {
            min_inline_image: c.min_inline_image,
            limits: mime::Limits::default(),
        }
    }
}

impl From<&Offramp> for crate::offramp::options::Defaults {
    fn from(c: &Offramp) -> Self {
        crate::offramp::options::Defaults {
            resolution: c.resolution,
            cover_page: c.cover_page,
        }
    }
}

impl From<&Offramp> for budget::Limits {
    fn from(c: &Offramp) -> Self {
        budget::Limits {
            time: c.render_time_limit,
            page_work: c.render_work_limit,
        }
    }
}

impl From<BodyText> for document::BodyText {
    fn from(b: BodyText) -> Self {
        match b {
            BodyText::Include => document::BodyText::Include,
            BodyText::Omit => document::BodyText::Omit,
            BodyText::IfNoAttachment => document::BodyText::IfNoAttachment,
        }
    }
}

impl From<&Offramp> for document::Options {
    fn from(c: &Offramp) -> Self {
        document::Options {
            render: render::Options::from_config(c),
            mime: mime::Policy::from_config(c),
            body_text: c.body_text.into(),
            budget: c.into(),
            sender_name: c.sender_name.clone(),
            header: c.header.clone(),
            office: crate::offramp::office::Settings {
                converter: crate::offramp::office::resolve(&c.office_converter),
                time_limit: c.office_time_limit,
            },
        }
    }
}

impl From<&Retry> for RetryPolicy {
    fn from(r: &Retry) -> Self {
        RetryPolicy {
            busy: r.busy,
            no_answer: r.no_answer,
            protocol_error: r.protocol_error,
            max_dials: r.max_dials,
            max_tries: r.max_tries,
            kill_after: r.kill_after,
            relay_initial: r.relay_initial,
            relay_max: r.relay_max,
            relay_give_up: r.relay_give_up,
        }
    }
}

impl Default for RetryPolicy {
    /// The `[retry]` defaults.
    fn default() -> Self {
        RetryPolicy::from(&Retry::default())
    }
}

impl SpoolOptions {
    /// The spool options a configuration asks for, deciding with the scheduler's [`decide`].
    pub fn from_config(c: &Config) -> SpoolOptions {
        SpoolOptions {
            min_free_bytes: c.spool.min_free_bytes,
            keep_done: c.spool.keep_done,
            keep_failed: c.spool.keep_failed,
            max_queued: c.spool.max_queued,
            policy: RetryPolicy::from(&c.retry),
            decide,
        }
    }
}

impl Default for SpoolOptions {
    /// The default config's.
    fn default() -> Self {
        SpoolOptions::from_config(&Config::default())
    }
}

impl Limits {
    /// The limits a configuration implies: every `[[modem]]` with role `send` or `both`,
    /// `relay.max_connections`, and [`LOCAL_WORKERS`].
    pub fn from_config(c: &Config) -> Limits {
        Limits {
            modems: c
                .modems
                .iter()
                .filter(|m| matches!(m.role, ModemRole::Send | ModemRole::Both))
                .map(|m| m.name.clone())
                .collect(),
            relay_connections: c.relay.max_connections,
            local_workers: LOCAL_WORKERS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialplan_defaults_are_the_configs() {
        assert_eq!(
            dialplan::Options::from(&DialPlan::default()),
            dialplan::Options::default()
        );
    }

    #[test]
    fn offramp_defaults_parse() {
        let o = Offramp::default();
        render::Template::parse(&o.header, render::header::HEADER_FIELDS).unwrap();
        render::cover::template(&o.cover_template).unwrap();
    }

    #[test]
    fn document_options_follow_the_section() {
        let c = Offramp {
            resolution: Resolution::Superfine,
            paper: Paper::Letter,
            max_pages: 7,
            body_text: BodyText::Omit,
            render_time_limit: std::time::Duration::from_secs(9),
            render_work_limit: 11,
            min_inline_image: 5,
            ..Offramp::default()
        };
        let d = document::Options::from(&c);
        assert_eq!(d.render.resolution, image::Resolution::SUPERFINE);
        assert_eq!(d.render.paper, render::Paper::Letter);
        assert_eq!(
            (d.render.limits.max_pages, d.render.limits.max_pdf_pages),
            (7, 7)
        );
        assert_eq!(d.body_text, document::BodyText::Omit);
        assert_eq!(
            d.budget,
            budget::Limits {
                time: std::time::Duration::from_secs(9),
                page_work: 11
            }
        );
        assert_eq!(d.mime.min_inline_image, 5);
        assert_eq!(d.header, c.header);
    }

    #[test]
    fn limits_from_config() {
        let c: Config = toml::from_str(
            r#"
            [relay]
            max_connections = 3
            [[modem]]
            name = "rx"
            device = "/dev/ttyS0"
            role = "receive"
            [[modem]]
            name = "tx"
            device = "/dev/ttyS1"
            role = "send"
            [[modem]]
            name = "both"
            device = "/dev/ttyS2"
            role = "both"
            "#,
        )
        .unwrap();
        let l = Limits::from_config(&c);
        assert_eq!(l.modems, vec!["tx".to_string(), "both".to_string()]);
        assert_eq!(l.relay_connections, 3);
        assert_eq!(l.local_workers, LOCAL_WORKERS);
    }
}
