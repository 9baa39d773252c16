//! PURE: subject and body templates of onramp emails.
//!
//! This module owns the `{field}` template language of `[onramp] subject/body` and
//! `[[route]] subject/body`: parsing (unknown fields are an error found at start-up, not a
//! blank in somebody's inbox), and rendering a [`Reception`] into text. `{{` and `}}` stand for
//! literal braces.
//!
//! Every value that came from the far end (station ID, caller ID, DID, subaddress, cause text)
//! is untrusted: control characters are replaced, and for a subject line (a header) line breaks
//! become spaces, so no fax can add a header to the email. Each value is cut to
//! [`MAX_FIELD_CHARS`] and the whole rendering to [`MAX_RENDERED_CHARS`].

use std::fmt::Write as _;

use thiserror::Error;

use crate::job::{Completion, Reception};

/// Longest value substituted for one field (ours: a T.30 ID is 20 characters, a cause text a
/// line or two).
pub const MAX_FIELD_CHARS: usize = 200;
/// Longest rendered template (ours).
pub const MAX_RENDERED_CHARS: usize = 16 * 1024;
/// Longest template accepted (ours).
pub const MAX_TEMPLATE_CHARS: usize = 16 * 1024;

/// A field a template may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `{remote_id}`: the remote station ID (TSI), or "unknown".
    RemoteId,
    /// `{caller}`: caller ID (`NMBR=`), or "unknown".
    Caller,
    /// `{did}`: dialled number (`NDID=`), or "unknown".
    Did,
    /// `{line}`: the modem (line) name, or the source (`inbox`, `submit`).
    Line,
    /// `{subaddress}`: T.33 subaddress, or "none".
    Subaddress,
    /// `{pages}`: pages received.
    Pages,
    /// `{duration}`: call duration, e.g. `1 min 05 s`.
    Duration,
    /// `{speed}`: signalling rate, e.g. `14400 bit/s`, or "unknown".
    Speed,
    /// `{resolution}`: `standard`, `fine`, `superfine` with dpi.
    Resolution,
    /// `{bad_lines}`: scan lines received with errors.
    BadLines,
    /// `{time}`: reception time, UTC.
    Time,
    /// `{cause}`: how the reception ended, in words.
    Cause,
}

impl Field {
    /// Every field, in the documented order.
    pub const ALL: [Field; 12] = [
        Field::RemoteId,
        Field::Caller,
        Field::Did,
        Field::Line,
        Field::Subaddress,
        Field::Pages,
        Field::Duration,
        Field::Speed,
        Field::Resolution,
        Field::BadLines,
        Field::Time,
        Field::Cause,
    ];

    /// The name written between braces.
    pub fn name(self) -> &'static str {
        match self {
            Field::RemoteId => "remote_id",
            Field::Caller => "caller",
            Field::Did => "did",
            Field::Line => "line",
            Field::Subaddress => "subaddress",
            Field::Pages => "pages",
            Field::Duration => "duration",
            Field::Speed => "speed",
            Field::Resolution => "resolution",
            Field::BadLines => "bad_lines",
            Field::Time => "time",
            Field::Cause => "cause",
        }
    }

    fn from_name(s: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == s)
    }
}

/// A template that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TemplateError {
    /// `{name}` with a name that is not a field.
    #[error(
        "unknown field `{{{0}}}` (fields: remote_id caller did line subaddress pages duration speed resolution bad_lines time cause)"
    )]
    UnknownField(String),
    /// A `{` without its `}` (or a lone `}`).
    #[error("unbalanced brace at character {0} (write `{{{{` or `}}}}` for a literal brace)")]
    Unbalanced(usize),
    /// Over [`MAX_TEMPLATE_CHARS`].
    #[error("template is longer than {MAX_TEMPLATE_CHARS} characters")]
    TooLong,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(Field),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// Whether a rendering goes into a header (one line) or a body (lines kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A header value: line breaks in values and template become spaces.
    Header,
    /// Body text: line breaks in the template are kept; values are still single-line.
    Body,
}

