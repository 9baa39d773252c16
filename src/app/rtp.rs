//! The audio leg of a SIP fax call before T.38 is agreed: RTP (RFC 3550) carrying G.711
//! (PCMU/PCMA, RFC 3551 §4.5.14, payload types 0 and 8) in 20 ms packets.
//!
//! faxgate does not fax over audio (issue 17: G.711 fax is out of scope); the audio leg only
//! keeps the call looking like a fax call until the re-INVITE to T.38: answering, we send
//! silence; calling, we send CNG, the calling tone (1100 Hz, 0.5 s on, 3 s off, T.30 §5.1), which
//! is what makes a gateway or PBX on the far side detect fax and re-INVITE to T.38 itself.
//!
//! [`AudioSource`] is the pure core: packet *n* of a leg, a function of *n* alone (time is
//! its input: packet *n* is due at 20·*n* ms). [`AudioLeg`] is the thin shell: a thread that
//! sends those packets on a UDP socket at their due times and reads (and drops) whatever
//! arrives, until it is stopped.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::AudioCodec;

/// Samples per second of G.711 (G.711 §1: 8000 samples/s).
pub const SAMPLE_RATE: u32 = 8000;
/// Duration of one packet: 20 ms, the RFC 3551 §4.2 default packetisation for G.711.
pub const PACKET: Duration = Duration::from_millis(20);
/// Samples per packet (20 ms at 8 kHz).
pub const SAMPLES_PER_PACKET: usize = 160;
/// Size of the fixed RTP header without CSRCs (RFC 3550 §5.1).
pub const HEADER_LEN: usize = 12;
/// CNG's frequency, Hz (T.30 §5.1: 1100 Hz ± 38 Hz).
pub const CNG_HZ: f64 = 1100.0;
/// CNG's cadence: tone on for this many packets (0.5 s) …
pub const CNG_ON_PACKETS: u64 = 25;
/// … then off for this many (3 s).
pub const CNG_OFF_PACKETS: u64 = 150;
/// CNG's amplitude in 16-bit linear units: about −10 dBm0 (T.30 §5.1 leaves the level to the
/// network; this is a usual transmit level for fax tones, well inside G.711's range).
pub const CNG_AMPLITUDE: f64 = 7000.0;

/// The RTP payload type of a G.711 law (RFC 3551 §6, Table 4).
pub fn payload_type(codec: AudioCodec) -> u8 {
    match codec {
        AudioCodec::Pcmu => 0,
        AudioCodec::Pcma => 8,
    }
}

/// The encoding name used in SDP `a=rtpmap` (RFC 3551 §6).
pub fn encoding_name(codec: AudioCodec) -> &'static str {
    match codec {
        AudioCodec::Pcmu => "PCMU",
        AudioCodec::Pcma => "PCMA",
    }
}

/// G.711 µ-law of a 16-bit linear sample (G.711 Table 2: the 14-bit magnitude with a bias of
/// 33, 8 segments of 16 steps; the code word is sent inverted).
pub fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84; // 33 in the 14-bit scale, shifted to the 16-bit one.
    const CLIP: i32 = 32635;
    let s = i32::from(sample);
    let sign = if s < 0 { 0x80 } else { 0 };
    let magnitude = s.abs().min(CLIP) + BIAS;
    // The segment is the position of the highest set bit above bit 7.
    let exponent = (0..8)
        .rev()
        .find(|e| magnitude & (0x80 << e) != 0)
        .unwrap_or(0);
    let mantissa = (magnitude >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// The 16-bit linear value of a µ-law code word (the middle of its step).
pub fn ulaw_to_linear(code: u8) -> i16 {
    let c = !code;
    let exponent = i32::from((c >> 4) & 0x07);
    let mantissa = i32::from(c & 0x0F);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if c & 0x80 != 0 { -magnitude } else { magnitude }) as i16
}

/// G.711 A-law of a 16-bit linear sample (G.711 Table 1: 13-bit magnitude, 8 segments; even
/// bits inverted, XOR 0x55).
pub fn linear_to_alaw(sample: i16) -> u8 {
    let s = i32::from(sample) >> 3; // 13-bit scale
    let (sign, magnitude) = if s >= 0 { (0x80, s) } else { (0x00, -s - 1) };
    let magnitude = magnitude.min(0x0FFF);
    let code = if magnitude < 32 {
        magnitude >> 1
    } else {
        let exponent = (1..8)
            .rev()
            .find(|e| magnitude & (0x10 << e) != 0)
            .unwrap_or(1);
        (exponent << 4) | ((magnitude >> exponent) & 0x0F)
    };
    ((sign | code) ^ 0x55) as u8
}

