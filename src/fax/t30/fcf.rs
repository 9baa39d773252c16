//! The facsimile control field (FCF) table of T.30 §5.3.6.1, and [`Frame`]: one HDLC frame as
//! the engine and the Class 1 driver exchange it (address, control, FCF, FIF; no FCS).
//!
//! FCF values are written here as the octet arrives (first transmitted bit = least significant
//! bit), so T.30's "X100 0001" (DCS) is `0x82 | X`. The X bit (T.30 §5.3.6.1) is 1 in frames from
//! the station that received a valid DIS (normally the caller) and 0 from the one that sent it.

use super::hdlc::MAX_FRAME;
use thiserror::Error;

/// A T.30 facsimile control field, without the X bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fcf {
    /// Digital identification signal: the called station's capabilities (T.30 §5.3.6.1.1).
    Dis,
    /// Called subscriber identification.
    Csi,
    /// Non-standard facilities.
    Nsf,
    /// Digital transmit command: polling (T.30 §5.3.6.1.2).
    Dtc,
    /// Calling subscriber identification (polling).
    Cig,
    /// Non-standard facilities command (polling).
    Nsc,
    /// Password (polling: with DTC; sending: with DCS — T.30 §5.3.6.1.2/3).
    Pwd,
    /// Selective polling.
    Sep,
    /// Digital command signal: the caller's chosen mode (T.30 §5.3.6.1.3).
    Dcs,
    /// Transmitting subscriber identification.
    Tsi,
    /// Non-standard set-up.
    Nss,
    /// Sub-address.
    Sub,
    /// Sender identification.
    Sid,
    /// Confirmation to receive: training good.
    Cfr,
    /// Failure to train.
    Ftt,
    /// Multipage signal: another page, same mode (T.30 §5.3.6.1.4).
    Mps,
    /// End of message: another document follows after phase B again.
    Eom,
    /// End of procedure: last page.
    Eop,
    /// Partial page signal (Annex A.4.1): FIF = post-message FCF, page, block, frame count.
    Pps,
    /// End of retransmission (Annex A).
    Eor,
    /// Receive ready: is the receiver ready yet? (Annex A flow control).
    Rr,
    /// Message confirmation (T.30 §5.3.6.1.5).
    Mcf,
    /// Retrain positive: page fine, retrain before the next one.
    Rtp,
    /// Retrain negative: page not acceptable, retrain.
    Rtn,
    /// Procedure interrupt positive.
    Pip,
    /// Procedure interrupt negative.
    Pin,
    /// Partial page request: the frames missing from the block (Annex A.4.2).
    Ppr,
    /// Receive not ready (Annex A).
    Rnr,
    /// Response to EOR (Annex A).
    Err,
    /// Continue to correct: step the speed down after four PPRs (Annex A.4.1).
    Ctc,
    /// Response to continue to correct.
    Ctr,
    /// Disconnect (T.30 §5.3.6.1.7).
    Dcn,
    /// Command repeat: the last frame arrived damaged, please repeat (T.30 §5.3.6.1.7).
    Crp,
    /// Procedure interrupt MPS.
    PriMps,
    /// Procedure interrupt EOM.
    PriEom,
    /// Procedure interrupt EOP.
    PriEop,
    /// Facsimile coded data: one ECM frame of page data (Annex A.3.4).
    Fcd,
    /// Return to control for partial page: ends an ECM block (Annex A.3.4).
    Rcp,
}

/// (FCF, octet without X, whether the X bit applies), from the bit patterns of T.30 §5.3.6.1
/// read first bit first: MPS "X111 0010" is 0x4E | X, CTC "X100 1000" is 0x12 | X.
const TABLE: &[(Fcf, u8, bool)] = &[
    (Fcf::Dis, 0x80, false),
    (Fcf::Csi, 0x40, false),
    (Fcf::Nsf, 0x20, false),
    (Fcf::Dtc, 0x81, false),
    (Fcf::Cig, 0x41, false),
    (Fcf::Nsc, 0x21, false),
    (Fcf::Pwd, 0xC1, false),
    (Fcf::Sep, 0xA1, false),
    (Fcf::Dcs, 0x82, true),
    (Fcf::Tsi, 0x42, true),
    (Fcf::Nss, 0x22, true),
    (Fcf::Sub, 0xC2, true),
    (Fcf::Sid, 0xA2, true),
    (Fcf::Cfr, 0x84, true),
    (Fcf::Ftt, 0x44, true),
    (Fcf::Mps, 0x4E, true),
    (Fcf::Eom, 0x8E, true),
    (Fcf::Eop, 0x2E, true),
    (Fcf::Pps, 0xBE, true),
    (Fcf::Eor, 0xCE, true),
    (Fcf::Rr, 0x6E, true),
    (Fcf::Mcf, 0x8C, true),
    (Fcf::Rtp, 0xCC, true),
    (Fcf::Rtn, 0x4C, true),
    (Fcf::Pip, 0xAC, true),
    (Fcf::Pin, 0x2C, true),
    (Fcf::Ppr, 0xBC, true),
    (Fcf::Rnr, 0xEC, true),
    (Fcf::Err, 0x1C, true),
    (Fcf::Ctc, 0x12, true),
    (Fcf::Ctr, 0xC4, true),
    (Fcf::Dcn, 0xFA, true),
    (Fcf::Crp, 0x1A, true),
    (Fcf::PriMps, 0x5E, true),
    (Fcf::PriEom, 0x9E, true),
    (Fcf::PriEop, 0x3E, true),
    (Fcf::Fcd, 0x06, false),
    (Fcf::Rcp, 0x86, false),
];

