//! Point-in-time training sets against real Redis: ingest, flush to bronze, compute gold, build
//! training sets, and check them against hand-computed values (leakage edges) and against the
//! online store's own answers at checkpoints (parity).

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::{collections::BTreeMap, path::PathBuf, sync::Arc};

use larder_cli::generate::{self, GenerateOptions};
use larder_domain::{FeatureViews, FieldType, Source, Timestamp};
use larder_e2e::{TestApp, order_event, temp_dir};
use larder_s3::LocalDirectory;
use larder_usecases::SetCompression;
use larder_worker::{compute_training_set, flush_source, read_entity_table};
use polars::prelude::*;
use serde_json::{Value, json};

/// Flushes everything the app ingested into a fresh local lake and computes its gold tables.
async fn lake_with_gold(app: &TestApp, views: Arc<FeatureViews>) -> PathBuf {
    let lake = temp_dir("larder-lake");
    let store = LocalDirectory::new(&lake);
    let log = app.event_log();
    for source in Source::ALL {
        flush_source(&log, &log, &store, source, 1_000, 1_000)
            .await
            .unwrap();
    }
    larder_worker::run_feature_history(&store, &temp_dir("larder-cache"), views)
        .await
        .unwrap();
    lake
}

fn ms(text: &str) -> i64 {
    Timestamp::parse_rfc3339(text).unwrap().millis()
}

/// `compute_training_set` on a blocking thread (Polars must not run on the async executor).
async fn training_set(
    lake: PathBuf,
    views: Arc<FeatureViews>,
    table: DataFrame,
    features: &[&str],
) -> DataFrame {
    let features: Vec<String> = features.iter().map(|f| (*f).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        compute_training_set(&lake, &views, table, &features).unwrap()
    })
    .await
    .unwrap()
}

fn i64s(frame: &DataFrame, column: &str) -> Vec<Option<i64>> {
    frame
        .column(column)
        .unwrap()
        .cast(&DataType::Int64)
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .collect()
}

fn f64s(frame: &DataFrame, column: &str) -> Vec<Option<f64>> {
    frame
        .column(column)
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .collect()
}

/// A training set's frame and each row group's column codecs, from its Parquet bytes.
async fn read_set(bytes: Vec<u8>) -> (DataFrame, Vec<Vec<String>>) {
    tokio::task::spawn_blocking(move || {
        let mut reader = ParquetReader::new(std::io::Cursor::new(bytes));
        let metadata = reader.get_metadata().unwrap().clone();
        let codecs = metadata
            .row_groups
            .iter()
            .map(|group| {
                group
                    .parquet_columns()
                    .iter()
                    .map(|column| format!("{:?}", column.compression()))
                    .collect()
            })
            .collect();
        (reader.finish().unwrap(), codecs)
    })
    .await
    .unwrap()
}

const LEAKAGE_VIEWS: &str = r#"
[[view]]
name = "restaurant"
key = "merchant_id"
max_age = "1h"

[view.sources]
order = "merchant_id"

[[view.feature]]
name = "last_amount"
agg = "last"
source = "order"
field = "order_total_amount"

[[view.feature]]
name = "orders_1h"
agg = "count"
source = "order"
window = "1h"

[[view.feature]]
name = "orders_lifetime"
agg = "count"
source = "order"
"#;

fn leakage_views() -> Arc<FeatureViews> {
    let path = temp_dir("larder-views").join("features.toml");
    std::fs::write(&path, LEAKAGE_VIEWS).unwrap();
    let settings = larder_api::FeaturesSettings {
        path: path.display().to_string(),
    };
    Arc::new(settings.load_views().unwrap())
}

