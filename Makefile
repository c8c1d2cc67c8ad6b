# Every target provisions what it needs first (idempotent, quick when done).
.PHONY: run test test-unit test-faults lint docs bench provision

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

docs: provision
	$(VENV)/caravan docs

provision:
	@deploy/local/provision.sh
