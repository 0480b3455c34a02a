//! The offline half against real Redis and a real S3-compatible server: the event log flushed to
//! the Parquet lake once per event (also across a crash), `simple_feature` against averages
//! computed here from the sample rows, materialized and served, and backpressure.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::{
    collections::{HashMap, HashSet},
    path::Path,
    sync::atomic::{AtomicBool, Ordering},
};

use async_trait::async_trait;
use larder_domain::Source;
use larder_e2e::{
    TestApp, order_event, read_csv_events, samples_dir, temp_dir, test_s3_settings, test_settings,
};
use larder_redis::{RedisBatchFeatures, RedisEventLog};
use larder_s3::{LocalDirectory, S3Location, S3Store};
use larder_usecases::{Backlog, EventLog, LoggedEvent, ObjectStore, StoreError};
use larder_worker::{
    compact_bronze, flush_source, materialize_simple_feature, read_bronze, run_feature_history,
    run_simple_feature,
};
use polars::prelude::*;
use serde_json::{Value, json};

/// Every row of every bronze object of `source` under a local lake directory, whether or not
/// readers use the object (the parts of a compacted object are not used).
fn bronze(lake: &Path, source: Source) -> DataFrame {
    let pattern = lake.join(format!("bronze/{source}/*/*.parquet"));
    let path = pattern.to_string_lossy().into_owned();
    std::thread::spawn(move || {
        LazyFrame::scan_parquet(
            PlRefPath::new(path.as_str()),
            larder_worker::lake_scan_args(),
        )
        .unwrap()
        .collect()
        .unwrap()
    })
    .join()
    .unwrap()
}

fn strings(frame: &DataFrame, column: &str) -> Vec<String> {
    let values = frame.column(column).unwrap().str().unwrap().clone();
    (0..values.len())
        .filter_map(|i| values.get(i).map(str::to_owned))
        .collect()
}

fn floats(frame: &DataFrame, column: &str) -> Vec<f64> {
    let values = frame.column(column).unwrap().f64().unwrap().clone();
    (0..values.len()).filter_map(|i| values.get(i)).collect()
}

