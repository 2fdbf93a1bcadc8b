//! The SMTP client: one lettre transport with its connection pool, built at
//! start and shared by every request, with each send bounded as a whole.
//!
//! lettre's own timeout covers only the TCP connect, so a server that
//! accepts and then never answers would hold a request forever; every send
//! runs under `send_timeout` instead. When that timeout cuts a send off,
//! lettre would put the half-used connection back into its pool (its
//! pooled connection is not cancel-safe) and the next send would wait on
//! the same dead exchange. So after a timeout the pool is replaced by a
//! fresh one and the old one is shut down; that is the only time a
//! transport is built after start.

use std::error::Error as _;
use std::io;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use lettre::transport::smtp::{AsyncSmtpTransportBuilder, Error as SmtpError, PoolConfig};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use service_kit::config::ExposeSecret as _;
use service_kit::http::ApiError;

use crate::config::{Config, Encryption};

type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// How long an old pool may take to say QUIT to its connections.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

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
    builder: AsyncSmtpTransportBuilder,
    /// The pool in use and how many times it has been replaced, so that
    /// several sends timing out at once replace it only once.
    transport: RwLock<(u64, Transport)>,
    send_timeout: Duration,
    /// `host:port`, for error messages.
    server: String,
}

impl Mailer {
    /// Builds the transport; nothing is dialed until the first send.
    /// Must be called inside the tokio runtime (the pool starts a task).
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let host = config.host.as_str();
        let builder = match config.encryption {
            Encryption::None => Transport::builder_dangerous(host),
            Encryption::StartTls => Transport::starttls_relay(host)
                .with_context(|| format!("cannot set up STARTTLS for {host}"))?,
            Encryption::Tls => {
                Transport::relay(host).with_context(|| format!("cannot set up TLS for {host}"))?
            }
        };
        let mut builder = builder
            .port(config.port)
            .hello_name(ClientId::Domain(config.domain.clone()))
            .timeout(Some(config.send_timeout))
            .pool_config(PoolConfig::new().max_size(10));
        if !config.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                config.username.clone(),
                config.password.expose_secret().to_owned(),
            ));
        }
        let transport = builder.clone().build();
        tracing::info!(
            host,
            port = config.port,
            encryption = config.encryption.as_str(),
            authenticated = !config.username.is_empty(),
            "SMTP transport ready"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                builder,
                transport: RwLock::new((0, transport)),
                send_timeout: config.send_timeout,
                server: format!("{host}:{}", config.port),
            }),
        })
    }

    /// Sends `message`, bounded by `send_timeout` from the first dial to
    /// the server's last answer.
    pub async fn send(&self, message: Message) -> Result<Response, SendError> {
        let (generation, transport) = self.current();
        match tokio::time::timeout(self.inner.send_timeout, transport.send(message)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) if e.is_timeout() => {
                // lettre's own connect timeout, set to the same bound.
                Err(self.timed_out())
            }
            Ok(Err(e)) => Err(classify(&e, &self.inner.server)),
            Err(_) => {
                self.replace_pool(generation);
                Err(self.timed_out())
            }
        }
    }

    fn timed_out(&self) -> SendError {
        SendError::TimedOut {
            server: self.inner.server.clone(),
            timeout: self.inner.send_timeout,
        }
    }

    /// Says QUIT to the pooled connections, for a clean shutdown.
    pub async fn close(&self) {
        let (_, transport) = self.current();
        if tokio::time::timeout(CLOSE_TIMEOUT, transport.shutdown())
            .await
            .is_err()
        {
            tracing::debug!("SMTP connections did not close in time");
        }
    }

    fn current(&self) -> (u64, Transport) {
        let guard = self
            .inner
            .transport
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (guard.0, guard.1.clone())
    }

    /// Replaces the pool after a send on it timed out, unless another
    /// timed-out send already did.
    fn replace_pool(&self, generation: u64) {
        let mut guard = self
            .inner
            .transport
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if guard.0 != generation {
            return;
        }
        let fresh = self.inner.builder.clone().build();
        let (_, old) = std::mem::replace(&mut *guard, (generation + 1, fresh));
        drop(guard);
        tracing::warn!("an SMTP send timed out; its connection pool is replaced");
        tokio::spawn(async move {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, old.shutdown()).await;
        });
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
    // lettre has no `is_connection()`; its Display names the kind. What is
    // left of that kind is a failed name lookup: the host is unreachable.
    if reason.starts_with("Connection error") {
        return SendError::Unreachable { server, reason };
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
