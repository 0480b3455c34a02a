//! `LARDER.INGEST`: larder's ingest script (crates/redis/src/ingest.lua) as a native Redis module
//! command. The script spends two thirds of Redis' time interpreting Lua around the commands it
//! calls (docs/benchmarks.md); natively the same writes cost about half as much. larder-redis uses
//! the command when the server has this module loaded, and the script otherwise, so the two must
//! store exactly the same: tests/redis_module.rs compares them key by key.
//!
//! `LARDER.INGEST numkeys key… arg…` takes the script's KEYS and ARGV as EVALSHA takes them,
//! makes the same writes in the same order — the frequent ones, and the hash reads, through the
//! key API rather than as commands (ffi.rs says why and how they reach replicas) — and answers
//! the same: one integer per event (1 stored, 0 duplicate), or `[-1]` when the log's backlog is
//! full. See the script for what the keys hold and why it does what it does; the comments here
//! say only what the port needs. One difference: the call reads the clock once, and sets expiry
//! times from it rather than TTLs, so that they reach replicas as they are here.
//!
//! The script's numbers are Lua 5.1 numbers, doubles, and so are they here: JSON numbers decode
//! into doubles (as cjson decodes them), stored fields read as Lua's `tonumber` reads them, and
//! numbers become text as the script turns them into text: `redis.call` formats a number argument
//! with C's `%.17g`, `string.format('%d', n)` casts `n` to a C `long`.

mod ffi;

use std::borrow::Cow;
use std::collections::HashSet;
use std::ffi::c_int;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, SeqAccess, Visitor};

use ffi::{
    Arg, Context, Hash, REDISMODULE_ERR, REDISMODULE_OK, RedisModuleCtx, RedisModuleString,
    RedisStr, Reply,
};

/// A failure is the error reply's text, its code first (`ERR`, `WRONGTYPE`, …). As when a script
/// fails, what was written before it stays written.
type Result<T> = std::result::Result<T, String>;

/// Loads the module: fetches the API, names the module `larder` and registers `LARDER.INGEST`.
///
/// # Safety
/// Called by Redis only, with its loading context.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn RedisModule_OnLoad(
    ctx: *mut RedisModuleCtx,
    _argv: *mut *mut RedisModuleString,
    _argc: c_int,
) -> c_int {
    // SAFETY: Redis passes its loading context, live during this call.
    let redis = unsafe { ffi::init(ctx, c"larder") };
    let Some(redis) = redis else {
        return REDISMODULE_ERR;
    };
    // `write deny-oom`: the command writes, and is refused while Redis is over its memory limit.
    if redis.create_command(c"larder.ingest", ingest_command, c"write deny-oom") {
        REDISMODULE_OK
    } else {
        REDISMODULE_ERR
    }
}

/// `LARDER.INGEST numkeys key… arg…`
///
/// # Safety
/// Called by Redis only, with a command's context and arguments.
unsafe extern "C" fn ingest_command(
    ctx: *mut RedisModuleCtx,
    argv: *mut *mut RedisModuleString,
    argc: c_int,
) -> c_int {
    // SAFETY: Redis passes the command's context, live during this call.
    let redis = unsafe { Context::new(ctx) };
    let Some(redis) = redis else {
        return REDISMODULE_ERR;
    };
    // SAFETY: Redis passes `argc` arguments, live during this call.
    let args = unsafe { redis.arguments(argv, argc) };
    // The command's name, then numkeys at least.
    if args.len() < 2 {
        return redis.wrong_arity();
    }
    // A bug must not take Redis down with it: a panic answers an error like any failure.
    match panic::catch_unwind(AssertUnwindSafe(|| ingest(&redis, &args[1..]))) {
        Ok(Ok(outcomes)) => redis.reply_integers(&outcomes),
        Ok(Err(message)) => redis.reply_error(&message),
        Err(_) => redis.reply_error("ERR LARDER.INGEST panicked (see Redis' standard error)"),
    }
    REDISMODULE_OK
}

