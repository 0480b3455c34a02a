# larder: `make run` serves the API on 127.0.0.1:8000; `make test` runs every test.
# Both start Redis (Debian's redis-server) and an S3-compatible server (moto) if they are not
# running, installing them if needed.

CARGO ?= cargo

.PHONY: run worker test lint fmt services clean-test-db

services:
	@bash deploy/local/ensure-redis.sh
	@bash deploy/local/ensure-s3.sh

run: services
	$(CARGO) run --bin larder-api

worker: services
	$(CARGO) run --bin larder-worker

test: services
	$(CARGO) test --workspace --all-targets

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# The tests write under unique prefixes in Redis db 9; this empties it.
clean-test-db:
	redis-cli -n 9 flushdb
