-- wrk: GET /real-time-fs/get/restaurant/{key} over random keys from keys.txt. With
-- BENCH_INTERVAL_MS set, each connection waits a random time of that mean before each request
-- (exponential: independent arrivals; a fixed wait would keep the connections in step and send
-- them in bursts), offering about connections × 1000 / interval requests per second. With
-- BENCH_AS_OF_MS set (the store's clock), each request asks `as_of` a random minute of the day
-- before it: the API's cache of tiles (kept per entity for one minute of `as_of`) then misses, and
-- every lookup reads its tiles from Redis. With BENCH_PATH set, every request asks that path
-- instead (the same pacing against /health: what the machine adds to any request's latency).
local path = os.getenv("BENCH_PATH")
local keys = {}
if not path then
  for line in io.lines(os.getenv("BENCH_KEYS") or "keys.txt") do keys[#keys + 1] = line end
end
math.randomseed(os.time())
local interval = tonumber(os.getenv("BENCH_INTERVAL_MS") or "0")
if interval > 0 then
  delay = function() return -math.log(1 - math.random()) * interval end
end
local as_of_ms = tonumber(os.getenv("BENCH_AS_OF_MS") or "0")
local function as_of()
  if as_of_ms == 0 then
    return ""
  end
  local seconds = math.floor(as_of_ms / 1000) - 60 * math.random(0, 1439)
  return "?as_of=" .. os.date("!%Y-%m-%dT%H:%M:%S", seconds) .. ".000Z"
end
request = function()
  if path then
    return wrk.format("GET", path)
  end
  return wrk.format("GET", "/real-time-fs/get/restaurant/" .. keys[math.random(#keys)] .. as_of())
end
