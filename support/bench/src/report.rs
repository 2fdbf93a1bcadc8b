//! The Markdown reports and the chart, written to `OUT_DIR`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;

use authentication_service::passwords::BCRYPT_COST;

use crate::load::LoadResult;
use crate::procs::{Sample, Usage};
use crate::scenarios::Path;
use crate::{Row, Settings};

pub struct Extra {
    pub bcrypt_ms: f64,
    pub amqp_e2e_ms: Vec<f64>,
    pub log_during_auth: LoadResult,
    pub auth_burst: LoadResult,
}

fn shell(command: &str, args: &[&str]) -> String {
    Command::new(command)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn machine(runs: &str) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_default();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<f64>()
                    .unwrap_or(0.0)
                    / 1048576.0
            })
        })
        .unwrap_or(0.0);
    format!(
        "- Date: {}\n- Machine: {} cores ({cpu}), {memory:.0} GiB memory\n- {}; commit {}\n- Services built with `--release`, logging at `warn`; MongoDB-compatible server: secantusdb 0.7.0b3 `--standalone`; mail catcher: maildev 2.2.1\n- {runs}, closed loop (each worker sends its next request when the last one answered)\n",
        shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        shell("rustc", &["--version"]),
        shell("git", &["rev-parse", "--short", "HEAD"]),
    )
}

fn result_row(label: &str, c: usize, r: &LoadResult) -> String {
    format!(
        "| {label} | {c} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} |\n",
        r.per_second(),
        r.quantile_ms(0.5),
        r.quantile_ms(0.9),
        r.quantile_ms(0.99),
        r.quantile_ms(1.0),
        r.errors
    )
}

const HEADER: &str = "| path | concurrency | req/s | p50 ms | p90 ms | p99 ms | max ms | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|\n";

fn find(rows: &[Row], path: Path, c: usize) -> Option<&LoadResult> {
    rows.iter()
        .find(|r| r.path == path && r.concurrency == c)
        .map(|r| &r.result)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "missed" }
}