impl Fcf {
    /// The octet to send, with the X bit when this FCF carries one.
    pub fn octet(self, x: bool) -> u8 {
        let (_, v, has_x) = TABLE
            .iter()
            .find(|(f, _, _)| *f == self)
            .copied()
            .unwrap_or((self, 0, false));
        if has_x && x { v | 1 } else { v }
    }

    /// Reads an FCF octet: exact match first (DIS/DTC, PWD/DCS differ only in the low bit),
    /// then with the X bit cleared. `None` for an octet T.30 does not define.
    pub fn from_octet(b: u8) -> Option<Fcf> {
        if let Some((f, _, _)) = TABLE.iter().find(|(_, v, _)| *v == b) {
            return Some(*f);
        }
        TABLE
            .iter()
            .find(|(_, v, has_x)| *has_x && *v == b & 0xFE)
            .map(|(f, _, _)| *f)
    }

    /// The name T.30 gives this signal.
    pub fn name(self) -> &'static str {
        match self {
            Fcf::Dis => "DIS",
            Fcf::Csi => "CSI",
            Fcf::Nsf => "NSF",
            Fcf::Dtc => "DTC",
            Fcf::Cig => "CIG",
            Fcf::Nsc => "NSC",
            Fcf::Pwd => "PWD",
            Fcf::Sep => "SEP",
            Fcf::Dcs => "DCS",
            Fcf::Tsi => "TSI",
            Fcf::Nss => "NSS",
            Fcf::Sub => "SUB",
            Fcf::Sid => "SID",
            Fcf::Cfr => "CFR",
            Fcf::Ftt => "FTT",
            Fcf::Mps => "MPS",
            Fcf::Eom => "EOM",
            Fcf::Eop => "EOP",
            Fcf::Pps => "PPS",
            Fcf::Eor => "EOR",
            Fcf::Rr => "RR",
            Fcf::Mcf => "MCF",
            Fcf::Rtp => "RTP",
            Fcf::Rtn => "RTN",
            Fcf::Pip => "PIP",
            Fcf::Pin => "PIN",
            Fcf::Ppr => "PPR",
            Fcf::Rnr => "RNR",
            Fcf::Err => "ERR",
            Fcf::Ctc => "CTC",
            Fcf::Ctr => "CTR",
            Fcf::Dcn => "DCN",
            Fcf::Crp => "CRP",
            Fcf::PriMps => "PRI-MPS",
            Fcf::PriEom => "PRI-EOM",
            Fcf::PriEop => "PRI-EOP",
            Fcf::Fcd => "FCD",
            Fcf::Rcp => "RCP",
        }
    }
}

/// Address field of every T.30 frame (T.30 §5.3.4: all ones).
pub const ADDRESS: u8 = 0xFF;
/// Control field of a frame followed by another in the same transmission (T.30 §5.3.5).
pub const CONTROL: u8 = 0x03;
/// Control field of the last frame of a transmission: the final bit set (T.30 §5.3.5).
pub const CONTROL_FINAL: u8 = 0x13;

/// Why bytes could not be read as a T.30 frame. The fault is the remote's (or the line's).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// Fewer than address, control and FCF.
    #[error("frame of {0} octets is too short (T.30 §5.3: address, control, FCF at least)")]
    TooShort(usize),
    /// More than [`MAX_FRAME`] octets.
    #[error("frame of {0} octets exceeds the limit of {MAX_FRAME}")]
    TooLong(usize),
    /// Address not `0xFF` or control not `0x03`/`0x13`.
    #[error("bad address/control {0:#04x} {1:#04x}")]
    BadHeader(u8, u8),
}

/// One HDLC frame without its FCS: address, control, FCF, FIF.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    bytes: Vec<u8>,
}

impl Frame {
    /// Builds a frame: `fcf` with the X bit given, `fif` as the information field.
    pub fn new(fcf: Fcf, x: bool, fif: &[u8], last: bool) -> Frame {
        let mut bytes = Vec::with_capacity(3 + fif.len());
        bytes.push(ADDRESS);
        bytes.push(if last { CONTROL_FINAL } else { CONTROL });
        bytes.push(fcf.octet(x));
        bytes.extend_from_slice(fif);
        Frame { bytes }
    }

