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
# 3. Labels a single-node swarm's node for the three databases (on more
#    nodes, fails unless each label is on a node: docs/deploy.md).
# 4. Runs `docker stack deploy` with the settings in the environment, which
#    swarm.yml interpolates (user names, mail settings, IMAGE_PREFIX, TAG).
#    SWARM_FILES names more stack files laid over swarm.yml (the tests'
#    project/docker/swarm-test.yml); SWARM_DEPLOY_FLAGS adds flags to the
#    deploy (e.g. --with-registry-auth for a registry that wants a login).
set -euo pipefail
cd "$(dirname "$0")/.."

stack=${1:-microservices}
env_file=${ENV_FILE:-project/.env}

die() { echo "swarm-deploy: $*" >&2; exit 1; }

docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null | grep -qx active \
  || die "this Docker engine is not part of a swarm (docker swarm init)"

source project/deploy-env.sh
read_env_file "$env_file"

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
for name in postgres_password database_url mongo_password mongo_url rabbitmq_config rabbitmq_definitions amqp_url mail_password token_key; do
  secret "$name"
done

# The databases run on the node that carries their label (swarm.yml): a
# swarm of one node gets the three labels here; on more nodes each label
# must be on the node that keeps that database's volume.
nodes=$(docker node ls -q)
labels=$(xargs docker node inspect --format '{{range $k, $v := .Spec.Labels}}{{$k}}={{$v}} {{end}}' <<<"$nodes")
for label in postgres mongo rabbitmq; do
  grep -qw -- "$label=true" <<<"$labels" && continue
  if [ "$(wc -l <<<"$nodes")" -eq 1 ]; then
    docker node update --label-add "$label=true" "$nodes" >/dev/null
    echo "node label $label=true: added to this swarm's one node"
  else
    die "no node has the label $label=true, which places the stack's $label: docker node update --label-add $label=true NODE (the node that keeps its volume; docs/deploy.md)"
  fi
done

files=(-c project/swarm.yml)
for file in ${SWARM_FILES:-}; do
  files+=(-c "$file")
done
# shellcheck disable=SC2086
docker stack deploy --prune ${SWARM_DEPLOY_FLAGS:-} "${files[@]}" "$stack"
echo "stack $stack deployed: docker stack services $stack"
