//! PURE: the per-client message rate (`smtp.max_messages_per_minute`), a token bucket per
//! client address.
//!
//! Each client may start `per_minute` messages in a burst, then one every `60 s / per_minute`
//! as its bucket refills. The bucket is kept in its virtual-scheduling form (the generic cell
//! rate algorithm of ITU-T I.371 Annex A, the same token bucket with one instant per client
//! instead of a level and a time): `tat`, the instant at which the client's bucket would be
//! full again. A message at `now` fits when `tat − τ ≤ now`, with the burst tolerance
//! `τ = (per_minute − 1) · T`; charging it moves `tat` to `max(tat, now) + T`.
//!
//! A client is its IP address; IPv6 clients by their /64 (RFC 4291 §2.5.4: a /64 is one
//! link's prefix, and one host picks any of its 2^64 addresses at will, RFC 8981).
//!
//! Memory is bounded: at most `max_clients` buckets are kept. A bucket whose `tat` has passed
//! is full, the same as no entry, so such entries are dropped first; when every kept bucket is
//! still draining, the one nearest to full (smallest `tat`) is forgotten. An attacker with many
//! addresses therefore cannot grow the map, and the buckets it pushes out are those nearest to
//! full — the ones forgetting favours least; a client that is flooding keeps its bucket. Time is an argument everywhere;
//! the listener passes `Instant::now()`.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

/// Buckets kept at most (ours): about 100 octets each, so the map stays under a few MiB
/// whatever number of addresses a flood comes from.
pub const MAX_CLIENTS: usize = 16_384;

/// The client an address belongs to: IPv4 (also IPv4-mapped IPv6) as is, IPv6 by its /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// The message rate of every client seen lately.
#[derive(Debug, Clone)]
pub struct MessageRate {
    /// Emission interval `T`; `None`: no limit.
    interval: Option<Duration>,
    /// Burst tolerance `τ = (per_minute − 1) · T`.
    tolerance: Duration,
    max_clients: usize,
    /// `tat` per client.
    tat: HashMap<IpAddr, Instant>,
    /// The same entries ordered by `tat`: the ones to drop first come first.
    by_tat: BTreeSet<(Instant, IpAddr)>,
}

impl MessageRate {
    /// `per_minute` messages per client per minute (0: no limit), at most `max_clients`
    /// buckets kept (at least 1).
    pub fn new(per_minute: u32, max_clients: usize) -> MessageRate {
        let interval = (per_minute > 0).then(|| Duration::from_secs(60) / per_minute);
        MessageRate {
            interval,
            tolerance: interval.map_or(Duration::ZERO, |t| t * per_minute.saturating_sub(1)),
            max_clients: max_clients.max(1),
            tat: HashMap::new(),
            by_tat: BTreeSet::new(),
        }
    }

    /// When the client of `ip` may start its next message: `None` if it may now, else the
    /// instant its bucket holds a token again (always after `now`).
    pub fn ready_at(&self, ip: IpAddr, now: Instant) -> Option<Instant> {
        self.interval?;
        let tat = *self.tat.get(&client_key(ip))?;
        let ready = tat.checked_sub(self.tolerance).unwrap_or(now);
        (ready > now).then_some(ready)
    }

    /// Charges one message to the client of `ip` at `now`. Always recorded, even past the
    /// limit (messages started on several connections at once are all counted), so the
    /// client waits the longer for them.
    pub fn charge(&mut self, ip: IpAddr, now: Instant) {
        let Some(interval) = self.interval else {
            return;
        };
        self.forget_full(now);
        let key = client_key(ip);
        let old = self.tat.get(&key).copied();
        if let Some(old) = old {
            self.by_tat.remove(&(old, key));
        } else if self.tat.len() >= self.max_clients
            && let Some(first) = self.by_tat.pop_first()
        {
            // Every bucket kept is still draining: forget the one nearest to full.
            self.tat.remove(&first.1);
        }
        let tat = old.map_or(now, |t| t.max(now)) + interval;
        self.tat.insert(key, tat);
        self.by_tat.insert((tat, key));
    }

    /// Buckets kept now.
    pub fn clients(&self) -> usize {
        self.tat.len()
    }

