//! Event-log entries as typed Parquet: one column per field of the source (types from the
//! domain schema, times as UTC milliseconds, `items` as JSON text), plus where the row came
//! from (`_stream_id`, `_stream_seq`) and when it was ingested (`_ingested_at`).

use std::path::{Path, PathBuf};

use larder_domain::{FieldType, Source, Timestamp};
use larder_usecases::LoggedEvent;
use polars::prelude::*;
use serde_json::{Map, Value};

use crate::compaction::{StreamId, split_covered};

/// A log entry's record, its event date (`YYYY-MM-DD`, UTC) and its stream id parts.
pub struct Row {
    pub record: Map<String, Value>,
    pub date: String,
    pub stream_id: String,
    pub ingested_ms: i64,
    pub seq: i64,
}

fn event_field(source: Source) -> &'static str {
    match source {
        Source::Order => "order_created_at",
        Source::Status | Source::Restaurant | Source::Consumer => "created_at",
    }
}

/// Parses a log entry. A payload the API wrote is always a valid record; anything else is a
/// bug worth stopping for, so it is an error, not a skipped row.
pub fn row(source: Source, entry: &LoggedEvent) -> Result<Row, String> {
    let Ok(Value::Object(record)) = serde_json::from_str::<Value>(&entry.payload) else {
        return Err(format!(
            "entry {} of events:{source} is not a JSON object",
            entry.id
        ));
    };
    let time = record
        .get(event_field(source))
        .and_then(Value::as_str)
        .and_then(Timestamp::parse_rfc3339)
        .ok_or_else(|| format!("entry {} has no event time", entry.id))?;
    let date = time.date();
    let bad_id = || format!("bad stream id {}", entry.id);
    let StreamId(ms, seq) = StreamId::parse(&entry.id).ok_or_else(bad_id)?;
    Ok(Row {
        record,
        date,
        stream_id: entry.id.clone(),
        ingested_ms: i64::try_from(ms).map_err(|_| bad_id())?,
        seq: i64::try_from(seq).map_err(|_| bad_id())?,
    })
}

/// How to scan the lake: Hive partitions on, their values kept as text (`date` stays the
/// `YYYY-MM-DD` of the path instead of needing a date parser).
pub fn lake_scan_args() -> ScanArgsParquet {
    ScanArgsParquet {
        hive_options: HiveOptions {
            enabled: Some(true),
            try_parse_dates: false,
            ..HiveOptions::default()
        },
        ..ScanArgsParquet::default()
    }
}

/// The `date=YYYY-MM-DD` partitions directly under `dir` (bronze or gold), oldest first, with
/// their paths; none when `dir` does not exist.
pub(crate) fn date_partitions(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut partitions: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let name = entry.file_name().into_string().ok()?;
            Some((name.strip_prefix("date=")?.to_owned(), entry.path()))
        })
        .collect();
    partitions.sort();
    partitions
}

/// The Parquet files of a bronze partition directory that readers use, in log order: all but
/// the parts of a merged object ([`split_covered`]).
fn live_files(dir: &Path) -> Vec<PathBuf> {
    let files: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".parquet"))
        .collect();
    let (live, _covered) = split_covered(files);
    live.into_iter().map(|name| dir.join(name)).collect()
}

/// The rows of the live objects of the bronze partition directories `dirs` (only `columns`,
/// unless empty); none when they hold no object. Read again (three attempts in all) when the
/// read failed while a file it was given has since disappeared: a compaction run deletes the
/// parts of the object it has just written, and a listing taken now names that object instead.
pub(crate) fn read_partitions(
    dirs: &[PathBuf],
    columns: &[&str],
) -> PolarsResult<Option<DataFrame>> {
    let mut attempt = 1;
    loop {
        let files: Vec<PathBuf> = dirs.iter().flat_map(|dir| live_files(dir)).collect();
        if files.is_empty() {
            return Ok(None);
        }
        let paths = files
            .iter()
            .map(|f| PlRefPath::new(f.to_string_lossy().as_ref()))
            .collect();
        let mut scan = LazyFrame::scan_parquet_files(paths, lake_scan_args())?;
        if !columns.is_empty() {
            scan = scan.select(columns.iter().map(|c| col(*c)).collect::<Vec<_>>());
        }
        match scan.collect() {
            Err(_) if attempt < 3 && files.iter().any(|f| !f.exists()) => attempt += 1,
            result => return result.map(Some),
        }
    }
}

/// Every bronze row of `source` under the local lake `lake_dir` as the jobs read them (each
/// logged event once, whatever compaction is doing), `columns` only unless empty; none when
/// there is no object.
///
/// # Errors
/// When Polars cannot read the objects.
pub fn read_bronze(
    lake_dir: &Path,
    source: Source,
    columns: &[&str],
) -> PolarsResult<Option<DataFrame>> {
    let dirs: Vec<PathBuf> = date_partitions(&lake_dir.join(format!("bronze/{source}")))
        .into_iter()
        .map(|(_, dir)| dir)
        .collect();
    read_partitions(&dirs, columns)
}

/// `bronze/{source}/date={date}/{first}_{last}.parquet`: the same batch always gets the same name.
pub fn bronze_key(source: Source, date: &str, first: &str, last: &str) -> String {
    format!("bronze/{source}/date={date}/{first}_{last}.parquet")
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Encodes rows of `source` as one Parquet file.
///
/// # Errors
/// When Polars cannot build or write the frame.
pub fn to_parquet(source: Source, rows: &[&Row]) -> PolarsResult<Vec<u8>> {
    let mut columns: Vec<Column> = Vec::with_capacity(source.fields().len() + 3);
    for (field, kind) in source.fields() {
        let values = rows.iter().map(|r| r.record.get(*field));
        let name = PlSmallStr::from_static(field);
        let column = match kind {
            FieldType::Text => Series::new(name, values.map(text).collect::<Vec<_>>()),
            FieldType::Integer => Series::new(
                name,
                values
                    .map(|v| v.and_then(Value::as_i64))
                    .collect::<Vec<_>>(),
            ),
            FieldType::Float => Series::new(
                name,
                values
                    .map(|v| v.and_then(Value::as_f64))
                    .collect::<Vec<_>>(),
            ),
            FieldType::Boolean => Series::new(
                name,
                values
                    .map(|v| v.and_then(Value::as_bool))
                    .collect::<Vec<_>>(),
            ),
            FieldType::Time => Series::new(
                name,
                values
                    .map(|v| {
                        v.and_then(Value::as_str)
                            .and_then(Timestamp::parse_rfc3339)
                            .map(Timestamp::millis)
                    })
                    .collect::<Vec<_>>(),
            )
            .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))?,
        };
        columns.push(column.into_column());
    }
    columns.push(
        Series::new(
            "_stream_id".into(),
            rows.iter()
                .map(|r| r.stream_id.as_str())
                .collect::<Vec<_>>(),
        )
        .into_column(),
    );
    columns.push(
        Series::new(
            "_stream_seq".into(),
            rows.iter().map(|r| r.seq).collect::<Vec<_>>(),
        )
        .into_column(),
    );
    columns.push(
        Series::new(
            "_ingested_at".into(),
            rows.iter().map(|r| r.ingested_ms).collect::<Vec<_>>(),
        )
        .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))?
        .into_column(),
    );
    let mut frame = DataFrame::new_infer_height(columns)?;
    // Polars' own writer, which encodes mostly on this thread rather than on every core
    // (`parquet_file::encode`): the flush runs beside ingestion, whose Redis needs a core.
    let mut bytes = Vec::new();
    ParquetWriter::new(&mut bytes).finish(&mut frame)?;
    Ok(bytes)
}
