-- wrk: GET /real-time-fs/get/restaurant/{key} over random keys from keys.txt. With
-- BENCH_INTERVAL_MS set, each connection waits a random time of that mean before each request
-- (exponential: independent arrivals; a fixed wait would keep the connections in step and send
-- them in bursts), offering about connections × 1000 / interval requests per second.
local keys = {}
for line in io.lines(os.getenv("BENCH_KEYS") or "keys.txt") do keys[#keys + 1] = line end
math.randomseed(os.time())
local interval = tonumber(os.getenv("BENCH_INTERVAL_MS") or "0")
if interval > 0 then
  delay = function() return -math.log(1 - math.random()) * interval end
end
request = function()
  return wrk.format("GET", "/real-time-fs/get/restaurant/" .. keys[math.random(#keys)])
end
