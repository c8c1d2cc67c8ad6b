"""The Elasticsearch client as every service makes it: how its bodies are written and read."""

from __future__ import annotations

import pytest
from elastic_transport import SerializerCollection
from elasticsearch.serializer import OrjsonSerializer

from shared.clients import make_elasticsearch
from shared.settings import ElasticsearchSettings

COMPATIBLE = "; compatible-with=9"


@pytest.fixture
def serializers() -> SerializerCollection:
    es = make_elasticsearch(ElasticsearchSettings(url="http://127.0.0.1:9200"))
    return es.transport.serializers


@pytest.mark.parametrize(
    "mimetype", ["application/json", f"application/vnd.elasticsearch+json{COMPATIBLE}"]
)
def test_answers_are_parsed_by_orjson_whichever_json_mimetype(
    serializers: SerializerCollection, mimetype: str
) -> None:
    assert isinstance(serializers.get_serializer(mimetype), OrjsonSerializer)
    assert serializers.loads(b'{"took":3,"hits":{"hits":[]}}', mimetype) == {
        "took": 3,
        "hits": {"hits": []},
    }


@pytest.mark.parametrize(
    "mimetype", ["application/x-ndjson", f"application/vnd.elasticsearch+x-ndjson{COMPATIBLE}"]
)
def test_a_ready_bulk_body_goes_out_as_it_is(
    serializers: SerializerCollection, mimetype: str
) -> None:
    body = b'{"index":{"_id":"1"}}\n{"title":"\xd0\x9e\xd1\x88"}\n'
    assert serializers.dumps(body, mimetype) is body
