//! The `feature-history` job: every feature view, offline, into `gold/{view}/`, computed by the
//! domain's own `updates_for` — the exact operations the online store applies — so training data
//! and serving share one definition:
//!
//! - `changes`: `last` values as change rows (entity, feature, event time, value, and the log
//!   order that breaks ties as online: the later arrival wins);
//! - `measures`: each event's contribution to each count, sum, min and max measure, at its exact
//!   event time (what a point-in-time window needs inside a partly elapsed bucket);
//! - `tiles`: per entity, per measure and bucket (the online buckets: `m` minute and `h` hour
//!   tiers, and `l` hour tiles of lifetime measures), the partial aggregate;
//! - `distinct`: distinct members with each time they were seen;
//! - `frequencies`: most-frequent counters as (value, time) occurrences.
//!
//! Each table is partitioned like bronze, `gold/{view}/{table}/date=YYYY-MM-DD/part-0.parquet`,
//! and computed one event date at a time per core, so memory is bounded by the busiest days
//! rather than the lake. Joined sources (`via`) resolve through the joined view's `last` value as of the
//! whole lake (event time does not wait for arrival order offline), collected in a first pass
//! that reads only the sources holding those values.

use std::{
    collections::{BTreeSet, HashMap},
    path::Path,
    sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
};

use larder_domain::{
    Event, FeatureKind, FeatureViews, FieldType, KeyRef, Source, StateOp, Target, Tier, Timestamp,
};
use larder_usecases::ObjectStore;
use polars::prelude::*;
use serde_json::{Map, Value};

use crate::{
    LakeError,
    bronze::{date_partitions, read_partitions},
    names::Names,
    parquet_file,
};

/// One bronze row back as a domain event, with its place in the log.
struct Logged {
    event: Event,
    order: (i64, i64),
}

/// The event dates of the bronze partitions of any source under `lake_dir`, oldest first.
fn bronze_dates(lake_dir: &Path) -> BTreeSet<String> {
    Source::ALL
        .iter()
        .flat_map(|source| date_partitions(&lake_dir.join(format!("bronze/{source}"))))
        .map(|(date, _)| date)
        .collect()
}

/// Reads the bronze rows of `source` for event date `date` under `lake_dir` as events.
fn read_events(lake_dir: &Path, source: Source, date: &str) -> Result<Vec<Logged>, LakeError> {
    let dir = lake_dir.join(format!("bronze/{source}/date={date}"));
    let frame = read_partitions(&[dir], &[]).map_err(LakeError::encode)?;
    let Some(frame) = frame else {
        return Ok(Vec::new());
    };
    let ingested = frame
        .column("_ingested_at")
        .map_err(LakeError::encode)?
        .cast(&DataType::Int64)
        .map_err(LakeError::encode)?;
    let ingested = ingested.i64().map_err(LakeError::encode)?;
    let seq = frame
        .column("_stream_seq")
        .map_err(LakeError::encode)?
        .i64()
        .map_err(LakeError::encode)?
        .clone();
    let mut records: Vec<Map<String, Value>> = vec![Map::new(); frame.height()];
    for (field, kind) in source.fields() {
        let column = frame.column(field).map_err(LakeError::encode)?;
        match kind {
            FieldType::Text => {
                let values = column.str().map_err(LakeError::encode)?;
                for (i, record) in records.iter_mut().enumerate() {
                    if let Some(v) = values.get(i) {
                        record.insert((*field).to_owned(), Value::String(v.to_owned()));
                    }
                }
            }
            FieldType::Integer | FieldType::Time => {
                let values = column.cast(&DataType::Int64).map_err(LakeError::encode)?;
                let values = values.i64().map_err(LakeError::encode)?;
                for (i, record) in records.iter_mut().enumerate() {
                    let Some(v) = values.get(i) else { continue };
                    let value = if *kind == FieldType::Time {
                        Value::String(
                            Timestamp::from_millis(v)
                                .map(|t| t.to_string())
                                .unwrap_or_default(),
                        )
                    } else {
                        Value::from(v)
                    };
                    record.insert((*field).to_owned(), value);
                }
            }
            FieldType::Float => {
                let values = column.f64().map_err(LakeError::encode)?;
                for (i, record) in records.iter_mut().enumerate() {
                    if let Some(v) = values.get(i) {
                        record.insert((*field).to_owned(), Value::from(v));
                    }
                }
            }
            FieldType::Boolean => {
                let values = column.bool().map_err(LakeError::encode)?;
                for (i, record) in records.iter_mut().enumerate() {
                    if let Some(v) = values.get(i) {
                        record.insert((*field).to_owned(), Value::Bool(v));
                    }
                }
            }
        }
    }
    records
        .into_iter()
        .enumerate()
        .map(|(i, record)| {
            let event = Event::parse(source, &Value::Object(record)).map_err(LakeError::encode)?;
            Ok(Logged {
                event,
                order: (ingested.get(i).unwrap_or(0), seq.get(i).unwrap_or(0)),
            })
        })
        .collect()
}

