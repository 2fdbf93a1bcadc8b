use std::process::ExitCode;

use listener_service::Config;

fn main() -> ExitCode {
    service_kit::main(
        "listener-service",
        Config::from_env,
        listener_service::service,
    )
}
