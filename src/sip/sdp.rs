//! PURE: SDP session descriptions (RFC 4566) and the offer/answer rules we use (RFC 3264):
//! a G.711 audio stream (PCMU payload type 0, PCMA 8; RFC 3551 §6) and a T.38 image stream
//! (`m=image PORT udptl t38`, ITU-T T.38 Annex D, RFC 3362). The T.38 attributes' meaning
//! belongs to [`crate::fax::t38`]; here they are lines of text.
//!
//! Bounded: a description of more than [`MAX_SDP`] octets, [`MAX_LINES`] lines or
//! [`MAX_MEDIA`] media sections is refused.

use std::fmt::Write as _;
use std::net::IpAddr;

/// Octets in one description (ours; a fax call's SDP is under 1 KiB).
pub const MAX_SDP: usize = 16 * 1024;
/// Lines in one description (ours).
pub const MAX_LINES: usize = 200;
/// Media sections (ours).
pub const MAX_MEDIA: usize = 8;

/// Why a body is not an SDP description we read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// Past a limit.
    #[error("SDP too large")]
    TooLarge,
    /// A line is not `x=value` (RFC 4566 §5), or a field we read is malformed.
    #[error("malformed SDP line {0}")]
    Line(usize),
    /// `v=0` missing.
    #[error("SDP without v=0")]
    Version,
}

/// One `m=` section (RFC 4566 §5.14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `image`…
    pub kind: String,
    /// Port; 0 is a refused or disabled stream (RFC 3264 §5.1, §6).
    pub port: u16,
    /// `RTP/AVP`, `udptl`…
    pub proto: String,
    /// Formats (payload types, `t38`).
    pub formats: Vec<String>,
    /// The section's `c=` address, else the session's.
    pub connection: Option<IpAddr>,
    /// `a=` lines: name and optional value.
    pub attrs: Vec<(String, Option<String>)>,
}

impl Media {
    /// An attribute's value (`Some("")` for a flag).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref().unwrap_or(""))
    }
    /// `m=image … udptl t38` (T.38 Annex D.2.3; transport names compared without case).
    pub fn is_t38(&self) -> bool {
        self.kind == "image"
            && self.proto.eq_ignore_ascii_case("udptl")
            && self.formats.iter().any(|f| f.eq_ignore_ascii_case("t38"))
    }
    /// `m=audio … RTP/AVP …`.
    pub fn is_audio(&self) -> bool {
        self.kind == "audio" && self.proto.eq_ignore_ascii_case("RTP/AVP")
    }
}

/// A parsed description: what offer/answer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    /// `o=` session id.
    pub session_id: String,
    /// `o=` version.
    pub version: u64,
    /// Session-level `c=`.
    pub connection: Option<IpAddr>,
    /// Media sections in order.
    pub media: Vec<Media>,
}

