//! IFP packets (ITU-T T.38 clause 7, ASN.1 of Annex A), encoded and decoded by hand in the
//! ASN.1 BASIC-ALIGNED PER variant T.38 §7 prescribes (ITU-T X.691).
//!
//! ```text
//! IFPPacket ::= SEQUENCE { type-of-msg Type-of-msg, data-field Data-Field OPTIONAL }
//! Type-of-msg ::= CHOICE { t30-indicator ENUMERATED {16 values, ...},
//!                          t30-data      ENUMERATED {9 values, ...} }
//! Data-Field ::= SEQUENCE OF SEQUENCE {
//!     field-type ENUMERATED {8 values, ...},          -- no "..." in version 0 (1998)
//!     field-data OCTET STRING (SIZE (1..65535)) OPTIONAL }
//! ```
//!
//! Bit layout this gives (X.691 §§18, 13, 22, 20, 17): the first octet is the data-field
//! presence bit, the CHOICE index (0 indicator, 1 data), the ENUMERATED extension bit and the
//! 4-bit root value, then padding; an extension value is a "normally small" number (a 0 bit and
//! 6 bits, X.691 §10.6) spilling into the second octet. The data field's element count is an
//! aligned length determinant (X.691 §10.9); each element is one presence bit and the field
//! type (3 bits in version 0, 1 + 3 bits or an extension from version 1 on), then, when data is
//! present, padding to the octet, a 16-bit `length - 1` and the octets.
//!
//! Version 0 differs from versions 1–3 only in the field type: the 1998 ASN.1 had no extension
//! marker there (the "typo" later versions fixed), so its field type is 3 bits, not 4.
//!
//! Two encoders in the field disagree on an element with no field-data that is not the last
//! (strict PER packs the next element into the same octet; spandsp starts it on the next
//! octet). Ours never emits such an element; the decoder tries strict PER and then the
//! octet-per-element reading.

/// Longest IFP packet the decoder accepts (ours). An IFP travels in one UDPTL datagram, whose
/// open-type length is capped at 16383 octets here (no PER fragmentation, see `udptl`).
pub const MAX_IFP: usize = 16383;

/// Most data-field elements accepted in one packet (ours: real terminals send one to three).
pub const MAX_FIELDS: usize = 256;

/// A T.30 indicator (T.38 clause 7, Annex A `t30-indicator`): a signal began.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Indicator {
    /// No signal: the line went quiet.
    NoSignal,
    /// CNG, the calling tone.
    Cng,
    /// CED, the called station's answer tone.
    Ced,
    /// V.21 flags preamble (before HDLC control frames).
    V21Preamble,
    /// V.27 ter 2400 training.
    V27_2400Training,
    /// V.27 ter 4800 training.
    V27_4800Training,
    /// V.29 7200 training.
    V29_7200Training,
    /// V.29 9600 training.
    V29_9600Training,
    /// V.17 7200 short training.
    V17_7200ShortTraining,
    /// V.17 7200 long training.
    V17_7200LongTraining,
    /// V.17 9600 short training.
    V17_9600ShortTraining,
    /// V.17 9600 long training.
    V17_9600LongTraining,
    /// V.17 12000 short training.
    V17_12000ShortTraining,
    /// V.17 12000 long training.
    V17_12000LongTraining,
    /// V.17 14400 short training.
    V17_14400ShortTraining,
    /// V.17 14400 long training.
    V17_14400LongTraining,
    /// An extension indicator (T.38 version 1 on: 0 v8-ansam, 1 v8-signal, 2 v34-cntl-channel-1200,
    /// 3 v34-pri-channel, 4 v34-CC-retrain, 5 v33-12000-training, 6 v33-14400-training; higher
    /// numbers are later additions): parsed, never sent.
    Extension(u8),
}

const ROOT_INDICATORS: [Indicator; 16] = [
    Indicator::NoSignal,
    Indicator::Cng,
    Indicator::Ced,
    Indicator::V21Preamble,
    Indicator::V27_2400Training,
    Indicator::V27_4800Training,
    Indicator::V29_7200Training,
    Indicator::V29_9600Training,
    Indicator::V17_7200ShortTraining,
    Indicator::V17_7200LongTraining,
    Indicator::V17_9600ShortTraining,
    Indicator::V17_9600LongTraining,
    Indicator::V17_12000ShortTraining,
    Indicator::V17_12000LongTraining,
    Indicator::V17_14400ShortTraining,
    Indicator::V17_14400LongTraining,
];

