//! DIS / DTC / DCS information fields (T.30 Table 2): bit encoding, decoding, and the capability
//! intersection that turns the called station's DIS and our own limits into a DCS.
//!
//! Bits are numbered from 1 as T.30 Table 2 numbers them; bit `n` is in FIF octet `(n-1)/8` at
//! mask `1 << ((n-1)%8)` (the first transmitted bit is the least significant). An octet ends
//! the field unless its last bit (24, 32, 40, …: "extend field") is set.

/// T.30 Table 2 bit numbers used here.
pub mod bit {
    /// Ready to transmit a facsimile document (polling) — DIS/DTC.
    pub const READY_TO_TRANSMIT: u32 = 9;
    /// Receiver fax operation (DIS: can receive; DCS: "receive fax", must be 1).
    pub const RECEIVE_FAX: u32 = 10;
    /// Data signalling rate, bits 11–14 (see [`super::Modulation`] codes).
    pub const RATE_11: u32 = 11;
    /// R8 × 7.7 lines/mm ("fine") and/or 200 × 200 pels/25.4 mm.
    pub const FINE: u32 = 15;
    /// Two-dimensional coding (T.4 MR).
    pub const MR: u32 = 16;
    /// Recording width bits 17–18.
    pub const WIDTH_17: u32 = 17;
    /// Recording length bits 19–20.
    pub const LENGTH_19: u32 = 19;
    /// Minimum scan line time bits 21–23.
    pub const SCAN_21: u32 = 21;
    /// Extend field after octet 3.
    pub const EXTEND_24: u32 = 24;
    /// Error correction mode (T.30 Annex A).
    pub const ECM: u32 = 27;
    /// DCS: frame size 0 = 256 octets, 1 = 64 octets (Annex A).
    pub const FRAME_64: u32 = 28;
    /// T.6 coding (MMR; only with ECM, T.30 §5.3.6.2.3 note).
    pub const MMR: u32 = 31;
    /// Extend field after octet 4.
    pub const EXTEND_32: u32 = 32;
    /// Extend field after octet 5.
    pub const EXTEND_40: u32 = 40;
    /// R8 × 15.4 lines/mm ("superfine").
    pub const SUPERFINE: u32 = 41;
    /// Metric-based resolution preferred.
    pub const METRIC_PREFERRED: u32 = 45;
    /// Minimum scan line time at 15.4 l/mm is half that at 7.7 l/mm.
    pub const SCAN_HALF_SUPERFINE: u32 = 46;
    /// Extend field after octet 6.
    pub const EXTEND_48: u32 = 48;
    /// Subaddressing capability (SUB).
    pub const SUBADDRESS: u32 = 49;
    /// Password (PWD) / sender identification (SID) capability.
    pub const PASSWORD: u32 = 50;
}

/// A high-speed modulation and rate (T.30 §5.3.6.2.2; Class 1 `+FTM`/`+FRM` codes, T.31 Table 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Modulation {
    /// V.27 ter 2400 bit/s.
    V27ter2400,
    /// V.27 ter 4800 bit/s.
    V27ter4800,
    /// V.29 7200 bit/s.
    V29_7200,
    /// V.29 9600 bit/s.
    V29_9600,
    /// V.17 7200 bit/s.
    V17_7200,
    /// V.17 9600 bit/s.
    V17_9600,
    /// V.17 12000 bit/s.
    V17_12000,
    /// V.17 14400 bit/s.
    V17_14400,
}

impl Modulation {
    /// Every modulation, fastest first: the fallback ladder after FTT (T.30 §5.3.6.1.3 leaves
    /// the order to the transmitter; ours steps V.17 down, then V.29, then V.27 ter).
    pub const LADDER: [Modulation; 8] = [
        Modulation::V17_14400,
        Modulation::V17_12000,
        Modulation::V17_9600,
        Modulation::V17_7200,
        Modulation::V29_9600,
        Modulation::V29_7200,
        Modulation::V27ter4800,
        Modulation::V27ter2400,
    ];

