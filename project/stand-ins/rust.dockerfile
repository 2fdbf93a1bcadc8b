# Stand-in for the official rust:1.95.0-bookworm image, for machines that
# cannot pull it (built by project/stand-ins/build.sh).
#
# Kept from the official image: Debian bookworm, cargo and rustc 1.95 on PATH,
# CARGO_HOME=/usr/local/cargo (so `cargo install` lands in /usr/local/cargo/bin
# on PATH), RUSTUP_HOME=/usr/local/rustup, and a C compiler for crates that
# build C (ring). Not kept: rustup itself (the toolchain is the host's,
# copied in without its documentation) and buildpack-deps' many -dev packages.
#
# The host's CA bundle replaces the Debian one: where outbound TLS passes an
# intercepting proxy, cargo can then still reach crates.io.
FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY toolchain /usr/local/rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    RUST_VERSION=1.95.0
RUN mkdir -p /usr/local/cargo/bin && cargo --version && rustc --version
LABEL org.opencontainers.image.description="stand-in for rust:1.95.0-bookworm (the host's toolchain on debootstrapped Debian)"
