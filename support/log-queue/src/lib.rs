//! The RabbitMQ side of the log events (docs/contracts.md §4):
//!
//! - [`declare_topology`]: the durable topic exchange `logs_topic`, the
//!   durable queue `logs` shared by every listener and bound to
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
use lapin::{Channel, ExchangeKind};
use proto::amqp::{DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE, EXCHANGE, Level, QUEUE};

pub use publisher::{PublishError, Publisher};
pub use replay::{ReplayError, replay_dead_letters};

/// Declares the whole topology on `channel`. Idempotent.
pub async fn declare_topology(channel: &Channel) -> lapin::Result<()> {
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
    channel
        .queue_declare(QUEUE.into(), queue, arguments)
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
