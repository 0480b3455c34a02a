#!/usr/bin/env bash
# Two builds, or two Redis settings, compared on one workload at once: two Redis servers with
# larder's module (ports 6395, 6396), an API on each (8795, 8796), and the same prefix of the
# full-scale data replayed into both at the same time. Prints each Redis' CPU seconds, which on
# this VM drift by ±6–10 % between runs minutes apart (benches/replay_prefix.sh's wall times) but
# differ by under 0.5 % between two identical pairs run side by side: whatever slows the machine
# slows both. Needs a prefix directory made by benches/replay_prefix.sh.
# Usage: A_API=FILE A_MODULE=FILE.so [A_REDIS_ARGS=…] [A_REDIS_ENV=…] B_API=… B_MODULE=… \
#     [B_REDIS_ARGS=…] [B_REDIS_ENV=…] bash benches/replay_ab.sh PREFIX_DIR
#     (e.g. /tmp/larder-prefix-600000-1830000; *_REDIS_ENV: variables for that redis-server, such
#     as MALLOC_CONF=thp:always)
set -eu
cd "$(dirname "$0")/.."
PREFIX="$1"
BIN="${CARGO_TARGET_DIR:-target}/release"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; for p in 6395 6396; do redis-cli -p $p shutdown nosave 2>/dev/null; done; true' EXIT

# start PORT API_PORT API_BIN MODULE REDIS_ARGS REDIS_ENV
start() {
    redis-cli -p "$1" shutdown nosave >/dev/null 2>&1 || true
    env $6 redis-server --port "$1" --save '' --appendonly no --daemonize yes \
        --logfile "/tmp/larder-ab-$1.log" --hash-max-listpack-value 4096 \
        --loadmodule "$(realpath "$4")" $5
    for _ in $(seq 50); do redis-cli -p "$1" ping >/dev/null 2>&1 && break; sleep 0.1; done
    LARDER__REDIS__URL="redis://127.0.0.1:$1/0" LARDER__LOG__LEVEL=warn \
        LARDER__SERVER__BIND="127.0.0.1:$2" LARDER__REDIS__RAW_TTL_SECS=60 \
        LARDER__REDIS__MAX_STREAM_BACKLOG=0 "$3" > "/tmp/larder-ab-api-$2.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$2/ready" >/dev/null && break; sleep 0.1; done
}
start 6395 8795 "$A_API" "$A_MODULE" "${A_REDIS_ARGS:-}" "${A_REDIS_ENV:-}"
start 6396 8796 "$B_API" "$B_MODULE" "${B_REDIS_ARGS:-}" "${B_REDIS_ENV:-}"
"$BIN/larder" replay --url http://127.0.0.1:8795 --progress quiet "$PREFIX" > /tmp/larder-ab-replay-A.txt & A=$!
"$BIN/larder" replay --url http://127.0.0.1:8796 --progress quiet "$PREFIX" > /tmp/larder-ab-replay-B.txt & B=$!
wait $A $B
for side in A:6395 B:6396; do
    port="${side#*:}"
    echo "${side%:*}: Redis CPU $(redis-cli -p "$port" info cpu | awk -F: '/^used_cpu_(user|sys):/ {t += $2} END {printf "%.1f", t}') s," \
        "used memory $(redis-cli -p "$port" info memory | awk -F: '/^used_memory_human/ {print $2}' | tr -d '\r'), $(redis-cli -p "$port" dbsize) keys;" \
        "replay: $(awk '/^total/ {print $3 " accepted, " $4 " duplicates"}' "/tmp/larder-ab-replay-${side%:*}.txt")"
done
