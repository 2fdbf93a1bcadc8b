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

/// The origins a service answers browsers from; empty for a service no
/// page calls.
#[derive(Debug, Clone, Default)]
pub struct Origins(Arc<Vec<HeaderValue>>);

impl Origins {
    /// No browser origin at all.
    pub fn none() -> Self {
        Self::default()
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
        Ok(Self(Arc::new(list)))
    }

    /// `CORS_ORIGINS`: a comma-separated list; `default` when unset.
    pub fn from_env(env: &Env, default: &str) -> Result<Self, ConfigError> {
        let value = env.string("CORS_ORIGINS", default);
        Self::new(value.split(',')).map_err(|reason| ConfigError {
            variable: "CORS_ORIGINS".into(),
            value: value.clone(),
            reason,
        })
    }

    pub fn allows(&self, origin: &HeaderValue) -> bool {
        self.0.iter().any(|allowed| allowed == origin)
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
/// layer of [`crate::http::HttpServer::with_origins`], in front of the CORS
/// grants, so a preflight from such an origin is refused too.
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
                let refusal = ApiError::Forbidden(format!(
                    "requests from the origin {shown} are not allowed (CORS_ORIGINS)"
                ));
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
        let err =
            Origins::from_env(&Env::from_pairs([("CORS_ORIGINS", "http://a,b")]), "").unwrap_err();
        assert_eq!(err.variable, "CORS_ORIGINS");
    }
}
