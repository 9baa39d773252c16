//! A lossy UDP relay on loopback for the T.38 tests (issue 17): it stands between two UDPTL
//! endpoints A and B, each of which sends to the relay's socket meant for it, and drops a
//! deterministic fraction of the datagrams, per direction.
//!
//! The fraction is exact, not merely expected: in every block of 100 datagrams a direction
//! drops exactly `percent` of them, at positions a seeded PRNG picks. So "10 % loss" is 10 %
//! in every run, and the same seed drops the same positions of the same datagram sequence.
//!
//! Use with `#[path = "common/udptl_relay.rs"] mod udptl_relay;`. The relay stops on drop and
//! after its lifetime in any case (its threads poll a stop flag every 50 ms).
#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Loss per direction, in percent (0..=100).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loss {
    /// Of the datagrams A sends to B.
    pub a_to_b: u32,
    /// Of the datagrams B sends to A.
    pub b_to_a: u32,
}

impl Loss {
    /// The same loss both ways.
    pub fn both(percent: u32) -> Loss {
        Loss {
            a_to_b: percent,
            b_to_a: percent,
        }
    }
}

/// What one direction did.
#[derive(Debug, Default)]
struct Counters {
    forwarded: AtomicU64,
    dropped: AtomicU64,
    foreign: AtomicU64,
    /// Every datagram received from the endpoint (dropped or not), in order, up to
    /// [`CAPTURE_LIMIT`]: what a test decodes with another implementation.
    captured: Mutex<Vec<Vec<u8>>>,
}

/// Most datagrams kept per direction (a 3-page fax is a few hundred).
pub const CAPTURE_LIMIT: usize = 20_000;

/// Counts for both directions at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RelayStats {
    /// A → B datagrams passed on.
    pub a_to_b_forwarded: u64,
    /// A → B datagrams dropped.
    pub a_to_b_dropped: u64,
    /// B → A datagrams passed on.
    pub b_to_a_forwarded: u64,
    /// B → A datagrams dropped.
    pub b_to_a_dropped: u64,
    /// Datagrams from neither endpoint, ignored.
    pub foreign: u64,
}

/// A rewrite applied to each forwarded datagram of one direction (e.g. a test's translation
/// between two readings of the spec, to show what one difference alone changes).
pub type Rewrite = Arc<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

/// The running relay.
pub struct Relay {
    for_a: SocketAddr,
    for_b: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    ab: Arc<Counters>,
    ba: Arc<Counters>,
}

/// SplitMix64: small, seedable, good enough to pick drop positions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Which of the next 100 datagrams to drop: exactly `percent` of them.
fn drop_block(rng: &mut Rng, percent: u32) -> [bool; 100] {
    let mut idx: [u8; 100] = std::array::from_fn(|i| i as u8);
    // Partial Fisher–Yates: the first `percent` entries become a uniform random subset.
    let k = percent.min(100) as usize;
    for i in 0..k {
        let j = i + (rng.next() % (100 - i) as u64) as usize;
        idx.swap(i, j);
    }
    let mut out = [false; 100];
    for &i in &idx[..k] {
        out[i as usize] = true;
    }
    out
}

impl Relay {
    /// Starts a relay between endpoint `a` and endpoint `b` (their own addresses). A must
    /// send to [`Relay::for_a`], B to [`Relay::for_b`]. Lives at most `lifetime`.
    pub fn start(a: SocketAddr, b: SocketAddr, loss: Loss, seed: u64, lifetime: Duration) -> Relay {
        Relay::start_rewriting(a, b, loss, seed, lifetime, None, None)
    }

    /// [`Relay::start`], with each direction's forwarded datagrams (A → B, B → A) rewritten.
    pub fn start_rewriting(
        a: SocketAddr,
        b: SocketAddr,
        loss: Loss,
        seed: u64,
        lifetime: Duration,
        a_to_b: Option<Rewrite>,
        b_to_a: Option<Rewrite>,
    ) -> Relay {
        let sock_a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sock_b = UdpSocket::bind("127.0.0.1:0").unwrap();
        for s in [&sock_a, &sock_b] {
            s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        }
        let for_a = sock_a.local_addr().unwrap();
        let for_b = sock_b.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let ab = Arc::new(Counters::default());
        let ba = Arc::new(Counters::default());
        let deadline = Instant::now() + lifetime;
        let sock_a = Arc::new(sock_a);
        let sock_b = Arc::new(sock_b);
        let mut threads = Vec::new();
        // A → B: received on A's socket, sent from B's socket (B sees the relay as its peer).
        for (rx, tx, from, to, percent, counters, seed, rewrite) in [
            (
                sock_a.clone(),
                sock_b.clone(),
                a,
                b,
                loss.a_to_b,
                ab.clone(),
                seed,
                a_to_b,
            ),
            (
                sock_b.clone(),
                sock_a.clone(),
                b,
                a,
                loss.b_to_a,
                ba.clone(),
                seed ^ 0xA5A5_A5A5_5A5A_5A5A,
                b_to_a,
            ),
        ] {
            let stop = stop.clone();
            threads.push(std::thread::spawn(move || {
                let mut rng = Rng(seed);
                let mut block = drop_block(&mut rng, percent);
                let mut n = 0usize;
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let Ok((len, src)) = rx.recv_from(&mut buf) else {
                        continue;
                    };
                    if src != from {
                        counters.foreign.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    {
                        let mut c = counters.captured.lock().unwrap();
                        if c.len() < CAPTURE_LIMIT {
                            c.push(buf[..len].to_vec());
                        }
                    }
                    if block[n] {
                        counters.dropped.fetch_add(1, Ordering::Relaxed);
                    } else {
                        // A send error (the far end not bound yet) is a lost datagram, as on
                        // a network.
                        let _ = match &rewrite {
                            Some(f) => tx.send_to(&f(&buf[..len]), to),
                            None => tx.send_to(&buf[..len], to),
                        };
                        counters.forwarded.fetch_add(1, Ordering::Relaxed);
                    }
                    n += 1;
                    if n == 100 {
                        n = 0;
                        block = drop_block(&mut rng, percent);
                    }
                }
            }));
        }
        Relay {
            for_a,
            for_b,
            stop,
            threads,
            ab,
            ba,
        }
    }

    /// The address endpoint A sends to.
    pub fn for_a(&self) -> SocketAddr {
        self.for_a
    }

    /// The address endpoint B sends to.
    pub fn for_b(&self) -> SocketAddr {
        self.for_b
    }

    /// The datagrams each endpoint sent so far (A's, B's), dropped ones included.
    pub fn captured(&self) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        (
            self.ab.captured.lock().unwrap().clone(),
            self.ba.captured.lock().unwrap().clone(),
        )
    }

    /// The counts so far.
    pub fn stats(&self) -> RelayStats {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RelayStats {
            a_to_b_forwarded: l(&self.ab.forwarded),
            a_to_b_dropped: l(&self.ab.dropped),
            b_to_a_forwarded: l(&self.ba.forwarded),
            b_to_a_dropped: l(&self.ba.dropped),
            foreign: l(&self.ab.foreign) + l(&self.ba.foreign),
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_block_drops_exactly_the_fraction() {
        let mut rng = Rng(7);
        for percent in [0, 2, 10, 100] {
            for _ in 0..50 {
                let b = drop_block(&mut rng, percent);
                assert_eq!(b.iter().filter(|&&d| d).count(), percent as usize);
            }
        }
    }
}
