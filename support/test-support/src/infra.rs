//! The real servers a test runs against, each its own so tests never share
//! state: a fresh PostgreSQL database, a MongoDB-wire-compatible server, a
//! RabbitMQ vhost, an SMTP catcher, and free ports.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use sqlx::Connection;

/// Where [`free_port`] looks: below the kernel's ephemeral range (32768 and
/// up on Linux), so neither an outbound connection's local port nor another
/// test's `bind(0)` can take a port between the moment it is chosen and the
/// moment a service binds it; and below RabbitMQ's 15672 and MongoDB's 27017.
const TEST_PORTS: std::ops::Range<u32> = 10_000..15_600;

/// A local port that was free a moment ago, outside the ephemeral range.
/// Each call starts from its own place in [`TEST_PORTS`] (process id, time
/// and a counter), so tests that run at once pick different ports.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let span = TEST_PORTS.end - TEST_PORTS.start;
    let seed = std::process::id().wrapping_mul(7919)
        ^ SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
    let start = seed.wrapping_add(NEXT.fetch_add(97, Ordering::Relaxed));
    (0..span)
        .map(|step| TEST_PORTS.start + (start.wrapping_add(step) % span))
        .map(|port| u16::try_from(port).expect("a port"))
        .find(|port| TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free port below the ephemeral range")
}

/// The workspace root (tests run with the crate directory as cwd).
fn workspace_root() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // support/test-support -> the root.
    dir.pop();
    dir.pop();
    dir
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The server the test databases are created on: `TEST_DATABASE_URL`, else
/// the superuser's URL that project/native/infra.sh wrote when it installed
/// PostgreSQL itself (with a random password), else the local superuser
/// without a password (a server with trust or peer authentication).
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .or_else(|| {
            let file = workspace_root().join(".infra/secrets/postgres-admin-url");
            std::fs::read_to_string(file).ok()
        })
        .map(|url| url.trim().to_owned())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Creates an empty database with a unique name and returns its URL. The
/// databases are left behind for inspection; they are small.
pub async fn fresh_postgres_database() -> String {
    let admin = postgres_admin_url();
    let name = format!("test_{}", unique_suffix());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {admin} (run `make infra`): {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .expect("create the test database");
    let (base, _) = admin
        .rsplit_once('/')
        .expect("the admin URL names a database");
    format!("{base}/{name}")
}

/// A MongoDB-wire-compatible server (secantusdb, see docs/contracts.md §6) of this test's
/// own, on a random port, keeping its data in memory. Killed on drop.
pub struct MongoServer {
    child: Child,
    port: u16,
}

impl MongoServer {
    /// `SECANTUSD_BIN` overrides where the server's launcher is; by default
    /// it is the one `make infra` installs under `.infra/venv`.
    pub fn start() -> Self {
        let bin = std::env::var_os("SECANTUSD_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join(".infra/venv/bin/secantusd-py"));
        assert!(
            bin.exists(),
            "{} is missing: run `make infra` first",
            bin.display()
        );
        let port = free_port();
        let child = Command::new(&bin)
            .args([
                "--standalone",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .args(["--storage-path", ":memory:", "--log-level", "WARNING"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let server = Self { child, port };
        server.wait_until_listening(Duration::from_secs(30));
        server
    }

    fn wait_until_listening(&self, limit: Duration) {
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < limit,
                "the MongoDB-compatible server did not listen within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("mongodb://127.0.0.1:{}", self.port)
    }
}

impl Drop for MongoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A RabbitMQ virtual host of this test's own on the local server, so tests
/// that run at once never see each other's exchanges, queues or messages.
/// Deleted on drop. Needs `rabbitmqctl` (run as root, as the tests are here).
pub struct RabbitVhost {
    name: String,
}

fn rabbitmqctl(args: &[&str]) -> String {
    let output = Command::new("rabbitmqctl")
        .arg("-q")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run rabbitmqctl (run `make test-infra`): {e}"));
    assert!(
        output.status.success(),
        "rabbitmqctl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

impl RabbitVhost {
    pub fn create() -> Self {
        let name = format!("test_{}", unique_suffix());
        rabbitmqctl(&["add_vhost", &name]);
        rabbitmqctl(&["set_permissions", "-p", &name, "guest", ".*", ".*", ".*"]);
        Self { name }
    }

    /// `amqp://guest:guest@127.0.0.1:5672/<vhost>`; `AMQP_TEST_HOST` may
    /// name another server.
    pub fn url(&self) -> String {
        let host = std::env::var("AMQP_TEST_HOST").unwrap_or_else(|_| "127.0.0.1:5672".into());
        format!("amqp://guest:guest@{host}/{}", self.name)
    }

    /// Closes every client connection to this vhost from the server side,
    /// as a RabbitMQ restart or a network cut would; returns how many.
    pub fn close_connections(&self) -> usize {
        let listing = rabbitmqctl(&["list_connections", "pid", "vhost"]);
        let pids: Vec<&str> = listing
            .lines()
            .filter_map(|line| line.split_once('\t'))
            .filter(|(_, vhost)| vhost.trim() == self.name)
            .map(|(pid, _)| pid.trim())
            .collect();
        for pid in &pids {
            rabbitmqctl(&["close_connection", pid, "closed by the test"]);
        }
        pids.len()
    }

    /// How many messages wait in `queue` (ready, not yet delivered).
    pub fn messages_ready(&self, queue: &str) -> u64 {
        let listing = rabbitmqctl(&["list_queues", "-p", &self.name, "name", "messages_ready"]);
        listing
            .lines()
            .filter_map(|line| line.split_once('\t'))
            .find(|(name, _)| name.trim() == queue)
            .map(|(_, count)| count.trim().parse().unwrap_or(0))
            .unwrap_or(0)
    }
}

impl Drop for RabbitVhost {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["-q", "delete_vhost", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Waits until something accepts TCP connections on `port`.
pub async fn wait_for_listener(port: u16) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("nothing listens on port {port}");
}

/// mailcrab's SMTP catcher on a port of its own; every mail it receives
/// comes back in its serde form (`from`, `to`, `subject`, `text`, `html`,
/// ...) plus `raw`, the message as sent. Stopped on drop.
pub struct MailCatcher {
    pub port: u16,
    handle: mailcrab::TestMailServerHandle,
}

impl MailCatcher {
    pub async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    pub async fn start_on(port: u16) -> Self {
        let handle = mailcrab::development_mail_server([127, 0, 0, 1], port).await;
        wait_for_listener(port).await;
        Self { port, handle }
    }

    /// The next mail received, within 10 s.
    pub async fn next_mail(&mut self) -> Value {
        let message = tokio::time::timeout(Duration::from_secs(10), self.handle.rx.recv())
            .await
            .expect("a mail arrives within 10 s")
            .expect("the catcher runs");
        let mut value = serde_json::to_value(&message).unwrap();
        let raw = message.raw_bytes().unwrap_or_default();
        value["raw"] = Value::String(String::from_utf8_lossy(&raw).into_owned());
        value
    }

    /// Whether no mail arrives within `wait`.
    pub async fn nothing_within(&mut self, wait: Duration) -> bool {
        tokio::time::timeout(wait, self.handle.rx.recv())
            .await
            .is_err()
    }
}

impl Drop for MailCatcher {
    fn drop(&mut self) {
        self.handle.token.cancel();
    }
}
