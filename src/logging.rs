//! Logging set-up with `tracing`.
//!
//! Under systemd (`JOURNAL_STREAM` set: stderr is the journal) lines are plain, without
//! timestamps, because journald stamps them itself; otherwise each line carries a timestamp.
//! `format = "json"` gives one JSON object per line for log shippers. The filter is
//! `RUST_LOG` when set, else `[log] filter`.
//!
//! [`Untrusted`] is the one way text from outside (client names, addresses, file names, a
//! relay's or a fax machine's words) enters a log line, an SMTP reply or a report: escaped,
//! so that it can neither start a line of its own (a forged `AUTH ok … user=admin` for
//! fail2ban), nor reorder what a reader sees (Unicode bidi controls, CVE-2021-42574), nor
//! grow without bound.

use std::fmt;

use tracing_subscriber::EnvFilter;

use crate::config::{Log, LogFormat};

/// The format actually used for `format`, given whether stderr goes to the journal.
pub fn effective_format(format: LogFormat, under_journal: bool) -> LogFormat {
    match format {
        LogFormat::Auto if under_journal => LogFormat::Plain,
        LogFormat::Auto => LogFormat::Full,
        f => f,
    }
}

/// True when stderr is connected to journald (systemd sets `JOURNAL_STREAM` for the service).
pub fn under_journal() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some_and(|v| !v.is_empty())
}

/// Installs the global subscriber. Safe to call once; later calls are ignored.
pub fn init(cfg: &Log) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| !s.is_empty())
        .and_then(|s| EnvFilter::try_new(s).ok())
        .or_else(|| EnvFilter::try_new(&cfg.filter).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match effective_format(cfg.format, under_journal()) {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Plain => builder.without_time().with_ansi(false).try_init(),
        _ => builder.try_init(),
    };
}

/// Characters of escaped outside text shown by default before it is cut (ours): longer than any
/// legitimate user name, address or file name, short enough for one log line.
pub const UNTRUSTED_MAX: usize = 256;

/// Outside text, escaped for a log line, an SMTP reply or a report when displayed.
///
/// - `\` becomes `\\`, so that an escape below cannot be forged;
/// - control characters (C0, DEL, C1) become `\n`, `\r`, `\t`, `\0` or `\xNN` / `\u{NN}`;
/// - Unicode format characters that change what a reader sees — bidi embeddings, overrides
///   and isolates (U+202A–U+202E, U+2066–U+2069), marks (U+200E, U+200F, U+061C), zero-width
///   and invisible characters (U+200B–U+200D, U+2060–U+2064, U+FEFF, U+00AD), the line and
///   paragraph separators (U+2028, U+2029) and the rest of U+206A–U+206F and U+FFF9–U+FFFB —
///   become `\u{NNNN}`;
/// - with [`ascii`](Untrusted::ascii), every other non-ASCII character too (SMTP replies and
///   RFC 3464 fields are US-ASCII);
/// - once the escaped text reaches [`max`](Untrusted::max) characters (default
///   [`UNTRUSTED_MAX`]) the rest is cut and `...[+N chars]` says how many characters of the
///   input were left out, so the output is bounded whatever the input.
#[derive(Clone, Copy)]
pub struct Untrusted<'a> {
    text: &'a str,
    max: usize,
    ascii: bool,
    rescape: bool,
}

impl<'a> Untrusted<'a> {
    /// `text` with the defaults (UTF-8 kept, [`UNTRUSTED_MAX`] characters).
    pub fn new(text: &'a str) -> Untrusted<'a> {
        Untrusted {
            text,
            max: UNTRUSTED_MAX,
            ascii: false,
            rescape: false,
        }
    }

    /// For text that was already escaped once (our words quoting escaped outside text):
    /// backslashes are left as they are, so the escapes are not doubled; everything else is
    /// escaped as usual (e.g. the non-ASCII that [`ascii`](Untrusted::ascii) refuses).
    pub fn escaped_before(self) -> Untrusted<'a> {
        Untrusted {
            rescape: true,
            ..self
        }
    }

    /// Shows at most `max` characters of escaped text (plus the cut marker).
    pub fn max(self, max: usize) -> Untrusted<'a> {
        Untrusted { max, ..self }
    }

    /// Escapes every non-ASCII character as well.
    pub fn ascii(self) -> Untrusted<'a> {
        Untrusted {
            ascii: true,
            ..self
        }
    }
}

