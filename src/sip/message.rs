//! PURE: SIP messages (RFC 3261 §7, §25): a strict, bounded parser and a builder.
//!
//! The parser takes one datagram (UDP) or finds one message at the front of a stream buffer
//! (TCP, framed by `Content-Length`, RFC 3261 §18.3). It never panics: every size has a limit
//! below, and anything past a limit or outside the grammar we use is a [`ParseError`]. Header
//! values are kept as text; the few structured headers the user agent reads (Via, From/To,
//! Contact, CSeq, the URIs in them) have their own small parsers here.
//!
//! Written here rather than taken from a crate: the one SIP parsing crate we looked at
//! (`rsip` 0.4) had no release since 2022, no declared licence and no size limits; the part of
//! the grammar a fax endpoint reads is small enough to parse strictly ourselves.

use std::fmt::Write as _;

/// RFC 3261 §18.1.1 lets a UDP message reach 64 KiB; we take no larger message on any transport.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Header fields in one message (ours; SIPp and common PBXs send fewer than 30).
pub const MAX_HEADERS: usize = 100;
/// Octets of one header field after unfolding, and of the start line (ours).
pub const MAX_LINE: usize = 8 * 1024;
/// Via values in one message (ours; each proxy adds one).
pub const MAX_VIAS: usize = 20;
/// Parameters on one URI or header value (ours).
pub const MAX_PARAMS: usize = 32;

/// Why bytes are not a SIP message we accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The message (or a stream's pending message) exceeds [`MAX_MESSAGE`].
    #[error("SIP message larger than {MAX_MESSAGE} octets")]
    TooLarge,
    /// More than [`MAX_HEADERS`] header fields.
    #[error("more than {MAX_HEADERS} header fields")]
    TooManyHeaders,
    /// A line longer than [`MAX_LINE`].
    #[error("a line longer than {MAX_LINE} octets")]
    LineTooLong,
    /// The head is not terminated by an empty line.
    #[error("message head not terminated")]
    Incomplete,
    /// Not UTF-8 in the head.
    #[error("message head is not UTF-8")]
    NotUtf8,
    /// The start line is neither a request line nor a status line (RFC 3261 §7.1, §7.2).
    #[error("bad start line")]
    StartLine,
    /// A header line without a name and colon (RFC 3261 §7.3).
    #[error("bad header line")]
    HeaderLine,
    /// `Content-Length` not a number, or more body than the datagram holds.
    #[error("bad Content-Length")]
    ContentLength,
    /// A header the user agent needs is missing or malformed (its name).
    #[error("missing or malformed {0} header")]
    Header(&'static str),
}

/// A request method (RFC 3261 §7.1); unknown ones are kept by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE.
    Invite,
    /// ACK.
    Ack,
    /// BYE.
    Bye,
    /// CANCEL.
    Cancel,
    /// OPTIONS.
    Options,
    /// REGISTER.
    Register,
    /// Any other token.
    Other(String),
}

impl Method {
    /// Parse a method token (RFC 3261 §25.1 `token`); case-sensitive.
    pub fn parse(s: &str) -> Option<Method> {
        if s.is_empty() || s.len() > 32 || !s.bytes().all(is_token_char) {
            return None;
        }
        Some(match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            o => Method::Other(o.to_string()),
        })
    }
    /// The token.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Other(s) => s,
        }
    }
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `METHOD Request-URI SIP/2.0`.
    Request {
        /// The method.
        method: Method,
        /// The Request-URI as sent.
        uri: String,
    },
    /// `SIP/2.0 code reason`.
    Response {
        /// The status code, 100..=699.
        code: u16,
        /// The reason phrase.
        reason: String,
    },
}

