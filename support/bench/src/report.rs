//! The Markdown reports and the chart, written to `OUT_DIR`.

use proto::http::Transport;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use authentication_service::passwords::BCRYPT_COST;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::anchor;
use crate::external::{MONGO_INSERT, Measured, SMTP_CATCHER};
use crate::load::LoadResult;
use crate::procs::{Sample, Usage};
use crate::scenarios::Path;
use crate::tools::{self, Tool};
use crate::{AUTH_BURST, Row, Settings};

pub struct Extra {
    pub external: Vec<Measured>,
    /// Why an outside tool measured nothing.
    pub unmeasured: Vec<String>,
    /// The Go original's rows, sent to this stack by wrk.
    pub anchors: Vec<anchor::Compared>,
    pub open: Vec<Open>,
    pub bcrypt_ms: f64,
    pub amqp_e2e_ms: Vec<f64>,
    pub log_during_auth: LoadResult,
    pub auth_burst: LoadResult,
}

/// One open-loop run: `path` at `rate` requests/s, `load` of its
/// closed-loop maximum.
pub struct Open {
    pub path: Path,
    pub load: f64,
    pub rate: f64,
    pub result: LoadResult,
}

/// The machine note of a report whose runs are `what` (e.g. "Each run"):
/// the settings' warm-up and measured time.
pub fn machine_for_runs(settings: &Settings, what: &str) -> String {
    machine(&format!(
        "{what}: {:.0} s warm-up (not measured), then {:.0} s measured",
        settings.warmup.as_secs_f64(),
        settings.duration.as_secs_f64()
    ))
}

pub fn machine(runs: &str) -> String {
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
        "- Date: {}\n- Machine: {} cores ({cpu}), {memory:.0} GiB memory\n- {}; commit {}\n- Services built with `--release`, logging at `warn`; MongoDB-compatible server: {} `--standalone`; mail catcher: {}\n- {runs}, closed loop (each worker sends its next request when the last one answered)\n",
        tools::output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        Tool::Rustc.named(),
        tools::commit(None),
        Tool::MongoServer.named(),
        Tool::MailCatcher.named(),
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

/// How a measured value must compare with its limit.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Compare {
    AtLeast,
    AtMost,
}

/// What a limit counts, and so how a label writes it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Unit {
    /// A share, written as a percentage: 0.8 is "80%".
    Share,
    /// A multiple: 2.0 is "2×".
    Times,
    /// Milliseconds: 5.0 is "5 ms".
    Ms,
    /// A plain count.
    Count,
}

impl Unit {
    fn write(self, limit: f64) -> String {
        match self {
            Unit::Share => format!("{}%", number(limit * 100.0)),
            Unit::Times => format!("{}×", number(limit)),
            Unit::Ms => format!("{} ms", number(limit)),
            Unit::Count => number(limit),
        }
    }
}

/// `x` with at most two decimals and no trailing zeros: 80, 1.5, 0.25.
fn number(x: f64) -> String {
    format!("{x:.2}")
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_owned()
}

/// A target's limit: the one number both its label and its verdict use.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bound {
    compare: Compare,
    limit: f64,
    unit: Unit,
}

impl Bound {
    fn at_least(limit: f64, unit: Unit) -> Self {
        Self {
            compare: Compare::AtLeast,
            limit,
            unit,
        }
    }

    fn at_most(limit: f64, unit: Unit) -> Self {
        Self {
            compare: Compare::AtMost,
            limit,
            unit,
        }
    }

    /// Whether `value` is within the limit (a NaN never is).
    fn met(self, value: f64) -> bool {
        match self.compare {
            Compare::AtLeast => value >= self.limit,
            Compare::AtMost => value <= self.limit,
        }
    }

    /// "≥ 80%", "≤ 5 ms".
    fn text(self) -> String {
        let sign = match self.compare {
            Compare::AtLeast => "≥",
            Compare::AtMost => "≤",
        };
        format!("{sign} {}", self.unit.write(self.limit))
    }
}

/// One row of the targets table: what is measured, its value, and the
/// bound it is held to.
struct Target {
    /// What is measured, before the bound: "log via rpc through the broker".
    what: String,
    bound: Bound,
    /// The words after the bound: " of the logger direct".
    rest: String,
    /// The value held to the bound, in the bound's unit.
    value: f64,
    /// The measured column: the figures the value comes from.
    shown: String,
}

impl Target {
    fn new(
        what: impl Into<String>,
        bound: Bound,
        rest: impl Into<String>,
        (value, shown): (f64, String),
    ) -> Self {
        Self {
            what: what.into(),
            bound,
            rest: rest.into(),
            value,
            shown,
        }
    }

    fn label(&self) -> String {
        let bound = format!("{}{}", self.bound.text(), self.rest);
        if self.what.is_empty() {
            bound
        } else {
            format!("{} {bound}", self.what)
        }
    }

