//! Every replica of a service, each with a client of its own, and the
//! calls spread over them in turn (docs/contracts.md §4, "Balancing").
//!
//! A service is named by one or more `host:port` [`Target`]s (natively a
//! single address or a comma-separated list; in compose, Swarm and
//! Kubernetes a name that resolves to every replica). [`Replicas`] resolves
//! them to every address they have, keeps one client per address (made by
//! the caller's `connect`, which must not dial: a connection is made on
//! first use), and hands out the clients round robin. It resolves again
//! every [`REFRESH_INTERVAL`] (in the background, on the first pick after
//! it), and on the next pick after a caller reports a lost connection
//! ([`Replicas::refresh`]). An address that appears gets a client; one that
//! is gone is dropped from the rotation, and its client ends once the calls
//! that hold it have ended. A name that does not resolve keeps the
//! replicas it had: a DNS hiccup does not empty the rotation.
//!
//! Used by every client of the system's own services: the HTTP clients
//! (`service_kit::upstream::ServiceClient`), the broker's tarpc and gRPC
//! clients of the logger.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// How often the targets are resolved again while calls are made.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5);

/// The longest one resolution may take.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// One `host:port` a service's replicas are found at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// No address is known for a service: its names did not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoReplica(pub String);

impl fmt::Display for NoReplica {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NoReplica {}

type Set<T> = Arc<[(SocketAddr, T)]>;

/// The replicas of one service and a client `T` for each; a cheap handle
/// to share.
pub struct Replicas<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Clone for Replicas<T> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

struct Shared<T> {
    targets: Vec<Target>,
    connect: Box<dyn Fn(SocketAddr) -> T + Send + Sync>,
    live: RwLock<Set<T>>,
    next: AtomicUsize,
    started: Instant,
    /// When the set was last resolved, in milliseconds since `started`;
    /// 0 asks for a resolution on the next pick.
    resolved_at: AtomicU64,
    resolving: AtomicBool,
    interval: Duration,
}

/// One replica's client, picked for a call: the address and the client.
pub struct Picked<T> {
    set: Set<T>,
    index: usize,
}

impl<T> Picked<T> {
    pub fn addr(&self) -> SocketAddr {
        self.set[self.index].0
    }
}

impl<T> Deref for Picked<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.set[self.index].1
    }
}

impl<T: Clone + Send + Sync + 'static> Replicas<T> {
    /// The replicas found at `targets`, each with a client from `connect`.
    /// Nothing is resolved until the first pick.
    pub fn new(
        targets: Vec<Target>,
        connect: impl Fn(SocketAddr) -> T + Send + Sync + 'static,
    ) -> Self {
        Self::with_interval(targets, REFRESH_INTERVAL, connect)
    }

    /// As [`Replicas::new`], resolving again every `interval`.
    pub fn with_interval(
        targets: Vec<Target>,
        interval: Duration,
        connect: impl Fn(SocketAddr) -> T + Send + Sync + 'static,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                targets,
                connect: Box::new(connect),
                live: RwLock::new(Arc::from(Vec::new())),
                next: AtomicUsize::new(0),
                started: Instant::now(),
                resolved_at: AtomicU64::new(0),
                resolving: AtomicBool::new(false),
                interval,
            }),
        }
    }

    /// The next replica's client, in turn. The first pick (and any pick
    /// while no address is known) waits for a resolution; later ones never
    /// wait: a resolution that is due runs beside them.
    pub async fn pick(&self) -> Result<Picked<T>, NoReplica> {
        let shared = &self.shared;
        if shared.is_due() {
            if shared.snapshot().is_empty() {
                shared.resolve().await;
            } else if !shared.resolving.swap(true, Ordering::AcqRel) {
                let shared = shared.clone();
                tokio::spawn(async move {
                    shared.resolve().await;
                    shared.resolving.store(false, Ordering::Release);
                });
            }
        }
        let set = shared.snapshot();
        if set.is_empty() {
            return Err(NoReplica(format!(
                "no address found for {}",
                self.targets_text()
            )));
        }
        let index = shared.next.fetch_add(1, Ordering::Relaxed) % set.len();
        Ok(Picked { set, index })
    }

    /// Resolves again on the next pick: after a lost connection, a replica
    /// may have gone or come.
    pub fn refresh(&self) {
        self.shared.resolved_at.store(0, Ordering::Relaxed);
    }

    /// Takes `addr` out of the rotation (no connection could be made to
    /// it) until a resolution finds it again, and resolves again on the
    /// next pick. The last address is kept: with nothing to call, every
    /// call would fail without trying.
    pub fn forget(&self, addr: SocketAddr) {
        let shared = &self.shared;
        let mut live = shared.live.write().unwrap_or_else(|e| e.into_inner());
        if live.len() > 1 && live.iter().any(|(a, _)| *a == addr) {
            let kept: Vec<(SocketAddr, T)> =
                live.iter().filter(|(a, _)| *a != addr).cloned().collect();
            *live = Arc::from(kept);
            tracing::info!(%addr, "a replica could not be reached; out of the rotation until it resolves again");
        }
        drop(live);
        self.refresh();
    }

    /// The addresses in the rotation now.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.shared.snapshot().iter().map(|(a, _)| *a).collect()
    }

    /// The targets, as configured: `a:1,b:2`.
    pub fn targets_text(&self) -> String {
        let targets: Vec<String> = self.shared.targets.iter().map(Target::to_string).collect();
        targets.join(",")
    }
}