/// One SIP message: start line, header fields in order (names in their long form, RFC 3261
/// §7.3.3), body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Request or status line.
    pub start: StartLine,
    /// `(name, value)`, names as [`canonical_name`] gives them, values trimmed and unfolded.
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` octets).
    pub body: Vec<u8>,
}

/// The long form of a header name: compact forms expanded (RFC 3261 §7.3.3), the known names
/// in their usual capitalisation, others as sent.
pub fn canonical_name(name: &str) -> String {
    let known = [
        ("i", "Call-ID"),
        ("m", "Contact"),
        ("e", "Content-Encoding"),
        ("l", "Content-Length"),
        ("c", "Content-Type"),
        ("f", "From"),
        ("s", "Subject"),
        ("k", "Supported"),
        ("t", "To"),
        ("v", "Via"),
    ];
    for (short, long) in known {
        if name.eq_ignore_ascii_case(short) || name.eq_ignore_ascii_case(long) {
            return long.to_string();
        }
    }
    for long in [
        "CSeq",
        "Max-Forwards",
        "Expires",
        "WWW-Authenticate",
        "Proxy-Authenticate",
        "Authorization",
        "Proxy-Authorization",
        "Record-Route",
        "Route",
        "P-Asserted-Identity",
        "Allow",
        "Accept",
        "User-Agent",
        "Min-Expires",
        "Retry-After",
    ] {
        if name.eq_ignore_ascii_case(long) {
            return long.to_string();
        }
    }
    name.to_string()
}

/// What [`frame_stream`] found at the front of a TCP buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// Not a whole message yet; read more.
    NeedMore,
    /// Keep-alive CRLFs (RFC 5626 §3.5.1) to drop: this many octets.
    Skip(usize),
    /// A whole message of this many octets starts the buffer.
    Message(usize),
}

/// Find the first message in a stream buffer by its head and `Content-Length` (RFC 3261
/// §18.3: mandatory on stream transports). A head or message past [`MAX_MESSAGE`] is an error
/// (the connection is then closed: there is no way to resynchronise).
pub fn frame_stream(buf: &[u8]) -> Result<Frame, ParseError> {
    let lead = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    if lead > 0 {
        return Ok(Frame::Skip(lead));
    }
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        return if buf.len() > MAX_MESSAGE {
            Err(ParseError::TooLarge)
        } else {
            Ok(Frame::NeedMore)
        };
    };
    let head = &buf[..head_end];
    let mut length = None;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = String::from_utf8_lossy(&line[..colon]);
        if canonical_name(name.trim()) == "Content-Length" {
            let v = String::from_utf8_lossy(&line[colon + 1..]);
            length = Some(parse_length(v.trim())?);
        }
    }
    let Some(length) = length else {
        return Err(ParseError::ContentLength);
    };
    let total = head_end + 4 + length;
    if total > MAX_MESSAGE {
        return Err(ParseError::TooLarge);
    }
    Ok(if buf.len() >= total {
        Frame::Message(total)
    } else {
        Frame::NeedMore
    })
}

fn parse_length(v: &str) -> Result<usize, ParseError> {
    if v.is_empty() || v.len() > 6 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::ContentLength);
    }
    v.parse().map_err(|_| ParseError::ContentLength)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Message {
    /// Parse one whole message (a UDP datagram, or a frame [`frame_stream`] cut).
    /// Without `Content-Length` (allowed on UDP, RFC 3261 §18.3) the body is the rest.
    pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
        if bytes.len() > MAX_MESSAGE {
            return Err(ParseError::TooLarge);
        }
        let head_end = find(bytes, b"\r\n\r\n").ok_or(ParseError::Incomplete)?;
        let head = std::str::from_utf8(&bytes[..head_end]).map_err(|_| ParseError::NotUtf8)?;
        let rest = &bytes[head_end + 4..];
        let mut lines = head.split("\r\n");
        let first = lines.next().ok_or(ParseError::StartLine)?;
        if first.len() > MAX_LINE {
            return Err(ParseError::LineTooLong);
        }
        let start = parse_start(first)?;
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                // RFC 3261 §7.3.1: a continuation line folds into the previous value.
                let Some(last) = headers.last_mut() else {
                    return Err(ParseError::HeaderLine);
                };
                if last.1.len() + line.len() > MAX_LINE {
                    return Err(ParseError::LineTooLong);
                }
                last.1.push(' ');
                last.1.push_str(line.trim());
                continue;
            }
            if line.len() > MAX_LINE {
                return Err(ParseError::LineTooLong);
            }
            if headers.len() >= MAX_HEADERS {
                return Err(ParseError::TooManyHeaders);
            }
            let (name, value) = line.split_once(':').ok_or(ParseError::HeaderLine)?;
            let name = name.trim_end_matches([' ', '\t']);
            if name.is_empty() || !name.bytes().all(is_token_char) {
                return Err(ParseError::HeaderLine);
            }
            if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
                return Err(ParseError::HeaderLine);
            }
            headers.push((canonical_name(name), value.trim().to_string()));
        }
        let length = headers
            .iter()
            .find(|(n, _)| n == "Content-Length")
            .map(|(_, v)| parse_length(v))
            .transpose()?;
        let body = match length {
            Some(n) if n > rest.len() => return Err(ParseError::ContentLength),
            Some(n) => rest[..n].to_vec(),
            None => rest.to_vec(),
        };
        Ok(Message {
            start,
            headers,
            body,
        })
    }

    /// A new request with no headers yet.
    pub fn request(method: Method, uri: &str) -> Message {
        Message {
            start: StartLine::Request {
                method,
                uri: uri.to_string(),
            },
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A response to `req` (RFC 3261 §8.2.6.2): its Via, From, To, Call-ID and CSeq copied;
    /// `to_tag` added to To when To has none.
    pub fn response_to(req: &Message, code: u16, reason: &str, to_tag: Option<&str>) -> Message {
        let mut m = Message {
            start: StartLine::Response {
                code,
                reason: reason.to_string(),
            },
            headers: Vec::new(),
            body: Vec::new(),
        };
        for (n, v) in &req.headers {
            match n.as_str() {
                "Via" | "From" | "Call-ID" | "CSeq" | "Record-Route" => {
                    m.headers.push((n.clone(), v.clone()))
                }
                "To" => {
                    let mut v = v.clone();
                    if let Some(tag) = to_tag
                        && NameAddr::parse(&v).is_ok_and(|na| na.param("tag").is_none())
                    {
                        let _ = write!(v, ";tag={tag}");
                    }
                    m.headers.push((n.clone(), v));
                }
                _ => {}
            }
        }
        m
    }

    /// Append a header.
    pub fn push(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Set the body and its Content-Type.
    pub fn set_body(&mut self, content_type: &str, body: Vec<u8>) {
        self.headers.retain(|(n, _)| n != "Content-Type");
        self.push("Content-Type", content_type);
        self.body = body;
    }

    /// The first value of a header (long name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, comma-separated values split (RFC 3261 §7.3.1) outside quotes
    /// and angle brackets.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (n, v) in &self.headers {
            if n == name {
                out.extend(split_commas(v));
            }
        }
        out
    }

    /// Replace the first value of a header in place (or append it).
    pub fn replace_first(&mut self, name: &str, value: impl Into<String>) {
        match self.headers.iter_mut().find(|(n, _)| n == name) {
            Some(h) => h.1 = value.into(),
            None => {
                self.push(name, value);
            }
        }
    }

    /// Replace every value of a header with one.
    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.retain(|(n, _)| n != name);
        self.push(name, value);
    }

    /// The method of a request, or of the request a response answers (its CSeq).
    pub fn method(&self) -> Option<Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method.clone()),
            StartLine::Response { .. } => self.cseq().ok().map(|c| c.1),
        }
    }

    /// The status code of a response.
    pub fn code(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// `CSeq: number METHOD` (RFC 3261 §8.1.1.5; the number below 2^31).
    pub fn cseq(&self) -> Result<(u32, Method), ParseError> {
        let v = self.header("CSeq").ok_or(ParseError::Header("CSeq"))?;
        let mut it = v.split_ascii_whitespace();
        let n = it
            .next()
            .and_then(|s| {
                if s.len() <= 10 {
                    s.parse::<u32>().ok()
                } else {
                    None
                }
            })
            .filter(|&n| n < 1 << 31)
            .ok_or(ParseError::Header("CSeq"))?;
        let m = it
            .next()
            .and_then(Method::parse)
            .ok_or(ParseError::Header("CSeq"))?;
        if it.next().is_some() {
            return Err(ParseError::Header("CSeq"));
        }
        Ok((n, m))
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Result<&str, ParseError> {
        self.header("Call-ID")
            .filter(|v| !v.is_empty() && v.len() <= 256)
            .ok_or(ParseError::Header("Call-ID"))
    }

    /// The top Via.
    pub fn top_via(&self) -> Result<Via, ParseError> {
        let vias = self.header_values("Via");
        if vias.len() > MAX_VIAS {
            return Err(ParseError::Header("Via"));
        }
        Via::parse(vias.first().ok_or(ParseError::Header("Via"))?)
    }

    /// From, parsed.
    pub fn from(&self) -> Result<NameAddr, ParseError> {
        NameAddr::parse(self.header("From").ok_or(ParseError::Header("From"))?)
    }

    /// To, parsed.
    pub fn to(&self) -> Result<NameAddr, ParseError> {
        NameAddr::parse(self.header("To").ok_or(ParseError::Header("To"))?)
    }

    /// The headers every request needs for the user agent to answer it (RFC 3261 §8.1.1).
    pub fn check_request(&self) -> Result<(), ParseError> {
        self.top_via()?;
        self.from()?;
        self.to()?;
        self.call_id()?;
        let (_, m) = self.cseq()?;
        if let StartLine::Request { method, .. } = &self.start
            && *method != m
            && !(matches!(method, Method::Ack | Method::Cancel) && m == *method)
        {
            return Err(ParseError::Header("CSeq"));
        }
        Ok(())
    }

    /// The wire form; `Content-Length` is (re)written last from the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = String::with_capacity(512 + self.body.len());
        match &self.start {
            StartLine::Request { method, uri } => {
                let _ = write!(s, "{} {} SIP/2.0\r\n", method.as_str(), uri);
            }
            StartLine::Response { code, reason } => {
                let _ = write!(s, "SIP/2.0 {code} {reason}\r\n");
            }
        }
        for (n, v) in &self.headers {
            if n != "Content-Length" {
                let _ = write!(s, "{n}: {v}\r\n");
            }
        }
        let _ = write!(s, "Content-Length: {}\r\n\r\n", self.body.len());
        let mut out = s.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

fn parse_start(line: &str) -> Result<StartLine, ParseError> {
    if let Some(rest) = line.strip_prefix("SIP/2.0 ") {
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::StartLine);
        }
        let code: u16 = code.parse().map_err(|_| ParseError::StartLine)?;
        if !(100..=699).contains(&code) || reason.bytes().any(|b| b.is_ascii_control()) {
            return Err(ParseError::StartLine);
        }
        return Ok(StartLine::Response {
            code,
            reason: reason.to_string(),
        });
    }
    let mut it = line.split(' ');
    let (Some(m), Some(uri), Some(v), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(ParseError::StartLine);
    };
    let method = Method::parse(m).ok_or(ParseError::StartLine)?;
    if v != "SIP/2.0" || uri.is_empty() || uri.bytes().any(|b| b.is_ascii_control()) {
        return Err(ParseError::StartLine);
    }
    Ok(StartLine::Request {
        method,
        uri: uri.to_string(),
    })
}

/// Split a header value on commas outside quotes and `<…>`.
pub fn split_commas(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut esc) = (false, false, false);
    let mut cur = String::new();
    for c in v.chars() {
        if esc {
            esc = false;
        } else if quoted && c == '\\' {
            esc = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if !quoted && c == '<' {
            angle = true;
        } else if !quoted && c == '>' {
            angle = false;
        } else if c == ',' && !quoted && !angle {
            out.push(cur.trim().to_string());
            cur.clear();
            continue;
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// `;name=value` parameters, in order (RFC 3261 §25.1 generic-param).
pub type Params = Vec<(String, Option<String>)>;

fn parse_params(s: &str) -> Result<Params, ParseError> {
    let mut out = Vec::new();
    for p in s.split(';') {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        if out.len() >= MAX_PARAMS {
            return Err(ParseError::Header("parameters"));
        }
        match p.split_once('=') {
            Some((n, v)) => out.push((
                n.trim().to_ascii_lowercase(),
                Some(v.trim().trim_matches('"').to_string()),
            )),
            None => out.push((p.to_ascii_lowercase(), None)),
        }
    }
    Ok(out)
}

fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_deref().unwrap_or(""))
}

/// A SIP or tel URI (RFC 3261 §19.1, RFC 3966), as far as we read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    /// `sip`, `sips` or `tel` (lower case).
    pub scheme: String,
    /// The user part (the number for `tel:`), percent-escapes left as sent.
    pub user: Option<String>,
    /// Host (IPv6 without brackets); empty for `tel:`.
    pub host: String,
    /// Port, when given.
    pub port: Option<u16>,
    /// URI parameters.
    pub params: Params,
}

impl Uri {
    /// Parse a URI (without angle brackets); headers after `?` are dropped.
    pub fn parse(s: &str) -> Result<Uri, ParseError> {
        let bad = ParseError::Header("URI");
        let s = s.trim();
        if s.len() > MAX_LINE || s.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(bad);
        }
        let (scheme, rest) = s.split_once(':').ok_or(bad.clone())?;
        let scheme = scheme.to_ascii_lowercase();
        let rest = rest.split('?').next().unwrap_or("");
        let (main, params) = rest.split_once(';').unwrap_or((rest, ""));
        let params = parse_params(params)?;
        if scheme == "tel" {
            if main.is_empty() {
                return Err(bad);
            }
            return Ok(Uri {
                scheme,
                user: Some(main.to_string()),
                host: String::new(),
                port: None,
                params,
            });
        }
        if scheme != "sip" && scheme != "sips" {
            return Err(bad);
        }
        let (user, hostport) = match main.rsplit_once('@') {
            Some((u, h)) => (Some(u.split(':').next().unwrap_or("").to_string()), h),
            None => (None, main),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or(bad.clone())?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p.parse::<u16>().map_err(|_| bad.clone())?),
                None if after.is_empty() => None,
                None => return Err(bad),
            };
            (h.to_string(), port)
        } else {
            match hostport.split_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    Some(p.parse::<u16>().map_err(|_| bad.clone())?),
                ),
                None => (hostport.to_string(), None),
            }
        };
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:_".contains(&b))
        {
            return Err(bad);
        }
        Ok(Uri {
            scheme,
            user,
            host,
            port,
            params,
        })
    }

    /// A URI parameter's value (`""` for a flag).
    pub fn param(&self, name: &str) -> Option<&str> {
        param(&self.params, name)
    }

    /// The host as a socket address when it is an IP literal.
    pub fn socket_addr(&self, default_port: u16) -> Option<std::net::SocketAddr> {
        let ip: std::net::IpAddr = self.host.parse().ok()?;
        Some(std::net::SocketAddr::new(
            ip,
            self.port.unwrap_or(default_port),
        ))
    }
}

/// `"Display" <uri>;params` or `uri;params` (RFC 3261 §20.10, §20.20, §20.39).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name, unquoted.
    pub display: Option<String>,
    /// The URI text.
    pub uri: String,
    /// Header parameters (`tag`, `expires`…).
    pub params: Params,
}

impl NameAddr {
    /// Parse one value.
    pub fn parse(v: &str) -> Result<NameAddr, ParseError> {
        let bad = ParseError::Header("address");
        let v = v.trim();
        if v.len() > MAX_LINE {
            return Err(bad);
        }
        if let Some(lt) = v.find('<') {
            let display = v[..lt].trim().trim_matches('"').trim();
            let gt = v[lt..].find('>').ok_or(bad.clone())? + lt;
            let uri = v[lt + 1..gt].trim().to_string();
            Uri::parse(&uri)?;
            Ok(NameAddr {
                display: (!display.is_empty()).then(|| display.to_string()),
                uri,
                params: parse_params(&v[gt + 1..])?,
            })
        } else {
            // RFC 3261 §20: without brackets, parameters after `;` belong to the header.
            let (uri, params) = v.split_once(';').unwrap_or((v, ""));
            Uri::parse(uri)?;
            Ok(NameAddr {
                display: None,
                uri: uri.trim().to_string(),
                params: parse_params(params)?,
            })
        }
    }

    /// A header parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        param(&self.params, name)
    }

    /// The parsed URI.
    pub fn parsed_uri(&self) -> Result<Uri, ParseError> {
        Uri::parse(&self.uri)
    }
}

/// One Via value (RFC 3261 §20.42).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// `UDP`, `TCP`…, upper case.
    pub transport: String,
    /// sent-by host.
    pub host: String,
    /// sent-by port.
    pub port: Option<u16>,
    /// Parameters (`branch`, `received`, `rport`).
    pub params: Params,
}

impl Via {
    /// Parse one value.
    pub fn parse(v: &str) -> Result<Via, ParseError> {
        let bad = ParseError::Header("Via");
        let v = v.trim();
        let rest = v.strip_prefix("SIP").ok_or(bad.clone())?.trim_start();
        let rest = rest.strip_prefix('/').ok_or(bad.clone())?.trim_start();
        let rest = rest.strip_prefix("2.0").ok_or(bad.clone())?.trim_start();
        let rest = rest.strip_prefix('/').ok_or(bad.clone())?.trim_start();
        let tend = rest.find([' ', '\t']).ok_or(bad.clone())?;
        let transport = rest[..tend].to_ascii_uppercase();
        let rest = rest[tend..].trim_start();
        let (sent_by, params) = rest.split_once(';').unwrap_or((rest, ""));
        let fake = format!("sip:{}", sent_by.trim());
        let u = Uri::parse(&fake).map_err(|_| bad.clone())?;
        if transport.is_empty() || !transport.bytes().all(is_token_char) {
            return Err(bad);
        }
        Ok(Via {
            transport,
            host: u.host,
            port: u.port,
            params: parse_params(params)?,
        })
    }

    /// A parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        param(&self.params, name)
    }

    /// The branch, when it carries RFC 3261's magic cookie (§8.1.1.7); older branches are
    /// not matched on (we answer them, but a retransmission is then a new transaction).
    pub fn branch(&self) -> Option<&str> {
        self.param("branch")
            .filter(|b| b.starts_with("z9hG4bK") && b.len() <= 128)
    }
}

/// Quote a display name or parameter value (RFC 3261 §25.1 quoted-string), dropping
/// characters that cannot appear in one.
pub fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars().filter(|c| !c.is_control()).take(128) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:+12125550100@127.0.0.1 SIP/2.0\r\n\
        v: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1;rport\r\n\
        f: \"Alice, A\" <sip:alice@127.0.0.1>;tag=a1\r\n\
        t: <sip:+12125550100@127.0.0.1>\r\n\
        i: c1@x\r\nCSeq: 1 INVITE\r\nSubject: folded\r\n  line\r\nl: 3\r\n\r\nabcdef";

    #[test]
    fn parses_compact_folded_and_cuts_body() {
        let m = Message::parse(INVITE.as_bytes()).unwrap();
        m.check_request().unwrap();
        assert_eq!(m.body, b"abc");
        assert_eq!(m.header("Subject"), Some("folded line"));
        assert_eq!(m.from().unwrap().display.as_deref(), Some("Alice, A"));
        assert_eq!(m.from().unwrap().param("tag"), Some("a1"));
        assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK-1"));
        let r = Message::response_to(&m, 200, "OK", Some("b2"));
        assert_eq!(r.to().unwrap().param("tag"), Some("b2"));
        let again = Message::parse(&r.to_bytes()).unwrap();
        assert_eq!(again.code(), Some(200));
    }

    #[test]
    fn frames_stream_by_content_length() {
        let m = INVITE.as_bytes();
        let head = m.len() - 3; // "def" is the next message's start
        assert_eq!(frame_stream(m).unwrap(), Frame::Message(head));
        assert_eq!(frame_stream(&m[..head - 1]).unwrap(), Frame::NeedMore);
        assert_eq!(frame_stream(b"\r\n\r\nX").unwrap(), Frame::Skip(4));
    }

    #[test]
    fn refuses_limits() {
        let many = format!(
            "OPTIONS sip:a@b SIP/2.0\r\n{}\r\n",
            "X-A: 1\r\n".repeat(MAX_HEADERS + 1)
        );
        assert_eq!(
            Message::parse(many.as_bytes()),
            Err(ParseError::TooManyHeaders)
        );
        let big = "OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 99999\r\n\r\n";
        assert_eq!(
            Message::parse(big.as_bytes()),
            Err(ParseError::ContentLength)
        );
        assert_eq!(frame_stream(big.as_bytes()), Err(ParseError::TooLarge));
        let word = "OPTIONS sip:a@b SIP/2.0\r\nContent-Length: ten\r\n\r\n";
        assert_eq!(
            frame_stream(word.as_bytes()),
            Err(ParseError::ContentLength)
        );
        let huge = "OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 70000\r\n\r\n";
        assert_eq!(frame_stream(huge.as_bytes()), Err(ParseError::TooLarge));
    }
}
