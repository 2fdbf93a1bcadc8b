//! The consumer: takes log events from the shared queue and stores them
//! through the logger, acknowledging each only after the logger stored it.
//!
//! - A poison event (too big, not a log event, breaking the entry's bounds,
//!   or refused by the logger as invalid) is dead-lettered at once, with
//!   its reason in a header: retrying cannot help it.
//! - Any other failure (an outage) is retried with backoff until the store
//!   path is back: an outage is waited out, never dead-lettered.
//! - A lost connection (RabbitMQ restarted, the connection closed) ends the
//!   session; the supervisor dials again with backoff. Unacknowledged events
//!   return to the queue and are delivered again.
//! - On shutdown the consumer is cancelled first, then in-flight events
//!   finish (within the grace period) before the connection closes.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Confirmation, Connection, ConnectionProperties};
use proto::amqp::{
    DEAD_LETTER_EXCHANGE, DEAD_LETTER_REASON_HEADER, LogEvent, MAX_EVENT_BYTES,
    ORIGINAL_ROUTING_KEY_HEADER, QUEUE,
};
use proto::http::{LogPayload, REQUEST_ID_HEADER};
use reqwest::StatusCode;
use resilience::Backoff;
use service_kit::metrics::{Outcome, Recorder};
use service_kit::shutdown::CancellationToken;
use service_kit::upstream::ServiceClient;
use service_kit::{request_id, telemetry};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::metrics::Metrics;

const RECONNECT_FIRST: Duration = Duration::from_millis(500);
const RECONNECT_MAX: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A dead-letter reason is cut to this many characters.
const MAX_REASON_CHARS: usize = 500;
/// How often the session checks that its connection is still up: lapin has
/// been seen to leave a consumer stream silent after a broker restart.
const WATCHDOG: Duration = Duration::from_secs(2);
/// How long the look at the queue's depth may take.
const QUEUE_LOOK_TIMEOUT: Duration = Duration::from_millis(500);

