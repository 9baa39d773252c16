//! PURE: the T.38 stream's offer/answer (ITU-T T.38 Annex D.2.3, RFC 3264) on top of
//! [`T38Params`] and its SDP attributes.
//!
//! Until the T.38 module (`crate::fax::t38`) lands, the parameters are read here from the
//! attribute lines; the negotiation rules are Annex D's: the answer's version and bit rate are
//! at most the offer's, rate management and error correction follow the offer when we can do
//! what it says, the options we do not implement are left out of the answer.

/// The T.38 session parameters both ends agreed (T.38 Annex D.2.3 attributes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct T38Params {
    /// `T38FaxVersion`.
    pub version: u8,
    /// `T38MaxBitRate`, bit/s.
    pub max_bit_rate: u32,
    /// `T38FaxMaxDatagram`, octets.
    pub max_datagram: u32,
    /// `T38FaxUdpEC: t38UDPRedundancy` (else none).
    pub redundancy: bool,
}

impl Default for T38Params {
    fn default() -> Self {
        T38Params {
            version: 0,
            max_bit_rate: 14_400,
            max_datagram: 400,
            redundancy: true,
        }
    }
}

type Attrs = Vec<(String, Option<String>)>;

fn attrs_of(p: &T38Params) -> Attrs {
    let mut a: Attrs = vec![
        ("T38FaxVersion".into(), Some(p.version.to_string())),
        ("T38MaxBitRate".into(), Some(p.max_bit_rate.to_string())),
        // T.38 Annex D: over UDP the training check is transferred (TCF sent as data).
        ("T38FaxRateManagement".into(), Some("transferredTCF".into())),
        ("T38FaxMaxBuffer".into(), Some("2000".into())),
        ("T38FaxMaxDatagram".into(), Some(p.max_datagram.to_string())),
    ];
    if p.redundancy {
        a.push(("T38FaxUdpEC".into(), Some("t38UDPRedundancy".into())));
    }
    a
}

/// Our offer's attribute lines.
pub fn offer_attrs(ours: &T38Params) -> Attrs {
    attrs_of(ours)
}

fn read(m: &super::sdp::Media, ours: &T38Params) -> Option<T38Params> {
    if let Some(rm) = m.attr("T38FaxRateManagement")
        && !rm.eq_ignore_ascii_case("transferredTCF")
    {
        // localTCF is for TCP transport of T.38 (Annex D.2.3); we only run UDPTL.
        return None;
    }
    let num = |n: &str| m.attr(n).and_then(|v| v.trim().parse::<u32>().ok());
    let version = num("T38FaxVersion").unwrap_or(0).min(ours.version as u32) as u8;
    let max_bit_rate = num("T38MaxBitRate").map_or(ours.max_bit_rate, |r| r.min(ours.max_bit_rate));
    let max_datagram =
        num("T38FaxMaxDatagram").map_or(ours.max_datagram, |d| d.clamp(32, ours.max_datagram));
    let redundancy = ours.redundancy
        && m.attr("T38FaxUdpEC")
            .is_some_and(|v| v.eq_ignore_ascii_case("t38UDPRedundancy"));
    Some(T38Params {
        version,
        max_bit_rate,
        max_datagram,
        redundancy,
    })
}

/// Answer a T.38 offer: the agreed parameters and our answer's attribute lines, or `None`
/// when we cannot run what it asks (we answer 488).
pub fn answer_offer(ours: &T38Params, offer: &super::sdp::Media) -> Option<(T38Params, Attrs)> {
    let agreed = read(offer, ours)?;
    let attrs = attrs_of(&agreed);
    Some((agreed, attrs))
}

/// Read the far end's answer to our offer.
pub fn accept_answer(ours: &T38Params, answer: &super::sdp::Media) -> Option<T38Params> {
    read(answer, ours)
}
