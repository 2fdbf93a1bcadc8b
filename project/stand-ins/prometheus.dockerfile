# Stand-in for the official prom/prometheus:v2.53.2 image, for machines that
# cannot pull it (built by project/stand-ins/build.sh when the profile
# observability is started: make up-observability, the Docker tests).
#
# Kept from the official image: ENTRYPOINT /bin/prometheus with the same
# default command (the configuration /etc/prometheus/prometheus.yml, the
# samples in /prometheus, a VOLUME and the working directory), user nobody
# (65534, numeric), port 9090, the HTTP API and /-/ready, and a `wget` for the health
# check.
# Not kept: the version is Debian bookworm's Prometheus 2.42 (the scrape
# configuration and the API used here are the same); the web console
# templates are Debian's.
FROM debian:bookworm-slim

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends prometheus wget \
    && apt-get clean && rm -rf /var/lib/apt/lists/* \
    && { [ -e /bin/prometheus ] || ln -s /usr/bin/prometheus /bin/prometheus; } \
    && mkdir -p /prometheus && chown nobody:nogroup /prometheus \
    && prometheus --version

USER 65534:65534
WORKDIR /prometheus
VOLUME ["/prometheus"]
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
LABEL org.opencontainers.image.description="stand-in for prom/prometheus:v2.53.2 (Debian bookworm's Prometheus 2.42)"
