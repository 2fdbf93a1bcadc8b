use std::process::ExitCode;

use broker_service::{Application, Config};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    service_kit::main(
        "broker-service",
        Config::from_env,
        |config, shutdown| async move { Application::build(config).await?.run(shutdown).await },
    )
}
