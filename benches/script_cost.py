"""The two halves of benches/script_cost.sh.

capture API EVENTS CALL [SOURCE]: posts the last 200 events of EVENTS (new ids; orders unless
    SOURCE says another source) as one batch and saves the EVALSHA that reached Redis to CALL
    (JSON list of its arguments).
run SCRIPT CALL N: loads SCRIPT (`module` or a module file `*.so`: calls LARDER.INGEST instead),
    runs the saved call N times with fresh order ids (redis-benchmark -r puts a random number in
    place of each id) and prints Redis' time per order.
floor CALL N: runs the saved call once under MONITOR, then N times each with fresh order ids: as
    the script, as LARDER.INGEST (the module must be loaded), and as the commands the script ran,
    plain and pipelined; prints Redis' CPU per order for the three: the last is what storing the
    same changes costs when nothing computes them inside Redis — the floor
    of any design that keeps this storage layout (the API computing the changes, or a module).
"""

import json
import re
import subprocess
import sys
import urllib.request

from redis_monitor import PORT, capture

MARK = "MARKQ"  # + 7 digits: as long as redis-benchmark's __rand_int__ placeholder


def cli(*args, stdin=None):
    return subprocess.run(["redis-cli", *PORT, *args], input=stdin, capture_output=True, text=True,
                          check=True).stdout


def capture_call(api, events, out, source="order"):
    body = []
    for i, line in enumerate(open(events).read().splitlines()[-200:]):
        event = json.loads(line)
        event[f"{source}_id"] = f"{MARK}{i:07d}"
        body.append(json.dumps(event))

    def send():
        request = urllib.request.Request(f"{api}/v1/events/{source}", "\n".join(body).encode(),
                                         {"Content-Type": "application/x-ndjson"})
        urllib.request.urlopen(request).read()

    # The call that carries the batch's new ids (the API may run other scripts meanwhile).
    calls = [tokens for _, tokens in capture(send)
             if tokens and tokens[0].upper() == "EVALSHA" and any(MARK in t for t in tokens)]
    if len(calls) != 1:
        sys.exit(f"expected one EVALSHA for the batch, saw {len(calls)}")
    json.dump(calls[0], open(out, "w"))


def run(script, call_file, n):
    call = json.load(open(call_file))
    orders = int(call[3 + int(call[2]) + 2])  # ARGV[3]: events in the call
    args = [re.sub(MARK + r"\d{7}", "__rand_int__", t) for t in call]
    native = script == "module" or script.endswith(".so")
    if native:
        args = ["LARDER.INGEST", *args[2:]]
    else:
        args[1] = cli("-x", "script", "load", stdin=open(script).read()).strip()
    cli("config", "resetstat")
    subprocess.run(["redis-benchmark", *PORT, "-n", str(n), "-c", "1", "-r", "1000000000", "-q", *args],
                   capture_output=True, check=True)
    stats = cli("info", "commandstats")
    times = {c: (int(k), int(u)) for c, k, u in re.findall(r"cmdstat_([\w.|]+):calls=(\d+),usec=(\d+)", stats)}
    errors = re.findall(r"errorstat_\w+:count=\d+", cli("info", "errorstats"))
    if errors:
        sys.exit(f"{script}: the script failed: {errors}")
    command = "larder.ingest" if native else "evalsha"
    calls, usec = times[command]
    inner = sum(u for c, (_, u) in times.items() if c != command)
    print(f"{script}: {usec / calls / orders:.1f} µs of Redis per order, of which commands "
          f"{inner / calls / orders:.1f} µs ({calls} calls of {orders} orders)")


def main_thread_cpu():
    info = cli("info", "cpu")
    return sum(float(v) for v in re.findall(r"used_cpu_(?:user|sys)_main_thread:([\d.]+)", info))


def resp(tokens):
    out = [f"*{len(tokens)}\r\n".encode()]
    for t in tokens:
        b = t.encode("latin-1") if all(ord(c) < 256 for c in t) else t.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def floor(call_file, n):
    call = json.load(open(call_file))
    orders = int(call[3 + int(call[2]) + 2])
    sha = cli("-x", "script", "load", stdin=open("crates/redis/src/ingest.lua").read()).strip()
    call[1] = sha

    def fresh(tokens, round_):
        return [re.sub(MARK + r"(\d{7})", lambda m: f"R{round_:06d}{m.group(1)}", t) for t in tokens]

    inner = []

    def once():
        subprocess.run(["redis-cli", *PORT, "--pipe"], input=resp(fresh(call, 0)), capture_output=True,
                       check=True)

    for line, tokens in capture(once):
        if "lua]" in line.split('"', 1)[0]:
            inner.append(tokens)
    print(f"the call of {orders} orders ran {len(inner)} commands ({len(inner) / orders:.1f} per order)")

    def timed(payload):
        before = main_thread_cpu()
        subprocess.run(["redis-cli", *PORT, "--pipe"], input=payload, capture_output=True, check=True)
        return (main_thread_cpu() - before) * 1e6 / (n * orders)

    script = timed(b"".join(resp(fresh(call, r)) for r in range(1, n + 1)))
    native = timed(b"".join(resp(["LARDER.INGEST", *fresh(call, r)[2:]]) for r in range(n + 1, 2 * n + 1)))
    plain = timed(b"".join(resp(fresh(c, r)) for r in range(2 * n + 1, 3 * n + 1) for c in inner))
    print(f"Redis CPU per order: {script:.1f} µs as the script; {native:.1f} µs as LARDER.INGEST; "
          f"{plain:.1f} µs as the same commands pipelined ({n} calls each)")


if __name__ == "__main__":
    if sys.argv[1] == "capture":
        capture_call(*sys.argv[2:6])
    elif sys.argv[1] == "floor":
        floor(sys.argv[2], int(sys.argv[3]))
    else:
        run(sys.argv[2], sys.argv[3], int(sys.argv[4]))
