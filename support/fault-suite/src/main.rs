//! The fault suite (`fault-suite`, run by `make test-faults`): each
//! scenario puts load through the broker, breaks one thing for a while,
//! mends it, and then counts exactly what happened to every request.
//!
//! Every log request carries its own entry id (`log.id`), so each one can
//! be looked up in MongoDB afterwards; each carries a unique `data` too, so
//! an entry stored twice under two ids would be seen. The rule, checked in
//! every scenario:
//! - every request that got a 2xx is stored, exactly once;
//! - every other request got an error in the JSON envelope within
//!   [`ERROR_DEADLINE`];
//! - nothing is dead-lettered but the poison, and poison does not block
//!   the queue;
//! - every path works again once the fault is mended, without restarting
//!   any service.
//!
//! How each fault is made and mended is a shell command from the
//! environment (`project/faults.sh` sets them for the native stack):
//! `FAULT_KILL_LOGGER`/`FAULT_START_LOGGER`, `FAULT_FREEZE_MONGO`/
//! `FAULT_THAW_MONGO`, `FAULT_STOP_RABBITMQ`/`FAULT_START_RABBITMQ`,
//! `FAULT_STOP_POSTGRES`/`FAULT_START_POSTGRES`, `FAULT_STOP_SMTP`/
//! `FAULT_START_SMTP`. `AMQP_URL` is the vhost the stack uses, `MONGO_URL`
//! its MongoDB, `FAULTS_OUT` where the table goes.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::TryStreamExt;
use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{Bson, DateTime, Document, doc};
use proto::amqp::{DEAD_LETTER_QUEUE, DEAD_LETTER_REASON_HEADER, EXCHANGE, MAX_EVENT_BYTES};
use proto::http::Transport;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use proto::ports;

/// A request that fails must have failed by then.
pub const ERROR_DEADLINE: Duration = Duration::from_secs(5);
/// Load before the fault, and after it is mended.
const LEAD: Duration = Duration::from_secs(3);
const TAIL: Duration = Duration::from_secs(8);
/// The end of the tail in which every request must succeed.
const RECOVERED_WINDOW: Duration = Duration::from_secs(4);
/// Workers per loaded path, and the pause between one's requests (the
/// stack runs debug builds: the point is the counts, not the rate).
const WORKERS: usize = 2;
const PAUSE: Duration = Duration::from_millis(10);
/// How long queued events may take to be stored once everything is back.
const DRAIN: Duration = Duration::from_secs(120);
const POISON: usize = 200;
const SLOW_CLIENTS: usize = 1000;

/// What a scenario loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Load {
    /// Log writes through the broker, sent to the logger by this transport.
    Log(Transport),
    Auth,
    Mail,
}

impl Load {
    fn label(self) -> &'static str {
        match self {
            Load::Log(transport) => transport.as_str(),
            Load::Auth => "auth",
            Load::Mail => "mail",
        }
    }
}

/// Log writes on every transport, in [`Transport::ALL`]'s order.
const ALL_LOGS: [Load; Transport::ALL.len()] = {
    let mut loads = [Load::Auth; Transport::ALL.len()];
    let mut i = 0;
    while i < loads.len() {
        loads[i] = Load::Log(Transport::ALL[i]);
        i += 1;
    }
    loads
};

/// What is broken, and for how long.
#[derive(Clone, Copy)]
enum Fault {
    /// `FAULT_<break>` runs, then after the hold `FAULT_<mend>`.
    Commands(&'static str, Duration, &'static str),
    /// Malformed, oversized and wrong-schema messages straight to the exchange.
    Poison,
    /// Connections that send a header byte now and then, and never finish.
    SlowClients(Duration),
}

