//! What a sender may ask of the fax, and how (ours; this comment is the reference users'
//! documentation is written from).
//!
//! PURE. Ordinary mail clients cannot set envelope parameters, so options travel in the
//! message itself:
//!
//! - **Subject keywords**, in square brackets anywhere in the subject, case-insensitive:
//!   `[fine]`, `[standard]`, `[superfine]` choose the vertical resolution (T.4 §2.2: 3.85,
//!   7.7 or 15.4 lines/mm); `[cover]` and `[nocover]` switch the cover page on or off. The
//!   keywords are removed from the subject printed on the cover page.
//! - **Header** `X-Fax-Resolution: fine | standard | superfine` for programs; it wins over a
//!   subject keyword.
//!
//! Anything else in brackets is left alone (it is part of the subject, like `[ticket 42]`).
//! Superfine is sent only where the receiver offers it; the transmitter falls back to fine.

pub use crate::job::SenderOptions;

use crate::job::Resolution;

/// The site's defaults the sender's keywords override (`[offramp] resolution`,
/// `cover_page`; the shell builds them from the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defaults {
    /// Vertical resolution when the sender names none.
    pub resolution: Resolution,
    /// Whether a cover page is sent when the sender says nothing.
    pub cover_page: bool,
}

fn resolution_word(w: &str) -> Option<Resolution> {
    match w.trim().to_ascii_lowercase().as_str() {
        "fine" => Some(Resolution::Fine),
        "standard" | "normal" => Some(Resolution::Standard),
        "superfine" => Some(Resolution::Superfine),
        _ => None,
    }
}

/// Work out the options from the subject, the `X-Fax-Resolution` header and the defaults.
pub fn parse(
    subject: Option<&str>,
    resolution_header: Option<&str>,
    defaults: Defaults,
) -> SenderOptions {
    let subject = subject.unwrap_or("");
    let mut resolution = defaults.resolution;
    let mut cover_page = defaults.cover_page;
    let mut kept = String::with_capacity(subject.len());
    let mut rest = subject;
    // Bounded: each round consumes at least one character of `rest`.
    while let Some(open) = rest.find('[') {
        kept.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else {
            kept.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let word = &after[..close];
        let lower = word.trim().to_ascii_lowercase();
        if let Some(r) = resolution_word(&lower) {
            resolution = r;
        } else if lower == "cover" {
            cover_page = true;
        } else if lower == "nocover" || lower == "no cover" {
            cover_page = false;
        } else {
            kept.push_str(&rest[open..open + 1 + close + 1]);
        }
        rest = &after[close + 1..];
    }
    kept.push_str(rest);
    if let Some(r) = resolution_header.and_then(resolution_word) {
        resolution = r;
    }
    let subject = kept.split_whitespace().collect::<Vec<_>>().join(" ");
    SenderOptions {
        resolution,
        cover_page,
        subject,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fine, no cover page (the embedded default's `[offramp]`).
    const SITE: Defaults = Defaults {
        resolution: Resolution::Fine,
        cover_page: false,
    };

    #[test]
    fn subject_keywords_table() {
        let d = SITE;
        let cases: &[(&str, Option<&str>, Resolution, bool, &str)] = &[
            ("Invoice", None, Resolution::Fine, false, "Invoice"),
            (
                "Invoice [standard]",
                None,
                Resolution::Standard,
                false,
                "Invoice",
            ),
            (
                "[FINE] [Cover] Contract",
                None,
                Resolution::Fine,
                true,
                "Contract",
            ),
            (
                "[ticket 42] offer [superfine]",
                None,
                Resolution::Superfine,
                false,
                "[ticket 42] offer",
            ),
            (
                "x [standard]",
                Some("superfine"),
                Resolution::Superfine,
                false,
                "x",
            ),
            (
                "broken [fine",
                None,
                Resolution::Fine,
                false,
                "broken [fine",
            ),
            (
                "a ] b [ c",
                Some("bogus"),
                Resolution::Fine,
                false,
                "a ] b [ c",
            ),
        ];
        for (subj, hdr, res, cover, kept) in cases {
            let o = parse(Some(subj), *hdr, d);
            assert_eq!(o.resolution, *res, "{subj}");
            assert_eq!(o.cover_page, *cover, "{subj}");
            assert_eq!(o.subject, *kept, "{subj}");
        }
        let d2 = Defaults {
            cover_page: true,
            ..SITE
        };
        assert!(!parse(Some("[nocover] hi"), None, d2).cover_page);
        assert_eq!(parse(None, None, d2).subject, "");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,200}", h in "\\PC{0,20}") {
            let _ = parse(Some(&s), Some(&h), SITE);
        }
    }
}
