//! Point-in-time-correct training sets: each row of an entity table gets every requested
//! feature as it was at the row's own `event_timestamp`, from the gold tables `feature-history`
//! wrote.
//!
//! Key decisions:
//! - The bound is inclusive: a row at `t` sees exactly the events with event time `≤ t` — what
//!   the online store answers at `as_of = t` once those events are ingested.
//! - Values come from the domain's own evaluator ([`FeatureView::evaluate_from`]) over a
//!   [`StateRead`] that cuts the entity's history at `t`, so ratios, averages, max age and the
//!   null rules cannot drift from serving. Windows use the online bucket bounds but read the
//!   per-event `measures` table, because the bucket holding `t` may hold later events too.
//! - Memory: only the date partitions up to the newest row's date are read, one file at a time,
//!   keeping only rows of entities the table asks for, in compact integer form.

use std::{
    ops::Range,
    path::{Path, PathBuf},
};

use larder_domain::{
    FeatureKind, FeatureView, FeatureViews, FieldType, MeasureKind, SelectError, StateRead, Tier,
    Timestamp,
};
use larder_usecases::ObjectStore;
use polars::prelude::*;

use crate::{LakeError, bronze::date_partitions, names::Names};

/// A finished training set.
pub struct TrainingSet {
    /// The Parquet file.
    pub bytes: Vec<u8>,
    pub rows: usize,
    pub feature_columns: usize,
}

/// Builds a training set from the entity table `entities` (named `entities_name`, whose
/// extension tells CSV from Parquet) over the gold tables of `lake`, on a blocking thread.
///
/// # Errors
/// [`LakeError::Invalid`] for a bad request or table, [`LakeError::Store`] when gold cannot be
/// read.
pub async fn build_training_set(
    lake: &dyn ObjectStore,
    cache: &Path,
    views: std::sync::Arc<FeatureViews>,
    entities_name: String,
    entities: Vec<u8>,
    features: Vec<String>,
) -> Result<TrainingSet, LakeError> {
    let lake_dir = lake.local_copy("gold/", cache).await?;
    tokio::task::spawn_blocking(move || {
        let invalid = |e: TrainingSetError| LakeError::Invalid(e.to_string());
        let table = read_entity_table(&entities_name, entities).map_err(invalid)?;
        let columns = table.width();
        let mut frame =
            compute_training_set(&lake_dir, &views, table, &features).map_err(invalid)?;
        let mut bytes = Vec::new();
        ParquetWriter::new(&mut bytes)
            .finish(&mut frame)
            .map_err(|e| LakeError::Encode(e.to_string()))?;
        Ok(TrainingSet {
            bytes,
            rows: frame.height(),
            feature_columns: frame.width() - columns,
        })
    })
    .await
    .map_err(|e| LakeError::Encode(e.to_string()))?
}

/// The entity table's time column.
pub const EVENT_TIMESTAMP: &str = "event_timestamp";

#[derive(Debug, thiserror::Error)]
pub enum TrainingSetError {
    #[error(transparent)]
    Features(#[from] SelectError),
    #[error("the entity table has no column `{column}` ({why})")]
    MissingColumn { column: String, why: String },
    #[error("column `{column}`: {reason}")]
    BadColumn { column: String, reason: String },
    #[error("entity table: {0}")]
    BadTable(String),
    #[error("gold: {0}")]
    Gold(String),
}

fn gold(e: impl std::fmt::Display) -> TrainingSetError {
    TrainingSetError::Gold(e.to_string())
}

/// Reads an entity table: Parquet, or CSV (by the `.csv` name) with every column inferred as
/// integer, float or text.
///
/// # Errors
/// [`TrainingSetError::BadTable`] when the bytes do not hold such a table.
pub fn read_entity_table(name: &str, bytes: Vec<u8>) -> Result<DataFrame, TrainingSetError> {
    let bad = |e: &dyn std::fmt::Display| TrainingSetError::BadTable(e.to_string());
    if !name.to_ascii_lowercase().ends_with(".csv") {
        return ParquetReader::new(std::io::Cursor::new(bytes))
            .finish()
            .map_err(|e| bad(&e));
    }
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| bad(&e))?
        .iter()
        .map(str::to_owned)
        .collect();
    let mut cells: Vec<Vec<Option<String>>> = vec![Vec::new(); headers.len()];
    for record in reader.records() {
        let record = record.map_err(|e| bad(&e))?;
        for (i, column) in cells.iter_mut().enumerate() {
            let cell = record.get(i).map(str::trim).filter(|c| !c.is_empty());
            column.push(cell.map(str::to_owned));
        }
    }
    let columns = headers
        .iter()
        .zip(cells)
        .map(|(name, values)| infer_column(name, values))
        .collect();
    DataFrame::new_infer_height(columns).map_err(|e| bad(&e))
}

