"""What reaches Redis while an action runs, from `redis-cli monitor`: shared by the baselines."""

import os
import re
import subprocess
import time

# The bench's own Redis (benches/bench.sh exports its port).
PORT = ["-p", os.environ.get("BENCH_REDIS_PORT", "6379")]

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


def capture(action):
    """Runs `action` under MONITOR; returns each command seen as (raw line, unquoted tokens).

    Reads until an ECHO sent after the action shows up, so commands still queued in Redis or in
    MONITOR's output when the action returns (a loaded server) are not cut off."""
    monitor = subprocess.Popen(["redis-cli", *PORT, "monitor"], stdout=subprocess.PIPE, text=True, errors="replace")
    time.sleep(0.3)
    action()
    end = f"capture-end-{time.time_ns()}"
    subprocess.run(["redis-cli", *PORT, "echo", end], capture_output=True, check=True)
    lines = []
    deadline = time.monotonic() + 60
    for line in monitor.stdout:
        if end in line or time.monotonic() > deadline:
            break
        lines.append(line.rstrip("\n"))
    monitor.terminate()
    monitor.wait()
    return [(line, [unescape(t) for t in TOKEN.findall(line)]) for line in lines]


def benchmark_rate(args):
    """Requests per second of one `redis-benchmark --csv` run."""
    out = subprocess.run(["redis-benchmark", *PORT, *args], capture_output=True, text=True, check=True).stdout
    # The CSV row is the command (its quotes not escaped), then rps and seven latency columns.
    return float(out.strip().splitlines()[-1].rsplit('","', 7)[1])
