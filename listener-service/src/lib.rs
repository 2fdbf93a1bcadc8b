//! listener-service: consumes log events from RabbitMQ and stores them
//! through the logger (docs/contracts.md §4). Its HTTP port serves `/healthz`,
//! `/readyz` (a consumer is running and the logger answers) and `/metrics`.

pub mod config;
mod consumer;
mod metrics;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::future::BoxFuture;
use service_kit::health::{HttpCheck, ReadinessCheck};
use service_kit::upstream::ServiceClient;
use service_kit::{Bound, Service};

pub use config::Config;
pub use metrics::Metrics;

use crate::consumer::Consumer;

/// The listener, its HTTP port bound: consumes until stopped, and drains
/// its in-flight events before the process ends.
pub async fn service(config: Config) -> anyhow::Result<Bound> {
    Ok(service_counted(config).await?.0)
}

/// As [`service`], with the listener's counters (for tests).
pub async fn service_counted(config: Config) -> anyhow::Result<(Bound, Arc<Metrics>)> {
    let service = Service::new("listener-service", &config.server);
    let metrics = Metrics::registered(service.metrics());
    let consumer = Arc::new(Consumer {
        amqp_url: config.amqp_url.to_string(),
        logger: ServiceClient::new(
            "logger-service",
            config.logger_url.clone(),
            config.logger_timeout,
        )
        .with_metrics(service.metrics()),
        prefetch: config.prefetch,
        retry_backoff: config.retry_backoff,
        shutdown_grace: config.server.shutdown_grace,
        metrics: metrics.clone(),
        served: service.metrics().requests_on("amqp", proto::amqp::QUEUE),
    });
    let bound = service
        .ready(Consuming(metrics.clone()))
        .ready(HttpCheck::readyz("logger-service", &config.logger_url))
        .server("amqp consumer", |stop| consumer.run(stop))
        .bind()
        .await?;
    Ok((bound, metrics))
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
