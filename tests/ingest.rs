//! The ingestion routes against real Redis: acceptance, duplicates, updates, and every error status.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use larder_e2e::{
    TestApp, consumer_event, order_event, restaurant_event, status_event, test_settings,
};
use serde_json::{Value, json};

#[tokio::test]
async fn each_original_route_stores_raw_record_and_log_entry() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            "/order-event/",
            order_event("o1", "r1", "c1", 46.0, "2019-01-17T22:50:06.000Z"),
            "order",
            "o1",
        ),
        (
            "/status-event/",
            status_event("s1", "o1", "PLACED", "2019-01-17T22:50:06.000Z"),
            "status",
            "s1",
        ),
        (
            "/restaurant-event/",
            restaurant_event("r1", 60.0),
            "restaurant",
            "r1",
        ),
        ("/consumer-event/", consumer_event("c1"), "consumer", "c1"),
    ];
    for (route, event, source, id) in cases {
        let response = app.post_json(route, &event).await;
        assert_eq!(response.status(), 200, "{route}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({"status": "accepted", "source": source, "id": id})
        );
        assert!(
            !app.hgetall(&format!("raw_{source}:{id}")).await.is_empty(),
            "{route}"
        );
        assert_eq!(
            app.stream_len(&format!("events:{source}")).await,
            1,
            "{route}"
        );
    }
    let raw_order = app.hgetall("raw_order:o1").await;
    assert_eq!(raw_order["order_total_amount"], "46.0");
    assert_eq!(raw_order["delivery_address_zip_code"], "14403");
    app.cleanup().await;
}

#[tokio::test]
async fn a_resent_event_is_a_duplicate_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let event = order_event("o1", "r1", "c1", 46.0, "2019-01-17T22:50:06.000Z");
    app.post_json("/order-event/", &event).await;
    let before = app.dump().await;

    // Same content, other spellings: numbers as strings, another offset for the same instant.
    let mut respelled = event.clone();
    respelled["order_total_amount"] = json!("46");
    respelled["order_created_at"] = json!("2019-01-17T20:50:06-02:00");
    for resend in [&event, &respelled] {
        let response = app.post_json("/order-event/", resend).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "duplicate");
    }
    assert_eq!(app.dump().await, before);
    app.cleanup().await;
}

#[tokio::test]
async fn a_changed_restaurant_is_an_update() {
    let app = TestApp::spawn().await;
    app.post_json("/restaurant-event/", &restaurant_event("r1", 60.0))
        .await;
    app.assert_a_changed_restaurant_replaces_its_record().await;
    assert_eq!(app.hgetall("rtf_restaurant:r1").await["avg_ticket"], "80.0");
    assert_eq!(app.stream_len("events:restaurant").await, 2);
    app.cleanup().await;
}

#[tokio::test]
async fn a_record_outliving_its_marker_is_replaced() {
    let mut settings = test_settings();
    settings.redis.dedupe_ttl_secs = 3600;
    let app = TestApp::spawn_with(settings).await;
    app.assert_replaces_a_record_that_outlived_its_marker()
        .await;
    app.cleanup().await;
}

#[tokio::test]
async fn raw_hashes_expire_through_the_queue_while_markers_are_kept() {
    let mut settings = test_settings();
    settings.redis.raw_ttl_secs = 1;
    let app = TestApp::spawn_with(settings).await;
    app.assert_raw_hashes_expire_through_the_queue().await;
    app.cleanup().await;
}