/// An event exactly at a row's time counts, one a millisecond after does not; an entity with no
/// history and a row before the first event get nulls; `last` values expire after max age;
/// rows keep their order and labels.
#[tokio::test(flavor = "multi_thread")]
async fn rows_see_events_at_or_before_their_time_and_nothing_after() {
    let app = TestApp::spawn().await;
    for (id, amount, at) in [
        ("o1", 10.0, "2019-01-02T10:00:00.000Z"),
        ("o2", 20.0, "2019-01-02T11:00:00.000Z"),
        ("o3", 30.0, "2019-01-02T11:00:00.001Z"),
    ] {
        let response = app
            .post_json("/order-event/", &order_event(id, "r1", "c1", amount, at))
            .await;
        assert_eq!(response.status(), 200);
    }
    let views = leakage_views();
    let lake = lake_with_gold(&app, views.clone()).await;

    // Rows out of time order, with a label to carry through.
    let rows = [
        ("r1", "2019-01-02T11:00:00.000Z"), // o2 exactly at t: seen
        ("r2", "2019-01-02T12:00:00.000Z"), // never seen
        ("r1", "2019-01-02T12:00:00.000Z"), // o3 59:59.999 old: within max age
        ("r1", "2019-01-02T09:00:00.000Z"), // before the first event
        ("r1", "2019-01-02T10:59:59.999Z"), // o2 one ms later: not seen
        ("r1", "2019-01-02T12:00:00.002Z"), // o3 1 h + 1 ms old: past max age
    ];
    let table = DataFrame::new_infer_height(vec![
        Series::new(
            "merchant_id".into(),
            rows.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        )
        .into_column(),
        Series::new(
            "event_timestamp".into(),
            rows.iter().map(|(_, t)| ms(t)).collect::<Vec<_>>(),
        )
        .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
        .unwrap()
        .into_column(),
        Series::new("label".into(), [1i64, 2, 3, 4, 5, 6]).into_column(),
    ])
    .unwrap();
    let set = training_set(lake.clone(), views.clone(), table.clone(), &["restaurant"]).await;
    assert_eq!(set.height(), 6);
    assert_eq!(
        i64s(&set, "label"),
        [Some(1), Some(2), Some(3), Some(4), Some(5), Some(6)]
    );
    assert_eq!(
        f64s(&set, "restaurant__last_amount"),
        [Some(20.0), None, Some(30.0), None, Some(10.0), None]
    );
    // Windows are right-closed on minute buckets, as online: at 11:00 the hour (10:00, 11:00]
    // holds o2 but not o1 at exactly 10:00; at 12:00:00.002 the window's buckets are those
    // ending in (11:01, 12:01], so o3 (11:00:00.001, in the bucket ending 11:01) has left it.
    assert_eq!(
        i64s(&set, "restaurant__orders_1h"),
        [Some(1), None, Some(1), None, Some(0), Some(0)]
    );
    assert_eq!(
        i64s(&set, "restaurant__orders_lifetime"),
        [Some(2), None, Some(3), None, Some(1), Some(3)]
    );

    // The same table as CSV (as `larder training-set` reads it) gives the same set.
    let mut csv = String::from("merchant_id,event_timestamp,label\n");
    for (i, (key, at)) in rows.iter().enumerate() {
        csv.push_str(&format!("{key},{at},{}\n", i + 1));
    }
    let from_csv = read_entity_table("rows.csv", csv.as_bytes()).unwrap();
    let set_from_csv = training_set(lake.clone(), views.clone(), from_csv, &["restaurant"]).await;
    for column in [
        "restaurant__orders_1h",
        "restaurant__orders_lifetime",
        "label",
    ] {
        assert_eq!(i64s(&set_from_csv, column), i64s(&set, column), "{column}");
    }
    assert_eq!(
        f64s(&set_from_csv, "restaurant__last_amount"),
        f64s(&set, "restaurant__last_amount")
    );

    // As a Parquet table through `build_training_set`, which copies the table's columns as they
    // are stored: the same set, in the table's row groups. A column the set replaces makes it
    // decode the table instead, to the same values.
    for replaced in [false, true] {
        let mut table = table.clone();
        if replaced {
            let stale = Series::new("restaurant__orders_1h".into(), [7i64; 6]);
            table.with_column(stale.into_column()).unwrap();
        }
        let mut bytes = Vec::new();
        ParquetWriter::new(&mut bytes)
            .with_row_group_size(Some(2))
            .finish(&mut table)
            .unwrap();
        let (built, bytes) = larder_worker::build_training_set(
            &LocalDirectory::new(&lake),
            &temp_dir("larder-cache"),
            views.clone(),
            larder_worker::EntityTable {
                name: "rows.parquet".into(),
                bytes,
            },
            vec!["restaurant".into()],
            SetCompression::Snappy,
            Vec::new(),
        )
        .await
        .unwrap();
        assert_eq!(built.rows, 6);
        let (back, codecs) = read_set(bytes).await;
        let names = set.get_column_names().into_iter().cloned();
        assert!(
            back.select(names).unwrap().equals_missing(&set),
            "{back} against {set}"
        );
        // Copied, the table's own columns keep its row groups and Polars' zstd; decoded, they are
        // written as the set's own.
        assert_eq!(codecs.len(), if replaced { 1 } else { 3 }, "{codecs:?}");
        let zstd = codecs.iter().flatten().filter(|c| *c == "Zstd").count();
        assert_eq!(
            zstd,
            if replaced { 0 } else { 3 * table.width() },
            "{codecs:?}"
        );
    }
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_name_what_is_wrong() {
    let app = TestApp::spawn().await;
    let views = Arc::new(app.settings.features.load_views().unwrap());
    let lake = temp_dir("larder-lake");
    let table = DataFrame::new_infer_height(vec![
        Series::new("merchant_id".into(), ["r1"]).into_column(),
    ])
    .unwrap();
    let error = {
        let (lake, views, table) = (lake.clone(), views.clone(), table.clone());
        tokio::task::spawn_blocking(move || {
            compute_training_set(&lake, &views, table, &["restaurant:orders_7d".into()])
                .unwrap_err()
                .to_string()
        })
        .await
        .unwrap()
    };
    assert!(error.contains("event_timestamp"), "{error}");
    let error = tokio::task::spawn_blocking(move || {
        compute_training_set(&lake, &views, table, &["restaurant:nope".into()])
            .unwrap_err()
            .to_string()
    })
    .await
    .unwrap();
    assert!(error.contains("restaurant:nope"), "{error}");

    for (body, field) in [
        (
            json!({"entities": "rows.parquet", "features": ["restaurant:nope"]}),
            "features",
        ),
        (
            json!({"entities": "../etc/rows.parquet", "features": ["restaurant"]}),
            "entities",
        ),
        (
            json!({"entities": "rows.parquet", "features": ["restaurant"], "out": "gold/x.parquet"}),
            "out",
        ),
        (
            json!({"entities": "rows.parquet", "features": ["restaurant"], "compression": "gzip"}),
            "compression",
        ),
    ] {
        let response = app.post_json("/v1/training-sets", &body).await;
        assert_eq!(response.status(), 422, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert!(
            answer["message"].as_str().unwrap().starts_with(field),
            "{answer}"
        );
    }
    app.cleanup().await;
}

/// The online store's answer at `as_of` for `keys` of `view`: feature name → one value per key.
async fn online_answers(
    app: &TestApp,
    view: &str,
    key_name: &str,
    keys: &[String],
    as_of: i64,
) -> BTreeMap<String, Vec<Value>> {
    let body = json!({
        "features": [view],
        "entities": {key_name: keys},
        "as_of": Timestamp::from_millis(as_of).unwrap().to_string(),
    });
    let response = app.post_json("/v1/features/online", &body).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let names = answer["metadata"]["feature_names"].as_array().unwrap();
    names
        .iter()
        .zip(answer["results"].as_array().unwrap())
        .filter_map(|(name, result)| {
            let (_, feature) = name.as_str()?.split_once(':')?;
            Some((
                feature.to_owned(),
                result["values"].as_array().unwrap().clone(),
            ))
        })
        .collect()
}

/// Reads every event of the generated files, ordered by event time.
async fn generated_events(dir: &std::path::Path) -> Vec<(i64, Source, Value)> {
    use larder_cli::replay::input;
    let inputs = input::discover(&[dir.display().to_string()], None)
        .await
        .unwrap();
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut events = Vec::new();
        for file in inputs {
            let reader = input::open(&file, None, &runtime, Arc::default()).unwrap();
            for line in input::lines(&file, reader) {
                let text = line.unwrap().text;
                let Some(time) = input::event_time(file.source, &text) else {
                    continue;
                };
                events.push((time, file.source, serde_json::from_str(&text).unwrap()));
            }
        }
        events.sort_by_key(|(time, _, _)| *time);
        events
    })
    .await
    .unwrap()
}

