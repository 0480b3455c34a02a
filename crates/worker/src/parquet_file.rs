//! Parquet files encoded on every core.
//!
//! Polars' `ParquetWriter` hands its file writer each column's pages as iterators that encode
//! and compress a page when the writer asks for it: most of a write runs on the writing thread.
//! Here every (row group, column) is encoded and compressed on its own, on every core, and each
//! row group is written as soon as all its columns are ready, while later ones are still being
//! encoded: byte for byte the file Polars' own writer makes, but that Snappy and LZ4 leave
//! uncompressed a column chunk they barely shrink.

use std::io::Write;

use polars::{frame::chunk_df_for_writing, prelude::*};
use polars_parquet::write::{
    CompressedPage, CompressionOptions, Page, Version, WriteOptions, array_to_columns, compress,
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
    let encodings = get_encodings(&frame.schema().to_arrow(CompatLevel::newest()));
    let mut writer = ParquetWriter::new(sink)
        .with_compression(compression)
        .batched(frame.schema())?;
    let fields = writer.parquet_schema().fields().to_vec();
    let options = WriteOptions {
        statistics: StatisticsOptions::default(),
        compression: compression.into(),
        version: Version::V1,
        data_page_size: None,
    };
    let row_groups: Vec<_> = frame
        .iter_chunks(CompatLevel::newest(), false)
        .filter(|group| !group.is_empty())
        .collect();
    let width = fields.len();
    let cells: Vec<(usize, usize)> = (0..row_groups.len())
        .flat_map(|group| (0..width).map(move |column| (group, column)))
        .collect();
    // Per cell, the pages of each of its Parquet leaf columns, until its row group is written.
    let mut encoded: Vec<Option<Vec<Vec<CompressedPage>>>> = cells.iter().map(|_| None).collect();
    let mut written = 0;
    let mut write_ready = |encoded: &mut [Option<Vec<Vec<CompressedPage>>>]| {
        while let Some(group) = row_groups.get(written) {
            let cells = &mut encoded[written * width..(written + 1) * width];
            if cells.iter().any(Option::is_none) {
                break;
            }
            let leaves: Vec<Vec<CompressedPage>> = cells
                .iter_mut()
                .flat_map(|cell| cell.take().into_iter().flatten())
                .collect();
            writer.write_row_group(group.len() as u64, &leaves)?;
            written += 1;
        }
        PolarsResult::Ok(())
    };
    let encode_cell = |&(group, column): &(usize, usize)| {
        let array = &row_groups[group].columns()[column];
        array_to_columns(array, fields[column].clone(), options, &encodings[column])?
            .into_iter()
            .map(|leaf| compress_chunk(leaf.collect::<Result<_, _>>()?, options.compression))
            .collect::<PolarsResult<Vec<_>>>()
    };
    on_cores(&cells, encode_cell, |cell, pages| {
        encoded[cell] = Some(pages);
        write_ready(&mut encoded)
    })?;
    // Row groups without columns have no cells to wait for.
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
        frame
            .with_column(
                Series::new(
                    "at".into(),
                    (0..rows as i64).map(|i| i * 1_000).collect::<Vec<_>>(),
                )
                .into_datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
                .into_column(),
            )
            .unwrap();
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
        use polars_parquet::parquet::{compression::Compression, read::read_metadata};
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
            let metadata = read_metadata(&mut std::io::Cursor::new(&bytes)).unwrap();
            assert!(!metadata.row_groups.is_empty());
            for group in &metadata.row_groups {
                let codecs: Vec<Compression> = group
                    .parquet_columns()
                    .iter()
                    .map(|column| column.compression())
                    .collect();
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
}