/// `last` values and entity touches as change rows, column by column.
#[derive(Default)]
struct Changes {
    entity: Vec<u32>,
    feature: Vec<u32>,
    time: Vec<i64>,
    value: Vec<String>,
    ingested: Vec<i64>,
    seq: Vec<i64>,
}

/// Partial aggregates, one row per operation until grouped.
#[derive(Default)]
struct Tiles {
    entity: Vec<u32>,
    tier: Vec<&'static str>,
    bucket: Vec<i64>,
    measure: Vec<u32>,
    combine: Vec<&'static str>,
    value: Vec<i64>,
}

/// Each event's contribution to a count, sum, min or max measure.
#[derive(Default)]
struct Contributions {
    entity: Vec<u32>,
    measure: Vec<u32>,
    time: Vec<i64>,
    value: Vec<i64>,
}

/// Distinct members or counted values, each with the event time it was seen at.
#[derive(Default)]
struct Occurrences {
    entity: Vec<u32>,
    measure: Vec<u32>,
    value: Vec<u32>,
    time: Vec<i64>,
}

#[derive(Default)]
struct ViewHistory {
    names: Names,
    changes: Changes,
    measures: Contributions,
    tiles: Tiles,
    distinct: Occurrences,
    frequencies: Occurrences,
}

/// One gold object to write.
pub struct GoldObject {
    pub key: String,
    pub bytes: Vec<u8>,
    pub rows: usize,
}

fn push_occurrence(o: &mut Occurrences, (entity, measure, value): (u32, u32, u32), time: i64) {
    o.entity.push(entity);
    o.measure.push(measure);
    o.value.push(value);
    o.time.push(time);
}

fn combine_name(combine: larder_domain::Combine) -> &'static str {
    match combine {
        larder_domain::Combine::Add => "add",
        larder_domain::Combine::Min => "min",
        larder_domain::Combine::Max => "max",
    }
}

fn datetime(name: &str, values: Vec<i64>) -> PolarsResult<Column> {
    Ok(Series::new(name.into(), values)
        .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))?
        .into_column())
}

impl ViewHistory {
    /// Records one entity update: its operations, and once per measure the event's contribution.
    fn record_update(&mut self, key: &str, ops: &[StateOp], time_ms: i64, order: (i64, i64)) {
        let mut contributed: Vec<&str> = Vec::new();
        for op in ops {
            let values: Vec<(&String, i64)> = match op {
                StateOp::Tiles { values, .. } => {
                    values.iter().map(|v| (&v.measure, v.value)).collect()
                }
                StateOp::Lifetime { measure, value, .. } => vec![(measure, *value)],
                _ => Vec::new(),
            };
            for (measure, value) in values {
                if contributed.contains(&measure.as_str()) {
                    continue;
                }
                contributed.push(measure);
                let (entity, measure) = (self.names.id(key), self.names.id(measure));
                let m = &mut self.measures;
                m.entity.push(entity);
                m.measure.push(measure);
                m.time.push(time_ms);
                m.value.push(value);
            }
            self.record(key, op, time_ms, order);
        }
    }

    fn record(&mut self, key: &str, op: &StateOp, time_ms: i64, order: (i64, i64)) {
        match op {
            StateOp::Last {
                feature,
                value,
                time_ms,
            } => self.change(key, feature, *time_ms, value, order),
            StateOp::Touch { time_ms } => self.change(key, "_touch", *time_ms, "", order),
            StateOp::Tiles {
                tier,
                bucket,
                values,
                ..
            } => {
                for v in values {
                    let combine = combine_name(v.combine);
                    self.tile(key, tier.tag(), *bucket, &v.measure, combine, v.value);
                }
            }
            StateOp::Lifetime {
                measure,
                combine,
                value,
            } => {
                self.tile(
                    key,
                    "l",
                    Tier::Hour.bucket(time_ms),
                    measure,
                    combine_name(*combine),
                    *value,
                );
            }
            StateOp::Distinct {
                measure,
                member,
                time_ms,
                ..
            } => {
                let row = (
                    self.names.id(key),
                    self.names.id(measure),
                    self.names.id(member),
                );
                push_occurrence(&mut self.distinct, row, *time_ms);
            }
            StateOp::Frequency { measure, value } => {
                let row = (
                    self.names.id(key),
                    self.names.id(measure),
                    self.names.id(value),
                );
                push_occurrence(&mut self.frequencies, row, time_ms);
            }
            StateOp::Drain { .. } => {}
        }
    }

