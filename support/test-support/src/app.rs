//! [`TestApp`]: one service running in-process on a random port, and the
//! HTTP client that talks to it.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use proto::http::{Envelope, LogEntry};
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::Value;
use service_kit::config::Url;
use service_kit::shutdown::CancellationToken;
use tokio::task::JoinHandle;

/// A running service: where it listens, a client for it, and the handle to
/// stop it. Dropping it begins the service's shutdown.
pub struct TestApp {
    addr: SocketAddr,
    /// A client with a 15 s timeout that sends a valid access token
    /// ([`crate::access_token`]), for requests the helpers below do not
    /// cover (raw bodies, headers, other methods). A test of what happens
    /// without a token uses a client of its own.
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// Runs `run` (a service's `run(shutdown)`) on a task; the service
    /// listens for HTTP on `port`.
    pub fn spawn<F>(port: u16, run: impl FnOnce(CancellationToken) -> F) -> Self
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(shutdown.clone()));
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .default_headers(signed_in())
                .build()
                .expect("a reqwest client"),
            shutdown,
            task: Some(task),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>/`.
    pub fn base_url(&self) -> Url {
        Url::parse(&format!("http://{}/", self.addr)).expect("a local URL")
    }

    /// The URL of `path` (which starts with `/`) on this service.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `GET path`: the status and the envelope.
    pub async fn get(&self, path: &str) -> (StatusCode, Envelope) {
        let (status, body) = self.get_json(path).await;
        (status, envelope(body))
    }

    /// `POST path` with `body` as JSON: the status and the envelope.
    pub async fn post(&self, path: &str, body: impl Serialize) -> (StatusCode, Envelope) {
        let (status, body) = self.post_json(path, body).await;
        (status, envelope(body))
    }

    /// `PUT path` with `body` as JSON: the status and the envelope.
    pub async fn put(&self, path: &str, body: impl Serialize) -> (StatusCode, Envelope) {
        let (status, body) = read(self.client.put(self.url(path)).json(&body)).await;
        (status, envelope(body))
    }

    /// `DELETE path`: the status and the envelope.
    pub async fn delete(&self, path: &str) -> (StatusCode, Envelope) {
        let (status, body) = read(self.client.delete(self.url(path))).await;
        (status, envelope(body))
    }

    /// `GET path`: the status and the body exactly as sent, for tests of
    /// the wire shape.
    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        read(self.client.get(self.url(path))).await
    }

    /// `POST path` with `body` as JSON: the status and the body exactly as
    /// sent.
    pub async fn post_json(&self, path: &str, body: impl Serialize) -> (StatusCode, Value) {
        read(self.client.post(self.url(path)).json(&body)).await
    }

    /// `POST path` as a form or `fetch` on the page at `origin` sends it
    /// without a CORS preflight: `body` as `text/plain`, with the page's
    /// `Origin`. The status and the envelope.
    pub async fn post_from_page(
        &self,
        origin: &str,
        path: &str,
        body: impl Serialize,
    ) -> (StatusCode, Envelope) {
        let request = self
            .client
            .post(self.url(path))
            .header(reqwest::header::ORIGIN, origin)
            .header(reqwest::header::CONTENT_TYPE, "text/plain")
            .body(serde_json::to_string(&body).expect("a JSON body"));
        let (status, body) = read(request).await;
        (status, envelope(body))
    }

    /// `GET /logs<query>` (the logger's or the broker's), which must
    /// succeed: the entries listed.
    pub async fn list_logs(&self, query: &str) -> Vec<LogEntry> {
        let (status, envelope) = self.get(&format!("/logs{query}")).await;
        assert_eq!(status, StatusCode::OK, "{envelope:?}");
        data(&envelope)
    }

    /// Begins the service's shutdown without waiting for it.
    pub fn begin_shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Whether the service has stopped.
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits up to `within` for the service to stop, and returns what its
    /// `run` returned. Panics when it does not stop in time or panicked.
    pub async fn stopped(&mut self, within: Duration) -> anyhow::Result<()> {
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        tokio::time::timeout(within, task)
            .await
            .unwrap_or_else(|_| panic!("{} did not stop within {within:?}", self.addr))
            .expect("the service task panicked")
    }

    /// Shuts the service down and waits for a clean stop.
    pub async fn stop(&mut self) {
        self.begin_shutdown();
        self.stopped(Duration::from_secs(15))
            .await
            .expect("the service stops cleanly");
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn signed_in() -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    let bearer = format!("Bearer {}", crate::access_token());
    headers.insert(
        reqwest::header::AUTHORIZATION,
        bearer.parse().expect("a token is a valid header value"),
    );
    headers
}

async fn read(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("the service answers");
    let status = response.status();
    let body = response.json().await.expect("the answer is JSON");
    (status, body)
}

fn envelope(body: Value) -> Envelope {
    serde_json::from_value(body.clone()).unwrap_or_else(|e| panic!("not an envelope ({e}): {body}"))
}

/// The envelope's `data`, as `T`.
pub fn data<T: serde::de::DeserializeOwned>(envelope: &Envelope) -> T {
    let data = envelope.data.clone().expect("the envelope carries data");
    serde_json::from_value(data).expect("the data has the expected shape")
}
