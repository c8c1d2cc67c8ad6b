# Every target provisions what it needs first (idempotent, quick when done).
.PHONY: run test test-unit test-faults lint docs bench-indexer bench-query bench-relevance bench-scaling bench-extraction provision

VENV := .venv/bin

run: provision
	$(VENV)/caravan run

test: provision
	deploy/local/test.sh

test-unit: provision
	$(VENV)/pytest tests/unit

test-faults: provision
	deploy/local/test.sh -m faults

lint: provision
	$(VENV)/ruff check .
	$(VENV)/mypy
	$(VENV)/lint-imports

docs: provision
	$(VENV)/caravan docs

# Not part of `make test`. Uses ELASTICSEARCH_URL, else starts (and leaves running) the
# test Elasticsearch on 9291; see bench/README.md.
bench-query: provision
	@if [ -z "$$ELASTICSEARCH_URL" ]; then deploy/local/elasticsearch.sh start test 9291; fi
	ELASTICSEARCH_URL=$${ELASTICSEARCH_URL:-http://127.0.0.1:9291} \
	  $(VENV)/python -m bench.query_latency $(BENCH_ARGS)

# Not part of `make test`. Uses REDIS_URL / ELASTICSEARCH_URL, else starts (and leaves
# running) the test servers on 6391 / 9291; see bench/README.md.
bench-indexer: provision
	@if [ -z "$$REDIS_URL" ]; then deploy/local/redis.sh start test 6391; fi
	@if [ -z "$$ELASTICSEARCH_URL" ]; then deploy/local/elasticsearch.sh start test 9291; fi
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6391/0} \
	ELASTICSEARCH_URL=$${ELASTICSEARCH_URL:-http://127.0.0.1:9291} \
	  $(VENV)/python -m bench.indexer $(BENCH_ARGS)

# Not part of `make test`. Uses ELASTICSEARCH_URL, else starts (and leaves running) the
# test Elasticsearch on 9291; see bench/README.md.
bench-relevance: provision
	@if [ -z "$$ELASTICSEARCH_URL" ]; then deploy/local/elasticsearch.sh start test 9291; fi
	ELASTICSEARCH_URL=$${ELASTICSEARCH_URL:-http://127.0.0.1:9291} \
	  $(VENV)/python -m bench.relevance $(BENCH_ARGS)

# Not part of `make test`. Uses REDIS_URL, else starts (and leaves running) a Redis of its
# own on 6395, apart from the tests' one; ELASTICSEARCH_URL, else the test Elasticsearch
# on 9291; see bench/README.md.
bench-scaling: provision
	@if [ -z "$$REDIS_URL" ]; then deploy/local/redis.sh start bench 6395; fi
	@if [ -z "$$ELASTICSEARCH_URL" ]; then deploy/local/elasticsearch.sh start test 9291; fi
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6395/0} \
	ELASTICSEARCH_URL=$${ELASTICSEARCH_URL:-http://127.0.0.1:9291} \
	  $(VENV)/python -m bench.scaling $(BENCH_ARGS)

# Not part of `make test`: needs no server. Reads the public extraction benchmark's pages
# from ../shared/extraction-benchmark (or CARAVAN_EXTRACTION_BENCHMARK); see bench/README.md.
bench-extraction: provision
	$(VENV)/python -m bench.extraction $(BENCH_ARGS)

provision:
	@deploy/local/provision.sh
