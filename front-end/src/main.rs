use std::process::ExitCode;

use front_end::Config;

fn main() -> ExitCode {
    service_kit::main("front-end", Config::from_env, front_end::service)
}