    /// Bits per second.
    pub fn bps(self) -> u32 {
        match self {
            Modulation::V27ter2400 => 2400,
            Modulation::V27ter4800 => 4800,
            Modulation::V29_7200 | Modulation::V17_7200 => 7200,
            Modulation::V29_9600 | Modulation::V17_9600 => 9600,
            Modulation::V17_12000 => 12000,
            Modulation::V17_14400 => 14400,
        }
    }

    /// Whether the modulation has a short training distinct from its long one: V.17 only
    /// (T.30 §5.3.2 / V.17 §1; V.27 ter and V.29 train one way).
    pub fn has_short_training(self) -> bool {
        matches!(
            self,
            Modulation::V17_7200
                | Modulation::V17_9600
                | Modulation::V17_12000
                | Modulation::V17_14400
        )
    }

    /// DCS bits 11–14 for this rate (T.30 Table 2).
    fn dcs_bits(self) -> [bool; 4] {
        match self {
            Modulation::V27ter2400 => [false, false, false, false],
            Modulation::V27ter4800 => [false, true, false, false],
            Modulation::V29_9600 => [true, false, false, false],
            Modulation::V29_7200 => [true, true, false, false],
            Modulation::V17_14400 => [false, false, false, true],
            Modulation::V17_12000 => [false, true, false, true],
            Modulation::V17_9600 => [true, false, false, true],
            Modulation::V17_7200 => [true, true, false, true],
        }
    }

    fn from_dcs_bits(b: [bool; 4]) -> Option<Modulation> {
        Modulation::LADDER
            .iter()
            .copied()
            .find(|m| m.dcs_bits() == b)
    }

    /// The V.xx family, for reports.
    pub fn name(self) -> &'static str {
        match self {
            Modulation::V27ter2400 => "V.27ter 2400",
            Modulation::V27ter4800 => "V.27ter 4800",
            Modulation::V29_7200 => "V.29 7200",
            Modulation::V29_9600 => "V.29 9600",
            Modulation::V17_7200 => "V.17 7200",
            Modulation::V17_9600 => "V.17 9600",
            Modulation::V17_12000 => "V.17 12000",
            Modulation::V17_14400 => "V.17 14400",
        }
    }

    fn is_v17(self) -> bool {
        self >= Modulation::V17_7200
    }
}

/// Training sequence length. V.17 distinguishes long training (TCF and the first page after it)
/// from short training (later pages at the same rate, T.30 §5.3.2 / V.17 §1); V.27 ter and V.29
/// have one training and ignore this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Training {
    /// Long training.
    Long,
    /// Short training (V.17 only).
    Short,
}

/// Which modulation families a station supports (DIS bits 11–14, T.30 Table 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ModemSet {
    /// V.27 ter 4800/2400.
    pub v27ter: bool,
    /// V.29 9600/7200.
    pub v29: bool,
    /// V.17 14400–7200.
    pub v17: bool,
}

impl ModemSet {
    /// Whether `m` is in the set.
    pub fn has(&self, m: Modulation) -> bool {
        match m {
            Modulation::V27ter2400 => true, // V.27 ter fall-back is always available
            Modulation::V27ter4800 => self.v27ter,
            Modulation::V29_7200 | Modulation::V29_9600 => self.v29,
            _ => self.v17,
        }
    }
}

/// Vertical resolution at 8 pels/mm horizontally (T.4 §2.2, T.30 Table 2 bits 15 and 41).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VResolution {
    /// 3.85 lines/mm (98 dpi).
    Standard,
    /// 7.7 lines/mm (196 dpi).
    Fine,
    /// 15.4 lines/mm (391 dpi).
    Superfine,
}

impl VResolution {
    /// Name for reports.
    pub fn name(self) -> &'static str {
        match self {
            VResolution::Standard => "standard",
            VResolution::Fine => "fine",
            VResolution::Superfine => "superfine",
        }
    }
}

