//! The gRPC server, through a real tonic client.

use proto::MAX_LOG_DATA_BYTES;
use proto::grpc::log_service_client::LogServiceClient;
use proto::grpc::{Log, LogRequest};
use test_support::spawn_logger;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

fn request(name: &str, data: &str) -> LogRequest {
    LogRequest {
        log_entry: Some(Log {
            name: name.to_owned(),
            data: data.to_owned(),
            id: String::new(),
        }),
    }
}

#[tokio::test]
async fn write_log_stores_the_entry() {
    let mut logger = spawn_logger().await;
    let mut client = LogServiceClient::connect(logger.grpc_url.to_string())
        .await
        .unwrap();
    let answer = client
        .write_log(request("event", "via grpc"))
        .await
        .unwrap();
    assert_eq!(answer.into_inner().result, "logged!");

    let entries = logger.list_logs("").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (entries[0].name.as_str(), entries[0].data.as_str()),
        ("event", "via grpc")
    );
    logger.stop().await;
}

#[tokio::test]
async fn invalid_entries_are_invalid_argument_and_not_stored() {
    let mut logger = spawn_logger().await;
    let mut client = LogServiceClient::connect(logger.grpc_url.to_string())
        .await
        .unwrap();
    let big_data = "d".repeat(MAX_LOG_DATA_BYTES + 1);
    for req in [
        request("", "x"),
        request("   ", "x"),
        request("event", &big_data),
        LogRequest { log_entry: None },
    ] {
        let status = client.write_log(req).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    }
    assert!(logger.list_logs("").await.is_empty());
    logger.stop().await;
}

#[tokio::test]
async fn the_health_service_reports_serving() {
    let mut logger = spawn_logger().await;
    let channel = tonic::transport::Endpoint::from_shared(logger.grpc_url.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["", "logs.LogService"] {
        let answer = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.status(), ServingStatus::Serving, "{service:?}");
    }
    logger.stop().await;
}

#[tokio::test]
async fn a_write_repeated_with_its_id_stores_the_entry_once() {
    let mut logger = spawn_logger().await;
    let mut client = LogServiceClient::connect(logger.grpc_url.to_string())
        .await
        .unwrap();
    let id = test_support::new_entry_id();
    for _ in 0..3 {
        let mut write = request("once", "x");
        write.log_entry.as_mut().unwrap().id = id.clone();
        client.write_log(write).await.unwrap();
    }
    let entries = logger.list_logs("").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].id, id);
    logger.stop().await;
}