    /// Drops the buckets that are full again at `now` (the same as no entry).
    fn forget_full(&mut self, now: Instant) {
        while let Some(&(t, key)) = self.by_tat.first() {
            if t > now {
                break;
            }
            self.by_tat.pop_first();
            self.tat.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Charges at `now` while the client may send; returns how many fitted (bounded).
    fn burst(r: &mut MessageRate, a: IpAddr, now: Instant) -> u32 {
        let mut n = 0;
        while r.ready_at(a, now).is_none() && n < 10_000 {
            r.charge(a, now);
            n += 1;
        }
        n
    }

    #[test]
    fn a_full_bucket_takes_a_burst_then_one_per_interval() {
        let t0 = Instant::now();
        let mut r = MessageRate::new(60, 100);
        let a = ip("192.0.2.1");
        assert_eq!(burst(&mut r, a, t0), 60);
        // The 61st waits one interval (1 s), not a whole minute.
        assert_eq!(r.ready_at(a, t0), Some(t0 + Duration::from_secs(1)));
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(r.ready_at(a, t1), None);
        assert_eq!(burst(&mut r, a, t1), 1);
        // After a quiet minute the whole burst is back, and the bucket is forgotten.
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!(burst(&mut r, ip("192.0.2.9"), t2), 60);
        assert_eq!(r.clients(), 1, "the full bucket was dropped");
        assert_eq!(burst(&mut r, a, t2), 60);
    }

    #[test]
    fn odd_rates_and_the_exact_boundary() {
        let t0 = Instant::now();
        let mut r = MessageRate::new(7, 10);
        let a = ip("198.51.100.7");
        assert_eq!(burst(&mut r, a, t0), 7);
        let ready = r.ready_at(a, t0).unwrap();
        assert_eq!(ready, t0 + Duration::from_secs(60) / 7);
        assert!(r.ready_at(a, ready - Duration::from_nanos(1)).is_some());
        assert_eq!(r.ready_at(a, ready), None);
        // One per minute: no burst beyond the one message.
        let mut one = MessageRate::new(1, 10);
        assert_eq!(burst(&mut one, a, t0), 1);
        assert_eq!(one.ready_at(a, t0), Some(t0 + Duration::from_secs(60)));
    }

    #[test]
    fn zero_is_no_limit_and_keeps_nothing() {
        let t0 = Instant::now();
        let mut r = MessageRate::new(0, 10);
        let a = ip("192.0.2.1");
        for _ in 0..1000 {
            r.charge(a, t0);
        }
        assert_eq!(r.ready_at(a, t0), None);
        assert_eq!(r.clients(), 0);
    }

    #[test]
    fn charges_past_the_limit_push_the_client_back() {
        // Messages started on parallel connections are committed past the limit: each
        // still counts.
        let t0 = Instant::now();
        let mut r = MessageRate::new(60, 10);
        let a = ip("192.0.2.1");
        for _ in 0..63 {
            r.charge(a, t0);
        }
        assert_eq!(r.ready_at(a, t0), Some(t0 + Duration::from_secs(4)));
    }

    #[test]
    fn clients_are_addresses_and_ipv6_slash_64s() {
        assert_eq!(client_key(ip("192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(client_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(
            client_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        let t0 = Instant::now();
        let mut r = MessageRate::new(2, 10);
        assert_eq!(burst(&mut r, ip("2001:db8:1:2::1"), t0), 2);
        // Another address in the same /64 is the same client …
        assert!(r.ready_at(ip("2001:db8:1:2:ffff::9"), t0).is_some());
        // … one in the next /64, or another IPv4 address, is not.
        assert_eq!(r.ready_at(ip("2001:db8:1:3::1"), t0), None);
        assert_eq!(burst(&mut r, ip("192.0.2.1"), t0), 2);
        assert_eq!(burst(&mut r, ip("192.0.2.2"), t0), 2);
        assert!(r.ready_at(ip("::ffff:192.0.2.2"), t0).is_some());
    }

    #[test]
    fn many_addresses_cannot_grow_the_map() {
        let t0 = Instant::now();
        let mut r = MessageRate::new(10, 50);
        let flooder = ip("192.0.2.1");
        assert_eq!(burst(&mut r, flooder, t0), 10);
        // A thousand other addresses, each sending once, slightly later each.
        for i in 0..1000u32 {
            let now = t0 + Duration::from_millis(u64::from(i));
            let a = IpAddr::from(std::net::Ipv4Addr::from(0x0A00_0000 + i));
            r.charge(a, now);
            assert!(r.clients() <= 50, "{} buckets", r.clients());
        }
        assert_eq!(r.clients(), 50);
        // The flooder's bucket drained furthest, so it was never the one forgotten.
        let now = t0 + Duration::from_millis(999);
        assert!(r.ready_at(flooder, now).is_some());
    }
}
