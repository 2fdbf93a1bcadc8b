# Stand-in for the official caddy:2.10-alpine image, for machines that
# cannot pull it (built by project/stand-ins/build.sh).
#
# Kept from the official image: /usr/bin/caddy with the file capability
# cap_net_bind_service (a non-root user can bind port 80), the default
# /etc/caddy/Caddyfile, /config and /data (VOLUMEs) with
# XDG_CONFIG_HOME=/config and XDG_DATA_HOME=/data, WORKDIR /srv, wget on PATH
# (for health checks), CA certificates and /etc/mime.types, EXPOSE 80 443 and
# the same CMD.
# Not kept: the version is Debian bookworm's Caddy 2.6.2, not 2.10 (Caddyfile
# directives newer than 2.6 are unknown to it), on Debian rather than Alpine
# (no busybox, no apk); no 443/udp (HTTP/3) in EXPOSE.
FROM debian:bookworm-slim

# libcap2-bin only for setcap: the capability stays on the file.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends caddy ca-certificates media-types wget libcap2-bin \
    && setcap cap_net_bind_service=+ep /usr/bin/caddy \
    && apt-get purge -y --auto-remove libcap2-bin \
    && apt-get clean && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /config/caddy /data/caddy /etc/caddy /usr/share/caddy /srv \
    && caddy version

ENV XDG_CONFIG_HOME=/config \
    XDG_DATA_HOME=/data
VOLUME /config /data
WORKDIR /srv
EXPOSE 80 443
CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
LABEL org.opencontainers.image.description="stand-in for caddy:2.10-alpine (Debian bookworm's Caddy 2.6)"
