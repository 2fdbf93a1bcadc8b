# Stand-in for the official rabbitmq:3.13-management image, for machines
# that cannot pull it (built by project/stand-ins/build.sh).
#
# Kept from the official image: RabbitMQ with the management plugin (AMQP on
# 5672, UI and HTTP API on 15672, all interfaces), RABBITMQ_DEFAULT_USER /
# RABBITMQ_DEFAULT_PASS (default guest/guest), configuration files in
# /etc/rabbitmq/conf.d/*.conf (a Swarm secret can be one), data in
# /var/lib/rabbitmq (a VOLUME) under a node name that follows the host name,
# user rabbitmq with uid/gid 999, logs on stdout, HOME=/var/lib/rabbitmq so
# the CLI run as root (`docker exec ... rabbitmq-diagnostics -q ping`) finds
# the Erlang cookie, and the server's own start script as PID 1, which
# stops the node cleanly on SIGTERM.
# Not kept: the version is Debian bookworm's RabbitMQ 3.10 on Erlang 25, not
# 3.13 (a node's data dir does not move between them); guest may log in from
# localhost only (RabbitMQ's default; the official image allows it from
# anywhere); no deprecated RABBITMQ_* variables beyond those two.
FROM debian:bookworm-slim

# The ids first, so the package does not pick others.
RUN groupadd --system --gid 999 rabbitmq \
    && useradd --system --uid 999 --gid rabbitmq --home-dir /var/lib/rabbitmq \
       --shell /bin/sh rabbitmq

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends rabbitmq-server \
    && apt-get clean && rm -rf /var/lib/apt/lists/* \
    && rabbitmq-plugins enable --offline rabbitmq_management \
    && rm -f /var/lib/rabbitmq/.erlang.cookie \
    && mkdir -p /etc/rabbitmq/conf.d \
    && chown -R rabbitmq:rabbitmq /var/lib/rabbitmq /var/log/rabbitmq

COPY rabbitmq-defaults.conf /etc/rabbitmq/conf.d/10-defaults.conf
COPY rabbitmq-entrypoint.sh /usr/local/bin/docker-entrypoint.sh

# The package's postinst made an Erlang cookie: removed above, so that no two
# nodes share one; the entrypoint makes each its own. The scripts themselves
# first on PATH: Debian's /usr/sbin wrappers would switch to the rabbitmq user
# through su. conf.d is RabbitMQ 3.10's default too; named here to be sure.
ENV PATH=/usr/lib/rabbitmq/bin:$PATH \
    HOME=/var/lib/rabbitmq \
    RABBITMQ_CONFIG_FILES=/etc/rabbitmq/conf.d
VOLUME /var/lib/rabbitmq

ENTRYPOINT ["docker-entrypoint.sh"]
EXPOSE 4369 5671 5672 15671 15672 25672
CMD ["rabbitmq-server"]
LABEL org.opencontainers.image.description="stand-in for rabbitmq:3.13-management (Debian bookworm's RabbitMQ 3.10 with the management plugin)"
