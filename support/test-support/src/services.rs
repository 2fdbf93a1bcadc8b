//! Each service started for a test: [`config`] builds its test
//! configuration (random local ports, short timeouts, every dependency
//! named explicitly), and one `spawn_*` function per service starts it and
//! hands back a [`TestApp`] (or a type that derefs to one and adds what
//! that service's tests need).

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use listener_service::Metrics;
use service_kit::config::Url;

use crate::{MongoServer, TestApp, eventually, fresh_postgres_database, init_tracing};

/// Test configurations: HTTP (and every other listener) on a random local
/// port, short timeouts.
pub mod config {
    use std::net::SocketAddr;
    use std::time::Duration;

    use service_kit::config::{Env, Secret, ServerConfig, Url};

    /// A random local port, a 10 s request timeout, a 5 s drain.
    pub fn server() -> ServerConfig {
        ServerConfig {
            http_addr: any_port(),
            request_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(5),
            limits: service_kit::http::ConnectionLimits {
                header_read_timeout: Duration::from_secs(10),
                max_connections: 1024,
            },
        }
    }

    fn any_port() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }

    /// Where nothing listens, ever: port 1 is outside the range the
    /// kernel hands out for port 0, so no service a parallel test starts
    /// can take it (a port that was merely free a moment ago can be).
    pub const DEAD_PORT: u16 = 1;

    /// `<scheme>://127.0.0.1:1`, where nothing listens.
    pub fn dead_url(scheme: &str) -> Url {
        Url::parse(&format!("{scheme}://127.0.0.1:{DEAD_PORT}")).expect("a local URL")
    }

    /// The logger against the MongoDB server at `mongo_url`.
    pub fn logger(mongo_url: &str) -> logger_service::Config {
        logger_service::Config {
            server: server(),
            rpc_addr: any_port(),
            grpc_addr: any_port(),
            mongo_url: Url::parse(mongo_url).expect("a MongoDB URL"),
            mongo_database: "logs".to_owned(),
            token_key: crate::token_key(),
        }
    }

    /// authentication-service on the database at `database_url`, logging
    /// attempts to `logger_url`.
    pub fn auth(database_url: &str, logger_url: Url) -> authentication_service::Config {
        authentication_service::Config {
            server: server(),
            database_url: Url::parse(database_url).expect("a PostgreSQL URL"),
            logger_url: logger_url.into(),
            token_key: crate::token_key(),
            token_ttl: Duration::from_secs(900),
            lockout: authentication_service::lockout::LockoutPolicy {
                after: 5,
                base: Duration::from_secs(1),
                max: Duration::from_secs(60),
            },
            bcrypt: authentication_service::passwords::BcryptLimits {
                threads: authentication_service::passwords::BcryptLimits::default_threads(),
                // Long enough for the tests' bursts on a busy machine; the
                // refusal past it has a test of its own.
                queue_timeout: Duration::from_secs(10),
            },
            seed_admin: true,
        }
    }

    /// mail-service sending plain SMTP to `127.0.0.1:<smtp_port>` without
    /// credentials, with a 3 s send timeout.
    pub fn mail(smtp_port: u16) -> mail_service::Config {
        mail_service::Config {
            server: server(),
            host: "127.0.0.1".to_owned(),
            port: smtp_port,
            encryption: mail_service::Encryption::None,
            username: String::new(),
            password: Secret::from(""),
            domain: "localhost".to_owned(),
            from_name: "Microservices".to_owned(),
            from_address: "noreply@example.com".to_owned(),
            send_timeout: Duration::from_secs(3),
        }
    }

    /// The listener consuming from `amqp_url` and storing to `logger_url`,
    /// with a small prefetch and quick retries.
    pub fn listener(amqp_url: Url, logger_url: Url) -> listener_service::Config {
        listener_service::Config {
            server: server(),
            amqp_url,
            logger_url: logger_url.into(),
            prefetch: 16,
            retry_backoff: Duration::from_millis(50),
            logger_timeout: Duration::from_secs(2),
        }
    }

    /// The broker with every dependency unreachable; a test points the
    /// ones it needs somewhere real.
    pub fn broker() -> broker_service::Config {
        broker_service::Config {
            server: server(),
            auth_url: dead_url("http").into(),
            logger_url: dead_url("http").into(),
            logger_rpc_addr: crate::targets(&format!("127.0.0.1:{DEAD_PORT}")),
            logger_grpc_url: dead_url("http").into(),
            mail_url: dead_url("http").into(),
            amqp_url: dead_url("amqp"),
            upstream_timeout: Duration::from_secs(2),
            security: broker_security(&[]),
        }
    }

    /// The broker's checks with the tests' token key, answering browsers
    /// from `origins` only, and the default per-client limits.
    pub fn broker_security(origins: &[&str]) -> broker_service::Security {
        broker_service::Security {
            token_key: crate::token_key(),
            origins: service_kit::origins::Origins::new(origins).expect("valid origins"),
            trust_forwarded_for: false,
            logins_per_minute: 20,
            mails_per_minute: 30,
        }
    }

    /// The front-end pointing the page at `broker_url`, read as
    /// `BROKER_URL` is (so a trailing slash is dropped), with the mail UI
    /// at `http://mail.example:8025`.
    pub fn front_end(broker_url: &str) -> front_end::Config {
        let env = Env::from_pairs([
            ("BROKER_URL", broker_url),
            ("MAIL_UI_URL", "http://mail.example:8025"),
        ]);
        front_end::Config {
            server: server(),
            ..front_end::Config::from_env(&env).expect("a valid BROKER_URL")
        }
    }
}