/// Shared by the session and every in-flight delivery (one `Arc`, no copies).
pub struct Consumer {
    pub amqp_url: String,
    pub logger: ServiceClient,
    pub prefetch: u16,
    pub retry_backoff: Duration,
    pub shutdown_grace: Duration,
    pub metrics: Arc<Metrics>,
    /// Each event handled, counted as a request served over AMQP
    /// (`Metrics::requests_on("amqp", QUEUE)`).
    pub served: Recorder,
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
        let channel = log_queue::open_channel(&connection)
            .await
            .context("cannot declare the topology")?;
        channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await?;
        // Confirms for the dead-letter copies published on this channel.
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
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
                        in_flight.spawn(self.clone().handle(channel.clone(), delivery, shutdown.clone()));
                    }
                    Some(Err(e)) => return Err(e).context("the consumer failed"),
                    None => return Err(anyhow!("the consumer was cancelled by RabbitMQ")),
                },
                _ = watchdog.tick() => {
                    if !connection.status().connected() || !channel.status().connected() {
                        return Err(anyhow!("the connection to RabbitMQ was lost"));
                    }
                    self.look_at_the_queue(&channel).await;
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

    /// Notes how many messages wait in the queue (a passive declare, which
    /// only reads); a slow answer is skipped, not waited for.
    async fn look_at_the_queue(&self, channel: &Channel) {
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let look = channel.queue_declare(QUEUE.into(), passive, FieldTable::default());
        if let Ok(Ok(queue)) = tokio::time::timeout(QUEUE_LOOK_TIMEOUT, look).await {
            self.metrics
                .queue_depth
                .store(i64::from(queue.message_count()), Ordering::Relaxed);
        }
    }

    /// Handles one delivery ([`Consumer::store`]) as a consumer span, a
    /// child of the span that published it (its `traceparent` header),
    /// and counts it as a request served over AMQP.
    async fn handle(
        self: Arc<Self>,
        channel: Channel,
        delivery: Delivery,
        shutdown: CancellationToken,
    ) {
        let span = service_kit::trace_span!(
            "process",
            otel.name = format_args!("process {QUEUE}"),
            otel.kind = "consumer",
            messaging.system = "rabbitmq",
            messaging.destination.name = QUEUE,
            messaging.message.id = tracing::field::Empty,
            request_id = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        if telemetry::exporting() {
            telemetry::follow_traceparent(
                &span,
                string_header(&delivery, telemetry::TRACEPARENT).as_deref(),
            );
            if let Some(id) = delivery.properties.message_id() {
                span.record("messaging.message.id", id.as_str());
            }
        }
        let request_id = string_header(&delivery, REQUEST_ID_HEADER);
        if let Some(id) = &request_id {
            span.record("request_id", id.as_str());
        }
        let started = Instant::now();
        let outcome = self
            .store(channel, delivery, request_id.clone(), shutdown)
            .instrument(span.clone())
            .await;
        if outcome == Outcome::ServerError {
            span.record("otel.status_code", "ERROR");
        }
        let took = started.elapsed();
        self.served.record(outcome, took);
        // One line per event, as the HTTP services write one per request.
        let latency_ms = (took.as_secs_f64() * 1e6).round() / 1e3;
        span.in_scope(|| {
            tracing::info!(
                request_id = request_id.as_deref().unwrap_or_default(),
                outcome = outcome.as_str(),
                latency_ms,
                "event"
            )
        });
    }

    /// Stores one event, then acknowledges it; or dead-letters it when it is
    /// poison. A store that fails for any other reason (the logger or
    /// MongoDB down, a timeout, a 5xx) is retried, with backoff, for as long
    /// as it takes: the delivery stays unacknowledged meanwhile, so with
    /// every prefetch slot held the listener takes no new deliveries until
    /// the store path is back. On shutdown the retrying stops and the event
    /// returns to the queue.
    ///
    /// The outcome: stored (ok), poison (the client's error), or not
    /// stored before shutdown (this side's).
    async fn store(
        &self,
        channel: Channel,
        delivery: Delivery,
        request_id: Option<String>,
        shutdown: CancellationToken,
    ) -> Outcome {
        let entry = match decode(&delivery) {
            Ok(entry) => entry,
            Err(reason) => {
                self.dead_letter(&channel, &delivery, &reason).await;
                return Outcome::ClientError;
            }
        };
        let mut backoff = Backoff::new(self.retry_backoff, BACKOFF_MAX);
        loop {
            let store = self.logger.post("/log", &entry);
            let failure = match request_id::scope(request_id.clone(), store).await {
                Ok(reply) if reply.status.is_success() => {
                    match delivery.acker.ack(BasicAckOptions::default()).await {
                        Ok(_) => Metrics::count(&self.metrics.stored),
                        // Stored; RabbitMQ will deliver it again, and its id
                        // keeps it from being stored twice.
                        Err(e) => {
                            tracing::warn!(error = %e, "stored, but the acknowledgement failed")
                        }
                    }
                    return Outcome::Ok;
                }
                Ok(reply) if reply.status == StatusCode::BAD_REQUEST => {
                    let reason = format!("the logger refused it: {}", reply.envelope.message);
                    self.dead_letter(&channel, &delivery, &reason).await;
                    return Outcome::ClientError;
                }
                Ok(reply) => format!(
                    "logger answered {}: {}",
                    reply.status, reply.envelope.message
                ),
                Err(e) => e.to_string(),
            };
            let wait = backoff.next_delay();
            tracing::warn!(
                error = failure,
                retry_in_ms = wait.as_millis() as u64,
                "store failed; retrying"
            );
            Metrics::count(&self.metrics.retried);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                // Unacknowledged, it goes back to the queue when the
                // connection closes.
                () = shutdown.cancelled() => return Outcome::ServerError,
            }
        }
    }

    /// Moves a poison event to `logs.dead` with its reason: republished to
    /// the dead-letter exchange with the headers `x-dead-letter-reason` and
    /// `x-original-routing-key` (what `replay-dead-letters` routes it back
    /// by), then acknowledged once RabbitMQ confirmed the copy. If the copy
    /// is not confirmed the event is requeued, to be judged again.
    async fn dead_letter(&self, channel: &Channel, delivery: &Delivery, reason: &str) {
        tracing::warn!(reason, routing_key = %delivery.routing_key, "dead-lettering an event");
        let copied = async {
            let mut headers = delivery.properties.headers().clone().unwrap_or_default();
            let reason: String = reason.chars().take(MAX_REASON_CHARS).collect();
            headers.insert(
                DEAD_LETTER_REASON_HEADER.into(),
                AMQPValue::LongString(reason.into()),
            );
            headers.insert(
                ORIGINAL_ROUTING_KEY_HEADER.into(),
                AMQPValue::LongString(delivery.routing_key.as_str().into()),
            );
            let properties = delivery.properties.clone().with_headers(headers);
            let confirm = channel
                .basic_publish(
                    DEAD_LETTER_EXCHANGE.into(),
                    delivery.routing_key.clone(),
                    BasicPublishOptions::default(),
                    &delivery.data,
                    properties,
                )
                .await?
                .await?;
            Ok::<_, lapin::Error>(matches!(confirm, Confirmation::Ack(_)))
        };
        match copied.await {
            Ok(true) => match delivery.acker.ack(BasicAckOptions::default()).await {
                Ok(_) => Metrics::count(&self.metrics.dead_lettered),
                Err(e) => {
                    tracing::warn!(error = %e, "dead-lettered, but the acknowledgement failed")
                }
            },
            outcome => {
                tracing::warn!(
                    ?outcome,
                    "the dead-letter copy was not confirmed; requeueing"
                );
                let requeue = BasicNackOptions {
                    multiple: false,
                    requeue: true,
                };
                let _ = delivery.acker.nack(requeue).await;
            }
        }
    }
}