    fn met(&self) -> bool {
        self.bound.met(self.value)
    }

    /// The target's row of the table.
    fn row(&self) -> String {
        format!(
            "| {} | {} | {} |",
            self.label(),
            self.shown,
            verdict(self.met())
        )
    }
}

/// `part` over `whole` (requests/s), and how the table shows it:
/// "5593 / 6048 req/s = 92%".
fn share(part: f64, whole: f64, decimals: usize) -> (f64, String) {
    let ratio = part / whole;
    (
        ratio,
        format!(
            "{part:.decimals$} / {whole:.decimals$} req/s = {:.0}%",
            ratio * 100.0
        ),
    )
}

/// The report's targets, in the table's order; a target whose figures
/// were not measured is left out.
fn targets(
    top: usize,
    rows: &[Row],
    extra: &Extra,
    slots: f64,
    bcrypt_ceiling: f64,
) -> Vec<Target> {
    let mut targets = Vec::new();
    for (transport, direct) in [
        (Transport::Rpc, Path::LoggerRpc),
        (Transport::Http, Path::LoggerHttp),
        (Transport::Grpc, Path::LoggerGrpc),
    ] {
        if let (Some(via), Some(straight)) = (
            find(rows, Path::BrokerLog(transport), top),
            find(rows, direct, top),
        ) {
            targets.push(Target::new(
                format!("log via {transport} through the broker"),
                Bound::at_least(0.8, Unit::Share),
                " of the logger direct",
                share(via.per_second(), straight.per_second(), 0),
            ));
        }
    }
    if let Some(mongo) = external(extra, MONGO_INSERT, top) {
        let best = [Path::LoggerHttp, Path::LoggerRpc, Path::LoggerGrpc]
            .iter()
            .filter_map(|p| find(rows, *p, top))
            .map(LoadResult::per_second)
            .fold(0.0, f64::max);
        targets.push(Target::new(
            "the logger's store path",
            Bound::at_least(1.0, Unit::Share),
            format!(
                " of MongoDB's single-insert ceiling ({})",
                mongo.tool.named()
            ),
            share(best, mongo.per_second, 0),
        ));
    }
    for c in [16, top] {
        if let Some(auth) = find(rows, Path::BrokerAuth, c) {
            targets.push(Target::new(
                format!("auth at concurrency {c}"),
                Bound::at_least(0.95, Unit::Share),
                format!(
                    " of the bcrypt ceiling ({slots:.0} bcrypt slots / {:.1} ms)",
                    extra.bcrypt_ms
                ),
                share(auth.per_second(), bcrypt_ceiling, 1),
            ));
        }
    }
    if let Some(idle) = find(rows, Path::BrokerLog(Transport::Rpc), 1) {
        let (idle_p99, busy_p99) = (
            idle.quantile_ms(0.99),
            extra.log_during_auth.quantile_ms(0.99),
        );
        let times = busy_p99 / idle_p99;
        targets.push(Target::new(
            format!("log p99 during an auth burst ({AUTH_BURST} logins at once)"),
            Bound::at_most(2.0, Unit::Times),
            " idle",
            (
                times,
                format!("{busy_p99:.2} ms vs {idle_p99:.2} ms idle = {times:.1}×"),
            ),
        ));
    }
    if let (Some(mail), Some(smtp)) = (
        find(rows, Path::BrokerMail, top),
        external(extra, SMTP_CATCHER, top),
    ) {
        targets.push(Target::new(
            "mail",
            Bound::at_least(0.9, Unit::Share),
            format!(" of the catcher's acceptance rate ({})", smtp.tool.named()),
            share(mail.per_second(), smtp.per_second, 0),
        ));
    }
    let c = 1;
    if let Some(mail) = find(rows, Path::BrokerMail, c) {
        let p50 = mail.quantile_ms(0.5);
        targets.push(Target::new(
            format!("mail at concurrency {c}"),
            Bound::at_most(5.0, Unit::Ms),
            " p50 end to end",
            (p50, format!("{p50:.2} ms")),
        ));
    }
    if !extra.anchors.is_empty() {
        let (met, all) = anchor_verdicts(extra, bcrypt_ceiling);
        targets.push(Target::new(
            "",
            Bound::at_least(1.0, Unit::Share),
            format!(
                " of the Go original's rows at their target ({}), same load tool",
                anchor_targets(&extra.anchors)
            ),
            (met as f64 / all as f64, format!("{met} of {all} rows")),
        ));
    }
    let errors: u64 = rows.iter().map(|r| r.result.errors).sum::<u64>()
        + extra.log_during_auth.errors
        + extra.auth_burst.errors;
    targets.push(Target::new(
        "errors at every concurrency",
        Bound::at_most(0.0, Unit::Count),
        "",
        (errors as f64, format!("{errors} errors")),
    ));
    targets
}

