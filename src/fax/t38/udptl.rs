//! UDPTL, the UDP transport of IFP packets (ITU-T T.38 clause 9.1 and the `UDPTLPacket` ASN.1
//! of Annex A), in aligned PER like the IFP inside it:
//!
//! ```text
//! UDPTLPacket ::= SEQUENCE {
//!     seq-number          INTEGER (0..65535),                 -- 2 octets
//!     primary-ifp-packet  TYPE-IDENTIFIER.&Type(IFPPacket),   -- open type: length + octets
//!     error-recovery      CHOICE {                            -- 1 bit, padded to the octet
//!         secondary-ifp-packets SEQUENCE OF TYPE-IDENTIFIER.&Type(IFPPacket),
//!         fec-info SEQUENCE { fec-npackets INTEGER, fec-data SEQUENCE OF OCTET STRING } } }
//! ```
//!
//! Redundancy (T.38 §9.1, Annex A): each datagram repeats the previous IFP packets, most
//! recent first, so a lost datagram is rebuilt from any of the next few. FEC: each `fec-data`
//! entry `m` of the datagram with sequence number `s` is the XOR (over packets padded with zeros
//! to the longest) of the `fec-npackets` packets `s + m - n·E + k·E` (k = 0..n, E entries), the
//! layout the implementations in the field share; one missing packet of a group is rebuilt.
//!
//! [`Sender`] numbers and frames outgoing packets with redundancy; [`Receiver`] is the pure
//! receive side: datagrams in any order, duplicated or missing, in; IFP packets out in sequence,
//! each exactly once, with [`Delivery::Lost`] where one could not be recovered. All memory is
//! bounded by the window.

use super::ifp::{get_length, put_length};
use std::collections::{BTreeMap, VecDeque};

/// Most secondary IFP packets accepted in one datagram (ours: peers send 0–8).
pub const MAX_SECONDARIES: usize = 64;

/// Most FEC entries accepted in one datagram (ours: peers send up to 3 or 4).
pub const MAX_FEC_ENTRIES: usize = 16;

/// How many packets before the next expected one the receiver keeps to rebuild lost ones from
/// FEC (ours). A FEC group reaching further back (`fec-npackets` × entries) is ignored.
pub const HISTORY: u64 = 64;

/// Longest open type (IFP packet or FEC entry) read: PER lengths without fragmentation.
pub const MAX_OPEN_TYPE: usize = 16383;

/// Why a datagram was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UdptlError {
    /// The datagram ended early.
    #[error("UDPTL datagram truncated")]
    Truncated,
    /// Octets after the packet.
    #[error("{0} octets after the UDPTL packet")]
    Trailing(usize),
    /// A fragmented length, a negative or huge `fec-npackets`, more than [`MAX_SECONDARIES`]
    /// secondaries or [`MAX_FEC_ENTRIES`] FEC entries.
    #[error("malformed UDPTL packet: {0}")]
    Malformed(&'static str),
}

/// The error-recovery part of a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// Earlier IFP packets, most recent (sequence number − 1) first.
    Secondary(Vec<Vec<u8>>),
    /// Forward error correction.
    Fec {
        /// `fec-npackets`: how many packets each entry covers.
        span: u32,
        /// `fec-data`: the XOR of each interleaved group.
        entries: Vec<Vec<u8>>,
    },
}

/// One UDPTL datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// `seq-number`.
    pub seq: u16,
    /// The encoded primary IFP packet.
    pub primary: Vec<u8>,
    /// Redundancy or FEC.
    pub recovery: Recovery,
}

fn put_open(out: &mut Vec<u8>, b: &[u8]) {
    let b = &b[..b.len().min(MAX_OPEN_TYPE)];
    put_length(out, b.len());
    out.extend_from_slice(b);
}

