//! PURE: the AT command layer (ITU-T V.250) — what we send and how the modem's replies parse.
//!
//! A modem answers a command with zero or more *information* lines and exactly one *final*
//! result (V.250 §5.7); between commands it may volunteer *unsolicited* results (`RING`, and
//! with `AT+VCID=1` the caller ID block `NMBR=…`/`NDID=…` before the first `RING`). Responses
//! are framed `<CR><LF>text<CR><LF>` in verbose mode (V1); with echo on (E1) the command comes
//! back terminated by `<CR>` alone. [`ResponseParser`] turns a byte stream into [`Response`]s,
//! never panics, and bounds every line at [`MAX_LINE`] octets: a longer line is reported as
//! [`Response::Overlong`] and skipped to its end.

use std::time::Duration;

/// Longest response line we keep (ours; V.250 sets no limit). Capability lists and caller ID
/// lines are well below 100 octets; 256 leaves room for chatty `ATI` replies.
pub const MAX_LINE: usize = 256;

/// A final result code (V.250 §5.7.1, T.31 §8): it ends the command in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FinalResult {
    /// `OK`: the command succeeded (for `+FRH`, the frame's FCS was good — T.31 §8.3, +FRH).
    Ok,
    /// `CONNECT`: data mode follows (dial/answer, `+FTH`/`+FRH`/`+FTM`/`+FRM`).
    Connect,
    /// `NO CARRIER`: carrier lost or never found.
    NoCarrier,
    /// `ERROR`: command not accepted (for `+FRH`, a bad FCS — T.31 §8.3, +FRH).
    Error,
    /// `NO DIALTONE` (V.250 §6.3.1): no line, or (on iaxmodem) the far end refused the call.
    NoDialtone,
    /// `BUSY` (V.250 §6.3.1): busy signal.
    Busy,
    /// `NO ANSWER` (V.250 §6.3.1): ring-back until the modem's own timer ran out.
    NoAnswer,
    /// `+FCERROR` (T.31 §8.3, +FRM/+FRH): the carrier found is not the one asked for.
    FcError,
}

impl FinalResult {
    /// The text the modem prints for this result.
    pub fn text(self) -> &'static str {
        match self {
            FinalResult::Ok => "OK",
            FinalResult::Connect => "CONNECT",
            FinalResult::NoCarrier => "NO CARRIER",
            FinalResult::Error => "ERROR",
            FinalResult::NoDialtone => "NO DIALTONE",
            FinalResult::Busy => "BUSY",
            FinalResult::NoAnswer => "NO ANSWER",
            FinalResult::FcError => "+FCERROR",
        }
    }
}

/// One line of a modem's reply, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// A final result code.
    Final(FinalResult),
    /// Unsolicited `RING` (V.250 §6.3.1 result 2).
    Ring,
    /// A caller ID / call information line `TAG=value` (`NMBR`, `NDID`, `NAME`, `DATE`, …),
    /// as sent by `AT+VCID=1` modems before `RING`.
    CallInfo {
        /// The tag, upper-case (`NMBR`, `NDID`, …).
        tag: String,
        /// The value after `=`, trimmed; `<NONE>` is kept as sent.
        value: String,
    },
    /// The echo of a command we sent (starts with `AT`).
    Echo(String),
    /// Any other information text (`spandsp`, `24,48,72,…`).
    Info(String),
    /// A line longer than [`MAX_LINE`] octets (skipped; what kind of line it was is unknown).
    Overlong,
}

/// Call information tags modems print with caller ID on (`AT+VCID=1`, V.253 `+VCID`;
/// iaxmodem/spandsp print exactly these).
const CALL_INFO_TAGS: &[&str] = &[
    "DATE", "TIME", "NAME", "NMBR", "ANID", "USER", "PASS", "CDID", "NDID", "MESG",
];

/// Classify one response line (without its CR/LF).
pub fn classify(line: &str) -> Response {
    let t = line.trim();
    match t {
        "OK" => return Response::Final(FinalResult::Ok),
        "CONNECT" => return Response::Final(FinalResult::Connect),
        "NO CARRIER" => return Response::Final(FinalResult::NoCarrier),
        "ERROR" => return Response::Final(FinalResult::Error),
        "NO DIALTONE" | "NO DIAL TONE" => return Response::Final(FinalResult::NoDialtone),
        "BUSY" => return Response::Final(FinalResult::Busy),
        "NO ANSWER" => return Response::Final(FinalResult::NoAnswer),
        "+FCERROR" => return Response::Final(FinalResult::FcError),
        "RING" => return Response::Ring,
        _ => {}
    }
    // Some modems append a rate to CONNECT ("CONNECT 14400"); it is still CONNECT.
    if let Some(rest) = t.strip_prefix("CONNECT ")
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b' ')
    {
        return Response::Final(FinalResult::Connect);
    }
    if t.len() >= 2 && t.as_bytes()[..2].eq_ignore_ascii_case(b"AT") {
        return Response::Echo(t.to_owned());
    }
    if let Some((tag, value)) = t.split_once('=') {
        let tag = tag.trim();
        if CALL_INFO_TAGS.contains(&tag) {
            return Response::CallInfo {
                tag: tag.to_owned(),
                value: value.trim().to_owned(),
            };
        }
    }
    Response::Info(t.to_owned())
}