struct Scenario {
    name: &'static str,
    what: &'static str,
    loads: &'static [Load],
    fault: Fault,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "logger-killed",
        what: "logger SIGKILLed, started again 60 s later",
        loads: &ALL_LOGS,
        fault: Fault::Commands("KILL_LOGGER", Duration::from_secs(60), "START_LOGGER"),
    },
    Scenario {
        name: "mongo-frozen",
        what: "MongoDB SIGSTOPped for 20 s, then SIGCONT",
        loads: &ALL_LOGS,
        fault: Fault::Commands("FREEZE_MONGO", Duration::from_secs(20), "THAW_MONGO"),
    },
    Scenario {
        name: "rabbitmq-stopped",
        what: "RabbitMQ `stop_app`, `start_app` 15 s later",
        loads: &[Load::Log(Transport::Amqp)],
        fault: Fault::Commands("STOP_RABBITMQ", Duration::from_secs(15), "START_RABBITMQ"),
    },
    Scenario {
        name: "postgres-restarted",
        what: "PostgreSQL stopped (fast) and started 5 s later",
        loads: &[Load::Auth],
        fault: Fault::Commands("STOP_POSTGRES", Duration::from_secs(5), "START_POSTGRES"),
    },
    Scenario {
        name: "smtp-gone",
        what: "the SMTP server stopped for 20 s",
        loads: &[Load::Mail],
        fault: Fault::Commands("STOP_SMTP", Duration::from_secs(20), "START_SMTP"),
    },
    Scenario {
        name: "poison",
        what: "200 malformed, oversized and wrong-schema messages to the exchange",
        loads: &[Load::Log(Transport::Amqp)],
        fault: Fault::Poison,
    },
    Scenario {
        name: "slow-clients",
        what: "1,000 connections sending a header byte a second, held 15 s",
        loads: &[Load::Log(Transport::Rpc), Load::Log(Transport::Http)],
        fault: Fault::SlowClients(Duration::from_secs(15)),
    },
];

/// One request and what became of it.
struct Record {
    load: Load,
    /// The entry id (log requests) or mail subject it carried.
    tag: String,
    sent: Instant,
    elapsed: Duration,
    outcome: Outcome,
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Ok,
    /// An error status with the envelope's `error: true`.
    Clear(u16),
    /// Anything else: no answer, or not the envelope.
    Unclear(String),
}

/// A scenario's counts.
#[derive(Default)]
struct Counts {
    sent: usize,
    acked: usize,
    /// Of the acknowledged: stored (log entries, mails caught), lost.
    stored: usize,
    lost: usize,
    duplicated: usize,
    /// Failed requests whose entry was stored all the same (a retry with
    /// the same id would not double it).
    failed_but_stored: usize,
    /// Acknowledged mails that cannot be checked: answered in the moment
    /// between the catcher's last read and its stop, they went down with it.
    unverifiable: usize,
    errors: usize,
    unclear_errors: usize,
    slowest_error: Duration,
    dead_lettered: u64,
    recovered: bool,
    notes: Vec<String>,
    /// What else broke a rule of the scenario's own.
    broken: Vec<String>,
}

impl Counts {
    fn violations(&self, scenario: &Scenario) -> Vec<String> {
        let mut broken = self.broken.clone();
        if self.lost > 0 {
            broken.push(format!("{} acknowledged requests not stored", self.lost));
        }
        if self.duplicated > 0 {
            broken.push(format!("{} entries stored twice", self.duplicated));
        }
        if self.unclear_errors > 0 {
            broken.push(format!(
                "{} errors outside the envelope",
                self.unclear_errors
            ));
        }
        if self.slowest_error > ERROR_DEADLINE {
            broken.push(format!(
                "an error took {:.1} s",
                self.slowest_error.as_secs_f64()
            ));
        }
        let expected_dead = if matches!(scenario.fault, Fault::Poison) {
            POISON as u64
        } else {
            0
        };
        if self.dead_lettered != expected_dead {
            broken.push(format!(
                "{} dead-lettered, expected {expected_dead}",
                self.dead_lettered
            ));
        }
        if !self.recovered {
            broken.push("not every path works again after the fault".into());
        }
        broken
    }
}

struct Env {
    http: reqwest::Client,
    broker: String,
    amqp_url: String,
    mongo: mongodb::Collection<Document>,
    maildev: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    run().await
}

