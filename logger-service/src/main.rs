use std::process::ExitCode;

use logger_service::Config;

fn main() -> ExitCode {
    service_kit::main("logger-service", Config::from_env, logger_service::service)
}