fn get_open<'a>(buf: &'a [u8], pos: &mut usize) -> Result<&'a [u8], UdptlError> {
    let n = get_length(buf, pos).map_err(map_len)?;
    let end = pos.checked_add(n).ok_or(UdptlError::Truncated)?;
    let s = buf.get(*pos..end).ok_or(UdptlError::Truncated)?;
    *pos = end;
    Ok(s)
}

fn map_len(e: super::ifp::IfpError) -> UdptlError {
    match e {
        super::ifp::IfpError::Truncated => UdptlError::Truncated,
        _ => UdptlError::Malformed("fragmented length"),
    }
}

impl Datagram {
    /// The datagram's octets. Open types longer than [`MAX_OPEN_TYPE`] are cut (none of ours is).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.primary.len());
        out.extend_from_slice(&self.seq.to_be_bytes());
        put_open(&mut out, &self.primary);
        match &self.recovery {
            Recovery::Secondary(v) => {
                out.push(0x00);
                put_length(&mut out, v.len());
                for p in v {
                    put_open(&mut out, p);
                }
            }
            Recovery::Fec { span, entries } => {
                out.push(0x80);
                // Unconstrained INTEGER (X.691 §12.2.6): length, then minimal octets.
                let octets = span.to_be_bytes();
                let skip = octets.iter().take(3).take_while(|b| **b == 0).count();
                // A leading octet with the top bit set needs a zero before it (two's complement).
                let body: Vec<u8> = if octets[skip] & 0x80 != 0 {
                    std::iter::once(0)
                        .chain(octets[skip..].iter().copied())
                        .collect()
                } else {
                    octets[skip..].to_vec()
                };
                out.push(body.len() as u8);
                out.extend_from_slice(&body);
                put_length(&mut out, entries.len());
                for e in entries {
                    put_open(&mut out, e);
                }
            }
        }
        out
    }

    /// Parses a datagram. Never panics; counts and lengths are checked against what is left.
    pub fn decode(buf: &[u8]) -> Result<Datagram, UdptlError> {
        let seq = u16::from_be_bytes([
            *buf.first().ok_or(UdptlError::Truncated)?,
            *buf.get(1).ok_or(UdptlError::Truncated)?,
        ]);
        let mut pos = 2;
        let primary = get_open(buf, &mut pos)?.to_vec();
        let choice = *buf.get(pos).ok_or(UdptlError::Truncated)?;
        pos += 1;
        let recovery = if choice & 0x80 == 0 {
            let n = get_length(buf, &mut pos).map_err(map_len)?;
            if n > MAX_SECONDARIES {
                return Err(UdptlError::Malformed("too many secondary packets"));
            }
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(get_open(buf, &mut pos)?.to_vec());
            }
            Recovery::Secondary(v)
        } else {
            let n = usize::from(*buf.get(pos).ok_or(UdptlError::Truncated)?);
            pos += 1;
            if n == 0 || n > 4 {
                return Err(UdptlError::Malformed("fec-npackets length"));
            }
            let octets = buf.get(pos..pos + n).ok_or(UdptlError::Truncated)?;
            pos += n;
            if octets[0] & 0x80 != 0 {
                return Err(UdptlError::Malformed("negative fec-npackets"));
            }
            let span = octets.iter().fold(0u32, |a, b| a << 8 | u32::from(*b));
            let count = get_length(buf, &mut pos).map_err(map_len)?;
            if count > MAX_FEC_ENTRIES {
                return Err(UdptlError::Malformed("too many FEC entries"));
            }
            let mut entries = Vec::with_capacity(count);
            for _ in 0..count {
                entries.push(get_open(buf, &mut pos)?.to_vec());
            }
            Recovery::Fec { span, entries }
        };
        if pos != buf.len() {
            return Err(UdptlError::Trailing(buf.len() - pos));
        }
        Ok(Datagram {
            seq,
            primary,
            recovery,
        })
    }
}

/// The sending side: numbers IFP packets from 0 and adds up to `depth` earlier packets to each
/// datagram, as many as fit in the far end's `T38FaxMaxDatagram`.
#[derive(Debug, Clone)]
pub struct Sender {
    seq: u16,
    depth: usize,
    max_datagram: usize,
    history: VecDeque<Vec<u8>>,
}

