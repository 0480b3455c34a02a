#!/usr/bin/env bash
# Batch-side figures: generate ORDERS orders, replay them through the API while larder-worker
# flushes the event log into a local lake, report Redis' bytes per entity of each view
# (benches/entity_memory.py), time the jobs (simple_feature, feature-history) and
# report the worker's peak RSS; then build a ROWS-row training set over every view with
# `larder training-set` (time, peak RSS), and one over restaurant in alternating rounds with a
# bare Polars as-of join of the same rows (benches/training_set_ratio.sh).
# Usage: ORDERS=500000 ROWS=1000000 bash benches/batch.sh
#   RAW_TTL=60: expire raw_{source}:{id} hashes after 60 s, so the full scale (3.6 M orders,
#   ≈15 M events) fits in this machine's Redis; KEEP=1 keeps the work directory; REUSE=DIR runs
#   the jobs again on a kept directory's lake, without generating or replaying.
#   MODULE=1: the API writes to a Redis of its own (port 6394) with larder's module loaded, so
#   ingestion runs LARDER.INGEST instead of the script (MODULE=FILE.so: another build of it, a copy
#   kept to compare against), with deploy/docker-compose.yml's hash setting; REDIS_ARGS go to that
#   redis-server. API_BIN=FILE, WORKER_BIN=FILE: other
#   builds of larder-api and larder-worker (copies kept to compare against). COMPACT=1 keeps the
#   worker's hourly compact-bronze cron on (it is off by default here: at minute 30 of an hour
#   it merges the replay's bronze objects, about 130 s of CPU taken from Redis' cores mid-replay,
#   so a run's figure would depend on the clock).
set -euo pipefail
cd "$(dirname "$0")/.."

ORDERS="${ORDERS:-500000}"
ROWS="${ROWS:-1000000}"
PORT="${BENCH_PORT:-8791}"
DB=13
WORK="${REUSE:-$(mktemp -d /tmp/larder-batch.XXXX)}"
BIN="${CARGO_TARGET_DIR:-target}/release"
RPORT=6379
[ -n "${MODULE:-}" ] && RPORT=6394
REDIS=(redis-cli -p "$RPORT" -n "$DB")
export LARDER__REDIS__URL="redis://127.0.0.1:$RPORT/$DB" LARDER__LOG__LEVEL=warn \
       LARDER__LAKE__ROOT="$WORK/lake" LARDER__LAKE__CACHE_DIR="$WORK/cache" \
       LARDER__BATCH__RESULTS_DIR="$WORK/results" LARDER__SERVER__BIND="127.0.0.1:$PORT" \
       LARDER__REDIS__RAW_TTL_SECS="${RAW_TTL:-0}"
[ -n "${COMPACT:-}" ] || export LARDER__WORKER__COMPACT_CRON=""

bash deploy/local/ensure-redis.sh
cargo build --release --quiet -p larder-api -p larder-cli -p larder-worker
if [ -n "${MODULE:-}" ]; then
    cargo build --release --quiet -p larder-redis-module
    SO="$BIN/liblarder_redis_module.so"
    [[ "$MODULE" == *.so ]] && SO="$MODULE"
    redis-cli -p "$RPORT" shutdown nosave >/dev/null 2>&1 || true
    redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
        --hash-max-listpack-value 4096 \
        --logfile "/tmp/larder-redis-$RPORT.log" \
        --loadmodule "$(realpath "$SO")" ${REDIS_ARGS:-}
    for _ in $(seq 50); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
"${REDIS[@]}" flushdb >/dev/null
"${API_BIN:-$BIN/larder-api}" > "$WORK/api.log" 2>&1 & API=$!
"${WORKER_BIN:-$BIN/larder-worker}" > "$WORK/worker.log" 2>&1 & WORKER=$!
trap 'kill $API $WORKER 2>/dev/null; [ -z "${MODULE:-}" ] || redis-cli -p "$RPORT" shutdown nosave >/dev/null 2>&1; [ -n "${KEEP:-}${REUSE:-}" ] && echo "kept $WORK" || rm -rf "$WORK"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null && break; sleep 0.1; done

if [ -z "${REUSE:-}" ]; then
    echo "\$ larder generate --out DIR --orders $ORDERS --seed 3"
    "$BIN/larder" generate --out "$WORK/data" --orders "$ORDERS" --seed 3
    start=$(date +%s.%N)
    echo "\$ larder replay --url http://127.0.0.1:$PORT --progress quiet DIR   (worker flushing meanwhile)"
    /usr/bin/time -f "replay client: %U s user, %S s system" \
        "$BIN/larder" replay --url "http://127.0.0.1:$PORT" --progress quiet "$WORK/data"
    backlog() { for s in order status restaurant consumer; do "${REDIS[@]}" xlen "events:$s"; done | awk '{t += $1} END {print t}'; }
    while [ "$(backlog)" != 0 ]; do sleep 1; done
    echo "replay + lake flush done (every stream empty) after $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"
    # Where the machine's two cores went: CPU seconds of each process since it started (the
    # worker's and Redis' include their work before the replay, which is little).
    cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$1/stat"; }
    echo "CPU: Redis $("${REDIS[@]}" info cpu | awk -F: '/^used_cpu_(user|sys):/ {t += $2} END {printf "%.1f", t}') s," \
        "API $(cpu $API) s, worker $(cpu $WORKER) s (and the replay client's above)"
    echo "lake: $(find "$WORK/lake/bronze" -name '*.parquet' | wc -l) objects, $(du -sh "$WORK/lake" | cut -f1)"
    echo "Redis used memory: $("${REDIS[@]}" info memory | awk -F: '/^used_memory_human/ {print $2}' | tr -d '\r'), peak $("${REDIS[@]}" info memory | awk -F: '/^used_memory_peak_human/ {print $2}' | tr -d '\r')"
    echo "\$ python3 benches/entity_memory.py $RPORT $DB   (Redis bytes per entity per view)"
    python3 benches/entity_memory.py "$RPORT" "$DB"
fi

for job in simple_feature feature-history; do
    echo "\$ larder jobs run $job --wait 1800 --url http://127.0.0.1:$PORT"
    "$BIN/larder" jobs run "$job" --wait 1800 --url "http://127.0.0.1:$PORT" > "$WORK/$job.json"
    python3 benches/job_time.py "$WORK/$job.json"
done
echo "worker peak RSS: $(awk '/VmHWM/ {printf "%.0f MB", $2 / 1024}' /proc/$WORKER/status)"

python3 -c 'import polars' 2>/dev/null || pip install --quiet polars
python3 benches/entities.py "$WORK/lake" "$ROWS" "$WORK/entities.parquet"
echo "\$ larder training-set --entities ENTITIES --features restaurant,consumer,order --out OUT"
/usr/bin/time -f "peak RSS %M KB, wall %e s" "$BIN/larder" training-set --entities "$WORK/entities.parquet" \
    --features restaurant,consumer,order --out "$WORK/training-set.parquet"
echo "\$ ROUNDS=3 bash benches/training_set_ratio.sh LAKE ENTITIES restaurant merchant_id"
ROUNDS=3 bash benches/training_set_ratio.sh "$WORK/lake" "$WORK/entities.parquet" restaurant merchant_id