/// Page coding scheme (T.4 §4.1 MH, §4.2 MR; T.6 MMR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Coding {
    /// T.4 one-dimensional Modified Huffman.
    Mh,
    /// T.4 two-dimensional Modified READ.
    Mr,
    /// T.6 Modified Modified READ (ECM only).
    Mmr,
}

impl Coding {
    /// Name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Coding::Mh => "MH",
            Coding::Mr => "MR",
            Coding::Mmr => "MMR",
        }
    }
}

/// Scan line width in pels at 8 pels/mm (T.4 §2.2; T.30 Table 2 bits 17–18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Width {
    /// 215 mm, 1728 pels (A4).
    A4,
    /// 255 mm, 2048 pels (B4).
    B4,
    /// 303 mm, 2432 pels (A3).
    A3,
}

impl Width {
    /// Pels per line.
    pub fn pels(self) -> u32 {
        match self {
            Width::A4 => 1728,
            Width::B4 => 2048,
            Width::A3 => 2432,
        }
    }
}

/// Minimum scan line time in ms (T.30 Table 2 bits 21–23), as the receiver asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScanTime {
    /// At 3.85 lines/mm, ms: 0, 5, 10, 20 or 40.
    pub standard_ms: u32,
    /// At 7.7 lines/mm the time is half that at 3.85 (DIS codes 011, 110, 101).
    pub fine_half: bool,
    /// At 15.4 lines/mm the time is half that at 7.7 (bit 46).
    pub superfine_half: bool,
}

impl ScanTime {
    /// The time that applies at `res`, ms.
    pub fn at(&self, res: VResolution) -> u32 {
        let fine = if self.fine_half {
            self.standard_ms / 2
        } else {
            self.standard_ms
        };
        match res {
            VResolution::Standard => self.standard_ms,
            VResolution::Fine => fine,
            VResolution::Superfine => {
                if self.superfine_half {
                    fine / 2
                } else {
                    fine
                }
            }
        }
    }
}

/// Capabilities a station declares in DIS or DTC (T.30 §5.3.6.2, Table 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Bit 9: has a document to send (polling).
    pub ready_to_transmit: bool,
    /// Bit 10: can receive a fax.
    pub can_receive: bool,
    /// Bits 11–14.
    pub modems: ModemSet,
    /// Bit 15.
    pub fine: bool,
    /// Bit 41.
    pub superfine: bool,
    /// Bit 16.
    pub mr: bool,
    /// Bit 31 (meaningful only with ECM).
    pub mmr: bool,
    /// Bit 27.
    pub ecm: bool,
    /// Widest recording width accepted (bits 17–18).
    pub width: Width,
    /// Unlimited page length (bits 19–20).
    pub unlimited_length: bool,
    /// Bits 21–23 and 46.
    pub scan_time: ScanTime,
    /// Bit 49.
    pub subaddress: bool,
    /// Bit 50.
    pub password: bool,
}

impl Capabilities {
    /// Everything faxgate itself can do, limited to rates up to `max_bps` and ECM if `ecm`.
    pub fn ours(max_bps: u32, ecm: bool) -> Capabilities {
        Capabilities {
            ready_to_transmit: false,
            can_receive: true,
            modems: ModemSet {
                v27ter: max_bps >= 4800,
                v29: max_bps >= 7200,
                v17: max_bps >= 7200,
            },
            fine: true,
            superfine: true,
            mr: true,
            mmr: ecm,
            ecm,
            width: Width::A3,
            unlimited_length: true,
            scan_time: ScanTime {
                standard_ms: 0,
                fine_half: false,
                superfine_half: false,
            },
            subaddress: true,
            password: true,
        }
    }

