//! Every login attempt is logged to logger-service under the name
//! `authentication`, in the background: a logger outage never fails or
//! slows a login.

use serde_json::json;
use service_kit::upstream::ServiceClient;
use service_kit::{request_id, telemetry};
use tracing::Instrument;

#[derive(Clone)]
pub struct ActivityLog {
    logger: ServiceClient,
}

impl ActivityLog {
    pub fn new(logger: ServiceClient) -> Self {
        Self { logger }
    }

    pub fn record(&self, data: String) {
        let logger = self.logger.clone();
        // The spawned task takes the login's request id along, and its
        // call to the logger is part of the login's trace: a span whose
        // parent in the trace is the login's, but not in `tracing`, where a
        // child holds its parent open (the login's span would then last
        // until the logger answered).
        let request = tracing::Span::current();
        let task = service_kit::trace_span!(parent: None, "log login", otel.name = "log login");
        telemetry::adopt(&task, &request);
        tokio::spawn(request_id::scope(request_id::current(), async move {
            let entry = json!({"name": "authentication", "data": data});
            match logger.post("/log", &entry).await {
                Ok(reply) if reply.status.is_success() => {}
                Ok(reply) => {
                    tracing::warn!(status = %reply.status, message = reply.envelope.message, "logger refused a login entry")
                }
                Err(e) => tracing::warn!(error = %e, "cannot log a login attempt"),
            }
        }.instrument(task)));
    }
}
