//! [`Scrape`]: a `/metrics` text read back, the one reader of the tests,
//! the bench and the fault suite (what a Prometheus server reads, by
//! series).

/// One `/metrics` answer, as text.
#[derive(Debug, Clone)]
pub struct Scrape(String);

impl Scrape {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn text(&self) -> &str {
        &self.0
    }

    /// The value of one series, `name{labels}` exactly as rendered (or a
    /// bare name); `None` when it is not rendered.
    pub fn value(&self, series: &str) -> Option<f64> {
        self.0.lines().find_map(|line| {
            line.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
    }

    /// The sum over every series whose line starts with `prefix`, such as
    /// `server_requests_total{transport="http",route="/log",` (every
    /// outcome); 0 when there is none.
    pub fn sum(&self, prefix: &str) -> f64 {
        self.0
            .lines()
            .filter(|line| line.starts_with(prefix))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// `server_requests_total{transport,route,outcome}`, as rendered.
pub fn served(transport: &str, route: &str, outcome: &str) -> String {
    format!(
        r#"server_requests_total{{transport="{transport}",route="{route}",outcome="{outcome}"}}"#
    )
}

/// The prefix of `served` over every outcome (for [`Scrape::sum`]).
pub fn served_any(transport: &str, route: &str) -> String {
    format!(r#"server_requests_total{{transport="{transport}",route="{route}","#)
}

/// `dependency_requests_total{dependency,transport,outcome}`, as rendered.
pub fn called(dependency: &str, transport: &str, outcome: &str) -> String {
    format!(
        r#"dependency_requests_total{{dependency="{dependency}",transport="{transport}",outcome="{outcome}"}}"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Metrics, Outcome};
    use std::time::Duration;

    #[test]
    fn a_rendered_series_reads_back_by_name_and_by_prefix() {
        let metrics = Metrics::new();
        let log = metrics.requests_on("http", "/log");
        log.record(Outcome::Ok, Duration::from_millis(1));
        log.record(Outcome::Ok, Duration::from_millis(1));
        log.record(Outcome::ClientError, Duration::from_millis(1));
        let scrape = Scrape::new(metrics.render());
        assert_eq!(scrape.value(&served("http", "/log", "ok")), Some(2.0));
        assert_eq!(
            scrape.value(&served("http", "/log", "server_error")),
            Some(0.0)
        );
        assert_eq!(scrape.value(&served("grpc", "WriteLog", "ok")), None);
        assert_eq!(scrape.sum(&served_any("http", "/log")), 3.0);
        assert_eq!(scrape.sum(&served_any("tarpc", "log_info")), 0.0);
    }
}
