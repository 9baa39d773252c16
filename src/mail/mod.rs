//! PURE mail-side logic: who a recipient address names, what may be dialled, and the words of
//! a fax email.
//!
//! [`address`] parses RCPT forward-paths into fax recipients (RFC 3192 `FAX=+…` plus the
//! site forms) and refuses anything that smells of relaying; [`dialplan`] turns a number into
//! an E.164 destination and a dial string and applies the toll-fraud policy; [`subject`] reads
//! a number from a Subject (subject addressing); [`template`]
//! fills the onramp's subject and body templates with a reception's fields (and lets the
//! config check them); [`fax_options`] chooses an outgoing attempt's ECM, speed and V.17 from
//! the defaults, the destination's fax route, the line and the attempt number. None touches files, sockets or the clock, so the SMTP session, the
//! offramp jobs, the onramp and the config check share them.

pub mod address;
pub mod dialplan;
pub mod fax_options;
pub mod subject;
pub mod template;

use std::borrow::Cow;

/// `data` with every bare CR and bare LF made CRLF (RFC 5321 §2.3.8: lines end in CRLF, and
/// §4.1.1.4: bare CR or LF must not be sent). Mail the gateway sends on goes through this,
/// so that the relay client's dot-stuffing, which sees only CRLF line ends, covers every
/// line and no `\n.\r\n`-style end of data reaches the relay (CVE-2023-51764 class).
/// Borrowed when nothing needs changing.
pub fn crlf_line_ends(data: &[u8]) -> Cow<'_, [u8]> {
    let clean = data.iter().enumerate().all(|(i, &b)| match b {
        b'\r' => data.get(i + 1) == Some(&b'\n'),
        b'\n' => i > 0 && data[i - 1] == b'\r',
        _ => true,
    });
    if clean {
        return Cow::Borrowed(data);
    }
    let mut out = Vec::with_capacity(data.len() + data.len() / 16 + 2);
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                i += if data.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
            }
            b'\n' => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

/// `s` as HTML text: the five characters with a meaning in HTML as character references, so
/// outside text (a caller's station ID, a mail subject) shows as text in an HTML mail part.
pub fn html_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{crlf_line_ends, html_text};

    #[test]
    fn html_text_escapes_markup() {
        assert_eq!(
            html_text("<img src=x onerror='a'> & \"b\" ü"),
            "&lt;img src=x onerror=&#39;a&#39;&gt; &amp; &quot;b&quot; ü"
        );
    }

    #[test]
    fn bare_cr_and_lf_become_crlf() {
        for (raw, want) in [
            (&b"a\r\nb"[..], &b"a\r\nb"[..]),
            (b"a\n.\r\nb", b"a\r\n.\r\nb"),
            (b"a\n.\nb", b"a\r\n.\r\nb"),
            (b"a\r.\r\nb", b"a\r\n.\r\nb"),
            (b"\n\r", b"\r\n\r\n"),
            (b"\r\r\n\n", b"\r\n\r\n\r\n"),
            (b"", b""),
        ] {
            assert_eq!(&crlf_line_ends(raw)[..], want, "{raw:?}");
        }
        assert!(matches!(
            crlf_line_ends(b"x\r\ny\r\n"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    proptest::proptest! {
        /// Every LF is preceded by CR and every CR followed by LF, and nothing but line ends
        /// changes.
        #[test]
        fn only_crlf_remains(raw in proptest::collection::vec(proptest::sample::select(vec![b'\r', b'\n', b'.', b'a']), 0..64)) {
            let out = crlf_line_ends(&raw);
            for (i, &b) in out.iter().enumerate() {
                if b == b'\n' { proptest::prop_assert!(i > 0 && out[i - 1] == b'\r'); }
                if b == b'\r' { proptest::prop_assert_eq!(out.get(i + 1), Some(&b'\n')); }
            }
            let strip = |v: &[u8]| v.iter().copied().filter(|b| *b != b'\r' && *b != b'\n').collect::<Vec<_>>();
            proptest::prop_assert_eq!(strip(&out), strip(&raw));
        }
    }
}
