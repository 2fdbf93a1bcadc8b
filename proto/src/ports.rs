//! Every port of the system (docs/contracts.md §2), the same natively and
//! in containers. The services' defaults, the bench and the test harness
//! take them from here; `project/check-deploy.py` (in `make lint-deploy`)
//! checks the deployment files, the native scripts and docs/contracts.md
//! against this file.

pub const BROKER: u16 = 8080;
pub const FRONT_END: u16 = 8081;
pub const AUTHENTICATION: u16 = 8082;
pub const LOGGER_HTTP: u16 = 8083;
pub const MAIL: u16 = 8084;
/// The listener's health and metrics.
pub const LISTENER: u16 = 8085;
pub const LOGGER_RPC: u16 = 5001;
pub const LOGGER_GRPC: u16 = 50001;

pub const POSTGRES: u16 = 5432;
pub const MONGODB: u16 = 27017;
pub const RABBITMQ: u16 = 5672;
/// The mail catcher's SMTP port.
pub const SMTP: u16 = 1025;
/// The mail catcher's web UI.
pub const MAIL_UI: u16 = 8025;

/// `127.0.0.1:<port>`: where a service listens natively.
pub fn local(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// `amqp://guest:guest@127.0.0.1:5672/%2f`: RabbitMQ natively, as the
/// broker and the listener reach it by default.
pub fn local_amqp() -> String {
    format!("amqp://guest:guest@127.0.0.1:{RABBITMQ}/%2f")
}

/// `http://127.0.0.1:<port>`: how a service is reached natively.
pub fn local_http(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}