/// The modulation of an IFP data packet (Annex A `t30-data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    /// V.21 channel 2, 300 bit/s (HDLC control frames).
    V21,
    /// V.27 ter 2400.
    V27_2400,
    /// V.27 ter 4800.
    V27_4800,
    /// V.29 7200.
    V29_7200,
    /// V.29 9600.
    V29_9600,
    /// V.17 7200.
    V17_7200,
    /// V.17 9600.
    V17_9600,
    /// V.17 12000.
    V17_12000,
    /// V.17 14400.
    V17_14400,
    /// An extension data type (version 1 on: 0 v8, 1 v34-pri-rate, 2 v34-CC-1200, 3 v34-pri-ch,
    /// 4 v33-12000, 5 v33-14400; higher are later additions): parsed, never sent.
    Extension(u8),
}

const ROOT_DATA: [DataType; 9] = [
    DataType::V21,
    DataType::V27_2400,
    DataType::V27_4800,
    DataType::V29_7200,
    DataType::V29_9600,
    DataType::V17_7200,
    DataType::V17_9600,
    DataType::V17_12000,
    DataType::V17_14400,
];

/// What one data-field element carries (T.38 clause 7, Annex A `field-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// HDLC frame octets (flags and inserted zeros removed, FCS not included).
    HdlcData,
    /// The HDLC carrier ended (no frame being closed).
    HdlcSigEnd,
    /// The frame sent so far is complete and its FCS was good.
    HdlcFcsOk,
    /// The frame sent so far is complete and its FCS was bad.
    HdlcFcsBad,
    /// FCS good and the carrier ended.
    HdlcFcsOkSigEnd,
    /// FCS bad and the carrier ended.
    HdlcFcsBadSigEnd,
    /// Non-ECM T.4 image data (or TCF), bit order as on the line.
    T4NonEcmData,
    /// Non-ECM data ended (the carrier dropped).
    T4NonEcmSigEnd,
    /// Extension field types (version 1 on: 0 cm-message, 1 jm-message, 2 ci-message,
    /// 3 v34rate; higher are later additions): parsed, never sent.
    Extension(u8),
}

const ROOT_FIELDS: [FieldType; 8] = [
    FieldType::HdlcData,
    FieldType::HdlcSigEnd,
    FieldType::HdlcFcsOk,
    FieldType::HdlcFcsBad,
    FieldType::HdlcFcsOkSigEnd,
    FieldType::HdlcFcsBadSigEnd,
    FieldType::T4NonEcmData,
    FieldType::T4NonEcmSigEnd,
];

/// One data-field element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// What it is.
    pub kind: FieldType,
    /// Its octets (empty: the optional field-data is absent).
    pub data: Vec<u8>,
}

impl Field {
    /// An element with data.
    pub fn new(kind: FieldType, data: &[u8]) -> Field {
        Field {
            kind,
            data: data.to_vec(),
        }
    }

    /// An element without data (FCS-OK, sig-end…).
    pub fn bare(kind: FieldType) -> Field {
        Field {
            kind,
            data: Vec::new(),
        }
    }
}

/// One IFP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ifp {
    /// A T.30 indicator (no data field).
    Indicator(Indicator),
    /// Data at a modulation, with zero or more elements (no elements: the data-field is absent).
    Data(DataType, Vec<Field>),
}

/// Why an IFP packet could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IfpError {
    /// The packet ended before the encoding said it would.
    #[error("IFP packet truncated")]
    Truncated,
    /// Octets were left over after the packet.
    #[error("{0} octets after the IFP packet")]
    Trailing(usize),
    /// Larger than [`MAX_IFP`], or more than [`MAX_FIELDS`] elements.
    #[error("IFP packet over the limit")]
    TooLarge,
    /// An indicator with a data field, a root enumeration value out of range, a PER
    /// fragmented length, or field-data of zero octets.
    #[error("malformed IFP packet: {0}")]
    Malformed(&'static str),
    /// Encoding: the value does not exist in this T.38 version.
    #[error("not encodable in T.38 version {0}")]
    NotInVersion(u8),
}

