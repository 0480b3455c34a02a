-- Applies a chunk of events of one source, each all-or-nothing (a script runs atomically).
--
-- KEYS: [1] the source's stream, [2] the clock, then per event: raw hash, dedupe marker.
-- ARGV: [1] raw TTL s (0 = keep), [2] dedupe TTL s (0 = keep), [3] number of events,
--       [4] key prefix, [5] most unflushed log entries (0 = no bound), then per event: fingerprint, id, payload, event time ms, n_raw,
--       n_raw field/value pairs, n_groups, and per group (one entity of one view): view,
--       via view, via feature (both '' when the key is direct), key, operations as JSON.
-- Returns one integer per event: 1 stored, 0 duplicate (same fingerprint already stored:
-- nothing is written); or {-1} when the log's backlog is full (nothing is written).
--
-- Entity state (field names shared with larder-domain's `features::field`):
--   rtf_{view}:{key}            hash: id, _t (newest event ms), {feature} + _t:{feature} for
--                               `last`, _mx{m|h} newest bucket per tier, l.{measure} lifetime,
--                               c.{measure}:{value} frequencies
--   {rtf_{view}:{key}}:v        string: the entity's version (none for a view whose group
--                               with an `unversioned` operation: see FeatureView::versioned)
--   {rtf_{view}:{key}}:m|h      hash per tier (minute, hour) of tiles: {index} for one bucket,
--                               {index}x{span} for `span` buckets, each holding every measure of
--                               the tier packed as {measure}:{value},… (integers below 2^53)
--   {rtf_{view}:{key}}:d:{m}    sorted set: distinct member -> newest event ms
--   {rtf_{view}:{key}}:pending:{view}  list: operations waiting for this entity's key
-- and larder:raw-expiry, a list of the raw hashes to delete once `raw_ttl` old (see below).
-- All keys of an entity share its hash slot; an operation group touches one entity.
local raw_ttl, seen_ttl, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[4]
local stream, clock = KEYS[1], KEYS[2]
local max_backlog = tonumber(ARGV[5])
if max_backlog > 0 and redis.call('XLEN', stream) >= max_backlog then
  return { -1 }
end

local function entity(view, key)
  return prefix .. 'rtf_' .. view .. ':' .. key
end

local function tagged(view, key, suffix)
  return prefix .. '{rtf_' .. view .. ':' .. key .. '}:' .. suffix
end

-- Whether `how` ('add', 'min' or 'max') changes `current` (absent: nil) given `value`.
local function improves(how, current, value)
  return not current or (how == 'min' and value < current) or (how == 'max' and value > current)
end