    /// Encodes as a DIS (or DTC) FIF.
    pub fn encode(&self) -> Vec<u8> {
        let mut f = Fif::new(7);
        f.set(bit::READY_TO_TRANSMIT, self.ready_to_transmit);
        f.set(bit::RECEIVE_FAX, self.can_receive);
        let m = self.modems;
        // (11,12,13,14): V.27ter 0100, V.29 1000, both 1100, with V.17 1101 (T.30 Table 2).
        f.set(bit::RATE_11, m.v29 || m.v17);
        f.set(bit::RATE_11 + 1, m.v27ter || m.v17);
        f.set(bit::RATE_11 + 3, m.v17);
        f.set(bit::FINE, self.fine);
        f.set(bit::MR, self.mr);
        let (w17, w18) = match self.width {
            Width::A4 => (false, false),
            Width::B4 => (true, false),
            Width::A3 => (false, true),
        };
        f.set(bit::WIDTH_17, w17);
        f.set(bit::WIDTH_17 + 1, w18);
        // Bits 19–20: (0,1) unlimited, (1,0) A4 and B4, (0,0) A4.
        f.set(bit::LENGTH_19 + 1, self.unlimited_length);
        let code = match (self.scan_time.standard_ms, self.scan_time.fine_half) {
            (20, false) => [false, false, false],
            (40, false) => [false, false, true],
            (10, false) => [false, true, false],
            (5, _) => [true, false, false],
            (10, true) => [false, true, true],
            (20, true) => [true, true, false],
            (40, true) => [true, false, true],
            _ => [true, true, true],
        };
        f.set(bit::SCAN_21, code[0]);
        f.set(bit::SCAN_21 + 1, code[1]);
        f.set(bit::SCAN_21 + 2, code[2]);
        f.set(bit::ECM, self.ecm);
        f.set(bit::MMR, self.mmr && self.ecm);
        f.set(bit::SUPERFINE, self.superfine);
        f.set(bit::METRIC_PREFERRED, true);
        f.set(bit::SCAN_HALF_SUPERFINE, self.scan_time.superfine_half);
        f.set(bit::SUBADDRESS, self.subaddress);
        f.set(bit::PASSWORD, self.password);
        f.finish()
    }

    /// Decodes a DIS/DTC FIF. Short fields mean the missing bits are 0 (T.30 §5.3.6.2: a
    /// station sends only as many octets as it needs); extra octets are ignored. Never fails:
    /// a DIS with nothing usable simply intersects to no common mode.
    pub fn decode(fif: &[u8]) -> Capabilities {
        let f = Fif::read(fif);
        let (b11, b12, b14) = (f.get(11), f.get(12), f.get(14));
        let modems = ModemSet {
            v27ter: b12,
            v29: b11,
            v17: b11 && b12 && b14,
        };
        let width = match (f.get(17), f.get(18)) {
            (false, false) => Width::A4,
            (true, false) => Width::B4,
            _ => Width::A3,
        };
        let code = (f.get(21), f.get(22), f.get(23));
        let (ms, half) = match code {
            (false, false, false) => (20, false),
            (false, false, true) => (40, false),
            (false, true, false) => (10, false),
            (true, false, false) => (5, false),
            (false, true, true) => (10, true),
            (true, true, false) => (20, true),
            (true, false, true) => (40, true),
            (true, true, true) => (0, false),
        };
        let ecm = f.get(bit::ECM);
        Capabilities {
            ready_to_transmit: f.get(bit::READY_TO_TRANSMIT),
            can_receive: f.get(bit::RECEIVE_FAX),
            modems,
            fine: f.get(bit::FINE),
            superfine: f.get(bit::SUPERFINE),
            mr: f.get(bit::MR),
            mmr: f.get(bit::MMR) && ecm,
            ecm,
            width,
            unlimited_length: f.get(bit::LENGTH_19 + 1),
            scan_time: ScanTime {
                standard_ms: ms,
                fine_half: half,
                superfine_half: f.get(bit::SCAN_HALF_SUPERFINE),
            },
            subaddress: f.get(bit::SUBADDRESS),
            password: f.get(bit::PASSWORD),
        }
    }
}

