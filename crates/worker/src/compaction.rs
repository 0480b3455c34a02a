//! The `compact-bronze` job: the objects of each bronze date partition merged into one.
//!
//! The lake flush writes one object per batch and event date, so partitions collect small
//! objects — a trickle of real-time events makes one every `worker.flush_max_wait_ms`, and a
//! batch of consumers touches hundreds of creation dates — and every scan pays per object (about
//! a quarter of a millisecond each on the order lake). Compaction reads a partition's objects,
//! writes their rows, in log order, as one object named after the union of their stream-id
//! ranges, and only then deletes them.
//!
//! Key decision: readers ignore an object whose stream-id range another object's range contains
//! ([`split_covered`]), so a merged object replaces its parts the moment it is written; a crash
//! before they are deleted leaves parts no reader uses, and the next run deletes them. This is
//! safe beside a running flush without a lock: a batch's objects are all written before it is
//! acknowledged and the next batch is claimed only after that (an unacknowledged batch is
//! claimed again first, whole), so an object written after a run listed a partition either
//! holds entries past every listed object or rewrites a listed batch with the same rows.

use std::collections::BTreeMap;

use larder_domain::Source;
use larder_usecases::ObjectStore;
use polars::prelude::*;

use crate::{LakeError, parquet_file};

/// A log entry id, `{ms}-{seq}`, ordered as the log orders it (numerically, part by part).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct StreamId(pub(crate) u64, pub(crate) u64);

impl StreamId {
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let (ms, seq) = text.split_once('-')?;
        Some(Self(ms.parse().ok()?, seq.parse().ok()?))
    }
}

/// The ids of the first and last entry an object holds, from its name
/// (`…/{first}_{last}.parquet`), as text and parsed.
fn range(key: &str) -> Option<(&str, &str, StreamId, StreamId)> {
    let name = key.rsplit('/').next()?.strip_suffix(".parquet")?;
    let (first, last) = name.split_once('_')?;
    Some((first, last, StreamId::parse(first)?, StreamId::parse(last)?))
}

