//! The RabbitMQ side of the log events (docs/contracts.md §4):
//!
//! - [`open_channel`]: a channel with the whole topology declared: the
//!   durable topic exchange `logs_topic`, the durable queue `logs` (at most
//!   [`QUEUE_MAX_LENGTH`] events and [`QUEUE_MAX_BYTES`], then publishes are
//!   refused) shared by every listener and bound to
//!   `log.INFO|WARNING|ERROR`, and the dead-letter exchange
//!   `logs_topic.dlx` with its queue `logs.dead`. Publisher and consumer
//!   both declare it, identically, so an event is never unroutable: it waits
//!   in `logs` even while no listener has ever run.
//! - [`Publisher`]: one long-lived connection with a publisher-confirm
//!   channel, dialed on first use and again after it is lost.
//! - [`replay_dead_letters`]: puts what is in `logs.dead` back on the
//!   exchange (`replay-dead-letters`, after a fix).

mod publisher;
mod replay;

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, Connection, ExchangeKind};
use proto::amqp::{DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE, EXCHANGE, Level, QUEUE};

pub use publisher::{PublishError, Publisher};
pub use replay::{ReplayError, replay_dead_letters};

/// The most events `logs` holds, and the most bytes: past either, RabbitMQ
/// refuses a publish (`x-overflow: reject-publish`) with a nack, which the
/// broker answers with 503, instead of the queue growing without end.
pub const QUEUE_MAX_LENGTH: i64 = 1_000_000;
pub const QUEUE_MAX_BYTES: i64 = 1 << 30;

/// A channel on `connection` with the whole topology declared on it.
///
/// A `logs` queue declared by an older version (without the length limits)
/// cannot be redeclared with them: RabbitMQ answers 406 and closes the
/// channel. Then the queue is used as it is, on a new channel, with a
/// warning; deleting it once it is drained (or setting a policy with
/// `max-length`, `max-length-bytes` and `overflow`) puts the limits in place.
pub async fn open_channel(connection: &Connection) -> lapin::Result<Channel> {
    let channel = connection.create_channel().await?;
    match declare_topology(&channel, Limits::Declared).await {
        Err(e) if is_precondition_failed(&e) => {
            tracing::warn!(
                queue = QUEUE,
                error = %e,
                "the queue exists without the length limits; using it as it is"
            );
            let channel = connection.create_channel().await?;
            declare_topology(&channel, Limits::AsTheyAre).await?;
            Ok(channel)
        }
        Err(e) => Err(e),
        Ok(()) => Ok(channel),
    }
}

fn is_precondition_failed(error: &lapin::Error) -> bool {
    matches!(error.kind(), lapin::ErrorKind::ProtocolError(e) if e.get_id() == 406)
}

/// Whether `logs` is declared with its limits or taken as it exists.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Limits {
    Declared,
    AsTheyAre,
}

/// Declares the whole topology on `channel`. Idempotent.
async fn declare_topology(channel: &Channel, limits: Limits) -> lapin::Result<()> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .exchange_declare(
            EXCHANGE.into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await?;
    channel
        .exchange_declare(
            DEAD_LETTER_EXCHANGE.into(),
            ExchangeKind::Fanout,
            durable,
            FieldTable::default(),
        )
        .await?;

    let queue = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .queue_declare(DEAD_LETTER_QUEUE.into(), queue, FieldTable::default())
        .await?;
    channel
        .queue_bind(
            DEAD_LETTER_QUEUE.into(),
            DEAD_LETTER_EXCHANGE.into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(LongString::from(DEAD_LETTER_EXCHANGE.as_bytes().to_vec())),
    );
    arguments.insert(
        "x-max-length".into(),
        AMQPValue::LongLongInt(QUEUE_MAX_LENGTH),
    );
    arguments.insert(
        "x-max-length-bytes".into(),
        AMQPValue::LongLongInt(QUEUE_MAX_BYTES),
    );
    arguments.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    let (options, arguments) = match limits {
        Limits::Declared => (queue, arguments),
        Limits::AsTheyAre => (
            QueueDeclareOptions {
                passive: true,
                ..queue
            },
            FieldTable::default(),
        ),
    };
    channel
        .queue_declare(QUEUE.into(), options, arguments)
        .await?;
    for level in Level::ALL {
        channel
            .queue_bind(
                QUEUE.into(),
                EXCHANGE.into(),
                level.routing_key().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}
