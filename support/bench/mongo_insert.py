"""MongoDB's single-insert ceiling, measured by a client that is not the
logger's: pymongo, one insert_one after another on each of CONCURRENCY
threads for SECONDS, the threads spread over one process per core (so
Python's lock is not the limit). Run by the bench (`external::pymongo_insert`).

    python mongo_insert.py URL CONCURRENCY SECONDS

Prints one JSON object: per_second, p50, p90, p99 (ms), requests, errors.
"""
import json
import multiprocessing
import os
import sys
import threading
import time

from pymongo import MongoClient


def run(url, threads, first, start_at, stop_at, results):
    """`threads` inserting from `start_at` until `stop_at`; puts
    (latencies, errors)."""
    client = MongoClient(url, maxPoolSize=max(threads, 1))
    collection = client["bench"]["inserts_pymongo"]
    collection.insert_one({"name": "warm-up"})
    time.sleep(max(0.0, start_at - time.time()))
    latencies, errors, lock = [], [0], threading.Lock()

    def worker(k):
        mine, failed, n = [], 0, 0
        while True:
            sent = time.time()
            if sent >= stop_at:
                break
            try:
                collection.insert_one({"name": "bench", "data": f"pymongo insert {k}.{n}"})
                mine.append(time.time() - sent)
            except Exception:  # counted, not fatal: the run goes on
                failed += 1
            n += 1
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    workers = [threading.Thread(target=worker, args=(first + k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    results.put((latencies, errors[0]))


def main(url, concurrency, seconds):
    processes = max(1, min(concurrency, os.cpu_count() or 1))
    shares = [concurrency // processes + (1 if p < concurrency % processes else 0)
              for p in range(processes)]
    # Every process connects first; the measured window starts together.
    started = time.time() + 1.0
    stop_at = started + seconds
    results = multiprocessing.Queue()
    children = [multiprocessing.Process(target=run, args=(url, n, sum(shares[:p]), started, stop_at, results))
                for p, n in enumerate(shares)]
    for child in children:
        child.start()
    latencies, errors = [], 0
    for _ in children:
        part, failed = results.get()
        latencies.extend(part)
        errors += failed
    for child in children:
        child.join()
    latencies.sort()
    requests = len(latencies) + errors

    def q(f):
        return latencies[round((len(latencies) - 1) * f)] * 1000 if latencies else 0.0

    print(json.dumps({
        "requests": requests,
        "errors": errors,
        "per_second": requests / seconds,
        "p50": q(0.5),
        "p90": q(0.9),
        "p99": q(0.99),
    }))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