/// Bit writer for aligned PER: bits MSB first, `align` pads with zeros to the octet.
struct Bits {
    out: Vec<u8>,
    used: u8,
}

impl Bits {
    fn new() -> Bits {
        Bits {
            out: Vec::new(),
            used: 8,
        }
    }

    fn put(&mut self, value: u32, n: u8) {
        for i in (0..n).rev() {
            if self.used == 8 {
                self.out.push(0);
                self.used = 0;
            }
            if value >> i & 1 != 0 {
                let last = self.out.len() - 1;
                self.out[last] |= 0x80 >> self.used;
            }
            self.used += 1;
        }
    }

    fn align(&mut self) {
        self.used = 8;
    }

    fn octets(&mut self, b: &[u8]) {
        self.align();
        self.out.extend_from_slice(b);
    }
}

/// Bit reader for aligned PER; every read is bounds-checked.
struct Reader<'a> {
    buf: &'a [u8],
    bit: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, bit: 0 }
    }

    fn get(&mut self, n: u8) -> Result<u32, IfpError> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.buf.get(self.bit / 8).ok_or(IfpError::Truncated)?;
            v = v << 1 | u32::from(byte >> (7 - self.bit % 8) & 1);
            self.bit += 1;
        }
        Ok(v)
    }

    fn align(&mut self) {
        self.bit = self.bit.div_ceil(8) * 8;
    }

    fn octets(&mut self, n: usize) -> Result<&'a [u8], IfpError> {
        self.align();
        let start = self.bit / 8;
        let end = start.checked_add(n).ok_or(IfpError::Truncated)?;
        let s = self.buf.get(start..end).ok_or(IfpError::Truncated)?;
        self.bit = end * 8;
        Ok(s)
    }

    /// Octets left after the current position, rounded up to whole octets.
    fn rest_octets(&self) -> usize {
        self.buf.len().saturating_sub(self.bit.div_ceil(8))
    }

    /// The octets used, once the padding bits up to the octet are checked to be zero
    /// (X.691 §10.1.3): a non-zero pad is a sign the packet was read the wrong way.
    fn finish(&mut self) -> Result<usize, IfpError> {
        let end = self.bit.div_ceil(8);
        let pad = (end * 8 - self.bit) as u8;
        if pad > 0 && self.get(pad)? != 0 {
            return Err(IfpError::Malformed("non-zero padding"));
        }
        Ok(end)
    }

    /// Bits left.
    fn rest_bits(&self) -> usize {
        (self.buf.len() * 8).saturating_sub(self.bit)
    }
}

/// An extensible ENUMERATED value (X.691 §13.3): root index, or an extension as a normally
/// small number (§10.6; values ≥ 64 use a length form no T.38 value needs: rejected).
fn put_enum(w: &mut Bits, root_bits: u8, value: Result<u8, u8>) {
    match value {
        Ok(root) => {
            w.put(0, 1);
            w.put(u32::from(root), root_bits);
        }
        Err(ext) => {
            w.put(1, 1);
            w.put(0, 1);
            w.put(u32::from(ext & 0x3F), 6);
        }
    }
}

fn get_enum(r: &mut Reader<'_>, root_bits: u8, roots: usize) -> Result<Result<u8, u8>, IfpError> {
    if r.get(1)? == 0 {
        let v = r.get(root_bits)? as usize;
        if v >= roots {
            return Err(IfpError::Malformed("enumeration value out of range"));
        }
        return Ok(Ok(v as u8));
    }
    if r.get(1)? != 0 {
        return Err(IfpError::Malformed("large extension number"));
    }
    Ok(Err(r.get(6)? as u8))
}

/// An aligned, unconstrained length determinant (X.691 §10.9.3.6–7) for values below 16384;
/// PER fragmentation is not used by any T.38 packet that fits a datagram.
pub(crate) fn put_length(out: &mut Vec<u8>, n: usize) {
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let n = n.min(0x3FFF);
        out.push(0x80 | (n >> 8) as u8);
        out.push(n as u8);
    }
}

