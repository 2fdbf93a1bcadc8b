#!/usr/bin/env bash
# Makes every base and infrastructure image that the Dockerfiles, the compose
# file and the Swarm stack name available under its official name
# (`make stand-ins`; `make up`, `make up-build` and `make build-*` run it
# first).
#
#   project/stand-ins/build.sh [--force] [IMAGE ...]
#
# For each image: nothing happens when the engine already has it; otherwise
# it is pulled; only when the pull fails (no registry can be reached) is a
# local stand-in built under the official name from Debian, PyPI and npm
# packages. Each stand-in's Dockerfile in this folder says in its header what
# it stands in for and which part of the official image's contract it keeps.
# --force rebuilds the named stand-ins (all without names) without pulling.
#
#   debian:bookworm-slim       debootstrap --variant=minbase bookworm
#   rust:1.95.0-bookworm       that base, gcc, and the host's Rust toolchain
#   gcr.io/distroless/cc-debian12:nonroot
#                              that base's C runtime, no shell (distroless-cc.dockerfile)
#   postgres:17-bookworm       Debian postgresql-15          (postgres.dockerfile)
#   mongo:7.0                  secantusdb from PyPI          (mongo.dockerfile)
#   rabbitmq:3.13-management   Debian rabbitmq-server        (rabbitmq.dockerfile)
#   axllent/mailpit:v1.27      maildev from npm              (mailpit.dockerfile)
#   caddy:2.10-alpine          Debian caddy                  (caddy.dockerfile)
#   prom/prometheus:v2.53.2    Debian prometheus             (prometheus.dockerfile)
#
# The last is built only when named (the profile observability: make
# up-observability, the Docker tests); Jaeger and Grafana have no stand-in
# (no Debian, PyPI or npm package ships either: docs/deploy.md).
#
# The host's CA bundle is added to the stand-ins that fetch over HTTPS while
# building (the Rust builder: cargo; the PyPI and npm ones): where outbound
# TLS passes an intercepting proxy, its CA is in the host's bundle only. The
# shipped Dockerfiles stay as they are for a machine with a registry.
#
# Settings: DOCKER (docker CLI, default docker), DEBIAN_MIRROR
# (http://deb.debian.org/debian), CA_BUNDLE (/etc/ssl/certs/ca-certificates.crt).
set -euo pipefail
cd "$(dirname "$0")"
here=$PWD

DOCKER=${DOCKER:-docker}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
export DOCKER_BUILDKIT=1

# In build order: every stand-in but the first is built FROM the first.
IMAGES=(
  debian:bookworm-slim
  rust:1.95.0-bookworm
  gcr.io/distroless/cc-debian12:nonroot
  postgres:17-bookworm
  mongo:7.0
  rabbitmq:3.13-management
  axllent/mailpit:v1.27
  caddy:2.10-alpine
  prom/prometheus:v2.53.2
)
# Built when named only.
OPTIONAL=(prom/prometheus:v2.53.2)

say() { printf '==> stand-ins: %s\n' "$*"; }
die() { printf 'stand-ins: %s\n' "$*" >&2; exit 1; }

have() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

# A scratch folder for build contexts, removed on exit.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