/// A CSV column as integers when every value is one, else floats, else text.
fn infer_column(name: &str, values: Vec<Option<String>>) -> Column {
    let all = |ok: fn(&str) -> bool| values.iter().flatten().all(|v| ok(v));
    let name = PlSmallStr::from(name);
    if name.as_str() != EVENT_TIMESTAMP && all(|v| v.parse::<i64>().is_ok()) {
        let parsed: Vec<Option<i64>> = values.iter().map(|v| v.as_ref()?.parse().ok()).collect();
        Series::new(name, parsed).into_column()
    } else if name.as_str() != EVENT_TIMESTAMP && all(|v| v.parse::<f64>().is_ok()) {
        let parsed: Vec<Option<f64>> = values.iter().map(|v| v.as_ref()?.parse().ok()).collect();
        Series::new(name, parsed).into_column()
    } else {
        Series::new(name, values).into_column()
    }
}

/// A row's time as ms: a datetime column (any unit or zone), a date, or RFC 3339 text
/// (`2019-01-02T10:00:00Z`; a space for `T` and no offset, read as UTC, are accepted).
fn row_times(frame: &DataFrame) -> Result<Vec<Option<i64>>, TrainingSetError> {
    let column = frame
        .column(EVENT_TIMESTAMP)
        .map_err(|_| TrainingSetError::MissingColumn {
            column: EVENT_TIMESTAMP.into(),
            why: "each row's point in time".into(),
        })?;
    let bad = |reason: String| TrainingSetError::BadColumn {
        column: EVENT_TIMESTAMP.into(),
        reason,
    };
    match column.dtype() {
        DataType::Datetime(..) | DataType::Date => {
            let ms = column
                .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
                .and_then(|c| c.cast(&DataType::Int64))
                .map_err(|e| bad(e.to_string()))?;
            Ok(ms.i64().map_err(|e| bad(e.to_string()))?.iter().collect())
        }
        DataType::String => column
            .str()
            .map_err(|e| bad(e.to_string()))?
            .iter()
            .enumerate()
            .map(|(row, text)| match text {
                None => Ok(None),
                Some(text) => parse_time(text)
                    .map(Some)
                    .ok_or_else(|| bad(format!("row {row}: `{text}` is not an RFC 3339 time"))),
            })
            .collect(),
        other => Err(bad(format!(
            "must be a datetime, a date or RFC 3339 text, not {other}"
        ))),
    }
}

fn parse_time(text: &str) -> Option<i64> {
    if let Some(t) = Timestamp::parse_rfc3339(text) {
        return Some(t.millis());
    }
    let text = text.trim().replacen(' ', "T", 1);
    Timestamp::parse_rfc3339(&format!("{text}Z")).map(Timestamp::millis)
}

/// A row's entity key as text (integers as their digits), as the store keys entities.
fn row_keys(
    frame: &DataFrame,
    view: &FeatureView,
) -> Result<Vec<Option<String>>, TrainingSetError> {
    let column = frame
        .column(&view.key)
        .map_err(|_| TrainingSetError::MissingColumn {
            column: view.key.clone(),
            why: format!("the key of view `{}`", view.name),
        })?;
    let bad = |e: PolarsError| TrainingSetError::BadColumn {
        column: view.key.clone(),
        reason: e.to_string(),
    };
    let text = column.cast(&DataType::String).map_err(bad)?;
    Ok(text
        .str()
        .map_err(bad)?
        .iter()
        .map(|v| v.map(str::to_owned))
        .collect())
}