pub fn write_bench(settings: &Settings, rows: &[Row], extra: &Extra) -> anyhow::Result<()> {
    let top = settings.concurrency.iter().copied().max().unwrap_or(64);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    let mut md = String::new();
    writeln!(
        md,
        "# Benchmark report\n\nWritten by `make bench`; do not edit by hand (the analysis is in [README.md](README.md)).\n"
    )?;
    let run_note = format!(
        "Each run: {:.0} s warm-up (not measured), then {:.0} s measured",
        settings.warmup.as_secs_f64(),
        settings.duration.as_secs_f64()
    );
    md.push_str(&machine(&run_note));
    writeln!(
        md,
        "\n![Requests per second by transport and concurrency](transports.png)\n"
    )?;

    // Targets.
    writeln!(
        md,
        "## Targets (concurrency {top})\n\n| target | measured | |\n|---|---|---|"
    )?;
    for (transport, direct) in [
        ("rpc", Path::LoggerRpc),
        ("http", Path::LoggerHttp),
        ("grpc", Path::LoggerGrpc),
    ] {
        if let (Some(via), Some(straight)) = (
            find(rows, Path::BrokerLog(transport), top),
            find(rows, direct, top),
        ) {
            let ratio = via.per_second() / straight.per_second();
            writeln!(
                md,
                "| log via {transport} through the broker ≥ 80% of the logger direct | {:.0} / {:.0} req/s = {:.0}% | {} |",
                via.per_second(),
                straight.per_second(),
                ratio * 100.0,
                verdict(ratio >= 0.8)
            )?;
        }
    }
    if let Some(mongo) = find(rows, Path::MongoInsert, top) {
        let best = Path::STRAIGHT_AT_LOGGER
            .iter()
            .filter_map(|p| find(rows, *p, top))
            .map(LoadResult::per_second)
            .fold(0.0, f64::max);
        writeln!(
            md,
            "| the logger's store path ≥ MongoDB's single-insert ceiling | {best:.0} / {:.0} req/s = {:.0}% | {} |",
            mongo.per_second(),
            best / mongo.per_second() * 100.0,
            verdict(best >= mongo.per_second())
        )?;
    }
    let bcrypt_ceiling = cores / (extra.bcrypt_ms / 1000.0);
    if let Some(auth) = find(rows, Path::BrokerAuth, top) {
        let ratio = auth.per_second() / bcrypt_ceiling;
        writeln!(
            md,
            "| auth ≥ 90% of the bcrypt ceiling ({cores:.0} cores / {:.1} ms) | {:.1} / {bcrypt_ceiling:.1} req/s = {:.0}% | {} |",
            extra.bcrypt_ms,
            auth.per_second(),
            ratio * 100.0,
            verdict(ratio >= 0.9)
        )?;
    }
    if let Some(idle) = find(rows, Path::BrokerLog("rpc"), 1) {
        let (idle_p99, busy_p99) = (
            idle.quantile_ms(0.99),
            extra.log_during_auth.quantile_ms(0.99),
        );
        writeln!(
            md,
            "| log p99 during an auth burst (16 logins at once) ≤ 2× idle | {busy_p99:.2} ms vs {idle_p99:.2} ms idle = {:.1}× | {} |",
            busy_p99 / idle_p99,
            verdict(busy_p99 <= 2.0 * idle_p99)
        )?;
    }
    if let (Some(mail), Some(smtp)) = (
        find(rows, Path::BrokerMail, top),
        find(rows, Path::SmtpSend, top),
    ) {
        let ratio = mail.per_second() / smtp.per_second();
        writeln!(
            md,
            "| mail ≥ 90% of the catcher's acceptance rate | {:.0} / {:.0} req/s = {:.0}% | {} |",
            mail.per_second(),
            smtp.per_second(),
            ratio * 100.0,
            verdict(ratio >= 0.9)
        )?;
    }
    let errors: u64 = rows.iter().map(|r| r.result.errors).sum::<u64>()
        + extra.log_during_auth.errors
        + extra.auth_burst.errors;
    writeln!(
        md,
        "| zero errors at every concurrency | {errors} errors | {} |\n",
        verdict(errors == 0)
    )?;

    for group in ["Through the broker", "Straight at the logger", "Ceilings"] {
        writeln!(md, "## {group}\n\n{HEADER}")?;
        md.pop();
        for row in rows.iter().filter(|r| r.group == group) {
            md.push_str(&result_row(&row.path.label(), row.concurrency, &row.result));
        }
        md.push('\n');
    }
    for row in rows.iter().filter(|r| r.drain.is_some()) {
        let (stored, seconds) = row.drain.unwrap_or_default();
        writeln!(
            md,
            "**amqp at concurrency {}**: the listener stored {stored} events (warm-up included) {seconds:.1} s after the run began: {:.0} events/s end to end, while the broker's 202 (RabbitMQ's confirm) came at {:.0}/s.\n",
            row.concurrency,
            stored as f64 / seconds,
            row.result.per_second()
        )?;
    }
    let e2e = &extra.amqp_e2e_ms;
    if !e2e.is_empty() {
        let q = |f: f64| e2e[((e2e.len() - 1) as f64 * f).round() as usize];
        writeln!(
            md,
            "**amqp end to end** (publish through the broker until the listener has stored the entry, {} events one at a time): p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms.\n",
            e2e.len(),
            q(0.5),
            q(0.9),
            q(1.0)
        )?;
    }
    writeln!(
        md,
        "**bcrypt**: {:.1} ms per verification at cost {BCRYPT_COST} on one core, so at most {bcrypt_ceiling:.1} logins/s on {cores:.0} cores.\n",
        extra.bcrypt_ms
    )?;
    writeln!(
        md,
        "**Log while 16 logins run at once**: log via rpc at concurrency 1: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms (the burst itself: {:.1} logins/s, {} errors).\n",
        extra.log_during_auth.per_second(),
        extra.log_during_auth.quantile_ms(0.5),
        extra.log_during_auth.quantile_ms(0.99),
        extra.auth_burst.per_second(),
        extra.auth_burst.errors
    )?;

    writeln!(
        md,
        "## Resources at concurrency {top}\n\nPeak resident memory (MiB), peak open file descriptors, peak TCP/Unix sockets and CPU (% of one core) of each service during the run.\n"
    )?;
    let services = [
        "broker-service",
        "authentication-service",
        "logger-service",
        "mail-service",
        "listener-service",
    ];
    writeln!(
        md,
        "| path | {} |\n|---|{}",
        services.join(" | "),
        "---|".repeat(services.len())
    )?;
    for row in rows.iter().filter(|r| r.concurrency == top) {
        let cells: Vec<String> = services
            .iter()
            .map(|s| {
                row.usage.get(*s).map_or("-".into(), |u| {
                    format!(
                        "{:.1} MiB, {} fd, {} sock, {:.0}%",
                        u.peak_rss_kib as f64 / 1024.0,
                        u.peak_fds,
                        u.peak_sockets,
                        u.cpu_percent
                    )
                })
            })
            .collect();
        writeln!(md, "| {} | {} |", row.path.label(), cells.join(" | "))?;
    }
    writeln!(
        md,
        "\n## Commands\n\n```sh\nmake bench                      # everything above (about 12 minutes)\nBENCH_SECS=30 CONCURRENCY=64 make bench   # longer runs, one concurrency\nmake soak                       # the soak test (soak.md)\n```"
    )?;
    std::fs::write(settings.out_dir.join("report.md"), md)?;
    write_chart(settings, rows)?;
    Ok(())
}

