//! Finding and reading replay inputs: the four source files (`order`, `status`, `restaurant`,
//! `consumer` at the start of the name), NDJSON or CSV, plain or gzip, local or on S3. Reading
//! streams: memory stays flat whatever the file size.

use std::{
    fs::File,
    io::{BufRead, BufReader, Read},
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use anyhow::{Context, bail};
use flate2::read::MultiGzDecoder;
use larder_domain::{Source, Timestamp};
use larder_s3::{S3Location, list_objects, open_object};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ndjson,
    Csv,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(String),
    S3(S3Location),
}

/// One file to replay.
#[derive(Debug, Clone)]
pub struct InputFile {
    pub source: Source,
    pub location: Location,
    pub format: Format,
    pub gzip: bool,
    /// Size in bytes as stored (compressed for `.gz`), when known: drives the ETA.
    pub size: Option<u64>,
    /// Identifies the file in checkpoints and reports.
    pub name: String,
}

/// Source and format from a file name: `order.json.gz`, `restaurant.csv`, `status_sample.csv`.
pub fn classify(file_name: &str) -> Option<(Source, Format, bool)> {
    let lower = file_name.to_ascii_lowercase();
    let (stem, gzip) = match lower.strip_suffix(".gz") {
        Some(stem) => (stem, true),
        None => (lower.as_str(), false),
    };
    let format = match stem.rsplit_once('.')?.1 {
        "json" | "ndjson" | "jsonl" => Format::Ndjson,
        "csv" => Format::Csv,
        _ => return None,
    };
    let source = Source::ALL
        .into_iter()
        .find(|s| stem.starts_with(s.as_str()))?;
    Some((source, format, gzip))
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Expands the command-line paths: files, directories (their recognised files), `s3://` objects
/// and prefixes. An explicitly named file that is not recognised is an error.
pub async fn discover(
    paths: &[String],
    s3: Option<&larder_s3::S3Client>,
) -> anyhow::Result<Vec<InputFile>> {
    let mut inputs = Vec::new();
    for path in paths {
        if path.starts_with("s3://") {
            let client = s3.context("s3:// inputs need an S3 client")?;
            let location = S3Location::parse(path)?;
            let keys = if classify(base_name(&location.key)).is_some() {
                vec![location.key.clone()]
            } else {
                list_objects(client, &location).await?
            };
            for key in keys {
                let Some((source, format, gzip)) = classify(base_name(&key)) else {
                    continue;
                };
                let location = S3Location {
                    bucket: location.bucket.clone(),
                    key,
                };
                let name = format!("s3://{}/{}", location.bucket, location.key);
                inputs.push(InputFile {
                    source,
                    location: Location::S3(location),
                    format,
                    gzip,
                    size: None,
                    name,
                });
            }
        } else if Path::new(path).is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(path)
                .with_context(|| format!("reading directory {path}"))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            entries.sort();
            for entry in entries {
                let file_name = entry
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                if let Some((source, format, gzip)) = classify(file_name) {
                    inputs.push(local(
                        entry.to_string_lossy().into_owned(),
                        source,
                        format,
                        gzip,
                    ));
                }
            }
        } else {
            let Some((source, format, gzip)) = classify(base_name(path)) else {
                bail!(
                    "{path}: not a recognised input (order|status|restaurant|consumer*.json|.ndjson|.jsonl|.csv[.gz])"
                );
            };
            if !Path::new(path).is_file() {
                bail!("{path}: no such file");
            }
            inputs.push(local(path.clone(), source, format, gzip));
        }
    }
    if inputs.is_empty() {
        bail!("no input files found in {}", paths.join(", "));
    }
    Ok(inputs)
}

fn local(path: String, source: Source, format: Format, gzip: bool) -> InputFile {
    let size = std::fs::metadata(&path).ok().map(|m| m.len());
    InputFile {
        source,
        location: Location::Local(path.clone()),
        format,
        gzip,
        size,
        name: path,
    }
}

