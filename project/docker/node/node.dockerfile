# A Swarm node for the three-node test (project/docker/nodes.sh): a Docker
# engine of its own inside a privileged container, with its own address on
# the test's bridge network, its own /var/lib/docker (a volume) and its own
# swarm state. Test only: never deployed.
FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends docker.io iptables socat curl ca-certificates procps \
    && rm -rf /var/lib/apt/lists/*
COPY node-entrypoint.sh /usr/local/bin/node-entrypoint.sh
VOLUME /var/lib/docker
ENTRYPOINT ["/usr/local/bin/node-entrypoint.sh"]
