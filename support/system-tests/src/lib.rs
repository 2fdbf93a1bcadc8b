//! The whole system in one process, each service on a random port, against
//! real servers: a fresh PostgreSQL database, a MongoDB-compatible server, a
//! RabbitMQ vhost of its own and mailcrab's SMTP catcher. Plus [`Browser`],
//! a small WebDriver client for headless Chromium, and [`page`], the walk
//! through the test page that the browser tests share.

mod browser;
pub mod page;

use std::time::Duration;

use service_kit::config::{Env, ServerConfig, Url};
use service_kit::shutdown::CancellationToken;
use test_support::{MongoServer, RabbitVhost, free_port};
use tokio::task::JoinHandle;

pub use browser::Browser;

/// Every service running, and the servers they use.
pub struct System {
    pub broker_url: Url,
    pub front_end_url: Url,
    pub logger_url: Url,
    /// Mail that reached the SMTP catcher.
    pub mail: mailcrab::TestMailServerHandle,
    broker_shutdown: CancellationToken,
    broker_task: Option<JoinHandle<anyhow::Result<()>>>,
    shutdown: CancellationToken,
    _mongo: MongoServer,
    _vhost: RabbitVhost,
}

fn local(port: u16) -> Url {
    Url::parse(&format!("http://127.0.0.1:{port}")).expect("a local URL")
}

impl System {
    pub async fn start() -> anyhow::Result<Self> {
        service_kit::telemetry::init_for_tests();
        let shutdown = CancellationToken::new();

        let mongo = MongoServer::start();
        let logger =
            logger_service::Application::start_for_tests(&mongo.url(), shutdown.clone()).await?;
        let logger_url = logger.http_url.clone();

        let auth = authentication_service::Application::build(authentication_service::Config {
            server: ServerConfig::for_tests(),
            database_url: Url::parse(&test_support::fresh_postgres_database().await)?,
            logger_url: logger_url.clone(),
            migrate_timeout: Duration::from_secs(10),
        })
        .await?;
        let auth_url = local(auth.port());
        tokio::spawn(auth.run(shutdown.clone()));

        let smtp_port = free_port();
        let mail = mailcrab::development_mail_server([127, 0, 0, 1], smtp_port).await;
        let mail_service =
            mail_service::Application::build(mail_service::Config::for_tests(smtp_port)).await?;
        let mail_url = local(mail_service.port());
        tokio::spawn(mail_service.run(shutdown.clone()));

        let vhost = RabbitVhost::create();
        let amqp_url = Url::parse(&vhost.url())?;
        let listener = listener_service::Application::build(listener_service::Config::for_tests(
            amqp_url.clone(),
            logger_url.clone(),
        ))
        .await?;
        tokio::spawn(listener.run(shutdown.clone()));

        let broker = broker_service::Application::build(broker_service::Config {
            server: ServerConfig::for_tests(),
            auth_url,
            logger_url: logger_url.clone(),
            logger_rpc_addr: logger.rpc_addr,
            logger_grpc_url: logger.grpc_url,
            mail_url,
            amqp_url,
            upstream_timeout: Duration::from_secs(5),
        })
        .await?;
        let broker_url = local(broker.port());
        let broker_shutdown = CancellationToken::new();
        let broker_task = tokio::spawn(broker.run(broker_shutdown.clone()));

        let mut front_end =
            front_end::Config::from_env(&Env::from_pairs([("BROKER_URL", broker_url.as_str())]))?;
        front_end.server = ServerConfig::for_tests();
        let front_end = front_end::build(front_end).await?;
        let front_end_url = local(front_end.port());
        tokio::spawn(front_end.run(shutdown.clone()));

        Ok(Self {
            broker_url,
            front_end_url,
            logger_url,
            mail,
            broker_shutdown,
            broker_task: Some(broker_task),
            shutdown,
            _mongo: mongo,
            _vhost: vhost,
        })
    }

    /// Stops the broker alone, as an outage the page must report.
    pub async fn stop_broker(&mut self) {
        self.broker_shutdown.cancel();
        if let Some(task) = self.broker_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

impl Drop for System {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.broker_shutdown.cancel();
        self.mail.token.cancel();
    }
}
