//! T.38: real-time fax over IP (ITU-T T.38) — the T.30 engine carried in IFP packets over
//! UDPTL instead of over a modem.
//!
//! - [`ifp`]: IFP packets (T.38 clause 7, Annex A ASN.1) in aligned PER, by hand.
//! - [`udptl`]: UDPTL framing (T.38 §9.1) with redundancy, FEC parsing and a pure
//!   reorder/recovery buffer.
//! - [`T38Params`] here: the session parameters and their SDP form (T.38 Annex D / RFC 3362),
//!   with the offer/answer rule of T.38 Annex D.2.3.
//!
//! `T38Params` is what the SIP layer negotiates and hands to the media session. Its
//! `max_datagram` and `max_buffer` are *declarative* (T.38 Annex D.2.3): each side states what
//! it can receive, so in the parameters a media session uses they are the far end's values.

pub mod ifp;
pub mod session;
pub mod terminal;
pub mod udptl;

/// How TCF is handled (T.38 clause 8 and Annex D `T38FaxRateManagement`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateManagement {
    /// `localTCF`: each gateway checks training on its own PSTN leg; TCF is not sent over IP
    /// (meant for TCP).
    LocalTcf,
    /// `transferredTCF`: TCF travels as `t4-non-ecm-data` and the receiving terminal checks it
    /// (the method meant for UDPTL, T.38 clause 8).
    TransferredTcf,
}

impl RateManagement {
    /// The SDP token.
    pub fn token(self) -> &'static str {
        match self {
            RateManagement::LocalTcf => "localTCF",
            RateManagement::TransferredTcf => "transferredTCF",
        }
    }
}

/// UDPTL error correction (Annex D `T38FaxUdpEC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UdpEc {
    /// `t38UDPRedundancy`: earlier packets repeated in each datagram.
    Redundancy,
    /// `t38UDPFEC`: parity packets (we receive it; we send redundancy, which every receiver
    /// reads since the choice travels in each datagram).
    Fec,
    /// `t38UDPNoEC` (T.38 2004 on): no error correction.
    None,
}

impl UdpEc {
    /// The SDP token.
    pub fn token(self) -> &'static str {
        match self {
            UdpEc::Redundancy => "t38UDPRedundancy",
            UdpEc::Fec => "t38UDPFEC",
            UdpEc::None => "t38UDPNoEC",
        }
    }

    /// How much correction it gives, for the answer rule (more is "higher").
    fn rank(self) -> u8 {
        match self {
            UdpEc::None => 0,
            UdpEc::Redundancy => 1,
            UdpEc::Fec => 2,
        }
    }
}

/// Highest T.38 version we implement (T.38 (2005) and later are version 3 on the wire for
/// everything faxgate sends: V.17 and slower).
pub const MAX_VERSION: u8 = 3;

/// The parameters of one T.38 session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct T38Params {
    /// `T38FaxVersion`, 0–3: changes the IFP field-type encoding (see [`ifp`]).
    pub version: u8,
    /// `T38MaxBitRate`, bit/s: the fastest modulation to use (14400 for V.17).
    pub max_bitrate: u32,
    /// `T38FaxRateManagement`.
    pub rate_management: RateManagement,
    /// `T38FaxMaxBuffer`, octets: the receiver's buffer (declarative).
    pub max_buffer: u32,
    /// `T38FaxMaxDatagram`, octets: the largest UDPTL datagram the receiver accepts
    /// (declarative): datagrams we send stay within the far end's.
    pub max_datagram: u32,
    /// `T38FaxUdpEC`.
    pub udp_ec: UdpEc,
    /// Earlier packets repeated per datagram when sending with redundancy (ours; T.38 2010's
    /// `T38FaxUdpECDepth` carries it in SDP when present).
    pub redundancy_depth: u8,
    /// `T38FaxFillBitRemoval`: we never remove or reinsert fill bits, so ours is always false.
    pub fill_bit_removal: bool,
}

impl Default for T38Params {
    fn default() -> Self {
        T38Params {
            version: 0,
            max_bitrate: 14400,
            rate_management: RateManagement::TransferredTcf,
            max_buffer: 2000,
            max_datagram: 400,
            udp_ec: UdpEc::Redundancy,
            redundancy_depth: 3,
            fill_bit_removal: false,
        }
    }
}

/// A T.38 SDP attribute that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// A known attribute with a value we cannot read.
    #[error("bad value for a={name}: {value:?}")]
    BadValue {
        /// The attribute.
        name: &'static str,
        /// Its value as given.
        value: String,
    },
}

/// Largest value accepted for the numeric attributes (ours: no real buffer or datagram is
/// near it; it keeps arithmetic on them safe).
const MAX_NUMBER: u32 = 1 << 24;

