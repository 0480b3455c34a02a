#!/usr/bin/env python3
"""Reads larder's lake with pyarrow (pip install pyarrow), as any other engine would: Hive
partitions (`date=YYYY-MM-DD`) and typed Parquet columns. Prints rows and schema per source.

Usage: read-lake.py [LAKE_DIR]   (default data/lake)
"""
import sys

import pyarrow.dataset as ds

root = sys.argv[1] if len(sys.argv) > 1 else "data/lake"
for source in ["order", "status", "restaurant", "consumer"]:
    try:
        dataset = ds.dataset(f"{root}/bronze/{source}", format="parquet", partitioning="hive")
    except FileNotFoundError:
        print(f"{source}: no data")
        continue
    table = dataset.to_table()
    dates = sorted(set(table.column("date").to_pylist()))
    ids = table.column("_stream_id").to_pylist()
    print(f"{source}: {table.num_rows} rows, {len(set(ids))} distinct stream ids, dates {dates[0]}..{dates[-1]}")
    print("   ", ", ".join(f"{f.name}: {f.type}" for f in table.schema))
try:
    gold = ds.dataset(f"{root}/gold/simple_feature", format="parquet").to_table()
    print(f"gold/simple_feature: {gold.num_rows} rows; {', '.join(gold.schema.names)}")
except FileNotFoundError:
    print("gold/simple_feature: not computed yet")