/// Grouped bars: requests per second of each log transport, through the
/// broker and straight at the logger, at each concurrency. SVG, then a PNG
/// rendered by headless Chromium.
fn write_chart(settings: &Settings, rows: &[Row]) -> anyhow::Result<()> {
    let bars: Vec<(String, Path)> = vec![
        ("rpc via broker".into(), Path::BrokerLog("rpc")),
        ("rpc direct".into(), Path::LoggerRpc),
        ("http via broker".into(), Path::BrokerLog("http")),
        ("http direct".into(), Path::LoggerHttp),
        ("grpc via broker".into(), Path::BrokerLog("grpc")),
        ("grpc direct".into(), Path::LoggerGrpc),
        ("amqp via broker".into(), Path::BrokerLog("amqp")),
        ("MongoDB insert".into(), Path::MongoInsert),
    ];
    let colours = ["#9ecae1", "#4292c6", "#08519c"];
    let (width, height, left, bottom, top_margin) = (960.0, 480.0, 70.0, 90.0, 50.0);
    let max = rows
        .iter()
        .filter(|r| bars.iter().any(|(_, p)| *p == r.path))
        .map(|r| r.result.per_second())
        .fold(1.0, f64::max);
    let scale_max = nice_ceiling(max);
    let plot_h = height - bottom - top_margin;
    let group_w = (width - left - 20.0) / bars.len() as f64;
    let bar_w = group_w * 0.8 / settings.concurrency.len() as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"28\" font-size=\"16\" text-anchor=\"middle\">Log writes per second by transport and concurrency</text>\n",
        width / 2.0
    );
    for i in 0..=5 {
        let value = scale_max * i as f64 / 5.0;
        let y = top_margin + plot_h - plot_h * i as f64 / 5.0;
        writeln!(
            svg,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{value:.0}</text>",
            width - 20.0,
            left - 6.0,
            y + 4.0
        )?;
    }
    for (g, (label, path)) in bars.iter().enumerate() {
        let x0 = left + g as f64 * group_w + group_w * 0.1;
        for (k, c) in settings.concurrency.iter().enumerate() {
            if let Some(r) = find(rows, *path, *c) {
                let h = plot_h * r.per_second() / scale_max;
                let x = x0 + k as f64 * bar_w;
                writeln!(
                    svg,
                    "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"/>",
                    top_margin + plot_h - h,
                    bar_w - 2.0,
                    colours[k % colours.len()]
                )?;
            }
        }
        writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
            x0 + group_w * 0.4,
            height - bottom + 18.0
        )?;
    }
    for (k, c) in settings.concurrency.iter().enumerate() {
        let x = left + k as f64 * 150.0;
        writeln!(
            svg,
            "<rect x=\"{x}\" y=\"{}\" width=\"14\" height=\"14\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">concurrency {c}</text>",
            height - 40.0,
            colours[k % colours.len()],
            x + 20.0,
            height - 28.0
        )?;
    }
    svg.push_str("</svg>\n");
    let svg_path = settings.out_dir.join("transports.svg");
    std::fs::write(&svg_path, svg)?;
    let png = settings.out_dir.join("transports.png");
    let status = Command::new(std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into()))
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--disable-background-networking",
            "--disable-component-update",
        ])
        .arg(format!("--window-size={},{}", width as u32, height as u32))
        .arg(format!(
            "--screenshot={}",
            std::path::absolute(&png)?.display()
        ))
        .arg(format!(
            "file://{}",
            std::path::absolute(&svg_path)?.display()
        ))
        .output();
    if !status.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!(
            "could not render {} with Chromium; the SVG is there",
            png.display()
        );
    }
    Ok(())
}

