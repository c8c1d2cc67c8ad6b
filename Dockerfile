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
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CARAVAN_QUERY_HOST=0.0.0.0 \
    CARAVAN_HEALTH_HOST=0.0.0.0
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin caravan
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/* && rm -rf /wheels
WORKDIR /app
COPY --chown=caravan samples ./samples
USER caravan
EXPOSE 8080
# FastStream and uvicorn both finish in-flight work on SIGTERM.
STOPSIGNAL SIGTERM
ENTRYPOINT ["caravan"]
CMD ["query"]
