-- Applies a chunk of events of one source, each all-or-nothing (a script runs atomically).
--
-- KEYS: [1] the source's stream, then per event: raw hash, dedupe marker, one key per feature write.
-- ARGV: [1] raw TTL s (0 = keep), [2] dedupe TTL s (0 = keep), [3] number of events, then per
--       event: fingerprint, id, payload, n_raw, n_raw field/value pairs, n_features, and per
--       feature: n_fields, n_fields field/value pairs.
-- Returns one integer per event: 1 stored, 0 duplicate (same fingerprint already stored: nothing
-- is written).
local raw_ttl, seen_ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local stream = KEYS[1]
local k, a = 2, 4
local out = {}
for i = 1, tonumber(ARGV[3]) do
  local raw, seen = KEYS[k], KEYS[k + 1]
  k = k + 2
  local fingerprint, id, payload = ARGV[a], ARGV[a + 1], ARGV[a + 2]
  local n_raw = tonumber(ARGV[a + 3])
  local raw_from = a + 4
  a = raw_from + 2 * n_raw
  local n_features = tonumber(ARGV[a])
  a = a + 1
  if redis.call('GET', seen) == fingerprint then
    out[i] = 0
    for _ = 1, n_features do
      a = a + 1 + 2 * tonumber(ARGV[a])
    end
    k = k + n_features
  else
    if seen_ttl > 0 then
      redis.call('SET', seen, fingerprint, 'EX', seen_ttl)
    else
      redis.call('SET', seen, fingerprint)
    end
    -- An update replaces the record: fields it no longer has must not linger.
    redis.call('DEL', raw)
    redis.call('HSET', raw, unpack(ARGV, raw_from, raw_from + 2 * n_raw - 1))
    if raw_ttl > 0 then
      redis.call('EXPIRE', raw, raw_ttl)
    end
    redis.call('XADD', stream, '*', 'id', id, 'fp', fingerprint, 'data', payload)
    for _ = 1, n_features do
      local n = tonumber(ARGV[a])
      redis.call('HSET', KEYS[k], unpack(ARGV, a + 1, a + 2 * n))
      k = k + 1
      a = a + 1 + 2 * n
    end
    out[i] = 1
  end
end
return out
