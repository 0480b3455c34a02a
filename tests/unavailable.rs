//! With Redis unreachable the API answers 503 with a JSON body, never a 500 with a trace.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use larder_e2e::{TestApp, restaurant_event, test_settings};
use serde_json::Value;

#[tokio::test]
async fn a_dead_redis_gives_503_and_not_ready() {
    let mut settings = test_settings();
    // Nothing listens on port 1.
    settings.redis.url = "redis://127.0.0.1:1/0".into();
    settings.redis.timeout_ms = 500;
    let app = TestApp::spawn_with(settings).await;

    let ingest = app
        .post_json("/restaurant-event/", &restaurant_event("r1", 60.0))
        .await;
    assert_eq!(ingest.status(), 503);
    assert_eq!(ingest.headers()["retry-after"], "1");
    let body: Value = ingest.json().await.unwrap();
    assert_eq!(body["code"], "store_unavailable");
    assert!(
        !body["message"].as_str().unwrap().contains("127.0.0.1"),
        "5xx bodies stay opaque"
    );

    assert_eq!(app.get("/ready").await.status(), 503);
    assert_eq!(app.get("/health").await.status(), 200);
    assert_eq!(
        app.get("/real-time-fs/get/restaurant/r1").await.status(),
        503
    );
}
