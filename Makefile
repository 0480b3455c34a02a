# larder: `make run` serves the API on 127.0.0.1:8000 with the worker beside it; `make test`
# runs every test.
# Both start Redis (Debian's redis-server) and an S3-compatible server (moto) if they are not
# running, installing them if needed.

CARGO ?= cargo

.PHONY: run worker test lint fmt services clean-test-db bench bench-quick bench-smoke

services:
	@bash deploy/local/ensure-redis.sh
	@bash deploy/local/ensure-s3.sh

# The API in the foreground, the worker (lake flush, simple_feature) in the background.
run: services
	$(CARGO) build -p larder-api -p larder-worker
	@bash -c '$(CARGO) run -q -p larder-worker & worker=$$!; trap "kill $$worker 2>/dev/null" EXIT; $(CARGO) run -q -p larder-api'

worker: services
	$(CARGO) run -p larder-worker

# tests/redis_module.rs needs a second Redis with larder's module loaded.
test: services
	@bash deploy/local/ensure-redis-module.sh
	$(CARGO) test --workspace --all-targets

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# The tests write under unique prefixes in Redis db 9; this empties it.
clean-test-db:
	redis-cli -n 9 flushdb

# Benchmarks (not part of `make test`): release build, wrk against the API beside redis-benchmark.
bench:
	bash benches/bench.sh

bench-quick:
	QUICK=1 bash benches/bench.sh

# CI: every bench step on a few hundred orders with debug binaries; fails only when a step yields
# no figure or error answers, never on a figure's value.
bench-smoke:
	SMOKE=1 bash benches/bench.sh
