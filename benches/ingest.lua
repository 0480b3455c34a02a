-- wrk: POST /order-event/, each request a new order (a resend would be a cheap duplicate).
local template = io.open(os.getenv("BENCH_ORDER") or "order.json"):read("*a")
local counter = 0
local thread_id = 0
setup = function(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end
request = function()
  counter = counter + 1
  local body = template:gsub("ORDER_ID", string.format("bench-%d-%d-%d", thread_id, counter, os.time()))
  return wrk.format("POST", "/order-event/", { ["Content-Type"] = "application/json" }, body)
end
