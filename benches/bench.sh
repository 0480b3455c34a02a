#!/usr/bin/env bash
# larder's benchmark harness: `make bench` (or `make bench-quick`, under two minutes).
# Builds release binaries, starts Redis and the API, generates data with `larder generate`,
# replays it, and measures serving and ingestion with wrk beside redis-benchmark run in the same
# invocation at the same concurrency, printing each figure with the command that produced it.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK="${QUICK:-0}"
# SMOKE=1 (CI): every step on a few hundred orders with debug binaries, failing when a step
# yields no figure; the figures themselves mean nothing and nothing is asserted about them.
SMOKE="${SMOKE:-0}"
PROFILE=release
# SHORT: the runs that only give a ceiling or a latency at a fixed load.
if [ "$SMOKE" = 1 ]; then ORDERS=300; DURATION=1s; SHORT=1s; INGEST_N=2000; LOOKUP_N=2000; PROFILE=debug
elif [ "$QUICK" = 1 ]; then ORDERS=20000; DURATION=8s; SHORT=3s; INGEST_N=30000; LOOKUP_N=50000
else ORDERS="${ORDERS:-200000}"; DURATION=30s; SHORT=10s; INGEST_N=200000; LOOKUP_N=200000; fi
PORT="${BENCH_PORT:-8790}"
# A Redis of its own, with the server's stock settings (hash-max-listpack-entries 128, …): the
# figures then depend neither on the machine's Redis tuning nor on what else it holds.
RPORT="${BENCH_REDIS_PORT:-6391}"
export BENCH_REDIS_PORT="$RPORT"
DB=0
WORK="$(mktemp -d /tmp/larder-bench.XXXX)"
TARGET="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET/$PROFILE"

command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; }; }
bash deploy/local/ensure-redis.sh
if [ "$PROFILE" = release ]; then cargo build --release --quiet -p larder-api -p larder-cli
else cargo build --quiet -p larder-api -p larder-cli; fi
trap 'kill ${API_PID:-} 2>/dev/null; redis-cli -p "$RPORT" shutdown nosave >/dev/null 2>&1; rm -rf "$WORK"' EXIT
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
    --dir "$WORK" --logfile "$WORK/redis.log"
for _ in $(seq 50); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

LARDER__SERVER__BIND="127.0.0.1:$PORT" LARDER__REDIS__URL="redis://127.0.0.1:$RPORT/$DB" \
LARDER__LOG__LEVEL=warn LARDER__REDIS__MAX_STREAM_BACKLOG=0 "$BIN/larder-api" > "$WORK/api.log" 2>&1 &
API_PID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null && break; sleep 0.1; done

[ "$SMOKE" = 1 ] && echo "## SMOKE run: debug binaries, a few hundred orders; the figures below mean nothing"
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
# Stops the run when a step printed no figure (a broken route, a missing tool).
need() { [ -n "${2:-}" ] || { echo "bench: no figure for $1" >&2; exit 1; }; }
# Stops the run when a wrk run got error answers: its rate would count failures.
all_2xx() { ! grep -q 'Non-2xx' "$1" || { grep 'Non-2xx' "$1" >&2; echo "bench: error answers in $1" >&2; exit 1; }; }
pct() { awk -v p="$1" '$1 == p {print $2}'; }
# "p50 …, p99 …" of a wrk --latency report.
latency() { echo "p50 $(pct 50% < "$1"), p99 $(pct 99% < "$1")"; }
# redis-benchmark at the same concurrency (64 clients), on the bench database.
baseline() { redis-benchmark -p "$RPORT" -n "$1" -c 64 -P "${2:-1}" --dbnum "$DB" -q --csv "${@:3}" | tail -1 | cut -d, -f2 | tr -d '"'; }