build_debian() {
  command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
  [ "$(id -u)" = 0 ] || die "debootstrap needs root"
  local rootfs=$scratch/rootfs
  say "debian:bookworm-slim: debootstrap --variant=minbase bookworm from $DEBIAN_MIRROR"
  debootstrap --variant=minbase bookworm "$rootfs" "$DEBIAN_MIRROR" >"$scratch/debootstrap.log" 2>&1 \
    || { tail -n 20 "$scratch/debootstrap.log" >&2; die "debootstrap failed"; }
  # The same sources and the same clean state as the official slim image.
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $DEBIAN_MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${DEBIAN_MIRROR%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # As in the official image: no recommends, no cached lists or packages.
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
    >"$rootfs/etc/apt/apt.conf.d/90stand-in"
  # ... and, as its docker-clean, none left by later apt runs either (the
  # images built FROM this one would otherwise keep every .deb they fetched).
  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/* "$rootfs"/tmp/*
  : >"$rootfs/etc/resolv.conf"
  : >"$rootfs/etc/hostname"
  tar -C "$rootfs" --numeric-owner -c . | "$DOCKER" import \
    -c 'CMD ["bash"]' \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'LABEL org.opencontainers.image.description="stand-in for debian:bookworm-slim (debootstrap minbase)"' \
    - debian:bookworm-slim >/dev/null
  rm -rf "$rootfs"
}

build_rust() {
  local sysroot ctx=$scratch/rust
  command -v rustc >/dev/null || die "the Rust builder stand-in copies the host's toolchain, and rustc is missing"
  sysroot=$(rustc --print sysroot)
  say "rust:1.95.0-bookworm: the host's toolchain ($(rustc --version)) on debian:bookworm-slim"
  mkdir -p "$ctx/toolchain"
  # Everything but the documentation (800 MB of it).
  cp -a "$sysroot/bin" "$sysroot/lib" "$sysroot/libexec" "$sysroot/etc" "$ctx/toolchain/"
  cp "$CA_BUNDLE" "$ctx/ca-certificates.crt"
  cp "$here/rust.dockerfile" "$ctx/Dockerfile"
  "$DOCKER" build -q -t rust:1.95.0-bookworm "$ctx" >/dev/null
  rm -rf "$ctx"
}

# A stand-in from this folder: <short name>.dockerfile, with this folder (and
# the host's CA bundle) as its context.
build_dockerfile() {
  local image=$1 file=$2 ctx=$scratch/$2
  say "$image: $file"
  mkdir -p "$ctx"
  cp -a "$here"/. "$ctx/"
  cp "$CA_BUNDLE" "$ctx/ca-certificates.crt"
  "$DOCKER" build -q -f "$ctx/$file" -t "$image" "$ctx" >/dev/null
  rm -rf "$ctx"
}

build() {
  case $1 in
    debian:bookworm-slim) build_debian ;;
    rust:1.95.0-bookworm) build_rust ;;
    gcr.io/distroless/cc-debian12:nonroot) build_dockerfile "$1" distroless-cc.dockerfile ;;
    postgres:17-bookworm) build_dockerfile "$1" postgres.dockerfile ;;
    mongo:7.0) build_dockerfile "$1" mongo.dockerfile ;;
    rabbitmq:3.13-management) build_dockerfile "$1" rabbitmq.dockerfile ;;
    axllent/mailpit:v1.27) build_dockerfile "$1" mailpit.dockerfile ;;
    caddy:2.10-alpine) build_dockerfile "$1" caddy.dockerfile ;;
    prom/prometheus:v2.53.2) build_dockerfile "$1" prometheus.dockerfile ;;
    *) die "no stand-in for $1 (known: ${IMAGES[*]})" ;;
  esac
}

force=false
if [ "${1:-}" = --force ]; then
  force=true
  shift
fi
wanted=("$@")
if [ ${#wanted[@]} -eq 0 ]; then
  for image in "${IMAGES[@]}"; do
    [[ " ${OPTIONAL[*]} " == *" $image "* ]] || wanted+=("$image")
  done
fi

"$DOCKER" info >/dev/null 2>&1 || die "no Docker engine answers (is dockerd running?)"

for image in "${IMAGES[@]}"; do
  [[ " ${wanted[*]} " == *" $image "* ]] || continue
  if $force; then
    build "$image"
    continue
  fi
  have "$image" && continue
  if "$DOCKER" pull -q "$image" >/dev/null 2>&1; then
    say "$image: pulled"
    continue
  fi
  # Every other stand-in is built on the Debian base.
  [ "$image" = debian:bookworm-slim ] || have debian:bookworm-slim || build debian:bookworm-slim
  build "$image"
done
say "all images present: ${wanted[*]}"
