"""Optional OpenTelemetry tracing: on when OTEL_EXPORTER_OTLP_ENDPOINT is set.

With it off, the OpenTelemetry API hands out no-op tracers and spans cost
nothing. With it on, every service exports its spans over OTLP/HTTP, and the
trace context rides with each event (shared/streams.py), so one article can be
followed from its fetch through publishing to the document the indexer wrote.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.environment_variables import OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode
from opentelemetry.util.types import Attributes

from shared.logging import shortened
from shared.settings import TracingSettings

# An attribute's characters at most, unless OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT says
# otherwise (the SDK has no bound of its own): a hostile rates document made the
# exception message of each span 3.8 MB.
ATTRIBUTE_CHARS = 4096


def start_tracing(service: str, settings: TracingSettings) -> TracerProvider | None:
    """Install the process's tracer provider (once), or None when tracing is off.

    The provider flushes its spans when the process exits.
    """
    return _install(service) if settings.endpoint else None


def tracer_provider(service: str) -> TracerProvider:
    """The service's provider, exporting nowhere yet."""
    chars = None if OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT in os.environ else ATTRIBUTE_CHARS
    return TracerProvider(
        resource=Resource.create({"service.name": f"caravan-{service}"}),
        span_limits=SpanLimits(max_attribute_length=chars),
    )


@functools.cache
def _install(service: str) -> TracerProvider:
    provider = tracer_provider(service)
    # The exporter reads OTEL_EXPORTER_OTLP_* itself (endpoint, headers, timeout).
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


@contextmanager
def failing_short(tracer: trace.Tracer, name: str, attributes: Attributes) -> Iterator[None]:
    """A current span whose failure is told in a bounded status: the SDK's own puts the
    whole exception message there, which SpanLimits do not reach (a hostile document's
    megabytes in every exported span)."""
    with tracer.start_as_current_span(
        name, attributes=attributes, set_status_on_exception=False
    ) as span:
        try:
            yield
        except Exception as exc:
            span.set_status(Status(StatusCode.ERROR, shortened(f"{type(exc).__name__}: {exc}")))
            raise