echo; echo "## 0. ceilings of the HTTP layer on this machine (same wrk settings)"
echo "\$ wrk -t2 -c64 -d$SHORT http://127.0.0.1:$PORT/health   (no Redis)"
echo "larder /health: $(wrk -t2 -c64 -d"$SHORT" "http://127.0.0.1:$PORT/health" | rate) req/s"
echo "\$ wrk -t2 -c64 -d$SHORT http://127.0.0.1:$PORT/ready    (one PING on a shared connection)"
READY=$(wrk -t2 -c64 -d"$SHORT" "http://127.0.0.1:$PORT/ready" | rate)
need /ready "$READY"
echo "larder /ready: $READY req/s: the most any route doing one Redis round trip can serve here"

echo; echo "## 1. single lookup: GET /real-time-fs/get/restaurant/{random key}"
echo "\$ wrk -t2 -c64 -d$DURATION --latency -s benches/lookup.lua http://127.0.0.1:$PORT"
wrk -t2 -c64 -d"$DURATION" --latency -s benches/lookup.lua "http://127.0.0.1:$PORT" > "$WORK/lookup.txt"
LOOKUP=$(rate < "$WORK/lookup.txt")
need "single lookup" "$LOOKUP"; all_2xx "$WORK/lookup.txt"
REDIS_HGETALL=$(baseline "$((LOOKUP_N * 4))" 1 HGETALL "rtf_restaurant:$KEY")
echo "larder: $LOOKUP req/s, $(latency "$WORK/lookup.txt")"
echo "\$ redis-benchmark -n $((LOOKUP_N * 4)) -c 64 HGETALL rtf_restaurant:{key}  → $REDIS_HGETALL req/s"
awk -v a="$LOOKUP" -v b="$REDIS_HGETALL" -v r="$READY" 'BEGIN {printf "ratio larder / redis HGETALL: %.2f (target >= 0.5); larder / its /ready ceiling: %.2f\n", a / b, a / r}'
BUSY="$(redis-cli -p "$RPORT" --scan --pattern '{rtf_restaurant:*}:h' | head -200 | while read -r k; do echo "$(redis-cli -p "$RPORT" hlen "$k") $k"; done | sort -rn | head -1 | sed -E 's/.*\{rtf_restaurant:(.*)\}:h/\1/')"
python3 benches/lookup_baseline.py "http://127.0.0.1:$PORT" "/real-time-fs/get/restaurant/${BUSY:-$KEY}" "$DB" 64 1 "$LOOKUP_N" | tee "$WORK/lookup-base.txt"
awk -v l="$LOOKUP" '/-> .* lookups/ {gsub(",", "", $(NF-1)); printf "ratio larder / redis serving its reads: %.2f\n", l / $(NF-1)}' "$WORK/lookup-base.txt"
HALF_INTERVAL=$(awk -v l="$LOOKUP" 'BEGIN {i = int(64 * 1000 / (l / 2) + 0.5); print (i < 1 ? 1 : i)}')
echo "\$ BENCH_INTERVAL_MS=$HALF_INTERVAL wrk -t2 -c64 -d$SHORT --latency -s benches/lookup.lua …   (half the max rate offered)"
BENCH_INTERVAL_MS=$HALF_INTERVAL wrk -t2 -c64 -d"$SHORT" --latency -s benches/lookup.lua "http://127.0.0.1:$PORT" > "$WORK/lookup-half.txt"
echo "larder at half load: $(rate < "$WORK/lookup-half.txt") req/s, $(latency "$WORK/lookup-half.txt") (target p99 <= 2 ms)"
# The same offered rate against /health (no Redis, no work): the latency wrk and the scheduler add
# to any request on this machine, where wrk, the API and Redis share the cores.
echo "\$ BENCH_PATH=/health BENCH_INTERVAL_MS=$HALF_INTERVAL wrk -t2 -c64 -d$SHORT --latency -s benches/lookup.lua …"
BENCH_PATH=/health BENCH_INTERVAL_MS=$HALF_INTERVAL wrk -t2 -c64 -d"$SHORT" --latency -s benches/lookup.lua "http://127.0.0.1:$PORT" > "$WORK/health-half.txt"
echo "/health at the same offered rate: $(rate < "$WORK/health-half.txt") req/s, $(latency "$WORK/health-half.txt")"

