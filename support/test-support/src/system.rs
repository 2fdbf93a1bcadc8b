//! [`System`]: all six services in one process, each on random ports,
//! against real servers of the test's own.

use std::time::Duration;

use crate::services::{
    TestAuth, TestListener, TestLogger, config, spawn_auth_with, spawn_broker, spawn_front_end,
    spawn_listener, spawn_logger, spawn_mail,
};
use crate::{MailCatcher, RabbitVhost, TestApp, free_port, fresh_postgres_database, init_tracing};

/// Every service running, wired as in a deployment: a fresh PostgreSQL
/// database, a MongoDB-compatible server, a RabbitMQ vhost and mailcrab's
/// SMTP catcher. Each service can be stopped alone to make an outage.
pub struct System {
    pub broker: TestApp,
    pub front_end: TestApp,
    pub logger: TestLogger,
    pub auth: TestAuth,
    pub mail: TestApp,
    pub listener: TestListener,
    /// Mail that reached the SMTP server.
    pub catcher: MailCatcher,
    pub vhost: RabbitVhost,
}

impl System {
    pub async fn start() -> Self {
        init_tracing();
        let logger = spawn_logger().await;
        let logger_url = logger.base_url();
        let auth = spawn_auth_with(config::auth(
            &fresh_postgres_database().await,
            logger_url.clone(),
        ))
        .await;
        let catcher = MailCatcher::start().await;
        let mail = spawn_mail(config::mail(catcher.port)).await;
        let vhost = RabbitVhost::create();
        let amqp_url = service_kit::config::Url::parse(&vhost.url()).expect("an AMQP URL");
        let listener = spawn_listener(config::listener(amqp_url.clone(), logger_url.clone())).await;
        // The page's origin is known before the front-end starts, so the
        // broker can be told to answer it.
        let front_end_port = free_port();
        let page_origin = format!("http://127.0.0.1:{front_end_port}");
        let broker = spawn_broker(broker_service::Config {
            auth_url: auth.base_url().into(),
            logger_url: logger_url.into(),
            logger_rpc_addr: crate::targets(&logger.rpc_addr),
            logger_grpc_url: logger.grpc_url.clone().into(),
            mail_url: mail.base_url().into(),
            amqp_url,
            upstream_timeout: Duration::from_secs(5),
            security: config::broker_security(&[&page_origin]),
            ..config::broker()
        })
        .await;
        let mut front_end = config::front_end(broker.base_url().as_str());
        front_end.server.http_addr.set_port(front_end_port);
        front_end.origins =
            service_kit::origins::Origins::new([&page_origin]).expect("a valid origin");
        let front_end = spawn_front_end(front_end).await;
        Self {
            broker,
            front_end,
            logger,
            auth,
            mail,
            listener,
            catcher,
            vhost,
        }
    }
}