/// Adds to `entities` one column `{view}__{feature}` per requested feature (`view:feature` or a
/// whole view), each as of its row's `event_timestamp`, reading gold under `lake_dir`. Rows and
/// their order are kept; a row without key or time gets nulls.
///
/// # Errors
/// Unknown features, a missing key or time column, or unreadable gold tables.
pub fn compute_training_set(
    lake_dir: &Path,
    views: &FeatureViews,
    mut entities: DataFrame,
    features: &[String],
) -> Result<DataFrame, TrainingSetError> {
    let selected = views.select(features)?;
    let times = row_times(&entities)?;
    let newest_date = times
        .iter()
        .flatten()
        .max()
        .and_then(|ms| Timestamp::from_millis(*ms))
        .map(Timestamp::date);
    let mut by_view: Vec<(&FeatureView, Vec<usize>)> = Vec::new();
    for (view, feature) in selected {
        match by_view.iter_mut().find(|(v, _)| v.name == view.name) {
            Some((_, wanted)) if !wanted.contains(&feature) => wanted.push(feature),
            Some(_) => {}
            None => by_view.push((view, vec![feature])),
        }
    }
    // One view per core at a time: its history is the memory that counts.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    for batch in by_view.chunks(cores) {
        let computed: Vec<Result<Vec<Column>, TrainingSetError>> = std::thread::scope(|scope| {
            let running: Vec<_> = batch
                .iter()
                .map(|(view, wanted)| {
                    let (table, times, newest) = (&entities, &times, newest_date.as_deref());
                    scope.spawn(move || {
                        let keys = row_keys(table, view)?;
                        let history = ViewHistory::read(lake_dir, view, &keys, newest)?;
                        Ok(history.evaluate(view, wanted, &keys, times))
                    })
                })
                .collect();
            running
                .into_iter()
                .map(|thread| {
                    thread
                        .join()
                        .unwrap_or_else(|_| Err(gold("a view's computation panicked")))
                })
                .collect()
        });
        for columns in computed {
            for column in columns? {
                entities.with_column(column).map_err(gold)?;
            }
        }
    }
    Ok(entities)
}

/// Pseudo feature index of the entity touches in `changes`.
const TOUCH: u16 = u16::MAX;

/// A `last` value change, ordered by entity, feature, event time, then arrival.
struct Change {
    key: (u32, u16, i64, (i64, i64)),
    value: String,
}

/// One view's history for the entities of the table, sorted for binary search.
struct ViewHistory {
    changes: Vec<Change>,
    /// (entity, measure, event time, value), sorted; `prefix[i]` sums values before `i`.
    measures: Vec<(u32, u16, i64, i64)>,
    prefix: Vec<i64>,
    /// (entity, measure, event time, member or value id), sorted.
    distinct: Vec<(u32, u16, i64, u32)>,
    frequencies: Vec<(u32, u16, i64, u32)>,
    members: Names,
    entities: PlHashMap<String, u32>,
}

/// The parquet files of `gold/{view}/{table}/date=…/` up to `newest_date`.
fn partitions(lake_dir: &Path, view: &str, table: &str, newest_date: Option<&str>) -> Vec<PathBuf> {
    date_partitions(&lake_dir.join(format!("gold/{view}/{table}")))
        .into_iter()
        .filter(|(date, _)| newest_date.is_none_or(|newest| date.as_str() <= newest))
        .filter_map(|(_, dir)| std::fs::read_dir(dir).ok())
        .flat_map(|files| {
            let mut files: Vec<PathBuf> = files
                .filter_map(|f| Some(f.ok()?.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
                .collect();
            files.sort();
            files
        })
        .collect()
}

fn read_file(path: &Path, columns: &[&str]) -> Result<DataFrame, TrainingSetError> {
    let file = std::fs::File::open(path).map_err(gold)?;
    ParquetReader::new(file)
        .with_columns(Some(columns.iter().map(|c| (*c).into()).collect()))
        .finish()
        .map_err(gold)
}

fn strings<'a>(frame: &'a DataFrame, name: &str) -> Result<&'a StringChunked, TrainingSetError> {
    frame.column(name).map_err(gold)?.str().map_err(gold)
}

