"""Entity table for the training-set benchmark: ROWS rows sampled (with replacement) from the
bronze orders of a lake, each asking for its order's restaurant, customer and order 30 minutes
after the order was placed, with a label to carry through.

Usage: python3 benches/entities.py LAKE_DIR ROWS OUT.parquet
"""

import sys

import polars as pl

lake, rows, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
orders = pl.scan_parquet(f"{lake}/bronze/order/*/*.parquet", hive_partitioning=False).select(
    "merchant_id", "customer_id", "order_id", "order_created_at"
).collect()
table = orders.sample(n=rows, with_replacement=True, seed=7).select(
    "merchant_id",
    "customer_id",
    "order_id",
    (pl.col("order_created_at").cast(pl.Datetime("ms")) + pl.duration(minutes=30)).alias("event_timestamp"),
    (pl.col("order_id").hash(seed=1) % 2).cast(pl.Int8).alias("label"),
)
table.write_parquet(out)
print(f"{table.height:,} entity rows from {orders.height:,} orders -> {out}")
