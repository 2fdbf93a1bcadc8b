//! The one rule by which a service's parts run and stop: every part runs as
//! a task of one [`JoinSet`], all watching one token; the first server to
//! end (for any reason), a part that panics, or the signal cancels the
//! token, and then every part has the grace period to finish.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::anyhow;
use futures::future::BoxFuture;
use tokio::task::{Id, JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

/// How long past the grace period the parts may take to end: each server
/// drains for the grace period itself, and then returns.
pub const DRAIN_MARGIN: Duration = Duration::from_millis(500);

/// What a part's end means for the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A server (or a consumer): the service runs as long as it does, so
    /// its end, whatever the reason, stops every other part.
    Server,
    /// Background work that may finish on its own (migrations, an index):
    /// its end stops nothing, unless it panics.
    Task,
}

type Run = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, anyhow::Result<()>> + Send>;

/// One part of a service, not yet started.
pub struct Part {
    pub name: &'static str,
    pub kind: Kind,
    pub run: Run,
}

impl Part {
    pub fn new<F, Fut>(name: &'static str, kind: Kind, run: F) -> Self
    where
        F: FnOnce(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        Self {
            name,
            kind,
            run: Box::new(move |stop| Box::pin(run(stop))),
        }
    }
}

/// Runs `parts` until `shutdown` is cancelled or a server ends, then gives
/// every part `grace` (and [`DRAIN_MARGIN`]) to finish and aborts the rest.
///
/// The result is the service's exit rule: `Ok` only when the service was
/// asked to stop and every part ended cleanly in time; otherwise the first
/// failure: a part's error, a panic, a server that ended by itself, or
/// parts still running after the grace period.
pub async fn supervise(
    parts: Vec<Part>,
    shutdown: CancellationToken,
    grace: Duration,
) -> anyhow::Result<()> {
    let stop = shutdown.child_token();
    let mut set = JoinSet::new();
    let mut running: HashMap<Id, (&'static str, Kind)> = HashMap::new();
    for part in parts {
        let handle = set.spawn((part.run)(stop.clone()));
        running.insert(handle.id(), (part.name, part.kind));
    }
    let mut failure = None;
    while !stop.is_cancelled() {
        let joined = tokio::select! {
            () = stop.cancelled() => break,
            joined = set.join_next_with_id() => joined,
        };
        let Some(joined) = joined else { break };
        let (name, kind) = ended(&mut running, &joined);
        let outcome = outcome(name, joined);
        match (outcome, kind) {
            (Ok(()), Kind::Task) => tracing::debug!(part = name, "finished"),
            (Ok(()), Kind::Server) if shutdown.is_cancelled() => {}
            (Ok(()), Kind::Server) => {
                failure.get_or_insert(anyhow!("{name} stopped by itself"));
            }
            (Err(e), _) => {
                failure.get_or_insert(e);
            }
        }
        if kind == Kind::Server || failure.is_some() {
            stop.cancel();
        }
    }
    if let Some(e) = &failure {
        tracing::error!(error = format!("{e:#}"), "stopping every part");
    }

    let deadline = tokio::time::Instant::now() + grace + DRAIN_MARGIN;
    loop {
        match tokio::time::timeout_at(deadline, set.join_next_with_id()).await {
            Ok(None) => break,
            Ok(Some(joined)) => {
                let (name, _) = ended(&mut running, &joined);
                if let Err(e) = outcome(name, joined) {
                    failure.get_or_insert(e);
                }
            }
            Err(_) => {
                let mut late: Vec<_> = running.values().map(|(name, _)| *name).collect();
                late.sort_unstable();
                set.abort_all();
                tracing::error!(parts = ?late, grace_ms = grace.as_millis() as u64, "parts did not stop in time; aborted");
                failure.get_or_insert(anyhow!(
                    "{} did not stop within {} ms",
                    late.join(", "),
                    grace.as_millis()
                ));
                break;
            }
        }
    }
    failure.map_or(Ok(()), Err)
}

type Joined = Result<(Id, anyhow::Result<()>), JoinError>;

fn ended(running: &mut HashMap<Id, (&'static str, Kind)>, joined: &Joined) -> (&'static str, Kind) {
    let id = match joined {
        Ok((id, _)) => *id,
        Err(e) => e.id(),
    };
    running.remove(&id).unwrap_or(("a part", Kind::Task))
}

/// A part's end as its result, its name in the error.
fn outcome(name: &'static str, joined: Joined) -> anyhow::Result<()> {
    match joined {
        Ok((_, Ok(()))) => Ok(()),
        Ok((_, Err(e))) => {
            tracing::error!(part = name, error = format!("{e:#}"), "failed");
            Err(e.context(format!("{name} failed")))
        }
        Err(e) if e.is_panic() => Err(anyhow!("{name} panicked")),
        Err(_) => Err(anyhow!("{name} was cancelled")),
    }
}
