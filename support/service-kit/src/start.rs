//! The start-up sequence every service binary shares.

use std::future::Future;
use std::process::ExitCode;

use crate::config::{ConfigError, Env};
use crate::shutdown::{self, CancellationToken};
use crate::telemetry::{self, LogFormat};

/// Reads the environment, sets up tracing, loads the service's configuration
/// with `load` and runs `run` until it returns; `run` is handed a token that
/// is cancelled on SIGINT/SIGTERM.
///
/// Exit codes: 0 after a clean shutdown, 2 for invalid configuration, 1 when
/// the service failed.
pub fn main<C, Fut>(
    service: &'static str,
    load: impl FnOnce(&Env) -> Result<C, ConfigError>,
    run: impl FnOnce(C, CancellationToken) -> Fut,
) -> ExitCode
where
    Fut: Future<Output = anyhow::Result<()>>,
{
    let config = Env::from_process().and_then(|env| {
        let format = LogFormat::from_env(&env)?;
        telemetry::init(format);
        load(&env)
    });
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{service}: {e}");
            return ExitCode::from(2);
        }
    };

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
    let result = runtime.block_on(async {
        tracing::info!(service, version = env!("CARGO_PKG_VERSION"), "starting");
        run(config, shutdown::on_signal()).await
    });
    match result {
        Ok(()) => {
            tracing::info!(service, "stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(service, error = format!("{e:#}"), "failed");
            eprintln!("{service}: {e:#}");
            ExitCode::FAILURE
        }
    }
}
