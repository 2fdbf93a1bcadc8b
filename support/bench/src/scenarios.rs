//! What is measured: each path through the broker, each service directly,
//! and the MongoDB driver beneath the logger. The ceilings beneath them
//! are measured by other tools (`external`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use mongodb::bson::{Document, doc};
use proto::grpc::log_service_client::LogServiceClient as GrpcClient;
use proto::grpc::{Log, LogRequest};
use proto::http::Transport;
use proto::rpc::LogServiceClient as RpcClient;
use serde_json::{Value, json};
use tarpc::tokio_serde::formats::Json;
use tonic::transport::Channel;

use crate::load::Outcome;
use proto::ports;

/// Where the native stack listens (docs/contracts.md §2).
pub struct Endpoints {
    pub broker: String,
    pub authentication: String,
    pub mail: String,
    pub logger: String,
    pub logger_rpc: String,
    pub logger_grpc: String,
    pub mongo: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Self {
            broker: ports::local_http(ports::BROKER),
            authentication: ports::local_http(ports::AUTHENTICATION),
            mail: ports::local_http(ports::MAIL),
            logger: ports::local_http(ports::LOGGER_HTTP),
            logger_rpc: ports::local(ports::LOGGER_RPC),
            logger_grpc: ports::local_http(ports::LOGGER_GRPC),
            mongo: format!("mongodb://127.0.0.1:{}", ports::MONGODB),
        }
    }
}

/// The `Authorization` header of every request the bench sends
/// (`TokenKey::tool_headers`, with the key project/bench.sh points at).
pub fn signed_in() -> anyhow::Result<reqwest::header::HeaderMap> {
    Ok(service_kit::token::TokenKey::tool_headers(
        "bench@localhost",
    )?)
}

/// Every client, created once and shared by all workers, as the services
/// themselves do.
pub struct Clients {
    endpoints: Endpoints,
    http: reqwest::Client,
    rpc: RpcClient,
    grpc: GrpcClient<Channel>,
    mongo: mongodb::Collection<Document>,
    sequence: AtomicU64,
}

impl Clients {
    pub async fn connect(endpoints: Endpoints) -> anyhow::Result<Arc<Self>> {
        // Below the broker's idle keep-alive limit, as its own clients.
        let http = service_kit::upstream::client_builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .default_headers(signed_in()?)
            .build()?;
        let transport =
            tarpc::serde_transport::tcp::connect(&endpoints.logger_rpc, Json::default).await?;
        let rpc = RpcClient::new(tarpc::client::Config::default(), transport).spawn();
        let grpc = GrpcClient::new(
            Channel::from_shared(endpoints.logger_grpc.clone())?
                .connect()
                .await?,
        );
        let mongo = mongodb::Client::with_uri_str(&endpoints.mongo)
            .await?
            .database("bench")
            .collection("inserts");
        Ok(Arc::new(Self {
            endpoints,
            http,
            rpc,
            grpc,
            mongo,
            sequence: AtomicU64::new(0),
        }))
    }

    pub fn broker(&self) -> &str {
        &self.endpoints.broker
    }

    pub fn logger(&self) -> &str {
        &self.endpoints.logger
    }

    /// A function that sends `GET url` and reads the answer.
    pub fn getter(
        self: &Arc<Self>,
        url: String,
    ) -> impl Fn() -> BoxFuture<'static, Outcome> + Send + Sync + 'static {
        let clients = self.clone();
        move || {
            let (c, url) = (clients.clone(), url.clone());
            Box::pin(async move { c.answer(c.http.get(url)).await })
        }
    }

    pub async fn delete(&self, url: String) -> Outcome {
        self.answer(self.http.delete(url)).await
    }

    fn next(&self) -> u64 {
        self.sequence.fetch_add(1, Ordering::Relaxed)
    }

    async fn post(&self, url: String, body: Option<Value>) -> Outcome {
        let request = self.http.post(url);
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        self.answer(request).await
    }

    async fn answer(&self, request: reqwest::RequestBuilder) -> Outcome {
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        if status.is_success() {
            response.bytes().await.map(drop).map_err(|e| e.to_string())
        } else {
            Err(format!(
                "{status}: {}",
                response.text().await.unwrap_or_default()
            ))
        }
    }
}

/// One measured path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    BrokerHit,
    BrokerLog(Transport),
    BrokerAuth,
    BrokerMail,
    AuthDirect,
    MailDirect,
    LoggerHttp,
    LoggerRpc,
    LoggerGrpc,
    MongoInsert,
}

