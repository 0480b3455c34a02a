//! Parquet files encoded on every core.
//!
//! Polars' `ParquetWriter` hands its file writer each column's pages as iterators that encode
//! and compress a page when the writer asks for it: most of a write runs on the writing thread.
//! Here every (row group, column) is encoded and compressed on its own, on every core, and each
//! row group is written as soon as all its columns are ready, while later ones are still being
//! encoded: byte for byte the file Polars' own writer makes, but that Snappy and LZ4 leave
//! uncompressed a column chunk they barely shrink. Another file's column chunks can be written
//! beside them as that file stores them, pages copied without decoding ([`StoredColumns`]).

use std::{
    io::{Cursor, Write},
    sync::Mutex,
};

use polars::{frame::chunk_df_for_writing, prelude::*};
use polars_buffer::Buffer;
use polars_parquet::{
    parquet::read::{get_page_iterator, read_metadata},
    read::infer_schema,
    write::{
        CompressedPage, CompressionOptions, FileWriter, Page, ParquetType, SchemaDescriptor,
        Version, WriteOptions, array_to_columns, compress, to_parquet_schema, to_parquet_type,
    },
};

use crate::cores::on_cores;

/// Rows per row group: Polars' own default.
const ROW_GROUP_ROWS: usize = 512 * 512;

/// `frame` as a Parquet file compressed with `compression`.
///
/// # Errors
/// A column Parquet cannot hold.
pub(crate) fn encode(
    frame: &mut DataFrame,
    compression: ParquetCompression,
) -> PolarsResult<Vec<u8>> {
    let mut bytes = Vec::new();
    write(frame, compression, &mut bytes)?;
    Ok(bytes)
}

/// Writes `frame` to `sink` as a Parquet file compressed with `compression`.
///
/// # Errors
/// A column Parquet cannot hold, or `sink` failing.
pub(crate) fn write(
    frame: &mut DataFrame,
    compression: ParquetCompression,
    sink: &mut impl Write,
) -> PolarsResult<()> {
    let frame = chunk_df_for_writing(frame, ROW_GROUP_ROWS)?;
    let arrow = frame.schema().to_arrow(CompatLevel::newest());
    let fields = to_parquet_schema(&arrow)?.fields().to_vec();
    let row_groups = frame
        .iter_chunks(CompatLevel::newest(), false)
        .filter(|group| !group.is_empty())
        .map(|group| RowGroup {
            rows: group.len(),
            chunks: group.into_arrays().into_iter().map(Chunk::Encode).collect(),
        })
        .collect();
    write_row_groups(arrow, fields, row_groups, compression, sink)
}

/// A Parquet file's column chunks as it stores them, its pages still encoded and compressed:
/// copied into another file of the same rows, they cost neither decoding nor encoding.
pub(crate) struct StoredColumns {
    arrow: ArrowSchema,
    fields: Vec<ParquetType>,
    row_groups: Vec<RowGroup>,
}

impl StoredColumns {
    /// The columns of the Parquet file `bytes`, if every one can be copied as it is: a
    /// top-level, unrepeated primitive whose data pages carry the statistics (null count
    /// included) that the written file's page index is built from. `None` otherwise.
    ///
    /// # Errors
    /// `bytes` not holding a Parquet file.
    pub(crate) fn read(bytes: &Buffer<u8>) -> PolarsResult<Option<Self>> {
        let metadata = read_metadata(&mut Cursor::new(bytes.as_ref()))?;
        let schema = &metadata.schema_descr;
        let copyable = schema.fields().len() == schema.columns().len()
            && schema
                .columns()
                .iter()
                .all(|c| c.descriptor.max_rep_level == 0);
        if !copyable {
            return Ok(None);
        }
        let mut row_groups = Vec::with_capacity(metadata.row_groups.len());
        for group in &metadata.row_groups {
            let mut chunks = Vec::with_capacity(group.n_columns());
            for column in group.parquet_columns() {
                let reader = Cursor::new(bytes.clone());
                let mut pages = Vec::new();
                for page in get_page_iterator(column, reader, Vec::new(), usize::MAX)? {
                    let mut page = page?;
                    if let CompressedPage::Data(data) = &mut page {
                        // Statistics this reader cannot read (of a type it has none for) are
                        // as good as none: the table is then decoded, as it always could be.
                        let indexed = data
                            .statistics()
                            .and_then(Result::ok)
                            .is_some_and(|s| s.serialize().null_count.is_some());
                        if !indexed {
                            return Ok(None);
                        }
                        // Unrepeated: a value (or null) per row.
                        data.num_rows = Some(data.num_values());
                    }
                    pages.push(page);
                }
                chunks.push(Chunk::Copy(pages));
            }
            let rows = group.num_rows();
            row_groups.push(RowGroup { rows, chunks });
        }
        Ok(Some(Self {
            arrow: infer_schema(&metadata)?,
            fields: schema.fields().to_vec(),
            row_groups,
        }))
    }