/// The script's body, given `numkeys key… arg…`.
fn ingest(redis: &Context, args: &[RedisStr]) -> Result<Vec<i64>> {
    let args = Arguments::split(args)?;
    let raw_ttl = args.number(1)?;
    let seen_ttl = args.number(2)?;
    let prefix = args.arg(4)?;
    let stream = Arg::Held(args.key_string(1)?);
    let clock = args.key(2)?;
    let max_backlog = args.number(5)?;
    if max_backlog > 0.0 && (redis.read(c"XLEN", &[args.key(1)?])?.integer()? as f64) >= max_backlog
    {
        return Ok(vec![-1]);
    }

    // The call's clock, read once: every expiry it sets is a time, not a TTL, so that what it
    // passes on to the AOF and replicas expires when it does here.
    let (seconds, micros) = time(redis)?;
    let now_ms = seconds * 1000.0 + (micros / 1000.0).floor();
    let expiry_at = |ttl: f64| -> Result<i64> {
        // As SET EX and EXPIRE take them: whole seconds.
        if ttl.fract() != 0.0 {
            return Err("ERR value is not an integer or out of range".to_owned());
        }
        Ok((now_ms + ttl * 1000.0) as i64)
    };
    // A record's marker is written with it and kept at least as long (unless Redis evicts keys,
    // which larder does not support): then an id without a marker has no record to replace.
    let seen_expiry = if seen_ttl > 0.0 {
        Some(expiry_at(seen_ttl)?)
    } else {
        None
    };
    let marker_outlives_raw = seen_ttl == 0.0 || (raw_ttl > 0.0 && raw_ttl <= seen_ttl);
    // The script's expiry queue: new records' raw hashes are deleted by the calls after their
    // TTL instead of carrying a TTL of their own (see the script for why).
    let expiry_queue = [prefix, b"larder:raw-expiry"].concat();
    let queued = raw_ttl > 0.0 && seen_ttl == 0.0;
    let mut to_queue: Vec<Vec<u8>> = Vec::new();
    let stamp = if queued {
        sweep_expired(
            redis,
            &expiry_queue,
            now_ms - raw_ttl * 1000.0,
            args.number(3)?,
        )?;
        [format_d(now_ms).as_bytes(), b":"].concat()
    } else {
        Vec::new()
    };

    let mut writer = EntityWriter {
        redis,
        prefix,
        now_us: seconds * 1_000_000.0 + micros,
        version: None,
        versioned: HashSet::new(),
    };
    // The newest event time this call stores, of any source, for the clock: written once.
    let mut newest_event: Option<f64> = None;
    // Where the next event's keys and arguments start, named as in the script.
    let (mut k, mut a) = (3, 6);
    // The script's `ingest_events`, and its `pcall`: what a call wrote before a failure stays, so
    // its entities get their versions all the same.
    let mut ingest_events = || -> Result<Vec<i64>> {
        let mut outcomes = Vec::new();
        // Lua's `for i = 1, n` with a double `n`: once for each whole number from 1 up to `n`.
        for _ in 1..=args.number(3)? as u64 {
            let raw_key = args.key_string(k)?;
            let raw = Arg::Held(raw_key);
            let seen = args.key_string(k + 1)?;
            k += 2;
            let fingerprint = args.arg(a)?;
            let (fingerprint_string, id, payload) = (
                args.arg_string(a)?,
                args.arg_string(a + 1)?,
                args.arg_string(a + 2)?,
            );
            let time = args.number(a + 3)?;
            let n_raw = args.count(a + 4)?;
            let raw_from = a + 5;
            a = raw_from + 2 * n_raw;
            let n_groups = args.count(a)?;
            a += 1;
            // The fingerprint stored for this id; when there is none, or another, this one is
            // stored. A duplicate leaves the marker, and its TTL, as they are.
            let previous = redis.set_string_unless_held(
                Arg::Held(seen),
                Arg::Held(fingerprint_string),
                seen_expiry,
            )?;
            if previous.as_deref() == Some(fingerprint) {
                outcomes.push(0);
                a += 5 * n_groups;
                continue;
            }
            // An update replaces the record: fields it no longer has must not linger.
            if previous.is_some() || !marker_outlives_raw {
                redis.write_args(c"DEL", &[raw])?;
            }
            let fields: Vec<Arg> = args
                .arg_strings(raw_from, 2 * n_raw)?
                .iter()
                .map(|&s| Arg::Held(s))
                .collect();
            redis.hash_set(raw, &fields)?;
            if queued && previous.is_none() {
                to_queue.push([stamp.as_slice(), raw_key.bytes()].concat());
            } else if raw_ttl > 0.0 {
                redis.expire_at(raw, expiry_at(raw_ttl)?)?;
            }
            redis.stream_add(
                stream,
                &[
                    Arg::Bytes(b"id"),
                    Arg::Held(id),
                    Arg::Bytes(b"fp"),
                    Arg::Held(fingerprint_string),
                    Arg::Bytes(b"data"),
                    Arg::Held(payload),
                ],
            )?;
            if newest_event.is_none_or(|newest| time > newest) {
                newest_event = Some(time);
            }
            for _ in 0..n_groups {
                let view = args.arg(a)?;
                let via_view = args.arg(a + 1)?;
                let via_feature = args.arg(a + 2)?;
                let key = args.arg(a + 3)?;
                let ops = args.arg(a + 4)?;
                a += 5;
                if via_view.is_empty() {
                    writer.apply(view, key, &decode_ops(ops)?)?;
                    continue;
                }
                let via = writer.entity(via_view, key);
                match redis.read(c"HGET", &[&via, via_feature])?.nullable_bulk()? {
                    Some(target) => writer.apply(view, &target, &decode_ops(ops)?)?,
                    None => {
                        let pending = [b"pending:".as_slice(), view].concat();
                        redis.write(c"RPUSH", &[&writer.tagged(via_view, key, &pending), ops])?;
                    }
                }
            }
            outcomes.push(1);
        }
        Ok(outcomes)
    };
    let stored = ingest_events();
    writer.write_versions()?;
    for chunk in to_queue.chunks(1000) {
        let rpush: Vec<&[u8]> = std::iter::once(expiry_queue.as_slice())
            .chain(chunk.iter().map(Vec::as_slice))
            .collect();
        redis.write(c"RPUSH", &rpush)?;
    }
    let outcomes = stored?;
    if let Some(newest) = newest_event {
        let now = redis.read(c"GET", &[clock])?.nullable_bulk()?;
        if now
            .and_then(|now| tonumber(&now))
            .is_none_or(|now| newest > now)
        {
            redis.write(c"SET", &[clock, number_arg(newest).as_bytes()])?;
        }
    }
    Ok(outcomes)
}

/// `TIME`: seconds and microseconds.
fn time(redis: &Context) -> Result<(f64, f64)> {
    let now: Vec<Option<f64>> = redis
        .read(c"TIME", &[])?
        .array()?
        .into_iter()
        .map(|part| part.bulk().map(|text| tonumber(&text)))
        .collect::<Result<_>>()?;
    let [Some(seconds), Some(micros)] = now[..] else {
        return Err("ERR TIME answered no seconds and microseconds".to_owned());
    };
    Ok((seconds, micros))
}

/// The script's sweep of the expiry queue: deletes the raw hashes at its head queued at or before
/// `line` (ms) that have no TTL of their own, reading at most twice what a call of `events` can
/// queue.
fn sweep_expired(redis: &Context, queue: &[u8], line: f64, events: f64) -> Result<()> {
    let last = number_arg(2.0 * events + 99.0);
    let head = redis
        .read(c"LRANGE", &[queue, b"0", last.as_bytes()])?
        .array()?;
    let mut swept = 0;
    for entry in head {
        let entry = entry.bulk()?;
        let colon = entry.iter().position(|&b| b == b':');
        let colon = colon.ok_or("ERR larder:raw-expiry holds an entry without a time")?;
        let queued_at = tonumber(&entry[..colon]).ok_or("ERR larder:raw-expiry has a bad time")?;
        if queued_at > line {
            break;
        }
        redis.delete_if_persistent(&entry[colon + 1..])?;
        swept += 1;
    }
    if swept > 0 {
        redis.write(c"LTRIM", &[queue, swept.to_string().as_bytes(), b"-1"])?;
    }
    Ok(())
}

/// KEYS and ARGV of a call, read by the script's 1-based indices so that the port reads like it:
/// as bytes (`key`, `arg`), and as the strings Redis holds (`key_string`, `arg_string`), which
/// writes pass on without a copy.
struct Arguments<'a> {
    keys: &'a [RedisStr<'a>],
    argv: &'a [RedisStr<'a>],
}

