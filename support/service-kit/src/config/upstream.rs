//! [`Upstream`]: where the replicas of a service this one calls answer,
//! read from one setting.

use super::{ConfigError, Env, Url};

/// Where one service's replicas answer: one base URL, or several
/// (natively, replicas on other ports), each of whose host names may
/// resolve to several replicas (compose, Swarm, a Kubernetes headless
/// Service). The clients keep one connection pool per replica address and
/// spread their calls over them ([`resilience::Replicas`],
/// docs/contracts.md §3, "Balancing").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    urls: Vec<Url>,
}

impl Upstream {
    /// The first URL: the template of every replica's address.
    pub fn url(&self) -> &Url {
        &self.urls[0]
    }

    pub fn urls(&self) -> &[Url] {
        &self.urls
    }

    /// Each URL's `host:port`, to resolve.
    pub fn targets(&self) -> Vec<resilience::Target> {
        self.urls
            .iter()
            .map(|url| resilience::Target {
                host: url
                    .host_str()
                    .unwrap_or_default()
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
                port: url.port_or_known_default().unwrap_or(80),
            })
            .collect()
    }

    /// Whether `a` and `b` differ only in host and port.
    fn alike(a: &Url, b: &Url) -> bool {
        a.scheme() == b.scheme() && a.path() == b.path()
    }
}

impl From<Url> for Upstream {
    fn from(url: Url) -> Self {
        Self { urls: vec![url] }
    }
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<&str> = self.urls.iter().map(Url::as_str).collect();
        f.write_str(&urls.join(","))
    }
}

impl Env {
    /// One or more `host:port`, comma-separated: the replicas of one
    /// service (its names may each resolve to several).
    pub fn host_ports(
        &self,
        name: &str,
        default: &str,
    ) -> Result<Vec<resilience::Target>, ConfigError> {
        let value = self.get(name).unwrap_or(default);
        let targets =
            resilience::replicas::parse_targets(value).map_err(|e| self.error(name, value, e))?;
        if targets.iter().any(|t| t.port == 0) {
            return Err(self.error(name, value, "a port must be from 1 to 65535"));
        }
        Ok(targets)
    }

    /// One or more base URLs of one service's replicas, comma-separated
    /// ([`Upstream`]): each with a scheme of `schemes` and a host, all with
    /// the same scheme and path.
    pub fn upstream(
        &self,
        name: &str,
        default: &str,
        schemes: &[&str],
    ) -> Result<Upstream, ConfigError> {
        let value = self.get(name).unwrap_or(default);
        let mut urls = Vec::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let url = self.url_in(name, entry, schemes)?;
            if let Some(first) = urls.first()
                && !Upstream::alike(first, &url)
            {
                return Err(self.error(
                    name,
                    value,
                    "every URL of the list must have the same scheme and path",
                ));
            }
            urls.push(url);
        }
        if urls.is_empty() {
            return Err(self.error(name, value, "no URL given"));
        }
        Ok(Upstream { urls })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upstream_is_one_url_or_a_list_alike_but_for_host_and_port() {
        let env = Env::from_pairs([
            ("ONE", "http://logger-service:8083"),
            ("TWO", "http://127.0.0.1:8083, http://[::1]:9083"),
            ("MIXED", "http://a:1,https://b:2"),
            ("BAD", "http://a:1,b"),
        ]);
        let one = env.upstream("ONE", "", &["http"]).unwrap();
        assert_eq!(one.url().as_str(), "http://logger-service:8083/");
        assert_eq!(one.targets()[0].to_string(), "logger-service:8083");
        let two = env.upstream("TWO", "", &["http"]).unwrap();
        let targets: Vec<String> = two.targets().iter().map(ToString::to_string).collect();
        assert_eq!(targets, ["127.0.0.1:8083", "[::1]:9083"]);
        assert_eq!(two.to_string(), "http://127.0.0.1:8083/,http://[::1]:9083/");
        let defaulted = env.upstream("UNSET", "http://x:80", &["http"]).unwrap();
        assert_eq!(defaulted.targets()[0].port, 80);
        for name in ["MIXED", "BAD"] {
            let err = env.upstream(name, "", &["http", "https"]).unwrap_err();
            assert_eq!(err.variable, name);
        }
    }
}
