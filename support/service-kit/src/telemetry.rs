//! `tracing` output: human-readable on a terminal, one JSON object per line
//! when `LOG_FORMAT=json`. The level filter comes from `RUST_LOG` (default
//! `info`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{ConfigError, Env};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// `LOG_FORMAT`: `text` (default) or `json`.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(
            match env
                .one_of("LOG_FORMAT", "text", &["text", "json"])?
                .as_str()
            {
                "json" => LogFormat::Json,
                _ => LogFormat::Text,
            },
        )
    }
}

/// Installs the global subscriber. Later calls are no-ops, so tests may call
/// it freely.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: a log file gets plain text.
    let ansi = std::io::stdout().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
