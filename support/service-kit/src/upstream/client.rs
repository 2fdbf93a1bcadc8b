//! [`ServiceClient`]: the pooled, balanced JSON client itself.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::{StatusCode, Url};
use serde::Serialize;
use tracing::Instrument;

use resilience::Replicas;

use super::{ATTEMPTS, Reply, UpstreamError, client_builder, remaining};
use crate::config::Upstream;
use crate::metrics::{Metrics, Outcome, Recorder};
use crate::telemetry::{self, HeaderInjector};

#[derive(Clone)]
pub struct ServiceClient {
    name: &'static str,
    /// Each replica's base URL.
    replicas: Replicas<Url>,
    http: reqwest::Client,
    timeout: Duration,
    calls: Option<Recorder>,
}

impl ServiceClient {
    /// A client for the service called `name` at `upstream`; each call may
    /// take at most `timeout`, connecting at most 2 s of it.
    pub fn new(name: &'static str, upstream: impl Into<Upstream>, timeout: Duration) -> Self {
        let upstream = upstream.into();
        let template = upstream.url().clone();
        let replicas = if template.scheme() == "https" {
            let by_name = template.clone();
            Replicas::new(upstream.targets(), move |_| by_name.clone())
        } else {
            Replicas::new(upstream.targets(), move |addr| {
                let mut url = template.clone();
                // Infallible for an http URL with a host.
                let _ = url.set_ip_host(addr.ip());
                let _ = url.set_port(Some(addr.port()));
                url
            })
        };
        let http = client_builder()
            .connect_timeout(timeout.min(Duration::from_secs(2)))
            .timeout(timeout)
            .build()
            .expect("a plain-HTTP client with timeouts always builds");
        Self {
            name,
            replicas,
            http,
            timeout,
            calls: None,
        }
    }

    /// Counts every call in `metrics`, as calls to this service over HTTP.
    pub fn with_metrics(mut self, metrics: &Metrics) -> Self {
        self.calls = Some(metrics.calls_to(self.name, "http"));
        self
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// `POST <base><path>` with a JSON body, to the next replica; sent
    /// again, to the one after (up to [`ATTEMPTS`]), when no connection
    /// could be made (nothing was sent, so this is safe for any body).
    pub async fn post<T: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<Reply, UpstreamError> {
        self.post_again_if(path, body, |answer| {
            matches!(answer, Err(UpstreamError::Unreachable(_)))
        })
        .await
    }

    /// `POST`, as [`ServiceClient::post`], sent again, to the next replica
    /// (up to [`ATTEMPTS`]), when it failed on the way (a pooled connection
    /// closed under it as the other side restarted, or none could be made)
    /// or the replica answered 503 (its own dependency is out of reach:
    /// another replica's may not be), for a body the callee stores at most
    /// once whatever the repeats (a log entry with its id). A timeout is
    /// not repeated: the first may still be at work.
    pub async fn post_idempotent<T: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<Reply, UpstreamError> {
        self.post_again_if(path, body, |answer| match answer {
            Ok(reply) => reply.status == StatusCode::SERVICE_UNAVAILABLE,
            Err(e) => matches!(e, UpstreamError::Failed(_) | UpstreamError::Unreachable(_)),
        })
        .await
    }

    async fn post_again_if<T: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &T,
        again: impl Fn(&Result<Reply, UpstreamError>) -> bool,
    ) -> Result<Reply, UpstreamError> {
        let deadline = Instant::now() + self.timeout;
        let post = |left: Duration| async move {
            let (addr, url) = self.url(path).await?;
            self.send("POST", path, self.http.post(url).json(body).timeout(left))
                .await
                .inspect_err(|e| self.failed(addr, e))
        };
        let mut answer = post(self.timeout).await;
        for _ in 1..ATTEMPTS {
            match (&answer, remaining(deadline)) {
                (answered, Some(left)) if again(answered) => {
                    tracing::info!(
                        service = self.name,
                        path,
                        "sending once more, to the next replica"
                    );
                    answer = post(left).await;
                }
                _ => break,
            }
        }
        answer
    }

    /// `GET <base><path_and_query>`, from the next replica; asked again,
    /// of the one after, when it failed on the way.
    pub async fn get(&self, path_and_query: &str) -> Result<Reply, UpstreamError> {
        let path = path_and_query.split('?').next().unwrap_or_default();
        let deadline = Instant::now() + self.timeout;
        let get = |left: Duration| async move {
            let (addr, url) = self.url(path_and_query).await?;
            self.send("GET", path, self.http.get(url).timeout(left))
                .await
                .inspect_err(|e| self.failed(addr, e))
        };
        let mut answer = get(self.timeout).await;
        for _ in 1..ATTEMPTS {
            match (&answer, remaining(deadline)) {
                (Err(UpstreamError::Failed(_) | UpstreamError::Unreachable(_)), Some(left)) => {
                    answer = get(left).await;
                }
                _ => break,
            }
        }
        answer
    }

    /// `path` on the next replica in turn, and the replica's address.
    async fn url(&self, path: &str) -> Result<(SocketAddr, Url), UpstreamError> {
        let base = self
            .replicas
            .pick()
            .await
            .map_err(|e| UpstreamError::Unreachable(self.name).logged(e))?;
        let url = base
            .join(path.trim_start_matches('/'))
            .map_err(|e| UpstreamError::Internal(e.into()))?;
        Ok((base.addr(), url))
    }

