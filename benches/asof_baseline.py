"""The bare Polars as-of join the training-set target is measured against: the same entity
table joined backward on event time to one view's gold change rows, by entity, nothing else.

Usage: python3 benches/asof_baseline.py LAKE_DIR ENTITIES.parquet VIEW KEY_COLUMN
"""

import sys
import time
import warnings

import polars as pl

lake, entities, view, key = sys.argv[1:5]
# Rows are sorted by time; Polars cannot verify that per `by` group and says so.
warnings.filterwarnings("ignore", message="Sortedness")
started = time.perf_counter()
rows = pl.read_parquet(entities).select(
    pl.col(key).cast(pl.String).alias("entity"), pl.col("event_timestamp").cast(pl.Datetime("ms"))
)
changes = (
    pl.scan_parquet(f"{lake}/gold/{view}/changes/*/*.parquet", hive_partitioning=False)
    .select("entity", "feature", "event_time", "value")
    .collect()
)
joined = rows.sort("event_timestamp").join_asof(
    changes.sort("event_time"),
    left_on="event_timestamp",
    right_on="event_time",
    by="entity",
    strategy="backward",
)
elapsed = time.perf_counter() - started
print(
    f"bare as-of join ({view}): {rows.height:,} rows x {changes.height:,} change rows in {elapsed:.2f} s"
    f" (read + sort + join), {joined.height:,} rows out"
)
