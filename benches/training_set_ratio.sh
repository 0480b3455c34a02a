#!/usr/bin/env bash
# The training-set target's ratio, measured in alternating rounds so both sides meet the same
# machine: `larder training-set` for one view beside the bare Polars as-of join of the same rows
# (benches/asof_baseline.py), each ROUNDS times, then the medians and their ratio. Each round also
# times Python Polars only reading the gold columns the training set reads (benches/gold_read.py):
# what reading its inputs alone costs.
# Usage: bash benches/training_set_ratio.sh LAKE_DIR ENTITIES.parquet [VIEW KEY_COLUMN]
#   (a lake with gold, e.g. one kept by `KEEP=1 bash benches/batch.sh`; ROUNDS=5 by default,
#   after one round that is not counted)
set -euo pipefail
cd "$(dirname "$0")/.."

LAKE="$1" ENTITIES="$2" VIEW="${3:-restaurant}" KEY="${4:-merchant_id}" ROUNDS="${ROUNDS:-5}"
BIN="${CARGO_TARGET_DIR:-target}/release"
OUT="$(mktemp -d /tmp/larder-ratio.XXXX)"
trap 'rm -rf "$OUT"' EXIT
cargo build --release --quiet -p larder-cli
export LARDER__LAKE__ROOT="$LAKE" LARDER__LAKE__CACHE_DIR="$OUT/cache" LARDER__LOG__LEVEL=warn

# A first round, not counted: the first run after a build pays for loading the fresh binary.
"$BIN/larder" training-set --entities "$ENTITIES" --features "$VIEW" --out "$OUT/set.parquet" > /dev/null
for round in $(seq "$ROUNDS"); do
    # Each side timed inside its process, from reading its inputs to holding its result (the
    # training set also writes its Parquet file; the join writes nothing), as the join's script
    # times itself after importing Polars; the training set's wall time and peak RSS beside.
    set_s=$(/usr/bin/time -f "%e %M" -o "$OUT/time" "$BIN/larder" training-set --entities "$ENTITIES" \
        --features "$VIEW" --out "$OUT/set.parquet" | sed -E 's/.* in ([0-9.]+) s$/\1/')
    read -r wall_s peak_kb < "$OUT/time"
    join_s=$(python3 benches/asof_baseline.py "$LAKE" "$ENTITIES" "$VIEW" "$KEY" | sed -E 's/.* in ([0-9.]+) s .*/\1/')
    read_s=$(python3 benches/gold_read.py "$LAKE" "$VIEW" | sed -E 's/.* in ([0-9.]+) s$/\1/')
    echo "round $round: training set $set_s s (process wall $wall_s s, peak RSS $((peak_kb / 1024)) MB), bare join $join_s s, gold read $read_s s"
    echo "$set_s $join_s $read_s" >> "$OUT/rounds"
done
python3 - "$OUT/rounds" <<'PY'
import statistics, sys
rounds = [tuple(map(float, line.split())) for line in open(sys.argv[1])]
sets, joins, reads = (statistics.median(r[i] for r in rounds) for i in range(3))
print(f"median: training set {sets:.2f} s, bare join {joins:.2f} s, ratio {sets / joins:.2f}")
print(f"median: gold read alone {reads:.2f} s, {reads / joins:.2f} x the bare join")
PY
