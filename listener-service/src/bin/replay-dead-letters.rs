//! `replay-dead-letters`: moves the events waiting in `logs.dead` back to
//! the log exchange, for the listener to store (docs/contracts.md §4). Reads
//! `AMQP_URL` as the listener does; in a container run it through the
//! image's entrypoint (`docker-entrypoint replay-dead-letters`), which also
//! reads `AMQP_URL_FILE`.

use std::process::ExitCode;

use service_kit::config::Env;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let url = match Env::from_process().amqp_url() {
        Ok(url) => url,
        Err(e) => {
            eprintln!("replay-dead-letters: {e}");
            return ExitCode::from(2);
        }
    };
    match log_queue::replay_dead_letters(url.as_str()).await {
        Ok(moved) => {
            println!("replayed {moved} events from logs.dead");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("replay-dead-letters: {e}");
            ExitCode::FAILURE
        }
    }
}
