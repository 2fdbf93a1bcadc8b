# Stand-in for the official axllent/mailpit:v1.27 image, for machines that
# cannot pull it (built by project/stand-ins/build.sh).
#
# Kept from the official image: a mail catcher with SMTP on 0.0.0.0:1025 and
# the web UI and HTTP API on 0.0.0.0:8025, MP_SMTP_BIND_ADDR and
# MP_UI_BIND_ADDR ([IP]:PORT), ENTRYPOINT /mailpit (no arguments: the
# server) and `/mailpit readyz` for the health check.
# Not kept: the catcher is MailDev 2.2.1 from npm (the version the native
# stack pins) on Debian's Node.js 18, so the UI and its REST API are
# MailDev's (GET /email lists the messages), not Mailpit's /api/v1; no other
# MP_* variables or mailpit flags; messages live in a temporary directory
# and are gone on restart (as with mailpit's default database).
FROM debian:bookworm-slim

RUN groupadd --system --gid 999 mailpit \
    && useradd --system --uid 999 --gid mailpit --home-dir /nonexistent \
       --shell /usr/sbin/nologin mailpit

# npm only to install: purged afterwards with its many node-* packages. The
# host's CA bundle lets npm through a TLS-intercepting proxy; it is not put
# over Debian's, which the ca-certificates package (npm's) rewrites.
COPY ca-certificates.crt /tmp/host-ca-certificates.crt
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
    && npm install --global --omit=dev --no-audit --no-fund \
       --cafile=/tmp/host-ca-certificates.crt maildev@2.2.1 \
    && apt-get purge -y --auto-remove npm \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /root/.npm /tmp/host-ca-certificates.crt \
    && node /usr/local/lib/node_modules/maildev/bin/maildev --version

COPY mailpit.sh /mailpit
USER 999:999
EXPOSE 1025 8025
ENTRYPOINT ["/mailpit"]
LABEL org.opencontainers.image.description="stand-in for axllent/mailpit:v1.27 (MailDev 2.2.1 from npm)"