# The runs above find each restaurant's tiles in the API's cache (nothing changes them after
# the replay): a lookup reads the restaurant's hash alone. Here every lookup reads its tiles.
CLOCK_MS="$(redis-cli -p "$RPORT" -n "$DB" get larder:clock)"
echo; echo "## 1b. single lookup, tiles not cached: as_of a random minute of the day before the clock"
echo "\$ BENCH_AS_OF_MS=$CLOCK_MS wrk -t2 -c64 -d$DURATION --latency -s benches/lookup.lua http://127.0.0.1:$PORT"
BENCH_AS_OF_MS=$CLOCK_MS wrk -t2 -c64 -d"$DURATION" --latency -s benches/lookup.lua "http://127.0.0.1:$PORT" > "$WORK/lookup-cold.txt"
COLD=$(rate < "$WORK/lookup-cold.txt")
need "uncached lookup" "$COLD"; all_2xx "$WORK/lookup-cold.txt"
echo "larder: $COLD req/s, $(latency "$WORK/lookup-cold.txt")"
awk -v a="$COLD" -v b="$REDIS_HGETALL" 'BEGIN {printf "ratio larder / redis HGETALL: %.2f\n", a / b}'
AS_OF="$(date -u -d "@$((CLOCK_MS / 1000 - 7200))" +%Y-%m-%dT%H:%M:%S.000Z)"
python3 benches/lookup_baseline.py "http://127.0.0.1:$PORT" "/real-time-fs/get/restaurant/${BUSY:-$KEY}?as_of=$AS_OF" "$DB" 64 1 "$LOOKUP_N" | tee "$WORK/lookup-cold-base.txt"
awk -v l="$COLD" '/-> .* lookups/ {gsub(",", "", $(NF-1)); printf "ratio larder / redis serving its reads: %.2f\n", l / $(NF-1)}' "$WORK/lookup-cold-base.txt"

echo; echo "## 2. batch lookup: POST /v1/features/online, 100 entities x 10 features"
echo "\$ wrk -t2 -c16 -d$DURATION --latency -s benches/batch.lua http://127.0.0.1:$PORT"
wrk -t2 -c16 -d"$DURATION" --latency -s benches/batch.lua "http://127.0.0.1:$PORT" > "$WORK/batch.txt"
BATCH=$(rate < "$WORK/batch.txt")
need "batch lookup" "$BATCH"; all_2xx "$WORK/batch.txt"
echo "larder: $BATCH req/s ($(awk -v r="$BATCH" 'BEGIN {printf "%.0f", r * 100}') entities/s), $(latency "$WORK/batch.txt")"
REDIS_PIPE=$(baseline "$((LOOKUP_N * 20))" 16 HGETALL "rtf_restaurant:$KEY")
echo "\$ redis-benchmark -n $((LOOKUP_N * 20)) -c 64 -P 16 HGETALL rtf_restaurant:{key}  → $REDIS_PIPE HGETALL/s"
# What a batch of 100 cached restaurants reads: one MGET of their version keys. Redis' own
# ceiling for the batch, at the same concurrency.
VERSION_KEYS="$(shuf -r -n 100 "$WORK/keys.txt" | sed 's/.*/{rtf_restaurant:&}:v/')"
# shellcheck disable=SC2086 # one argument per key
REDIS_MGET=$(redis-benchmark -p "$RPORT" -n "$((LOOKUP_N / 2))" -c 16 --dbnum "$DB" -q --csv MGET $VERSION_KEYS | tail -1 | cut -d, -f2 | tr -d '"')
need "MGET baseline" "$REDIS_MGET"
echo "\$ redis-benchmark -n $((LOOKUP_N / 2)) -c 16 MGET {rtf_restaurant:{key}}:v ×100  → $REDIS_MGET requests of 100 entities/s"
awk -v l="$BATCH" -v r="$REDIS_MGET" 'BEGIN {printf "ratio larder / redis serving its reads: %.2f\n", l / r}'

