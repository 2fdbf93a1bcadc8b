#!/usr/bin/env bash
# `make bench` / `make soak`: measures the native stack built in release mode
# with quiet logging. Starts the stack if it is not running, and then stops
# it again at the end; a stack that was already running is reused and left
# running (its logging level is whatever it was started with).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/native/common.sh"

mode=${1:-bench}
export PROFILE=release
export RUST_LOG=${BENCH_RUST_LOG:-warn}
# The load comes from one client: the per-client limits on logins and mails
# would measure themselves (docs/security.md). The bench signs its token
# with the stack's key.
export LOGIN_LIMIT_PER_MINUTE=${LOGIN_LIMIT_PER_MINUTE:-0}
export MAIL_LIMIT_PER_MINUTE=${MAIL_LIMIT_PER_MINUTE:-0}
# 64 logins at once on one bcrypt slot wait up to 64 × 53 ms = 3.4 s: the
# flood guard's 2 s would answer a third of them 503, by design. The bench
# lets them queue for 5 s, to measure the login rate rather than the guard.
export BCRYPT_QUEUE_SECS=${BCRYPT_QUEUE_SECS:-5}
use_token_key

# The outside tools that measure the ceilings (docs/bench/README.md): wrk,
# and postfix for its smtp-source, left unconfigured so that no mail server
# starts; pymongo comes with the MongoDB-compatible server's venv.
if [ "$mode" = bench ]; then
  missing=()
  command -v wrk >/dev/null || missing+=(wrk)
  [ -x /usr/sbin/smtp-source ] || missing+=(postfix)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} (the bench's outside tools)"
    echo "postfix postfix/main_mailer_type select No configuration" | as_root debconf-set-selections
    apt_install "${missing[@]}"
  fi
fi

started=
if port_open 127.0.0.1 8080; then
  warn "a stack is already running: measuring it as it is"
else
  "$ROOT/project/native/start.sh"
  started=1
fi
trap '[ -z "$started" ] || "$ROOT/project/native/stop.sh"' EXIT

# The Go original's figures are recorded data with their date and method
# (support/bench/src/anchor.rs): the repository never fetches or builds it.

(cd "$ROOT" && cargo build --quiet --release -p bench)
cd "$ROOT"
BENCH_PYTHON=${BENCH_PYTHON:-$INFRA_DIR/venv/bin/python} RUN_DIR=$RUN_DIR "$ROOT/target/release/bench" "$mode"