/// A DCS: the mode the transmitter chose (T.30 §5.3.6.1.3, Table 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dcs {
    /// Bits 11–14.
    pub modulation: Modulation,
    /// Bits 15 / 41.
    pub resolution: VResolution,
    /// Bits 16 / 31.
    pub coding: Coding,
    /// Bits 17–18.
    pub width: Width,
    /// Bits 21–23 at the chosen resolution, ms (0 under ECM, T.30 Annex A.1).
    pub scan_time_ms: u32,
    /// Bit 27.
    pub ecm: bool,
    /// Bit 28: 64-octet ECM frames instead of 256.
    pub frame_64: bool,
}

impl Dcs {
    /// Encodes as a DCS FIF.
    pub fn encode(&self) -> Vec<u8> {
        self.encode_with(false, false)
    }

    /// Encodes as a DCS FIF that announces a SUB frame (bit 49) and/or a SID frame (bit 50)
    /// in the same transmission (T.30 Table 2).
    pub fn encode_with(&self, subaddress: bool, sender_id: bool) -> Vec<u8> {
        let mut f = Fif::new(7);
        f.set(bit::SUBADDRESS, subaddress);
        f.set(bit::PASSWORD, sender_id);
        f.set(bit::RECEIVE_FAX, true);
        let b = self.modulation.dcs_bits();
        for (i, v) in b.iter().enumerate() {
            f.set(bit::RATE_11 + i as u32, *v);
        }
        f.set(bit::FINE, self.resolution == VResolution::Fine);
        f.set(bit::SUPERFINE, self.resolution == VResolution::Superfine);
        f.set(bit::MR, self.coding == Coding::Mr);
        f.set(bit::MMR, self.coding == Coding::Mmr);
        let (w17, w18) = match self.width {
            Width::A4 => (false, false),
            Width::B4 => (true, false),
            Width::A3 => (false, true),
        };
        f.set(bit::WIDTH_17, w17);
        f.set(bit::WIDTH_17 + 1, w18);
        f.set(bit::LENGTH_19 + 1, true);
        // DCS bits 21–23 (T.30 Table 2): 20 ms 000, 40 ms 001, 10 ms 010, 5 ms 100, 0 ms 111.
        let code = match self.scan_time_ms {
            20 => [false, false, false],
            40 => [false, false, true],
            10 => [false, true, false],
            5 => [true, false, false],
            _ => [true, true, true],
        };
        f.set(bit::SCAN_21, code[0]);
        f.set(bit::SCAN_21 + 1, code[1]);
        f.set(bit::SCAN_21 + 2, code[2]);
        f.set(bit::ECM, self.ecm);
        f.set(bit::FRAME_64, self.ecm && self.frame_64);
        f.set(bit::METRIC_PREFERRED, true);
        f.finish()
    }

    /// Decodes a DCS FIF; `None` when it names no rate T.30 defines (bits 11–14 1110, 0010, …)
    /// or is shorter than the three octets every DCS has.
    pub fn decode(fif: &[u8]) -> Option<Dcs> {
        if fif.len() < 3 {
            return None;
        }
        let f = Fif::read(fif);
        let modulation = Modulation::from_dcs_bits([f.get(11), f.get(12), f.get(13), f.get(14)])?;
        let resolution = if f.get(bit::SUPERFINE) {
            VResolution::Superfine
        } else if f.get(bit::FINE) {
            VResolution::Fine
        } else {
            VResolution::Standard
        };
        let ecm = f.get(bit::ECM);
        let coding = if f.get(bit::MMR) {
            Coding::Mmr
        } else if f.get(bit::MR) {
            Coding::Mr
        } else {
            Coding::Mh
        };
        let width = match (f.get(17), f.get(18)) {
            (false, false) => Width::A4,
            (true, false) => Width::B4,
            _ => Width::A3,
        };
        let scan_time_ms = match (f.get(21), f.get(22), f.get(23)) {
            (false, false, false) => 20,
            (false, false, true) => 40,
            (false, true, false) => 10,
            (true, false, false) => 5,
            _ => 0,
        };
        Some(Dcs {
            modulation,
            resolution,
            coding,
            width,
            scan_time_ms,
            ecm,
            frame_64: ecm && f.get(bit::FRAME_64),
        })
    }
}