async fn run() -> anyhow::Result<()> {
    let amqp_url = std::env::var("AMQP_URL").context("AMQP_URL: the stack's RabbitMQ vhost")?;
    let mongo_url = std::env::var("MONGO_URL")
        .unwrap_or_else(|_| format!("mongodb://127.0.0.1:{}", ports::MONGODB));
    let only = std::env::var("FAULTS").ok();
    let env = Env {
        // Below the broker's idle keep-alive limit, as its own clients.
        http: service_kit::upstream::client_builder()
            .timeout(Duration::from_secs(30))
            .default_headers(service_kit::token::TokenKey::tool_headers(
                "faults@localhost",
            )?)
            .build()?,
        broker: ports::local_http(ports::BROKER),
        amqp_url,
        mongo: mongodb::Client::with_uri_str(&mongo_url)
            .await?
            .database("logs")
            .collection("logs"),
        maildev: std::env::var("MAILDEV_URL").unwrap_or_else(|_| "http://127.0.0.1:8025".into()),
    };
    let mut table = String::from(
        "| scenario | fault | loaded paths | sent | 2xx | stored (of 2xx) | lost | duplicated | errors (all in the envelope) | slowest error s | failed but stored | dead-lettered | recovered |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    let mut failed = Vec::new();
    for scenario in SCENARIOS {
        if only
            .as_deref()
            .is_some_and(|only| !only.split(',').any(|n| n == scenario.name))
        {
            continue;
        }
        eprintln!("==> {}: {}", scenario.name, scenario.what);
        let counts = run_scenario(&env, scenario)
            .await
            .with_context(|| format!("scenario {}", scenario.name))?;
        for note in &counts.notes {
            eprintln!("    {note}");
        }
        let broken = counts.violations(scenario);
        writeln!(
            table,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} ({}) | {:.2} | {} | {} | {} |",
            scenario.name,
            scenario.what,
            loaded(scenario.loads),
            counts.sent,
            counts.acked,
            if counts.unverifiable == 0 {
                counts.stored.to_string()
            } else {
                format!("{} (+{} not checkable)", counts.stored, counts.unverifiable)
            },
            counts.lost,
            counts.duplicated,
            counts.errors,
            if counts.unclear_errors == 0 {
                "yes".to_owned()
            } else {
                format!("{} not", counts.unclear_errors)
            },
            counts.slowest_error.as_secs_f64(),
            counts.failed_but_stored,
            counts.dead_lettered,
            if counts.recovered { "yes" } else { "no" },
        )?;
        if broken.is_empty() {
            eprintln!("    PASS");
        } else {
            eprintln!("    FAIL: {}", broken.join("; "));
            failed.push(format!("{}: {}", scenario.name, broken.join("; ")));
        }
    }
    println!("{table}");
    if let Ok(out) = std::env::var("FAULTS_OUT") {
        std::fs::write(&out, &table).with_context(|| format!("writing {out}"))?;
    }
    anyhow::ensure!(
        failed.is_empty(),
        "the fault suite failed:\n{}",
        failed.join("\n")
    );
    Ok(())
}

/// "log via rpc, http", "auth", ...
fn loaded(loads: &[Load]) -> String {
    let logs: Vec<&str> = loads
        .iter()
        .filter_map(|l| match l {
            Load::Log(transport) => Some(transport.as_str()),
            _ => None,
        })
        .collect();
    let mut parts: Vec<String> = loads
        .iter()
        .filter(|l| !matches!(l, Load::Log(_)))
        .map(|l| l.label().to_owned())
        .collect();
    if !logs.is_empty() {
        parts.insert(0, format!("log via {}", logs.join(", ")));
    }
    parts.join(", ")
}