/// The targets table.
fn write_targets(md: &mut String, top: usize, targets: &[Target]) -> anyhow::Result<()> {
    writeln!(
        md,
        "## Targets\n\nAt concurrency {top} where the target names no other.\n\n| target | measured | |\n|---|---|---|"
    )?;
    for target in targets {
        writeln!(md, "{}", target.row())?;
    }
    md.push('\n');
    Ok(())
}

/// The Go comparison's targets as its rows give them: the usual one, then
/// each row with another ("1.0×, mail at concurrency 1 1.5×").
fn anchor_targets(anchors: &[anchor::Compared]) -> String {
    let count = |target: f64| anchors.iter().filter(|c| c.anchor.target == target).count();
    let Some(usual) = anchors
        .iter()
        .map(|c| c.anchor.target)
        .max_by_key(|&target| count(target))
    else {
        return String::new();
    };
    let mut parts = vec![format!("{usual:.1}×")];
    parts.extend(
        anchors
            .iter()
            .map(|c| c.anchor)
            .filter(|a| a.target != usual)
            .map(|a| {
                format!(
                    "{} at concurrency {} {:.1}×",
                    a.path.label(),
                    a.concurrency,
                    a.target
                )
            }),
    );
    parts.join(", ")
}

pub fn write_bench(settings: &Settings, rows: &[Row], extra: &Extra) -> anyhow::Result<()> {
    let top = settings.concurrency.iter().copied().max().unwrap_or(64);
    // bcrypt's slots in the stack (BCRYPT_THREADS, or the service's
    // default): the cores its logins may use.
    let slots = std::env::var("BCRYPT_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(authentication_service::passwords::BcryptLimits::default_threads)
        as f64;
    let bcrypt_ceiling = slots / (extra.bcrypt_ms / 1000.0);
    let mut md = String::new();
    writeln!(
        md,
        "# Benchmark report\n\nWritten by `make bench`; do not edit by hand (the analysis is in [README.md](README.md)).\n"
    )?;
    md.push_str(&machine_for_runs(settings, "Each run"));
    writeln!(
        md,
        "\n![Log writes per second by transport and concurrency](transports.svg)\n"
    )?;
    write_targets(
        &mut md,
        top,
        &targets(top, rows, extra, slots, bcrypt_ceiling),
    )?;

    for group in [
        "Through the broker",
        "Straight at each service",
        "Beneath the logger",
    ] {
        writeln!(md, "## {group}\n\n{HEADER}")?;
        md.pop();
        for row in rows.iter().filter(|r| r.group == group) {
            md.push_str(&result_row(&row.path.label(), row.concurrency, &row.result));
        }
        md.push('\n');
    }
    write_external(&mut md, extra)?;
    write_anchors(&mut md, extra, bcrypt_ceiling)?;
    write_parts(&mut md, rows, extra)?;
    write_open(&mut md, extra)?;
    write_notes(&mut md, rows, extra, slots, bcrypt_ceiling)?;
    write_resources(&mut md, rows, top)?;
    writeln!(
        md,
        "\n## Commands\n\n```sh\nmake bench                      # everything above (about 20 minutes)\nBENCH_SECS=30 CONCURRENCY=64 make bench   # longer runs, one concurrency\nmake soak                       # the soak test (soak.md)\n```"
    )?;
    std::fs::write(settings.out_dir.join("report.md"), md)?;
    write_chart(settings, rows)?;
    write_open_chart(settings, &extra.open)?;
    Ok(())
}

/// The notes beneath the tables: amqp's drain and end to end, bcrypt's
/// cost, the log beside an auth burst.
fn write_notes(
    md: &mut String,
    rows: &[Row],
    extra: &Extra,
    slots: f64,
    bcrypt_ceiling: f64,
) -> anyhow::Result<()> {
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
        "**bcrypt**: {:.1} ms per verification at cost {BCRYPT_COST} on one core, so at most {bcrypt_ceiling:.1} logins/s on the {slots:.0} bcrypt slots (`BCRYPT_THREADS`; the rest of the machine is left to the other paths).\n",
        extra.bcrypt_ms
    )?;
    writeln!(
        md,
        "**Log while {AUTH_BURST} logins run at once**: log via rpc at concurrency 1: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms (the burst itself: {:.1} logins/s, {} errors).\n",
        extra.log_during_auth.per_second(),
        extra.log_during_auth.quantile_ms(0.5),
        extra.log_during_auth.quantile_ms(0.99),
        extra.auth_burst.per_second(),
        extra.auth_burst.errors
    )?;
    Ok(())
}

/// Each service's peak resources during each run at concurrency `top`.
fn write_resources(md: &mut String, rows: &[Row], top: usize) -> anyhow::Result<()> {
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
    Ok(())
}

