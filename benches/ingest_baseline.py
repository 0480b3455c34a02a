"""Redis running larder's own ingest script, for the ingest ratio: sends one order through the
API while `redis-cli monitor` records what reaches Redis, reports the Redis commands and bytes
that one event costs, then replays that exact EVALSHA with redis-benchmark (a fresh order id per
call via __rand_int__) at the given concurrency and pipelining.

Usage: python3 benches/ingest_baseline.py API_URL ORDER_TEMPLATE DB CLIENTS PIPELINE REQUESTS
"""

import re
import subprocess
import sys
import time
import urllib.request

api, template, db, clients, pipeline, requests = sys.argv[1:7]
MARK = f"capturedorder{time.time_ns()}"
TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"')
ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b", '"': '"', "\\": "\\"}


def unescape(text):
    """Undoes Redis' sdscatrepr quoting."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            if text[i + 1] == "x":
                out.append(chr(int(text[i + 2 : i + 4], 16)))
                i += 4
                continue
            out.append(ESCAPES.get(text[i + 1], text[i + 1]))
            i += 2
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


monitor = subprocess.Popen(["redis-cli", "monitor"], stdout=subprocess.PIPE, text=True, errors="replace")
time.sleep(0.3)
body = open(template).read().replace("ORDER_ID", MARK).encode()
request = urllib.request.Request(f"{api}/order-event/", body, {"Content-Type": "application/json"})
urllib.request.urlopen(request).read()
time.sleep(0.3)
monitor.terminate()
lines = monitor.communicate()[0].splitlines()

script, inner = None, []
for line in lines:
    tokens = [unescape(t) for t in TOKEN.findall(line)]
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
command = ["redis-benchmark", "-n", requests, "-c", clients, "-P", pipeline, "-r", "1000000000",
           "--dbnum", db, "-q", "--csv", *args]
out = subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip().splitlines()
# The CSV row is the command (its quotes not escaped), then rps and seven latency columns.
rate = float(out[-1].rsplit('","', 7)[1])
print(f"$ redis-benchmark -n {requests} -c {clients} -P {pipeline} -r 1000000000 EVALSHA <larder's ingest script, that order> -> {rate:,.0f} events/s")