impl<'a> Arguments<'a> {
    /// Splits `numkeys key… arg…` as EVALSHA does.
    fn split(args: &'a [RedisStr<'a>]) -> Result<Self> {
        let (numkeys, rest) = args.split_first().ok_or("ERR wrong number of arguments")?;
        let numkeys = std::str::from_utf8(numkeys.bytes())
            .ok()
            .and_then(|numkeys| numkeys.parse::<i64>().ok())
            .ok_or("ERR value is not an integer or out of range")?;
        let numkeys =
            usize::try_from(numkeys).map_err(|_| "ERR Number of keys can't be negative")?;
        if numkeys > rest.len() {
            return Err("ERR Number of keys can't be greater than number of args".to_owned());
        }
        let (keys, argv) = rest.split_at(numkeys);
        Ok(Arguments { keys, argv })
    }

    /// `KEYS[index]` as Redis holds it.
    fn key_string(&self, index: usize) -> Result<RedisStr<'a>> {
        let key = self.keys.get(index - 1).copied();
        key.ok_or_else(|| format!("ERR KEYS[{index}] is missing"))
    }

    /// `ARGV[index]` as Redis holds it.
    fn arg_string(&self, index: usize) -> Result<RedisStr<'a>> {
        let arg = self.argv.get(index - 1).copied();
        arg.ok_or_else(|| format!("ERR ARGV[{index}] is missing"))
    }

    /// `unpack(ARGV, from, from + count - 1)` as Redis holds them.
    fn arg_strings(&self, from: usize, count: usize) -> Result<&'a [RedisStr<'a>]> {
        let args = self.argv.get(from - 1..from - 1 + count);
        args.ok_or_else(|| format!("ERR ARGV[{from}] to ARGV[{}] are missing", from + count - 1))
    }

    /// `KEYS[index]`.
    fn key(&self, index: usize) -> Result<&'a [u8]> {
        Ok(self.key_string(index)?.bytes())
    }

    /// `ARGV[index]`.
    fn arg(&self, index: usize) -> Result<&'a [u8]> {
        Ok(self.arg_string(index)?.bytes())
    }

    /// `tonumber(ARGV[index])`, which must be a number.
    fn number(&self, index: usize) -> Result<f64> {
        tonumber(self.arg(index)?).ok_or_else(|| format!("ERR ARGV[{index}] is not a number"))
    }

    /// `tonumber(ARGV[index])`, the number of things that follow.
    fn count(&self, index: usize) -> Result<usize> {
        let count = self.number(index)?;
        if count >= 0.0 && count.fract() == 0.0 {
            Ok(count as usize)
        } else {
            Err(format!("ERR ARGV[{index}] is not a count"))
        }
    }
}

/// A tier hash that reaches `TABLE_AT` fields gets a value over hash-max-listpack-value (64
/// bytes), which keeps it a hash table: lookups ask it for many tiles, and a listpack would be
/// scanned once per tile asked (see the script).
const TABLE_AT: usize = 64;
const TABLE_FIELD: &[u8] = b"_";
const TABLE_VALUE: &[u8] =
    b"a value over 64 bytes keeps this hash a hash table: lookups ask for many tiles";

const HOUR_MS: f64 = 3_600_000.0;

/// What the script keeps across the groups of a call.
struct EntityWriter<'a> {
    redis: &'a Context,
    prefix: &'a [u8],
    /// The call's clock, in microseconds.
    now_us: f64,
    /// The version every versioned entity this call changes gets: taken at the first `apply` of
    /// one (a call of duplicates, or of statuses, changes no version at all), then the same for
    /// all.
    version: Option<Vec<u8>>,
    /// The version keys of the entities this call changed, written together at its end.
    versioned: HashSet<Vec<u8>>,
}

impl<'a> EntityWriter<'a> {
    /// `rtf_{view}:{key}`: the entity's hash.
    fn entity(&self, view: &[u8], key: &[u8]) -> Vec<u8> {
        [self.prefix, b"rtf_", view, b":", key].concat()
    }

    /// `{rtf_{view}:{key}}:{suffix}`: a key in the entity's hash slot.
    fn tagged(&self, view: &[u8], key: &[u8], suffix: &[u8]) -> Vec<u8> {
        [self.prefix, b"{rtf_", view, b":", key, b"}:", suffix].concat()
    }

    /// The script's `next_version`: one more than the last version handed out, and never behind
    /// the clock in microseconds.
    fn next_version(&self) -> Result<Vec<u8>> {
        let key = [self.prefix, b"larder:version"].concat();
        let last = match self.redis.read(c"GET", &[&key])?.nullable_bulk()? {
            None => 0.0,
            Some(text) => tonumber(&text).ok_or("ERR larder:version is not a number")?,
        };
        // `math.max(a, b)`: `b` only when greater.
        let (a, b) = (last + 1.0, self.now_us);
        let version = format_d(if b > a { b } else { a });
        self.redis.write(c"SET", &[&key, version.as_bytes()])?;
        Ok(version.into_bytes())
    }

    /// The script's `write_versions`: the call's version to every entity it changed, in MSETs.
    fn write_versions(&self) -> Result<()> {
        let Some(version) = &self.version else {
            return Ok(());
        };
        let keys: Vec<&[u8]> = self.versioned.iter().map(Vec::as_slice).collect();
        for chunk in keys.chunks(500) {
            let mset: Vec<&[u8]> = chunk.iter().flat_map(|key| [*key, version]).collect();
            self.redis.write(c"MSET", &mset)?;
        }
        Ok(())
    }

