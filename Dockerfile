# One image for all four services; the command picks the service:
#   docker run caravan ingest | ratefeed | indexer | query
# Build stage: a virtual environment of exactly the locked versions (hashes checked) and
# Caravan built with the locked setuptools and setuptools-rust (the chunk table in
# shared/language/chunks is Rust: Debian's cargo builds it from its Cargo.lock). Runtime
# stage: that environment only, no compilers, no caches, non-root. PYTHON_IMAGE swaps the base (tests build on a local
# stand-in; the default is the official image).
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm
FROM ${PYTHON_IMAGE} AS build
# Debian 12's current Rust toolchain is cargo-web (its `cargo` is too old for the lock file).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends cargo-web \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
RUN python3 -m venv /opt/caravan
COPY requirements.lock ./
RUN /opt/caravan/bin/pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
RUN /opt/caravan/bin/pip install --no-cache-dir --no-deps --no-build-isolation . \
 && /opt/caravan/bin/pip uninstall --yes setuptools setuptools-rust semantic-version

FROM ${PYTHON_IMAGE}
# Every service answers /healthz, /readyz (and the workers /metrics) on 8080 in the
# container: the query API on its own port, the workers on their health server's.
ENV PATH=/opt/caravan/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CARAVAN_QUERY_HOST=0.0.0.0 \
    CARAVAN_HEALTH_HOST=0.0.0.0 \
    CARAVAN_HEALTH_PORT=8080
RUN groupadd --system --gid 10001 caravan \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin caravan
COPY --from=build /opt/caravan /opt/caravan
WORKDIR /app
COPY --chown=10001:10001 samples ./samples
# Where compose mounts each service's own Elasticsearch key (a volume per service,
# filled by its `keys` one-off): owned by the service user, as a new volume then is.
RUN install -d -o 10001 -g 10001 -m 0700 /run/keys/indexer /run/keys/query
# Runs with a read-only root filesystem given a writable /tmp (a tmpfs, or Kubernetes'
# emptyDir): ingest parses pages in worker processes, which need a socket directory.
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
EXPOSE 8080
# slim has no curl; the standard library makes the request (a non-2xx raises, exit 1).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3)"]
# On SIGTERM a service stops taking work and gets CARAVAN_SHUTDOWN_GRACE seconds to
# finish what it holds; give the container longer than that (`docker stop -t 30`,
# compose's stop_grace_period, Kubernetes' terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
ENTRYPOINT ["caravan"]
CMD ["query"]