    /// After a call to `addr` failed on the way: a replica that could not
    /// be reached leaves the rotation until it resolves again; after a lost
    /// connection the names are resolved again, since a replica may have
    /// gone.
    fn failed(&self, addr: SocketAddr, error: &UpstreamError) {
        match error {
            UpstreamError::Unreachable(_) => self.replicas.forget(addr),
            UpstreamError::Failed(_) => self.replicas.refresh(),
            _ => {}
        }
    }

    /// Sends `request` (`method` `path`, for its span), in a client span
    /// whose trace context it carries, and counts it.
    async fn send(
        &self,
        method: &'static str,
        path: &str,
        mut request: reqwest::RequestBuilder,
    ) -> Result<Reply, UpstreamError> {
        if let Some(id) = crate::request_id::current() {
            request = request.header(crate::request_id::HEADER, id);
        }
        let span = crate::trace_span!(
            "call",
            otel.name = format_args!("{method} {path}"),
            otel.kind = "client",
            peer.service = self.name,
            http.response.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        if telemetry::exporting() {
            let mut headers = reqwest::header::HeaderMap::new();
            telemetry::inject(&span, &mut HeaderInjector(&mut headers));
            request = request.headers(headers);
        }
        let started = Instant::now();
        let reply = self.exchange(request).instrument(span.clone()).await;
        let outcome = match &reply {
            Ok(reply) => Outcome::of_status(reply.status),
            Err(e) => Outcome::of_status(e.status()),
        };
        if let Ok(reply) = &reply {
            span.record("http.response.status_code", reply.status.as_u16());
        }
        if outcome == Outcome::ServerError {
            span.record("otel.status_code", "ERROR");
        }
        if let Some(calls) = &self.calls {
            calls.record(outcome, started.elapsed());
        }
        reply
    }

    async fn exchange(&self, request: reqwest::RequestBuilder) -> Result<Reply, UpstreamError> {
        let response = request.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let envelope = serde_json::from_slice(&body).map_err(|_| {
            UpstreamError::Failed(format!(
                "{} answered {status} without a JSON envelope",
                self.name
            ))
        })?;
        Ok(Reply {
            status,
            envelope,
            retry_after,
        })
    }

    fn transport_error(&self, error: &reqwest::Error) -> UpstreamError {
        // A connection that could not be made in time is a connect error
        // too (nothing was sent): the next replica may answer.
        if error.is_connect() {
            UpstreamError::Unreachable(self.name)
        } else if error.is_timeout() {
            UpstreamError::TimedOut {
                service: self.name,
                limit: self.timeout,
            }
        } else {
            UpstreamError::Failed(format!("{} failed", self.name)).logged(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::upstream::POOL_IDLE_TIMEOUT;

    /// A keep-alive HTTP/1 server that answers every request with the
    /// envelope and never closes a connection itself; counts connections.
    async fn counting_server() -> (Url, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buffer = [0u8; 4096];
                    let body = r#"{"error":false,"message":"ok"}"#;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    // One read per request: a GET's head fits in one.
                    while let Ok(n) = stream.read(&mut buffer).await {
                        if n == 0 || stream.write_all(answer.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        (base, accepted)
    }

    #[tokio::test]
    async fn a_connection_idle_past_the_pool_limit_is_not_reused() {
        let (base, accepted) = counting_server().await;
        let client = ServiceClient::new("counting", base, Duration::from_secs(2));

        for _ in 0..3 {
            assert_eq!(client.get("/").await.unwrap().status, StatusCode::OK);
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "a warm connection is reused"
        );

        tokio::time::sleep(POOL_IDLE_TIMEOUT + Duration::from_millis(500)).await;
        assert_eq!(client.get("/").await.unwrap().status, StatusCode::OK);
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            2,
            "a connection idle for longer than {POOL_IDLE_TIMEOUT:?} is dropped, not reused"
        );
    }

    /// A server that answers every request 503 in the envelope after
    /// `delay`, as a logger whose MongoDB is out of reach does.
    async fn slow_unavailable_server(delay: Duration) -> Url {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buffer = [0u8; 4096];
                    let body = r#"{"error":true,"message":"the store is unavailable"}"#;
                    let answer = format!(
                        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    while let Ok(n) = stream.read(&mut buffer).await {
                        tokio::time::sleep(delay).await;
                        if n == 0 || stream.write_all(answer.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        base
    }

    /// A 503 is sent again, but every send shares the call's one timeout:
    /// three sends of 600 ms each would take 1.8 s; the call ends at its
    /// 1 s, a timeout.
    #[tokio::test]
    async fn sends_again_share_the_call_s_one_timeout() {
        let base = slow_unavailable_server(Duration::from_millis(600)).await;
        let timeout = Duration::from_secs(1);
        let client = ServiceClient::new("slow", base, timeout);
        let started = Instant::now();
        let answer = client.post_idempotent("/log", &serde_json::json!({})).await;
        let took = started.elapsed();
        assert!(
            matches!(answer, Err(UpstreamError::TimedOut { .. })),
            "{answer:?}"
        );
        assert!(took < timeout + Duration::from_millis(400), "took {took:?}");
    }

    #[test]
    fn nothing_remains_of_a_deadline_that_has_passed() {
        assert_eq!(remaining(Instant::now() - Duration::from_millis(1)), None);
        let left = remaining(Instant::now() + Duration::from_secs(5)).unwrap();
        assert!(left > Duration::from_secs(4) && left <= Duration::from_secs(5));
    }
}
