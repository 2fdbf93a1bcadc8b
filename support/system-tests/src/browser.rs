//! A small WebDriver client: headless Chromium driven through chromedriver
//! over its HTTP protocol, enough to load a page, click, read and take a
//! screenshot.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use serde_json::{Value, json};

/// The key WebDriver uses for element references.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    session: String,
    http: reqwest::Client,
}

impl Browser {
    /// Starts chromedriver (`CHROMEDRIVER`, default `chromedriver`) on a
    /// free port and opens a headless Chromium session (`CHROMIUM`, default
    /// `/usr/bin/chromium`) with a laptop-sized window.
    pub async fn start() -> anyhow::Result<Self> {
        let port = test_support::free_port();
        let bin = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let driver = Command::new(&bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {bin} (run `make test-infra`)"))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while http.get(format!("{base}/status")).send().await.is_err() {
            if started.elapsed() > Duration::from_secs(15) {
                bail!("chromedriver did not start");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        // Without the background-networking flags Chromium keeps trying to
        // reach the internet, which this machine does not have.
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1500",
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "goog:chromeOptions": {"binary": chromium, "args": args}
        }}});
        let mut browser = Self {
            driver,
            session: String::new(),
            http,
        };
        let created = browser
            .call("POST", &format!("{base}/session"), Some(capabilities))
            .await?;
        browser.session = format!(
            "{base}/session/{}",
            created["sessionId"]
                .as_str()
                .ok_or_else(|| anyhow!("no session id: {created}"))?
        );
        Ok(browser)
    }

    async fn call(&self, method: &str, url: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body.unwrap_or_else(|| json!({}))),
        };
        let answer: Value = request.send().await?.json().await?;
        let value = answer.get("value").cloned().unwrap_or(Value::Null);
        if let Some(error) = value.get("error").and_then(Value::as_str) {
            bail!("WebDriver {method} {url}: {error}: {}", value["message"]);
        }
        Ok(value)
    }

    async fn session_call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        self.call(method, &format!("{}{path}", self.session), body)
            .await
    }

    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.session_call("POST", "/url", Some(json!({"url": url})))
            .await
            .map(drop)
    }

    async fn element(&self, css: &str) -> anyhow::Result<String> {
        let found = self
            .session_call(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await?;
        found[ELEMENT]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("no element {css}: {found}"))
    }

    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        let id = self.element(css).await?;
        self.session_call("POST", &format!("/element/{id}/click"), None)
            .await
            .map(drop)
    }

    /// The rendered text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> anyhow::Result<String> {
        let id = self.element(css).await?;
        let text = self
            .session_call("GET", &format!("/element/{id}/text"), None)
            .await?;
        Ok(text.as_str().unwrap_or_default().to_owned())
    }

    /// Runs `script` in the page and returns its result.
    pub async fn script(&self, script: &str) -> anyhow::Result<Value> {
        self.session_call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Polls `text(css)` until `accept` holds, for at most `limit`.
    pub async fn wait_for_text(
        &self,
        css: &str,
        limit: Duration,
        accept: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + limit;
        loop {
            let text = self.text(css).await?;
            if accept(&text) {
                return Ok(text);
            }
            if Instant::now() > deadline {
                bail!("{css} still shows: {text}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A PNG of the visible page.
    pub async fn screenshot(&self) -> anyhow::Result<Vec<u8>> {
        let encoded = self.session_call("GET", "/screenshot", None).await?;
        Ok(base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())?)
    }
}

impl Browser {
    /// Closes the browser, then stops chromedriver.
    pub async fn quit(self) {
        let _ = self.session_call("DELETE", "", None).await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
