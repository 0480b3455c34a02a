"""Redis bytes per entity per view: every feature-view key found by a SCAN, grouped by view and
kind (the entity's hash, its version, each tier's tiles, each distinct set, waiting operations),
with `MEMORY USAGE … SAMPLES 0` of up to SAMPLE random keys of each group.

Usage: python3 benches/entity_memory.py PORT DB [SAMPLE]

Prints one line per group (keys, mean bytes) and per view the bytes an entity costs on average:
the sum over its groups of mean bytes × keys / entities. `MEMORY USAGE` counts a key's value, its
name and its entry in the key space; the key space's table itself (≈ 8–16 B a key) is not in it.
"""

import random
import re
import socket
import sys
from collections import defaultdict

port, db = int(sys.argv[1]), sys.argv[2]
sample = int(sys.argv[3]) if len(sys.argv) > 3 else 1000


class Redis:
    """The few RESP commands this needs, pipelined (no client library on the machine)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.file = self.sock.makefile("rb")

    def pipeline(self, commands):
        out = bytearray()
        for command in commands:
            out += b"*%d\r\n" % len(command)
            for part in command:
                part = part.encode() if isinstance(part, str) else part
                out += b"$%d\r\n%s\r\n" % (len(part), part)
        self.sock.sendall(out)
        return [self.reply() for _ in commands]

    def reply(self):
        line = self.file.readline()[:-2]
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b":"):
            return int(rest) if kind == b":" else rest
        if kind == b"-":
            sys.exit(f"entity_memory: Redis answered {rest.decode()}")
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.file.read(n + 2)[:-2]
        return [self.reply() for _ in range(int(rest))]


ENTITY = re.compile(rb"rtf_([^:{}]+):[^{}]*$")
TAGGED = re.compile(rb"\{rtf_([^:{}]+):[^{}]*\}:(.+)$")

redis = Redis(port)
redis.pipeline([["SELECT", db]])
groups = defaultdict(list)
cursor = b"0"
while True:
    cursor, keys = redis.pipeline([["SCAN", cursor, "MATCH", "*rtf_*", "COUNT", "5000"]])[0]
    for key in keys:
        if m := TAGGED.search(key):
            groups[(m.group(1).decode(), m.group(2).decode())].append(key)
        elif m := ENTITY.search(key):
            groups[(m.group(1).decode(), "hash")].append(key)
    if cursor == b"0":
        break

if not groups:
    sys.exit("entity_memory: no rtf_ key found")

random.seed(7)
per_view = defaultdict(float)
entities = {view: len(keys) for (view, kind), keys in groups.items() if kind == "hash"}
print(f"{'view':<12} {'kind':<22} {'keys':>10} {'mean bytes':>11}")
for (view, kind), keys in sorted(groups.items()):
    chosen = random.sample(keys, min(sample, len(keys)))
    sizes = redis.pipeline([["MEMORY", "USAGE", key, "SAMPLES", "0"] for key in chosen])
    # A key deleted since the scan (a pruned tier, a drained list) answers nil.
    sizes = [size for size in sizes if size is not None] or [0]
    mean = sum(sizes) / len(sizes)
    per_view[view] += mean * len(keys)
    print(f"{view:<12} {kind:<22} {len(keys):>10,} {mean:>11,.0f}")
for view, total in sorted(per_view.items()):
    n = entities.get(view, 0)
    if n:
        print(f"{view}: {n:,} entities, {total / n:,.0f} bytes per entity (all its keys)")
