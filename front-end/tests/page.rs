//! The test page as the browser receives it.

use reqwest::StatusCode;
use service_kit::config::Env;
use test_support::{TestApp, config, spawn_front_end};

async fn spawn(broker_url: &str) -> TestApp {
    spawn_front_end(config::front_end(broker_url)).await
}

#[tokio::test]
async fn the_page_carries_the_broker_url_and_a_content_security_policy() {
    let front_end = spawn("http://broker.example:8080/").await;
    let response = reqwest::get(front_end.url("/")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("connect-src 'self' http://broker.example:8080;"),
        "{csp}"
    );
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = response.text().await.unwrap();
    assert!(
        html.contains(r#"<meta name="broker-url" content="http://broker.example:8080">"#),
        "{html}"
    );
    assert!(html.contains(r#"href="http://mail.example:8025""#));
    assert!(html.contains(">Test Broker</button>"));
    assert!(!html.contains("{{"), "every placeholder is filled");
}

#[tokio::test]
async fn the_page_loads_nothing_from_other_origins() {
    let front_end = spawn("/api").await;
    let html = reqwest::get(front_end.url("/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"content="/api""#));
    for asset in ["/static/app.js", "/static/style.css"] {
        assert!(html.contains(asset), "{asset} is referenced");
        let response = reqwest::get(front_end.url(asset)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert!(!response.text().await.unwrap().is_empty());
    }
    for line in html
        .lines()
        .filter(|l| l.contains("src=") || l.contains("<link"))
    {
        assert!(
            !line.contains("http://") && !line.contains("https://"),
            "external asset: {line}"
        );
    }
}

#[test]
fn a_broker_url_that_is_neither_a_url_nor_a_path_is_refused() {
    for bad in ["broker:8080", "//broker", "ftp://broker"] {
        let env = Env::from_pairs([("BROKER_URL", bad)]);
        let err = front_end::Config::from_env(&env).unwrap_err();
        assert_eq!(err.variable, "BROKER_URL", "{bad}");
    }
}

/// `method path` as a script on the page at `origin` sends it (a form's
/// `text/plain` body for a POST): the status and the body.
async fn from_page(
    front_end: &TestApp,
    method: reqwest::Method,
    path: &str,
    origin: &str,
) -> (StatusCode, String) {
    let mut request = reqwest::Client::new()
        .request(method.clone(), front_end.url(path))
        .header("origin", origin);
    if method == reqwest::Method::POST {
        request = request.header("content-type", "text/plain").body("{}");
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// The page's own origins (on this port and behind Caddy, under each of
/// the machine's names) are allowed; a page on another site gets a 403
/// for anything it sends, a form post included (docs/security.md).
#[tokio::test]
async fn a_request_from_another_site_is_a_403_and_the_pages_own_origins_pass() {
    use reqwest::Method;
    let front_end = spawn("/api").await;
    for origin in ["http://evil.example", "http://localhost:8084", "null"] {
        let (status, body) = from_page(&front_end, Method::POST, "/", origin).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{origin}");
        assert!(body.contains(r#""error":true"#), "the envelope: {body}");
        assert!(body.contains("CORS_ORIGINS"), "names the variable: {body}");
        let (status, _) = from_page(&front_end, Method::GET, "/static/app.js", origin).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "GET from {origin}");
    }
    for origin in [
        "http://localhost",
        "http://127.0.0.1",
        "http://[::1]",
        "http://127.0.0.1:8081",
    ] {
        let (status, _) = from_page(&front_end, Method::GET, "/static/app.js", origin).await;
        assert_eq!(status, StatusCode::OK, "{origin}");
        let (status, _) = from_page(&front_end, Method::POST, "/", origin).await;
        assert_eq!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{origin} reaches the routes"
        );
    }
}

#[test]
fn cors_origins_names_the_pages_origins() {
    let env = Env::from_pairs([("CORS_ORIGINS", "https://shop.example")]);
    let config = front_end::Config::from_env(&env).unwrap();
    assert!(
        config
            .origins
            .allows(&"https://shop.example".parse().unwrap())
    );
    assert!(!config.origins.allows(&"http://localhost".parse().unwrap()));
    let env = Env::from_pairs([("CORS_ORIGINS", "shop.example")]);
    let err = front_end::Config::from_env(&env).unwrap_err();
    assert_eq!(err.variable, "CORS_ORIGINS");
}
