//! Liveness and readiness: `GET /healthz` (and its alias `/ping`) answers 200
//! while the process runs; `GET /readyz` answers 200 only while every
//! dependency check passes, else 503 naming the ones that failed.

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
    checks: Vec<Arc<dyn ReadinessCheck>>,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, check: impl ReadinessCheck + 'static) -> Self {
        self.checks.push(Arc::new(check));
        self
    }

    /// Runs every check at once, each bounded by [`CHECK_TIMEOUT`]; returns
    /// each dependency's state (`"ok"` or the error) and whether all passed.
    pub async fn report(&self) -> (bool, BTreeMap<String, String>) {
        let results = join_all(self.checks.iter().map(|c| async move {
            let outcome = match tokio::time::timeout(CHECK_TIMEOUT, c.check()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(format!("no answer within {} ms", CHECK_TIMEOUT.as_millis())),
            };
            (c.name().to_owned(), outcome)
        }))
        .await;
        let all_ok = results.iter().all(|(_, r)| r.is_ok());
        let states = results
            .into_iter()
            .map(|(name, r)| (name, r.err().unwrap_or_else(|| "ok".into())))
            .collect();
        (all_ok, states)
    }
}

/// The routes `/healthz`, `/ping` and `/readyz`.
pub fn routes(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(alive))
        .route("/ping", get(alive))
        .route("/readyz", get(ready))
        .with_state(readiness)
}

async fn alive() -> Json<Envelope<()>> {
    Json(Envelope::ok("alive"))
}

async fn ready(
    State(readiness): State<Readiness>,
) -> (StatusCode, Json<Envelope<BTreeMap<String, String>>>) {
    let (all_ok, states) = readiness.report().await;
    if all_ok {
        (StatusCode::OK, Json(Envelope::with_data("ready", states)))
    } else {
        let failed: Vec<&str> = states
            .iter()
            .filter(|(_, s)| *s != "ok")
            .map(|(n, _)| n.as_str())
            .collect();
        let message = format!("not ready: {} unavailable", failed.join(", "));
        let mut envelope = Envelope::with_data(message, states);
        envelope.error = true;
        (StatusCode::SERVICE_UNAVAILABLE, Json(envelope))
    }
}

/// Ready while another service's `/healthz` answers 2xx.
pub struct HttpCheck {
    name: String,
    url: Url,
    client: reqwest::Client,
}

impl HttpCheck {
    /// Checks `<base>/healthz`.
    pub fn healthz(name: impl Into<String>, base: &Url) -> Self {
        let url = base.join("healthz").unwrap_or_else(|_| base.clone());
        let client = reqwest::Client::builder()
            .timeout(CHECK_TIMEOUT)
            .build()
            .expect("a client with no TLS and a timeout always builds");
        Self {
            name: name.into(),
            url,
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
            let response = self
                .client
                .get(self.url.clone())
                .send()
                .await
                .map_err(|e| format!("{}: {e}", self.url))?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(format!("{} answered {}", self.url, response.status()))
            }
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