/// The 16-bit linear value of an A-law code word (the middle of its step).
pub fn alaw_to_linear(code: u8) -> i16 {
    let c = code ^ 0x55;
    let exponent = i32::from((c >> 4) & 0x07);
    let mantissa = i32::from(c & 0x0F);
    let magnitude = if exponent == 0 {
        (mantissa << 1) + 1
    } else {
        ((mantissa << 1) + 33) << (exponent - 1)
    } << 3;
    (if c & 0x80 != 0 { magnitude } else { -magnitude }) as i16
}

/// What the audio leg sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Digital silence (answering, until T.38).
    Silence,
    /// CNG, the calling tone (calling, until T.38).
    Cng,
}

/// The pure core: the packets of one audio leg.
#[derive(Debug, Clone)]
pub struct AudioSource {
    codec: AudioCodec,
    tone: Tone,
    ssrc: u32,
    first_seq: u16,
    first_ts: u32,
}

impl AudioSource {
    /// A leg sending `tone` in `codec`. `ssrc`, the first sequence number and the first
    /// timestamp should be random (RFC 3550 §5.1, §8.1): the caller draws them.
    pub fn new(codec: AudioCodec, tone: Tone, ssrc: u32, first_seq: u16, first_ts: u32) -> Self {
        AudioSource {
            codec,
            tone,
            ssrc,
            first_seq,
            first_ts,
        }
    }

    /// The linear sample `i` of the leg (sample 0 is the first sent).
    pub fn sample(&self, i: u64) -> i16 {
        match self.tone {
            Tone::Silence => 0,
            Tone::Cng => {
                let per_cycle = (CNG_ON_PACKETS + CNG_OFF_PACKETS) * SAMPLES_PER_PACKET as u64;
                let in_cycle = i % per_cycle;
                if in_cycle >= CNG_ON_PACKETS * SAMPLES_PER_PACKET as u64 {
                    return 0;
                }
                let t = in_cycle as f64 / f64::from(SAMPLE_RATE);
                (CNG_AMPLITUDE * (2.0 * std::f64::consts::PI * CNG_HZ * t).sin()).round() as i16
            }
        }
    }

    /// RTP packet `n` (RFC 3550 §5.1): V=2, no padding, no extension, no CSRC; the marker set
    /// on the first packet (the start of a talkspurt, RFC 3551 §4.1); the timestamp counts
    /// samples.
    pub fn packet(&self, n: u64) -> Vec<u8> {
        let mut p = Vec::with_capacity(HEADER_LEN + SAMPLES_PER_PACKET);
        let marker = if n == 0 { 0x80 } else { 0 };
        p.push(0x80); // V=2, P=0, X=0, CC=0
        p.push(marker | payload_type(self.codec));
        // Sequence numbers and timestamps wrap (RFC 3550 §5.1): truncation is the point.
        p.extend_from_slice(&self.first_seq.wrapping_add(n as u16).to_be_bytes());
        let ts = self
            .first_ts
            .wrapping_add((n as u32).wrapping_mul(SAMPLES_PER_PACKET as u32));
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        let base = n * SAMPLES_PER_PACKET as u64;
        p.extend((0..SAMPLES_PER_PACKET as u64).map(|k| {
            let s = self.sample(base + k);
            match self.codec {
                AudioCodec::Pcmu => linear_to_ulaw(s),
                AudioCodec::Pcma => linear_to_alaw(s),
            }
        }));
        p
    }
}

/// An RTP packet's fixed header, as far as the audio leg checks it (RFC 3550 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Payload type.
    pub payload_type: u8,
    /// Marker bit.
    pub marker: bool,
    /// Sequence number.
    pub seq: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// SSRC.
    pub ssrc: u32,
    /// Offset of the payload (after CSRCs and a header extension).
    pub payload_at: usize,
}

/// Parses an RTP header; `None` for anything that is not RTP version 2 or is truncated.
/// Never panics (it reads what arrives on the media port from anyone).
pub fn parse_header(p: &[u8]) -> Option<Header> {
    let b0 = *p.first()?;
    if b0 >> 6 != 2 || p.len() < HEADER_LEN {
        return None;
    }
    let cc = usize::from(b0 & 0x0F);
    let mut at = HEADER_LEN + 4 * cc;
    if b0 & 0x10 != 0 {
        // Header extension (§5.3.1): 16-bit profile, 16-bit length in 32-bit words.
        let len = p.get(at + 2..at + 4)?;
        at += 4 + 4 * usize::from(u16::from_be_bytes([len[0], len[1]]));
    }
    if at > p.len() {
        return None;
    }
    Some(Header {
        payload_type: p[1] & 0x7F,
        marker: p[1] & 0x80 != 0,
        seq: u16::from_be_bytes([p[2], p[3]]),
        timestamp: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        ssrc: u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
        payload_at: at,
    })
}