/// Splits the objects of one partition into those readers use, in log order, and those whose
/// range another object's contains (the parts of a merged object). An object not named after a
/// range is used and never covered.
pub(crate) fn split_covered<T: AsRef<str>>(objects: Vec<T>) -> (Vec<T>, Vec<T>) {
    let (mut ranged, mut unnamed) = (Vec::new(), Vec::new());
    for object in objects {
        match range(object.as_ref()) {
            Some((_, _, first, last)) => ranged.push((first, last, object)),
            None => unnamed.push(object),
        }
    }
    // By first entry, the widest first: an object is covered exactly when one sorted before it
    // reaches at least as far.
    ranged.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let (mut live, mut covered) = (Vec::new(), Vec::new());
    let mut reach = None;
    for (_, last, object) in ranged {
        if reach.is_some_and(|reach| reach >= last) {
            covered.push(object);
        } else {
            reach = Some(last);
            live.push(object);
        }
    }
    live.append(&mut unnamed);
    (live, covered)
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CompactionSummary {
    /// Partitions whose objects were merged.
    pub partitions: u64,
    /// Objects merged into others, and rows they held.
    pub objects_merged: u64,
    pub rows: u64,
    /// Merged objects written.
    pub objects_written: Vec<String>,
    /// Covered objects left by an earlier run (a crash, or a flush that rewrote a merged batch)
    /// and now deleted.
    pub leftovers_deleted: u64,
}

/// Merges every bronze partition holding at least `min_objects` (and two) objects readers use
/// into one object, and deletes covered objects.
///
/// # Errors
/// [`LakeError::Store`] when objects cannot be listed, read, written or deleted (what was done
/// stays correct: see the module docs), [`LakeError::Encode`] when an object does not decode.
pub async fn compact_bronze(
    store: &dyn ObjectStore,
    min_objects: usize,
) -> Result<CompactionSummary, LakeError> {
    let mut summary = CompactionSummary::default();
    for source in Source::ALL {
        compact_source(store, source, min_objects, &mut summary).await?;
    }
    Ok(summary)
}

async fn compact_source(
    store: &dyn ObjectStore,
    source: Source,
    min_objects: usize,
    summary: &mut CompactionSummary,
) -> Result<(), LakeError> {
    let mut partitions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for key in store.list(&format!("bronze/{source}/")).await? {
        if let Some((partition, _)) = key.rsplit_once('/') {
            partitions
                .entry(partition.to_owned())
                .or_default()
                .push(key);
        }
    }
    for (partition, objects) in partitions {
        let (live, covered) = split_covered(objects);
        for key in &covered {
            store.delete(key).await?;
        }
        summary.leftovers_deleted += covered.len() as u64;
        let parts: Vec<String> = live.into_iter().filter(|k| range(k).is_some()).collect();
        if parts.len() < min_objects.max(2) {
            continue;
        }
        let Some((key, rows)) = merge(store, &partition, &parts).await? else {
            continue;
        };
        summary.objects_written.push(key);
        for key in &parts {
            store.delete(key).await?;
        }
        summary.partitions += 1;
        summary.objects_merged += parts.len() as u64;
        summary.rows += rows;
    }
    Ok(())
}

/// Writes the rows of `parts` (live objects in log order, oldest first) as one object of
/// `partition`; its key and row count, or `None` when a part has vanished (another run merged
/// it meanwhile).
async fn merge(
    store: &dyn ObjectStore,
    partition: &str,
    parts: &[String],
) -> Result<Option<(String, u64)>, LakeError> {
    let mut contents = Vec::with_capacity(parts.len());
    for key in parts {
        match store.get(key).await? {
            Some(bytes) => contents.push(bytes),
            None => return Ok(None),
        }
    }
    // No live object's range contains another's, so in log order their last entries rise too:
    // the merged object spans the first part's first entry to the last part's last.
    let (Some((first, _, _, _)), Some((_, last, _, _))) = (
        parts.first().and_then(|k| range(k)),
        parts.last().and_then(|k| range(k)),
    ) else {
        return Ok(None);
    };
    let (bytes, rows) = tokio::task::spawn_blocking(move || concatenate(contents))
        .await
        .map_err(LakeError::encode)?
        .map_err(LakeError::encode)?;
    let key = format!("{partition}/{first}_{last}.parquet");
    store.put(&key, bytes).await?;
    Ok(Some((key, rows)))
}

/// The rows of Parquet objects of one source as one object, sorted by log position.
fn concatenate(contents: Vec<Vec<u8>>) -> PolarsResult<(Vec<u8>, u64)> {
    let mut frames = contents
        .into_iter()
        .map(|bytes| ParquetReader::new(std::io::Cursor::new(bytes)).finish());
    let mut frame = frames.next().transpose()?.unwrap_or_default();
    for other in frames {
        frame.vstack_mut_owned(other?)?;
    }
    let mut frame = frame.sort(
        ["_ingested_at", "_stream_seq"],
        SortMultipleOptions::default(),
    )?;
    let bytes = parquet_file::encode(&mut frame, ParquetCompression::default())?;
    Ok((bytes, frame.height() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(first: &str, last: &str) -> String {
        format!("bronze/order/date=2019-01-01/{first}_{last}.parquet")
    }

    #[test]
    fn ids_compare_as_numbers_not_text() {
        assert!(StreamId::parse("1000-10") > StreamId::parse("1000-9"));
        assert!(StreamId::parse("999-5") < StreamId::parse("1000-0"));
        assert_eq!(StreamId::parse("1000"), None);
        assert_eq!(range("date=x/notes.txt"), None);
    }

    #[test]
    fn an_object_inside_another_objects_range_is_covered() {
        let merged = key("100-0", "500-3");
        let parts = vec![
            key("100-0", "199-9"),
            key("200-0", "299-0"),
            key("400-0", "500-3"),
        ];
        let later = key("500-4", "600-0");
        let mut objects = parts.clone();
        objects.extend([merged.clone(), later.clone()]);
        let (live, covered) = split_covered(objects);
        assert_eq!(live, vec![merged, later]);
        let mut covered = covered;
        covered.sort();
        assert_eq!(covered, parts);
    }

    #[test]
    fn disjoint_objects_are_all_live_in_log_order() {
        // "9-0" sorts after "10-0" as text; the log puts it first.
        let objects = vec![
            key("10-0", "10-5"),
            key("9-0", "9-9"),
            "date=x/extra.parquet".to_owned(),
        ];
        let (live, covered) = split_covered(objects);
        assert_eq!(
            live,
            vec![
                key("9-0", "9-9"),
                key("10-0", "10-5"),
                "date=x/extra.parquet".to_owned()
            ]
        );
        assert!(covered.is_empty());
    }

    #[test]
    fn a_part_sharing_the_merged_objects_first_entry_is_covered() {
        let (live, covered) = split_covered(vec![key("1-0", "1-5"), key("1-0", "3-0")]);
        assert_eq!(
            (live, covered),
            (vec![key("1-0", "3-0")], vec![key("1-0", "1-5")])
        );
    }
}
