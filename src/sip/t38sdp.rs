//! PURE: the T.38 stream's offer/answer (ITU-T T.38 Annex D.2.3, RFC 3264) between the SDP
//! media section ([`super::sdp::Media`]) and [`T38Params`], whose attribute form and answer
//! rule live in [`crate::fax::t38`].
//!
//! We run UDPTL only, so an offer or answer asking for `localTCF` (meant for TCP transport of
//! T.38) or with attribute values we cannot read is refused (488 to an offer; a BYE with
//! [`super::Cause::NoT38`] after an answer).

use crate::fax::t38::RateManagement;
pub use crate::fax::t38::T38Params;

use super::sdp::Media;

/// `a=` attributes as name and optional value.
pub type Attrs = Vec<(String, Option<String>)>;

fn theirs(m: &Media) -> Option<T38Params> {
    let p = T38Params::from_sdp_attributes(m.attrs.iter().map(|(n, v)| (n.as_str(), v.as_deref())))
        .ok()?;
    (p.rate_management == RateManagement::TransferredTcf).then_some(p)
}

fn attrs(p: &T38Params) -> Attrs {
    p.sdp_attributes()
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect()
}

/// Our offer's attribute lines.
pub fn offer_attrs(ours: &T38Params) -> Attrs {
    attrs(ours)
}

/// Answer a T.38 offer: the parameters the media session uses and our answer's attribute
/// lines, or `None` when we cannot run what it asks (we answer 488).
pub fn answer_offer(ours: &T38Params, offer: &Media) -> Option<(T38Params, Attrs)> {
    let remote = theirs(offer)?;
    let answer = ours.answer(&remote);
    Some((T38Params::session(&answer, &remote), attrs(&answer)))
}

/// Read the far end's answer to our offer: the parameters the media session uses.
pub fn accept_answer(ours: &T38Params, answer: &Media) -> Option<T38Params> {
    let remote = theirs(answer)?;
    Some(T38Params::session(ours, &remote))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::sdp::{self, Origin, Sdp};

    fn media(lines: &str) -> Media {
        let body = format!("v=0\r\nc=IN IP4 127.0.0.1\r\nm=image 5000 udptl t38\r\n{lines}");
        Sdp::parse(body.as_bytes()).unwrap().media.remove(0)
    }

    #[test]
    fn answer_takes_the_lower_rate_and_their_datagram_limit() {
        let ours = T38Params::default();
        let offer = media(
            "a=T38FaxVersion:3\r\na=T38MaxBitRate:9600\r\na=T38FaxRateManagement:transferredTCF\r\na=T38FaxMaxDatagram:272\r\n",
        );
        let (session, answer) = answer_offer(&ours, &offer).unwrap();
        assert_eq!(session.max_bitrate, 9600);
        assert_eq!(session.max_datagram, 272);
        assert_eq!(session.version, 0);
        // Our answer declares our own receive limit (Annex D.2.3).
        let o = Origin {
            session_id: 1,
            version: 1,
            addr: "127.0.0.1".parse().unwrap(),
        };
        let back = Sdp::parse(&sdp::image(&o, 4000, &answer)).unwrap();
        assert_eq!(back.media[0].attr("T38FaxMaxDatagram"), Some("400"));
        assert_eq!(back.media[0].attr("T38MaxBitRate"), Some("9600"));
    }

    #[test]
    fn local_tcf_and_bad_values_are_refused() {
        let ours = T38Params::default();
        assert!(answer_offer(&ours, &media("a=T38FaxRateManagement:localTCF\r\n")).is_none());
        assert!(answer_offer(&ours, &media("a=T38MaxBitRate:fast\r\n")).is_none());
        assert!(accept_answer(&ours, &media("a=T38FaxUdpEC:t38UDPFEC\r\n")).is_some());
    }
}