-- A lookup asks a tier hash for a few dozen tiles, most of them absent at a busy entity's ragged
-- window edges. Redis keeps a hash of up to hash-max-listpack-entries fields (512 in some builds)
-- as a flat list that HMGET scans once per field asked: 45 fields of a 243-field list ran at 13.5 k
-- HMGET/s against 84 k as a hash table. A value longer than hash-max-listpack-value (64 bytes)
-- turns the hash into a table for good, so a tier hash that reaches TABLE_AT fields gets one.
-- (A tiles operation names the bucket's tile of every span, finest first; a tier has at least two.)
local TABLE_AT = 64
local TABLE_FIELD = '_'
local TABLE_VALUE = 'a value over 64 bytes keeps this hash a hash table: lookups ask for many tiles'

-- Combines `value` into measure `id` of a packed tile value ({measure}:{value},…).
local function merge(packed, id, how, value)
  if not packed then
    return id .. ':' .. string.format('%d', value)
  end
  local _, colon = string.find(',' .. packed, ',' .. id .. ':', 1, true)
  if not colon then
    return packed .. ',' .. id .. ':' .. string.format('%d', value)
  end
  -- Positions in `packed` are one less than in ',' .. packed.
  local stop = string.find(packed, ',', colon, true) or (#packed + 1)
  local current = tonumber(string.sub(packed, colon, stop - 1))
  if how == 'add' then
    value = current + value
  elseif not improves(how, current, value) then
    return packed
  end
  return string.sub(packed, 1, colon - 1) .. string.format('%d', value) .. string.sub(packed, stop)
end

-- Deletes the tiles of a tier hash that start at or behind bucket `line`: no window read after
-- the entity's newest bucket passed `line + retention` reaches them. Reads ignore them anyway;
-- this only bounds memory, so it runs once every `prune_every` buckets, not on every event.
-- Which tiles can be there to delete is known: a tile covers buckets (s·(index-1), s·index] for its
-- span s; the last prune (if any) deleted those starting at or behind a line no lower than
-- `swept`, and every write since landed less than the retention behind a newest bucket at or past
-- `swept + retention`, so every tile left ends after `swept`. When the tiles that start at or
-- behind `line` and end after `swept`, per span of `tile_fields` (the tiles of every span an event
-- writes), are no more than the hash's fields, they are deleted by name; otherwise (a sparse
-- entity, or a day of minutes) the hash is walked. A busy restaurant's hour tier holds 400–1,200
-- tiles, about 200 of them candidates; every restaurant crosses the same week at once, and their
-- walks took half of Redis' time for a minute of a full-scale replay (docs/benchmarks.md).
local function prune(tiles, line, swept, tile_fields)
  -- Per span, the indexes of the candidates.
  local ranges, candidates = {}, 0
  for i, f in ipairs(tile_fields) do
    local span = tonumber(string.match(f, 'x(%d+)$')) or 1
    ranges[i] = {span, math.floor(swept / span) + 1, math.ceil(line / span)}
    candidates = candidates + math.max(0, ranges[i][3] - ranges[i][2] + 1)
  end
  local dead = {}
  if candidates <= redis.call('HLEN', tiles) then
    for _, r in ipairs(ranges) do
      local span = r[1]
      for index = r[2], r[3] do
        dead[#dead + 1] = span == 1 and string.format('%d', index)
          or string.format('%dx%d', index, span)
      end
    end
  else
    for _, f in ipairs(redis.call('HKEYS', tiles)) do
      local index, span = string.match(f, '^(%-?%d+)x?(%d*)')
      if index and (tonumber(span) or 1) * (tonumber(index) - 1) < line then
        dead[#dead + 1] = f
      end
    end
  end
  for i = 1, #dead, 1000 do
    redis.call('HDEL', tiles, unpack(dead, i, math.min(i + 999, #dead)))
  end
end

-- The version every versioned entity this call changes gets ({rtf_{view}:{key}}:v): lookups keep
-- an entity's window totals in memory while its version stays the same, so a version must never
-- be handed out twice. One counter for all entities (an entity deleted and created again cannot
-- repeat one), never behind the clock in microseconds (a Redis emptied, or restored from an older
-- snapshot, does not repeat the versions issued since). Taken at the first change of a versioned
-- entity only: a call of duplicates, or of statuses (whose order view keeps no versions),
-- changes no version at all.
local version
-- The version keys of the entities this call changes, written together at its end: a SET per
-- entity was a seventh of the commands of a replay.
local versions = {}
local function write_versions()
  local mset = {}
  for key in pairs(versions) do
    mset[#mset + 1] = key
    mset[#mset + 1] = version
  end
  for i = 1, #mset, 1000 do
    redis.call('MSET', unpack(mset, i, math.min(i + 999, #mset)))
  end
end
local function next_version()
  local key = prefix .. 'larder:version'
  local now = redis.call('TIME')
  local n = math.max(tonumber(redis.call('GET', key) or 0) + 1,
    tonumber(now[1]) * 1000000 + tonumber(now[2]))
  n = string.format('%d', n)
  redis.call('SET', key, n)
  return n
end

-- The fields of the entity's hash the operations compare against, read in one HMGET; what they
-- change is written in one HSET. A script pays for each command it calls and each value it
-- converts far more than for a field more or less in one command.
local function compared(ops)
  local fields = { 'id', '_t' }
  for _, op in ipairs(ops) do
    local kind = op[1]
    if kind == 'last' then
      fields[#fields + 1] = '_t:' .. op[2]
    elseif kind == 'tiles' then
      fields[#fields + 1] = '_mx' .. op[2]
    elseif kind == 'lifetime' and op[3] ~= 'add' then
      fields[#fields + 1] = 'l.' .. op[2]
    end
  end
  return fields
end

local HOUR_MS = 3600000

-- Whether the entity of `ops` gets a version: all but those of views that keep none.
local function keeps_version(ops)
  for _, op in ipairs(ops) do
    if op[1] == 'unversioned' then
      return false
    end
  end
  return true
end

local apply
apply = function(view, key, ops)
  local h = entity(view, key)
  local versioned = keeps_version(ops)
  if versioned then
    version = version or next_version()
  end
  local fields = compared(ops)
  local stored = redis.call('HMGET', h, unpack(fields))
  local current = {}
  for i, f in ipairs(fields) do
    current[f] = tonumber(stored[i]) or stored[i] or nil
  end
  local newest_before = current._t
  local writes = {}
  local function set(f, value)
    current[f] = value
    writes[#writes + 1] = f
    writes[#writes + 1] = value
  end
  -- Drains come last and apply what waited on this entity, which may read it: written first.
  local function write()
    if writes then
      if #writes > 0 then
        redis.call('HSET', h, unpack(writes))
      end
      if versioned then
        versions[tagged(view, key, 'v')] = true
      end
      writes = nil
    end
  end
  for _, op in ipairs(ops) do
    local kind = op[1]
    if kind == 'touch' then -- time
      if not current.id then
        set('id', key)
        redis.call('INCR', prefix .. 'larder:entities:' .. view)
      end
      if not current._t or op[2] > current._t then
        set('_t', op[2])
      end
    elseif kind == 'last' then -- feature, value, time; ties go to the later arrival
      local tf = '_t:' .. op[2]
      if not current[tf] or op[4] >= current[tf] then
        set(op[2], op[3])
        set(tf, op[4])
      end
    elseif kind == 'tiles' then -- tag, bucket, retention, prune_every, tile fields, {measure, combine, value}…
      local newest_field = '_mx' .. op[2]
      local newest = current[newest_field]
      local bucket, retention = op[3], op[4]
      if not newest or bucket > newest - retention then
        local tiles, tile_fields = tagged(view, key, op[2]), op[6]
        -- An entity back after a whole retention (a customer's next order, days later, for its
        -- minute tier): every tile it holds starts behind the line this event's prune draws, and
        -- none is one of this event's, so the hash starts again instead of being read and walked.
        local restart = newest and bucket - newest >= retention
        local tile_values = {}
        if restart then
          redis.call('DEL', tiles)
        else
          -- Every span's tile in one HMGET and one HSET.
          tile_values = redis.call('HMGET', tiles, unpack(tile_fields))
        end
        local tile_writes = {}
        for i, f in ipairs(tile_fields) do
          local merged = tile_values[i]
          for _, m in ipairs(op[7]) do
            merged = merge(merged, m[1], m[2], m[3])
          end
          if merged ~= tile_values[i] then
            tile_writes[#tile_writes + 1] = f
            tile_writes[#tile_writes + 1] = merged
          end
        end
        if #tile_writes > 0 then
          redis.call('HSET', tiles, unpack(tile_writes))
        end
        -- Checked as a tile of the second span starts: a few buckets apart, so a hash passes
        -- TABLE_AT by a few fields at most.
        if not tile_values[2] and redis.call('HLEN', tiles) >= TABLE_AT then
          redis.call('HSETNX', tiles, TABLE_FIELD, TABLE_VALUE)
        end
        if not newest or bucket > newest then
          set(newest_field, bucket)
          if newest and not restart and math.floor(bucket / op[5]) > math.floor(newest / op[5]) then
            local swept = op[5] * math.floor(newest / op[5]) - retention
            prune(tiles, bucket - retention, swept, tile_fields)
          end
        end
      end
    elseif kind == 'lifetime' then -- measure, combine, value
      local f = 'l.' .. op[2]
      if op[3] == 'add' then
        redis.call('HINCRBY', h, f, op[4])
      elseif improves(op[3], current[f], op[4]) then
        set(f, op[4])
      end
    elseif kind == 'distinct' then -- measure, member, time, retention
      local z = tagged(view, key, 'd:' .. op[2])
      local line = current._t - op[5]
      if op[4] > line then
        redis.call('ZADD', z, 'GT', op[4], op[3])
      end
      -- Lookups count only members newer than the line, so forgetting the older ones only
      -- bounds memory: done when the newest event enters another hour, not on every event.
      if not newest_before or math.floor(current._t / HOUR_MS) > math.floor(newest_before / HOUR_MS) then
        redis.call('ZREMRANGEBYSCORE', z, '-inf', line)
      end
    elseif kind == 'frequency' then -- measure, value
      redis.call('HINCRBY', h, 'c.' .. op[2] .. ':' .. op[3], 1)
    elseif kind == 'drain' then -- waiting view, its key
      write()
      local list = tagged(view, key, 'pending:' .. op[2])
      local parked = redis.call('LRANGE', list, 0, -1)
      for _, ops in ipairs(parked) do
        apply(op[2], op[3], cjson.decode(ops))
      end
      if #parked > 0 then -- every order drains; hardly any has statuses waiting
        redis.call('DEL', list)
      end
    end
  end
  write()
end

-- A record's marker is written with it and kept at least as long (unless Redis evicts keys,
-- which larder does not support): then an id without a marker has no record to replace.
local seen_expiry = seen_ttl > 0 and { 'EX', ARGV[2] } or {}
local marker_outlives_raw = seen_ttl == 0 or (raw_ttl > 0 and raw_ttl <= seen_ttl)

-- Raw hashes expire without a TTL of their own where they can. While any key has a TTL, Redis
-- checks every key it finds against its table of expiring keys, and every SET removes the key
-- from it: a fifth of ingestion's time at full scale (docs/benchmarks.md). So with markers kept
-- for good, a new record's key goes on a queue, "{ms}:{key}" in arrival order, and each call
-- first deletes the records at the queue's head that are `raw_ttl` old (a call of no events only
-- sweeps: the API makes such calls while no events come). Such an id is new only once, so its key
-- is queued once; an update of it gets a TTL of its own as before (its queue entry then leaves it
-- alone), as does every record while markers expire.
local expiry_queue = prefix .. 'larder:raw-expiry'
local queued = raw_ttl > 0 and seen_ttl == 0
local stamp
local to_queue = {}
if queued then
  local now = redis.call('TIME')
  local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  local line = now_ms - raw_ttl * 1000
  -- Twice what a call can queue, so the queue drains faster than it fills.
  local head = redis.call('LRANGE', expiry_queue, 0, 2 * tonumber(ARGV[3]) + 99)
  local swept = 0
  for _, entry in ipairs(head) do
    local colon = string.find(entry, ':', 1, true)
    if tonumber(string.sub(entry, 1, colon - 1)) > line then
      break
    end
    local raw = string.sub(entry, colon + 1)
    if redis.call('PTTL', raw) == -1 then
      redis.call('DEL', raw)
    end
    swept = swept + 1
  end
  if swept > 0 then
    redis.call('LTRIM', expiry_queue, swept, -1)
  end
  stamp = string.format('%d', now_ms) .. ':'
end

-- The newest event time this call stores, of any source, for the clock: written once per call.
local newest_event
local k, a = 3, 6
local out = {}
local function ingest_events()
  for i = 1, tonumber(ARGV[3]) do
    local raw, seen = KEYS[k], KEYS[k + 1]
    k = k + 2
    local fingerprint, id, payload, time = ARGV[a], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])
    local n_raw = tonumber(ARGV[a + 4])
    local raw_from = a + 5
    a = raw_from + 2 * n_raw
    local n_groups = tonumber(ARGV[a])
    a = a + 1
    -- One command reads the fingerprint stored for this id and, when there is none, stores this
    -- one; NX leaves a duplicate's marker, and its TTL, as they are.
    local previous = redis.call('SET', seen, fingerprint, 'NX', 'GET', unpack(seen_expiry))
    if previous == fingerprint then
      out[i] = 0
      a = a + 5 * n_groups
    else
      -- An update replaces the record: fields it no longer has must not linger.
      if previous then
        redis.call('SET', seen, fingerprint, unpack(seen_expiry))
      end
      if previous or not marker_outlives_raw then
        redis.call('DEL', raw)
      end
      redis.call('HSET', raw, unpack(ARGV, raw_from, raw_from + 2 * n_raw - 1))
      if queued and not previous then
        to_queue[#to_queue + 1] = stamp .. raw
      elseif raw_ttl > 0 then
        redis.call('EXPIRE', raw, raw_ttl)
      end
      redis.call('XADD', stream, '*', 'id', id, 'fp', fingerprint, 'data', payload)
      if not newest_event or time > newest_event then
        newest_event = time
      end
      for _ = 1, n_groups do
        local view, via_view, via_feature, key, ops = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
        a = a + 5
        if via_view == '' then
          apply(view, key, cjson.decode(ops))
        else
          local target = redis.call('HGET', entity(via_view, key), via_feature)
          if target then
            apply(view, target, cjson.decode(ops))
          else
            redis.call('RPUSH', tagged(via_view, key, 'pending:' .. view), ops)
          end
        end
      end
      out[i] = 1
    end
  end
end
-- A call that fails midway (a key of another type where larder keeps its own) keeps what it wrote
-- before the failure, as a script does: those entities get their versions all the same, or
-- lookups would keep serving what they cached before.
local stored, failure = pcall(ingest_events)
write_versions()
for i = 1, #to_queue, 1000 do
  redis.call('RPUSH', expiry_queue, unpack(to_queue, i, math.min(i + 999, #to_queue)))
end
if not stored then
  error(failure)
end
if newest_event then
  local now = tonumber(redis.call('GET', clock))
  if not now or newest_event > now then
    redis.call('SET', clock, newest_event)
  end
end
return out
