#!/usr/bin/env bash
# Draws docs/observability/prometheus-red.png: the running native stack's
# RED metrics as Prometheus graphs them, with the queries of the Grafana
# dashboard (project/observability/grafana/dashboards/red.json), after a
# minute of clicks on every path. Needs `make start-observability` running
# and Chromium (`make test-infra` installs it).
#
#   project/observability/prometheus-screenshot.sh [SECONDS]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../native/common.sh"

seconds=${1:-90}
prometheus=http://127.0.0.1:$PROMETHEUS_PORT
broker=http://127.0.0.1:8080
curl -fsS -o /dev/null "$prometheus/-/ready" || die "Prometheus is not running: make start-observability"
token=$(access_token "$broker")
[ -n "$token" ] || die "no access token from the broker"

say "clicking every path for ${seconds}s"
python3 - "$broker" "$token" "$seconds" <<'PY'
import json, sys, threading, time, urllib.request
broker, token, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
bodies = [{"action": "log", "transport": t, "log": {"name": "screenshot", "data": t}}
          for t in ("rpc", "http", "grpc", "amqp")]
bodies.append({"action": "auth", "auth": {"email": "admin@example.com", "password": "verysecret"}})
bodies.append({"action": "mail", "mail": {"from": "a@example.com", "to": "b@example.com",
               "subject": "screenshot", "message": "hello"}})
bodies.append({"action": "dance"})  # a 400, counted as the client's error
end = time.time() + seconds
def click(body):
    while time.time() < end:
        request = urllib.request.Request(f"{broker}/handle", data=json.dumps(body).encode(),
                                         headers={"Authorization": f"Bearer {token}"})
        try:
            urllib.request.urlopen(request, timeout=5).read()
        except Exception:
            pass
        time.sleep(0.02)
threads = [threading.Thread(target=click, args=(b,)) for b in bodies]
for t in threads: t.start()
for t in threads: t.join()
PY

# The dashboard's first three panels (rate, errors, p99 by service and
# transport) and its dependency p99, as Prometheus's own graph page.
url=$(python3 - "$ROOT/project/observability/grafana/dashboards/red.json" "$prometheus" <<'PY'
import json, sys, urllib.parse
panels = json.load(open(sys.argv[1]))["panels"]
chosen = [panels[0], panels[1], panels[2], panels[5]]
params = {}
for i, panel in enumerate(chosen):
    params[f"g{i}.expr"] = panel["targets"][0]["expr"]
    params[f"g{i}.tab"] = "0"
    params[f"g{i}.range_input"] = "5m"
print(f"{sys.argv[2]}/graph?" + urllib.parse.urlencode(params))
PY
)
out=$ROOT/docs/observability/prometheus-red.png
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --window-size=1400,2600 --virtual-time-budget=15000 \
  --screenshot="$out" "$url" 2>/dev/null
say "wrote $out"
