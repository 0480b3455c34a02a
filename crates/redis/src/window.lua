-- Window aggregates where the buckets are, so a lookup receives one integer per window instead of
-- every bucket field. KEYS: the entity's minute and hour bucket hashes. ARGV: the number of
-- queries, then per query its tier tag (m, h), measure id, lo, hi (buckets (lo, hi]) and how it
-- combines (add, min, max). Answers one integer per query, or false when no bucket holds it.
-- Fields are `{index}.{measure}`; values are fixed-point integers (exact in a double below 2^53).
local n = tonumber(ARGV[1])
local wanted = {m = {}, h = {}}
local answers = {}
for i = 1, n do
  local base = 2 + (i - 1) * 5
  local query = {
    i = i,
    lo = tonumber(ARGV[base + 2]),
    hi = tonumber(ARGV[base + 3]),
    combine = ARGV[base + 4],
  }
  local by_measure = wanted[ARGV[base]]
  local measure = ARGV[base + 1]
  by_measure[measure] = by_measure[measure] or {}
  table.insert(by_measure[measure], query)
  answers[i] = false
end
for key_index, tag in ipairs({'m', 'h'}) do
  if next(wanted[tag]) ~= nil then
    local fields = redis.call('HGETALL', KEYS[key_index])
    for j = 1, #fields, 2 do
      local name = fields[j]
      local dot = string.find(name, '.', 1, true)
      if dot then
        local queries = wanted[tag][string.sub(name, dot + 1)]
        if queries then
          local index = tonumber(string.sub(name, 1, dot - 1))
          local value = tonumber(fields[j + 1])
          for _, q in ipairs(queries) do
            if index and value and q.lo < index and index <= q.hi then
              local current = answers[q.i]
              if current == false then
                answers[q.i] = value
              elseif q.combine == 'min' then
                answers[q.i] = math.min(current, value)
              elseif q.combine == 'max' then
                answers[q.i] = math.max(current, value)
              else
                answers[q.i] = current + value
              end
            end
          end
        end
      end
    end
  end
end
return answers
