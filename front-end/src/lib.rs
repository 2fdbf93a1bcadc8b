//! front-end: serves the test page (docs/contracts.md §4). Everything the page needs is
//! compiled into the binary and served from here, so it works offline.
//!
//! The page's JavaScript talks to the broker directly; `BROKER_URL` says
//! where that is, as an absolute URL or, behind a reverse proxy on the same
//! origin, as a path such as `/api`.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use proto::ports;
use service_kit::config::{ConfigError, Env, ServerConfig, Url};
use service_kit::origins::Origins;
use service_kit::{Bound, Service};

/// The page (`assets/index.html`), with the two URLs it is configured with;
/// askama escapes them for HTML.
#[derive(Template)]
#[template(path = "index.html")]
struct IndexHtml<'a> {
    broker_url: &'a str,
    mail_ui_url: &'a str,
}
const APP_JS: &str = include_str!("../assets/app.js");
const STYLE_CSS: &str = include_str!("../assets/style.css");

#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    /// `BROKER_URL`: where the page sends its requests.
    pub broker_url: String,
    /// `MAIL_UI_URL`: the mail catcher's web UI, linked from the page.
    pub mail_ui_url: String,
    /// `CORS_ORIGINS`: the origins the page is opened under, as the
    /// broker's (default [`service_kit::origins::PAGE_ORIGINS`]); a browser
    /// request from any other page is refused (docs/security.md).
    pub origins: Origins,
}

/// What `<binary> healthcheck` asks (service_kit::service::healthcheck).
impl AsRef<ServerConfig> for Config {
    fn as_ref(&self) -> &ServerConfig {
        &self.server
    }
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            server: ServerConfig::from_env(env, &ports::local(ports::FRONT_END))?,
            broker_url: browser_url(
                env,
                "BROKER_URL",
                &format!("http://localhost:{}", ports::BROKER),
            )?,
            mail_ui_url: browser_url(
                env,
                "MAIL_UI_URL",
                &format!("http://localhost:{}", ports::MAIL_UI),
            )?,
            origins: Origins::pages_from_env(env)?,
        })
    }
}

/// A URL the browser follows: absolute http(s), or a same-origin path.
fn browser_url(env: &Env, name: &str, default: &str) -> Result<String, ConfigError> {
    let value = env.string(name, default);
    if value.starts_with('/') && !value.starts_with("//") {
        return Ok(value.trim_end_matches('/').to_owned());
    }
    env.url(name, default, &["http", "https"])?;
    Ok(value.trim_end_matches('/').to_owned())
}

/// The page, with its settings filled in once at start. Both fields are
/// reference-counted, so serving it copies no bytes.
#[derive(Clone)]
struct Page {
    html: Bytes,
    csp: HeaderValue,
}

impl Page {
    fn new(config: &Config) -> anyhow::Result<Self> {
        let html = IndexHtml {
            broker_url: &config.broker_url,
            mail_ui_url: &config.mail_ui_url,
        }
        .render()?;
        // The page may only load its own files and talk to the broker.
        let connect = match Url::parse(&config.broker_url) {
            Ok(url) => format!("'self' {}", url.origin().ascii_serialization()),
            Err(_) => "'self'".to_owned(),
        };
        let csp = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src {connect}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        );
        Ok(Self {
            html: Bytes::from(html),
            csp: HeaderValue::from_str(&csp)?,
        })
    }
}

/// The page's routes, without the health routes and conventions.
fn routes(page: Page) -> Router {
    Router::new()
        .route(
            "/",
            get(move || {
                let page = page.clone();
                async move {
                    (
                        [(header::CONTENT_SECURITY_POLICY, page.csp)],
                        Html(page.html),
                    )
                }
            }),
        )
        .route(
            "/static/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/static/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

/// The front-end, its port bound. It has no server-side dependencies, so
/// it is ready as soon as it runs.
pub async fn service(config: Config) -> anyhow::Result<Bound> {
    let page = Page::new(&config)?;
    Service::new("front-end", &config.server)
        .origins(config.origins)
        .routes(routes(page))
        .bind()
        .await
}
