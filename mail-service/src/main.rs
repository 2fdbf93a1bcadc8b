use std::process::ExitCode;

use mail_service::Config;

fn main() -> ExitCode {
    service_kit::main(
        "mail-service",
        Config::from_env,
        |config, shutdown| async move { mail_service::build(config).await?.run(shutdown).await },
    )
}