    /// The script's `apply`: applies `ops` to entity `key` of `view`.
    fn apply(&mut self, view: &[u8], key: &[u8], ops: &[Op]) -> Result<()> {
        let hash = self.entity(view, key);
        let versioned = !ops.iter().any(|op| matches!(op, Op::Unversioned));
        if versioned && self.version.is_none() {
            self.version = Some(self.next_version()?);
        }
        let fields = compared(ops);
        let names: Vec<&[u8]> = fields.iter().map(|field| field.as_bytes()).collect();
        let opened = self.redis.open_hash(Arg::Bytes(&hash))?;
        let stored = opened.get(&names);
        let mut current = Fields::default();
        for (field, value) in fields.into_iter().zip(stored) {
            // `tonumber(stored[i]) or stored[i]`; absent fields stay absent.
            if let Some(text) = value {
                let value = tonumber(&text).map_or(LuaValue::Text(text), LuaValue::Number);
                current.insert(field, value);
            }
        }
        let mut entity = Entity {
            hash,
            opened: Some(opened),
            version_key: versioned.then(|| self.tagged(view, key, b"v")),
            current,
            writes: Some(Vec::new()),
        };
        let newest_before = entity.current.get("_t").cloned();
        for op in ops {
            match op {
                Op::Touch { time } => {
                    if entity.current.get("id").is_none() {
                        entity.set("id".to_owned(), LuaValue::Text(key.to_vec()))?;
                        let count = [self.prefix, b"larder:entities:", view].concat();
                        self.redis.incr(&count)?;
                    }
                    if entity.number("_t")?.is_none_or(|newest| *time > newest) {
                        entity.set("_t".to_owned(), LuaValue::Number(*time))?;
                    }
                }
                // Ties go to the later arrival.
                Op::Last {
                    feature,
                    value,
                    time,
                } => {
                    let time_field = ["_t:", feature].concat();
                    if entity
                        .number(&time_field)?
                        .is_none_or(|stored| *time >= stored)
                    {
                        entity.set(
                            feature.to_string(),
                            LuaValue::Text(value.as_bytes().to_vec()),
                        )?;
                        entity.set(time_field, LuaValue::Number(*time))?;
                    }
                }
                Op::Tiles(tiles) => self.apply_tiles(&mut entity, view, key, tiles)?,
                Op::Lifetime {
                    measure,
                    combine,
                    value,
                } => {
                    let field = ["l.", measure].concat();
                    if combine == "add" {
                        let by = number_arg(*value);
                        let hash = entity.opened(self.redis)?;
                        hash.incr_by(field.as_bytes(), by.as_bytes())?;
                    } else if improves(combine, entity.number(&field)?, *value) {
                        entity.set(field, LuaValue::Number(*value))?;
                    }
                }
                Op::Distinct {
                    measure,
                    member,
                    time,
                    retention,
                } => {
                    let members = self.tagged(view, key, &[b"d:", measure.as_bytes()].concat());
                    let newest = entity.number("_t")?.ok_or("ERR the entity has no _t")?;
                    let line = newest - retention;
                    if *time > line {
                        let score = number_arg(*time);
                        let member = member.as_bytes();
                        self.redis
                            .zset_add_gt(&members, *time, score.as_bytes(), member)?;
                    }
                    // Lookups count only members newer than the line: forgetting older ones only
                    // bounds memory, so it is done when the newest event enters another hour.
                    let new_hour = match &newest_before {
                        None => true,
                        Some(before) => {
                            (newest / HOUR_MS).floor() > (before.number()? / HOUR_MS).floor()
                        }
                    };
                    if new_hour {
                        let line = number_arg(line);
                        let args: [&[u8]; 3] = [&members, b"-inf", line.as_bytes()];
                        self.redis.write(c"ZREMRANGEBYSCORE", &args)?;
                    }
                }
                Op::Frequency { measure, value } => {
                    let field = ["c.", measure, ":", value].concat();
                    let hash = entity.opened(self.redis)?;
                    hash.incr_by(field.as_bytes(), b"1")?;
                }
                // What waited on this entity may read it: it is written first.
                Op::Drain {
                    view: waiting_view,
                    key: waiting_key,
                } => {
                    entity.write(self.redis, &mut self.versioned)?;
                    let list =
                        self.tagged(view, key, &[b"pending:", waiting_view.as_bytes()].concat());
                    // Every order drains; hardly any has statuses waiting.
                    if !self.redis.exists(&list)? {
                        continue;
                    }
                    let parked = self.redis.read(c"LRANGE", &[&list, b"0", b"-1"])?.array()?;
                    let parked: Vec<Vec<u8>> =
                        parked.into_iter().map(Reply::bulk).collect::<Result<_>>()?;
                    for ops in &parked {
                        let ops = decode_ops(ops)?;
                        self.apply(waiting_view.as_bytes(), waiting_key.as_bytes(), &ops)?;
                    }
                    self.redis.write(c"DEL", &[&list])?;
                }
                Op::Unversioned | Op::Other => {}
            }
        }
        entity.write(self.redis, &mut self.versioned)
    }

    /// The script's `tiles` branch: combines the measures into the bucket's tile of every span,
    /// unless the bucket is `retention` or more behind the entity's newest.
    fn apply_tiles(
        &self,
        entity: &mut Entity<'a>,
        view: &[u8],
        key: &[u8],
        op: &Tiles,
    ) -> Result<()> {
        let newest_field = ["_mx", &op.tier].concat();
        let newest = entity.number(&newest_field)?;
        let within_retention = newest.is_none_or(|newest| op.bucket > newest - op.retention);
        if !within_retention {
            return Ok(());
        }
        let tiles = self.tagged(view, key, op.tier.as_bytes());
        // The script's `restart`: an entity back after a whole retention holds no tile its prune
        // would keep and none of this event's.
        let restart = newest.is_some_and(|newest| op.bucket - newest >= op.retention);
        if restart {
            self.redis.delete(&tiles)?;
        }
        // Every span's tile read at once and written in one HSET, through one lookup of the key.
        let tier = self.redis.open_hash(Arg::Bytes(&tiles))?;
        let stored = if restart {
            vec![None; op.fields.len()]
        } else {
            let names: Vec<&[u8]> = op.fields.iter().map(|field| field.as_bytes()).collect();
            tier.get(&names)
        };
        let mut merged_tiles = Vec::new();
        for (field, tile) in op.fields.iter().zip(&stored) {
            let mut merged = tile.clone();
            for measure in &op.measures {
                merge(&mut merged, &measure.id, &measure.combine, measure.value)?;
            }
            if merged != *tile
                && let Some(merged) = merged
            {
                merged_tiles.push((field, merged));
            }
        }
        if !merged_tiles.is_empty() {
            let pairs: Vec<Arg> = merged_tiles
                .iter()
                .flat_map(|(field, value)| [Arg::Bytes(field.as_bytes()), Arg::Bytes(value)])
                .collect();
            tier.set(&pairs)?;
        }
        // Checked as a tile of the second span starts (it was absent): a few buckets apart, so a
        // hash passes TABLE_AT by a few fields at most.
        // (HSETNX leaves the hash's value where it is: `tier` still holds it.)
        if stored.get(1).is_none_or(Option::is_none) && tier.len() >= TABLE_AT {
            self.redis
                .write(c"HSETNX", &[&tiles, TABLE_FIELD, TABLE_VALUE])?;
        }
        if newest.is_none_or(|newest| op.bucket > newest) {
            entity.set(newest_field, LuaValue::Number(op.bucket))?;
            if let Some(newest) = newest
                && !restart
                && (op.bucket / op.prune_every).floor() > (newest / op.prune_every).floor()
            {
                let swept = op.prune_every * (newest / op.prune_every).floor() - op.retention;
                self.prune(&tier, &tiles, &op.fields, op.bucket - op.retention, swept)?;
            }
        }
        Ok(())
    }

