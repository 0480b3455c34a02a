#!/usr/bin/env bash
# What one order costs Redis inside larder's ingest script, without a replay: builds a realistic
# state once (every restaurant, 100 k consumers, 50 k orders and their statuses of the full-scale
# data, replayed through the release API), captures the EVALSHA of one batch of 200 new orders,
# saves Redis to an RDB file, then for each SCRIPT given (default: the shipped ingest.lua) and
# each of ROUNDS rounds restarts Redis from that file and runs the captured call CALLS times with
# fresh order ids. Prints Redis' own time per order (`INFO commandstats`: EVALSHA, and the
# commands the script ran) — the network, the client and the API are not in it, so variants of
# the script (copies with a part changed or removed) can be compared in minutes.
# The state and the call are kept in /tmp/larder-script-cost: delete it when what the API writes
# has changed.
# With FLOOR=1 it instead runs the shipped script's call, the same call as LARDER.INGEST, and the
# commands that call ran, pipelined as plain commands, and prints Redis' CPU per order for the
# three (script_cost.py floor).
# A SCRIPT named `module` runs the call as LARDER.INGEST, larder's Redis module (loaded for the
# rounds, not while the state is built: the capture needs the API to send the script's EVALSHA);
# a SCRIPT ending in `.so` is another build of the module (a copy kept to compare against).
# Usage: bash benches/script_cost.sh [SCRIPT.lua|module|MODULE.so ...]   (ROUNDS=2 CALLS=100 FLOOR= SOURCE=order)
set -eu
cd "$(dirname "$0")/.."
BIN="${CARGO_TARGET_DIR:-target}/release"
DATA="${DATA:-/tmp/larder-full-data}"
WORK=/tmp/larder-script-cost
PORT=6396 API_PORT=8796
SCRIPTS=("$@")
[ ${#SCRIPTS[@]} -gt 0 ] || SCRIPTS=(crates/redis/src/ingest.lua)

cargo build --release --quiet -p larder-api -p larder-cli -p larder-redis-module
MODULE="$(realpath "$BIN/liblarder_redis_module.so")"
[ -d "$DATA" ] || "$BIN/larder" generate --out "$DATA" --orders 3600000 --seed 3
# Redis from the saved state; arguments go to redis-server.
start_redis() {
    redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
    redis-server --port "$PORT" --save '' --appendonly no --daemonize yes --dir "$WORK" \
        --dbfilename state.rdb --logfile "$WORK/redis.log" "$@"
    for _ in $(seq 100); do redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG && return; sleep 0.1; done
}
# The release API on that Redis, sending the script's EVALSHA (the module is not loaded), as API.
start_api() {
    LARDER__REDIS__URL="redis://127.0.0.1:$PORT/0" LARDER__LOG__LEVEL=warn \
        LARDER__SERVER__BIND="127.0.0.1:$API_PORT" LARDER__REDIS__RAW_TTL_SECS=60 \
        LARDER__REDIS__MAX_STREAM_BACKLOG=0 "$BIN/larder-api" > "$WORK/api.log" 2>&1 & API=$!
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$API_PORT/ready" >/dev/null && break; sleep 0.1; done
}
trap 'kill ${API:-} 2>/dev/null; redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true' EXIT
if [ ! -f "$WORK/state.rdb" ]; then
    rm -rf "$WORK" && mkdir -p "$WORK/data"
    zcat "$DATA/order.json.gz" | head -n 50000 > "$WORK/orders.json"
    gzip -1 -c "$WORK/orders.json" > "$WORK/data/order.json.gz"
    zcat "$DATA/status.json.gz" | head -n 150000 | gzip -1 > "$WORK/data/status.json.gz"
    zcat "$DATA/consumer.csv.gz" | head -n 100000 | gzip -1 > "$WORK/data/consumer.csv.gz"
    cp "$DATA/restaurant.csv.gz" "$WORK/data/"
    start_redis
    start_api
    "$BIN/larder" replay --url "http://127.0.0.1:$API_PORT" --progress quiet "$WORK/data" | tail -1
    BENCH_REDIS_PORT=$PORT python3 benches/script_cost.py capture "http://127.0.0.1:$API_PORT" \
        "$WORK/orders.json" "$WORK/call.json"
    kill $API
    redis-cli -p "$PORT" save >/dev/null
fi
# SOURCE=status: the call is one of 200 statuses instead (the state's last 200, under new ids, on
# orders the state holds), captured once from the saved state into call-status.json.
CALL="$WORK/call.json"
if [ "${SOURCE:-order}" = status ]; then
    CALL="$WORK/call-status.json"
    if [ ! -f "$CALL" ]; then
        start_redis
        start_api
        zcat "$WORK/data/status.json.gz" > "$WORK/statuses.json"
        BENCH_REDIS_PORT=$PORT python3 benches/script_cost.py capture "http://127.0.0.1:$API_PORT" \
            "$WORK/statuses.json" "$CALL" status
        kill $API
    fi
fi
for _ in $(seq "${ROUNDS:-2}"); do
    if [ -n "${FLOOR:-}" ]; then
        start_redis --loadmodule "$MODULE"
        BENCH_REDIS_PORT=$PORT python3 benches/script_cost.py floor "$CALL" "${CALLS:-100}"
        continue
    fi
    for script in "${SCRIPTS[@]}"; do
        module="$MODULE"
        case "$script" in *.so) module="$(realpath "$script")" ;; esac
        start_redis --loadmodule "$module"
        BENCH_REDIS_PORT=$PORT python3 benches/script_cost.py run "$script" "$CALL" "${CALLS:-100}"
    done
done