async fn run_scenario(env: &Env, scenario: &Scenario) -> anyhow::Result<Counts> {
    let dead_before = dead_letters(&env.amqp_url).await?;
    let started_at = DateTime::now();
    let stop = Arc::new(AtomicBool::new(false));
    let loads: Vec<_> = scenario
        .loads
        .iter()
        .flat_map(|&load| (0..WORKERS).map(move |worker| (load, worker)))
        .map(|(load, worker)| {
            let (http, broker, stop) = (env.http.clone(), env.broker.clone(), stop.clone());
            let prefix = format!("{} {} {worker}", scenario.name, load.label());
            tokio::spawn(load_loop(http, broker, load, prefix, stop))
        })
        .collect();

    tokio::time::sleep(LEAD).await;
    let (mut notes, mut broken) = (Vec::new(), Vec::new());
    let mut mended_at = Instant::now();
    // Mails are checked in the catcher; one that is stopped loses what it
    // caught, so that is read first.
    let mut caught_before = (Instant::now(), Vec::new());
    match scenario.fault {
        Fault::Commands(make, hold, mend) => {
            if scenario.loads.contains(&Load::Mail) {
                caught_before = (Instant::now(), caught_subjects(env).await?);
            }
            shell(make).await?;
            tokio::time::sleep(hold).await;
            shell(mend).await?;
            mended_at = Instant::now();
        }
        Fault::Poison => {
            publish_poison(&env.amqp_url).await?;
        }
        Fault::SlowClients(hold) => {
            // The broker's header-read timeout (10 s) is inside the hold.
            let closed = slow_clients(hold).await?;
            notes.push(format!(
                "{closed} of the {SLOW_CLIENTS} slow connections were closed by the broker within {} s",
                hold.as_secs()
            ));
            if closed < SLOW_CLIENTS {
                broken.push(format!(
                    "{} slow connections were never cut off",
                    SLOW_CLIENTS - closed
                ));
            }
        }
    }
    tokio::time::sleep(TAIL).await;
    stop.store(true, Ordering::Relaxed);
    let stopped_at = Instant::now();
    let mut records = Vec::new();
    for load in loads {
        records.extend(load.await?);
    }

    let mut counts = Counts {
        sent: records.len(),
        acked: records.iter().filter(|r| r.outcome == Outcome::Ok).count(),
        notes,
        broken,
        ..Counts::default()
    };
    for r in records.iter().filter(|r| r.outcome != Outcome::Ok) {
        counts.errors += 1;
        counts.slowest_error = counts.slowest_error.max(r.elapsed);
        if let Outcome::Unclear(e) = &r.outcome {
            if counts.unclear_errors == 0 {
                counts
                    .notes
                    .push(format!("first error outside the envelope: {e}"));
            }
            counts.unclear_errors += 1;
        }
    }
    counts.recovered = scenario.loads.iter().all(|&load| {
        let window: Vec<_> = records
            .iter()
            .filter(|r| r.load == load && r.sent + RECOVERED_WINDOW >= stopped_at)
            .collect();
        !window.is_empty() && window.iter().all(|r| r.outcome == Outcome::Ok)
    });

    let logs: Vec<&Record> = records
        .iter()
        .filter(|r| matches!(r.load, Load::Log(_)))
        .collect();
    if !logs.is_empty() {
        check_entries(env, &logs, started_at, &mut counts).await?;
    }
    let mails: Vec<&Record> = records.iter().filter(|r| r.load == Load::Mail).collect();
    if !mails.is_empty() {
        check_mails(env, &mails, caught_before, mended_at, &mut counts).await?;
    }
    if scenario.loads == [Load::Auth] {
        // Nothing is stored per request: the acknowledged ones are the count.
        counts.stored = counts.acked;
    }

    let dead_after = dead_letters(&env.amqp_url).await?;
    counts.dead_lettered = dead_after.saturating_sub(dead_before);
    if matches!(scenario.fault, Fault::Poison) {
        let reasons = take_dead_letters(&env.amqp_url).await?;
        let with_reason = reasons.iter().filter(|r| !r.is_empty()).count();
        counts.notes.push(format!(
            "{with_reason} of {} dead letters carry {DEAD_LETTER_REASON_HEADER}; reasons: {:?}",
            reasons.len(),
            distinct_prefixes(&reasons)
        ));
        if with_reason != reasons.len() {
            counts.broken.push(format!(
                "{} dead letters without a reason",
                reasons.len() - with_reason
            ));
        }
    }
    Ok(counts)
}

