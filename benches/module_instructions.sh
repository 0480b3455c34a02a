#!/usr/bin/env bash
# Instructions Redis executes inside LARDER.INGEST for CALLS runs of the call of 200 orders that
# benches/script_cost.sh captured (run that first), per module build given: callgrind counts only
# inside the command (--toggle-collect), on an empty Redis, so the figure repeats within 0.2 %
# for the same build (the random ids vary) and does not move with a noisy machine — where
# script_cost.sh's timings spread by ±15 %. Instructions are not time (a full-scale Redis also
# waits on memory): compare builds with this, and size the result with timings.
# REDIS_ARGS go to redis-server (e.g. "--appendonly yes": writes passed on to an AOF).
# CALL=/tmp/larder-script-cost/call-status.json: the call of statuses (SOURCE=status script_cost.sh).
# Usage: bash benches/module_instructions.sh MODULE.so…   (CALLS=15 REDIS_ARGS= CALL=)
set -eu
cd "$(dirname "$0")/.."
CALL="${CALL:-/tmp/larder-script-cost/call.json}"
PORT=6398
[ -f "$CALL" ] || { echo "no $CALL: run benches/script_cost.sh first" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
OUT="$(mktemp -d /tmp/larder-callgrind.XXXX)"
trap 'redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$OUT"' EXIT
for module in "$@"; do
    valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*ingest_command*' \
        --callgrind-out-file="$OUT/$(basename "$module").out" \
        redis-server --port "$PORT" --save '' --appendonly no --loadmodule "$(realpath "$module")" ${REDIS_ARGS:-} \
        > "$OUT/valgrind.log" 2>&1 &
    for _ in $(seq 300); do redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.2; done
    # The captured call with a fresh order id per run, as script_cost.sh sends it (its timing,
    # under valgrind, means nothing; it fails on an error reply).
    BENCH_REDIS_PORT=$PORT python3 benches/script_cost.py run "$module" "$CALL" "${CALLS:-15}" >/dev/null
    redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
    wait
    echo "$module: $(callgrind_annotate "$OUT/$(basename "$module").out" | awk '/PROGRAM TOTALS/ {print $1}') instructions in LARDER.INGEST, ${CALLS:-15} calls of $(basename "$CALL")"
done
