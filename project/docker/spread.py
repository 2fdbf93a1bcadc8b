#!/usr/bin/env python3
"""How a scaled Swarm stack spreads its calls (part of test-swarm.sh).

    spread.py STACK LOGS OTHERS

For each path through the broker, sends LOGS requests on each of the four
log transports and OTHERS logins and mails (a login is a bcrypt hash:
fewer keep it short) through Caddy (load.py's client, eight at a time) and
reads, from every task of the service that serves that path, its own
request counter (`server_requests_total` on its /metrics, fetched inside
the task's network namespace with nsenter on the task's node, since the
tasks publish no port; SWARM_NODES names the nodes). Every request must
succeed, and every task must have served between 0.6 and 1.4 times its
fair share (requests / tasks) of them (docs/deploy.md, "Balancing").
Prints one line per path and task; exits 1 on any failure.
"""

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from load import LOGIN, login, post

# path: (the request's body, the service that serves it, its port, the
# counter's transport and route there)
PATHS = {
    "rpc": ({"action": "log", "transport": "rpc"}, "logger-service", 8083, "tarpc", "log_info"),
    "grpc": ({"action": "log", "transport": "grpc"}, "logger-service", 8083, "grpc", "WriteLog"),
    "http": ({"action": "log", "transport": "http"}, "logger-service", 8083, "http", "/log"),
    "amqp": ({"action": "log", "transport": "amqp"}, "listener-service", 8085, "amqp", "logs"),
    "auth": (LOGIN, "authentication-service", 8082, "http", "/authenticate"),
    "mail": ({"action": "mail", "mail": {"to": "spread@example.com", "subject": "spread", "message": "m"}},
             "mail-service", 8084, "http", "/send"),
}


def nodes():
    """The swarm's nodes, from SWARM_NODES ("CONTAINER=DOCKER_HOST ...": each
    node an engine in a container of this machine's engine, nodes.sh), as
    (the node's container, its engine's address)."""
    spec = os.environ.get("SWARM_NODES", "").split()
    if not spec:
        sys.exit("spread.py: SWARM_NODES names no node")
    return [tuple(item.split("=", 1)) for item in spec]


def docker(host, *args):
    env = dict(os.environ, DOCKER_HOST=host) if host else None
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True, env=env).stdout


def tasks(stack, service):
    """The running containers of a service on every node: (name, node
    container, pid)."""
    found = []
    for container, host in nodes():
        ids = docker(host, "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={stack}_{service}").split()
        if not ids:
            continue
        for line in docker(host, "inspect", "--format", "{{.Name}} {{.State.Pid}}", *ids).splitlines():
            name, pid = line.split()
            found.append((name.lstrip("/"), container, pid))
    return sorted(found)


def served(container, pid, port, transport, route):
    """The task's own count, read in its network namespace (on its node:
    the PID is the node's)."""
    text = docker(os.environ.get("HOST_DOCKER_HOST"), "exec", container,
                  "nsenter", "-t", pid, "-n", "curl", "-fsS", "--max-time", "5", f"http://127.0.0.1:{port}/metrics")
    prefix = f'server_requests_total{{transport="{transport}",route="{route}",'
    return sum(int(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def counts(stack, service, port, transport, route):
    return {name: served(container, pid, port, transport, route) for name, container, pid in tasks(stack, service)}


def main():
    stack, logs, others = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    bearer = login()
    ok = True
    for path, (body, service, port, transport, route) in PATHS.items():
        requests = logs if body["action"] == "log" else others
        before = counts(stack, service, port, transport, route)
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda i: post({**body, **(
                {"log": {"name": f"spread-{path}", "data": str(i)}} if body["action"] == "log" else {})},
                bearer, timeout=15)[0], range(requests)))
        failed = sum(1 for s in statuses if s not in (200, 202))
        # The AMQP path stores after the broker's answer.
        deadline = time.time() + 30
        while True:
            after = counts(stack, service, port, transport, route)
            delta = {name: after[name] - before.get(name, 0) for name in after}
            if sum(delta.values()) >= requests - failed or time.time() > deadline:
                break
            time.sleep(1)
        fair = requests / len(delta)
        print(f"  {path}: {requests} requests, {failed} failed; {service} tasks served "
              + ", ".join(f"{n}: {c} ({c / fair:.2f})" for n, c in sorted(delta.items())))
        if failed:
            print(f"    status codes: {sorted(set(statuses))}")
            ok = False
        if any(not 0.6 <= c / fair <= 1.4 for c in delta.values()):
            print(f"    a task is outside 0.6-1.4 of its fair share ({fair:.0f})")
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