/// The broker.
pub async fn spawn_broker(config: broker_service::Config) -> TestApp {
    init_tracing();
    let app = broker_service::service(config)
        .await
        .expect("the broker builds");
    TestApp::spawn(app.port(), |shutdown| app.run(shutdown))
}

/// mail-service.
pub async fn spawn_mail(config: mail_service::Config) -> TestApp {
    init_tracing();
    let app = mail_service::service(config)
        .await
        .expect("mail-service builds");
    TestApp::spawn(app.port(), |shutdown| app.run(shutdown))
}

/// The front-end.
pub async fn spawn_front_end(config: front_end::Config) -> TestApp {
    init_tracing();
    let app = front_end::service(config)
        .await
        .expect("the front-end builds");
    TestApp::spawn(app.port(), |shutdown| app.run(shutdown))
}

/// A running logger-service: its HTTP side as a [`TestApp`], where its
/// tarpc and gRPC servers listen, and the MongoDB server it owns, if any.
pub struct TestLogger {
    pub app: TestApp,
    pub rpc_addr: String,
    pub grpc_url: Url,
    /// The logger's own MongoDB server; `None` when the test passed its own
    /// URL, or has stopped it (`take()` and drop it) to cut the logger off.
    pub mongo: Option<MongoServer>,
    config: logger_service::Config,
}

/// A logger with a fresh MongoDB server of its own.
pub async fn spawn_logger() -> TestLogger {
    let mongo = MongoServer::start();
    let config = config::logger(&mongo.url());
    spawn_logger_with(Some(mongo), config).await
}

/// A logger with `config`, keeping `mongo` alive as long as it runs.
pub async fn spawn_logger_with(
    mongo: Option<MongoServer>,
    config: logger_service::Config,
) -> TestLogger {
    init_tracing();
    let app = logger_service::service(config.clone())
        .await
        .expect("the logger builds");
    let mut config = config;
    config.server.http_addr.set_port(app.port());
    config.rpc_addr = app.addr("rpc").expect("the logger serves tarpc");
    config.grpc_addr = app.addr("grpc").expect("the logger serves gRPC");
    TestLogger {
        rpc_addr: config.rpc_addr.to_string(),
        grpc_url: Url::parse(&format!("http://{}", config.grpc_addr)).expect("a local URL"),
        app: TestApp::spawn(app.port(), |shutdown| app.run(shutdown)),
        mongo,
        config,
    }
}

impl TestLogger {
    /// Starts the logger again on the same three ports, after
    /// [`TestApp::stop`].
    pub async fn restart(&mut self) {
        assert!(
            self.app.is_finished(),
            "stop the logger before restarting it"
        );
        let app = logger_service::service(self.config.clone())
            .await
            .expect("the logger builds again on its ports");
        self.app = TestApp::spawn(app.port(), |shutdown| app.run(shutdown));
    }
}

impl Deref for TestLogger {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl DerefMut for TestLogger {
    fn deref_mut(&mut self) -> &mut TestApp {
        &mut self.app
    }
}

/// A running authentication-service and the database it uses.
pub struct TestAuth {
    pub app: TestApp,
    pub database_url: String,
}

/// authentication-service on a fresh database, with no logger listening:
/// logins must not depend on it.
pub async fn spawn_auth() -> TestAuth {
    let database_url = fresh_postgres_database().await;
    spawn_auth_with(config::auth(&database_url, config::dead_url("http"))).await
}

/// authentication-service with `config`, once it is ready (its database
/// migrated).
pub async fn spawn_auth_with(config: authentication_service::Config) -> TestAuth {
    let auth = spawn_auth_starting(config).await;
    let ready = eventually(Duration::from_secs(15), || async {
        auth.get("/readyz").await.0.is_success()
    })
    .await;
    assert!(ready, "authentication-service did not get ready");
    auth
}

/// authentication-service with `config`, as soon as it listens (it may
/// still be waiting for its database).
pub async fn spawn_auth_starting(config: authentication_service::Config) -> TestAuth {
    init_tracing();
    let database_url = config.database_url.to_string();
    let app = authentication_service::service(config)
        .await
        .expect("authentication-service builds");
    TestAuth {
        app: TestApp::spawn(app.port(), |shutdown| app.run(shutdown)),
        database_url,
    }
}

impl Deref for TestAuth {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

/// A running listener-service and its counters.
pub struct TestListener {
    pub app: TestApp,
    pub metrics: Arc<Metrics>,
}

/// listener-service with `config` (see [`config::listener`]).
pub async fn spawn_listener(config: listener_service::Config) -> TestListener {
    init_tracing();
    let (app, metrics) = listener_service::service_counted(config)
        .await
        .expect("the listener builds");
    TestListener {
        app: TestApp::spawn(app.port(), |shutdown| app.run(shutdown)),
        metrics,
    }
}

impl TestListener {
    /// Waits until the consumer is attached (the topology then exists too).
    pub async fn consuming(&self) {
        let attached = eventually(Duration::from_secs(10), || async {
            self.metrics
                .consuming
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .await;
        assert!(attached, "the listener never started consuming");
    }
}

impl Deref for TestListener {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl DerefMut for TestListener {
    fn deref_mut(&mut self) -> &mut TestApp {
        &mut self.app
    }
}