impl Template {
    /// Parses `src`.
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        if src.chars().count() > MAX_TEMPLATE_CHARS {
            return Err(TemplateError::TooLong);
        }
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = src.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|x| x.1) == Some('{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek().map(|x| x.1) == Some('}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for (_, c) in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        if c == '{' || name.len() > 64 {
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        return Err(TemplateError::Unbalanced(i));
                    }
                    let f = Field::from_name(name.trim())
                        .ok_or_else(|| TemplateError::UnknownField(name.clone()))?;
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Field(f));
                }
                '}' => return Err(TemplateError::Unbalanced(i)),
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Template { pieces })
    }

    /// Renders the template for `r`.
    pub fn render(&self, r: &Reception, target: Target) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(f) => out.push_str(&clean_value(&field_value(*f, r))),
            }
            if out.len() > MAX_RENDERED_CHARS {
                break;
            }
        }
        let mut out: String = match target {
            Target::Header => {
                let one_line: String = out
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                one_line.split_whitespace().collect::<Vec<_>>().join(" ")
            }
            Target::Body => out,
        };
        if out.chars().count() > MAX_RENDERED_CHARS {
            out = out.chars().take(MAX_RENDERED_CHARS).collect();
        }
        out
    }
}

/// One value as it may appear in a message: control characters (line breaks included) become
/// spaces, length is capped.
fn clean_value(v: &str) -> String {
    let s: String = v
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_FIELD_CHARS)
        .collect();
    s.trim().to_owned()
}

fn or_unknown(v: &Option<String>, none: &str) -> String {
    match v.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => s.to_owned(),
        _ => none.to_owned(),
    }
}