fn millis(frame: &DataFrame, name: &str) -> Result<Int64Chunked, TrainingSetError> {
    Ok(frame
        .column(name)
        .map_err(gold)?
        .cast(&DataType::Int64)
        .map_err(gold)?
        .i64()
        .map_err(gold)?
        .clone())
}

impl ViewHistory {
    fn read(
        lake_dir: &Path,
        view: &FeatureView,
        keys: &[Option<String>],
        newest_date: Option<&str>,
    ) -> Result<Self, TrainingSetError> {
        // Ids in key order: each gold file is sorted by entity, so the rows read from one are
        // already in id order and the final sorts only merge runs.
        let mut sorted: Vec<&String> = keys.iter().flatten().collect();
        sorted.sort_unstable();
        sorted.dedup();
        let entities: PlHashMap<String, u32> = sorted
            .into_iter()
            .enumerate()
            .map(|(id, key)| (key.clone(), id as u32))
            .collect();
        let feature_ids: PlHashMap<&str, u16> = view
            .features
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.as_str(), i as u16))
            .chain([("_touch", TOUCH)])
            .collect();
        let measure_ids: PlHashMap<&str, u16> = view
            .measures
            .iter()
            .enumerate()
            .map(|(i, m)| (m.id.as_str(), i as u16))
            .collect();
        let mut history = Self {
            changes: Vec::new(),
            measures: Vec::new(),
            prefix: Vec::new(),
            distinct: Vec::new(),
            frequencies: Vec::new(),
            members: Names::default(),
            entities,
        };
        for path in partitions(lake_dir, &view.name, "changes", newest_date) {
            let frame = read_file(
                &path,
                &[
                    "entity",
                    "feature",
                    "event_time",
                    "value",
                    "_ingested_at",
                    "_stream_seq",
                ],
            )?;
            let (entity, feature, value) = (
                strings(&frame, "entity")?,
                strings(&frame, "feature")?,
                strings(&frame, "value")?,
            );
            let (time, ingested, seq) = (
                millis(&frame, "event_time")?,
                millis(&frame, "_ingested_at")?,
                millis(&frame, "_stream_seq")?,
            );
            let rows = ids_of_runs(entity, &history.entities)
                .zip(ids_of_runs(feature, &feature_ids))
                .zip(time.iter())
                .zip(value.iter())
                .zip(ingested.iter().zip(seq.iter()));
            for ((((e, f), t), v), (ingested, seq)) in rows {
                let (Some(e), Some(f), Some(t)) = (e, f, t) else {
                    continue;
                };
                history.changes.push(Change {
                    key: (e, f, t, (ingested.unwrap_or(0), seq.unwrap_or(0))),
                    value: v.unwrap_or_default().to_owned(),
                });
            }
        }
        history.changes.sort_by_key(|c| c.key);

        history.measures = measure_rows(
            partitions(lake_dir, &view.name, "measures", newest_date),
            "value",
            &history.entities,
            &measure_ids,
            |column, i| column.i64().ok()?.get(i),
        )?;
        history.prefix = std::iter::once(0)
            .chain(history.measures.iter().scan(0i64, |sum, m| {
                *sum += m.3;
                Some(*sum)
            }))
            .collect();
        let members = &mut history.members;
        history.distinct = measure_rows(
            partitions(lake_dir, &view.name, "distinct", newest_date),
            "member",
            &history.entities,
            &measure_ids,
            |column, i| Some(members.id(column.str().ok()?.get(i)?)),
        )?;
        history.frequencies = measure_rows(
            partitions(lake_dir, &view.name, "frequencies", newest_date),
            "value",
            &history.entities,
            &measure_ids,
            |column, i| Some(members.id(column.str().ok()?.get(i)?)),
        )?;
        Ok(history)
    }

    /// The feature columns `wanted` of `view` for every row.
    fn evaluate(
        &self,
        view: &FeatureView,
        wanted: &[usize],
        keys: &[Option<String>],
        times: &[Option<i64>],
    ) -> Vec<Column> {
        let height = keys.len();
        let mut columns: Vec<FeatureColumn> = wanted
            .iter()
            .map(|f| FeatureColumn::new(view.features[*f].value_type, height))
            .collect();
        // Rows by entity and time, so distinct counts and frequencies are swept once per entity.
        let mut rows: Vec<(u32, i64, usize)> = keys
            .iter()
            .zip(times)
            .enumerate()
            .filter_map(|(row, (key, time))| {
                Some((*self.entities.get(key.as_deref()?)?, (*time)?, row))
            })
            .collect();
        rows.sort_unstable();
        let distinct_features: Vec<(u16, larder_domain::Window)> = view
            .features
            .iter()
            .filter_map(|f| match f.kind {
                FeatureKind::CountDistinct { measure, window } => Some((measure as u16, window)),
                _ => None,
            })
            .collect();
        let frequency_measures: Vec<u16> = view
            .measures
            .iter()
            .enumerate()
            .filter(|(_, m)| m.kind == MeasureKind::Frequency)
            .map(|(i, _)| i as u16)
            .collect();
        for entity_rows in rows.chunk_by(|a, b| a.0 == b.0) {
            let entity = entity_rows[0].0;
            let distinct: Vec<Vec<u64>> = distinct_features
                .iter()
                .map(|(measure, window)| {
                    let occurrences = group(&self.distinct, entity, *measure);
                    sweep_distinct(&self.distinct[occurrences], entity_rows, *window)
                })
                .collect();
            let frequent: Vec<Vec<Option<u32>>> = frequency_measures
                .iter()
                .map(|measure| {
                    let occurrences = group(&self.frequencies, entity, *measure);
                    sweep_frequent(&self.frequencies[occurrences], entity_rows, &self.members)
                })
                .collect();
            let ranges = self.ranges(view, entity);
            for (i, (_, time, row)) in entity_rows.iter().enumerate() {
                let mut state = PointInTime {
                    history: self,
                    view,
                    ranges: &ranges,
                    as_of: *time,
                    newest: None,
                    distinct: distinct.iter().map(|d| d[i]).collect(),
                    frequent: frequency_measures
                        .iter()
                        .zip(&frequent)
                        .map(|(m, f)| (*m, f[i]))
                        .collect(),
                };
                state.newest = state.change(view.features.len()).map(|c| c.key.2);
                let values = view.evaluate_from(&state, *time);
                for (column, feature) in columns.iter_mut().zip(wanted) {
                    column.set(*row, &values[*feature].value);
                }
            }
        }
        columns
            .into_iter()
            .zip(wanted)
            .map(|(column, f)| column.finish(&format!("{}__{}", view.name, view.features[*f].name)))
            .collect()
    }
}