    /// The script's `prune`: deletes the tiles of tier hash `tier` (named `tiles`) that start at
    /// or behind bucket `line` — by name, those of every span of `fields` that end after `swept`,
    /// when they are no more than the hash's fields; otherwise those its walk finds.
    fn prune(
        &self,
        tier: &Hash,
        tiles: &[u8],
        fields: &[Text],
        line: f64,
        swept: f64,
    ) -> Result<()> {
        // Per span, the indexes of the candidates: Lua's numeric `for` over doubles, whose bounds
        // are whole numbers.
        let ranges: Vec<(i64, i64, i64)> = fields
            .iter()
            .map(|field| {
                let span = tile_span(field.as_bytes());
                let first = (swept / span).floor() as i64 + 1;
                (span as i64, first, (line / span).ceil() as i64)
            })
            .collect();
        let candidates: i64 = ranges
            .iter()
            .map(|&(_, first, last)| (last - first + 1).max(0))
            .sum();
        let mut dead = Vec::new();
        if candidates <= tier.len() as i64 {
            for (span, first, last) in ranges {
                dead.extend((first..=last).map(|index| match span {
                    1 => index.to_string().into_bytes(),
                    _ => format!("{index}x{span}").into_bytes(),
                }));
            }
        } else {
            self.redis.read_each(c"HKEYS", &[tiles], |field| {
                if tile_behind(field).is_some_and(|behind| behind < line) {
                    dead.push(field.to_vec());
                }
            })?;
        }
        tier.delete(&dead)
    }
}

/// One `apply`'s entity: the fields its operations compare against (the script's `current`) and
/// what they change in its hash (`writes`).
struct Entity<'c> {
    hash: Vec<u8>,
    /// The hash, open from the read of `current` until it is written.
    opened: Option<Hash<'c>>,
    /// None for an entity of a view that keeps no versions.
    version_key: Option<Vec<u8>>,
    current: Fields,
    /// Field-value pairs for one HSET. None once written: nothing may be set after a drain (the
    /// script would index its nil `writes`).
    writes: Option<Vec<(String, LuaValue)>>,
}

impl<'c> Entity<'c> {
    /// `current[field]` as an operand of a comparison or arithmetic; None when absent.
    fn number(&self, field: &str) -> Result<Option<f64>> {
        self.current.get(field).map(LuaValue::number).transpose()
    }

    /// The script's `set`.
    fn set(&mut self, field: String, value: LuaValue) -> Result<()> {
        let writes = self
            .writes
            .as_mut()
            .ok_or("ERR an operation after a drain set a field (the script's `writes` is nil)")?;
        writes.push((field.clone(), value.clone()));
        self.current.insert(field, value);
        Ok(())
    }

    /// The entity's hash, opened again if it was written already.
    fn opened(&mut self, redis: &'c Context) -> Result<&Hash<'c>> {
        let opened = match self.opened.take() {
            Some(opened) => opened,
            None => redis.open_hash(Arg::Bytes(&self.hash))?,
        };
        Ok(self.opened.insert(opened))
    }

    /// The script's `write`: the collected fields in one HSET, and the entity's version key to
    /// `versioned`; once.
    fn write(&mut self, redis: &'c Context, versioned: &mut HashSet<Vec<u8>>) -> Result<()> {
        let Some(writes) = self.writes.take() else {
            return Ok(());
        };
        if !writes.is_empty() {
            let values: Vec<Vec<u8>> = writes.iter().map(|(_, value)| value.to_arg()).collect();
            let pairs: Vec<Arg> = writes
                .iter()
                .zip(&values)
                .flat_map(|((field, _), value)| [Arg::Bytes(field.as_bytes()), Arg::Bytes(value)])
                .collect();
            self.opened(redis)?.set(&pairs)?;
        }
        // Closed before anything else writes: a drain's operations may write another entity.
        self.opened = None;
        if let Some(version_key) = self.version_key.take() {
            versioned.insert(version_key);
        }
        Ok(())
    }
}

/// The script's `current`: the few fields of an entity its operations compare against, found
/// by name in a list rather than hashed.
#[derive(Default)]
struct Fields(Vec<(String, LuaValue)>);

impl Fields {
    fn get(&self, field: &str) -> Option<&LuaValue> {
        self.0
            .iter()
            .find(|(name, _)| name == field)
            .map(|(_, value)| value)
    }

    fn insert(&mut self, field: String, value: LuaValue) {
        match self.0.iter_mut().find(|(name, _)| *name == field) {
            Some((_, held)) => *held = value,
            None => self.0.push((field, value)),
        }
    }
}

/// A value as the script holds it: a Lua number (a double), or a string.
#[derive(Clone)]
enum LuaValue {
    Number(f64),
    Text(Vec<u8>),
}

impl LuaValue {
    /// As an operand of a comparison or of arithmetic. Lua would convert a string that reads as
    /// a number for arithmetic, but a string only gets here from a stored field that does not
    /// read as one (or from a `last` feature named like a field the script keeps), so it fails.
    fn number(&self) -> Result<f64> {
        match self {
            LuaValue::Number(number) => Ok(*number),
            LuaValue::Text(text) => Err(format!(
                "ERR attempt to compare number with string {:?}",
                String::from_utf8_lossy(text)
            )),
        }
    }