/// Shorthand for [`Untrusted::new`].
pub fn untrusted(text: &str) -> Untrusted<'_> {
    Untrusted::new(text)
}

/// True for the invisible or reordering Unicode format characters [`Untrusted`] escapes.
pub fn is_deceptive(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        let mut shown = 0;
        let mut piece = String::with_capacity(12);
        for (i, c) in self.text.char_indices() {
            piece.clear();
            match c {
                '\\' if self.rescape => piece.push('\\'),
                '\\' => piece.push_str("\\\\"),
                '\n' => piece.push_str("\\n"),
                '\r' => piece.push_str("\\r"),
                '\t' => piece.push_str("\\t"),
                '\0' => piece.push_str("\\0"),
                c if (c as u32) < 0x80 && c.is_control() => write!(piece, "\\x{:02x}", c as u32)?,
                c if c.is_control() || is_deceptive(c) || (self.ascii && !c.is_ascii()) => {
                    write!(piece, "\\u{{{:04x}}}", c as u32)?
                }
                c => piece.push(c),
            }
            let width = piece.chars().count();
            if shown + width > self.max {
                let rest = self.text[i..].chars().count();
                return write!(f, "...[+{rest} chars]");
            }
            shown += width;
            f.write_str(&piece)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_escapes_what_could_forge_or_hide() {
        let cases: [(&str, &str); 9] = [
            ("alice", "alice"),
            ("x\r\nAUTH ok user=admin", "x\\r\\nAUTH ok user=admin"),
            ("a\0b\x07c\x7f", "a\\0b\\x07c\\x7f"),
            ("back\\slash\\n", "back\\\\slash\\\\n"),
            ("Jörg", "Jörg"),
            ("invoice\u{202E}fdp.exe", "invoice\\u{202e}fdp.exe"),
            (
                "\u{2066}x\u{2069}\u{200E}\u{061C}\u{FEFF}",
                "\\u{2066}x\\u{2069}\\u{200e}\\u{061c}\\u{feff}",
            ),
            ("line\u{2028}sep\u{0085}", "line\\u{2028}sep\\u{0085}"),
            ("tab\there", "tab\\there"),
        ];
        for (raw, want) in cases {
            assert_eq!(Untrusted::new(raw).to_string(), want, "{raw:?}");
        }
        assert_eq!(Untrusted::new("Jörg").ascii().to_string(), "J\\u{00f6}rg");
        let once = Untrusted::new("Jörg\u{202e}\n").to_string();
        assert_eq!(
            Untrusted::new(&once).ascii().escaped_before().to_string(),
            "J\\u{00f6}rg\\u{202e}\\n"
        );
        assert_eq!(
            Untrusted::new("abcdef").max(3).to_string(),
            "abc...[+3 chars]"
        );
        // The bound is on the output: escapes count at their escaped width.
        assert_eq!(
            Untrusted::new("\u{202e}\u{202e}").max(10).to_string(),
            "\\u{202e}...[+1 chars]"
        );
        assert_eq!(
            untrusted(&"x".repeat(1000)).to_string(),
            format!(
                "{}...[+{} chars]",
                "x".repeat(UNTRUSTED_MAX),
                1000 - UNTRUSTED_MAX
            )
        );
    }

    proptest::proptest! {
        /// Whatever comes in, what goes out is one line without controls or bidi characters,
        /// and ASCII when asked.
        #[test]
        fn untrusted_output_is_inert(s in "\\PC*|[\\x00-\\x{10ffff}]{0,300}") {
            let out = Untrusted::new(&s).to_string();
            proptest::prop_assert!(!out.chars().any(|c| c.is_control() || is_deceptive(c)));
            proptest::prop_assert!(out.chars().count() <= UNTRUSTED_MAX + 20);
            let a = Untrusted::new(&s).ascii().to_string();
            proptest::prop_assert!(a.is_ascii());
            proptest::prop_assert!(!a.chars().any(|c| c.is_control()));
        }
    }

    #[test]
    fn auto_format_follows_journal() {
        assert_eq!(effective_format(LogFormat::Auto, true), LogFormat::Plain);
        assert_eq!(effective_format(LogFormat::Auto, false), LogFormat::Full);
        assert_eq!(effective_format(LogFormat::Json, true), LogFormat::Json);
    }
}