/// The entry an event carries, or why it is poison: too big, not a log
/// event, or breaking the entry's bounds. The message id is the entry's id,
/// so a redelivered event is stored once.
fn decode(delivery: &Delivery) -> Result<LogPayload, String> {
    let id = delivery
        .properties
        .message_id()
        .as_ref()
        .map(|id| id.to_string());
    decode_event(&delivery.data, id)
}

/// [`decode`] on a message's body and message id.
fn decode_event(body: &[u8], id: Option<String>) -> Result<LogPayload, String> {
    if body.len() > MAX_EVENT_BYTES {
        return Err(format!(
            "the message is {} bytes; at most {MAX_EVENT_BYTES} are accepted",
            body.len()
        ));
    }
    let event =
        serde_json::from_slice::<LogEvent>(body).map_err(|e| format!("not a log event: {e}"))?;
    proto::check_log_entry(&event.name, &event.data)?;
    if let Some(id) = &id {
        proto::check_entry_id(id)?;
    }
    Ok(LogPayload {
        name: event.name,
        data: event.data,
        level: None,
        id,
    })
}

/// A string header the broker put on the message (`x-request-id`,
/// `traceparent`), if any.
fn string_header(delivery: &Delivery, name: &str) -> Option<String> {
    let headers = delivery.properties.headers().as_ref()?;
    match headers.inner().get(name)? {
        AMQPValue::LongString(id) => Some(id.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever arrives, the decoder answers an entry or a reason to
        /// dead-letter it, and never panics.
        #[test]
        fn any_message_is_an_entry_or_poison_with_a_reason(
            body in proptest::collection::vec(any::<u8>(), 0..2048),
            id in proptest::option::of("\\PC{0,30}"),
        ) {
            if let Err(reason) = decode_event(&body, id) {
                prop_assert!(!reason.is_empty());
            }
        }

        /// A well-formed event is an entry exactly when the entry's bounds
        /// and the id's form hold.
        #[test]
        fn a_log_event_is_judged_by_the_entry_rules(
            name in "\\PC{0,300}",
            data in "\\PC{0,50}",
            hex_id in proptest::option::of("[0-9a-f]{24}"),
        ) {
            let event = LogEvent { name: name.clone(), data: data.clone() };
            let body = serde_json::to_vec(&event).unwrap();
            let decoded = decode_event(&body, hex_id.clone());
            prop_assert_eq!(decoded.is_ok(), proto::check_log_entry(&name, &data).is_ok());
            if let Ok(entry) = decoded {
                prop_assert_eq!((entry.name, entry.data, entry.id), (name, data, hex_id));
            }
        }
    }

    #[test]
    fn an_oversized_message_is_poison_before_it_is_parsed() {
        let body = vec![b'{'; MAX_EVENT_BYTES + 1];
        assert!(decode_event(&body, None).unwrap_err().contains("bytes"));
    }
}
