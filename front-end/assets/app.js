// The test page: each button sends one request to the broker and shows what
// was sent, what came back, and a line in the output log. Log buttons also
// refresh the panel of newest entries, so the new entry can be seen arriving.
"use strict";

const brokerUrl = document.querySelector('meta[name="broker-url"]').content.replace(/\/+$/, "");
const output = document.getElementById("output");
const sent = document.getElementById("payload");
const received = document.getElementById("received");
const logsBody = document.getElementById("logs-body");
let outputStarted = false;

document.getElementById("broker-url").textContent = brokerUrl || window.location.origin;

function logLine(kind, text) {
  if (!outputStarted) {
    output.textContent = "";
    outputStarted = true;
  }
  const line = document.createElement("div");
  line.className = kind;
  line.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  output.prepend(line);
}

function show(element, value) {
  element.textContent = typeof value === "string" ? value : JSON.stringify(value, null, 4);
}

// The access token of the last successful Test Auth, kept in this page
// only (never stored): mail and the newest entries need it.
let session = null;

function signedIn() {
  if (session !== null && Date.now() >= session.expiresAt) {
    session = null;
    logLine("error", "The access token has expired: click Test Auth to log in again.");
  }
  return session !== null;
}

// Calls the broker and returns {ok, status, envelope}; a network failure or
// an answer that is not the envelope becomes an error envelope.
async function callBroker(method, path, body) {
  const headers = body === undefined ? {} : { "Content-Type": "application/json" };
  if (signedIn()) headers.Authorization = `Bearer ${session.token}`;
  try {
    const response = await fetch(brokerUrl + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 401 && session !== null) session = null;
    const text = await response.text();
    let envelope;
    try {
      envelope = JSON.parse(text);
    } catch {
      envelope = { error: true, message: `HTTP ${response.status}: ${text.slice(0, 200)}` };
    }
    const traceId = traceIdOf(response.headers.get("x-request-id"));
    return { ok: response.ok && !envelope.error, status: response.status, envelope, traceId };
  } catch (error) {
    return {
      ok: false,
      status: 0,
      envelope: { error: true, message: `the broker is unreachable (${error.message})` },
    };
  }
}

// A request's trace id is its request id, a UUID, without the hyphens
// (docs/observability.md); null for an id that is not a UUID.
function traceIdOf(requestId) {
  const hex = (requestId || "").replace(/-/g, "").toLowerCase();
  return /^[0-9a-f]{32}$/.test(hex) ? hex : null;
}

// One button's request: shown in Sent, Received and the output log; errors
// are shown as errors, never swallowed. Returns {ok, status, envelope}.
async function send(label, path, body) {
  show(sent, body === undefined ? "empty post request" : body);
  show(received, "waiting…");
  const result = await callBroker("POST", path, body);
  show(received, result.envelope);
  const status = result.status ? `HTTP ${result.status}: ` : "";
  const trace = result.traceId ? `  (trace ${result.traceId})` : "";
  logLine(result.ok ? "ok" : "error", `${label}: ${status}${result.envelope.message}${trace}`);
  return result;
}

function renderLogs(entries) {
  logsBody.textContent = "";
  if (entries.length === 0) {
    const row = logsBody.insertRow();
    const cell = row.insertCell();
    cell.colSpan = 3;
    cell.className = "muted";
    cell.textContent = "No entries yet.";
    return;
  }
  for (const entry of entries) {
    const row = logsBody.insertRow();
    row.dataset.id = entry.id;
    row.insertCell().textContent = new Date(entry.created_at).toLocaleTimeString();
    row.insertCell().textContent = entry.name;
    row.insertCell().textContent = entry.data;
  }
}

function showSignInNeeded() {
  logsBody.textContent = "";
  const cell = logsBody.insertRow().insertCell();
  cell.colSpan = 3;
  cell.className = "muted";
  cell.textContent = "Reading the log needs an access token: click Test Auth to log in.";
}

// Loads the newest entries; returns the id of the newest, or null.
async function refreshLogs() {
  if (!signedIn()) {
    showSignInNeeded();
    return null;
  }
  const result = await callBroker("GET", "/logs?limit=10");
  if (!result.ok) {
    logLine("error", `Newest log entries: ${result.envelope.message}`);
    return null;
  }
  const entries = result.envelope.data || [];
  renderLogs(entries);
  return entries.length > 0 ? entries[0].id : null;
}

// After a log action: refresh until a new entry shows up. A RabbitMQ event
// is stored by the listener a moment after the broker answered.
async function awaitNewEntry(previousNewest) {
  for (let attempt = 0; attempt < 20; attempt++) {
    const newest = await refreshLogs();
    if (newest !== null && newest !== previousNewest) return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

function newestShown() {
  const first = logsBody.querySelector("tr[data-id]");
  return first ? first.dataset.id : null;
}

async function sendLog(label, path, body) {
  const before = newestShown();
  if ((await send(label, path, body)).ok && signedIn()) {
    await awaitNewEntry(before);
  }
}

// A button whose request needs the access token: without one it says so
// and sends nothing.
async function sendSignedIn(label, path, body) {
  if (!signedIn()) {
    show(sent, "nothing sent");
    show(received, "no access token yet");
    logLine("error", `${label} needs an access token: click Test Auth first.`);
    return { ok: false };
  }
  return send(label, path, body);
}

// Test Auth: logs in, and keeps the token for the buttons that need it.
async function logIn() {
  const body = { action: "auth", auth: { email: "admin@example.com", password: "verysecret" } };
  const result = await send("Test Auth", "/handle", body);
  const data = result.envelope.data;
  if (result.ok && data && data.access_token) {
    session = { token: data.access_token, expiresAt: Date.now() + data.expires_in * 1000 };
    await refreshLogs();
  }
}

const logEntry = (transport) => ({ name: "event", data: `Some kind of ${transport} data` });

const buttons = {
  "broker-btn": () => send("Test Broker", "/", undefined),
  "auth-btn": logIn,
  "log-btn": () => sendLog("Test Log (RPC)", "/handle", { action: "log", transport: "rpc", log: logEntry("RPC") }),
  "http-log-btn": () => sendLog("Test HTTP Log", "/handle", { action: "log", transport: "http", log: logEntry("HTTP") }),
  "grpc-log-btn": () => sendLog("Test gRPC Log", "/log-grpc", { action: "log", log: logEntry("gRPC") }),
  "amqp-log-btn": () =>
    sendLog("Test RabbitMQ Log", "/handle", { action: "log", transport: "amqp", log: logEntry("RabbitMQ") }),
  "mail-btn": () =>
    sendSignedIn("Test Mail", "/handle", {
      action: "mail",
      mail: { from: "me@example.com", to: "you@example.com", subject: "Test email", message: "Hello, world!" },
    }),
};

for (const [id, action] of Object.entries(buttons)) {
  document.getElementById(id).addEventListener("click", action);
}
document.getElementById("logs-refresh").addEventListener("click", refreshLogs);
refreshLogs();
