//! Which web pages may use a service from a browser (docs/security.md, "No
//! cross-site use").
//!
//! A browser names the page a request comes from in `Origin` (on every
//! cross-origin request, and on every same-origin one that is not a GET or
//! HEAD). A request whose `Origin` is not in the service's [`Origins`] is
//! answered 403 before any route runs, whatever its method or
//! Content-Type: a form on another site posting `text/plain` gets nowhere.
//! A request without `Origin` (curl, the other services) is not a
//! browser's and passes. The allowed origins also get CORS grants, so the
//! test page can read the answers.
//!
//! Safe by default: every service ([`crate::Service`]) refuses every
//! browser origin unless it names the ones it allows
//! ([`crate::Service::origins`]). Only the broker and the front-end do, with
//! the pages of [`PAGE_ORIGINS`] or `CORS_ORIGINS`.

use std::sync::Arc;
use std::time::Duration;

use std::future::{Ready, ready};
use std::task::{Context, Poll};

use axum::http::{HeaderName, HeaderValue, Method, Request, header};
use axum::response::{IntoResponse, Response};
use futures::future::Either;
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::{ConfigError, Env};
use crate::http::ApiError;

/// The variable that lists the page origins a deployment opens the test
/// page under (the broker's and the front-end's).
pub const VARIABLE: &str = "CORS_ORIGINS";

/// The origins the test page has on this machine when `CORS_ORIGINS` is
/// not set: the front-end's own port and the page behind Caddy (port 80),
/// under each of the machine's own names. docs/security.md lists them
/// (checked by project/check-deploy.py).
pub const PAGE_ORIGINS: &str = "http://localhost:8081,http://127.0.0.1:8081,http://[::1]:8081,\
                                http://localhost,http://127.0.0.1,http://[::1]";

/// The origins a service answers browsers from; empty for a service no
/// page calls.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    list: Arc<Vec<HeaderValue>>,
    /// The variable the list came from, named in the refusal.
    variable: Option<&'static str>,
}

impl Origins {
    /// No browser origin at all: what a server allows unless told otherwise.
    pub fn none() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// `origins`, each `scheme://host[:port]` (no path); an error names the
    /// first that is not.
    pub fn new<S: AsRef<str>>(origins: impl IntoIterator<Item = S>) -> Result<Self, String> {
        let mut list = Vec::new();
        for origin in origins {
            let origin = origin.as_ref().trim();
            if origin.is_empty() {
                continue;
            }
            let url = reqwest::Url::parse(origin).map_err(|e| format!("{origin:?}: {e}"))?;
            let canonical = url.origin().ascii_serialization();
            if !matches!(url.scheme(), "http" | "https")
                || canonical.trim_end_matches('/') != origin.trim_end_matches('/')
            {
                return Err(format!(
                    "{origin:?} is not an origin: expected scheme://host[:port], as a browser sends it"
                ));
            }
            list.push(HeaderValue::from_str(&canonical).map_err(|e| e.to_string())?);
        }
        Ok(Self {
            list: Arc::new(list),
            variable: None,
        })
    }

    /// The test page's origins: `CORS_ORIGINS`, a comma-separated list, or
    /// [`PAGE_ORIGINS`] when it is unset.
    pub fn pages_from_env(env: &Env) -> Result<Self, ConfigError> {
        let value = env.string(VARIABLE, PAGE_ORIGINS);
        let origins = Self::new(value.split(',')).map_err(|reason| ConfigError {
            variable: VARIABLE.into(),
            value: value.clone(),
            reason,
        })?;
        Ok(Self {
            variable: Some(VARIABLE),
            ..origins
        })
    }

    pub fn allows(&self, origin: &HeaderValue) -> bool {
        self.list.iter().any(|allowed| allowed == origin)
    }

    /// The 403's message for a request from `origin`: what is refused, and
    /// what a deployment sets to allow its page (docs/deploy.md).
    fn refusal(&self, origin: &str) -> String {
        match self.variable {
            Some(variable) => format!(
                "requests from the origin {origin} are not allowed: a page opened under \
                 another name must be listed in {variable} (docs/deploy.md)"
            ),
            None => format!(
                "requests from the origin {origin} are not allowed: this service takes no \
                 requests from web pages"
            ),
        }
    }

