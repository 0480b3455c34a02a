//! The original Airflow DAG's `simple_feature` — average `order_total_amount` per `cpf` — over
//! the bronze orders, with Polars; written to `{results_dir}/simple_feature/` and
//! `gold/simple_feature/`, then materialized into Redis (`rtf_simple_feature:{cpf}`).

use std::path::Path;

use larder_domain::Timestamp;
use larder_usecases::{BatchFeatureStore, ObjectStore};
use polars::prelude::*;

use crate::LakeError;

pub const GOLD_KEY: &str = "gold/simple_feature/part-00000.parquet";
const RESULT_FILE: &str = "simple_feature/part-00000.parquet";

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SimpleFeatureSummary {
    pub orders_in: u64,
    pub rows_out: u64,
    pub objects: Vec<String>,
    pub materialized: u64,
}

/// `cpf`, `avg_order_total_amount`, `orders`, `computed_at` from the bronze orders under
/// `lake_dir`. An order logged more than once (an update) counts once, in its latest version —
/// what `raw_order:{id}` held for the original DAG.
///
/// # Errors
/// When Polars fails to read or compute.
pub fn compute_simple_feature(
    lake_dir: &Path,
    computed_at: Timestamp,
) -> PolarsResult<(DataFrame, u64)> {
    let pattern = lake_dir.join("bronze/order/*/*.parquet");
    let has_files =
        std::fs::read_dir(lake_dir.join("bronze/order")).is_ok_and(|mut d| d.next().is_some());
    if !has_files {
        let empty = DataFrame::new_infer_height(vec![
            Series::new_empty("cpf".into(), &DataType::String).into_column(),
            Series::new_empty("avg_order_total_amount".into(), &DataType::Float64).into_column(),
            Series::new_empty("orders".into(), &DataType::UInt32).into_column(),
        ])?;
        return Ok((with_time(empty, computed_at)?, 0));
    }
    let orders = LazyFrame::scan_parquet(
        PlRefPath::new(pattern.to_string_lossy().as_ref()),
        crate::lake_scan_args(),
    )?
    .select([
        col("cpf"),
        col("order_id"),
        col("order_total_amount"),
        col("_ingested_at"),
        col("_stream_seq"),
    ])
    .sort(
        ["_ingested_at", "_stream_seq"],
        SortMultipleOptions::default(),
    )
    .group_by([col("order_id")])
    .agg([col("cpf").last(), col("order_total_amount").last()])
    // Collected once: the count below and the averages share the scan and the dedupe.
    .collect()?;
    let orders_in = orders.height() as u64;
    let frame = orders
        .lazy()
        .group_by([col("cpf")])
        .agg([
            col("order_total_amount")
                .mean()
                .alias("avg_order_total_amount"),
            len().alias("orders"),
        ])
        .sort(["cpf"], SortMultipleOptions::default())
        .collect()?;
    Ok((with_time(frame, computed_at)?, orders_in))
}

fn with_time(frame: DataFrame, computed_at: Timestamp) -> PolarsResult<DataFrame> {
    frame
        .lazy()
        .with_column(
            lit(computed_at.millis())
                .cast(DataType::Datetime(TimeUnit::Milliseconds, None))
                .alias("computed_at"),
        )
        .collect()
}

/// Computes `simple_feature` and writes it to the results directory and the lake's gold zone.
///
/// # Errors
/// [`LakeError::Store`] when objects cannot be read or written, [`LakeError::Encode`] when
/// Polars fails.
pub async fn run_simple_feature(
    store: &dyn ObjectStore,
    cache: &Path,
    results_dir: &Path,
) -> Result<(DataFrame, SimpleFeatureSummary), LakeError> {
    let lake_dir = store.local_copy("bronze/order/", cache).await?;
    let computed_at = Timestamp::now();
    let (mut frame, orders_in) =
        tokio::task::spawn_blocking(move || compute_simple_feature(&lake_dir, computed_at))
            .await
            .map_err(|e| LakeError::Encode(e.to_string()))?
            .map_err(|e| LakeError::Encode(e.to_string()))?;
    let mut bytes = Vec::new();
    ParquetWriter::new(&mut bytes)
        .finish(&mut frame)
        .map_err(|e| LakeError::Encode(e.to_string()))?;
    let results = larder_s3::LocalDirectory::new(results_dir);
    results.put(RESULT_FILE, bytes.clone()).await?;
    store.put(GOLD_KEY, bytes).await?;
    let summary = SimpleFeatureSummary {
        orders_in,
        rows_out: frame.height() as u64,
        objects: vec![
            results_dir.join(RESULT_FILE).display().to_string(),
            GOLD_KEY.to_owned(),
        ],
        materialized: 0,
    };
    Ok((frame, summary))
}

/// Writes `simple_feature` rows into Redis as `rtf_simple_feature:{cpf}` with
/// `avg_order_total_amount`, `orders` and `computed_at`.
///
/// # Errors
/// [`LakeError::Store`] when Redis fails, [`LakeError::Encode`] for an unexpected frame.
pub async fn materialize_simple_feature(
    frame: &DataFrame,
    features: &dyn BatchFeatureStore,
) -> Result<u64, LakeError> {
    let encode = |e: PolarsError| LakeError::Encode(e.to_string());
    let cpf = frame.column("cpf").map_err(encode)?.str().map_err(encode)?;
    let avg = frame
        .column("avg_order_total_amount")
        .map_err(encode)?
        .f64()
        .map_err(encode)?;
    let orders = frame
        .column("orders")
        .map_err(encode)?
        .cast(&DataType::UInt64)
        .map_err(encode)?;
    let orders = orders.u64().map_err(encode)?;
    let computed = frame
        .column("computed_at")
        .map_err(encode)?
        .cast(&DataType::Int64)
        .map_err(encode)?;
    let computed = computed.i64().map_err(encode)?;
    let mut rows = Vec::with_capacity(frame.height());
    for i in 0..frame.height() {
        let (Some(cpf), Some(avg)) = (cpf.get(i), avg.get(i)) else {
            continue;
        };
        let computed_at = computed
            .get(i)
            .and_then(Timestamp::from_millis)
            .map(|t| t.to_string())
            .unwrap_or_default();
        rows.push((
            cpf.to_owned(),
            vec![
                ("avg_order_total_amount".to_owned(), avg.to_string()),
                ("orders".to_owned(), orders.get(i).unwrap_or(0).to_string()),
                ("computed_at".to_owned(), computed_at),
            ],
        ));
    }
    Ok(features.write("simple_feature", rows).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_lake_gives_an_empty_simple_feature_with_every_column() {
        let dir = std::env::temp_dir().join(format!("larder-empty-lake-{}", std::process::id()));
        let (frame, orders) = compute_simple_feature(&dir, Timestamp::now()).unwrap();
        assert_eq!((frame.height(), orders), (0, 0));
        let names: Vec<&str> = frame
            .get_column_names()
            .into_iter()
            .map(|n| n.as_str())
            .collect();
        assert_eq!(
            names,
            ["cpf", "avg_order_total_amount", "orders", "computed_at"]
        );
    }
}