    /// Reads a frame received from the line (FCS already checked and removed).
    pub fn parse(bytes: &[u8]) -> Result<Frame, FrameError> {
        if bytes.len() < 3 {
            return Err(FrameError::TooShort(bytes.len()));
        }
        if bytes.len() > MAX_FRAME {
            return Err(FrameError::TooLong(bytes.len()));
        }
        if bytes[0] != ADDRESS || (bytes[1] != CONTROL && bytes[1] != CONTROL_FINAL) {
            return Err(FrameError::BadHeader(bytes[0], bytes[1]));
        }
        Ok(Frame {
            bytes: bytes.to_vec(),
        })
    }

    /// The whole frame: address, control, FCF, FIF.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The FCF, `None` when the octet is not one T.30 defines.
    pub fn fcf(&self) -> Option<Fcf> {
        Fcf::from_octet(self.bytes[2])
    }

    /// The raw FCF octet.
    pub fn fcf_octet(&self) -> u8 {
        self.bytes[2]
    }

    /// The facsimile information field.
    pub fn fif(&self) -> &[u8] {
        &self.bytes[3..]
    }

    /// Whether the final bit is set: the sender turns the line around after this frame.
    pub fn is_final(&self) -> bool {
        self.bytes[1] == CONTROL_FINAL
    }

    /// The frame with its final bit set or cleared.
    pub fn with_final(mut self, last: bool) -> Frame {
        self.bytes[1] = if last { CONTROL_FINAL } else { CONTROL };
        self
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.fcf().map(Fcf::name).unwrap_or("?");
        write!(f, "{name}")?;
        for b in self.fif() {
            write!(f, " {b:02X}")?;
        }
        Ok(())
    }
}

/// Station identity as T.30 §5.3.6.2.4 carries it in CSI/TSI/CIG (and SUB/SID/PWD, §5.3.6.2.6):
/// 20 octets, the string written last character first, padded with spaces.
pub fn encode_id(id: &str) -> [u8; 20] {
    let mut out = [b' '; 20];
    let chars: Vec<u8> = id
        .bytes()
        .filter(|b| (0x20..0x7F).contains(b))
        .take(20)
        .collect();
    for (i, b) in chars.iter().rev().enumerate() {
        out[i] = *b;
    }
    out
}

/// Reads an identity field: reversed back, trimmed, non-printable octets dropped (the remote may
/// send anything; a report line must stay a line).
pub fn decode_id(fif: &[u8]) -> String {
    let s: String = fif
        .iter()
        .take(20)
        .rev()
        .filter(|b| (0x20..0x7F).contains(*b))
        .map(|&b| b as char)
        .collect();
    s.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_fcf_round_trips_with_and_without_x() {
        for (f, _, has_x) in TABLE {
            assert_eq!(Fcf::from_octet(f.octet(false)), Some(*f), "{}", f.name());
            if *has_x {
                assert_eq!(Fcf::from_octet(f.octet(true)), Some(*f), "{}", f.name());
            }
        }
        assert_eq!(Fcf::Dcs.octet(true), 0x83);
        // Spot checks against the bit strings of T.30 §5.3.6.1 (first transmitted bit first).
        let from_bits = |bits: &str| -> u8 {
            bits.chars()
                .filter(|c| *c == '0' || *c == '1')
                .enumerate()
                .map(|(i, c)| u8::from(c == '1') << i)
                .sum()
        };
        for (f, bits) in [
            (Fcf::Dis, "0000 0001"),
            (Fcf::Dtc, "1000 0001"),
            (Fcf::Pwd, "1000 0011"),
            (Fcf::Dcs, "0100 0001"),
            (Fcf::Cfr, "0010 0001"),
            (Fcf::Mps, "0111 0010"),
            (Fcf::Eom, "0111 0001"),
            (Fcf::Eop, "0111 0100"),
            (Fcf::Pps, "0111 1101"),
            (Fcf::Rr, "0111 0110"),
            (Fcf::Mcf, "0011 0001"),
            (Fcf::Rtn, "0011 0010"),
            (Fcf::Ppr, "0011 1101"),
            (Fcf::Ctc, "0100 1000"),
            (Fcf::Ctr, "0010 0011"),
            (Fcf::Dcn, "0101 1111"),
            (Fcf::Crp, "0101 1000"),
            (Fcf::Fcd, "0110 0000"),
            (Fcf::Rcp, "0110 0001"),
        ] {
            assert_eq!(f.octet(false), from_bits(bits), "{}", f.name());
        }
        assert_eq!(Fcf::Dis.octet(true), 0x80);
        assert_eq!(Fcf::from_octet(0xFF), None);
    }

    #[test]
    fn ids_are_reversed_on_the_wire() {
        let e = encode_id("+1 212 555");
        assert_eq!(&e[..3], b"555");
        assert_eq!(decode_id(&e), "+1 212 555");
        assert_eq!(decode_id(&[0x00, 0x41, 0x1B]), "A");
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(f) = Frame::parse(&bytes) {
                let _ = f.fcf();
                let _ = format!("{f:?}");
                prop_assert_eq!(f.bytes(), &bytes[..]);
            }
        }
    }
}
