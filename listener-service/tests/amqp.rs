//! The AMQP path against the real RabbitMQ (a vhost of each test's own), a
//! real logger-service and a real MongoDB-compatible server.

use std::time::{Duration, Instant};

use lapin::options::{BasicGetOptions, BasicPublishOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use listener_service::{Config, Metrics};
use proto::amqp::{
    DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE, DEAD_LETTER_REASON_HEADER, EXCHANGE, Level, LogEvent,
    ORIGINAL_ROUTING_KEY_HEADER, QUEUE,
};
use service_kit::config::Url;
use test_support::{
    RabbitVhost, TestListener, TestLogger, config, eventually, spawn_listener, spawn_logger,
};

struct Stack {
    vhost: RabbitVhost,
    logger: TestLogger,
    publisher: log_queue::Publisher,
}

impl Stack {
    async fn start() -> Self {
        let vhost = RabbitVhost::create();
        let logger = spawn_logger().await;
        let publisher = log_queue::Publisher::new(vhost.url(), Duration::from_secs(5));
        Self {
            vhost,
            logger,
            publisher,
        }
    }

    fn listener_config(&self) -> Config {
        config::listener(
            Url::parse(&self.vhost.url()).unwrap(),
            self.logger.base_url(),
        )
    }

    async fn listener(&self) -> TestListener {
        spawn_listener(self.listener_config()).await
    }

    async fn publish(&self, name: &str) {
        self.publish_as(name, &test_support::new_entry_id()).await;
    }

    /// Publishes an event as message `id`, as the broker does.
    async fn publish_as(&self, name: &str, id: &str) {
        let event = LogEvent {
            name: name.into(),
            data: format!("data of {name}"),
        };
        self.publisher
            .publish(Level::Info, &event, id, &[])
            .await
            .expect("RabbitMQ confirms the event");
    }

    /// Publishes a raw body, bypassing the publisher's serialisation.
    async fn publish_raw(&self, body: &[u8]) {
        let connection = Connection::connect(&self.vhost.url(), ConnectionProperties::default())
            .await
            .unwrap();
        let channel = connection.create_channel().await.unwrap();
        channel
            .basic_publish(
                EXCHANGE.into(),
                "log.ERROR".into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default(),
            )
            .await
            .unwrap();
        connection.close(200, "done".into()).await.unwrap();
    }

    /// Takes every message from `logs.dead`, in order: its
    /// `x-dead-letter-reason` and `x-original-routing-key` headers.
    async fn dead_letters(&self) -> Vec<(String, String)> {
        let connection = Connection::connect(&self.vhost.url(), ConnectionProperties::default())
            .await
            .unwrap();
        let channel = connection.create_channel().await.unwrap();
        let mut found = Vec::new();
        while let Some(message) = channel
            .basic_get(DEAD_LETTER_QUEUE.into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            let headers = message
                .delivery
                .properties
                .headers()
                .clone()
                .unwrap_or_default();
            let text = |name: &str| match headers.inner().get(name) {
                Some(AMQPValue::LongString(value)) => value.to_string(),
                other => format!("{other:?}"),
            };
            found.push((
                text(DEAD_LETTER_REASON_HEADER),
                text(ORIGINAL_ROUTING_KEY_HEADER),
            ));
        }
        connection.close(200, "done".into()).await.unwrap();
        found
    }

    async fn stored_names(&self) -> Vec<String> {
        let entries = self.logger.list_logs("?limit=1000").await;
        entries.into_iter().map(|e| e.name).collect()
    }

    async fn wait_for_stored(&self, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let names = self.stored_names().await;
            if names.len() >= count {
                return names;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} events stored",
                names.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn a_published_event_is_stored_and_acknowledged() {
    let stack = Stack::start().await;
    let mut listener = stack.listener().await;
    stack.publish("first").await;
    assert_eq!(stack.wait_for_stored(1).await, ["first"]);
    assert!(
        eventually(Duration::from_secs(5), || async {
            Metrics::get(&listener.metrics.stored) == 1
        })
        .await
    );
    assert_eq!(stack.vhost.messages_ready(QUEUE), 0);
    listener.stop().await;
}

#[tokio::test]
async fn events_published_while_no_listener_runs_wait_and_are_all_stored() {
    let stack = Stack::start().await;
    for i in 0..100 {
        stack.publish(&format!("event-{i:03}")).await;
    }
    assert_eq!(
        stack.vhost.messages_ready(QUEUE),
        100,
        "the events wait in the durable queue"
    );

    let mut listener = stack.listener().await;
    let mut names = stack.wait_for_stored(100).await;
    names.sort();
    let expected: Vec<String> = (0..100).map(|i| format!("event-{i:03}")).collect();
    assert_eq!(names, expected, "each event stored exactly once");
    listener.stop().await;
}

#[tokio::test]
async fn a_poison_message_is_dead_lettered_and_the_next_event_still_flows() {
    let stack = Stack::start().await;
    let mut listener = stack.listener().await;
    listener.consuming().await;
    stack.publish_raw(b"this is not JSON").await;
    stack
        .publish_raw(br#"{"name": "", "data": "a blank name"}"#)
        .await;
    stack
        .publish_raw(&vec![b' '; proto::amqp::MAX_EVENT_BYTES + 1])
        .await;
    stack.publish("after-the-poison").await;

    assert_eq!(stack.wait_for_stored(1).await, ["after-the-poison"]);
    assert!(
        eventually(Duration::from_secs(5), || async {
            stack.vhost.messages_ready(DEAD_LETTER_QUEUE) == 3
        })
        .await
    );
    assert_eq!(Metrics::get(&listener.metrics.dead_lettered), 3);
    assert_eq!(
        Metrics::get(&listener.metrics.retried),
        0,
        "poison is not retried"
    );
    listener.stop().await;

    // Each with its reason, and the routing key it came with.
    let reasons = stack.dead_letters().await;
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[0].0.starts_with("not a log event"), "{reasons:?}");
    assert!(reasons[1].0.contains("name"), "{reasons:?}");
    assert!(reasons[2].0.contains("bytes"), "{reasons:?}");
    assert!(
        reasons.iter().all(|(_, key)| key == "log.ERROR"),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn two_listeners_share_the_queue_without_storing_twice() {
    let stack = Stack::start().await;
    let mut one = stack.listener().await;
    let mut two = stack.listener().await;
    // Both consumers must be attached before the events arrive.
    one.consuming().await;
    two.consuming().await;
    for i in 0..60 {
        stack.publish(&format!("shared-{i:02}")).await;
    }
    stack.wait_for_stored(60).await;
    // Give a duplicate, if there were one, time to land.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        stack.stored_names().await.len(),
        60,
        "no event stored twice"
    );
    let (a, b) = (
        Metrics::get(&one.metrics.stored),
        Metrics::get(&two.metrics.stored),
    );
    assert_eq!(a + b, 60);
    assert!(a > 0 && b > 0, "both listeners took a share: {a} and {b}");
    one.stop().await;
    two.stop().await;
}

#[tokio::test]
async fn the_listener_reconnects_after_its_connection_is_closed() {
    let stack = Stack::start().await;
    let mut listener = stack.listener().await;
    stack.publish("before").await;
    stack.wait_for_stored(1).await;
    // Acknowledged too, so the cut cannot bring it back.
    assert!(
        eventually(Duration::from_secs(5), || async {
            Metrics::get(&listener.metrics.stored) == 1
        })
        .await
    );

    assert!(stack.vhost.close_connections() >= 1);
    assert!(
        eventually(Duration::from_secs(15), || async {
            Metrics::get(&listener.metrics.connections) >= 2
        })
        .await,
        "the listener did not reconnect"
    );
    stack.publish("after").await;
    let names = stack.wait_for_stored(2).await;
    assert_eq!(names, ["after", "before"]);
    listener.stop().await;
}

#[tokio::test]
async fn a_logger_outage_is_waited_out_and_nothing_is_dead_lettered() {
    let mut stack = Stack::start().await;
    let mut listener = stack.listener().await;
    listener.consuming().await;
    stack.logger.stop().await;
    for i in 0..40 {
        stack.publish(&format!("during-{i:02}")).await;
    }
    // Well past the old give-up point of a few attempts.
    assert!(
        eventually(Duration::from_secs(10), || async {
            Metrics::get(&listener.metrics.retried) >= 40
        })
        .await,
        "the stores are retried"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stack.vhost.messages_ready(DEAD_LETTER_QUEUE), 0);
    assert_eq!(Metrics::get(&listener.metrics.dead_lettered), 0);
    // Prefetch (16 here) bounds what the listener holds; the rest waits.
    assert!(stack.vhost.messages_ready(QUEUE) >= 40 - 16);

    stack.logger.restart().await;
    let mut names = stack.wait_for_stored(40).await;
    names.sort();
    let expected: Vec<String> = (0..40).map(|i| format!("during-{i:02}")).collect();
    assert_eq!(names, expected, "every event stored once, by itself");
    assert_eq!(stack.vhost.messages_ready(DEAD_LETTER_QUEUE), 0);
    listener.stop().await;
}

#[tokio::test]
async fn readyz_and_metrics_report_the_consumer() {
    let stack = Stack::start().await;
    let mut listener = stack.listener().await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            listener
                .client
                .get(listener.url("/readyz"))
                .send()
                .await
                .unwrap()
                .status()
                == 200
        })
        .await
    );
    stack.publish("counted").await;
    stack.wait_for_stored(1).await;
    // The acknowledgement follows the store.
    let metrics = || async {
        listener
            .client
            .get(listener.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert!(
        eventually(Duration::from_secs(5), || async {
            metrics().await.contains("listener_events_stored_total 1")
        })
        .await
    );
    assert!(metrics().await.contains("listener_consuming 1"));
    listener.stop().await;

    // With RabbitMQ out of reach there is no consumer, and readiness says so.
    let mut config = stack.listener_config();
    config.amqp_url = config::dead_url("amqp");
    let mut unreachable = spawn_listener(config).await;
    let (_, body) = unreachable.get_json("/readyz").await;
    assert_eq!(body["error"], true);
    assert_eq!(body["data"]["rabbitmq"], "no consumer is running");
    unreachable.stop().await;
}

/// The listener answers no web page: a form posted to it, or a script
/// reading its metrics, from any origin, is a 403 before any route runs.
#[tokio::test]
async fn a_browser_request_from_any_page_is_a_403() {
    let stack = Stack::start().await;
    let mut listener = stack.listener().await;
    for origin in [
        "http://evil.example",
        "http://localhost",
        "http://127.0.0.1:8081",
    ] {
        let (status, envelope) = listener
            .post_from_page(origin, "/", serde_json::json!({"name": "forged"}))
            .await;
        assert_eq!(status, 403, "POST / from {origin}: {envelope:?}");
        assert!(envelope.message.contains(origin), "{envelope:?}");
        for path in ["/metrics", "/readyz"] {
            let response = listener
                .client
                .get(listener.url(path))
                .header("origin", origin)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 403, "GET {path} from {origin}");
        }
    }
    // Without an Origin, the same routes answer.
    let response = listener
        .client
        .get(listener.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("listener_consuming")
    );
    listener.stop().await;
}

#[tokio::test]
async fn a_message_delivered_twice_is_stored_once() {
    let stack = Stack::start().await;
    // The same message id twice: a redelivery, as after a connection cut
    // between the store and the acknowledgement.
    let id = test_support::new_entry_id();
    stack.publish_as("twice", &id).await;
    stack.publish_as("twice", &id).await;
    stack.publish("after").await;
    let mut listener = stack.listener().await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            Metrics::get(&listener.metrics.stored) == 3
        })
        .await,
        "all three deliveries acknowledged"
    );
    let entries = stack.logger.list_logs("?limit=10").await;
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names.iter().filter(|n| **n == "twice").count(),
        1,
        "{names:?}"
    );
    assert!(
        entries.iter().any(|e| e.id == id),
        "stored under the message id"
    );
    listener.stop().await;
}

