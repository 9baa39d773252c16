//! The structure of a message, bounded BEFORE mail-parser builds it (issue 21).
//!
//! PURE. mail-parser 0.11 builds the whole tree of a message before [`super::mime`] can apply
//! its [`Limits`]: a MIME part costs a few hundred octets of memory for as little as five octets
//! of input (`--B\n\n`), a header field about a hundred for three (`a:\n`), and every level of
//! `message/rfc822` nesting becomes a nested `Message` value whose drop recurses once per level,
//! so 30 000 levels (1 MB of mail) overflow the stack and take the process down.
//!
//! [`check`] walks a message the way mail-parser's `MessageParser::parse` will, with the
//! parser's own stream primitives (`mail_parser::parsers::MessageStream`: header sections,
//! boundary searches, transfer decoders), so the `Content-Type` and `Content-Transfer-Encoding`
//! fields, boundaries and part ends it sees are exactly those the parser will see, including
//! the parser's recovery from broken MIME. It keeps nothing of what it reads: it counts parts,
//! open containers (multipart, `message/rfc822`, `message/global`, and RFC 2046 §5.1.5 digest
//! entries, which default to `message/rfc822`), header fields and header octets, and stops at
//! the first limit passed. It is conservative: where mail-parser would build a part or a field,
//! it counts one (the fuzz target `tests/fuzz/mime.rs` checks that the parser never builds more
//! than counted here).
//!
//! Bounds of the walk itself: memory is one header section (at most
//! [`Limits::max_header_bytes`] octets, so at most half as many fields) plus one stack entry per
//! open container (at most [`Limits::max_depth`]), plus the decoded body of one base64 or
//! quoted-printable part at a time (mail-parser decodes them to find where they end; a
//! `message/*` part so encoded is parsed again, at most three levels, as the parser does). Time
//! is linear: every successful search moves forward, and a search that fails (the parser then
//! searches the same octets again) costs at most [`RESCAN_FREE`] octets or counts against
//! [`MAX_FAILED_SEARCHES`].

use std::borrow::Cow;

use mail_parser::decoders::DecodeFnc;
use mail_parser::parsers::MessageStream;
use mail_parser::{GetHeader, Header, HeaderName, HeaderValue, MessageParser};

use super::mime::{Limits, MimeError};

/// How many searches over more than [`RESCAN_FREE`] octets may fail (each makes the parser
/// search the rest of the message again) before the message is refused: a real message has at
/// most one multipart without its closing boundary.
pub const MAX_FAILED_SEARCHES: usize = 16;

/// A failed search over less than this (a damaged quoted-printable or base64 part in a small
/// message) is not counted: at most one per part, so at most [`Limits::max_parts`] times this.
pub const RESCAN_FREE: usize = 64 * 1024;

/// mail-parser parses a base64 or quoted-printable `message/*` part again, this many levels
/// deep (its `MAX_NESTED_ENCODED`).
const NESTED_ENCODED: usize = 3;

/// What [`check`] counted in a message within the limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shape {
    /// MIME parts mail-parser builds (containers and leaves, in nested messages too).
    pub parts: usize,
    /// Deepest nesting of open containers (multipart and message).
    pub depth: usize,
    /// Header fields mail-parser builds, in every header section.
    pub header_fields: usize,
    /// Octets of all header sections together.
    pub header_bytes: usize,
}

/// How mail-parser classifies a part by its `Content-Type` (its `mime_type()`), reduced to
/// what changes the structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// `multipart/digest`: its entries without a `Content-Type` are messages.
    Digest,
    /// Any other `multipart/*`.
    Multipart,
    /// `message/rfc822` or `message/global`, or an untyped digest entry.
    Message,
    /// Anything else: a leaf.
    Leaf,
}

/// One open level: what mail-parser keeps in its `MessageParserState`.
struct Level {
    class: Class,
    boundary: Option<Vec<u8>>,
}

/// Counters shared by a message and the encoded messages parsed inside it.
struct Budget<'l> {
    limits: &'l Limits,
    shape: Shape,
    failed: usize,
}