fn external<'a>(extra: &'a Extra, label: &str, c: usize) -> Option<&'a Measured> {
    extra
        .external
        .iter()
        .find(|m| m.label == label && m.concurrency == c)
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
}

/// The ceilings that outside tools measured, each with its tool.
fn write_external(md: &mut String, extra: &Extra) -> anyhow::Result<()> {
    writeln!(
        md,
        "## Ceilings, measured by other tools\n\nNone of these is the code under test or a client library it uses: `wrk` drives the broker's HTTP stack (`POST /`, no downstream call), postfix's `smtp-source` sends mail after mail to the catcher on each of its connections (it reports only its total time: the mean is that time per mail, times the connections), and pymongo inserts single documents (threads over one process per core).\n\n| what | tool | concurrency | req/s | p50 ms | p90 ms | p99 ms | mean ms | errors |\n|---|---|---:|---:|---:|---:|---:|---:|---:|"
    )?;
    for m in &extra.external {
        writeln!(
            md,
            "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {} |",
            m.label,
            m.tool.named(),
            m.concurrency,
            m.per_second,
            ms(m.p50),
            ms(m.p90),
            ms(m.p99),
            ms(m.mean),
            m.errors
        )?;
    }
    for reason in &extra.unmeasured {
        writeln!(md, "\nNot measured: {reason}")?;
    }
    md.push('\n');
    Ok(())
}

/// (rows at their target, rows) of the Go comparison; a row wrk could not
/// measure counts as missed.
fn anchor_verdicts(extra: &Extra, bcrypt_ceiling: f64) -> (usize, usize) {
    let met = extra
        .anchors
        .iter()
        .filter(|c| {
            c.ours
                .as_ref()
                .is_ok_and(|m| c.anchor.met(m, bcrypt_ceiling))
        })
        .count();
    (met, extra.anchors.len())
}

/// The Go original's table, each row sent to this stack by wrk as it was
/// to the Go original, against the recorded figure.
fn write_anchors(md: &mut String, extra: &Extra, bcrypt_ceiling: f64) -> anyhow::Result<()> {
    if extra.anchors.is_empty() {
        return Ok(());
    }
    writeln!(
        md,
        "## Against the Go original\n\nThe anchor: {}. This project's figures: the same requests through the broker, sent by wrk (two threads, 10 s unless `BENCH_SECS` says otherwise) in this run. Every ratio is to the anchor's recorded figure, measured outside this repository, which never fetches or builds the Go original. auth is compared by the share of each one's bcrypt ceiling, since the two hash at different costs (this run's ceiling: {bcrypt_ceiling:.1} logins/s).\n\n| path | concurrency | Go original | this project | ratio | target | |\n|---|---:|---|---|---:|---:|---|",
        anchor::METHOD,
    )?;
    for c in &extra.anchors {
        let a = c.anchor;
        let go = a.go_figure;
        match &c.ours {
            Ok(m) => {
                let ratio = a.ratio(m, bcrypt_ceiling);
                let ours = match a.measure {
                    anchor::Measure::Rate => format!(
                        "{:.0}/s, p50 {} ms, p99 {} ms",
                        m.per_second,
                        ms(m.p50),
                        ms(m.p99)
                    ),
                    anchor::Measure::ShareOfBcrypt(_) => format!(
                        "{:.1}/s at bcrypt cost {BCRYPT_COST}, {:.0}% of its ceiling",
                        m.per_second,
                        m.per_second / bcrypt_ceiling * 100.0
                    ),
                };
                writeln!(
                    md,
                    "| {} | {} | {go} | {ours}{} | {ratio:.2}× | {:.1}× | {} |",
                    a.path.label(),
                    a.concurrency,
                    errors_note(m.errors),
                    a.target,
                    verdict(a.met(m, bcrypt_ceiling))
                )?;
            }
            Err(e) => writeln!(
                md,
                "| {} | {} | {go} | not measured: {e:#} | | {:.1}× | missed |",
                a.path.label(),
                a.concurrency,
                a.target
            )?,
        }
    }
    md.push('\n');
    Ok(())
}

/// " (N errors)" after a figure, when there were any.
fn errors_note(errors: u64) -> String {
    if errors > 0 {
        format!(" ({errors} errors)")
    } else {
        String::new()
    }
}

/// How far a path's median may be over the sum of its parts' (ms).
const PARTS_SLACK_MS: f64 = 0.5;

