"""Redis' CPU per event log entry for the lake writer's two ways of reading the log: a consumer
group (XREADGROUP, then XACK of the batch's ids and XTRIM in MULTI, as larder did until the
thirteenth session) against reading the log's head (XRANGE, then XTRIM), in alternating rounds.
Each round fills a stream with N entries shaped like larder's (id, fp, data of 800 bytes) and
reads it in batches of 10,000; the figure is Redis' own CPU (INFO cpu) over the read.

Usage: python3 benches/log_read_cost.py [PORT [DB]]   (default 6379, database 14, which it
flushes; needs the `redis` package: pip install redis)
"""

import sys

import redis

port, db = int(sys.argv[1]) if len(sys.argv) > 1 else 6379, int(sys.argv[2]) if len(sys.argv) > 2 else 14
r = redis.Redis(port=port, db=db)
N, BATCH = 200_000, 10_000
payload = b"x" * 800


def fill():
    r.flushdb()
    pipe = r.pipeline(transaction=False)
    for i in range(N):
        pipe.xadd("s", {"id": f"order-{i}", "fp": "f" * 16, "data": payload})
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def redis_cpu():
    info = r.info("cpu")
    return info["used_cpu_user"] + info["used_cpu_sys"]


def below(last):
    ms, seq = last.decode().split("-")
    return f"{ms}-{int(seq) + 1}"


def consumer_group():
    r.xgroup_create("s", "lake", "0")
    while got := r.xreadgroup("lake", "lake", {"s": ">"}, count=BATCH):
        ids = [entry[0] for entry in got[0][1]]
        pipe = r.pipeline(transaction=True)
        pipe.xack("s", "lake", *ids)
        pipe.xtrim("s", minid=below(ids[-1]))
        pipe.execute()


def head():
    while got := r.xrange("s", "-", "+", count=BATCH):
        r.xtrim("s", minid=below(got[-1][0]))


for name, read in [("XREADGROUP + XACK + XTRIM", consumer_group), ("XRANGE + XTRIM", head)] * 3:
    fill()
    before = redis_cpu()
    read()
    print(f"{name}: {(redis_cpu() - before) * 1e6 / N:.2f} µs of Redis CPU per entry")
r.flushdb()
