# The edge proxy of the Docker and Swarm deployments: Caddy with this
# project's Caddyfile baked in (the test page at /, the broker at /api).
#
# Build from the workspace root (or with `make build-caddy`):
#   docker build -f project/caddy.dockerfile -t microservices/caddy .
FROM caddy:2.10-alpine

COPY project/Caddyfile /etc/caddy/Caddyfile
# Fail the build, not the deployment, on a broken Caddyfile; then run as an
# unprivileged user (uid 10001, as the six service images) that owns Caddy's
# state directories. Numeric ids need no user database entry. The image's
# caddy binary carries cap_net_bind_service, so it can still bind port 80.
RUN caddy validate --adapter caddyfile --config /etc/caddy/Caddyfile \
    && chown -R 10001:10001 /config /data

USER 10001:10001
EXPOSE 80
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1/healthz"]
