//! Access tokens (docs/security.md, "Tokens"): authentication-service signs
//! one at each successful login; the broker and the logger verify it
//! locally, with the same key, and never call authentication-service to do
//! so.
//!
//! A token is a JWT signed with HMAC-SHA256 (`jsonwebtoken`) under the key
//! of `TOKEN_KEY` (or the file `TOKEN_KEY_FILE` names), at least
//! [`MIN_KEY_BYTES`] long. It names the user (`sub`), is issued by
//! [`ISSUER`] for [`AUDIENCE`], and expires after `TOKEN_TTL_SECS`; past
//! that the client logs in again.
//!
//! A route that needs a token takes the [`Bearer`] extractor: a request
//! without `Authorization: Bearer <token>`, or with a token that is not
//! valid, is answered 401 in the envelope with a `WWW-Authenticate`
//! challenge before the handler runs.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, Env, ExposeSecret};
use crate::http::ApiError;

/// The shortest key accepted: 256 bits, HMAC-SHA256's own size.
pub const MIN_KEY_BYTES: usize = 32;
pub use proto::token::{AUDIENCE, ISSUER};
/// How far a verifier's clock may be behind the signer's.
const LEEWAY_SECS: u64 = 5;

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's e-mail address.
    pub sub: String,
    /// The user's id.
    pub uid: i64,
    pub iss: String,
    pub aud: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: u64,
}

/// The signing and verifying key, shared by every service that holds one.
#[derive(Clone)]
pub struct TokenKey {
    keys: Arc<Keys>,
    /// How a client without a token gets one, in the 401's message.
    login_hint: &'static str,
}

struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(redacted)")
    }
}

impl TokenKey {
    /// A key from its secret bytes, which must be at least
    /// [`MIN_KEY_BYTES`] long.
    pub fn new(secret: &[u8]) -> Result<Self, String> {
        if secret.len() < MIN_KEY_BYTES {
            return Err(format!(
                "the token key must be at least {MIN_KEY_BYTES} bytes, not {}",
                secret.len()
            ));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        let unusable = |e: jsonwebtoken::errors::Error| format!("the token key is not usable: {e}");
        Ok(Self {
            login_hint: "log in",
            keys: Arc::new(Keys {
                encoding: EncodingKey::from_secret(secret).map_err(unusable)?,
                decoding: DecodingKey::from_secret(secret).map_err(unusable)?,
                validation,
            }),
        })
    }

    /// `TOKEN_KEY` (or `TOKEN_KEY_FILE`): required, there is no default key.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let secret = env.with_secret_files(&["TOKEN_KEY"])?.secret("TOKEN_KEY");
        let value = secret.expose_secret();
        if value.is_empty() {
            return Err(ConfigError {
                variable: "TOKEN_KEY".into(),
                value: String::new(),
                reason: "required: set TOKEN_KEY or TOKEN_KEY_FILE to a random secret of at least 32 bytes, the same for authentication-service, the broker and the logger (`openssl rand -hex 32`)".into(),
            });
        }
        Self::new(value.as_bytes()).map_err(|reason| ConfigError {
            variable: "TOKEN_KEY".into(),
            value: "(redacted)".into(),
            reason,
        })
    }