/// The I/O shell: a thread sending an [`AudioSource`]'s packets every 20 ms to the far end's
/// RTP address until stopped. RTP arriving on the socket is read and dropped (audio is not
/// faxed; reading keeps the socket's buffer from filling); anything else stays for whoever
/// reads the socket next (the T.38 session: the same port carries UDPTL after the switch).
pub struct AudioLeg {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl AudioLeg {
    /// Starts sending `source` from `socket` to `remote`.
    pub fn start(
        socket: UdpSocket,
        remote: SocketAddr,
        source: AudioSource,
    ) -> std::io::Result<Self> {
        socket.set_read_timeout(Some(Duration::from_millis(5)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("rtp".into())
            .spawn(move || {
                let started = Instant::now();
                let mut n: u64 = 0;
                let mut buf = [0u8; 1500];
                while !flag.load(Ordering::Relaxed) {
                    // Due times are absolute (start + 20 ms · n): a late wake-up does not
                    // drift the stream; packets more than a second late are skipped.
                    let due = started + PACKET * u32::try_from(n).unwrap_or(u32::MAX);
                    let now = Instant::now();
                    if now >= due {
                        if now - due < Duration::from_secs(1) {
                            // A send error (ICMP unreachable) is not fatal to the call.
                            let _ = socket.send_to(&source.packet(n), remote);
                        }
                        n += 1;
                        continue;
                    }
                    // Sleep by reading: arriving RTP is drained meanwhile. Anything else (the
                    // far end's first UDPTL datagrams, once it switched to T.38) is left in
                    // the socket for the T.38 session, and we just sleep.
                    let wait = (due - now).max(Duration::from_millis(1));
                    let _ = socket.set_read_timeout(Some(wait));
                    match socket.peek_from(&mut buf) {
                        Ok((n, _)) if parse_header(&buf[..n]).is_some() => {
                            let _ = socket.recv_from(&mut buf);
                        }
                        Ok(_) => std::thread::sleep(wait),
                        Err(_) => {}
                    }
                }
                n
            })?;
        Ok(AudioLeg {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops sending; returns how many packet slots passed.
    pub fn stop(mut self) -> u64 {
        self.halt()
    }

    fn halt(&mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or(0)
    }
}

impl Drop for AudioLeg {
    fn drop(&mut self) {
        self.halt();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Power of `freq` in `samples` (Goertzel), normalised by the length.
    fn goertzel(samples: &[i16], freq: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * freq / f64::from(SAMPLE_RATE);
        let coeff = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0, 0.0);
        for &x in samples {
            let s0 = f64::from(x) + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        (s1 * s1 + s2 * s2 - coeff * s1 * s2) / samples.len() as f64
    }

    #[test]
    fn g711_known_code_words() {
        // Zero: µ-law 0xFF (G.711 Table 2, inverted), A-law 0xD5 (Table 1, even bits inverted).
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_alaw(0), 0xD5);
        // Full scale.
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
    }

    #[test]
    fn g711_round_trip_is_within_one_step() {
        // Every code word decodes to a value that encodes back to it, and any sample comes
        // back within its segment's step (logarithmic: relative error ≤ 1/16 plus the bias).
        for c in 0..=255u8 {
            assert_eq!(linear_to_alaw(alaw_to_linear(c)), c, "A-law {c:#x}");
            // µ-law has two zeros (0x7F, 0xFF); both decode to 0, which encodes as 0xFF.
            if c != 0x7F {
                assert_eq!(linear_to_ulaw(ulaw_to_linear(c)), c, "µ-law {c:#x}");
            }
        }
        for s in (i16::MIN..=i16::MAX).step_by(7) {
            let tol = i32::from(s).abs() / 16 + 140;
            let u = i32::from(ulaw_to_linear(linear_to_ulaw(s)));
            let a = i32::from(alaw_to_linear(linear_to_alaw(s)));
            assert!((u - i32::from(s)).abs() <= tol, "µ-law {s} → {u}");
            assert!((a - i32::from(s)).abs() <= tol, "A-law {s} → {a}");
        }
    }

    #[test]
    fn rtp_header_fields_and_wrap() {
        let src = AudioSource::new(
            AudioCodec::Pcma,
            Tone::Silence,
            0xDEAD_BEEF,
            0xFFFF,
            u32::MAX - 100,
        );
        let p0 = src.packet(0);
        assert_eq!(p0.len(), HEADER_LEN + SAMPLES_PER_PACKET);
        let h0 = parse_header(&p0).unwrap();
        assert_eq!(
            (h0.payload_type, h0.marker, h0.seq, h0.ssrc),
            (8, true, 0xFFFF, 0xDEAD_BEEF)
        );
        assert_eq!(h0.payload_at, HEADER_LEN);
        assert!(p0[HEADER_LEN..].iter().all(|&b| b == 0xD5), "A-law silence");
        let h1 = parse_header(&src.packet(1)).unwrap();
        assert_eq!((h1.marker, h1.seq), (false, 0));
        assert_eq!(h1.timestamp, (u32::MAX - 100).wrapping_add(160));
        let u = AudioSource::new(AudioCodec::Pcmu, Tone::Silence, 1, 0, 0).packet(3);
        assert_eq!(u[1], 0);
        assert!(u[HEADER_LEN..].iter().all(|&b| b == 0xFF), "µ-law silence");
    }

    #[test]
    fn parse_header_refuses_what_is_not_rtp() {
        assert_eq!(parse_header(&[]), None);
        assert_eq!(parse_header(&[0x80; 11]), None);
        assert_eq!(parse_header(&[0x40; 20]), None, "version 1");
        // CSRC count beyond the packet, extension length beyond the packet.
        let mut p = vec![0x8F; 20];
        assert_eq!(parse_header(&p), None);
        p[0] = 0x90;
        p[14] = 0xFF;
        assert_eq!(parse_header(&p), None);
    }

    #[test]
    fn audio_leg_sends_consecutive_packets_drops_rtp_and_leaves_udptl() {
        let far = UdpSocket::bind("127.0.0.1:0").unwrap();
        far.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let ours = UdpSocket::bind("127.0.0.1:0").unwrap();
        let ours_addr = ours.local_addr().unwrap();
        let after = ours.try_clone().unwrap();
        let src = AudioSource::new(AudioCodec::Pcmu, Tone::Cng, 42, 100, 0);
        let leg = AudioLeg::start(ours, far.local_addr().unwrap(), src).unwrap();
        let far_rtp = AudioSource::new(AudioCodec::Pcmu, Tone::Silence, 9, 0, 0);
        let mut buf = [0u8; 1500];
        let mut seqs = Vec::new();
        for n in 0..5 {
            // The far end's audio is read and dropped.
            far.send_to(&far_rtp.packet(n), ours_addr).unwrap();
            let (len, from) = far.recv_from(&mut buf).unwrap();
            assert_eq!(from, ours_addr);
            assert_eq!(len, HEADER_LEN + SAMPLES_PER_PACKET);
            let h = parse_header(&buf[..len]).unwrap();
            assert_eq!((h.payload_type, h.ssrc), (0, 42));
            seqs.push(h.seq);
        }
        // A UDPTL datagram (sequence number 0: first octet 0, not RTP version 2) arrives
        // before the switch is seen: it stays for the T.38 session.
        let udptl = [0x00, 0x00, 0x01, 0x80, 0x00];
        far.send_to(&udptl, ours_addr).unwrap();
        // The leg keeps sending meanwhile (two more packets: it looked at the socket since).
        for _ in 0..2 {
            far.recv_from(&mut buf).unwrap();
        }
        assert!(leg.stop() >= 7);
        // In order from the first; a thread stalled over a second skips late slots.
        assert_eq!(seqs[0], 100);
        assert!(seqs.windows(2).all(|w| w[1] > w[0]), "{seqs:?}");
        after
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // RTP that arrived after the leg's last read is the T.38 session's to ignore.
        let mut found = None;
        for _ in 0..10 {
            let (len, _) = after.recv_from(&mut buf).unwrap();
            if parse_header(&buf[..len]).is_none() {
                found = Some(buf[..len].to_vec());
                break;
            }
        }
        assert_eq!(
            found.as_deref(),
            Some(&udptl[..]),
            "the UDPTL datagram is still there"
        );
    }

    #[test]
    fn cng_is_1100_hz_half_a_second_in_three_and_a_half() {
        let src = AudioSource::new(AudioCodec::Pcmu, Tone::Cng, 7, 0, 0);
        let decoded = |n: u64| -> Vec<i16> {
            src.packet(n)[HEADER_LEN..]
                .iter()
                .map(|&c| ulaw_to_linear(c))
                .collect()
        };
        let cycle = CNG_ON_PACKETS + CNG_OFF_PACKETS;
        assert_eq!(cycle * PACKET.as_millis() as u64, 3500);
        for n in [0, 10, CNG_ON_PACKETS - 1, cycle, cycle + 24] {
            let s = decoded(n);
            let at = goertzel(&s, CNG_HZ);
            // Off-frequency energy (the tolerance is ±38 Hz, so 1300 Hz is well outside).
            let off = goertzel(&s, 1300.0);
            assert!(
                at > 100.0 * off,
                "packet {n}: 1100 Hz {at} vs 1300 Hz {off}"
            );
        }
        for n in [CNG_ON_PACKETS, CNG_ON_PACKETS + 80, cycle - 1] {
            assert!(decoded(n).iter().all(|&s| s == 0), "packet {n} is silence");
        }
    }
}
