//! The request extractors of docs/contracts.md §3: JSON bodies (declared
//! or not) and checked query strings, each refusing in the envelope.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use proto::http::Check;
use serde::de::DeserializeOwned;

use super::ApiError;

/// A JSON request body with a JSON Content-Type (`application/json`, or
/// any `+json` type): what the services that only other services call
/// accept. Any other type, or none, is a 415 before the body is read, so
/// a form a web page can send without a CORS preflight (`text/plain`,
/// `application/x-www-form-urlencoded`) never reaches a handler even where
/// the origin check would not see it (docs/security.md).
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req.headers().get(header::CONTENT_TYPE);
        if !content_type.is_some_and(is_json) {
            let sent = content_type.map_or("none".into(), |v| {
                format!("{:?}", v.to_str().unwrap_or("(not text)"))
            });
            return Err(ApiError::UnsupportedMediaType(format!(
                "the body must be JSON, sent with Content-Type: application/json (sent: {sent})"
            )));
        }
        AnyJsonBody::from_request(req, state)
            .await
            .map(|AnyJsonBody(body)| JsonBody(body))
    }
}

/// `application/json` or `application/<anything>+json`, with any parameters.
fn is_json(value: &HeaderValue) -> bool {
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype.len() > 5
                && subtype.as_bytes()[subtype.len() - 5..].eq_ignore_ascii_case(b"+json"))
}

/// A JSON request body, parsed whatever the Content-Type header says (a plain
/// `curl -d` sends `application/x-www-form-urlencoded`): the broker's, whose
/// clients are people with curl. A browser on another site is stopped by
/// the origin check instead ([`crate::origins`]).
#[derive(Debug, Clone)]
pub struct AnyJsonBody<T>(pub T);

impl<S, T> FromRequest<S> for AnyJsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest(format!(
                    "cannot read the request body: {}",
                    rejection.body_text()
                ))
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(AnyJsonBody)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    }
}

/// A query string read into `T` (axum's `Query`: a value of the wrong
/// kind is a 400 naming the field), then held to `T`'s own rule
/// ([`Check`], such as the paging rule of `GET /logs`): a value that
/// breaks it is a 400 in the envelope with the rule's message.
pub struct CheckedQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for CheckedQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Check,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(value) = Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        value
            .check()
            .map(CheckedQuery)
            .map_err(ApiError::BadRequest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_application_json_or_a_json_suffix_with_any_parameters() {
        let json = |v: &'static str| is_json(&HeaderValue::from_static(v));
        for yes in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/problem+json",
            "application/vnd.api+JSON ; q=1",
        ] {
            assert!(json(yes), "{yes}");
        }
        for no in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/json",
            "application/jsonp",
            "application/+json",
            "application/json-seq",
            "json",
            "",
        ] {
            assert!(!json(no), "{no}");
        }
    }
}