    /// The `Authorization` header of a load tool of this project (the
    /// bench, the fault suite): a token for `email`, valid for a day, signed
    /// with the key this process's `TOKEN_KEY` or `TOKEN_KEY_FILE` names, so
    /// no run outlives its token.
    pub fn tool_headers(email: &str) -> Result<HeaderMap, ConfigError> {
        let key = Self::from_env(&Env::from_process())?;
        let token = key.issue(0, email, Duration::from_secs(86_400));
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            format!("Bearer {token}")
                .parse()
                .expect("a token is a valid header value"),
        );
        Ok(headers)
    }

    /// A token for user `uid` with e-mail `email`, valid for `ttl`.
    pub fn issue(&self, uid: i64, email: &str, ttl: Duration) -> String {
        let iat = now();
        let claims = Claims {
            sub: email.to_owned(),
            uid,
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat,
            exp: iat + ttl.as_secs(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.keys.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// The claims of `token` if it is signed with this key, for this
    /// system, and not expired; else why not, in words a client may see.
    pub fn verify(&self, token: &str) -> Result<Claims, &'static str> {
        jsonwebtoken::decode::<Claims>(token, &self.keys.decoding, &self.keys.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired; log in again",
                ErrorKind::InvalidSignature => "the token's signature is not valid",
                _ => "the token is not valid",
            })
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A request's valid token: `Authorization: Bearer <token>`, verified with
/// the state's [`TokenKey`]. Rejected with [`ApiError::Unauthenticated`]
/// (401 and `WWW-Authenticate`).
#[derive(Debug, Clone)]
pub struct Bearer(pub Claims);

impl<S> FromRequestParts<S> for Bearer
where
    S: Send + Sync,
    TokenKey: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        TokenKey::from_ref(state)
            .require(&parts.headers)
            .map(Bearer)
    }
}

impl TokenKey {
    /// Says `hint` (how this service's clients get a token, such as the
    /// broker's "log in (action auth)") in the 401 of a request without
    /// one; by default "log in".
    pub fn with_login_hint(mut self, hint: &'static str) -> Self {
        self.login_hint = hint;
        self
    }

    /// The claims of the request's `Authorization: Bearer <token>`, or the
    /// 401 saying what is missing or wrong.
    pub fn require(&self, headers: &HeaderMap) -> Result<Claims, ApiError> {
        let Some(value) = headers.get(AUTHORIZATION) else {
            return Err(ApiError::Unauthenticated {
                message: format!(
                    "this needs an access token: {} and send it as Authorization: Bearer <token>",
                    self.login_hint
                ),
                invalid: false,
            });
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(|| ApiError::Unauthenticated {
                message: "the Authorization header must be `Bearer <token>`".into(),
                invalid: true,
            })?;
        self.verify(token)
            .map_err(|reason| ApiError::Unauthenticated {
                message: reason.into(),
                invalid: true,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_token_verifies_under_its_key_only() {
        let key = TokenKey::new(KEY).unwrap();
        let token = key.issue(7, "a@example.com", Duration::from_secs(60));
        let claims = key.verify(&token).unwrap();
        assert_eq!((claims.uid, claims.sub.as_str()), (7, "a@example.com"));
        assert_eq!(claims.exp - claims.iat, 60);

        let other = TokenKey::new(b"another key of thirty-two bytes!").unwrap();
        assert_eq!(
            other.verify(&token).unwrap_err(),
            "the token's signature is not valid"
        );
        assert!(key.verify("not.a.token").is_err());
        let mut tampered = token.clone();
        tampered.insert(token.find('.').unwrap() + 2, 'x');
        assert!(key.verify(&tampered).is_err());
    }

    #[test]
    fn an_expired_token_is_refused_after_the_leeway() {
        let key = TokenKey::new(KEY).unwrap();
        let mut claims = Claims {
            sub: "a@example.com".into(),
            uid: 1,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now() - 100,
            exp: now() - LEEWAY_SECS - 2,
        };
        let sign = |c: &Claims| {
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), c, &key.keys.encoding).unwrap()
        };
        assert_eq!(
            key.verify(&sign(&claims)).unwrap_err(),
            "the token has expired; log in again"
        );
        claims.exp = now() + 60;
        claims.aud = "someone-else".into();
        assert!(key.verify(&sign(&claims)).is_err(), "another audience");
    }

    #[test]
    fn a_short_or_missing_key_is_refused() {
        assert!(TokenKey::new(b"short").is_err());
        let err = TokenKey::from_env(&Env::from_pairs([("TOKEN_KEY", "")])).unwrap_err();
        assert_eq!(err.variable, "TOKEN_KEY");
        let err = TokenKey::from_env(&Env::from_pairs([("TOKEN_KEY", "too short")])).unwrap_err();
        assert!(err.reason.contains("at least 32 bytes"), "{err}");
        assert!(
            !err.to_string().contains("too short"),
            "the value is not shown"
        );
    }
}
