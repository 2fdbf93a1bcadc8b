// The test page: each button sends one request to the broker and shows what
// was sent, what came back, and a line in the output log.
"use strict";

const brokerUrl = document.querySelector('meta[name="broker-url"]').content.replace(/\/+$/, "");
const output = document.getElementById("output");
const sent = document.getElementById("payload");
const received = document.getElementById("received");
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

// Sends one request and reports it; a network failure or an error envelope
// is shown as an error, never swallowed.
async function send(label, path, body) {
  show(sent, body === undefined ? "empty post request" : body);
  show(received, "waiting…");
  try {
    const response = await fetch(brokerUrl + path, {
      method: "POST",
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let envelope;
    try {
      envelope = JSON.parse(text);
    } catch {
      envelope = { error: true, message: `HTTP ${response.status}: ${text.slice(0, 200)}` };
    }
    show(received, envelope);
    if (envelope.error || !response.ok) {
      logLine("error", `${label}: HTTP ${response.status}: ${envelope.message}`);
    } else {
      logLine("ok", `${label}: ${envelope.message}`);
    }
  } catch (error) {
    show(received, { error: true, message: String(error) });
    logLine("error", `${label}: the broker is unreachable (${error.message})`);
  }
}

document.getElementById("broker-btn").addEventListener("click", () => send("Test Broker", "/", undefined));