    fn change(&mut self, key: &str, feature: &str, time: i64, value: &str, order: (i64, i64)) {
        let (entity, feature) = (self.names.id(key), self.names.id(feature));
        let c = &mut self.changes;
        c.entity.push(entity);
        c.feature.push(feature);
        c.time.push(time);
        c.value.push(value.to_owned());
        c.ingested.push(order.0);
        c.seq.push(order.1);
    }

    fn tile(
        &mut self,
        key: &str,
        tier: &'static str,
        index: i64,
        measure: &str,
        combine: &'static str,
        value: i64,
    ) {
        let (entity, measure) = (self.names.id(key), self.names.id(measure));
        let t = &mut self.tiles;
        t.entity.push(entity);
        t.tier.push(tier);
        t.bucket.push(index);
        t.measure.push(measure);
        t.combine.push(combine);
        t.value.push(value);
    }

    fn frames(self) -> PolarsResult<Vec<(&'static str, DataFrame)>> {
        let names = self.names;
        let c = self.changes;
        let changes = DataFrame::new_infer_height(vec![
            names.column("entity", &c.entity),
            names.column("feature", &c.feature),
            datetime("event_time", c.time)?,
            Series::new("value".into(), c.value).into_column(),
            datetime("_ingested_at", c.ingested)?,
            Series::new("_stream_seq".into(), c.seq).into_column(),
        ])?
        .sort(
            [
                "entity",
                "feature",
                "event_time",
                "_ingested_at",
                "_stream_seq",
            ],
            SortMultipleOptions::default(),
        )?;
        let m = self.measures;
        let measures = DataFrame::new_infer_height(vec![
            names.column("entity", &m.entity),
            names.column("measure", &m.measure),
            datetime("event_time", m.time)?,
            Series::new("value".into(), m.value).into_column(),
        ])?
        .sort(
            ["entity", "measure", "event_time"],
            SortMultipleOptions::default(),
        )?;
        // Grouped on the ids, named after.
        let t = self.tiles;
        let tiles = DataFrame::new_infer_height(vec![
            Series::new("entity".into(), t.entity).into_column(),
            Series::new("tier".into(), t.tier).into_column(),
            Series::new("bucket".into(), t.bucket).into_column(),
            Series::new("measure".into(), t.measure).into_column(),
            Series::new("combine".into(), t.combine).into_column(),
            Series::new("value".into(), t.value).into_column(),
        ])?
        .lazy()
        .group_by([
            col("entity"),
            col("tier"),
            col("bucket"),
            col("measure"),
            col("combine"),
        ])
        .agg([when(col("combine").first().eq(lit("min")))
            .then(col("value").min())
            .when(col("combine").first().eq(lit("max")))
            .then(col("value").max())
            .otherwise(col("value").sum())
            .alias("value")])
        .collect()?;
        let mut tiles = tiles;
        for column in ["entity", "measure"] {
            let ids: Vec<u32> = tiles.column(column)?.u32()?.into_no_null_iter().collect();
            tiles.with_column(names.column(column, &ids))?;
        }
        let tiles = tiles.sort(
            ["entity", "measure", "tier", "bucket"],
            SortMultipleOptions::default(),
        )?;
        // Sorted like the measures, events of one instant in their order: a training set then
        // finds each entity's rows in runs rather than looking up every row's.
        // `hashed`: with each value's hash beside it, as `MEMBER_HASH`.
        let occurrences = |o: Occurrences, value: &str, hashed: bool| -> PolarsResult<DataFrame> {
            let mut columns = vec![
                names.column("entity", &o.entity),
                names.column("measure", &o.measure),
                names.column(value, &o.value),
                datetime("event_time", o.time)?,
            ];
            if hashed {
                columns.push(names.hash_column(MEMBER_HASH, &o.value));
            }
            DataFrame::new_infer_height(columns)?.sort(
                ["entity", "measure", "event_time"],
                SortMultipleOptions::default().with_maintain_order(true),
            )
        };
        Ok(vec![
            ("changes", changes),
            ("measures", measures),
            ("tiles", tiles),
            ("distinct", occurrences(self.distinct, "member", true)?),
            (
                "frequencies",
                occurrences(self.frequencies, "value", false)?,
            ),
        ])
    }
}

