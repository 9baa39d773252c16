//! PURE: minimum scan-line time for T.4 page data on the line (T.4 §4.1.2, T.30 DCS bits 21–23).
//!
//! A receiver negotiates how long each coded scan line must at least take on the line
//! (0, 5, 10, 20 or 40 ms) so its printer keeps up. The sender meets it by putting *fill* — any
//! number of 0 bits — between a line's code and the EOL that ends it (T.4 §4.1.2 "Fill").
//! The image encoder writes lines without fill; [`pad_scan_lines`] adds whole zero octets just
//! before each short line's EOL, at the modulation's rate, so the codec need not know the line.
//!
//! Bit order: Class 1 page data goes to the modem least significant bit first (the first bit
//! on the line is bit 0 of the first octet — TIFF FillOrder 2), and that is the order scanned.
//! T.6 (MMR) data has no EOLs and needs no fill (it is only sent with ECM, where the minimum
//! time is 0): passing it through here returns it unchanged unless it happens to contain an
//! EOL pattern, so the caller only pads MH/MR.

/// EOL is eleven 0 bits and a 1 (T.4 §4.1.2); more zeros before it are fill.
const EOL_ZEROS: u32 = 11;

/// Octets a scan line must take at `bit_rate` for a minimum time of `min_ms` milliseconds
/// (T.30 Table 2 note: the minimum applies to the total coded scan line, EOL and fill included).
pub fn min_line_bytes(bit_rate: u32, min_ms: u32) -> usize {
    (u64::from(bit_rate) * u64::from(min_ms)).div_ceil(8000) as usize
}

/// Copy `data` inserting zero octets before EOLs so every coded scan line (from the end of one
/// EOL to the end of the next) takes at least `min_bytes` octets.
///
/// The first EOL of the page and the EOLs of RTC (six in a row, no line between) are left as
/// they are: they carry no scan line.
pub fn pad_scan_lines(data: &[u8], min_bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 4);
    if min_bytes == 0 {
        out.extend_from_slice(data);
        return out;
    }
    let min_bits = min_bytes as u64 * 8;
    let mut zeros: u32 = 0;
    // Output index of the first octet boundary inside the current zero run.
    let mut boundary: Option<usize> = None;
    // Bit position (in the padded output) just past the previous EOL.
    let mut prev_eol_end: Option<u64> = None;
    for &byte in data {
        // An octet boundary lies here; it is inside the current zero run if the run started.
        if zeros > 0 && boundary.is_none() {
            boundary = Some(out.len());
        }
        let mut run_start_here: Option<usize> = None;
        for k in 0..8 {
            let bit = (byte >> k) & 1;
            if bit == 0 {
                if zeros == 0 && k == 0 {
                    // A run starting at an octet boundary: zeros may go right here.
                    run_start_here = Some(out.len());
                }
                zeros = zeros.saturating_add(1);
                continue;
            }
            if zeros >= EOL_ZEROS {
                let at = boundary.or(run_start_here);
                let end = (out.len() as u64) * 8 + k + 1;
                if let (Some(prev), Some(at)) = (prev_eol_end, at) {
                    let bits = end - prev;
                    // More than an EOL and its tag bit: a real scan line.
                    if bits > u64::from(EOL_ZEROS) + 2 && bits < min_bits {
                        let add = (min_bits - bits).div_ceil(8) as usize;
                        out.splice(at..at, std::iter::repeat_n(0u8, add));
                    }
                }
                // Recompute after a possible insertion (the current octet is not yet out).
                let inserted_end = (out.len() as u64) * 8 + k + 1;
                prev_eol_end = Some(inserted_end);
            }
            zeros = 0;
            boundary = None;
            run_start_here = None;
        }
        if zeros > 0 && boundary.is_none() {
            boundary = run_start_here;
        }
        out.push(byte);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bits in line order.
    fn bits(data: &[u8]) -> Vec<u8> {
        data.iter()
            .flat_map(|b| (0..8).map(move |k| (b >> k) & 1))
            .collect()
    }

    fn pack(bits: &[u8]) -> Vec<u8> {
        bits.chunks(8)
            .map(|c| c.iter().enumerate().fold(0u8, |a, (k, b)| a | (b << k)))
            .collect()
    }

    /// Runs of ≥ 11 zeros before a 1 collapsed to 11 (fill removed); trailing zeros dropped.
    fn normalise(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut z = 0usize;
        for &x in b {
            if x == 0 {
                z += 1;
            } else {
                let keep = if z >= 11 { 11 } else { z };
                out.extend(std::iter::repeat_n(0, keep));
                out.push(1);
                z = 0;
            }
        }
        out
    }

    /// Bit lengths of each line: from one EOL end to the next.
    fn line_bits(b: &[u8]) -> Vec<usize> {
        let mut ends = Vec::new();
        let mut z = 0;
        for (i, &x) in b.iter().enumerate() {
            if x == 0 {
                z += 1
            } else {
                if z >= 11 {
                    ends.push(i + 1);
                }
                z = 0;
            }
        }
        ends.windows(2).map(|w| w[1] - w[0]).collect()
    }

    fn eol() -> Vec<u8> {
        let mut v = vec![0; 11];
        v.push(1);
        v
    }

    #[test]
    fn short_lines_padded_long_lines_kept() {
        // EOL, a 5-bit line, EOL, a 200-bit line, EOL, then RTC.
        let mut b = eol();
        b.extend([1, 0, 1, 1, 0]);
        b.extend(eol());
        b.extend((0..200).map(|i| u8::from(i % 3 == 0)));
        b.extend(eol());
        for _ in 0..6 {
            b.extend(eol());
        }
        let data = pack(&b);
        let padded = pad_scan_lines(&data, 10);
        let pb = bits(&padded);
        assert_eq!(normalise(&pb), normalise(&bits(&data)));
        let lines = line_bits(&pb);
        assert!(lines[0] >= 80, "{lines:?}");
        assert!(lines[1] >= 200);
        // RTC stays tight.
        assert!(lines[2..].iter().all(|&l| l == 12), "{lines:?}");
        assert_eq!(pad_scan_lines(&data, 0), data);
    }

    #[test]
    fn rates() {
        assert_eq!(min_line_bytes(14400, 20), 36);
        assert_eq!(min_line_bytes(9600, 10), 12);
        assert_eq!(min_line_bytes(2400, 0), 0);
    }

    proptest::proptest! {
        #[test]
        fn fill_never_changes_the_code(data in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
                                       min in 0usize..40) {
            // Bias toward EOLs: make every 7th octet zero.
            let data: Vec<u8> = data.iter().enumerate().map(|(i, &b)| if i % 7 == 3 { 0 } else { b }).collect();
            let padded = pad_scan_lines(&data, min);
            proptest::prop_assert_eq!(normalise(&bits(&padded)), normalise(&bits(&data)));
            for l in line_bits(&bits(&padded)) {
                proptest::prop_assert!(l <= 13 || l >= min * 8, "line of {} bits", l);
            }
        }
    }
}
