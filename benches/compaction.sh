#!/usr/bin/env bash
# What compaction does for the scans: replays every restaurant and consumer and the first ORDERS
# orders of the full-scale data (no statuses) through the release API while larder-worker
# flushes the log in batches of FLUSH_BATCH (the default 5,000; smaller batches stand in for a
# trickle of real-time events), then times `simple_feature` (RUNS runs) and `feature-history`
# before and after one `compact-bronze` run, with the objects per source each time.
# Usage: ORDERS=1200000 FLUSH_BATCH=5000 RUNS=3 bash benches/compaction.sh   (KEEP=1 keeps WORK)
set -euo pipefail
cd "$(dirname "$0")/.."

ORDERS="${ORDERS:-1200000}"
PORT="${BENCH_PORT:-8793}"
DB=13
DATA="${DATA:-/tmp/larder-full-data}"
WORK="$(mktemp -d /tmp/larder-compaction.XXXX)"
BIN="${CARGO_TARGET_DIR:-target}/release"
export LARDER__REDIS__URL="redis://127.0.0.1:6379/$DB" LARDER__LOG__LEVEL=warn \
       LARDER__LAKE__ROOT="$WORK/lake" LARDER__LAKE__CACHE_DIR="$WORK/cache" \
       LARDER__BATCH__RESULTS_DIR="$WORK/results" LARDER__SERVER__BIND="127.0.0.1:$PORT" \
       LARDER__REDIS__RAW_TTL_SECS=60 LARDER__WORKER__FLUSH_BATCH="${FLUSH_BATCH:-5000}" \
       LARDER__WORKER__COMPACT_CRON="0 0 0 1 1 *" LARDER__WORKER__SIMPLE_FEATURE_CRON="0 0 0 1 1 *"

bash deploy/local/ensure-redis.sh
cargo build --release --quiet -p larder-api -p larder-cli -p larder-worker
[ -d "$DATA" ] || "$BIN/larder" generate --out "$DATA" --orders 3600000 --seed 3
redis-cli -n "$DB" flushdb >/dev/null
"$BIN/larder-api" > "$WORK/api.log" 2>&1 & API=$!
"$BIN/larder-worker" > "$WORK/worker.log" 2>&1 & WORKER=$!
trap 'kill $API $WORKER 2>/dev/null; redis-cli -n "$DB" flushdb >/dev/null; [ -n "${KEEP:-}" ] && echo "kept $WORK" || rm -rf "$WORK"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null && break; sleep 0.1; done

mkdir -p "$WORK/data"
{ zcat "$DATA/order.json.gz" || true; } | head -n "$ORDERS" | gzip -1 > "$WORK/data/order.json.gz" # zcat ends on SIGPIPE
cp "$DATA/restaurant.csv.gz" "$DATA/consumer.csv.gz" "$WORK/data/"
echo "\$ larder replay DIR   (every restaurant and consumer, the first $ORDERS orders)"
"$BIN/larder" replay --url "http://127.0.0.1:$PORT" --progress quiet "$WORK/data" | tail -1
backlog() { for s in order status restaurant consumer; do redis-cli -n "$DB" xlen "events:$s"; done | awk '{t += $1} END {print t}'; }
while [ "$(backlog)" != 0 ]; do sleep 1; done
sleep 2 # the last flush's objects

objects() {
    for s in order restaurant consumer; do
        printf '%s %s objects; ' "$s" "$(find "$WORK/lake/bronze/$s" -name '*.parquet' | wc -l)"
    done
    echo
}
job() {
    "$BIN/larder" jobs run "$1" --wait 3600 --url "http://127.0.0.1:$PORT" > "$WORK/$1.json"
    python3 benches/job_time.py "$WORK/$1.json"
}
scans() {
    objects
    for _ in $(seq "${RUNS:-3}"); do job simple_feature; done
    job feature-history
}
echo "## before compaction"
scans
echo "## compact-bronze"
job compact-bronze
python3 -c 'import json, sys; s = json.load(open(sys.argv[1]))["summary"]; print({k: s[k] for k in ("partitions", "objects_merged", "leftovers_deleted")})' "$WORK/compact-bronze.json"
echo "## after compaction"
scans
