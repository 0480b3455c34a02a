"""What reading a training set's inputs alone costs: Python Polars reading, on every core, the
gold columns a training set of VIEW reads (the change rows with their values and arrival order,
the measures' contributions, the distinct members and the frequency values), nothing else.

Usage: python3 benches/gold_read.py LAKE_DIR VIEW
"""

import glob
import sys
import time

import polars as pl

lake, view = sys.argv[1:3]
TABLES = {
    "changes": ["entity", "feature", "event_time", "value", "_ingested_at", "_stream_seq"],
    "measures": ["entity", "measure", "event_time", "value"],
    "distinct": ["entity", "measure", "event_time", "member"],
    "frequencies": ["entity", "measure", "event_time", "value"],
}
started = time.perf_counter()
# A view without distinct counts or frequencies has no such table.
frames = [
    pl.scan_parquet(files, hive_partitioning=False).select(columns)
    for table, columns in TABLES.items()
    if (files := f"{lake}/gold/{view}/{table}/*/*.parquet") and glob.glob(files)
]
rows = sum(frame.height for frame in pl.collect_all(frames))
elapsed = time.perf_counter() - started
print(f"gold read ({view}): {rows:,} rows of {len(frames)} tables in {elapsed:.2f} s")
