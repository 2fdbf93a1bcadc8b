//! The test page as the browser receives it.

use reqwest::StatusCode;
use service_kit::config::{Env, ServerConfig};
use service_kit::shutdown::CancellationToken;

async fn spawn(broker_url: &str) -> String {
    let env = Env::from_pairs([
        ("BROKER_URL", broker_url),
        ("MAIL_UI_URL", "http://mail.example:8025"),
    ]);
    let mut config = front_end::Config::from_env(&env).unwrap();
    config.server = ServerConfig::for_tests();
    let server = front_end::build(config).await.unwrap();
    let base = format!("http://127.0.0.1:{}", server.port());
    tokio::spawn(server.run(CancellationToken::new()));
    base
}

#[tokio::test]
async fn the_page_carries_the_broker_url_and_a_content_security_policy() {
    let base = spawn("http://broker.example:8080/").await;
    let response = reqwest::get(format!("{base}/")).await.unwrap();
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
    let base = spawn("/api").await;
    let html = reqwest::get(format!("{base}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"content="/api""#));
    for asset in ["/static/app.js", "/static/style.css"] {
        assert!(html.contains(asset), "{asset} is referenced");
        let response = reqwest::get(format!("{base}{asset}")).await.unwrap();
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
