//! MongoDB down: the service still starts and serves, answers 503 promptly,
//! and `/readyz` names MongoDB; the index appears once MongoDB is there.

use std::time::{Duration, Instant};

use proto::rpc::{LogRpcError, LogServiceClient};
use serde_json::json;
use tarpc::tokio_serde::formats::Json;
use test_support::{config, spawn_logger, spawn_logger_with};
use tonic::Code;

/// The driver gives up on server selection after 3 s; allow for a slow machine.
const PROMPTLY: Duration = Duration::from_secs(6);

#[tokio::test]
async fn a_stopped_mongodb_is_a_prompt_503_and_not_ready() {
    let mut logger = spawn_logger().await;
    let (status, _) = logger.post("/log", json!({"name": "before"})).await;
    assert_eq!(status, 202);

    drop(logger.mongo.take());

    let started = Instant::now();
    let (status, envelope) = logger.post("/log", json!({"name": "during"})).await;
    assert_eq!(status, 503, "{envelope:?}");
    assert!(envelope.error);
    assert!(envelope.message.contains("MongoDB"), "{}", envelope.message);
    assert!(started.elapsed() < PROMPTLY, "took {:?}", started.elapsed());

    let started = Instant::now();
    let (status, envelope) = logger.get("/logs").await;
    assert_eq!(status, 503, "{envelope:?}");
    assert!(started.elapsed() < PROMPTLY, "took {:?}", started.elapsed());

    let (status, envelope) = logger.get("/readyz").await;
    assert_eq!(status, 503);
    assert!(envelope.message.contains("mongodb"), "{}", envelope.message);
    assert_ne!(envelope.data.unwrap()["mongodb"], "ok");
    let (status, _) = logger.get("/healthz").await;
    assert_eq!(status, 200, "alive all the same");
    logger.stop().await;
}

#[tokio::test]
async fn the_service_starts_without_mongodb_and_the_other_transports_say_unavailable() {
    let url = format!("mongodb://127.0.0.1:{}", config::DEAD_PORT);
    let mut logger = spawn_logger_with(None, config::logger(&url)).await;

    let (status, envelope) = logger.get("/readyz").await;
    assert_eq!(status, 503);
    assert!(envelope.message.contains("mongodb"), "{}", envelope.message);

    let transport = tarpc::serde_transport::tcp::connect(&logger.rpc_addr, Json::default)
        .await
        .unwrap();
    let client = LogServiceClient::new(tarpc::client::Config::default(), transport).spawn();
    let started = Instant::now();
    let answer = client
        .log_info(
            tarpc::context::current(),
            "event".into(),
            String::new(),
            None,
        )
        .await
        .unwrap();
    assert!(
        matches!(answer, Err(LogRpcError::Unavailable(_))),
        "{answer:?}"
    );
    assert!(started.elapsed() < PROMPTLY);

    let mut grpc =
        proto::grpc::log_service_client::LogServiceClient::connect(logger.grpc_url.to_string())
            .await
            .unwrap();
    let status = grpc
        .write_log(proto::grpc::LogRequest {
            log_entry: Some(proto::grpc::Log {
                name: "event".into(),
                data: String::new(),
                id: String::new(),
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");

    // Shutdown is not held up by the index task still retrying.
    logger.stop().await;
}

#[tokio::test]
async fn the_listing_index_is_created_at_start_and_after_a_drop() {
    let mut logger = spawn_logger().await;
    let mongo = mongodb::Client::with_uri_str(logger.mongo.as_ref().unwrap().url())
        .await
        .unwrap();
    let logs = mongo
        .database("logs")
        .collection::<mongodb::bson::Document>("logs");

    let has_index = || async {
        logs.list_index_names()
            .await
            .is_ok_and(|names| names.iter().any(|n| n == "created_at_-1__id_-1"))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !has_index().await {
        assert!(Instant::now() < deadline, "no created_at index");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (status, _) = logger.delete("/logs").await;
    assert_eq!(status, 202);
    assert!(has_index().await, "re-created after the drop");
    logger.stop().await;
}
