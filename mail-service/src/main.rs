use std::process::ExitCode;

use mail_service::Config;

/// As the broker's (docs/bench/README.md): glibc's malloc and free were a
/// tenth of mail-service's samples per mail.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    service_kit::main("mail-service", Config::from_env, mail_service::service)
}