/// What the transmitter wants for a document, before looking at the remote's DIS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    /// Resolution the document was made at (the source re-samples to a lower one when the
    /// receiver cannot take it).
    pub resolution: VResolution,
    /// Page width.
    pub width: Width,
}

/// Why no DCS could be chosen. The remote's capabilities (or ours) are at fault; retrying the
/// same call will not help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Incompatible {
    /// The DIS says the remote cannot receive (bit 10 clear).
    #[error("the remote station cannot receive faxes (DIS bit 10 clear)")]
    CannotReceive,
    /// No modulation at or below `max_start` both sides have.
    #[error("no common modulation")]
    NoModulation,
    /// The document is wider than the remote accepts.
    #[error("page width {0} pels is more than the remote accepts")]
    TooWide(u32),
}

/// The capability intersection of T.30 §5.3.6.1.3: the best mode both `ours` and `remote` have,
/// for a document `wanted`, starting no faster than `start` (the fallback ladder's rung).
pub fn choose_dcs(
    ours: &Capabilities,
    remote: &Capabilities,
    wanted: Wanted,
    start: Modulation,
) -> Result<Dcs, Incompatible> {
    if !remote.can_receive {
        return Err(Incompatible::CannotReceive);
    }
    let modulation = Modulation::LADDER
        .iter()
        .copied()
        .filter(|m| *m <= start || (m.bps() <= start.bps() && !m.is_v17()))
        .find(|m| ours.modems.has(*m) && remote.modems.has(*m))
        .ok_or(Incompatible::NoModulation)?;
    let mut resolution = wanted.resolution;
    if resolution == VResolution::Superfine && !(ours.superfine && remote.superfine) {
        resolution = VResolution::Fine;
    }
    if resolution == VResolution::Fine && !(ours.fine && remote.fine) {
        resolution = VResolution::Standard;
    }
    if wanted.width > remote.width || wanted.width > ours.width {
        return Err(Incompatible::TooWide(wanted.width.pels()));
    }
    let ecm = ours.ecm && remote.ecm;
    let coding = if ecm && ours.mmr && remote.mmr {
        Coding::Mmr
    } else if ours.mr && remote.mr {
        Coding::Mr
    } else {
        Coding::Mh
    };
    // Annex A.1: under ECM the minimum scan line time does not apply.
    let scan_time_ms = if ecm {
        0
    } else {
        remote.scan_time.at(resolution)
    };
    Ok(Dcs {
        modulation,
        resolution,
        coding,
        width: wanted.width,
        scan_time_ms,
        ecm,
        frame_64: false,
    })
}

/// A FIF under construction or being read, bit-addressed as T.30 Table 2 numbers bits.
struct Fif {
    octets: Vec<u8>,
}

impl Fif {
    fn new(len: usize) -> Fif {
        Fif {
            octets: vec![0; len],
        }
    }

    fn read(fif: &[u8]) -> Fif {
        // Honour the extend bits: stop after the first octet (from the third on) whose extend
        // bit is clear, and never read more than 32 octets.
        let mut n = fif.len().min(32);
        for (i, o) in fif.iter().enumerate().take(n).skip(2) {
            if o & 0x80 == 0 {
                n = i + 1;
                break;
            }
        }
        Fif {
            octets: fif[..n].to_vec(),
        }
    }

    fn set(&mut self, n: u32, v: bool) {
        let (i, m) = (((n - 1) / 8) as usize, 1u8 << ((n - 1) % 8));
        if v {
            self.octets[i] |= m;
        } else {
            self.octets[i] &= !m;
        }
    }

    fn get(&self, n: u32) -> bool {
        let (i, m) = (((n - 1) / 8) as usize, 1u8 << ((n - 1) % 8));
        self.octets.get(i).is_some_and(|o| o & m != 0)
    }

