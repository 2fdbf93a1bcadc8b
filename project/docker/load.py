#!/usr/bin/env python3
"""Load through the edge while the Swarm test changes the cluster, and its
exact counts (part of test-swarm.sh).

    load.py run DIR NAME
        Six loops, one per path through the broker (a log over each of rpc,
        http, grpc and amqp, a login, a mail), each sending its requests one
        after the other (mails 0.2 s apart) through Caddy (http://localhost/api/handle) until
        DIR/stop exists. A log's data and a mail's subject carry the path's
        own sequence number ("NAME-amqp", "NAME-mail 17"). Every answer is a
        line of DIR/<path>: time, sequence number, status (0: none within
        the 10 s timeout) and, for a failure, the answer's body.

    load.py check DIR NAME ENV_FILE [EVENT RECOVER]
        Per path: requests sent, answered 2xx, failed; for a log or mail
        path, stored (MongoDB, by data) or delivered (the mail catcher, by
        subject), lost and duplicated. Without EVENT, one failed request
        fails the check. With EVENT (a time, `date +%s`, when the test
        disturbed the cluster), a failure is allowed if it is a clear error
        (the JSON envelope, `{"error":true,"message":...}`) and the last one
        came at most RECOVER seconds after EVENT. Either way an acknowledged
        request is stored or delivered exactly once and a failed one at
        most once (it may have been done before the failure was answered),
        and nothing is stored that was not sent. AMQP entries and mails
        arrive after the answer, so the counts are retried for SETTLE s.
        Exits 1 on any violation.

The mongo container is found with `docker ps` (DOCKER_HOST: the engine that
runs it); the mail catcher answers on http://localhost:8025.
"""

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

BROKER = "http://localhost/api/handle"
MAIL_UI = "http://localhost:8025"
LOGS = ("rpc", "http", "grpc", "amqp")
PATHS = LOGS + ("auth", "mail")
# How long the stored and delivered counts may take to settle: a message
# a dead node's listener held unacknowledged is redelivered once RabbitMQ
# sees its connection gone (its heartbeat, 60 s).
SETTLE = 120
MAIL_PAUSE = 0.2
LOGIN = {"action": "auth", "auth": {"email": "admin@example.com", "password": "verysecret"}}


