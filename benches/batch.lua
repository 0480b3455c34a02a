-- wrk: POST /v1/features/online, 100 random restaurants x 10 features per request.
local keys = {}
for line in io.lines(os.getenv("BENCH_KEYS") or "keys.txt") do keys[#keys + 1] = line end
math.randomseed(os.time())
local features = '["restaurant:orders_1h","restaurant:orders_24h","restaurant:orders_7d","restaurant:orders_30d",'
  .. '"restaurant:revenue_24h","restaurant:revenue_30d","restaurant:avg_order_30d","restaurant:customers_30d",'
  .. '"restaurant:cancel_rate_7d","restaurant:avg_ticket"]'
request = function()
  local picked = {}
  for i = 1, 100 do picked[i] = '"' .. keys[math.random(#keys)] .. '"' end
  local body = '{"features":' .. features .. ',"entities":{"merchant_id":[' .. table.concat(picked, ",") .. ']}}'
  return wrk.format("POST", "/v1/features/online", { ["Content-Type"] = "application/json" }, body)
end
