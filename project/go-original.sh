#!/usr/bin/env bash
# The Go original's broker, built and run beside this stack so that the
# bench compares `POST /` with it in the same run, with the same load tool
# (docs/bench/README.md, "Against the Go original").
#
#   project/go-original.sh start   build it (once) and start it on port 80
#   project/go-original.sh stop    stop the one this script started
#
# The source is the course repository at a pinned commit: GO_ORIGINAL_REPO
# is anything `git clone` takes (default: GitHub; a local clone or mirror
# works offline). Its Go modules cannot always be fetched, so it is built in
# GOPATH mode with Debian's Go toolchain and its golang-*-dev library
# packages. Three changes are made; every route and middleware is left as
# it is:
#   - POST / (`Broker`) loses its one call that publishes a "broker_hit"
#     event to RabbitMQ: at this commit the author's broker sends one per
#     hit (on a new channel each time, about 600 hits/s here), while the
#     course's published broker, and this project's contract
#     (docs/contracts.md), answer the hit with the JSON alone. What is
#     measured is then the Go hit path as the course has it: chi, cors,
#     the heartbeat middleware and a JSON answer;
#   - the etcd service discovery (cmd/api/discover.go, the Config's Etcd
#     field) goes: its calls are commented out in main() at this commit,
#     and Debian has no etcd client v3 package;
#   - google.golang.org/grpc/credentials/insecure, which Debian's grpc 1.33
#     lacks (it came in grpc 1.34), is supplied: a transport credential that
#     hands the connection back unchanged, which is all that package does.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/native/common.sh"

REPO=${GO_ORIGINAL_REPO:-https://github.com/tsawler/go-microservices.git}
COMMIT=301cd369d52951cfdd3c991a44ae9b44ba42aa36
# The original listens on port 80, written into its source.
PORT=80
OUT=$ROOT/target/go-original
BINARY=$OUT/broker-$COMMIT-hit
PID_FILE=$RUN_DIR/go-original-broker.pid
LOG_FILE=$RUN_DIR/go-original-broker.log

build() {
  [ -x "$BINARY" ] && return
  say "building the Go original's broker ($REPO at ${COMMIT:0:7})"
  command -v go >/dev/null || apt_install golang-go
  apt_install golang-github-go-chi-chi-dev golang-github-go-chi-cors-dev \
    golang-github-rabbitmq-amqp091-go-dev golang-google-grpc-dev golang-google-protobuf-dev
  local work
  work=$(mktemp -d)
  # shellcheck disable=SC2064 # the path is fixed now
  trap "rm -rf '$work'" RETURN
  timeout 120 git clone --quiet --no-checkout "$REPO" "$work/repo"
  git -C "$work/repo" archive "$COMMIT" broker-service | tar -x -C "$work"
  local src=$work/broker-service
  rm "$src/cmd/api/discover.go"
  sed -i '/"go.etcd.io\/etcd\/client\/v3"/d; /^\tEtcd  *\*clientv3\.Client$/d' "$src/cmd/api/main.go"
  ! grep -rq clientv3 --include='*.go' "$src" || die "etcd is still used at ${COMMIT:0:7}"
  # The four lines of the publish in Broker: the call and its error check.
  sed -i '/err := app.pushToQueue("broker_hit", r.RemoteAddr)/,+3d' "$src/cmd/api/handlers.go"
  ! grep -q '"broker_hit"' "$src/cmd/api/handlers.go" || die "Broker still publishes at ${COMMIT:0:7}"
  local gopath=$work/gopath
  mkdir -p "$gopath/src/google.golang.org/grpc/credentials/insecure"
  ln -s "$src" "$gopath/src/broker"
  cat >"$gopath/src/google.golang.org/grpc/credentials/insecure/insecure.go" <<'GO'
// Package insecure: transport credentials that add no security, for
// Debian's grpc 1.33, which does not have this package.
package insecure

import (
	"context"
	"net"

	"google.golang.org/grpc/credentials"
)

func NewCredentials() credentials.TransportCredentials { return plain{} }

type plain struct{}

type plainInfo struct{ credentials.CommonAuthInfo }

func (plainInfo) AuthType() string { return "insecure" }

func none() credentials.AuthInfo {
	return plainInfo{credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}}
}

func (plain) ClientHandshake(_ context.Context, _ string, c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c, none(), nil
}

func (plain) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return c, none(), nil
}

func (plain) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "insecure"}
}

func (plain) Clone() credentials.TransportCredentials { return plain{} }

func (plain) OverrideServerName(string) error { return nil }
GO
  mkdir -p "$OUT"
  # Debian's tree first, where grpc is; the broker and the stand-in after.
  (cd "$gopath/src/broker" &&
    GO111MODULE=off GOPROXY=off GOFLAGS= GOPATH=/usr/share/gocode:$gopath \
      go build -o "$BINARY.tmp" ./cmd/api)
  mv "$BINARY.tmp" "$BINARY"
}

case ${1:-} in
start)
  build
  if pid_running "$PID_FILE" "$BINARY"; then
    say "the Go original's broker already runs (pid $(cat "$PID_FILE"))"
    exit 0
  fi
  ! port_open 127.0.0.1 "$PORT" || die "port $PORT is taken; the Go original listens there"
  mkdir -p "$RUN_DIR"
  # It dials RabbitMQ at start (the native stack's, as its broker does) and
  # keeps the connection; nothing else.
  rabbit_url=${GO_ORIGINAL_RABBIT_URL:-$(cat "$SECRETS_DIR/amqp_url" 2>/dev/null || echo amqp://guest:guest@127.0.0.1:5672/)}
  RABBIT_URL=$rabbit_url setsid "$BINARY" >"$LOG_FILE" 2>&1 &
  echo $! >"$PID_FILE"
  wait_port "the Go original's broker (log: $LOG_FILE)" 127.0.0.1 "$PORT" 40
  say "the Go original's broker answers on http://127.0.0.1:$PORT"
  ;;
stop)
  stop_pid "the Go original's broker" "$PID_FILE" "$BINARY"
  ;;
*)
  die "usage: $0 start|stop"
  ;;
esac