impl Sdp {
    /// Parse a body. Lines end in CRLF or LF (RFC 4566 §5 asks parsers to take both).
    pub fn parse(body: &[u8]) -> Result<Sdp, SdpError> {
        if body.len() > MAX_SDP {
            return Err(SdpError::TooLarge);
        }
        let text = std::str::from_utf8(body).map_err(|_| SdpError::Line(0))?;
        let mut sdp = Sdp {
            session_id: String::new(),
            version: 0,
            connection: None,
            media: Vec::new(),
        };
        let mut saw_v = false;
        for (i, line) in text.lines().enumerate() {
            if i >= MAX_LINES {
                return Err(SdpError::TooLarge);
            }
            let line = line.trim_end_matches('\r');
            if line.is_empty() {
                continue;
            }
            let bad = SdpError::Line(i + 1);
            let (k, v) = line.split_once('=').ok_or(bad.clone())?;
            if k.len() != 1 {
                return Err(bad);
            }
            match k {
                "v" => {
                    if v != "0" {
                        return Err(SdpError::Version);
                    }
                    saw_v = true;
                }
                "o" => {
                    let f: Vec<&str> = v.split_ascii_whitespace().collect();
                    if f.len() != 6 {
                        return Err(bad);
                    }
                    sdp.session_id = f[1].chars().take(64).collect();
                    sdp.version = f[2].parse().map_err(|_| bad.clone())?;
                }
                "c" => {
                    let f: Vec<&str> = v.split_ascii_whitespace().collect();
                    if f.len() != 3 || f[0] != "IN" {
                        return Err(bad);
                    }
                    // RFC 4566 §5.7: a multicast address may carry /ttl; we take unicast only.
                    let ip: IpAddr = f[2].parse().map_err(|_| bad.clone())?;
                    match sdp.media.last_mut() {
                        Some(m) => m.connection = Some(ip),
                        None => sdp.connection = Some(ip),
                    }
                }
                "m" => {
                    if sdp.media.len() >= MAX_MEDIA {
                        return Err(SdpError::TooLarge);
                    }
                    let f: Vec<&str> = v.split_ascii_whitespace().collect();
                    if f.len() < 4 {
                        return Err(bad);
                    }
                    // RFC 4566 §5.14: `port/count` for layered encodings; we read the port.
                    let port = f[1]
                        .split('/')
                        .next()
                        .unwrap_or("")
                        .parse()
                        .map_err(|_| bad.clone())?;
                    sdp.media.push(Media {
                        kind: f[0].to_string(),
                        port,
                        proto: f[2].to_string(),
                        formats: f[3..].iter().take(32).map(|s| s.to_string()).collect(),
                        connection: None,
                        attrs: Vec::new(),
                    });
                }
                "a" => {
                    if let Some(m) = sdp.media.last_mut() {
                        let (n, val) = match v.split_once(':') {
                            Some((n, val)) => (n.to_string(), Some(val.to_string())),
                            None => (v.to_string(), None),
                        };
                        m.attrs.push((n, val));
                    }
                }
                _ => {}
            }
        }
        if !saw_v {
            return Err(SdpError::Version);
        }
        Ok(sdp)
    }

    /// The address a media section's stream goes to (its `c=`, else the session's).
    pub fn media_addr(&self, m: &Media) -> Option<std::net::SocketAddr> {
        let ip = m.connection.or(self.connection)?;
        (m.port != 0 && !ip.is_unspecified()).then(|| std::net::SocketAddr::new(ip, m.port))
    }
}

/// A G.711 codec (RFC 3551 §4.5.14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// µ-law, payload type 0.
    Pcmu,
    /// A-law, payload type 8.
    Pcma,
}

impl Codec {
    /// The static RTP payload type.
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }
}

/// What we put in every description we write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `o=` session id (fixed for the call).
    pub session_id: u64,
    /// `o=` version: one more on every new description in the call (RFC 3264 §8).
    pub version: u64,
    /// Our media address.
    pub addr: IpAddr,
}

fn head(o: &Origin) -> String {
    let ipv = if o.addr.is_ipv4() { "IP4" } else { "IP6" };
    format!(
        "v=0\r\no=faxgate {} {} IN {ipv} {}\r\ns=faxgate\r\nc=IN {ipv} {}\r\nt=0 0\r\n",
        o.session_id, o.version, o.addr, o.addr
    )
}

/// An audio description: our codecs in order of preference (RFC 3264 §5.1), sendrecv.
pub fn audio(o: &Origin, port: u16, codecs: &[Codec]) -> Vec<u8> {
    let mut s = head(o);
    let pts: Vec<String> = codecs
        .iter()
        .map(|c| c.payload_type().to_string())
        .collect();
    let _ = write!(s, "m=audio {port} RTP/AVP {}\r\n", pts.join(" "));
    for c in codecs {
        let name = match c {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        };
        let _ = write!(s, "a=rtpmap:{} {name}/8000\r\n", c.payload_type());
    }
    s.push_str("a=ptime:20\r\na=sendrecv\r\n");
    s.into_bytes()
}

/// A T.38 description (T.38 Annex D.2.3): `m=image PORT udptl t38` and the attribute lines
/// (`T38FaxVersion:0`…), written as given.
pub fn image(o: &Origin, port: u16, attrs: &[(String, Option<String>)]) -> Vec<u8> {
    let mut s = head(o);
    let _ = write!(s, "m=image {port} udptl t38\r\n");
    for (n, v) in attrs {
        match v {
            Some(v) => {
                let _ = write!(s, "a={n}:{v}\r\n");
            }
            None => {
                let _ = write!(s, "a={n}\r\n");
            }
        }
    }
    s.into_bytes()
}