/// At concurrency 1, each path against the sum of the medians of its
/// parts: the broker's own HTTP round trip (`POST /`) plus the service
/// behind it; each service plus what it waits on. A floor (a delayed ACK,
/// a timer) would show as a path slower than its parts.
fn write_parts(md: &mut String, rows: &[Row], extra: &Extra) -> anyhow::Result<()> {
    let p50 = |path| find(rows, path, 1).map(|r| r.quantile_ms(0.5));
    let Some(hop) = p50(Path::BrokerHit) else {
        return Ok(());
    };
    let smtp = external(extra, SMTP_CATCHER, 1).and_then(Measured::typical_ms);
    let mongo = external(extra, MONGO_INSERT, 1).and_then(Measured::typical_ms);
    let lines: [(&str, Option<f64>, &str, Option<f64>); 7] = [
        (
            "log via rpc",
            p50(Path::BrokerLog(Transport::Rpc)),
            "broker hop + logger tarpc",
            p50(Path::LoggerRpc),
        ),
        (
            "log via http",
            p50(Path::BrokerLog(Transport::Http)),
            "broker hop + logger HTTP",
            p50(Path::LoggerHttp),
        ),
        (
            "log via grpc",
            p50(Path::BrokerLog(Transport::Grpc)),
            "broker hop + logger gRPC",
            p50(Path::LoggerGrpc),
        ),
        (
            "auth",
            p50(Path::BrokerAuth),
            "broker hop + authentication direct",
            p50(Path::AuthDirect),
        ),
        (
            "mail",
            p50(Path::BrokerMail),
            "broker hop + mail direct",
            p50(Path::MailDirect),
        ),
        (
            "mail direct",
            p50(Path::MailDirect),
            "HTTP hop + one mail to the catcher (smtp-source)",
            smtp,
        ),
        (
            "logger HTTP direct",
            p50(Path::LoggerHttp),
            "HTTP hop + one insert (pymongo)",
            mongo,
        ),
    ];
    writeln!(
        md,
        "## At concurrency 1: each path against the sum of its parts\n\nMedians (ms). The hop is the broker's own `POST /` round trip ({hop:.2} ms), the price of one HTTP call; the parts were measured on their own in the same run. At most {PARTS_SLACK_MS} ms over the sum means no hidden floor (a path faster than its parts has none either: the parts each carry a client's own overhead).\n\n| path | p50 | parts | sum of parts | path − parts | at most +{PARTS_SLACK_MS} ms |\n|---|---:|---|---:|---:|---|"
    )?;
    for (label, path, parts, part) in lines {
        if let (Some(path), Some(part)) = (path, part) {
            let sum = hop + part;
            writeln!(
                md,
                "| {label} | {path:.2} | {parts} | {sum:.2} | {:+.2} | {} |",
                path - sum,
                verdict(path - sum <= PARTS_SLACK_MS)
            )?;
        }
    }
    md.push('\n');
    Ok(())
}

/// The open-loop runs: latency from the moment each request was due.
fn write_open(md: &mut String, extra: &Extra) -> anyhow::Result<()> {
    if extra.open.is_empty() {
        return Ok(());
    }
    writeln!(
        md,
        "## Open loop\n\nEach path through the broker driven at fixed arrival rates, a fraction of the most it answered in the closed-loop runs above, for {} s after a 1 s warm-up. Requests go out on schedule whatever the answers do, on at most 256 at once (as wrk2's fixed connections: one due while all are busy waits), and each latency counts from the moment the request was due (no coordinated omission). ![Open-loop latency](open-loop.svg)\n\n| path | load | target req/s | answered req/s | p50 ms | p99 ms | p99.9 ms | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|",
        extra
            .open
            .first()
            .map_or(0.0, |o| o.result.elapsed.as_secs_f64())
    )?;
    for o in &extra.open {
        writeln!(
            md,
            "| {} | {:.0}% | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
            o.path.label(),
            o.load * 100.0,
            o.rate,
            (o.result.requests - o.result.errors) as f64 / o.result.elapsed.as_secs_f64(),
            o.result.quantile_ms(0.5),
            o.result.quantile_ms(0.99),
            o.result.quantile_ms(0.999),
            o.result.errors
        )?;
    }
    md.push('\n');
    Ok(())
}

/// The chart's size in pixels, and the height of the legend strip beneath it.
const CHART_SIZE: (u32, u32) = (1100, 540);
const LEGEND_HEIGHT: u32 = 40;
/// One colour per concurrency, in the order of `CONCURRENCY`.
const BAR_COLOURS: [RGBColor; 5] = [
    RGBColor(0x9e, 0xca, 0xe1),
    RGBColor(0x42, 0x92, 0xc6),
    RGBColor(0x08, 0x51, 0x9c),
    RGBColor(0xfd, 0x8d, 0x3c),
    RGBColor(0x31, 0xa3, 0x54),
];

