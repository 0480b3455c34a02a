#!/usr/bin/env python3
"""Posts the iFood samples to a running larder API and reports Redis memory per key family.

Usage: sample-memory.py [--url http://127.0.0.1:8000] [--samples ../shared/ifood-sample]
                        [--redis-db 0] [--prefix '']
Start the API first (e.g. `make run`, or with LARDER__REDIS__KEY_PREFIX=mem: to keep the data
apart). Needs only the Python standard library and redis-cli.
"""
import argparse, csv, json, subprocess, urllib.request
from collections import defaultdict

p = argparse.ArgumentParser()
p.add_argument("--url", default="http://127.0.0.1:8000")
p.add_argument("--samples", default="../shared/ifood-sample")
p.add_argument("--redis-db", default="0")
p.add_argument("--prefix", default="")
a = p.parse_args()

def post(source, rows):
    for i in range(0, len(rows), 2000):
        req = urllib.request.Request(f"{a.url}/v1/events/{source}", data=json.dumps(rows[i:i + 2000]).encode(),
                                     headers={"content-type": "application/json"})
        json.load(urllib.request.urlopen(req))

for source, name in [("restaurant", "restaurant.csv"), ("order", "order_sample.csv"), ("status", "status_sample.csv")]:
    rows = [{k: v for k, v in r.items() if v not in ("", "null")} for r in csv.DictReader(open(f"{a.samples}/{name}"))]
    post(source, rows)

def cli(*args):
    return subprocess.run(["redis-cli", "-n", a.redis_db, *args], capture_output=True, text=True, check=True).stdout.split()

families = defaultdict(lambda: [0, 0])
for key in cli("--scan", "--pattern", f"{a.prefix}*"):
    rest = key[len(a.prefix):]
    if rest.startswith("{rtf_"):
        family = rest.split("}")[0][1:].split(":")[0] + " " + rest.split("}:")[1].split(":")[0] + " set/list"
    elif rest.startswith("events:"):
        family = rest
    else:
        family = rest.split(":")[0]
    usage = int(cli("MEMORY", "USAGE", key, "SAMPLES", "0")[0])
    families[family][0] += 1
    families[family][1] += usage
print(f"{'family':34} {'keys':>7} {'bytes':>12} {'bytes/key':>10}")
for family, (count, total) in sorted(families.items()):
    print(f"{family:34} {count:7} {total:12} {total // count:10}")
