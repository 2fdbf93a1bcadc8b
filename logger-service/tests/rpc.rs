//! The tarpc server, through a real tarpc client over TCP.

use std::time::Duration;

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

/// One length-delimited JSON frame, as tarpc's transport writes them.
async fn send_frame(stream: &mut tokio::net::TcpStream, frame: &serde_json::Value) {
    use tokio::io::AsyncWriteExt;
    let bytes = serde_json::to_vec(frame).unwrap();
    stream
        .write_all(&(bytes.len() as u32).to_be_bytes())
        .await
        .unwrap();
    stream.write_all(&bytes).await.unwrap();
}

async fn read_frame(stream: &mut tokio::net::TcpStream) -> serde_json::Value {
    use tokio::io::AsyncReadExt;
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).await.unwrap();
    let mut bytes = vec![0u8; u32::from_be_bytes(length) as usize];
    stream.read_exact(&mut bytes).await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn a_deadline_near_the_maximum_is_clamped_not_a_panic() {
    let mut logger = spawn_logger().await;
    let request = |id: u64, secs: u64| {
        let call = tarpc::ClientMessage::Request(tarpc::Request {
            context: tarpc::context::current(),
            id,
            message: proto::rpc::LogServiceRequest::LogInfo {
                name: format!("far-{id}"),
                data: String::new(),
                id: None,
            },
        });
        let mut frame = serde_json::to_value(call).unwrap();
        frame["Request"]["context"]["deadline"]["secs"] = secs.into();
        frame
    };
    let mut stream = tokio::net::TcpStream::connect(&logger.rpc_addr)
        .await
        .unwrap();
    send_frame(&mut stream, &request(1, u64::MAX)).await;
    let answer = tokio::time::timeout(Duration::from_secs(10), read_frame(&mut stream))
        .await
        .expect("an answer, not a dead connection");
    assert_eq!(answer["request_id"], 1, "{answer}");
    assert!(answer["message"]["Ok"].is_object(), "{answer}");
    // The same connection goes on serving.
    send_frame(&mut stream, &request(2, 5)).await;
    let answer = read_frame(&mut stream).await;
    assert_eq!(answer["request_id"], 2, "{answer}");
    assert_eq!(logger.list_logs("").await.len(), 2);
    logger.stop().await;
}