/// What the online store answered at a checkpoint: view, keys, checkpoint, and per feature one
/// value per key.
type Recorded = (String, Vec<String>, i64, BTreeMap<String, Vec<Value>>);

/// Replays generated data in event-time order; at checkpoints records what the online store
/// answers for every view; then builds training sets for those (entity, checkpoint) rows from
/// the lake and requires the same values: exact for counts and text, 1e-9 relative for floats.
#[tokio::test(flavor = "multi_thread")]
async fn offline_values_equal_online_answers_at_checkpoints() {
    let app = TestApp::spawn().await;
    let views = Arc::new(app.settings.features.load_views().unwrap());
    let data = temp_dir("larder-parity-data");
    let options = GenerateOptions {
        out: data.clone(),
        orders: 3_000,
        seed: 11,
    };
    tokio::task::spawn_blocking(move || generate::run(&options).unwrap())
        .await
        .unwrap();
    let events = generated_events(&data).await;
    let order_times: Vec<i64> = events
        .iter()
        .filter(|(_, s, _)| *s == Source::Order)
        .map(|(t, _, _)| *t)
        .collect();
    // Checkpoints inside the order traffic: event times themselves (an event exactly at the
    // checkpoint) and instants between buckets.
    let checkpoints: Vec<i64> = [0.2, 0.45, 0.7, 0.9, 1.0]
        .iter()
        .map(|q| order_times[((order_times.len() - 1) as f64 * q) as usize])
        .enumerate()
        .map(|(i, t)| if i % 2 == 1 { t + 12_345 } else { t })
        .collect();

    let mut recorded: Vec<Recorded> = Vec::new();
    let mut sent = 0;
    let mut seen: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for checkpoint in &checkpoints {
        let upto = events.partition_point(|(t, _, _)| t <= checkpoint);
        let mut by_source: BTreeMap<Source, Vec<Value>> = BTreeMap::new();
        for (_, source, event) in &events[sent..upto] {
            by_source.entry(*source).or_default().push(event.clone());
            for (view, field) in [
                ("restaurant", "merchant_id"),
                ("consumer", "customer_id"),
                ("order", "order_id"),
            ] {
                if *source == Source::Order
                    && let Some(key) = event[field].as_str()
                {
                    seen.entry(view).or_default().push(key.to_owned());
                }
            }
        }
        sent = upto;
        for source in Source::ALL {
            if let Some(batch) = by_source.get(&source) {
                let (_, _, rejected) = app.post_batches(source.as_str(), batch).await;
                assert_eq!(rejected, 0, "{source}");
            }
        }
        for view in views.views() {
            let keys: Vec<String> = seen
                .get(view.name.as_str())
                .map(|keys| {
                    let mut keys = keys.clone();
                    keys.sort();
                    keys.dedup();
                    // Every restaurant; a spread of consumers and orders; one unknown key.
                    let step = (keys.len() / 60).max(1);
                    keys.into_iter().step_by(step).collect::<Vec<_>>()
                })
                .unwrap_or_default()
                .into_iter()
                .chain(["never-seen".to_owned()])
                .collect();
            let answers = online_answers(&app, &view.name, &view.key, &keys, *checkpoint).await;
            recorded.push((view.name.clone(), keys, *checkpoint, answers));
        }
    }
    let lake = lake_with_gold(&app, views.clone()).await;

    let mut compared = 0;
    let mut sets = Vec::new();
    for view in views.views() {
        let rows: Vec<&Recorded> = recorded.iter().filter(|r| r.0 == view.name).collect();
        let keys: Vec<&str> = rows
            .iter()
            .flat_map(|r| r.1.iter().map(String::as_str))
            .collect();
        let times: Vec<i64> = rows
            .iter()
            .flat_map(|r| std::iter::repeat_n(r.2, r.1.len()))
            .collect();
        let table = DataFrame::new_infer_height(vec![
            Series::new(view.key.as_str().into(), keys.clone()).into_column(),
            Series::new("event_timestamp".into(), times)
                .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
                .unwrap()
                .into_column(),
        ])
        .unwrap();
        let set = training_set(
            lake.clone(),
            views.clone(),
            table.clone(),
            &[view.name.as_str()],
        )
        .await;
        assert_eq!(set.height(), keys.len());
        sets.push((view.name.clone(), table, set.clone()));
        for feature in &view.features {
            let column = format!("{}__{}", view.name, feature.name);
            let online: Vec<Value> = rows
                .iter()
                .flat_map(|r| r.3[&feature.name].iter().cloned())
                .collect();
            let offline = set.column(&column).unwrap();
            for (row, online) in online.iter().enumerate() {
                let offline = offline.get(row).unwrap();
                let context = || {
                    format!(
                        "{column} row {row} key {}: online {online}, offline {offline}",
                        keys[row]
                    )
                };
                match (feature.value_type, online) {
                    (_, Value::Null) => assert!(offline.is_null(), "{}", context()),
                    (FieldType::Float, Value::Number(n)) => {
                        let (a, b) = (n.as_f64().unwrap(), offline.extract::<f64>().unwrap());
                        assert!(
                            (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
                            "{}",
                            context()
                        );
                    }
                    (FieldType::Integer, Value::Number(n)) => {
                        assert_eq!(offline.extract::<i64>(), n.as_i64(), "{}", context());
                    }
                    (FieldType::Boolean, Value::Bool(b)) => {
                        assert_eq!(offline, AnyValue::Boolean(*b), "{}", context());
                    }
                    (FieldType::Time, Value::String(text)) => {
                        let AnyValue::Datetime(value, _, _) = offline else {
                            panic!("{}", context());
                        };
                        assert_eq!(value, ms(text), "{}", context());
                    }
                    (_, Value::String(text)) => {
                        assert_eq!(offline.get_str(), Some(text.as_str()), "{}", context());
                    }
                    _ => panic!("unexpected {}", context()),
                }
                compared += 1;
            }
        }
    }
    // Not vacuous: thousands of values compared, and windows saw orders.
    assert!(compared > 2_000, "{compared}");
    let busiest = recorded
        .iter()
        .filter(|r| r.0 == "restaurant")
        .flat_map(|r| r.3["orders_24h"].iter().filter_map(Value::as_i64))
        .max();
    assert!(busiest.unwrap_or(0) > 5, "{busiest:?}");

    // Gold written before `distinct` held each member's hash: every other file rewritten
    // without it, the members' text is hashed instead, to the same sets.
    let files = distinct_files(&lake);
    for file in files.iter().step_by(2) {
        let frame = ParquetReader::new(std::fs::File::open(file).unwrap())
            .finish()
            .unwrap();
        assert!(frame.column("member_hash").is_ok(), "{}", file.display());
        let mut frame = frame.drop("member_hash").unwrap();
        ParquetWriter::new(std::fs::File::create(file).unwrap())
            .finish(&mut frame)
            .unwrap();
    }
    assert!(files.len() > 1, "{files:?}");
    for (view, table, set) in sets {
        let again = training_set(lake.clone(), views.clone(), table, &[view.as_str()]).await;
        assert!(again.equals_missing(&set), "{view}: {again} against {set}");
    }
    app.cleanup().await;
}

/// Every file of every view's gold `distinct` table under `lake`.
fn distinct_files(lake: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for view in std::fs::read_dir(lake.join("gold")).unwrap() {
        let Ok(dates) = std::fs::read_dir(view.unwrap().path().join("distinct")) else {
            continue;
        };
        for date in dates {
            for file in std::fs::read_dir(date.unwrap().path()).unwrap() {
                files.push(file.unwrap().path());
            }
        }
    }
    files.sort();
    files
}

/// A lake on S3 (moto): gold written there, the entity table read from there, the training set
/// computed from the copy in the cache.
#[tokio::test(flavor = "multi_thread")]
async fn training_sets_work_on_an_s3_lake() {
    let app = TestApp::spawn().await;
    for (id, at) in [
        ("o1", "2019-01-02T10:00:00.000Z"),
        ("o2", "2019-01-02T10:30:00.000Z"),
    ] {
        app.post_json("/order-event/", &order_event(id, "r1", "c1", 10.0, at))
            .await;
    }
    let client = larder_s3::s3_client(&larder_e2e::test_s3_settings()).await;
    let bucket = format!("training-{}", std::process::id());
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    let store = larder_s3::S3Store::new(
        client,
        &larder_s3::S3Location {
            bucket,
            key: "lake".into(),
        },
    );
    let log = app.event_log();
    flush_source(&log, &log, &store, Source::Order, 100, 10)
        .await
        .unwrap();
    let views = Arc::new(app.settings.features.load_views().unwrap());
    larder_worker::run_feature_history(&store, &temp_dir("larder-cache"), views.clone())
        .await
        .unwrap();
    let (set, bytes) = larder_worker::build_training_set(
        &store,
        &temp_dir("larder-cache"),
        views,
        larder_worker::EntityTable {
            name: "rows.csv".into(),
            bytes:
                b"merchant_id,event_timestamp\nr1,2019-01-02T10:15:00Z\nr1,2019-01-02T11:00:00Z\n"
                    .to_vec(),
        },
        vec!["restaurant:orders_24h".into()],
        SetCompression::Zstd,
        Vec::new(),
    )
    .await
    .unwrap();
    assert_eq!((set.rows, set.feature_columns), (2, 1));
    let (frame, codecs) = read_set(bytes).await;
    let codecs: Vec<String> = codecs.into_iter().flatten().collect();
    // Every column as the request asked (the default is Snappy).
    assert!(
        !codecs.is_empty() && codecs.iter().all(|c| c == "Zstd"),
        "{codecs:?}"
    );
    assert_eq!(i64s(&frame, "restaurant__orders_24h"), [Some(1), Some(2)]);
    app.cleanup().await;
}