echo; echo "## 3. single-event ingest: POST /order-event/, a new order per request, feature views on"
# The newest generated order: its event time is inside every window, so the script writes its
# tiles and distinct sets (an old one is past retention and skips them).
zcat "$WORK/data/order.json.gz" | tail -1 | sed -E 's/"order_id": "[0-9a-f]+"/"order_id": "ORDER_ID"/' > "$WORK/order.json"
export BENCH_ORDER="$WORK/order.json"
echo "\$ wrk -t2 -c64 -d$DURATION --latency -s benches/ingest.lua http://127.0.0.1:$PORT"
wrk -t2 -c64 -d"$DURATION" --latency -s benches/ingest.lua "http://127.0.0.1:$PORT" > "$WORK/ingest.txt"
need "single-event ingest" "$(rate < "$WORK/ingest.txt")"; all_2xx "$WORK/ingest.txt"
echo "larder: $(rate < "$WORK/ingest.txt") events/s, $(latency "$WORK/ingest.txt")"
echo "\$ redis-benchmark -n $INGEST_N -c 64 HSET (a plain write, for scale) → $(baseline "$INGEST_N" 1 HSET bench:h f v) req/s"
# Redis running larder's own ingest script with the same order (captured from the API with
# MONITOR), unpipelined: the ceiling of the single-event route.
python3 benches/ingest_baseline.py "http://127.0.0.1:$PORT" "$WORK/order.json" "$DB" 64 1 "$INGEST_N" | tee "$WORK/ingest-base.txt"
awk -v l="$(rate < "$WORK/ingest.txt")" '/-> / {gsub(",", "", $(NF-1)); printf "ratio larder / redis EVALSHA: %.2f (target >= 0.5)\n", l / $(NF-1)}' "$WORK/ingest-base.txt"

echo; echo "## 3b. batch ingest: POST /v1/events/order, NDJSON of 100 new orders per request"
echo "\$ wrk -t2 -c16 -d$DURATION --latency -s benches/ingest_batch.lua http://127.0.0.1:$PORT"
wrk -t2 -c16 -d"$DURATION" --latency -s benches/ingest_batch.lua "http://127.0.0.1:$PORT" > "$WORK/ingest-batch.txt"
BATCH_EVENTS=$(awk '/Requests\/sec/ {printf "%.0f", $2 * 100}' "$WORK/ingest-batch.txt")
need "batch ingest" "$BATCH_EVENTS"; all_2xx "$WORK/ingest-batch.txt"
echo "larder: $BATCH_EVENTS events/s ($(rate < "$WORK/ingest-batch.txt") req/s), $(latency "$WORK/ingest-batch.txt")"
python3 benches/ingest_baseline.py "http://127.0.0.1:$PORT" "$WORK/order.json" "$DB" 16 16 "$INGEST_N" | tee "$WORK/ingest-base-p.txt"
awk -v l="$BATCH_EVENTS" '/-> / {gsub(",", "", $(NF-1)); printf "ratio larder / redis EVALSHA pipelined: %.2f (target >= 0.8)\n", l / $(NF-1)}' "$WORK/ingest-base-p.txt"

echo; echo "## 7. memory"
echo "API RSS after the runs: $(ps -o rss= -p "$API_PID" | awk '{printf "%.0f MB", $1 / 1024}')"
echo "Redis used memory: $(redis-cli -p "$RPORT" info memory | awk -F: '/^used_memory_human/ {print $2}' | tr -d '\r')"
echo "\$ python3 benches/entity_memory.py $RPORT $DB   (Redis bytes per entity per view)"
python3 benches/entity_memory.py "$RPORT" "$DB"
