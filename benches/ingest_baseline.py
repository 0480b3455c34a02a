"""Redis running larder's own ingest script, for the ingest ratio: sends one order through the
API while `redis-cli monitor` records what reaches Redis, reports the Redis commands and bytes
that one event costs, then replays that exact EVALSHA with redis-benchmark (a fresh order id per
call via __rand_int__) at the given concurrency and pipelining.

Usage: python3 benches/ingest_baseline.py API_URL ORDER_TEMPLATE DB CLIENTS PIPELINE REQUESTS
"""

import sys
import time
import urllib.request

from redis_monitor import benchmark_rate, capture

api, template, db, clients, pipeline, requests = sys.argv[1:7]
MARK = f"capturedorder{time.time_ns()}"


def send():
    body = open(template).read().replace("ORDER_ID", MARK).encode()
    request = urllib.request.Request(f"{api}/order-event/", body, {"Content-Type": "application/json"})
    urllib.request.urlopen(request).read()


script, inner = None, []
for line, tokens in capture(send):
    if not tokens:
        continue
    if tokens[0].upper() == "EVALSHA" and any(MARK in t for t in tokens):
        script = tokens
    elif script is not None and " lua]" in line:
        inner.append(tokens)
if script is None:
    sys.exit("no EVALSHA with the marked order reached Redis")
sent = sum(len(t.encode()) for t in script)
written = sum(len(t.encode()) for c in inner for t in c[1:])
print(
    f"one order: 1 EVALSHA of {sent:,} bytes, running {len(inner)} Redis commands inside "
    f"({written:,} bytes of arguments: keys, fields, values)"
)

args = [t.replace(MARK, "__rand_int__") for t in script]
rate = benchmark_rate(["-n", requests, "-c", clients, "-P", pipeline, "-r", "1000000000",
                      "--dbnum", db, "-q", "--csv", *args])
print(f"$ redis-benchmark -n {requests} -c {clients} -P {pipeline} -r 1000000000 EVALSHA <larder's ingest script, that order> -> {rate:,.0f} events/s")
