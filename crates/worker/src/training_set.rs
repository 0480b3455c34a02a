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
//! - Memory: one view at a time; only the date partitions up to the newest row's date are read,
//!   one file per core at a time, keeping only rows of entities the table asks for, in compact
//!   integer form (distinct members as their 64-bit hashes, which gold holds: a count only
//!   compares them, and two members of one entity colliding is a chance of about 10⁻⁹ at
//!   millions of members).
//! - Speed: each view's files are read and its rows evaluated on every core; gold's per-file
//!   order is kept, so copying each file's runs of one group into place replaces a sort.

use std::{
    cell::{Cell, RefCell},
    ops::Range,
    path::{Path, PathBuf},
};

use larder_domain::{
    FeatureKind, FeatureView, FeatureViews, FieldType, MeasureKind, SelectError, StateRead, Tier,
    Timestamp,
};
use larder_usecases::{ObjectStore, SetCompression};
use polars::prelude::*;
use polars_buffer::Buffer;
use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_64;

use crate::{
    LakeError,
    bronze::date_partitions,
    cores::map_on_cores,
    history::MEMBER_HASH,
    names::Names,
    parquet_file::{self, StoredColumns},
};

/// A finished training set, written to its sink.
pub struct TrainingSet {
    pub rows: usize,
    pub feature_columns: usize,
}

/// An entity table as read: its name (whose extension tells CSV from Parquet) and bytes.
pub struct EntityTable {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Builds a training set from the entity table `entities` over the gold tables of `lake`, on a
/// blocking thread, and writes it to `sink` as a Parquet file compressed with `compression` (its
/// row groups as they are encoded); `sink` is handed back.
///
/// # Errors
/// [`LakeError::Invalid`] for a bad request or table, [`LakeError::Store`] when gold cannot be
/// read, [`LakeError::Encode`] when the set cannot be encoded or `sink` fails.
pub async fn build_training_set<W: std::io::Write + Send + 'static>(
    lake: &dyn ObjectStore,
    cache: &Path,
    views: std::sync::Arc<FeatureViews>,
    entities: EntityTable,
    features: Vec<String>,
    compression: SetCompression,
    mut sink: W,
) -> Result<(TrainingSet, W), LakeError> {
    let lake_dir = lake.local_copy("gold/", cache).await?;
    tokio::task::spawn_blocking(move || {
        let invalid = |e: TrainingSetError| LakeError::Invalid(e.to_string());
        let started = std::time::Instant::now();
        let table = SetTable::read(entities, &views, &features).map_err(invalid)?;
        let (rows, copied) = (table.decoded.height(), table.stored.is_some());
        tracing::debug!(read = ?started.elapsed(), rows, copied, "entity table");
        let added =
            feature_columns(&lake_dir, &views, &table.decoded, &features).map_err(invalid)?;
        let started = std::time::Instant::now();
        let compression = match compression {
            SetCompression::Snappy => ParquetCompression::Snappy,
            // zstd's fastest level: half the time of its default for 2 % more bytes, measured
            // on a 1 M-row set.
            SetCompression::Zstd => ParquetCompression::Zstd(
                polars::polars_utils::compression::ZstdLevel::try_new(1).ok(),
            ),
            SetCompression::Lz4 => ParquetCompression::Lz4Raw,
            SetCompression::None => ParquetCompression::Uncompressed,
        };
        let set = TrainingSet {
            rows: added.height(),
            feature_columns: added.width(),
        };
        table.write_with(added, compression, &mut sink)?;
        sink.flush().map_err(LakeError::encode)?;
        tracing::debug!(written = ?started.elapsed(), "training set encoded and written");
        Ok((set, sink))
    })
    .await
    .map_err(LakeError::encode)?
}

/// An entity table read for a training set.
struct SetTable {
    /// The table's columns that the features read (all of them when `stored` is `None`).
    decoded: DataFrame,
    /// A Parquet table's own columns as it stores them, when they can be copied into the set:
    /// most of a set's bytes are the table's own columns, and copying spares decoding and
    /// encoding them.
    stored: Option<StoredColumns>,
    /// The table's name and bytes, should it have to be read whole after all.
    source: (String, Buffer<u8>),
}

impl SetTable {
    fn read(
        table: EntityTable,
        views: &FeatureViews,
        features: &[String],
    ) -> Result<Self, TrainingSetError> {
        let bytes = Buffer::from(table.bytes);
        let stored = if is_csv(&table.name) {
            None
        } else {
            StoredColumns::read(&bytes).map_err(|e| TrainingSetError::BadTable(e.to_string()))?
        };
        let decoded = match &stored {
            Some(stored) => {
                let read = columns_read(views, features)?;
                let columns = stored.names().filter(|name| read.contains(name));
                read_parquet(&bytes, Some(columns.map(str::to_owned).collect()))?
            }
            None => read_entity_table(&table.name, &bytes)?,
        };
        Ok(Self {
            decoded,
            stored,
            source: (table.name, bytes),
        })
    }

    /// Writes to `sink` the set: the table with the columns `added`, compressed with
    /// `compression` (the table's columns copied as they are stored, where they can be).
    fn write_with(
        self,
        added: DataFrame,
        compression: ParquetCompression,
        sink: &mut impl std::io::Write,
    ) -> Result<(), LakeError> {
        let replaced =
            |stored: &StoredColumns| stored.names().any(|name| added.column(name).is_ok());
        let mut set = self.decoded;
        match self.stored {
            Some(stored) if !replaced(&stored) => {
                return stored
                    .write_beside(&added, compression, sink)
                    .map_err(LakeError::encode);
            }
            // A column of the table is replaced: the set is the table read whole, decoded.
            Some(_) => {
                let (name, bytes) = &self.source;
                set = read_entity_table(name, bytes)
                    .map_err(|e| LakeError::Invalid(e.to_string()))?;
            }
            None => {}
        }
        for column in added.into_columns() {
            set.with_column(column).map_err(LakeError::encode)?;
        }
        parquet_file::write(&mut set, compression, sink).map_err(LakeError::encode)
    }
}

