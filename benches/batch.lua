-- wrk: POST /v1/features/online, 100 random restaurants x 10 features per request. The requests
-- are built once, 1,000 per thread, and sent in turn: building each body in wrk's Lua cost the
-- load generator ~28 µs of CPU a request (10 µs now: user time over 8 s runs), on the two cores
-- the machine shares with the API and Redis.
local keys = {}
for line in io.lines(os.getenv("BENCH_KEYS") or "keys.txt") do keys[#keys + 1] = line end
local features = '["restaurant:orders_1h","restaurant:orders_24h","restaurant:orders_7d","restaurant:orders_30d",'
  .. '"restaurant:revenue_24h","restaurant:revenue_30d","restaurant:avg_order_30d","restaurant:customers_30d",'
  .. '"restaurant:cancel_rate_7d","restaurant:avg_ticket"]'
local requests = {}
local next_request = 0
init = function()
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  for r = 1, 1000 do
    local picked = {}
    for i = 1, 100 do picked[i] = '"' .. keys[math.random(#keys)] .. '"' end
    local body = '{"features":' .. features .. ',"entities":{"merchant_id":[' .. table.concat(picked, ",") .. ']}}'
    requests[r] = wrk.format("POST", "/v1/features/online", { ["Content-Type"] = "application/json" }, body)
  end
end
request = function()
  next_request = next_request % #requests + 1
  return requests[next_request]
end