impl Path {
    pub const THROUGH_BROKER: [Path; 7] = [
        Path::BrokerHit,
        Path::BrokerLog(Transport::Rpc),
        Path::BrokerLog(Transport::Http),
        Path::BrokerLog(Transport::Grpc),
        Path::BrokerLog(Transport::Amqp),
        Path::BrokerAuth,
        Path::BrokerMail,
    ];
    pub const STRAIGHT_AT_SERVICES: [Path; 5] = [
        Path::LoggerHttp,
        Path::LoggerRpc,
        Path::LoggerGrpc,
        Path::AuthDirect,
        Path::MailDirect,
    ];
    pub const BENEATH_LOGGER: [Path; 1] = [Path::MongoInsert];

    pub fn label(self) -> String {
        match self {
            Path::BrokerHit => "broker hit (POST /)".into(),
            Path::BrokerLog(t) => format!("log via {t}"),
            Path::BrokerAuth => "auth".into(),
            Path::BrokerMail => "mail".into(),
            Path::AuthDirect => "authentication POST /authenticate".into(),
            Path::MailDirect => "mail POST /send".into(),
            Path::LoggerHttp => "logger HTTP POST /log".into(),
            Path::LoggerRpc => "logger tarpc log_info".into(),
            Path::LoggerGrpc => "logger gRPC WriteLog".into(),
            Path::MongoInsert => "MongoDB insert_one, the logger's driver".into(),
        }
    }

    /// The broker's route and body for this path's `n`th request; `None`
    /// for a path that does not go through the broker.
    pub fn broker_request(self, n: u64) -> Option<(&'static str, Option<Value>)> {
        let body = match self {
            Path::BrokerHit => return Some(("/", None)),
            Path::BrokerLog(transport) => json!({"action": "log", "transport": transport.as_str(),
                "log": {"name": "bench", "data": format!("entry {n} via {transport}")}}),
            Path::BrokerAuth => {
                json!({"action": "auth", "auth": {"email": "admin@example.com", "password": "verysecret"}})
            }
            Path::BrokerMail => json!({"action": "mail", "mail": {"from": "bench@example.com",
                "to": "sink@example.com", "subject": format!("bench {n}"), "message": "Hello from the bench."}}),
            _ => return None,
        };
        Some(("/handle", Some(body)))
    }

    /// A function that sends one request of this path.
    pub fn request(
        self,
        clients: Arc<Clients>,
    ) -> impl Fn() -> BoxFuture<'static, Outcome> + Send + Sync + 'static {
        move || {
            let c = clients.clone();
            Box::pin(async move {
                let n = c.next();
                let broker = &c.endpoints.broker;
                match self {
                    Path::BrokerHit | Path::BrokerLog(_) | Path::BrokerAuth | Path::BrokerMail => {
                        let (route, body) = self.broker_request(n).expect("a broker path");
                        c.post(format!("{broker}{route}"), body).await
                    }
                    Path::AuthDirect => {
                        let body = json!({"email": "admin@example.com", "password": "verysecret"});
                        c.post(
                            format!("{}/authenticate", c.endpoints.authentication),
                            Some(body),
                        )
                        .await
                    }
                    Path::MailDirect => {
                        let body = json!({"from": "bench@example.com", "to": "sink@example.com",
                            "subject": format!("direct {n}"), "message": "Hello from the bench."});
                        c.post(format!("{}/send", c.endpoints.mail), Some(body))
                            .await
                    }
                    Path::LoggerHttp => {
                        let body = json!({"name": "bench", "data": format!("entry {n} straight over HTTP")});
                        c.post(format!("{}/log", c.endpoints.logger), Some(body))
                            .await
                    }
                    Path::LoggerRpc => {
                        let answer = c
                            .rpc
                            .log_info(
                                tarpc::context::current(),
                                "bench".into(),
                                format!("entry {n} over tarpc"),
                                None,
                            )
                            .await;
                        match answer {
                            Ok(Ok(_)) => Ok(()),
                            Ok(Err(e)) => Err(e.to_string()),
                            Err(e) => Err(e.to_string()),
                        }
                    }
                    Path::LoggerGrpc => {
                        let request = LogRequest {
                            log_entry: Some(Log {
                                name: "bench".into(),
                                data: format!("entry {n} over gRPC"),
                                id: String::new(),
                            }),
                        };
                        c.grpc
                            .clone()
                            .write_log(request)
                            .await
                            .map(drop)
                            .map_err(|e| e.to_string())
                    }
                    Path::MongoInsert => c
                        .mongo
                        .insert_one(doc! {"name": "bench", "data": format!("raw insert {n}")})
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string()),
                }
            })
        }
    }
}
