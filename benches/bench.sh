#!/usr/bin/env bash
# larder's benchmark harness: `make bench` (or `make bench-quick`, under two minutes).
# Builds release binaries, starts Redis and the API, generates data with `larder generate`,
# replays it, and measures serving and ingestion with wrk beside redis-benchmark run in the same
# invocation at the same concurrency, printing each figure with the command that produced it.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK="${QUICK:-0}"
if [ "$QUICK" = 1 ]; then ORDERS=20000; DURATION=8s; INGEST_N=30000; else ORDERS="${ORDERS:-200000}"; DURATION=30s; INGEST_N=200000; fi
PORT="${BENCH_PORT:-8790}"
DB=12
WORK="$(mktemp -d /tmp/larder-bench.XXXX)"
TARGET="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET/release"

command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; }; }
bash deploy/local/ensure-redis.sh
cargo build --release --quiet -p larder-api -p larder-cli
redis-cli -n "$DB" flushdb >/dev/null

LARDER__SERVER__BIND="127.0.0.1:$PORT" LARDER__REDIS__URL="redis://127.0.0.1:6379/$DB" \
LARDER__LOG__LEVEL=warn LARDER__REDIS__MAX_STREAM_BACKLOG=0 "$BIN/larder-api" > "$WORK/api.log" 2>&1 &
API_PID=$!
trap 'kill $API_PID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null && break; sleep 0.1; done

echo "## machine"
echo "$(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, $(redis-server --version | cut -d' ' -f3), $(wrk --version 2>&1 | head -1 | cut -d' ' -f1,2)"

echo; echo "## generate + replay ($ORDERS orders)"
echo "\$ larder generate --out DIR --orders $ORDERS --seed 1"
"$BIN/larder" generate --out "$WORK/data" --orders "$ORDERS" --seed 1
echo "\$ larder replay --url http://127.0.0.1:$PORT --progress quiet DIR"
"$BIN/larder" replay --url "http://127.0.0.1:$PORT" --progress quiet "$WORK/data"

zcat "$WORK/data/restaurant.csv.gz" | tail -n +2 | cut -d, -f1 > "$WORK/keys.txt"
KEY="$(head -1 "$WORK/keys.txt")"
export BENCH_KEYS="$WORK/keys.txt"

rate() { awk '/Requests\/sec/ {print $2}'; }
pct() { awk -v p="$1" '$1 == p {print $2}'; }
# redis-benchmark at the same concurrency (64 clients), on the bench database.
baseline() { redis-benchmark -n "$1" -c 64 -P "${2:-1}" --dbnum "$DB" -q --csv "${@:3}" | tail -1 | cut -d, -f2 | tr -d '"'; }

echo; echo "## 1. single lookup: GET /real-time-fs/get/restaurant/{random key}"
echo "\$ wrk -t2 -c64 -d$DURATION --latency -s benches/lookup.lua http://127.0.0.1:$PORT"
wrk -t2 -c64 -d"$DURATION" --latency -s benches/lookup.lua "http://127.0.0.1:$PORT" > "$WORK/lookup.txt"
LOOKUP=$(rate < "$WORK/lookup.txt")
REDIS_HGETALL=$(baseline 200000 1 HGETALL "rtf_restaurant:$KEY")
echo "larder: $LOOKUP req/s, p50 $(pct 50% < "$WORK/lookup.txt"), p99 $(pct 99% < "$WORK/lookup.txt")"
echo "\$ redis-benchmark -n 200000 -c 64 HGETALL rtf_restaurant:{key}  → $REDIS_HGETALL req/s"
awk -v a="$LOOKUP" -v b="$REDIS_HGETALL" 'BEGIN {printf "ratio larder / redis HGETALL: %.2f\n", a / b}'