#[tokio::test]
async fn replay_dead_letters_puts_them_back_and_the_listener_stores_them() {
    let stack = Stack::start().await;
    // Three good events in logs.dead (as an older listener left them after
    // an outage), and one poison.
    let connection = Connection::connect(&stack.vhost.url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = log_queue::open_channel(&connection).await.unwrap();
    for body in [
        &br#"{"name": "back-0", "data": ""}"#[..],
        br#"{"name": "back-1", "data": ""}"#,
        br#"{"name": "back-2", "data": ""}"#,
        b"still poison",
    ] {
        let mut headers = FieldTable::default();
        headers.insert(
            ORIGINAL_ROUTING_KEY_HEADER.into(),
            AMQPValue::LongString("log.WARNING".into()),
        );
        headers.insert(
            DEAD_LETTER_REASON_HEADER.into(),
            AMQPValue::LongString("gave up".into()),
        );
        channel
            .basic_publish(
                DEAD_LETTER_EXCHANGE.into(),
                "log.WARNING".into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default().with_headers(headers),
            )
            .await
            .unwrap();
    }
    connection.close(200, "done".into()).await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            stack.vhost.messages_ready(DEAD_LETTER_QUEUE) == 4
        })
        .await
    );

    let moved = log_queue::replay_dead_letters(&stack.vhost.url())
        .await
        .unwrap();
    assert_eq!(moved, 4);
    assert_eq!(stack.vhost.messages_ready(QUEUE), 4, "back in the queue");

    let mut listener = stack.listener().await;
    let mut names = stack.wait_for_stored(3).await;
    names.sort();
    assert_eq!(names, ["back-0", "back-1", "back-2"]);
    // The poison one is judged again, and goes back with its new reason.
    assert!(
        eventually(Duration::from_secs(5), || async {
            stack.vhost.messages_ready(DEAD_LETTER_QUEUE) == 1
        })
        .await
    );
    listener.stop().await;
    let reasons = stack.dead_letters().await;
    assert_eq!(reasons.len(), 1);
    assert!(reasons[0].0.starts_with("not a log event"), "{reasons:?}");
    assert_eq!(reasons[0].1, "log.WARNING");
}