/// One worker: a request, a short pause, until `stop`.
async fn load_loop(
    http: reqwest::Client,
    broker: String,
    load: Load,
    prefix: String,
    stop: Arc<AtomicBool>,
) -> Vec<Record> {
    let mut records = Vec::new();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let (tag, body) = request(load, &format!("{prefix} {n}"));
        let sent = Instant::now();
        let outcome = match http
            .post(format!("{broker}/handle"))
            .json(&body)
            .send()
            .await
        {
            // With its causes: reqwest's own words name only the URL.
            Err(e) => Outcome::Unclear(format!(
                "{:#} after {} ms",
                anyhow::Error::new(e),
                sent.elapsed().as_millis()
            )),
            Ok(response) => {
                let status = response.status();
                let envelope: Option<Value> = response.json().await.ok();
                let error = envelope.as_ref().and_then(|e| e["error"].as_bool());
                match (status.is_success(), error) {
                    (true, Some(false)) => Outcome::Ok,
                    (false, Some(true)) => Outcome::Clear(status.as_u16()),
                    _ => Outcome::Unclear(format!("{status}: {envelope:?}")),
                }
            }
        };
        records.push(Record {
            load,
            tag,
            sent,
            elapsed: sent.elapsed(),
            outcome,
        });
        tokio::time::sleep(PAUSE).await;
    }
    records
}

/// A request of `load` to the broker's `POST /handle`, unique by `data`:
/// (its tag, its body). A log entry's tag is its id; a mail's, its subject.
fn request(load: Load, data: &str) -> (String, Value) {
    match load {
        Load::Log(transport) => {
            let id = ObjectId::new().to_hex();
            let body = json!({"action": "log", "transport": transport.as_str(),
                "log": {"name": "fault", "data": data, "id": id}});
            (id, body)
        }
        Load::Auth => (
            String::new(),
            json!({"action": "auth", "auth": {"email": "admin@example.com", "password": "verysecret"}}),
        ),
        Load::Mail => {
            let body = json!({"action": "mail", "mail": {"from": "faults@example.com",
                "to": "sink@example.com", "subject": data, "message": "A fault-suite mail."}});
            (data.to_owned(), body)
        }
    }
}

/// Looks every log request's id up in MongoDB (waiting up to [`DRAIN`] for
/// queued events), and counts entries of this scenario stored twice.
async fn check_entries(
    env: &Env,
    logs: &[&Record],
    started_at: DateTime,
    counts: &mut Counts,
) -> anyhow::Result<()> {
    let acked: HashSet<&str> = logs
        .iter()
        .filter(|r| r.outcome == Outcome::Ok)
        .map(|r| r.tag.as_str())
        .collect();
    let deadline = Instant::now() + DRAIN;
    let mut stored = HashSet::new();
    let all: Vec<&str> = logs.iter().map(|r| r.tag.as_str()).collect();
    add_stored(env, &all, &mut stored).await?;
    loop {
        let waiting: Vec<&str> = acked
            .iter()
            .copied()
            .filter(|id| !stored.contains(*id))
            .collect();
        if waiting.is_empty() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        add_stored(env, &waiting, &mut stored).await?;
    }
    counts.stored = acked.iter().filter(|id| stored.contains(**id)).count();
    counts.lost = acked.len() - counts.stored;
    counts.failed_but_stored = logs
        .iter()
        .filter(|r| r.outcome != Outcome::Ok && stored.contains(&r.tag))
        .count();
    // Every entry created since the scenario began, by its unique data.
    let mut per_data: HashMap<String, usize> = HashMap::new();
    let mut cursor = env
        .mongo
        .find(doc! {"created_at": {"$gte": started_at}})
        .projection(doc! {"data": 1})
        .await?;
    while let Some(entry) = cursor.try_next().await? {
        if let Ok(data) = entry.get_str("data") {
            *per_data.entry(data.to_owned()).or_default() += 1;
        }
    }
    counts.duplicated = per_data.values().map(|n| n - 1).sum();
    Ok(())
}

