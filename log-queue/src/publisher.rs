//! Publishing log events with publisher confirms.

use std::sync::Arc;
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use proto::amqp::{EXCHANGE, Level, LogEvent};
use service_kit::http::ApiError;
use service_kit::reconnect::Reconnecting;

/// Persistent delivery: the event survives a RabbitMQ restart.
const PERSISTENT: u8 = 2;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

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
    pub async fn publish(&self, level: Level, event: &LogEvent) -> Result<(), ApiError> {
        let payload = serde_json::to_vec(event).map_err(|e| ApiError::Internal(e.into()))?;
        let (number, link) = self.link.get(Link::alive, || self.dial()).await?;
        let publish = async {
            let properties = BasicProperties::default()
                .with_delivery_mode(PERSISTENT)
                .with_content_type("application/json".into());
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
        let failure = match tokio::time::timeout(self.timeout, publish).await {
            Ok(Ok(Confirmation::Ack(None))) => return Ok(()),
            Ok(Ok(Confirmation::Ack(Some(_)))) => {
                return Err(ApiError::Unavailable(format!(
                    "RabbitMQ could not route {} to any queue",
                    level.routing_key()
                )));
            }
            Ok(Ok(Confirmation::Nack(_))) => {
                return Err(ApiError::BadGateway("RabbitMQ refused the event".into()));
            }
            Ok(Ok(Confirmation::NotRequested)) => {
                return Err(ApiError::Internal(
                    std::io::Error::other("the channel is not in confirm mode").into(),
                ));
            }
            Ok(Err(e)) => ApiError::Unavailable(format!("publishing to RabbitMQ failed: {e}")),
            Err(_) => ApiError::Timeout(format!(
                "RabbitMQ did not confirm within {} ms",
                self.timeout.as_millis()
            )),
        };
        // The link is in doubt: the next publish dials a new one.
        if let Some(link) = self.link.forget(number).await {
            tokio::spawn(async move { link.connection.close(200, "reconnecting".into()).await });
        }
        Err(failure)
    }

    /// A new connection with a confirm-mode channel and the topology declared.
    async fn dial(&self) -> Result<Link, ApiError> {
        let dial = async {
            let connection =
                Connection::connect(&self.url, ConnectionProperties::default()).await?;
            let channel = connection.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            crate::declare_topology(&channel).await?;
            Ok::<_, lapin::Error>(Link {
                connection: Arc::new(connection),
                channel,
            })
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, dial).await {
            Ok(Ok(link)) => Ok(link),
            Ok(Err(e)) => Err(ApiError::Unavailable(format!(
                "RabbitMQ is unreachable: {e}"
            ))),
            Err(_) => Err(ApiError::Timeout("connecting to RabbitMQ timed out".into())),
        }
    }
}