    /// Sets the extend bits of every octet but the last non-zero one and trims the rest.
    fn finish(mut self) -> Vec<u8> {
        let mut last = 2;
        for (i, o) in self.octets.iter().enumerate().skip(3) {
            if o & 0x7F != 0 {
                last = i;
            }
        }
        self.octets.truncate(last + 1);
        let n = self.octets.len();
        for i in 2..n {
            if i + 1 < n {
                self.octets[i] |= 0x80;
            } else {
                self.octets[i] &= 0x7F;
            }
        }
        self.octets
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn our_dis_round_trips() {
        for ecm in [false, true] {
            let c = Capabilities::ours(14400, ecm);
            assert_eq!(Capabilities::decode(&c.encode()), c);
        }
    }

    #[test]
    fn dis_bits_match_table_2() {
        let c = Capabilities::ours(14400, true);
        let f = c.encode();
        // Octet 2 holds bits 9–16: bit 10 (receive), 11, 12, 14 (V.17+V.29+V.27ter), 15, 16.
        assert_eq!(f[1], 0b1110_1110);
        // Bit 27 (ECM) is octet 4, mask 0x04; bit 31 (T.6) mask 0x40; bit 32 extends.
        assert_eq!(f[3] & 0x44, 0x44);
        assert!(f[3] & 0x80 != 0);
    }

    #[test]
    fn every_dcs_rate_round_trips() {
        for m in Modulation::LADDER {
            let d = Dcs {
                modulation: m,
                resolution: VResolution::Fine,
                coding: Coding::Mr,
                width: Width::A4,
                scan_time_ms: 10,
                ecm: false,
                frame_64: false,
            };
            assert_eq!(Dcs::decode(&d.encode()), Some(d));
        }
    }

    #[test]
    fn dcs_announces_sub_and_sid() {
        let d = Dcs {
            modulation: Modulation::V17_14400,
            resolution: VResolution::Standard,
            coding: Coding::Mh,
            width: Width::A4,
            scan_time_ms: 0,
            ecm: false,
            frame_64: false,
        };
        assert_eq!(d.encode().len(), 6, "bits 1–48 suffice");
        let f = d.encode_with(true, true);
        // Bits 49 and 50: octet 7, masks 0x01 and 0x02; octet 6 now extends (bit 48).
        assert_eq!(f.len(), 7);
        assert_eq!(f[6], 0x03);
        assert!(f[5] & 0x80 != 0);
        assert_eq!(Dcs::decode(&f), Some(d));
    }

    #[test]
    fn intersection_picks_best_common_mode() {
        let ours = Capabilities::ours(14400, true);
        let mut remote = Capabilities::ours(9600, false);
        remote.modems.v17 = false;
        remote.superfine = false;
        remote.scan_time.standard_ms = 20;
        let want = Wanted {
            resolution: VResolution::Superfine,
            width: Width::A4,
        };
        let d = choose_dcs(&ours, &remote, want, Modulation::V17_14400).unwrap();
        assert_eq!(d.modulation, Modulation::V29_9600);
        assert_eq!(d.resolution, VResolution::Fine);
        assert_eq!(d.coding, Coding::Mr);
        assert!(!d.ecm);
        assert_eq!(d.scan_time_ms, 20);
        let d = choose_dcs(&ours, &remote, want, Modulation::V29_7200).unwrap();
        assert_eq!(d.modulation, Modulation::V29_7200);
        remote.can_receive = false;
        assert_eq!(
            choose_dcs(&ours, &remote, want, Modulation::V17_14400),
            Err(Incompatible::CannotReceive)
        );
    }

    proptest! {
        #[test]
        fn decoders_never_panic(fif in proptest::collection::vec(any::<u8>(), 0..40)) {
            let c = Capabilities::decode(&fif);
            let _ = c.encode();
            if let Some(d) = Dcs::decode(&fif) {
                prop_assert_eq!(Dcs::decode(&d.encode()), Some(d));
            }
        }
    }
}
