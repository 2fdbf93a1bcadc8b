//! The broker against a real RabbitMQ whose `logs` queue is full: the
//! publish is refused with a nack and the broker answers 503, instead of the
//! queue growing without end.

use lapin::options::QueueDeclareOptions;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties};
use proto::amqp::{DEAD_LETTER_EXCHANGE, QUEUE};
use reqwest::StatusCode;
use serde_json::json;
use service_kit::config::Url;
use test_support::{RabbitVhost, config, spawn_broker};

#[tokio::test]
async fn a_full_queue_is_a_503_and_an_older_queue_is_used_as_it_is() {
    let vhost = RabbitVhost::create();
    // `logs` as an older deployment (or an operator) declared it: other
    // arguments than the broker's, and room for three events only.
    let connection = Connection::connect(&vhost.url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(DEAD_LETTER_EXCHANGE.into()),
    );
    arguments.insert("x-max-length".into(), AMQPValue::LongLongInt(3));
    arguments.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    channel
        .queue_declare(
            QUEUE.into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            arguments,
        )
        .await
        .unwrap();
    connection.close(200, "done".into()).await.unwrap();

    let broker = spawn_broker(broker_service::Config {
        amqp_url: Url::parse(&vhost.url()).unwrap(),
        ..config::broker()
    })
    .await;
    let publish = |n: usize| json!({"action": "log", "transport": "amqp", "log": {"name": format!("event-{n}"), "data": "x"}});
    for n in 0..3 {
        let (status, body) = broker.post_json("/handle", publish(n)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    let (status, body) = broker.post_json("/handle", publish(3)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], true);
    assert!(
        body["message"].as_str().unwrap().contains("queue is full"),
        "{body}"
    );
    assert_eq!(vhost.messages_ready(QUEUE), 3, "nothing past the limit");
}
