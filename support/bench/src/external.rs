//! Ceilings measured by tools that are neither the code under test nor the
//! client libraries it uses (project/bench.sh installs them): `wrk` for the
//! broker's HTTP stack, postfix's `smtp-source` for the mail catcher, and
//! pymongo (`support/bench/mongo_insert.py`) for MongoDB's single inserts.

use std::path::Path as FsPath;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::tools::Tool;

/// The labels of the ceilings, as the report looks them up.
pub const SMTP_CATCHER: &str = "SMTP catcher, mails accepted";
pub const MONGO_INSERT: &str = "MongoDB insert_one";

/// What an outside tool measured.
#[derive(Debug, Clone)]
pub struct Measured {
    pub label: &'static str,
    /// The tool that measured it.
    pub tool: Tool,
    pub concurrency: usize,
    pub per_second: f64,
    /// Latency quantiles in ms where the tool reports them.
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    /// The mean time per request (ms): the tool's wall time over its
    /// count, times its concurrency, where it reports no quantiles.
    pub mean: Option<f64>,
    pub errors: u64,
}

impl Measured {
    /// The median, or the mean where the tool gives no median.
    pub fn typical_ms(&self) -> Option<f64> {
        self.p50.or(self.mean)
    }
}

/// What `wrk` sends: `POST url`, with a JSON body and a bearer token
/// where given.
pub struct WrkPost<'a> {
    pub url: &'a str,
    pub json: Option<&'a str>,
    pub authorization: Option<&'a str>,
}

impl WrkPost<'_> {
    /// wrk's Lua script for this request (long brackets: the body is sent
    /// as it is).
    fn script(&self) -> anyhow::Result<String> {
        for text in self.json.iter().chain(&self.authorization) {
            anyhow::ensure!(!text.contains("]==]"), "{text} would end wrk's Lua string");
        }
        let mut lua = String::from("wrk.method = \"POST\"\n");
        if let Some(body) = self.json {
            lua.push_str(&format!(
                "wrk.body = [==[{body}]==]\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
            ));
        }
        if let Some(authorization) = self.authorization {
            lua.push_str(&format!(
                "wrk.headers[\"Authorization\"] = [==[{authorization}]==]\n"
            ));
        }
        Ok(lua)
    }
}

/// `wrk` sending `request` on `c` connections (two threads) for `secs`.
pub fn wrk(
    label: &'static str,
    request: &WrkPost<'_>,
    c: usize,
    secs: Duration,
) -> anyhow::Result<Measured> {
    let script = std::env::temp_dir().join(format!("bench-wrk-{}.lua", std::process::id()));
    std::fs::write(&script, request.script()?)?;
    let output = Command::new("wrk")
        .args([
            &format!("-t{}", c.min(2)),
            &format!("-c{c}"),
            &format!("-d{}s", secs.as_secs().max(1)),
            "--latency",
            "-s",
        ])
        .arg(&script)
        .arg(request.url)
        .output()
        .context("wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(output.status.success(), "wrk failed: {text}");
    let per_second = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no Requests/sec in wrk's output: {text}"))?;
    let quantile = |q: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(q))
            .and_then(|v| wrk_duration_ms(v.trim()))
    };
    let count = |prefix: &str| -> u64 {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    // A refused request (a non-2xx answer) and a failed socket both count.
    let socket_errors: u64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
        .map(|rest| {
            rest.split(',')
                .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Ok(Measured {
        label,
        tool: Tool::Wrk,
        concurrency: c,
        per_second,
        p50: quantile("50%"),
        p90: quantile("90%"),
        p99: quantile("99%"),
        mean: None,
        errors: count("Non-2xx or 3xx responses:") + socket_errors,
    })
}

/// `12.34us`, `1.20ms`, `2.00s` in ms.
fn wrk_duration_ms(v: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = v.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

/// postfix's `smtp-source`: `c` sessions, each sending mail after mail over
/// its connection (`-d`), for about `secs` (the count is calibrated by a
/// short first run).
pub fn smtp_source(host: &str, port: u16, c: usize, secs: Duration) -> anyhow::Result<Measured> {
    let run = |messages: usize| -> anyhow::Result<f64> {
        let started = Instant::now();
        let output = Command::new(smtp_source_path())
            .args([
                "-d",
                "-s",
                &c.to_string(),
                "-m",
                &messages.to_string(),
                "-f",
                "bench@example.com",
                "-t",
                "sink@example.com",
                "-S",
                "bench",
                "-l",
                "200",
                &format!("{host}:{port}"),
            ])
            .output()
            .context("smtp-source (apt-get install postfix)")?;
        anyhow::ensure!(
            output.status.success(),
            "smtp-source failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(started.elapsed().as_secs_f64())
    };
    let probe = (c * 20).max(50);
    let rate = probe as f64 / run(probe)?;
    let messages = ((rate * secs.as_secs_f64()) as usize).max(probe);
    let elapsed = run(messages)?;
    let per_second = messages as f64 / elapsed;
    Ok(Measured {
        label: SMTP_CATCHER,
        tool: Tool::SmtpSource,
        concurrency: c,
        per_second,
        p50: None,
        p90: None,
        p99: None,
        mean: Some(c as f64 * 1000.0 / per_second),
        errors: 0,
    })
}

fn smtp_source_path() -> &'static str {
    for candidate in ["/usr/sbin/smtp-source", "/usr/bin/smtp-source"] {
        if FsPath::new(candidate).exists() {
            return candidate;
        }
    }
    "smtp-source"
}

/// pymongo inserting one document at a time on `c` threads for `secs`
/// (`support/bench/mongo_insert.py`, run by `python`).
pub fn pymongo_insert(
    python: &str,
    url: &str,
    c: usize,
    secs: Duration,
) -> anyhow::Result<Measured> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/mongo_insert.py");
    let output = Command::new(python)
        .args([script, url, &c.to_string(), &secs.as_secs_f64().to_string()])
        .output()
        .with_context(|| format!("{python} {script}"))?;
    anyhow::ensure!(
        output.status.success(),
        "mongo_insert.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let number = |key: &str| answer.get(key).and_then(serde_json::Value::as_f64);
    Ok(Measured {
        label: MONGO_INSERT,
        tool: Tool::Pymongo,
        concurrency: c,
        per_second: number("per_second").context("per_second")?,
        p50: number("p50"),
        p90: number("p90"),
        p99: number("p99"),
        mean: None,
        errors: number("errors").unwrap_or(0.0) as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::wrk_duration_ms;

    #[test]
    fn wrk_durations_in_ms() {
        assert_eq!(wrk_duration_ms("250.00us"), Some(0.25));
        assert_eq!(wrk_duration_ms("1.50ms"), Some(1.5));
        assert_eq!(wrk_duration_ms("2.00s"), Some(2000.0));
        assert_eq!(wrk_duration_ms("fast"), None);
    }
}