/// The `distinct` table's column of each member's xxh3-64 hash (as `Int64`): a training set
/// compares members by it without decoding their text.
pub const MEMBER_HASH: &str = "member_hash";

/// The gold tables `feature-history` writes for each view.
pub const GOLD_TABLES: [&str; 5] = ["changes", "measures", "tiles", "distinct", "frequencies"];

/// `gold/{view}/{table}/date={date}/part-0.parquet`.
pub fn gold_key(view: &str, table: &str, date: &str) -> String {
    format!("gold/{view}/{table}/date={date}/part-0.parquet")
}

/// The joined views' `last` values that `via` sources resolve through, over the whole lake: per
/// joined (view, feature), each key's value from its latest event in log order.
#[derive(Default)]
struct Resolved(Vec<ResolvedFeature>);

struct ResolvedFeature {
    view: String,
    feature: String,
    values: KeyValues,
}

/// Key → value, with the log order of the event that set it.
type KeyValues = PlHashMap<String, (String, (i64, i64))>;

impl Resolved {
    fn get(&self, view: &str, key: &str, feature: &str) -> Option<&str> {
        let joined = self
            .0
            .iter()
            .find(|r| r.view == view && r.feature == feature)?;
        joined.values.get(key).map(|(value, _)| value.as_str())
    }

    fn get_mut(&mut self, view: &str, feature: &str) -> Option<&mut KeyValues> {
        self.0
            .iter_mut()
            .find(|r| r.view == view && r.feature == feature)
            .map(|r| &mut r.values)
    }
}