/// Reads a length determinant at `buf[*pos]`; fragmented forms (`11xxxxxx`) are refused.
pub(crate) fn get_length(buf: &[u8], pos: &mut usize) -> Result<usize, IfpError> {
    let b0 = *buf.get(*pos).ok_or(IfpError::Truncated)?;
    match b0 >> 6 {
        0 | 1 => {
            *pos += 1;
            Ok(usize::from(b0))
        }
        2 => {
            let b1 = *buf.get(*pos + 1).ok_or(IfpError::Truncated)?;
            *pos += 2;
            Ok(usize::from(b0 & 0x3F) << 8 | usize::from(b1))
        }
        _ => Err(IfpError::Malformed("fragmented length")),
    }
}

impl Indicator {
    fn index(self) -> Result<u8, u8> {
        match self {
            Indicator::Extension(e) => Err(e),
            i => Ok(ROOT_INDICATORS.iter().position(|x| *x == i).unwrap_or(0) as u8),
        }
    }
}

impl DataType {
    fn index(self) -> Result<u8, u8> {
        match self {
            DataType::Extension(e) => Err(e),
            d => Ok(ROOT_DATA.iter().position(|x| *x == d).unwrap_or(0) as u8),
        }
    }
}

impl FieldType {
    fn index(self) -> Result<u8, u8> {
        match self {
            FieldType::Extension(e) => Err(e),
            f => Ok(ROOT_FIELDS.iter().position(|x| *x == f).unwrap_or(0) as u8),
        }
    }
}

impl Ifp {
    /// Encodes for T.38 `version` (0–3). Elements without data other than the last are
    /// refused as [`IfpError::Malformed`] (the two readings in the field disagree on them, see
    /// the module docs), as are more than [`MAX_FIELDS`] elements or data over 65535 octets.
    pub fn encode(&self, version: u8) -> Result<Vec<u8>, IfpError> {
        let mut w = Bits::new();
        match self {
            Ifp::Indicator(i) => {
                w.put(0, 1); // data-field absent
                w.put(0, 1); // CHOICE: t30-indicator
                put_enum(&mut w, 4, i.index());
            }
            Ifp::Data(d, fields) => {
                if fields.len() > MAX_FIELDS {
                    return Err(IfpError::TooLarge);
                }
                w.put(u32::from(!fields.is_empty()), 1);
                w.put(1, 1); // CHOICE: t30-data
                put_enum(&mut w, 4, d.index());
                if !fields.is_empty() {
                    w.align();
                    put_length(&mut w.out, fields.len());
                    for (n, f) in fields.iter().enumerate() {
                        if f.data.is_empty() && n + 1 != fields.len() {
                            return Err(IfpError::Malformed("element without data before another"));
                        }
                        if f.data.len() > 65535 {
                            return Err(IfpError::TooLarge);
                        }
                        w.put(u32::from(!f.data.is_empty()), 1);
                        if version == 0 {
                            match f.kind.index() {
                                Ok(i) => w.put(u32::from(i), 3),
                                Err(_) => return Err(IfpError::NotInVersion(0)),
                            }
                        } else {
                            put_enum(&mut w, 3, f.kind.index());
                        }
                        if !f.data.is_empty() {
                            w.align();
                            let n = (f.data.len() - 1) as u16;
                            w.out.extend_from_slice(&n.to_be_bytes());
                            w.octets(&f.data);
                        }
                    }
                }
            }
        }
        if w.out.len() > MAX_IFP {
            return Err(IfpError::TooLarge);
        }
        Ok(w.out)
    }

    /// Decodes one IFP packet of T.38 `version` that fills `buf` exactly (trailing padding
    /// bits within the last octet allowed). Never panics; every length is checked against the
    /// octets present.
    pub fn decode(buf: &[u8], version: u8) -> Result<Ifp, IfpError> {
        let (ifp, used) = Ifp::decode_prefix(buf, version)?;
        match buf.len() - used {
            0 => Ok(ifp),
            n => Err(IfpError::Trailing(n)),
        }
    }

    /// [`Ifp::decode`] for a packet rebuilt from UDPTL FEC, which is followed by zero octets
    /// up to the longest packet of its group (T.38 §9.1 FEC is an XOR over padded packets).
    pub fn decode_padded(buf: &[u8], version: u8) -> Result<Ifp, IfpError> {
        let (ifp, used) = Ifp::decode_prefix(buf, version)?;
        if buf[used..].iter().all(|b| *b == 0) {
            Ok(ifp)
        } else {
            Err(IfpError::Trailing(buf.len() - used))
        }
    }