impl Budget<'_> {
    fn part(&mut self) -> Result<(), MimeError> {
        self.shape.parts += 1;
        if self.shape.parts > self.limits.max_parts {
            return Err(MimeError::TooManyParts(self.limits.max_parts));
        }
        Ok(())
    }

    fn depth(&mut self, depth: usize) -> Result<(), MimeError> {
        self.shape.depth = self.shape.depth.max(depth);
        if depth > self.limits.max_depth {
            return Err(MimeError::TooDeep(self.limits.max_depth));
        }
        Ok(())
    }

    /// A search from `start` failed; the parser will go over `data[start..]` again.
    fn failed_search(&mut self, start: usize, len: usize) -> Result<(), MimeError> {
        if len.saturating_sub(start) <= RESCAN_FREE {
            return Ok(());
        }
        self.failed += 1;
        if self.failed > MAX_FAILED_SEARCHES {
            return Err(MimeError::BrokenBoundaries(MAX_FAILED_SEARCHES));
        }
        Ok(())
    }

    /// Parse one header section at `stream`'s position, reading at most the octets left in the
    /// header budget. Returns whether a section was found (mail-parser's `parse_headers`), with
    /// `fields` holding its fields.
    fn headers<'x>(
        &mut self,
        data: &'x [u8],
        stream: &mut MessageStream<'x>,
        fields: &mut Vec<Header<'x>>,
    ) -> Result<bool, MimeError> {
        let pos = stream.offset();
        let left = self
            .limits
            .max_header_bytes
            .saturating_sub(self.shape.header_bytes);
        let end = data.len().min(pos.saturating_add(left));
        // The window holds the message up to `end`, so offsets stay those of `data`. Header
        // parsing looks at most one octet past a line end, and a section ends at a line end:
        // a section that ends inside the window parses as it would in the whole message.
        let mut window = MessageStream::new(&data[..end]);
        window.skip_bytes(pos);
        let found = window.parse_headers(&MessageParser::default(), fields);
        let consumed = window.offset() - pos;
        self.shape.header_bytes += consumed;
        self.shape.header_fields += fields.len();
        if !found && end < data.len() {
            return Err(MimeError::HeaderTooLong(self.limits.max_header_bytes));
        }
        if self.shape.header_fields > self.limits.max_header_fields {
            return Err(MimeError::TooManyHeaderFields(
                self.limits.max_header_fields,
            ));
        }
        // Continue in the whole message where the window stopped.
        *stream = MessageStream::new(data);
        stream.skip_bytes(pos + consumed);
        Ok(found)
    }
}

/// mail-parser's classification of a part (`parsers::message::mime_type`).
// `GetHeader` is implemented for `Vec<Header>`, not for slices.
#[allow(clippy::ptr_arg)]
fn classify(fields: &Vec<Header<'_>>, parent: Class) -> (Class, Option<String>) {
    let ct = fields
        .header_value(&HeaderName::ContentType)
        .and_then(|v| v.as_content_type());
    let Some(ct) = ct else {
        return if parent == Class::Digest {
            (Class::Message, None)
        } else {
            (Class::Leaf, None)
        };
    };
    match ct.ctype() {
        "multipart" => {
            let class = if ct.subtype() == Some("digest") {
                Class::Digest
            } else {
                Class::Multipart
            };
            (class, ct.attribute("boundary").map(str::to_string))
        }
        "message" if matches!(ct.subtype(), Some("rfc822") | Some("global")) => {
            (Class::Message, None)
        }
        _ => (Class::Leaf, None),
    }
}

/// Which decoder mail-parser reads a leaf with, and whether it is encoded at all.
#[allow(clippy::ptr_arg)]
fn decoder<'x>(fields: &Vec<Header<'x>>) -> (bool, DecodeFnc<'x>) {
    match fields.header_value(&HeaderName::ContentTransferEncoding) {
        Some(HeaderValue::Text(e)) if e.eq_ignore_ascii_case("base64") => {
            (true, MessageStream::decode_base64_mime)
        }
        Some(HeaderValue::Text(e)) if e.eq_ignore_ascii_case("quoted-printable") => {
            (true, MessageStream::decode_quoted_printable_mime)
        }
        _ => (false, MessageStream::mime_part),
    }
}