/// Our answer to `offer` (RFC 3264 §6): as many m-lines as the offer, in its order. `ours` is a
/// one-stream description from [`audio`] or [`image`]; its stream answers the first offered
/// stream `taken` accepts, and every other offered stream is refused with port 0.
pub fn answer(ours: Vec<u8>, offer: &Sdp, taken: impl Fn(&Media) -> bool) -> Vec<u8> {
    let text = String::from_utf8_lossy(&ours).into_owned();
    let Some(split) = text.find("m=") else {
        return ours;
    };
    let (head, stream) = text.split_at(split);
    let mut out = head.to_string();
    let mut used = false;
    for m in &offer.media {
        if !used && taken(m) {
            out.push_str(stream);
            used = true;
        } else {
            let _ = write!(
                out,
                "m={} 0 {} {}\r\n",
                m.kind,
                m.proto,
                m.formats.join(" ")
            );
        }
    }
    if !used {
        out.push_str(stream);
    }
    out.into_bytes()
}

/// The first audio stream of an offer we can take: the codec we answer with (the offer's
/// first of PCMU/PCMA) and where to send.
pub fn pick_audio(offer: &Sdp) -> Option<(Codec, std::net::SocketAddr)> {
    for m in offer.media.iter().filter(|m| m.is_audio()) {
        let addr = offer.media_addr(m)?;
        for f in &m.formats {
            match f.as_str() {
                "0" => return Some((Codec::Pcmu, addr)),
                "8" => return Some((Codec::Pcma, addr)),
                _ => {}
            }
        }
    }
    None
}

/// The T.38 stream of a description, with where to send UDPTL.
pub fn pick_t38(sdp: &Sdp) -> Option<(&Media, std::net::SocketAddr)> {
    sdp.media
        .iter()
        .find(|m| m.is_t38() && m.port != 0)
        .and_then(|m| Some((m, sdp.media_addr(m)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_and_image_round_trip() {
        let o = Origin {
            session_id: 7,
            version: 1,
            addr: "127.0.0.1".parse().unwrap(),
        };
        let a = Sdp::parse(&audio(&o, 4000, &[Codec::Pcmu, Codec::Pcma])).unwrap();
        assert_eq!(
            pick_audio(&a),
            Some((Codec::Pcmu, "127.0.0.1:4000".parse().unwrap()))
        );
        let attrs = vec![
            ("T38FaxVersion".to_string(), Some("0".to_string())),
            ("T38FaxFillBitRemoval".to_string(), None),
        ];
        let i = Sdp::parse(&image(&o, 4002, &attrs)).unwrap();
        let (m, addr) = pick_t38(&i).unwrap();
        assert_eq!(addr, "127.0.0.1:4002".parse().unwrap());
        assert_eq!(m.attr("t38faxversion"), Some("0"));
        assert_eq!(m.attr("T38FaxFillBitRemoval"), Some(""));
    }

    #[test]
    fn answer_keeps_the_offers_streams_in_order() {
        let offer = Sdp::parse(b"v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 5000 RTP/AVP 0 101\r\nm=image 5002 udptl t38\r\n").unwrap();
        let o = Origin {
            session_id: 1,
            version: 2,
            addr: "127.0.0.1".parse().unwrap(),
        };
        let body = answer(image(&o, 4000, &[]), &offer, Media::is_t38);
        let a = Sdp::parse(&body).unwrap();
        assert_eq!(a.media.len(), 2);
        assert_eq!((a.media[0].kind.as_str(), a.media[0].port), ("audio", 0));
        assert_eq!((a.media[1].kind.as_str(), a.media[1].port), ("image", 4000));
    }

    #[test]
    fn refused_stream_and_bad_lines() {
        let s =
            b"v=0\no=- 1 2 IN IP4 10.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=image 0 udptl t38\n";
        let sdp = Sdp::parse(s).unwrap();
        assert!(pick_t38(&sdp).is_none());
        assert_eq!(Sdp::parse(b"v=0\nxx\n"), Err(SdpError::Line(2)));
        assert_eq!(
            Sdp::parse(b"o=- 1 2 IN IP4 1.2.3.4\n"),
            Err(SdpError::Version)
        );
    }
}
