use std::process::ExitCode;

use listener_service::{Application, Config};

fn main() -> ExitCode {
    service_kit::main(
        "listener-service",
        Config::from_env,
        |config, shutdown| async move { Application::build(config).await?.run(shutdown).await },
    )
}