    /// The CORS grants for these origins: the methods the routes use, and
    /// the headers the test page sends (`Authorization` must be named: a
    /// wildcard does not cover it). No cookies are ever involved.
    pub fn cors(&self) -> CorsLayer {
        let origins = self.clone();
        CorsLayer::new()
            .allow_origin(AllowOrigin::predicate(move |origin, _| {
                origins.allows(origin)
            }))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::DELETE,
                Method::OPTIONS,
            ])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                HeaderName::from_static(crate::request_id::HEADER),
            ])
            .expose_headers([
                HeaderName::from_static(crate::request_id::HEADER),
                header::RETRY_AFTER,
            ])
            .max_age(Duration::from_secs(300))
    }
}

/// The 403 for a browser request from an origin not in the list: the
/// outermost check of every [`crate::http::HttpServer`], in front of the
/// CORS grants, so a preflight from such an origin is refused too.
///
/// A tower layer rather than an axum `from_fn`: that one clones everything
/// behind it for every request, and here that is the CORS layer's header
/// values (docs/bench/README.md, "broker hit").
#[derive(Debug, Clone)]
pub struct RefuseOthersLayer(pub Origins);

impl<S> Layer<S> for RefuseOthersLayer {
    type Service = RefuseOthers<S>;

    fn layer(&self, inner: S) -> RefuseOthers<S> {
        RefuseOthers {
            origins: self.0.clone(),
            inner,
        }
    }
}

/// The service of [`RefuseOthersLayer`].
#[derive(Debug, Clone)]
pub struct RefuseOthers<S> {
    origins: Origins,
    inner: S,
}

impl<S, B> Service<Request<B>> for RefuseOthers<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        match req.headers().get(header::ORIGIN) {
            Some(origin) if !self.origins.allows(origin) => {
                let shown = origin.to_str().unwrap_or("(not text)");
                tracing::warn!(
                    origin = shown,
                    path = req.uri().path(),
                    "refused a request from an origin not allowed"
                );
                let refusal = ApiError::Forbidden(self.origins.refusal(shown));
                Either::Left(ready(Ok(refusal.into_response())))
            }
            _ => Either::Right(self.inner.call(req)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_matched_exactly() {
        let origins = Origins::new(["http://localhost:8081", " http://localhost ", ""]).unwrap();
        let allows = |o: &str| origins.allows(&HeaderValue::from_str(o).unwrap());
        assert!(allows("http://localhost:8081"));
        assert!(allows("http://localhost"));
        assert!(!allows("http://localhost:8082"));
        assert!(!allows("https://localhost"));
        assert!(!allows("http://localhost.evil.example"));
        assert!(!allows("null"));
    }

    #[test]
    fn anything_but_an_origin_is_refused() {
        for bad in ["localhost:8081", "http://localhost/page", "ftp://x", "*"] {
            assert!(Origins::new([bad]).is_err(), "{bad}");
        }
        let err = Origins::pages_from_env(&Env::from_pairs([("CORS_ORIGINS", "http://a,b")]))
            .unwrap_err();
        assert_eq!(err.variable, "CORS_ORIGINS");
    }

    #[test]
    fn the_page_is_allowed_under_each_of_the_machines_own_names_by_default() {
        let origins = Origins::pages_from_env(&Env::from_pairs::<&str, &str>([])).unwrap();
        let allows = |o: &str| origins.allows(&HeaderValue::from_str(o).unwrap());
        for page in ["http://localhost", "http://127.0.0.1", "http://[::1]"] {
            assert!(allows(page), "{page}");
            assert!(allows(&format!("{page}:8081")), "{page}:8081");
            assert!(!allows(&format!("{page}:8084")), "{page}:8084");
        }
        assert!(!allows("http://evil.example"));
        assert!(!allows("http://127.0.0.2"));
        // A deployment names its host; the defaults are then gone.
        let deployed =
            Origins::pages_from_env(&Env::from_pairs([("CORS_ORIGINS", "https://shop.example")]))
                .unwrap();
        assert!(deployed.allows(&HeaderValue::from_static("https://shop.example")));
        assert!(!deployed.allows(&HeaderValue::from_static("http://localhost")));
        assert!(
            deployed
                .refusal("http://localhost")
                .contains("CORS_ORIGINS")
        );
        assert!(!Origins::none().refusal("http://x").contains("CORS_ORIGINS"));
    }
}
