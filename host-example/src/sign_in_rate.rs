//! A per-client rate limit on starting sign-ins, so that one client cannot fill the pending
//! sign-in store (each started sign-in is kept until its callback or its expiry) while others
//! still sign in.
//!
//! A token bucket per client: `burst` sign-ins at once, refilled at `per_minute`. The client is
//! the TCP peer's address (an IPv6 client by its /64, which one host usually holds whole).
//! Behind a reverse proxy every client has the proxy's address: raise the rate there, or
//! disable it (`per_minute = 0`) and limit at the proxy. The table of clients is bounded
//! (`max_clients`): when full, clients whose bucket is full again are forgotten; if none is,
//! a new client is refused until some are (fail closed: memory stays bounded).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The limits of the config file's `[sign_in]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInLimits {
    /// Sign-ins a client may start per minute, on average; 0 disables the limit.
    pub per_minute: u32,
    /// Sign-ins a client may start at once.
    pub burst: u32,
    /// Clients tracked at once.
    pub max_clients: usize,
}

impl Default for SignInLimits {
    /// 60 per minute, bursts of 20, 100,000 clients.
    fn default() -> Self {
        Self {
            per_minute: 60,
            burst: 20,
            max_clients: 100_000,
        }
    }
}

impl SignInLimits {
    /// No limit (tests that start thousands of sign-ins from one address).
    pub const UNLIMITED: SignInLimits = SignInLimits {
        per_minute: 0,
        burst: 0,
        max_clients: 0,
    };
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of the clients seen recently.
pub struct SignInRate {
    limits: SignInLimits,
    clients: Mutex<HashMap<u128, Bucket>>,
}

impl SignInRate {
    /// A limiter with `limits`.
    pub fn new(limits: SignInLimits) -> Self {
        Self {
            limits,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one sign-in from `ip`'s bucket, or says how long until one is available.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        if self.limits.per_minute == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let key = client(ip);
        let mut clients = self.lock();
        if !clients.contains_key(&key) && clients.len() >= self.limits.max_clients {
            self.forget_refilled(&mut clients, now);
            if clients.len() >= self.limits.max_clients {
                return Err(Duration::from_secs(1));
            }
        }
        let burst = f64::from(self.limits.burst.max(1));
        let bucket = clients.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        bucket.tokens = (bucket.tokens + self.refill(now - bucket.at)).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let per_sec = f64::from(self.limits.per_minute) / 60.0;
        Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_sec))
    }

    /// Forgets clients whose bucket is full again (they are as good as new); run by the
    /// broker's maintenance.
    pub fn purge(&self) {
        let mut clients = self.lock();
        self.forget_refilled(&mut clients, Instant::now());
    }

    /// Clients tracked.
    pub fn clients(&self) -> usize {
        self.lock().len()
    }

    fn forget_refilled(&self, clients: &mut HashMap<u128, Bucket>, now: Instant) {
        let burst = f64::from(self.limits.burst.max(1));
        clients.retain(|_, b| b.tokens + self.refill(now - b.at) < burst);
        if clients.len() < clients.capacity() / 4 {
            clients.shrink_to_fit();
        }
    }

    fn refill(&self, elapsed: Duration) -> f64 {
        elapsed.as_secs_f64() * f64::from(self.limits.per_minute) / 60.0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u128, Bucket>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An IPv4 address (also IPv4-mapped), or an IPv6 /64.
fn client(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_bits()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(v4.to_bits()),
            None => v6.to_bits() & !u128::from(u64::MAX),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_burst_then_refusal_with_the_wait_and_other_clients_unaffected() {
        let rate = SignInRate::new(SignInLimits {
            per_minute: 60,
            burst: 3,
            max_clients: 10,
        });
        for _ in 0..3 {
            assert_eq!(rate.check(ip("10.0.0.1")), Ok(()));
        }
        let wait = rate.check(ip("10.0.0.1")).unwrap_err();
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert_eq!(rate.check(ip("10.0.0.2")), Ok(()));
        assert_eq!(rate.check(ip("::ffff:10.0.0.3")), Ok(()));
    }

    #[test]
    fn an_ipv6_client_is_its_slash_64() {
        assert_eq!(client(ip("2001:db8::1")), client(ip("2001:db8::ffff:2")));
        assert_ne!(client(ip("2001:db8::1")), client(ip("2001:db8:0:1::1")));
        assert_eq!(client(ip("::ffff:127.0.0.1")), client(ip("127.0.0.1")));
    }

    #[test]
    fn the_table_is_bounded() {
        let rate = SignInRate::new(SignInLimits {
            per_minute: 1,
            burst: 1,
            max_clients: 2,
        });
        assert_eq!(rate.check(ip("10.0.0.1")), Ok(()));
        assert_eq!(rate.check(ip("10.0.0.2")), Ok(()));
        assert!(
            rate.check(ip("10.0.0.3")).is_err(),
            "full of clients still limited"
        );
        assert_eq!(rate.clients(), 2);
        let open = SignInRate::new(SignInLimits::UNLIMITED);
        for _ in 0..100 {
            assert_eq!(open.check(ip("10.0.0.1")), Ok(()));
        }
        assert_eq!(open.clients(), 0);
    }
}
