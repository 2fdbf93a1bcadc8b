#!/usr/bin/env bash
# The Docker and Kubernetes deployments' secrets as files (docs/security.md,
# "Secrets"):
#
#   project/deploy-secrets.sh ENV_FILE DIR
#
# Reads the settings of ENV_FILE (see project/.env.example) and writes one
# file per secret into DIR, derived from them so that the passwords and the
# connection URLs always agree:
#   postgres_password     the PostgreSQL superuser's (the postgres container)
#   database_url          authentication-service's, as its own role
#                         `authentication` (made by project/initdb/authentication.sh)
#   mongo_password        MongoDB's root user's (the mongo container)
#   mongo_url             logger-service's, as its own user `logger` in
#                         `logs` (made by project/initdb/logger.js)
#   rabbitmq_config       a RabbitMQ config file: load rabbitmq_definitions
#   rabbitmq_definitions  RabbitMQ's users, vhosts and permissions, imported
#                         at every boot: the administrator RABBITMQ_USER on
#                         `/`, and `microservices` on its own vhost only,
#                         without tags (password hashes, not passwords)
#   amqp_url              the broker's and the listener's, as `microservices`
#   mail_password         the SMTP relay's
#   token_key             random, made once (an existing one is kept, so
#                         tokens outlive a redeploy)
#
# compose mounts DIR's files as its secrets (make up runs this); Swarm's
# project/swarm-deploy.sh creates its Docker secrets from them; Kubernetes'
# kustomization generates its Secret from them (make k8s-secrets). DIR is
# its owner's only; the files are readable by the containers' non-root
# users, which is what a bind-mounted compose secret needs.
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

# The services' own users: fixed names, as natively (project/native/infra.sh).
auth_role=authentication logger_user=logger amqp_user=microservices amqp_vhost=microservices
[ "$RABBITMQ_USER" != "$amqp_user" ] || die "RABBITMQ_USER must not be $amqp_user: that is the services' own user"

printf '%s' "$POSTGRES_PASSWORD" | write postgres_password
printf 'postgres://%s:%s@postgres:5432/users' "$auth_role" "$AUTH_DB_PASSWORD" | write database_url
printf '%s' "$MONGO_PASSWORD" | write mongo_password
printf 'mongodb://%s:%s@mongo:27017/logs' "$logger_user" "$LOGGER_DB_PASSWORD" | write mongo_url
printf 'amqp://%s:%s@rabbitmq:5672/%s' "$amqp_user" "$AMQP_PASSWORD" "$amqp_vhost" | write amqp_url

# RabbitMQ's password hash (rabbit_password_hashing_sha256): base64 of a
# 4-byte salt followed by SHA-256(salt ++ password). The salt is random, or
# the one of the hash already in DIR when that hash still matches the
# password, so an unchanged password leaves the file as it is.
hex() { od -An -tx1 | tr -d ' \n'; }
unhex() { printf '%b' "$(sed 's/../\\x&/g')"; }
rabbit_hash() {
  local user=$1 password=$2 old salt digest
  old=$(sed -n "s/.*\"name\": \"$user\", \"password_hash\": \"\([^\"]*\)\".*/\1/p" \
    "$dir/rabbitmq_definitions" 2>/dev/null | head -n 1)
  if [ -n "$old" ]; then
    salt=$(base64 -d <<<"$old" | head -c 4 | hex)
  else
    salt=$(head -c 4 /dev/urandom | hex)
  fi
  digest=$({ unhex <<<"$salt"; printf '%s' "$password"; } | sha256sum | cut -d' ' -f1)
  unhex <<<"$salt$digest" | base64 -w0
}
admin_hash=$(rabbit_hash "$RABBITMQ_USER" "$RABBITMQ_PASSWORD")
amqp_hash=$(rabbit_hash "$amqp_user" "$AMQP_PASSWORD")
write rabbitmq_definitions <<EOF
{
  "users": [
    {"name": "$RABBITMQ_USER", "password_hash": "$admin_hash", "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": "administrator"},
    {"name": "$amqp_user", "password_hash": "$amqp_hash", "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ""}
  ],
  "vhosts": [{"name": "/"}, {"name": "$amqp_vhost"}],
  "permissions": [
    {"user": "$RABBITMQ_USER", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"},
    {"user": "$RABBITMQ_USER", "vhost": "$amqp_vhost", "configure": ".*", "write": ".*", "read": ".*"},
    {"user": "$amqp_user", "vhost": "$amqp_vhost", "configure": ".*", "write": ".*", "read": ".*"}
  ]
}
EOF
# Mounted into RabbitMQ's conf.d (the definitions beside the other secrets).
printf 'load_definitions = /run/secrets/rabbitmq_definitions\n' | write rabbitmq_config
# A Docker secret cannot be empty; the services strip the newline, and an
# empty MAIL_PASSWORD means no password.
printf '%s\n' "${MAIL_PASSWORD:-}" | write mail_password
if [ ! -s "$dir/token_key" ]; then
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | write token_key
fi
