# front-end: serves the test page (HTTP 8081).
#
# Build from the workspace root (or with `make build-front-end`):
#   docker build -f front-end/front-end.dockerfile -t microservices/front-end .
#
# The chef, planner and builder stages are the same, word for word, in all six
# service dockerfiles: BuildKit builds the workspace once and every image
# reuses those layers. Only the runtime stage differs.

# --- build ---------------------------------------------------------------
FROM rust:1.95.0-bookworm AS chef
# The images' binaries without their symbol tables (a third of their size);
# the native release build keeps them, for the profiles (make flamegraph).
ENV CARGO_PROFILE_RELEASE_STRIP=symbols
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

# The recipe lists the workspace's manifests and lock file only, so the
# dependency layer below is rebuilt only when those change.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --workspace --bins --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --workspace --bins

# --- runtime -------------------------------------------------------------
# distroless: the C runtime and CA certificates, no shell, no package
# manager (docs/deploy.md, "Images"). The health check is the binary itself
# (`<binary> healthcheck` asks its own /healthz), and the service reads
# Docker secrets (NAME_FILE) itself, so no shell runs before it and no
# secret reaches its environment.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /src/target/release/front-end /usr/local/bin/front-end
# Natively the service listens on 127.0.0.1; in a container on every interface.
ENV HTTP_ADDR=0.0.0.0:8081 \
    LOG_FORMAT=json
USER 10001:10001
EXPOSE 8081
# Liveness only: compose, Swarm and Kubernetes probe /readyz themselves.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/front-end", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/front-end"]
