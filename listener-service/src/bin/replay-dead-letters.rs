//! `replay-dead-letters`: moves the events waiting in `logs.dead` back to
//! the log exchange, for the listener to store (docs/contracts.md §4). Reads
//! `AMQP_URL` (or the file `AMQP_URL_FILE` names) as the listener does.

use std::process::ExitCode;

use service_kit::config::Env;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let url = match listener_service::config::amqp_url(&Env::from_process()) {
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
