# The env file of the Docker deployments (project/.env; see .env.example),
# read the way docker compose reads it. Sourced by project/deploy-secrets.sh
# and project/swarm-deploy.sh, which define `die`.
# shellcheck shell=bash

# read_env_file FILE: exports its KEY=VALUE lines (comments and blanks
# skipped); a variable already set in the environment wins, as with compose.
read_env_file() {
  local line key value
  [ -f "$1" ] || die "$1 is missing: copy project/.env.example to it and set the values"
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line%$'\r'}
    [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
    [[ $line =~ ^[[:space:]]*([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || die "$1: cannot read line: $line"
    key=${BASH_REMATCH[1]} value=${BASH_REMATCH[2]}
    [ -n "${!key+set}" ] || export "$key=$value"
  done <"$1"
  # Values pasted into URLs must not need percent-encoding.
  for key in POSTGRES_USER POSTGRES_PASSWORD MONGO_USER MONGO_PASSWORD RABBITMQ_USER RABBITMQ_PASSWORD \
    AUTH_DB_PASSWORD LOGGER_DB_PASSWORD AMQP_PASSWORD; do
    value=${!key:-}
    [ -n "$value" ] || die "$key is not set in $1 (see project/.env.example)"
    [[ $value =~ ^[A-Za-z0-9._~-]+$ ]] || die "$key may hold only letters, digits, '.', '_', '~' and '-'"
  done
}
