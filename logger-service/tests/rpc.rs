//! The tarpc server, through a real tarpc client over TCP.

use proto::MAX_LOG_NAME_BYTES;
use proto::rpc::{LogRpcError, LogServiceClient};
use tarpc::tokio_serde::formats::Json;
use test_support::spawn_logger;

async fn client(addr: &str) -> LogServiceClient {
    let transport = tarpc::serde_transport::tcp::connect(addr, Json::default)
        .await
        .expect("the RPC port accepts");
    LogServiceClient::new(tarpc::client::Config::default(), transport).spawn()
}

#[tokio::test]
async fn log_info_stores_the_entry() {
    let mut logger = spawn_logger().await;
    let client = client(&logger.rpc_addr).await;
    let answer = client
        .log_info(
            tarpc::context::current(),
            "event".into(),
            "via rpc".into(),
            None,
        )
        .await
        .expect("the call completes");
    assert_eq!(answer, Ok("Processed payload via RPC: event".to_owned()));

    let entries = logger.list_logs("").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (entries[0].name.as_str(), entries[0].data.as_str()),
        ("event", "via rpc")
    );

    // The connection is reused for the next call.
    let answer = client
        .log_info(
            tarpc::context::current(),
            "second".into(),
            String::new(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(answer, Ok("Processed payload via RPC: second".to_owned()));
    assert_eq!(logger.list_logs("").await[0].name, "second");
    logger.stop().await;
}

#[tokio::test]
async fn invalid_entries_are_refused_and_not_stored() {
    let mut logger = spawn_logger().await;
    let client = client(&logger.rpc_addr).await;
    for name in [
        String::new(),
        " ".into(),
        "n".repeat(MAX_LOG_NAME_BYTES + 1),
    ] {
        let answer = client
            .log_info(tarpc::context::current(), name.clone(), "x".into(), None)
            .await
            .unwrap();
        assert!(
            matches!(answer, Err(LogRpcError::InvalidArgument(_))),
            "{name:.20?}: {answer:?}"
        );
    }
    assert!(logger.list_logs("").await.is_empty());
    logger.stop().await;
}

#[tokio::test]
async fn shutdown_closes_open_rpc_connections() {
    let mut logger = spawn_logger().await;
    let client = client(&logger.rpc_addr).await;
    client
        .log_info(
            tarpc::context::current(),
            "before".into(),
            String::new(),
            None,
        )
        .await
        .unwrap()
        .unwrap();
    let rpc_addr = logger.rpc_addr.clone();
    // The open connection does not hold the shutdown up.
    logger.stop().await;
    assert!(
        client
            .log_info(
                tarpc::context::current(),
                "after".into(),
                String::new(),
                None
            )
            .await
            .is_err()
    );
    assert!(tokio::net::TcpStream::connect(&rpc_addr).await.is_err());
}

#[tokio::test]
async fn a_call_repeated_with_its_id_stores_the_entry_once() {
    let mut logger = spawn_logger().await;
    let client = client(&logger.rpc_addr).await;
    let id = test_support::new_entry_id();
    for _ in 0..3 {
        let answer = client
            .log_info(
                tarpc::context::current(),
                "once".into(),
                "x".into(),
                Some(id.clone()),
            )
            .await
            .unwrap();
        assert_eq!(answer, Ok("Processed payload via RPC: once".to_owned()));
    }
    let entries = logger.list_logs("").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].id, id);
    logger.stop().await;
}
