# Stand-in for the official postgres:17-bookworm image, for machines that
# cannot pull it (built by project/stand-ins/build.sh).
#
# Kept from the official image: user postgres with uid/gid 999,
# PGDATA=/var/lib/postgresql/data (a VOLUME), the variables POSTGRES_USER
# (default postgres), POSTGRES_PASSWORD, POSTGRES_DB (default: the user) and
# their *_FILE forms (Docker secrets); on an empty data dir: initdb with that
# superuser and password, scram-sha-256 for TCP from anywhere, listen on all
# addresses, the database created by a temporary server on the unix socket
# only, then the scripts in /docker-entrypoint-initdb.d (*.sh run or
# sourced, *.sql fed to psql, in name order, against that server); the
# server runs as PID 1 (STOPSIGNAL SIGINT: a fast shutdown, as the
# official image), pg_isready and psql on PATH, port 5432.
# Not kept: the version is Debian bookworm's PostgreSQL 15, not 17 (a data
# dir made by one does not start with the other); no compressed init
# scripts (*.sql.gz and the like), no POSTGRES_HOST_AUTH_METHOD or
# POSTGRES_INITDB_ARGS; the locale is C.UTF-8.
FROM debian:bookworm-slim

# The ids first, so the package does not pick others.
RUN groupadd --system --gid 999 postgres \
    && useradd --system --uid 999 --gid postgres --home-dir /var/lib/postgresql \
       --shell /bin/bash postgres \
    && mkdir -p /var/lib/postgresql && chown postgres:postgres /var/lib/postgresql

# No cluster of Debian's own (/var/lib/postgresql/15/main): the entrypoint
# makes one in PGDATA.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-common \
    && sed -ri 's/#(create_main_cluster) .*$/\1 = false/' /etc/postgresql-common/createcluster.conf \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && apt-get clean && rm -rf /var/lib/apt/lists/*

ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data \
    LANG=C.UTF-8
RUN mkdir -p "$PGDATA" /var/run/postgresql /docker-entrypoint-initdb.d \
    && chown postgres:postgres "$PGDATA" /var/run/postgresql \
    && chmod 3777 /var/run/postgresql \
    && pg_isready --version
VOLUME /var/lib/postgresql/data

COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENTRYPOINT ["docker-entrypoint.sh"]
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
LABEL org.opencontainers.image.description="stand-in for postgres:17-bookworm (Debian bookworm's PostgreSQL 15)"