    /// As `redis.call` passes it to Redis.
    fn to_arg(&self) -> Vec<u8> {
        match self {
            LuaValue::Number(number) => number_arg(*number).into_bytes(),
            LuaValue::Text(text) => text.clone(),
        }
    }
}

/// One operation as encode.rs writes it, `[kind, …]`: the script's `op`, whose `op[n]` is the
/// array's element n - 1. Strings and numbers are where encode.rs puts them; strings borrow from
/// the operations' JSON where they can (all but those with escapes).
enum Op<'a> {
    Touch {
        time: f64,
    },
    Last {
        feature: Text<'a>,
        value: Text<'a>,
        time: f64,
    },
    Tiles(Tiles<'a>),
    Lifetime {
        measure: Text<'a>,
        combine: Text<'a>,
        value: f64,
    },
    Distinct {
        measure: Text<'a>,
        member: Text<'a>,
        time: f64,
        retention: f64,
    },
    Frequency {
        measure: Text<'a>,
        value: Text<'a>,
    },
    Drain {
        view: Text<'a>,
        key: Text<'a>,
    },
    /// The entity keeps no version (the script's `keeps_version`).
    Unversioned,
    /// A kind the script has no branch for: it skips it, and so does the port.
    Other,
}

struct Tiles<'a> {
    /// The tier's tag (`m`, `h`).
    tier: Text<'a>,
    bucket: f64,
    retention: f64,
    prune_every: f64,
    /// The tile holding the bucket in every span, finest first.
    fields: Vec<Text<'a>>,
    measures: Vec<TileMeasure<'a>>,
}

struct TileMeasure<'a> {
    id: Text<'a>,
    /// `add`, `min` or `max`.
    combine: Text<'a>,
    value: f64,
}

/// A string of the operations' JSON.
type Text<'a> = Cow<'a, str>;

/// `cjson.decode` of a group's operations, read straight into [`Op`]s.
fn decode_ops(json: &[u8]) -> Result<Vec<Op<'_>>> {
    serde_json::from_slice(json).map_err(|error| format!("ERR malformed operations: {error}"))
}

impl<'de> Deserialize<'de> for Op<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_seq(OpVisitor)
    }
}

/// Reads a JSON string, borrowed from the JSON unless it has escapes (serde's own `Cow<str>`
/// always copies). Asked for any value (an operation's kind), it reads one of another type as
/// None and skips it.
struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Option<Text<'de>>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(
        self,
        text: &'de str,
    ) -> std::result::Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(text)))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> std::result::Result<Self::Value, E> {
        Ok(Some(Cow::Owned(text.to_owned())))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_map<A: de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

/// A JSON string (anything else is an error).
struct Borrowed<'de>(Text<'de>);

impl<'de> Deserialize<'de> for Borrowed<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = deserializer.deserialize_str(TextVisitor)?;
        text.map(Borrowed)
            .ok_or_else(|| de::Error::custom("expected a string"))
    }
}

/// An operation's kind: a string, or None for any other value (the script has no branch for it).
struct Kind<'de>(Option<Text<'de>>);

impl<'de> Deserialize<'de> for Kind<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(TextVisitor).map(Kind)
    }
}

/// `[id, combine, value]` of a tile's measure.
impl<'de> Deserialize<'de> for TileMeasure<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let (Borrowed(id), Borrowed(combine), value) =
            <(Borrowed, Borrowed, f64)>::deserialize(deserializer)?;
        Ok(TileMeasure { id, combine, value })
    }
}

/// Reads `[kind, …]`: the elements each kind has, in encode.rs's order. Elements after those, and
/// every element of a kind the script has no branch for, are skipped, as the script skips them.
struct OpVisitor;

impl<'de> Visitor<'de> for OpVisitor {
    type Value = Op<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("an operation [kind, …]")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut op: A) -> std::result::Result<Self::Value, A::Error> {
        let text = |op: &mut A, n| -> std::result::Result<Text<'de>, A::Error> {
            Ok(element::<Borrowed, _>(op, n)?.0)
        };
        let Kind(kind) = element(&mut op, 1)?;
        let decoded = match kind.as_deref() {
            Some("touch") => Op::Touch {
                time: element(&mut op, 2)?,
            },
            Some("last") => Op::Last {
                feature: text(&mut op, 2)?,
                value: text(&mut op, 3)?,
                time: element(&mut op, 4)?,
            },
            Some("tiles") => Op::Tiles(Tiles {
                tier: text(&mut op, 2)?,
                bucket: element(&mut op, 3)?,
                retention: element(&mut op, 4)?,
                prune_every: element(&mut op, 5)?,
                fields: element::<Vec<Borrowed>, _>(&mut op, 6)?
                    .into_iter()
                    .map(|Borrowed(field)| field)
                    .collect(),
                measures: element(&mut op, 7)?,
            }),
            Some("lifetime") => Op::Lifetime {
                measure: text(&mut op, 2)?,
                combine: text(&mut op, 3)?,
                value: element(&mut op, 4)?,
            },
            Some("distinct") => Op::Distinct {
                measure: text(&mut op, 2)?,
                member: text(&mut op, 3)?,
                time: element(&mut op, 4)?,
                retention: element(&mut op, 5)?,
            },
            Some("frequency") => Op::Frequency {
                measure: text(&mut op, 2)?,
                value: text(&mut op, 3)?,
            },
            Some("drain") => Op::Drain {
                view: text(&mut op, 2)?,
                key: text(&mut op, 3)?,
            },
            Some("unversioned") => Op::Unversioned,
            _ => Op::Other,
        };
        while op.next_element::<IgnoredAny>()?.is_some() {}
        Ok(decoded)
    }
}

/// The operation's next element, `op[n]`: a string, a number (a double, as cjson decodes every
/// JSON number) or a list, as the kind has it there.
fn element<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(
    op: &mut A,
    n: usize,
) -> std::result::Result<T, A::Error> {
    op.next_element()?
        .ok_or_else(|| de::Error::custom(format_args!("the operation has no element {n}")))
}

/// The script's `compared`: the fields of the entity hash that `ops` compare against.
fn compared(ops: &[Op]) -> Vec<String> {
    let mut fields = vec!["id".to_owned(), "_t".to_owned()];
    for op in ops {
        match op {
            Op::Last { feature, .. } => fields.push(["_t:", feature].concat()),
            Op::Tiles(tiles) => fields.push(["_mx", &tiles.tier].concat()),
            Op::Lifetime {
                measure, combine, ..
            } if combine != "add" => fields.push(["l.", measure].concat()),
            _ => {}
        }
    }
    fields
}

/// The script's `improves`: whether `how` ('add', 'min' or 'max') changes `current` (absent:
/// None) given `value`.
fn improves(how: &str, current: Option<f64>, value: f64) -> bool {
    match current {
        None => true,
        Some(current) => (how == "min" && value < current) || (how == "max" && value > current),
    }
}