fn nice_ceiling(value: f64) -> f64 {
    let magnitude = 10f64.powf(value.log10().floor());
    let steps = [1.0, 2.0, 2.5, 5.0, 10.0];
    steps
        .iter()
        .map(|s| s * magnitude)
        .find(|v| *v >= value)
        .unwrap_or(10.0 * magnitude)
}

type Series = BTreeMap<String, (Usage, Vec<Sample>)>;

pub fn write_soak(settings: &Settings, runs: &[(&str, LoadResult, Series)]) -> anyhow::Result<()> {
    let mut md = String::new();
    writeln!(
        md,
        "# Soak report\n\nWritten by `make soak`: each log transport through the broker at concurrency 64 for {:.0} s. Memory, descriptors and sockets are sampled every 10 s; flat means the first and last samples are close.\n",
        settings.soak.as_secs_f64()
    )?;
    let run_note = format!(
        "Each transport: {:.0} s at concurrency 64, no warm-up",
        settings.soak.as_secs_f64()
    );
    md.push_str(&machine(&run_note));
    writeln!(
        md,
        "\n| transport | requests | req/s | p99 ms | errors |\n|---|---:|---:|---:|---:|"
    )?;
    for (transport, result, _) in runs {
        writeln!(
            md,
            "| {transport} | {} | {:.0} | {:.2} | {} |",
            result.requests,
            result.per_second(),
            result.quantile_ms(0.99),
            result.errors
        )?;
    }
    for (transport, _, series) in runs {
        writeln!(
            md,
            "\n## log via {transport}\n\n| service | RSS MiB first → peak → last | fds first → peak → last | sockets first → peak → last |\n|---|---|---|---|"
        )?;
        for (service, (_, samples)) in series {
            let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
                continue;
            };
            let peak = |f: fn(&Sample) -> u64| samples.iter().map(f).max().unwrap_or(0);
            writeln!(
                md,
                "| {service} | {:.1} → {:.1} → {:.1} | {} → {} → {} | {} → {} → {} |",
                first.rss_kib as f64 / 1024.0,
                peak(|s| s.rss_kib) as f64 / 1024.0,
                last.rss_kib as f64 / 1024.0,
                first.fds,
                peak(|s| s.fds),
                last.fds,
                first.sockets,
                peak(|s| s.sockets),
                last.sockets
            )?;
        }
    }
    std::fs::write(settings.out_dir.join("soak.md"), md)?;
    Ok(())
}
