//! The consumer: takes log events from the shared queue and stores them
//! through the logger, acknowledging each only after the logger stored it.
//!
//! - A malformed event, or one the logger refuses as invalid, is
//!   dead-lettered at once: retrying cannot help it.
//! - Any other failure is retried with exponential backoff; after
//!   `max_attempts` the event is dead-lettered, never dropped.
//! - A lost connection (RabbitMQ restarted, the connection closed) ends the
//!   session; the supervisor dials again with backoff. Unacknowledged events
//!   return to the queue and are delivered again.
//! - On shutdown the consumer is cancelled first, then in-flight events
//!   finish (within the grace period) before the connection closes.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, anyhow};
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties};
use proto::amqp::{LogEvent, QUEUE};
use proto::http::{LogPayload, REQUEST_ID_HEADER};
use reqwest::StatusCode;
use resilience::Backoff;
use service_kit::request_id;
use service_kit::shutdown::CancellationToken;
use service_kit::upstream::ServiceClient;
use tokio::task::JoinSet;

use crate::metrics::Metrics;

const RECONNECT_FIRST: Duration = Duration::from_millis(500);
const RECONNECT_MAX: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How often the session checks that its connection is still up: lapin has
/// been seen to leave a consumer stream silent after a broker restart.
const WATCHDOG: Duration = Duration::from_secs(2);

/// Shared by the session and every in-flight delivery (one `Arc`, no copies).
pub struct Consumer {
    pub amqp_url: String,
    pub logger: ServiceClient,
    pub prefetch: u16,
    pub max_attempts: u32,
    pub retry_backoff: Duration,
    pub shutdown_grace: Duration,
    pub metrics: Arc<Metrics>,
}

impl Consumer {
    /// Consumes until `shutdown` is cancelled, reconnecting after every loss.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut backoff = Backoff::new(RECONNECT_FIRST, RECONNECT_MAX);
        while !shutdown.is_cancelled() {
            let connections_before = Metrics::get(&self.metrics.connections);
            let result = self.session(&shutdown).await;
            self.metrics.consuming.store(false, Ordering::Relaxed);
            match result {
                Ok(()) => break,
                Err(e) => {
                    if Metrics::get(&self.metrics.connections) > connections_before {
                        backoff.reset();
                    }
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        error = format!("{e:#}"),
                        retry_in_ms = delay.as_millis() as u64,
                        "RabbitMQ session ended"
                    );
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = shutdown.cancelled() => break,
                    }
                }
            }
        }
        Ok(())
    }

    /// One connection's life: set up, consume, and on shutdown drain.
    async fn session(self: &Arc<Self>, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let connection = Connection::connect(&self.amqp_url, ConnectionProperties::default())
            .await
            .context("cannot connect to RabbitMQ")?;
        let channel = connection.create_channel().await?;
        channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await?;
        log_queue::declare_topology(&channel)
            .await
            .context("cannot declare the topology")?;
        let tag = format!("listener-{}", std::process::id());
        let mut deliveries = channel
            .basic_consume(
                QUEUE.into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Metrics::count(&self.metrics.connections);
        self.metrics.consuming.store(true, Ordering::Relaxed);
        tracing::info!(queue = QUEUE, prefetch = self.prefetch, "consuming");

        let mut in_flight = JoinSet::new();
        let mut watchdog = tokio::time::interval(WATCHDOG);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                next = deliveries.next() => match next {
                    Some(Ok(delivery)) => {
                        Metrics::count(&self.metrics.received);
                        in_flight.spawn(self.clone().handle(delivery));
                    }
                    Some(Err(e)) => return Err(e).context("the consumer failed"),
                    None => return Err(anyhow!("the consumer was cancelled by RabbitMQ")),
                },
                _ = watchdog.tick() => {
                    if !connection.status().connected() || !channel.status().connected() {
                        return Err(anyhow!("the connection to RabbitMQ was lost"));
                    }
                }
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            }
        }

        // Shutdown: take no more, finish what is in hand, then close.
        let _ = channel
            .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
            .await;
        let drain = async { while in_flight.join_next().await.is_some() {} };
        if tokio::time::timeout(self.shutdown_grace, drain)
            .await
            .is_err()
        {
            tracing::warn!("in-flight events did not finish in time; they return to the queue");
        }
        let _ = connection.close(200, "shutting down".into()).await;
        Ok(())
    }

    /// Stores one event, then acknowledges it; or dead-letters it.
    async fn handle(self: Arc<Self>, delivery: Delivery) {
        let event = match serde_json::from_slice::<LogEvent>(&delivery.data) {
            Ok(event) => event,
            Err(e) => {
                return self
                    .dead_letter(&delivery, &format!("not a log event: {e}"))
                    .await;
            }
        };
        if let Err(reason) = proto::check_log_entry(&event.name, &event.data) {
            return self.dead_letter(&delivery, &reason).await;
        }
        let request_id = delivery_request_id(&delivery);
        // The broker's message id is the entry's id, so a redelivered event
        // is stored once.
        let entry = LogPayload {
            name: event.name,
            data: event.data,
            level: None,
            id: delivery
                .properties
                .message_id()
                .as_ref()
                .map(|id| id.to_string()),
        };
        let mut backoff = Backoff::new(self.retry_backoff, BACKOFF_MAX);
        for attempt in 1..=self.max_attempts {
            let store = self.logger.post("/log", &entry);
            let failure = match request_id::scope(request_id.clone(), store).await {
                Ok(reply) if reply.status.is_success() => {
                    match delivery.acker.ack(BasicAckOptions::default()).await {
                        Ok(_) => Metrics::count(&self.metrics.stored),
                        // The event is stored but RabbitMQ will deliver it again.
                        Err(e) => {
                            tracing::warn!(error = %e, "stored, but the acknowledgement failed")
                        }
                    }
                    return;
                }
                Ok(reply) if reply.status == StatusCode::BAD_REQUEST => {
                    return self.dead_letter(&delivery, &reply.envelope.message).await;
                }
                Ok(reply) => format!(
                    "logger answered {}: {}",
                    reply.status, reply.envelope.message
                ),
                Err(e) => e.to_string(),
            };
            if attempt == self.max_attempts {
                let reason = format!("gave up after {attempt} attempts: {failure}");
                return self.dead_letter(&delivery, &reason).await;
            }
            let wait = backoff.next_delay();
            tracing::warn!(
                attempt,
                error = failure,
                retry_in_ms = wait.as_millis() as u64,
                "store failed; retrying"
            );
            Metrics::count(&self.metrics.retried);
            tokio::time::sleep(wait).await;
        }
    }

    /// Rejects without requeueing: RabbitMQ moves it to the dead-letter queue.
    async fn dead_letter(&self, delivery: &Delivery, reason: &str) {
        tracing::warn!(reason, routing_key = %delivery.routing_key, "dead-lettering an event");
        let options = BasicNackOptions {
            multiple: false,
            requeue: false,
        };
        match delivery.acker.nack(options).await {
            Ok(_) => Metrics::count(&self.metrics.dead_lettered),
            Err(e) => {
                tracing::warn!(error = %e, "cannot dead-letter; RabbitMQ will deliver it again")
            }
        }
    }
}

/// The `x-request-id` header the broker put on the message, if any.
fn delivery_request_id(delivery: &Delivery) -> Option<String> {
    let headers = delivery.properties.headers().as_ref()?;
    match headers.inner().get(REQUEST_ID_HEADER)? {
        AMQPValue::LongString(id) => Some(id.to_string()),
        _ => None,
    }
}
