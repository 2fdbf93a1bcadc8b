//! [`ProcessSystem`]: the six service binaries as processes, each on random
//! ports, against real servers of the test's own, for what needs one
//! process per service (each with its own `service.name` in its traces,
//! its own log stream).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{MailCatcher, MongoServer, RabbitVhost, free_port, fresh_postgres_database};

/// The six binaries, in start order.
pub const SERVICES: [&str; 6] = [
    "logger-service",
    "authentication-service",
    "mail-service",
    "listener-service",
    "broker-service",
    "front-end",
];

/// Every service running as its own process, with JSON logs written to
/// `<logs>/<service>.log`. Killed on drop.
pub struct ProcessSystem {
    /// Each service's base URL (`http://127.0.0.1:<port>`), by name.
    pub urls: Vec<(&'static str, String)>,
    pub logs: PathBuf,
    pub catcher: MailCatcher,
    children: Vec<(&'static str, Child)>,
    _mongo: MongoServer,
    _vhost: RabbitVhost,
}

/// Where the workspace's binaries are: beside the test binary's `deps`.
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the services first (cargo build --bins, or run the whole workspace's tests)",
        path.display()
    );
    path
}

impl ProcessSystem {
    /// Starts every service with `extra` in its environment, and waits
    /// until each answers `/readyz`.
    pub async fn start(extra: &[(&str, &str)]) -> Self {
        let mongo = MongoServer::start();
        let vhost = RabbitVhost::create();
        let catcher = MailCatcher::start().await;
        let database = fresh_postgres_database().await;
        let logs = std::env::temp_dir().join(format!(
            "process-system-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&logs).expect("a log directory");

        let url = |port: u16| format!("http://127.0.0.1:{port}");
        let [logger, rpc, grpc, auth, mail, listener, broker, front_end] =
            std::array::from_fn(|_| free_port());
        let token_key = crate::TEST_TOKEN_KEY;
        let addr = |port: u16| format!("127.0.0.1:{port}");
        let catcher_port = catcher.port.to_string();
        let env: [(&'static str, Vec<(&str, String)>); 6] = [
            (
                "logger-service",
                vec![
                    ("HTTP_ADDR", addr(logger)),
                    ("RPC_ADDR", addr(rpc)),
                    ("GRPC_ADDR", addr(grpc)),
                    ("MONGO_URL", mongo.url()),
                    ("TOKEN_KEY", token_key.into()),
                ],
            ),
            (
                "authentication-service",
                vec![
                    ("HTTP_ADDR", addr(auth)),
                    ("DATABASE_URL", database.clone()),
                    ("LOGGER_URL", url(logger)),
                    ("TOKEN_KEY", token_key.into()),
                    ("SEED_ADMIN", "true".into()),
                ],
            ),
            (
                "mail-service",
                vec![
                    ("HTTP_ADDR", addr(mail)),
                    ("MAIL_HOST", "127.0.0.1".into()),
                    ("MAIL_PORT", catcher_port),
                ],
            ),
            (
                "listener-service",
                vec![
                    ("HTTP_ADDR", addr(listener)),
                    ("AMQP_URL", vhost.url()),
                    ("LOGGER_URL", url(logger)),
                ],
            ),
            (
                "broker-service",
                vec![
                    ("HTTP_ADDR", addr(broker)),
                    ("AUTH_URL", url(auth)),
                    ("LOGGER_URL", url(logger)),
                    ("LOGGER_RPC_ADDR", addr(rpc)),
                    ("LOGGER_GRPC_URL", url(grpc)),
                    ("MAIL_URL", url(mail)),
                    ("AMQP_URL", vhost.url()),
                    ("TOKEN_KEY", token_key.into()),
                    ("CORS_ORIGINS", url(front_end)),
                ],
            ),
            (
                "front-end",
                vec![("HTTP_ADDR", addr(front_end)), ("BROKER_URL", url(broker))],
            ),
        ];
        let ports = [logger, auth, mail, listener, broker, front_end];

        let mut children = Vec::new();
        for (name, vars) in env {
            let log = std::fs::File::create(logs.join(format!("{name}.log"))).expect("a log file");
            let mut command = Command::new(binary(name));
            command
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("LOG_FORMAT", "json")
                .env("RUST_LOG", "info")
                .envs(vars)
                .envs(extra.iter().copied())
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("a log file handle"))
                .stderr(log);
            let child = command
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
            children.push((name, child));
        }
        let urls: Vec<(&'static str, String)> = SERVICES
            .iter()
            .zip(ports)
            .map(|(name, port)| (*name, url(port)))
            .collect();
        let system = Self {
            urls,
            logs,
            catcher,
            children,
            _mongo: mongo,
            _vhost: vhost,
        };
        system.wait_until_ready(Duration::from_secs(60)).await;
        system
    }

    /// The base URL of service `name`.
    pub fn url(&self, name: &str) -> &str {
        &self
            .urls
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no service {name}"))
            .1
    }

    /// What service `name` has logged so far, one JSON object a line.
    pub fn log_lines(&self, name: &str) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.logs.join(format!("{name}.log")))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    async fn wait_until_ready(&self, limit: Duration) {
        let client = reqwest::Client::new();
        let started = Instant::now();
        for (name, base) in &self.urls {
            loop {
                let ready = client
                    .get(format!("{base}/readyz"))
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ready {
                    break;
                }
                if started.elapsed() > limit {
                    let log = std::fs::read_to_string(self.logs.join(format!("{name}.log")))
                        .unwrap_or_default();
                    panic!("{name} is not ready after {limit:?}; its log:\n{log}");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

impl Drop for ProcessSystem {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.logs);
    }
}