/// Count what mail-parser would build from `raw`, refusing as soon as a limit is passed:
/// [`MimeError::TooManyParts`], [`MimeError::TooDeep`], [`MimeError::TooManyHeaderFields`],
/// [`MimeError::HeaderTooLong`] or [`MimeError::BrokenBoundaries`].
pub fn check(raw: &[u8], limits: &Limits) -> Result<Shape, MimeError> {
    let mut budget = Budget {
        limits,
        shape: Shape::default(),
        failed: 0,
    };
    walk(raw, NESTED_ENCODED, 0, &mut budget)?;
    Ok(budget.shape)
}

/// One message (`parse_`), its control flow step by step, building nothing. `base` is the
/// nesting depth of the message itself (an encoded message inside another).
fn walk(
    data: &[u8],
    encoded_depth: usize,
    base: usize,
    b: &mut Budget<'_>,
) -> Result<(), MimeError> {
    if base > 0 {
        // An encoded message is one level below the part that holds it.
        b.depth(base)?;
    }
    let mut stream = MessageStream::new(data);
    let mut state = Level {
        class: Class::Message,
        boundary: None,
    };
    // Each entry: the suspended level and whether it waits for a nested message (mail-parser
    // keeps the parent `Message` beside it then).
    let mut stack: Vec<(Level, bool)> = Vec::new();
    let mut fields: Vec<Header<'_>> = Vec::new();

    'outer: loop {
        fields.clear();
        if !b.headers(data, &mut stream, &mut fields)? {
            if !fields.is_empty() {
                // A message that is only headers still becomes one part.
                b.part()?;
            }
            break;
        }
        b.part()?;
        let (mut class, boundary) = classify(&fields, state.class);

        if matches!(class, Class::Digest | Class::Multipart)
            && let Some(boundary) = boundary
        {
            let start = stream.offset();
            if stream.seek_next_part(boundary.as_bytes()) {
                stack.push((state, false));
                b.depth(base + stack.len())?;
                state = Level {
                    class,
                    boundary: Some(boundary.into_bytes()),
                };
                stream.skip_crlf();
                continue;
            }
            // Not found: the parser treats the part as text and rescanned from `start`.
            debug_assert_eq!(stream.offset(), start);
            b.failed_search(start, data.len())?;
            class = Class::Leaf;
        }
        if matches!(class, Class::Digest | Class::Multipart) {
            // A multipart without a boundary is read as a leaf.
            class = Class::Leaf;
        }

        let (encoded, decode) = decoder(&fields);
        if class == Class::Message && !encoded {
            // The nested message's header section follows directly; it ends at the parent's
            // boundary, which it takes over.
            let boundary = state.boundary.take();
            stack.push((state, true));
            b.depth(base + stack.len())?;
            state = Level {
                class: Class::Message,
                boundary,
            };
            continue;
        }

        let start = stream.offset();
        let (end, bytes) = decode(&mut stream, state.boundary.as_deref().unwrap_or(&b""[..]));
        if end == usize::MAX {
            // The parser's recovery: the part is text up to the boundary (or the end).
            b.failed_search(start, data.len())?;
            let (_, found) = stream.seek_part_end(state.boundary.as_deref());
            if !found {
                state.boundary = None;
            }
        } else if class == Class::Message && encoded_depth != 0 {
            // An encoded message is parsed again from its decoded octets.
            let inner: Cow<'_, [u8]> = bytes;
            walk(&inner, encoded_depth - 1, base + stack.len() + 1, b)?;
        }

        if state.boundary.is_some() {
            loop {
                if state.class == Class::Message {
                    // The end of a nested message: back to the level that holds it.
                    match stack.pop() {
                        Some((mut parent, true)) => {
                            parent.boundary = state.boundary.take();
                            state = parent;
                        }
                        _ => break 'outer,
                    }
                }
                if stream.is_multipart_end() {
                    // `--boundary--`: the multipart is closed; look for the enclosing one's
                    // next boundary.
                    if let Some((parent, _)) = stack.pop() {
                        state = parent;
                        if let Some(boundary) = &state.boundary {
                            let start = stream.offset();
                            if stream.seek_next_part_offset(boundary).is_some() {
                                continue;
                            }
                            b.failed_search(start, data.len())?;
                        }
                    }
                    break 'outer;
                }
                break;
            }
        } else if stream.offset() >= data.len() {
            break;
        }
    }
    Ok(())
}