    /// Decodes a packet at the start of `buf`: the packet and the octets it used.
    pub fn decode_prefix(buf: &[u8], version: u8) -> Result<(Ifp, usize), IfpError> {
        if buf.len() > MAX_IFP {
            return Err(IfpError::TooLarge);
        }
        match decode_with(buf, version, false) {
            Ok(x) => Ok(x),
            // The octet-per-element reading (see the module docs) only differs after an
            // element without data; try it before giving up.
            Err(e) => decode_with(buf, version, true).map_err(|_| e),
        }
    }

    /// The HDLC/non-ECM elements of a data packet (empty for an indicator).
    pub fn fields(&self) -> &[Field] {
        match self {
            Ifp::Indicator(_) => &[],
            Ifp::Data(_, f) => f,
        }
    }
}

fn decode_with(buf: &[u8], version: u8, octet_elements: bool) -> Result<(Ifp, usize), IfpError> {
    let mut r = Reader::new(buf);
    let data_present = r.get(1)? == 1;
    let is_data = r.get(1)? == 1;
    if !is_data {
        if data_present {
            return Err(IfpError::Malformed("indicator with a data field"));
        }
        let i = match get_enum(&mut r, 4, ROOT_INDICATORS.len())? {
            Ok(i) => ROOT_INDICATORS[usize::from(i)],
            Err(e) => Indicator::Extension(e),
        };
        return Ok((Ifp::Indicator(i), r.finish()?));
    }
    let d = match get_enum(&mut r, 4, ROOT_DATA.len())? {
        Ok(i) => ROOT_DATA[usize::from(i)],
        Err(e) => DataType::Extension(e),
    };
    let mut fields = Vec::new();
    if data_present {
        r.align();
        let mut pos = r.bit / 8;
        let count = get_length(buf, &mut pos)?;
        r.bit = pos * 8;
        if count > MAX_FIELDS {
            return Err(IfpError::TooLarge);
        }
        // Each element takes at least four bits: a count the rest cannot hold is a lie.
        if count * 4 > r.rest_bits() {
            return Err(IfpError::Truncated);
        }
        for _ in 0..count {
            if octet_elements {
                r.align();
            }
            let has_data = r.get(1)? == 1;
            let kind = if version == 0 {
                ROOT_FIELDS[r.get(3)? as usize]
            } else {
                match get_enum(&mut r, 3, ROOT_FIELDS.len())? {
                    Ok(i) => ROOT_FIELDS[usize::from(i)],
                    Err(e) => FieldType::Extension(e),
                }
            };
            let data = if has_data {
                let len = r.octets(2)?;
                let n = usize::from(u16::from_be_bytes([len[0], len[1]])) + 1;
                if n > r.rest_octets() {
                    return Err(IfpError::Truncated);
                }
                r.octets(n)?.to_vec()
            } else {
                Vec::new()
            };
            fields.push(Field { kind, data });
        }
    }
    Ok((Ifp::Data(d, fields), r.finish()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn indicators_by_hand() {
        // X.691: presence 0, CHOICE 0, ext 0, 4-bit value, 1 padding bit.
        assert_eq!(
            Ifp::Indicator(Indicator::NoSignal).encode(0),
            Ok(vec![0x00])
        );
        assert_eq!(Ifp::Indicator(Indicator::Cng).encode(0), Ok(vec![0x02]));
        assert_eq!(
            Ifp::Indicator(Indicator::V21Preamble).encode(2),
            Ok(vec![0x06])
        );
        assert_eq!(
            Ifp::Indicator(Indicator::V17_14400LongTraining).encode(0),
            Ok(vec![0x1E])
        );
        // Extension 5 (v33-12000-training): ext 1, small 0, 000101 → 0010 0001 01xx xxxx.
        assert_eq!(
            Ifp::decode(&[0x21, 0x40], 1),
            Ok(Ifp::Indicator(Indicator::Extension(5)))
        );
        assert_eq!(
            Ifp::Indicator(Indicator::Extension(5)).encode(1),
            Ok(vec![0x21, 0x40])
        );
    }

    #[test]
    fn hdlc_data_by_hand_in_both_versions() {
        let p = Ifp::Data(
            DataType::V21,
            vec![
                Field::new(FieldType::HdlcData, &[0xFF, 0x13, 0x80]),
                Field::bare(FieldType::HdlcFcsOkSigEnd),
            ],
        );
        // Version 1+: 1 1 0 0000 pad | count 2 | 1 0 000 pad | 00 02 | FF 13 80 | 0 0 100 pad
        let v1 = vec![0xC0, 0x02, 0x80, 0x00, 0x02, 0xFF, 0x13, 0x80, 0x20];
        assert_eq!(p.encode(1), Ok(v1.clone()));
        assert_eq!(Ifp::decode(&v1, 3), Ok(p.clone()));
        // Version 0: the field type is 3 bits (no extension bit): 0 100 pad = 0x40.
        let v0 = vec![0xC0, 0x02, 0x80, 0x00, 0x02, 0xFF, 0x13, 0x80, 0x40];
        assert_eq!(p.encode(0), Ok(v0.clone()));
        assert_eq!(Ifp::decode(&v0, 0), Ok(p));
    }

    #[test]
    fn packed_and_octet_elements_without_data_both_decode() {
        // Version 0, two bare elements packed in one octet (strict PER): fcs-OK, sig-end.
        let packed = [0xC0, 0x02, 0x21];
        let want = Ifp::Data(
            DataType::V21,
            vec![
                Field::bare(FieldType::HdlcFcsOk),
                Field::bare(FieldType::HdlcSigEnd),
            ],
        );
        assert_eq!(Ifp::decode(&packed, 0), Ok(want.clone()));
        // Version 2, one octet per element (spandsp's reading): 0 0 010 pad, 0 0 001 pad.
        let octets = [0xC0, 0x02, 0x10, 0x08];
        assert_eq!(Ifp::decode(&octets, 2), Ok(want));
    }

    #[test]
    fn rejects_what_it_must() {
        assert_eq!(Ifp::decode(&[], 0), Err(IfpError::Truncated));
        // Indicator value 16 does not exist in the root.
        assert!(Ifp::decode(&[0x10], 0).is_ok()); // value 8: fine
        assert_eq!(
            Ifp::decode(&[0x80], 0),
            Err(IfpError::Malformed("indicator with a data field"))
        );
        // Data type 9..15 not in the root.
        assert!(matches!(
            Ifp::decode(&[0x52], 0),
            Err(IfpError::Malformed(_))
        ));
        // A length pointing past the end.
        assert_eq!(
            Ifp::decode(&[0xC0, 0x01, 0x80, 0x00, 0x09, 0x01], 1),
            Err(IfpError::Truncated)
        );
        // Version 0 cannot carry extension field types.
        let p = Ifp::Data(DataType::V21, vec![Field::bare(FieldType::Extension(1))]);
        assert_eq!(p.encode(0), Err(IfpError::NotInVersion(0)));
        assert!(p.encode(1).is_ok());
        assert_eq!(Ifp::decode(&[0x06, 0x00], 0), Err(IfpError::Trailing(1)));
        assert_eq!(
            Ifp::decode_padded(&[0x06, 0x00, 0x00], 0),
            Ok(Ifp::Indicator(Indicator::V21Preamble))
        );
    }

    fn field_type() -> impl Strategy<Value = FieldType> {
        (0u8..12).prop_map(|i| match ROOT_FIELDS.get(usize::from(i)) {
            Some(f) => *f,
            None => FieldType::Extension(i - 8),
        })
    }

    proptest! {
        #[test]
        fn round_trip(version in 0u8..4, dt in 0usize..9,
                      fields in proptest::collection::vec((field_type(), proptest::collection::vec(any::<u8>(), 1..300)), 0..5),
                      tail in proptest::option::of(field_type())) {
            let mut fields: Vec<Field> = fields.into_iter().map(|(k, d)| Field { kind: k, data: d }).collect();
            if let Some(t) = tail { fields.push(Field::bare(t)); }
            if version == 0 {
                fields.retain(|f| !matches!(f.kind, FieldType::Extension(_)));
            }
            let p = Ifp::Data(ROOT_DATA[dt], fields);
            let enc = p.encode(version).unwrap();
            prop_assert_eq!(Ifp::decode(&enc, version), Ok(p));
        }

        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600), version in 0u8..4) {
            if let Ok(Ifp::Data(_, f)) = Ifp::decode(&bytes, version) {
                prop_assert!(f.len() <= MAX_FIELDS);
            }
        }
    }
}
