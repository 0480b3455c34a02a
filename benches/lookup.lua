-- wrk: GET /real-time-fs/get/restaurant/{key} over random keys from keys.txt.
local keys = {}
for line in io.lines(os.getenv("BENCH_KEYS") or "keys.txt") do keys[#keys + 1] = line end
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/real-time-fs/get/restaurant/" .. keys[math.random(#keys)])
end