/// The header fields of the top header section only, parsed from at most
/// `limits.max_header_bytes` octets (the rest of an oversized section is ignored), for reports
/// that quote a message that cannot be faxed.
pub fn top_headers<'x>(raw: &'x [u8], limits: &Limits) -> Option<mail_parser::Message<'x>> {
    let end = raw.len().min(limits.max_header_bytes);
    MessageParser::default().parse_headers(&raw[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    #[test]
    fn counts_a_plain_multipart() {
        let m = b"From: a@b\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n\
                  --B\r\nContent-Type: text/plain\r\n\r\nhello\r\n--B\r\n\r\nsecond\r\n--B--\r\n";
        let s = check(m, &limits()).unwrap();
        assert_eq!(s.parts, 3);
        assert_eq!(s.depth, 1);
        assert_eq!(s.header_fields, 3);
    }

    #[test]
    fn nested_message_counts_depth() {
        let mut m = String::new();
        for _ in 0..20 {
            m.push_str("Content-Type: message/rfc822\r\n\r\n");
        }
        m.push_str("Subject: x\r\n\r\nbody\r\n");
        assert_eq!(check(m.as_bytes(), &limits()), Err(MimeError::TooDeep(16)));
        let mut m = String::new();
        for _ in 0..3 {
            m.push_str("Content-Type: message/rfc822\r\n\r\n");
        }
        m.push_str("Subject: x\r\n\r\nbody\r\n");
        assert_eq!(check(m.as_bytes(), &limits()).unwrap().depth, 3);
    }

    #[test]
    fn digest_entries_are_messages() {
        let mut m = String::new();
        for i in 0..20 {
            m.push_str(&format!(
                "Content-Type: multipart/digest; boundary=\"d{i}\"\r\n\r\n--d{i}\r\n\r\n"
            ));
        }
        assert_eq!(check(m.as_bytes(), &limits()), Err(MimeError::TooDeep(16)));
    }

    #[test]
    fn encoded_message_is_walked_inside() {
        use base64::Engine as _;
        let mut inner = String::from("Content-Type: multipart/mixed; boundary=I\r\n\r\n");
        for _ in 0..300 {
            inner.push_str("--I\r\n\r\n");
        }
        let enc = base64::engine::general_purpose::STANDARD.encode(inner.as_bytes());
        let m = format!(
            "Content-Type: multipart/mixed; boundary=O\r\n\r\n--O\r\n\
             Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n{enc}\r\n--O--\r\n"
        );
        assert_eq!(
            check(m.as_bytes(), &limits()),
            Err(MimeError::TooManyParts(200))
        );
    }

    #[test]
    fn header_fields_and_octets_are_bounded() {
        let m = "a:\n".repeat(20_000) + "\nbody";
        assert_eq!(
            check(m.as_bytes(), &limits()),
            Err(MimeError::TooManyHeaderFields(limits().max_header_fields))
        );
        let m = format!("Subject: {}\n\nbody", "x".repeat(limits().max_header_bytes));
        assert_eq!(
            check(m.as_bytes(), &limits()),
            Err(MimeError::HeaderTooLong(limits().max_header_bytes))
        );
        // A message that is all headers and fits the budget is fine.
        assert!(check(b"Subject: x\n", &limits()).is_ok());
    }

    #[test]
    fn boundaries_that_never_occur_are_bounded() {
        let mut m = String::from("Content-Type: multipart/mixed; boundary=O\r\n\r\n");
        for i in 0..40 {
            m.push_str(&format!(
                "--O\r\nContent-Type: multipart/mixed; boundary=\"never{i}\"\r\n\r\nx\r\n"
            ));
        }
        // In a small message the rescans cost little: not counted.
        assert!(check(m.as_bytes(), &limits()).is_ok());
        m.push_str(&"y".repeat(2 * RESCAN_FREE));
        assert_eq!(
            check(m.as_bytes(), &limits()),
            Err(MimeError::BrokenBoundaries(MAX_FAILED_SEARCHES))
        );
    }
}