/// The script's `merge`: combines `value` into measure `id` of a packed tile value
/// (`{measure}:{value},…`; absent: None), in place.
fn merge(tile: &mut Option<Vec<u8>>, id: &str, how: &str, value: f64) -> Result<()> {
    let id = id.as_bytes();
    // `{id}:{value}` at the end of `packed`.
    let push_measure = |packed: &mut Vec<u8>| {
        packed.extend_from_slice(id);
        packed.push(b':');
        packed.extend_from_slice(format_d_in(value, &mut [0; MAX_D_LEN]));
    };
    let Some(packed) = tile else {
        let mut packed = Vec::with_capacity(id.len() + 1 + MAX_D_LEN);
        push_measure(&mut packed);
        *tile = Some(packed);
        return Ok(());
    };
    // The first `,{id}:` in `,{packed}`, as the script looks for it: `{id}:` at the start of
    // `packed`, or else its first `,{id}:`. `value_start` is where the value after it starts.
    let is_measure =
        |at: usize| packed[at..].starts_with(id) && packed.get(at + id.len()) == Some(&b':');
    let value_start = if is_measure(0) {
        Some(id.len() + 1)
    } else {
        (0..packed.len())
            .filter(|&at| packed[at] == b',')
            .find(|&comma| is_measure(comma + 1))
            .map(|comma| comma + 1 + id.len() + 1)
    };
    let Some(value_start) = value_start else {
        packed.push(b',');
        push_measure(packed);
        return Ok(());
    };
    let value_end = packed[value_start..]
        .iter()
        .position(|&byte| byte == b',')
        .map_or(packed.len(), |comma| value_start + comma);
    let current = tonumber(&packed[value_start..value_end]);
    let value = if how == "add" {
        current.ok_or_else(|| {
            format!(
                "ERR attempt to perform arithmetic on a nil value: measure {} of tile {:?}",
                String::from_utf8_lossy(id),
                String::from_utf8_lossy(packed)
            )
        })? + value
    } else if improves(how, current, value) {
        value
    } else {
        return Ok(());
    };
    let mut buffer = [0; MAX_D_LEN];
    let digits = format_d_in(value, &mut buffer);
    packed.splice(value_start..value_end, digits.iter().copied());
    Ok(())
}

