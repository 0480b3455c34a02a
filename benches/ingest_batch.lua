-- wrk: POST /v1/events/order, NDJSON of BENCH_BATCH (default 100) new orders per request.
local template = io.open(os.getenv("BENCH_ORDER") or "order.json"):read("*a"):gsub("\n", "")
local per = tonumber(os.getenv("BENCH_BATCH") or "100")
local counter = 0
local thread_id = 0
setup = function(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end
request = function()
  local lines = {}
  for i = 1, per do
    counter = counter + 1
    lines[i] = template:gsub("ORDER_ID", string.format("batch-%d-%d-%d", thread_id, counter, os.time()))
  end
  return wrk.format("POST", "/v1/events/order", { ["Content-Type"] = "application/x-ndjson" },
    table.concat(lines, "\n"))
end