fn number(name: &'static str, value: Option<&str>) -> Result<u32, SdpError> {
    let bad = || SdpError::BadValue {
        name,
        value: value.unwrap_or("").into(),
    };
    let v: u32 = value.ok_or_else(bad)?.trim().parse().map_err(|_| bad())?;
    if v > MAX_NUMBER {
        return Err(bad());
    }
    Ok(v)
}

/// A boolean attribute: present alone means true; `:0` / `:1` are seen in the field too.
fn flag(value: Option<&str>) -> bool {
    !matches!(value.map(str::trim), Some("0") | Some("false"))
}

impl T38Params {
    /// The SDP attributes for this side, as `(name, value)` pairs for `a=name:value` lines
    /// (T.38 Annex D.2.3 / RFC 3362). Boolean attributes are listed only when true.
    pub fn sdp_attributes(&self) -> Vec<(&'static str, Option<String>)> {
        let mut v = vec![
            ("T38FaxVersion", Some(self.version.to_string())),
            ("T38MaxBitRate", Some(self.max_bitrate.to_string())),
        ];
        if self.fill_bit_removal {
            v.push(("T38FaxFillBitRemoval", None));
        }
        v.push((
            "T38FaxRateManagement",
            Some(self.rate_management.token().into()),
        ));
        v.push(("T38FaxMaxBuffer", Some(self.max_buffer.to_string())));
        v.push(("T38FaxMaxDatagram", Some(self.max_datagram.to_string())));
        v.push(("T38FaxUdpEC", Some(self.udp_ec.token().into())));
        v
    }

    /// The same as SDP lines without the `a=` (e.g. `T38FaxVersion:0`).
    pub fn sdp_lines(&self) -> Vec<String> {
        self.sdp_attributes()
            .into_iter()
            .map(|(n, v)| match v {
                Some(v) => format!("{n}:{v}"),
                None => n.to_string(),
            })
            .collect()
    }

    /// Reads the T.38 attributes of a media description. `attrs` are `(name, value)` pairs
    /// (the SDP `a=` lines split at the first colon); names are matched without regard to
    /// case (peers differ), other attributes are ignored, and absent ones take T.38 Annex
    /// D.2.3's defaults (version 0, no fill-bit removal, …) or ours ([`T38Params::default`]).
    pub fn from_sdp_attributes<'a>(
        attrs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<T38Params, SdpError> {
        let mut p = T38Params::default();
        for (name, value) in attrs {
            match name.trim().to_ascii_lowercase().as_str() {
                "t38faxversion" => {
                    let v = number("T38FaxVersion", value)?;
                    // A newer version than ours is answered with ours; keep it visible here.
                    p.version = v.min(255) as u8;
                }
                "t38maxbitrate" => p.max_bitrate = number("T38MaxBitRate", value)?,
                "t38faxratemanagement" => {
                    p.rate_management = match value.map(|v| v.trim().to_ascii_lowercase()) {
                        Some(v) if v == "localtcf" => RateManagement::LocalTcf,
                        Some(v) if v == "transferredtcf" => RateManagement::TransferredTcf,
                        _ => {
                            return Err(SdpError::BadValue {
                                name: "T38FaxRateManagement",
                                value: value.unwrap_or("").into(),
                            });
                        }
                    }
                }
                "t38faxmaxbuffer" => p.max_buffer = number("T38FaxMaxBuffer", value)?,
                "t38faxmaxdatagram" => p.max_datagram = number("T38FaxMaxDatagram", value)?,
                "t38faxudpec" => {
                    p.udp_ec = match value.map(|v| v.trim().to_ascii_lowercase()) {
                        Some(v) if v == "t38udpredundancy" => UdpEc::Redundancy,
                        Some(v) if v == "t38udpfec" => UdpEc::Fec,
                        Some(v) if v == "t38udpnoec" => UdpEc::None,
                        _ => {
                            return Err(SdpError::BadValue {
                                name: "T38FaxUdpEC",
                                value: value.unwrap_or("").into(),
                            });
                        }
                    }
                }
                "t38faxudpecdepth" => {
                    // "minred:maxred" (T.38 2010 Annex D); the first number is enough for us.
                    let first = value.and_then(|v| v.split(':').next());
                    let d = number("T38FaxUdpECDepth", first)?;
                    p.redundancy_depth = d.min(u32::from(u8::MAX)) as u8;
                }
                "t38faxfillbitremoval" => p.fill_bit_removal = flag(value),
                _ => {}
            }
        }
        Ok(p)
    }

