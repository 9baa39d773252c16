//! MIME walk: `offramp::mime::extract` (and `mime::headers`) on mutated real emails
//! (`tests/fixtures/eml/`) and the issue-21 attacks (`tests/fixtures/fuzz/mime/`).
//!
//! Properties: no panic, hang or unbounded heap; and the structure guard is conservative —
//! whenever `mime_guard::check` accepts a message, mail-parser builds no more parts, header
//! fields or nesting than it counted (so the limits it enforces hold for what is built).

use mail_parser::{Message, MessageParser, PartType};
use proptest::prelude::*;

use faxgate::config::Config;
use faxgate::offramp::mime::{self, Limits, Policy};
use faxgate::offramp::mime_guard;

const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r\n\r\n",
    b"--",
    b"--B\r\n",
    b"--B--\r\n",
    b"Content-Type: multipart/mixed; boundary=\"B\"\r\n",
    b"Content-Type: multipart/digest; boundary=B\r\n",
    b"Content-Type: multipart/alternative; boundary=B\r\n",
    b"Content-Type: message/rfc822\r\n\r\n",
    b"Content-Type: message/global\r\n",
    b"Content-Type: text/html; charset=iso-8859-1\r\n",
    b"Content-Type: application/pdf; name=\"a.pdf\"\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Disposition: attachment; filename*=utf-8''%e2%82%ac.pdf\r\n",
    b"boundary*0=\"a\"; boundary*1=\"b\"",
    b"=?utf-8?B?w6k=?=",
    b"=?iso-8859-1?q?caf=E9?=",
    b"%PDF-1.4\n",
    b"II*\0",
    b"\x89PNG\r\n\x1a\n",
    b" \t",
    b"=\r\n",
];

fn seeds() -> std::sync::Arc<Vec<Vec<u8>>> {
    crate::corpus("mime", crate::files_under("eml"))
}

fn policy() -> Policy {
    Policy::from_config(&Config::default().offramp)
}

/// What mail-parser built: parts, header fields, deepest container nesting.
#[derive(Debug, Default)]
struct Built {
    parts: usize,
    fields: usize,
    depth: usize,
}

fn depth_of(msg: &Message<'_>, id: usize, b: &mut Built) -> usize {
    let Some(part) = msg.parts.get(id) else {
        return 0;
    };
    match &part.body {
        PartType::Multipart(children) => {
            1 + children
                .iter()
                .map(|&c| c as usize)
                .filter(|&c| c > id)
                .map(|c| depth_of(msg, c, b))
                .max()
                .unwrap_or(0)
        }
        PartType::Message(inner) => 1 + built(inner, b),
        _ => 0,
    }
}

/// Counts `msg` into `b`; returns its nesting depth.
fn built(msg: &Message<'_>, b: &mut Built) -> usize {
    b.parts += msg.parts.len();
    b.fields += msg.parts.iter().map(|p| p.headers.len()).sum::<usize>();
    // Parts reachable only through nested messages are counted by the recursion.
    depth_of(msg, 0, b)
}

fn check(raw: &[u8]) {
    let limits = Limits::default();
    let _ = mime::extract(raw, &policy());
    let _ = mime::headers(raw);
    if let Ok(shape) = mime_guard::check(raw, &limits) {
        let Some(msg) = MessageParser::default().parse(raw) else {
            return;
        };
        let mut b = Built::default();
        b.depth = built(&msg, &mut b);
        assert!(
            b.parts <= shape.parts && b.fields <= shape.header_fields && b.depth <= shape.depth,
            "the guard under-counted: counted {shape:?}, mail-parser built {b:?}"
        );
    }
}

proptest! {
    #![proptest_config(crate::config())]

    #[test]
    fn mime_mutated_mail_never_panics_and_the_guard_is_conservative(
        data in crate::mutated(seeds(), TOKENS),
    ) {
        // Decoded parts and the parsed tree are linear in the input.
        let bound = 64 * data.len() + (16 << 20);
        crate::run_case("mime", data, bound, check);
    }
}

#[test]
fn mime_seeds_replay() {
    for seed in seeds().iter() {
        let bound = 64 * seed.len() + (16 << 20);
        crate::run_case("mime", seed.clone(), bound, check);
    }
}