/// The id of each row's value in `ids` (`None`: not asked for). Gold rows come sorted by entity,
/// then feature or measure, so each run of one value is looked up once.
fn ids_of_runs<'a, K, V>(
    column: &'a StringChunked,
    ids: &'a PlHashMap<K, V>,
) -> impl Iterator<Item = Option<V>> + 'a
where
    K: std::borrow::Borrow<str> + std::hash::Hash + Eq,
    V: Copy,
{
    let mut last: (&str, Option<V>) = ("", ids.get("").copied());
    column.iter().map(move |value| {
        let value = value?;
        if value != last.0 {
            last = (value, ids.get(value).copied());
        }
        last.1
    })
}

/// The rows `(entity, measure, event time, value)` of a measure-keyed gold table, for the entities
/// of the table only, sorted.
fn measure_rows<V: Ord>(
    files: Vec<PathBuf>,
    value_column: &str,
    entities: &PlHashMap<String, u32>,
    measure_ids: &PlHashMap<&str, u16>,
    mut value: impl FnMut(&Column, usize) -> Option<V>,
) -> Result<Vec<(u32, u16, i64, V)>, TrainingSetError> {
    let mut rows = Vec::new();
    for path in files {
        let frame = read_file(&path, &["entity", "measure", "event_time", value_column])?;
        let (entity, measure) = (strings(&frame, "entity")?, strings(&frame, "measure")?);
        let time = millis(&frame, "event_time")?;
        let values = frame.column(value_column).map_err(gold)?;
        let keys = ids_of_runs(entity, entities)
            .zip(ids_of_runs(measure, measure_ids))
            .zip(time.iter());
        for (i, ((e, m), t)) in keys.enumerate() {
            let (Some(e), Some(m), Some(t)) = (e, m, t) else {
                continue;
            };
            if let Some(v) = value(values, i) {
                rows.push((e, m, t, v));
            }
        }
    }
    rows.sort();
    Ok(rows)
}