/// The text of `field` for reception `r`.
pub fn field_value(field: Field, r: &Reception) -> String {
    match field {
        Field::RemoteId => or_unknown(&r.remote_id, "unknown"),
        Field::Caller => or_unknown(&r.caller, "unknown"),
        Field::Did => or_unknown(&r.did, "unknown"),
        Field::Line => or_unknown(&r.line, "unknown"),
        Field::Subaddress => or_unknown(&r.subaddress, "none"),
        Field::Pages => r.pages.to_string(),
        Field::Duration => {
            let s = r.duration_secs;
            let mut out = String::new();
            if s >= 3600 {
                let _ = write!(out, "{} h ", s / 3600);
            }
            if s >= 60 {
                let _ = write!(out, "{} min {:02} s", (s / 60) % 60, s % 60);
            } else {
                let _ = write!(out, "{s} s");
            }
            out
        }
        Field::Speed => match r.speed {
            Some(b) => format!("{b} bit/s"),
            None => "unknown".into(),
        },
        Field::Resolution => match r.resolution {
            Some((x, y)) => {
                let name = match y {
                    0..=120 => "standard",
                    121..=250 => "fine",
                    _ => "superfine",
                };
                format!("{name} ({x}×{y} dpi)")
            }
            None => "unknown".into(),
        },
        Field::BadLines => r.bad_lines.to_string(),
        Field::Time => match chrono::DateTime::from_timestamp(r.received, 0) {
            Some(t) => t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            None => format!("@{}", r.received),
        },
        Field::Cause => match &r.completion {
            Completion::Complete => "received completely".into(),
            Completion::Partial { cause } => {
                format!("partial reception: {}", clean_value(cause))
            }
            Completion::Failed { cause } => {
                format!("reception failed: {}", clean_value(cause))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reception() -> Reception {
        Reception {
            source: crate::job::Source::Modem,
            line: Some("modem-a".into()),
            did: Some("5550150".into()),
            caller: Some("+12125550123".into()),
            remote_id: Some("  +1 212 555 0123    ".into()),
            subaddress: Some("42".into()),
            pages: 3,
            duration_secs: 3725,
            speed: Some(14400),
            resolution: Some((204, 196)),
            bad_lines: 7,
            received: 1_796_000_000,
            completion: Completion::Partial {
                cause: "line failed on page 4".into(),
            },
        }
    }

    #[test]
    fn every_field_renders() {
        let all: String = Field::ALL
            .iter()
            .map(|f| format!("{}=[{{{}}}]\n", f.name(), f.name()))
            .collect();
        let t = Template::parse(&all).unwrap();
        let got = t.render(&reception(), Target::Body);
        let want = "remote_id=[+1 212 555 0123]\n\
                    caller=[+12125550123]\n\
                    did=[5550150]\n\
                    line=[modem-a]\n\
                    subaddress=[42]\n\
                    pages=[3]\n\
                    duration=[1 h 2 min 05 s]\n\
                    speed=[14400 bit/s]\n\
                    resolution=[fine (204×196 dpi)]\n\
                    bad_lines=[7]\n\
                    time=[2026-11-30 00:53:20 UTC]\n\
                    cause=[partial reception: line failed on page 4]\n";
        assert_eq!(got, want);
    }

    #[test]
    fn unknown_values_and_causes() {
        let mut r = reception();
        r.remote_id = Some("   ".into());
        r.caller = None;
        r.did = None;
        r.subaddress = None;
        r.speed = None;
        r.resolution = Some((204, 98));
        r.duration_secs = 42;
        r.completion = Completion::Complete;
        let t = Template::parse(
            "{remote_id}|{caller}|{did}|{subaddress}|{speed}|{resolution}|{duration}|{cause}",
        )
        .unwrap();
        assert_eq!(
            t.render(&r, Target::Body),
            "unknown|unknown|unknown|none|unknown|standard (204×98 dpi)|42 s|received completely"
        );
        r.completion = Completion::Failed {
            cause: "no carrier".into(),
        };
        r.resolution = Some((204, 391));
        r.duration_secs = 65;
        let t = Template::parse("{resolution} {duration} {cause}").unwrap();
        assert_eq!(
            t.render(&r, Target::Body),
            "superfine (204×391 dpi) 1 min 05 s reception failed: no carrier"
        );
    }

    #[test]
    fn braces_and_errors() {
        let t = Template::parse("{{literal}} {pages}}}").unwrap();
        assert_eq!(t.render(&reception(), Target::Body), "{literal} 3}");
        assert_eq!(
            Template::parse("Fax {from}").unwrap_err(),
            TemplateError::UnknownField("from".into())
        );
        assert_eq!(
            Template::parse("a {pages").unwrap_err(),
            TemplateError::Unbalanced(2)
        );
        assert_eq!(
            Template::parse("a } b").unwrap_err(),
            TemplateError::Unbalanced(2)
        );
        assert_eq!(
            Template::parse(&"x".repeat(MAX_TEMPLATE_CHARS + 1)).unwrap_err(),
            TemplateError::TooLong
        );
    }

    #[test]
    fn hostile_values_cannot_add_headers() {
        let mut r = reception();
        r.remote_id = Some("evil\r\nBcc: victim@example.com".into());
        let t = Template::parse("Fax from {remote_id}\n{pages}").unwrap();
        let h = t.render(&r, Target::Header);
        assert!(!h.contains('\r') && !h.contains('\n'), "{h:?}");
        assert_eq!(h, "Fax from evil Bcc: victim@example.com 3");
        let b = t.render(&r, Target::Body);
        assert_eq!(b, "Fax from evil  Bcc: victim@example.com\n3");
        r.remote_id = Some("A".repeat(10_000));
        assert_eq!(
            t.render(&r, Target::Header).len(),
            MAX_FIELD_CHARS + "Fax from  3".len()
        );
    }

    proptest::proptest! {
        #[test]
        fn parse_and_render_never_panic(src in "\\PC{0,80}", v in "\\PC{0,80}") {
            if let Ok(t) = Template::parse(&src) {
                let mut r = reception();
                r.remote_id = Some(v.clone());
                r.completion = Completion::Failed { cause: v };
                let h = t.render(&r, Target::Header);
                proptest::prop_assert!(!h.contains('\n') && !h.contains('\r'));
            }
        }
    }
}
