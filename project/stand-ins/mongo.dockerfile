# Stand-in for the official mongo:7.0 image, for machines that cannot pull it
# (built by project/stand-ins/build.sh).
#
# Kept from the official image: a MongoDB wire-protocol server on port 27017
# (all addresses), data in /data/db (VOLUME /data/db /data/configdb), user
# mongodb with uid/gid 999, MONGO_INITDB_ROOT_USERNAME and
# MONGO_INITDB_ROOT_PASSWORD (and their *_FILE forms, for Docker secrets):
# on the first start on an empty /data/db the root user is made in `admin`
# with role root, and with both set the server always runs with auth
# (SCRAM-SHA-256); without them it runs without auth. `mongosh --quiet --eval
# "db.adminCommand('ping').ok"` answers as the health check expects.
# Not kept: the server is SecantusDB 0.7.0b3 from PyPI (Python on WiredTiger),
# not mongod, always standalone (no replica set, no --replSet); its data
# files are not mongod's. mongosh is a small pymongo script that only knows
# that ping (mongo-shell.py). No MONGO_INITDB_DATABASE, no
# /docker-entrypoint-initdb.d scripts, no mongod options (extra arguments go
# to secantusd-py).
FROM debian:bookworm-slim

RUN groupadd --system --gid 999 mongodb \
    && useradd --system --uid 999 --gid mongodb --home-dir /data/db mongodb

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && apt-get clean && rm -rf /var/lib/apt/lists/*

# The host's CA bundle, for pip behind a TLS-intercepting proxy. The exact
# pin admits the beta without --pre, which would take beta dependencies too.
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
RUN python3 -m venv /opt/secantusdb \
    && /opt/secantusdb/bin/pip install --no-cache-dir --cert /etc/ssl/certs/ca-certificates.crt \
       secantusdb==0.7.0b3 pymongo \
    && ln -s /opt/secantusdb/bin/secantusd-py /usr/local/bin/secantusd-py \
    && secantusd-py --help >/dev/null

COPY mongo-shell.py /usr/local/bin/mongosh
COPY mongo-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN mkdir -p /data/db /data/configdb \
    && chown mongodb:mongodb /data/db /data/configdb
VOLUME /data/db /data/configdb

ENTRYPOINT ["docker-entrypoint.sh"]
EXPOSE 27017
CMD ["mongod"]
LABEL org.opencontainers.image.description="stand-in for mongo:7.0 (SecantusDB 0.7.0b3, a MongoDB wire-compatible server from PyPI)"
