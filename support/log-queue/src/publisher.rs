//! Publishing log events with publisher confirms.

use std::sync::Arc;
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use proto::amqp::{EXCHANGE, Level, LogEvent};
use resilience::Reconnecting;

/// Persistent delivery: the event survives a RabbitMQ restart.
const PERSISTENT: u8 = 2;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Why an event was not confirmed. The broker answers each with its status
/// code (docs/contracts.md §3); here they only say what happened.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// RabbitMQ cannot be reached, or the publish failed on the wire.
    #[error("{0}")]
    Unreachable(String),
    /// No queue is bound to the routing key: the event came back.
    #[error("RabbitMQ could not route {0} to any queue")]
    Unroutable(&'static str),
    /// RabbitMQ answered with a negative acknowledgement: the queue is at
    /// its length or byte limit (or RabbitMQ failed to store it).
    #[error("RabbitMQ refused the event: the queue is full")]
    Refused,
    /// No confirm, or no connection, within the timeout.
    #[error("{0}")]
    Timeout(String),
    /// A bug: the event does not encode, or the channel is not confirming.
    #[error("{0}")]
    Internal(String),
}

/// A connection and its confirm-mode channel.
#[derive(Clone)]
struct Link {
    connection: Arc<Connection>,
    channel: Channel,
}

impl Link {
    fn alive(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }
}

/// One connection and one confirm-mode channel, shared by every publish.
pub struct Publisher {
    url: String,
    timeout: Duration,
    link: Reconnecting<Link>,
}

impl Publisher {
    /// Connections made so far (the first, then one after each loss).
    pub fn connections(&self) -> u64 {
        self.link.dials()
    }

    /// Nothing is dialed until the first publish.
    pub fn new(url: String, timeout: Duration) -> Self {
        Self {
            url,
            timeout,
            link: Reconnecting::new(),
        }
    }

    /// Publishes `event` persistently with the routing key of `level` and
    /// returns once RabbitMQ confirmed it (stored in the durable queue).
    /// Publishes `event` with `level`'s routing key, as message `id` (the
    /// entry's id: the listener stores a redelivered message once), with
    /// `headers` as string message headers (the request id as
    /// `x-request-id`, the trace context as `traceparent`).
    pub async fn publish(
        &self,
        level: Level,
        event: &LogEvent,
        id: &str,
        headers: &[(&str, &str)],
    ) -> Result<(), PublishError> {
        let payload = serde_json::to_vec(event)
            .map_err(|e| PublishError::Internal(format!("the event does not encode: {e}")))?;
        // One deadline for the whole publish, waiting for a connection
        // (another caller may be dialing) included.
        let deadline = tokio::time::Instant::now() + self.timeout;
        let link = tokio::time::timeout_at(deadline, self.link.get(Link::alive, || self.dial()));
        let (number, link) = link.await.map_err(|_| self.timed_out())??;
        let publish = async {
            let mut properties = BasicProperties::default()
                .with_delivery_mode(PERSISTENT)
                .with_content_type("application/json".into())
                .with_message_id(id.into());
            if !headers.is_empty() {
                let mut table = FieldTable::default();
                for (name, value) in headers {
                    table.insert((*name).into(), AMQPValue::LongString((*value).into()));
                }
                properties = properties.with_headers(table);
            }
            // mandatory: an unroutable event comes back instead of vanishing.
            let options = BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            };
            link.channel
                .basic_publish(
                    EXCHANGE.into(),
                    level.routing_key().into(),
                    options,
                    &payload,
                    properties,
                )
                .await?
                .await
        };
        let failure = match tokio::time::timeout_at(deadline, publish).await {
            Ok(Ok(Confirmation::Ack(None))) => return Ok(()),
            Ok(Ok(Confirmation::Ack(Some(_)))) => {
                return Err(PublishError::Unroutable(level.routing_key()));
            }
            Ok(Ok(Confirmation::Nack(_))) => return Err(PublishError::Refused),
            Ok(Ok(Confirmation::NotRequested)) => {
                return Err(PublishError::Internal(
                    "the channel is not in confirm mode".into(),
                ));
            }
            Ok(Err(e)) => PublishError::Unreachable(format!("publishing to RabbitMQ failed: {e}")),
            Err(_) => self.timed_out(),
        };
        // The link is in doubt: the next publish dials a new one.
        if let Some(link) = self.link.forget(number).await {
            tokio::spawn(async move { link.connection.close(200, "reconnecting".into()).await });
        }
        Err(failure)
    }

    fn timed_out(&self) -> PublishError {
        PublishError::Timeout(format!(
            "RabbitMQ did not confirm within {} ms",
            self.timeout.as_millis()
        ))
    }

    /// A new connection with a confirm-mode channel and the topology declared.
    async fn dial(&self) -> Result<Link, PublishError> {
        let dial = async {
            let connection =
                Connection::connect(&self.url, ConnectionProperties::default()).await?;
            let channel = crate::open_channel(&connection).await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            Ok::<_, lapin::Error>(Link {
                connection: Arc::new(connection),
                channel,
            })
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, dial).await {
            Ok(Ok(link)) => Ok(link),
            Ok(Err(e)) => Err(PublishError::Unreachable(format!(
                "RabbitMQ is unreachable: {e}"
            ))),
            Err(_) => Err(PublishError::Timeout(
                "connecting to RabbitMQ timed out".into(),
            )),
        }
    }
}
