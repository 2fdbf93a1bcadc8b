use std::process::ExitCode;

use broker_service::Config;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    service_kit::main("broker-service", Config::from_env, broker_service::service)
}
