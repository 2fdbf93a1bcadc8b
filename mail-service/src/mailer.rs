//! The SMTP client: a small pool of lettre connections on sockets made
//! here, with `TCP_NODELAY`, and each send bounded as a whole.
//!
//! lettre's own transport is not used, for three reasons:
//! - Its sockets keep Nagle's algorithm on, and lettre writes a message's
//!   body and the terminating `\r\n.\r\n` in two writes. The second one
//!   waits for the server to acknowledge the first, which the server
//!   delays (a delayed ACK, 40 ms on Linux) because it is waiting for the
//!   rest: every mail took at least 40 ms however fast the server
//!   (docs/bench/README.md).
//! - Its pool says NOOP before every reuse, a round trip per mail.
//! - Its pooled connection is not cancel-safe: a send cut off by a timeout
//!   would put the half-used connection back for the next send.
//!
//! Here a connection belongs to the send that uses it: a send cut off by
//! `send_timeout` drops its connection with it, and only a send that went
//! through returns its connection to the pool. A connection that sat idle
//! for a while is checked with NOOP before it is used again.

use std::error::Error as _;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use lettre::Message;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use service_kit::config::ExposeSecret as _;
use service_kit::http::ApiError;
use service_kit::metrics::{Metrics, Outcome, Reading, Recorder};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tracing::Instrument;

use crate::config::{Config, Encryption};

/// How many connections may be open at once; more sends wait for one.
const MAX_CONNECTIONS: usize = 16;
/// An idle connection older than this is closed instead of reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// An idle connection older than this is checked with NOOP first: the
/// server may have closed it meanwhile.
const CHECK_AFTER: Duration = Duration::from_secs(2);
/// How long a connection may take to say QUIT when it is let go.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// The login mechanisms offered, in lettre's order of preference.
const MECHANISMS: &[Mechanism] = &[Mechanism::Plain, Mechanism::Login];

/// Why a mail was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// 502: the SMTP server answered with a 4xx or 5xx reply.
    #[error("SMTP server {server} refused the mail: {reason}")]
    Refused { server: String, reason: String },
    /// 502: the SMTP server answered, but not as it should: a broken
    /// answer, a failed TLS handshake, an extension that is needed but not
    /// offered (STARTTLS, a login mechanism).
    #[error("SMTP exchange with {server} failed: {reason}")]
    Failed { server: String, reason: String },
    /// 503: the SMTP server could not be reached.
    #[error("SMTP server {server} is unreachable: {reason}")]
    Unreachable { server: String, reason: String },
    /// 504: the whole send took longer than `send_timeout`.
    #[error("SMTP server {server} did not finish within {} ms", .timeout.as_millis())]
    TimedOut { server: String, timeout: Duration },
}

impl From<SendError> for ApiError {
    fn from(e: SendError) -> Self {
        // The client learns what went wrong; the server's address and its
        // own words go to the log.
        let public = match &e {
            SendError::Refused { .. } => {
                ApiError::BadGateway("the SMTP server refused the mail".into())
            }
            SendError::Failed { .. } => ApiError::BadGateway("the SMTP exchange failed".into()),
            SendError::Unreachable { .. } => {
                ApiError::Unavailable("the SMTP server is unreachable".into())
            }
            SendError::TimedOut { timeout, .. } => ApiError::Timeout(format!(
                "the SMTP server did not finish within {} ms",
                timeout.as_millis()
            )),
        };
        public.logged(e)
    }
}

/// The shared SMTP client. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Inner>,
}

struct Inner {
    connector: Connector,
    /// Connections that finished a send, the most recent last.
    idle: Mutex<Vec<Idle>>,
    /// One permit per connection that may be open.
    slots: Semaphore,
    send_timeout: Duration,
    /// Each send, counted as a call to the SMTP server.
    sends: Recorder,
    /// Connections opened to the SMTP server.
    opened: AtomicU64,
}

struct Idle {
    connection: AsyncSmtpConnection,
    since: Instant,
}