    /// [`T38Params::from_sdp_attributes`] over SDP lines (`a=` optional); lines that are not
    /// attributes are skipped.
    pub fn from_sdp_lines<'a>(
        lines: impl IntoIterator<Item = &'a str>,
    ) -> Result<T38Params, SdpError> {
        T38Params::from_sdp_attributes(lines.into_iter().map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("a=").unwrap_or(l);
            match l.split_once(':') {
                Some((n, v)) => (n, Some(v)),
                None => (l, None),
            }
        }))
    }

    /// Our answer to `offer`, `self` being what we support (T.38 Annex D.2.3):
    /// - version: the lower of the two (the answerer never answers a higher one);
    /// - max bit rate: the lower of the two;
    /// - rate management: the offer's (it is not negotiable in an answer);
    /// - fill-bit removal (and transcoding): only if offered *and* supported — never, for us;
    /// - UDP EC: the offer's or less (FEC offered is answered with redundancy when we prefer
    ///   it; redundancy offered is kept unless we want none);
    /// - max buffer / max datagram: ours (declarative: what *we* can receive).
    pub fn answer(&self, offer: &T38Params) -> T38Params {
        let udp_ec = if offer.udp_ec.rank() <= self.udp_ec.rank() {
            offer.udp_ec
        } else {
            self.udp_ec
        };
        T38Params {
            version: self.version.min(offer.version).min(MAX_VERSION),
            max_bitrate: self.max_bitrate.min(offer.max_bitrate),
            rate_management: offer.rate_management,
            max_buffer: self.max_buffer,
            max_datagram: self.max_datagram,
            udp_ec,
            redundancy_depth: self.redundancy_depth,
            fill_bit_removal: self.fill_bit_removal && offer.fill_bit_removal,
        }
    }

    /// The parameters the media session uses once `local` (ours, as sent in our SDP) and
    /// `remote` (theirs, from their SDP) are agreed: the agreed version, bit rate, rate
    /// management and error correction, and the far end's receive limits (what we may send).
    pub fn session(local: &T38Params, remote: &T38Params) -> T38Params {
        T38Params {
            version: local.version.min(remote.version).min(MAX_VERSION),
            max_bitrate: local.max_bitrate.min(remote.max_bitrate),
            rate_management: remote.rate_management,
            max_buffer: remote.max_buffer,
            max_datagram: remote.max_datagram,
            udp_ec: if remote.udp_ec.rank() < local.udp_ec.rank() {
                remote.udp_ec
            } else {
                local.udp_ec
            },
            redundancy_depth: local.redundancy_depth,
            fill_bit_removal: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdp_round_trip_and_case() {
        let p = T38Params {
            version: 2,
            max_bitrate: 9600,
            rate_management: RateManagement::LocalTcf,
            max_buffer: 1800,
            max_datagram: 300,
            udp_ec: UdpEc::Fec,
            redundancy_depth: 3,
            fill_bit_removal: false,
        };
        let lines = p.sdp_lines();
        assert_eq!(lines[0], "T38FaxVersion:2");
        assert_eq!(lines[2], "T38FaxRateManagement:localTCF");
        let back = T38Params::from_sdp_lines(lines.iter().map(String::as_str)).unwrap();
        assert_eq!(back, p);
        let q = T38Params::from_sdp_lines([
            "a=t38faxversion:1",
            "a=T38faxMaxDatagram:72",
            "a=T38FaxFillBitRemoval",
            "a=T38FaxUdpEC:t38UDPRedundancy",
            "a=rtpmap:0 PCMU/8000",
        ])
        .unwrap();
        assert_eq!(q.version, 1);
        assert_eq!(q.max_datagram, 72);
        assert!(q.fill_bit_removal);
        assert_eq!(
            T38Params::from_sdp_lines(["a=T38FaxMaxDatagram:lots"]),
            Err(SdpError::BadValue {
                name: "T38FaxMaxDatagram",
                value: "lots".into()
            })
        );
        assert!(T38Params::from_sdp_lines(["a=T38FaxMaxBuffer:99999999999"]).is_err());
    }

    #[test]
    fn answer_rule() {
        let ours = T38Params {
            version: 3,
            ..T38Params::default()
        };
        let offer = T38Params {
            version: 1,
            max_bitrate: 9600,
            rate_management: RateManagement::LocalTcf,
            max_buffer: 100,
            max_datagram: 150,
            udp_ec: UdpEc::Fec,
            redundancy_depth: 0,
            fill_bit_removal: true,
        };
        let a = ours.answer(&offer);
        assert_eq!(a.version, 1);
        assert_eq!(a.max_bitrate, 9600);
        assert_eq!(a.rate_management, RateManagement::LocalTcf);
        assert_eq!(a.udp_ec, UdpEc::Redundancy);
        assert!(!a.fill_bit_removal);
        assert_eq!(a.max_datagram, ours.max_datagram);
        let s = T38Params::session(&a, &offer);
        assert_eq!(s.max_datagram, 150);
        assert_eq!(s.version, 1);
        // A newer offer than ours is answered with ours.
        let newer = T38Params {
            version: 7,
            ..T38Params::default()
        };
        assert_eq!(ours.answer(&newer).version, 3);
        // No EC offered stays no EC.
        let none = T38Params {
            udp_ec: UdpEc::None,
            ..T38Params::default()
        };
        assert_eq!(ours.answer(&none).udp_ec, UdpEc::None);
    }
}
