use std::process::ExitCode;

use logger_service::Config;

fn main() -> ExitCode {
    service_kit::main(
        "logger-service",
        Config::from_env,
        |config, shutdown| async move { logger_service::build(config).await?.run(shutdown).await },
    )
}