/// Grouped bars: requests per second of each log transport, through the
/// broker and straight at the logger, and MongoDB's single inserts, one bar
/// per concurrency, drawn by plotters as `transports.svg`.
fn write_chart(settings: &Settings, rows: &[Row]) -> anyhow::Result<()> {
    let groups: [(&str, Path); 7] = [
        ("rpc via broker", Path::BrokerLog(Transport::Rpc)),
        ("rpc direct", Path::LoggerRpc),
        ("http via broker", Path::BrokerLog(Transport::Http)),
        ("http direct", Path::LoggerHttp),
        ("grpc via broker", Path::BrokerLog(Transport::Grpc)),
        ("grpc direct", Path::LoggerGrpc),
        ("amqp via broker", Path::BrokerLog(Transport::Amqp)),
    ];
    let concurrency = &settings.concurrency;
    let max = rows
        .iter()
        .filter(|r| groups.iter().any(|(_, p)| *p == r.path))
        .map(|r| r.result.per_second())
        .fold(1.0, f64::max);

    let svg_path = settings.out_dir.join("transports.svg");
    let root = SVGBackend::new(&svg_path, CHART_SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let (plot, legend) = root.split_vertically(CHART_SIZE.1 - LEGEND_HEIGHT);
    // Group g spans g * GROUP..(g + 1) * GROUP on an integer x axis (an
    // f64 axis with chosen key points has no label formatter); its label
    // sits at the centre.
    const GROUP: i32 = 1000;
    let centres: Vec<i32> = (0..groups.len() as i32)
        .map(|g| g * GROUP + GROUP / 2)
        .collect();
    let mut chart = ChartBuilder::on(&plot)
        .caption(
            "Log writes per second by transport and concurrency",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (0..groups.len() as i32 * GROUP).with_key_points(centres),
            // Headroom for the values above the bars.
            0.0..max * 1.1,
        )?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc("requests/s")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .x_label_formatter(&|x| {
            groups
                .get((x / GROUP) as usize)
                .map_or_else(String::new, |(label, _)| (*label).to_owned())
        })
        .label_style(("sans-serif", 15))
        .max_light_lines(0)
        .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
        .draw()?;

    // Each bar is an equal share of 80% of its group; the values above the
    // bars are left out where a bar is too narrow to carry one.
    let share = GROUP * 8 / 10 / concurrency.len().max(1) as i32;
    let plot_width = chart.plotting_area().dim_in_pixel().0 as i32;
    let bar_pixels = plot_width * share / (groups.len() as i32 * GROUP);
    let value_style =
        TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
    for (g, (_, path)) in groups.iter().enumerate() {
        for (k, c) in concurrency.iter().enumerate() {
            let Some(result) = find(rows, *path, *c) else {
                continue;
            };
            let value = result.per_second();
            let x0 = g as i32 * GROUP + GROUP / 10 + k as i32 * share;
            let colour = BAR_COLOURS[k % BAR_COLOURS.len()];
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x0 + GROUP / 100, 0.0), (x0 + share - GROUP / 100, value)],
                colour.filled(),
            )))?;
            if bar_pixels >= 30 {
                chart.draw_series(std::iter::once(
                    EmptyElement::at((x0 + share / 2, value))
                        + Text::new(format!("{value:.0}"), (0, -3), value_style.clone()),
                ))?;
            }
        }
    }

    // The legend: one swatch and name per concurrency, in a row beneath.
    let labels: Vec<String> = concurrency
        .iter()
        .map(|c| format!("concurrency {c}"))
        .collect();
    draw_legend(&legend, &labels, 160)?;
    root.present()?;
    Ok(())
}