impl Mailer {
    /// Sets the client up; nothing is dialed until the first send. Sends
    /// and connections are counted in `metrics`.
    pub fn new(config: &Config, metrics: &Metrics) -> anyhow::Result<Self> {
        let connector = Connector::new(config)?;
        tracing::info!(
            host = config.host,
            port = config.port,
            encryption = config.encryption.as_str(),
            authenticated = connector.credentials.is_some(),
            "SMTP client ready"
        );
        let mailer = Self {
            inner: Arc::new(Inner {
                connector,
                idle: Mutex::new(Vec::new()),
                slots: Semaphore::new(MAX_CONNECTIONS),
                send_timeout: config.send_timeout,
                sends: metrics.calls_to("smtp", "smtp"),
                opened: AtomicU64::new(0),
            }),
        };
        let inner = Arc::downgrade(&mailer.inner);
        metrics.register_reading(
            "dependency_connections_opened",
            "Connections made to a dependency.",
            Reading::Counter,
            &[("dependency", "smtp"), ("transport", "smtp")],
            move || {
                inner.upgrade().map_or(0, |inner| {
                    i64::try_from(inner.opened.load(Ordering::Relaxed)).unwrap_or(i64::MAX)
                })
            },
        );
        Ok(mailer)
    }

    /// Sends `message`, bounded by `send_timeout` from the wait for a
    /// connection to the server's last answer.
    pub async fn send(&self, message: Message) -> Result<Response, SendError> {
        let span = service_kit::trace_span!(
            "send",
            otel.name = "smtp send",
            otel.kind = "client",
            peer.service = "smtp",
            otel.status_code = tracing::field::Empty,
        );
        let started = Instant::now();
        let send = tokio::time::timeout(self.inner.send_timeout, self.send_now(&message));
        let result = match send.instrument(span.clone()).await {
            Ok(result) => result,
            // The connection in use was dropped with the send.
            Err(_) => Err(SendError::TimedOut {
                server: self.inner.connector.server.clone(),
                timeout: self.inner.send_timeout,
            }),
        };
        let outcome = if result.is_ok() {
            Outcome::Ok
        } else {
            span.record("otel.status_code", "ERROR");
            Outcome::ServerError
        };
        self.inner.sends.record(outcome, started.elapsed());
        result
    }

    async fn send_now(&self, message: &Message) -> Result<Response, SendError> {
        let _slot = self
            .inner
            .slots
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let mut connection = match self.take_idle().await {
            Some(connection) => connection,
            None => {
                let connection = self.inner.connector.connect().await?;
                self.inner.opened.fetch_add(1, Ordering::Relaxed);
                connection
            }
        };
        match connection
            .send(message.envelope(), &message.formatted())
            .await
        {
            Ok(response) => {
                self.put_back(connection);
                Ok(response)
            }
            Err(e) => {
                // A refused mail leaves the exchange half done: the
                // connection is let go rather than reset.
                let_go(connection);
                Err(classify(&e, &self.inner.connector.server))
            }
        }
    }

    /// The most recently used idle connection that still works, if any.
    async fn take_idle(&self) -> Option<AsyncSmtpConnection> {
        loop {
            let idle = {
                let mut idle = self.idle();
                idle.retain(|c| c.since.elapsed() < IDLE_TIMEOUT);
                idle.pop()?
            };
            let mut connection = idle.connection;
            if idle.since.elapsed() < CHECK_AFTER || connection.test_connected().await {
                return Some(connection);
            }
            tracing::debug!("an idle SMTP connection was closed by the server");
        }
    }

    fn put_back(&self, connection: AsyncSmtpConnection) {
        self.idle().push(Idle {
            connection,
            since: Instant::now(),
        });
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        self.inner
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Says QUIT on the idle connections, for a clean shutdown.
    pub async fn close(&self) {
        let idle = std::mem::take(&mut *self.idle());
        for mut c in idle {
            if tokio::time::timeout(CLOSE_TIMEOUT, c.connection.quit())
                .await
                .is_err()
            {
                tracing::debug!("an SMTP connection did not close in time");
            }
        }
    }
}

/// Closes `connection` in the background, politely if the server still
/// answers.
fn let_go(mut connection: AsyncSmtpConnection) {
    tokio::spawn(async move {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, connection.abort()).await;
    });
}

/// How a new connection is made: TCP with `TCP_NODELAY`, TLS as
/// configured, the greeting, and the login when there are credentials.
struct Connector {
    host: String,
    port: u16,
    hello: ClientId,
    credentials: Option<Credentials>,
    security: Security,
    /// `host:port`, for error messages.
    server: String,
}

