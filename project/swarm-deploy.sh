#!/usr/bin/env bash
# Deploys project/swarm.yml as a Docker Swarm stack (`make swarm-deploy`).
#
#   project/swarm-deploy.sh [STACK]          STACK defaults to microservices
#
# 1. Reads the settings from ENV_FILE (default project/.env; see .env.example).
# 2. Creates each Docker secret the stack uses that does not exist yet, with
#    values derived from those settings by project/deploy-secrets.sh (the
#    same files compose mounts), so the passwords and the connection URLs
#    always agree. Existing secrets are left alone: Docker secrets are
#    immutable (see docs/deploy.md for rotation).
# 3. Runs `docker stack deploy` with the settings in the environment, which
#    swarm.yml interpolates (user names, mail settings, IMAGE_PREFIX, TAG).
#    SWARM_FILES names more stack files laid over swarm.yml (the tests'
#    project/docker/swarm-test.yml); SWARM_DEPLOY_FLAGS adds flags to the
#    deploy (the tests' --resolve-image never: their images are local).
set -euo pipefail
cd "$(dirname "$0")/.."

stack=${1:-microservices}
env_file=${ENV_FILE:-project/.env}

die() { echo "swarm-deploy: $*" >&2; exit 1; }

[ -f "$env_file" ] || die "$env_file is missing: copy project/.env.example to it and set the values"
docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null | grep -qx active \
  || die "this Docker engine is not part of a swarm (docker swarm init)"

# KEY=VALUE lines, as docker compose reads them; comments and blanks skipped.
# Variables already set in the environment win, as with compose.
while IFS= read -r line || [ -n "$line" ]; do
  line=${line%$'\r'}
  [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
  [[ $line =~ ^[[:space:]]*([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || die "$env_file: cannot read line: $line"
  key=${BASH_REMATCH[1]} value=${BASH_REMATCH[2]}
  [ -n "${!key+set}" ] || export "$key=$value"
done < "$env_file"

# Values pasted into URLs must not need percent-encoding.
for key in POSTGRES_USER POSTGRES_PASSWORD MONGO_USER MONGO_PASSWORD RABBITMQ_USER RABBITMQ_PASSWORD; do
  value=${!key:-}
  [ -n "$value" ] || die "$key is not set in $env_file"
  [[ $value =~ ^[A-Za-z0-9._~-]+$ ]] || die "$key may hold only letters, digits, '.', '_', '~' and '-'"
done

# Creates secret $1 from the file of that name in $secrets unless it already
# exists.
secret() {
  if docker secret inspect "$1" >/dev/null 2>&1; then
    echo "secret $1: exists, kept"
  else
    docker secret create "$1" "$secrets/$1" >/dev/null
    echo "secret $1: created"
  fi
}

# The same files compose mounts (project/deploy-secrets.sh), made in a
# directory of this run only; the token key among them is random.
secrets=$(mktemp -d)
trap 'rm -rf "$secrets"' EXIT
project/deploy-secrets.sh "$env_file" "$secrets"
for name in postgres_password database_url mongo_password mongo_url rabbitmq_credentials amqp_url mail_password token_key; do
  secret "$name"
done

files=(-c project/swarm.yml)
for file in ${SWARM_FILES:-}; do
  files+=(-c "$file")
done
# shellcheck disable=SC2086
docker stack deploy --prune ${SWARM_DEPLOY_FLAGS:-} "${files[@]}" "$stack"
echo "stack $stack deployed: docker stack services $stack"
