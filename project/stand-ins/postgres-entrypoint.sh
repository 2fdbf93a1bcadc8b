#!/usr/bin/env bash
# The postgres stand-in's entrypoint: the official image's variables, in short.
set -eu

# VAR from $VAR or from the file named by $VAR_FILE (Docker secrets).
file_env() {
  local var=$1 file_var=${1}_FILE default=${2:-}
  if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
    echo "postgres: both $var and $file_var are set" >&2
    exit 1
  fi
  local value=$default
  if [ -n "${!var:-}" ]; then
    value=${!var}
  elif [ -n "${!file_var:-}" ]; then
    value=$(<"${!file_var}")
  fi
  export "$var=$value"
  unset "$file_var"
}

# `docker run IMAGE -c foo=bar` passes options to the server.
case ${1:-} in
  -*) set -- postgres "$@" ;;
esac

if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
  # A fresh named volume is root's: give it to postgres, then run this script
  # again as postgres.
  mkdir -p "$PGDATA"
  chown postgres:postgres "$PGDATA"
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  file_env POSTGRES_USER postgres
  file_env POSTGRES_PASSWORD
  file_env POSTGRES_DB "$POSTGRES_USER"
  if [ -z "$POSTGRES_PASSWORD" ]; then
    echo "postgres: the database is uninitialized and POSTGRES_PASSWORD is not set" >&2
    exit 1
  fi
  # The superuser is POSTGRES_USER; the socket inside the container trusts,
  # TCP asks for the password.
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8
  printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
  printf "listen_addresses = '*'\n" >>"$PGDATA/postgresql.conf"

  # A temporary server on the socket only: TCP health checks stay red.
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
  if [ "$POSTGRES_DB" != postgres ]; then
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
      -v db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  fi
  # As upstream: the init scripts in name order, against that temporary
  # server; a .sh is run if executable and sourced otherwise, a .sql is fed
  # to psql in POSTGRES_DB; anything else is ignored.
  for f in /docker-entrypoint-initdb.d/*; do
    case $f in
      *.sh)
        echo "postgres: running $f"
        if [ -x "$f" ]; then "$f"; else . "$f"; fi
        ;;
      *.sql)
        echo "postgres: running $f"
        psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -f "$f"
        ;;
      *) if [ -e "$f" ]; then echo "postgres: ignoring $f"; fi ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop
  echo "postgres: init done, starting the server"
fi

exec "$@"
