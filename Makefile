# The system's commands. `make start` runs it natively, `make test` tests it.
SHELL := /bin/bash
NATIVE := project/native

.PHONY: help start start-observability stop run restart replay-dead-letters build infra test-infra screenshot trace-pictures bench flamegraph bench-tracing bench-spread bench-listing soak test lint fmt check-fmt clippy check-secrets test-rust test-native test-faults

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

start: ## start infrastructure and all services in the background, wait until ready
	@$(NATIVE)/start.sh

start-observability: ## `make start`, and Prometheus scraping every service's /metrics (http://localhost:9090)
	@OBSERVABILITY=1 $(NATIVE)/start.sh

stop: ## stop what `make start` started
	@$(NATIVE)/stop.sh

run: ## `make start` in the foreground; Ctrl-C stops everything
	@$(NATIVE)/run.sh

restart: ## rebuild and restart the services
	@$(NATIVE)/stop.sh && $(NATIVE)/start.sh

replay-dead-letters: ## move the events in RabbitMQ's logs.dead back to the log exchange (AMQP_URL, as the listener; natively the stack's own vhost)
	@if [ -z "$$AMQP_URL$$AMQP_URL_FILE" ] && [ -s .infra/secrets/amqp_url ]; then export AMQP_URL_FILE=$(CURDIR)/.infra/secrets/amqp_url; fi; \
		cargo run --quiet --release -p listener-service --bin replay-dead-letters

build: ## build every crate (release)
	cargo build --workspace --release

test: lint test-rust test-native test-faults lint-deploy test-docker ## every check and test: format, clippy, unit, integration and browser tests, native stack smoke test, the fault suite, deployment files, the Docker path (SKIP_DOCKER_TESTS=1 skips that)

infra: ## install and start the local infrastructure only
	@$(NATIVE)/infra.sh

test-infra: ## what the tests need: PostgreSQL and RabbitMQ running, the MongoDB-compatible server and Chromium installed
	@$(NATIVE)/infra.sh postgres rabbitmq mongo-install browser

screenshot: test-infra ## run the browser test and save its screenshot as docs/test-page.png
	SAVE_SCREENSHOT=1 cargo test -p system-tests --test browser

trace-pictures: test-infra ## run the traces test and save each click's trace as docs/observability/trace-<what>.svg
	cargo build --bins
	SAVE_TRACES=1 cargo test -p system-tests --test traces

test-rust: test-infra ## unit and integration tests against real servers
	@if cargo nextest --version >/dev/null 2>&1; then \
		cargo nextest run --workspace --no-fail-fast; \
	else \
		cargo test --workspace --no-fail-fast; \
	fi

test-native: ## `make start` from scratch, every /readyz green, `make stop` leaves nothing behind
	@$(NATIVE)/smoke-test.sh

test-faults: ## the fault suite: outages under load on the native stack, every request counted (docs/reliability.md)
	@project/faults.sh

bench: ## measure every path, each service directly, the ceilings (outside tools) and open-loop latency; writes docs/bench/report.md
	@project/bench.sh bench

flamegraph: ## profile the broker on POST / under wrk (perf + inferno); writes docs/bench/broker-hit.svg
	@project/flamegraph.sh

bench-tracing: ## throughput and p99 through the broker with trace export off, on at 100% and on at 10%; writes docs/bench/tracing.md
	@project/bench.sh tracing

bench-spread: ## each log path through the broker with one logger replica, then two (their shares); writes docs/bench/spread.md
	@project/bench.sh spread

bench-listing: ## GET /logs?limit=10 with 1,000,000 entries in the collection (empties it first); writes docs/bench/listing.md
	@project/bench.sh listing

soak: ## each log transport at concurrency 64 for 5 minutes; writes docs/bench/soak.md
	@project/bench.sh soak

lint: check-fmt clippy check-secrets ## formatting, clippy (warnings as errors), and no secret in any committed file

check-fmt:
	cargo fmt --all --check

clippy:
	cargo clippy --workspace --all-targets --quiet -- -D warnings

check-secrets: ## no password, key or token in any committed file (project/check-secrets.py)
	@python3 project/check-secrets.py --self-test
	@python3 project/check-secrets.py

fmt: ## format the code
	cargo fmt --all

# Docker, Swarm and Kubernetes: up, up-build, down, build-<service>,
# swarm-deploy, swarm-rm, k8s-apply, k8s-delete, lint-deploy.
include project/deploy.mk
