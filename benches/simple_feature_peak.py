"""simple_feature's query in Python Polars, two ways of keeping each order's latest version, for
their time and peak memory in a fresh process (what a worker's first run pays for).
Usage: python3 benches/simple_feature_peak.py LAKE sort|argmax
  sort:   the worker's query, a global sort by arrival then the last row per order_id;
  argmax: per order_id, the row with the greatest arrival key, without a sorted copy."""
import resource
import sys
import time

import polars as pl

lake, variant = sys.argv[1], sys.argv[2]
orders = pl.scan_parquet(f"{lake}/bronze/order/*/*.parquet").select(
    "cpf", "order_id", "order_total_amount", "_ingested_at", "_stream_seq"
)
started = time.time()
if variant == "sort":
    latest = (
        orders.sort("_ingested_at", "_stream_seq")
        .group_by("order_id")
        .agg(pl.col("cpf").last(), pl.col("order_total_amount").last())
    )
else:
    # A log entry's sequence number within its millisecond stays far below 2^21.
    arrival = pl.col("_ingested_at").cast(pl.Int64) * (1 << 21) + pl.col("_stream_seq")
    newest = arrival.arg_max()
    latest = orders.group_by("order_id").agg(
        pl.col("cpf").get(newest), pl.col("order_total_amount").get(newest)
    )
out = latest.group_by("cpf").agg(pl.col("order_total_amount").mean(), pl.len()).sort("cpf").collect()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{variant}: {time.time() - started:.2f} s, {out.height} cpfs, peak RSS {peak:.0f} MB")
