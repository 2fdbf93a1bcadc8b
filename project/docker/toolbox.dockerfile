# The Docker tests' toolbox: curl beside a container whose image has none
# (`docker run --network container:ID`: its network, its names). Test only.
FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/*
