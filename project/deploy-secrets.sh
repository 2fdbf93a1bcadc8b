#!/usr/bin/env bash
# The Docker deployments' secrets as files (docs/security.md, "Secrets"):
#
#   project/deploy-secrets.sh ENV_FILE DIR
#
# Reads the settings of ENV_FILE (see project/.env.example) and writes one
# file per secret into DIR, derived from them so that the passwords and the
# connection URLs always agree: postgres_password, database_url,
# mongo_password, mongo_url, rabbitmq_credentials (RabbitMQ's config lines),
# amqp_url, mail_password, and token_key, which is random and made once
# (an existing one is kept, so tokens outlive a redeploy).
#
# compose mounts DIR's files as its secrets (make up runs this); Swarm's
# project/swarm-deploy.sh creates its Docker secrets from them. DIR is its
# owner's only; the files are readable by the containers' non-root users,
# which is what a bind-mounted compose secret needs.
set -euo pipefail

die() { echo "deploy-secrets: $*" >&2; exit 1; }

env_file=${1:?usage: deploy-secrets.sh ENV_FILE DIR}
dir=${2:?usage: deploy-secrets.sh ENV_FILE DIR}
source "$(dirname "${BASH_SOURCE[0]}")/deploy-env.sh"
read_env_file "$env_file"

mkdir -p "$dir"
chmod 700 "$dir"

# write NAME: the file DIR/NAME from stdin, replaced only when it changes.
write() {
  local file=$dir/$1 new
  new=$(mktemp "$dir/.$1.XXXXXX")
  cat >"$new"
  chmod 644 "$new"
  if [ -f "$file" ] && cmp -s "$new" "$file"; then
    rm -f "$new"
  else
    mv -f "$new" "$file"
  fi
}

printf '%s' "$POSTGRES_PASSWORD" | write postgres_password
printf 'postgres://%s:%s@postgres:5432/users' "$POSTGRES_USER" "$POSTGRES_PASSWORD" | write database_url
printf '%s' "$MONGO_PASSWORD" | write mongo_password
printf 'mongodb://%s:%s@mongo:27017/?authSource=admin' "$MONGO_USER" "$MONGO_PASSWORD" | write mongo_url
printf 'default_user = %s\ndefault_pass = %s\n' "$RABBITMQ_USER" "$RABBITMQ_PASSWORD" | write rabbitmq_credentials
printf 'amqp://%s:%s@rabbitmq:5672/%%2f' "$RABBITMQ_USER" "$RABBITMQ_PASSWORD" | write amqp_url
# A Docker secret cannot be empty; the services strip the newline, and an
# empty MAIL_PASSWORD means no password.
printf '%s\n' "${MAIL_PASSWORD:-}" | write mail_password
if [ ! -s "$dir/token_key" ]; then
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | write token_key
fi
