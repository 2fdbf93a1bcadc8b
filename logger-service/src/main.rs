use std::process::ExitCode;

use logger_service::{Application, Config};

fn main() -> ExitCode {
    service_kit::main(
        "logger-service",
        Config::from_env,
        |config, shutdown| async move { Application::build(config).await?.run(shutdown).await },
    )
}