/// Adds those of `ids` that are in MongoDB to `stored`.
async fn add_stored(env: &Env, ids: &[&str], stored: &mut HashSet<String>) -> anyhow::Result<()> {
    for chunk in ids.chunks(500) {
        let ids: Vec<Bson> = chunk
            .iter()
            .filter_map(|id| ObjectId::parse_str(id).ok().map(Bson::ObjectId))
            .collect();
        let mut cursor = env
            .mongo
            .find(doc! {"_id": {"$in": ids}})
            .projection(doc! {"_id": 1})
            .await?;
        while let Some(entry) = cursor.try_next().await? {
            if let Ok(id) = entry.get_object_id("_id") {
                stored.insert(id.to_hex());
            }
        }
    }
    Ok(())
}

/// Every acknowledged mail must be in the catcher once: those answered
/// before `caught_before` was read are in it, those sent after the fault
/// was mended (`mended_at`) in the catcher now; the few in between went
/// down with the stopped catcher and are counted apart.
async fn check_mails(
    env: &Env,
    mails: &[&Record],
    (read_at, caught_before): (Instant, Vec<String>),
    mended_at: Instant,
    counts: &mut Counts,
) -> anyhow::Result<()> {
    let caught_now = caught_subjects(env).await?;
    let mut per_subject: HashMap<&str, usize> = HashMap::new();
    for subject in caught_before.iter().chain(&caught_now) {
        *per_subject.entry(subject.as_str()).or_default() += 1;
    }
    let (checkable, unverifiable): (Vec<&&Record>, Vec<&&Record>) = mails
        .iter()
        .filter(|r| r.outcome == Outcome::Ok)
        .partition(|r| r.sent + r.elapsed < read_at || r.sent >= mended_at);
    counts.unverifiable = unverifiable.len();
    counts.stored = checkable
        .iter()
        .filter(|r| per_subject.contains_key(r.tag.as_str()))
        .count();
    counts.lost = checkable.len() - counts.stored;
    counts.duplicated = checkable
        .iter()
        .filter_map(|r| per_subject.get(r.tag.as_str()))
        .map(|n| n - 1)
        .sum();
    Ok(())
}

/// The subject of every mail in the catcher.
async fn caught_subjects(env: &Env) -> anyhow::Result<Vec<String>> {
    let caught: Vec<Value> = env
        .http
        .get(format!("{}/email", env.maildev))
        .send()
        .await?
        .json()
        .await?;
    Ok(caught
        .iter()
        .filter_map(|mail| mail["subject"].as_str().map(String::from))
        .collect())
}

async fn shell(name: &str) -> anyhow::Result<()> {
    let variable = format!("FAULT_{name}");
    let command = std::env::var(&variable).with_context(|| format!("{variable} is not set"))?;
    let shell = command.clone();
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sh")
            .args(["-c", &shell])
            .status()
    })
    .await??;
    anyhow::ensure!(status.success(), "{variable} ({command}) failed: {status}");
    Ok(())
}

async fn amqp(url: &str) -> anyhow::Result<Connection> {
    Ok(Connection::connect(url, ConnectionProperties::default()).await?)
}

/// Messages waiting in `logs.dead`.
async fn dead_letters(url: &str) -> anyhow::Result<u64> {
    let connection = amqp(url).await?;
    let channel = connection.create_channel().await?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let count = match channel
        .queue_declare(DEAD_LETTER_QUEUE.into(), passive, FieldTable::default())
        .await
    {
        Ok(queue) => u64::from(queue.message_count()),
        // Not declared yet: nothing was ever dead-lettered.
        Err(_) => 0,
    };
    let _ = connection.close(200, "done".into()).await;
    Ok(count)
}