/// Splits a modem's byte stream into classified response lines.
///
/// Lines end at CR or LF; empty lines (the CR LF framing) are dropped. Bytes that are not
/// UTF-8 are replaced (U+FFFD): response text is ASCII by V.250 §5.7.
#[derive(Debug, Default, Clone)]
pub struct ResponseParser {
    line: Vec<u8>,
    overlong: bool,
    ended_by_cr: bool,
}

impl ResponseParser {
    /// A parser at the start of a line.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed one byte; a completed line comes back classified.
    pub fn push(&mut self, b: u8) -> Option<Response> {
        if b == b'\r' || b == b'\n' {
            self.ended_by_cr = b == b'\r';
            if self.overlong {
                self.overlong = false;
                self.line.clear();
                return Some(Response::Overlong);
            }
            if self.line.is_empty() {
                return None;
            }
            let text = String::from_utf8_lossy(&self.line).into_owned();
            self.line.clear();
            if text.trim().is_empty() {
                return None;
            }
            return Some(classify(&text));
        }
        if self.overlong {
            return None;
        }
        if self.line.len() >= MAX_LINE {
            self.overlong = true;
            self.line.clear();
            return None;
        }
        self.line.push(b);
        None
    }

    /// Feed a chunk; every completed line is appended to `out`.
    pub fn push_all(&mut self, bytes: &[u8], out: &mut Vec<Response>) {
        for &b in bytes {
            if let Some(r) = self.push(b) {
                out.push(r);
            }
        }
    }

    /// True when no partial line is buffered (the stream is between lines).
    pub fn at_line_start(&self) -> bool {
        self.line.is_empty() && !self.overlong
    }

    /// True when the last line ended with CR, so its LF (V.250 §5.7: `<CR><LF>` after every
    /// result) is still to come — the driver must not take that LF as data after `CONNECT`.
    pub fn ended_by_cr(&self) -> bool {
        self.ended_by_cr
    }

    /// Forget any partial line (e.g. when switching to data mode).
    pub fn reset(&mut self) {
        self.line.clear();
        self.overlong = false;
    }
}

/// An AT command and how long we wait for its final result.
///
/// The timeout is a value: the pure driver turns it into a deadline (`now + timeout`) that the
/// I/O shell waits for; nothing here reads a clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtCommand {
    /// The command text without the terminating CR (`AT+FTM=96`).
    pub text: String,
    /// How long to wait for the final result before giving up.
    pub timeout: Duration,
}

/// Wait for a plain command's final result (ours): real modems answer within milliseconds,
/// `ATZ` on some USB modems takes about a second.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest command we send (V.250 §5.2.1: a DCE must accept at least 40 characters after
/// `AT`; we keep ours to that so any modem takes them).
pub const MAX_COMMAND: usize = 42;

/// Why a command cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Longer than [`MAX_COMMAND`], or contains a control character (a CR inside would end it
    /// early and inject a second command).
    #[error("AT command {0:?} is not sendable: too long or contains a control character")]
    NotSendable(String),
}

impl AtCommand {
    /// A command with the [`DEFAULT_COMMAND_TIMEOUT`].
    pub fn new(text: impl Into<String>) -> Result<Self, CommandError> {
        Self::with_timeout(text, DEFAULT_COMMAND_TIMEOUT)
    }

    /// A command with its own timeout.
    pub fn with_timeout(text: impl Into<String>, timeout: Duration) -> Result<Self, CommandError> {
        let text = text.into();
        if text.len() > MAX_COMMAND
            || text.is_empty()
            || text.bytes().any(|b| b.is_ascii_control() || !b.is_ascii())
        {
            return Err(CommandError::NotSendable(text));
        }
        Ok(AtCommand { text, timeout })
    }

    /// The bytes to write: the text and a CR (V.250 §5.2.1, S3 = 13).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.text.len() + 1);
        v.extend_from_slice(self.text.as_bytes());
        v.push(b'\r');
        v
    }
}

