#!/usr/bin/env python3
"""What the tests ask of a running Prometheus (the native smoke test, the
compose test):

    check-prometheus.py URL targets N [SECONDS]
        every scrape target answered: N targets, each `up`, within SECONDS
        (30 unless given);
    check-prometheus.py URL dashboard
        each query of the committed Grafana dashboard
        (project/observability/grafana/dashboards/red.json) answers data.

Exits 1 with what is missing on standard output.
"""

import json
import pathlib
import sys
import time
import urllib.parse
import urllib.request

DASHBOARD = pathlib.Path(__file__).parent / "grafana" / "dashboards" / "red.json"


def api(url, path, **query):
    if query:
        path += "?" + urllib.parse.urlencode(query)
    with urllib.request.urlopen(f"{url}/api/v1/{path}", timeout=5) as answer:
        return json.load(answer)


def targets(url, expected, seconds):
    deadline = time.monotonic() + seconds
    seen = []
    while True:
        try:
            seen = api(url, "targets")["data"]["activeTargets"]
        except OSError:
            seen = []
        up = [t for t in seen if t["health"] == "up"]
        if len(seen) == expected and len(up) == expected:
            return 0
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    print(f"  targets up: {len(up)} of {expected} ({len(seen)} scraped)")
    for target in seen:
        print(f"  {target['scrapeUrl']}: {target['health']} {target.get('lastError', '')}")
    return 1


def dashboard(url):
    empty = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel["targets"]:
            answer = api(url, "query", query=target["expr"])
            if answer["status"] != "success" or not answer["data"]["result"]:
                why = answer.get("error") or "no series"
                empty.append(f'{panel["title"]}: {target["expr"]} -> {why}')
    for line in empty:
        print("  " + line)
    return 1 if empty else 0


def main(argv):
    if len(argv) >= 4 and argv[2] == "targets":
        seconds = float(argv[4]) if len(argv) > 4 else 30.0
        return targets(argv[1].rstrip("/"), int(argv[3]), seconds)
    if len(argv) == 3 and argv[2] == "dashboard":
        return dashboard(argv[1].rstrip("/"))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
