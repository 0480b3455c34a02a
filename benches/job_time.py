"""Prints a job run's wall time and summary from its record (`larder jobs run NAME --wait S`)."""
import json
import sys
from datetime import datetime

r = json.load(open(sys.argv[1]))
t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
secs = (t(r["finished_at"]) - t(r["started_at"])).total_seconds()
s = r["summary"]
print(f"{r['name']}: {secs:.2f} s, rows_in {s['rows_in']} ({s['rows_in'] / max(secs, 1e-9):,.0f}/s), rows_out {s['rows_out']}, objects {s['objects_written']}")