    /// The names of the columns.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.arrow.iter_names().map(PlSmallStr::as_str)
    }

    /// Writes to `sink` a Parquet file of these columns, copied, followed by those of `frame`
    /// (of as many rows), encoded and compressed with `compression`, in these row groups.
    ///
    /// # Errors
    /// `frame` of another height or with a column Parquet cannot hold, or `sink` failing.
    pub(crate) fn write_beside(
        self,
        frame: &DataFrame,
        compression: ParquetCompression,
        sink: &mut impl Write,
    ) -> PolarsResult<()> {
        let rows: usize = self.row_groups.iter().map(|group| group.rows).sum();
        polars_ensure!(
            frame.height() == rows,
            ShapeMismatch: "{} rows beside {rows} stored", frame.height()
        );
        let added = frame.schema().to_arrow(CompatLevel::newest());
        let (mut arrow, mut fields) = (self.arrow, self.fields);
        for field in added.iter_values() {
            fields.push(to_parquet_type(field)?);
            arrow.insert(field.name.clone(), field.clone());
        }
        let mut offset = 0;
        let mut row_groups = Vec::with_capacity(self.row_groups.len());
        for mut group in self.row_groups.into_iter().filter(|g| g.rows > 0) {
            let mut slice = frame.slice(offset as i64, group.rows);
            offset += group.rows;
            let arrays = slice
                .rechunk_mut_par()
                .iter_chunks(CompatLevel::newest(), false)
                .flat_map(|batch| batch.into_arrays());
            group.chunks.extend(arrays.map(Chunk::Encode));
            row_groups.push(group);
        }
        write_row_groups(arrow, fields, row_groups, compression, sink)
    }
}

/// One row group to write: its rows and its columns' chunks.
struct RowGroup {
    rows: usize,
    chunks: Vec<Chunk>,
}

/// A column chunk to write: an array to encode and compress, or pages to copy as they are.
enum Chunk {
    Encode(ArrayRef),
    Copy(Vec<CompressedPage>),
}

