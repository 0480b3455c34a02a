//! The `feature-history` job: every feature view, offline, into `gold/{view}/`, computed by the
//! domain's own `updates_for` — the exact operations the online store applies — so training data
//! and serving share one definition:
//!
//! - `changes.parquet`: `last` values as change rows (entity, feature, event time, value, and the
//!   log order that breaks ties as online: the later arrival wins);
//! - `tiles.parquet`: per entity, per measure and bucket (the online buckets: `m` minute and `h`
//!   hour tiers, and `l` hour tiles of lifetime measures), the partial aggregate;
//! - `distinct.parquet`: distinct members with each time they were seen;
//! - `frequencies.parquet`: most-frequent counters as (value, time) occurrences.
//!
//! Joined sources (`via`) resolve through the joined view's `last` value as of the whole lake
//! (event time does not wait for arrival order offline).

use std::{collections::HashMap, path::Path};

use larder_domain::{Event, FeatureViews, FieldType, Source, StateOp, Target, Tier, Timestamp};
use larder_usecases::ObjectStore;
use polars::prelude::*;
use serde_json::{Map, Value};

use crate::{LakeError, lake_scan_args};

/// One bronze row back as a domain event, with its place in the log.
struct Logged {
    event: Event,
    order: (i64, i64),
}

fn encode(e: impl std::fmt::Display) -> LakeError {
    LakeError::Encode(e.to_string())
}

