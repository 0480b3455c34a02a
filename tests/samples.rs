//! Every row of the real iFood samples is accepted, stored once, and a second ingest adds
//! nothing. Skipped (with a message) when `../shared/ifood-sample` is absent.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::HashSet;

use larder_e2e::{TestApp, read_csv_events, samples_dir};
use serde_json::Value;

/// Statuses go one by one through the original route, as the original producer sent them.
async fn post_singly(app: &TestApp, events: &[Value]) -> (u64, u64) {
    let (mut accepted, mut duplicate) = (0, 0);
    for event in events {
        let response = app.post_json("/status-event/", event).await;
        assert_eq!(response.status(), 200, "{event}");
        let body: Value = response.json().await.unwrap();
        match body["status"].as_str() {
            Some("accepted") => accepted += 1,
            Some("duplicate") => duplicate += 1,
            other => panic!("unexpected status {other:?}"),
        }
    }
    (accepted, duplicate)
}

fn distinct_ids(events: &[Value], field: &str) -> HashSet<String> {
    events
        .iter()
        .map(|e| e[field].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn every_sample_row_is_accepted_once_and_a_replay_adds_nothing() {
    let Some(dir) = samples_dir() else {
        eprintln!("skipped: ../shared/ifood-sample not found (set LARDER_SAMPLES_DIR)");
        return;
    };
    let orders = read_csv_events(&dir.join("order_sample.csv"));
    let restaurants = read_csv_events(&dir.join("restaurant.csv"));
    let statuses = read_csv_events(&dir.join("status_sample.csv"));
    assert_eq!(
        (orders.len(), restaurants.len(), statuses.len()),
        (1000, 7292, 1000)
    );
    let app = TestApp::spawn().await;

    assert_eq!(app.post_batches("order", &orders).await, (1000, 0, 0));
    assert_eq!(
        app.post_batches("restaurant", &restaurants).await,
        (7292, 0, 0)
    );
    // 356 rows repeat an earlier row exactly: 644 distinct events.
    assert_eq!(post_singly(&app, &statuses).await, (644, 356));

    assert_eq!(app.stream_len("events:order").await, 1000);
    assert_eq!(app.stream_len("events:restaurant").await, 7292);
    assert_eq!(app.stream_len("events:status").await, 644);
    let keys: HashSet<String> = app.keys().await.into_iter().collect();
    for (source, events, field) in [
        ("order", &orders, "order_id"),
        ("restaurant", &restaurants, "id"),
        ("status", &statuses, "status_id"),
    ] {
        for id in distinct_ids(events, field) {
            assert!(
                keys.contains(&format!("raw_{source}:{id}")),
                "raw_{source}:{id} missing"
            );
        }
    }
    for id in distinct_ids(&restaurants, "id") {
        assert!(
            keys.contains(&format!("rtf_restaurant:{id}")),
            "rtf_restaurant:{id} missing"
        );
    }

    // The quirks survive: null customer ids are absent, a doubly escaped `items` is kept as text.
    let null_customer = orders
        .iter()
        .find(|o| o.get("customer_id").is_none())
        .unwrap();
    let raw = app
        .hgetall(&format!(
            "raw_order:{}",
            null_customer["order_id"].as_str().unwrap()
        ))
        .await;
    assert!(!raw.contains_key("customer_id"));
    let escaped = orders
        .iter()
        .find(|o| serde_json::from_str::<Value>(o["items"].as_str().unwrap()).is_err())
        .unwrap();
    let raw = app
        .hgetall(&format!(
            "raw_order:{}",
            escaped["order_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(raw["items"], escaped["items"]);

    let before = app.dump().await;
    assert_eq!(app.post_batches("order", &orders).await, (0, 1000, 0));
    assert_eq!(
        app.post_batches("restaurant", &restaurants).await,
        (0, 7292, 0)
    );
    assert_eq!(app.post_batches("status", &statuses).await, (0, 1000, 0));
    assert_eq!(
        app.dump().await,
        before,
        "a second ingest changed the store"
    );
    app.cleanup().await;
}