impl Sender {
    /// A sender repeating `depth` earlier packets, keeping datagrams within `max_datagram`
    /// octets (the primary always goes, even if it alone is larger).
    pub fn new(depth: usize, max_datagram: usize) -> Sender {
        Sender {
            seq: 0,
            depth: depth.min(MAX_SECONDARIES),
            max_datagram,
            history: VecDeque::new(),
        }
    }

    /// The sequence number the next packet gets.
    pub fn next_seq(&self) -> u16 {
        self.seq
    }

    /// Frames the encoded IFP packet `ifp` into the next datagram.
    pub fn send(&mut self, ifp: &[u8]) -> Vec<u8> {
        let mut secondaries: Vec<Vec<u8>> = self.history.iter().cloned().collect();
        let mut d = loop {
            let d = Datagram {
                seq: self.seq,
                primary: ifp.to_vec(),
                recovery: Recovery::Secondary(secondaries.clone()),
            }
            .encode();
            if d.len() <= self.max_datagram || secondaries.is_empty() {
                break d;
            }
            secondaries.pop();
        };
        d.shrink_to_fit();
        self.seq = self.seq.wrapping_add(1);
        if self.depth > 0 {
            self.history.push_front(ifp.to_vec());
            self.history.truncate(self.depth);
        }
        d
    }
}

/// What the receiver hands on, in sequence order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The IFP packet with this sequence number.
    Packet {
        /// Its sequence number.
        seq: u16,
        /// The encoded IFP packet.
        ifp: Vec<u8>,
        /// Rebuilt from FEC: zero octets may follow the packet ([`super::ifp::Ifp::decode_padded`]).
        padded: bool,
    },
    /// Packets that never came and could not be rebuilt.
    Lost {
        /// The first missing sequence number.
        first: u16,
        /// How many.
        count: u64,
    },
}

struct Fec {
    at: u64,
    span: u64,
    entries: Vec<Vec<u8>>,
}

/// The receive side: reorders, drops duplicates, recovers from redundancy and FEC, and hands
/// packets on in order exactly once. Pure: the caller decides when to give up on a gap
/// ([`Receiver::skip_gap`]); a packet more than `window` ahead of the next one expected skips
/// the gap by itself.
pub struct Receiver {
    window: u64,
    /// The extended sequence number expected next (`None` before the first datagram).
    next: Option<u64>,
    /// Packets not yet delivered (≥ next) and recent delivered ones kept for FEC (< next).
    known: BTreeMap<u64, (Vec<u8>, bool)>,
    fec: VecDeque<Fec>,
}

/// Extended sequence numbers start here, so that "before the first packet" never underflows.
const EXT_BASE: u64 = 1 << 32;

impl Receiver {
    /// A receiver holding at most `window` packets ahead of a gap (at least 1).
    pub fn new(window: u16) -> Receiver {
        Receiver {
            window: u64::from(window.max(1)),
            next: None,
            known: BTreeMap::new(),
            fec: VecDeque::new(),
        }
    }

    /// The sequence number expected next, once a datagram has come.
    pub fn next_seq(&self) -> Option<u16> {
        self.next.map(|n| n as u16)
    }

    /// Packets held (waiting behind a gap, or kept for FEC): at most `window` + [`HISTORY`].
    pub fn held(&self) -> usize {
        self.known.len()
    }

    /// Whether packets wait behind a missing one.
    pub fn has_gap(&self) -> bool {
        self.next
            .is_some_and(|n| self.known.range(n..).next().is_some())
    }

    fn ext(&self, seq: u16) -> u64 {
        let next = self.next.unwrap_or(EXT_BASE);
        let diff = i64::from(seq.wrapping_sub(next as u16) as i16);
        next.saturating_add_signed(diff)
    }