#[tokio::test]
async fn raw_hashes_carry_their_ttl_while_markers_expire() {
    let mut settings = test_settings();
    (settings.redis.raw_ttl_secs, settings.redis.dedupe_ttl_secs) = (60, 3600);
    let app = TestApp::spawn_with(settings).await;
    app.assert_raw_hashes_expire_by_their_ttl_while_markers_expire()
        .await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_failed_call_versions_what_it_wrote() {
    let app = TestApp::spawn().await;
    app.assert_a_failed_call_versions_what_it_wrote().await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_batch_accepts_valid_events_and_reports_each_invalid_one() {
    let app = TestApp::spawn().await;
    let batch = json!([
        status_event("s1", "o1", "PLACED", "2019-01-17T22:50:06.000Z"),
        status_event("s2", "o1", "DELIVERED", "2019-01-17T22:51:06.000Z"),
        status_event("s1", "o1", "PLACED", "2019-01-17T22:50:06.000Z"),
        {"order_id": "o1"},
        "not an object",
    ]);
    let response = app.post_json("/v1/events/status", &batch).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (
            body["accepted"].clone(),
            body["duplicate"].clone(),
            body["rejected"].clone()
        ),
        (json!(1), json!(1), json!(3))
    );
    let statuses: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["accepted", "rejected", "duplicate", "rejected", "rejected"]
    );
    assert_eq!(body["results"][1]["errors"][0]["field"], "value");
    let missing: Vec<&str> = body["results"][3]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(missing, ["created_at", "status_id", "value"]);
    assert_eq!(app.stream_len("events:status").await, 1);
    // Only s1 was stored. A PLACED status feeds nothing of its restaurant (which counts only
    // CANCELLED ones), so nothing waits on its unknown order to learn the restaurant. The order
    // view has no windows: its entities keep no version, and the call takes none.
    assert_eq!(
        app.keys().await,
        [
            "events:status",
            "larder:clock",
            "larder:entities:order",
            "raw_status:s1",
            "rtf_order:o1",
            "seen:status:s1",
        ]
    );
    app.cleanup().await;
}

#[tokio::test]
async fn an_ndjson_batch_rejects_a_malformed_line_alone() {
    let app = TestApp::spawn().await;
    let lines = [
        status_event("s1", "o1", "PLACED", "2019-01-17T22:50:06.000Z").to_string(),
        "{\"created_at\": ".to_owned(),
        status_event("s2", "o1", "CONCLUDED", "2019-01-17T23:50:06.000Z").to_string(),
    ];
    let response = app
        .http
        .post(app.url("/v1/events/status"))
        .header("content-type", "application/x-ndjson")
        .body(lines.join("\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["accepted"].clone(), body["rejected"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(body["results"][1]["errors"][0]["code"], "bad_json");
    app.cleanup().await;
}

async fn status_and_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("errors are JSON");
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn every_bad_request_gets_its_status_and_stores_nothing() {
    let mut settings = larder_e2e::test_settings();
    settings.server.max_event_bytes = 4096;
    settings.server.max_batch_events = 3;
    let app = TestApp::spawn_with(settings).await;
    let post = |path: &str, content_type: &str, body: String| {
        app.http
            .post(app.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let valid = restaurant_event("r1", 60.0).to_string();
    let mut wrong_types = restaurant_event("r1", 60.0);
    wrong_types["average_ticket"] = json!("sixty");
    wrong_types["enabled"] = json!("perhaps");
    let five = json!([{}, {}, {}, {}, {}]).to_string();

    let cases = [
        (
            post("/restaurant-event/", "application/json", "{\"id\": ".into()).await,
            400,
            "bad_json",
        ),
        (
            post(
                "/restaurant-event/",
                "application/json",
                wrong_types.to_string(),
            )
            .await,
            422,
            "invalid_event",
        ),
        (
            post("/restaurant-event/", "text/plain", valid.clone()).await,
            415,
            "unsupported_media_type",
        ),
        (
            post("/restaurant-event/", "application/json", "x".repeat(5000)).await,
            413,
            "payload_too_large",
        ),
        (
            post("/v1/events/dish", "application/json", "[]".into()).await,
            404,
            "unknown_source",
        ),
        (
            post("/v1/events/restaurant", "application/json", five).await,
            413,
            "payload_too_large",
        ),
        (
            post("/v1/events/restaurant", "application/json", valid.clone()).await,
            422,
            "invalid_body",
        ),
        (
            post("/v1/events/restaurant", "text/csv", "[]".into()).await,
            415,
            "unsupported_media_type",
        ),
        (
            post("/v1/events/restaurant", "application/json", "[{".into()).await,
            400,
            "bad_json",
        ),
    ];
    for (index, (response, status, code)) in cases.into_iter().enumerate() {
        assert_eq!(
            status_and_code(response.unwrap()).await,
            (status, code.to_owned()),
            "case {index}"
        );
    }
    assert!(
        app.keys().await.is_empty(),
        "a rejected request stored something"
    );

    let body: Value = post(
        "/restaurant-event/",
        "application/json",
        wrong_types.to_string(),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let fields: Vec<&str> = body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["enabled", "average_ticket"]);
    app.cleanup().await;
}
