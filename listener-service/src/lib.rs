//! listener-service: consumes log events from RabbitMQ and stores them
//! through the logger (docs/contracts.md §4). Its HTTP port serves `/healthz`,
//! `/readyz` (a consumer is running and the logger answers) and `/metrics`.

pub mod config;
mod consumer;
mod metrics;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::future::BoxFuture;
use service_kit::health::{self, HttpCheck, Readiness, ReadinessCheck};
use service_kit::http::HttpServer;
use service_kit::metrics::Metrics as ServiceMetrics;
use service_kit::shutdown::CancellationToken;
use service_kit::upstream::ServiceClient;

pub use config::Config;
pub use metrics::Metrics;

use crate::consumer::Consumer;

/// The listener, its HTTP port bound, ready to run.
pub struct Application {
    http: HttpServer,
    consumer: Arc<Consumer>,
    metrics: Arc<Metrics>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let service_metrics = ServiceMetrics::new();
        let metrics = Metrics::registered(&service_metrics);
        let consumer = Arc::new(Consumer {
            amqp_url: config.amqp_url.to_string(),
            logger: ServiceClient::new(
                "logger-service",
                config.logger_url.clone(),
                config.logger_timeout,
            )
            .with_metrics(&service_metrics),
            prefetch: config.prefetch,
            retry_backoff: config.retry_backoff,
            shutdown_grace: config.server.shutdown_grace,
            metrics: metrics.clone(),
            served: service_metrics.server("amqp", proto::amqp::QUEUE),
        });
        let readiness = Readiness::new()
            .with(Consuming(metrics.clone()))
            .with(HttpCheck::readyz("logger-service", &config.logger_url));
        let routes = health::routes(readiness);
        let http = HttpServer::bind("listener-service", &config.server, routes)
            .await?
            .with_metrics(service_metrics);
        Ok(Self {
            http,
            consumer,
            metrics,
        })
    }

    pub fn port(&self) -> u16 {
        self.http.port()
    }

    /// The counters, for tests and `/metrics`.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Consumes and serves HTTP until `shutdown` is cancelled; the consumer
    /// drains its in-flight events before the process ends.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let (http, consumer) = tokio::join!(
            self.http.run(shutdown.clone()),
            self.consumer.run(shutdown.clone())
        );
        http.and(consumer)
    }
}

/// Ready while a consumer runs on a live connection.
struct Consuming(Arc<Metrics>);

impl ReadinessCheck for Consuming {
    fn name(&self) -> &str {
        "rabbitmq"
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        let consuming = self.0.consuming.load(Ordering::Relaxed);
        Box::pin(async move {
            if consuming {
                Ok(())
            } else {
                Err("no consumer is running".to_owned())
            }
        })
    }
}