/// The bucket before the first of a tile, from the tile's field (`{index}` or `{index}x{span}`,
/// covering buckets `(span·(index-1), span·index]`), read as the script's pattern
/// `^(%-?%d+)x?(%d*)` reads it (no span: 1). None for a field that does not start with an index.
fn tile_behind(field: &[u8]) -> Option<f64> {
    let sign = usize::from(field.first() == Some(&b'-'));
    let index_end = sign
        + field[sign..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
    if index_end == sign {
        return None;
    }
    let rest = &field[index_end..];
    let rest = rest.strip_prefix(b"x").unwrap_or(rest);
    let span_end = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let index = tonumber(&field[..index_end])?;
    let span = tonumber(&rest[..span_end]).unwrap_or(1.0);
    Some(span * (index - 1.0))
}

/// The span of a tile field the script writes (`{index}x{span}`, `{index}` for 1).
fn tile_span(field: &[u8]) -> f64 {
    match field.iter().position(|&byte| byte == b'x') {
        Some(x) => tonumber(&field[x + 1..]).unwrap_or(1.0),
        None => 1.0,
    }
}

/// Lua 5.1's `tonumber` of a string: C's `strtod` of the whole string but for blanks around it;
/// None when it is not a number. (Lua also reads `0x…` as hexadecimal; no value the script
/// reads is written that way.)
fn tonumber(text: &[u8]) -> Option<f64> {
    // Lua hands C the string, which ends at its first NUL.
    let text = text.split(|&byte| byte == 0).next()?;
    let text = std::str::from_utf8(text).ok()?;
    let is_c_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r');
    let text = text.trim_matches(is_c_space);
    text.parse().ok()
}

/// Lua 5.1's `string.format('%d', n)`: `n` cast to a C `long`, i.e. truncated toward zero.
fn format_d(n: f64) -> String {
    let mut buffer = [0; MAX_D_LEN];
    String::from_utf8_lossy(format_d_in(n, &mut buffer)).into_owned()
}

/// The longest [`format_d`]: a sign and 19 digits.
const MAX_D_LEN: usize = 20;

/// [`format_d`] written into `buffer`, without allocating: tiles merge some thirty values an
/// order.
fn format_d_in(n: f64, buffer: &mut [u8; MAX_D_LEN]) -> &[u8] {
    let n = n as i64;
    let mut magnitude = n.unsigned_abs();
    let mut start = MAX_D_LEN;
    loop {
        start -= 1;
        buffer[start] = b'0' + (magnitude % 10) as u8;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    if n < 0 {
        start -= 1;
        buffer[start] = b'-';
    }
    &buffer[start..]
}

/// A Lua number as `redis.call` passes it to Redis: C's `%.17g`. Integers below 10^17 print as
/// plain integers.
fn number_arg(n: f64) -> String {
    // Whole numbers below 10^17 (times, buckets, counts: nearly every number here) print as
    // themselves; -0 keeps its sign below.
    if n.fract() == 0.0 && n.abs() < 1e17 && !(n == 0.0 && n.is_sign_negative()) {
        return format_d(n);
    }
    if n.is_nan() {
        return String::from(if n.is_sign_negative() { "-nan" } else { "nan" });
    }
    if n.is_infinite() {
        return String::from(if n < 0.0 { "-inf" } else { "inf" });
    }
    // The 17 significant digits, rounded as printf rounds them, and the decimal exponent.
    let scientific = format!("{:.16e}", n.abs());
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("exponential notation has an exponent");
    let exponent: i32 = exponent.parse().expect("the exponent is an integer");
    let digits = mantissa.replace('.', "");
    let sign = if n.is_sign_negative() { "-" } else { "" };
    if (-4..17).contains(&exponent) {
        // Plain notation, trailing zeros of the fraction dropped, and the point with them.
        let (whole, fraction) = if exponent >= 0 {
            digits.split_at(exponent as usize + 1)
        } else {
            ("0", digits.as_str())
        };
        let leading_zeros = if exponent < 0 {
            (-exponent - 1) as usize
        } else {
            0
        };
        let fraction = format!("{}{fraction}", "0".repeat(leading_zeros));
        let fraction = fraction.trim_end_matches('0');
        if fraction.is_empty() {
            format!("{sign}{whole}")
        } else {
            format!("{sign}{whole}.{fraction}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let rest = rest.trim_end_matches('0');
        let point = if rest.is_empty() { "" } else { "." };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        format!(
            "{sign}{first}{point}{rest}e{exponent_sign}{:02}",
            exponent.abs()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_reach_redis_as_redis_call_formats_them() {
        assert_eq!(number_arg(1_546_300_800_000.0), "1546300800000");
        assert_eq!(number_arg(-1.0), "-1");
        assert_eq!(number_arg(0.0), "0");
        assert_eq!(number_arg(-0.0), "-0");
        assert_eq!(number_arg(0.5), "0.5");
        assert_eq!(number_arg(0.1), "0.10000000000000001");
        assert_eq!(number_arg(1e-4), "0.0001");
        assert_eq!(number_arg(1e-5), "1.0000000000000001e-05");
        assert_eq!(number_arg(1e16), "10000000000000000");
        assert_eq!(number_arg(1e17), "1e+17");
        assert_eq!(number_arg(2f64.powi(60)), "1.152921504606847e+18");
    }

    #[test]
    fn format_d_truncates_toward_zero() {
        assert_eq!(format_d(12.0), "12");
        assert_eq!(format_d(-3.7), "-3");
        assert_eq!(format_d(1_546_300_800_000_123.0), "1546300800000123");
        for n in [0.0, 7.9, -7.9, -0.5, 1e18, -9.3e18, 1.5e19, f64::NAN] {
            let mut buffer = [0; MAX_D_LEN];
            // A C `long` cast, as Rust's `as i64` (saturating) writes it.
            let expected = (n as i64).to_string();
            assert_eq!(format_d_in(n, &mut buffer), expected.as_bytes(), "{n}");
        }
    }

    #[test]
    fn tonumber_reads_as_lua_does() {
        assert_eq!(tonumber(b"42"), Some(42.0));
        assert_eq!(tonumber(b" -7 \n"), Some(-7.0));
        assert_eq!(tonumber(b"1e3"), Some(1000.0));
        assert_eq!(tonumber(b"12\0junk"), Some(12.0));
        assert_eq!(tonumber(b""), None);
        assert_eq!(tonumber(b"12x"), None);
        assert_eq!(tonumber(b"abc"), None);
    }

    fn merged(packed: Option<&str>, id: &str, how: &str, value: f64) -> String {
        let mut tile = packed.map(|packed| packed.as_bytes().to_vec());
        merge(&mut tile, id, how, value).expect("merges");
        String::from_utf8(tile.expect("a tile")).expect("UTF-8")
    }

    #[test]
    fn merge_combines_one_measure_of_a_packed_tile() {
        assert_eq!(merged(None, "m1", "add", 5.0), "m1:5");
        assert_eq!(merged(Some("m1:5"), "m1", "add", 2.0), "m1:7");
        assert_eq!(merged(Some("m1:5,m2:9"), "m2", "min", 3.0), "m1:5,m2:3");
        assert_eq!(merged(Some("m1:5,m2:9"), "m2", "min", 10.0), "m1:5,m2:9");
        assert_eq!(merged(Some("m1:5,m2:9"), "m1", "max", 6.0), "m1:6,m2:9");
        assert_eq!(merged(Some("m1:5"), "m3", "max", -4.0), "m1:5,m3:-4");
        // `1` is not the end of `m1`.
        assert_eq!(merged(Some("m1:5"), "1", "add", 1.0), "m1:5,1:1");
        assert_eq!(merged(Some("m11:5,m1:2"), "m1", "add", 1.0), "m11:5,m1:3");
        assert_eq!(
            merged(Some("m1:5,m2:1"), "m1", "add", 1e6),
            "m1:1000005,m2:1"
        );
        assert_eq!(
            merged(Some("m1:1000005,m2:1"), "m1", "add", -1e6),
            "m1:5,m2:1"
        );
        assert_eq!(merged(Some(""), "m1", "add", 1.0), ",m1:1");
        assert!(merge(&mut Some(b"m1:x".to_vec()), "m1", "add", 1.0).is_err());
    }

    #[test]
    fn tiles_are_read_from_their_fields() {
        assert_eq!(tile_behind(b"12"), Some(11.0));
        assert_eq!(tile_behind(b"3x5"), Some(10.0));
        assert_eq!(tile_behind(b"-2x4"), Some(-12.0));
        assert_eq!(tile_behind(b"7y"), Some(6.0));
        assert_eq!(tile_behind(b"_"), None);
        assert_eq!(tile_behind(b"-x"), None);
        assert_eq!(tile_span(b"12"), 1.0);
        assert_eq!(tile_span(b"3x5"), 5.0);
        assert_eq!(tile_span(b"-2x168"), 168.0);
    }

    #[test]
    fn operations_decode_as_encode_rs_writes_them() {
        let json = br#"[["touch",1546300800000],["last","status","paid",1546300800000],
            ["tiles","m",25771680,1500,60,["25771680","5154336x5"],[["m1","add",1]]],
            ["lifetime","m2","max",1250],["distinct","m3","u1",1546300800000,86400000],
            ["frequency","m4","card"],["drain","order","o1"],["later"],[5,"x"],["unversioned"]]"#;
        let ops = decode_ops(json).expect("decodes");
        assert_eq!(ops.len(), 10);
        assert!(matches!(ops[9], Op::Unversioned));
        assert!(matches!(ops[0], Op::Touch { time } if time == 1_546_300_800_000.0));
        assert!(matches!(&ops[2], Op::Tiles(tiles)
            if tiles.fields == ["25771680", "5154336x5"] && tiles.measures[0].combine == "add"));
        assert!(matches!(ops[7], Op::Other));
        assert!(matches!(ops[8], Op::Other));
        assert_eq!(compared(&ops), ["id", "_t", "_t:status", "_mxm", "l.m2"]);
    }

    #[test]
    fn strings_with_escapes_decode_as_well_as_borrowed_ones() {
        let json = br#"[["last","st\"atus","caf\u00e9",1],["frequency","m4","card"]]"#;
        let ops = decode_ops(json).expect("decodes");
        assert!(matches!(&ops[0], Op::Last { feature, value, .. }
            if feature == "st\"atus" && value == "café" && matches!(value, Cow::Owned(_))));
        assert!(matches!(&ops[1], Op::Frequency { value, .. }
            if value == "card" && matches!(value, Cow::Borrowed(_))));
        assert!(decode_ops(br#"[["last",5,"x",1]]"#).is_err());
    }
}