/// Parse a T.31 capability list (`24,48,72,73,74,96,97,98,121,122,145,146`, also with ranges
/// `0-255` and parentheses) into numbers. Items that are not numbers are skipped; at most
/// 64 values are returned (ours: T.31 lists 12 modulations).
pub fn parse_number_list(text: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for item in text
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
    {
        let item = item.trim().trim_matches(|c| c == '(' || c == ')');
        if let Some((a, b)) = item.split_once('-') {
            if let (Ok(a), Ok(b)) = (a.trim().parse::<u32>(), b.trim().parse::<u32>())
                && a <= b
            {
                for v in a..=b.min(a.saturating_add(63)) {
                    out.push(v);
                    if out.len() >= 64 {
                        return out;
                    }
                }
            }
        } else if let Ok(v) = item.parse::<u32>() {
            out.push(v);
        }
        if out.len() >= 64 {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Vec<Response> {
        let mut p = ResponseParser::new();
        let mut out = Vec::new();
        p.push_all(bytes, &mut out);
        out
    }

    #[test]
    fn rig_transcript_probe() {
        // Captured from iaxmodem with echo on.
        let r = parse(b"ATI\r\r\nspandsp\r\n\r\nOK\r\n");
        assert_eq!(
            r,
            vec![
                Response::Echo("ATI".into()),
                Response::Info("spandsp".into()),
                Response::Final(FinalResult::Ok)
            ]
        );
        let r = parse(b"\r\n24,48,72,73,74,96,97,98,121,122,145,146\r\n\r\nOK\r\n");
        let Response::Info(s) = &r[0] else { panic!() };
        assert_eq!(
            parse_number_list(s),
            vec![24, 48, 72, 73, 74, 96, 97, 98, 121, 122, 145, 146]
        );
    }

    #[test]
    fn caller_id_block_then_ring() {
        let r = parse(b"\r\nDATE=1128\r\n\r\nNMBR=1001\r\n\r\nNAME=Modem modemA\r\n\r\nNDID=5550002\r\n\r\nRING\r\n");
        assert_eq!(
            r[1],
            Response::CallInfo {
                tag: "NMBR".into(),
                value: "1001".into()
            }
        );
        assert_eq!(
            r[2],
            Response::CallInfo {
                tag: "NAME".into(),
                value: "Modem modemA".into()
            }
        );
        assert_eq!(r[4], Response::Ring);
    }

    #[test]
    fn all_finals() {
        for f in [
            FinalResult::Ok,
            FinalResult::Connect,
            FinalResult::NoCarrier,
            FinalResult::Error,
            FinalResult::NoDialtone,
            FinalResult::Busy,
            FinalResult::NoAnswer,
            FinalResult::FcError,
        ] {
            assert_eq!(classify(f.text()), Response::Final(f));
        }
        assert_eq!(
            classify("CONNECT 14400"),
            Response::Final(FinalResult::Connect)
        );
        assert_eq!(classify("OKAY"), Response::Info("OKAY".into()));
    }

    #[test]
    fn split_anywhere() {
        let whole = b"\r\nNMBR=1001\r\n\r\nRING\r\n\r\nOK\r\n";
        let expect = parse(whole);
        for cut in 0..whole.len() {
            let mut p = ResponseParser::new();
            let mut out = Vec::new();
            p.push_all(&whole[..cut], &mut out);
            p.push_all(&whole[cut..], &mut out);
            assert_eq!(out, expect, "cut at {cut}");
        }
    }

    #[test]
    fn overlong_line_is_skipped_and_parser_recovers() {
        let mut bytes = vec![b'x'; MAX_LINE + 10];
        bytes.extend_from_slice(b"\r\nOK\r\n");
        assert_eq!(
            parse(&bytes),
            vec![Response::Overlong, Response::Final(FinalResult::Ok)]
        );
        // Exactly MAX_LINE is still a line.
        let mut bytes = vec![b'y'; MAX_LINE];
        bytes.extend_from_slice(b"\r\n");
        assert_eq!(parse(&bytes).len(), 1);
        assert!(matches!(parse(&bytes)[0], Response::Info(_)));
    }

    #[test]
    fn commands_are_checked() {
        assert_eq!(
            AtCommand::new("AT+FTM=96").unwrap().to_bytes(),
            b"AT+FTM=96\r"
        );
        assert!(AtCommand::new("ATD123\rATH").is_err());
        assert!(AtCommand::new("").is_err());
        assert!(AtCommand::new("A".repeat(MAX_COMMAND + 1)).is_err());
    }

    #[test]
    fn number_lists() {
        assert_eq!(parse_number_list("0-3"), vec![0, 1, 2, 3]);
        assert_eq!(parse_number_list("(0,1),x,2"), vec![0, 1, 2]);
        assert_eq!(parse_number_list("0-4294967295").len(), 64);
        assert!(parse_number_list("5-1").is_empty());
    }
}
