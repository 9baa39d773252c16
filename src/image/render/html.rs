//! Simple text/html to plain text for faxing: tags dropped, block elements become line breaks,
//! list items get bullets, links keep their address, images their alt text, common character
//! references decoded. Nothing is ever fetched: `src`/`href` are only printed.
//!
//! PURE and bounded: one pass over the input, output no longer than the input plus the
//! few characters each tag may add.

/// Elements whose content is never shown.
const HIDDEN: &[&str] = &["script", "style", "head", "title", "template", "noscript"];
/// Elements that begin and end on their own line.
const BLOCK: &[&str] = &[
    "p",
    "div",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "table",
    "blockquote",
    "pre",
    "section",
    "article",
    "header",
    "footer",
    "form",
    "hr",
    "address",
    "dl",
    "dt",
    "dd",
    "body",
    "html",
];

/// Converts HTML to text.
pub fn to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut hidden: Option<String> = None;
    let mut pre = 0u32;
    let mut href: Option<String> = None;
    let mut rest = html;
    while !rest.is_empty() {
        if let Some(tail) = rest.strip_prefix("<!--") {
            rest = tail.find("-->").map_or("", |i| &tail[i + 3..]);
            continue;
        }
        if rest.starts_with('<') {
            let end = tag_end(rest);
            let Some(end) = end else {
                // An unterminated tag: the rest is not shown (a browser does the same).
                break;
            };
            let tag = &rest[1..end];
            rest = &rest[end + 1..];
            let closing = tag.starts_with('/');
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase();
            if let Some(h) = &hidden {
                if closing && *h == name {
                    hidden = None;
                }
                continue;
            }
            if !closing && HIDDEN.contains(&name.as_str()) && !tag.ends_with('/') {
                hidden = Some(name);
                continue;
            }
            match (name.as_str(), closing) {
                ("br", _) => out.push('\n'),
                ("li", false) => {
                    newline(&mut out);
                    out.push_str("  * ");
                }
                ("tr", true) => newline(&mut out),
                ("td" | "th", true) => out.push_str("  "),
                ("pre", false) => {
                    blank_line(&mut out);
                    pre += 1;
                }
                ("pre", true) => {
                    pre = pre.saturating_sub(1);
                    blank_line(&mut out);
                }
                ("hr", false) => {
                    newline(&mut out);
                    out.push_str(&"-".repeat(40));
                    out.push('\n');
                }
                ("img", false) => {
                    if let Some(alt) = attr(tag, "alt").filter(|a| !a.trim().is_empty()) {
                        out.push('[');
                        out.push_str(&decode_entities(alt.trim()));
                        out.push(']');
                    }
                }
                ("a", false) => href = attr(tag, "href").map(|h| decode_entities(&h)),
                ("a", true) => {
                    if let Some(h) = href.take()
                        && !h.starts_with('#')
                        && !h.starts_with("mailto:")
                        && !out.ends_with(h.as_str())
                    {
                        out.push_str(" <");
                        out.push_str(&h);
                        out.push('>');
                    }
                }
                (n, _) if BLOCK.contains(&n) => blank_line(&mut out),
                _ => {}
            }
            continue;
        }
        let next = rest.find('<').unwrap_or(rest.len());
        let text = &rest[..next];
        rest = &rest[next..];
        if hidden.is_some() {
            continue;
        }
        let text = decode_entities(text);
        if pre > 0 {
            out.push_str(&text);
        } else {
            // Whitespace collapses to one space, as HTML renders it.
            for word in text.split(|c: char| c.is_ascii_whitespace()) {
                if word.is_empty() {
                    if !out.is_empty() && !out.ends_with([' ', '\n']) {
                        out.push(' ');
                    }
                    continue;
                }
                out.push_str(word);
                out.push(' ');
            }
            if !text.ends_with(|c: char| c.is_ascii_whitespace()) && out.ends_with(' ') {
                out.pop();
            }
        }
    }
    // Tidy: no trailing spaces, at most one empty line in a row.
    let mut tidy = String::with_capacity(out.len());
    let mut empty = 0;
    for line in out.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            empty += 1;
            if empty > 1 || tidy.is_empty() {
                continue;
            }
        } else {
            empty = 0;
        }
        tidy.push_str(line);
        tidy.push('\n');
    }
    while tidy.ends_with("\n\n") {
        tidy.pop();
    }
    tidy
}