/// Writes `row_groups` to `sink` as a Parquet file of schema `arrow` (its Parquet `fields` one
/// per column), the arrays compressed with `compression`.
fn write_row_groups(
    arrow: ArrowSchema,
    fields: Vec<ParquetType>,
    row_groups: Vec<RowGroup>,
    compression: ParquetCompression,
    sink: &mut impl Write,
) -> PolarsResult<()> {
    let encodings = get_encodings(&arrow);
    let options = WriteOptions {
        statistics: StatisticsOptions::default(),
        compression: compression.into(),
        version: Version::V1,
        data_page_size: None,
    };
    let schema = SchemaDescriptor::new(PlSmallStr::from_static("root"), fields.clone());
    let file = FileWriter::new_with_parquet_schema(sink, arrow, schema, options);
    let mut writer = polars::io::parquet::write::BatchedWriter::new(
        Mutex::new(file),
        encodings.clone(),
        options,
        false,
        None,
    );
    let width = fields.len();
    // Per cell, the pages of each of its Parquet leaf columns, until its row group is written;
    // copied chunks are ready from the start.
    let mut encoded: Vec<Option<Vec<Vec<CompressedPage>>>> = Vec::new();
    let mut to_encode: Vec<(usize, ArrayRef)> = Vec::new();
    let mut heights = Vec::with_capacity(row_groups.len());
    for group in row_groups {
        heights.push(group.rows);
        for chunk in group.chunks {
            match chunk {
                Chunk::Copy(pages) => encoded.push(Some(vec![pages])),
                Chunk::Encode(array) => {
                    to_encode.push((encoded.len(), array));
                    encoded.push(None);
                }
            }
        }
    }
    let mut written = 0;
    let mut write_ready = |encoded: &mut [Option<Vec<Vec<CompressedPage>>>]| {
        while let Some(&rows) = heights.get(written) {
            let cells = &mut encoded[written * width..(written + 1) * width];
            if cells.iter().any(Option::is_none) {
                break;
            }
            let leaves: Vec<Vec<CompressedPage>> = cells
                .iter_mut()
                .flat_map(|cell| cell.take().into_iter().flatten())
                .collect();
            writer.write_row_group(rows as u64, &leaves)?;
            written += 1;
        }
        PolarsResult::Ok(())
    };
    let encode_cell = |(cell, array): &(usize, ArrayRef)| {
        let column = cell % width;
        array_to_columns(array, fields[column].clone(), options, &encodings[column])?
            .into_iter()
            .map(|leaf| compress_chunk(leaf.collect::<Result<_, _>>()?, options.compression))
            .collect::<PolarsResult<Vec<_>>>()
    };
    on_cores(&to_encode, encode_cell, |i, pages| {
        encoded[to_encode[i].0] = Some(pages);
        write_ready(&mut encoded)
    })?;
    // Row groups whose cells are all copied, or that have no columns, wait for nothing.
    write_ready(&mut encoded)?;
    writer.finish()?;
    Ok(())
}

