# syntax=docker/dockerfile:1
# gateway: one front door for a team's endpoints (routing by tier, breakers, fallback, MCP and OpenAI aggregation).
# Build from the repository root: docker build -f Dockerfiles/gateway.Dockerfile -t <registry>/gateway:<tag> .
# Without a RunPod queue (RUNPOD_WEBHOOK_GET_JOB) and with PORT set it serves the endpoint API for
# load balancing; --local serves it on 8000. scripts/check-images.sh proves this file on a machine
# without Docker.

FROM swift:6.3-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        ca-certificates pkg-config libcurl4-openssl-dev libpq-dev libhiredis-dev libopenblas-dev libssl-dev python3-venv \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies resolved in a layer of their own: it is rebuilt only when the manifest changes.
# Package.resolved pins every version, so an image builds what the tests ran against.
COPY Package.swift Package.resolved ./
RUN swift package resolve --force-resolved-versions
COPY . .
RUN bash scripts/build-release.sh gateway && mkdir -p /out && strip -o /out/gateway .build-release/release/gateway

FROM debian:bookworm-slim
# Exactly the libraries the binary links (scripts/check-images.sh compares them with ldd),
# without their files a worker never loads (Dockerfiles/dpkg-exclude-unused says which and why).
ARG PACKAGES="libcurl4 libhiredis0.14 libssl3"
COPY Dockerfiles/dpkg-exclude-unused /etc/dpkg/dpkg.cfg.d/worker-exclude-unused
RUN apt-get update && apt-get install -y --no-install-recommends ${PACKAGES} && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/worker --create-home --shell /usr/sbin/nologin worker
COPY --from=build /out/gateway /usr/local/bin/gateway
# CA certificates for TLS: the bundle alone. The ca-certificates package would bring the openssl
# program and its scripts (2.4 MB) that a worker never runs. libcurl reads the bundle at this
# path, OpenSSL (Redis TLS) through SSL_CERT_FILE.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
ENV OPENBLAS_NUM_THREADS=1
WORKDIR /var/lib/worker
USER worker
# Load-balancing mode: RunPod checks HEALTH_CHECK_PATH (/ping) on PORT_HEALTH (else PORT); bash's
# /dev/tcp needs no curl. A queue worker (neither variable set) listens nowhere: its process
# running is its health (probing a default port made every queue container report unhealthy).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s \
    CMD ["bash", "-c", "port=${PORT_HEALTH:-${PORT:-}}; [ -z \"$port\" ] && exit 0; exec 3<>/dev/tcp/127.0.0.1/$port && printf 'GET %s HTTP/1.0\\r\\n\\r\\n' \"${HEALTH_CHECK_PATH:-/ping}\" >&3 && head -c 12 <&3 | grep -q ' 200'"]
ENTRYPOINT ["/usr/local/bin/gateway"]
