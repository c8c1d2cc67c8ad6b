# One image for all four services; the command picks the service:
#   docker run caravan ingest | ratefeed | indexer | query
# Build stage: wheels only. Runtime stage: no compilers, no caches, non-root.
FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11.11-slim-bookworm
# Every service answers /healthz, /readyz (and the workers /metrics) on 8080 in the
# container: the query API on its own port, the workers on their health server's.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CARAVAN_QUERY_HOST=0.0.0.0 \
    CARAVAN_HEALTH_HOST=0.0.0.0 \
    CARAVAN_HEALTH_PORT=8080
RUN groupadd --system --gid 10001 caravan \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin caravan
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/* && rm -rf /wheels
WORKDIR /app
COPY --chown=10001:10001 samples ./samples
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