impl<T: Clone> Shared<T> {
    fn snapshot(&self) -> Set<T> {
        self.live.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    fn is_due(&self) -> bool {
        let at = self.resolved_at.load(Ordering::Relaxed);
        at == 0 || self.now_ms().saturating_sub(at) >= self.interval.as_millis() as u64
    }

    /// Resolves every target; on success, the rotation becomes the
    /// addresses found, keeping the clients of those it had.
    async fn resolve(&self) {
        let mut found = BTreeSet::new();
        for target in &self.targets {
            let lookup = tokio::net::lookup_host((target.host.as_str(), target.port));
            match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
                Ok(Ok(addrs)) => found.extend(addrs),
                Ok(Err(e)) => {
                    tracing::warn!(target = %target, error = %e, "could not resolve; keeping the replicas known");
                    self.resolved_at.store(self.now_ms(), Ordering::Relaxed);
                    return;
                }
                Err(_) => {
                    tracing::warn!(target = %target, "resolving timed out; keeping the replicas known");
                    self.resolved_at.store(self.now_ms(), Ordering::Relaxed);
                    return;
                }
            }
        }
        let old = self.snapshot();
        let same = old.len() == found.len() && old.iter().all(|(a, _)| found.contains(a));
        if !same {
            let set: Vec<(SocketAddr, T)> = found
                .into_iter()
                .map(|addr| {
                    let client = old
                        .iter()
                        .find(|(a, _)| *a == addr)
                        .map_or_else(|| (self.connect)(addr), |(_, c)| c.clone());
                    (addr, client)
                })
                .collect();
            tracing::info!(
                replicas = ?set.iter().map(|(a, _)| a).collect::<Vec<_>>(),
                "the replicas changed"
            );
            *self.live.write().unwrap_or_else(|e| e.into_inner()) = Arc::from(set);
        }
        self.resolved_at.store(self.now_ms(), Ordering::Relaxed);
    }
}

/// `host:port[,host:port...]`, each host a name, an IPv4 address or an
/// IPv6 one in brackets; an error names the first entry that is not.
pub fn parse_targets(list: &str) -> Result<Vec<Target>, String> {
    let mut targets = Vec::new();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (host, port) = entry
            .rsplit_once(':')
            .ok_or_else(|| format!("{entry:?} is not host:port"))?;
        let port = port
            .parse()
            .map_err(|_| format!("{entry:?}: {port:?} is not a port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{entry:?} has no host"));
        }
        targets.push(Target {
            host: host.to_owned(),
            port,
        });
    }
    if targets.is_empty() {
        return Err("no host:port given".into());
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(ports: &[u16]) -> Vec<Target> {
        ports
            .iter()
            .map(|&port| Target {
                host: "127.0.0.1".into(),
                port,
            })
            .collect()
    }

    #[tokio::test]
    async fn calls_go_to_every_address_in_turn() {
        let replicas = Replicas::new(local(&[1, 2, 3]), |addr| addr.port());
        let mut counts = [0; 4];
        for _ in 0..300 {
            let picked = replicas.pick().await.unwrap();
            assert_eq!(*picked, picked.addr().port());
            counts[usize::from(*picked)] += 1;
        }
        assert_eq!(counts, [0, 100, 100, 100]);
    }

    #[tokio::test]
    async fn a_name_resolves_to_every_address_it_has_and_each_gets_one_client() {
        let made = Arc::new(AtomicUsize::new(0));
        let count = made.clone();
        let replicas = Replicas::new(
            parse_targets("localhost:7,127.0.0.1:7").unwrap(),
            move |addr| {
                count.fetch_add(1, Ordering::SeqCst);
                addr
            },
        );
        replicas.pick().await.unwrap();
        let addrs = replicas.addrs();
        assert!(addrs.contains(&"127.0.0.1:7".parse().unwrap()), "{addrs:?}");
        assert_eq!(
            addrs.len(),
            addrs.iter().collect::<BTreeSet<_>>().len(),
            "one entry an address"
        );
        assert_eq!(made.load(Ordering::SeqCst), addrs.len());
        replicas.refresh();
        replicas.pick().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            made.load(Ordering::SeqCst),
            addrs.len(),
            "the same addresses keep their clients"
        );
    }

    #[tokio::test]
    async fn a_forgotten_address_is_out_of_the_rotation_until_it_resolves_again() {
        let replicas = Replicas::new(local(&[1, 2]), |addr| addr.port());
        let one: SocketAddr = "127.0.0.1:1".parse().unwrap();
        replicas.pick().await.unwrap();
        replicas.forget(one);
        assert_eq!(replicas.addrs(), ["127.0.0.1:2".parse().unwrap()]);
        // The next pick still goes to what is left, and resolves again
        // beside it: the address is back.
        assert_eq!(*replicas.pick().await.unwrap(), 2);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(replicas.addrs().len(), 2);
        // The last address is never forgotten.
        let single = Replicas::new(local(&[3]), |addr| addr.port());
        single.pick().await.unwrap();
        single.forget("127.0.0.1:3".parse().unwrap());
        assert_eq!(*single.pick().await.unwrap(), 3);
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_a_clear_error() {
        let replicas = Replicas::new(parse_targets("no-such-host.invalid:80").unwrap(), |addr| {
            addr
        });
        let err = replicas.pick().await.err().unwrap();
        assert_eq!(err.0, "no address found for no-such-host.invalid:80");
    }

    #[test]
    fn targets_are_host_port_pairs() {
        assert_eq!(
            parse_targets("a:1, [::1]:2,10.0.0.1:3").unwrap(),
            vec![
                Target {
                    host: "a".into(),
                    port: 1
                },
                Target {
                    host: "::1".into(),
                    port: 2
                },
                Target {
                    host: "10.0.0.1".into(),
                    port: 3
                },
            ]
        );
        assert_eq!(parse_targets("[::1]:2").unwrap()[0].to_string(), "[::1]:2");
        for bad in ["", "a", "a:", "a:x", ":1", "a:70000"] {
            assert!(parse_targets(bad).is_err(), "{bad}");
        }
    }
}
