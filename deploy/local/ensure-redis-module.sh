#!/usr/bin/env bash
# (Re)starts a second Redis at 127.0.0.1:6380 with larder's module (crates/redis-module) loaded,
# built first, and a replica of it at 127.0.0.1:6381 without the module: tests/redis_module.rs
# compares what the module stores with what the script stores, and with what the replica holds
# (the module passes its writes on as plain commands). They hold test data only, so they restart
# every time and never serve a module older than the code.
# MODULE LOAD and UNLOAD are allowed from this machine: tests/redis_module_fallback.rs unloads it.
# Used by `make test` and CI.
set -euo pipefail
cd "$(dirname "$0")/../.."

PORT="${LARDER_MODULE_REDIS_PORT:-6380}"
REPLICA_PORT="${LARDER_MODULE_REPLICA_PORT:-6381}"
DIR="${REDIS_DIR:-/tmp/larder-redis}-module"
cargo build --quiet -p larder-redis-module
MODULE="$(realpath "${CARGO_TARGET_DIR:-target}/debug/liblarder_redis_module.so")"
redis-cli -p "$REPLICA_PORT" shutdown nosave >/dev/null 2>&1 || true
redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
mkdir -p "$DIR/replica"

# started PORT DIR: waits until the Redis at PORT answers.
started() {
    for _ in $(seq 1 50); do
        redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "redis-server at $1 did not start; see $2/redis.log" >&2
    exit 1
}

redis-server --daemonize yes --bind 127.0.0.1 --port "$PORT" --save "" --appendonly no \
    --dir "$DIR" --logfile "$DIR/redis.log" --loadmodule "$MODULE" --enable-module-command local
started "$PORT" "$DIR"
redis-server --daemonize yes --bind 127.0.0.1 --port "$REPLICA_PORT" --save "" --appendonly no \
    --dir "$DIR/replica" --logfile "$DIR/replica/redis.log" --replicaof 127.0.0.1 "$PORT"
started "$REPLICA_PORT" "$DIR/replica"
for _ in $(seq 1 100); do
    redis-cli -p "$REPLICA_PORT" info replication | grep -q "master_link_status:up" && exit 0
    sleep 0.1
done
echo "the replica at $REPLICA_PORT did not sync; see $DIR/replica/redis.log" >&2
exit 1