fn resolve_joins(
    lake_dir: &Path,
    views: &FeatureViews,
    dates: &[String],
) -> Result<Resolved, LakeError> {
    // Only the (view, feature) pairs some `via` goes through are kept, and only the sources
    // feeding them are read.
    let mut resolved = Resolved::default();
    let mut sources = BTreeSet::new();
    for view in views.views() {
        for view_source in &view.sources {
            let KeyRef::Via {
                view: joined,
                feature,
                ..
            } = &view_source.key
            else {
                continue;
            };
            let Some(joined_view) = views.view(joined) else {
                continue;
            };
            for f in joined_view.features.iter().filter(|f| &f.name == feature) {
                if let FeatureKind::Last { source, .. } = &f.kind {
                    sources.insert(*source);
                }
            }
            if resolved.get_mut(joined, feature).is_none() {
                resolved.0.push(ResolvedFeature {
                    view: joined.clone(),
                    feature: feature.clone(),
                    values: PlHashMap::new(),
                });
            }
        }
    }
    for date in dates {
        for source in &sources {
            for logged in read_events(lake_dir, *source, date)? {
                for update in views.updates_for(&logged.event) {
                    let Target::Key(key) = &update.target else {
                        continue;
                    };
                    for op in &update.ops {
                        let StateOp::Last { feature, value, .. } = op else {
                            continue;
                        };
                        let Some(values) = resolved.get_mut(&update.view, feature) else {
                            continue;
                        };
                        match values.get_mut(key.as_str()) {
                            Some(known) if known.1 > logged.order => {}
                            Some(known) => *known = (value.clone(), logged.order),
                            None => {
                                values.insert(key.clone(), (value.clone(), logged.order));
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(resolved)
}

/// Computes every view's history from the bronze lake under `lake_dir`, one event date at a
/// time on each core, handing each gold object to `write` as soon as it is encoded; answers the
/// number of events read.
///
/// # Errors
/// When the lake cannot be read, a frame built, or `write` fails.
pub fn compute_feature_history(
    lake_dir: &Path,
    views: &FeatureViews,
    mut write: impl FnMut(GoldObject) -> Result<(), LakeError>,
) -> Result<u64, LakeError> {
    let dates: Vec<String> = bronze_dates(lake_dir).into_iter().collect();
    let resolved = resolve_joins(lake_dir, views, &dates)?;
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(dates.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let read = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    // A short queue: a worker blocks once a few objects wait to be written.
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Result<GoldObject, LakeError>>(4);
    let outcome = std::thread::scope(|scope| {
        for _ in 0..workers {
            let sender = sender.clone();
            let (dates, resolved, next, read, stop) = (&dates, &resolved, &next, &read, &stop);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Some(date) = dates.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    let send = |object| {
                        sender
                            .send(Ok(object))
                            .map_err(|_| LakeError::Encode("the gold writer stopped".into()))
                    };
                    match date_history(lake_dir, views, resolved, date, send) {
                        Ok(events) => {
                            read.fetch_add(events, Ordering::Relaxed);
                        }
                        Err(e) => {
                            stop.store(true, Ordering::Relaxed);
                            let _ = sender.send(Err(e));
                        }
                    }
                }
            });
        }
        drop(sender);
        let mut outcome = Ok(());
        for message in receiver {
            let written = message.and_then(&mut write);
            if let (Ok(()), Err(e)) = (&outcome, written) {
                stop.store(true, Ordering::Relaxed);
                outcome = Err(e);
            }
        }
        outcome
    });
    outcome.map(|()| read.into_inner())
}

/// One event date's gold objects, each handed to `send`; answers the events read.
fn date_history(
    lake_dir: &Path,
    views: &FeatureViews,
    resolved: &Resolved,
    date: &str,
    send: impl Fn(GoldObject) -> Result<(), LakeError>,
) -> Result<u64, LakeError> {
    let mut read = 0;
    let mut histories: HashMap<&str, ViewHistory> = views
        .views()
        .iter()
        .map(|v| (v.name.as_str(), ViewHistory::default()))
        .collect();
    for source in Source::ALL {
        let events = read_events(lake_dir, source, date)?;
        read += events.len() as u64;
        for logged in &events {
            let time_ms = logged.event.event_time().millis();
            for update in views.updates_for(&logged.event) {
                let key = match &update.target {
                    Target::Key(key) => Some(key.as_str()),
                    Target::Via { view, key, feature } => resolved.get(view, key, feature),
                };
                let (Some(key), Some(history)) = (key, histories.get_mut(update.view.as_str()))
                else {
                    continue;
                };
                history.record_update(key, &update.ops, time_ms, logged.order);
            }
        }
    }
    for view in views.views() {
        let Some(history) = histories.remove(view.name.as_str()) else {
            continue;
        };
        for (table, mut frame) in history.frames().map_err(LakeError::encode)? {
            // Most dates hold nothing for most tables (a consumer created that day): no object
            // rather than an empty one.
            if frame.height() == 0 {
                continue;
            }
            // LZ4 rather than zstd: every training set reads gold back, and decompressing it
            // was 8 % of a training set's CPU; LZ4 files are about 1.6 times the bytes.
            let bytes = parquet_file::encode(&mut frame, ParquetCompression::Lz4Raw)
                .map_err(LakeError::encode)?;
            send(GoldObject {
                key: gold_key(&view.name, table, date),
                bytes,
                rows: frame.height(),
            })?;
        }
    }
    Ok(read)
}

/// The `feature-history` job: computes and writes every view's history into gold. Objects are
/// handed from the blocking computation to the store through a short queue, so at most a few
/// encoded objects are in memory at once.
///
/// # Errors
/// [`LakeError::Store`] when objects cannot be read or written, [`LakeError::Encode`] otherwise.
pub async fn run_feature_history(
    store: &dyn ObjectStore,
    cache: &Path,
    views: std::sync::Arc<FeatureViews>,
) -> Result<serde_json::Value, LakeError> {
    let lake_dir = store.local_copy("bronze/", cache).await?;
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<GoldObject>(4);
    let compute = tokio::task::spawn_blocking(move || {
        compute_feature_history(&lake_dir, &views, |object| {
            sender
                .blocking_send(object)
                .map_err(|_| LakeError::Encode("the gold writer stopped".into()))
        })
    });
    let (mut objects, mut rows) = (0, 0);
    let mut put_error = None;
    while let Some(object) = receiver.recv().await {
        if put_error.is_some() {
            continue;
        }
        rows += object.rows;
        objects += 1;
        if let Err(e) = store.put(&object.key, object.bytes).await {
            // Stop the computation: dropping the receiver fails its next send.
            put_error = Some(e);
            receiver.close();
        }
    }
    let events = compute.await.map_err(LakeError::encode)?;
    if let Some(e) = put_error {
        return Err(e.into());
    }
    Ok(serde_json::json!({"rows_in": events?, "rows_out": rows, "objects_written": objects}))
}
