use std::process::ExitCode;

use authentication_service::{Application, Config};

fn main() -> ExitCode {
    service_kit::main(
        "authentication-service",
        Config::from_env,
        |config, shutdown| async move { Application::build(config).await?.run(shutdown).await },
    )
}
