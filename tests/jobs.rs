//! Jobs through the API and an apalis worker against real Redis: queued, run, reported; retried
//! and finally failed with the reason when they cannot succeed.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::{sync::Arc, time::Duration};

use larder_e2e::{TestApp, order_event, temp_dir};
use larder_redis::{RedisBatchFeatures, RedisEventLog, RedisJobQueue};
use larder_s3::{LocalDirectory, S3Location, S3Store};
use larder_usecases::ObjectStore;
use larder_worker::{JobDeps, run_job_worker};
use polars::prelude::{ParquetReader, SerReader};
use serde_json::{Value, json};

fn deps(app: &TestApp, store: Arc<dyn ObjectStore>, max_attempts: usize) -> Arc<JobDeps> {
    let pool = larder_redis::connect(&app.settings.redis).unwrap();
    Arc::new(JobDeps {
        views: Arc::new(app.settings.features.load_views().unwrap()),
        store,
        log: Arc::new(RedisEventLog::new(pool.clone(), &app.settings.redis)),
        features: Arc::new(RedisBatchFeatures::new(pool.clone(), &app.settings.redis)),
        queue: RedisJobQueue::new(pool, &app.settings.redis).unwrap(),
        cache_dir: temp_dir("larder-cache"),
        results_dir: temp_dir("larder-results"),
        flush_batch: 100,
        compact_min_objects: 2,
        max_attempts,
    })
}

async fn queue(app: &TestApp, name: &str) -> String {
    let response = app
        .http
        .post(app.url(&format!("/v1/jobs/{name}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "{name}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["name"].as_str(), body["state"].as_str()),
        (Some(name), Some("queued"))
    );
    body["id"].as_str().unwrap().to_owned()
}

/// Polls the run until it is `state` (at most 60 s).
async fn until(app: &TestApp, id: &str, state: &str) -> Value {
    for _ in 0..600 {
        let record: Value = app.get_json(&format!("/v1/jobs/{id}")).await;
        if record["state"] == state {
            return record;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("job {id} never became {state}");
}

#[tokio::test(flavor = "multi_thread")]
async fn queued_jobs_run_in_the_worker_and_report_what_they_did() {
    let app = TestApp::spawn().await;
    let orders: Vec<Value> = (0..10)
        .map(|i| {
            let mut order = order_event(
                &format!("o{i}"),
                "r1",
                "c1",
                f64::from(i),
                "2019-01-02T10:00:00.000Z",
            );
            order["cpf"] = json!(format!("{}", 100 + i % 2));
            order
        })
        .collect();
    app.post_batches("order", &orders).await;
    let unknown = app
        .http
        .post(app.url("/v1/jobs/feature-party"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        unknown.json::<Value>().await.unwrap()["code"],
        "unknown_job"
    );

    let flush = queue(&app, "lake-flush").await;
    assert_eq!(
        app.get(&format!("/v1/jobs/{flush}"))
            .await
            .json::<Value>()
            .await
            .unwrap()["state"],
        "queued"
    );
    let lake: Arc<dyn ObjectStore> = Arc::new(LocalDirectory::new(temp_dir("larder-lake")));
    let worker = tokio::spawn(run_job_worker(
        format!("test-{}", app.prefix),
        deps(&app, lake.clone(), 3),
    ));

    let record = until(&app, &flush, "succeeded").await;
    assert_eq!(
        (
            record["summary"]["rows_in"].clone(),
            record["attempts"].clone()
        ),
        (json!(10), json!(1))
    );
    assert_eq!(record["summary"]["objects_written"], 1);
    assert!(record["started_at"].is_string() && record["finished_at"].is_string());

    // A second flush adds an object to the same partition; compaction merges the two.
    let later: Vec<Value> = (10..15)
        .map(|i| {
            let mut order = order_event(
                &format!("o{i}"),
                "r1",
                "c1",
                1.0,
                "2019-01-02T11:00:00.000Z",
            );
            order["cpf"] = json!("300");
            order
        })
        .collect();
    app.post_batches("order", &later).await;
    let flush = queue(&app, "lake-flush").await;
    until(&app, &flush, "succeeded").await;
    let compact = queue(&app, "compact-bronze").await;
    let summary = until(&app, &compact, "succeeded").await["summary"].clone();
    assert_eq!(
        (
            summary["objects_merged"].clone(),
            summary["rows_in"].clone(),
            summary["objects_written"].clone()
        ),
        (json!(2), json!(15), json!(1))
    );
    assert_eq!(lake.list("bronze/order/").await.unwrap().len(), 1);

    let simple = queue(&app, "simple_feature").await;
    assert_eq!(
        until(&app, &simple, "succeeded").await["summary"]["rows_out"],
        3
    );
    let materialize = queue(&app, "materialize").await;
    assert_eq!(
        until(&app, &materialize, "succeeded").await["summary"]["rows_out"],
        3
    );
    let served: Value = app.get_json("/real-time-fs/get/simple_feature/100").await;
    assert_eq!(served["value"]["avg_order_total_amount"], 4.0); // 0, 2, 4, 6, 8
    assert_eq!(app.get("/v1/jobs/nosuchrun").await.status(), 404);

    // A training set: gold first, then the entity table (CSV in the lake) through the API.
    let history = queue(&app, "feature-history").await;
    until(&app, &history, "succeeded").await;
    lake.put(
        "entities/rows.csv",
        b"merchant_id,event_timestamp,label\nr1,2019-01-02T10:00:00Z,yes\nr1,2019-01-02T09:59:59Z,no\n"
            .to_vec(),
    )
    .await
    .unwrap();
    let response = app
        .post_json(
            "/v1/training-sets",
            &json!({"entities": "entities/rows.csv", "features": ["restaurant:orders_24h"]}),
        )
        .await;
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let record = until(&app, &id, "succeeded").await;
    let output = format!("training-sets/{id}.parquet");
    assert_eq!(record["summary"]["output"], output.as_str(), "{record}");
    let bytes = lake.get(&output).await.unwrap().unwrap();
    let set = tokio::task::spawn_blocking(move || {
        ParquetReader::new(std::io::Cursor::new(bytes))
            .finish()
            .unwrap()
    })
    .await
    .unwrap();
    // All ten orders are at 10:00 exactly: the row at 10:00 sees them, the one before none.
    let orders: Vec<Option<i64>> = set
        .column("restaurant__orders_24h")
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(orders, [Some(10), None]);
    worker.abort();
    app.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_that_cannot_succeed_is_retried_then_failed_with_the_reason() {
    let app = TestApp::spawn().await;
    app.post_json(
        "/order-event/",
        &order_event("o1", "r1", "c1", 1.0, "2019-01-02T10:00:00.000Z"),
    )
    .await;
    // A lake in a bucket that does not exist: every write fails.
    let client = larder_s3::s3_client(&larder_e2e::test_s3_settings()).await;
    let nowhere = S3Store::new(
        client,
        &S3Location {
            bucket: format!("missing-{}", std::process::id()),
            key: "lake".into(),
        },
    );
    let worker = tokio::spawn(run_job_worker(
        format!("test-{}", app.prefix),
        deps(&app, Arc::new(nowhere), 2),
    ));

    let id = queue(&app, "lake-flush").await;
    let record = until(&app, &id, "failed").await;
    assert_eq!(record["attempts"], 2, "{record}");
    assert!(
        record["error"].as_str().unwrap().contains("missing-"),
        "{record}"
    );
    assert_eq!(
        app.stream_len("events:order").await,
        1,
        "a failed flush trimmed the log"
    );
    worker.abort();
    app.cleanup().await;
}