    /// Feeds one datagram; whatever became deliverable is appended to `out`. A datagram that
    /// does not parse changes nothing and returns the error (the caller ignores it).
    pub fn push(&mut self, datagram: &[u8], out: &mut Vec<Delivery>) -> Result<(), UdptlError> {
        let d = Datagram::decode(datagram)?;
        if self.next.is_none() {
            // The first datagram heard: its secondaries are real earlier packets (a sender
            // only repeats packets it sent), so start at the oldest of them.
            let back = match &d.recovery {
                Recovery::Secondary(v) => v.len() as u64,
                Recovery::Fec { .. } => 0,
            };
            self.next = Some(EXT_BASE + u64::from(d.seq) - back.min(u64::from(d.seq)));
        }
        let at = self.ext(d.seq);
        self.insert(at, d.primary, false, out);
        match d.recovery {
            Recovery::Secondary(v) => {
                for (i, p) in v.into_iter().enumerate() {
                    let e = at.saturating_sub(1 + i as u64);
                    self.insert(e, p, false, out);
                }
            }
            Recovery::Fec { span, entries } => {
                let span = u64::from(span);
                // A group reaching back further than we keep can never be used.
                if span > 0 && !entries.is_empty() && span * entries.len() as u64 <= HISTORY {
                    self.fec.push_back(Fec { at, span, entries });
                    if self.fec.len() > HISTORY as usize {
                        self.fec.pop_front();
                    }
                }
                self.repair();
            }
        }
        self.release(out);
        self.prune();
        Ok(())
    }

    /// Gives up on the first gap: reports it lost and delivers what follows it.
    pub fn skip_gap(&mut self, out: &mut Vec<Delivery>) {
        let Some(next) = self.next else { return };
        let Some(first) = self.known.range(next..).next().map(|(k, _)| *k) else {
            return;
        };
        self.advance_to(first, out);
        self.release(out);
        self.prune();
    }

    fn insert(&mut self, e: u64, p: Vec<u8>, padded: bool, out: &mut Vec<Delivery>) {
        let Some(next) = self.next else { return };
        if e + HISTORY < next {
            return;
        }
        if e >= next + self.window {
            // Too far ahead: what cannot fit in the window is given up.
            self.advance_to(e + 1 - self.window, out);
        }
        self.known.entry(e).or_insert((p, padded));
    }

    /// Delivers or declares lost everything before `target`.
    fn advance_to(&mut self, target: u64, out: &mut Vec<Delivery>) {
        let Some(mut next) = self.next else { return };
        while next < target {
            let k = self
                .known
                .range(next..target)
                .next()
                .map(|(k, _)| *k)
                .unwrap_or(target);
            if k > next {
                out.push(Delivery::Lost {
                    first: next as u16,
                    count: k - next,
                });
                next = k;
            } else {
                if let Some((p, padded)) = self.known.get(&k) {
                    out.push(Delivery::Packet {
                        seq: k as u16,
                        ifp: p.clone(),
                        padded: *padded,
                    });
                }
                next = k + 1;
            }
        }
        self.next = Some(next);
    }

    fn release(&mut self, out: &mut Vec<Delivery>) {
        let Some(mut next) = self.next else { return };
        while let Some((p, padded)) = self.known.get(&next) {
            out.push(Delivery::Packet {
                seq: next as u16,
                ifp: p.clone(),
                padded: *padded,
            });
            next += 1;
        }
        self.next = Some(next);
    }

    fn prune(&mut self) {
        let Some(next) = self.next else { return };
        let keep = next.saturating_sub(HISTORY);
        self.known = self.known.split_off(&keep);
        while self
            .fec
            .front()
            .is_some_and(|f| f.at + (f.entries.len() as u64) < keep)
        {
            self.fec.pop_front();
        }
    }