/// One swatch in `BAR_COLOURS` order and its label per entry, in a row
/// centred in the strip beneath a chart.
fn draw_legend<DB: DrawingBackend>(
    legend: &DrawingArea<DB, plotters::coord::Shift>,
    labels: &[String],
    entry_width: i32,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let left = (CHART_SIZE.0 as i32 - entry_width * labels.len() as i32) / 2;
    let style =
        TextStyle::from(("sans-serif", 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (k, label) in labels.iter().enumerate() {
        let x = left + k as i32 * entry_width;
        let y = LEGEND_HEIGHT as i32 / 2 - 5;
        legend.draw(&Rectangle::new(
            [(x, y - 7), (x + 14, y + 7)],
            BAR_COLOURS[k % BAR_COLOURS.len()].filled(),
        ))?;
        legend.draw_text(label, &style, (x + 20, y))?;
    }
    Ok(())
}

/// The open-loop latencies: per path one bar per load, its height the
/// p99, a thin line through it from the p50 to the p99.9, on a log scale
/// (`open-loop.svg`).
fn write_open_chart(settings: &Settings, open: &[Open]) -> anyhow::Result<()> {
    if open.is_empty() {
        return Ok(());
    }
    let mut paths: Vec<Path> = Vec::new();
    for o in open {
        if !paths.contains(&o.path) {
            paths.push(o.path);
        }
    }
    let loads = crate::OPEN_LOADS;
    let quantiles = |o: &Open| [0.5, 0.99, 0.999].map(|q| o.result.quantile_ms(q).max(0.01));
    let top = open.iter().map(|o| quantiles(o)[2]).fold(1.0, f64::max);

    let svg_path = settings.out_dir.join("open-loop.svg");
    let root = SVGBackend::new(&svg_path, CHART_SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let (plot, legend) = root.split_vertically(CHART_SIZE.1 - LEGEND_HEIGHT);
    const GROUP: i32 = 1000;
    let centres: Vec<i32> = (0..paths.len() as i32)
        .map(|g| g * GROUP + GROUP / 2)
        .collect();
    let mut chart = ChartBuilder::on(&plot)
        .caption(
            "Open-loop latency through the broker: p99 bars, p50 to p99.9 lines",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (0..paths.len() as i32 * GROUP).with_key_points(centres),
            (0.01..top * 2.0).log_scale(),
        )?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc("ms from the moment due")
        .y_label_formatter(&|v| format!("{v}"))
        .x_label_formatter(&|x| {
            paths
                .get((x / GROUP) as usize)
                .map_or_else(String::new, |p| p.label())
        })
        .label_style(("sans-serif", 15))
        .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
        .draw()?;
    let share = GROUP * 8 / 10 / loads.len() as i32;
    for (g, path) in paths.iter().enumerate() {
        for (k, load) in loads.iter().enumerate() {
            let Some(o) = open.iter().find(|o| o.path == *path && o.load == *load) else {
                continue;
            };
            let [p50, p99, p999] = quantiles(o);
            let x0 = g as i32 * GROUP + GROUP / 10 + k as i32 * share;
            let colour = BAR_COLOURS[k % BAR_COLOURS.len()];
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x0 + GROUP / 100, 0.01), (x0 + share - GROUP / 100, p99)],
                colour.filled(),
            )))?;
            let middle = x0 + share / 2;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(middle, p50), (middle, p999)],
                BLACK.stroke_width(2),
            )))?;
        }
    }
    let labels: Vec<String> = loads
        .iter()
        .map(|load| format!("{:.0}% of the maximum", load * 100.0))
        .collect();
    draw_legend(&legend, &labels, 200)?;
    root.present()?;
    Ok(())
}

type Series = BTreeMap<String, (Usage, Vec<Sample>)>;