/// Reads every bronze row of `source` under `lake_dir` as events (in log order).
fn read_events(lake_dir: &Path, source: Source) -> Result<Vec<Logged>, LakeError> {
    let dir = lake_dir.join(format!("bronze/{source}"));
    if !std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
        return Ok(Vec::new());
    }
    let pattern = dir.join("*/*.parquet");
    let frame = LazyFrame::scan_parquet(
        PlRefPath::new(pattern.to_string_lossy().as_ref()),
        lake_scan_args(),
    )
    .map_err(encode)?
    .sort(
        ["_ingested_at", "_stream_seq"],
        SortMultipleOptions::default(),
    )
    .collect()
    .map_err(encode)?;
    let ingested = frame
        .column("_ingested_at")
        .map_err(encode)?
        .cast(&DataType::Int64)
        .map_err(encode)?;
    let ingested = ingested.i64().map_err(encode)?;
    let seq = frame
        .column("_stream_seq")
        .map_err(encode)?
        .i64()
        .map_err(encode)?
        .clone();
    let mut records: Vec<Map<String, Value>> = vec![Map::new(); frame.height()];
    for (field, kind) in source.fields() {
        let column = frame.column(field).map_err(encode)?;
        match kind {
            FieldType::Text => {
                let values = column.str().map_err(encode)?;
                for (i, record) in records.iter_mut().enumerate() {
                    if let Some(v) = values.get(i) {
                        record.insert((*field).to_owned(), Value::String(v.to_owned()));
                    }
                }
            }
            FieldType::Integer | FieldType::Time => {
                let values = column.cast(&DataType::Int64).map_err(encode)?;
                let values = values.i64().map_err(encode)?;
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
                let values = column.f64().map_err(encode)?;
                for (i, record) in records.iter_mut().enumerate() {
                    if let Some(v) = values.get(i) {
                        record.insert((*field).to_owned(), Value::from(v));
                    }
                }
            }
            FieldType::Boolean => {
                let values = column.bool().map_err(encode)?;
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
            let event = Event::parse(source, &Value::Object(record)).map_err(encode)?;
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
    entity: Vec<String>,
    feature: Vec<String>,
    time: Vec<i64>,
    value: Vec<String>,
    ingested: Vec<i64>,
    seq: Vec<i64>,
}

/// Partial aggregates, one row per operation until grouped.
#[derive(Default)]
struct Tiles {
    entity: Vec<String>,
    tier: Vec<&'static str>,
    bucket: Vec<i64>,
    measure: Vec<String>,
    combine: Vec<&'static str>,
    value: Vec<i64>,
}

/// Distinct members or counted values, each with the event time it was seen at.
#[derive(Default)]
struct Occurrences {
    entity: Vec<String>,
    measure: Vec<String>,
    value: Vec<String>,
    time: Vec<i64>,
}

impl Occurrences {
    fn push(&mut self, entity: &str, measure: &str, value: &str, time: i64) {
        self.entity.push(entity.to_owned());
        self.measure.push(measure.to_owned());
        self.value.push(value.to_owned());
        self.time.push(time);
    }
}

#[derive(Default)]
struct ViewHistory {
    changes: Changes,
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
    fn record(&mut self, key: &str, op: &StateOp, time_ms: i64, order: (i64, i64)) {
        match op {
            StateOp::Last {
                feature,
                value,
                time_ms,
            } => self.change(key, feature, *time_ms, value, order),
            StateOp::Touch { time_ms } => self.change(key, "_touch", *time_ms, "", order),
            StateOp::Bucket {
                tier,
                index,
                measure,
                combine,
                value,
                ..
            } => {
                self.tile(
                    key,
                    tier.tag(),
                    *index,
                    measure,
                    combine_name(*combine),
                    *value,
                );
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
            } => self.distinct.push(key, measure, member, *time_ms),
            StateOp::Frequency { measure, value } => {
                self.frequencies.push(key, measure, value, time_ms)
            }
            StateOp::Drain { .. } => {}
        }
    }

    fn change(&mut self, key: &str, feature: &str, time: i64, value: &str, order: (i64, i64)) {
        let c = &mut self.changes;
        c.entity.push(key.to_owned());
        c.feature.push(feature.to_owned());
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
        let t = &mut self.tiles;
        t.entity.push(key.to_owned());
        t.tier.push(tier);
        t.bucket.push(index);
        t.measure.push(measure.to_owned());
        t.combine.push(combine);
        t.value.push(value);
    }

    fn frames(self) -> PolarsResult<Vec<(&'static str, DataFrame)>> {
        let c = self.changes;
        let changes = DataFrame::new_infer_height(vec![
            Series::new("entity".into(), c.entity).into_column(),
            Series::new("feature".into(), c.feature).into_column(),
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
        .sort(
            ["entity", "measure", "tier", "bucket"],
            SortMultipleOptions::default(),
        )
        .collect()?;
        let occurrences = |o: Occurrences, value: &str| -> PolarsResult<DataFrame> {
            DataFrame::new_infer_height(vec![
                Series::new("entity".into(), o.entity).into_column(),
                Series::new("measure".into(), o.measure).into_column(),
                Series::new(value.into(), o.value).into_column(),
                datetime("event_time", o.time)?,
            ])
        };
        Ok(vec![
            ("changes", changes),
            ("tiles", tiles),
            ("distinct", occurrences(self.distinct, "member")?),
            ("frequencies", occurrences(self.frequencies, "value")?),
        ])
    }
}

/// Computes every view's history from the bronze lake under `lake_dir`: the gold objects and the
/// number of events read.
///
/// # Errors
/// When the lake cannot be read or a frame built.
pub fn compute_feature_history(
    lake_dir: &Path,
    views: &FeatureViews,
) -> Result<(Vec<GoldObject>, u64), LakeError> {
    let mut events = Vec::new();
    for source in Source::ALL {
        events.extend(read_events(lake_dir, source)?);
    }
    events.sort_by_key(|e| e.order);
    // Joins resolve through the joined view's `last` value over the whole lake.
    let mut resolved: HashMap<(String, String, String), String> = HashMap::new();
    for logged in &events {
        for update in views.updates_for(&logged.event) {
            let Target::Key(key) = &update.target else {
                continue;
            };
            for op in &update.ops {
                if let StateOp::Last { feature, value, .. } = op {
                    resolved.insert(
                        (update.view.clone(), key.clone(), feature.clone()),
                        value.clone(),
                    );
                }
            }
        }
    }
    let mut histories: HashMap<String, ViewHistory> = views
        .views()
        .iter()
        .map(|v| (v.name.clone(), ViewHistory::default()))
        .collect();
    for logged in &events {
        let time_ms = logged.event.event_time().millis();
        for update in views.updates_for(&logged.event) {
            let key = match &update.target {
                Target::Key(key) => Some(key.clone()),
                Target::Via { view, key, feature } => resolved
                    .get(&(view.clone(), key.clone(), feature.clone()))
                    .cloned(),
            };
            let (Some(key), Some(history)) = (key, histories.get_mut(&update.view)) else {
                continue;
            };
            for op in &update.ops {
                history.record(&key, op, time_ms, logged.order);
            }
        }
    }
    let mut objects = Vec::new();
    for view in views.views() {
        let Some(history) = histories.remove(&view.name) else {
            continue;
        };
        for (name, mut frame) in history.frames().map_err(encode)? {
            let mut bytes = Vec::new();
            ParquetWriter::new(&mut bytes)
                .finish(&mut frame)
                .map_err(encode)?;
            objects.push(GoldObject {
                key: format!("gold/{}/{name}.parquet", view.name),
                bytes,
                rows: frame.height(),
            });
        }
    }
    Ok((objects, events.len() as u64))
}

/// The `feature-history` job: computes and writes every view's history into gold.
///
/// # Errors
/// [`LakeError::Store`] when objects cannot be read or written, [`LakeError::Encode`] otherwise.
pub async fn run_feature_history(
    store: &dyn ObjectStore,
    cache: &Path,
    views: std::sync::Arc<FeatureViews>,
) -> Result<serde_json::Value, LakeError> {
    let lake_dir = store.local_copy("bronze/", cache).await?;
    let (objects, events) =
        tokio::task::spawn_blocking(move || compute_feature_history(&lake_dir, &views))
            .await
            .map_err(encode)??;
    let mut written = Vec::new();
    let mut rows = 0;
    for object in objects {
        store.put(&object.key, object.bytes).await?;
        rows += object.rows;
        written.push(object.key);
    }
    Ok(
        serde_json::json!({"rows_in": events, "rows_out": rows, "objects_written": written.len(), "objects": written}),
    )
}
