//! PURE: DLE transparency for Class 1 data (ITU-T T.31 §8.3 and V.250).
//!
//! In data mode a `<DLE>` (0x10) octet in the data is sent doubled; `<DLE><ETX>` ends a block
//! (host → modem: end of transmission; modem → host: end of received data) and `<DLE><EOT>`
//! marks the end of a stream in some modems. `<DLE><SUB>` (0x10 0x1A) is the short
//! form of two data `<DLE>`s, accepted here for robustness. Any other `<DLE><x>` is a
//! shielded code we skip (the DTE ignores codes it does not know).

/// Data Link Escape.
pub const DLE: u8 = 0x10;
/// End of text: `<DLE><ETX>` ends a data block.
pub const ETX: u8 = 0x03;
/// End of transmission: `<DLE><EOT>`.
pub const EOT: u8 = 0x04;
/// Substitute: `<DLE><SUB>` stands for two data DLEs.
pub const SUB: u8 = 0x1A;

/// Append `data` to `out` with every DLE doubled.
pub fn stuff_into(data: &[u8], out: &mut Vec<u8>) {
    out.reserve(data.len() + data.len() / 64 + 2);
    for &b in data {
        out.push(b);
        if b == DLE {
            out.push(DLE);
        }
    }
}

/// `data` stuffed and terminated with `<DLE><ETX>`.
pub fn stuff_block(data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(data.len() + 2);
    stuff_into(data, &mut v);
    v.extend_from_slice(&[DLE, ETX]);
    v
}

/// How an unstuffed run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// `<DLE><ETX>`: end of the block.
    Etx,
    /// `<DLE><EOT>`: end of the stream.
    Eot,
}

/// Undoes DLE stuffing incrementally; a `<DLE>` split across two chunks is remembered.
#[derive(Debug, Default, Clone)]
pub struct Unstuffer {
    pending_dle: bool,
}

impl Unstuffer {
    /// A fresh unstuffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Unstuff `input` into `data` up to and including the first end marker.
    ///
    /// Returns how many input bytes were consumed and the marker, if one was reached; bytes
    /// after the marker (the modem's result code) are left for the caller.
    pub fn push(&mut self, input: &[u8], data: &mut Vec<u8>) -> (usize, Option<Marker>) {
        for (i, &b) in input.iter().enumerate() {
            if self.pending_dle {
                self.pending_dle = false;
                match b {
                    DLE => data.push(DLE),
                    SUB => data.extend_from_slice(&[DLE, DLE]),
                    ETX => return (i + 1, Some(Marker::Etx)),
                    EOT => return (i + 1, Some(Marker::Eot)),
                    _ => {} // a shielded code we do not use
                }
            } else if b == DLE {
                self.pending_dle = true;
            } else {
                data.push(b);
            }
        }
        (input.len(), None)
    }

    /// True when the last byte seen was a lone `<DLE>`.
    pub fn pending(&self) -> bool {
        self.pending_dle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unstuff_all(input: &[u8]) -> (Vec<u8>, usize, Option<Marker>) {
        let mut u = Unstuffer::new();
        let mut d = Vec::new();
        let (n, m) = u.push(input, &mut d);
        (d, n, m)
    }

    #[test]
    fn round_trip_every_byte() {
        let data: Vec<u8> = (0..=255u8).chain([DLE, DLE, ETX, DLE, EOT]).collect();
        let stuffed = stuff_block(&data);
        let (d, n, m) = unstuff_all(&stuffed);
        assert_eq!(d, data);
        assert_eq!(n, stuffed.len());
        assert_eq!(m, Some(Marker::Etx));
    }

    #[test]
    fn edge_cases() {
        // <DLE><DLE><ETX>: a data DLE followed by a plain ETX byte — not the end.
        assert_eq!(unstuff_all(&[DLE, DLE, ETX]), (vec![DLE, ETX], 3, None));
        // <DLE><DLE><DLE><ETX>: data DLE, then the end marker.
        assert_eq!(
            unstuff_all(&[DLE, DLE, DLE, ETX, b'\r']),
            (vec![DLE], 4, Some(Marker::Etx))
        );
        assert_eq!(
            unstuff_all(&[1, DLE, EOT, 2]),
            (vec![1], 3, Some(Marker::Eot))
        );
        assert_eq!(unstuff_all(&[DLE, SUB]), (vec![DLE, DLE], 2, None));
        // An unknown shielded code is dropped.
        assert_eq!(
            unstuff_all(&[b'a', DLE, b'x', b'b']),
            (vec![b'a', b'b'], 4, None)
        );
        // Bare ETX is data.
        assert_eq!(unstuff_all(&[ETX]), (vec![ETX], 1, None));
    }

    #[test]
    fn dle_split_across_chunks() {
        let mut u = Unstuffer::new();
        let mut d = Vec::new();
        assert_eq!(u.push(&[7, DLE], &mut d), (2, None));
        assert!(u.pending());
        assert_eq!(u.push(&[ETX, b'O'], &mut d), (1, Some(Marker::Etx)));
        assert_eq!(d, vec![7]);
        let mut u = Unstuffer::new();
        let mut d = Vec::new();
        u.push(&[DLE], &mut d);
        u.push(&[DLE], &mut d);
        assert_eq!(d, vec![DLE]);
        assert!(!u.pending());
    }
}
