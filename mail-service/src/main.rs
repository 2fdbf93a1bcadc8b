use std::process::ExitCode;

use mail_service::{Application, Config};

fn main() -> ExitCode {
    service_kit::main(
        "mail-service",
        Config::from_env,
        |config, shutdown| async move { Application::build(config).await?.run(shutdown).await },
    )
}