/// The entity table's columns that `features` read: each row's time and their views' keys.
fn columns_read<'a>(
    views: &'a FeatureViews,
    features: &[String],
) -> Result<Vec<&'a str>, TrainingSetError> {
    let mut columns = vec![EVENT_TIMESTAMP];
    for (view, _) in views.select(features)? {
        if !columns.contains(&view.key.as_str()) {
            columns.push(&view.key);
        }
    }
    Ok(columns)
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
pub fn read_entity_table(name: &str, bytes: &[u8]) -> Result<DataFrame, TrainingSetError> {
    if !is_csv(name) {
        return read_parquet(bytes, None);
    }
    let bad = |e: &dyn std::fmt::Display| TrainingSetError::BadTable(e.to_string());
    let mut reader = csv::Reader::from_reader(bytes);
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

fn is_csv(name: &str) -> bool {
    name.to_ascii_lowercase().ends_with(".csv")
}

/// The `columns` (all when `None`) of a Parquet entity table.
fn read_parquet(bytes: &[u8], columns: Option<Vec<String>>) -> Result<DataFrame, TrainingSetError> {
    ParquetReader::new(std::io::Cursor::new(bytes))
        .with_columns(columns)
        .finish()
        .map_err(|e| TrainingSetError::BadTable(e.to_string()))
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
fn row_keys(frame: &DataFrame, view: &FeatureView) -> Result<StringChunked, TrainingSetError> {
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
    Ok(text.str().map_err(bad)?.clone())
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
    let added = feature_columns(lake_dir, views, &entities, features)?;
    for column in added.into_columns() {
        entities.with_column(column).map_err(gold)?;
    }
    Ok(entities)
}

/// The columns [`compute_training_set`] adds to `entities`.
fn feature_columns(
    lake_dir: &Path,
    views: &FeatureViews,
    entities: &DataFrame,
    features: &[String],
) -> Result<DataFrame, TrainingSetError> {
    let selected = views.select(features)?;
    let times = row_times(entities)?;
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
    let mut added = Vec::new();
    // One view at a time, spread over every core: its history is the memory that counts.
    for (view, wanted) in by_view {
        let started = std::time::Instant::now();
        let keys = row_keys(entities, view)?;
        let history = ViewHistory::read(lake_dir, view, &keys, newest_date.as_deref())?;
        let read = started.elapsed();
        added.extend(history.evaluate(view, &wanted, &times));
        let evaluated = started.elapsed() - read;
        tracing::debug!(view = %view.name, ?read, ?evaluated, "training set view");
    }
    DataFrame::new_infer_height(added).map_err(gold)
}

/// Feature name of the entity touches in the gold `changes` table.
const TOUCH: &str = "_touch";

/// A `last` value change, ordered by entity, feature, event time, then arrival.
struct Change {
    key: (u32, u16, i64, (i64, i64)),
    value: String,
}

/// One view's history for the entities of the table, grouped by entity (and measure), each
/// group in time order.
struct ViewHistory {
    changes: Vec<Change>,
    /// Per entity, the event times of the events that reached it, in order: most change rows
    /// are these, so they are kept apart in a seventh of a change's bytes.
    touches: Grouped<i64>,
    measures: Contributions,
    /// Per (entity, measure) group, (event time, member's xxh3-64 hash) in order.
    distinct: Grouped<(i64, u64)>,
    /// Per (entity, measure) group, (event time, value id in `members`) in order.
    frequencies: Grouped<(i64, u32)>,
    members: Names,
    /// Each table row's entity (None: a null key).
    row_entities: Vec<Option<u32>>,
    /// Per measure index, its number in the tables above (measures in name order).
    measure_rank: Vec<u16>,
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
    read_columns(open_file(path)?, columns)
}

fn open_file(path: &Path) -> Result<ParquetReader<std::fs::File>, TrainingSetError> {
    Ok(ParquetReader::new(std::fs::File::open(path).map_err(gold)?))
}

fn read_columns(
    reader: ParquetReader<std::fs::File>,
    columns: &[&str],
) -> Result<DataFrame, TrainingSetError> {
    reader
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

/// Where a gold row's feature goes: a `last` feature's index, or the touches.
#[derive(Clone, Copy)]
enum ChangeSlot {
    Feature(u16),
    Touch,
}

impl ViewHistory {
    /// Reads the gold tables of `view` for the entities in `keys`, their files on every core.
    fn read(
        lake_dir: &Path,
        view: &FeatureView,
        keys: &StringChunked,
        newest_date: Option<&str>,
    ) -> Result<Self, TrainingSetError> {
        // Ids in key order, measures in name order: each gold file is sorted by both, so its rows
        // come in runs in id order and `gather` only has to copy them. A million rows' keys are
        // hashed on every core: into each stretch's own set, then into one map and back to ids.
        let row_keys: Vec<Option<&str>> = keys.iter().collect();
        let distinct = row_keys
            .par_chunks(PIECE_ROWS)
            .map(|stretch| {
                stretch
                    .iter()
                    .flatten()
                    .copied()
                    .collect::<PlHashSet<&str>>()
            })
            .reduce(PlHashSet::default, |mut all, stretch| {
                all.extend(stretch);
                all
            });
        let mut sorted: Vec<&str> = distinct.into_iter().collect();
        sorted.par_sort_unstable();
        let entities: PlHashMap<String, u32> = sorted
            .into_iter()
            .enumerate()
            .map(|(id, key)| (key.to_owned(), id as u32))
            .collect();
        let row_entities = row_keys
            .par_iter()
            .map(|key| entities.get((*key)?).copied())
            .collect();
        let slots: PlHashMap<&str, ChangeSlot> = view
            .features
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.as_str(), ChangeSlot::Feature(i as u16)))
            .chain([(TOUCH, ChangeSlot::Touch)])
            .collect();
        let mut by_name: Vec<usize> = (0..view.measures.len()).collect();
        by_name.sort_by_key(|i| view.measures[*i].id.as_str());
        let mut measure_rank = vec![0; view.measures.len()];
        for (rank, measure) in by_name.into_iter().enumerate() {
            measure_rank[measure] = rank as u16;
        }
        let measure_ids: PlHashMap<&str, u16> = view
            .measures
            .iter()
            .zip(&measure_rank)
            .map(|(m, rank)| (m.id.as_str(), *rank))
            .collect();
        // One table at a time, the largest first, each sorted as soon as its files are read (on
        // every core): the next table's file rows reuse the memory the last one's leave, where
        // every table's rows held at once were all pages touched for the first time — each a
        // page fault. Distinct counts only compare members: each is known by the hash gold
        // holds of it, rather than by its text (decoding 3.6 M members' text and hashing it was
        // most of a restaurant set's `distinct` read).
        let n_measures = view.measures.len();
        let groups = entities.len() * n_measures;
        if u32::try_from(groups).is_err() {
            return Err(TrainingSetError::BadTable(format!(
                "{} entities × {n_measures} measures: more groups than a training set holds",
                entities.len()
            )));
        }

        let measures = read_table(
            lake_dir,
            view,
            newest_date,
            "measures",
            |path| {
                measure_rows(
                    path,
                    &["value"],
                    &entities,
                    &measure_ids,
                    n_measures,
                    |column| Ok(column.i64()?.iter().collect()),
                )
            },
            |parts| Contributions::sorted(gather(parts, groups)),
        )?;
        let distinct = read_table(
            lake_dir,
            view,
            newest_date,
            "distinct",
            |path| {
                // Files written before gold held the members' hashes have their text hashed.
                let hashes = |column: &Column| match column.name().as_str() {
                    MEMBER_HASH => Ok(column.i64()?.iter().map(|h| Some(h? as u64)).collect()),
                    _ => {
                        let members = column.str()?.iter();
                        Ok(members.map(|m| Some(xxh3_64(m?.as_bytes()))).collect())
                    }
                };
                let value_columns = [MEMBER_HASH, "member"];
                measure_rows(
                    path,
                    &value_columns,
                    &entities,
                    &measure_ids,
                    n_measures,
                    hashes,
                )
            },
            |parts| gather(parts, groups),
        )?;
        let (changes, touches) = read_table(
            lake_dir,
            view,
            newest_date,
            "changes",
            |path| read_changes(path, &entities, &slots),
            |parts| {
                let (changes, touches): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
                let mut changes = concat(changes);
                changes.par_sort_by_key(|c| c.key);
                (changes, gather(touches, entities.len()))
            },
        )?;
        // Values as ids in each file's own names, then in one set of names.
        let mut members = Names::default();
        let frequencies = read_table(
            lake_dir,
            view,
            newest_date,
            "frequencies",
            |path| {
                let mut local = Names::default();
                let ids = |column: &Column| {
                    Ok(column.str()?.iter().map(|v| Some(local.id(v?))).collect())
                };
                let rows =
                    measure_rows(path, &["value"], &entities, &measure_ids, n_measures, ids)?;
                Ok((rows, local))
            },
            |parts| {
                let parts = parts
                    .into_iter()
                    .map(|(mut file, local): (FileRuns<(i64, u32)>, Names)| {
                        let global: Vec<u32> = local.iter().map(|name| members.id(name)).collect();
                        for row in &mut file.rows {
                            row.1 = global[row.1 as usize];
                        }
                        file
                    })
                    .collect();
                gather(parts, groups)
            },
        )?;
        Ok(Self {
            changes,
            touches,
            measures,
            distinct,
            frequencies,
            members,
            row_entities,
            measure_rank,
        })
    }

    /// The feature columns `wanted` of `view` for every row, in the table's row order.
    fn evaluate(&self, view: &FeatureView, wanted: &[usize], times: &[Option<i64>]) -> Vec<Column> {
        // Rows by entity and time, so distinct counts and frequencies are swept once per entity.
        let mut rows: Vec<(u32, i64, usize)> = self
            .row_entities
            .iter()
            .zip(times)
            .enumerate()
            .filter_map(|(row, (entity, time))| Some(((*entity)?, (*time)?, row)))
            .collect();
        rows.par_sort_unstable();
        // Pieces are evaluated on rayon's pool, then each feature's values put back in the
        // table's order as a column (building a series runs nothing on Polars' own pool, which
        // `map_on_cores` keeps off rayon's).
        let pieces = whole_entities(&rows, 4 * rayon::current_num_threads());
        let evaluated: Vec<Vec<FeatureColumn>> = pieces
            .par_iter()
            .map(|piece| self.evaluate_sorted(view, wanted, piece))
            .collect();
        let mut by_feature: Vec<Vec<FeatureColumn>> = wanted.iter().map(|_| Vec::new()).collect();
        for piece in evaluated {
            for (pieces, column) in by_feature.iter_mut().zip(piece) {
                pieces.push(column);
            }
        }
        wanted
            .par_iter()
            .zip(by_feature)
            .map(|(feature, sorted)| {
                let feature = &view.features[*feature];
                let mut column = FeatureColumn::new(feature.value_type, times.len());
                for (piece, values) in pieces.iter().zip(sorted) {
                    column.place(values, piece);
                }
                let name = format!("{}__{}", view.name, feature.name);
                column.finish(&name).into_column()
            })
            .collect()
    }

    /// The feature columns `wanted` of `view` for `rows` (whole entities, sorted by entity and
    /// time), in that order.
    fn evaluate_sorted(
        &self,
        view: &FeatureView,
        wanted: &[usize],
        rows: &[(u32, i64, usize)],
    ) -> Vec<FeatureColumn> {
        let mut columns: Vec<FeatureColumn> = wanted
            .iter()
            .map(|f| FeatureColumn::new(view.features[*f].value_type, rows.len()))
            .collect();
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
        let mut done = 0;
        for entity_rows in rows.chunk_by(|a, b| a.0 == b.0) {
            let entity = entity_rows[0].0;
            let group = |measure: u16| self.group(entity, measure as usize);
            let distinct: Vec<Vec<u64>> = distinct_features
                .iter()
                .map(|(measure, window)| {
                    let occurrences = self.distinct.of(group(*measure));
                    sweep_distinct(occurrences, entity_rows, *window)
                })
                .collect();
            let frequent: Vec<Vec<Option<u32>>> = frequency_measures
                .iter()
                .map(|measure| {
                    let occurrences = self.frequencies.of(group(*measure));
                    sweep_frequent(occurrences, entity_rows, &self.members)
                })
                .collect();
            let ranges = self.ranges(view, entity);
            let (hints, found) = (RefCell::new(Vec::new()), RefCell::new(Vec::new()));
            // Each row's distinct counts and most frequent values side by side, for its state to
            // borrow rather than collect.
            let (n_distinct, n_frequent) = (distinct.len(), frequent.len());
            let distinct: Vec<u64> = (0..entity_rows.len())
                .flat_map(|i| distinct.iter().map(move |counts| counts[i]))
                .collect();
            let frequent: Vec<(u16, Option<u32>)> = (0..entity_rows.len())
                .flat_map(|i| {
                    let per_measure = frequency_measures.iter().zip(&frequent);
                    per_measure.map(move |(measure, values)| (*measure, values[i]))
                })
                .collect();
            // Rows come in time order: each row's newest touch is at or after the previous row's.
            let touches = self.touches.of(entity as usize);
            let mut touched = 0;
            for (i, (_, time, _)) in entity_rows.iter().enumerate() {
                touched = partition_from(touches, touched, |t| *t <= *time);
                found.borrow_mut().clear();
                let state = PointInTime {
                    history: self,
                    view,
                    ranges: &ranges,
                    as_of: *time,
                    newest: touched.checked_sub(1).map(|last| touches[last]),
                    distinct: &distinct[i * n_distinct..(i + 1) * n_distinct],
                    frequent: &frequent[i * n_frequent..(i + 1) * n_frequent],
                    hints: &hints,
                    searches: Cell::new(0),
                    found: &found,
                };
                let values = view.evaluate_from(&state, *time);
                for (column, feature) in columns.iter_mut().zip(wanted) {
                    column.set(done + i, &values[*feature].value);
                }
            }
            done += entity_rows.len();
        }
        columns
    }
}

/// The vectors of `parts` in one, allocated once.
fn concat<T>(parts: Vec<Vec<T>>) -> Vec<T> {
    let mut all = Vec::with_capacity(parts.iter().map(Vec::len).sum());
    for mut part in parts {
        all.append(&mut part);
    }
    all
}

/// One gold file's rows for the table's entities, each kept as `T`, in runs of one group
/// (an entity, or an entity and measure: [`group_of`]) each: gold files are sorted by entity
/// and measure, so a file's rows need not each carry their group.
struct FileRuns<T> {
    rows: Vec<T>,
    /// (group, rows) of each run, in file order.
    runs: Vec<(u32, u32)>,
}

impl<T: Copy> FileRuns<T> {
    fn with_capacity(rows: usize) -> Self {
        Self {
            rows: Vec::with_capacity(rows),
            runs: Vec::new(),
        }
    }

    /// The last row pushed and its group.
    fn last(&self) -> Option<(usize, &T)> {
        Some((self.runs.last()?.0 as usize, self.rows.last()?))
    }

    fn push(&mut self, group: usize, row: T) {
        match self.runs.last_mut() {
            Some((last, rows)) if *last as usize == group => *rows += 1,
            _ => self.runs.push((group as u32, 1)),
        }
        self.rows.push(row);
    }

    /// The same rows, each group's in one run and the runs in group order, each group's rows
    /// kept in their order: a `distinct` or `frequencies` file written in event order (by a
    /// larder before 2026-12-07) is put in group order here.
    fn in_group_order(self) -> Self {
        if self.runs.windows(2).all(|pair| pair[0].0 < pair[1].0) {
            return self;
        }
        let groups = self
            .runs
            .iter()
            .flat_map(|(group, rows)| std::iter::repeat_n(*group as usize, *rows as usize));
        let mut rows: Vec<(usize, T)> = groups.zip(self.rows).collect();
        rows.sort_by_key(|row| row.0);
        let mut file = Self::with_capacity(rows.len());
        for (group, row) in rows {
            file.push(group, row);
        }
        file
    }
}

/// Every group's rows in one vector, a group's rows side by side.
struct Grouped<T> {
    rows: Vec<T>,
    /// Where each group's rows start; one more entry for the end.
    starts: Vec<usize>,
}

impl<T> Grouped<T> {
    fn of(&self, group: usize) -> &[T] {
        &self.rows[self.starts[group]..self.starts[group + 1]]
    }
}

/// The rows of `parts` (one per gold file, in date order, each in group order) grouped into
/// `groups` groups, each group's runs copied in file order: its rows are then in time order,
/// unless two files of one date hold them, and such a group is sorted on its own. The groups
/// are cut into ranges of about `PIECE_ROWS` rows, each gathered on its own core into its own
/// stretch of the result: runs are copied whole, where each row once carried its group and was
/// counted and placed one by one.
fn gather<T: Copy + Default + Ord + Send + Sync>(
    parts: Vec<FileRuns<T>>,
    groups: usize,
) -> Grouped<T> {
    let mut starts = vec![0; groups + 1];
    for (group, rows) in parts.iter().flat_map(|part| &part.runs) {
        starts[*group as usize + 1] += *rows as usize;
    }
    for group in 1..=groups {
        starts[group] += starts[group - 1];
    }
    let total = starts[groups];
    let pieces = total.div_ceil(PIECE_ROWS).clamp(1, groups.max(1));
    let bounds: Vec<usize> = (0..=pieces).map(|i| i * groups / pieces).collect();
    // cuts[p][i]: part p's first run of a group from bounds[i] on, and the row it starts at.
    let cuts: Vec<Vec<(usize, usize)>> = parts
        .iter()
        .map(|part| {
            let (mut run, mut row) = (0, 0);
            let mut cut = |bound: &usize| {
                while part.runs.get(run).is_some_and(|r| (r.0 as usize) < *bound) {
                    row += part.runs[run].1 as usize;
                    run += 1;
                }
                (run, row)
            };
            bounds.iter().map(&mut cut).collect()
        })
        .collect();
    let mut rows = Vec::with_capacity(total);
    rows.par_extend(rayon::iter::repeat_n(T::default(), total));
    let mut stretches = Vec::with_capacity(pieces);
    let mut rest = rows.as_mut_slice();
    for piece in bounds.windows(2) {
        let (stretch, tail) = rest.split_at_mut(starts[piece[1]] - starts[piece[0]]);
        stretches.push(stretch);
        rest = tail;
    }
    stretches
        .into_par_iter()
        .zip(bounds.par_windows(2))
        .enumerate()
        .for_each(|(i, (stretch, piece))| {
            let (first, base) = (piece[0], starts[piece[0]]);
            let mut next: Vec<usize> = starts[first..piece[1]].iter().map(|s| s - base).collect();
            for (part, cut) in parts.iter().zip(&cuts) {
                let ((first_run, mut row), (end_run, _)) = (cut[i], cut[i + 1]);
                for (group, rows) in &part.runs[first_run..end_run] {
                    let (at, rows) = (&mut next[*group as usize - first], *rows as usize);
                    stretch[*at..*at + rows].copy_from_slice(&part.rows[row..row + rows]);
                    *at += rows;
                    row += rows;
                }
            }
            for group in starts[first..=piece[1]].windows(2) {
                let rows = &mut stretch[group[0] - base..group[1] - base];
                if !rows.is_sorted() {
                    rows.sort_unstable();
                }
            }
        });
    Grouped { rows, starts }
}

/// Rows per range of groups `gather` gathers on its own: a few megabytes, within a core's
/// cache.
const PIECE_ROWS: usize = 1 << 16;

/// The group of `entity`'s rows of measure `measure` (its rank) among `measures`.
fn group_of(entity: u32, measure: u16, measures: usize) -> usize {
    entity as usize * measures + measure as usize
}

/// Reads the files of gold table `name` of `view` (up to `newest_date`) on every core with
/// `read`, then hands their parts, in file order, to `sort`; logs how long each took.
fn read_table<P: Send, S>(
    lake_dir: &Path,
    view: &FeatureView,
    newest_date: Option<&str>,
    name: &str,
    read: impl Fn(&PathBuf) -> Result<P, TrainingSetError> + Sync,
    sort: impl FnOnce(Vec<P>) -> S,
) -> Result<S, TrainingSetError> {
    let started = std::time::Instant::now();
    let files = partitions(lake_dir, &view.name, name, newest_date);
    let parts = map_on_cores(&files, read)?;
    let read_in = started.elapsed();
    let sorted = sort(parts);
    let (files, sorted_in) = (files.len(), started.elapsed() - read_in);
    tracing::debug!(view = %view.name, table = name, files, read = ?read_in, sorted = ?sorted_in, "gold read");
    Ok(sorted)
}

/// `rows` (sorted by entity) cut into about `pieces` runs of whole entities.
fn whole_entities<T>(rows: &[(u32, i64, T)], pieces: usize) -> Vec<&[(u32, i64, T)]> {
    let size = rows.len().div_ceil(pieces.max(1)).max(1);
    let mut cut = Vec::with_capacity(pieces);
    let mut rest = rows;
    while !rest.is_empty() {
        let mut end = size.min(rest.len());
        let entity = rest[end - 1].0;
        end += rest[end..].partition_point(|r| r.0 == entity);
        let (piece, tail) = rest.split_at(end);
        cut.push(piece);
        rest = tail;
    }
    cut
}

/// The `last` changes and touches of one gold `changes` file, for the entities asked for.
fn read_changes(
    path: &Path,
    entities: &PlHashMap<String, u32>,
    slots: &PlHashMap<&str, ChangeSlot>,
) -> Result<(Vec<Change>, FileRuns<i64>), TrainingSetError> {
    let frame = read_file(path, &["entity", "feature", "event_time"])?;
    let (entity, feature) = (strings(&frame, "entity")?, strings(&frame, "feature")?);
    let time = millis(&frame, "event_time")?;
    let rows = ids_of_runs(entity, entities)
        .into_iter()
        .zip(ids_of_runs(feature, slots))
        .zip(time.iter())
        .enumerate();
    let mut touches = FileRuns::with_capacity(frame.height());
    let mut changed = Vec::new();
    for (i, ((e, slot), t)) in rows {
        let (Some(e), Some(slot), Some(t)) = (e, slot, t) else {
            continue;
        };
        match slot {
            // Sorted by entity and time within a file: repeats (an order and a status at the
            // same instant; a quarter of all touches) are kept once.
            ChangeSlot::Touch if touches.last() != Some((e as usize, &t)) => {
                touches.push(e as usize, t);
            }
            ChangeSlot::Touch => {}
            ChangeSlot::Feature(f) => changed.push((i, e, f, t)),
        }
    }
    let touches = touches.in_group_order();
    if changed.is_empty() {
        // Most files hold touches only: their values and arrival order are not read at all.
        return Ok((Vec::new(), touches));
    }
    let frame = read_file(path, &["value", "_ingested_at", "_stream_seq"])?;
    let value = strings(&frame, "value")?;
    let (ingested, seq) = (
        millis(&frame, "_ingested_at")?,
        millis(&frame, "_stream_seq")?,
    );
    let changes = changed
        .into_iter()
        .map(|(i, e, f, t)| Change {
            key: (
                e,
                f,
                t,
                (ingested.get(i).unwrap_or(0), seq.get(i).unwrap_or(0)),
            ),
            value: value.get(i).unwrap_or_default().to_owned(),
        })
        .collect();
    Ok((changes, touches))
}

/// The id of each row's value in `ids` (`None`: null, or not asked for). Gold rows come sorted by
/// entity, then feature or measure, so each run of one value is looked up once. A row continues
/// its run when its view (the 16 bytes saying where its text lies, the same for the rows of one
/// value in a dictionary-encoded page) is the previous row's, else when its text is: comparing
/// each row's text was 3 % of a training set's CPU.
fn ids_of_runs<K, V>(column: &StringChunked, ids: &PlHashMap<K, V>) -> Vec<Option<V>>
where
    K: std::borrow::Borrow<str> + std::hash::Hash + Eq,
    V: Copy,
{
    if column.null_count() > 0 {
        // Gold's key columns hold no nulls: one that does is read row by row.
        return column
            .iter()
            .map(|value| ids.get(value?).copied())
            .collect();
    }
    let mut row_ids = Vec::with_capacity(column.len());
    let mut last: (&str, Option<V>) = ("", ids.get("").copied());
    for array in column.downcast_iter() {
        // A view names a buffer of its own array: runs are not carried across arrays by view.
        let mut last_view = None;
        for (row, view) in array.views().iter().enumerate() {
            if last_view != Some(view.as_u128()) {
                let value = array.value(row);
                if value != last.0 {
                    last = (value, ids.get(value).copied());
                }
                last_view = Some(view.as_u128());
            }
            row_ids.push(last.1);
        }
    }
    row_ids
}

/// The rows `(event time, value)` of one measure-keyed gold file, for the entities of the table
/// only, in runs of one (entity, measure) group among `measures` measures. The value is `values`
/// of the first of `value_columns` the file holds (the file's footer read once for both).
fn measure_rows<V: Copy>(
    path: &Path,
    value_columns: &[&str],
    entities: &PlHashMap<String, u32>,
    measure_ids: &PlHashMap<&str, u16>,
    measures: usize,
    values: impl FnOnce(&Column) -> PolarsResult<Vec<Option<V>>>,
) -> Result<FileRuns<(i64, V)>, TrainingSetError> {
    let mut reader = open_file(path)?;
    let schema = reader.schema().map_err(gold)?;
    // None held: the last, which the read then names as missing.
    let value_column = value_columns
        .iter()
        .find(|c| schema.contains(c))
        .or(value_columns.last())
        .copied()
        .unwrap_or_default();
    let frame = read_columns(reader, &["entity", "measure", "event_time", value_column])?;
    let (entity, measure) = (strings(&frame, "entity")?, strings(&frame, "measure")?);
    let time = millis(&frame, "event_time")?;
    let values = values(frame.column(value_column).map_err(gold)?).map_err(gold)?;
    let rows = ids_of_runs(entity, entities)
        .into_iter()
        .zip(ids_of_runs(measure, measure_ids))
        .zip(time.iter())
        .zip(values);
    let mut file = FileRuns::with_capacity(frame.height());
    for (((e, m), t), v) in rows {
        if let (Some(e), Some(m), Some(t), Some(v)) = (e, m, t, v) {
            file.push(group_of(e, m, measures), (t, v));
        }
    }
    Ok(file.in_group_order())
}

/// Per row (sorted by time), the members seen in the window's time range `(lo, t]`: the online
/// store counts members whose newest time lies in the range, the same set.
fn sweep_distinct(
    occurrences: &[(i64, u64)],
    rows: &[(u32, i64, usize)],
    window: larder_domain::Window,
) -> Vec<u64> {
    let mut counts: PlHashMap<u64, u32> = PlHashMap::new();
    let (mut added, mut removed) = (0, 0);
    rows.iter()
        .map(|(_, t, _)| {
            let lo = window.time_range(*t).map_or(i64::MIN, |(lo, _)| lo);
            while added < occurrences.len() && occurrences[added].0 <= *t {
                *counts.entry(occurrences[added].1).or_default() += 1;
                added += 1;
            }
            while removed < added && occurrences[removed].0 <= lo {
                let member = occurrences[removed].1;
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
    occurrences: &[(i64, u32)],
    rows: &[(u32, i64, usize)],
    names: &Names,
) -> Vec<Option<u32>> {
    let mut counts: PlHashMap<u32, u64> = PlHashMap::new();
    let mut best: Option<(u64, u32)> = None;
    let mut added = 0;
    rows.iter()
        .map(|(_, t, _)| {
            while added < occurrences.len() && occurrences[added].0 <= *t {
                let value = occurrences[added].1;
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
    distinct: &'a [u64],
    frequent: &'a [(u16, Option<u32>)],
    /// Where the entity's previous row's searches of contributions ended, by their order in its
    /// evaluation: the same search of this later row ends there or a little after.
    hints: &'a RefCell<Vec<usize>>,
    /// Searches made so far for this row.
    searches: Cell<usize>,
    /// (measure, bound, end) of each of this row's searches (emptied for each row): every window
    /// of a measure ends at the row's time, and an average's bounds are its sum's and count's,
    /// so most searches were made already.
    found: &'a RefCell<Vec<(u16, i64, usize)>>,
}

/// Where one entity's rows lie in its view's sorted history, found once per entity rather than
/// per row.
struct EntityRanges {
    /// Per feature index, its change rows.
    changes: Vec<Range<usize>>,
    /// Per measure index, its contribution rows.
    measures: Vec<Range<usize>>,
}

impl ViewHistory {
    fn ranges(&self, view: &FeatureView, entity: u32) -> EntityRanges {
        let changes = (0..view.features.len() as u16)
            .map(|feature| {
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
            .map(|m| {
                let group = self.group(entity, m);
                self.measures.starts[group]..self.measures.starts[group + 1]
            })
            .collect();
        EntityRanges { changes, measures }
    }

    /// The group of `entity`'s rows of the view's measure `measure` (its index) in the
    /// measure-keyed tables.
    fn group(&self, entity: u32, measure: usize) -> usize {
        group_of(entity, self.measure_rank[measure], self.measure_rank.len())
    }
}

impl PointInTime<'_> {
    /// The newest change at or before `as_of` (ties: the later arrival) of feature `slot`.
    fn change(&self, slot: usize) -> Option<&Change> {
        let rows = &self.history.changes[self.ranges.changes[slot].clone()];
        let end = rows.partition_point(|c| c.key.2 <= self.as_of);
        rows.get(end.checked_sub(1)?)
    }

    fn measure(&self, id: &str) -> Option<(u16, MeasureKind)> {
        let measures = &self.view.measures;
        let index = by_address(measures.iter().map(|m| m.id.as_str()), id)?;
        Some((index as u16, measures[index].kind))
    }

    /// The end in `history.measures` of the entity's contributions to `measure` with event time
    /// `≤ bound`.
    fn position(&self, measure: u16, bound: i64) -> usize {
        let mut found = self.found.borrow_mut();
        if let Some((_, _, end)) = found.iter().find(|f| (f.0, f.1) == (measure, bound)) {
            return *end;
        }
        let range = self.ranges.measures[measure as usize].clone();
        let search = self.searches.replace(self.searches.get() + 1);
        let mut hints = self.hints.borrow_mut();
        let hint = hints.get(search).copied().unwrap_or(0);
        let end = partition_from(&self.history.measures.rows[range.clone()], hint, |r| {
            r.0 <= bound
        });
        match hints.get_mut(search) {
            Some(hint) => *hint = end,
            None => hints.push(end),
        }
        found.push((measure, bound, range.start + end));
        range.start + end
    }

    /// Combines the contributions of `measure` with event time in `(lo, hi]`.
    fn combine(&self, id: &str, lo: i64, hi: i64) -> Option<i64> {
        let (measure, kind) = self.measure(id)?;
        let (start, end) = (self.position(measure, lo), self.position(measure, hi));
        if start >= end {
            return None;
        }
        let measures = &self.history.measures;
        match kind {
            MeasureKind::Min | MeasureKind::Max => measures.extreme(kind, start..end),
            _ => Some(measures.prefix(end) - measures.prefix(start)),
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
        let slot = by_address(self.view.features.iter().map(|f| f.name.as_str()), feature)?;
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

/// The position of `name` among `names`. The evaluator asks by the view's own names, found by
/// their address before their text is compared: comparing the text, once per window of every
/// row, was a tenth of a training set's evaluation.
fn by_address<'a>(names: impl Iterator<Item = &'a str> + Clone, name: &str) -> Option<usize> {
    let mut same = names.clone();
    same.position(|n| std::ptr::eq(n, name))
        .or_else(|| names.into_iter().position(|n| n == name))
}

/// `rows.partition_point(pred)`, searched from `hint`: galloping ahead when `pred` holds just
/// before it, a few rows when the hint is the end of the same search for the entity's previous
/// row; any hint gives the same answer. Searching the entity's whole range each time missed the
/// cache at most of its steps: about 8 % of a training set's CPU samples.
fn partition_from<T>(rows: &[T], hint: usize, pred: impl Fn(&T) -> bool) -> usize {
    let hint = hint.min(rows.len());
    if hint > 0 && !pred(&rows[hint - 1]) {
        return rows[..hint].partition_point(pred);
    }
    // `pred` holds for every row before `start`.
    let (mut start, mut step) = (hint, 1);
    while start + step <= rows.len() && pred(&rows[start + step - 1]) {
        start += step;
        step *= 2;
    }
    let end = (start + step - 1).min(rows.len());
    start + rows[start..end].partition_point(pred)
}

/// Rows of `measures` per entry of `extremes`.
const BLOCK: usize = 64;

/// The least and greatest value of each `BLOCK` rows of `rows` (event time, value): a maximum
/// over a month of a busy restaurant's orders then reads a few dozen blocks rather than thousands
/// of rows.
fn block_extremes(rows: &[(i64, i64)]) -> Vec<(i64, i64)> {
    rows.par_chunks(BLOCK)
        .map(|block| {
            let values = block.iter().map(|r| r.1);
            (
                values.clone().fold(i64::MAX, i64::min),
                values.fold(i64::MIN, i64::max),
            )
        })
        .collect()
}

/// Turns each row's value into the sum of the values of every row before it, and answers the sum
/// of all (the prefix sum after the last row). Summed on every core: each stretch's total first,
/// then each stretch from the totals before it.
fn values_to_prefix_sums(rows: &mut [(i64, i64)]) -> i64 {
    let totals: Vec<i64> = rows
        .par_chunks(PIECE_ROWS)
        .map(|stretch| stretch.iter().map(|r| r.1).sum())
        .collect();
    let starts: Vec<i64> = totals
        .iter()
        .scan(0, |sum, total| {
            let start = *sum;
            *sum += total;
            Some(start)
        })
        .collect();
    rows.par_chunks_mut(PIECE_ROWS)
        .zip(starts)
        .for_each(|(stretch, mut sum)| {
            for row in stretch {
                let value = row.1;
                row.1 = sum;
                sum += value;
            }
        });
    totals.iter().sum()
}

/// A view's measure contributions, sorted by entity, measure and event time, each as (event
/// time, the sum of the values of every contribution before it): 16 bytes a contribution where
/// the rows as read (entity, measure, time, value) and a prefix array took 32.
struct Contributions {
    rows: Vec<(i64, i64)>,
    /// The sum of every value: the prefix sum after the last row.
    total: i64,
    /// Where each (entity, measure) group starts in `rows` ([`group_of`]); one more entry for
    /// the end.
    starts: Vec<usize>,
    /// The least and greatest value of each `BLOCK` rows.
    extremes: Vec<(i64, i64)>,
}

impl Contributions {
    /// The contributions (time, value) of each (entity, measure) group, the values turned into
    /// prefix sums.
    fn sorted(grouped: Grouped<(i64, i64)>) -> Self {
        let Grouped { mut rows, starts } = grouped;
        let extremes = block_extremes(&rows);
        let total = values_to_prefix_sums(&mut rows);
        Self {
            rows,
            total,
            starts,
            extremes,
        }
    }

    /// The sum of the values of `rows[..i]`, for every `i` up to `rows.len()`.
    fn prefix(&self, i: usize) -> i64 {
        self.rows.get(i).map_or(self.total, |row| row.1)
    }

    /// The least (`Min`) or greatest value of `rows[range]`: its whole blocks from `extremes`,
    /// the rows at either end one by one. None when the range is empty.
    fn extreme(&self, kind: MeasureKind, range: Range<usize>) -> Option<i64> {
        let pick = |a: i64, b: i64| {
            if kind == MeasureKind::Min {
                a.min(b)
            } else {
                a.max(b)
            }
        };
        let values = |rows: Range<usize>| rows.map(|i| self.prefix(i + 1) - self.prefix(i));
        let (first_block, end_block) = (range.start.div_ceil(BLOCK), range.end / BLOCK);
        if first_block >= end_block {
            return values(range).reduce(pick);
        }
        let head = values(range.start..first_block * BLOCK);
        let blocks = self.extremes[first_block..end_block]
            .iter()
            .map(|&(least, greatest)| {
                if kind == MeasureKind::Min {
                    least
                } else {
                    greatest
                }
            });
        let tail = values(end_block * BLOCK..range.end);
        head.chain(blocks).chain(tail).reduce(pick)
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

    /// Puts `sorted`, the values of `rows` in their order, at each row's index in the table.
    fn place(&mut self, sorted: Self, rows: &[(u32, i64, usize)]) {
        fn place<T>(table: &mut [Option<T>], sorted: Vec<Option<T>>, rows: &[(u32, i64, usize)]) {
            for (value, (_, _, row)) in sorted.into_iter().zip(rows) {
                table[*row] = value;
            }
        }
        match (self, sorted) {
            (Self::Integer(table), Self::Integer(sorted)) => place(table, sorted, rows),
            (Self::Float(table), Self::Float(sorted)) => place(table, sorted, rows),
            (Self::Boolean(table), Self::Boolean(sorted)) => place(table, sorted, rows),
            (Self::Text(table), Self::Text(sorted)) => place(table, sorted, rows),
            (Self::Time(table), Self::Time(sorted)) => place(table, sorted, rows),
            _ => unreachable!("a feature's values are all of its one type"),
        }
    }

    fn finish(self, name: &str) -> Series {
        let name = PlSmallStr::from(name);
        match self {
            Self::Integer(v) => Series::new(name, v),
            Self::Float(v) => Series::new(name, v),
            Self::Boolean(v) => Series::new(name, v),
            Self::Text(v) => Series::new(name, v),
            Self::Time(v) => {
                Series::new(name, v).into_datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_entities_cover_every_row_once_and_keep_each_entity_in_one_piece() {
        let rows: Vec<(u32, i64, usize)> = [(0, 5), (0, 6), (1, 1), (2, 1), (2, 2), (2, 3), (3, 9)]
            .into_iter()
            .enumerate()
            .map(|(row, (entity, time))| (entity, time, row))
            .collect();
        for pieces in 1..=9 {
            let cut = whole_entities(&rows, pieces);
            assert_eq!(cut.concat(), rows, "{pieces} pieces");
            assert!(cut.iter().all(|piece| !piece.is_empty()));
            for pair in cut.windows(2) {
                assert_ne!(pair[0].last().unwrap().0, pair[1][0].0, "{pieces} pieces");
            }
        }
        assert_eq!(whole_entities(&rows, 3).len(), 3);
        assert!(whole_entities::<usize>(&[], 4).is_empty());
    }

    /// Contributions of one group, as `values_to_prefix_sums` left `rows`.
    fn contributions(rows: Vec<(i64, i64)>, total: i64) -> Contributions {
        Contributions {
            starts: vec![0, rows.len()],
            rows,
            total,
            extremes: Vec::new(),
        }
    }

    #[test]
    fn prefix_sums_over_several_stretches_are_the_running_sums() {
        let mut rows: Vec<(i64, i64)> = (0..PIECE_ROWS as i64 * 3 + 17)
            .map(|i| (i, (i * 7919) % 1000 - 400))
            .collect();
        let mut expected = vec![0];
        for row in &rows {
            expected.push(expected.last().unwrap() + row.1);
        }
        let times: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let total = values_to_prefix_sums(&mut rows);
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), times);
        let measures = contributions(rows, total);
        let prefixes: Vec<i64> = (0..=measures.rows.len())
            .map(|i| measures.prefix(i))
            .collect();
        assert_eq!(prefixes, expected);
        assert_eq!(values_to_prefix_sums(&mut []), 0);
        assert_eq!(contributions(Vec::new(), 0).prefix(0), 0);
    }

    #[test]
    fn by_address_finds_a_name_by_its_address_or_else_by_its_text() {
        let names = [
            "orders".to_owned(),
            "amount".to_owned(),
            "orders".to_owned(),
        ];
        let iter = || names.iter().map(String::as_str);
        // The third `orders`, by address, although the first has the same text.
        assert_eq!(by_address(iter(), names[2].as_str()), Some(2));
        assert_eq!(by_address(iter(), "amount"), Some(1));
        assert_eq!(by_address(iter(), "orders"), Some(0));
        assert_eq!(by_address(iter(), "customers"), None);
    }

    #[test]
    fn partition_from_any_hint_is_the_partition_point() {
        let rows: Vec<i64> = [1, 1, 2, 3, 3, 3, 5, 8, 8, 9, 12, 13, 13, 20].into();
        for bound in -1..=21 {
            let expected = rows.partition_point(|r| *r <= bound);
            for hint in 0..=rows.len() + 2 {
                assert_eq!(
                    partition_from(&rows, hint, |r| *r <= bound),
                    expected,
                    "bound {bound}, hint {hint}"
                );
            }
        }
        assert_eq!(partition_from(&[] as &[i64], 3, |r| *r <= 0), 0);
    }

    #[test]
    fn extreme_over_blocks_is_the_min_or_max_of_the_rows_for_every_range() {
        // Values that wander up and down, over four blocks and a ragged end.
        let values: Vec<i64> = (0..4 * BLOCK + 17)
            .map(|i| ((i * 7919) % 1009) as i64 - 500)
            .collect();
        let mut rows: Vec<(i64, i64)> = values
            .iter()
            .enumerate()
            .map(|(i, v)| (i as i64, *v))
            .collect();
        let extremes = block_extremes(&rows);
        let total = values_to_prefix_sums(&mut rows);
        let measures = Contributions {
            extremes,
            ..contributions(rows, total)
        };
        for start in (0..values.len()).step_by(5) {
            for end in (start..=values.len()).step_by(3) {
                let range = values[start..end].iter();
                let (least, greatest) = (range.clone().min().copied(), range.max().copied());
                let range = start..end;
                assert_eq!(measures.extreme(MeasureKind::Min, range.clone()), least);
                assert_eq!(measures.extreme(MeasureKind::Max, range), greatest);
            }
        }
    }

    /// `rows` (group, row) of one file as its runs.
    fn file_runs<T: Copy>(rows: &[(usize, T)]) -> FileRuns<T> {
        let mut file = FileRuns::with_capacity(rows.len());
        for (group, row) in rows {
            file.push(*group, *row);
        }
        file
    }

    /// `grouped` as (group, row) pairs, in its order.
    fn pairs<T: Copy>(grouped: &Grouped<T>) -> Vec<(usize, T)> {
        let groups = grouped.starts.len() - 1;
        (0..groups)
            .flat_map(|group| grouped.of(group).iter().map(move |row| (group, *row)))
            .collect()
    }

    #[test]
    fn gather_gives_the_full_sort_whether_or_not_files_overlap_in_time() {
        // (entity, time): the second file's entity 0 interleaves with the first's in time, as
        // two files of one date may; entity 1's rows are in order file by file.
        let files: Vec<Vec<(usize, i64)>> = vec![
            vec![(0, 10), (0, 30), (1, 5), (1, 6)],
            vec![(0, 20), (1, 7), (2, 1)],
            vec![],
            vec![(0, 40), (2, 0)],
        ];
        let mut expected = files.concat();
        expected.sort_unstable();
        let grouped = gather(files.iter().map(|f| file_runs(f)).collect(), 3);
        assert_eq!(pairs(&grouped), expected);
        assert_eq!(grouped.rows, [10, 20, 30, 40, 5, 6, 7, 0, 1]);
        assert_eq!(grouped.starts, [0, 4, 7, 9]);
        assert_eq!(grouped.of(1), [5, 6, 7]);
        let empty = gather(Vec::<FileRuns<i64>>::new(), 3);
        assert!(empty.rows.is_empty());
        assert_eq!(empty.starts, [0, 0, 0, 0]);
    }

    #[test]
    fn gather_sorts_rows_spread_over_many_pieces_and_files_out_of_group_order() {
        // Enough rows for several pieces; six gold-like files (sorted) whose times overlap,
        // and one file in no order at all.
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            seed >> 33
        };
        let mut files: Vec<Vec<(usize, i64)>> = (0..7)
            .map(|_| {
                let rows = (0..PIECE_ROWS / 2)
                    .map(|_| ((next() % 5_000) as usize, (next() % 1_000) as i64));
                rows.collect()
            })
            .collect();
        for file in &mut files[..6] {
            file.sort_unstable();
        }
        assert!(!files[6].is_sorted_by_key(|r| r.0));
        let mut expected = files.concat();
        expected.sort_unstable();
        // The unordered file in group order, each group's rows in the order they came.
        let unordered = file_runs(&files[6]).in_group_order();
        assert!(unordered.runs.windows(2).all(|pair| pair[0].0 < pair[1].0));
        let mut stable = files[6].clone();
        stable.sort_by_key(|r| r.0);
        assert_eq!(
            unordered.rows,
            stable.iter().map(|r| r.1).collect::<Vec<_>>()
        );
        let parts = files
            .iter()
            .map(|f| file_runs(f).in_group_order())
            .collect();
        let grouped = gather(parts, 5_000);
        assert_eq!(pairs(&grouped), expected);
        // Each group's start is where its first row lies, and the last entry the end.
        for (group, start) in grouped.starts[..5_000].iter().enumerate() {
            let first = expected.partition_point(|r| r.0 < group);
            assert_eq!(*start, first, "group {group}");
        }
        assert_eq!(grouped.starts[5_000], expected.len());
    }
}