/// The range of `rows` (sorted by entity, measure first) of `entity` and `measure`.
fn group<T: Copy>(rows: &[(u32, u16, i64, T)], entity: u32, measure: u16) -> Range<usize> {
    let start = rows.partition_point(|r| (r.0, r.1) < (entity, measure));
    let end = rows.partition_point(|r| (r.0, r.1) <= (entity, measure));
    start..end
}

/// Per row (sorted by time), the members seen in the window's time range `(lo, t]`: the online
/// store counts members whose newest time lies in the range, the same set.
fn sweep_distinct(
    occurrences: &[(u32, u16, i64, u32)],
    rows: &[(u32, i64, usize)],
    window: larder_domain::Window,
) -> Vec<u64> {
    let mut counts: PlHashMap<u32, u32> = PlHashMap::new();
    let (mut added, mut removed) = (0, 0);
    rows.iter()
        .map(|(_, t, _)| {
            let lo = window.time_range(*t).map_or(i64::MIN, |(lo, _)| lo);
            while added < occurrences.len() && occurrences[added].2 <= *t {
                *counts.entry(occurrences[added].3).or_default() += 1;
                added += 1;
            }
            while removed < added && occurrences[removed].2 <= lo {
                let member = occurrences[removed].3;
                if let Some(n) = counts.get_mut(&member) {
                    *n -= 1;
                    if *n == 0 {
                        counts.remove(&member);
                    }
                }
                removed += 1;
            }
            counts.len() as u64
        })
        .collect()
}

/// Per row (sorted by time), the most frequent value up to `t` (ties: alphabetically first).
fn sweep_frequent(
    occurrences: &[(u32, u16, i64, u32)],
    rows: &[(u32, i64, usize)],
    names: &Names,
) -> Vec<Option<u32>> {
    let mut counts: PlHashMap<u32, u64> = PlHashMap::new();
    let mut best: Option<(u64, u32)> = None;
    let mut added = 0;
    rows.iter()
        .map(|(_, t, _)| {
            while added < occurrences.len() && occurrences[added].2 <= *t {
                let value = occurrences[added].3;
                let count = counts.entry(value).or_default();
                *count += 1;
                let beats = best.is_none_or(|(n, v)| {
                    *count > n || (*count == n && names.name(value) < names.name(v))
                });
                if beats {
                    best = Some((*count, value));
                }
                added += 1;
            }
            best.map(|(_, v)| v)
        })
        .collect()
}

/// One entity's history cut at `as_of`: what the online store would hold had exactly the events
/// up to `as_of` been ingested.
struct PointInTime<'a> {
    history: &'a ViewHistory,
    view: &'a FeatureView,
    ranges: &'a EntityRanges,
    as_of: i64,
    /// The newest touch at or before `as_of`.
    newest: Option<i64>,
    distinct: Vec<u64>,
    frequent: Vec<(u16, Option<u32>)>,
}

/// Where one entity's rows lie in its view's sorted history, found once per entity rather than
/// per row.
struct EntityRanges {
    /// Per feature index, its change rows; the touches last.
    changes: Vec<Range<usize>>,
    /// Per measure index, its contribution rows.
    measures: Vec<Range<usize>>,
}

impl ViewHistory {
    fn ranges(&self, view: &FeatureView, entity: u32) -> EntityRanges {
        let changes = (0..=view.features.len())
            .map(|slot| {
                let feature = if slot == view.features.len() {
                    TOUCH
                } else {
                    slot as u16
                };
                let start = self
                    .changes
                    .partition_point(|c| (c.key.0, c.key.1) < (entity, feature));
                let end = self
                    .changes
                    .partition_point(|c| (c.key.0, c.key.1) <= (entity, feature));
                start..end
            })
            .collect();
        let measures = (0..view.measures.len())
            .map(|m| group(&self.measures, entity, m as u16))
            .collect();
        EntityRanges { changes, measures }
    }
}