/// The pages of one column chunk compressed with `codec`, or uncompressed when `codec` is Snappy
/// or LZ4 and shrinks the chunk's first data page by less than a tenth: those codecs are chosen
/// for speed, and spend it for nothing on text ids and most floats. Parquet names the codec of
/// each column chunk, and every reader reads either.
fn compress_chunk(
    pages: Vec<Page>,
    codec: CompressionOptions,
) -> PolarsResult<Vec<CompressedPage>> {
    let fast = matches!(
        codec,
        CompressionOptions::Snappy | CompressionOptions::Lz4Raw
    );
    let sample = pages.iter().enumerate().find_map(|(at, page)| match page {
        Page::Data(data) if fast => Some((at, data.clone())),
        _ => None,
    });
    let (mut codec, mut trial) = (codec, None);
    if let Some((at, data)) = sample {
        match compress(Page::Data(data), Vec::new(), codec)? {
            CompressedPage::Data(page)
                if page.compressed_size() * 10 > page.uncompressed_size() * 9 =>
            {
                codec = CompressionOptions::Uncompressed;
            }
            page => trial = Some((at, page)),
        }
    }
    let compressed =
        pages
            .into_iter()
            .enumerate()
            .map(|(i, page)| match trial.take_if(|(at, _)| *at == i) {
                Some((_, page)) => Ok(page),
                None => compress(page, Vec::new(), codec),
            });
    Ok(compressed.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adds column `at`, a UTC time every `step_ms` from the epoch, one per row.
    fn with_utc_times(frame: &mut DataFrame, step_ms: i64) {
        let times = (0..frame.height() as i64).map(|i| i * step_ms);
        let at = Series::new("at".into(), times.collect::<Vec<_>>())
            .into_datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC));
        frame.with_column(at.into_column()).unwrap();
    }

    #[test]
    fn a_file_over_several_row_groups_is_the_file_polars_writes() {
        let rows = ROW_GROUP_ROWS * 2 + 1_000;
        let mut frame = df!(
            "entity" => (0..rows).map(|i| format!("entity-{}", i % 997)).collect::<Vec<_>>(),
            "value" => (0..rows).map(|i| (i % 5 != 0).then_some(i as f64 / 3.0)).collect::<Vec<_>>(),
            "count" => (0..rows).map(|i| (i % 7 != 0).then_some(i as i64)).collect::<Vec<_>>(),
            "unique" => (0..rows).map(|i| (i % 11 != 0).then(|| format!("{i:x}"))).collect::<Vec<_>>(),
            "flag" => (0..rows).map(|i| (i % 13 != 0).then_some(i % 2 == 0)).collect::<Vec<_>>(),
        )
        .unwrap();
        with_utc_times(&mut frame, 1_000);
        let compression = ParquetCompression::Zstd(None);
        let ours = encode(&mut frame, compression).unwrap();
        let mut theirs = Vec::new();
        ParquetWriter::new(&mut theirs)
            .with_compression(compression)
            .finish(&mut frame)
            .unwrap();

        assert_eq!(ours, theirs, "the same file as Polars' writer");
        let back = ParquetReader::new(std::io::Cursor::new(ours))
            .finish()
            .unwrap();
        assert!(back.equals_missing(&frame), "the file holds the frame");
    }

    #[test]
    fn snappy_and_lz4_leave_uncompressed_a_column_they_barely_shrink() {
        use polars_parquet::parquet::compression::Compression;
        let rows = 50_000;
        let mut seed = 7u64;
        let mut frame = df!(
            // Hex of a scrambled counter: LZ codecs find nothing to repeat in it.
            "id" => (0..rows).map(|_| {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                format!("{seed:016x}{:016x}", seed.rotate_left(29))
            }).collect::<Vec<_>>(),
            "status" => (0..rows).map(|i| ["PLACED", "CONCLUDED"][i % 7 / 6]).collect::<Vec<_>>(),
            "amount" => (0..rows).map(|i| (i % 40) as f64 * 2.5).collect::<Vec<_>>(),
        )
        .unwrap();
        for (codec, expected) in [
            (ParquetCompression::Snappy, Compression::Snappy),
            (ParquetCompression::Lz4Raw, Compression::Lz4Raw),
            (ParquetCompression::Zstd(None), Compression::Zstd),
        ] {
            let bytes = encode(&mut frame, codec).unwrap();
            let groups = codecs(&bytes);
            assert!(!groups.is_empty());
            for codecs in groups {
                let id = if expected == Compression::Zstd {
                    expected
                } else {
                    Compression::Uncompressed
                };
                assert_eq!(codecs, [id, expected, expected], "{codec:?}");
            }
            let back = ParquetReader::new(std::io::Cursor::new(bytes))
                .finish()
                .unwrap();
            assert!(
                back.equals_missing(&frame),
                "{codec:?}: the file holds the frame"
            );
        }
    }

    #[test]
    fn an_empty_frame_is_a_file_with_its_schema() {
        let mut frame =
            df!("entity" => Vec::<String>::new(), "value" => Vec::<f64>::new()).unwrap();
        let bytes = encode(&mut frame, ParquetCompression::Zstd(None)).unwrap();
        let back = ParquetReader::new(std::io::Cursor::new(bytes))
            .finish()
            .unwrap();
        assert_eq!(back.schema(), frame.schema());
        assert_eq!(back.height(), 0);
    }

    /// A table of several row groups, with nulls and a zoned time, as Polars writes it (zstd).
    fn stored_table(rows: usize) -> (DataFrame, Vec<u8>) {
        let mut frame = df!(
            "merchant_id" => (0..rows).map(|i| (i % 9 != 0).then(|| format!("m-{}", i % 31))).collect::<Vec<_>>(),
            "label" => (0..rows).map(|i| (i % 2) as i8).collect::<Vec<_>>(),
            "score" => (0..rows).map(|i| (i % 5 != 0).then_some(i as f64 / 7.0)).collect::<Vec<_>>(),
            "flag" => (0..rows).map(|i| i % 3 == 0).collect::<Vec<_>>(),
        )
        .unwrap();
        with_utc_times(&mut frame, 60_000);
        let mut bytes = Vec::new();
        ParquetWriter::new(&mut bytes)
            .with_row_group_size(Some(rows / 3))
            .finish(&mut frame)
            .unwrap();
        (frame, bytes)
    }

    fn codecs(bytes: &[u8]) -> Vec<Vec<polars_parquet::parquet::compression::Compression>> {
        let metadata = read_metadata(&mut Cursor::new(bytes)).unwrap();
        metadata
            .row_groups
            .iter()
            .map(|group| {
                group
                    .parquet_columns()
                    .iter()
                    .map(|c| c.compression())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn stored_columns_are_copied_beside_new_ones_in_their_row_groups() {
        use polars_parquet::parquet::compression::Compression;
        let rows = 10_000;
        let (table, bytes) = stored_table(rows);
        let stored = StoredColumns::read(&Buffer::from(bytes.clone()))
            .unwrap()
            .expect("a table Polars wrote can be copied");
        assert_eq!(
            stored.names().collect::<Vec<_>>(),
            ["merchant_id", "label", "score", "flag", "at"]
        );
        let added = df!(
            "restaurant__orders_7d" => (0..rows).map(|i| (i % 4 != 0).then_some(i as i64)).collect::<Vec<_>>(),
            "restaurant__last_status" => (0..rows).map(|i| ["PLACED", "CONCLUDED"][i % 2]).collect::<Vec<_>>(),
        )
        .unwrap();
        let mut set = Vec::new();
        stored
            .write_beside(&added, ParquetCompression::Snappy, &mut set)
            .unwrap();

        let back = ParquetReader::new(Cursor::new(set.as_slice()))
            .finish()
            .unwrap();
        let expected = table.hstack(added.columns()).unwrap();
        assert!(back.equals_missing(&expected), "{back} against {expected}");
        // The table's row groups kept; its chunks still zstd (copied), the new ones Snappy (or
        // uncompressed, where Snappy barely shrinks them).
        let (theirs, ours) = (codecs(&bytes), codecs(&set));
        assert_eq!(ours.len(), 3, "{ours:?}");
        assert_eq!(ours.len(), theirs.len());
        for (ours, theirs) in ours.iter().zip(&theirs) {
            assert_eq!(ours[..5], theirs[..], "copied as stored");
            assert!(theirs.iter().all(|c| *c == Compression::Zstd));
            assert!(ours[5..].contains(&Compression::Snappy), "{ours:?}");
            assert!(!ours[5..].contains(&Compression::Zstd), "{ours:?}");
        }
    }

    #[test]
    fn columns_beside_stored_ones_must_have_as_many_rows() {
        let (_, bytes) = stored_table(100);
        let stored = StoredColumns::read(&Buffer::from(bytes)).unwrap().unwrap();
        let added = df!("x" => [1i64, 2, 3]).unwrap();
        let error = stored
            .write_beside(&added, ParquetCompression::Snappy, &mut Vec::new())
            .unwrap_err();
        assert!(error.to_string().contains("3 rows beside 100"), "{error}");
    }

    #[test]
    fn a_table_without_page_statistics_or_with_nested_columns_is_not_copied() {
        let (mut table, _) = stored_table(100);
        let mut bare = Vec::new();
        ParquetWriter::new(&mut bare)
            .with_statistics(StatisticsOptions::empty())
            .finish(&mut table)
            .unwrap();
        assert!(StoredColumns::read(&Buffer::from(bare)).unwrap().is_none());

        let mut nested =
            df!("ids" => [Series::new("".into(), [1i64, 2]), Series::new("".into(), [3i64])])
                .unwrap();
        let mut bytes = Vec::new();
        ParquetWriter::new(&mut bytes).finish(&mut nested).unwrap();
        assert!(StoredColumns::read(&Buffer::from(bytes)).unwrap().is_none());
    }
}
