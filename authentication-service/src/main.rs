use std::process::ExitCode;

use authentication_service::Config;

fn main() -> ExitCode {
    service_kit::main(
        "authentication-service",
        Config::from_env,
        authentication_service::service,
    )
}