/// Counts the bytes read through it (before decompression), for progress.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens `input` for blocking reads (call from a blocking thread; `runtime` drives S3 reads).
pub fn open(
    input: &InputFile,
    s3: Option<&larder_s3::S3Client>,
    runtime: &tokio::runtime::Handle,
    bytes_read: Arc<AtomicU64>,
) -> anyhow::Result<Box<dyn BufRead + Send>> {
    let raw: Box<dyn Read + Send> = match &input.location {
        Location::Local(path) => {
            Box::new(File::open(path).with_context(|| format!("opening {path}"))?)
        }
        Location::S3(location) => {
            let client = s3.context("s3:// inputs need an S3 client")?;
            let reader = runtime.block_on(open_object(client, location))?;
            Box::new(tokio_util::io::SyncIoBridge::new_with_handle(
                reader,
                runtime.clone(),
            ))
        }
    };
    let counted = Counting {
        inner: raw,
        read: bytes_read,
    };
    Ok(if input.gzip {
        Box::new(BufReader::with_capacity(
            1 << 20,
            MultiGzDecoder::new(BufReader::new(counted)),
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 20, counted))
    })
}

/// One event, as a line of NDJSON for the batch route.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub text: String,
    /// 1-based line (or CSV record) number in its file, for reports.
    pub number: u64,
}

/// Iterates the events of one input as NDJSON lines. NDJSON lines pass through untouched (a
/// malformed one is the server's to reject); CSV records are converted the way the original
/// data needs: every value is text, and empty fields and the literal `null` are absent.
pub fn lines(
    input: &InputFile,
    reader: Box<dyn BufRead + Send>,
) -> Box<dyn Iterator<Item = anyhow::Result<Line>> + Send> {
    match input.format {
        Format::Ndjson => Box::new(
            reader
                .lines()
                .enumerate()
                .map(|(i, line)| {
                    line.map(|text| Line {
                        text,
                        number: i as u64 + 1,
                    })
                    .map_err(Into::into)
                })
                .filter(|line| !matches!(line, Ok(Line { text, .. }) if text.trim().is_empty())),
        ),
        Format::Csv => {
            let mut csv = csv::ReaderBuilder::new().from_reader(reader);
            let headers = match csv.headers() {
                Ok(headers) => headers.clone(),
                Err(e) => return Box::new(std::iter::once(Err(e.into()))),
            };
            Box::new(csv.into_records().enumerate().map(move |(i, record)| {
                let record = record?;
                let object: Map<String, Value> = headers
                    .iter()
                    .zip(record.iter())
                    .filter(|(_, value)| !value.is_empty() && *value != "null")
                    .map(|(name, value)| (name.to_owned(), Value::String(value.to_owned())))
                    .collect();
                Ok(Line {
                    text: Value::Object(object).to_string(),
                    number: i as u64 + 2,
                })
            }))
        }
    }
}

/// The event time of a line, for `--by-event-time`; `None` when absent or unparseable.
pub fn event_time(source: Source, line: &str) -> Option<i64> {
    let field = match source {
        Source::Order => "order_created_at",
        Source::Status | Source::Restaurant | Source::Consumer => "created_at",
    };
    let value: Value = serde_json::from_str(line).ok()?;
    Timestamp::parse_rfc3339(value.get(field)?.as_str()?).map(Timestamp::millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_tell_source_and_format() {
        assert_eq!(
            classify("order.json.gz"),
            Some((Source::Order, Format::Ndjson, true))
        );
        assert_eq!(
            classify("status_sample.csv"),
            Some((Source::Status, Format::Csv, false))
        );
        assert_eq!(
            classify("Restaurant.CSV.GZ"),
            Some((Source::Restaurant, Format::Csv, true))
        );
        assert_eq!(
            classify("consumer.jsonl"),
            Some((Source::Consumer, Format::Ndjson, false))
        );
        assert_eq!(classify("orders.parquet"), None);
        assert_eq!(classify("dish.csv"), None);
    }

    #[test]
    fn csv_rows_become_events_without_blank_or_null_fields() {
        let input = InputFile {
            source: Source::Order,
            location: Location::Local("x.csv".into()),
            format: Format::Csv,
            gzip: false,
            size: None,
            name: "x.csv".into(),
        };
        let text = "order_id,customer_id,items,amount\no1,null,\"[{\"\"a\"\": 1}]\",\n";
        let lines: Vec<Line> = lines(
            &input,
            Box::new(std::io::Cursor::new(text.as_bytes().to_vec())),
        )
        .map(Result::unwrap)
        .collect();
        assert_eq!(lines.len(), 1);
        let event: Value = serde_json::from_str(&lines[0].text).unwrap();
        assert_eq!(
            event,
            serde_json::json!({"order_id": "o1", "items": "[{\"a\": 1}]"})
        );
        assert_eq!(lines[0].number, 2);
    }
}