fn distinct_stream_ids(frame: &DataFrame) -> usize {
    strings(frame, "_stream_id")
        .into_iter()
        .collect::<HashSet<_>>()
        .len()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lake_holds_every_event_once_and_simple_feature_matches_the_rows() {
    let Some(dir) = samples_dir() else {
        eprintln!("skipped: ../shared/ifood-sample not found (set LARDER_SAMPLES_DIR)");
        return;
    };
    let orders = read_csv_events(&dir.join("order_sample.csv"));
    let app = TestApp::spawn().await;
    app.post_batches("order", &orders).await;
    app.post_batches("restaurant", &read_csv_events(&dir.join("restaurant.csv")))
        .await;
    app.post_batches("status", &read_csv_events(&dir.join("status_sample.csv")))
        .await;

    let lake = temp_dir("larder-lake");
    let store = LocalDirectory::new(&lake);
    let log = app.event_log();
    for source in [Source::Order, Source::Restaurant, Source::Status] {
        let summary = flush_source(&log, &log, &store, source, 300, 100)
            .await
            .unwrap();
        assert!(
            summary.batches > 1,
            "{source}: one batch proves little about batching"
        );
        assert_eq!(
            app.stream_len(&format!("events:{source}")).await,
            0,
            "{source} not trimmed"
        );
    }
    for (source, events) in [
        (Source::Order, 1_000),
        (Source::Restaurant, 7_292),
        (Source::Status, 644),
    ] {
        let rows = bronze(&lake, source);
        assert_eq!(
            (rows.height(), distinct_stream_ids(&rows)),
            (events, events),
            "{source}"
        );
    }
    // Typed columns, items kept as JSON text, partitioned by event date.
    let orders_frame = bronze(&lake, Source::Order);
    assert_eq!(
        orders_frame.column("order_total_amount").unwrap().dtype(),
        &DataType::Float64
    );
    assert!(matches!(
        orders_frame.column("order_created_at").unwrap().dtype(),
        DataType::Datetime(_, _)
    ));
    assert_eq!(
        orders_frame.column("items").unwrap().dtype(),
        &DataType::String
    );
    let keys = store.list("bronze/order/").await.unwrap();
    assert!(
        keys.iter()
            .all(|k| k.starts_with("bronze/order/date=2019-01-")),
        "{keys:?}"
    );

    let results = temp_dir("larder-results");
    let (frame, summary) = run_simple_feature(&store, &temp_dir("larder-cache"), &results)
        .await
        .unwrap();
    assert!(results.join("simple_feature/part-00000.parquet").is_file());
    assert!(
        store
            .get("gold/simple_feature/part-00000.parquet")
            .await
            .unwrap()
            .is_some()
    );
    let mut expected: HashMap<String, (f64, u32)> = HashMap::new();
    for order in &orders {
        let entry = expected
            .entry(order["cpf"].as_str().unwrap().to_owned())
            .or_default();
        entry.0 += order["order_total_amount"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap();
        entry.1 += 1;
    }
    assert_eq!(
        (summary.orders_in, summary.rows_out),
        (1_000, expected.len() as u64)
    );
    for (cpf, average) in strings(&frame, "cpf")
        .into_iter()
        .zip(floats(&frame, "avg_order_total_amount"))
    {
        let (sum, count) = expected[&cpf];
        assert!((average - sum / f64::from(count)).abs() < 1e-9, "{cpf}");
    }

    let features = RedisBatchFeatures::new(
        larder_redis::connect(&app.settings.redis).unwrap(),
        &app.settings.redis,
    );
    assert_eq!(
        materialize_simple_feature(&frame, &features).await.unwrap(),
        expected.len() as u64
    );
    let cpf = orders[0]["cpf"].as_str().unwrap();
    let served: Value = app
        .get_json(&format!("/real-time-fs/get/simple_feature/{cpf}"))
        .await;
    let (sum, count) = expected[cpf];
    assert_eq!(
        served["value"]["avg_order_total_amount"].as_f64().unwrap(),
        sum / f64::from(count)
    );
    assert_eq!(served["value"]["orders"], json!(count));
    assert!(
        served["value"]["computed_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    app.cleanup().await;
}

/// An event log whose first acknowledgement fails: the process "dies" after writing objects.
struct DiesBeforeAcknowledging<'a> {
    inner: &'a RedisEventLog,
    died: AtomicBool,
}

#[async_trait]
impl EventLog for DiesBeforeAcknowledging<'_> {
    async fn claim(&self, source: Source, max: usize) -> Result<Vec<LoggedEvent>, StoreError> {
        self.inner.claim(source, max).await
    }

    async fn acknowledge(&self, source: Source, ids: &[String]) -> Result<(), StoreError> {
        if !self.died.swap(true, Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                "killed between write and acknowledge".into(),
            ));
        }
        self.inner.acknowledge(source, ids).await
    }

    async fn backlog(&self, source: Source) -> Result<Backlog, StoreError> {
        self.inner.backlog(source).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flush_killed_before_acknowledging_is_redone_without_duplicates_or_gaps() {
    let app = TestApp::spawn().await;
    let orders: Vec<Value> = (0..450)
        .map(|i| {
            order_event(
                &format!("o{i}"),
                "r1",
                "c1",
                10.0,
                &format!("2019-01-{:02}T10:00:00.000Z", 1 + i % 3),
            )
        })
        .collect();
    app.post_batches("order", &orders).await;
    let lake = temp_dir("larder-lake");
    let store = LocalDirectory::new(&lake);
    let log = app.event_log();
    let dying = DiesBeforeAcknowledging {
        inner: &log,
        died: AtomicBool::new(false),
    };

    assert!(
        flush_source(&dying, &log, &store, Source::Order, 200, 10)
            .await
            .is_err()
    );
    let written = store.list("bronze/order/").await.unwrap();
    assert_eq!(
        written.len(),
        3,
        "the first batch's three dates were written"
    );
    assert_eq!(
        app.stream_len("events:order").await,
        450,
        "nothing may be trimmed before it is acknowledged"
    );
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let backlog = log.backlog(Source::Order).await.unwrap();
    assert_eq!(backlog.entries, 450, "a claimed batch still waits");
    assert!(
        backlog
            .oldest_age_ms
            .is_some_and(|age| (20..60_000).contains(&age)),
        "{backlog:?}"
    );

    // New events arrive meanwhile; the rerun, even with larger batches, still takes the
    // unacknowledged batch first, exactly as it was.
    app.post_batches(
        "order",
        &[order_event(
            "late",
            "r1",
            "c1",
            1.0,
            "2019-01-05T10:00:00.000Z",
        )],
    )
    .await;
    let summary = flush_source(&dying, &log, &store, Source::Order, 1000, 10)
        .await
        .unwrap();
    assert_eq!(summary.rows, 451);
    assert_eq!(
        log.backlog(Source::Order).await.unwrap(),
        Backlog::default()
    );
    assert!(
        written.iter().all(|k| summary.objects.contains(k)),
        "the batch was rewritten under the same names, not taken again with more entries"
    );
    let rows = bronze(&lake, Source::Order);
    assert_eq!((rows.height(), distinct_stream_ids(&rows)), (451, 451));
    assert_eq!(app.stream_len("events:order").await, 0);
    app.cleanup().await;
}

/// `cpf` → average, from a `simple_feature` frame.
fn averages(frame: &DataFrame) -> HashMap<String, f64> {
    strings(frame, "cpf")
        .into_iter()
        .zip(floats(frame, "avg_order_total_amount"))
        .collect()
}

/// Whether the rows of `frame` are in log order.
fn in_log_order(frame: &DataFrame) -> bool {
    let ids: Vec<(u64, u64)> = strings(frame, "_stream_id")
        .iter()
        .map(|id| {
            let (ms, seq) = id.split_once('-').unwrap();
            (ms.parse().unwrap(), seq.parse().unwrap())
        })
        .collect();
    ids.windows(2).all(|pair| pair[0] < pair[1])
}

#[tokio::test(flavor = "multi_thread")]
async fn compaction_merges_partitions_and_every_reader_sees_each_event_once() {
    let app = TestApp::spawn().await;
    let orders: Vec<Value> = (0..240)
        .map(|i| {
            let mut order = order_event(
                &format!("o{i}"),
                "r1",
                "c1",
                f64::from(i % 7),
                &format!("2019-01-{:02}T10:00:00.000Z", 1 + i % 3),
            );
            order["cpf"] = json!(format!("cpf{}", i % 5));
            order
        })
        .collect();
    app.post_batches("order", &orders).await;
    let lake = temp_dir("larder-lake");
    let store = LocalDirectory::new(&lake);
    let log = app.event_log();
    flush_source(&log, &log, &store, Source::Order, 30, 100)
        .await
        .unwrap();
    let parts = store.list("bronze/order/").await.unwrap();
    assert_eq!(parts.len(), 24, "8 batches × 3 dates");
    let leftover = store.get(&parts[0]).await.unwrap().unwrap();
    let cache = temp_dir("larder-cache");
    let results = temp_dir("larder-results");
    let (before, _) = run_simple_feature(&store, &cache, &results).await.unwrap();

    let summary = compact_bronze(&store, 8).await.unwrap();
    assert_eq!(
        (
            summary.partitions,
            summary.objects_merged,
            summary.rows,
            summary.leftovers_deleted
        ),
        (3, 24, 240, 0)
    );
    let mut merged = store.list("bronze/order/").await.unwrap();
    assert_eq!(merged, summary.objects_written, "one object per date");
    let rows = bronze(&lake, Source::Order);
    assert_eq!((rows.height(), distinct_stream_ids(&rows)), (240, 240));
    for key in &merged {
        let bytes = store.get(key).await.unwrap().unwrap();
        let object = ParquetReader::new(std::io::Cursor::new(bytes))
            .finish()
            .unwrap();
        assert_eq!(object.height(), 80, "{key}");
        assert!(in_log_order(&object), "{key}");
    }
    let (after, _) = run_simple_feature(&store, &cache, &results).await.unwrap();
    assert_eq!(averages(&after), averages(&before));

    // A crash between writing a merged object and deleting its parts leaves a part behind (a
    // flush rewriting an unacknowledged batch looks the same): readers skip it.
    store.put(&parts[0], leftover).await.unwrap();
    assert_eq!(bronze(&lake, Source::Order).height(), 250);
    let read = read_bronze(&lake, Source::Order, &[]).unwrap().unwrap();
    assert_eq!((read.height(), distinct_stream_ids(&read)), (240, 240));
    let views = std::sync::Arc::new(app.settings.features.load_views().unwrap());
    let history = run_feature_history(&store, &cache, views).await.unwrap();
    assert_eq!(history["rows_in"], 240);
    let (again, _) = run_simple_feature(&store, &cache, &results).await.unwrap();
    assert_eq!(averages(&again), averages(&before));
    // The next run deletes it, and has nothing to merge.
    let summary = compact_bronze(&store, 8).await.unwrap();
    assert_eq!((summary.partitions, summary.leftovers_deleted), (0, 1));
    assert_eq!(store.list("bronze/order/").await.unwrap(), merged);

    // Later batches are objects beside the merged ones, read with them.
    app.post_batches(
        "order",
        &[order_event(
            "late",
            "r1",
            "c1",
            1.0,
            "2019-01-02T12:00:00.000Z",
        )],
    )
    .await;
    let flushed = flush_source(&log, &log, &store, Source::Order, 30, 100)
        .await
        .unwrap();
    merged.extend(flushed.objects);
    merged.sort();
    assert_eq!(store.list("bronze/order/").await.unwrap(), merged);
    let read = read_bronze(&lake, Source::Order, &[]).unwrap().unwrap();
    assert_eq!(read.height(), 241);
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lake_works_the_same_on_s3() {
    let app = TestApp::spawn().await;
    let orders: Vec<Value> = (0..30)
        .map(|i| {
            let mut order = order_event(
                &format!("o{i}"),
                "r1",
                "c1",
                f64::from(i),
                "2019-01-02T10:00:00.000Z",
            );
            order["cpf"] = json!(if i % 2 == 0 { "111" } else { "222" });
            order
        })
        .collect();
    app.post_batches("order", &orders).await;
    let client = larder_s3::s3_client(&test_s3_settings()).await;
    let bucket = format!("lake-{}", std::process::id());
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    let store = S3Store::new(
        client,
        &S3Location {
            bucket,
            key: "lake".into(),
        },
    );
    let log = app.event_log();
    let summary = flush_source(&log, &log, &store, Source::Order, 10, 10)
        .await
        .unwrap();
    assert_eq!((summary.rows, summary.objects.len()), (30, 3));
    assert!(summary.objects[0].starts_with("bronze/order/date=2019-01-02/"));

    let (cache, results) = (temp_dir("larder-cache"), temp_dir("larder-results"));
    let (frame, _) = run_simple_feature(&store, &cache, &results).await.unwrap();
    // Even i (0..28) average 14, odd i (1..29) average 15.
    let expected = HashMap::from([("111".to_owned(), 14.0), ("222".to_owned(), 15.0)]);
    assert_eq!(averages(&frame), expected);

    // Compacted in the bucket; the worker's local copy follows (the parts leave it too).
    let compacted = compact_bronze(&store, 2).await.unwrap();
    assert_eq!((compacted.objects_merged, compacted.rows), (3, 30));
    assert_eq!(
        store.list("bronze/").await.unwrap(),
        compacted.objects_written
    );
    let (frame, _) = run_simple_feature(&store, &cache, &results).await.unwrap();
    assert_eq!(averages(&frame), expected);
    assert_eq!(
        LocalDirectory::new(&cache).list("bronze/").await.unwrap(),
        compacted.objects_written
    );
    assert!(
        store
            .get("gold/simple_feature/part-00000.parquet")
            .await
            .unwrap()
            .is_some()
    );
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_event_log_answers_503_until_the_lake_catches_up() {
    let mut settings = test_settings();
    settings.redis.max_stream_backlog = 3;
    let app = TestApp::spawn_with(settings).await;
    let orders: Vec<Value> = (0..4)
        .map(|i| {
            order_event(
                &format!("o{i}"),
                "r1",
                "c1",
                1.0,
                "2019-01-02T10:00:00.000Z",
            )
        })
        .collect();
    for order in &orders[..3] {
        assert_eq!(app.post_json("/order-event/", order).await.status(), 200);
    }
    let refused = app.post_json("/order-event/", &orders[3]).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "5");
    assert_eq!(
        refused.json::<Value>().await.unwrap()["code"],
        "backlog_full"
    );
    assert!(
        !app.keys().await.contains(&"raw_order:o3".to_owned()),
        "a refused event was stored"
    );

    let log = app.event_log();
    flush_source(
        &log,
        &log,
        &LocalDirectory::new(temp_dir("larder-lake")),
        Source::Order,
        100,
        10,
    )
    .await
    .unwrap();
    assert_eq!(
        app.post_json("/order-event/", &orders[3]).await.status(),
        200
    );
    app.cleanup().await;
}

/// Sums tile values of `entity`/`measure`/`tier` in a view's gold tiles (every date partition).
fn tile_total(lake: &Path, view: &str, entity: &str, measure: &str, tier: &str) -> i64 {
    let path = lake.join(format!("gold/{view}/tiles/*/*.parquet"));
    let (entity, measure, tier) = (entity.to_owned(), measure.to_owned(), tier.to_owned());
    std::thread::spawn(move || {
        let frame = LazyFrame::scan_parquet(
            PlRefPath::new(path.to_string_lossy().as_ref()),
            larder_worker::lake_scan_args(),
        )
        .unwrap()
        .filter(
            col("entity")
                .eq(lit(entity))
                .and(col("measure").eq(lit(measure)))
                .and(col("tier").eq(lit(tier))),
        )
        .select([col("value").sum()])
        .collect()
        .unwrap();
        frame
            .column("value")
            .unwrap()
            .i64()
            .unwrap()
            .get(0)
            .unwrap_or(0)
    })
    .join()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn feature_history_writes_every_view_as_change_rows_and_tiles() {
    let app = TestApp::spawn().await;
    // The cancellation arrives before its order: offline, the join resolves all the same.
    app.post_json(
        "/status-event/",
        &larder_e2e::status_event("s1", "o1", "CANCELLED", "2019-01-02T10:30:00.000Z"),
    )
    .await;
    app.post_json(
        "/restaurant-event/",
        &larder_e2e::restaurant_event("r1", 60.0),
    )
    .await;
    for (i, at) in [
        "2019-01-02T10:00:00.000Z",
        "2019-01-02T11:00:00.000Z",
        "2019-01-03T09:00:00.000Z",
    ]
    .iter()
    .enumerate()
    {
        app.post_json(
            "/order-event/",
            &order_event(
                &format!("o{}", i + 1),
                "r1",
                "c1",
                10.0 * (i as f64 + 1.0),
                at,
            ),
        )
        .await;
    }
    let lake = temp_dir("larder-lake");
    let store = LocalDirectory::new(&lake);
    let log = app.event_log();
    for source in Source::ALL {
        flush_source(&log, &log, &store, source, 100, 10)
            .await
            .unwrap();
    }
    let views = std::sync::Arc::new(app.settings.features.load_views().unwrap());
    let summary =
        larder_worker::run_feature_history(&store, &temp_dir("larder-cache"), views.clone())
            .await
            .unwrap();
    assert_eq!(summary["rows_in"], 5);
    // Partitioned by event date like bronze (2019-01-02 and 01-03 here); no object for a table
    // a view does not use.
    for (view, tables) in [
        (
            "restaurant",
            &["changes", "measures", "tiles", "distinct"][..],
        ),
        (
            "consumer",
            &["changes", "measures", "tiles", "distinct", "frequencies"][..],
        ),
        ("order", &["changes"][..]),
    ] {
        for table in larder_worker::GOLD_TABLES {
            let mut keys = store.list(&format!("gold/{view}/{table}/")).await.unwrap();
            keys.retain(|k| !k.contains("date=2017")); // the restaurant event
            let expected = if tables.contains(&table) { 2 } else { 0 };
            assert_eq!(keys.len(), expected, "{view}/{table}: {keys:?}");
        }
    }
    let restaurant = views.view("restaurant").unwrap();
    let measure = |kind: larder_domain::MeasureKind, source: Source, filtered: bool| {
        restaurant
            .measures
            .iter()
            .find(|m| m.kind == kind && m.source == source && m.filter.is_some() == filtered)
            .unwrap()
            .id
            .clone()
    };
    let orders = measure(larder_domain::MeasureKind::Count, Source::Order, false);
    let revenue = measure(larder_domain::MeasureKind::Sum, Source::Order, false);
    let cancellations = measure(larder_domain::MeasureKind::Count, Source::Status, true);
    // Both tiers hold every order; sums are fixed point (10⁻⁶), as online.
    assert_eq!(tile_total(&lake, "restaurant", "r1", &orders, "m"), 3);
    assert_eq!(tile_total(&lake, "restaurant", "r1", &orders, "h"), 3);
    assert_eq!(
        tile_total(&lake, "restaurant", "r1", &revenue, "h"),
        60_000_000
    );
    assert_eq!(
        tile_total(&lake, "restaurant", "r1", &cancellations, "h"),
        1
    );

    // Each order's contribution at its exact event time, for point-in-time windows.
    let contributions = {
        let path = lake.join("gold/restaurant/measures/*/*.parquet");
        let orders = orders.clone();
        std::thread::spawn(move || {
            LazyFrame::scan_parquet(
                PlRefPath::new(path.to_string_lossy().as_ref()),
                larder_worker::lake_scan_args(),
            )
            .unwrap()
            .filter(col("measure").eq(lit(orders)))
            .sort(["event_time"], SortMultipleOptions::default())
            .collect()
            .unwrap()
        })
        .join()
        .unwrap()
    };
    let times = contributions
        .column("event_time")
        .unwrap()
        .cast(&DataType::Int64)
        .unwrap();
    assert_eq!(
        times.i64().unwrap().into_no_null_iter().collect::<Vec<_>>(),
        [
            1_546_423_200_000i64, // 2019-01-02T10:00Z
            1_546_426_800_000,    // 11:00
            1_546_506_000_000,    // 2019-01-03T09:00
        ]
    );

    let changes = {
        let path = lake.join("gold/restaurant/changes/*/*.parquet");
        std::thread::spawn(move || {
            LazyFrame::scan_parquet(
                PlRefPath::new(path.to_string_lossy().as_ref()),
                larder_worker::lake_scan_args(),
            )
            .unwrap()
            .filter(col("feature").eq(lit("avg_ticket")))
            .collect()
            .unwrap()
        })
        .join()
        .unwrap()
    };
    assert_eq!(strings(&changes, "value"), ["60.0"]);
    assert_eq!(strings(&changes, "entity"), ["r1"]);
    app.cleanup().await;
}
