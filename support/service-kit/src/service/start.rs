//! The start-up sequence every service binary shares.

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use super::{Bound, healthcheck};
use crate::config::{ConfigError, Env, ServerConfig};
use crate::shutdown;
use crate::telemetry::{self, LogFormat};

/// How long the spans still queued at exit may take to be sent.
const TRACE_FLUSH_LIMIT: Duration = Duration::from_secs(2);

/// A service binary's `main`: reads the environment, sets up logs and
/// traces ([`telemetry`]), loads the configuration with `load`, assembles
/// the service with `build` and runs it until SIGINT/SIGTERM.
///
/// Exit codes: 0 after a clean shutdown, 2 for invalid configuration, 1 when
/// the service failed ([`super::supervisor::supervise`]).
///
/// `<binary> healthcheck [PATH]` loads the same configuration and, instead
/// of serving, asks the server it describes for `/healthz` (or PATH)
/// ([`healthcheck`]): the container images' health check.
pub fn main<C, Fut>(
    service: &'static str,
    load: impl FnOnce(&Env) -> Result<C, ConfigError>,
    build: impl FnOnce(C) -> Fut,
) -> ExitCode
where
    C: AsRef<ServerConfig>,
    Fut: Future<Output = anyhow::Result<Bound>>,
{
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(healthcheck::ARGUMENT) {
        return match load(&Env::from_process()) {
            Ok(config) => {
                healthcheck::run(service, config.as_ref(), args.get(1).map(String::as_str))
            }
            Err(e) => {
                eprintln!("{service} healthcheck: {e}");
                ExitCode::from(2)
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{service}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut telemetry = None;
    let env = Env::from_process();
    let config = LogFormat::from_env(&env).and_then(|format| {
        // The trace exporter's channel is made on the runtime.
        let _entered = runtime.enter();
        telemetry = Some(telemetry::init(
            format,
            service,
            telemetry::export_requested(&env),
        ));
        load(&env)
    });
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{service}: {e}");
            return ExitCode::from(2);
        }
    };

    let result = runtime.block_on(async {
        tracing::info!(
            service,
            version = env!("CARGO_PKG_VERSION"),
            traces = telemetry::exporting(),
            "starting"
        );
        build(config).await?.run(shutdown::on_signal()).await
    });
    let code = match result {
        Ok(()) => {
            tracing::info!(service, "stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(service, error = format!("{e:#}"), "failed");
            eprintln!("{service}: {e:#}");
            ExitCode::FAILURE
        }
    };
    if let Some(telemetry) = telemetry {
        let _entered = runtime.enter();
        telemetry.shutdown(TRACE_FLUSH_LIMIT);
    }
    code
}