enum Security {
    Plain,
    /// STARTTLS after the greeting, by lettre.
    StartTls(TlsParameters),
    /// TLS from the first byte, before lettre reads the greeting.
    Implicit(TlsConnector, ServerName<'static>),
}

impl Connector {
    fn new(config: &Config) -> anyhow::Result<Self> {
        let host = config.host.clone();
        let security = match config.encryption {
            Encryption::None => Security::Plain,
            Encryption::StartTls => Security::StartTls(
                TlsParameters::new(host.clone())
                    .with_context(|| format!("cannot set up STARTTLS for {host}"))?,
            ),
            Encryption::Tls => {
                let name = ServerName::try_from(host.clone())
                    .with_context(|| format!("cannot set up TLS for {host}"))?;
                Security::Implicit(TlsConnector::from(Arc::new(tls_config()?)), name)
            }
        };
        let credentials = (!config.username.is_empty()).then(|| {
            Credentials::new(
                config.username.clone(),
                config.password.expose_secret().to_owned(),
            )
        });
        Ok(Self {
            server: format!("{host}:{}", config.port),
            host,
            port: config.port,
            hello: ClientId::Domain(config.domain.clone()),
            credentials,
            security,
        })
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| self.io_error(e))?;
        tcp.set_nodelay(true).map_err(|e| self.io_error(e))?;
        let stream: Box<dyn AsyncTokioStream> = match &self.security {
            Security::Implicit(connector, name) => Box::new(Encrypted(
                connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| self.io_error(e))?,
            )),
            Security::Plain | Security::StartTls(_) => Box::new(tcp),
        };
        let mut connection = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(|e| classify(&e, &self.server))?;
        if let Security::StartTls(parameters) = &self.security {
            if !connection.can_starttls() {
                let_go(connection);
                return Err(SendError::Failed {
                    server: self.server.clone(),
                    reason: "the server does not offer STARTTLS".into(),
                });
            }
            connection
                .starttls(parameters.clone(), &self.hello)
                .await
                .map_err(|e| classify(&e, &self.server))?;
        }
        if let Some(credentials) = &self.credentials
            && let Err(e) = connection.auth(MECHANISMS, credentials).await
        {
            let_go(connection);
            return Err(classify(&e, &self.server));
        }
        Ok(connection)
    }

    fn io_error(&self, e: io::Error) -> SendError {
        let server = self.server.clone();
        let reason = e.to_string();
        if e.kind() == io::ErrorKind::InvalidData {
            // A TLS handshake that failed: the server answered, badly.
            SendError::Failed { server, reason }
        } else {
            // Refused, unreachable, or a name that does not resolve.
            SendError::Unreachable { server, reason }
        }
    }
}

/// rustls with the web's root certificates, as lettre's own TLS.
fn tls_config() -> anyhow::Result<ClientConfig> {
    let roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    Ok(
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .context("no TLS version to offer")?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// An implicit-TLS connection, as lettre takes a stream of its own.
struct Encrypted(TlsStream<TcpStream>);

impl fmt::Debug for Encrypted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Encrypted")
            .field(self.0.get_ref().0)
            .finish()
    }
}

impl AsyncTokioStream for Encrypted {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl AsyncRead for Encrypted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Encrypted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Sorts lettre's errors by what they mean for the caller.
fn classify(e: &SmtpError, server: &str) -> SendError {
    let server = server.to_owned();
    let reason = e.to_string();
    if e.is_permanent() || e.is_transient() {
        return SendError::Refused { server, reason };
    }
    if let Some(kind) = io_error_kind(e) {
        use io::ErrorKind::*;
        if matches!(
            kind,
            ConnectionRefused
                | ConnectionReset
                | ConnectionAborted
                | NotConnected
                | HostUnreachable
                | NetworkUnreachable
                | NetworkDown
                | AddrNotAvailable
        ) {
            return SendError::Unreachable { server, reason };
        }
        if kind == InvalidData {
            // A TLS handshake that failed: the server answered, badly.
            return SendError::Failed { server, reason };
        }
    }
    SendError::Failed { server, reason }
}

/// The kind of the first I/O error in `e`'s chain of causes.
fn io_error_kind(e: &SmtpError) -> Option<io::ErrorKind> {
    let mut source = e.source();
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        source = err.source();
    }
    None
}
