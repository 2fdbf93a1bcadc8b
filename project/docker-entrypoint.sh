#!/bin/sh
# Entrypoint of the six service images.
#
# The services read their settings from environment variables only. Docker
# (Swarm) secrets and Kubernetes secret volumes arrive as files, so for every
# variable NAME_FILE that is set, this exports NAME with the file's content
# (trailing newlines removed) and unsets NAME_FILE, then replaces itself with
# the service, which so runs as PID 1 and gets SIGTERM directly.
#
# Example: DATABASE_URL_FILE=/run/secrets/database_url sets DATABASE_URL.
# Setting both NAME and NAME_FILE is an error, as is an unreadable file.
set -eu

for name in $(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)_FILE=.*/\1/p'); do
  file=$(printenv "${name}_FILE" || true)
  [ -n "$file" ] || continue
  if [ -n "$(printenv "$name" || true)" ]; then
    echo "docker-entrypoint: both $name and ${name}_FILE are set; set only one" >&2
    exit 2
  fi
  if ! value=$(cat -- "$file"); then
    echo "docker-entrypoint: ${name}_FILE=$file cannot be read" >&2
    exit 2
  fi
  export "$name=$value"
  unset "${name}_FILE"
done

exec "$@"
