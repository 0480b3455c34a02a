#!/usr/bin/env bash
# What ingestion costs Redis at full-scale density, in five minutes instead of the full replay's
# twenty-odd: generates the full-scale data (3.6 M orders over 62 days), keeps the first N orders, as
# many statuses, consumers in proportion and every restaurant, and replays them through a
# release API into a Redis of its own (port 6393, nothing else on it; no worker, so the event log
# is not trimmed). Prints the replay's report and Redis' own time: in the ingest calls in all and,
# every 20 s, per call (a call carries up to `redis.events_per_script` events of one source).
# MODULE=1 loads larder's Redis module, so the API ingests with LARDER.INGEST instead of the script
# (MODULE=FILE.so: another build of it, a copy kept to compare against); API_BIN=FILE runs another
# build of larder-api (a copy kept to compare against);
# REDIS_ARGS go to redis-server (e.g. "--io-threads 2"), to compare Redis settings; RAW_TTL (60 s
# by default, as the full scale needs to fit in memory; 0: no TTL) is the API's raw-hash TTL.
# STATUSES (3.05 per order by default, as in the data) is how many statuses to keep: 0 replays
# orders only, e.g. all 3.6 M of them, the part of the full replay where pruning costs most.
# Usage: N=1200000 [STATUSES=…] [MODULE=1] [REDIS_ARGS=...] [RAW_TTL=60] \
#     bash benches/replay_prefix.sh LABEL
set -eu
cd "$(dirname "$0")/.."
LABEL="${1:-prefix}"
N="${N:-1200000}"
BIN="${CARGO_TARGET_DIR:-target}/release"
DATA="${DATA:-/tmp/larder-full-data}"
STATUSES="${STATUSES:-$((N * 305 / 100))}"
PREFIX="/tmp/larder-prefix-$N-$STATUSES"
PORT=6393 API_PORT=8793

cargo build --release --quiet -p larder-api -p larder-cli
LOAD=()
if [ -n "${MODULE:-}" ]; then
    cargo build --release --quiet -p larder-redis-module
    SO="$BIN/liblarder_redis_module.so"
    [[ "$MODULE" == *.so ]] && SO="$MODULE"
    LOAD=(--loadmodule "$(realpath "$SO")")
fi
[ -d "$DATA" ] || "$BIN/larder" generate --out "$DATA" --orders 3600000 --seed 3
if [ ! -d "$PREFIX" ]; then
    # Orders and statuses are written in event-time order: a prefix is the first days.
    mkdir -p "$PREFIX"
    zcat "$DATA/order.json.gz" | head -n "$N" | gzip -1 > "$PREFIX/order.json.gz"
    zcat "$DATA/status.json.gz" | head -n "$STATUSES" | gzip -1 > "$PREFIX/status.json.gz"
    zcat "$DATA/consumer.csv.gz" | head -n $((N * 97 / 400)) | gzip -1 > "$PREFIX/consumer.csv.gz"
    cp "$DATA/restaurant.csv.gz" "$PREFIX/"
fi

redis-cli -p "$PORT" shutdown nosave 2>/dev/null || true
# deploy/docker-compose.yml's hash setting; REDIS_ARGS after it may undo it.
redis-server --port "$PORT" --save '' --appendonly no --daemonize yes --logfile "/tmp/larder-redis-$PORT.log" \
    --hash-max-listpack-value 4096 "${LOAD[@]}" ${REDIS_ARGS:-}
for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
LARDER__REDIS__URL="redis://127.0.0.1:$PORT/0" LARDER__LOG__LEVEL=warn \
    LARDER__SERVER__BIND="127.0.0.1:$API_PORT" LARDER__REDIS__RAW_TTL_SECS="${RAW_TTL:-60}" \
    LARDER__REDIS__MAX_STREAM_BACKLOG=0 "${API_BIN:-$BIN/larder-api}" > "/tmp/larder-prefix-api.log" 2>&1 & API=$!
SAMPLER=
trap 'kill $API $SAMPLER 2>/dev/null; redis-cli -p "$PORT" shutdown nosave 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$API_PORT/ready" >/dev/null && break; sleep 0.1; done

# Calls and µs of the ingest command: the script's EVALSHA or the module's LARDER.INGEST.
ingest_calls() { redis-cli -p "$PORT" info commandstats 2>/dev/null | awk -F'[=,]' '/cmdstat_(evalsha|larder.ingest):/ {c += $2; u += $4} END {print c + 0, u + 0}'; }
( start=$(date +%s); while sleep 20; do echo "$(( $(date +%s) - start )) $(ingest_calls)"; done ) \
    | awk '{ if (c != "") printf "%4d s: %.1f ms of Redis per script call\n", $1, ($3 - u) / 1000 / ($2 - c + 1e-9); fflush() } { c = $2; u = $3 }' &
SAMPLER=$!
start=$(date +%s.%N)
"$BIN/larder" replay --url "http://127.0.0.1:$API_PORT" --progress quiet "$PREFIX"
kill $SAMPLER 2>/dev/null || true
echo "$LABEL: replay $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s," \
    "ingest calls $(ingest_calls | awk '{printf "%.1f s in %d calls", $2 / 1e6, $1}'), Redis used memory" \
    "$(redis-cli -p "$PORT" info memory | awk -F: '/^used_memory_human/ {print $2}' | tr -d '\r')"
redis-cli -p "$PORT" info commandstats > "/tmp/larder-prefix-commandstats-$LABEL.txt"
echo "commands: /tmp/larder-prefix-commandstats-$LABEL.txt"