echo; echo "## 2. batch lookup: POST /v1/features/online, 100 entities x 10 features"
echo "\$ wrk -t2 -c16 -d$DURATION --latency -s benches/batch.lua http://127.0.0.1:$PORT"
wrk -t2 -c16 -d"$DURATION" --latency -s benches/batch.lua "http://127.0.0.1:$PORT" > "$WORK/batch.txt"
BATCH=$(rate < "$WORK/batch.txt")
echo "larder: $BATCH req/s ($(awk -v r="$BATCH" 'BEGIN {printf "%.0f", r * 100}') entities/s), p50 $(pct 50% < "$WORK/batch.txt"), p99 $(pct 99% < "$WORK/batch.txt")"
REDIS_PIPE=$(baseline 1000000 16 HGETALL "rtf_restaurant:$KEY")
echo "\$ redis-benchmark -n 1000000 -c 64 -P 16 HGETALL rtf_restaurant:{key}  → $REDIS_PIPE HGETALL/s"

echo; echo "## 3. single-event ingest: POST /order-event/, a new order per request, feature views on"
{ zcat "$WORK/data/order.json.gz" || true; } | head -1 | sed -E 's/"order_id": "[0-9a-f]+"/"order_id": "ORDER_ID"/' > "$WORK/order.json"
export BENCH_ORDER="$WORK/order.json"
echo "\$ wrk -t2 -c64 -d$DURATION --latency -s benches/ingest.lua http://127.0.0.1:$PORT"
wrk -t2 -c64 -d"$DURATION" --latency -s benches/ingest.lua "http://127.0.0.1:$PORT" > "$WORK/ingest.txt"
echo "larder: $(rate < "$WORK/ingest.txt") events/s, p50 $(pct 50% < "$WORK/ingest.txt"), p99 $(pct 99% < "$WORK/ingest.txt"); non-2xx: $(grep -c 'Non-2xx' "$WORK/ingest.txt" || true)"
echo "\$ redis-benchmark -n 200000 -c 64 HSET (a plain write, for scale) → $(baseline 200000 1 HSET bench:h f v) req/s"
# Redis running larder's own ingest script with the same order (captured from the API with
# MONITOR), unpipelined: the ceiling of the single-event route.
python3 benches/ingest_baseline.py "http://127.0.0.1:$PORT" "$WORK/order.json" "$DB" 64 1 "$INGEST_N" | tee "$WORK/ingest-base.txt"
awk -v l="$(rate < "$WORK/ingest.txt")" '/-> / {gsub(",", "", $(NF-1)); printf "ratio larder / redis EVALSHA: %.2f (target >= 0.5)\n", l / $(NF-1)}' "$WORK/ingest-base.txt"

echo; echo "## 3b. batch ingest: POST /v1/events/order, NDJSON of 100 new orders per request"
echo "\$ wrk -t2 -c16 -d$DURATION --latency -s benches/ingest_batch.lua http://127.0.0.1:$PORT"
wrk -t2 -c16 -d"$DURATION" --latency -s benches/ingest_batch.lua "http://127.0.0.1:$PORT" > "$WORK/ingest-batch.txt"
BATCH_EVENTS=$(awk '/Requests\/sec/ {printf "%.0f", $2 * 100}' "$WORK/ingest-batch.txt")
echo "larder: $BATCH_EVENTS events/s ($(rate < "$WORK/ingest-batch.txt") req/s), p50 $(pct 50% < "$WORK/ingest-batch.txt"), p99 $(pct 99% < "$WORK/ingest-batch.txt"); non-2xx: $(grep -c 'Non-2xx' "$WORK/ingest-batch.txt" || true)"
python3 benches/ingest_baseline.py "http://127.0.0.1:$PORT" "$WORK/order.json" "$DB" 16 16 "$INGEST_N" | tee "$WORK/ingest-base-p.txt"
awk -v l="$BATCH_EVENTS" '/-> / {gsub(",", "", $(NF-1)); printf "ratio larder / redis EVALSHA pipelined: %.2f (target >= 0.8)\n", l / $(NF-1)}' "$WORK/ingest-base-p.txt"

echo; echo "## 7. memory"
echo "API RSS after the runs: $(ps -o rss= -p "$API_PID" | awk '{printf "%.0f MB", $1 / 1024}')"
echo "Redis used memory: $(redis-cli info memory | awk -F: '/^used_memory_human/ {print $2}' | tr -d '\r')"