    /// Rebuilds every packet that is the only one missing from a stored FEC group.
    fn repair(&mut self) {
        let Some(next) = self.next else { return };
        let mut rebuilt = Vec::new();
        for f in &self.fec {
            let n = f.entries.len() as u64;
            for (m, parity) in f.entries.iter().enumerate() {
                let Some(first) = (f.at + m as u64).checked_sub(f.span * n) else {
                    continue;
                };
                let group: Vec<u64> = (0..f.span).map(|k| first + k * n).collect();
                let missing: Vec<u64> = group
                    .iter()
                    .copied()
                    .filter(|e| !self.known.contains_key(e))
                    .collect();
                if missing.len() != 1 || missing[0] < next || first + HISTORY < next {
                    continue;
                }
                let mut p = parity.clone();
                for e in &group {
                    if let Some((q, _)) = self.known.get(e) {
                        for (a, b) in p.iter_mut().zip(q) {
                            *a ^= b;
                        }
                    }
                }
                rebuilt.push((missing[0], p));
            }
        }
        for (e, p) in rebuilt {
            self.known.entry(e).or_insert((p, true));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packets(out: &[Delivery]) -> Vec<u16> {
        out.iter()
            .filter_map(|d| match d {
                Delivery::Packet { seq, .. } => Some(*seq),
                Delivery::Lost { .. } => None,
            })
            .collect()
    }

    #[test]
    fn datagram_by_hand() {
        // seq 3, primary [06], redundancy with [04] and [02].
        let d = Datagram {
            seq: 3,
            primary: vec![0x06],
            recovery: Recovery::Secondary(vec![vec![0x04], vec![0x02]]),
        };
        let want = [0x00, 0x03, 0x01, 0x06, 0x00, 0x02, 0x01, 0x04, 0x01, 0x02];
        assert_eq!(d.encode(), want);
        assert_eq!(Datagram::decode(&want), Ok(d));
        let f = Datagram {
            seq: 0x1234,
            primary: vec![0xAA; 200],
            recovery: Recovery::Fec {
                span: 200,
                entries: vec![vec![1, 2], vec![3]],
            },
        };
        let enc = f.encode();
        assert_eq!(&enc[..4], &[0x12, 0x34, 0x80, 200]);
        assert_eq!(&enc[204..208], &[0x80, 0x02, 0x00, 200]);
        assert_eq!(Datagram::decode(&enc), Ok(f));
    }

    #[test]
    fn decode_refuses_lies() {
        assert_eq!(Datagram::decode(&[0x00]), Err(UdptlError::Truncated));
        assert_eq!(
            Datagram::decode(&[0, 0, 0x05, 1]),
            Err(UdptlError::Truncated)
        );
        assert_eq!(
            Datagram::decode(&[0, 0, 0xC1, 1]),
            Err(UdptlError::Malformed("fragmented length"))
        );
        assert_eq!(
            Datagram::decode(&[0, 0, 1, 6, 0, 0, 9]),
            Err(UdptlError::Trailing(1))
        );
        assert!(matches!(
            Datagram::decode(&[0, 0, 1, 6, 0, 100]),
            Err(UdptlError::Malformed(_))
        ));
    }

    #[test]
    fn redundancy_recovers_lost_datagrams_and_duplicates_go_once() {
        let mut tx = Sender::new(2, 1000);
        let sent: Vec<Vec<u8>> = (0..10u8).map(|i| tx.send(&[i])).collect();
        let mut rx = Receiver::new(16);
        let mut out = Vec::new();
        for (i, d) in sent.iter().enumerate() {
            if i == 3 || i == 4 || i == 7 {
                continue; // lost: 3 and 4 come back from 5's secondaries, 7 from 8's.
            }
            rx.push(d, &mut out).unwrap();
            rx.push(d, &mut out).unwrap(); // duplicate
        }
        assert_eq!(packets(&out), (0..10).collect::<Vec<u16>>());
        assert!(
            out.iter()
                .all(|d| matches!(d, Delivery::Packet { ifp, seq, .. } if ifp[0] as u16 == *seq))
        );
    }

    #[test]
    fn reordered_and_first_packet_lost() {
        let mut tx = Sender::new(1, 1000);
        let sent: Vec<Vec<u8>> = (0..6u8).map(|i| tx.send(&[i, i])).collect();
        let mut rx = Receiver::new(16);
        let mut out = Vec::new();
        for i in [1, 3, 2, 5, 4] {
            rx.push(&sent[i], &mut out).unwrap();
        }
        assert_eq!(packets(&out), vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn gap_held_until_skipped_or_window_passes() {
        let mut tx = Sender::new(0, 1000);
        let sent: Vec<Vec<u8>> = (0..40u8).map(|i| tx.send(&[i])).collect();
        let mut rx = Receiver::new(4);
        let mut out = Vec::new();
        rx.push(&sent[0], &mut out).unwrap();
        rx.push(&sent[2], &mut out).unwrap();
        assert!(rx.has_gap());
        assert_eq!(packets(&out), vec![0]);
        rx.skip_gap(&mut out);
        assert_eq!(out[1], Delivery::Lost { first: 1, count: 1 });
        assert_eq!(packets(&out), vec![0, 2]);
        // 4 missing, 5..9 come: the window (4) passes and 4 is given up by itself.
        out.clear();
        for d in &sent[5..10] {
            rx.push(d, &mut out).unwrap();
        }
        let lost: Vec<(u16, u64)> = out
            .iter()
            .filter_map(|d| match d {
                Delivery::Lost { first, count } => Some((*first, *count)),
                Delivery::Packet { .. } => None,
            })
            .collect();
        assert_eq!(lost, vec![(3, 1), (4, 1)]);
        assert_eq!(packets(&out), vec![5, 6, 7, 8, 9]);
        // Late 4 is ignored: delivered exactly once means never after its turn.
        out.clear();
        rx.push(&sent[4], &mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn sequence_wraps() {
        let mut tx = Sender::new(1, 1000);
        tx.seq = 65534;
        let sent: Vec<Vec<u8>> = (0..4u8).map(|i| tx.send(&[i])).collect();
        let mut rx = Receiver::new(8);
        let mut out = Vec::new();
        rx.push(&sent[0], &mut out).unwrap();
        rx.push(&sent[2], &mut out).unwrap();
        rx.push(&sent[3], &mut out).unwrap();
        assert_eq!(packets(&out), vec![65534, 65535, 0, 1]);
    }

    #[test]
    fn fec_rebuilds_one_missing_packet_of_a_group() {
        // Packets 0..4 of different lengths; datagram 4 carries FEC over 0..4 (span 4, one
        // entry); packet 2 is lost.
        let p: Vec<Vec<u8>> = vec![vec![1], vec![2, 2, 2], vec![3, 3], vec![4], vec![5]];
        let mut parity = vec![0u8; 3];
        for q in &p[..4] {
            for (a, b) in parity.iter_mut().zip(q) {
                *a ^= b;
            }
        }
        let dg = |seq: u16, rec: Recovery| {
            Datagram {
                seq,
                primary: p[usize::from(seq)].clone(),
                recovery: rec,
            }
            .encode()
        };
        let mut rx = Receiver::new(16);
        let mut out = Vec::new();
        for s in [0u16, 1, 3] {
            rx.push(&dg(s, Recovery::Secondary(vec![])), &mut out)
                .unwrap();
        }
        let fec = Recovery::Fec {
            span: 4,
            entries: vec![parity],
        };
        rx.push(&dg(4, fec), &mut out).unwrap();
        assert_eq!(packets(&out), vec![0, 1, 2, 3, 4]);
        assert_eq!(
            out[2],
            Delivery::Packet {
                seq: 2,
                ifp: vec![3, 3, 0],
                padded: true
            }
        );
    }

    #[test]
    fn sender_fits_the_datagram_limit() {
        let mut tx = Sender::new(3, 30);
        for i in 0..5u8 {
            let d = tx.send(&[i; 10]);
            assert!(d.len() <= 30, "{}", d.len());
        }
        // The primary alone above the limit still goes.
        assert!(tx.send(&[0; 40]).len() > 30);
    }
}