impl PointInTime<'_> {
    /// The newest change at or before `as_of` (ties: the later arrival) of the feature in
    /// `slot` (`features.len()`: the touches).
    fn change(&self, slot: usize) -> Option<&Change> {
        let rows = &self.history.changes[self.ranges.changes[slot].clone()];
        let end = rows.partition_point(|c| c.key.2 <= self.as_of);
        rows.get(end.checked_sub(1)?)
    }

    fn measure(&self, id: &str) -> Option<(u16, MeasureKind)> {
        self.view
            .measures
            .iter()
            .position(|m| m.id == id)
            .map(|i| (i as u16, self.view.measures[i].kind))
    }

    /// Combines the contributions of `measure` with event time in `(lo, hi]`.
    fn combine(&self, id: &str, lo: i64, hi: i64) -> Option<i64> {
        let (measure, kind) = self.measure(id)?;
        let rows = &self.history.measures;
        let range = self.ranges.measures[measure as usize].clone();
        let inside = &rows[range.clone()];
        let start = range.start + inside.partition_point(|r| r.2 <= lo);
        let end = range.start + inside.partition_point(|r| r.2 <= hi);
        if start >= end {
            return None;
        }
        let values = rows[start..end].iter().map(|r| r.3);
        match kind {
            MeasureKind::Min => values.min(),
            MeasureKind::Max => values.max(),
            _ => Some(self.history.prefix[end] - self.history.prefix[start]),
        }
    }
}

impl StateRead for PointInTime<'_> {
    fn exists(&self) -> bool {
        self.newest.is_some()
    }

    fn newest(&self) -> Option<i64> {
        self.newest
    }

    fn last(&self, feature: &str) -> Option<(&str, Option<i64>)> {
        let slot = self.view.feature(feature)?;
        self.change(slot).map(|c| (c.value.as_str(), Some(c.key.2)))
    }

    fn newest_bucket(&self, tier: Tier) -> Option<i64> {
        self.newest().map(|t| tier.bucket(t))
    }

    fn lifetime(&self, measure: &str) -> Option<i64> {
        self.combine(measure, i64::MIN, self.as_of)
    }

    fn window(&self, tier: Tier, measure: &str, lo: i64, hi: i64, _: MeasureKind) -> Option<i64> {
        let width = tier.width_ms();
        self.combine(measure, lo * width, (hi * width).min(self.as_of))
    }

    fn most_frequent(&self, measure: &str) -> Option<String> {
        let (index, _) = self.measure(measure)?;
        let (_, value) = self.frequent.iter().find(|(m, _)| *m == index)?;
        value.map(|v| self.history.members.name(v).to_owned())
    }

    fn distinct(&self, index: usize) -> u64 {
        self.distinct.get(index).copied().unwrap_or(0)
    }
}

/// One output column, typed as the feature is served.
enum FeatureColumn {
    Integer(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Boolean(Vec<Option<bool>>),
    Text(Vec<Option<String>>),
    Time(Vec<Option<i64>>),
}

impl FeatureColumn {
    fn new(value_type: FieldType, height: usize) -> Self {
        match value_type {
            FieldType::Integer => Self::Integer(vec![None; height]),
            FieldType::Float => Self::Float(vec![None; height]),
            FieldType::Boolean => Self::Boolean(vec![None; height]),
            FieldType::Text => Self::Text(vec![None; height]),
            FieldType::Time => Self::Time(vec![None; height]),
        }
    }

    fn set(&mut self, row: usize, value: &serde_json::Value) {
        match self {
            Self::Integer(v) => v[row] = value.as_i64(),
            Self::Float(v) => v[row] = value.as_f64(),
            Self::Boolean(v) => v[row] = value.as_bool(),
            Self::Text(v) => {
                v[row] = match value {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                }
            }
            Self::Time(v) => v[row] = value.as_str().and_then(parse_time),
        }
    }

    fn finish(self, name: &str) -> Column {
        let name = PlSmallStr::from(name);
        match self {
            Self::Integer(v) => Series::new(name, v).into_column(),
            Self::Float(v) => Series::new(name, v).into_column(),
            Self::Boolean(v) => Series::new(name, v).into_column(),
            Self::Text(v) => Series::new(name, v).into_column(),
            Self::Time(v) => Series::new(name, v)
                .into_datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
                .into_column(),
        }
    }
}
