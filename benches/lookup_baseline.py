"""Redis serving larder's own lookup, for the lookup ratios: sends one lookup through the API while
`redis-cli monitor` records what reaches Redis, reports the commands and reply bytes one lookup
costs, then runs each captured command with redis-benchmark at the given concurrency and
pipelining. A lookup needs every command once, so Redis alone serves at most
1 / sum(1 / rate of each command) lookups per second: the route's ceiling on this machine.

Usage: python3 benches/lookup_baseline.py API_URL PATH DB CLIENTS PIPELINE REQUESTS
"""

import subprocess
import sys
import urllib.request

from redis_monitor import PORT, benchmark_rate, capture

api, path, db, clients, pipeline, requests = sys.argv[1:7]
READS = {"HGETALL", "HGET", "HMGET", "ZCOUNT", "MGET", "GET"}

seen = capture(lambda: urllib.request.urlopen(f"{api}{path}").read())
commands = [tokens for _, tokens in seen if tokens and tokens[0].upper() in READS]
if not commands:
    sys.exit(f"no read of {path} reached Redis")

reply_bytes = sum(
    len(subprocess.run(["redis-cli", *PORT, "-n", db, *c], capture_output=True).stdout) for c in commands
)
fields = sum(len(c) - 2 for c in commands if c[0].upper() == "HMGET")
names = ", ".join(c[0].upper() for c in commands)
print(f"one lookup of {path}: {len(commands)} Redis commands in one round trip ({names}; "
      f"{fields} tile fields asked), ≈{reply_bytes:,} reply bytes")

seconds = 0.0
for c in commands:
    rate = benchmark_rate(["-n", requests, "-c", clients, "-P", pipeline, "--dbnum", db, "-q", "--csv", *c])
    seconds += 1 / rate
    print(f"$ redis-benchmark -n {requests} -c {clients} -P {pipeline} {c[0]} {c[1]} … -> {rate:,.0f}/s")
print(f"redis alone, every command of one lookup -> {1 / seconds:,.0f} lookups/s")
