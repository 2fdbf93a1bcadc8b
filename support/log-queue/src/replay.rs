//! `replay-dead-letters`: puts the events in `logs.dead` back on the log
//! exchange, once whatever made them fail has been fixed.

use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Confirmation, Connection, ConnectionProperties};
use proto::amqp::{
    DEAD_LETTER_QUEUE, DEAD_LETTER_REASON_HEADER, EXCHANGE, ORIGINAL_ROUTING_KEY_HEADER,
};

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("RabbitMQ failed: {0}")]
    Amqp(#[from] lapin::Error),
    /// RabbitMQ did not confirm (or could not route) a replayed event; it
    /// stays in `logs.dead`, as do the ones after it.
    #[error("RabbitMQ did not take a replayed event after {moved} were moved")]
    NotTaken { moved: u64 },
}

/// Moves every event that was in `logs.dead` when it started back to
/// `logs_topic`, under its original routing key (the
/// `x-original-routing-key` header, else the one it has) and without its
/// dead-letter reason. Each is acknowledged in `logs.dead` only after
/// RabbitMQ confirmed the copy, so an interrupted replay loses nothing (an
/// event may then be in both places; its message id keeps it from being
/// stored twice). Events that are poison still come back to `logs.dead`,
/// which is why only the ones there at the start are moved. Returns how
/// many were moved.
pub async fn replay_dead_letters(amqp_url: &str) -> Result<u64, ReplayError> {
    let connection = Connection::connect(amqp_url, ConnectionProperties::default()).await?;
    let channel = crate::open_channel(&connection).await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let waiting = channel
        .queue_declare(
            DEAD_LETTER_QUEUE.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?
        .message_count();
    let mut moved = 0;
    while moved < u64::from(waiting) {
        let Some(message) = channel
            .basic_get(DEAD_LETTER_QUEUE.into(), BasicGetOptions { no_ack: false })
            .await?
        else {
            break;
        };
        let delivery = message.delivery;
        let mut headers = delivery.properties.headers().clone().unwrap_or_default();
        let routing_key = match headers.inner().get(ORIGINAL_ROUTING_KEY_HEADER) {
            Some(AMQPValue::LongString(key)) => key.to_string(),
            _ => delivery.routing_key.to_string(),
        };
        let mut kept = FieldTable::default();
        for (name, value) in headers.inner() {
            if name.as_str() != DEAD_LETTER_REASON_HEADER
                && name.as_str() != ORIGINAL_ROUTING_KEY_HEADER
                && name.as_str() != "x-death"
            {
                kept.insert(name.clone(), value.clone());
            }
        }
        headers = kept;
        let properties = delivery.properties.clone().with_headers(headers);
        let confirm = channel
            .basic_publish(
                EXCHANGE.into(),
                routing_key.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &delivery.data,
                properties,
            )
            .await?
            .await?;
        if !matches!(confirm, Confirmation::Ack(None)) {
            let requeue = BasicNackOptions {
                multiple: false,
                requeue: true,
            };
            delivery.acker.nack(requeue).await?;
            let _ = connection.close(200, "replay stopped".into()).await;
            return Err(ReplayError::NotTaken { moved });
        }
        delivery.acker.ack(BasicAckOptions::default()).await?;
        moved += 1;
    }
    connection.close(200, "replayed".into()).await?;
    Ok(moved)
}