pub fn write_soak(
    settings: &Settings,
    runs: &[(Transport, LoadResult, Series)],
) -> anyhow::Result<()> {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn settings(out_dir: std::path::PathBuf, concurrency: Vec<usize>) -> Settings {
        Settings {
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
            concurrency,
            open: Duration::ZERO,
            python: "python3".into(),
            soak: Duration::ZERO,
            run_dir: ".run".into(),
            out_dir,
        }
    }

    /// A run of `per_second` requests in one second.
    fn row(path: Path, concurrency: usize, per_second: u64) -> Row {
        Row {
            group: "Through the broker",
            path,
            concurrency,
            result: LoadResult {
                requests: per_second,
                errors: 0,
                first_error: None,
                elapsed: Duration::from_secs(1),
                latencies_us: Vec::new(),
            },
            usage: BTreeMap::new(),
            drain: None,
        }
    }

    /// An `Extra` with nothing measured beside the rows.
    fn nothing_else() -> Extra {
        Extra {
            external: Vec::new(),
            unmeasured: Vec::new(),
            anchors: Vec::new(),
            open: Vec::new(),
            bcrypt_ms: 50.0,
            amqp_e2e_ms: Vec::new(),
            log_during_auth: LoadResult::default(),
            auth_burst: LoadResult::default(),
        }
    }

    fn target(bound: Bound, value: f64) -> Target {
        Target::new("x", bound, " of y", (value, "shown".into()))
    }

    #[test]
    fn a_target_at_least_its_limit_is_met_and_one_below_is_missed() {
        let bound = Bound::at_least(0.8, Unit::Share);
        assert_eq!(target(bound, 0.8).row(), "| x ≥ 80% of y | shown | met |");
        assert_eq!(
            target(bound, 0.79).row(),
            "| x ≥ 80% of y | shown | missed |"
        );
        // The label and the verdict move with the one number.
        let lower = Bound::at_least(0.75, Unit::Share);
        assert_eq!(target(lower, 0.79).row(), "| x ≥ 75% of y | shown | met |");
        assert!(!target(bound, f64::NAN).met());
    }

    #[test]
    fn a_target_at_most_its_limit_is_met_and_one_above_is_missed() {
        let ms = Bound::at_most(5.0, Unit::Ms);
        assert_eq!(target(ms, 5.0).label(), "x ≤ 5 ms of y");
        assert!(target(ms, 5.0).met());
        assert!(!target(ms, 5.01).met());
        let times = Bound::at_most(2.0, Unit::Times);
        assert_eq!(times.text(), "≤ 2×");
        assert!(target(times, 1.9).met() && !target(times, 2.1).met());
        let none = Bound::at_most(0.0, Unit::Count);
        assert_eq!(none.text(), "≤ 0");
        assert!(target(none, 0.0).met() && !target(none, 1.0).met());
        assert_eq!(Bound::at_least(1.5, Unit::Times).text(), "≥ 1.5×");
    }

    #[test]
    fn a_target_without_a_subject_starts_with_its_bound() {
        let t = Target::new(
            "",
            Bound::at_least(1.0, Unit::Share),
            " of the rows",
            (1.0, "2 of 2 rows".into()),
        );
        assert_eq!(t.row(), "| ≥ 100% of the rows | 2 of 2 rows | met |");
    }

    /// The log transports through the broker against the logger direct,
    /// from the rows: 80% meets the target, 79% misses it.
    #[test]
    fn the_log_targets_are_met_from_80_percent_of_the_logger_direct() {
        let rows = [
            row(Path::BrokerLog(Transport::Rpc), 64, 800),
            row(Path::LoggerRpc, 64, 1000),
            row(Path::BrokerLog(Transport::Http), 64, 790),
            row(Path::LoggerHttp, 64, 1000),
        ];
        let rendered: Vec<String> = targets(64, &rows, &nothing_else(), 1.0, 20.0)
            .iter()
            .map(Target::row)
            .collect();
        assert_eq!(
            rendered,
            [
                "| log via rpc through the broker ≥ 80% of the logger direct | 800 / 1000 req/s = 80% | met |",
                "| log via http through the broker ≥ 80% of the logger direct | 790 / 1000 req/s = 79% | missed |",
                "| errors at every concurrency ≤ 0 | 0 errors | met |",
            ]
        );
    }

    #[test]
    fn the_go_comparison_names_each_target_from_its_rows() {
        let compared: Vec<anchor::Compared> = anchor::ANCHORS
            .iter()
            .map(|anchor| anchor::Compared {
                anchor,
                ours: Err(anyhow::anyhow!("not run")),
            })
            .collect();
        assert_eq!(
            anchor_targets(&compared),
            "1.0×, mail at concurrency 1 1.5×"
        );
        assert_eq!(anchor_targets(&[]), "");
    }

    #[test]
    fn the_chart_names_every_path_and_concurrency() {
        let dir = std::env::temp_dir().join(format!(
            "bench-chart-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let concurrency = vec![1, 16, 64];
        let paths = [
            Path::BrokerLog(Transport::Rpc),
            Path::LoggerRpc,
            Path::BrokerLog(Transport::Http),
            Path::LoggerHttp,
            Path::BrokerLog(Transport::Grpc),
            Path::LoggerGrpc,
            Path::BrokerLog(Transport::Amqp),
        ];
        let mut rows = Vec::new();
        for (i, path) in paths.into_iter().enumerate() {
            for (k, c) in concurrency.iter().enumerate() {
                rows.push(row(path, *c, 1000 + 100 * i as u64 + 2000 * k as u64));
            }
        }
        // Not in the chart: must not stretch its scale.
        rows.push(row(Path::BrokerHit, 64, 50_000));

        write_chart(&settings(dir.clone(), concurrency.clone()), &rows).unwrap();
        let svg = std::fs::read_to_string(dir.join("transports.svg")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();

        assert!(svg.starts_with("<svg"), "{svg}");
        let texts = texts(&svg);
        let has = |text: &str| texts.iter().any(|t| t == text);
        assert!(has("Log writes per second by transport and concurrency"));
        assert!(has("requests/s"));
        for c in &concurrency {
            assert!(
                has(&format!("concurrency {c}")),
                "concurrency {c}: {texts:?}"
            );
        }
        for label in [
            "rpc via broker",
            "rpc direct",
            "http via broker",
            "http direct",
            "grpc via broker",
            "grpc direct",
            "amqp via broker",
        ] {
            assert!(has(label), "{label}: {texts:?}");
        }
        // Seven bars and one legend swatch in each concurrency's colour.
        for colour in &BAR_COLOURS[..concurrency.len()] {
            let fill = format!("fill=\"#{:02X}{:02X}{:02X}\"", colour.0, colour.1, colour.2);
            let rects = svg.split("<rect").skip(1);
            assert_eq!(rects.filter(|r| r.contains(&fill)).count(), 7 + 1, "{fill}");
        }
        // Each bar's value above it; the scale is set by the chart's own
        // paths, not by the broker hit's 50 000.
        assert!(has("1100") && has("5600"), "{texts:?}");
        let numbers: Vec<f64> = texts.iter().filter_map(|t| t.parse().ok()).collect();
        assert!(numbers.iter().all(|n| *n <= 5600.0 * 1.1), "{numbers:?}");
    }

    /// The content of each `<text>` element, in order.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| {
                let (_, rest) = t.split_once('>')?;
                let (content, _) = rest.split_once("</text>")?;
                Some(content.trim().to_owned())
            })
            .collect()
    }
}
