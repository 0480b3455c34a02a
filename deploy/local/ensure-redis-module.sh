#!/usr/bin/env bash
# (Re)starts a second Redis at 127.0.0.1:6380 with larder's module (crates/redis-module) loaded,
# built first: tests/redis_module.rs compares what it stores with what the script stores. It holds
# test data only, so it restarts every time and never serves a module older than the code.
# MODULE LOAD and UNLOAD are allowed from this machine: tests/redis_module_fallback.rs unloads it.
# Used by `make test` and CI.
set -euo pipefail
cd "$(dirname "$0")/../.."

PORT="${LARDER_MODULE_REDIS_PORT:-6380}"
DIR="${REDIS_DIR:-/tmp/larder-redis}-module"
cargo build --quiet -p larder-redis-module
MODULE="$(realpath "${CARGO_TARGET_DIR:-target}/debug/liblarder_redis_module.so")"
redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
mkdir -p "$DIR"
redis-server --daemonize yes --bind 127.0.0.1 --port "$PORT" --save "" --appendonly no \
    --dir "$DIR" --logfile "$DIR/redis.log" --loadmodule "$MODULE" --enable-module-command local
for _ in $(seq 1 50); do
    redis-cli -p "$PORT" ping >/dev/null 2>&1 && exit 0
    sleep 0.1
done
echo "redis-server with the module did not start; see $DIR/redis.log" >&2
exit 1