def post(body, bearer=None, timeout=10):
    """(status, body text) of BODY posted to the broker through Caddy;
    status 0 when nothing answered within TIMEOUT s."""
    headers = {"Content-Type": "application/json"}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    request = urllib.request.Request(BROKER, data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except OSError as e:
        return 0, f"no answer: {e}"


def body_of(path, name, n):
    if path in LOGS:
        return {"action": "log", "transport": path, "log": {"name": f"{name}-{path}", "data": str(n)}}
    if path == "auth":
        return LOGIN
    return {"action": "mail", "mail": {"to": "load@example.com", "subject": f"{name}-mail {n}", "message": "m"}}


def login():
    """An access token for the trial user, logged in through the broker."""
    status, text = post(LOGIN)
    if not 200 <= status < 300:
        sys.exit(f"the login for a token answered {status}: {text}")
    return json.loads(text)["data"]["access_token"]


def run(directory, name):
    bearer = login()
    stop = os.path.join(directory, "stop")

    def loop(path):
        n = 0
        with open(os.path.join(directory, path), "a", buffering=1) as out:
            while not os.path.exists(stop):
                n += 1
                status, text = post(body_of(path, name, n), bearer)
                record = {"t": time.time(), "n": n, "status": status}
                if not 200 <= status < 300:
                    record["body"] = text[:300]
                out.write(json.dumps(record) + "\n")
                if path == "mail":
                    # The mail catcher keeps every message in memory: a few
                    # a second, not hundreds.
                    time.sleep(MAIL_PAUSE)

    threads = [threading.Thread(target=loop, args=(path,)) for path in PATHS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def env_value(env_file, key):
    value = None
    with open(env_file) as f:
        for line in f:
            if line.startswith(key + "="):
                value = line.rstrip("\n").split("=", 1)[1]
    return value


def stored(env_file, name):
    """{path: {sequence number: times stored}} for the four log paths, or
    None when MongoDB cannot be asked."""
    mongo = subprocess.run(["docker", "ps", "-q", "--filter", "label=com.docker.swarm.service.name="
                            + os.environ.get("STACK", "microservices-test") + "_mongo"],
                           check=True, capture_output=True, text=True).stdout.split()
    if not mongo:
        return None
    url = f"mongodb://logger:{env_value(env_file, 'LOGGER_DB_PASSWORD')}@127.0.0.1:27017/logs"
    names = json.dumps([f"{name}-{path}" for path in LOGS])
    script = (f"db.logs.aggregate([{{$match: {{name: {{$in: {names}}}}}}}, "
              "{$group: {_id: {name: '$name', data: '$data'}, n: {$sum: 1}}}])"
              ".forEach(g => print(g._id.name + ' ' + g._id.data + ' ' + g.n))")
    run = subprocess.run(["docker", "exec", mongo[0], "mongosh", "--quiet", url, "--eval", script],
                         capture_output=True, text=True)
    if run.returncode != 0:
        return None
    out = run.stdout
    counts = {path: {} for path in LOGS}
    for line in out.splitlines():
        entry, data, n = line.split()
        counts[entry[len(name) + 1:]][data] = int(n)
    return counts


def subjects():
    """The subjects of every mail the catcher holds: Mailpit's API
    (/api/v1/messages, paged), or MailDev's (/email: all at once), which the
    mailpit stand-in runs (project/stand-ins/mailpit.dockerfile)."""
    found, start = [], 0
    try:
        while True:
            with urllib.request.urlopen(f"{MAIL_UI}/api/v1/messages?start={start}&limit=1000", timeout=10) as answer:
                messages = json.load(answer).get("messages") or []
            if not messages:
                return found
            found += [m.get("Subject", "") for m in messages]
            start += len(messages)
    except urllib.error.HTTPError as e:
        if e.code != 404:
            raise
    with urllib.request.urlopen(f"{MAIL_UI}/email", timeout=30) as answer:
        return [m.get("subject", "") for m in json.load(answer)]


def delivered(name):
    """{sequence number: mails} with the subject "NAME-mail <n>"."""
    counts = {}
    for subject in subjects():
        if subject.startswith(f"{name}-mail "):
            n = subject.rsplit(" ", 1)[1]
            counts[n] = counts.get(n, 0) + 1
    return counts


def read(directory, path):
    with open(os.path.join(directory, path)) as f:
        return [json.loads(line) for line in f if line.strip()]


def clear_error(record):
    try:
        body = json.loads(record.get("body", ""))
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("error") is True and isinstance(body.get("message"), str)


def outcome(records, counts):
    """(acknowledged, failed, stored, lost, duplicated, unknown) of one path."""
    acked = {str(r["n"]) for r in records if 200 <= r["status"] < 300}
    failed = {str(r["n"]) for r in records} - acked
    lost = sum(1 for n in acked if counts.get(n, 0) == 0)
    duplicated = sum(counts.get(n, 0) - 1 for n in acked | failed if counts.get(n, 0) > 1)
    unknown = sum(1 for n in counts if n not in acked and n not in failed)
    return len(acked), len(failed), sum(1 for n in acked | failed if counts.get(n, 0)), lost, duplicated, unknown


def check(directory, name, env_file, event=None, recover=None):
    records = {path: read(directory, path) for path in PATHS}
    ok = True
    for path in PATHS:
        sent = len(records[path])
        failures = [r for r in records[path] if not 200 <= r["status"] < 300]
        line = f"  {path}: {sent} requests, {len(failures)} failed"
        if failures and event is not None:
            last = max(r["t"] for r in failures) - event
            line += f" (the last {last:.1f} s after the event)"
        print(line)
        if sent == 0:
            print("    no request was sent")
            ok = False
        if not failures:
            continue
        unclear = [r for r in failures if not clear_error(r)]
        shown = unclear or failures
        print(f"    e.g. {shown[0]['status']}: {shown[0].get('body', '')[:200]}")
        if event is None:
            ok = False
        elif unclear:
            print(f"    {len(unclear)} failures are not a clear error in the envelope")
            ok = False
        elif max(r["t"] for r in failures) - event > recover:
            print(f"    requests still failed more than {recover} s after the event")
            ok = False

    # Stored and delivered: exactly once, retried while AMQP and mail settle.
    deadline = time.time() + SETTLE
    while True:
        counts = stored(env_file, name)
        if counts is None:
            # MongoDB not running on the engine or not answering (yet).
            if time.time() > deadline:
                print("  MongoDB could not be asked for the stored entries")
                return False
            time.sleep(2)
            continue
        counts["mail"] = delivered(name)
        results = {path: outcome(records[path], counts[path]) for path in LOGS + ("mail",)}
        settled = all(lost == 0 and duplicated == 0 and unknown == 0
                      for _, _, _, lost, duplicated, unknown in results.values())
        if settled or time.time() > deadline:
            break
        time.sleep(2)
    for path, (acked, failed, done, lost, duplicated, unknown) in results.items():
        what = "delivered" if path == "mail" else "stored"
        print(f"  {path}: {acked} acknowledged, {failed} failed, {done} {what}, "
              f"{lost} lost, {duplicated} duplicated, {unknown} never sent")
    return ok and settled


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3])
        return 0
    if len(sys.argv) in (5, 7) and sys.argv[1] == "check":
        event = float(sys.argv[5]) if len(sys.argv) == 7 else None
        recover = float(sys.argv[6]) if len(sys.argv) == 7 else None
        return 0 if check(sys.argv[2], sys.argv[3], sys.argv[4], event, recover) else 1
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
