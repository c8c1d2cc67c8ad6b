# Every target provisions what it needs first (idempotent, quick when done).
.PHONY: run test test-latest lock test-containers test-unit test-faults chaos lint docs bench-indexer bench-query bench-relevance bench-scaling bench-matching bench-extraction bench-hops bench-layers provision

VENV := .venv/bin

run: provision
	$(VENV)/caravan run

test: provision
	deploy/local/test.sh

# Tomorrow's breakage today (not part of `make test`): the whole suite in .venv-latest,
# built from the newest versions pyproject.toml allows instead of the lock. When it is
# green, `make lock` moves the lock to those versions.
test-latest:
	CARAVAN_UNLOCKED=1 CARAVAN_VENV=$(CURDIR)/.venv-latest deploy/local/provision.sh
	CARAVAN_VENV=$(CURDIR)/.venv-latest deploy/local/test.sh

lock: provision
	deploy/local/lock.sh

# The image and the compose file for real, under podman (also part of `make test`).
test-containers: provision
	deploy/local/test.sh tests/containers

test-unit: provision
	$(VENV)/pytest tests/unit

test-faults: provision
	deploy/local/test.sh -m faults

# Randomized, seeded fault schedules over the whole clustered pipeline (tests/chaos;
# docs/operations.md, "Correctness under faults"). `make test` runs a short one.
# CHAOS_SEED replays a run's schedule exactly; CHAOS_MINUTES sets its length.
CHAOS_SEED ?=
CHAOS_MINUTES ?= 5
chaos: provision
	CHAOS_SEED=$(CHAOS_SEED) CHAOS_MINUTES=$(CHAOS_MINUTES) $(VENV)/python -m tests.chaos.run

lint: provision
	$(VENV)/ruff format --check .
	$(VENV)/ruff check .
	$(VENV)/mypy
	$(VENV)/lint-imports
	deploy/local/lint-rust.sh

docs: provision
	$(VENV)/caravan docs

# Benches are not part of `make test`; see bench/README.md. Each uses ELASTICSEARCH_URL,
# else starts (and leaves running) the test Elasticsearch on 9291, and those that need
# Redis use REDIS_URL, else the test Redis on 6391 (bench-scaling: one of its own, 6395).
bench-query: provision
	deploy/local/bench.sh query_latency -- $(BENCH_ARGS)

bench-indexer: provision
	deploy/local/bench.sh indexer test 6391 -- $(BENCH_ARGS)

bench-relevance: provision
	deploy/local/bench.sh relevance -- $(BENCH_ARGS)

bench-scaling: provision
	deploy/local/bench.sh scaling bench 6395 -- $(BENCH_ARGS)

# Saved-search matching per batch against writing the batch (bench/README.md).
bench-matching: provision
	deploy/local/bench.sh matching test 6391 -- $(BENCH_ARGS)

# Not part of `make test`: needs no server. Reads the public extraction benchmark's pages
# from ../shared/extraction-benchmark (or CARAVAN_EXTRACTION_BENCHMARK); see bench/README.md.
bench-extraction: provision
	$(VENV)/python -m bench.extraction $(BENCH_ARGS)

# The floor under the query service's CPU: a forwarder doing only its two HTTP hops.
bench-hops: provision
	$(VENV)/python -m bench.two_hops $(BENCH_ARGS)

bench-layers: provision
	deploy/local/bench.sh client_layers -- $(BENCH_ARGS)

provision:
	@deploy/local/provision.sh
