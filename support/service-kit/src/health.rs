//! Liveness and readiness: `GET /healthz` (and its alias `/ping`) answers 200
//! while the process runs, whatever its dependencies do; `GET /readyz`
//! answers 200 only while every dependency the service cannot work without
//! answers, else 503 naming the ones that failed. A dependency that only
//! some of the service's work needs ([`Readiness::with_optional`]) is
//! reported in `data` and in the message ("degraded"), but keeps the
//! service ready: it still does the rest of its work.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use futures::future::{BoxFuture, join_all};
use proto::http::Envelope;
use reqwest::Url;

/// How long one readiness check may take before it counts as failed.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// One dependency a service needs in order to do its work.
pub trait ReadinessCheck: Send + Sync {
    /// The dependency's name, as reported by `/readyz`.
    fn name(&self) -> &str;
    /// `Ok` while the dependency answers; `Err` says what is wrong.
    fn check(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// The set of checks behind `/readyz`.
#[derive(Clone, Default)]
pub struct Readiness {
    /// Each check, and whether the service is unready while it fails.
    checks: Vec<(Arc<dyn ReadinessCheck>, bool)>,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    /// A dependency the service cannot do its main job without.
    pub fn with(mut self, check: impl ReadinessCheck + 'static) -> Self {
        self.checks.push((Arc::new(check), true));
        self
    }

    /// A dependency only part of the service's work needs: reported, but
    /// the service stays ready while it is down.
    pub fn with_optional(mut self, check: impl ReadinessCheck + 'static) -> Self {
        self.checks.push((Arc::new(check), false));
        self
    }

    /// Runs every check at once, each bounded by [`CHECK_TIMEOUT`].
    pub async fn report(&self) -> Report {
        let results = join_all(self.checks.iter().map(|(c, required)| async move {
            let outcome = match tokio::time::timeout(CHECK_TIMEOUT, c.check()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(format!("no answer within {} ms", CHECK_TIMEOUT.as_millis())),
            };
            (c.name().to_owned(), *required, outcome)
        }))
        .await;
        let mut report = Report::default();
        for (name, required, outcome) in results {
            if outcome.is_err() {
                if required {
                    report.unavailable.push(name.clone());
                } else {
                    report.degraded.push(name.clone());
                }
            }
            report
                .states
                .insert(name, outcome.err().unwrap_or_else(|| "ok".into()));
        }
        report
    }
}

/// What `/readyz` found.
#[derive(Debug, Default)]
pub struct Report {
    /// Each dependency's state: `"ok"` or what is wrong.
    pub states: BTreeMap<String, String>,
    /// Required dependencies that failed: the service is not ready.
    pub unavailable: Vec<String>,
    /// Optional dependencies that failed: ready, but those paths answer 503.
    pub degraded: Vec<String>,
}

impl Report {
    pub fn ready(&self) -> bool {
        self.unavailable.is_empty()
    }
}

/// The liveness probe's path (also what `<binary> healthcheck` asks).
pub const LIVENESS: &str = "/healthz";

/// The probes' paths: liveness, its alias, readiness. Their requests are
/// logged at debug level (`crate::http::conventions`).
pub const PROBES: [&str; 3] = [LIVENESS, "/ping", "/readyz"];

/// The routes `/healthz`, `/ping` and `/readyz`.
pub fn routes(readiness: Readiness) -> Router {
    let [healthz, ping, readyz] = PROBES;
    Router::new()
        .route(healthz, get(alive))
        .route(ping, get(alive))
        .route(readyz, get(ready))
        .with_state(readiness)
}

async fn alive() -> Json<Envelope<()>> {
    Json(Envelope::ok("alive"))
}

async fn ready(
    State(readiness): State<Readiness>,
) -> (StatusCode, Json<Envelope<BTreeMap<String, String>>>) {
    let report = readiness.report().await;
    if report.ready() {
        let message = if report.degraded.is_empty() {
            "ready".to_owned()
        } else {
            format!(
                "ready; degraded: {} unavailable",
                report.degraded.join(", ")
            )
        };
        (
            StatusCode::OK,
            Json(Envelope::with_data(message, report.states)),
        )
    } else {
        let message = format!("not ready: {} unavailable", report.unavailable.join(", "));
        let mut envelope = Envelope::with_data(message, report.states);
        envelope.error = true;
        (StatusCode::SERVICE_UNAVAILABLE, Json(envelope))
    }
}

/// Ready while another service's `/readyz` answers 2xx: that service can
/// do its own job (the logger reaches MongoDB, mail its SMTP server), not
/// merely run. With several URLs (replicas natively), while any of them
/// does; a name is asked once, of whichever replica answers it.
pub struct HttpCheck {
    name: String,
    urls: Vec<Url>,
    client: reqwest::Client,
}

impl HttpCheck {
    /// Checks `<base>/readyz` of each of `upstream`'s URLs.
    pub fn readyz(name: impl Into<String>, upstream: &crate::config::Upstream) -> Self {
        let urls = upstream
            .urls()
            .iter()
            .map(|base| base.join("readyz").unwrap_or_else(|_| base.clone()))
            .collect();
        // Probes come every few seconds, near the server's 10 s idle
        // close: the same pool rule as every other client.
        let client = crate::upstream::client_builder()
            .timeout(CHECK_TIMEOUT)
            .build()
            .expect("a client with no TLS and a timeout always builds");
        Self {
            name: name.into(),
            urls,
            client,
        }
    }
}

impl ReadinessCheck for HttpCheck {
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let mut failure = String::new();
            for url in &self.urls {
                match self.client.get(url.clone()).send().await {
                    Ok(response) if response.status().is_success() => return Ok(()),
                    Ok(response) => failure = format!("{url} answered {}", response.status()),
                    Err(e) => failure = format!("{url}: {e}"),
                }
            }
            Err(failure)
        })
    }
}

/// Ready while a TCP connection to `host:port` opens (for dependencies that
/// a service reaches through a client of its own, e.g. a database).
pub struct TcpCheck {
    name: String,
    address: String,
}

impl TcpCheck {
    pub fn new(name: impl Into<String>, host: &str, port: u16) -> Self {
        Self {
            name: name.into(),
            address: format!("{host}:{port}"),
        }
    }

    /// The host and port of a URL such as `amqp://guest:guest@127.0.0.1:5672/%2f`.
    pub fn for_url(name: impl Into<String>, url: &Url, default_port: u16) -> Self {
        let host = url
            .host_str()
            .unwrap_or("127.0.0.1")
            .trim_start_matches('[')
            .trim_end_matches(']');
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        Self::new(name, &host, url.port().unwrap_or(default_port))
    }
}

impl ReadinessCheck for TcpCheck {
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            tokio::net::TcpStream::connect(&self.address)
                .await
                .map(drop)
                .map_err(|e| format!("{}: {e}", self.address))
        })
    }
}
