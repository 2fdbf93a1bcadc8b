//! Per-client rate limits (docs/security.md, "Throttling"), on `governor`'s
//! GCRA: each client may make `n` requests a minute, in a burst of up to
//! `n`; past it the answer is 429 with `Retry-After`, and nothing runs.
//!
//! A client is its IP address: the TCP peer's, or, behind a proxy the
//! deployment trusts (`TRUST_FORWARDED_FOR=true`: Caddy, an Ingress), the
//! last address of `X-Forwarded-For`, the one that proxy appended.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::HeaderMap;
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::http::ApiError;

/// How often the limiter forgets clients that are back to a full burst, so
/// a scan from many addresses does not grow it without end.
const FORGET_EVERY: u64 = 4096;

/// One limit, per client.
pub struct PerClient {
    what: &'static str,
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    checks: AtomicU64,
}

impl PerClient {
    /// `per_minute` requests a minute per client for `what` ("logins");
    /// 0 turns the limit off (for load tests only).
    pub fn per_minute(what: &'static str, per_minute: u32) -> Self {
        Self {
            what,
            limiter: NonZeroU32::new(per_minute)
                .map(|n| DefaultKeyedRateLimiter::keyed(Quota::per_minute(n))),
            checks: AtomicU64::new(0),
        }
    }

    /// Counts one request of `client`: `Ok` if it is within the limit, else
    /// the 429 saying how long to wait.
    pub fn check(&self, client: IpAddr) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % FORGET_EVERY == FORGET_EVERY - 1 {
            limiter.retain_recent();
        }
        limiter.check_key(&client).map_err(|not_until| {
            let retry_after = not_until.wait_time_from(limiter.clock().now());
            tracing::warn!(%client, what = self.what, "rate limited");
            ApiError::TooManyRequests {
                message: format!("too many {} from this client; try again later", self.what),
                retry_after,
            }
        })
    }
}

/// The client a request comes from: the TCP peer, or the last
/// `X-Forwarded-For` address when the peer is a trusted proxy.
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trust_forwarded_for: bool) -> IpAddr {
    if trust_forwarded_for {
        let last = headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok());
        if let Some(ip) = last {
            return ip;
        }
    }
    peer.ip()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 4] = [10, 0, 0, 1];

    #[test]
    fn a_client_past_its_burst_is_told_how_long_to_wait() {
        let limit = PerClient::per_minute("logins", 3);
        for _ in 0..3 {
            limit.check(A.into()).unwrap();
        }
        match limit.check(A.into()).unwrap_err() {
            // 3 a minute: the next one in 20 s.
            ApiError::TooManyRequests { retry_after, .. } => {
                assert!(retry_after.as_secs_f64() > 15.0, "{retry_after:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn another_client_is_not_held_up_by_one_past_its_burst() {
        let limit = PerClient::per_minute("logins", 3);
        for _ in 0..4 {
            let _ = limit.check(A.into());
        }
        limit.check([10, 0, 0, 2].into()).unwrap();
    }

    #[test]
    fn a_limit_of_zero_is_no_limit() {
        let off = PerClient::per_minute("logins", 0);
        for _ in 0..100 {
            off.check(A.into()).unwrap();
        }
    }

    #[test]
    fn forwarded_for_counts_only_when_trusted() {
        let peer: SocketAddr = "172.18.0.5:40000".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "1.2.3.4, 203.0.113.9".parse().unwrap());
        assert_eq!(client_ip(peer, &headers, false), peer.ip());
        assert_eq!(
            client_ip(peer, &headers, true),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(peer, &HeaderMap::new(), true), peer.ip());
    }
}
