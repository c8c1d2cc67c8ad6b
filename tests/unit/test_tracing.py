"""What a service's spans may hold (shared/tracing.py)."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from shared.tracing import ATTRIBUTE_CHARS, failing_short, tracer_provider


def _read(tracer: Tracer) -> None:
    with tracer.start_as_current_span("ratefeed read") as span:
        span.set_attribute("url.full", "https://rates.example/" + "a" * 100_000)
        raise ValueError("not a rates document: " + "x" * 3_800_000)


def _attributes_of_a_failed_read() -> list[AttributeValue]:
    """A span's attributes and its exception's, the span set a long address and failing
    with a long message (a hostile document's text in either)."""
    provider = tracer_provider("test")
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with pytest.raises(ValueError, match="not a rates document"):
        _read(provider.get_tracer("test"))
    [finished] = exporter.get_finished_spans()
    events = [value for event in finished.events for value in (event.attributes or {}).values()]
    return [*(finished.attributes or {}).values(), *events]


def test_no_span_attribute_is_longer_than_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", raising=False)
    values = _attributes_of_a_failed_read()
    assert "not a rates document: xxx" in str(values)
    assert max(len(str(value)) for value in values) == ATTRIBUTE_CHARS


def test_the_standard_variable_sets_another_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "100")
    assert max(len(str(value)) for value in _attributes_of_a_failed_read()) == 100


def test_a_failed_span_tells_its_error_short() -> None:
    # The SDK's own status held the whole message: 3.8 MB in every exported span.
    provider = tracer_provider("test")
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with (
        pytest.raises(ValueError, match="not a rates document"),
        failing_short(provider.get_tracer("test"), "ratefeed read", {"caravan.provider": "p"}),
    ):
        raise ValueError("not a rates document: " + "x" * 3_800_000)
    [finished] = exporter.get_finished_spans()
    assert finished.status.status_code is StatusCode.ERROR
    assert (finished.status.description or "").startswith("ValueError: not a rates document: xx")
    assert len(finished.status.description or "") < 1100
    assert finished.events[0].name == "exception"