/// Takes every message out of `logs.dead`: each one's reason header.
async fn take_dead_letters(url: &str) -> anyhow::Result<Vec<String>> {
    let connection = amqp(url).await?;
    let channel = connection.create_channel().await?;
    let mut reasons = Vec::new();
    while let Some(message) = channel
        .basic_get(DEAD_LETTER_QUEUE.into(), BasicGetOptions { no_ack: true })
        .await?
    {
        let headers = message
            .delivery
            .properties
            .headers()
            .clone()
            .unwrap_or_default();
        reasons.push(match headers.inner().get(DEAD_LETTER_REASON_HEADER) {
            Some(AMQPValue::LongString(reason)) => reason.to_string(),
            _ => String::new(),
        });
    }
    let _ = connection.close(200, "done".into()).await;
    Ok(reasons)
}

fn distinct_prefixes(reasons: &[String]) -> Vec<String> {
    let mut kinds: Vec<String> = reasons
        .iter()
        .map(|r| r.split([':', '(']).next().unwrap_or("").trim().to_owned())
        .collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

/// [`POISON`] messages: bytes that are not JSON, JSON that is not an
/// event, events that break the entry rules, and bodies over the size
/// limit, in turn.
async fn publish_poison(url: &str) -> anyhow::Result<()> {
    let connection = amqp(url).await?;
    let channel = connection.create_channel().await?;
    for n in 0..POISON {
        let body: Vec<u8> = match n % 4 {
            0 => vec![0xff, 0x00, (n % 256) as u8, b'{'],
            1 => json!({"level": "INFO", "count": n})
                .to_string()
                .into_bytes(),
            2 => json!({"name": "", "data": format!("blank name {n}")})
                .to_string()
                .into_bytes(),
            _ => vec![b'x'; MAX_EVENT_BYTES + 1],
        };
        channel
            .basic_publish(
                EXCHANGE.into(),
                "log.ERROR".into(),
                BasicPublishOptions::default(),
                &body,
                BasicProperties::default(),
            )
            .await?
            .await?;
    }
    let _ = connection.close(200, "done".into()).await;
    Ok(())
}

/// Opens [`SLOW_CLIENTS`] connections to the broker, each sending the start
/// of a request and then one header byte a second, for `hold`; returns how
/// many the broker closed meanwhile.
async fn slow_clients(hold: Duration) -> anyhow::Result<usize> {
    let address = ports::local(ports::BROKER);
    let mut clients = Vec::new();
    for _ in 0..SLOW_CLIENTS {
        let mut stream = tokio::net::TcpStream::connect(&address).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
            .await?;
        clients.push(tokio::spawn(async move {
            let until = Instant::now() + hold;
            let mut buffer = [0u8; 256];
            while Instant::now() < until {
                tokio::select! {
                    // An answer, a close or a reset: the broker cut it off.
                    _ = stream.read(&mut buffer) => return true,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {
                        if stream.write_all(b"x").await.is_err() {
                            return true;
                        }
                    }
                }
            }
            false
        }));
    }
    let mut closed = 0;
    for client in clients {
        if client.await? {
            closed += 1;
        }
    }
    Ok(closed)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proto::http::Transport;

    use super::{
        ALL_LOGS, Counts, ERROR_DEADLINE, Fault, Load, POISON, SCENARIOS, Scenario, loaded, request,
    };

    fn scenario(name: &str) -> &'static Scenario {
        SCENARIOS.iter().find(|s| s.name == name).unwrap()
    }

    /// A scenario that kept every rule: every path recovered, nothing
    /// dead-lettered, nothing lost.
    fn clean() -> Counts {
        Counts {
            sent: 100,
            acked: 90,
            stored: 90,
            errors: 10,
            slowest_error: Duration::from_millis(300),
            recovered: true,
            ..Counts::default()
        }
    }

    #[test]
    fn counts_that_keep_every_rule_break_none() {
        assert_eq!(
            clean().violations(scenario("mongo-frozen")),
            Vec::<String>::new()
        );
    }

    #[test]
    fn an_acknowledged_request_not_stored_breaks_the_rule() {
        let counts = Counts { lost: 1, ..clean() };
        assert_eq!(
            counts.violations(scenario("logger-killed")),
            ["1 acknowledged requests not stored"]
        );
    }

    #[test]
    fn an_entry_stored_twice_breaks_the_rule() {
        let counts = Counts {
            duplicated: 2,
            ..clean()
        };
        assert_eq!(
            counts.violations(scenario("logger-killed")),
            ["2 entries stored twice"]
        );
    }

    #[test]
    fn an_error_outside_the_envelope_breaks_the_rule() {
        let counts = Counts {
            unclear_errors: 3,
            ..clean()
        };
        assert_eq!(
            counts.violations(scenario("smtp-gone")),
            ["3 errors outside the envelope"]
        );
    }

    #[test]
    fn an_error_later_than_the_deadline_breaks_the_rule_and_one_at_it_does_not() {
        let at_deadline = Counts {
            slowest_error: ERROR_DEADLINE,
            ..clean()
        };
        assert!(at_deadline.violations(scenario("mongo-frozen")).is_empty());
        let late = Counts {
            slowest_error: ERROR_DEADLINE + Duration::from_millis(100),
            ..clean()
        };
        assert_eq!(
            late.violations(scenario("mongo-frozen")),
            ["an error took 5.1 s"]
        );
    }

    #[test]
    fn only_the_poison_scenario_expects_its_messages_dead_lettered() {
        let poison = scenario("poison");
        assert!(matches!(poison.fault, Fault::Poison));
        let all_poison = Counts {
            dead_lettered: POISON as u64,
            ..clean()
        };
        assert!(all_poison.violations(poison).is_empty());
        assert_eq!(
            clean().violations(poison),
            [format!("0 dead-lettered, expected {POISON}")]
        );
        assert_eq!(
            all_poison.violations(scenario("rabbitmq-stopped")),
            [format!("{POISON} dead-lettered, expected 0")]
        );
    }

    #[test]
    fn a_path_that_does_not_work_again_breaks_the_rule() {
        let counts = Counts {
            recovered: false,
            ..clean()
        };
        assert_eq!(
            counts.violations(scenario("postgres-restarted")),
            ["not every path works again after the fault"]
        );
    }

    #[test]
    fn a_scenario_s_own_broken_rules_are_reported_first() {
        let counts = Counts {
            broken: vec!["the queue did not drain".into()],
            lost: 1,
            ..clean()
        };
        assert_eq!(
            counts.violations(scenario("poison")),
            [
                "the queue did not drain".to_owned(),
                "1 acknowledged requests not stored".to_owned(),
                format!("0 dead-lettered, expected {POISON}"),
            ]
        );
    }

    /// The table and the log name each loaded path as they did when the
    /// transports were strings.
    #[test]
    fn loaded_paths_are_named_by_their_transport() {
        assert_eq!(ALL_LOGS.map(Load::label), ["rpc", "http", "grpc", "amqp"]);
        assert_eq!(
            loaded(scenario("logger-killed").loads),
            "log via rpc, http, grpc, amqp"
        );
        assert_eq!(loaded(scenario("slow-clients").loads), "log via rpc, http");
        assert_eq!(loaded(scenario("poison").loads), "log via amqp");
        assert_eq!(loaded(scenario("smtp-gone").loads), "mail");
        assert_eq!(
            loaded(&[Load::Auth, Load::Log(Transport::Grpc)]),
            "log via grpc, auth"
        );
    }

    #[test]
    fn a_log_request_names_its_transport_and_carries_its_id() {
        for transport in Transport::ALL {
            let (id, body) = request(Load::Log(transport), "scenario 1");
            assert_eq!(body["transport"], transport.as_str());
            assert_eq!(body["log"]["id"], id.as_str());
            assert_eq!(body["log"]["data"], "scenario 1");
        }
        let (subject, body) = request(Load::Mail, "smtp-gone mail 0 7");
        assert_eq!(subject, "smtp-gone mail 0 7");
        assert_eq!(body["mail"]["subject"], "smtp-gone mail 0 7");
    }

    /// Every scenario has its own name (the `FAULTS` filter picks by it).
    #[test]
    fn scenario_names_are_unique() {
        let mut names: Vec<_> = SCENARIOS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SCENARIOS.len());
    }
}