/// Index of the `>` closing the tag that starts `s`, skipping quoted attribute values.
fn tag_end(s: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices().skip(1) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return Some(i),
            _ => {}
        }
    }
    None
}

/// Value of attribute `name` in a tag's text.
fn attr(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(name) {
        let at = from + i;
        from = at + name.len();
        let before_ok = at > 0 && lower.as_bytes()[at - 1].is_ascii_whitespace();
        let after = lower[from..].trim_start();
        if !before_ok || !after.starts_with('=') {
            continue;
        }
        let start = tag.len() - after.len() + 1;
        let v = tag[start..].trim_start();
        return Some(match v.chars().next() {
            Some(q @ ('"' | '\'')) => v[1..].split(q).next().unwrap_or("").to_string(),
            _ => v
                .split(|c: char| c.is_ascii_whitespace() || c == '>')
                .next()
                .unwrap_or("")
                .to_string(),
        });
    }
    None
}

fn newline(out: &mut String) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

fn blank_line(out: &mut String) {
    newline(out);
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push('\n');
    }
}

/// Decodes `&name;`, `&#n;` and `&#xh;` (the names mail clients actually produce); anything
/// else is left as written.
pub fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        // Search bytes: `;` is ASCII, so its index is a char boundary whatever precedes it.
        let semi = rest.as_bytes()[..rest.len().min(12)]
            .iter()
            .position(|&b| b == b';');
        let decoded = semi.and_then(|j| {
            let name = &rest[1..j];
            let c = if let Some(num) = name.strip_prefix('#') {
                let n = match num.strip_prefix(['x', 'X']) {
                    Some(h) => u32::from_str_radix(h, 16).ok(),
                    None => num.parse().ok(),
                };
                n.and_then(char::from_u32)
            } else {
                named(name)
            };
            c.map(|c| (c, j + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn named(n: &str) -> Option<char> {
    Some(match n {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "copy" => '©',
        "reg" => '®',
        "euro" => '€',
        "pound" => '£',
        "yen" => '¥',
        "cent" => '¢',
        "sect" => '§',
        "deg" => '°',
        "middot" => '·',
        "bull" => '•',
        "hellip" => '…',
        "ndash" => '–',
        "mdash" => '—',
        "lsquo" => '‘',
        "rsquo" => '’',
        "ldquo" => '“',
        "rdquo" => '”',
        "laquo" => '«',
        "raquo" => '»',
        "times" => '×',
        "divide" => '÷',
        "auml" => 'ä',
        "ouml" => 'ö',
        "uuml" => 'ü',
        "Auml" => 'Ä',
        "Ouml" => 'Ö',
        "Uuml" => 'Ü',
        "szlig" => 'ß',
        "eacute" => 'é',
        "egrave" => 'è',
        "agrave" => 'à',
        "ccedil" => 'ç',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_of_cases() {
        let cases = [
            (
                "<p>Hello <b>world</b></p><p>two</p>",
                "Hello world\n\ntwo\n",
            ),
            ("a<br>b<br/>c", "a\nb\nc\n"),
            ("<ul><li>one</li><li>two</li></ul>", "  * one\n  * two\n"),
            (
                "<head><title>x</title><style>p{}</style></head>fine",
                "fine\n",
            ),
            ("<script>alert('<b>')</script>ok", "ok\n"),
            (
                "&lt;tag&gt; &amp; &#233;&#x20AC; &bogus; &",
                "<tag> & é€ &bogus; &\n",
            ),
            (
                "<a href=\"https://ex.org/\">site</a>",
                "site <https://ex.org/>\n",
            ),
            ("<img src='http://tracker/x.gif' alt='Logo'>", "[Logo]\n"),
            ("<pre>a  b\n  c</pre>", "a  b\n  c\n"),
            ("x <!-- hidden <p> --> y", "x y\n"),
            ("unterminated <b", "unterminated\n"),
            ("<a title='>' href=x>t</a>", "t <x>\n"),
        ];
        for (html, want) in cases {
            assert_eq!(to_text(html), want, "{html}");
        }
    }
}
